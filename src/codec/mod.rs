//! `runtime.Codec` and `APIObjectVersioner`: turning stored bytes into the
//! object a caller sees, stamped with its resourceVersion, and back.

mod envelope;
mod gojson;
mod json;
mod kubejson;
mod marshal;
mod protobuf;
pub mod quantity;
mod schema;
mod time;
pub mod versioner;

use std::fmt;

use crate::config::CodecKind;
use crate::storage::{Code, Object, StorageError};

pub(crate) use json::describe as json_error;

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
        self.decode_reporting_unknown(data, resource_version)
            .map(|(object, _)| object)
    }

    /// `decode`, also saying where the stored object holds fields the schema
    /// does not know, which the decoded object leaves out (`path#number`).
    pub fn decode_reporting_unknown(
        &self,
        data: &[u8],
        resource_version: i64,
    ) -> Result<(Vec<u8>, Vec<String>), CodecError> {
        match self.0 {
            CodecKind::Json => Ok((json::decode(data, resource_version)?, Vec::new())),
            CodecKind::Raw => Ok((data.to_vec(), Vec::new())),
            CodecKind::Protobuf => protobuf::decode(data, resource_version),
        }
    }

    /// Encodes a caller's JSON object into the bytes kube-apiserver stores for
    /// it: `json` its JSON serializer's output, `protobuf` its protobuf form;
    /// `raw` keeps anything.
    pub fn encode(&self, object: &[u8]) -> Result<Vec<u8>, CodecError> {
        match self.0 {
            CodecKind::Json => gojson::encode(object),
            CodecKind::Raw => Ok(object.to_vec()),
            CodecKind::Protobuf => protobuf::encode(object),
        }
    }

    /// Decodes transformed (plaintext) bytes of `key` into the caller's object.
    pub fn decode_object(
        &self,
        key: &str,
        plain: &[u8],
        resource_version: i64,
        stale: bool,
    ) -> crate::storage::Result<Object> {
        let (data, unknown_fields) = self
            .decode_reporting_unknown(plain, resource_version)
            .map_err(|e| match e {
                CodecError::Corrupt(reason) => StorageError::corrupt(key, reason),
                CodecError::Unsupported(reason) => {
                    StorageError::with_key(Code::Unsupported, key, 0, &reason)
                }
            })?;
        if !unknown_fields.is_empty() {
            tracing::warn!(
                key,
                fields = %unknown_fields.join(", "),
                "the stored object has fields this library's schema does not know; \
                 they are left out of the object read, and writes to it are refused"
            );
        }
        Ok(Object {
            data,
            resource_version,
            stale,
            unknown_fields,
        })
    }

    /// A caller's object in the form stored at `key` (before any transformer):
    /// derived fields cleared, then encoded.
    pub fn encode_object(&self, key: &str, object: &[u8]) -> crate::storage::Result<Vec<u8>> {
        let prepared = if self.is_raw() {
            object.to_vec()
        } else {
            versioner::prepare_for_storage(object)?
        };
        // What kube-apiserver stores: JSON as given, or protobuf in its envelope.
        self.encode(&prepared)
            .map_err(|e| StorageError::with_key(Code::InvalidObj, key, 0, &e.to_string()))
    }

    /// Go's `Create` check: an object to be created must not carry a resourceVersion.
    pub fn check_create(&self, key: &str, object: &[u8]) -> crate::storage::Result<()> {
        if self.is_raw() {
            return Ok(());
        }
        versioner::check_unset_resource_version(object)
            .map_err(|e| StorageError::with_key(e.code, key, 0, &e.message))
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
    fn json_encodes_as_go_and_raw_as_given() {
        let object = br#"{"kind":"Widget", "data":{}}"#;
        assert_eq!(
            Codec::new(CodecKind::Json).encode(object).unwrap(),
            b"{\"data\":{},\"kind\":\"Widget\"}\n"
        );
        assert!(matches!(
            Codec::new(CodecKind::Json).encode(b"[1]"),
            Err(CodecError::Corrupt(_))
        ));
        assert_eq!(Codec::new(CodecKind::Raw).encode(b"[1").unwrap(), b"[1");
    }
}
