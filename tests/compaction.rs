//! Kubernetes' compaction protocol against a real etcd: API servers take
//! turns through `compact_rev_key`'s version, and each round's winner
//! compacts to the revision it saw the round before, whether it won or lost
//! that round (Go's `compact` in `storage/etcd3/compact.go`).

mod common;

use std::time::{Duration, Instant};

use apiserver_storage::config::Config;
use apiserver_storage::etcd3::{Compactor, Round};
use apiserver_storage::factory;
use apiserver_storage::storage::Code;
use apiserver_storage::watch::WatchOptions;
use common::Etcd;
use etcd_client::WatchOptions as EtcdWatch;
use tokio::runtime::Runtime;

/// The revision etcd's history is compacted to (0: never compacted), as a
/// watch of every key from revision 1 learns it: etcd either says where its
/// history starts or sends the first revision's events.
fn compacted(rt: &Runtime, etcd: &Etcd) -> i64 {
    rt.block_on(async {
        let mut c = etcd_client::Client::connect(etcd.endpoints(), None)
            .await
            .unwrap();
        let options = EtcdWatch::new().with_all_keys().with_start_revision(1);
        let mut stream = c.watch("", Some(options)).await.unwrap();
        loop {
            let resp = tokio::time::timeout(Duration::from_secs(10), stream.message())
                .await
                .expect("no watch response")
                .unwrap()
                .expect("the watch stream ended");
            if resp.compact_revision() != 0 {
                return resp.compact_revision();
            }
            if !resp.events().is_empty() {
                return 0;
            }
        }
    })
}

/// Some writes, so that every round sees a new revision; returns etcd's revision.
fn write(etcd: &Etcd, n: usize) -> i64 {
    for i in 0..n {
        etcd.put(&format!("/registry/pods/ns/p{i}"), b"{}");
    }
    etcd.revision()
}

/// Two API servers whose rounds alternate, as their timers drift: A wins,
/// B loses and then wins, A loses and then wins. Each win compacts to the
/// revision the winner saw when it lost, where Go's compactor would.
#[test]
fn servers_taking_turns_compact_where_go_would() {
    let etcd = Etcd::start();
    let rt = Runtime::new().unwrap();
    let config = Config::from_json(&etcd.config("")).unwrap();
    let mut a = rt.block_on(Compactor::new(&config)).unwrap();
    let mut b = rt.block_on(Compactor::new(&config)).unwrap();
    let round = |c: &mut Compactor| rt.block_on(c.round()).unwrap();
    let (store, _destroy) = rt.block_on(factory::create(&config)).unwrap();
    // Go's `CompactRevision`: what the compactors recorded.
    let recorded = || rt.block_on(store.compact_revision()).unwrap();
    assert_eq!(recorded(), 0, "nothing recorded yet");

    // A bootstraps the clock: it records the revision and compacts nothing.
    let before = write(&etcd, 3);
    assert_eq!(
        round(&mut a),
        Round {
            time: 1,
            revision: before + 1,
            compacted: 0
        }
    );
    assert_eq!(compacted(&rt, &etcd), 0);

    // B loses: it adopts the clock and the revision etcd is at.
    let b_saw = write(&etcd, 3);
    assert_eq!(
        round(&mut b),
        Round {
            time: 1,
            revision: b_saw,
            compacted: 0
        }
    );
    assert_eq!(compacted(&rt, &etcd), 0);

    // B wins the next round and compacts to what it saw.
    let before = write(&etcd, 3);
    assert_eq!(
        round(&mut b),
        Round {
            time: 2,
            revision: before + 1,
            compacted: b_saw
        }
    );
    assert_eq!(compacted(&rt, &etcd), b_saw);
    assert_eq!(recorded(), b_saw);
    assert_eq!(
        etcd.raw("/compact_rev_key")
            .or_else(|| etcd.raw("compact_rev_key")),
        Some(b_saw.to_string().into_bytes())
    );

    // A lost a round it did not run: it loses this one, learning what B compacted.
    let a_saw = write(&etcd, 3);
    assert_eq!(
        round(&mut a),
        Round {
            time: 2,
            revision: a_saw,
            compacted: b_saw
        }
    );
    assert_eq!(compacted(&rt, &etcd), b_saw);

    // A wins and compacts to what it saw.
    let before = write(&etcd, 3);
    assert_eq!(
        round(&mut a),
        Round {
            time: 3,
            revision: before + 1,
            compacted: a_saw
        }
    );
    assert_eq!(compacted(&rt, &etcd), a_saw);
    assert_eq!(recorded(), a_saw);

    // What the library serves reflects it: a watch from before is EXPIRED,
    // one from the compacted revision on is not.
    let from = |rv: i64| WatchOptions {
        resource_version: rv.to_string(),
        recursive: true,
        ..WatchOptions::default()
    };
    let mut w = rt.block_on(store.watch("/pods", &from(a_saw - 2))).unwrap();
    let e = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), w.next()).await })
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(e.code, Code::Expired, "{}", e.message);
    let mut w = rt.block_on(store.watch("/pods", &from(a_saw))).unwrap();
    // The first write after `a_saw` was a pod's.
    let rv = a_saw + 1;
    let event = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), w.next()).await })
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.resource_version(), rv);
}

/// `compaction_interval_s` runs those rounds: two handles on one cluster,
/// each with its own timer, keep etcd's history compacted.
#[test]
fn two_handles_with_compaction_intervals_keep_history_compacted() {
    let etcd = Etcd::start();
    let rt = Runtime::new().unwrap();
    let config = Config::from_json(&etcd.config(r#""compaction_interval_s":1"#)).unwrap();
    let (_s1, destroy1) = rt.block_on(factory::create(&config)).unwrap();
    let (_s2, destroy2) = rt.block_on(factory::create(&config)).unwrap();
    let start = write(&etcd, 1);
    // Whichever handle wins a round compacts, at the latest two rounds on, to
    // a revision recorded after `start`; keep writing so there is history.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        write(&etcd, 1);
        let c = compacted(&rt, &etcd);
        if c > start {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "etcd's history was not compacted past revision {start} (compacted: {c})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    destroy1();
    destroy2();
}

/// A `compact_rev_key` that holds no revision is reported, not read as 0;
/// etcd2 keeps no history to compact.
#[test]
fn compact_revision_refuses_a_malformed_record_and_etcd2() {
    let etcd = Etcd::start();
    let rt = Runtime::new().unwrap();
    let config = Config::from_json(&etcd.config("")).unwrap();
    let (store, _destroy) = rt.block_on(factory::create(&config)).unwrap();
    etcd.put("compact_rev_key", b"12x");
    let e = rt.block_on(store.compact_revision()).unwrap_err();
    assert_eq!(e.code, Code::CorruptObj, "{e}");
    assert!(e.message.contains("compact_rev_key"), "{e}");

    let v2 = Etcd::start_backend(common::Backend::Etcd2);
    let config = Config::from_json(&v2.config("")).unwrap();
    let (store, _destroy) = rt.block_on(factory::create(&config)).unwrap();
    let e = rt.block_on(store.compact_revision()).unwrap_err();
    assert_eq!(e.code, Code::Unsupported, "{e}");
}
