//! `storagebackend.Config`: the storage configuration, parsed from JSON.

use std::time::Duration;

use serde::Deserialize;

use crate::storage::{Result, StorageError};
use crate::value::config::{Secret, TransformerConfig};

pub(crate) mod parse;

/// The most the library reads of a file the config names (`ca_file`,
/// `cert_file`, `key_file`, an `encryption_config_file`): 1 MiB, far more than
/// any PEM bundle or encryption configuration needs, and a bound when the
/// path is `/dev/zero` or a huge file by mistake.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// Reads a file the config names in `field`: at most `MAX_FILE_BYTES`, else
/// `InvalidConfig` naming the field, the path and the limit. The file is opened
/// non-blocking, so a FIFO without a writer reads as empty instead of hanging.
pub(crate) fn read_file(field: &str, path: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |why: &dyn std::fmt::Display| {
        StorageError::invalid_config(format!("invalid config field `{field}`: {path:?}: {why}"))
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| fail(&format_args!("cannot read it: {e}")))?;
    let mut data = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| fail(&format_args!("cannot read it: {e}")))?;
    if data.len() > MAX_FILE_BYTES {
        return Err(fail(&format_args!(
            "the file is larger than {} MiB, the limit for files the config names",
            MAX_FILE_BYTES >> 20
        )));
    }
    Ok(data)
}

/// An endpoint's scheme: `http://`, `https://` (case-insensitive), or none
/// (`host:port`, which speaks TLS when the config turns TLS on, as in Go).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
    Unspecified,
}

/// An etcd client endpoint: `[http://|https://]host:port`, with at most a
/// trailing `/`. The one parser for configured endpoints (both backends) and
/// for the client URLs etcd's member list advertises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub scheme: Scheme,
    /// A host name or an IP address; IPv6 without brackets.
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// Parses `s`, or says what is wrong with it (never quoting it).
    pub(crate) fn parse(s: &str) -> std::result::Result<Endpoint, &'static str> {
        if s.is_empty() {
            return Err("an endpoint must not be empty");
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("an endpoint must not contain whitespace or control characters");
        }
        let (scheme, rest) = match s.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (Scheme::Http, rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (Scheme::Https, rest),
            Some(_) => {
                return Err("unsupported scheme: an endpoint is http://host:port, \
                     https://host:port or host:port")
            }
            None => (Scheme::Unspecified, s),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err("an endpoint is scheme://host:port, without a path, query or fragment");
        }
        if rest.contains('@') {
            return Err("an endpoint must not carry user information: use username and password");
        }
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or("an IPv6 address lacks its closing bracket")?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err("invalid IPv6 address between the brackets");
            }
            match after.strip_prefix(':') {
                Some(port) => (host, port),
                None if after.is_empty() => (host, ""),
                None => return Err("unexpected characters after the IPv6 address"),
            }
        } else {
            let (host, port) = rest.rsplit_once(':').unwrap_or((rest, ""));
            if host.contains(':') {
                return Err("an IPv6 address must be written in brackets: [::1]:2379");
            }
            (host, port)
        };
        if host.is_empty() {
            return Err("an endpoint must name a host");
        }
        if !host.contains(':')
            && !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        {
            return Err("invalid host name");
        }
        if port.is_empty() {
            return Err("an endpoint must give its port (etcd's is usually 2379)");
        }
        let port = match port.parse::<u16>() {
            Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => p,
            _ => return Err("invalid port: it must be a number from 1 to 65535"),
        };
        Ok(Endpoint {
            scheme,
            host: host.to_owned(),
            port,
        })
    }

    /// The endpoint's URL; one without a scheme takes `https` when `tls`.
    pub(crate) fn url(&self, tls: bool) -> String {
        let scheme = match self.scheme {
            Scheme::Https => "https",
            Scheme::Http => "http",
            Scheme::Unspecified if tls => "https",
            Scheme::Unspecified => "http",
        };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// The longest timeout a config may set (`i32::MAX` ms, as gRPC's and Go's
/// timers hold them): past it, deadlines would overflow the clock.
pub const MAX_TIMEOUT_MS: u64 = i32::MAX as u64;

/// Which backend a config selects (Go's `storagebackend.StorageTypeETCD2/3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageType {
    Etcd3,
    Etcd2,
}

/// How stored objects are decoded for the caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodecKind {
    /// JSON objects, with `metadata.resourceVersion` set from etcd's ModRevision.
    #[default]
    Json,
    /// The transformed (decrypted) bytes, untouched.
    Raw,
    /// kube-apiserver's protobuf objects (`k8s\0` + `runtime.Unknown`) as the
    /// JSON it serves, with `metadata.resourceVersion` set; JSON values as `Json`.
    Protobuf,
}

/// The storage configuration: the snake_case form of Go's `storagebackend.Config`
/// plus the client settings kube-apiserver hard-codes.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    #[serde(rename = "type")]
    pub storage_type: String,
    pub prefix: String,
    pub server_list: Vec<String>,
    pub key_file: String,
    pub cert_file: String,
    pub ca_file: String,
    /// etcd authentication (beyond Go's Config): both or neither.
    pub username: String,
    /// Zeroized on drop, redacted from `Debug`.
    pub password: Option<Secret>,
    /// false: serializable reads (Go's `NewWithNoQuorumRead`).
    pub quorum: bool,
    pub paging: bool,
    pub codec: CodecKind,
    pub transformer: Option<TransformerConfig>,
    /// 0 disables compaction: a library must not compact a cluster it does not own.
    pub compaction_interval_s: u64,
    /// Refresh the endpoints from etcd's member list this often (Go's
    /// `AutoSyncInterval`); 0: never.
    pub auto_sync_interval_s: u64,
    pub dial_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub health_timeout_ms: u64,
    pub keepalive_time_ms: u64,
    pub keepalive_timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            storage_type: String::new(),
            prefix: "/registry".into(),
            server_list: Vec::new(),
            key_file: String::new(),
            cert_file: String::new(),
            ca_file: String::new(),
            username: String::new(),
            password: None,
            quorum: true,
            paging: true,
            codec: CodecKind::Json,
            transformer: None,
            compaction_interval_s: 0,
            auto_sync_interval_s: 0,
            dial_timeout_ms: 20_000,
            request_timeout_ms: 60_000,
            health_timeout_ms: 2_000,
            keepalive_time_ms: 30_000,
            keepalive_timeout_ms: 10_000,
        }
    }
}

impl Config {
    /// Parses and validates a JSON config. Errors name the offending field.
    pub fn from_json(json: &str) -> Result<Config> {
        let config: Config = parse::from_json(json).map_err(|e| {
            StorageError::invalid_config(e.describe("invalid config", "invalid config field"))
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        self.storage_type()?;
        if self.server_list.is_empty() {
            return Err(StorageError::invalid_config(
                "invalid config field `server_list`: at least one non-empty etcd endpoint is required",
            ));
        }
        self.endpoints()?;
        for (name, v) in [
            ("dial_timeout_ms", self.dial_timeout_ms),
            ("request_timeout_ms", self.request_timeout_ms),
            ("health_timeout_ms", self.health_timeout_ms),
            ("keepalive_time_ms", self.keepalive_time_ms),
            ("keepalive_timeout_ms", self.keepalive_timeout_ms),
        ] {
            if v > MAX_TIMEOUT_MS {
                return Err(StorageError::invalid_config(format!(
                    "invalid config field `{name}`: at most {MAX_TIMEOUT_MS} ms (24.8 days)"
                )));
            }
            if v == 0 {
                return Err(StorageError::invalid_config(format!(
                    "invalid config field `{name}`: must be greater than 0"
                )));
            }
        }
        if self.username.is_empty() != self.password.as_ref().is_none_or(|p| p.expose().is_empty())
        {
            return Err(StorageError::invalid_config(
                "invalid config fields `username`/`password`: both or neither must be set",
            ));
        }
        if self.cert_file.is_empty() != self.key_file.is_empty() {
            return Err(StorageError::invalid_config(
                "invalid config fields `cert_file`/`key_file`: both or neither must be set",
            ));
        }
        Ok(())
    }

    /// The parsed `server_list`: `InvalidConfig` naming the first bad endpoint.
    pub(crate) fn endpoints(&self) -> Result<Vec<Endpoint>> {
        self.server_list
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Endpoint::parse(s).map_err(|why| {
                    // User information may hold a password, a query or a
                    // fragment a token: neither is quoted.
                    let shown = if s.contains('@') {
                        String::new()
                    } else {
                        let shown = s.split(['?', '#']).next().unwrap_or_default();
                        format!(" {shown:?}:")
                    };
                    StorageError::invalid_config(format!(
                        "invalid config field `server_list[{i}]`:{shown} {why}"
                    ))
                })
            })
            .collect()
    }

    /// Whether the client speaks TLS: an endpoint is `https://` or a TLS file
    /// is given, as in Go, where any TLS file makes scheme-less endpoints secure.
    pub(crate) fn tls_enabled(&self) -> bool {
        self.server_list.iter().any(|s| {
            s.get(..8)
                .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
        }) || !(self.ca_file.is_empty() && self.cert_file.is_empty())
    }

    /// The configured etcd credentials. An empty username and an empty (or
    /// absent) password mean none: the client then never logs in.
    pub(crate) fn credentials(&self) -> Option<(&str, &Secret)> {
        match &self.password {
            Some(password) if !self.username.is_empty() && !password.expose().is_empty() => {
                Some((self.username.as_str(), password))
            }
            _ => None,
        }
    }

    /// The backend type; `""` means etcd3, as in Go.
    pub fn storage_type(&self) -> Result<StorageType> {
        match self.storage_type.as_str() {
            "" | "etcd3" => Ok(StorageType::Etcd3),
            "etcd2" => Ok(StorageType::Etcd2),
            other => Err(StorageError::invalid_config(format!(
                "unknown storage type: {other}"
            ))),
        }
    }

    pub fn dial_timeout(&self) -> Duration {
        Duration::from_millis(self.dial_timeout_ms)
    }
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
    pub fn health_timeout(&self) -> Duration {
        Duration::from_millis(self.health_timeout_ms)
    }
    pub fn keepalive_time(&self) -> Duration {
        Duration::from_millis(self.keepalive_time_ms)
    }
    pub fn keepalive_timeout(&self) -> Duration {
        Duration::from_millis(self.keepalive_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Code;

    fn err(json: &str) -> StorageError {
        Config::from_json(json).unwrap_err()
    }

    #[test]
    fn defaults_follow_kube_apiserver() {
        let c = Config::from_json(r#"{"server_list":["127.0.0.1:2379"]}"#).unwrap();
        assert_eq!(c.prefix, "/registry");
        assert!(c.quorum && c.paging);
        assert_eq!(c.codec, CodecKind::Json);
        assert_eq!(c.storage_type().unwrap(), StorageType::Etcd3);
        assert_eq!(c.dial_timeout(), Duration::from_secs(20));
        assert_eq!(c.keepalive_time(), Duration::from_secs(30));
        assert_eq!(c.keepalive_timeout(), Duration::from_secs(10));
        assert_eq!(c.health_timeout(), Duration::from_secs(2));
        assert_eq!(c.request_timeout(), Duration::from_secs(60));
        assert_eq!(c.compaction_interval_s, 0);
        assert!(c.transformer.is_none());
    }

    #[test]
    fn errors_name_the_field() {
        let e = err(r#"{"server_list":["a:1"],"quorum":"yes"}"#);
        assert_eq!(e.code, Code::InvalidConfig);
        assert!(e.message.contains("`quorum`"), "{}", e.message);

        let e = err(r#"{"server_list":["a:1", 7]}"#);
        assert!(e.message.contains("`server_list[1]`"), "{}", e.message);

        let e = err(r#"{"server_list":["a:1"],"bogus":1}"#);
        assert!(e.message.contains("unknown field `bogus`"), "{}", e.message);

        let e = err(r#"{"server_list":[]}"#);
        assert!(e.message.contains("`server_list`"), "{}", e.message);

        let e = err(r#"{"server_list":["a:1"],"codec":"xml"}"#);
        assert!(e.message.contains("`codec`"), "{}", e.message);

        let e = err(r#"{"server_list":["a:1"],"dial_timeout_ms":0}"#);
        assert!(e.message.contains("`dial_timeout_ms`"), "{}", e.message);
        for field in [
            "request_timeout_ms",
            "keepalive_time_ms",
            "health_timeout_ms",
        ] {
            for v in [u64::MAX, MAX_TIMEOUT_MS + 1] {
                let e = err(&format!(r#"{{"server_list":["a:1"],"{field}":{v}}}"#));
                assert!(
                    e.message.contains(field) && e.message.contains("at most"),
                    "{}",
                    e.message
                );
            }
            let ok = format!(r#"{{"server_list":["a:1"],"{field}":{MAX_TIMEOUT_MS}}}"#);
            assert!(Config::from_json(&ok).is_ok());
        }

        let e = err(r#"{"server_list":["a:1"],"cert_file":"/x"}"#);
        assert!(e.message.contains("key_file"), "{}", e.message);

        assert_eq!(err("{").code, Code::InvalidConfig);
        assert_eq!(
            err(r#"{"server_list":["a:1"]} x"#).code,
            Code::InvalidConfig
        );
        assert_eq!(err("[]").code, Code::InvalidConfig);
    }

    #[test]
    fn endpoints_parse_in_one_place() {
        use Scheme::*;
        let ok = |s: &str, scheme, host: &str, port| {
            let e = Endpoint::parse(s).unwrap_or_else(|why| panic!("{s}: {why}"));
            assert_eq!(
                e,
                Endpoint {
                    scheme,
                    host: host.into(),
                    port
                },
                "{s}"
            );
        };
        ok("http://127.0.0.1:2379", Http, "127.0.0.1", 2379);
        ok(
            "https://etcd-0.example.com:2379/",
            Https,
            "etcd-0.example.com",
            2379,
        );
        ok("HTTPS://127.0.0.1:2379", Https, "127.0.0.1", 2379);
        ok("Http://localhost:1", Http, "localhost", 1);
        ok("127.0.0.1:2379", Unspecified, "127.0.0.1", 2379);
        ok("etcd_1:65535", Unspecified, "etcd_1", 65535);
        ok("https://[::1]:2379", Https, "::1", 2379);
        ok("[fe80::1]:2379", Unspecified, "fe80::1", 2379);
        for (s, why) in [
            ("", "must not be empty"),
            ("unix:///var/run/etcd.sock", "unsupported scheme"),
            ("unix://etcd:2379", "unsupported scheme"),
            ("ftp://127.0.0.1:2379", "unsupported scheme"),
            ("https//127.0.0.1:2379", "without a path"),
            ("HTTPS:://127.0.0.1:2379", "unsupported scheme"),
            (" https://127.0.0.1:2379", "whitespace"),
            ("https://127.0.0.1:2379 ", "whitespace"),
            ("https://127.0.0.1 :2379", "whitespace"),
            ("http://127.0.0.1:2379\n", "whitespace"),
            ("https://127.0.0.1:2379/v3", "without a path"),
            ("https://127.0.0.1:2379?x=1", "without a path"),
            ("https://127.0.0.1:2379#x", "without a path"),
            ("https://user:pw@127.0.0.1:2379", "user information"),
            ("https://:2379", "must name a host"),
            ("https://", "must name a host"),
            ("http://[::1", "closing bracket"),
            ("http://[::1]x", "after the IPv6 address"),
            ("http://[nothost]:1", "invalid IPv6 address"),
            ("http://::1:2379", "in brackets"),
            ("http://127.0.0.1", "must give its port"),
            ("127.0.0.1", "must give its port"),
            ("a", "must give its port"),
            ("http://127.0.0.1:", "must give its port"),
            ("http://127.0.0.1:0", "invalid port"),
            ("http://127.0.0.1:65536", "invalid port"),
            ("http://127.0.0.1:+80", "invalid port"),
            ("http://127.0.0.1:http", "invalid port"),
            ("http://exa$mple:1", "invalid host name"),
        ] {
            let got = Endpoint::parse(s).map_err(|e| e.to_string());
            assert!(
                got.as_ref().is_err_and(|e| e.contains(why)),
                "{s:?}: {got:?}, want an error saying {why:?}"
            );
        }
    }

    #[test]
    fn endpoint_urls() {
        let url = |s: &str, tls| Endpoint::parse(s).unwrap().url(tls);
        assert_eq!(url("HTTPS://Etcd:2379/", false), "https://Etcd:2379");
        assert_eq!(url("http://a:1", true), "http://a:1");
        assert_eq!(url("a:1", true), "https://a:1");
        assert_eq!(url("a:1", false), "http://a:1");
        assert_eq!(url("[::1]:2379", false), "http://[::1]:2379");
    }

    #[test]
    fn bad_endpoints_are_invalid_config_naming_the_endpoint() {
        let e = err(r#"{"server_list":["127.0.0.1:2379","unix:///run/etcd.sock"]}"#);
        assert_eq!(e.code, Code::InvalidConfig);
        assert!(
            e.message
                .starts_with("invalid config field `server_list[1]`: \"unix:///run/etcd.sock\": "),
            "{}",
            e.message
        );
        let e = err(r#"{"server_list":["https://root:hunter2@127.0.0.1:2379"]}"#);
        assert!(!e.message.contains("hunter2"), "{}", e.message);
        assert!(
            e.message
                .starts_with("invalid config field `server_list[0]`: an endpoint must not"),
            "{}",
            e.message
        );
        for tokened in [
            "http://127.0.0.1:2379?token=hunter2",
            "http://127.0.0.1:2379#hunter2",
        ] {
            let e = err(&format!(r#"{{"server_list":["{tokened}"]}}"#));
            assert!(!e.message.contains("hunter2"), "{}", e.message);
            assert!(
                e.message.contains("\"http://127.0.0.1:2379\""),
                "{}",
                e.message
            );
        }
        let c = Config::from_json(r#"{"server_list":["HTTPS://127.0.0.1:2379"]}"#).unwrap();
        assert!(c.tls_enabled());
    }

    #[test]
    fn codec_kinds() {
        for (name, kind) in [
            ("json", CodecKind::Json),
            ("raw", CodecKind::Raw),
            ("protobuf", CodecKind::Protobuf),
        ] {
            let c = Config::from_json(&format!(r#"{{"server_list":["a:1"],"codec":"{name}"}}"#))
                .unwrap();
            assert_eq!(c.codec, kind);
        }
    }

    #[test]
    fn passwords_stay_out_of_debug_output() {
        let c = Config::from_json(
            r#"{"server_list":["a:1"],"username":"u","password":"hunter2hunter2"}"#,
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        let e = err(r#"{"server_list":["a:1"],"password":"hunter2hunter2"}"#);
        assert!(e.message.contains("username"), "{}", e.message);
        assert!(!e.message.contains("hunter2"));
        let e = err(r#"{"server_list":["a:1"],"username":"u","password":7}"#);
        assert!(!e.message.contains('7'), "{}", e.message);
    }

    #[test]
    fn empty_username_and_password_are_no_credentials() {
        for extra in [
            r#""username":"","password":"""#,
            r#""username":"","password":null"#,
            r#""username":"""#,
            r#""password":"""#,
        ] {
            let c = Config::from_json(&format!(r#"{{"server_list":["a:1"],{extra}}}"#)).unwrap();
            assert!(c.credentials().is_none(), "{extra}");
        }
        let c =
            Config::from_json(r#"{"server_list":["a:1"],"username":"u","password":"p"}"#).unwrap();
        let (user, password) = c.credentials().unwrap();
        assert_eq!((user, password.expose()), ("u", "p"));
    }

    #[test]
    fn files_are_read_up_to_one_mib() {
        use std::io::Write;
        let mut exact = tempfile::NamedTempFile::new().unwrap();
        exact.write_all(&vec![b'x'; MAX_FILE_BYTES]).unwrap();
        let path = exact.path().to_str().unwrap().to_owned();
        let path = path.as_str();
        assert_eq!(read_file("ca_file", path).unwrap().len(), MAX_FILE_BYTES);
        exact.write_all(b"y").unwrap();
        for path in [path, "/dev/zero"] {
            let e = read_file("ca_file", path).unwrap_err();
            assert_eq!(e.code, Code::InvalidConfig);
            assert_eq!(
                e.message,
                format!(
                    "invalid config field `ca_file`: {path:?}: the file is larger than 1 MiB, \
                     the limit for files the config names"
                )
            );
        }
        let e = read_file("key_file", "/nonexistent/key.pem").unwrap_err();
        assert_eq!(e.code, Code::InvalidConfig);
        assert!(
            e.message.starts_with(
                "invalid config field `key_file`: \"/nonexistent/key.pem\": cannot read it: "
            ),
            "{}",
            e.message
        );
    }

    #[test]
    fn parse_errors_name_the_field_and_never_quote_the_value() {
        const SECRET: &str = "hunter2-Zm9vYmFyYmF6cXV4";
        let key = format!(r#"{{"name":"k","secret":"{SECRET}"}}"#);
        for (field, value, path, what) in [
            (
                "quorum",
                format!(r#""{SECRET}""#),
                "quorum",
                "expected a boolean, got a string",
            ),
            (
                "paging",
                format!(r#"["{SECRET}"]"#),
                "paging",
                "expected a boolean, got an array",
            ),
            (
                "codec",
                format!(r#""{SECRET}""#),
                "codec",
                "unknown value, expected one of `json`, `raw`, `protobuf`",
            ),
            (
                "dial_timeout_ms",
                format!(r#""{SECRET}""#),
                "dial_timeout_ms",
                "expected u64, got a string",
            ),
            (
                "server_list",
                format!(r#""{SECRET}""#),
                "server_list",
                "expected a sequence, got a string",
            ),
            (
                "prefix",
                format!(r#"{{"p":"{SECRET}"}}"#),
                "prefix",
                "expected a string, got an object",
            ),
            (
                "username",
                format!(r#"["{SECRET}"]"#),
                "username",
                "expected a string, got an array",
            ),
            (
                "password",
                format!(r#"["{SECRET}"]"#),
                "password",
                "expected a string, got an array",
            ),
            (
                "transformer",
                format!(r#""{SECRET}""#),
                "transformer",
                "expected struct TransformerConfig, got a string",
            ),
            (
                "transformer",
                format!(r#"{{"providers":[{{"aesgcm":{{"keys":["{SECRET}"]}}}}]}}"#),
                "transformer.providers[0].aesgcm.keys[0]",
                "expected a key object {name, secret}, got a string",
            ),
            (
                "transformer",
                format!(r#"{{"providers":[{{"aescbc":{{"keys":{key}}}}}]}}"#),
                "transformer.providers[0].aescbc.keys",
                "expected a sequence, got an object",
            ),
            (
                "transformer",
                format!(r#"{{"providers":[{{"secretbox":"{SECRET}"}}]}}"#),
                "transformer.providers[0].secretbox",
                "expected struct KeysConfig, got a string",
            ),
            (
                "transformer",
                format!(
                    r#"{{"providers":[{{"aesgcm":{{"keys":[{{"name":"{SECRET}","secret":true}}]}}}}]}}"#
                ),
                "transformer.providers[0].aesgcm.keys[0].secret",
                "a secret must be a string",
            ),
        ] {
            let e = if field == "server_list" {
                err(&format!(r#"{{"{field}":{value}}}"#))
            } else {
                err(&format!(r#"{{"server_list":["a:1"],"{field}":{value}}}"#))
            };
            assert_eq!(e.code, Code::InvalidConfig);
            assert!(
                e.message
                    .starts_with(&format!("invalid config field `{path}`: ")),
                "{field}: {}",
                e.message
            );
            assert!(e.message.contains(what), "{field}: {}", e.message);
            assert!(!e.message.contains(SECRET), "{field}: {}", e.message);
            assert!(!e.message.contains("hunter2"), "{field}: {}", e.message);
        }
    }

    #[test]
    fn storage_types() {
        let e = err(r#"{"type":"consul","server_list":["a:1"]}"#);
        assert_eq!(e.message, "unknown storage type: consul");
        let c = Config::from_json(r#"{"type":"etcd2","server_list":["a:1"]}"#).unwrap();
        assert_eq!(c.storage_type().unwrap(), StorageType::Etcd2);
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn field() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("server_list".to_string()),
            Just("prefix".to_string()),
            Just("quorum".to_string()),
            Just("codec".to_string()),
            Just("type".to_string()),
            Just("dial_timeout_ms".to_string()),
            Just("transformer".to_string()),
            "[a-z_]{1,12}",
        ]
    }

    fn value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            ".{0,20}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map(field(), inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(crate::fuzz_config())]

        #[test]
        fn arbitrary_text_is_an_error_not_a_panic(text in ".{0,200}") {
            if let Err(e) = Config::from_json(&text) {
                prop_assert_eq!(e.code, crate::storage::Code::InvalidConfig);
            }
        }

        #[test]
        fn arbitrary_objects_are_validated(fields in prop::collection::btree_map(field(), value(), 0..8)) {
            let text = serde_json::to_string(&fields).unwrap();
            if let Ok(c) = Config::from_json(&text) {
                prop_assert!(!c.server_list.is_empty());
                prop_assert!(c.storage_type().is_ok());
            }
        }
    }
}
