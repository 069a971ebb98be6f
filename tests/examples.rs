//! The examples, one per language (C, C++, Go, Python), built and run against
//! a real etcd holding a Secret that the library itself wrote encrypted with
//! `examples/encryption-config.yaml`: each must print the decrypted Secret.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use apiserver_storage::config::Config;
use apiserver_storage::factory;
use base64::Engine;
use common::cbuild::{assert_success, compile_c, go_command, lib_dir, manifest_dir, run_c};
use common::Etcd;
use serde_json::{json, Value};

const KEY: &str = "/secrets/default/db-password";
const PASSWORD: &str = "correct horse battery staple";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// An etcd holding the Secret, and a config file that decrypts it.
struct Seeded {
    etcd: Etcd,
    config_file: tempfile::NamedTempFile,
    resource_version: i64,
}

fn seeded() -> Seeded {
    let etcd = Etcd::start();
    // A generous health timeout: valgrind slows the first connection down.
    let config = etcd.config(&format!(
        r#""health_timeout_ms":10000,"transformer":{{"encryption_config_file":"{}","resource":"secrets"}}"#,
        manifest_dir()
            .join("examples/encryption-config.yaml")
            .display()
    ));
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "db-password", "namespace": "default"},
        "data": {"password": b64(PASSWORD)},
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (store, destroy) = rt
        .block_on(factory::create(&Config::from_json(&config).unwrap()))
        .unwrap();
    let created = rt
        .block_on(store.create(KEY, secret.to_string().as_bytes(), 0))
        .unwrap();
    destroy();

    let stored = etcd.raw("/registry/secrets/default/db-password").unwrap();
    assert!(
        stored.starts_with(b"k8s:enc:aescbc:v1:key1:"),
        "not encrypted at rest: {:?}",
        String::from_utf8_lossy(&stored)
    );
    let b64_password = b64(PASSWORD);
    assert!(!stored
        .windows(b64_password.len())
        .any(|w| w == b64_password.as_bytes()));

    let config_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config_file.path(), config).unwrap();
    Seeded {
        etcd,
        config_file,
        resource_version: created.resource_version,
    }
}

/// Runs an example (`run(config, key)`) against the seeded etcd: it prints the
/// decrypted Secret; without the encryption config it cannot read it; a
/// missing key is exit status 1 (STORAGE_ERR_KEY_NOT_FOUND) naming the key.
fn check_example(name: &str, run: impl Fn(&str, &str) -> Output) {
    let seeded = seeded();
    let output = run(seeded.config_file.path().to_str().unwrap(), KEY);
    assert_success(name, &output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let rv_line = format!("resourceVersion: {}", seeded.resource_version);
    assert!(
        stdout.lines().any(|l| l == rv_line),
        "{name}: no `{rv_line}` in:\n{stdout}"
    );
    let object: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(object["kind"], "Secret", "{name}");
    assert_eq!(
        object["metadata"]["resourceVersion"],
        seeded.resource_version.to_string()
    );
    assert_eq!(object["data"]["password"], b64(PASSWORD), "{name}");

    let plain = seeded.etcd.config(r#""health_timeout_ms":10000"#);
    let output = run(&plain, KEY);
    assert_eq!(
        output.status.code(),
        Some(7),
        "{name} without the encryption config: STORAGE_ERR_CORRUPT_OBJ\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains(&b64(PASSWORD)));

    let output = run(&plain, "/secrets/default/nope");
    assert_eq!(output.status.code(), Some(1), "{name}: KEY_NOT_FOUND");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("/registry/secrets/default/nope"),
        "{name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn c_example_reads_an_encrypted_secret() {
    let program = compile_c(&["examples/c/storage_get.c"], "storage_get", &[]);
    check_example("C storage_get", |config, key| {
        run_c(&program, &[config, key])
    });
}

#[test]
fn cpp_example_reads_an_encrypted_secret() {
    let program = compile_c(&["examples/cpp/storage_get.cpp"], "storage_get_cpp", &[]);
    check_example("C++ storage_get", |config, key| {
        run_c(&program, &[config, key])
    });
}

#[test]
fn go_example_reads_an_encrypted_secret() {
    let work = tempfile::tempdir().unwrap();
    let binary = work.path().join("storage_get");
    let build = go_command("examples/go/storage_get", work.path())
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .output()
        .expect("the Go toolchain (Debian's golang-go)");
    assert_success("go build", &build);
    check_example("Go storage_get", |config, key| run(&binary, config, key));
}

#[test]
fn python_example_reads_an_encrypted_secret() {
    let script = manifest_dir().join("examples/python/storage_get.py");
    check_example("Python storage_get.py", |config, key| {
        Command::new("python3")
            .arg(&script)
            .args([config, key])
            .env(
                "APISERVER_STORAGE_LIB",
                lib_dir().join("libapiserver_storage.so"),
            )
            .output()
            .expect("python3")
    });
}

fn run(program: &Path, config: &str, key: &str) -> Output {
    Command::new(program).args([config, key]).output().unwrap()
}

/// examples/c/reencrypt.c after a key rotation: the Secret written under the
/// example's aescbc key moves to a new first key, and a second run finds
/// nothing left to do.
#[test]
fn c_reencrypt_example_moves_secrets_to_a_new_key() {
    let seeded = seeded();
    let program = compile_c(&["examples/c/reencrypt.c"], "reencrypt", &[]);
    let rotated = tempfile::NamedTempFile::new().unwrap();
    let original =
        std::fs::read_to_string(manifest_dir().join("examples/encryption-config.yaml")).unwrap();
    let new_key = format!(
        "          keys:\n            - name: key2\n              secret: {}\n",
        b64("0123456789abcdef0123456789abcdef")
    );
    let with_new_key = original.replacen("          keys:\n", &new_key, 1);
    assert_ne!(
        with_new_key, original,
        "the example config's keys: list moved"
    );
    std::fs::write(rotated.path(), with_new_key).unwrap();
    let config = seeded.etcd.config(&format!(
        r#""health_timeout_ms":10000,"transformer":{{"encryption_config_file":"{}","resource":"secrets"}}"#,
        rotated.path().display()
    ));
    let output = run_c(&program, &[&config, "/secrets"]);
    assert_success("reencrypt", &output);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "seen 1 rewritten 1 failed 0"
    );
    let stored = seeded
        .etcd
        .raw("/registry/secrets/default/db-password")
        .unwrap();
    assert!(stored.starts_with(b"k8s:enc:aescbc:v1:key2:"));
    let output = run_c(&program, &[&config]);
    assert_success("reencrypt again", &output);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "seen 1 rewritten 0 failed 0"
    );
}
