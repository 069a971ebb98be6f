//! Go's `aes.NewGCMTransformer`: a random 12-byte nonce followed by the AES-GCM
//! ciphertext and its 16-byte tag. The authenticated data is the etcd key, so a
//! value copied to another key does not decrypt.

use std::borrow::Cow;
use std::sync::Arc;

use aes::{Aes128, Aes192, Aes256};
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{AesGcm, Nonce, Tag};

use super::{random_bytes, InvalidKeySize, TransformError, Transformer, AES_KEY_SIZES};

const NONCE_SIZE: usize = 12;
const TAG_SIZE: usize = 16;

/// The AES-GCM transformer for one key; `A` is AES-GCM over AES-128, -192 or -256.
struct Gcm<A> {
    aead: A,
}

/// An AES-GCM transformer for a 16, 24 or 32-byte key.
pub fn new(key: &[u8]) -> Result<Arc<dyn Transformer>, InvalidKeySize> {
    Ok(match key.len() {
        16 => Arc::new(Gcm::<AesGcm<Aes128, U12>>::with_key(key)),
        24 => Arc::new(Gcm::<AesGcm<Aes192, U12>>::with_key(key)),
        32 => Arc::new(Gcm::<AesGcm<Aes256, U12>>::with_key(key)),
        len => {
            return Err(InvalidKeySize {
                len,
                expected: AES_KEY_SIZES,
            })
        }
    })
}

impl<A: KeyInit> Gcm<A> {
    /// `key` must have `A`'s key size; [`new`] checks it.
    fn with_key(key: &[u8]) -> Self {
        Gcm {
            aead: A::new(key.into()),
        }
    }
}

impl<A> Transformer for Gcm<A>
where
    A: AeadInPlace<NonceSize = U12> + Send + Sync,
{
    fn transform_from_storage<'a>(
        &self,
        data: &'a [u8],
        authenticated_data: &[u8],
    ) -> Result<(Cow<'a, [u8]>, bool), TransformError> {
        if data.len() < NONCE_SIZE + TAG_SIZE {
            return Err(TransformError::too_short());
        }
        let (nonce, rest) = data.split_at(NONCE_SIZE);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_SIZE);
        let mut out = ciphertext.to_vec();
        self.aead
            .decrypt_in_place_detached(
                Nonce::from_slice(nonce),
                authenticated_data,
                &mut out,
                Tag::from_slice(tag),
            )
            .map_err(|_| TransformError::new("cipher: message authentication failed"))?;
        Ok((Cow::Owned(out), false))
    }

    fn transform_to_storage(
        &self,
        data: &[u8],
        authenticated_data: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        let nonce = random_bytes::<NONCE_SIZE>()?;
        let mut out = Vec::with_capacity(NONCE_SIZE + data.len() + TAG_SIZE);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(data);
        let tag = self
            .aead
            .encrypt_in_place_detached(
                Nonce::from_slice(&nonce),
                authenticated_data,
                &mut out[NONCE_SIZE..],
            )
            .map_err(|_| TransformError::new("value too large for AES-GCM"))?;
        out.extend_from_slice(&tag);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::testutil::{
        assert_round_trips, assert_tampering_fails, assert_truncations_fail, hex, key,
    };

    const AAD: &[u8] = b"/registry/secrets/default/a";

    #[test]
    fn round_trips_every_key_size() {
        for size in [16, 24, 32] {
            assert_round_trips(
                new(&key(size, 1)).unwrap().as_ref(),
                &format!("aes-{}", size * 8),
            );
        }
    }

    #[test]
    fn layout_is_nonce_ciphertext_tag() {
        let t = new(&key(16, 2)).unwrap();
        for len in [0, 1, 16, 17, 1024] {
            let stored = t.transform_to_storage(&vec![b'x'; len], AAD).unwrap();
            assert_eq!(stored.len(), NONCE_SIZE + len + TAG_SIZE, "len {len}");
        }
        let a = t.transform_to_storage(b"same", AAD).unwrap();
        let b = t.transform_to_storage(b"same", AAD).unwrap();
        assert_ne!(a[..NONCE_SIZE], b[..NONCE_SIZE]);
    }

    #[test]
    fn reads_a_known_answer() {
        // The GCM specification's test case 4 (AES-128, 60 bytes, 20 bytes of
        // authenticated data), stored as nonce ‖ ciphertext ‖ tag.
        let key = hex("feffe9928665731c6d6a8f9467308308");
        let nonce = hex("cafebabefacedbaddecaf888");
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let ct = hex(concat!(
            "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e",
            "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091"
        ));
        let tag = hex("5bc94fbc3221a5db94fae95ae7121a47");
        let plain = hex(concat!(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72",
            "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
        ));
        let stored = [nonce.as_slice(), &ct, &tag].concat();
        let t = new(&key).unwrap();
        let (out, stale) = t.transform_from_storage(&stored, &aad).unwrap();
        assert_eq!(out.as_ref(), plain.as_slice());
        assert!(!stale);
    }

    #[test]
    fn values_do_not_move_between_etcd_keys() {
        let t = new(&key(32, 3)).unwrap();
        let stored = t.transform_to_storage(b"payload", b"/registry/a").unwrap();
        let err = t
            .transform_from_storage(&stored, b"/registry/b")
            .unwrap_err();
        assert_eq!(err.0, "cipher: message authentication failed");
        assert!(t.transform_from_storage(&stored, b"").is_err());
    }

    #[test]
    fn tampering_truncation_and_wrong_keys_fail() {
        for size in [16, 24, 32] {
            let t = new(&key(size, 4)).unwrap();
            assert_tampering_fails(t.as_ref(), AAD);
            let stored = t.transform_to_storage(b"0123456789", AAD).unwrap();
            let lens = [0, 1, 11, 12, 13, 27, stored.len() - 1];
            assert_truncations_fail(t.as_ref(), &stored, AAD, &lens);
            let other = new(&key(size, 5)).unwrap();
            assert!(other.transform_from_storage(&stored, AAD).is_err());
        }
    }

    #[test]
    fn rejects_other_key_sizes() {
        for len in [0, 15, 17, 31, 33] {
            let err = new(&vec![1; len]).err().unwrap();
            assert_eq!(
                err.to_string(),
                format!("key size {len} is invalid, must be 16, 24 or 32 bytes")
            );
        }
    }
}
