//! Placeholder replaced by the EncryptionConfiguration loader.
use serde::Deserialize;
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct TransformerConfig {}
