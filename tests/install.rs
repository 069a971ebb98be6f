//! `make install` lays the library out like a C library: a C program then
//! builds with pkg-config alone and runs against a real etcd.

mod common;

use std::process::Command;

use common::cbuild::{assert_success, lib_dir, manifest_dir};
use common::Etcd;

#[test]
fn installed_library_builds_with_pkg_config_and_runs() {
    let _ = lib_dir(); // checks the library is built and current
    let prefix = tempfile::tempdir().unwrap();
    let install = Command::new("make")
        .args(["install", "PROFILE=debug"])
        .arg(format!("PREFIX={}", prefix.path().display()))
        .current_dir(manifest_dir())
        .output()
        .unwrap();
    assert_success("make install", &install);
    let libdir = prefix.path().join("lib");
    let versioned = format!("libapiserver_storage.so.{}", env!("CARGO_PKG_VERSION"));
    for file in [
        "libapiserver_storage.so",
        "libapiserver_storage.so.0",
        &versioned,
        "libapiserver_storage.a",
        "pkgconfig/apiserver_storage.pc",
    ] {
        assert!(libdir.join(file).exists(), "{file} not installed");
    }
    assert!(prefix.path().join("include/apiserver_storage.h").exists());

    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "apiserver_storage"])
        .env("PKG_CONFIG_PATH", libdir.join("pkgconfig"))
        .output()
        .unwrap();
    assert_success("pkg-config", &flags);
    let flags = String::from_utf8(flags.stdout).unwrap();
    let program = prefix.path().join("storage_get");
    let cc = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cc -std=c99 -Wall -Werror {} {} -Wl,-rpath,{} -o {}",
            manifest_dir().join("examples/c/storage_get.c").display(),
            flags.trim(),
            libdir.display(),
            program.display()
        ))
        .output()
        .unwrap();
    assert_success("cc with pkg-config", &cc);

    let etcd = Etcd::start();
    etcd.put(
        "/registry/configmaps/default/settings",
        br#"{"kind":"ConfigMap","metadata":{"name":"settings"}}"#,
    );
    let run = Command::new(&program)
        .args([&etcd.config(""), "/configmaps/default/settings"])
        .output()
        .unwrap();
    assert_success("installed storage_get", &run);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let banner = format!("apiserver-storage {}", env!("CARGO_PKG_VERSION"));
    assert!(stdout.contains(&banner), "{stdout}");
    assert!(stdout.contains(r#""name":"settings""#), "{stdout}");
}
