//! `APIObjectVersioner` on the write path: what Go does to an object before
//! encoding it for storage.

use serde_json::{Map, Value};

use crate::storage::{Code, Result, StorageError};

fn parse_object(data: &[u8]) -> Result<Map<String, Value>> {
    match serde_json::from_slice(data) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(StorageError::new(
            Code::InvalidObj,
            "object is not a JSON object",
        )),
        Err(e) => Err(StorageError::new(
            Code::InvalidObj,
            format!("object is not valid JSON: {}", crate::codec::json_error(&e)),
        )),
    }
}

fn metadata(fields: &mut Map<String, Value>) -> Result<Option<&mut Map<String, Value>>> {
    match fields.get_mut("metadata") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(StorageError::new(
            Code::InvalidObj,
            "object's metadata is not an object",
        )),
    }
}

/// Go's `ObjectResourceVersion` check in `Create`: a set resourceVersion is an error.
pub fn check_unset_resource_version(data: &[u8]) -> Result<()> {
    let mut fields = parse_object(data)?;
    let rv = metadata(&mut fields)?.and_then(|m| {
        m.get("resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    match rv.as_deref().map(str::parse::<u64>) {
        Some(Ok(v)) if v != 0 => Err(StorageError::new(
            Code::InvalidObj,
            "resourceVersion should not be set on objects to be created",
        )),
        _ => Ok(()),
    }
}

/// Go's `PrepareObjectForStorage`: clears `resourceVersion` and `selfLink`,
/// which are never stored (they are derived when read).
pub fn prepare_for_storage(data: &[u8]) -> Result<Vec<u8>> {
    let mut fields = parse_object(data)?;
    if let Some(m) = metadata(&mut fields)? {
        m.remove("resourceVersion");
        m.remove("selfLink");
    }
    serde_json::to_vec(&fields)
        .map_err(|e| StorageError::internal(format!("unable to encode object: {e}")))
}

/// Go's `UpdateList`: the list object a List returns, its items already decoded.
pub fn list_object(
    items: &[Vec<u8>],
    resource_version: i64,
    continue_token: &str,
    remaining_item_count: Option<i64>,
) -> Vec<u8> {
    let mut metadata = Map::new();
    metadata.insert(
        "resourceVersion".into(),
        Value::String(resource_version.to_string()),
    );
    if !continue_token.is_empty() {
        metadata.insert("continue".into(), Value::String(continue_token.into()));
    }
    if let Some(n) = remaining_item_count {
        metadata.insert("remainingItemCount".into(), Value::from(n));
    }
    let metadata = serde_json::to_vec(&metadata).expect("a map of strings encodes");
    let size = items.iter().map(|i| i.len() + 1).sum::<usize>() + metadata.len() + 64;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(br#"{"apiVersion":"v1","items":["#);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.extend_from_slice(br#"],"kind":"List","metadata":"#);
    out.extend_from_slice(&metadata);
    out.push(b'}');
    out
}

/// Go's `APIObjectVersioner.ParseResourceVersion`: `""` and `"0"` mean any.
pub fn parse_resource_version(rv: &str) -> Result<i64> {
    if rv.is_empty() {
        return Ok(0);
    }
    // Go's ParseUint takes digits only: no sign, no spaces.
    rv.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| rv.parse::<u64>().ok())
        .flatten()
        .and_then(|v| i64::try_from(v).ok())
        .ok_or_else(|| {
            StorageError::invalid_argument(format!(
                "resourceVersion: Invalid value: {rv:?}: must be a non-negative decimal integer"
            ))
        })
}

/// The resourceVersion a watch starts after: as `parse_resource_version`,
/// short of the largest revision, after which nothing can follow.
pub fn parse_watch_resource_version(rv: &str) -> Result<i64> {
    match parse_resource_version(rv)? {
        i64::MAX => Err(StorageError::invalid_argument(format!(
            "resourceVersion: Invalid value: {rv:?}: no revision can follow it"
        ))),
        from => Ok(from),
    }
}

/// The read must observe at least `minimum`; today's Kubernetes answers a
/// future revision with a Timeout ("Too large resource version").
pub fn validate_minimum_resource_version(minimum: i64, current: i64) -> Result<()> {
    if minimum > current {
        return Err(StorageError::new(
            Code::Timeout,
            format!("Too large resource version: {minimum}, current: {current}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resource_versions_parse_like_go() {
        assert_eq!(parse_resource_version("").unwrap(), 0);
        assert_eq!(parse_resource_version("0").unwrap(), 0);
        assert_eq!(parse_resource_version("42").unwrap(), 42);
        for bad in [
            "-1",
            "abc",
            "1.5",
            " 1",
            "18446744073709551616",
            "99999999999999999999",
        ] {
            assert_eq!(
                parse_resource_version(bad).unwrap_err().code,
                Code::InvalidArgument,
                "{bad}"
            );
        }
    }

    #[test]
    fn watches_start_short_of_the_largest_revision() {
        assert_eq!(parse_watch_resource_version("").unwrap(), 0);
        assert_eq!(
            parse_watch_resource_version("9223372036854775806").unwrap(),
            i64::MAX - 1
        );
        for bad in ["9223372036854775807", "9223372036854775808", "x"] {
            assert_eq!(
                parse_watch_resource_version(bad).unwrap_err().code,
                Code::InvalidArgument,
                "{bad}"
            );
        }
    }

    #[test]
    fn too_large_resource_version_is_a_timeout() {
        assert!(validate_minimum_resource_version(5, 5).is_ok());
        let e = validate_minimum_resource_version(6, 5).unwrap_err();
        assert_eq!(e.code, Code::Timeout);
        assert_eq!(e.message, "Too large resource version: 6, current: 5");
    }

    #[test]
    fn create_refuses_a_set_resource_version() {
        assert!(check_unset_resource_version(br#"{"metadata":{"name":"a"}}"#).is_ok());
        assert!(check_unset_resource_version(br#"{"metadata":{"resourceVersion":"0"}}"#).is_ok());
        assert!(check_unset_resource_version(br#"{"metadata":{"resourceVersion":""}}"#).is_ok());
        assert!(check_unset_resource_version(br#"{"kind":"X"}"#).is_ok());
        let e =
            check_unset_resource_version(br#"{"metadata":{"resourceVersion":"12"}}"#).unwrap_err();
        assert_eq!(e.code, Code::InvalidObj);
        assert_eq!(
            e.message,
            "resourceVersion should not be set on objects to be created"
        );
        assert_eq!(
            check_unset_resource_version(b"[1]").unwrap_err().code,
            Code::InvalidObj
        );
    }

    #[test]
    fn storage_form_drops_derived_fields() {
        let out = prepare_for_storage(
            br#"{"metadata":{"name":"a","resourceVersion":"5","selfLink":"/x"},"b":1}"#,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, json!({"b":1,"metadata":{"name":"a"}}));
        assert_eq!(
            prepare_for_storage(b"{x").unwrap_err().code,
            Code::InvalidObj
        );
        assert_eq!(
            prepare_for_storage(br#"{"metadata":7}"#).unwrap_err().code,
            Code::InvalidObj
        );
    }

    #[test]
    fn list_objects_are_valid_json() {
        let items = vec![br#"{"a":1}"#.to_vec(), br#"{"b":2}"#.to_vec()];
        let v: Value = serde_json::from_slice(&list_object(&items, 9, "tok", Some(4))).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion":"v1","kind":"List","metadata":{"resourceVersion":"9","continue":"tok","remainingItemCount":4},"items":[{"a":1},{"b":2}]})
        );
        let v: Value = serde_json::from_slice(&list_object(&[], 3, "", None)).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion":"v1","kind":"List","metadata":{"resourceVersion":"3"},"items":[]})
        );
    }
}
