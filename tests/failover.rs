//! Failover and outages against real etcd clusters on loopback.

mod common;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apiserver_storage::config::Config;
use apiserver_storage::factory;
use apiserver_storage::storage::{Code, GetOptions, Interface};
use common::Etcd;

fn store(rt: &tokio::runtime::Runtime, config: &str) -> Arc<dyn Interface> {
    rt.block_on(factory::create(&Config::from_json(config).unwrap()))
        .unwrap()
        .0
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The index of the member that is the raft leader.
fn leader(etcd: &Etcd) -> usize {
    let rt = runtime();
    rt.block_on(async {
        for (i, endpoint) in etcd.endpoints().iter().enumerate() {
            let Ok(mut c) = etcd_client::Client::connect([endpoint], None).await else {
                continue;
            };
            let Ok(status) = c.status().await else {
                continue;
            };
            let header = status.header().unwrap();
            if status.leader() == header.member_id() {
                return i;
            }
        }
        panic!("no leader");
    })
}

/// Reads in a loop until `stop` and at least 5,000 reads, counting attempts and failures.
fn read_loop(
    s: Arc<dyn Interface>,
    rt: Arc<tokio::runtime::Runtime>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(usize, Vec<String>)> {
    std::thread::spawn(move || {
        let mut failures = Vec::new();
        let mut reads = 0;
        while !stop.load(Ordering::Relaxed) || reads < 5000 {
            reads += 1;
            if let Err(e) = rt.block_on(s.get("/k", &GetOptions::default())) {
                failures.push(format!("{:?}: {}", e.code, e.message));
            }
        }
        (reads, failures)
    })
}

#[test]
fn quorum_reads_survive_a_follower_restart_and_a_leader_kill() {
    let mut etcd = Etcd::cluster(3);
    etcd.put("/registry/k", b"{}");
    let rt = Arc::new(runtime());
    let s = store(&rt, &etcd.config(""));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = read_loop(s.clone(), rt.clone(), stop.clone());

    std::thread::sleep(Duration::from_millis(500));
    let lead = leader(&etcd);
    let follower = (lead + 1) % 3;
    etcd.kill_member(follower);
    std::thread::sleep(Duration::from_secs(2));
    etcd.start_member(follower);
    std::thread::sleep(Duration::from_secs(1));
    etcd.kill_member(lead);
    std::thread::sleep(Duration::from_secs(4));
    etcd.start_member(lead);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (reads, failures) = reader.join().unwrap();
    eprintln!(
        "quorum reads through a follower restart and a leader kill: {reads} attempted, {} failed",
        failures.len()
    );
    assert!(reads >= 5000, "only {reads} reads");
    assert!(
        failures.is_empty(),
        "{} of {reads} reads failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}

#[test]
fn a_dead_endpoint_listed_first_costs_no_reads() {
    let etcd = Etcd::start();
    etcd.put("/registry/k", b"{}");
    let dead = format!("http://127.0.0.1:{}", common::free_port());
    let rt = runtime();
    let s = store(
        &rt,
        &format!(r#"{{"server_list":["{dead}","{}"]}}"#, etcd.endpoint()),
    );
    let failed = (0..1000)
        .filter(|_| rt.block_on(s.get("/k", &GetOptions::default())).is_err())
        .count();
    eprintln!("dead endpoint first: 1000 reads attempted, {failed} failed");
    assert_eq!(failed, 0);
}

#[test]
fn with_two_of_three_down_only_serializable_reads_are_served() {
    let mut etcd = Etcd::cluster(3);
    let rv = etcd.put("/registry/k", b"{}");
    let rt = runtime();
    let quorum = store(&rt, &etcd.config(r#""request_timeout_ms":3000"#));
    let serializable = store(
        &rt,
        &etcd.config(r#""request_timeout_ms":3000,"quorum":false"#),
    );
    etcd.kill_member(0);
    etcd.kill_member(1);
    for _ in 0..20 {
        let o = rt
            .block_on(serializable.get("/k", &GetOptions::default()))
            .unwrap()
            .unwrap();
        assert_eq!(o.resource_version, rv);
    }
    for _ in 0..3 {
        let t0 = Instant::now();
        let e = rt
            .block_on(quorum.get("/k", &GetOptions::default()))
            .unwrap_err();
        assert!(matches!(e.code, Code::Unreachable | Code::Timeout), "{e:?}");
        assert!(
            t0.elapsed() < Duration::from_millis(3500),
            "took {:?}",
            t0.elapsed()
        );
    }
}

#[test]
fn an_etcd_outage_bounds_every_call_and_the_handle_recovers() {
    let mut etcd = Etcd::start();
    etcd.put("/registry/k", b"{}");
    let rt = runtime();
    let s = store(&rt, &etcd.config(r#""request_timeout_ms":1000"#));
    rt.block_on(s.get("/k", &GetOptions::default())).unwrap();
    etcd.kill_member(0);
    let down = Instant::now();
    let slowest = AtomicUsize::new(0);
    while down.elapsed() < Duration::from_secs(5) {
        let t0 = Instant::now();
        let e = rt
            .block_on(s.get("/k", &GetOptions::default()))
            .unwrap_err();
        assert!(matches!(e.code, Code::Unreachable | Code::Timeout), "{e:?}");
        slowest.fetch_max(t0.elapsed().as_millis() as usize, Ordering::Relaxed);
    }
    assert!(
        slowest.load(Ordering::Relaxed) < 1500,
        "a call took {} ms",
        slowest.load(Ordering::Relaxed)
    );
    etcd.start_member(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while rt.block_on(s.get("/k", &GetOptions::default())).is_err() {
        assert!(Instant::now() < deadline, "the handle never recovered");
    }
}

#[test]
fn a_server_that_never_answers_ends_calls_at_their_deadline() {
    // Accepts connections (the kernel completes the handshake) and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let rt = runtime();
    let s = store(
        &rt,
        &format!(
            r#"{{"server_list":["{endpoint}"],"request_timeout_ms":1500,"health_timeout_ms":800}}"#
        ),
    );
    let t0 = Instant::now();
    let e = rt
        .block_on(s.get("/k", &GetOptions::default()))
        .unwrap_err();
    let took = t0.elapsed();
    assert!(matches!(e.code, Code::Timeout | Code::Unreachable), "{e:?}");
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_millis(2500),
        "took {took:?}"
    );
    let t0 = Instant::now();
    assert_eq!(rt.block_on(s.health()).unwrap_err().code, Code::Unreachable);
    assert!(
        t0.elapsed() < Duration::from_millis(1500),
        "health took {:?}",
        t0.elapsed()
    );
    let t0 = Instant::now();
    assert!(rt.block_on(s.create("/k", b"{}", 0)).is_err());
    assert!(
        t0.elapsed() < Duration::from_millis(2500),
        "create took {:?}",
        t0.elapsed()
    );
    drop(listener);
}

#[test]
fn auto_sync_discovers_the_rest_of_the_cluster() {
    let mut etcd = Etcd::cluster(3);
    etcd.put("/registry/k", b"{}");
    let rt = runtime();
    // Only the first member is configured; the member list names the others.
    let config = format!(
        r#"{{"server_list":["{}"],"auto_sync_interval_s":1,"request_timeout_ms":5000}}"#,
        etcd.members[0].endpoint()
    );
    let s = store(&rt, &config);
    rt.block_on(s.get("/k", &GetOptions::default())).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    etcd.kill_member(0);
    let failed = (0..200)
        .filter(|_| rt.block_on(s.get("/k", &GetOptions::default())).is_err())
        .count();
    eprintln!("auto-sync, configured member killed: 200 reads attempted, {failed} failed");
    assert_eq!(failed, 0);
}
