//! Watches through the C ABI: tests/c/api_test.c's watch cases, run under
//! valgrind against a real etcd, with the writes made from here.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;

use common::cbuild::{assert_no_valgrind_errors, assert_success, c_command, compile_c, run_c};
use common::{Backend, Etcd};

fn api_test() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| compile_c(&["tests/c/api_test.c"], "api_test_watch", &[]))
}

fn run(case: &str, args: &[&str]) {
    let output = run_c(api_test(), &[&[case], args].concat());
    assert_success(case, &output);
}

fn pod(name: &str) -> Vec<u8> {
    format!(r#"{{"kind":"Pod","metadata":{{"name":"{name}"}}}}"#).into_bytes()
}

/// Generous timeouts: valgrind slows the first connection down.
fn config(etcd: &Etcd) -> String {
    etcd.config(r#""request_timeout_ms":20000"#)
}

for_each_backend!(
    events_through_the_c_abi,
    destroying_watches_with_events_pending,
    null_arguments_of_watch_functions,
);

fn events_through_the_c_abi(backend: Backend) {
    let etcd = Etcd::start_backend(backend);
    let listed = etcd.put("/registry/pods/ns/old", &pod("old"));
    etcd.put("/registry/podsX/ns/sibling", &pod("sibling"));
    let mut child = c_command(api_test())
        .args(["watch", &config(&etcd), "/pods", "1", "4"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_line = || lines.next().expect("the C program stopped").unwrap();
    assert_eq!(
        next_line(),
        format!("ADDED /registry/pods/ns/old {listed} 0")
    );
    assert_eq!(next_line(), "ready");
    let key = "/registry/pods/ns/p";
    let added = etcd.put(key, &pod("p"));
    let modified = etcd.put(key, &pod("p"));
    etcd.put("/registry/podsX/ns/sibling", &pod("sibling"));
    let deleted = etcd.delete(key);
    let again = etcd.put(key, &pod("p"));
    let events: Vec<String> = (0..4).map(|_| next_line()).collect();
    assert_eq!(
        events,
        [
            format!("ADDED {key} {added} 0"),
            format!("MODIFIED {key} {modified} 1"),
            format!("DELETED {key} {deleted} 1"),
            format!("ADDED {key} {again} 0"),
        ]
    );
    let output = child.wait_with_output().unwrap();
    assert_no_valgrind_errors(&output);
    assert!(output.status.success(), "watch failed: {:?}", output.status);
}

#[test]
fn a_compacted_resource_version_is_expired() {
    let etcd = Etcd::start();
    let first = etcd.put("/registry/pods/ns/a", &pod("a"));
    etcd.put("/registry/pods/ns/a", &pod("a"));
    // History from `last` on stays: watching after `first` needs `first + 1`.
    let last = etcd.put("/registry/pods/ns/a", &pod("a"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = etcd_client::Client::connect(etcd.endpoints(), None)
            .await
            .unwrap();
        c.compact(last, None).await.unwrap();
    });
    run(
        "watch_expired",
        &[&config(&etcd), "/pods", &first.to_string()],
    );
}

/// etcd2's counterpart of compaction: v2 keeps only the last 1000 events.
#[test]
fn an_index_etcd2_no_longer_keeps_is_expired() {
    let etcd = Etcd::start_backend(Backend::Etcd2);
    let first = etcd.put("/registry/pods/ns/a", &pod("a"));
    let mut w = etcd.writer();
    for _ in 0..1001 {
        w.put("/registry/pods/ns/a", &pod("a")).unwrap();
    }
    run(
        "watch_expired",
        &[&config(&etcd), "/pods", &first.to_string()],
    );
}

fn destroying_watches_with_events_pending(backend: Backend) {
    let etcd = Etcd::start_backend(backend);
    for i in 0..20 {
        etcd.put(&format!("/registry/pods/ns/p{i}"), &pod("p"));
    }
    run("watch_destroy", &[&config(&etcd), "/pods"]);
}

fn null_arguments_of_watch_functions(backend: Backend) {
    let etcd = Etcd::start_backend(backend);
    run("watch_nulls", &[&config(&etcd)]);
}
