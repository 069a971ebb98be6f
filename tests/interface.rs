//! The writes, lists and counts of the stores against a real etcd. Behaviours
//! both backends have run against each (`for_each_backend!`); the rest are
//! etcd3's alone because etcd2 cannot express them: encryption at rest (the
//! etcd2 backend has no transformer), paging with continue tokens and
//! compaction (v2 has neither), and leases (etcd2 uses native TTLs, see
//! tests/etcd2.rs).

mod common;

use std::sync::Arc;
use std::time::Duration;

use apiserver_storage::config::Config;
use apiserver_storage::factory;
use apiserver_storage::storage::{
    Code, GetOptions, Interface, ListOptions, Object, Preconditions, Update, MAX_TTL_SECONDS,
};
use base64::Engine;
use common::cbuild::manifest_dir;
use common::{Backend, Etcd};
use serde_json::{json, Value};

struct Fixture {
    etcd: Etcd,
    rt: tokio::runtime::Runtime,
}

impl Fixture {
    fn new() -> Self {
        Self::with(Backend::Etcd3)
    }

    fn with(backend: Backend) -> Self {
        Fixture {
            etcd: Etcd::start_backend(backend),
            rt: tokio::runtime::Runtime::new().unwrap(),
        }
    }

    fn store(&self, extra: &str) -> Arc<dyn Interface> {
        let config = Config::from_json(&self.etcd.config(extra)).unwrap();
        self.rt.block_on(factory::create(&config)).unwrap().0
    }

    fn raw(&self, key: &str) -> Option<Vec<u8>> {
        self.etcd.raw(key)
    }
}

fn json_of(o: &Object) -> Value {
    serde_json::from_slice(&o.data).unwrap()
}

fn cm(name: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"kind":"ConfigMap","metadata":{"name":name,"uid":format!("uid-{name}")},"data":{"n":"0"}}))
        .unwrap()
}

for_each_backend!(
    create_then_exists_and_rejects_resource_versions,
    guaranteed_update_loses_no_increment,
    guaranteed_update_preconditions_not_found_and_abort,
    guaranteed_update_sets_keeps_and_clears_ttls,
    delete_with_and_without_preconditions,
    list_and_count_every_object_in_key_order,
    exact_reads_see_the_key_at_that_revision,
);

fn exact_reads_see_the_key_at_that_revision(backend: Backend) {
    let f = Fixture::with(backend);
    let s = f.store("");
    let exact = |rv: i64| GetOptions {
        resource_version: rv.to_string(),
        ignore_not_found: true,
        exact: true,
    };
    let first = f.rt.block_on(s.create("/x/a", &cm("a"), 0)).unwrap();
    if backend == Backend::Etcd2 {
        let e = f.rt.block_on(s.get("/x/a", &exact(first.resource_version)));
        assert_eq!(e.unwrap_err().code, Code::Unsupported);
        return;
    }
    let deleted = f.rt.block_on(s.delete("/x/a", None)).unwrap();
    let then = f.rt.block_on(s.get("/x/a", &exact(first.resource_version)));
    assert_eq!(then.unwrap().unwrap(), first);
    let before =
        f.rt.block_on(s.get("/x/a", &exact(first.resource_version - 1)));
    assert_eq!(before.unwrap(), None, "absent before its creation");
    let now =
        f.rt.block_on(s.get("/x/a", &exact(deleted.resource_version)));
    assert_eq!(now.unwrap(), None);
    let future =
        f.rt.block_on(s.get("/x/a", &exact(deleted.resource_version + 100)));
    let e = future.unwrap_err();
    assert_eq!(e.code, Code::Timeout);
    assert!(e.message.contains("Too large resource version"), "{e}");
}

fn create_then_exists_and_rejects_resource_versions(backend: Backend) {
    let f = Fixture::with(backend);
    let s = f.store("");
    let created = f.rt.block_on(s.create("/cms/a", &cm("a"), 0)).unwrap();
    assert_eq!(
        json_of(&created)["metadata"]["resourceVersion"],
        created.resource_version.to_string()
    );
    let got =
        f.rt.block_on(s.get("/cms/a", &GetOptions::default()))
            .unwrap()
            .unwrap();
    assert_eq!(got, created);
    // Stored without derived fields.
    let stored: Value = serde_json::from_slice(&f.raw("/registry/cms/a").unwrap()).unwrap();
    assert!(stored["metadata"].get("resourceVersion").is_none());

    let e = f.rt.block_on(s.create("/cms/a", &cm("a"), 0)).unwrap_err();
    assert_eq!(
        (e.code, e.key.as_str()),
        (Code::KeyExists, "/registry/cms/a")
    );
    let with_rv = br#"{"metadata":{"name":"b","resourceVersion":"5","selfLink":"/x"}}"#;
    let e = f.rt.block_on(s.create("/cms/b", with_rv, 0)).unwrap_err();
    assert_eq!(e.code, Code::InvalidObj);
    assert!(e
        .message
        .contains("resourceVersion should not be set on objects to be created"));
    assert_eq!(
        f.rt.block_on(s.create("/cms/c", b"not json", 0))
            .unwrap_err()
            .code,
        Code::InvalidObj
    );
    assert_eq!(
        f.rt.block_on(s.create("/../x", &cm("x"), 0))
            .unwrap_err()
            .code,
        Code::InvalidArgument
    );
}

#[test]
fn encrypted_writes_carry_kube_apiserver_prefixes() {
    let f = Fixture::new();
    let file = manifest_dir().join("tests/fixtures/vectors/read-v1.yaml");
    let s = f.store(&format!(
        r#""transformer":{{"encryption_config_file":"{}","resource":"secrets"}}"#,
        file.display()
    ));
    let created =
        f.rt.block_on(s.create("/secrets/ns/s1", &cm("s1"), 0))
            .unwrap();
    let raw = f.raw("/registry/secrets/ns/s1").unwrap();
    assert!(
        raw.starts_with(b"k8s:enc:aesgcm:v1:key1:"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    // Nonce, the object as Go's encoder writes it (compact, a newline), tag.
    let plain = br#"{"data":{"n":"0"},"kind":"ConfigMap","metadata":{"name":"s1","uid":"uid-s1"}}"#;
    assert_eq!(
        raw.len(),
        b"k8s:enc:aesgcm:v1:key1:".len() + 12 + plain.len() + 1 + 16
    );
    let got =
        f.rt.block_on(s.get("/secrets/ns/s1", &GetOptions::default()))
            .unwrap()
            .unwrap();
    assert_eq!(got, created);
}

#[test]
fn guaranteed_update_rewrites_stale_values_under_the_first_provider() {
    let f = Fixture::new();
    let line = std::fs::read_to_string(manifest_dir().join("tests/fixtures/vectors/vectors.jsonl"))
        .unwrap();
    let v: Value = line
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["written_by"] == "aescbc")
        .unwrap();
    let stored = base64::engine::general_purpose::STANDARD
        .decode(v["stored_b64"].as_str().unwrap())
        .unwrap();
    f.etcd.put(v["etcd_key"].as_str().unwrap(), &stored);
    let file = manifest_dir().join("tests/fixtures/vectors/read.yaml");
    let s = f.store(&format!(
        r#""transformer":{{"encryption_config_file":"{}","resource":"secrets"}}"#,
        file.display()
    ));
    let key = v["key"].as_str().unwrap();
    let before =
        f.rt.block_on(s.get(key, &GetOptions::default()))
            .unwrap()
            .unwrap();
    assert!(before.stale);
    // An unchanged object is still written, because the value is stale.
    let mut same = |cur: Option<&Object>| Ok(cur.unwrap().data.clone().into());
    let after =
        f.rt.block_on(s.guaranteed_update(key, false, None, &mut same))
            .unwrap();
    assert!(after.resource_version > before.resource_version);
    let raw = f.raw(v["etcd_key"].as_str().unwrap()).unwrap();
    assert!(raw.starts_with(b"k8s:enc:aesgcm:v1:key1:"));
    let reread =
        f.rt.block_on(s.get(key, &GetOptions::default()))
            .unwrap()
            .unwrap();
    assert!(!reread.stale);
    assert_eq!(json_of(&reread), {
        let mut e = v["expected_object"].clone();
        e["metadata"]["resourceVersion"] = json!(after.resource_version.to_string());
        // Rewritten as kube-apiserver 1.37 writes a Secret, which leaves out
        // the zero creationTimestamp (`omitzero`) that 1.12 wrote as null.
        e["metadata"]
            .as_object_mut()
            .unwrap()
            .shift_remove("creationTimestamp");
        e
    });
    // Now current: an unchanged object is not written again.
    let noop =
        f.rt.block_on(s.guaranteed_update(key, false, None, &mut same))
            .unwrap();
    assert_eq!(noop.resource_version, after.resource_version);
}

fn guaranteed_update_loses_no_increment(backend: Backend) {
    let f = Fixture::with(backend);
    let s = f.store("");
    f.rt.block_on(s.create("/counters/c", br#"{"metadata":{"name":"c"},"n":0}"#, 0))
        .unwrap();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let (s, rt) = (s.clone(), &f.rt);
            scope.spawn(move || {
                for _ in 0..200 {
                    let mut inc = |cur: Option<&Object>| {
                        let mut v: Value = serde_json::from_slice(&cur.unwrap().data).unwrap();
                        v["n"] = json!(v["n"].as_i64().unwrap() + 1);
                        Ok(serde_json::to_vec(&v).unwrap().into())
                    };
                    rt.block_on(s.guaranteed_update("/counters/c", false, None, &mut inc))
                        .unwrap();
                }
            });
        }
    });
    let end =
        f.rt.block_on(s.get("/counters/c", &GetOptions::default()))
            .unwrap()
            .unwrap();
    assert_eq!(json_of(&end)["n"], 1600);
}

/// Go's `tryUpdate` may return a TTL: etcd3 attaches a lease for it and writes
/// without one when none is given; etcd2 keeps the key's TTL unless given one.
fn guaranteed_update_sets_keeps_and_clears_ttls(backend: Backend) {
    let f = Fixture::with(backend);
    let s = f.store("");
    let full = "/registry/t/a";
    f.rt.block_on(s.create("/t/a", &cm("a"), 0)).unwrap();
    let mut n = 0;
    let mut update = |ttl: Option<i64>| {
        n += 1;
        let object = cm(&format!("a{n}"));
        f.rt.block_on(s.guaranteed_update("/t/a", false, None, &mut |_| {
            Ok(Update {
                object: object.clone(),
                ttl,
            })
        }))
    };
    update(Some(300)).unwrap();
    let ttl = f
        .etcd
        .ttl(full)
        .expect("a TTL after an update that gave one");
    // etcd3's lease manager grants 5 % more, for reuse; etcd2 counts down.
    assert!((290..=315).contains(&ttl), "{ttl}");
    update(None).unwrap();
    match backend {
        Backend::Etcd3 => assert_eq!(f.etcd.ttl(full), None, "no TTL given: no lease"),
        Backend::Etcd2 => assert!(f.etcd.ttl(full).is_some(), "no TTL given: kept"),
    }
    update(Some(300)).unwrap();
    update(Some(0)).unwrap();
    assert_eq!(f.etcd.ttl(full), None, "a TTL of 0 clears it");
    let before = f.raw(full);
    for bad in [-1, i64::MIN, MAX_TTL_SECONDS + 1] {
        let e = update(Some(bad)).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument, "{bad}: {e}");
        assert!(e.message.contains(&bad.to_string()), "{e}");
    }
    assert_eq!(f.raw(full), before, "a refused TTL writes nothing");
}

fn guaranteed_update_preconditions_not_found_and_abort(backend: Backend) {
    let f = Fixture::with(backend);
    let s = f.store("");
    let mut set = |_: Option<&Object>| Ok(cm("u").into());
    let e =
        f.rt.block_on(s.guaranteed_update("/u", false, None, &mut set))
            .unwrap_err();
    assert_eq!(e.code, Code::KeyNotFound);
    let created =
        f.rt.block_on(s.guaranteed_update("/u", true, None, &mut set))
            .unwrap();
    let wrong = Preconditions {
        uid: Some("other".into()),
        resource_version: None,
    };
    let e =
        f.rt.block_on(s.guaranteed_update("/u", false, Some(&wrong), &mut set))
            .unwrap_err();
    assert_eq!(e.code, Code::InvalidObj);
    assert!(e
        .message
        .contains("Precondition failed: UID in precondition: other, UID in object meta: uid-u"));
    let mut abort = |_: Option<&Object>| {
        Err(apiserver_storage::storage::StorageError::new(
            Code::Unsupported,
            "no",
        ))
    };
    assert_eq!(
        f.rt.block_on(s.guaranteed_update("/u", false, None, &mut abort))
            .unwrap_err()
            .code,
        Code::Unsupported
    );
    let got =
        f.rt.block_on(s.get("/u", &GetOptions::default()))
            .unwrap()
            .unwrap();
    assert_eq!(got.resource_version, created.resource_version);
}

/// The deleted object as Delete returns it: etcd3 stamps the deletion's
/// revision, as Go; etcd2 keeps the last modification's index.
fn assert_deleted(backend: Backend, deleted: &Object, last: &Object) {
    let mut want = json_of(last);
    if backend == Backend::Etcd3 {
        assert!(deleted.resource_version > last.resource_version);
        want["metadata"]["resourceVersion"] = deleted.resource_version.to_string().into();
    } else {
        assert_eq!(deleted.resource_version, last.resource_version);
    }
    assert_eq!(json_of(deleted), want);
}

fn delete_with_and_without_preconditions(backend: Backend) {
    let f = Fixture::with(backend);
    let s = f.store("");
    let a = f.rt.block_on(s.create("/d/a", &cm("a"), 0)).unwrap();
    let deleted = f.rt.block_on(s.delete("/d/a", None)).unwrap();
    assert_deleted(backend, &deleted, &a);
    assert_eq!(
        f.rt.block_on(s.delete("/d/a", None)).unwrap_err().code,
        Code::KeyNotFound
    );

    let b = f.rt.block_on(s.create("/d/b", &cm("b"), 0)).unwrap();
    for bad in [
        Preconditions {
            uid: Some("nope".into()),
            resource_version: None,
        },
        Preconditions {
            uid: None,
            resource_version: Some("1".into()),
        },
    ] {
        let e = f.rt.block_on(s.delete("/d/b", Some(&bad))).unwrap_err();
        assert_eq!(e.code, Code::InvalidObj, "{bad:?}");
        assert_eq!(e.key, "/registry/d/b");
    }
    let good = Preconditions {
        uid: Some("uid-b".into()),
        resource_version: Some(b.resource_version.to_string()),
    };
    let deleted = f.rt.block_on(s.delete("/d/b", Some(&good))).unwrap();
    assert_deleted(backend, &deleted, &b);
    assert!(f.raw("/registry/d/b").is_none());
}

/// A full list (no limit): what both backends answer alike.
fn list_and_count_every_object_in_key_order(backend: Backend) {
    let f = Fixture::with(backend);
    let s = f.store("");
    let mut keys: Vec<String> = (0..150)
        .map(|i| format!("ns{}/obj-{i:03}", i % 3))
        .collect();
    f.rt.block_on(async {
        for k in &keys {
            s.create(&format!("/items/{k}"), &cm(k), 0).await.unwrap();
        }
        // Siblings sharing the prefix's bytes are not listed.
        s.create("/itemsX/z", &cm("z"), 0).await.unwrap();
        s.create("/items!", &cm("z"), 0).await.unwrap();
    });
    keys.sort();
    for key in ["/items", "/items/", "items"] {
        assert_eq!(f.rt.block_on(s.count(key)).unwrap(), 150);
        let all = f.rt.block_on(s.list(key, &ListOptions::default())).unwrap();
        assert!(all.continue_token.is_empty());
        let names: Vec<String> = all
            .items
            .iter()
            .map(|o| json_of(o)["metadata"]["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, keys);
        let last = all.items.iter().map(|o| o.resource_version).max().unwrap();
        assert!(
            all.resource_version >= last,
            "{} < {last}",
            all.resource_version
        );
        // Each item carries its own resourceVersion.
        for o in &all.items {
            assert_eq!(
                json_of(o)["metadata"]["resourceVersion"],
                o.resource_version.to_string()
            );
        }
    }
    assert_eq!(f.rt.block_on(s.count("/nothing")).unwrap(), 0);
    let empty =
        f.rt.block_on(s.list("/nothing", &ListOptions::default()))
            .unwrap();
    assert!(empty.items.is_empty());
    assert_eq!(
        f.rt.block_on(s.list("/../x", &ListOptions::default()))
            .unwrap_err()
            .code,
        Code::InvalidArgument
    );
}

#[test]
fn list_pages_every_object_once_in_key_order() {
    let f = Fixture::new();
    let s = f.store("");
    let mut names: Vec<String> = (0..1000).map(|i| format!("obj-{i:04}")).collect();
    f.rt.block_on(async {
        for n in &names {
            s.create(&format!("/items/{n}"), &cm(n), 0).await.unwrap();
        }
    });
    // A sibling sharing the prefix's bytes is not listed.
    f.rt.block_on(s.create("/itemsX/z", &cm("z"), 0)).unwrap();
    names.sort();
    assert_eq!(f.rt.block_on(s.count("/items")).unwrap(), 1000);

    let mut seen = Vec::new();
    let mut token = String::new();
    let mut first_rv = 0;
    loop {
        // A fresh store for every page: tokens carry all the state.
        let page =
            f.rt.block_on(f.store("").list(
                "/items",
                &ListOptions {
                    limit: 37,
                    continue_token: token.clone(),
                    ..Default::default()
                },
            ))
            .unwrap();
        assert!(page.items.len() <= 37);
        if first_rv == 0 {
            first_rv = page.resource_version;
        }
        assert_eq!(
            page.resource_version, first_rv,
            "pages share the first page's revision"
        );
        seen.extend(
            page.items
                .iter()
                .map(|o| json_of(o)["metadata"]["name"].as_str().unwrap().to_owned()),
        );
        if page.continue_token.is_empty() {
            assert_eq!(page.remaining_item_count, None);
            break;
        }
        assert_eq!(
            page.remaining_item_count,
            Some((names.len() - seen.len()) as i64),
            "Kubernetes' remainingItemCount"
        );
        token = page.continue_token;
    }
    assert_eq!(seen, names);

    let all =
        f.rt.block_on(s.list("/items/", &ListOptions::default()))
            .unwrap();
    assert_eq!(all.items.len(), 1000);
    assert!(all.continue_token.is_empty());

    let page =
        f.rt.block_on(s.list(
            "/items",
            &ListOptions {
                limit: 10,
                ..Default::default()
            },
        ))
        .unwrap();
    // Tokens whose start key path cleaning would change (escaping the prefix), or cut short.
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut decoded: Value =
        serde_json::from_slice(&b64.decode(&page.continue_token).unwrap()).unwrap();
    decoded["start"] = json!("../../secrets/x");
    let escaping = b64.encode(serde_json::to_vec(&decoded).unwrap());
    let truncated = page.continue_token[..page.continue_token.len() - 6].to_string();
    for bad in [escaping, truncated, "garbage!".into()] {
        let e =
            f.rt.block_on(s.list(
                "/items",
                &ListOptions {
                    limit: 10,
                    continue_token: bad,
                    ..Default::default()
                },
            ))
            .unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
    }
    let e =
        f.rt.block_on(s.list(
            "/items",
            &ListOptions {
                limit: 10,
                continue_token: page.continue_token.clone(),
                resource_version: "5".into(),
            },
        ))
        .unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);

    // After compaction past the token's revision, continuing says to relist.
    f.rt.block_on(async {
        let mut c = etcd_client::Client::connect(f.etcd.endpoints(), None)
            .await
            .unwrap();
        let rev = c
            .put("/registry/other", "{}", None)
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
        c.compact(rev, None).await.unwrap();
    });
    let e =
        f.rt.block_on(s.list(
            "/items",
            &ListOptions {
                limit: 10,
                continue_token: page.continue_token,
                ..Default::default()
            },
        ))
        .unwrap_err();
    assert_eq!(e.code, Code::Expired);
    assert!(e.message.contains("too old"), "{}", e.message);
}

#[test]
fn a_burst_of_creates_with_one_ttl_shares_a_lease() {
    let f = Fixture::new();
    let s = f.store("");
    f.rt.block_on(async {
        for i in 0..100 {
            s.create(&format!("/events/e{i}"), &cm(&format!("e{i}")), 600)
                .await
                .unwrap();
        }
    });
    let leases = f.rt.block_on(async {
        let mut c = etcd_client::Client::connect(f.etcd.endpoints(), None)
            .await
            .unwrap();
        let leases = c.leases().await.unwrap();
        let ids: Vec<i64> = leases.leases().iter().map(|l| l.id()).collect();
        let mut attached = 0;
        for id in &ids {
            let ttl = c
                .lease_time_to_live(
                    *id,
                    Some(etcd_client::LeaseTimeToLiveOptions::new().with_keys()),
                )
                .await
                .unwrap();
            attached += ttl.keys().len();
            assert!(
                ttl.granted_ttl() == 630,
                "ttl plus 5 %: {}",
                ttl.granted_ttl()
            );
        }
        (ids, attached)
    });
    assert_eq!(leases.0.len(), 1, "{leases:?}");
    assert_eq!(leases.1, 100);
}

#[test]
fn the_compactor_compacts_with_the_kubernetes_protocol() {
    let f = Fixture::new();
    let s = f.store(r#""compaction_interval_s":1"#);
    let first =
        f.rt.block_on(s.create("/c/a", &cm("a"), 0))
            .unwrap()
            .resource_version;
    for i in 0..5 {
        let mut bump = |cur: Option<&Object>| {
            let mut v: Value = serde_json::from_slice(&cur.unwrap().data).unwrap();
            v["data"]["n"] = json!(i.to_string());
            Ok(serde_json::to_vec(&v).unwrap().into())
        };
        f.rt.block_on(s.guaranteed_update("/c/a", false, None, &mut bump))
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(3500));
    f.rt.block_on(async {
        let mut c = etcd_client::Client::connect(f.etcd.endpoints(), None)
            .await
            .unwrap();
        let clock = c.get("compact_rev_key", None).await.unwrap();
        assert!(
            clock.kvs()[0].version() >= 2,
            "compact_rev_key was written each interval"
        );
        let old = c
            .get(
                "/registry/c/a",
                Some(etcd_client::GetOptions::new().with_revision(first)),
            )
            .await;
        assert!(format!("{:?}", old.unwrap_err()).contains("compacted"));
    });
}
