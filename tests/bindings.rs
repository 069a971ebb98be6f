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
