//! `storage/value`: transformers between what callers see and what etcd stores
//! (encryption at rest). The authenticated data is always the full etcd key.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use rand::rngs::OsRng;
use rand::RngCore;

use crate::storage::StorageError;

pub mod aescbc;
pub mod aesgcm;
pub mod config;
pub mod identity;
pub mod prefix;
pub mod secretbox;

#[cfg(test)]
mod testutil;

/// Why stored bytes could not be transformed. Never contains key material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransformError(pub String);

impl fmt::Display for TransformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TransformError {
    fn new(message: impl Into<String>) -> Self {
        TransformError(message.into())
    }

    /// Go's transformers all report a value too short for its nonce this way.
    fn too_short() -> Self {
        Self::new("the stored data was shorter than the required size")
    }
}

/// Go's `value.Transformer`.
pub trait Transformer: Send + Sync {
    /// Stored bytes to plaintext, and whether the value is stale (was not written
    /// by the transformer new writes use, so it should be rewritten).
    fn transform_from_storage<'a>(
        &self,
        data: &'a [u8],
        authenticated_data: &[u8],
    ) -> Result<(Cow<'a, [u8]>, bool), TransformError>;

    /// Plaintext to the bytes to store.
    fn transform_to_storage(
        &self,
        data: &[u8],
        authenticated_data: &[u8],
    ) -> Result<Vec<u8>, TransformError>;

    /// The prefixes of the providers this transformer chooses between, in
    /// order (the first writes): kube-apiserver's `transformer_prefix` metric
    /// label. Empty for a transformer that is not a provider list.
    fn provider_prefixes(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }

    /// `transform_from_storage`, telling `observe` what each provider that
    /// tried the value made of it (by its index in `provider_prefixes`), or
    /// that no provider's prefix matched (`None`), as Go's `RecordTransformation`.
    fn transform_from_storage_observed<'a>(
        &self,
        data: &'a [u8],
        authenticated_data: &[u8],
        _observe: &mut dyn FnMut(Option<usize>, Outcome),
    ) -> Result<(Cow<'a, [u8]>, bool), TransformError> {
        self.transform_from_storage(data, authenticated_data)
    }
}

/// What one provider made of a stored value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Read { stale: bool },
    Failed,
}

/// The transformer a store uses when its config names none.
pub fn identity() -> Arc<dyn Transformer> {
    Arc::new(identity::Identity)
}

/// The transformer a store's config asks for: identity when there is none.
pub fn from_config(
    cfg: Option<&config::TransformerConfig>,
) -> Result<Arc<dyn Transformer>, StorageError> {
    match cfg {
        None => Ok(identity()),
        Some(cfg) => cfg.build(),
    }
}

/// The key lengths AES takes, as kube-apiserver's validation lists them.
const AES_KEY_SIZES: &str = "16, 24 or 32";

/// A key whose length the cipher does not take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidKeySize {
    /// The length that was given, in bytes.
    pub len: usize,
    /// The lengths the cipher takes, for the message ("16, 24 or 32").
    pub expected: &'static str,
}

impl fmt::Display for InvalidKeySize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "key size {} is invalid, must be {} bytes",
            self.len, self.expected
        )
    }
}

impl std::error::Error for InvalidKeySize {}

/// Fills a new nonce or IV from the operating system's generator, as Go's
/// `crypto/rand`: a nonce must never repeat under one key.
fn random_bytes<const N: usize>() -> Result<[u8; N], TransformError> {
    let mut out = [0u8; N];
    OsRng
        .try_fill_bytes(&mut out)
        .map_err(|_| TransformError::new("unable to read sufficient random bytes"))?;
    Ok(out)
}
