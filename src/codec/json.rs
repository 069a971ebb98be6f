//! The JSON codec.

use serde_json::{Map, Value};

/// Parses an object and sets `metadata.resourceVersion` to the decimal
/// revision, creating `metadata` when absent, as `APIObjectVersioner.UpdateObject`.
pub fn decode(data: &[u8], resource_version: i64) -> Result<Vec<u8>, String> {
    let mut object: Value =
        serde_json::from_slice(data).map_err(|e| format!("unable to decode stored JSON: {e}"))?;
    let Value::Object(fields) = &mut object else {
        return Err("stored JSON is not an object".into());
    };
    let metadata = fields
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(metadata) = metadata else {
        return Err("stored object's metadata is not an object".into());
    };
    metadata.insert(
        "resourceVersion".into(),
        Value::String(resource_version.to_string()),
    );
    serde_json::to_vec(&object).map_err(|e| format!("unable to encode object: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(input: &str) -> Result<Value, String> {
        decode(input.as_bytes(), 7).map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn stamps_resource_version() {
        assert_eq!(
            run(r#"{"kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"1"}}"#).unwrap(),
            json!({"kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"7"}})
        );
        assert_eq!(
            run(r#"{"a":1}"#).unwrap(),
            json!({"a":1,"metadata":{"resourceVersion":"7"}})
        );
    }

    #[test]
    fn rejects_what_is_not_an_object() {
        for bad in ["", "{", "[1]", "\"s\"", r#"{"metadata":3}"#, "{} x"] {
            assert!(run(bad).is_err(), "{bad:?}");
        }
    }
}
