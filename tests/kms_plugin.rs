//! The test KMS plugin (`tests/common/kms.rs`, `tests/kube/kmsplugin`),
//! driven through kube-apiserver's own KMS gRPC clients (`kmsprobe`): what
//! each control switch does to the calls, and the counts `/stats` reports.
//! Also: the committed KMS vectors (`tests/fixtures/kms/vectors.json`) still
//! read through Kubernetes' code.

mod common;

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::cbuild::{assert_success, manifest_dir};
use common::kms::{kms_probe, vectors_binary, KmsPlugin, KmsStats, ANNOTATION_KEY};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(5);

fn b64(s: &str) -> String {
    B64.encode(s)
}

fn ok(r: &Value) -> &Value {
    assert_eq!(r["ok"], true, "the call failed: {r}");
    r
}

/// The v2 decrypt operation for an encrypt result, annotations included.
fn v2_decrypt_op(encrypted: &Value) -> String {
    let mut op = format!(
        "decrypt={},{}",
        encrypted["key_id"].as_str().unwrap(),
        encrypted["ciphertext"].as_str().unwrap()
    );
    for (k, v) in encrypted["annotations"].as_object().unwrap() {
        op += &format!(",{k}={}", v.as_str().unwrap());
    }
    op
}

#[test]
fn round_trips_and_rotation() {
    let plugin = KmsPlugin::start();
    assert_eq!(plugin.key_id(), "key-1");
    assert_eq!(plugin.stats(), KmsStats::default());
    let v2 = plugin.v2_endpoint();
    assert!(v2.starts_with("unix:///"), "{v2}");

    let plaintext = b64("a data encryption key");
    let encrypt = format!("encrypt={plaintext}");
    let r = kms_probe(&v2, "v2", TIMEOUT, &["status", &encrypt]);
    let status = ok(&r[0]);
    assert_eq!(
        (
            status["version"].as_str(),
            status["healthz"].as_str(),
            status["key_id"].as_str()
        ),
        (Some("v2"), Some("ok"), Some("key-1"))
    );
    let encrypted = ok(&r[1]).clone();
    assert_eq!(encrypted["key_id"], "key-1");
    assert_eq!(encrypted["annotations"][ANNOTATION_KEY], b64("key-1"));
    let ciphertext = B64
        .decode(encrypted["ciphertext"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        &ciphertext[..6],
        b"\x05key-1",
        "the key ID leads the ciphertext"
    );

    let decrypt = v2_decrypt_op(&encrypted);
    let r = kms_probe(&v2, "v2", TIMEOUT, &[&decrypt]);
    assert_eq!(ok(&r[0])["plaintext"], plaintext.as_str());
    // Decrypt insists on the key ID and annotation that came with the ciphertext.
    let bare = format!(
        "decrypt=key-1,{}",
        encrypted["ciphertext"].as_str().unwrap()
    );
    let r = kms_probe(&v2, "v2", TIMEOUT, &[&bare]);
    assert_eq!(
        (&r[0]["ok"], &r[0]["code"]),
        (&Value::Bool(false), &Value::from("InvalidArgument"))
    );

    // v1beta1: kube-apiserver's client checks Version once before its first call.
    let r = kms_probe(&plugin.v1_endpoint(), "v1", TIMEOUT, &[&encrypt]);
    let v1_ciphertext = ok(&r[0])["ciphertext"].as_str().unwrap().to_string();
    let r = kms_probe(
        &plugin.v1_endpoint(),
        "v1",
        TIMEOUT,
        &[&format!("decrypt={v1_ciphertext}")],
    );
    assert_eq!(ok(&r[0])["plaintext"], plaintext.as_str());

    assert_eq!(
        plugin.stats(),
        KmsStats {
            v2_status: 1,
            v2_encrypt: 1,
            v2_decrypt: 2,
            v1_version: 2,
            v1_encrypt: 1,
            v1_decrypt: 1,
        }
    );

    // Rotation: a new key ID everywhere; the old KEK still decrypts.
    let rotated = plugin.rotate();
    assert_eq!(rotated, "key-1-2");
    assert_eq!(plugin.key_id(), rotated);
    let r = kms_probe(&v2, "v2", TIMEOUT, &["status", &encrypt, &decrypt]);
    assert_eq!(ok(&r[0])["key_id"], rotated.as_str());
    assert_eq!(ok(&r[1])["key_id"], rotated.as_str());
    assert_eq!(ok(&r[2])["plaintext"], plaintext.as_str());
    let r = kms_probe(&v2, "v2", TIMEOUT, &[&v2_decrypt_op(&r[1])]);
    assert_eq!(ok(&r[0])["plaintext"], plaintext.as_str());
    let r = kms_probe(
        &plugin.v1_endpoint(),
        "v1",
        TIMEOUT,
        &[&format!("decrypt={v1_ciphertext}")],
    );
    assert_eq!(ok(&r[0])["plaintext"], plaintext.as_str());
    assert_eq!(plugin.rotate_to("named-key"), "named-key");
    assert_eq!(plugin.key_id(), "named-key");
}

#[test]
fn fail_unhealthy_and_reset() {
    let plugin = KmsPlugin::start_with_key_id("initial");
    let v2 = plugin.v2_endpoint();
    let encrypt = format!("encrypt={}", b64("dek"));
    let r = kms_probe(&v2, "v2", TIMEOUT, &[&encrypt]);
    let decrypt = v2_decrypt_op(ok(&r[0]));

    plugin.fail();
    let r = kms_probe(&v2, "v2", TIMEOUT, &["status", &encrypt, &decrypt]);
    assert_eq!(ok(&r[0])["healthz"], "ok", "Status still answers");
    for failed in &r[1..] {
        assert_eq!(
            (&failed["ok"], &failed["code"]),
            (&Value::Bool(false), &Value::from("Unavailable")),
            "{failed}"
        );
    }
    let r = kms_probe(&plugin.v1_endpoint(), "v1", TIMEOUT, &[&encrypt]);
    assert_eq!(r[0]["code"], "Unavailable", "{}", r[0]);

    plugin.reset();
    plugin.unhealthy();
    let r = kms_probe(&v2, "v2", TIMEOUT, &["status", &decrypt]);
    let status = ok(&r[0]);
    assert_ne!(status["healthz"], "ok", "{status}");
    assert_eq!(status["key_id"], "initial");
    ok(&r[1]);

    plugin.reset();
    let r = kms_probe(&v2, "v2", TIMEOUT, &["status", &encrypt, &decrypt]);
    assert_eq!(ok(&r[0])["healthz"], "ok");
    ok(&r[1]);
    ok(&r[2]);
    let stats = plugin.stats();
    assert_eq!(
        (stats.v2_status, stats.v2_encrypt, stats.v2_decrypt),
        (3, 3, 3),
        "{stats:?}"
    );
    assert_eq!((stats.v1_encrypt, stats.v1_decrypt), (1, 0), "{stats:?}");
}

#[test]
fn hang_until_deadline_or_reset() {
    let plugin = KmsPlugin::start();
    let v2 = plugin.v2_endpoint();
    let encrypt = format!("encrypt={}", b64("dek"));
    plugin.hang();

    // The caller's deadline ends a hung call: the kms `timeout` in action.
    let short = Duration::from_millis(400);
    let start = Instant::now();
    let r = kms_probe(&v2, "v2", short, &["status", &encrypt]);
    for hung in &r {
        assert_eq!(hung["code"], "DeadlineExceeded", "{hung}");
        assert!(hung["ms"].as_u64().unwrap() >= 350, "{hung}");
    }
    assert!(start.elapsed() >= 2 * short);

    // Reset releases a hung call, which then succeeds.
    let probe = {
        let v2 = v2.clone();
        let encrypt = encrypt.clone();
        std::thread::spawn(move || kms_probe(&v2, "v2", Duration::from_secs(30), &[&encrypt]))
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while plugin.stats().v2_encrypt < 2 {
        assert!(Instant::now() < deadline, "the hung Encrypt never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    plugin.reset();
    let r = probe.join().unwrap();
    ok(&r[0]);
    assert!(r[0]["ms"].as_u64().unwrap() < 20_000, "{}", r[0]);
}

#[test]
fn vectors_read_through_kubernetes() {
    let vectors = manifest_dir().join("tests/fixtures/kms/vectors.json");
    let output = std::process::Command::new(vectors_binary())
        .arg("-check")
        .arg(&vectors)
        .output()
        .expect("run kmsvectors");
    assert_success("kmsvectors -check", &output);
    let text = std::fs::read_to_string(&vectors).unwrap();
    let file: Value = serde_json::from_str(&text).unwrap();
    let all = file["vectors"].as_array().unwrap();
    // Both v2 DEK source types and v1's two data ciphers are covered.
    for (field, want) in [
        ("dek_source_type", "HKDF_SHA256_XNONCE_AES_GCM_SEED"),
        ("dek_source_type", "AES_GCM_KEY"),
        ("data_cipher", "aes-gcm"),
        ("data_cipher", "aes-cbc"),
    ] {
        assert!(
            all.iter().any(|v| v[field] == want),
            "no vector with {field} {want}"
        );
    }
}
