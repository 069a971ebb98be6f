//! The envelope of kube-apiserver's protobuf storage format: the magic
//! `k8s\0`, then a `runtime.Unknown` whose `raw` is the typed object.

use prost_reflect::prost::Message;
use prost_reflect::{DynamicMessage, Value};

use super::{schema, CodecError};

/// The prefix of every protobuf-encoded object.
pub const MAGIC: &[u8] = b"k8s\0";

/// The content type kube-apiserver leaves empty: `raw` is protobuf.
const PROTOBUF_CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// A decoded envelope: the object's type and its protobuf bytes.
pub struct Envelope {
    pub api_version: String,
    pub kind: String,
    pub raw: Vec<u8>,
}

/// Unwraps bytes that start with [`MAGIC`].
pub fn open(data: &[u8]) -> Result<Envelope, CodecError> {
    let body = data.strip_prefix(MAGIC).ok_or_else(|| {
        CodecError::Corrupt("protobuf data does not start with the k8s\\0 prefix".into())
    })?;
    let unknown = DynamicMessage::decode(schema::unknown(), body)
        .map_err(|e| CodecError::Corrupt(format!("unable to decode the protobuf envelope: {e}")))?;
    let text = |message: &DynamicMessage, name: &str| match message.get_field_by_name(name) {
        Some(value) => value.as_str().unwrap_or_default().to_string(),
        None => String::new(),
    };
    let type_meta = match unknown.get_field_by_name("typeMeta") {
        Some(value) => value.as_message().cloned(),
        None => None,
    };
    let (api_version, kind) = match &type_meta {
        Some(meta) => (text(meta, "apiVersion"), text(meta, "kind")),
        None => Default::default(),
    };
    let content_encoding = text(&unknown, "contentEncoding");
    if !content_encoding.is_empty() {
        return Err(CodecError::Unsupported(format!(
            "content encoding {content_encoding:?} of a stored object is not supported"
        )));
    }
    let content_type = text(&unknown, "contentType");
    if !content_type.is_empty() && content_type != PROTOBUF_CONTENT_TYPE {
        return Err(CodecError::Unsupported(format!(
            "content type {content_type:?} of a stored object is not supported"
        )));
    }
    if kind.is_empty() {
        return Err(CodecError::Corrupt(
            "the protobuf envelope names no kind".into(),
        ));
    }
    let raw = match unknown.get_field_by_name("raw") {
        Some(value) => value.as_bytes().map(|b| b.to_vec()).unwrap_or_default(),
        None => Vec::new(),
    };
    Ok(Envelope {
        api_version,
        kind,
        raw,
    })
}

/// Wraps a typed object as kube-apiserver does: every envelope field written,
/// `contentEncoding` and `contentType` empty.
pub fn seal(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let descriptor = schema::unknown();
    let mut unknown = DynamicMessage::new(descriptor.clone());
    let type_meta_field = descriptor
        .get_field_by_name("typeMeta")
        .expect("runtime.Unknown has typeMeta");
    let prost_reflect::Kind::Message(type_meta_descriptor) = type_meta_field.kind() else {
        unreachable!("typeMeta is a message");
    };
    let mut type_meta = DynamicMessage::new(type_meta_descriptor);
    type_meta.set_field_by_name("apiVersion", Value::String(api_version.into()));
    type_meta.set_field_by_name("kind", Value::String(kind.into()));
    unknown.set_field(&type_meta_field, Value::Message(type_meta));
    unknown.set_field_by_name("raw", Value::Bytes(raw.into()));
    unknown.set_field_by_name("contentEncoding", Value::String(String::new()));
    unknown.set_field_by_name("contentType", Value::String(String::new()));
    [MAGIC, &unknown.encode_to_vec()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_as_kube_apiserver() {
        // The bytes kube-apiserver writes around an empty object.
        let sealed = seal("v1", "Secret", vec![]);
        let expected = b"k8s\0\x0a\x0c\x0a\x02v1\x12\x06Secret\x12\x00\x1a\x00\x22\x00";
        assert_eq!(sealed, expected);
        let opened = open(&sealed).unwrap();
        assert_eq!(
            (opened.api_version.as_str(), opened.kind.as_str()),
            ("v1", "Secret")
        );
        assert!(opened.raw.is_empty());
    }

    #[test]
    fn rejects_other_encodings() {
        let mut unknown = DynamicMessage::new(schema::unknown());
        unknown.set_field_by_name("contentType", Value::String("application/json".into()));
        let data = [MAGIC, &unknown.encode_to_vec()].concat();
        assert!(
            matches!(open(&data), Err(CodecError::Unsupported(m)) if m.contains("application/json"))
        );
        unknown.set_field_by_name("contentType", Value::String(String::new()));
        unknown.set_field_by_name("contentEncoding", Value::String("gzip".into()));
        let data = [MAGIC, &unknown.encode_to_vec()].concat();
        assert!(matches!(open(&data), Err(CodecError::Unsupported(m)) if m.contains("gzip")));
    }

    #[test]
    fn rejects_broken_envelopes() {
        for bad in [
            &b"k8s"[..],
            b"k8s\0",
            b"k8s\0\x0a",
            b"k8s\0\x0a\x05\x0a",
            b"k8s\0\xff\xff",
        ] {
            assert!(matches!(open(bad), Err(CodecError::Corrupt(_))), "{bad:?}");
        }
    }
}
