//! Typed protobuf messages to and from the JSON kube-apiserver serves, by the
//! rules Go's `encoding/json` applies to the Go struct each message decodes
//! to (names, `omitempty` and pointers from the schema's `fields.tsv`):
//! - field names from the JSON tags; int64 as numbers; bytes as base64;
//! - a field the wire lacks is Go's zero value: `null` for nil pointers,
//!   slices and maps, `0`, `""`, `false` or `{}` otherwise;
//! - `omitempty` leaves out nil, empty and zero values, but never a struct;
//! - the types with their own `MarshalJSON` ([`Special`]).

use std::collections::HashSet;

use base64::Engine;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage, Value,
};
use serde_json::{Map, Number, Value as Json};

use super::schema::{self, Special};
use super::{quantity, time, CodecError};

type Result<T> = std::result::Result<T, CodecError>;

fn corrupt(message: String) -> CodecError {
    CodecError::Corrupt(message)
}

/// Where a decoded message holds fields its schema does not know (a newer
/// release's): one `path#number` each, the path in API field names
/// (`spec.containers[0]#99`, `metadata#42` ...; `#7` at the top).
pub fn unknown_fields(message: &DynamicMessage) -> Vec<String> {
    let mut found = Vec::new();
    collect_unknown(message, "", &mut found);
    found
}

fn collect_unknown(message: &DynamicMessage, path: &str, found: &mut Vec<String>) {
    for field in message.unknown_fields() {
        found.push(format!("{path}#{}", field.number()));
    }
    for (field, value) in message.fields() {
        let name = schema::json_name(&field);
        let at = if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        };
        match value {
            Value::Message(inner) => collect_unknown(inner, &at, found),
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Message(inner) = item {
                        collect_unknown(inner, &format!("{at}[{i}]"), found);
                    }
                }
            }
            Value::Map(entries) => {
                for (key, item) in entries {
                    if let Value::Message(inner) = item {
                        collect_unknown(inner, &format!("{at}[{}]", map_key(key)), found);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The JSON object of a decoded message, as Go marshals the struct it
/// decodes to: an absent field is the zero value, so a plain (non-pointer,
/// non-`omitempty`) field is written even when the wire lacks it.
pub fn to_json(message: &DynamicMessage) -> Result<Map<String, Json>> {
    let mut object = Map::new();
    for field in schema::go_order(&message.descriptor()) {
        let present = message.has_field(&field);
        if schema::is_inline(&field) {
            if let Value::Message(inner) = message.get_field(&field).as_ref() {
                object.extend(to_json(inner)?);
            }
            continue;
        }
        let json = if present {
            field_to_json(&field, &message.get_field(&field))?
        } else {
            absent_to_json(&field)?
        };
        match json {
            Some(json) if schema::is_omitzero(&field) && is_zero_json(&json) => {}
            Some(json) => {
                object.insert(schema::json_name(&field).to_owned(), json);
            }
            None => {}
        }
    }
    Ok(object)
}

/// A present field's JSON value, or `None` when Go leaves it out.
fn field_to_json(field: &FieldDescriptor, value: &Value) -> Result<Option<Json>> {
    Ok(match value {
        Value::List(items) if items.is_empty() => absent_to_json(field)?,
        Value::Map(entries) if entries.is_empty() => absent_to_json(field)?,
        Value::List(items) => Some(Json::Array(
            items.iter().map(value_to_json).collect::<Result<_>>()?,
        )),
        Value::Map(entries) => {
            // Go writes map keys sorted.
            let mut entries: Vec<_> = entries.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let mut object = Map::new();
            for (key, value) in entries {
                object.insert(map_key(key), value_to_json(value)?);
            }
            Some(Json::Object(object))
        }
        scalar if is_zero(scalar) && schema::is_optional(field) && !schema::is_pointer(field) => {
            None
        }
        value => Some(value_to_json(value)?),
    })
}

/// The JSON of a field the wire does not carry: Go's zero value of it (nil
/// for pointers, slices, maps and byte slices), or `None` when `omitempty`
/// leaves it out.
fn absent_to_json(field: &FieldDescriptor) -> Result<Option<Json>> {
    let nil = schema::is_pointer(field)
        || schema::is_byte_slice(field)
        || field.is_list()
        || field.is_map();
    Ok(match field.kind() {
        _ if nil && schema::is_optional(field) => None,
        _ if nil => Some(Json::Null),
        // omitempty never leaves out a struct.
        Kind::Message(m) => Some(value_to_json(&Value::Message(DynamicMessage::new(m)))?),
        _ if schema::is_optional(field) => None,
        kind => Some(value_to_json(&Value::default_value(&kind))?),
    })
}

/// Whether Go's `omitzero` leaves the value out: the JSON of a zero value (a
/// zero `Time` is `null`, a struct of zero fields `{}`).
fn is_zero_json(json: &Json) -> bool {
    match json {
        Json::Null => true,
        Json::Bool(b) => !b,
        Json::Number(n) => n.as_f64() == Some(0.0),
        Json::String(s) => s.is_empty(),
        Json::Object(o) => o.is_empty(),
        Json::Array(_) => false,
    }
}

fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::String(s) => s.clone(),
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
    }
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::Bool(b) => !b,
        Value::I32(n) | Value::EnumNumber(n) => *n == 0,
        Value::I64(n) => *n == 0,
        Value::U32(n) => *n == 0,
        Value::U64(n) => *n == 0,
        Value::F32(n) => *n == 0.0,
        Value::F64(n) => *n == 0.0,
        Value::String(s) => s.is_empty(),
        Value::Bytes(b) => b.is_empty(),
        Value::Message(_) | Value::List(_) | Value::Map(_) => false,
    }
}

fn value_to_json(value: &Value) -> Result<Json> {
    Ok(match value {
        Value::Bool(b) => Json::Bool(*b),
        Value::I32(n) | Value::EnumNumber(n) => Json::from(*n),
        Value::I64(n) => Json::from(*n),
        Value::U32(n) => Json::from(*n),
        Value::U64(n) => Json::from(*n),
        Value::F32(n) => float(f64::from(*n))?,
        Value::F64(n) => float(*n)?,
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::Message(m) => match schema::special(&m.descriptor()) {
            Some(special) => special_to_json(special, m)?,
            None => Json::Object(to_json(m)?),
        },
        Value::List(_) | Value::Map(_) => return Err(corrupt("nested collection".into())),
    })
}

fn float(n: f64) -> Result<Json> {
    Number::from_f64(n)
        .map(Json::Number)
        .ok_or_else(|| corrupt(format!("{n} has no JSON form")))
}

fn special_to_json(special: Special, m: &DynamicMessage) -> Result<Json> {
    let int = |name: &str| match m.get_field_by_name(name).as_deref() {
        Some(Value::I64(n)) => *n,
        Some(Value::I32(n)) => i64::from(*n),
        _ => 0,
    };
    let text = |name: &str| match m.get_field_by_name(name).as_deref() {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let is_set = |name: &str| m.has_field_by_name(name);
    Ok(match special {
        // Go decodes an empty Time as the zero time, which marshals as null;
        // Time keeps whole seconds only.
        Special::Time | Special::MicroTime if !is_set("seconds") && !is_set("nanos") => Json::Null,
        // Go's zero time, however it was stored.
        Special::Time | Special::MicroTime
            if int("seconds") == time::GO_ZERO_SECONDS && int("nanos") == 0 =>
        {
            Json::Null
        }
        Special::Time => timestamp(int("seconds"), None)?,
        Special::MicroTime => {
            let micros = u32::try_from(int("nanos") / 1000)
                .ok()
                .filter(|&us| us < 1_000_000)
                .ok_or_else(|| corrupt(format!("MicroTime nanos {} out of range", int("nanos"))))?;
            timestamp(int("seconds"), Some(micros))?
        }
        // Go parses the stored string (an unset one is zero) and serves
        // what that parse prints.
        Special::Quantity if !is_set("string") => Json::String("0".into()),
        Special::Quantity => Json::String(quantity::canonical(&text("string"))?),
        Special::IntOrString => match int("type") {
            0 => Json::from(int("intVal")),
            1 => Json::String(text("strVal")),
            other => return Err(corrupt(format!("IntOrString has type {other}"))),
        },
        Special::RawJson => {
            let field = m.descriptor().fields().next();
            match field.filter(|f| m.has_field(f)).map(|f| m.get_field(&f)) {
                Some(raw) => {
                    let bytes = raw.as_bytes().cloned().unwrap_or_default();
                    serde_json::from_slice(&bytes).map_err(|e| {
                        corrupt(format!(
                            "embedded object is not JSON: {}",
                            super::json::describe(&e)
                        ))
                    })?
                }
                None => Json::Null,
            }
        }
        Special::StringList => match m.get_field_by_name("items").as_deref() {
            Some(Value::List(items)) if !items.is_empty() => Json::Array(
                items
                    .iter()
                    .map(|item| Json::String(item.as_str().unwrap_or_default().into()))
                    .collect(),
            ),
            _ => Json::Null,
        },
    })
}

fn timestamp(seconds: i64, micros: Option<u32>) -> Result<Json> {
    time::format(seconds, micros)
        .map(Json::String)
        .ok_or_else(|| corrupt(format!("timestamp {seconds} is outside years 0-9999")))
}

/// The message of a JSON object; errors name the offending field.
pub fn from_json(
    descriptor: MessageDescriptor,
    object: &Map<String, Json>,
) -> Result<DynamicMessage> {
    let mut used = HashSet::new();
    let message = fill(descriptor.clone(), object, &mut used)?;
    match object.keys().find(|k| !used.contains(k.as_str())) {
        Some(name) => Err(corrupt(format!(
            "unknown field {name:?} in {}",
            descriptor.name()
        ))),
        None => Ok(message),
    }
}

/// Sets the fields of `descriptor` from `object`, noting the keys it takes
/// in `used`; embedded structs take theirs from the same object.
fn fill<'a>(
    descriptor: MessageDescriptor,
    object: &'a Map<String, Json>,
    used: &mut HashSet<&'a str>,
) -> Result<DynamicMessage> {
    let mut message = DynamicMessage::new(descriptor.clone());
    for field in descriptor.fields() {
        if schema::is_inline(&field) {
            if let Kind::Message(inner) = field.kind() {
                // Go always writes an embedded struct.
                let inner = fill(inner, object, used)?;
                message.set_field(&field, Value::Message(inner));
            }
            continue;
        }
        let Some((name, json)) = object.get_key_value(schema::json_name(&field)) else {
            continue;
        };
        used.insert(name);
        let value = field_from_json(&field, json).map_err(|e| match e {
            CodecError::Corrupt(m) => corrupt(format!("{name}: {m}")),
            other => other,
        })?;
        if let Some(value) = value {
            message
                .try_set_field(&field, value)
                .map_err(|e| corrupt(format!("{name}: {e}")))?;
        }
    }
    Ok(message)
}

fn field_from_json(field: &FieldDescriptor, json: &Json) -> Result<Option<Value>> {
    let kind = field.kind();
    if field.is_map() {
        let Kind::Message(entry) = &kind else {
            return Err(corrupt("map without entry type".into()));
        };
        // set_field would panic on other keys; Kubernetes maps have string keys.
        if !matches!(entry.map_entry_key_field().kind(), Kind::String) {
            return Err(corrupt("map without string keys".into()));
        }
        let value_kind = entry.map_entry_value_field().kind();
        let entries = match json {
            Json::Null => return Ok(None),
            Json::Object(o) => o
                .iter()
                .map(|(k, v)| Ok((MapKey::String(k.clone()), value_from_json(&value_kind, v)?)))
                .collect::<Result<_>>()?,
            other => return Err(mismatch("an object", other)),
        };
        Ok(Some(Value::Map(entries)))
    } else if field.is_list() {
        let items = match json {
            Json::Null => return Ok(None),
            Json::Array(items) => items
                .iter()
                .map(|item| value_from_json(&kind, item))
                .collect::<Result<_>>()?,
            other => return Err(mismatch("an array", other)),
        };
        Ok(Some(Value::List(items)))
    } else {
        // A null leaves Go's field as it was: nil, or the zero the encoder
        // writes for a plain field.
        if json.is_null() {
            return Ok(None);
        }
        value_from_json(&kind, json).map(Some)
    }
}

fn mismatch(expected: &str, got: &Json) -> CodecError {
    let got = match got {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    };
    corrupt(format!("expected {expected}, got {got}"))
}

/// A JSON integer that fits `T`.
fn integer<T: TryFrom<i64>>(json: &Json) -> Result<T> {
    let n = json.as_i64().ok_or_else(|| mismatch("an integer", json))?;
    T::try_from(n).map_err(|_| corrupt(format!("{n} is out of range")))
}

fn value_from_json(kind: &Kind, json: &Json) -> Result<Value> {
    Ok(match kind {
        Kind::Bool => Value::Bool(json.as_bool().ok_or_else(|| mismatch("a boolean", json))?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(integer(json)?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(integer(json)?),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(integer(json)?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(
            json.as_u64()
                .ok_or_else(|| mismatch("an unsigned integer", json))?,
        ),
        Kind::Float => Value::F32(json.as_f64().ok_or_else(|| mismatch("a number", json))? as f32),
        Kind::Double => Value::F64(json.as_f64().ok_or_else(|| mismatch("a number", json))?),
        Kind::String => Value::String(string(json)?.into()),
        Kind::Bytes => Value::Bytes(
            base64::engine::general_purpose::STANDARD
                .decode(string(json)?)
                // The error would name a byte of the value, perhaps a secret.
                .map_err(|_| corrupt("invalid base64".into()))?
                .into(),
        ),
        Kind::Enum(_) => Value::EnumNumber(integer(json)?),
        Kind::Message(m) => Value::Message(match schema::special(m) {
            Some(special) => special_from_json(special, m, json)?,
            None => match json {
                Json::Object(o) => from_json(m.clone(), o)?,
                other => return Err(mismatch("an object", other)),
            },
        }),
    })
}

fn string(json: &Json) -> Result<&str> {
    json.as_str().ok_or_else(|| mismatch("a string", json))
}

/// Whether a time has `MicroTime`'s layout: exactly six fraction digits.
fn is_micro_layout(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() > 26
        && matches!(b[19], b'.' | b',')
        && b[20..26].iter().all(u8::is_ascii_digit)
        && !b[26].is_ascii_digit()
}

fn special_from_json(
    special: Special,
    m: &MessageDescriptor,
    json: &Json,
) -> Result<DynamicMessage> {
    let mut message = DynamicMessage::new(m.clone());
    if json.is_null() {
        // Each type's zero value, as Go's UnmarshalJSON leaves it for null;
        // Go's protobuf writes a zero Quantity as "0".
        if special == Special::Quantity {
            message.set_field_by_name("string", Value::String("0".into()));
        }
        return Ok(message);
    }
    let mut set = |name: &str, value: Value| message.set_field_by_name(name, value);
    match special {
        Special::Time | Special::MicroTime => {
            let text = string(json)?;
            let (seconds, nanos) = time::parse(text)
                .filter(|_| special == Special::Time || is_micro_layout(text))
                .ok_or_else(|| corrupt("not an RFC 3339 time".into()))?;
            // What could not be read back as JSON is refused.
            if time::format(seconds, None).is_none() {
                return Err(corrupt("time outside years 0-9999".into()));
            }
            // Go's zero time is unset: null in JSON, nothing in protobuf.
            if seconds == time::GO_ZERO_SECONDS && nanos == 0 {
                return Ok(message);
            }
            set("seconds", Value::I64(seconds));
            // Below 10^9: fits. Time's marshalling drops it, as Go's does.
            set("nanos", Value::I32(nanos as i32));
        }
        Special::Quantity => {
            // Go parses a number's JSON text or a string's contents trimmed
            // of white space, and stores what the parse prints. Contents are
            // not unescaped: a string holding a character JSON must escape
            // came with a backslash, which no quantity has.
            let text = match json {
                Json::String(s) if s.contains(|c| c < ' ' || c == '"' || c == '\\') => {
                    return Err(corrupt("a quantity with an escaped character".into()))
                }
                Json::String(s) => quantity::canonical(s.trim())?,
                Json::Number(n) => quantity::canonical(&n.to_string())?,
                other => return Err(mismatch("a quantity", other)),
            };
            set("string", Value::String(text));
        }
        Special::IntOrString => match json {
            Json::String(s) => {
                set("type", Value::I64(1));
                set("intVal", Value::I32(0));
                set("strVal", Value::String(s.clone()));
            }
            other => {
                set("type", Value::I64(0));
                set("intVal", Value::I32(integer(other)?));
                set("strVal", Value::String(String::new()));
            }
        },
        Special::RawJson => {
            let field = m
                .fields()
                .next()
                .ok_or_else(|| corrupt("raw type without field".into()))?;
            let raw = serde_json::to_vec(json).map_err(|e| corrupt(e.to_string()))?;
            message.set_field(&field, Value::Bytes(raw.into()));
        }
        Special::StringList => {
            let Json::Array(items) = json else {
                return Err(mismatch("an array", json));
            };
            let items = items
                .iter()
                .map(|item| Ok(Value::String(string(item)?.into())))
                .collect::<Result<_>>()?;
            set("items", Value::List(items));
        }
    }
    Ok(message)
}
