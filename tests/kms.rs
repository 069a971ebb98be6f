//! The kms provider against the test KMS plugin (`tests/kube/kmsplugin`, on
//! the upstream plugin library) and a real etcd: the C ABI under valgrind
//! (tests/c/kms_test.c) for reads, writes, failures, health and
//! re-encryption, and the Rust API for re-encryption beside a concurrent
//! writer. Interop with kube-apiserver's own KMS code is in tests/differential.rs.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use apiserver_storage::config::Config;
use apiserver_storage::factory;
use apiserver_storage::storage::{GetOptions, Interface};
use common::cbuild::{assert_success, compile_c, run_c};
use common::kms::{read_varint, KmsPlugin};
use common::Etcd;
use serde_json::{json, Value};

fn program() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| compile_c(&["tests/c/kms_test.c"], "kms_test", &[]))
}

fn run(case: &str, args: &[&str]) -> String {
    let output = run_c(program(), &[&[case], args].concat());
    assert_success(case, &output);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A store config whose providers are `providers` (a JSON list).
fn config(etcd: &Etcd, providers: Value) -> String {
    let transformer = json!({ "providers": providers });
    etcd.config(&format!(
        r#""request_timeout_ms":20000,"health_timeout_ms":20000,"transformer":{transformer}"#
    ))
}

fn v2(name: &str, endpoint: &str, timeout: &str) -> Value {
    json!({ "kms": { "apiVersion": "v2", "name": name, "endpoint": endpoint, "timeout": timeout } })
}

fn v1(name: &str, endpoint: &str) -> Value {
    json!({ "kms": { "name": name, "endpoint": endpoint, "cachesize": 10, "timeout": "3s" } })
}

fn secret(name: &str, n: usize) -> String {
    json!({"kind":"Secret","apiVersion":"v1","metadata":{"name":name,"namespace":"ns"},"data":{"n":format!("{n:08}")}}).to_string()
}

/// The key ID a stored KMS v2 value names: field 2 of its EncryptedObject.
fn key_id_of(stored: &[u8], prefix: &str) -> String {
    let mut body = stored
        .strip_prefix(prefix.as_bytes())
        .expect("the KMS v2 prefix");
    while !body.is_empty() {
        let (tag, rest) = read_varint(body);
        let (len, rest) = read_varint(rest);
        let (field, rest) = rest.split_at(len as usize);
        if tag == (2 << 3 | 2) {
            return String::from_utf8(field.to_vec()).unwrap();
        }
        body = rest;
    }
    panic!("no key ID in {stored:?}")
}

/// Writes and reads through KMS v2: one seed per key ID, and once a data key
/// is cached, reads call no plugin at all.
#[test]
fn reads_with_a_warm_cache_call_no_plugin() {
    let etcd = Etcd::start();
    let kms = KmsPlugin::start();
    let config = config(&etcd, json!([v2("p", &kms.v2_endpoint(), "3s")]));
    run("put", &[&config, "/secrets/ns/a", &secret("a", 1)]);
    run("put", &[&config, "/secrets/ns/b", &secret("b", 2)]);
    let stored = etcd.raw("/registry/secrets/ns/a").unwrap();
    assert_eq!(key_id_of(&stored, "k8s:enc:kms:v2:p:"), "key-1");
    let before = kms.stats();
    // A new process: the first read fetches the data key, the others use it.
    run("reads", &[&config, "/secrets/ns/a", "00000001", "1001"]);
    let after = kms.stats();
    let (decrypts, encrypts) = (
        after.v2_decrypt - before.v2_decrypt,
        after.v2_encrypt - before.v2_encrypt,
    );
    println!(
        "1001 reads in a new process: {decrypts} Decrypt, {encrypts} Encrypt, {} Status calls",
        after.v2_status - before.v2_status
    );
    assert_eq!(
        decrypts, 1,
        "one Decrypt for the cold cache, none for the 1000 after"
    );
    assert!(encrypts <= 1, "at most the new process's own seed");
}

/// Plugin failures through the C ABI: not running is UNREACHABLE naming the
/// socket, an error from the plugin is CORRUPT_OBJ naming the key, a hang is
/// TIMEOUT within the provider's timeout, and a tampered value is CORRUPT_OBJ.
#[test]
fn plugin_failures_have_their_codes() {
    let etcd = Etcd::start();
    let kms = KmsPlugin::start();
    let good = config(&etcd, json!([v2("p", &kms.v2_endpoint(), "10s")]));
    let quick = config(&etcd, json!([v2("p", &kms.v2_endpoint(), "1s")]));
    run("put", &[&good, "/secrets/ns/a", &secret("a", 1)]);

    let gone = kms.dir().join("nobody-listens.sock");
    let gone = gone.to_str().unwrap();
    let absent = config(&etcd, json!([v2("p", &format!("unix://{gone}"), "1s")]));
    run("get_fails", &[&absent, "/secrets/ns/a", "5", gone, "1"]);

    kms.fail();
    run(
        "get_fails",
        &[&good, "/secrets/ns/a", "7", "/registry/secrets/ns/a", "1"],
    );
    kms.reset();

    kms.hang();
    run(
        "get_fails",
        &[&quick, "/secrets/ns/a", "6", "within 1s", "1"],
    );
    kms.reset();

    let mut tampered = etcd.raw("/registry/secrets/ns/a").unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    etcd.put("/registry/secrets/ns/a", &tampered);
    run(
        "get_fails",
        &[&good, "/secrets/ns/a", "7", "/registry/secrets/ns/a", "1"],
    );
    etcd.put("/registry/secrets/ns/a", b"k8s:enc:kms:v2:p:\x0a\x00");
    run(
        "get_fails",
        &[&good, "/secrets/ns/a", "7", "encrypted data is empty", "1"],
    );
}

/// A value wrapped by another plugin (another key under the same key ID) is
/// CORRUPT_OBJ naming the key; the KMS metrics count the calls, with
/// kube-apiserver's names.
#[test]
fn another_plugins_value_is_corrupt_and_calls_are_measured() {
    let etcd = Etcd::start();
    let first = KmsPlugin::start();
    let other = KmsPlugin::start();
    let written = config(&etcd, json!([v2("p", &first.v2_endpoint(), "10s")]));
    run("put", &[&written, "/secrets/ns/a", &secret("a", 1)]);
    drop(first);
    let read = config(&etcd, json!([v2("p", &other.v2_endpoint(), "10s")]));
    run(
        "get_fails",
        &[&read, "/secrets/ns/a", "7", "/registry/secrets/ns/a", "10"],
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (store, _destroy) = rt
        .block_on(factory::create(&Config::from_json(&read).unwrap()))
        .unwrap();
    rt.block_on(store.create("/secrets/ns/b", secret("b", 2).as_bytes(), 0))
        .unwrap();
    rt.block_on(store.get("/secrets/ns/a", &GetOptions::default()))
        .unwrap_err();
    let text = store.metrics_text();
    for series in [
        r#"apiserver_envelope_encryption_kms_operations_latency_seconds_count{grpc_status_code="OK",method_name="/v2.KeyManagementService/Status",provider_name="p"} 1"#,
        r#"apiserver_envelope_encryption_kms_operations_latency_seconds_count{grpc_status_code="OK",method_name="/v2.KeyManagementService/Encrypt",provider_name="p"} 1"#,
        r#"method_name="/v2.KeyManagementService/Decrypt",provider_name="p"} 1"#,
        "apiserver_storage_envelope_transformation_cache_misses_total 1",
        r#"apiserver_envelope_encryption_dek_source_cache_size{provider_name="p"} 1"#,
        r#"apiserver_envelope_encryption_key_id_hash_total{apiserver_id_hash="",key_id_hash="sha256:"#,
        r#"apiserver_storage_transformation_operations_total{status="OK",transformation_type="to_storage",transformer_prefix="k8s:enc:kms:v2:p:"} 1"#,
    ] {
        assert!(text.contains(series), "no {series} in:\n{text}");
    }
    assert!(!text.contains("key-1"), "a key ID appears only hashed");
}

/// The health check includes the KMS plugins, as kube-apiserver's
/// `/healthz/kms-providers`, and names the provider that fails.
#[test]
fn health_covers_the_plugins() {
    let etcd = Etcd::start();
    let kms = KmsPlugin::start();
    let good = config(&etcd, json!([v2("p", &kms.v2_endpoint(), "1s")]));
    run("health", &[&good, "0", ""]);
    kms.unhealthy();
    run("health", &[&good, "5", "kmsv2 Provider p is not healthy"]);
    kms.reset();
    kms.hang();
    run("health", &[&good, "6", "KMS provider \"p\""]);
    kms.reset();
    let absent = config(
        &etcd,
        json!([v2("q", "unix:///nonexistent/kms.sock", "1s")]),
    );
    run("health", &[&absent, "5", "/nonexistent/kms.sock"]);
    let v1_good = config(&etcd, json!([v1("old", &kms.v1_endpoint())]));
    run("health", &[&v1_good, "0", ""]);
}

/// After the plugin's key rotates, exactly the objects under the old key ID
/// are stale, and one re-encryption call rewrites exactly those; a value
/// that cannot be read is counted and reported, not skipped silently.
#[test]
fn reencryption_rewrites_exactly_the_stale_objects() {
    let etcd = Etcd::start();
    let kms = KmsPlugin::start();
    let config = config(&etcd, json!([v2("p", &kms.v2_endpoint(), "3s")]));
    for i in 0..5 {
        run(
            "put",
            &[&config, &format!("/secrets/ns/old{i}"), &secret("old", i)],
        );
    }
    let new_key = kms.rotate();
    for i in 0..2 {
        run(
            "put",
            &[&config, &format!("/secrets/ns/new{i}"), &secret("new", i)],
        );
    }
    etcd.put("/registry/secrets/ns/broken", b"k8s:enc:kms:v2:p:garbage");
    let out = run("reencrypt", &[&config, "/secrets", "8", "5", "1"]);
    println!("{out}");
    for (key, _) in etcd.revisions_under("/registry/secrets/ns") {
        if !key.ends_with("broken") {
            let stored = etcd.raw(&key).unwrap();
            assert_eq!(key_id_of(&stored, "k8s:enc:kms:v2:p:"), new_key, "{key}");
        }
    }
}

/// Re-encryption beside a running writer: every update the writer makes is
/// kept (compare-and-swap), and every object ends under the new key.
#[test]
fn reencryption_keeps_a_concurrent_writers_updates() {
    let etcd = Etcd::start();
    let kms = KmsPlugin::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let open = || {
        let config =
            Config::from_json(&config(&etcd, json!([v2("p", &kms.v2_endpoint(), "3s")]))).unwrap();
        rt.block_on(factory::create(&config)).unwrap().0
    };
    let store: Arc<dyn Interface> = open();
    let n = 300;
    rt.block_on(async {
        for i in 0..n {
            store
                .create(&format!("/secrets/ns/s{i}"), secret("s", 0).as_bytes(), 0)
                .await
                .unwrap();
        }
    });
    kms.rotate();
    // The writer is another client (its own handle), bumping 30 objects.
    let writer = open();
    let stop = Arc::new(AtomicBool::new(false));
    let writes = std::thread::scope(|scope| {
        let (stopping, writer, rt) = (stop.clone(), writer.clone(), &rt);
        let handle = scope.spawn(move || {
            let mut last = vec![0usize; 30];
            let mut round = 0;
            while !stopping.load(Ordering::Relaxed) || round < 3 {
                round += 1;
                for (i, value) in last.iter_mut().enumerate() {
                    let key = format!("/secrets/ns/s{}", i * 10);
                    let next = secret("s", round);
                    rt.block_on(writer.guaranteed_update(&key, false, None, &mut |_| {
                        Ok(next.clone().into_bytes().into())
                    }))
                    .unwrap();
                    *value = round;
                }
            }
            last
        });
        let mut seen = Vec::new();
        let counts = rt
            .block_on(store.reencrypt("/secrets", &mut |c, failure| {
                assert!(failure.is_none(), "{failure:?}");
                seen.push(c.seen);
                Ok(())
            }))
            .unwrap();
        stop.store(true, Ordering::Relaxed);
        let last = handle.join().unwrap();
        println!("re-encryption beside a writer: {counts:?}, pages {seen:?}");
        assert_eq!(counts.seen, n as i64);
        assert_eq!(counts.failed, 0);
        last
    });
    let new_key = kms.key_id();
    for i in 0..n {
        let key = format!("/secrets/ns/s{i}");
        let got = rt
            .block_on(store.get(&key, &GetOptions::default()))
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_slice(&got.data).unwrap();
        let want = if i % 10 == 0 { writes[i / 10] } else { 0 };
        assert_eq!(
            v["data"]["n"],
            format!("{want:08}"),
            "{key}: the writer's last update is kept"
        );
        let stored = etcd.raw(&format!("/registry{key}")).unwrap();
        assert_eq!(key_id_of(&stored, "k8s:enc:kms:v2:p:"), new_key, "{key}");
    }
}

/// KMS v1 (older clusters): values move to v2 when v2 comes first.
#[test]
fn v1_values_move_to_v2() {
    let etcd = Etcd::start();
    let kms = KmsPlugin::start();
    let old = config(&etcd, json!([v1("old", &kms.v1_endpoint())]));
    for i in 0..3 {
        run(
            "put",
            &[&old, &format!("/secrets/ns/v1-{i}"), &secret("v1", i)],
        );
    }
    let stored = etcd.raw("/registry/secrets/ns/v1-0").unwrap();
    assert!(stored.starts_with(b"k8s:enc:kms:v1:old:"));
    run("reads", &[&old, "/secrets/ns/v1-2", "00000002", "3"]);
    let both = config(
        &etcd,
        json!([
            v2("new", &kms.v2_endpoint(), "3s"),
            v1("old", &kms.v1_endpoint())
        ]),
    );
    run("reencrypt", &[&both, "/secrets", "3", "3", "0"]);
    let stored = etcd.raw("/registry/secrets/ns/v1-0").unwrap();
    assert!(stored.starts_with(b"k8s:enc:kms:v2:new:"));
    run("reads", &[&both, "/secrets/ns/v1-0", "00000000", "2"]);
}
