//! tests/c/watch_hostile.c under valgrind against a real etcd: concurrent
//! `storage_watch_next` calls each keep their own timeout.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use common::cbuild::{assert_success, compile_c, run_c};
use common::Etcd;

fn program() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| compile_c(&["tests/c/watch_hostile.c"], "watch_hostile", &[]))
}

fn run(case: &str, args: &[&str]) {
    let output = run_c(program(), &[&[case], args].concat());
    assert_success(case, &output);
}

/// Generous timeouts: valgrind slows the first connection down.
fn config(etcd: &Etcd) -> String {
    etcd.config(r#""request_timeout_ms":20000"#)
}

#[test]
fn each_watch_next_call_keeps_its_own_timeout() {
    let etcd = Etcd::start();
    run("own_timeouts", &[&config(&etcd)]);
}
