//! Property-based fuzzing of encryption configuration and stored-value
//! transforms through the public API (`FUZZ_CASES` cases each, default 2,000).

use apiserver_storage::storage::Code;
use apiserver_storage::value::{self, config::TransformerConfig};
use base64::Engine;
use proptest::prelude::*;

fn cases() -> ProptestConfig {
    ProptestConfig::with_cases(
        std::env::var("FUZZ_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(2000),
    )
}

const KEY32: &str = "dwhZ/08myNrj5qqgb2WFNsPdHF5GCp/2rQY7cmtIG5A=";

fn all_providers() -> std::sync::Arc<dyn value::Transformer> {
    let json = format!(
        r#"{{"providers":[{{"aesgcm":{{"keys":[{{"name":"key1","secret":"{KEY32}"}}]}}}},{{"aescbc":{{"keys":[{{"name":"key1","secret":"{KEY32}"}}]}}}},{{"secretbox":{{"keys":[{{"name":"key1","secret":"{KEY32}"}}]}}}},{{"identity":{{}}}}]}}"#
    );
    let config: TransformerConfig = serde_json::from_str(&json).unwrap();
    value::from_config(Some(&config)).unwrap()
}

fn prefix() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"k8s:enc:aesgcm:v1:key1:".to_vec()),
        Just(b"k8s:enc:aescbc:v1:key1:".to_vec()),
        Just(b"k8s:enc:secretbox:v1:key1:".to_vec()),
        Just(b"k8s:enc:".to_vec()),
        Just(Vec::new()),
    ]
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn stored_bytes_never_panic(p in prefix(), body in prop::collection::vec(any::<u8>(), 0..200), key in "/[a-z/]{0,20}") {
        let t = all_providers();
        let mut data = p.clone();
        data.extend_from_slice(&body);
        let _ = t.transform_from_storage(&data, key.as_bytes());
    }

    #[test]
    fn writes_read_back_under_the_same_key(plain in prop::collection::vec(any::<u8>(), 0..300), key in "/[a-z/]{1,20}") {
        let t = all_providers();
        let stored = t.transform_to_storage(&plain, key.as_bytes()).unwrap();
        prop_assert!(stored.starts_with(b"k8s:enc:aesgcm:v1:key1:"));
        let (back, stale) = t.transform_from_storage(&stored, key.as_bytes()).unwrap();
        prop_assert_eq!(back.as_ref(), plain.as_slice());
        prop_assert!(!stale);
    }

    #[test]
    fn arbitrary_provider_lists_are_errors_not_panics(
        provider in prop_oneof![
            Just("aesgcm".to_string()),
            Just("aescbc".to_string()),
            Just("secretbox".to_string()),
            Just("identity".to_string()),
            Just("kms".to_string()),
            "[a-z]{1,8}",
        ],
        name in ".{0,10}",
        secret in prop_oneof![prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| base64::engine::general_purpose::STANDARD.encode(b)), ".{0,50}"],
    ) {
        let json = serde_json::json!({"providers": [{provider: {"keys": [{"name": name, "secret": secret}]}}]});
        if let Ok(config) = serde_json::from_value::<TransformerConfig>(json) {
            if let Err(e) = value::from_config(Some(&config)) {
                prop_assert!(matches!(e.code, Code::InvalidConfig | Code::Unsupported), "{:?}", e);
                prop_assert!(!e.message.contains(secret.as_str()) || secret.len() < 8, "secret in message: {}", e.message);
            }
        }
    }

    #[test]
    fn arbitrary_encryption_config_files_are_errors_not_panics(text in ".{0,300}", resource in "[a-z.*]{1,12}") {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &text).unwrap();
        let json = serde_json::json!({"encryption_config_file": file.path(), "resource": resource});
        if let Ok(config) = serde_json::from_value::<TransformerConfig>(json) {
            if let Err(e) = value::from_config(Some(&config)) {
                prop_assert!(matches!(e.code, Code::InvalidConfig | Code::Unsupported), "{:?}", e);
            }
        }
    }
}
