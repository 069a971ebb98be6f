//! The protobuf codec against a real etcd: objects kube-apiserver 1.12 stored
//! as protobuf (tests/fixtures/vectors), plain and encrypted at rest, read
//! through the store a config builds.

mod common;

use apiserver_storage::config::Config;
use apiserver_storage::factory;
use apiserver_storage::storage::{Code, GetOptions, Interface};
use apiserver_storage::value;
use base64::Engine;
use common::cbuild::manifest_dir;
use common::{wire, Etcd};
use serde_json::Value;

struct Vector {
    name: String,
    etcd_key: String,
    key: String,
    stored: Vec<u8>,
    expected: Value,
}

fn protobuf_vectors() -> Vec<Vector> {
    let path = manifest_dir().join("tests/fixtures/vectors/vectors.jsonl");
    let vectors: Vec<Vector> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["codec"] == "protobuf")
        .map(|v| {
            assert_eq!(v["prefix"], "/registry");
            Vector {
                name: v["name"].as_str().unwrap().into(),
                etcd_key: v["etcd_key"].as_str().unwrap().into(),
                key: v["key"].as_str().unwrap().into(),
                stored: base64::engine::general_purpose::STANDARD
                    .decode(v["stored_b64"].as_str().unwrap())
                    .unwrap(),
                // 1.12 served the zero creationTimestamp as null; 1.37
                // leaves it out (`omitzero`).
                expected: {
                    let mut expected = v["expected_object"].clone();
                    let metadata = expected["metadata"].as_object_mut().unwrap();
                    assert_eq!(
                        metadata.shift_remove("creationTimestamp"),
                        Some(Value::Null)
                    );
                    expected
                },
            }
        })
        .collect();
    assert_eq!(vectors.len(), 2, "a ConfigMap and a Secret");
    vectors
}

fn with_rv(mut object: Value, rv: i64) -> Value {
    object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
    object
}

fn get(rt: &tokio::runtime::Runtime, store: &dyn Interface, key: &str) -> (Value, i64) {
    let object = rt
        .block_on(store.get(key, &GetOptions::default()))
        .unwrap()
        .unwrap();
    (
        serde_json::from_slice(&object.data).unwrap(),
        object.resource_version,
    )
}

#[test]
fn kube_apiserver_protobuf_objects_read_as_json() {
    let etcd = Etcd::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = Config::from_json(&etcd.config(r#""codec":"protobuf""#)).unwrap();
    let (store, _destroy) = rt.block_on(factory::create(&config)).unwrap();
    for v in protobuf_vectors() {
        let rv = etcd.put(&v.etcd_key, &v.stored);
        let (got, resource_version) = get(&rt, store.as_ref(), &v.key);
        assert_eq!(got, with_rv(v.expected.clone(), rv), "{}", v.name);
        assert_eq!(resource_version, rv);
    }
    // The same store reads JSON values, as clusters hold both.
    let json = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"j"}}"#;
    let rv = etcd.put("/registry/configmaps/default/j", json);
    let (got, _) = get(&rt, store.as_ref(), "/configmaps/default/j");
    assert_eq!(got["metadata"]["resourceVersion"], rv.to_string());
}

#[test]
fn encrypted_protobuf_objects_read_as_json() {
    let etcd = Etcd::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let secret = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let config = Config::from_json(&etcd.config(&format!(
        r#""codec":"protobuf","transformer":{{"providers":[{{"aesgcm":{{"keys":[{{"name":"key1","secret":"{secret}"}}]}}}}]}}"#
    )))
    .unwrap();
    let transformer = value::from_config(config.transformer.as_ref()).unwrap();
    let (store, _destroy) = rt.block_on(factory::create(&config)).unwrap();
    for v in protobuf_vectors() {
        let encrypted = transformer
            .transform_to_storage(&v.stored, v.etcd_key.as_bytes())
            .unwrap();
        assert!(encrypted.starts_with(b"k8s:enc:aesgcm:v1:key1:"));
        let rv = etcd.put(&v.etcd_key, &encrypted);
        let (got, _) = get(&rt, store.as_ref(), &v.key);
        assert_eq!(got, with_rv(v.expected.clone(), rv), "{}", v.name);
    }
}

#[test]
fn undecodable_protobuf_objects_are_reported() {
    let etcd = Etcd::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = Config::from_json(&etcd.config(r#""codec":"protobuf""#)).unwrap();
    let (store, _destroy) = rt.block_on(factory::create(&config)).unwrap();
    let vectors = protobuf_vectors();
    let v = vectors
        .iter()
        .find(|v| v.expected["kind"] == "ConfigMap")
        .unwrap();

    let truncated = &v.stored[..v.stored.len() - 10];
    etcd.put(&v.etcd_key, truncated);
    let e = rt
        .block_on(store.get(&v.key, &GetOptions::default()))
        .unwrap_err();
    assert_eq!(e.code, Code::CorruptObj);
    assert_eq!(e.key, v.etcd_key);

    // The same object under a kind no schema knows.
    let mut renamed = v.stored.clone();
    let at = renamed.windows(9).position(|w| w == b"ConfigMap").unwrap();
    renamed[at + 7] = b'u';
    etcd.put(&v.etcd_key, &renamed);
    let e = rt
        .block_on(store.get(&v.key, &GetOptions::default()))
        .unwrap_err();
    assert_eq!(e.code, Code::Unsupported);
    assert_eq!(e.key, v.etcd_key);
    assert!(e.message.contains("ConfigMup"), "{}", e.message);
}

#[test]
fn writes_are_stored_as_protobuf_and_read_back_unchanged() {
    let etcd = Etcd::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = Config::from_json(&etcd.config(r#""codec":"protobuf""#)).unwrap();
    let (store, _destroy) = rt.block_on(factory::create(&config)).unwrap();
    let cm = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "default", "labels": {"a": "b"}},
        "data": {"mode": "fast"}
    });
    let created = rt
        .block_on(store.create("/configmaps/default/settings", cm.to_string().as_bytes(), 0))
        .unwrap();
    let raw = rt.block_on(async {
        let mut c = etcd_client::Client::connect(etcd.endpoints(), None)
            .await
            .unwrap();
        c.get("/registry/configmaps/default/settings", None)
            .await
            .unwrap()
            .kvs()[0]
            .value()
            .to_vec()
    });
    assert!(
        raw.starts_with(b"k8s\x00"),
        "stored as kube-apiserver's protobuf envelope"
    );
    let (got, rv) = get(&rt, store.as_ref(), "/configmaps/default/settings");
    assert_eq!(rv, created.resource_version);
    assert_eq!(got, with_rv(cm.clone(), rv));

    // GuaranteedUpdate re-encodes the new object as protobuf too.
    let mut relabel = |cur: Option<&apiserver_storage::storage::Object>| {
        let mut v: Value = serde_json::from_slice(&cur.unwrap().data).unwrap();
        v["data"]["mode"] = Value::String("safe".into());
        Ok(serde_json::to_vec(&v).unwrap().into())
    };
    let updated = rt
        .block_on(store.guaranteed_update(
            "/configmaps/default/settings",
            false,
            None,
            &mut relabel,
        ))
        .unwrap();
    let (got, rv) = get(&rt, store.as_ref(), "/configmaps/default/settings");
    assert_eq!(rv, updated.resource_version);
    assert_eq!(got["data"]["mode"], "safe");
}

/// A Pod written by a newer API server, with fields the 1.37 schema does not
/// know at the top, in the spec, in a container and in a map value: reads
/// report them (the info flag, a metric), and an update refuses to drop them,
/// leaving etcd unchanged.
#[test]
fn fields_the_schema_does_not_know_are_reported_and_never_dropped() {
    let pod = std::fs::read(common::k8s_api_testdata().join("HEAD/core.v1.Pod.pb")).unwrap();
    let raw = &pod[4..]; // after `k8s\0`: the runtime.Unknown envelope; its `raw` is field 2
    let injected = [
        (vec![2], 9001, "#9001"),
        (vec![2, 2], 9002, "spec#9002"),
        (vec![2, 2, 2], 9003, "spec.containers[0]#9003"),
        (
            vec![2, 2, 2, 8, 1, 2],
            9004,
            "spec.containers[0].resources.limits[limitsKey]#9004",
        ),
    ];
    let etcd = Etcd::start();
    let config = Config::from_json(&etcd.config(r#""codec":"protobuf""#)).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (store, _destroy) = rt.block_on(factory::create(&config)).unwrap();
    // The fixture itself holds nothing unknown.
    etcd.put("/registry/pods/default/plain", &pod);
    let object = rt
        .block_on(store.get("/pods/default/plain", &GetOptions::default()))
        .unwrap()
        .unwrap();
    assert!(object.unknown_fields.is_empty());
    let mut expected: Value = serde_json::from_slice(&object.data).unwrap();
    expected["metadata"]["resourceVersion"] = Value::Null;
    for (i, (path, number, reported)) in injected.iter().enumerate() {
        let stored = [
            &pod[..4],
            &wire::inject(raw, path, &wire::field(*number, 7)),
        ]
        .concat();
        let key = format!("/pods/default/p{i}");
        etcd.put(&format!("/registry{key}"), &stored);

        let object = rt
            .block_on(store.get(&key, &GetOptions::default()))
            .unwrap()
            .unwrap();
        assert_eq!(object.unknown_fields, vec![reported.to_string()]);
        // The known fields read as without the injected one.
        let (mut got, _) = get(&rt, &*store, &key);
        got["metadata"]["resourceVersion"] = Value::Null;
        assert_eq!(got, expected);

        let mut calls = 0;
        let e = rt
            .block_on(store.guaranteed_update(&key, false, None, &mut |current| {
                calls += 1;
                Ok(current.unwrap().data.clone().into())
            }))
            .unwrap_err();
        assert_eq!(e.code, Code::Unsupported, "{}", e.message);
        assert!(
            e.message.contains(reported) && e.message.contains(&key),
            "{}",
            e.message
        );
        assert_eq!(calls, 0);
        assert_eq!(
            etcd.raw(&format!("/registry{key}")).unwrap(),
            stored,
            "etcd changed"
        );
    }
    // Two gets and the update's read of each.
    let metrics = store.metrics_text();
    assert!(
        metrics.contains("apiserver_storage_unknown_fields_reads_total 12"),
        "{metrics}"
    );
}
