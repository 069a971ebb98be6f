//! Watch against a real etcd: ordering, initial lists, key ranges, deletions,
//! etcd restarts, compaction, slow consumers, encryption at rest. Behaviours
//! both backends have run against each (`for_each_backend!`); etcd3 alone
//! keeps compaction (v2 has none: its expiry is tested in tests/etcd2.rs),
//! encryption at rest (no transformer on etcd2) and a key that is also a
//! directory (in v2 a node is either a value or a directory).

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use apiserver_storage::config::Config;
use apiserver_storage::factory;
use apiserver_storage::storage::{Code, Interface, Result, StorageError};
use apiserver_storage::value;
use apiserver_storage::watch::{Event, EventType, Watch, WatchOptions};
use common::{answers_progress_requests, Backend, Etcd};
use etcd_client::Client;
use serde_json::{json, Value};
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn store(rt: &Runtime, config: &str) -> Arc<dyn Interface> {
    let config = Config::from_json(config).unwrap();
    rt.block_on(factory::create(&config)).unwrap().0
}

fn watch(rt: &Runtime, s: &Arc<dyn Interface>, key: &str, rv: &str, recursive: bool) -> Watch {
    let opts = WatchOptions {
        resource_version: rv.into(),
        recursive,
        ..WatchOptions::default()
    };
    rt.block_on(s.watch(key, &opts)).unwrap()
}

/// The next item of `w`; fails the test when none comes within 30 s.
fn next(rt: &Runtime, w: &mut Watch) -> Result<Event> {
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), w.next()).await })
        .expect("no watch event within 30 s")
        .expect("the watch ended without an error")
}

fn next_event(rt: &Runtime, w: &mut Watch) -> Event {
    next(rt, w).unwrap_or_else(|e| panic!("watch error: {e:?}"))
}

fn next_error(rt: &Runtime, w: &mut Watch) -> StorageError {
    match next(rt, w) {
        Ok(e) => panic!("expected an error, got {e:?}"),
        Err(e) => e,
    }
}

/// Asserts nothing arrives for a moment.
fn assert_quiet(rt: &Runtime, w: &mut Watch) {
    let got =
        rt.block_on(async { tokio::time::timeout(Duration::from_millis(500), w.next()).await });
    assert!(got.is_err(), "unexpected item: {got:?}");
}

fn client(rt: &Runtime, etcd: &Etcd) -> Client {
    rt.block_on(Client::connect(etcd.endpoints(), None))
        .unwrap()
}

fn pod(name: &str, n: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({"kind":"Pod","metadata":{"name":name},"spec":{"n":n}})).unwrap()
}

fn json(data: &[u8]) -> Value {
    serde_json::from_slice(data).unwrap()
}

/// The object as the JSON codec returns it: stamped with `rv`.
fn stamped(value: &[u8], rv: i64) -> Value {
    let mut v = json(value);
    v["metadata"]["resourceVersion"] = json!(rv.to_string());
    v
}

for_each_backend!(
    a_thousand_writes_arrive_in_order,
    resource_version_zero_lists_first_then_follows,
    deleted_carries_the_previous_object,
    an_etcd_restart_loses_and_repeats_nothing,
    a_rolling_restart_of_a_cluster_loses_and_repeats_nothing,
    a_slow_consumer_gets_an_overflow_error_not_unbounded_memory,
    dropping_a_watch_stops_it,
);

fn a_thousand_writes_arrive_in_order(backend: Backend) {
    let etcd = Etcd::start_backend(backend);
    let rt = runtime();
    let s = store(&rt, &etcd.config(""));
    let start = etcd.revision();
    let mut w = watch(&rt, &s, "/pods", &start.to_string(), true);

    // (type, key, value after, revision, value before)
    type Expected = (EventType, String, Vec<u8>, i64, Option<(Vec<u8>, i64)>);
    let mut c = etcd.writer();
    let writer = std::thread::spawn(move || {
        let mut current: HashMap<String, (Vec<u8>, i64)> = HashMap::new();
        let mut expected: Vec<Expected> = Vec::new();
        for i in 0..1000 {
            let key = format!("/registry/pods/ns/p{}", i % 40);
            let prev = current.get(&key).cloned();
            if prev.is_some() && i % 7 == 0 {
                let rv = c.delete(&key).unwrap();
                let (old, _) = prev.clone().unwrap();
                expected.push((EventType::Deleted, key.clone(), old, rv, prev));
                current.remove(&key);
            } else {
                let value = pod(&key, i);
                let rv = c.put(&key, &value).unwrap();
                let kind = if prev.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                };
                expected.push((kind, key.clone(), value.clone(), rv, prev));
                current.insert(key, (value, rv));
            }
        }
        expected
    });
    let mut seen = Vec::new();
    for _ in 0..1000 {
        seen.push(next_event(&rt, &mut w));
    }
    let expected = writer.join().unwrap();
    let (mut added, mut modified, mut deleted) = (0, 0, 0);
    for (i, (event, (kind, key, value, rv, prev))) in seen.iter().zip(&expected).enumerate() {
        assert_eq!(event.event_type, *kind, "event {i}");
        assert_eq!(&event.key, key, "event {i}");
        assert_eq!(event.resource_version(), *rv, "event {i}");
        assert_eq!(json(&event.object.data), stamped(value, *rv), "event {i}");
        let want_prev = prev.as_ref().map(|(v, prev_rv)| stamped(v, *prev_rv));
        assert_eq!(
            event.prev_object.as_ref().map(|o| json(&o.data)),
            want_prev,
            "event {i}"
        );
        match kind {
            EventType::Added => added += 1,
            EventType::Modified => modified += 1,
            EventType::Deleted => deleted += 1,
            EventType::Bookmark => panic!("event {i}: a bookmark no one asked for"),
        }
    }
    assert!(
        added > 40 && modified > 500 && deleted > 100,
        "{added} {modified} {deleted}"
    );
    assert_quiet(&rt, &mut w);
}

fn resource_version_zero_lists_first_then_follows(backend: Backend) {
    let etcd = Etcd::start_backend(backend);
    let rt = runtime();
    let rv_a = etcd.put("/registry/cms/a", &pod("a", 1));
    let rv_b = etcd.put("/registry/cms/b", &pod("b", 1));
    let rv_deep = etcd.put("/registry/cms/ns/c", &pod("c", 1));
    etcd.put("/registry/cmsX/sibling", &pod("x", 1));
    let s = store(&rt, &etcd.config(r#""prefix":"/registry""#));
    for rv in ["", "0"] {
        let mut w = watch(&rt, &s, "cms", rv, true);
        let listed: Vec<(EventType, String, i64, Option<i64>)> = (0..3)
            .map(|_| {
                let e = next_event(&rt, &mut w);
                (
                    e.event_type,
                    e.key.clone(),
                    e.resource_version(),
                    e.prev_object.map(|o| o.resource_version),
                )
            })
            .collect();
        assert_eq!(
            listed,
            [
                (EventType::Added, "/registry/cms/a".into(), rv_a, None),
                (EventType::Added, "/registry/cms/b".into(), rv_b, None),
                (EventType::Added, "/registry/cms/ns/c".into(), rv_deep, None),
            ]
        );
        assert_quiet(&rt, &mut w);
    }
    let mut w = watch(&rt, &s, "/cms", "0", true);
    for _ in 0..3 {
        next_event(&rt, &mut w);
    }
    let rv = etcd.put("/registry/cms/a", &pod("a", 2));
    let e = next_event(&rt, &mut w);
    assert_eq!(
        (e.event_type, e.resource_version()),
        (EventType::Modified, rv)
    );
    assert_eq!(json(&e.object.data), stamped(&pod("a", 2), rv));
    assert_eq!(
        json(&e.prev_object.unwrap().data),
        stamped(&pod("a", 1), rv_a)
    );
    let rv = etcd.put("/registry/cms/d", &pod("d", 1));
    let e = next_event(&rt, &mut w);
    assert_eq!(
        (e.event_type, e.key.as_str(), e.resource_version()),
        (EventType::Added, "/registry/cms/d", rv)
    );

    // A single key: its current state, then its changes.
    let mut w = watch(&rt, &s, "/cms/b", "0", false);
    let e = next_event(&rt, &mut w);
    assert_eq!(
        (e.event_type, e.resource_version()),
        (EventType::Added, rv_b)
    );
    assert_quiet(&rt, &mut w);
    // A missing key lists nothing.
    let mut w = watch(&rt, &s, "/cms/none", "0", false);
    assert_quiet(&rt, &mut w);
}

#[test]
fn single_key_and_recursive_watches_cover_different_keys() {
    let etcd = Etcd::start();
    let rt = runtime();
    let s = store(&rt, &etcd.config(""));
    let start = etcd.revision().to_string();
    let mut single = watch(&rt, &s, "/cms/a", &start, false);
    let mut tree = watch(&rt, &s, "/cms/a", &start, true);
    // With a trailing slash, the same range.
    let mut tree_slash = watch(&rt, &s, "/cms/a/", &start, true);
    etcd.put("/registry/cms/ab", &pod("ab", 1));
    let rv_child = etcd.put("/registry/cms/a/child", &pod("child", 1));
    let rv_self = etcd.put("/registry/cms/a", &pod("a", 1));
    let rv_grandchild = etcd.put("/registry/cms/a/x/y", &pod("y", 1));
    let e = next_event(&rt, &mut single);
    assert_eq!(
        (e.key.as_str(), e.resource_version()),
        ("/registry/cms/a", rv_self)
    );
    assert_quiet(&rt, &mut single);
    for w in [&mut tree, &mut tree_slash] {
        let keys: Vec<(String, i64)> = (0..2)
            .map(|_| {
                let e = next_event(&rt, w);
                (e.key.clone(), e.resource_version())
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("/registry/cms/a/child".into(), rv_child),
                ("/registry/cms/a/x/y".into(), rv_grandchild)
            ]
        );
        assert_quiet(&rt, w);
    }
    // Keys that would leave the prefix and malformed versions fail at once.
    let bad = |key: &str, rv: &str| {
        let opts = WatchOptions {
            resource_version: rv.into(),
            recursive: true,
            ..WatchOptions::default()
        };
        rt.block_on(s.watch(key, &opts)).err().unwrap().code
    };
    assert_eq!(bad("/../../etc", "0"), Code::InvalidArgument);
    assert_eq!(bad("/cms", "x"), Code::InvalidArgument);
    assert_eq!(bad("/cms", "-1"), Code::InvalidArgument);
}

fn deleted_carries_the_previous_object(backend: Backend) {
    let etcd = Etcd::start_backend(backend);
    let rt = runtime();
    let s = store(&rt, &etcd.config(""));
    let start = etcd.revision();
    let mut w = watch(&rt, &s, "/cms/a", &start.to_string(), false);
    let rv1 = etcd.put("/registry/cms/a", &pod("a", 1));
    let rv2 = etcd.put("/registry/cms/a", &pod("a", 2));
    let rv3 = etcd.delete("/registry/cms/a");
    let rv4 = etcd.put("/registry/cms/a", &pod("a", 3));
    let added = next_event(&rt, &mut w);
    assert_eq!(
        (added.event_type, added.resource_version()),
        (EventType::Added, rv1)
    );
    assert!(added.prev_object.is_none());
    let modified = next_event(&rt, &mut w);
    assert_eq!(modified.event_type, EventType::Modified);
    assert_eq!(
        json(&modified.prev_object.unwrap().data),
        stamped(&pod("a", 1), rv1)
    );
    let deleted = next_event(&rt, &mut w);
    assert_eq!(
        (deleted.event_type, deleted.resource_version()),
        (EventType::Deleted, rv3)
    );
    // As Go: the last state, stamped with the deletion's revision.
    assert_eq!(json(&deleted.object.data), stamped(&pod("a", 2), rv3));
    let prev = deleted.prev_object.unwrap();
    assert_eq!(
        (json(&prev.data), prev.resource_version),
        (stamped(&pod("a", 2), rv2), rv2)
    );
    // Created again after the deletion: an addition with no past.
    let again = next_event(&rt, &mut w);
    assert_eq!(
        (again.event_type, again.resource_version()),
        (EventType::Added, rv4)
    );
    assert!(again.prev_object.is_none());
}

fn an_etcd_restart_loses_and_repeats_nothing(backend: Backend) {
    survives_restarts(backend, 1, &[0]);
}

fn a_rolling_restart_of_a_cluster_loses_and_repeats_nothing(backend: Backend) {
    // Every member goes down once, so whichever one the watch uses breaks it.
    survives_restarts(backend, 3, &[0, 1, 2]);
}

/// A write stream through a watch while `restart`'s members are killed and
/// restarted (keeping their data) one after the other.
fn survives_restarts(backend: Backend, members: usize, restart: &[usize]) {
    const WRITES: usize = 400;
    let mut etcd = Etcd::cluster_backend(members, backend);
    let rt = runtime();
    let s = store(&rt, &etcd.config(r#""request_timeout_ms":5000"#));
    let start = etcd.revision();
    let mut w = watch(&rt, &s, "/items", &start.to_string(), true);

    // Writes keep going, retried while etcd is down. Each creates its key,
    // so a retried write whose first answer was lost applies once.
    let mut c = etcd.writer();
    let writer = std::thread::spawn(move || {
        for i in 0..WRITES {
            let key = format!("/registry/items/i{i:04}");
            while c.create(&key, &pod(&key, i)).is_err() {
                std::thread::sleep(Duration::from_millis(50));
            }
            std::thread::sleep(Duration::from_millis(3));
        }
    });

    let mut revisions = Vec::new();
    let mut last: HashMap<String, i64> = HashMap::new();
    let mut restarted = false;
    while last.len() < WRITES {
        let e = next_event(&rt, &mut w);
        assert_eq!(json(&e.object.data)["metadata"]["name"], json!(e.key));
        revisions.push(e.resource_version());
        last.insert(e.key.clone(), e.resource_version());
        if revisions.len() == WRITES / 4 && !restarted {
            for &m in restart {
                etcd.kill_member(m);
                std::thread::sleep(Duration::from_millis(500));
                etcd.start_member(m);
            }
            restarted = true;
        }
    }
    writer.join().unwrap();
    assert_quiet(&rt, &mut w);
    // Each key's one event, in order, none repeated.
    assert_eq!(revisions.len(), WRITES);
    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "{revisions:?}");
    if backend == Backend::Etcd3 {
        // Nothing else writes to this etcd: every revision after `start` is a
        // write of ours. (etcd2's index also counts the members' own v2
        // writes on restart, which are not under /registry.)
        let want: Vec<i64> = (start + 1..=etcd.revision()).collect();
        assert_eq!(revisions, want);
    }
    // And each key's event is the key's state in etcd.
    let stored = etcd.revisions_under("/registry/items");
    assert_eq!(stored.len(), WRITES);
    for (key, rev) in stored {
        assert_eq!(last[&key], rev, "{key}");
    }
}

#[test]
fn a_compacted_resource_version_expires() {
    let etcd = Etcd::start();
    let rt = runtime();
    let s = store(&rt, &etcd.config(""));
    let first = etcd.put("/registry/cms/a", &pod("a", 1));
    for n in 2..6 {
        etcd.put("/registry/cms/a", &pod("a", n));
    }
    let current = etcd.revision();
    let mut c = client(&rt, &etcd);
    rt.block_on(c.compact(current, None)).unwrap();
    let mut w = watch(&rt, &s, "/cms", &first.to_string(), true);
    let e = next_error(&rt, &mut w);
    assert_eq!(e.code, Code::Expired);
    assert!(
        e.message
            .starts_with("The resourceVersion for the provided watch is too old."),
        "{}",
        e.message
    );
    assert_eq!(e.resource_version, first);
    // The watch has ended.
    assert!(rt.block_on(w.next()).is_none());
    // From the compaction point on, history is there.
    let mut w = watch(&rt, &s, "/cms", &current.to_string(), true);
    let rv = etcd.put("/registry/cms/a", &pod("a", 9));
    assert_eq!(next_event(&rt, &mut w).resource_version(), rv);
}

fn a_slow_consumer_gets_an_overflow_error_not_unbounded_memory(backend: Backend) {
    let extra = 100;
    let etcd = Etcd::start_backend(backend);
    let rt = runtime();
    let s = store(&rt, &etcd.config(""));
    let start = etcd.revision();
    let mut w = watch(&rt, &s, "/cms", &start.to_string(), true);
    let mut c = etcd.writer();
    let mut revisions = Vec::new();
    for i in 0..Watch::BUFFER_EVENTS + extra {
        let key = format!("/registry/cms/c{i}");
        revisions.push(c.put(&key, &pod(&key, i)).unwrap());
    }
    // Nobody reads for longer than a full buffer may wait.
    std::thread::sleep(Watch::OVERFLOW_GRACE + Duration::from_millis(1500));
    for want in &revisions[..Watch::BUFFER_EVENTS] {
        assert_eq!(next_event(&rt, &mut w).resource_version(), *want);
    }
    let e = next_error(&rt, &mut w);
    let resume = revisions[Watch::BUFFER_EVENTS - 1];
    assert_eq!(e.code, Code::Internal);
    assert_eq!(
        e.message,
        format!("watch buffer overflow: consumer too slow, restart the watch from resourceVersion {resume}")
    );
    assert_eq!(e.resource_version, resume);
    assert!(rt.block_on(w.next()).is_none());
    // Restarting there loses nothing.
    let mut w = watch(&rt, &s, "/cms", &resume.to_string(), true);
    for want in &revisions[Watch::BUFFER_EVENTS..] {
        assert_eq!(next_event(&rt, &mut w).resource_version(), *want);
    }
}

#[test]
fn encrypted_values_decode_and_corrupt_ones_end_the_watch() {
    let etcd = Etcd::start();
    let rt = runtime();
    let config = etcd.config(
        r#""transformer":{"providers":[{"aesgcm":{"keys":[{"name":"key1","secret":"d2F0Y2gtdGVzdC1rZXktb2YtMzItYnl0ZXMtbG9uZyE="}]}},{"identity":{}}]}"#,
    );
    let transformer =
        value::from_config(Config::from_json(&config).unwrap().transformer.as_ref()).unwrap();
    let encrypt =
        |key: &str, v: &[u8]| transformer.transform_to_storage(v, key.as_bytes()).unwrap();
    let s = store(&rt, &config);
    let key = "/registry/secrets/ns/s1";
    let rv1 = etcd.put(key, &encrypt(key, &pod("s1", 1)));
    let mut w = watch(&rt, &s, "/secrets", "0", true);
    let listed = next_event(&rt, &mut w);
    assert_eq!(json(&listed.object.data), stamped(&pod("s1", 1), rv1));
    assert!(!listed.object.stale);
    let stored = encrypt(key, &pod("s1", 2));
    assert!(stored.starts_with(b"k8s:enc:aesgcm:v1:key1:"));
    let rv2 = etcd.put(key, &stored);
    let e = next_event(&rt, &mut w);
    assert_eq!(json(&e.object.data), stamped(&pod("s1", 2), rv2));
    assert_eq!(
        json(&e.prev_object.unwrap().data),
        stamped(&pod("s1", 1), rv1)
    );
    // Plaintext is read by the identity provider, and is stale.
    let rv3 = etcd.put(key, &pod("s1", 3));
    let e = next_event(&rt, &mut w);
    assert_eq!(json(&e.object.data), stamped(&pod("s1", 3), rv3));
    assert!(e.object.stale);
    // A value encrypted for another key does not authenticate here.
    let moved = "/registry/secrets/ns/moved";
    etcd.put(moved, &encrypt(key, &pod("s1", 4)));
    let e = next_error(&rt, &mut w);
    assert_eq!(e.code, Code::CorruptObj);
    assert_eq!(e.key, moved);
    assert!(e.message.contains(moved), "{}", e.message);
    assert!(rt.block_on(w.next()).is_none());
}

fn dropping_a_watch_stops_it(backend: Backend) {
    let etcd = Etcd::start_backend(backend);
    let rt = runtime();
    let s = store(&rt, &etcd.config(""));
    let w = watch(&rt, &s, "/cms", "0", true);
    drop(w);
    // The store goes on working; a new watch sees new writes.
    let mut w = watch(&rt, &s, "/cms", "", true);
    let rv = etcd.put("/registry/cms/a", &pod("a", 1));
    assert_eq!(next_event(&rt, &mut w).resource_version(), rv);
}

for_each_backend!(
    a_watch_that_can_never_succeed_ends_with_its_error,
    a_watch_failing_tls_verification_ends_unreachable_and_is_logged,
);

/// The watch's next item, which must come within `within`.
fn next_within(rt: &Runtime, w: &mut Watch, within: Duration) -> Option<Result<Event>> {
    rt.block_on(async { tokio::time::timeout(within, w.next()).await })
        .unwrap_or_else(|_| panic!("the watch gave nothing within {within:?}"))
}

/// A key over every request size limit (etcd3: gRPC's 2 MiB; etcd2: a URL's
/// 64 KiB) cannot be watched: retrying it forever would only look like a
/// quiet watch. It ends the watch with INVALID_ARGUMENT naming the limit.
fn a_watch_that_can_never_succeed_ends_with_its_error(backend: Backend) {
    let etcd = Etcd::start_backend(backend);
    let rt = runtime();
    let s = store(&rt, &etcd.config(r#""request_timeout_ms":20000"#));
    let key = format!("/{}", "k".repeat(3 << 20));
    let limit = match backend {
        Backend::Etcd3 => "2097152 bytes",
        Backend::Etcd2 => "65534 bytes",
    };
    for rv in ["0", "1"] {
        let mut w = watch(&rt, &s, &key, rv, false);
        let e = next_within(&rt, &mut w, Duration::from_secs(10))
            .expect("the watch ended without an error")
            .unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument, "rv {rv}: {}", e.message);
        assert!(
            e.message.contains("too large") && e.message.contains(limit),
            "rv {rv}: {}",
            e.message
        );
        // The watch has ended.
        assert!(next_within(&rt, &mut w, Duration::from_secs(5)).is_none());
    }
    // The store is fine: a watch on a normal key works.
    let mut w = watch(&rt, &s, "/cms/a", "", false);
    let rv = etcd.put("/registry/cms/a", &pod("a", 1));
    assert_eq!(next_event(&rt, &mut w).resource_version(), rv);
}

#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A server whose certificate is not trusted, or a plaintext server asked
/// over `https://`, fails every attempt the same way: the watch ends with
/// UNREACHABLE and the TLS explanation unary calls give, never a TIMEOUT
/// ("call again"), and says so in the log.
fn a_watch_failing_tls_verification_ends_unreachable_and_is_logged(backend: Backend) {
    let certs = common::tls::Certs::generate();
    let tls_etcd = Etcd::start_tls_backend(&certs, backend);
    let plain = Etcd::start_backend(backend);
    let p = |n: &str| certs.path(n).display().to_string();
    let config = |endpoint: &str, ca: &str| {
        format!(
            r#"{{"type":"{}","server_list":["{endpoint}"],"ca_file":"{}","cert_file":"{}","key_file":"{}","request_timeout_ms":20000,"dial_timeout_ms":10000}}"#,
            backend.type_name(),
            p(ca),
            p("client.pem"),
            p("client-key.pem"),
        )
    };
    let untrusted = config(&tls_etcd.endpoint(), "other-ca.pem");
    let https_to_plain = config(&plain.endpoint().replace("http://", "https://"), "ca.pem");
    // A runtime on this thread, so the watch's task logs to this thread's subscriber.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _log = tracing::subscriber::set_default(subscriber);
    for (what, config, says) in [
        (
            "untrusted certificate",
            &untrusted,
            "the server's certificate is not trusted",
        ),
        (
            "https to a plaintext server",
            &https_to_plain,
            "did not answer as a TLS server",
        ),
    ] {
        let s = store(&rt, config);
        for rv in ["0", "1"] {
            let mut w = watch(&rt, &s, "/cms", rv, true);
            let e = next_within(&rt, &mut w, Duration::from_secs(10))
                .expect("the watch ended without an error")
                .unwrap_err();
            assert_eq!(e.code, Code::Unreachable, "{what}, rv {rv}: {}", e.message);
            assert!(
                e.message.contains("TLS: ") && e.message.contains(says),
                "{what}, rv {rv}: {}",
                e.message
            );
            assert!(next_within(&rt, &mut w, Duration::from_secs(5)).is_none());
        }
    }
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for says in [
        "the server's certificate is not trusted",
        "did not answer as a TLS server",
    ] {
        assert!(
            logs.lines()
                .any(|l| l.contains("WARN") && l.contains("etcd watch ended") && l.contains(says)),
            "no warning saying {says:?} in:\n{logs}"
        );
    }
}

/// etcd's progress notifications (Go's `ProgressNotify`) come as bookmarks
/// while the watch is idle, each past every event delivered before it.
#[test]
fn progress_notify_sends_bookmarks_while_idle() {
    let etcd = Etcd::start_with(&["--experimental-watch-progress-notify-interval=300ms"]);
    let rt = runtime();
    let s = store(&rt, &etcd.config(""));
    let created = rt.block_on(s.create("/pods/p", &pod("p", 0), 0)).unwrap();
    // etcd sends progress only to watches that have caught up with its revision.
    etcd.put("/unrelated", b"x");
    let opts = WatchOptions {
        resource_version: created.resource_version.to_string(),
        progress_notify: true,
        ..WatchOptions::default()
    };
    let mut w = rt.block_on(s.watch("/pods/p", &opts)).unwrap();
    let first = next_event(&rt, &mut w);
    assert_eq!(first.event_type, EventType::Bookmark, "{first:?}");
    assert!(
        first.resource_version() > created.resource_version,
        "{first:?}"
    );
    assert_eq!((first.key.as_str(), first.object.data.len()), ("", 0));
    let update = |n| {
        rt.block_on(s.guaranteed_update("/pods/p", false, None, &mut |_| Ok(pod("p", n).into())))
            .unwrap()
    };
    let updated = update(1);
    let event = loop {
        match next_event(&rt, &mut w) {
            e if e.event_type == EventType::Bookmark => {
                assert!(e.resource_version() < updated.resource_version)
            }
            e => break e,
        }
    };
    assert_eq!(
        (event.event_type, event.resource_version()),
        (EventType::Modified, updated.resource_version)
    );
    let after = next_event(&rt, &mut w);
    assert_eq!(after.event_type, EventType::Bookmark);
    assert!(after.resource_version() >= updated.resource_version);
}

/// A requested bookmark (Go's `RequestWatchProgress`) comes after every event
/// up to etcd's revision, where etcd answers such requests correctly (3.4.31,
/// 3.5.13 and later, as Kubernetes requires); before that it is refused.
#[test]
fn requested_progress_is_a_bookmark_at_the_current_revision() {
    let etcd = Etcd::start();
    let rt = runtime();
    let s = store(&rt, &etcd.config(""));
    let version = etcd.version();
    let created = rt.block_on(s.create("/pods/q", &pod("q", 0), 0)).unwrap();
    // etcd answers once the watch has caught up, which a watch from the
    // future (after the newest revision) has not.
    let current = etcd.put("/unrelated", b"x");
    let mut w = watch(
        &rt,
        &s,
        "/pods",
        &created.resource_version.to_string(),
        true,
    );
    let requester = w.progress_requester().unwrap();
    let supported = answers_progress_requests(&version);
    let asked = rt.block_on(requester.request());
    if !supported {
        let e = asked.unwrap_err();
        assert_eq!(e.code, Code::Unsupported, "{e}");
        assert!(e.message.contains(&version), "{e}");
        assert_quiet(&rt, &mut w);
        return;
    }
    asked.unwrap();
    let bookmark = next_event(&rt, &mut w);
    assert_eq!(bookmark.event_type, EventType::Bookmark);
    assert_eq!(bookmark.resource_version(), current);
    // Events written before a request come before its bookmark.
    let revs: Vec<i64> = (0..20)
        .map(|i| {
            rt.block_on(s.create(&format!("/pods/r{i}"), &pod("r", i), 0))
                .unwrap()
                .resource_version
        })
        .collect();
    rt.block_on(requester.request()).unwrap();
    for rev in &revs {
        let e = next_event(&rt, &mut w);
        assert_eq!(
            (e.event_type, e.resource_version()),
            (EventType::Added, *rev)
        );
    }
    let bookmark = next_event(&rt, &mut w);
    assert_eq!(bookmark.event_type, EventType::Bookmark);
    assert_eq!(bookmark.resource_version(), *revs.last().unwrap());
    assert_quiet(&rt, &mut w);
}

/// etcd2 has neither progress notifications nor progress requests.
#[test]
fn etcd2_watches_refuse_progress() {
    let etcd = Etcd::start_backend(Backend::Etcd2);
    let rt = runtime();
    let s = store(&rt, &etcd.config(""));
    let opts = WatchOptions {
        progress_notify: true,
        ..WatchOptions::default()
    };
    let e = rt.block_on(s.watch("/pods", &opts)).err().unwrap();
    assert_eq!(e.code, Code::Unsupported);
    let w = watch(&rt, &s, "/pods", "", true);
    assert_eq!(
        w.progress_requester().err().unwrap().code,
        Code::Unsupported
    );
}
