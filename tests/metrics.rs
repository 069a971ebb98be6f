//! A store's metrics after real traffic against a real etcd: scraped,
//! parsed, and checked to the exact count.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use apiserver_storage::config::Config;
use apiserver_storage::factory::{self, DestroyFunc};
use apiserver_storage::storage::{Code, GetOptions, Interface};
use apiserver_storage::watch::{Event, WatchOptions};
use common::Etcd;
use tokio::runtime::Runtime;

/// One scrape: every sample, by name and its labels.
struct Scrape {
    samples: BTreeMap<(String, BTreeMap<String, String>), f64>,
    text: String,
}

impl Scrape {
    fn of(store: &dyn Interface) -> Scrape {
        let text = store.metrics_text();
        let mut samples = BTreeMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').unwrap())),
                None => (series, BTreeMap::new()),
            };
            let value: f64 = value.parse().expect("a numeric value");
            samples.insert((name.to_owned(), labels), value);
        }
        Scrape { samples, text }
    }

    /// The sample with exactly these labels; 0 when absent (never counted).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .get(&(name.to_owned(), labels))
            .copied()
            .unwrap_or(0.0)
    }

    /// The sum over every sample of `name` whose labels include these.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|((n, l), _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, v)| v)
            .sum()
    }

    /// The `grpc_code`s of `method`'s handled calls, with their counts.
    fn codes(&self, method: &str) -> BTreeMap<String, f64> {
        self.samples
            .iter()
            .filter(|((n, l), v)| {
                n == "grpc_client_handled_total"
                    && l.get("grpc_method").map(String::as_str) == Some(method)
                    && **v > 0.0
            })
            .map(|((_, l), v)| (l["grpc_code"].clone(), *v))
            .collect()
    }
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").expect("label=\"value\"");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("a closing quote") {
                (_, '\\') => value.push(chars.next().unwrap().1),
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

const KV: [(&str, &str); 3] = [
    ("grpc_type", "unary"),
    ("grpc_service", "etcdserverpb.KV"),
    ("grpc_method", "Range"),
];

fn with<'a>(base: &[(&'a str, &'a str)], extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    base.iter().chain(extra).copied().collect()
}

fn open(rt: &Runtime, config: &str) -> (Arc<dyn Interface>, DestroyFunc) {
    let config = Config::from_json(config).unwrap();
    rt.block_on(factory::create(&config)).unwrap()
}

fn get(rt: &Runtime, store: &dyn Interface, key: &str) -> apiserver_storage::storage::Result<()> {
    rt.block_on(store.get(key, &GetOptions::default()))
        .map(|o| assert!(o.is_some()))
}

fn pod(name: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"default"}}}}"#
    )
}

#[test]
fn grpc_client_metrics_count_every_range_call() {
    const FOUND: usize = 7;
    const MISSING: usize = 4;
    let mut etcd = Etcd::start();
    for i in 0..FOUND {
        etcd.put(
            &format!("/registry/pods/default/p{i}"),
            pod(&format!("p{i}")).as_bytes(),
        );
    }
    let rt = Runtime::new().unwrap();
    let config = etcd.config(r#""prefix":"/registry","request_timeout_ms":1500"#);
    let (store, _destroy) = open(&rt, &config);
    let (other, _destroy_other) = open(&rt, &config);
    for i in 0..FOUND {
        get(&rt, &*store, &format!("pods/default/p{i}")).unwrap();
    }
    for i in 0..MISSING {
        // Not found is the store's answer: etcd's Range itself succeeded.
        let e = get(&rt, &*store, &format!("pods/default/missing{i}")).unwrap_err();
        assert_eq!(e.code, Code::KeyNotFound);
    }
    get(&rt, &*other, "pods/default/p0").unwrap();

    let calls = (FOUND + MISSING) as f64;
    let m = Scrape::of(&*store);
    assert_eq!(m.get("grpc_client_started_total", &KV), calls, "{}", m.text);
    assert_eq!(m.codes("Range"), BTreeMap::from([("OK".to_owned(), calls)]));
    assert_eq!(m.get("grpc_client_msg_sent_total", &KV), calls);
    assert_eq!(m.get("grpc_client_msg_received_total", &KV), calls);
    assert_eq!(m.get("grpc_client_handling_seconds_count", &KV), calls);
    let inf = with(&KV, &[("le", "+Inf")]);
    assert_eq!(m.get("grpc_client_handling_seconds_bucket", &inf), calls);
    // go-grpc-prometheus' default buckets, .005 to 10.
    for le in [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
    ] {
        assert!(
            m.text.contains(&format!(
                r#"grpc_client_handling_seconds_bucket{{grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary",le="{le}"}}"#
            )),
            "bucket {le} missing:\n{}",
            m.text
        );
    }
    assert_eq!(m.sum("apiserver_storage_etcd_retries_total", &[]), 0.0);
    // Each handle counts its own calls only.
    let o = Scrape::of(&*other);
    assert_eq!(o.get("grpc_client_started_total", &KV), 1.0);
    assert_eq!(o.codes("Range"), BTreeMap::from([("OK".to_owned(), 1.0)]));

    // etcd gone: every attempt within the deadline fails, each counted.
    etcd.kill_member(0);
    let e = get(&rt, &*store, "pods/default/p0").unwrap_err();
    assert!(matches!(e.code, Code::Unreachable | Code::Timeout), "{e:?}");
    let m = Scrape::of(&*store);
    let started = m.get("grpc_client_started_total", &KV);
    let failed = started - calls;
    assert!(failed >= 1.0, "{}", m.text);
    let codes = m.codes("Range");
    assert_eq!(codes.get("OK"), Some(&calls), "{codes:?}");
    let unavailable = codes.get("Unavailable").copied().unwrap_or(0.0);
    let deadline = codes.get("DeadlineExceeded").copied().unwrap_or(0.0);
    assert_eq!(unavailable + deadline, failed, "{codes:?}");
    assert_eq!(
        codes.len(),
        1 + (unavailable > 0.0) as usize + (deadline > 0.0) as usize
    );
    assert_eq!(m.sum("grpc_client_handled_total", &KV), started);
    assert_eq!(m.get("grpc_client_handling_seconds_count", &KV), started);
    assert_eq!(m.get("grpc_client_msg_sent_total", &KV), started);
    assert_eq!(m.get("grpc_client_msg_received_total", &KV), calls);
    // The last failed attempt is reported, not retried.
    let retries = [
        ("grpc_service", "etcdserverpb.KV"),
        ("grpc_method", "Range"),
    ];
    assert_eq!(
        m.get("apiserver_storage_etcd_retries_total", &retries),
        failed - 1.0
    );
}

const KEY1: &str = "dwhZ/08myNrj5qqgb2WFNsPdHF5GCp/2rQY7cmtIG5A=";
const KEY2: &str = "s4Yf1B3aRzcdlQZ+e0ecsP/7g7U7tdSZQ7uzQiHf3zU=";

fn aesgcm(name: &str, secret: &str) -> String {
    format!(r#"{{"aesgcm":{{"keys":[{{"name":"{name}","secret":"{secret}"}}]}}}}"#)
}

#[test]
fn transformations_are_counted_per_provider() {
    let etcd = Etcd::start();
    let rt = Runtime::new().unwrap();
    let old_config = etcd.config(&format!(
        r#""prefix":"/registry","transformer":{{"providers":[{}]}}"#,
        aesgcm("key1", KEY1)
    ));
    let (old, _d1) = open(&rt, &old_config);
    for name in ["a", "b"] {
        rt.block_on(old.create(&format!("pods/default/{name}"), pod(name).as_bytes(), 0))
            .unwrap();
    }
    // Rotated: key2 writes, key1 still reads, plaintext is readable too.
    let new_config = etcd.config(&format!(
        r#""prefix":"/registry","transformer":{{"providers":[{},{},{{"identity":{{}}}}]}}"#,
        aesgcm("key2", KEY2),
        aesgcm("key1", KEY1)
    ));
    let (new, _d2) = open(&rt, &new_config);
    rt.block_on(new.create("pods/default/c", pod("c").as_bytes(), 0))
        .unwrap();
    for name in ["a", "b", "c"] {
        get(&rt, &*new, &format!("pods/default/{name}")).unwrap();
    }
    etcd.put("/registry/pods/default/plain", pod("plain").as_bytes());
    get(&rt, &*new, "pods/default/plain").unwrap();
    // Forged under key2's prefix, and under a provider nobody lists.
    etcd.put(
        "/registry/pods/default/forged",
        &[&b"k8s:enc:aesgcm:v1:key2:"[..], &[7u8; 40]].concat(),
    );
    etcd.put(
        "/registry/pods/default/alien",
        b"k8s:enc:secretbox:v1:x:0123456789012345678901234567890123456789",
    );
    for name in ["forged", "alien"] {
        let e = get(&rt, &*new, &format!("pods/default/{name}")).unwrap_err();
        assert_eq!(e.code, Code::CorruptObj);
    }

    let ops = "apiserver_storage_transformation_operations_total";
    let op = |kind, prefix, status| {
        [
            ("transformation_type", kind),
            ("transformer_prefix", prefix),
            ("status", status),
        ]
    };
    let stale = |prefix| [("transformer_prefix", prefix)];
    let (k1, k2) = ("k8s:enc:aesgcm:v1:key1:", "k8s:enc:aesgcm:v1:key2:");
    let failed = "unknown-non-grpc";

    let m = Scrape::of(&*old);
    assert_eq!(m.get(ops, &op("to_storage", k1, "OK")), 2.0, "{}", m.text);
    assert_eq!(m.sum(ops, &[]), 2.0);

    let m = Scrape::of(&*new);
    assert_eq!(m.get(ops, &op("to_storage", k2, "OK")), 1.0, "{}", m.text);
    assert_eq!(m.get(ops, &op("from_storage", k2, "OK")), 1.0);
    assert_eq!(m.get(ops, &op("from_storage", k1, "OK")), 2.0);
    assert_eq!(m.get(ops, &op("from_storage", "identity", "OK")), 1.0);
    assert_eq!(m.get(ops, &op("from_storage", k2, failed)), 1.0);
    assert_eq!(m.get(ops, &op("from_storage", "unknown", failed)), 1.0);
    assert_eq!(m.sum(ops, &[]), 7.0);
    let stale_reads = "apiserver_storage_transformation_stale_reads_total";
    assert_eq!(m.get(stale_reads, &stale(k1)), 2.0);
    assert_eq!(m.get(stale_reads, &stale("identity")), 1.0);
    assert_eq!(m.get(stale_reads, &stale(k2)), 0.0);
}

#[test]
fn a_watch_counts_its_messages_and_resumptions() {
    let mut etcd = Etcd::start();
    let rt = Runtime::new().unwrap();
    let (store, _destroy) = open(&rt, &etcd.config(r#""prefix":"/registry""#));
    let from = etcd.revision().to_string();
    let mut w = rt.block_on(async {
        let opts = WatchOptions {
            resource_version: from,
            recursive: true,
            ..WatchOptions::default()
        };
        store.watch("pods", &opts).await.unwrap()
    });
    let mut next = || -> Event {
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), w.next()).await })
            .expect("an event in time")
            .expect("the watch goes on")
            .expect("an event, not an error")
    };
    etcd.put("/registry/pods/default/a", pod("a").as_bytes());
    assert_eq!(next().key, "/registry/pods/default/a");
    etcd.kill_member(0);
    etcd.start_member(0);
    etcd.put("/registry/pods/default/b", pod("b").as_bytes());
    assert_eq!(next().key, "/registry/pods/default/b");

    let m = Scrape::of(&*store);
    let watch = [
        ("grpc_type", "bidi_stream"),
        ("grpc_service", "etcdserverpb.Watch"),
        ("grpc_method", "Watch"),
    ];
    assert_eq!(
        m.get("apiserver_storage_watch_resumptions_total", &[]),
        1.0,
        "{}",
        m.text
    );
    let started = m.get("grpc_client_started_total", &watch);
    // Two streams opened, and any attempts that found etcd still down.
    assert!(started >= 2.0, "{}", m.text);
    // The open one is not handled yet; every other one is.
    assert_eq!(m.sum("grpc_client_handled_total", &watch), started - 1.0);
    assert_eq!(
        m.get("grpc_client_handling_seconds_count", &watch),
        started - 1.0
    );
    assert_eq!(m.get("grpc_client_msg_sent_total", &watch), started);
    // Each stream's created notice, then one response per event.
    assert_eq!(m.get("grpc_client_msg_received_total", &watch), 4.0);
    drop(w);
}
