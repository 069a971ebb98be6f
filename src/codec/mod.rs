//! `runtime.Codec` and `APIObjectVersioner`: turning stored bytes into the
//! object a caller sees, stamped with its resourceVersion.

mod json;
pub mod versioner;

use crate::config::CodecKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Codec(CodecKind);

impl Codec {
    pub fn new(kind: CodecKind) -> Self {
        Codec(kind)
    }

    /// Decodes transformed bytes; the error says why they are not an object.
    pub fn decode(&self, data: &[u8], resource_version: i64) -> Result<Vec<u8>, String> {
        match self.0 {
            CodecKind::Json => json::decode(data, resource_version),
            CodecKind::Raw => Ok(data.to_vec()),
        }
    }

    /// Whether objects are opaque bytes (no resourceVersion handling, no lists).
    pub fn is_raw(&self) -> bool {
        self.0 == CodecKind::Raw
    }
}
