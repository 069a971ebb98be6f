//! Helpers shared by the transformers' tests.

use super::Transformer;

/// A deterministic key of `len` bytes; different seeds give different keys.
pub fn key(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7) ^ seed).collect()
}

/// Bytes from a hex string.
pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Plaintext lengths around every block and tag boundary.
pub const LENGTHS: [usize; 11] = [0, 1, 15, 16, 17, 31, 32, 33, 1000, 4096, 65537];

/// Writes and reads back every length under `aad`, checking nothing is stale.
pub fn assert_round_trips(t: &dyn Transformer, what: &str) {
    let aad = b"/registry/secrets/default/a";
    for len in LENGTHS {
        let plain: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
        let stored = t.transform_to_storage(&plain, aad).unwrap();
        assert_ne!(stored, plain, "{what}, len {len}: stored as plaintext");
        let (out, stale) = t.transform_from_storage(&stored, aad).unwrap();
        assert_eq!(out.as_ref(), plain.as_slice(), "{what}, len {len}");
        assert!(!stale, "{what}, len {len}");
    }
}

/// Every truncation of `stored` to a length in `lens` must fail without panicking.
pub fn assert_truncations_fail(t: &dyn Transformer, stored: &[u8], aad: &[u8], lens: &[usize]) {
    for &len in lens {
        assert!(
            t.transform_from_storage(&stored[..len], aad).is_err(),
            "truncated to {len} of {}",
            stored.len()
        );
    }
}

/// For authenticated ciphers: flipping any one bit anywhere must fail.
pub fn assert_tampering_fails(t: &dyn Transformer, aad: &[u8]) {
    let stored = t.transform_to_storage(b"some secret value", aad).unwrap();
    for i in 0..stored.len() {
        let mut bad = stored.clone();
        bad[i] ^= 0x01;
        assert!(t.transform_from_storage(&bad, aad).is_err(), "byte {i}");
    }
}
