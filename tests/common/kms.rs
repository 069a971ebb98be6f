//! A test KMS plugin (`tests/kube/kmsplugin`): the KMS v2 and v1beta1 gRPC
//! APIs on unix sockets in a fresh temporary directory, with local KEKs and
//! a control API that makes it fail, hang, report itself unhealthy or
//! rotate its key. Killed on drop.
//!
//! `kms_probe` calls a plugin through kube-apiserver's own gRPC clients
//! (`tests/kube/kmsprobe`); `vectors_binary` checks the KMS test vectors.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use super::cbuild::{assert_success, go_module_command, lib_dir};

/// Builds `./<package>` of the `tests/kube` module into `target/<profile>/<name>`,
/// once per test process (the Go build cache makes repeated builds cheap).
fn go_program(cell: &'static OnceLock<PathBuf>, package: &str, name: &str) -> PathBuf {
    cell.get_or_init(|| {
        let program = lib_dir().join(name);
        let build = go_module_command("tests/kube")
            .args(["build", "-o"])
            .arg(&program)
            .arg(format!("./{package}"))
            .output()
            .expect("the Go toolchain");
        assert_success(&format!("building tests/kube/{package}"), &build);
        program
    })
    .clone()
}

pub fn plugin_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    go_program(&BIN, "kmsplugin", "kms-plugin")
}

pub fn probe_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    go_program(&BIN, "kmsprobe", "kms-probe")
}

/// `tests/kube/kmsvectors`: writes and checks `tests/fixtures/kms/vectors.json`.
pub fn vectors_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    go_program(&BIN, "kmsvectors", "kms-vectors")
}

/// Calls received by the plugin, per API, counted on arrival (failed and
/// hung calls included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KmsStats {
    pub v2_status: u64,
    pub v2_encrypt: u64,
    pub v2_decrypt: u64,
    pub v1_version: u64,
    pub v1_encrypt: u64,
    pub v1_decrypt: u64,
}

/// The v2 annotation the plugin returns from Encrypt (value: the key ID) and
/// requires back on Decrypt.
pub const ANNOTATION_KEY: &str = "key-id.kmsplugin.apiserver-storage.test";

pub struct KmsPlugin {
    child: Child,
    // Held open: the plugin (run with --exit-with-stdin) exits when it closes,
    // so a test process that dies without unwinding takes the plugin along.
    _stdin: ChildStdin,
    dir: TempDir,
}

impl KmsPlugin {
    /// Both APIs and the control socket, initial key ID `key-1`.
    pub fn start() -> KmsPlugin {
        Self::start_with_key_id("key-1")
    }

    pub fn start_with_key_id(key_id: &str) -> KmsPlugin {
        let program = plugin_binary();
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("plugin.log")).unwrap();
        let mut child = Command::new(&program)
            .arg("--v2-socket")
            .arg(dir.path().join("v2.sock"))
            .arg("--v1-socket")
            .arg(dir.path().join("v1.sock"))
            .arg("--control")
            .arg(dir.path().join("control.sock"))
            .args(["--key-id", key_id, "--exit-with-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {program:?}: {e}"));
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let plugin = KmsPlugin {
            child,
            _stdin: stdin,
            dir,
        };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.trim() == "ready" => plugin,
            other => panic!(
                "the KMS plugin did not get ready ({other:?}); its log:\n{}",
                plugin.log()
            ),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn v2_socket(&self) -> PathBuf {
        self.dir.path().join("v2.sock")
    }

    pub fn v1_socket(&self) -> PathBuf {
        self.dir.path().join("v1.sock")
    }

    pub fn control_socket(&self) -> PathBuf {
        self.dir.path().join("control.sock")
    }

    /// `unix:///path/v2.sock`, as an EncryptionConfiguration names it.
    pub fn v2_endpoint(&self) -> String {
        format!("unix://{}", self.v2_socket().display())
    }

    pub fn v1_endpoint(&self) -> String {
        format!("unix://{}", self.v1_socket().display())
    }

    /// The plugin's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("plugin.log")).unwrap_or_default()
    }

    /// Encrypt and Decrypt (both APIs) answer gRPC `Unavailable`; v2 Status
    /// and v1 Version still answer.
    pub fn fail(&self) {
        self.post("/fail", "");
    }

    /// v2 Status and Encrypt/Decrypt of both APIs block until `reset` or the
    /// caller's deadline.
    pub fn hang(&self) {
        self.post("/hang", "");
    }

    /// v2 Status answers a healthz other than "ok".
    pub fn unhealthy(&self) {
        self.post("/unhealthy", "");
    }

    /// Back to normal (hung calls proceed); keys are kept.
    pub fn reset(&self) {
        self.post("/reset", "");
    }

    /// Switches to a new key ID (`key-1-2`, `key-1-3`, ... from `key-1`)
    /// with a new KEK; old KEKs still decrypt. Returns the new key ID.
    pub fn rotate(&self) -> String {
        self.post("/rotate", "")
    }

    /// Rotates to the given key ID.
    pub fn rotate_to(&self, key_id: &str) -> String {
        self.post("/rotate", key_id)
    }

    pub fn key_id(&self) -> String {
        self.request("GET", "/key-id", "")
    }

    pub fn stats(&self) -> KmsStats {
        let body = self.request("GET", "/stats", "");
        let v: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("the plugin's /stats is not JSON ({e}): {body}"));
        let n = |api: &str, call: &str| {
            v[api][call]
                .as_u64()
                .unwrap_or_else(|| panic!("/stats has no {api}.{call}: {body}"))
        };
        KmsStats {
            v2_status: n("v2", "status"),
            v2_encrypt: n("v2", "encrypt"),
            v2_decrypt: n("v2", "decrypt"),
            v1_version: n("v1", "version"),
            v1_encrypt: n("v1", "encrypt"),
            v1_decrypt: n("v1", "decrypt"),
        }
    }

    fn post(&self, path: &str, body: &str) -> String {
        self.request("POST", path, body)
    }

    /// One HTTP/1.0 request on the control socket; the reply body, trimmed.
    /// Panics unless the status is 200.
    fn request(&self, method: &str, path: &str, body: &str) -> String {
        let mut stream = UnixStream::connect(self.control_socket()).unwrap_or_else(|e| {
            panic!(
                "connect to the KMS plugin's control socket: {e}; its log:\n{}",
                self.log()
            )
        });
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: kmsplugin\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        let (head, text) = reply
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("malformed reply to {method} {path}: {reply:?}"));
        let status_line = head.lines().next().unwrap_or_default();
        assert!(
            status_line.split_whitespace().nth(1) == Some("200"),
            "{method} {path}: {status_line}: {text}"
        );
        text.trim().to_string()
    }
}

impl Drop for KmsPlugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `kmsprobe` against `endpoint` (`api` "v2" or "v1", per-call
/// `timeout` as in an EncryptionConfiguration) with the given operations
/// (`status`, `encrypt=<b64>`, `decrypt=<key id>,<b64>[,<annotation>=<b64>...]`
/// for v2, `decrypt=<b64>` for v1); one JSON object per operation, in order.
pub fn kms_probe(endpoint: &str, api: &str, timeout: Duration, ops: &[&str]) -> Vec<Value> {
    let output = Command::new(probe_binary())
        .args(["-endpoint", endpoint, "-api", api])
        .arg(format!("-timeout={}ms", timeout.as_millis()))
        .args(ops)
        .output()
        .expect("run kmsprobe");
    assert_success("kmsprobe", &output);
    let results: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), ops.len(), "kmsprobe {ops:?}: {results:?}");
    results
}

/// A protobuf varint at the start of `b`, and what follows it.
pub fn read_varint(b: &[u8]) -> (u64, &[u8]) {
    let mut v = 0;
    for (i, byte) in b.iter().enumerate() {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return (v, &b[i + 1..]);
        }
    }
    panic!("truncated varint")
}
