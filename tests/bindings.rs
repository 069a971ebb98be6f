//! The Python ctypes bindings, run with Python's own unittest against a real etcd.

mod common;

use std::process::Command;

use common::cbuild::{assert_success, lib_dir, manifest_dir};
use common::Etcd;

#[test]
fn python_bindings() {
    let etcd = Etcd::start();
    let output = Command::new("python3")
        .args(["-m", "unittest", "-v", "test_apiserver_storage"])
        .current_dir(manifest_dir().join("bindings/python"))
        .env("ETCD_ENDPOINT", etcd.endpoint())
        .env(
            "APISERVER_STORAGE_LIB",
            lib_dir().join("libapiserver_storage.so"),
        )
        .output()
        .expect("python3");
    let log = String::from_utf8_lossy(&output.stderr);
    eprintln!("{log}");
    assert_success("python unittest", &output);
    assert!(log.contains("OK"), "{log}");
}

#[test]
fn go_bindings() {
    let etcd = Etcd::start();
    let work = tempfile::tempdir().unwrap();
    let output = Command::new("go")
        .args(["test", "-v", "-count=1", "."])
        .current_dir(manifest_dir().join("bindings/go/storage"))
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
        .env("ETCD_ENDPOINT", etcd.endpoint())
        .output()
        .expect("the Go toolchain (Debian's golang-go)");
    eprintln!("{}", String::from_utf8_lossy(&output.stdout));
    assert_success("go test", &output);
    assert!(String::from_utf8_lossy(&output.stdout).contains("\nok"));
}
