//! Test harness: real etcd servers on free loopback ports, with temporary data
//! directories, stopped on drop. There is no fallback: without an `etcd`
//! binary the tests fail, loudly.
#![allow(dead_code)] // each test crate uses a different part of the harness

pub mod capi;
pub mod cbuild;
pub mod kms;
pub mod tls;
pub mod wire;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The storage backend a behavioural test runs against: the same etcd
/// server, spoken to over its v3 gRPC API or its v2 HTTP API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Etcd3,
    Etcd2,
}

impl Backend {
    /// The etcd flags this backend needs (etcd 3.4 serves v2 only when asked).
    fn flags(self) -> Vec<String> {
        match self {
            Backend::Etcd3 => Vec::new(),
            Backend::Etcd2 => vec!["--enable-v2=true".into()],
        }
    }

    /// The config's `type`.
    pub fn type_name(self) -> &'static str {
        match self {
            Backend::Etcd3 => "etcd3",
            Backend::Etcd2 => "etcd2",
        }
    }
}

/// Runs a behaviour (a function taking a `Backend`) against both backends:
/// `for_each_backend!(a, b)` makes the tests `a::etcd3`, `a::etcd2`, ...
#[macro_export]
macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn etcd3() {
                super::$name($crate::common::Backend::Etcd3)
            }
            #[test]
            fn etcd2() {
                super::$name($crate::common::Backend::Etcd2)
            }
        }
    )*};
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The etcd server a backend's tests run: `ETCD_BIN` (default `etcd`, Debian's
/// 3.4) for etcd3; for etcd2 `ETCD_V2_BIN` (default `etcd`), since etcd 3.6
/// removed the v2 API.
fn etcd_binary(backend: Backend) -> String {
    let var = match backend {
        Backend::Etcd3 => "ETCD_BIN",
        Backend::Etcd2 => "ETCD_V2_BIN",
    };
    let bin = std::env::var(var).unwrap_or_else(|_| "etcd".into());
    let found = Command::new(&bin)
        .arg("--version")
        .stdout(Stdio::null())
        .status();
    assert!(
        matches!(found, Ok(s) if s.success()),
        "the tests need an etcd server binary (`{bin}`): install Debian's etcd-server 3.4 \
         (.ci/run does) or set {var}"
    );
    bin
}

/// One etcd member.
pub struct Member {
    pub name: String,
    /// `https` when the member serves clients over TLS.
    scheme: &'static str,
    backend: Backend,
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
            backend: Backend::Etcd3,
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
        let child = Command::new(etcd_binary(self.backend))
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
    /// How `put`, `delete`, `raw`, `revision` and `config` speak to etcd.
    pub backend: Backend,
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

    /// A single member serving `backend`, running and ready.
    pub fn start_backend(backend: Backend) -> Etcd {
        Self::cluster_backend(1, backend)
    }

    /// `n` members, all running, with a leader elected.
    pub fn cluster(n: usize) -> Etcd {
        Self::cluster_backend(n, Backend::Etcd3)
    }

    /// `n` members serving `backend`, all running, with a leader elected.
    pub fn cluster_backend(n: usize, backend: Backend) -> Etcd {
        let mut etcd = Self::unstarted_backend(n, backend);
        for i in 0..n {
            etcd.spawn(i);
        }
        etcd.wait_ready(Duration::from_secs(30));
        etcd
    }

    /// One member serving clients over mutual TLS with `certs`; not waited
    /// for (the harness's own client speaks plaintext).
    pub fn start_tls(certs: &tls::Certs) -> Etcd {
        Self::start_tls_backend(certs, Backend::Etcd3)
    }

    /// `start_tls` serving `backend`.
    pub fn start_tls_backend(certs: &tls::Certs, backend: Backend) -> Etcd {
        let mut etcd = Self::unstarted(1);
        etcd.backend = backend;
        etcd.members[0].scheme = "https";
        etcd.members[0].extra = certs.server_args();
        etcd.members[0].extra.extend(backend.flags());
        etcd.members[0].backend = backend;
        etcd.spawn(0);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", etcd.members[0].client_port)).is_err() {
            assert!(Instant::now() < deadline, "etcd with TLS did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        etcd
    }

    /// One etcd3 member serving clients over TLS (a server certificate, no
    /// client certificates) on its client port and in plaintext on
    /// `plain_port`, advertising its https URL and `also` as its client URLs
    /// (etcd takes the last of repeated flags); ready when it answers on the
    /// plaintext port.
    pub fn start_tls_advertising(certs: &tls::Certs, plain_port: u16, also: &[String]) -> Etcd {
        let mut etcd = Self::unstarted(1);
        let m = &mut etcd.members[0];
        m.scheme = "https";
        let plain = format!("http://127.0.0.1:{plain_port}");
        let p = |n: &str| certs.path(n).display().to_string();
        m.extra = vec![
            "--cert-file".into(),
            p("server.pem"),
            "--key-file".into(),
            p("server-key.pem"),
            "--listen-client-urls".into(),
            format!("{},{plain}", m.endpoint()),
            "--advertise-client-urls".into(),
            [&[m.endpoint()], also].concat().join(","),
        ];
        etcd.spawn(0);
        let deadline = Instant::now() + Duration::from_secs(20);
        while etcd
            .block_on(async {
                let opts = etcd_client::ConnectOptions::new().with_timeout(Duration::from_secs(2));
                let mut c = etcd_client::Client::connect([plain.as_str()], Some(opts)).await?;
                c.get("/ready", None).await
            })
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "etcd with TLS did not start; logs in {:?}",
                etcd.members[0].log_path()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        etcd
    }

    /// `unstarted` for `backend`.
    pub fn unstarted_backend(n: usize, backend: Backend) -> Etcd {
        let mut etcd = Self::unstarted(n);
        etcd.backend = backend;
        for m in &mut etcd.members {
            m.extra = backend.flags();
            m.backend = backend;
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
            backend: Backend::Etcd3,
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

    /// A config JSON for the library (of the harness's backend), with extra
    /// fields spliced in.
    pub fn config(&self, extra: &str) -> String {
        let list = serde_json::to_string(&self.endpoints()).unwrap();
        let kind = match self.backend {
            Backend::Etcd3 => String::new(),
            Backend::Etcd2 => r#""type":"etcd2","#.to_owned(),
        };
        if extra.is_empty() {
            format!(r#"{{{kind}"server_list":{list}}}"#)
        } else {
            format!(r#"{{{kind}"server_list":{list},{extra}}}"#)
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

    /// A writer of the harness's backend over the running members.
    pub fn writer(&self) -> Writer {
        Writer::new(self.backend, self.running_endpoints())
    }

    /// Puts raw bytes at a full etcd key; returns the put's revision (the
    /// key's ModRevision; with etcd2 its modifiedIndex).
    pub fn put(&self, key: &str, value: &[u8]) -> i64 {
        self.writer().put(key, value).unwrap()
    }

    /// Deletes a full etcd key; returns the deletion's revision.
    pub fn delete(&self, key: &str) -> i64 {
        self.writer().delete(key).unwrap()
    }

    /// The raw value at a full etcd key.
    pub fn raw(&self, key: &str) -> Option<Vec<u8>> {
        self.writer().get(key).unwrap().map(|(value, _)| value)
    }

    /// The version the (first running) etcd server reports.
    pub fn version(&self) -> String {
        self.block_on(async {
            let mut c = self.client().await.unwrap();
            c.status().await.unwrap().version().to_owned()
        })
    }

    /// The TTL a full etcd key carries, `None` when it has none: etcd3, the
    /// granted TTL of its lease; etcd2, the key's remaining TTL.
    pub fn ttl(&self, key: &str) -> Option<i64> {
        match self.backend {
            Backend::Etcd3 => self.block_on(async {
                let mut c = self.client().await.unwrap();
                let resp = c.get(key, None).await.unwrap();
                let lease = resp.kvs().first()?.lease();
                if lease == 0 {
                    return None;
                }
                let ttl = c.lease_time_to_live(lease, None).await.unwrap();
                Some(ttl.granted_ttl())
            }),
            Backend::Etcd2 => {
                let path = format!("/v2/keys{key}");
                let (_, _, body) = v2(&self.running_endpoints()[0], "GET", &path, None).unwrap();
                body["node"]["ttl"].as_i64()
            }
        }
    }

    /// The keys under a full etcd key prefix (a directory) with their
    /// revisions, in key order.
    pub fn revisions_under(&self, prefix: &str) -> Vec<(String, i64)> {
        self.writer().revisions_under(prefix).unwrap()
    }

    /// The cluster's current revision (with etcd2, the v2 store's index).
    pub fn revision(&self) -> i64 {
        match self.backend {
            Backend::Etcd3 => self.block_on(async {
                let mut c = self.client().await.unwrap();
                c.get("/", None).await.unwrap().header().unwrap().revision()
            }),
            Backend::Etcd2 => {
                v2(&self.running_endpoints()[0], "GET", "/v2/keys/", None)
                    .unwrap()
                    .1
            }
        }
    }
}

/// A blocking client of either backend, for writing test data (also from
/// other threads while the library watches).
pub struct Writer {
    backend: Backend,
    endpoints: Vec<String>,
    v3: Option<(tokio::runtime::Runtime, etcd_client::Client)>,
}

impl Writer {
    fn new(backend: Backend, endpoints: Vec<String>) -> Writer {
        Writer {
            backend,
            endpoints,
            v3: None,
        }
    }

    /// The v3 client, connected on first use and after a failure.
    fn v3(&mut self) -> Result<&mut (tokio::runtime::Runtime, etcd_client::Client), String> {
        if self.v3.is_none() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let opts = etcd_client::ConnectOptions::new().with_timeout(Duration::from_secs(1));
            let c = rt
                .block_on(etcd_client::Client::connect(&self.endpoints, Some(opts)))
                .map_err(|e| e.to_string())?;
            self.v3 = Some((rt, c));
        }
        Ok(self.v3.as_mut().unwrap())
    }

    fn v3_call<T>(
        &mut self,
        f: impl FnOnce(
            &mut etcd_client::Client,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, etcd_client::Error>> + '_>,
        >,
    ) -> Result<T, String> {
        let (rt, c) = self.v3()?;
        let result = rt.block_on(f(c)).map_err(|e| e.to_string());
        if result.is_err() {
            self.v3 = None;
        }
        result
    }

    /// A v2 request on the first endpoint that answers.
    fn v2(
        &self,
        method: &str,
        path: &str,
        form: Option<&str>,
    ) -> Result<(u16, i64, serde_json::Value), String> {
        let mut last = String::new();
        for e in &self.endpoints {
            match v2(e, method, path, form) {
                Ok(answer) => return Ok(answer),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Puts `value` at `key`; returns its new revision.
    pub fn put(&mut self, key: &str, value: &[u8]) -> Result<i64, String> {
        match self.backend {
            Backend::Etcd3 => self.v3_call(|c| {
                let (key, value) = (key.to_owned(), value.to_vec());
                Box::pin(
                    async move { Ok(c.put(key, value, None).await?.header().unwrap().revision()) },
                )
            }),
            Backend::Etcd2 => {
                let form = format!("value={}", escape(std::str::from_utf8(value).unwrap()));
                let (status, _, body) = self.v2("PUT", &format!("/v2/keys{key}"), Some(&form))?;
                match status {
                    200 | 201 => Ok(body["node"]["modifiedIndex"].as_i64().unwrap()),
                    _ => Err(body.to_string()),
                }
            }
        }
    }

    /// Creates `key` if it does not exist: `Ok(None)` when it did.
    pub fn create(&mut self, key: &str, value: &[u8]) -> Result<Option<i64>, String> {
        match self.backend {
            Backend::Etcd3 => {
                let (key, value) = (key.to_owned(), value.to_vec());
                self.v3_call(|c| {
                    Box::pin(async move {
                        use etcd_client::{Compare, CompareOp, Txn, TxnOp};
                        let txn = Txn::new()
                            .when([Compare::mod_revision(key.as_str(), CompareOp::Equal, 0)])
                            .and_then([TxnOp::put(key.as_str(), value, None)]);
                        let resp = c.txn(txn).await?;
                        Ok(resp.succeeded().then(|| resp.header().unwrap().revision()))
                    })
                })
            }
            Backend::Etcd2 => {
                let form = format!(
                    "value={}&prevExist=false",
                    escape(std::str::from_utf8(value).unwrap())
                );
                let (status, _, body) = self.v2("PUT", &format!("/v2/keys{key}"), Some(&form))?;
                match (status, body["errorCode"].as_i64()) {
                    (201, _) => Ok(Some(body["node"]["modifiedIndex"].as_i64().unwrap())),
                    (_, Some(105)) => Ok(None),
                    _ => Err(body.to_string()),
                }
            }
        }
    }

    /// Deletes `key`; returns the deletion's revision.
    pub fn delete(&mut self, key: &str) -> Result<i64, String> {
        match self.backend {
            Backend::Etcd3 => self.v3_call(|c| {
                let key = key.to_owned();
                Box::pin(async move { Ok(c.delete(key, None).await?.header().unwrap().revision()) })
            }),
            Backend::Etcd2 => {
                let (status, _, body) = self.v2("DELETE", &format!("/v2/keys{key}"), None)?;
                match status {
                    200 => Ok(body["node"]["modifiedIndex"].as_i64().unwrap()),
                    _ => Err(body.to_string()),
                }
            }
        }
    }

    /// The raw value at `key` and its revision.
    pub fn get(&mut self, key: &str) -> Result<Option<(Vec<u8>, i64)>, String> {
        match self.backend {
            Backend::Etcd3 => self.v3_call(|c| {
                let key = key.to_owned();
                Box::pin(async move {
                    Ok(c.get(key, None)
                        .await?
                        .kvs()
                        .first()
                        .map(|kv| (kv.value().to_vec(), kv.mod_revision())))
                })
            }),
            Backend::Etcd2 => {
                let (status, _, body) = self.v2("GET", &format!("/v2/keys{key}"), None)?;
                match status {
                    200 => Ok(Some((
                        body["node"]["value"].as_str().unwrap().as_bytes().to_vec(),
                        body["node"]["modifiedIndex"].as_i64().unwrap(),
                    ))),
                    404 => Ok(None),
                    _ => Err(body.to_string()),
                }
            }
        }
    }

    /// Every key under the directory `prefix` with its revision, in key order.
    pub fn revisions_under(&mut self, prefix: &str) -> Result<Vec<(String, i64)>, String> {
        let prefix = format!("{}/", prefix.trim_end_matches('/'));
        match self.backend {
            Backend::Etcd3 => self.v3_call(|c| {
                Box::pin(async move {
                    let opts = etcd_client::GetOptions::new().with_prefix();
                    Ok(c.get(prefix, Some(opts))
                        .await?
                        .kvs()
                        .iter()
                        .map(|kv| (kv.key_str().unwrap().to_owned(), kv.mod_revision()))
                        .collect())
                })
            }),
            Backend::Etcd2 => {
                let path = format!("/v2/keys{prefix}?recursive=true");
                let (_, _, body) = self.v2("GET", &path, None)?;
                fn walk(node: &serde_json::Value, out: &mut Vec<(String, i64)>) {
                    for child in node["nodes"].as_array().into_iter().flatten() {
                        if child["dir"].as_bool() == Some(true) {
                            walk(child, out);
                        } else {
                            out.push((
                                child["key"].as_str().unwrap().to_owned(),
                                child["modifiedIndex"].as_i64().unwrap(),
                            ));
                        }
                    }
                }
                let mut out = Vec::new();
                walk(&body["node"], &mut out);
                out.sort();
                Ok(out)
            }
        }
    }
}

/// Percent-encodes a form value.
fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One HTTP/1.0 request to etcd's v2 API at `endpoint` (plaintext):
/// the status, `X-Etcd-Index` and the JSON body.
pub fn v2(
    endpoint: &str,
    method: &str,
    path: &str,
    form: Option<&str>,
) -> Result<(u16, i64, serde_json::Value), String> {
    v2_as(endpoint, method, path, form, None)
}

/// `v2` as a user (`"name:password"`, HTTP Basic auth).
pub fn v2_as(
    endpoint: &str,
    method: &str,
    path: &str,
    form: Option<&str>,
    user: Option<&str>,
) -> Result<(u16, i64, serde_json::Value), String> {
    use base64::Engine;
    let auth = user.map_or(String::new(), |u| {
        format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(u)
        )
    });
    let addr = endpoint.trim_start_matches("http://");
    let mut conn = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = form.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP answer: {text}"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {head}"))?;
    let index = head
        .lines()
        .find_map(|l| l.strip_prefix("X-Etcd-Index: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let json = match body.trim() {
        "" => serde_json::Value::Null,
        body => serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))?,
    };
    Ok((status, index, json))
}

/// The `k8s.io/api` release whose serialization fixtures the tests read.
pub const K8S_API_MODULE: &str = "k8s.io/api@v0.37.2";

/// The `testdata/` directory of [`K8S_API_MODULE`] in the Go module cache
/// (`scripts/install-deps.sh` downloads it): one object per kind and version,
/// as `.pb` and `.json`, for HEAD and each release.
pub fn k8s_api_testdata() -> PathBuf {
    let output = Command::new("go")
        .args(["env", "GOMODCACHE"])
        .output()
        .expect("the Kubernetes fixtures need Go (scripts/install-deps.sh installs it)");
    let cache = String::from_utf8(output.stdout).unwrap();
    let dir = PathBuf::from(cache.trim())
        .join(K8S_API_MODULE)
        .join("testdata");
    assert!(
        dir.is_dir(),
        "{dir:?} is missing: scripts/install-deps.sh downloads {K8S_API_MODULE} into the Go module cache"
    );
    dir
}

/// Whether etcd `version` answers watch progress requests only once the
/// watch has caught up: 3.4.31, 3.5.13 and later (kubernetes#123192).
pub fn answers_progress_requests(version: &str) -> bool {
    let v: Vec<u64> = version.split('.').map(|p| p.parse().unwrap()).collect();
    match (v[0], v[1]) {
        (3, 4) => v[2] >= 31,
        (3, 5) => v[2] >= 13,
        _ => true,
    }
}
