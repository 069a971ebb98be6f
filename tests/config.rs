//! Config handling against real etcd servers: credentials, endpoints, TLS
//! files, and the endpoints auto-sync learns.

mod common;

use apiserver_storage::config::Config;
use apiserver_storage::factory;
use apiserver_storage::storage::{Code, GetOptions, StorageError};
use common::{Backend, Etcd};

/// Creates a store from `config` and reads `key` (not found is `None`).
fn get(config: &str, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = Config::from_json(config)?;
    let (store, _destroy) = rt.block_on(factory::create(&config))?;
    let opts = GetOptions {
        ignore_not_found: true,
        ..Default::default()
    };
    rt.block_on(store.get(key, &opts))
        .map(|o| o.map(|o| o.data))
}

for_each_backend!(empty_username_and_password_mean_no_credentials);

fn empty_username_and_password_mean_no_credentials(backend: Backend) {
    let etcd = Etcd::start_backend(backend);
    etcd.put("/registry/k", br#"{"a":1}"#);
    for credentials in [
        r#""username":"","password":"""#,
        r#""username":"","password":null"#,
        r#""username":"""#,
    ] {
        let value = get(&etcd.config(credentials), "/k")
            .unwrap_or_else(|e| panic!("{credentials}: {:?} {}", e.code, e.message))
            .unwrap_or_else(|| panic!("{credentials}: the key is there"));
        assert!(
            String::from_utf8_lossy(&value).contains(r#""a":1"#),
            "{credentials}"
        );
    }
}

for_each_backend!(files_the_config_names_are_read_up_to_one_mib);

fn files_the_config_names_are_read_up_to_one_mib(backend: Backend) {
    let big = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(big.path(), vec![b'#'; (1 << 20) + 1]).unwrap();
    let big = big.path().to_str().unwrap();
    let certs = common::tls::Certs::generate();
    let cert = certs.path("client.pem").display().to_string();
    let key = certs.path("client-key.pem").display().to_string();
    let ca = certs.path("ca.pem").display().to_string();
    let mut cases = vec![];
    for path in ["/dev/zero", big] {
        cases.push(("ca_file", path, format!(r#""ca_file":"{path}""#)));
        cases.push((
            "cert_file",
            path,
            format!(r#""ca_file":"{ca}","cert_file":"{path}","key_file":"{key}""#),
        ));
        cases.push((
            "key_file",
            path,
            format!(r#""ca_file":"{ca}","cert_file":"{cert}","key_file":"{path}""#),
        ));
        if backend == Backend::Etcd3 {
            cases.push((
                "transformer.encryption_config_file",
                path,
                format!(
                    r#""transformer":{{"encryption_config_file":"{path}","resource":"secrets"}}"#
                ),
            ));
        }
    }
    for (field, path, extra) in cases {
        let config = format!(
            r#"{{"type":"{}","server_list":["https://127.0.0.1:1"],{extra}}}"#,
            backend.type_name()
        );
        let e = get(&config, "/k").unwrap_err();
        assert_eq!(e.code, Code::InvalidConfig, "{field} {path}: {}", e.message);
        assert_eq!(
            e.message,
            format!(
                "invalid config field `{field}`: {path:?}: the file is larger than 1 MiB, \
                 the limit for files the config names"
            )
        );
    }
}

/// A config for `backend` with `endpoint`, the test CA and `extra` fields.
fn tls_config(backend: Backend, endpoint: &str, certs: &common::tls::Certs, extra: &str) -> String {
    format!(
        r#"{{"type":"{}","server_list":["{endpoint}"],"ca_file":"{}","request_timeout_ms":10000,"dial_timeout_ms":10000{extra}}}"#,
        backend.type_name(),
        certs.path("ca.pem").display()
    )
}

for_each_backend!(tls_errors_name_the_endpoint);

fn tls_errors_name_the_endpoint(backend: Backend) {
    let certs = common::tls::Certs::generate();
    let etcd = Etcd::start_tls_backend(&certs, backend);
    let endpoint = etcd.endpoint();
    let p = |n: &str| certs.path(n).display().to_string();
    let client = format!(
        r#","cert_file":"{}","key_file":"{}""#,
        p("client.pem"),
        p("client-key.pem")
    );
    let ok = tls_config(backend, &endpoint, &certs, &client);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while let Err(e) = get(&ok, "/k") {
        assert!(
            std::time::Instant::now() < deadline,
            "mutual TLS failed: {e}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // No client certificate; a server certificate from another CA.
    let wrong_ca = format!(
        r#"{{"type":"{}","server_list":["{endpoint}"],"ca_file":"{}"{client},"request_timeout_ms":10000}}"#,
        backend.type_name(),
        p("other-ca.pem")
    );
    for config in [tls_config(backend, &endpoint, &certs, ""), wrong_ca] {
        let e = get(&config, "/k").unwrap_err();
        assert_eq!(e.code, Code::Unreachable, "{}", e.message);
        assert!(e.message.contains("TLS: "), "{}", e.message);
        assert!(e.message.contains(&endpoint), "{}", e.message);
    }
}

for_each_backend!(a_client_certificate_and_a_key_that_do_not_match_are_invalid_config);

fn a_client_certificate_and_a_key_that_do_not_match_are_invalid_config(backend: Backend) {
    let certs = common::tls::Certs::generate();
    let p = |n: &str| certs.path(n).display().to_string();
    let mismatched = format!(
        r#","cert_file":"{}","key_file":"{}""#,
        p("client.pem"),
        p("other-client-key.pem")
    );
    let config = tls_config(backend, "https://127.0.0.1:1", &certs, &mismatched);
    let e = get(&config, "/k").unwrap_err();
    assert_eq!(e.code, Code::InvalidConfig, "{}", e.message);
    for part in [
        "`cert_file`",
        "`key_file`",
        "do not match",
        &p("client.pem"),
        &p("other-client-key.pem"),
    ] {
        assert!(e.message.contains(part), "no {part}: {}", e.message);
    }
}

/// A TCP relay on a loopback port that counts every byte clients send it and
/// forwards the connection to `upstream`.
struct Relay {
    port: u16,
    received: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Relay {
    fn start(upstream: u16) -> Relay {
        use std::io::{Read, Write};
        use std::net::{TcpListener, TcpStream};
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(AtomicUsize::new(0));
        let counter = received.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let counter = counter.clone();
                let (mut from_client, mut to_server) = (client.try_clone().unwrap(), server);
                let (mut from_server, mut to_client) = (to_server.try_clone().unwrap(), client);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 << 10];
                    while let Ok(n @ 1..) = from_client.read(&mut buf) {
                        counter.fetch_add(n, Ordering::SeqCst);
                        if to_server.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to_server.shutdown(std::net::Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from_server, &mut to_client);
                    let _ = to_client.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Relay { port, received }
    }

    fn received(&self) -> usize {
        self.received.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn auto_sync_never_follows_a_plaintext_url_under_tls() {
    let certs = common::tls::Certs::generate();
    let plain_port = common::free_port();
    let relay = Relay::start(plain_port);
    let plaintext_url = format!("http://127.0.0.1:{}", relay.port);
    let etcd = Etcd::start_tls_advertising(&certs, plain_port, &[plaintext_url]);
    let https = etcd.endpoint();
    assert!(https.starts_with("https://"));
    // Authentication on, set up over the plaintext port.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let plain = format!("http://127.0.0.1:{plain_port}");
        let mut c = etcd_client::Client::connect([plain], None).await.unwrap();
        c.role_add("root").await.unwrap();
        c.user_add("root", "r00t-secret", None).await.unwrap();
        c.user_grant_role("root", "root").await.unwrap();
        c.role_add("rw").await.unwrap();
        c.role_grant_permission(
            "rw",
            etcd_client::Permission::read_write("/registry/").with_prefix(),
        )
        .await
        .unwrap();
        c.user_add("alice", "alice-tls-secret", None).await.unwrap();
        c.user_grant_role("alice", "rw").await.unwrap();
        c.auth_enable().await.unwrap();
    });
    let config = format!(
        r#"{{"server_list":["{https}"],"ca_file":"{}","username":"alice","password":"alice-tls-secret","auto_sync_interval_s":1,"request_timeout_ms":5000}}"#,
        certs.path("ca.pem").display()
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = Config::from_json(&config).unwrap();
    let (store, _destroy) = rt.block_on(factory::create(&config)).unwrap();
    let start = std::time::Instant::now();
    let mut calls = 0;
    // Past several syncs; every call must succeed, and none may use the relay.
    while start.elapsed() < std::time::Duration::from_secs(4) {
        let key = format!("/configmaps/default/cm{calls}");
        let object =
            format!(r#"{{"metadata":{{"name":"cm{calls}"}},"data":{{"v":"value-{calls}"}}}}"#);
        rt.block_on(store.create(&key, object.as_bytes(), 0))
            .unwrap_or_else(|e| panic!("create {key}: {}", e.message));
        let got = rt
            .block_on(store.get(&key, &GetOptions::default()))
            .unwrap_or_else(|e| panic!("get {key}: {}", e.message))
            .unwrap();
        assert!(String::from_utf8_lossy(&got.data).contains(&format!("value-{calls}")));
        calls += 1;
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(calls > 10, "{calls} calls");
    assert_eq!(
        relay.received(),
        0,
        "the plaintext URL a member advertises was used"
    );
}
