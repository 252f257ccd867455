//! Random bytes from the host (`wasi:random/random`), for nonces and for
//! blinding private-key operations. Natively the [`crate::testing`] fake host
//! serves them: a deterministic sequence, or the bytes a test set.

/// `len` cryptographically secure random bytes.
pub fn bytes(len: usize) -> Vec<u8> {
    crate::sys::random_bytes(len)
}

/// A random `u64`.
pub fn u64() -> u64 {
    let b = bytes(8);
    u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))
}

/// `len` random bytes as lower-case hex (`2 * len` characters), e.g. for a nonce.
pub fn hex(len: usize) -> String {
    bytes(len).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn fake_host_serves_distinct_then_scripted_bytes() {
        testing::reset();
        let (a, b) = (hex(16), hex(16));
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        testing::set_random_bytes(&[1, 2, 3]);
        assert_eq!(bytes(5), vec![1, 2, 3, 1, 2]);
    }
}
