//! `storage/value`: transformers between what callers see and what etcd stores
//! (encryption at rest). The authenticated data is always the full etcd key.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

pub mod identity;

/// Why stored bytes could not be transformed. Never contains key material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransformError(pub String);

impl fmt::Display for TransformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
}

/// The transformer a store uses when its config names none.
pub fn identity() -> Arc<dyn Transformer> {
    Arc::new(identity::Identity)
}

pub mod config;

/// The transformer a config describes; `None` is identity.
pub fn from_config(
    cfg: Option<&config::TransformerConfig>,
) -> Result<Arc<dyn Transformer>, crate::storage::StorageError> {
    match cfg {
        None => Ok(identity()),
        Some(_) => Err(crate::storage::StorageError::unsupported(
            "transformers are not supported yet",
        )),
    }
}
