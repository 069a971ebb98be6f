//! The JSON codec.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::CodecError;

/// Parses bytes that must be a JSON object.
pub fn parse(data: &[u8]) -> Result<Map<String, Value>, CodecError> {
    match serde_json::from_slice(data) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(CodecError::Corrupt("JSON value is not an object".into())),
        Err(e) => Err(unparsable(&e)),
    }
}

/// What is wrong with some JSON, and where, without quoting any of it: serde's
/// own messages quote the values they fail on (`invalid type: string "…"`),
/// and the values are often secrets.
pub fn describe(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "unreadable input",
        Category::Syntax => "syntax error",
        Category::Data => "not a JSON object",
        Category::Eof => "unexpected end of input",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

fn unparsable(e: &serde_json::Error) -> CodecError {
    CodecError::Corrupt(format!("unable to parse JSON: {}", describe(e)))
}

/// Sets the resourceVersion of a stored object, as [`stamp`] does, by splicing
/// it into the stored bytes: one validating pass that builds no tree, keeping
/// the object's member order and number spelling. Objects with a duplicated
/// `metadata` or `resourceVersion` member take the full parse, so the result
/// always has exactly one of each. Like Go's decoder, and unlike a full
/// parse here, a lone UTF-16 surrogate escape is accepted and kept as stored.
pub fn decode(data: &[u8], resource_version: i64) -> Result<Vec<u8>, CodecError> {
    let text = std::str::from_utf8(data).map_err(|e| {
        CodecError::Corrupt(format!(
            "unable to parse JSON: invalid UTF-8 after {} bytes",
            e.valid_up_to()
        ))
    })?;
    let top = Members::scan(text, "metadata").map_err(|e| unparsable(&e))?;
    let edit = match top.found {
        _ if top.duplicate => None,
        None => Some(Edit::Insert {
            at: top.open + 1,
            metadata: true,
            comma: !top.empty,
        }),
        // Go decodes `null` metadata as empty ObjectMeta.
        Some("null") => Some(Edit::Replace {
            at: offset(text, top.found.unwrap_or_default()),
            len: 4,
            metadata: true,
        }),
        Some(metadata) => {
            let meta = Members::scan(metadata, "resourceVersion").map_err(|_| {
                CodecError::Corrupt("the object's metadata is not an object".into())
            })?;
            let start = offset(text, metadata);
            match meta.found {
                _ if meta.duplicate => None,
                Some(old) => Some(Edit::Replace {
                    at: offset(text, old),
                    len: old.len(),
                    metadata: false,
                }),
                None => Some(Edit::Insert {
                    at: start + meta.open + 1,
                    metadata: false,
                    comma: !meta.empty,
                }),
            }
        }
    };
    match edit {
        Some(edit) => {
            let mut object = edit.apply(data, resource_version);
            // Go's encoder ends what it stores with a newline; the object
            // does not include it.
            let end = object.trim_ascii_end().len();
            object.truncate(end);
            Ok(object)
        }
        None => stamp(parse(data)?, resource_version),
    }
}

fn offset(text: &str, part: &str) -> usize {
    part.as_ptr() as usize - text.as_ptr() as usize
}

enum Edit {
    /// Replaces the `len` bytes at `at` (the old value) with the version, or,
    /// with `metadata`, with a `metadata` object holding it.
    Replace {
        at: usize,
        len: usize,
        metadata: bool,
    },
    /// Adds `"resourceVersion"` (inside `"metadata"` when `metadata`) as the
    /// first member of the object whose `{` is just before `at`.
    Insert {
        at: usize,
        metadata: bool,
        comma: bool,
    },
}

impl Edit {
    fn apply(&self, data: &[u8], resource_version: i64) -> Vec<u8> {
        use std::io::Write;
        let (at, len, before, after): (usize, usize, &[u8], &[u8]) = match *self {
            Edit::Replace { at, len, metadata } if metadata => {
                (at, len, b"{\"resourceVersion\":", b"}")
            }
            Edit::Replace { at, len, .. } => (at, len, b"", b""),
            Edit::Insert {
                at,
                metadata,
                comma,
            } => match (metadata, comma) {
                (true, true) => (at, 0, b"\"metadata\":{\"resourceVersion\":", b"},"),
                (true, false) => (at, 0, b"\"metadata\":{\"resourceVersion\":", b"}"),
                (false, true) => (at, 0, b"\"resourceVersion\":", b","),
                (false, false) => (at, 0, b"\"resourceVersion\":", b""),
            },
        };
        let mut out = Vec::with_capacity(data.len() + 48);
        out.extend_from_slice(&data[..at]);
        out.extend_from_slice(before);
        // Writing to a Vec cannot fail.
        let _ = write!(out, "\"{resource_version}\"");
        out.extend_from_slice(after);
        out.extend_from_slice(&data[at + len..]);
        out
    }
}

/// Compares a member name with a wanted one, unescaped but not copied.
struct KeyIs(&'static str);

impl<'de> serde::de::DeserializeSeed<'de> for KeyIs {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<bool, D::Error> {
        de.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for KeyIs {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E>(self, name: &str) -> Result<bool, E> {
        Ok(name == self.0)
    }
}

/// The members of one JSON object, validated without building values: where
/// its `{` is, whether it is empty, and the raw value of one wanted member.
struct Members<'a> {
    open: usize,
    empty: bool,
    found: Option<&'a str>,
    duplicate: bool,
}

impl<'a> Members<'a> {
    fn scan(text: &'a str, wanted: &'static str) -> serde_json::Result<Self> {
        use serde::Deserializer as _;
        let mut de = serde_json::Deserializer::from_str(text);
        let (found, duplicate, empty) = de.deserialize_map(MemberVisitor { wanted })?;
        de.end()?;
        let open = text.len() - text.trim_start().len();
        Ok(Members {
            open,
            empty,
            found: found.map(RawValue::get),
            duplicate,
        })
    }
}

struct MemberVisitor {
    wanted: &'static str,
}

impl<'de> serde::de::Visitor<'de> for MemberVisitor {
    type Value = (Option<&'de RawValue>, bool, bool);

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut found, mut duplicate, mut empty) = (None, false, true);
        while let Some(wanted) = map.next_key_seed(KeyIs(self.wanted))? {
            empty = false;
            let value: &'de RawValue = map.next_value()?;
            if wanted {
                duplicate |= found.replace(value).is_some();
            }
        }
        Ok((found, duplicate, empty))
    }
}

/// Sets `metadata.resourceVersion` to the decimal revision, creating
/// `metadata` when absent, as `APIObjectVersioner.UpdateObject`, and serializes.
pub fn stamp(mut object: Map<String, Value>, resource_version: i64) -> Result<Vec<u8>, CodecError> {
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    // Go decodes `null` metadata as empty ObjectMeta.
    if metadata.is_null() {
        *metadata = Value::Object(Map::new());
    }
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

    /// The splice must mean exactly what the full parse-and-stamp means.
    fn same_as_full_stamp(input: &str) {
        let full: Value =
            serde_json::from_slice(&stamp(parse(input.as_bytes()).unwrap(), 42).unwrap()).unwrap();
        let spliced = decode(input.as_bytes(), 42).unwrap();
        let value: Value = serde_json::from_slice(&spliced).unwrap_or_else(|e| {
            panic!(
                "{input:?} gave invalid JSON {:?}: {e}",
                String::from_utf8_lossy(&spliced)
            )
        });
        assert_eq!(value, full, "{input:?}");
    }

    #[test]
    fn splices_like_a_full_stamp() {
        for input in [
            "{}",
            " { } ",
            r#"{"a":{"metadata":1}}"#,
            r#"{"metadata":{}}"#,
            r#"{"metadata": { } ,"b":[1,{"resourceVersion":"x"}]}"#,
            r#"{"metadata":{"name":"n","resourceVersion":"3"}}"#,
            r#"{"metadata":{"resourceVersion":null,"x":{"resourceVersion":"1"}}}"#,
            r#"{"meta\u0064ata":{"resource\u0056ersion":"9"}}"#,
            r#"{"metadata":{"resourceVersion":"1"},"metadata":{"name":"last"}}"#,
            r#"{"metadata":{"resourceVersion":"1","resourceVersion":"2"}}"#,
            r#"{"metadata":null}"#,
            r#"{"a":1, "metadata" : null ,"b":2}"#,
            r#"{"metadata":null,"metadata":null}"#,
            "{\n \"kind\" : \"Pod\" ,\n \"metadata\" : {\"uid\":\"u\"}\n}",
        ] {
            same_as_full_stamp(input);
        }
    }

    #[test]
    fn splicing_keeps_order_and_numbers() {
        let out = decode(br#"{"z":1.50,"metadata":{"name":"a","resourceVersion":"1"},"a":12345678901234567890123}"#, 8).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"z":1.50,"metadata":{"name":"a","resourceVersion":"8"},"a":12345678901234567890123}"#
        );
        let out = decode(br#"{"kind":"Pod","metadata":{"name":"a"}}"#, 8).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"kind":"Pod","metadata":{"resourceVersion":"8","name":"a"}}"#
        );
    }

    #[test]
    fn keeps_lone_surrogate_escapes_as_go_reads_them() {
        // Go's decoder reads `\ud800` as U+FFFD rather than failing; the
        // stored text is passed on unchanged.
        let out = decode(br#"{"a":"\ud800"}"#, 1).unwrap();
        assert_eq!(out, br#"{"metadata":{"resourceVersion":"1"},"a":"\ud800"}"#);
    }

    #[test]
    fn errors_describe_but_never_quote_the_value() {
        for secret in [
            r#""db-password=hunter2""#,
            r#"["hunter2"]"#,
            r#"{"a":"hunter2" x}"#,
            r#"{"metadata":"hunter2"}"#,
            r#"{"metadata":{"resourceVersion":"1","hunter2":}}"#,
        ] {
            let Err(CodecError::Corrupt(message)) = decode(secret.as_bytes(), 1) else {
                panic!("{secret:?} decoded");
            };
            assert!(!message.contains("hunter2"), "{message}");
            if let Err(CodecError::Corrupt(message)) = parse(secret.as_bytes()) {
                assert!(!message.contains("hunter2"), "{message}");
            }
        }
        let Err(CodecError::Corrupt(message)) = decode(b"{\"a\":\"hunter2\xff\"}", 1) else {
            unreachable!()
        };
        assert_eq!(
            message,
            "unable to parse JSON: invalid UTF-8 after 13 bytes"
        );
        let Err(CodecError::Corrupt(message)) = decode(br#""hunter2""#, 1) else {
            unreachable!()
        };
        assert_eq!(
            message,
            "unable to parse JSON: not a JSON object at line 1 column 9"
        );
    }

    #[test]
    fn rejects_what_is_not_an_object() {
        for bad in [
            "",
            "{",
            "[1]",
            "\"s\"",
            r#"{"metadata":3}"#,
            "{} x",
            r#"{"a":[1,}"#,
            r#"{"a":"\x"}"#,
        ] {
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
            let full: Value = serde_json::from_slice(&stamp(parse(input.to_string().as_bytes()).unwrap(), rv).unwrap()).unwrap();
            prop_assert_eq!(&out, &full);
            prop_assert_eq!(&out["metadata"]["resourceVersion"], &Value::String(rv.to_string()));
            prop_assert_eq!(&out["metadata"]["name"], &input["metadata"]["name"]);
            prop_assert_eq!(&out["x"], &input["x"]);
        }
    }
}
