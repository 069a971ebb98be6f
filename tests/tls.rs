//! TLS against a real etcd that requires client certificates.

mod common;

use std::time::{Duration, Instant};

use apiserver_storage::config::Config;
use apiserver_storage::factory;
use apiserver_storage::storage::{Code, GetOptions, StorageError};
use common::tls::Certs;
use common::{Backend, Etcd};

fn get(config: &str) -> Result<(), StorageError> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = Config::from_json(config).unwrap();
    let (store, _destroy) = rt.block_on(factory::create(&config))?;
    let opts = GetOptions {
        ignore_not_found: true,
        ..Default::default()
    };
    let t0 = Instant::now();
    let result = rt.block_on(store.get("/k", &opts)).map(|_| ());
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "TLS failures must not wait for a timeout"
    );
    result
}

fn config(
    backend: Backend,
    endpoint: &str,
    certs: &Certs,
    ca: &str,
    client: Option<&str>,
) -> String {
    let p = |n: &str| certs.path(n).display().to_string();
    let client = client.map_or(String::new(), |c| {
        format!(
            r#","cert_file":"{}","key_file":"{}""#,
            p(&format!("{c}.pem")),
            p(&format!("{c}-key.pem"))
        )
    });
    format!(
        r#"{{"type":"{}","server_list":["{endpoint}"],"ca_file":"{}"{client},"request_timeout_ms":10000,"dial_timeout_ms":10000}}"#,
        backend.type_name(),
        p(ca)
    )
}

for_each_backend!(mutual_tls_works_and_each_failure_names_its_tls_problem);

fn mutual_tls_works_and_each_failure_names_its_tls_problem(backend: Backend) {
    let certs = Certs::generate();
    let etcd = Etcd::start_tls_backend(&certs, backend);
    let endpoint = etcd.endpoint();
    assert!(endpoint.starts_with("https://"));
    // etcd may need a moment after opening its port.
    let ok = config(backend, &endpoint, &certs, "ca.pem", Some("client"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = get(&ok) {
        assert!(Instant::now() < deadline, "mutual TLS failed: {e}");
        std::thread::sleep(Duration::from_millis(200));
    }

    let no_client = get(&config(backend, &endpoint, &certs, "ca.pem", None)).unwrap_err();
    let other_client = get(&config(
        backend,
        &endpoint,
        &certs,
        "ca.pem",
        Some("other-client"),
    ))
    .unwrap_err();
    let wrong_ca = get(&config(
        backend,
        &endpoint,
        &certs,
        "other-ca.pem",
        Some("client"),
    ))
    .unwrap_err();
    let plain = Etcd::start();
    let https_to_plain = get(&config(
        backend,
        &plain.endpoint().replace("http://", "https://"),
        &certs,
        "ca.pem",
        Some("client"),
    ))
    .unwrap_err();
    let messages: Vec<&str> = [&no_client, &other_client, &wrong_ca, &https_to_plain]
        .iter()
        .map(|e| e.message.as_str())
        .collect();
    for (e, what) in [
        (&no_client, "no client certificate"),
        (&other_client, "client certificate from another CA"),
        (&wrong_ca, "wrong CA for the server"),
        (&https_to_plain, "https to a plaintext server"),
    ] {
        eprintln!("{what}: {:?} {}", e.code, e.message);
        assert_eq!(e.code, Code::Unreachable, "{what}: {}", e.message);
        assert!(
            e.message.contains("TLS"),
            "{what} does not name TLS: {}",
            e.message
        );
    }
    // Each failure reads differently.
    for i in 0..messages.len() {
        for j in i + 1..messages.len() {
            assert_ne!(messages[i], messages[j]);
        }
    }
}
