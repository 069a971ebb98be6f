//! Go's `aes.NewCBCTransformer`: a random 16-byte IV followed by the AES-CBC
//! ciphertext of the PKCS#7-padded value. Nothing authenticates the ciphertext
//! or binds it to its etcd key.

use std::borrow::Cow;
use std::sync::Arc;

use aes::cipher::block_padding::{NoPadding, Pkcs7};
use aes::cipher::consts::U16;
use aes::cipher::{
    BlockCipher, BlockDecrypt, BlockDecryptMut, BlockEncrypt, BlockEncryptMut, InnerIvInit, KeyInit,
};
use aes::{Aes128, Aes192, Aes256};

use super::{random_bytes, InvalidKeySize, TransformError, Transformer, AES_KEY_SIZES};

const BLOCK_SIZE: usize = 16;

/// The AES-CBC transformer for one key; `C` is AES-128, -192 or -256.
struct Cbc<C> {
    cipher: C,
}

/// An AES-CBC transformer for a 16, 24 or 32-byte key.
pub fn new(key: &[u8]) -> Result<Arc<dyn Transformer>, InvalidKeySize> {
    Ok(match key.len() {
        16 => Arc::new(Cbc::<Aes128>::with_key(key)),
        24 => Arc::new(Cbc::<Aes192>::with_key(key)),
        32 => Arc::new(Cbc::<Aes256>::with_key(key)),
        len => {
            return Err(InvalidKeySize {
                len,
                expected: AES_KEY_SIZES,
            })
        }
    })
}

impl<C: KeyInit> Cbc<C> {
    /// `key` must have `C`'s key size; [`new`] checks it.
    fn with_key(key: &[u8]) -> Self {
        Cbc {
            cipher: C::new(key.into()),
        }
    }
}

impl<C> Transformer for Cbc<C>
where
    C: BlockCipher<BlockSize = U16> + BlockEncrypt + BlockDecrypt + Send + Sync,
{
    fn transform_from_storage<'a>(
        &self,
        data: &'a [u8],
        _authenticated_data: &[u8],
    ) -> Result<(Cow<'a, [u8]>, bool), TransformError> {
        // An empty ciphertext cannot be valid: padding always adds a block.
        if data.len() < 2 * BLOCK_SIZE {
            return Err(TransformError::too_short());
        }
        let (iv, ciphertext) = data.split_at(BLOCK_SIZE);
        let mut out = cbc::Decryptor::<&C>::inner_iv_init(&self.cipher, iv.into())
            .decrypt_padded_vec_mut::<NoPadding>(ciphertext)
            .map_err(|_| {
                TransformError::new("the stored data is not a multiple of the block size")
            })?;
        let len = unpad(&out)?;
        out.truncate(len);
        Ok((Cow::Owned(out), false))
    }

    fn transform_to_storage(
        &self,
        data: &[u8],
        _authenticated_data: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        let iv = random_bytes::<BLOCK_SIZE>()?;
        let ciphertext = cbc::Encryptor::<&C>::inner_iv_init(&self.cipher, (&iv).into())
            .encrypt_padded_vec_mut::<Pkcs7>(data);
        let mut out = Vec::with_capacity(BLOCK_SIZE + ciphertext.len());
        out.extend_from_slice(&iv);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }
}

/// The plaintext length once PKCS#7 padding is checked and removed. As Go's
/// reader, a pad may span more than one block as long as every byte matches.
fn unpad(plain: &[u8]) -> Result<usize, TransformError> {
    let pad = plain.last().copied().unwrap_or(0) as usize;
    if pad == 0 || pad > plain.len() {
        return Err(TransformError::new(
            "invalid PKCS7 data (empty or not padded)",
        ));
    }
    let len = plain.len() - pad;
    if plain[len..].iter().any(|&b| b as usize != pad) {
        return Err(TransformError::new("invalid padding on input"));
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::testutil::{assert_round_trips, assert_truncations_fail, hex, key};
    use aes::cipher::block_padding::Padding;

    /// Encrypts under a fixed IV with the given padding, so a test controls
    /// every byte of the stored value.
    fn seal<C, P>(t: &Cbc<C>, plain: &[u8]) -> Vec<u8>
    where
        C: BlockCipher<BlockSize = U16> + BlockEncrypt,
        P: Padding<U16>,
    {
        let iv = [9u8; BLOCK_SIZE];
        let ct = cbc::Encryptor::<&C>::inner_iv_init(&t.cipher, (&iv).into())
            .encrypt_padded_vec_mut::<P>(plain);
        [iv.as_slice(), &ct].concat()
    }

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
    fn layout_is_iv_then_always_padded_blocks() {
        let t = new(&key(32, 2)).unwrap();
        for (len, padded) in [
            (0, 16),
            (1, 16),
            (15, 16),
            (16, 32),
            (17, 32),
            (32, 48),
            (1024, 1040),
        ] {
            let stored = t.transform_to_storage(&vec![b'x'; len], b"").unwrap();
            assert_eq!(stored.len(), BLOCK_SIZE + padded, "len {len}");
        }
        // A fresh IV each time: equal plaintexts never give equal ciphertexts.
        let a = t.transform_to_storage(b"same", b"").unwrap();
        let b = t.transform_to_storage(b"same", b"").unwrap();
        assert_ne!(a[..BLOCK_SIZE], b[..BLOCK_SIZE]);
        assert_ne!(a, b);
    }

    #[test]
    fn reads_a_known_answer() {
        // SP 800-38A F.2.5 (CBC-AES256), first block, followed by the padding
        // block a full-block plaintext always gets: E(0x10 × 16 ⊕ C1).
        let key = hex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
        let iv = hex("000102030405060708090a0b0c0d0e0f");
        let c1 = hex("f58c4c04d6e5f1ba779eabfb5f7bfbd6");
        let mut pad = [0x10u8; 16];
        pad.iter_mut().zip(&c1).for_each(|(p, c)| *p ^= c);
        let mut c2 = pad.into();
        Aes256::new(key.as_slice().into()).encrypt_block(&mut c2);
        let stored = [iv.as_slice(), &c1, &c2].concat();

        let (out, stale) = new(&key)
            .unwrap()
            .transform_from_storage(&stored, b"")
            .unwrap();
        assert_eq!(
            out.as_ref(),
            hex("6bc1bee22e409f96e93d7e117393172a").as_slice()
        );
        assert!(!stale);
    }

    #[test]
    fn values_read_under_any_etcd_key() {
        // No authenticated data, as kube-apiserver: a copied value still reads.
        let t = new(&key(16, 3)).unwrap();
        let stored = t.transform_to_storage(b"payload", b"/registry/a").unwrap();
        let (out, _) = t.transform_from_storage(&stored, b"/registry/b").unwrap();
        assert_eq!(out.as_ref(), b"payload");
    }

    #[test]
    fn truncated_values_fail() {
        let t = new(&key(24, 4)).unwrap();
        let stored = t.transform_to_storage(&[7u8; 40], b"").unwrap();
        assert_eq!(stored.len(), 64);
        assert_truncations_fail(t.as_ref(), &stored, b"", &[0, 1, 15, 16, 17, 31, 33, 63]);
    }

    #[test]
    fn bad_padding_fails() {
        let t = Cbc::<Aes128>::with_key(&key(16, 5));
        let stored = |plain: &[u8]| seal::<_, NoPadding>(&t, plain);
        let mut zero = [1u8; 16];
        zero[15] = 0;
        let mut past_the_start = [33u8; 32];
        past_the_start[0] = 1;
        let mut mismatched = [3u8; 16];
        mismatched[13] = 4;
        for (name, plain, message) in [
            (
                "zero",
                &zero[..],
                "invalid PKCS7 data (empty or not padded)",
            ),
            (
                "past the start",
                &past_the_start[..],
                "invalid PKCS7 data (empty or not padded)",
            ),
            ("mismatched", &mismatched[..], "invalid padding on input"),
        ] {
            let err = t.transform_from_storage(&stored(plain), b"").unwrap_err();
            assert_eq!(err.0, message, "{name}");
        }
        // Go's reader takes a pad spanning two blocks; so does this one.
        let two_blocks = stored(&[20u8; 32]);
        let (out, _) = t.transform_from_storage(&two_blocks, b"").unwrap();
        assert_eq!(out.as_ref(), [20u8; 12]);
    }

    #[test]
    fn tampering_and_wrong_keys_never_give_the_plaintext() {
        let t = new(&key(32, 6)).unwrap();
        let plain = b"some secret value"; // 17 bytes: one full block, one padded
        let stored = t.transform_to_storage(plain, b"").unwrap();
        for i in 0..stored.len() {
            let mut bad = stored.clone();
            bad[i] ^= 0x80;
            if let Ok((out, _)) = t.transform_from_storage(&bad, b"") {
                assert_ne!(out.as_ref(), plain, "byte {i}");
            }
        }
        // The last byte of C1 feeds the pad length: 0x0f becomes 0x8f.
        let mut bad = stored.clone();
        bad[2 * BLOCK_SIZE - 1] ^= 0x80;
        assert!(t.transform_from_storage(&bad, b"").is_err());
    }

    #[test]
    fn wrong_key_fails() {
        // A fixed IV keeps this deterministic: under a wrong key the last
        // block decrypts to noise whose padding is checked.
        let stored = seal::<_, Pkcs7>(&Cbc::<Aes256>::with_key(&key(32, 6)), b"some secret value");
        let err = new(&key(32, 7))
            .unwrap()
            .transform_from_storage(&stored, b"")
            .unwrap_err();
        assert!(err.0.contains("pad") || err.0.contains("PKCS7"), "{err}");
    }

    #[test]
    fn rejects_other_key_sizes() {
        for len in [0, 8, 15, 17, 31, 33, 64] {
            let err = new(&vec![0; len]).err().unwrap();
            assert_eq!(
                err.to_string(),
                format!("key size {len} is invalid, must be 16, 24 or 32 bytes")
            );
        }
    }
}
