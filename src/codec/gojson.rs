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
            "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"x\"},\
             \"data\":{\"a\":\"\\u003c\\u0026\\u003e\",\"b\":\"1\"}}\n"
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

    fn config_map_created(at: &str) -> String {
        encoded(&format!(
            r#"{{"kind":"ConfigMap","apiVersion":"v1","metadata":{{"name":"x","creationTimestamp":"{at}"}}}}"#
        ))
    }

    #[test]
    fn go_zero_time_is_null() {
        // ... which `omitzero` leaves out of creationTimestamp.
        assert_eq!(
            config_map_created("0001-01-01T00:00:00Z"),
            "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"x\"}}\n"
        );
        // A set pointer to the zero MicroTime is null, as in Go.
        assert!(encoded(
            r#"{"kind":"Lease","apiVersion":"coordination.k8s.io/v1","metadata":{},"spec":{"acquireTime":"0001-01-01T00:00:00.000000Z"}}"#
        )
        .contains("\"spec\":{\"acquireTime\":null}"));
        // Not zero by a nanosecond: whole seconds are written.
        assert!(config_map_created("0001-01-01T00:00:00.5Z")
            .contains("\"creationTimestamp\":\"0001-01-01T00:00:00Z\""));
    }

    #[test]
    fn time_fractions_past_nine_digits_are_cut() {
        assert!(config_map_created("2020-01-01T00:00:00.1234567891Z")
            .contains("\"creationTimestamp\":\"2020-01-01T00:00:00Z\""));
    }

    #[test]
    fn times_outside_years_0_to_9999_stay_as_written() {
        for at in ["0000-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"] {
            assert!(
                config_map_created(at).starts_with("{\"apiVersion\""),
                "{at}"
            );
            assert!(config_map_created(at).contains(at), "{at}");
        }
    }

    // Not Go's bytes: Go parses a quantity from the number's own text
    // ("1e3", "123456789012345678901234567890"); the number arrives here as
    // an f64, which loses that text and any digits past 17.
    #[test]
    fn quantities_given_as_json_numbers_go_through_f64() {
        let out = encoded(
            r#"{"kind":"LimitRange","apiVersion":"v1","metadata":{},"spec":{"limits":[{"max":{"a":1e3,"b":123456789012345678901234567890,"c":0.5,"d":7}}]}}"#,
        );
        assert!(
            out.contains(r#""max":{"a":"1k","b":"123456789012345680e12","c":"500m","d":"7"}"#),
            "{out}"
        );
    }

    // Not Go's bytes: Go keeps a RawExtension's bytes as given ("1.0",
    // every digit, escapes and duplicate keys); here it is re-encoded.
    #[test]
    fn raw_extensions_are_reencoded() {
        let out = encoded(
            r#"{"kind":"ControllerRevision","apiVersion":"apps/v1","metadata":{},"data":{"b":1.0,"a":123456789012345678901234567890,"c":"\u00e9\/","c":2}}"#,
        );
        assert!(
            out.contains(r#""data":{"b":1,"a":1.2345678901234568e+29,"c":2}"#),
            "{out}"
        );
    }

    // Not Go's bytes: Go keeps `-0` as the int64 0 and writes `0`; the
    // parser here reads `-0` as the float -0.0, as it does `-0.0`, which Go
    // writes `-0`.
    #[test]
    fn minus_zero_is_a_float() {
        assert_eq!(
            encoded(r#"{"kind":"W","apiVersion":"x/v1","a":[-0,-0.0,1E2,1.0]}"#),
            "{\"a\":[-0,-0,100,1],\"apiVersion\":\"x/v1\",\"kind\":\"W\"}\n"
        );
    }

    // kube-apiserver could not decode these; the protobuf codec refuses them.
    // Stored unstructured, as given but for numbers past int64, which take
    // float64's value as in any unstructured object.
    #[test]
    fn wrongly_typed_built_in_kinds_are_stored_unstructured() {
        assert_eq!(
            encoded(r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a"},"data":5}"#),
            "{\"apiVersion\":\"v1\",\"data\":5,\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"}}\n"
        );
        assert_eq!(
            encoded(
                r#"{"kind":"Service","apiVersion":"v1","metadata":{},"spec":{"ports":[{"port":18446744073709551615}]}}"#
            ),
            "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{},\
             \"spec\":{\"ports\":[{\"port\":18446744073709552000}]}}\n"
        );
    }
}
