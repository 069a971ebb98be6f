//! tests/c/watch_hostile.c under valgrind against a real etcd: concurrent
//! `storage_watch_next` calls each keep their own timeout; a C process
//! survives endpoints hanging up.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
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
/// A server that answers with an HTTP/1.1 400 and hangs up at once: the
/// library's next writes on that connection meet a closed socket, which
/// raises SIGPIPE in the writing thread. A C program keeps SIGPIPE's default
/// action (death); the library's threads block it, so the calls fail instead.
fn hanging_up_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
        }
    });
    endpoint
}

#[test]
fn a_c_process_survives_endpoints_hanging_up() {
    let config = format!(
        r#"{{"server_list":["{}"],"request_timeout_ms":2000}}"#,
        hanging_up_server()
    );
    run("hangups", &[&config]);
}
