//! `storage/value`: transformers between what callers see and what etcd stores
//! (encryption at rest). The authenticated data is always the full etcd key.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use rand::rngs::OsRng;
use rand::RngCore;

use crate::storage::StorageError;

pub mod aescbc;
pub mod aesgcm;
pub mod config;
pub(crate) mod envelope;
pub mod identity;
pub mod prefix;
pub mod secretbox;

#[cfg(test)]
mod testutil;

/// Why stored bytes could not be transformed. Never contains key material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransformError(pub String, pub Cause);

/// What kind of failure a `TransformError` is, for the caller's error code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Cause {
    /// The bytes (or the key) are wrong: a corrupt object on reads.
    #[default]
    Data,
    /// A KMS plugin could not be reached.
    Unreachable,
    /// A KMS plugin did not answer within its timeout.
    Timeout,
}

impl fmt::Display for TransformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TransformError {
    fn new(message: impl Into<String>) -> Self {
        TransformError(message.into(), Cause::Data)
    }

    /// Go's transformers all report a value too short for its nonce this way.
    fn too_short() -> Self {
        Self::new("the stored data was shorter than the required size")
    }
}

/// Go's `value.Transformer`. Ciphers implement the synchronous forms; the
/// store calls `read` and `write`, which envelope (KMS) transformers implement
/// to ask their plugin, and whose defaults run the synchronous forms.
#[async_trait]
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
        _observe: &mut (dyn FnMut(Option<usize>, Outcome) + Send),
    ) -> Result<(Cow<'a, [u8]>, bool), TransformError> {
        self.transform_from_storage(data, authenticated_data)
    }

    /// `transform_from_storage_observed` as the store runs it: it may wait
    /// for a KMS plugin.
    async fn read<'a>(
        &self,
        data: &'a [u8],
        authenticated_data: &[u8],
        observe: &mut (dyn FnMut(Option<usize>, Outcome) + Send),
    ) -> Result<(Cow<'a, [u8]>, bool), TransformError> {
        self.transform_from_storage_observed(data, authenticated_data, observe)
    }

    /// Whether the KMS plugins this transformer asks are healthy, as
    /// kube-apiserver's `/healthz/kms-providers`; naming the provider that is not.
    async fn health(&self) -> Result<(), TransformError> {
        Ok(())
    }

    /// Asks the KMS plugins for their current key now (a re-encryption after
    /// a rotation must not wait for the next periodic check).
    async fn refresh(&self) -> Result<(), TransformError> {
        Ok(())
    }

    /// The transformer's own metrics, for the store to register.
    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        Vec::new()
    }

    /// `transform_to_storage` as the store runs it: it may wait for a KMS plugin.
    async fn write(
        &self,
        data: &[u8],
        authenticated_data: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        self.transform_to_storage(data, authenticated_data)
    }
}

/// The result of a transformer's future that needs no waiting (its work is
/// all local, or a KMS data key is already cached), for the synchronous forms
/// of transformers whose work is async; an error when it would have to wait.
pub(crate) fn without_waiting<T>(
    future: impl std::future::Future<Output = Result<T, TransformError>>,
) -> Result<T, TransformError> {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(out) => out,
        std::task::Poll::Pending => Err(TransformError::new(
            "this value needs an answer from a KMS plugin: use the async `read` and `write`",
        )),
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
