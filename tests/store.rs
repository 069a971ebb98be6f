//! The Rust core against a real etcd: factory, Get semantics, health — each
//! behaviour against both backends (etcd3, and etcd2 over etcd's v2 API).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use apiserver_storage::config::Config;
use apiserver_storage::factory;
use apiserver_storage::storage::{Code, GetOptions, Interface};
use common::{Backend, Etcd};
use serde_json::{json, Value};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn store(rt: &tokio::runtime::Runtime, config: &str) -> Arc<dyn Interface> {
    let config = Config::from_json(config).unwrap();
    rt.block_on(factory::create(&config)).unwrap().0
}

fn get(
    rt: &tokio::runtime::Runtime,
    s: &Arc<dyn Interface>,
    key: &str,
    rv: &str,
    ignore: bool,
) -> apiserver_storage::storage::Result<Option<apiserver_storage::storage::Object>> {
    let opts = GetOptions {
        resource_version: rv.into(),
        ignore_not_found: ignore,
        ..Default::default()
    };
    rt.block_on(s.get(key, &opts))
}

for_each_backend!(
    get_stamps_mod_revision_and_handles_not_found,
    resource_versions_bound_the_read,
    json_and_raw_codecs_and_corrupt_values,
    quorum_reads_need_a_majority_serializable_reads_do_not,
    health_reports_etcd_state,
);

fn get_stamps_mod_revision_and_handles_not_found(backend: Backend) {
    let etcd = Etcd::start_backend(backend);
    let rt = runtime();
    let rv1 = etcd.put(
        "/registry/pods/ns/a",
        br#"{"kind":"Pod","metadata":{"name":"a","resourceVersion":"1"}}"#,
    );
    let rv2 = etcd.put("/registry/pods/ns/b", br#"{"kind":"Pod"}"#);
    assert!(rv2 > rv1);
    for prefix in ["registry", "/registry/", "//registry"] {
        let s = store(&rt, &etcd.config(&format!(r#""prefix":"{prefix}""#)));
        let a = get(&rt, &s, "/pods/ns/a", "", false).unwrap().unwrap();
        assert_eq!(a.resource_version, rv1);
        assert!(!a.stale);
        let v: Value = serde_json::from_slice(&a.data).unwrap();
        assert_eq!(
            v,
            json!({"kind":"Pod","metadata":{"name":"a","resourceVersion":rv1.to_string()}})
        );
        let b: Value =
            serde_json::from_slice(&get(&rt, &s, "pods/ns/b", "", false).unwrap().unwrap().data)
                .unwrap();
        assert_eq!(
            b,
            json!({"kind":"Pod","metadata":{"resourceVersion":rv2.to_string()}})
        );
        // Updating a key moves its resourceVersion to the new ModRevision.
    }
    let s = store(&rt, &etcd.config(""));
    let rv3 = etcd.put(
        "/registry/pods/ns/a",
        br#"{"kind":"Pod","metadata":{"name":"a"}}"#,
    );
    assert_eq!(
        get(&rt, &s, "/pods/ns/a", "", false)
            .unwrap()
            .unwrap()
            .resource_version,
        rv3
    );

    let e = get(&rt, &s, "/pods/ns/zz", "", false).unwrap_err();
    assert_eq!(e.code, Code::KeyNotFound);
    assert_eq!(e.key, "/registry/pods/ns/zz");
    assert!(get(&rt, &s, "/pods/ns/zz", "", true).unwrap().is_none());
}

fn resource_versions_bound_the_read(backend: Backend) {
    let etcd = Etcd::start_backend(backend);
    let rt = runtime();
    let rv = etcd.put("/registry/k", b"{}");
    let s = store(&rt, &etcd.config(""));
    for ok in ["", "0", "1", &rv.to_string()] {
        assert!(get(&rt, &s, "/k", ok, false).is_ok(), "rv {ok:?}");
    }
    let current = etcd.revision();
    let e = get(&rt, &s, "/k", &(current + 1).to_string(), false).unwrap_err();
    assert_eq!(e.code, Code::Timeout);
    assert_eq!(
        e.message,
        format!(
            "Too large resource version: {}, current: {current}",
            current + 1
        )
    );
    // Also for a key that does not exist: the revision check comes first, as in Go.
    assert_eq!(
        get(&rt, &s, "/nope", "999999", true).unwrap_err().code,
        Code::Timeout
    );
    for bad in ["x", "-1", "1e3", "0x10"] {
        assert_eq!(
            get(&rt, &s, "/k", bad, false).unwrap_err().code,
            Code::InvalidArgument,
            "{bad}"
        );
    }
}

fn json_and_raw_codecs_and_corrupt_values(backend: Backend) {
    let etcd = Etcd::start_backend(backend);
    let rt = runtime();
    etcd.put("/registry/bad/json", b"{\"kind\":");
    etcd.put("/registry/bad/array", b"[1,2]");
    let rv = etcd.put("/registry/ok", b"{\"a\":1}");
    let json = store(&rt, &etcd.config(""));
    let raw = store(&rt, &etcd.config(r#""codec":"raw""#));
    for key in ["/bad/json", "/bad/array"] {
        let e = get(&rt, &json, key, "", false).unwrap_err();
        assert_eq!(e.code, Code::CorruptObj, "{key}");
        assert_eq!(e.key, format!("/registry{key}"));
        assert!(
            e.message.contains(&format!("/registry{key}")),
            "{}",
            e.message
        );
    }
    assert_eq!(
        get(&rt, &raw, "/bad/json", "", false)
            .unwrap()
            .unwrap()
            .data,
        b"{\"kind\":"
    );
    let o = get(&rt, &raw, "/ok", "", false).unwrap().unwrap();
    assert_eq!(
        (o.data.as_slice(), o.resource_version),
        (&b"{\"a\":1}"[..], rv)
    );
}

fn quorum_reads_need_a_majority_serializable_reads_do_not(backend: Backend) {
    let mut etcd = Etcd::cluster_backend(3, backend);
    let rt = runtime();
    let rv = etcd.put("/registry/k", b"{}");
    let survivor = etcd.members[2].endpoint();
    let only = |quorum: bool| {
        format!(
            r#"{{"type":"{}","server_list":["{survivor}"],"quorum":{quorum},"request_timeout_ms":3000,"health_timeout_ms":1000}}"#,
            backend.type_name()
        )
    };
    let quorum = store(&rt, &only(true));
    let serializable = store(&rt, &only(false));
    assert_eq!(
        get(&rt, &quorum, "/k", "", false)
            .unwrap()
            .unwrap()
            .resource_version,
        rv
    );
    assert_eq!(
        get(&rt, &serializable, "/k", "", false)
            .unwrap()
            .unwrap()
            .resource_version,
        rv
    );
    etcd.kill_member(0);
    etcd.kill_member(1);
    // The survivor still serves its local copy.
    assert_eq!(
        get(&rt, &serializable, "/k", "", false)
            .unwrap()
            .unwrap()
            .resource_version,
        rv
    );
    let t0 = Instant::now();
    let e = get(&rt, &quorum, "/k", "", false).unwrap_err();
    assert!(matches!(e.code, Code::Timeout | Code::Unreachable), "{e:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
}

fn health_reports_etcd_state(backend: Backend) {
    let mut etcd = Etcd::start_backend(backend);
    let rt = runtime();
    let config = etcd.config(r#""health_timeout_ms":1000"#);
    let s = store(&rt, &config);
    let check = rt
        .block_on(factory::create_health_check(
            &Config::from_json(&config).unwrap(),
        ))
        .unwrap();
    rt.block_on(s.health()).unwrap();
    // etcd3's check probes in the background until etcd first answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = rt.block_on(check.run()) {
        assert!(
            Instant::now() < deadline,
            "health check never passed: {e:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    etcd.kill_member(0);
    // Go's messages: etcd3 reads a key, etcd2 lists the members.
    let prefix = match backend {
        Backend::Etcd3 => "error getting data from etcd: ",
        Backend::Etcd2 => "error listing etcd members: ",
    };
    let t0 = Instant::now();
    let errors = [
        rt.block_on(s.health()).unwrap_err(),
        rt.block_on(check.run()).unwrap_err(),
    ];
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    for e in errors {
        assert_eq!(e.code, Code::Unreachable);
        assert!(e.message.starts_with(prefix), "{}", e.message);
    }
    etcd.start_member(0);
    // The same store and check recover once etcd is back.
    let deadline = Instant::now() + Duration::from_secs(10);
    while rt.block_on(s.health()).is_err() || rt.block_on(check.run()).is_err() {
        assert!(Instant::now() < deadline, "store never recovered");
        std::thread::sleep(Duration::from_millis(100));
    }
}
