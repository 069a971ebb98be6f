//! Go's `secretbox.NewSecretboxTransformer`: a random 24-byte nonce followed by
//! NaCl's `secretbox.Seal` output (the 16-byte Poly1305 tag, then the XSalsa20
//! ciphertext). The box has no authenticated data, so the etcd key is not bound.

use std::borrow::Cow;
use std::sync::Arc;

use crypto_secretbox::aead::{AeadInPlace, KeyInit};
use crypto_secretbox::{Nonce, Tag, XSalsa20Poly1305};

use super::{random_bytes, InvalidKeySize, TransformError, Transformer};

const KEY_SIZE: usize = 32;
const NONCE_SIZE: usize = 24;
const TAG_SIZE: usize = 16;

/// The secretbox transformer for one 32-byte key.
struct Secretbox {
    cipher: XSalsa20Poly1305,
}

/// A secretbox transformer; the key must be 32 bytes.
pub fn new(key: &[u8]) -> Result<Arc<dyn Transformer>, InvalidKeySize> {
    if key.len() != KEY_SIZE {
        return Err(InvalidKeySize {
            len: key.len(),
            expected: "32",
        });
    }
    Ok(Arc::new(Secretbox {
        cipher: XSalsa20Poly1305::new(key.into()),
    }))
}

impl Transformer for Secretbox {
    fn transform_from_storage<'a>(
        &self,
        data: &'a [u8],
        _authenticated_data: &[u8],
    ) -> Result<(Cow<'a, [u8]>, bool), TransformError> {
        if data.len() < NONCE_SIZE + TAG_SIZE {
            return Err(TransformError::too_short());
        }
        let (nonce, sealed) = data.split_at(NONCE_SIZE);
        let (tag, ciphertext) = sealed.split_at(TAG_SIZE);
        let mut out = ciphertext.to_vec();
        self.cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(nonce),
                b"",
                &mut out,
                Tag::from_slice(tag),
            )
            .map_err(|_| TransformError::new("secretbox: message authentication failed"))?;
        Ok((Cow::Owned(out), false))
    }

    fn transform_to_storage(
        &self,
        data: &[u8],
        _authenticated_data: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        let nonce = random_bytes::<NONCE_SIZE>()?;
        let mut out = Vec::with_capacity(NONCE_SIZE + TAG_SIZE + data.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&[0; TAG_SIZE]);
        out.extend_from_slice(data);
        let tag = self
            .cipher
            .encrypt_in_place_detached(
                Nonce::from_slice(&nonce),
                b"",
                &mut out[NONCE_SIZE + TAG_SIZE..],
            )
            .map_err(|_| TransformError::new("secretbox: encryption failed"))?;
        out[NONCE_SIZE..NONCE_SIZE + TAG_SIZE].copy_from_slice(&tag);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::testutil::{
        assert_round_trips, assert_tampering_fails, assert_truncations_fail, hex, key,
    };

    #[test]
    fn round_trips() {
        assert_round_trips(new(&key(32, 1)).unwrap().as_ref(), "secretbox");
    }

    #[test]
    fn layout_is_nonce_tag_ciphertext() {
        let t = new(&key(32, 2)).unwrap();
        for len in [0, 1, 16, 17, 1024] {
            let stored = t.transform_to_storage(&vec![b'x'; len], b"").unwrap();
            assert_eq!(stored.len(), NONCE_SIZE + TAG_SIZE + len, "len {len}");
        }
        let a = t.transform_to_storage(b"same", b"").unwrap();
        let b = t.transform_to_storage(b"same", b"").unwrap();
        assert_ne!(a[..NONCE_SIZE], b[..NONCE_SIZE]);
    }

    #[test]
    fn reads_go_secretbox_seal_output() {
        // x/crypto/nacl/secretbox's TestSecretBox: key 0x01…, nonce 0x02…,
        // 64 bytes of 0x03, sealed by NaCl's C implementation. kube-apiserver
        // stores the nonce in front of it.
        let key = [1u8; 32];
        let nonce = [2u8; NONCE_SIZE];
        let sealed = hex(concat!(
            "8442bc313f4626f1359e3b50122b6ce6fe66ddfe7d39d14e637eb4fd5b45bead",
            "ab55198df6ab5368439792a23c87db70acb6156dc5ef957ac04f6276cf6093b8",
            "4be77ff0849cc33e34b7254d5a8f65ad"
        ));
        let stored = [nonce.as_slice(), &sealed].concat();
        let (out, stale) = new(&key)
            .unwrap()
            .transform_from_storage(&stored, b"")
            .unwrap();
        assert_eq!(out.as_ref(), [3u8; 64]);
        assert!(!stale);

        // And writing lays the box out the same way: tag first.
        let t = Secretbox {
            cipher: XSalsa20Poly1305::new((&key).into()),
        };
        let mut body = [3u8; 64];
        let tag = t
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), b"", &mut body)
            .unwrap();
        assert_eq!([tag.as_slice(), &body].concat(), sealed);
    }

    #[test]
    fn values_read_under_any_etcd_key() {
        let t = new(&key(32, 3)).unwrap();
        let stored = t.transform_to_storage(b"payload", b"/registry/a").unwrap();
        let (out, _) = t.transform_from_storage(&stored, b"/registry/b").unwrap();
        assert_eq!(out.as_ref(), b"payload");
    }

    #[test]
    fn tampering_truncation_and_wrong_keys_fail() {
        let t = new(&key(32, 4)).unwrap();
        assert_tampering_fails(t.as_ref(), b"");
        let stored = t.transform_to_storage(b"0123456789", b"").unwrap();
        let lens = [0, 1, 23, 24, 25, 39, 40, stored.len() - 1];
        assert_truncations_fail(t.as_ref(), &stored, b"", &lens);
        let other = new(&key(32, 5)).unwrap();
        let err = other.transform_from_storage(&stored, b"").unwrap_err();
        assert_eq!(err.0, "secretbox: message authentication failed");
    }

    #[test]
    fn rejects_other_key_sizes() {
        for len in [0, 16, 24, 31, 33] {
            let err = new(&vec![1; len]).err().unwrap();
            assert_eq!(
                err.to_string(),
                format!("key size {len} is invalid, must be 32 bytes")
            );
        }
    }
}
