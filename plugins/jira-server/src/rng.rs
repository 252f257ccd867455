//! The host's `wasi:random` as a `rand_core` generator, for RSA blinding.

use rand_core::{CryptoRng, RngCore};
use trackbridge_plugin_sdk::random;

/// Cryptographically secure bytes from the host (see [`random::bytes`]).
pub struct HostRng;

impl RngCore for HostRng {
    fn next_u32(&mut self) -> u32 {
        let b = random::bytes(4);
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    fn next_u64(&mut self) -> u64 {
        random::u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.copy_from_slice(&random::bytes(dest.len()));
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for HostRng {}
