//! The Python ctypes bindings and the Go package, run with their own test
//! runners (unittest, `go test -race`) against a real etcd.

mod common;

use std::process::Command;

use common::cbuild::{assert_success, go_command, lib_dir, manifest_dir};
use common::{answers_progress_requests, Etcd};

#[test]
fn python_bindings() {
    let etcd = Etcd::start();
    let output = Command::new("python3")
        .args(["-m", "unittest", "-v", "test_apiserver_storage"])
        .current_dir(manifest_dir().join("bindings/python"))
        .env("ETCD_ENDPOINT", etcd.endpoint())
        .env("ETCD_ANSWERS_PROGRESS", answers_progress(&etcd))
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
    let output = go_command("bindings/go/storage", work.path())
        .args(["test", "-race", "-v", "-count=1", "."])
        .env("ETCD_ENDPOINT", etcd.endpoint())
        .env("ETCD_ANSWERS_PROGRESS", answers_progress(&etcd))
        .output()
        .expect("the Go toolchain (Debian's golang-go)");
    eprintln!("{}", String::from_utf8_lossy(&output.stdout));
    assert_success("go test -race", &output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("\nok"), "{stdout}");
    assert!(!stdout.contains("WARNING: DATA RACE"), "{stdout}");
}

/// "1" when etcd answers watch progress requests (see `answers_progress_requests`).
fn answers_progress(etcd: &Etcd) -> &'static str {
    if answers_progress_requests(&etcd.version()) {
        "1"
    } else {
        "0"
    }
}
