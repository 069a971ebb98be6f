//! Kubernetes' own generic storage tests (`k8s.io/apiserver/pkg/storage/testing`
//! v0.37.2, the RunTest* functions kube-apiserver's etcd3 store passes) run
//! against the library through `tests/kube/conformance`, an adapter from the Go
//! binding to `storage.Interface`. Every test passes except those listed in
//! `EXPECTED_FAILURES`, and each of those must still fail, so the list stays true.

mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use common::cbuild::go_module_command;
use common::Etcd;

/// The tests that fail, and why.
const EXPECTED_FAILURES: &[(&str, &str)] = &[
    (
        "TestGuaranteedUpdate",
        "one case makes the stored value stale by swapping the value transformer at run time; the library's transformer is fixed when the handle is created",
    ),
    (
        "TestGuaranteedUpdateChecksStoredData",
        "swaps the value transformer at run time",
    ),
    (
        "TestTransformationFailure",
        "swaps the value transformer at run time",
    ),
    (
        "TestListResourceVersionMatch",
        "swaps the value transformer at run time",
    ),
    (
        "TestWatchError",
        "swaps the value transformer at run time",
    ),
    (
        "TestWatchErrorIsBlockingFurtherEvents",
        "swaps the value transformer at run time",
    ),
];

#[test]
fn kubernetes_storage_tests() {
    // As Kubernetes' etcd3 tests: progress notifications every second.
    let etcd = Etcd::start_with(&["--experimental-watch-progress-notify-interval=1s"]);
    let started = Instant::now();
    let output = go_module_command("tests/kube/conformance")
        .args(["test", "-json", "-count=1", "-timeout=600s", "."])
        .env("ETCD_ENDPOINT", etcd.endpoint())
        .output()
        .expect("the Go toolchain");
    let stdout = String::from_utf8_lossy(&output.stdout);

    // Top-level tests only: a subtest's result is part of its test's.
    let mut started_tests = Vec::new();
    let mut results = BTreeMap::new();
    let mut log: BTreeMap<String, String> = BTreeMap::new();
    for line in stdout.lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(test) = event["Test"].as_str() else {
            continue;
        };
        let top = test.split('/').next().unwrap().to_owned();
        match event["Action"].as_str() {
            Some("run") if !test.contains('/') => started_tests.push(top),
            Some("output") => log
                .entry(top)
                .or_default()
                .push_str(event["Output"].as_str().unwrap_or("")),
            Some("pass") if !test.contains('/') => {
                results.insert(top, true);
            }
            Some("fail") if !test.contains('/') => {
                results.insert(top, false);
            }
            _ => {}
        }
    }
    assert!(
        !results.is_empty(),
        "go test ran no test ({:?}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );

    let expected: BTreeMap<_, _> = EXPECTED_FAILURES.iter().copied().collect();
    let mut problems = Vec::new();
    for (test, passed) in &results {
        match (passed, expected.get(test.as_str())) {
            (true, None) | (false, Some(_)) => {}
            (false, None) => problems.push(format!(
                "{test} failed:\n{}",
                log.get(test).map_or("", String::as_str)
            )),
            (true, Some(_)) => {
                problems.push(format!("{test} passes: take it off EXPECTED_FAILURES"))
            }
        }
    }
    for test in &started_tests {
        if !results.contains_key(test) {
            problems.push(format!(
                "{test} did not finish:\n{}",
                log.get(test).map_or("", String::as_str)
            ));
        }
    }
    for test in expected.keys() {
        if !results.contains_key(*test) {
            problems.push(format!("{test} is on EXPECTED_FAILURES but did not run"));
        }
    }
    let failed = results.values().filter(|p| !**p).count();
    eprintln!(
        "Kubernetes storage tests: {} passed, {failed} failed (expected), in {:.0?}",
        results.len() - failed,
        started.elapsed()
    );
    for (test, passed) in &results {
        eprintln!("{} {test}", if *passed { "PASS" } else { "FAIL" });
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
