//! Regressions found by hostile callers, tested from C (tests/c/regressions.c)
//! under valgrind, against real etcd servers.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use apiserver_storage::storage::MAX_TTL_SECONDS;
use common::cbuild::{assert_success, compile_c, run_c};
use common::{k8s_api_testdata, wire, Backend, Etcd};

fn program() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| compile_c(&["tests/c/regressions.c"], "regressions", &[]))
}

/// Runs one case; it must pass without writing anything to stderr (no
/// panic message, no valgrind report).
fn run(case: &str, args: &[&str]) {
    let mut all = vec![case];
    all.extend_from_slice(args);
    let output = run_c(program(), &all);
    assert_success(case, &output);
    assert!(
        output.stderr.is_empty(),
        "{case} wrote to stderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

const AESGCM: &str = r#""transformer":{"providers":[{"aesgcm":{"keys":[{"name":"key1","secret":"dwhZ/08myNrj5qqgb2WFNsPdHF5GCp/2rQY7cmtIG5A="}]}}]}"#;

fn callbacks_read_codes_as_integers_and_may_call_the_library(backend: Backend) {
    let etcd = Etcd::start_backend(backend);
    run("callbacks", &[&etcd.config("")]);
}

fn out_of_range_ttls_are_refused_and_the_longest_is_kept(backend: Backend) {
    let etcd = Etcd::start_backend(backend);
    // etcd2 keeps no expiry past 2262-04-11: 7e9 s is short of it until 2040.
    let longest = match backend {
        Backend::Etcd3 => MAX_TTL_SECONDS,
        Backend::Etcd2 => 7_000_000_000,
    };
    run(
        "ttl",
        &[
            &etcd.config(""),
            &MAX_TTL_SECONDS.to_string(),
            &longest.to_string(),
        ],
    );
    // Kept as a TTL, not silently dropped.
    let ttl = etcd.ttl("/registry/ttl/long").expect("a TTL on /ttl/long");
    assert!(ttl > longest - 100, "{ttl}");
}

fn null_metadata_reads_as_empty_metadata(backend: Backend) {
    let etcd = Etcd::start_backend(backend);
    run("null_metadata", &[&etcd.config("")]);
}

fn preconditions_hold_for_an_absent_key(backend: Backend) {
    let etcd = Etcd::start_backend(backend);
    run("absent_preconditions", &[&etcd.config("")]);
}

fn lists_check_their_resource_version_without_paging(backend: Backend) {
    let etcd = Etcd::start_backend(backend);
    run("list_rv", &[&etcd.config(""), backend.type_name()]);
}

for_each_backend!(
    callbacks_read_codes_as_integers_and_may_call_the_library,
    out_of_range_ttls_are_refused_and_the_longest_is_kept,
    null_metadata_reads_as_empty_metadata,
    preconditions_hold_for_an_absent_key,
    lists_check_their_resource_version_without_paging,
);

/// etcd3 only: the etcd2 backend refuses transformers.
#[test]
fn decrypted_plaintext_is_never_quoted_in_errors() {
    let etcd = Etcd::start();
    run(
        "plaintext",
        &[
            &etcd.config(&format!(r#""codec":"raw",{AESGCM}"#)),
            &etcd.config(AESGCM),
        ],
    );
    let stored = etcd.raw("/registry/pt/secret").unwrap();
    assert!(stored.starts_with(b"k8s:enc:aesgcm:v1:key1:"));
}

/// A Pod from a newer release, with a field the schema does not know in its
/// spec: flagged on read, never dropped by an update.
#[test]
fn unknown_protobuf_fields_are_flagged_and_never_dropped() {
    let etcd = Etcd::start();
    let pod = std::fs::read(k8s_api_testdata().join("HEAD/core.v1.Pod.pb")).unwrap();
    // After `k8s\0`: the envelope, whose field 2 holds the Pod, whose field 2 is its spec.
    let stored = [
        &pod[..4],
        &wire::inject(&pod[4..], &[2, 2], &wire::field(9002, 1)),
    ]
    .concat();
    etcd.put("/registry/pods/default/newer", &stored);
    run(
        "unknown_fields",
        &[
            &etcd.config(r#""codec":"protobuf""#),
            "/pods/default/newer",
            "spec#9002",
        ],
    );
    assert_eq!(etcd.raw("/registry/pods/default/newer").unwrap(), stored);
}
