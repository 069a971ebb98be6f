//! The bytes kube-apiserver's JSON serializer stores for an object
//! (`json.NewEncoder(w).Encode(obj)`): Go's `encoding/json` output, compact,
//! with `<`, `>`, `&`, U+2028 and U+2029 escaped, Go's float spelling, and a
//! trailing newline. A built-in kind is written as its Go struct marshals
//! (fields in struct order, Go's zero values and `omitempty`); any other
//! object as an unstructured one (`map[string]interface{}`: keys sorted).

use serde_json::{Map, Number, Value};

use super::{json, kubejson, schema, CodecError};

/// The stored form of a caller's JSON object.
pub fn encode(object: &[u8]) -> Result<Vec<u8>, CodecError> {
    let object = json::parse(object)?;
    let mut out = match typed(&object) {
        Some(typed) => {
            let mut out = Vec::with_capacity(object.len() * 64);
            write(&Value::Object(typed), false, &mut out);
            out
        }
        None => {
            let mut out = Vec::new();
            write(&Value::Object(object), true, &mut out);
            out
        }
    };
    out.push(b'\n');
    Ok(out)
}

/// The object as its Go struct marshals, when it is a built-in kind that
/// decodes into that struct. An object that does not (a custom resource, or
/// fields the schema does not know) stays unstructured, so nothing is lost.
fn typed(object: &Map<String, Value>) -> Option<Map<String, Value>> {
    let text = |name: &str| object.get(name).and_then(Value::as_str);
    let (api_version, kind) = (text("apiVersion")?, text("kind")?);
    let descriptor = schema::object(api_version, kind).ok()?;
    let mut fields = object.clone();
    fields.shift_remove("apiVersion");
    fields.shift_remove("kind");
    let message = kubejson::from_json(descriptor, &fields).ok()?;
    // TypeMeta is the first embedded struct of every object.
    let mut typed = Map::new();
    typed.insert("kind".into(), Value::String(kind.into()));
    typed.insert("apiVersion".into(), Value::String(api_version.into()));
    typed.extend(kubejson::to_json(&message).ok()?);
    Some(typed)
}

fn write(value: &Value, sort_keys: bool, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => number(n, out),
        Value::String(s) => string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, sort_keys, out);
            }
            out.push(b']');
        }
        Value::Object(members) => {
            let mut members: Vec<(&String, &Value)> = members.iter().collect();
            if sort_keys {
                members.sort_by(|a, b| a.0.cmp(b.0));
            }
            out.push(b'{');
            for (i, (key, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                string(key, out);
                out.push(b':');
                write(item, sort_keys, out);
            }
            out.push(b'}');
        }
    }
}

/// Integers as int64 (Go's unstructured decoding keeps those), anything else
/// as float64.
fn number(n: &Number, out: &mut Vec<u8>) {
    match (n.as_i64(), n.as_f64()) {
        (Some(i), _) => out.extend_from_slice(i.to_string().as_bytes()),
        (None, Some(f)) if f.is_finite() => float(f, out),
        // serde_json holds no other numbers; keep its spelling if it did.
        _ => out.extend_from_slice(n.to_string().as_bytes()),
    }
}

/// Go's float64 spelling: the shortest round-trip digits, plain from 1e-6 to
/// 1e21, otherwise with an exponent of at least two digits, less a leading
/// zero in a negative one (`1e+21`, `1e-7`, `1.5e-10`).
fn float(f: f64, out: &mut Vec<u8>) {
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        out.extend_from_slice(format!("{f}").as_bytes());
        return;
    }
    let text = format!("{f:e}");
    let (mantissa, exponent) = text.split_once('e').expect("{:e} writes an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} writes an integer exponent");
    let sign = if exponent < 0 { '-' } else { '+' };
    let digits = if exponent < 0 {
        exponent.unsigned_abs().to_string()
    } else {
        format!("{exponent:02}")
    };
    out.extend_from_slice(format!("{mantissa}e{sign}{digits}").as_bytes());
}

fn string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escape: Option<&[u8]> = match c {
            '"' => Some(b"\\\""),
            '\\' => Some(b"\\\\"),
            '\n' => Some(b"\\n"),
            '\r' => Some(b"\\r"),
            '\t' => Some(b"\\t"),
            '\u{8}' => Some(b"\\b"),
            '\u{c}' => Some(b"\\f"),
            '\u{2028}' => Some(b"\\u2028"),
            '\u{2029}' => Some(b"\\u2029"),
            c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&') => None,
            _ => continue,
        };
        out.extend_from_slice(&s.as_bytes()[start..i]);
        match escape {
            Some(e) => out.extend_from_slice(e),
            None => {
                let b = c as u8;
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
        start = i + c.len_utf8();
    }
    out.extend_from_slice(&s.as_bytes()[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(object: &str) -> String {
        String::from_utf8(encode(object.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn built_in_kinds_marshal_as_their_go_struct() {
        assert_eq!(
            encoded(
                r#"{"data":{"b":"1","a":"<&>"},"metadata":{"name":"x"},"apiVersion":"v1","kind":"ConfigMap"}"#
            ),
            "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"x\",\
             \"creationTimestamp\":null},\"data\":{\"a\":\"\\u003c\\u0026\\u003e\",\"b\":\"1\"}}\n"
        );
    }

    #[test]
    fn other_objects_are_unstructured() {
        assert_eq!(
            encoded(
                r#"{"spec":{"z":1.5e-7,"y":1e21,"x":2.50,"w":-0.0},"kind":"Widget","apiVersion":"example.com/v1"}"#
            ),
            "{\"apiVersion\":\"example.com/v1\",\"kind\":\"Widget\",\
             \"spec\":{\"w\":-0,\"x\":2.5,\"y\":1e+21,\"z\":1.5e-7}}\n"
        );
        // A built-in kind with a field the schema does not know keeps it.
        assert_eq!(
            encoded(r#"{"kind":"ConfigMap","apiVersion":"v1","future":"\u2028\u0001\b"}"#),
            "{\"apiVersion\":\"v1\",\"future\":\"\\u2028\\u0001\\b\",\"kind\":\"ConfigMap\"}\n"
        );
    }
}
