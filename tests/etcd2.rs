//! What only the etcd2 backend has: native TTLs, v2's bounded event history
//! (errorCode 401 → Expired), no transformer, no paging. The behaviours it
//! shares with etcd3 run in store.rs, interface.rs and watch.rs.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use apiserver_storage::config::Config;
use apiserver_storage::factory;
use apiserver_storage::storage::{Code, GetOptions, Interface, ListOptions, Object};
use apiserver_storage::watch::{EventType, WatchOptions};
use common::{Backend, Etcd};
use serde_json::{json, Value};

struct Fixture {
    etcd: Etcd,
    rt: tokio::runtime::Runtime,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            etcd: Etcd::start_backend(Backend::Etcd2),
            rt: tokio::runtime::Runtime::new().unwrap(),
        }
    }

    fn store(&self, extra: &str) -> Arc<dyn Interface> {
        let config = Config::from_json(&self.etcd.config(extra)).unwrap();
        self.rt.block_on(factory::create(&config)).unwrap().0
    }

    fn get(&self, s: &Arc<dyn Interface>, key: &str) -> Option<Object> {
        let opts = GetOptions {
            ignore_not_found: true,
            ..Default::default()
        };
        self.rt.block_on(s.get(key, &opts)).unwrap()
    }
}

fn obj(name: &str, n: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({"kind":"Event","metadata":{"name":name},"n":n})).unwrap()
}

#[test]
fn ttl_keys_expire_and_updates_keep_the_ttl() {
    let f = Fixture::new();
    let s = f.store("");
    let created =
        f.rt.block_on(s.create("/events/e1", &obj("e1", 0), 2))
            .unwrap();
    f.rt.block_on(s.create("/events/forever", &obj("forever", 0), 0))
        .unwrap();
    // The TTL is etcd's own: the node carries it.
    let (status, _, node) = common::v2(
        &f.etcd.endpoint(),
        "GET",
        "/v2/keys/registry/events/e1",
        None,
    )
    .unwrap();
    assert_eq!(status, 200);
    let ttl = node["node"]["ttl"].as_i64().unwrap();
    assert!((1..=2).contains(&ttl), "{node}");
    // An update keeps the key's TTL, as Go's GuaranteedUpdate did.
    let mut bump = |cur: Option<&Object>| {
        let mut v: Value = serde_json::from_slice(&cur.unwrap().data).unwrap();
        v["n"] = json!(1);
        Ok(serde_json::to_vec(&v).unwrap().into())
    };
    let updated =
        f.rt.block_on(s.guaranteed_update("/events/e1", false, None, &mut bump))
            .unwrap();
    assert!(updated.resource_version > created.resource_version);
    assert_eq!(f.get(&s, "/events/e1").unwrap(), updated);

    let deadline = Instant::now() + Duration::from_secs(10);
    while f.get(&s, "/events/e1").is_some() {
        assert!(Instant::now() < deadline, "the key never expired");
        std::thread::sleep(Duration::from_millis(200));
    }
    let e =
        f.rt.block_on(s.get("/events/e1", &GetOptions::default()))
            .unwrap_err();
    assert_eq!(e.code, Code::KeyNotFound);
    assert!(f.get(&s, "/events/forever").is_some());
    assert_eq!(f.rt.block_on(s.count("/events")).unwrap(), 1);
}

#[test]
fn an_expiry_is_a_deleted_event() {
    let f = Fixture::new();
    let s = f.store("");
    let mut w =
        f.rt.block_on(s.watch(
            "/events",
            &WatchOptions {
                resource_version: f.etcd.revision().to_string(),
                recursive: true,
                ..WatchOptions::default()
            },
        ))
        .unwrap();
    let created =
        f.rt.block_on(s.create("/events/e1", &obj("e1", 0), 1))
            .unwrap();
    let next = |w: &mut apiserver_storage::watch::Watch| {
        f.rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), w.next()).await })
            .unwrap()
            .unwrap()
            .unwrap()
    };
    let added = next(&mut w);
    assert_eq!(
        (added.event_type, added.object.resource_version),
        (EventType::Added, created.resource_version)
    );
    let expired = next(&mut w);
    assert_eq!(expired.event_type, EventType::Deleted);
    assert!(expired.resource_version() > created.resource_version);
    assert_eq!(expired.prev_object.unwrap(), created);
}

#[test]
fn a_watch_from_an_index_v2_no_longer_keeps_expires() {
    let f = Fixture::new();
    let s = f.store("");
    let first = f.etcd.put("/registry/cms/a", &obj("a", 0));
    // v2 keeps the last 1000 events.
    let mut w = f.etcd.writer();
    for n in 1..=1100 {
        w.put("/registry/cms/a", &obj("a", n)).unwrap();
    }
    let mut watch =
        f.rt.block_on(s.watch(
            "/cms",
            &WatchOptions {
                resource_version: first.to_string(),
                recursive: true,
                ..WatchOptions::default()
            },
        ))
        .unwrap();
    let e =
        f.rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), watch.next()).await })
            .unwrap()
            .unwrap()
            .unwrap_err();
    assert_eq!(e.code, Code::Expired);
    assert!(
        e.message
            .starts_with("The resourceVersion for the provided watch is too old."),
        "{}",
        e.message
    );
    assert!(e.message.contains("401"), "{}", e.message);
    assert_eq!(e.resource_version, first);
    assert!(f.rt.block_on(watch.next()).is_none());
    // From a recent index, history is there.
    let current = f.etcd.revision();
    let mut watch =
        f.rt.block_on(s.watch(
            "/cms",
            &WatchOptions {
                resource_version: (current - 10).to_string(),
                recursive: true,
                ..WatchOptions::default()
            },
        ))
        .unwrap();
    let e = f.rt.block_on(watch.next()).unwrap().unwrap();
    assert_eq!(e.resource_version(), current - 9);
}

#[test]
fn a_quiet_watch_outlives_the_history_of_other_keys() {
    let f = Fixture::new();
    // Each poll lasts the request timeout; a poll that ends quietly resumes
    // after etcd's index, not from the old one v2 has forgotten.
    let s = f.store(r#""request_timeout_ms":1000"#);
    let mut watch =
        f.rt.block_on(s.watch(
            "/quiet",
            &WatchOptions {
                resource_version: f.etcd.revision().to_string(),
                recursive: true,
                ..WatchOptions::default()
            },
        ))
        .unwrap();
    let mut w = f.etcd.writer();
    let t0 = Instant::now();
    for n in 0..1100 {
        w.put("/registry/busy/a", &obj("a", n)).unwrap();
        // Spread over a few polls.
        if n % 250 == 0 {
            std::thread::sleep(Duration::from_millis(1200));
        }
    }
    assert!(t0.elapsed() > Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(1500));
    let rv = f.etcd.put("/registry/quiet/k", &obj("k", 0));
    let e =
        f.rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), watch.next()).await })
            .unwrap()
            .unwrap()
            .unwrap();
    assert_eq!((e.event_type, e.resource_version()), (EventType::Added, rv));
}

#[test]
fn encryption_at_rest_is_refused() {
    let f = Fixture::new();
    let config = Config::from_json(&f.etcd.config(
        r#""transformer":{"providers":[{"aesgcm":{"keys":[{"name":"k","secret":"d2F0Y2gtdGVzdC1rZXktb2YtMzItYnl0ZXMtbG9uZyE="}]}}]}"#,
    ))
    .unwrap();
    let e = f.rt.block_on(factory::create(&config)).err().unwrap();
    assert_eq!(e.code, Code::InvalidConfig);
    assert!(e.message.contains("`transformer`"), "{}", e.message);
    assert!(e.message.contains("plaintext"), "{}", e.message);
    assert!(e.message.contains("encryption at rest"), "{}", e.message);
    let e =
        f.rt.block_on(factory::create_health_check(&config))
            .err()
            .unwrap();
    assert_eq!(e.code, Code::InvalidConfig);
}

#[test]
fn lists_are_never_paged() {
    let f = Fixture::new();
    let s = f.store("");
    f.rt.block_on(async {
        for i in 0..20 {
            s.create(&format!("/items/i{i:02}"), &obj("i", i), 0)
                .await
                .unwrap();
        }
    });
    // A limit is a hint servers may ignore: every object comes, with no token.
    let all =
        f.rt.block_on(s.list(
            "/items",
            &ListOptions {
                limit: 5,
                ..Default::default()
            },
        ))
        .unwrap();
    assert_eq!(all.items.len(), 20);
    assert!(all.continue_token.is_empty());
    // A continue token can only come from another backend: said clearly.
    let e =
        f.rt.block_on(s.list(
            "/items",
            &ListOptions {
                limit: 5,
                continue_token: "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MSwic3RhcnQiOiJhIn0".into(),
                ..Default::default()
            },
        ))
        .unwrap_err();
    assert_eq!(e.code, Code::Unsupported);
    assert!(e.message.contains("continue tokens"), "{}", e.message);
}

#[test]
fn every_endpoint_is_tried_and_transport_errors_are_unreachable() {
    let f = Fixture::new();
    let dead = format!("http://127.0.0.1:{}", common::free_port());
    let live = f.etcd.endpoint();
    let config = format!(r#"{{"type":"etcd2","server_list":["{dead}","{live}"]}}"#);
    let s =
        f.rt.block_on(factory::create(&Config::from_json(&config).unwrap()))
            .unwrap()
            .0;
    let created = f.rt.block_on(s.create("/k", &obj("k", 0), 0)).unwrap();
    assert_eq!(f.get(&s, "/k").unwrap(), created);
    f.rt.block_on(s.health()).unwrap();

    let config =
        format!(r#"{{"type":"etcd2","server_list":["{dead}"],"request_timeout_ms":2000}}"#);
    let s =
        f.rt.block_on(factory::create(&Config::from_json(&config).unwrap()))
            .unwrap()
            .0;
    let e =
        f.rt.block_on(s.get("/k", &GetOptions::default()))
            .unwrap_err();
    assert_eq!(e.code, Code::Unreachable);
    assert_eq!(e.key, "/registry/k");
    assert!(
        e.message
            .starts_with("StorageError: server unreachable, Code: 5, Key: /registry/k"),
        "{}",
        e.message
    );
}

#[test]
fn v2_auth_with_basic_credentials() {
    let f = Fixture::new();
    let e = f.etcd.endpoint();
    let root = Some("root:rootpw");
    let ok = |(status, _, body): (u16, i64, Value)| assert!(status < 300, "{status} {body}");
    ok(common::v2(
        &e,
        "PUT",
        "/v2/auth/users/root",
        Some(r#"{"user":"root","password":"rootpw"}"#),
    )
    .unwrap());
    ok(common::v2(&e, "PUT", "/v2/auth/enable", None).unwrap());
    // Without this, guests may do anything.
    ok(common::v2_as(
        &e,
        "PUT",
        "/v2/auth/roles/guest",
        Some(r#"{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}"#),
        root,
    )
    .unwrap());
    let s = f.store(r#""username":"root","password":"rootpw""#);
    let created = f.rt.block_on(s.create("/k", &obj("k", 0), 0)).unwrap();
    assert_eq!(f.get(&s, "/k").unwrap(), created);
    for extra in [r#""username":"root","password":"wrong""#, ""] {
        let s = f.store(extra);
        let e =
            f.rt.block_on(s.get("/k", &GetOptions::default()))
                .unwrap_err();
        assert_eq!(e.code, Code::PermissionDenied, "{extra}: {}", e.message);
        assert!(e.message.contains("username or password"), "{}", e.message);
        let e =
            f.rt.block_on(s.create("/k2", &obj("k2", 0), 0))
                .unwrap_err();
        assert_eq!(e.code, Code::PermissionDenied, "{extra}: {}", e.message);
    }
}

#[test]
fn values_are_text_and_a_value_is_no_directory() {
    let f = Fixture::new();
    let s = f.store(r#""codec":"protobuf""#);
    let json = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"j"}}"#;
    let rv = f.etcd.put("/registry/configmaps/default/j", json);
    let got = f.get(&s, "/configmaps/default/j").unwrap();
    assert_eq!(got.resource_version, rv);
    assert_eq!(
        serde_json::from_slice::<Value>(&got.data).unwrap()["metadata"]["resourceVersion"],
        rv.to_string()
    );
    // Protobuf's length prefixes are not UTF-8 once a field passes 127 bytes.
    let cm = json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"p"},"data":{"a":"x".repeat(200)}});
    let e =
        f.rt.block_on(s.create("/configmaps/default/p", cm.to_string().as_bytes(), 0))
            .unwrap_err();
    assert_eq!(e.code, Code::InvalidObj);
    assert!(e.message.contains("UTF-8"), "{}", e.message);
    assert!(f.etcd.raw("/registry/configmaps/default/p").is_none());

    let s = f.store("");
    f.rt.block_on(s.create("/a", &obj("a", 0), 0)).unwrap();
    let e =
        f.rt.block_on(s.create("/a/b", &obj("b", 0), 0))
            .unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(e.message.contains("Not a directory"), "{}", e.message);
}
