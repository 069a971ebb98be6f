//! Codes for failures that are not the library's bugs, against a real etcd:
//! requests over etcd's size limits are INVALID_ARGUMENT naming the limit, a
//! peer that is no etcd is UNREACHABLE naming the endpoint. Neither is
//! INTERNAL, which is kept for the library's own bugs.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apiserver_storage::config::Config;
use apiserver_storage::factory;
use apiserver_storage::storage::{Code, GetOptions, Interface, StorageError};
use common::{Backend, Etcd};
use tokio::runtime::Runtime;

fn store(rt: &Runtime, config: &str) -> Arc<dyn Interface> {
    let config = Config::from_json(config).unwrap();
    rt.block_on(factory::create(&config)).unwrap().0
}

fn object(bytes: usize) -> Vec<u8> {
    format!(
        r#"{{"kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"x":"{}"}}}}"#,
        "x".repeat(bytes)
    )
    .into_bytes()
}

fn assert_invalid(e: &StorageError, says: &[&str]) {
    assert_eq!(e.code, Code::InvalidArgument, "{}", e.message);
    for s in says {
        assert!(e.message.contains(s), "does not say {s:?}: {}", e.message);
    }
}

const MIB: usize = 1 << 20;

/// etcd 3.4 refuses a request over `--max-request-bytes` (1.5 MiB) itself,
/// and its gRPC server one over that plus 512 KiB (2 MiB) before etcd sees it.
#[test]
fn requests_over_etcds_size_limits_are_invalid_arguments_naming_the_limit() {
    let etcd = Etcd::start();
    let rt = Runtime::new().unwrap();
    let s = store(&rt, &etcd.config(""));
    let limit = ["too large", "2097152 bytes", "--max-request-bytes"];

    let e = rt
        .block_on(s.create("/configmaps/ns/big", &object(5 * MIB / 2), 0))
        .unwrap_err();
    assert_invalid(&e, &limit);

    let key = format!("/configmaps/ns/{}", "k".repeat(5 * MIB / 2));
    let e = rt
        .block_on(s.get(&key, &GetOptions::default()))
        .unwrap_err();
    assert_invalid(&e, &limit);
    let e = rt.block_on(s.count(&key)).unwrap_err();
    assert_invalid(&e, &limit);

    // Between the two limits etcd answers itself.
    let e = rt
        .block_on(s.create("/configmaps/ns/big", &object(MIB * 8 / 5), 0))
        .unwrap_err();
    assert_invalid(&e, &["too large", "--max-request-bytes", "1572864 bytes"]);

    // Nothing was written, and the store goes on working.
    assert_eq!(etcd.raw("/registry/configmaps/ns/big"), None);
    rt.block_on(s.create("/configmaps/ns/big", &object(MIB), 0))
        .unwrap();
}

/// etcd2's requests carry the key in the URL, which is limited to 64 KiB.
#[test]
fn an_etcd2_key_too_long_for_a_url_is_an_invalid_argument_naming_the_limit() {
    let etcd = Etcd::start_backend(Backend::Etcd2);
    let rt = Runtime::new().unwrap();
    let s = store(&rt, &etcd.config(""));
    let key = format!("/configmaps/ns/{}", "k".repeat(5 * MIB / 2));
    let e = rt
        .block_on(s.get(&key, &GetOptions::default()))
        .unwrap_err();
    assert_invalid(&e, &["too large", "65534 bytes"]);
    let e = rt.block_on(s.create(&key, &object(10), 0)).unwrap_err();
    assert_invalid(&e, &["too large", "65534 bytes"]);
}

/// A loopback server that answers every connection with an HTTP/1.1 400, as
/// any plain web server does to a gRPC (HTTP/2) or etcd v2 client.
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
                    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\
                      Content-Length: 11\r\nConnection: close\r\n\r\nBad Request",
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

for_each_backend!(a_peer_answering_http1_is_unreachable_naming_the_endpoint);

fn a_peer_answering_http1_is_unreachable_naming_the_endpoint(backend: Backend) {
    let endpoint = http1_server();
    let rt = Runtime::new().unwrap();
    // A long deadline: the answer must not wait for it.
    let s = store(
        &rt,
        &format!(
            r#"{{"type":"{}","server_list":["{endpoint}"],"request_timeout_ms":30000,"health_timeout_ms":30000}}"#,
            backend.type_name()
        ),
    );
    let says = match backend {
        Backend::Etcd3 => "did not answer as an etcd gRPC server",
        Backend::Etcd2 => "did not answer as an etcd v2 server",
    };
    let t0 = Instant::now();
    let errors = [
        (
            "get",
            rt.block_on(s.get("/configmaps/ns/a", &GetOptions::default()))
                .unwrap_err(),
        ),
        ("count", rt.block_on(s.count("/configmaps")).unwrap_err()),
        ("health", rt.block_on(s.health()).unwrap_err()),
    ];
    for (what, e) in &errors {
        assert_eq!(e.code, Code::Unreachable, "{what}: {}", e.message);
        assert!(
            e.message.contains(&endpoint) && e.message.contains(says),
            "{what}: {}",
            e.message
        );
    }
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "a wrong peer took {:?}: it must not be retried until the deadline",
        t0.elapsed()
    );
}

/// With a real etcd listed after the wrong peer, reads move on to it.
#[test]
fn reads_move_past_a_peer_that_is_no_etcd() {
    let etcd = Etcd::start();
    let rv = etcd.put("/registry/configmaps/ns/a", &object(10));
    let rt = Runtime::new().unwrap();
    let s = store(
        &rt,
        &format!(
            r#"{{"server_list":["{}","{}"],"request_timeout_ms":10000}}"#,
            http1_server(),
            etcd.endpoint()
        ),
    );
    for _ in 0..4 {
        let got = rt
            .block_on(s.get("/configmaps/ns/a", &GetOptions::default()))
            .unwrap()
            .unwrap();
        assert_eq!(got.resource_version, rv);
    }
}
