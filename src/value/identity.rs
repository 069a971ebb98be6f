//! The identity transformer: stores plaintext.

use std::borrow::Cow;

use super::{TransformError, Transformer};

/// The prefix every encrypted value starts with.
pub const ENCRYPTED_PREFIX: &[u8] = b"k8s:enc:";

/// Go's `identity.NewEncryptCheckTransformer`: plaintext passes through, but
/// encrypted data is refused rather than handed back as if it were plaintext.
pub struct Identity;

impl Transformer for Identity {
    fn transform_from_storage<'a>(
        &self,
        data: &'a [u8],
        _authenticated_data: &[u8],
    ) -> Result<(Cow<'a, [u8]>, bool), TransformError> {
        if data.starts_with(ENCRYPTED_PREFIX) {
            return Err(TransformError::new(
                "identity transformer tried to read encrypted data",
            ));
        }
        Ok((Cow::Borrowed(data), false))
    }

    fn transform_to_storage(
        &self,
        data: &[u8],
        _authenticated_data: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        Ok(data.to_vec())
    }
}
