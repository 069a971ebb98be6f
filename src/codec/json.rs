//! The JSON codec.

use serde_json::{Map, Value};

use super::CodecError;

/// Parses bytes that must be a JSON object.
pub fn parse(data: &[u8]) -> Result<Map<String, Value>, CodecError> {
    match serde_json::from_slice(data) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(CodecError::Corrupt("JSON value is not an object".into())),
        Err(e) => Err(CodecError::Corrupt(format!("unable to parse JSON: {e}"))),
    }
}

/// Parses an object and sets its resourceVersion, see [`stamp`].
pub fn decode(data: &[u8], resource_version: i64) -> Result<Vec<u8>, CodecError> {
    stamp(parse(data)?, resource_version)
}

/// Sets `metadata.resourceVersion` to the decimal revision, creating
/// `metadata` when absent, as `APIObjectVersioner.UpdateObject`, and serializes.
pub fn stamp(mut object: Map<String, Value>, resource_version: i64) -> Result<Vec<u8>, CodecError> {
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(metadata) = metadata else {
        return Err(CodecError::Corrupt(
            "the object's metadata is not an object".into(),
        ));
    };
    metadata.insert(
        "resourceVersion".into(),
        Value::String(resource_version.to_string()),
    );
    serde_json::to_vec(&object)
        .map_err(|e| CodecError::Corrupt(format!("unable to encode object: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(input: &str) -> Result<Value, CodecError> {
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
            assert!(matches!(run(bad), Err(CodecError::Corrupt(_))), "{bad:?}");
        }
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::fuzz_config())]

        #[test]
        fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..256), rv in any::<i64>()) {
            let _ = decode(&data, rv);
        }

        #[test]
        fn objects_are_stamped(name in "[a-z0-9-]{0,20}", extra in ".{0,30}", rv in 1i64..i64::MAX) {
            let input = serde_json::json!({"metadata": {"name": name, "resourceVersion": extra}, "x": extra});
            let out: Value = serde_json::from_slice(&decode(input.to_string().as_bytes(), rv).unwrap()).unwrap();
            prop_assert_eq!(&out["metadata"]["resourceVersion"], &Value::String(rv.to_string()));
            prop_assert_eq!(&out["metadata"]["name"], &input["metadata"]["name"]);
            prop_assert_eq!(&out["x"], &input["x"]);
        }
    }
}
