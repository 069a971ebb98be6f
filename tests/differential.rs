//! Differential tests against Kubernetes' own storage code: `tests/kube/differential`
//! runs the same operations through k8s.io/apiserver's etcd3 store (as
//! kube-apiserver builds it: storage codec, EncryptionConfiguration loader)
//! and through the Go binding, on one etcd, and compares what each side reads,
//! writes and fails with.

mod common;

use common::cbuild::{assert_success, go_module_command, lib_dir};
use common::Etcd;

#[test]
fn against_kubernetes() {
    // Built once per change: the Go build cache lives under target/.
    let program = lib_dir().join("kube-differential.test");
    let build = go_module_command("tests/kube")
        .args(["test", "-tags=kmslib", "-c", "-o"])
        .arg(&program)
        .arg("./differential")
        .output()
        .expect("the Go toolchain");
    assert_success("building tests/kube/differential", &build);

    let etcd = Etcd::start();
    let output = std::process::Command::new(&program)
        .arg(format!("-endpoint={}", etcd.endpoint()))
        .output()
        .expect("run the differential test program");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    // stderr holds Kubernetes' and etcd's client logs: only its end matters.
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
    assert!(
        output.status.success(),
        "tests/kube/differential failed ({:?}):\n{stdout}\nend of stderr:\n{}",
        output.status,
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
}
