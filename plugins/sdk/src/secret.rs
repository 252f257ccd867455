//! Comparing secrets without leaking where they differ.
//!
//! Webhook senders that authenticate with a shared secret (an Azure DevOps
//! service hook's `shared-secret` header, a token in a URL) must be checked in
//! constant time, or response timing reveals how much of a guess was right.
//!
//! For signatures (HMAC-SHA256) see [`crate::crypto`].

/// True when `a` and `b` are equal. The time taken depends only on the
/// lengths, never on where the contents differ. The same function as
/// [`crate::crypto::constant_time_eq`] (`subtle`'s comparison).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    crate::crypto::constant_time_eq(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"1234567890", b"1234567890"));
        assert!(!constant_time_eq(b"1234567890", b"1234567891"));
        assert!(!constant_time_eq(b"1234567890", b"123456789"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
