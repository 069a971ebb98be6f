//! The protobuf bytes Go's generated marshallers (`MarshalToSizedBuffer`)
//! write for an API object, so that what we store is what kube-apiserver
//! stores: fields in number order; a plain (non-pointer) field always, its
//! zero value included; a pointer only when set, a `[]byte` only when not
//! nil; repeated fields unpacked; map entries sorted by key with both key
//! and value written. `Time` writes nothing when zero and whole seconds
//! with `nanos: 0` otherwise, as `metav1.Time.ProtoTime` does.

use prost_reflect::prost::encoding::{encode_key, encode_varint, WireType};
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, ReflectMessage, Value};

use super::schema::{self, Special};

/// The message's bytes.
pub fn marshal(message: &DynamicMessage) -> Vec<u8> {
    let mut out = Vec::new();
    write_message(message, &mut out);
    out
}

fn write_message(message: &DynamicMessage, out: &mut Vec<u8>) {
    let descriptor = message.descriptor();
    if schema::special(&descriptor) == Some(Special::Time) {
        // Zero (neither field set) is empty; otherwise seconds, and nanos 0.
        if message.has_field_by_name("seconds") || message.has_field_by_name("nanos") {
            let seconds = message
                .get_field_by_name("seconds")
                .and_then(|v| v.as_i64())
                .unwrap_or(0);
            encode_key(1, WireType::Varint, out);
            encode_varint(seconds as u64, out);
            encode_key(2, WireType::Varint, out);
            encode_varint(0, out);
        }
        return;
    }
    if schema::special(&descriptor) == Some(Special::MicroTime)
        && !message.has_field_by_name("seconds")
        && !message.has_field_by_name("nanos")
    {
        return;
    }
    if schema::special(&descriptor) == Some(Special::Quantity) {
        // `Quantity.String()` of the zero quantity is "0".
        let text = message
            .get_field_by_name("string")
            .and_then(|v| v.as_str().map(str::to_owned))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "0".into());
        write_bytes(1, text.as_bytes(), out);
        return;
    }
    let mut fields: Vec<FieldDescriptor> = descriptor.fields().collect();
    fields.sort_by_key(FieldDescriptor::number);
    for field in fields {
        let present = message.has_field(&field);
        if field.is_list() || field.is_map() {
            if present {
                write_field(&field, &message.get_field(&field), out);
            }
        } else if present {
            write_field(&field, &message.get_field(&field), out);
        } else if !schema::is_pointer(&field) && !schema::is_byte_slice(&field) {
            // Go writes the zero of every plain field.
            write_field(&field, &Value::default_value_for_field(&field), out);
        }
    }
}

fn write_field(field: &FieldDescriptor, value: &Value, out: &mut Vec<u8>) {
    let number = field.number();
    match value {
        Value::List(items) => {
            for item in items {
                write_single(number, &field.kind(), item, out);
            }
        }
        Value::Map(entries) => {
            let Kind::Message(entry) = field.kind() else {
                unreachable!("a map field has an entry message");
            };
            let value_kind = entry.map_entry_value_field().kind();
            let mut entries: Vec<(&MapKey, &Value)> = entries.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            for (key, item) in entries {
                let mut body = Vec::new();
                write_single(
                    1,
                    &entry.map_entry_key_field().kind(),
                    &map_key(key),
                    &mut body,
                );
                write_single(2, &value_kind, item, &mut body);
                write_bytes(number, &body, out);
            }
        }
        value => write_single(number, &field.kind(), value, out),
    }
}

fn map_key(key: &MapKey) -> Value {
    match key {
        MapKey::Bool(b) => Value::Bool(*b),
        MapKey::I32(n) => Value::I32(*n),
        MapKey::I64(n) => Value::I64(*n),
        MapKey::U32(n) => Value::U32(*n),
        MapKey::U64(n) => Value::U64(*n),
        MapKey::String(s) => Value::String(s.clone()),
    }
}

fn write_single(number: u32, kind: &Kind, value: &Value, out: &mut Vec<u8>) {
    let varint = |n: u64, out: &mut Vec<u8>| {
        encode_key(number, WireType::Varint, out);
        encode_varint(n, out);
    };
    match (kind, value) {
        (_, Value::Bool(b)) => varint(u64::from(*b), out),
        // Negative int32s are sign-extended to ten bytes, as Go's uint64(x).
        (Kind::Sint32, Value::I32(n)) => varint(u64::from(((n << 1) ^ (n >> 31)) as u32), out),
        (Kind::Sint64, Value::I64(n)) => varint(((n << 1) ^ (n >> 63)) as u64, out),
        (Kind::Sfixed32, Value::I32(n)) => fixed(number, &n.to_le_bytes(), out),
        (Kind::Sfixed64, Value::I64(n)) => fixed(number, &n.to_le_bytes(), out),
        (Kind::Fixed32, Value::U32(n)) => fixed(number, &n.to_le_bytes(), out),
        (Kind::Fixed64, Value::U64(n)) => fixed(number, &n.to_le_bytes(), out),
        (_, Value::I32(n) | Value::EnumNumber(n)) => varint(i64::from(*n) as u64, out),
        (_, Value::I64(n)) => varint(*n as u64, out),
        (_, Value::U32(n)) => varint(u64::from(*n), out),
        (_, Value::U64(n)) => varint(*n, out),
        (_, Value::F32(n)) => fixed(number, &n.to_le_bytes(), out),
        (_, Value::F64(n)) => fixed(number, &n.to_le_bytes(), out),
        (_, Value::String(s)) => write_bytes(number, s.as_bytes(), out),
        (_, Value::Bytes(b)) => write_bytes(number, b, out),
        (_, Value::Message(m)) => write_bytes(number, &marshal(m), out),
        (_, Value::List(_) | Value::Map(_)) => unreachable!("collections do not nest"),
    }
}

fn fixed(number: u32, bytes: &[u8], out: &mut Vec<u8>) {
    let wire = if bytes.len() == 4 {
        WireType::ThirtyTwoBit
    } else {
        WireType::SixtyFourBit
    };
    encode_key(number, wire, out);
    out.extend_from_slice(bytes);
}

fn write_bytes(number: u32, bytes: &[u8], out: &mut Vec<u8>) {
    encode_key(number, WireType::LengthDelimited, out);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}
