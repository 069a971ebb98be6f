//! Interoperability: values written by kube-apiserver 1.12's own storage code
//! (tests/fixtures/vectors), put into a real etcd and read back through the
//! store and through the C ABI.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use apiserver_storage::config::Config;
use apiserver_storage::factory;
use apiserver_storage::storage::{Code, GetOptions};
use base64::Engine;
use common::cbuild::{assert_success, compile_c, manifest_dir, run_c};
use common::Etcd;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    manifest_dir().join("tests/fixtures/vectors").join(name)
}

struct Vector {
    name: String,
    etcd_key: String,
    prefix: String,
    key: String,
    stored: Vec<u8>,
    resource: String,
    stale: bool,
    expected: Value,
    written_by: String,
}

/// The JSON-codec vectors (the protobuf ones need the protobuf codec).
fn json_vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(fixture("vectors.jsonl")).unwrap();
    let vectors: Vec<Vector> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["codec"] == "json")
        .map(|v| Vector {
            name: v["name"].as_str().unwrap().into(),
            etcd_key: v["etcd_key"].as_str().unwrap().into(),
            prefix: v["prefix"].as_str().unwrap().into(),
            key: v["key"].as_str().unwrap().into(),
            stored: base64::engine::general_purpose::STANDARD
                .decode(v["stored_b64"].as_str().unwrap())
                .unwrap(),
            resource: v["resource"].as_str().unwrap().into(),
            stale: v["stale_under_read_config"].as_bool().unwrap(),
            expected: v["expected_object"].clone(),
            written_by: v["written_by"].as_str().unwrap().into(),
        })
        .collect();
    assert_eq!(
        vectors.len(),
        4,
        "aesgcm, aescbc, secretbox and identity vectors"
    );
    vectors
}

fn config(etcd: &Etcd, prefix: &str, file: &str, resource: &str) -> String {
    let file = fixture(file);
    etcd.config(&format!(
        r#""prefix":"{prefix}","transformer":{{"encryption_config_file":"{}","resource":"{resource}"}}"#,
        file.display()
    ))
}

fn with_rv(mut object: Value, rv: i64) -> Value {
    object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
    object
}

#[test]
fn kube_apiserver_values_read_exactly() {
    let etcd = Etcd::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for v in json_vectors() {
        let rv = etcd.put(&v.etcd_key, &v.stored);
        for file in ["read.yaml", "read-v1.yaml"] {
            let config = Config::from_json(&config(&etcd, &v.prefix, file, &v.resource)).unwrap();
            let (store, _destroy) = rt.block_on(factory::create(&config)).unwrap();
            let object = rt
                .block_on(store.get(&v.key, &GetOptions::default()))
                .unwrap()
                .unwrap();
            let got: Value = serde_json::from_slice(&object.data).unwrap();
            assert_eq!(
                got,
                with_rv(v.expected.clone(), rv),
                "{} via {file}",
                v.name
            );
            assert_eq!(object.resource_version, rv);
            assert_eq!(object.stale, v.stale, "{} stale via {file}", v.name);
        }
    }
}

#[test]
fn without_the_keys_encrypted_values_are_corrupt() {
    let etcd = Etcd::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let plain = Config::from_json(&etcd.config("")).unwrap();
    let (store, _destroy) = rt.block_on(factory::create(&plain)).unwrap();
    for v in json_vectors() {
        etcd.put(&v.etcd_key, &v.stored);
        let result = rt.block_on(store.get(&v.key, &GetOptions::default()));
        if v.written_by == "identity" {
            assert!(result.is_ok(), "{}", v.name);
        } else {
            let e = result.unwrap_err();
            assert_eq!(e.code, Code::CorruptObj, "{}", v.name);
            assert_eq!(e.key, v.etcd_key);
            assert!(
                e.message
                    .contains("identity transformer tried to read encrypted data"),
                "{}",
                e.message
            );
        }
    }
}

fn api_test() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| compile_c(&["tests/c/api_test.c"], "api_test_vectors", &[]))
}

fn run(args: &[&str]) {
    let output = run_c(api_test(), args);
    assert_success(args[0], &output);
}

/// From C: the stale flag, and every way a stored value can be damaged.
#[test]
fn encrypted_values_through_the_c_abi() {
    let etcd = Etcd::start();
    for v in json_vectors() {
        let rv = etcd.put(&v.etcd_key, &v.stored);
        let config = config(&etcd, &v.prefix, "read-v1.yaml", &v.resource);
        let name = v.expected["metadata"]["name"].as_str().unwrap();
        run(&[
            "info",
            &config,
            &v.key,
            &rv.to_string(),
            name,
            if v.stale { "1" } else { "0" },
        ]);
        if v.written_by == "identity" {
            continue;
        }
        let damaged: Vec<(&str, Vec<u8>)> = vec![
            ("truncated", v.stored[..v.stored.len() - 5].to_vec()),
            (
                "prefix only",
                v.stored[..v.stored.iter().rposition(|&b| b == b':').unwrap() + 1].to_vec(),
            ),
            ("tampered", {
                let mut t = v.stored.clone();
                let last = t.len() - 1;
                t[last] ^= 0x01;
                t
            }),
            ("unknown key name", {
                let s = String::from_utf8_lossy(&v.stored).replacen(":key1:", ":key9:", 1);
                s.into_bytes()
            }),
        ];
        for (what, bytes) in damaged {
            // aescbc has no authentication: a flipped last byte breaks the
            // padding, which is checked.
            let key = format!("{}-{}", v.key, what.replace(' ', "-"));
            etcd.put(&format!("{}{key}", v.prefix), &bytes);
            run(&["corrupt", &config, &key, &format!("{}{key}", v.prefix)]);
        }
        // The right key name with the wrong key material, as an inline provider list.
        let wrong = etcd.config(&format!(
            r#""prefix":"{}","transformer":{{"providers":[{{"{}":{{"keys":[{{"name":"key1","secret":"{}"}}]}}}}]}}"#,
            v.prefix,
            v.written_by,
            base64::engine::general_purpose::STANDARD.encode([7u8; 32])
        ));
        run(&["corrupt", &wrong, &v.key, &v.etcd_key]);
        // Moved to another key: only aesgcm authenticates the key.
        let moved = format!("{}-moved", v.key);
        let moved_rv = etcd.put(&format!("{}{moved}", v.prefix), &v.stored);
        if v.written_by == "aesgcm" {
            run(&["corrupt", &config, &moved, &format!("{}{moved}", v.prefix)]);
        } else {
            run(&[
                "info",
                &config,
                &moved,
                &moved_rv.to_string(),
                name,
                if v.stale { "1" } else { "0" },
            ]);
        }
    }
}
