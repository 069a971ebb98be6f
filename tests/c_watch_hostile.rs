//! tests/c/watch_hostile.c under valgrind against a real etcd: concurrent
//! `storage_watch_next` calls each keep their own timeout; watches that can
//! never succeed end with their error; size limits and a peer that is no
//! etcd have their own codes through the C ABI.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::OnceLock;

use common::cbuild::{assert_success, compile_c, run_c};
use common::tls::Certs;
use common::{Backend, Etcd};

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

for_each_backend!(
    a_watch_of_a_key_over_the_size_limit_ends_with_invalid_argument,
    tls_failures_end_gets_and_watches_unreachable,
    a_peer_answering_http1_is_unreachable,
);

fn a_watch_of_a_key_over_the_size_limit_ends_with_invalid_argument(backend: Backend) {
    let etcd = Etcd::start_backend(backend);
    let limit = match backend {
        Backend::Etcd3 => "2097152 bytes",
        Backend::Etcd2 => "65534 bytes",
    };
    let key_bytes = (3 << 20).to_string();
    run("watch_ends", &[&config(&etcd), &key_bytes, "100", limit]);
}

/// TLS failures through the C ABI: a get and a watch end UNREACHABLE with
/// the TLS explanation. Run natively: valgrind
/// reports ring's AES-GCM assembly writing "uninitialised" ciphertext.
fn tls_failures_end_gets_and_watches_unreachable(backend: Backend) {
    let certs = Certs::generate();
    let tls_etcd = Etcd::start_tls_backend(&certs, backend);
    let plain = Etcd::start_backend(backend);
    let p = |n: &str| certs.path(n).display().to_string();
    let config = |endpoint: &str, ca: &str| {
        format!(
            r#"{{"type":"{}","server_list":["{endpoint}"],"ca_file":"{}","cert_file":"{}","key_file":"{}","request_timeout_ms":20000}}"#,
            backend.type_name(),
            p(ca),
            p("client.pem"),
            p("client-key.pem"),
        )
    };
    for (config, says) in [
        (
            config(&tls_etcd.endpoint(), "other-ca.pem"),
            "TLS: the server's certificate is not trusted",
        ),
        (
            config(&plain.endpoint().replace("http://", "https://"), "ca.pem"),
            "did not answer as a TLS server",
        ),
    ] {
        let output = std::process::Command::new(program())
            .args(["tls_failure", &config, says])
            .output()
            .unwrap();
        assert_success("tls_failure", &output);
    }
}

#[test]
fn objects_and_keys_over_etcds_size_limits_are_invalid_arguments() {
    let etcd = Etcd::start();
    run("sizes", &[&config(&etcd)]);
}

/// A loopback server answering every connection with an HTTP/1.1 400.
fn http1_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                // Then wait for the client to hang up, as a keep-alive server
                // does: closing first would race the client's next writes,
                // which would then see a reset connection rather than the answer.
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    endpoint
}

fn a_peer_answering_http1_is_unreachable(backend: Backend) {
    let endpoint = http1_server();
    let config = format!(
        r#"{{"type":"{}","server_list":["{endpoint}"],"request_timeout_ms":30000,"health_timeout_ms":30000}}"#,
        backend.type_name()
    );
    let says = match backend {
        Backend::Etcd3 => "did not answer as an etcd gRPC server",
        Backend::Etcd2 => "did not answer as an etcd v2 server",
    };
    run("wrong_peer", &[&config, &endpoint, says]);
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
