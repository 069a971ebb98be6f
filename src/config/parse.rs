//! Config text (the config JSON, an `EncryptionConfiguration` in YAML or
//! JSON) into typed values, with errors that name the field and describe what
//! was wrong but never quote a value: a password or a key written in the wrong
//! place must not end up in an error message.
//!
//! serde's own errors quote values (`invalid type: string "hunter2", expected
//! a boolean`), so the text is first read into a `Node` tree (the format's
//! syntax errors carry only a position), and the tree is then deserialized
//! through `NodeDeserializer`, whose error type describes mistakes by kind
//! (`expected a boolean, got a string`). serde_path_to_error names the field.

use std::collections::HashSet;
use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, Expected, IntoDeserializer, MapAccess,
    SeqAccess, Unexpected, Visitor,
};
use serde::Deserialize;
use zeroize::Zeroize;

/// A parse failure: where (`.` for the document itself) and what.
#[derive(Debug)]
pub(crate) struct ParseError {
    /// The field, as serde_path_to_error prints it: `transformer.providers[0]`.
    pub path: String,
    pub message: String,
}

impl ParseError {
    /// The message after `field` and the path, or after `document` when the
    /// document itself is wrong (nothing when `document` is empty).
    pub fn describe(&self, document: &str, field: &str) -> String {
        if self.path == "." {
            if document.is_empty() {
                self.message.clone()
            } else {
                format!("{document}: {}", self.message)
            }
        } else {
            format!("{field} `{}`: {}", self.path, self.message)
        }
    }
}

fn whole(message: impl fmt::Display) -> ParseError {
    ParseError {
        path: ".".into(),
        message: message.to_string(),
    }
}

/// Parses JSON text into `T`; trailing text after the value is an error.
pub(crate) fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, ParseError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let node = Node::deserialize(&mut de).map_err(whole)?;
    de.end().map_err(whole)?;
    from_node(&node)
}

/// Parses one YAML (or JSON) document into `T`. As with Kubernetes' YAML
/// loading, scalar mapping keys are taken as strings.
#[cfg(test)]
pub(crate) fn from_yaml<T: DeserializeOwned>(data: &[u8]) -> Result<T, ParseError> {
    from_node(&yaml_node(data)?)
}

/// Reads a YAML document into a tree, for `from_node`.
pub(crate) fn yaml_node(data: &[u8]) -> Result<Node, ParseError> {
    serde_yaml_ng::from_slice(data).map_err(whole)
}

/// Deserializes `T` from a tree.
pub(crate) fn from_node<T: DeserializeOwned>(node: &Node) -> Result<T, ParseError> {
    serde_path_to_error::deserialize(NodeDeserializer(node)).map_err(|e| ParseError {
        path: e.path().to_string(),
        message: e.into_inner().0,
    })
}

/// A parsed document. Strings are zeroized when dropped: they may be keys.
#[derive(Debug)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Node::Str(s) = self {
            s.zeroize();
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON or YAML value")
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::U64(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::I64(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        u64::try_from(v)
            .map(Node::U64)
            .map_err(|_| E::custom("integer out of range"))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        i64::try_from(v)
            .map(Node::I64)
            .map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::F64(v))
    }
    fn visit_char<E>(self, v: char) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Node, E> {
        Err(E::custom("binary data is not allowed"))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<Node, A::Error> {
        Err(de::Error::custom("YAML tags are not supported"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
            }
            let value = map.next_value()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

/// A mapping key: a string, or another scalar taken as its text.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_bool<E>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_unit<E>(self) -> Result<String, E> {
        Ok("null".into())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(de::Error::custom("a mapping key must be a string"))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(de::Error::custom("a mapping key must be a string"))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(de::Error::custom("a mapping key must be a string"))
    }
}

/// An error that describes a mistake without the value it was made with.
#[derive(Debug)]
pub(crate) struct QuietError(String);

impl fmt::Display for QuietError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for QuietError {}

/// What kind of value `unexp` is, without its content.
fn kind(unexp: &Unexpected<'_>) -> &'static str {
    match unexp {
        Unexpected::Bool(_) => "a boolean",
        Unexpected::Unsigned(_) | Unexpected::Signed(_) => "an integer",
        Unexpected::Float(_) => "a floating-point number",
        Unexpected::Char(_) => "a character",
        Unexpected::Str(_) => "a string",
        Unexpected::Bytes(_) => "bytes",
        Unexpected::Unit => "null",
        Unexpected::Option => "an optional value",
        Unexpected::NewtypeStruct => "a newtype struct",
        Unexpected::Seq => "an array",
        Unexpected::Map => "an object",
        Unexpected::Enum => "an enum",
        Unexpected::UnitVariant
        | Unexpected::NewtypeVariant
        | Unexpected::TupleVariant
        | Unexpected::StructVariant => "an enum variant",
        Unexpected::Other(_) => "another kind of value",
    }
}

impl de::Error for QuietError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        QuietError(msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        QuietError(format!(
            "invalid type: expected {exp}, got {}",
            kind(&unexp)
        ))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        let got = match unexp {
            Unexpected::Unsigned(_) | Unexpected::Signed(_) | Unexpected::Float(_) => {
                "a number out of range"
            }
            other => kind(&other),
        };
        QuietError(format!("invalid value: expected {exp}, got {got}"))
    }

    fn unknown_variant(_variant: &str, expected: &'static [&'static str]) -> Self {
        let names: Vec<String> = expected.iter().map(|v| format!("`{v}`")).collect();
        QuietError(format!(
            "unknown value, expected one of {}",
            names.join(", ")
        ))
    }
}

/// Deserializes typed values from a `Node`, with `QuietError`s.
struct NodeDeserializer<'a>(&'a Node);

impl NodeDeserializer<'_> {
    fn unexpected(&self) -> Unexpected<'_> {
        match self.0 {
            Node::Null => Unexpected::Unit,
            Node::Bool(b) => Unexpected::Bool(*b),
            Node::U64(n) => Unexpected::Unsigned(*n),
            Node::I64(n) => Unexpected::Signed(*n),
            Node::F64(n) => Unexpected::Float(*n),
            Node::Str(s) => Unexpected::Str(s),
            Node::Seq(_) => Unexpected::Seq,
            Node::Map(_) => Unexpected::Map,
        }
    }
}

impl<'de> Deserializer<'de> for NodeDeserializer<'_> {
    type Error = QuietError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QuietError> {
        match self.0 {
            Node::Null => visitor.visit_unit(),
            Node::Bool(b) => visitor.visit_bool(*b),
            Node::U64(n) => visitor.visit_u64(*n),
            Node::I64(n) => visitor.visit_i64(*n),
            Node::F64(n) => visitor.visit_f64(*n),
            Node::Str(s) => visitor.visit_str(s),
            Node::Seq(items) => {
                let mut seq = Items(items.iter());
                let value = visitor.visit_seq(&mut seq)?;
                match seq.0.len() {
                    0 => Ok(value),
                    _ => Err(de::Error::invalid_length(items.len(), &"fewer elements")),
                }
            }
            Node::Map(entries) => visitor.visit_map(Entries {
                entries: entries.iter(),
                value: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QuietError> {
        match self.0 {
            Node::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, QuietError> {
        visitor.visit_newtype_struct(self)
    }

    /// Structs are objects (serde would also take an array).
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, QuietError> {
        match self.0 {
            Node::Map(_) => self.deserialize_any(visitor),
            _ => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        }
    }

    /// Unit variants, written as strings (`"codec": "json"`).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, QuietError> {
        match self.0 {
            Node::Str(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            _ => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QuietError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier
    }
}

struct Items<'a>(std::slice::Iter<'a, Node>);

impl<'de> SeqAccess<'de> for Items<'_> {
    type Error = QuietError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, QuietError> {
        self.0
            .next()
            .map(|item| seed.deserialize(NodeDeserializer(item)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Entries<'a> {
    entries: std::slice::Iter<'a, (String, Node)>,
    value: Option<&'a Node>,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = QuietError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, QuietError> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                let key: de::value::StrDeserializer<'_, QuietError> =
                    key.as_str().into_deserializer();
                seed.deserialize(key).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, QuietError> {
        let value = self
            .value
            .take()
            .ok_or_else(|| <QuietError as de::Error>::custom("a value without a key"))?;
        seed.deserialize(NodeDeserializer(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        #[serde(default)]
        flag: bool,
        #[serde(default)]
        count: u8,
        #[serde(default)]
        list: Vec<String>,
        #[serde(default)]
        mode: Option<Mode>,
        #[serde(default)]
        inner: Option<Inner>,
    }

    #[derive(Deserialize, Debug)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Fast,
        Slow,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        name: String,
    }

    const SECRET: &str = "hunter2-s3cr3t";

    fn json_err(text: &str) -> ParseError {
        from_json::<T>(text).unwrap_err()
    }

    #[test]
    fn errors_name_the_field_and_not_the_value() {
        for (text, path, message) in [
            (
                format!(r#"{{"flag":"{SECRET}"}}"#),
                "flag",
                "invalid type: expected a boolean, got a string",
            ),
            (
                format!(r#"{{"count":"{SECRET}"}}"#),
                "count",
                "invalid type: expected u8, got a string",
            ),
            (
                r#"{"count":300}"#.to_owned(),
                "count",
                "invalid value: expected u8, got a number out of range",
            ),
            (
                format!(r#"{{"list":["a","b",{{"x":"{SECRET}"}}]}}"#),
                "list[2]",
                "invalid type: expected a string, got an object",
            ),
            (
                format!(r#"{{"mode":"{SECRET}"}}"#),
                "mode",
                "unknown value, expected one of `fast`, `slow`",
            ),
            (
                format!(r#"{{"inner":"{SECRET}"}}"#),
                "inner",
                "invalid type: expected struct Inner, got a string",
            ),
            (
                format!(r#"{{"inner":["{SECRET}"]}}"#),
                "inner",
                "invalid type: expected struct Inner, got an array",
            ),
            (
                format!(r#"{{"inner":{{"name":7,"x":"{SECRET}"}}}}"#),
                "inner.name",
                "invalid type: expected a string, got an integer",
            ),
            (
                r#"{"inner":{}}"#.to_owned(),
                "inner",
                "missing field `name`",
            ),
            (
                r#"{"bogus":1}"#.to_owned(),
                "bogus",
                "unknown field `bogus`, expected one of `flag`, `count`, `list`, `mode`, `inner`",
            ),
        ] {
            let e = json_err(&text);
            assert_eq!(
                (e.path.as_str(), e.message.as_str()),
                (path, message),
                "{text}"
            );
            let yaml = serde_yaml_ng::to_string(
                &serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            )
            .unwrap();
            let e = from_yaml::<T>(yaml.as_bytes()).unwrap_err();
            assert_eq!(
                (e.path.as_str(), e.message.as_str()),
                (path, message),
                "{yaml}"
            );
        }
    }

    #[test]
    fn syntax_errors_and_duplicates_carry_a_position_only() {
        for text in [
            format!(r#"{{"flag":"{SECRET}""#),
            format!(r#"{{"flag":true}} "{SECRET}""#),
            format!(r#"{{"flag":{SECRET}}}"#),
            format!(r#"{{"list":["{SECRET}"],"list":["{SECRET}"]}}"#),
        ] {
            let e = json_err(&text);
            assert_eq!(e.path, ".");
            assert!(e.message.contains("line 1 column"), "{}", e.message);
            assert!(!e.message.contains(SECRET), "{}", e.message);
        }
        let e = json_err(r#"{"flag":true,"flag":false}"#);
        assert!(
            e.message.starts_with("duplicate field `flag`"),
            "{}",
            e.message
        );
        for yaml in [
            format!("flag: [\"{SECRET}\"\n"),
            format!("flag: !custom {SECRET}\n"),
            format!("flag: true\nflag: {SECRET}\n"),
            format!("? [{SECRET}]\n: 1\n"),
        ] {
            let e = from_yaml::<T>(yaml.as_bytes()).unwrap_err();
            assert_eq!(e.path, ".", "{yaml}");
            assert!(!e.message.contains(SECRET), "{yaml}: {}", e.message);
        }
    }

    #[test]
    fn yaml_scalar_keys_are_strings() {
        let node = yaml_node(b"1: a\ntrue: b\n").unwrap();
        let Node::Map(entries) = &node else {
            panic!("{node:?}")
        };
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["1", "true"]);
    }

    #[test]
    fn values_parse_as_with_serde() {
        let t: T =
            from_json(r#"{"flag":true,"count":7,"list":["x"],"mode":"slow","inner":{"name":"n"}}"#)
                .unwrap();
        assert!(t.flag && t.count == 7 && t.list == ["x"]);
        assert!(matches!(t.mode, Some(Mode::Slow)));
        let t: T = from_yaml(b"flag: true\nmode: null\n").unwrap();
        assert!(t.flag && t.mode.is_none());
    }
}
