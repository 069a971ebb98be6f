//! Test harness: real etcd servers on free loopback ports, with temporary data
//! directories, stopped on drop. There is no fallback: without an `etcd`
//! binary the tests fail, loudly.
#![allow(dead_code)] // each test crate uses a different part of the harness

pub mod cbuild;
pub mod tls;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn etcd_binary() -> String {
    let bin = std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".into());
    let found = Command::new(&bin)
        .arg("--version")
        .stdout(Stdio::null())
        .status();
    assert!(
        matches!(found, Ok(s) if s.success()),
        "the tests need an etcd 3.4 server binary (`{bin}`): install Debian's etcd-server \
         (.ci/run does) or set ETCD_BIN"
    );
    bin
}

/// One etcd member.
pub struct Member {
    pub name: String,
    /// `https` when the member serves clients over TLS.
    scheme: &'static str,
    extra: Vec<String>,
    pub client_port: u16,
    pub peer_port: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl Member {
    fn new(name: &str) -> Member {
        Member {
            name: name.into(),
            scheme: "http",
            extra: Vec::new(),
            client_port: free_port(),
            peer_port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.client_port)
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    fn spawn(&mut self, initial_cluster: &str) {
        assert!(self.child.is_none(), "member {} already running", self.name);
        let log = std::fs::File::create(self.dir.path().join("etcd.log")).unwrap();
        let child = Command::new(etcd_binary())
            .args(["--name", &self.name])
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(["--listen-client-urls", &self.endpoint()])
            .args(["--advertise-client-urls", &self.endpoint()])
            .args(["--listen-peer-urls", &self.peer_url()])
            .args(["--initial-advertise-peer-urls", &self.peer_url()])
            .args(["--initial-cluster", initial_cluster])
            .args([
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                "test",
            ])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        self.child = Some(child);
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the member (SIGKILL, as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An etcd cluster of one or more members.
pub struct Etcd {
    pub members: Vec<Member>,
    initial_cluster: String,
}

impl Etcd {
    /// A single member, running and ready.
    pub fn start() -> Etcd {
        Self::cluster(1)
    }

    /// A single member started with extra etcd flags.
    pub fn start_with(flags: &[&str]) -> Etcd {
        let mut etcd = Self::unstarted(1);
        etcd.members[0].extra = flags.iter().map(|f| f.to_string()).collect();
        etcd.start_member(0);
        etcd
    }

    /// `n` members, all running, with a leader elected.
    pub fn cluster(n: usize) -> Etcd {
        let mut etcd = Self::unstarted(n);
        for i in 0..n {
            etcd.spawn(i);
        }
        etcd.wait_ready(Duration::from_secs(30));
        etcd
    }

    /// One member serving clients over mutual TLS with `certs`; not waited
    /// for (the harness's own client speaks plaintext).
    pub fn start_tls(certs: &tls::Certs) -> Etcd {
        let mut etcd = Self::unstarted(1);
        etcd.members[0].scheme = "https";
        etcd.members[0].extra = certs.server_args();
        etcd.spawn(0);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", etcd.members[0].client_port)).is_err() {
            assert!(Instant::now() < deadline, "etcd with TLS did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        etcd
    }

    /// Ports and directories chosen, nothing running yet.
    pub fn unstarted(n: usize) -> Etcd {
        let members: Vec<Member> = (0..n).map(|i| Member::new(&format!("m{i}"))).collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        Etcd {
            members,
            initial_cluster,
        }
    }

    fn spawn(&mut self, i: usize) {
        let initial = self.initial_cluster.clone();
        self.members[i].spawn(&initial);
    }

    /// Starts (or restarts, keeping its data) member `i` and waits until the
    /// cluster serves linearizable reads.
    pub fn start_member(&mut self, i: usize) {
        self.spawn(i);
        self.wait_ready(Duration::from_secs(30));
    }

    /// Starts member `i` without waiting.
    pub fn start_member_nowait(&mut self, i: usize) {
        self.spawn(i);
    }

    pub fn kill_member(&mut self, i: usize) {
        self.members[i].kill();
    }

    pub fn endpoint(&self) -> String {
        self.members[0].endpoint()
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::endpoint).collect()
    }

    /// A config JSON for the library, with extra fields spliced in.
    pub fn config(&self, extra: &str) -> String {
        let list = serde_json::to_string(&self.endpoints()).unwrap();
        if extra.is_empty() {
            format!(r#"{{"server_list":{list}}}"#)
        } else {
            format!(r#"{{"server_list":{list},{extra}}}"#)
        }
    }

    fn running_endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| m.is_running())
            .map(Member::endpoint)
            .collect()
    }

    pub fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self
                .members
                .iter()
                .filter(|m| m.is_running())
                .all(|m| TcpStream::connect(("127.0.0.1", m.client_port)).is_ok())
                && self
                    .block_on(async {
                        let mut c = self.client().await?;
                        c.get("/ready", None).await
                    })
                    .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd did not become ready; logs in {:?}",
                self.members[0].log_path()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn block_on<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    async fn client(&self) -> Result<etcd_client::Client, etcd_client::Error> {
        let opts = etcd_client::ConnectOptions::new().with_timeout(Duration::from_secs(2));
        etcd_client::Client::connect(self.running_endpoints(), Some(opts)).await
    }

    /// Puts raw bytes at a full etcd key; returns the put's revision (the key's ModRevision).
    pub fn put(&self, key: &str, value: &[u8]) -> i64 {
        self.block_on(async {
            let mut c = self.client().await.unwrap();
            let resp = c.put(key, value, None).await.unwrap();
            resp.header().unwrap().revision()
        })
    }

    /// The raw bytes stored at a full etcd key, as etcd holds them.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.block_on(async {
            let mut c = self.client().await.unwrap();
            let resp = c.get(key, None).await.unwrap();
            resp.kvs().first().map(|kv| kv.value().to_vec())
        })
    }

    /// The cluster's current revision.
    pub fn revision(&self) -> i64 {
        self.block_on(async {
            let mut c = self.client().await.unwrap();
            c.get("/", None).await.unwrap().header().unwrap().revision()
        })
    }
}
