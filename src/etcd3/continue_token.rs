//! Kubernetes' list continue tokens: base64url (no padding) of
//! `{"v":"meta.k8s.io/v1","rv":N,"start":"<key after the prefix>"}`, so tokens
//! interoperate with kube-apiserver's.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::storage::{clean_path, Result, StorageError};

#[derive(Serialize, Deserialize)]
struct Token {
    #[serde(rename = "v")]
    api_version: String,
    #[serde(rename = "rv")]
    resource_version: i64,
    #[serde(rename = "start")]
    start_key: String,
}

const API_VERSION: &str = "meta.k8s.io/v1";

pub fn encode(key: &str, key_prefix: &str, resource_version: i64) -> Result<String> {
    let start_key = key.strip_prefix(key_prefix).ok_or_else(|| {
        StorageError::internal("unable to encode next field: the key and key prefix do not match")
    })?;
    let token = Token {
        api_version: API_VERSION.into(),
        resource_version,
        start_key: start_key.into(),
    };
    let json = serde_json::to_vec(&token).expect("a token encodes");
    Ok(URL_SAFE_NO_PAD.encode(json))
}

fn invalid(why: impl std::fmt::Display) -> StorageError {
    StorageError::invalid_argument(format!(
        "invalid continue token: continue key is not valid: {why}"
    ))
}

/// The full etcd key to start from and the token's revision (< 0: latest).
pub fn decode(token: &str, key_prefix: &str) -> Result<(String, i64)> {
    let data = URL_SAFE_NO_PAD.decode(token).map_err(invalid)?;
    let t: Token = serde_json::from_slice(&data).map_err(invalid)?;
    if t.api_version != API_VERSION {
        return Err(invalid(format!(
            "server does not recognize this encoded version {:?}",
            t.api_version
        )));
    }
    if t.resource_version == 0 {
        return Err(invalid(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ));
    }
    if t.start_key.is_empty() {
        return Err(invalid("encoded start key empty (version meta.k8s.io/v1)"));
    }
    // A start key changed by cleaning could reach above the prefix.
    let key = if t.start_key.starts_with('/') {
        t.start_key.clone()
    } else {
        format!("/{}", t.start_key)
    };
    if clean_path(&key) != key {
        return Err(invalid(&t.start_key));
    }
    Ok((format!("{key_prefix}{}", &key[1..]), t.resource_version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_kubernetes_format() {
        let t = encode("/registry/pods/ns/a\u{0}", "/registry/pods/", 42).unwrap();
        let json = URL_SAFE_NO_PAD.decode(&t).unwrap();
        assert_eq!(
            json,
            br#"{"v":"meta.k8s.io/v1","rv":42,"start":"ns/a\u0000"}"#
        );
        assert_eq!(
            decode(&t, "/registry/pods/").unwrap(),
            ("/registry/pods/ns/a\u{0}".into(), 42)
        );
    }

    #[test]
    fn bad_tokens_are_rejected() {
        let enc = |s: &str| URL_SAFE_NO_PAD.encode(s);
        for bad in [
            "!!!".to_string(),
            enc("{"),
            enc(r#"{"v":"meta.k8s.io/v2","rv":1,"start":"a"}"#),
            enc(r#"{"v":"meta.k8s.io/v1","rv":0,"start":"a"}"#),
            enc(r#"{"v":"meta.k8s.io/v1","rv":1,"start":""}"#),
            enc(r#"{"v":"meta.k8s.io/v1","rv":1,"start":"../../secrets/x"}"#),
            enc(r#"{"v":"meta.k8s.io/v1","rv":1,"start":"a//b"}"#),
        ] {
            let e = decode(&bad, "/registry/pods/").unwrap_err();
            assert_eq!(e.code, crate::storage::Code::InvalidArgument, "{bad}");
        }
        // Negative revisions mean "latest", as in Kubernetes.
        assert_eq!(
            decode(&enc(r#"{"v":"meta.k8s.io/v1","rv":-1,"start":"a"}"#), "/p/")
                .unwrap()
                .1,
            -1
        );
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::fuzz_config())]

        #[test]
        fn arbitrary_tokens_are_rejected_or_stay_under_the_prefix(token in "[A-Za-z0-9_-]{0,120}") {
            if let Ok((key, _)) = decode(&token, "/registry/pods/") {
                prop_assert!(key.starts_with("/registry/pods/"));
            }
        }

        #[test]
        fn arbitrary_json_tokens_never_escape(start in ".{0,40}", rv in any::<i64>()) {
            let json = serde_json::json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start}).to_string();
            if let Ok((key, _)) = decode(&URL_SAFE_NO_PAD.encode(json), "/registry/pods/") {
                prop_assert!(key.starts_with("/registry/pods/"));
                prop_assert!(!key.contains("/../") && !key.ends_with("/.."));
            }
        }

        #[test]
        fn tokens_round_trip(name in "[a-z0-9.-]{1,30}", rv in 1i64..i64::MAX) {
            let key = format!("/registry/pods/ns/{name}\u{0}");
            let token = encode(&key, "/registry/pods/", rv).unwrap();
            prop_assert_eq!(decode(&token, "/registry/pods/").unwrap(), (key, rv));
        }
    }
}
