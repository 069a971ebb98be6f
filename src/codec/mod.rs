//! `runtime.Codec` and `APIObjectVersioner`: turning stored bytes into the
//! object a caller sees, stamped with its resourceVersion, and back.

mod envelope;
mod json;
mod kubejson;
mod protobuf;
mod schema;
mod time;
pub mod versioner;

use std::fmt;

use crate::config::CodecKind;

/// Why bytes could not be decoded or an object encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// Malformed data: stored bytes that are not an object (the store reports
    /// `Code::CorruptObj`), or on encode, an object that does not fit its type.
    Corrupt(String),
    /// Well-formed data of a type or format this codec does not handle, such as
    /// an unknown apiVersion/kind (`Code::Unsupported`).
    Unsupported(String),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Corrupt(m) | CodecError::Unsupported(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CodecError {}

/// The codec a config selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Codec(CodecKind);

impl Codec {
    pub fn new(kind: CodecKind) -> Self {
        Codec(kind)
    }

    /// Decodes transformed bytes into the caller's form of the object, with
    /// `metadata.resourceVersion` set to `resource_version` (except `raw`).
    pub fn decode(&self, data: &[u8], resource_version: i64) -> Result<Vec<u8>, CodecError> {
        match self.0 {
            CodecKind::Json => json::decode(data, resource_version),
            CodecKind::Raw => Ok(data.to_vec()),
            CodecKind::Protobuf => protobuf::decode(data, resource_version),
        }
    }

    /// Encodes a caller's JSON object into the bytes to store: `json` checks it
    /// is an object and keeps it as given, `raw` keeps anything, `protobuf`
    /// writes kube-apiserver's protobuf form.
    pub fn encode(&self, object: &[u8]) -> Result<Vec<u8>, CodecError> {
        match self.0 {
            CodecKind::Json => json::parse(object).map(|_| object.to_vec()),
            CodecKind::Raw => Ok(object.to_vec()),
            CodecKind::Protobuf => protobuf::encode(object),
        }
    }

    /// Whether objects are opaque bytes (no resourceVersion handling, no lists).
    pub fn is_raw(&self) -> bool {
        self.0 == CodecKind::Raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_raw_encode_as_given() {
        let object = br#"{"kind":"ConfigMap", "data":{}}"#;
        assert_eq!(Codec::new(CodecKind::Json).encode(object).unwrap(), object);
        assert!(matches!(
            Codec::new(CodecKind::Json).encode(b"[1]"),
            Err(CodecError::Corrupt(_))
        ));
        assert_eq!(Codec::new(CodecKind::Raw).encode(b"[1").unwrap(), b"[1");
    }
}
