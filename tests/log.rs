//! A host process that installed its own global `tracing` subscriber keeps
//! it: the library's events go there, also with `APISERVER_STORAGE_LOG` set.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use apiserver_storage::config::Config;
use apiserver_storage::factory;
use apiserver_storage::storage::{Code, GetOptions};
use common::{free_port, Etcd};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_hosts_subscriber_receives_the_events() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    std::env::set_var(apiserver_storage::log::ENV, "trace");

    let etcd = Etcd::start();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let config = format!(
        r#"{{"server_list":["{dead}","{}"],"request_timeout_ms":10000}}"#,
        etcd.endpoint()
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (store, _destroy) = rt
        .block_on(factory::create(&Config::from_json(&config).unwrap()))
        .unwrap();
    let e = rt
        .block_on(store.get("/missing", &GetOptions::default()))
        .unwrap_err();
    assert_eq!(e.code, Code::KeyNotFound);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("etcd endpoint marked down") && logs.contains(&dead),
        "{logs}"
    );
    assert!(logs.contains("retrying the etcd request"), "{logs}");
}
