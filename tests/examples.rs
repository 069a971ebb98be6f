//! The examples, built and run against a real etcd: the C one against the
//! committed header, the Go one through cgo with Debian's Go toolchain.

mod common;

use std::process::Command;

use common::cbuild::{assert_success, compile_c, lib_dir, manifest_dir, run_c};
use common::Etcd;
use serde_json::Value;

const CM: &str = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings","namespace":"default"},"data":{"mode":"fast"}}"#;

/// Checks an example's output: the resourceVersion line, then the object.
fn check_output(stdout: &str, rv: i64) {
    let rv_line = format!("resourceVersion: {rv}");
    assert!(
        stdout.lines().any(|l| l == rv_line),
        "no `{rv_line}` in:\n{stdout}"
    );
    let object: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(object["metadata"]["resourceVersion"], rv.to_string());
    assert_eq!(object["data"]["mode"], "fast");
}

#[test]
fn c_example_reads_an_object() {
    let etcd = Etcd::start();
    let rv = etcd.put("/registry/configmaps/default/settings", CM.as_bytes());
    let program = compile_c(&["examples/c/storage_get.c"], "storage_get", &[]);
    let config_file = tempfile::NamedTempFile::new().unwrap();
    // A generous health timeout: valgrind slows the first connection down.
    let config = etcd.config(r#""health_timeout_ms":10000"#);
    std::fs::write(config_file.path(), &config).unwrap();
    let output = run_c(
        &program,
        &[
            config_file.path().to_str().unwrap(),
            "/configmaps/default/settings",
        ],
    );
    assert_success("storage_get", &output);
    check_output(&String::from_utf8_lossy(&output.stdout), rv);

    // A missing key: exit status is the storage code.
    let output = run_c(&program, &[&config, "/configmaps/default/nope"]);
    assert_eq!(output.status.code(), Some(1), "STORAGE_ERR_KEY_NOT_FOUND");
    assert!(String::from_utf8_lossy(&output.stderr).contains("/registry/configmaps/default/nope"));
}

#[test]
fn go_example_reads_an_object_through_cgo() {
    let etcd = Etcd::start();
    let rv = etcd.put("/registry/configmaps/default/settings", CM.as_bytes());
    let work = tempfile::tempdir().unwrap();
    let binary = work.path().join("storage_get");
    let build = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(manifest_dir().join("examples/go/storage_get"))
        .env("GO111MODULE", "off")
        .env("GOPATH", work.path())
        .env("GOCACHE", work.path().join("cache"))
        .env("CGO_ENABLED", "1")
        .env(
            "CGO_CFLAGS",
            format!("-I{}", manifest_dir().join("include").display()),
        )
        .env(
            "CGO_LDFLAGS",
            format!("-L{0} -Wl,-rpath,{0}", lib_dir().display()),
        )
        .output()
        .expect("the Go toolchain (Debian's golang-go; .ci/run installs it)");
    assert_success("go build", &build);
    let output = Command::new(&binary)
        .args([
            &etcd.config(r#""health_timeout_ms":10000"#),
            "/configmaps/default/settings",
        ])
        .output()
        .unwrap();
    assert_success("go storage_get", &output);
    check_output(&String::from_utf8_lossy(&output.stdout), rv);
}
