//! The etcd v2 HTTP JSON client (the parts of Go's `coreos/etcd/client` keys
//! and members APIs that kube-apiserver's etcd2 storage used): the config's
//! endpoints, TLS files and timeouts, failing over between endpoints.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::config::Config;
use crate::etcd3::{
    bad_pem, chain, client_identity, endpoints, read_certs, tls_enabled, tls_problem,
};
use crate::storage::{Code, Result, StorageError};

/// A node of etcd's v2 keyspace, as its JSON API returns it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Node {
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub dir: bool,
    #[serde(default)]
    pub nodes: Vec<Node>,
    #[serde(default)]
    pub modified_index: i64,
    /// Seconds left to live, when the key has a TTL.
    #[serde(default)]
    pub ttl: Option<i64>,
}

/// A successful `/v2/keys` answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Response {
    pub action: String,
    pub node: Node,
    #[serde(default)]
    pub prev_node: Option<Node>,
    /// The store's index when the request was served (`X-Etcd-Index`).
    #[serde(skip)]
    pub index: i64,
}

/// An error etcd answered with (`{"errorCode":100,"message":…}`).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EtcdError {
    pub error_code: i64,
    pub message: String,
    #[serde(default)]
    pub cause: String,
    #[serde(default)]
    pub index: i64,
}

/// v2 error codes (`etcd/error/error.go`) the store interprets.
pub(crate) const KEY_NOT_FOUND: i64 = 100;
pub(crate) const TEST_FAILED: i64 = 101;
pub(crate) const NODE_EXIST: i64 = 105;
pub(crate) const EVENT_INDEX_CLEARED: i64 = 401;

impl std::fmt::Display for EtcdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "etcd v2 error {}: {} ({}) [{}]",
            self.error_code, self.message, self.cause, self.index
        )
    }
}

/// What a `/v2/keys` request gives: etcd's answer or its error. Transport
/// failures are the outer `Result`.
pub(crate) type KeysResult = std::result::Result<Response, EtcdError>;

/// How long an idle connection is kept for reuse (Go's `DefaultTransport`'s).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

pub(crate) struct Client {
    http: HttpClient<Connector, Full<Bytes>>,
    endpoints: Vec<String>,
    /// The endpoint that answered last: requests start there.
    current: AtomicUsize,
    authorization: Option<HeaderValue>,
    tls: bool,
    client_cert: bool,
}

/// How a request failed on one endpoint.
pub(crate) enum Failure {
    /// No connection could be made: another endpoint may be tried.
    NotSent(StorageError),
    /// The connection broke after the request was sent: it may have applied.
    Sent(StorageError),
    /// The endpoint is not an etcd v2 server: another endpoint may be tried,
    /// asking this one again cannot help.
    WrongPeer(StorageError),
    /// Every endpoint would fail the same way (TLS setup, credentials, a
    /// request that cannot be sent).
    Final(StorageError),
}

impl Failure {
    pub fn into_error(self) -> StorageError {
        match self {
            Failure::NotSent(e) | Failure::Sent(e) | Failure::WrongPeer(e) | Failure::Final(e) => e,
        }
    }

    /// The same failure with its error rewritten by `f`.
    pub fn map(self, f: impl FnOnce(StorageError) -> StorageError) -> Failure {
        match self {
            Failure::NotSent(e) => Failure::NotSent(f(e)),
            Failure::Sent(e) => Failure::Sent(f(e)),
            Failure::WrongPeer(e) => Failure::WrongPeer(f(e)),
            Failure::Final(e) => Failure::Final(f(e)),
        }
    }

    /// Whether the same request may work later (etcd unreachable, restarting
    /// or slow); everything else would only fail again.
    pub fn may_heal(&self) -> bool {
        matches!(self, Failure::NotSent(_) | Failure::Sent(_))
    }
}

impl Client {
    pub fn new(config: &Config) -> Result<Client> {
        let tls = tls_config(config)?;
        let urls = endpoints(config, tls.is_some())?;
        for url in &urls {
            url.parse::<Uri>().map_err(|e| {
                StorageError::invalid_config(format!(
                    "invalid config field `server_list`: {url}: {e}"
                ))
            })?;
        }
        let authorization = match config.credentials() {
            Some((username, password)) => {
                let basic = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose()));
                let mut value = HeaderValue::from_str(&format!("Basic {basic}")).map_err(|_| {
                    StorageError::invalid_config(
                        "invalid config fields `username`/`password`: not valid in an HTTP header",
                    )
                })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let connector = Connector {
            tls: tls.map(TlsConnector::from),
            dial_timeout: config.dial_timeout(),
        };
        let http = HttpClient::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        Ok(Client {
            http,
            endpoints: urls
                .into_iter()
                .map(|u| u.trim_end_matches('/').to_owned())
                .collect(),
            current: AtomicUsize::new(0),
            authorization,
            tls: tls_enabled(config),
            client_cert: !config.cert_file.is_empty(),
        })
    }

    /// A `/v2/keys` request for the full etcd `key`; `query` and `form` are
    /// `(name, value)` pairs.
    pub async fn keys(
        &self,
        method: Method,
        key: &str,
        query: &[(&str, String)],
        form: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<KeysResult> {
        self.try_keys(method, key, query, form, timeout)
            .await
            .map_err(Failure::into_error)
    }

    /// `keys`, telling a failure that may pass (`Failure::may_heal`) from one
    /// that would only repeat.
    pub async fn try_keys(
        &self,
        method: Method,
        key: &str,
        query: &[(&str, String)],
        form: &[(&str, &str)],
        timeout: Duration,
    ) -> std::result::Result<KeysResult, Failure> {
        let body = (!form.is_empty()).then(|| encode_pairs(form.iter().copied()));
        let reply = self
            .send(method, &keys_path(key, query), body, timeout, None)
            .await?;
        keys_result(&reply, &reply.body.clone().unwrap_or_default()).map_err(Failure::Final)
    }

    /// A watch poll (`wait=true` in `query`): etcd's answer, or, when none
    /// comes within `poll`, `Quiet` with etcd's index when the poll began.
    pub async fn wait(
        &self,
        key: &str,
        query: &[(&str, String)],
        poll: Duration,
        timeout: Duration,
    ) -> std::result::Result<Waited, Failure> {
        let reply = self
            .send(
                Method::GET,
                &keys_path(key, query),
                None,
                poll + timeout,
                Some(poll),
            )
            .await?;
        match &reply.body {
            Some(body) => Ok(Waited::Answer(Box::new(
                keys_result(&reply, body).map_err(Failure::Final)?,
            ))),
            None => Ok(Waited::Quiet { index: reply.index }),
        }
    }

    /// Lists the cluster's members (Go's `MembersAPI.List`).
    pub async fn members(&self, timeout: Duration) -> Result<()> {
        let reply = self
            .send(Method::GET, "/v2/members", None, timeout, None)
            .await
            .map_err(Failure::into_error)?;
        let body = reply.body.clone().unwrap_or_default();
        let endpoint = &reply.endpoint;
        if !reply.status.is_success() {
            return Err(StorageError::new(
                Code::Unreachable,
                format!(
                    "etcd at {endpoint} answered {}: {}",
                    reply.status,
                    String::from_utf8_lossy(&body)
                ),
            ));
        }
        let list: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            StorageError::new(
                Code::Unreachable,
                format!("etcd at {endpoint} sent an unreadable member list: {e}"),
            )
        })?;
        if list["members"].is_array() {
            Ok(())
        } else {
            Err(StorageError::new(
                Code::Unreachable,
                format!("etcd at {endpoint} sent a member list without members: {list}"),
            ))
        }
    }

    /// Sends one request within `timeout`, moving on to the next endpoint when
    /// one cannot be reached (and, for reads, when the connection breaks).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        timeout: Duration,
        poll: Option<Duration>,
    ) -> std::result::Result<Reply, Failure> {
        let idempotent = method == Method::GET;
        let all = async {
            let n = self.endpoints.len();
            let first = self.current.load(Ordering::Relaxed);
            let mut last = None;
            for i in 0..n {
                let at = (first + i) % n;
                match self.send_to(at, &method, path, body.clone(), poll).await {
                    Ok(answer) => {
                        self.current.store(at, Ordering::Relaxed);
                        return Ok(answer);
                    }
                    Err(f @ (Failure::NotSent(_) | Failure::WrongPeer(_))) => last = Some(f),
                    Err(f @ Failure::Sent(_)) if idempotent => last = Some(f),
                    Err(f @ (Failure::Sent(_) | Failure::Final(_))) => return Err(f),
                }
            }
            Err(last.unwrap_or_else(|| {
                Failure::Final(StorageError::internal("no etcd endpoint configured"))
            }))
        };
        match tokio::time::timeout(timeout, all).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Sent(StorageError::new(
                Code::Timeout,
                format!("etcd request timed out after {} ms", timeout.as_millis()),
            ))),
        }
    }

    /// One request to one endpoint. With `poll`, a body that does not come
    /// within it is `None` (etcd sends a watch's headers at once, its body
    /// with the event).
    async fn send_to(
        &self,
        at: usize,
        method: &Method,
        path: &str,
        body: Option<String>,
        poll: Option<Duration>,
    ) -> std::result::Result<Reply, Failure> {
        let endpoint = &self.endpoints[at];
        let mut request = Request::builder()
            .method(method.clone())
            .uri(format!("{endpoint}{path}"));
        if let Some(auth) = &self.authorization {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| Failure::Final(request_error(path, e)))?;
        let response = self.http.request(request).await.map_err(|e| {
            let detail = format!("{endpoint}: {}", chain(&e));
            if let Some(problem) = tls_problem(&detail, self.client_cert).filter(|_| self.tls) {
                return Failure::Final(StorageError::new(
                    Code::Unreachable,
                    format!("{problem}: {detail}"),
                ));
            }
            let connect = e.is_connect();
            let e = StorageError::new(Code::Unreachable, detail);
            if connect {
                Failure::NotSent(e)
            } else {
                Failure::Sent(e)
            }
        })?;
        let status = response.status();
        let has_cluster_id = response.headers().contains_key("X-Etcd-Cluster-Id");
        let index = response
            .headers()
            .get("X-Etcd-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let collect = response.into_body().collect();
        let collected = match poll {
            None => Some(collect.await),
            Some(poll) => tokio::time::timeout(poll, collect).await.ok(),
        };
        let body = collected
            .transpose()
            .map_err(|e| {
                Failure::Sent(StorageError::new(
                    Code::Unreachable,
                    format!("{endpoint}: {}", chain(&e)),
                ))
            })?
            .map(|c| c.to_bytes());
        if status == hyper::StatusCode::UNAUTHORIZED {
            // etcd's v2 auth answers both with a bare 401.
            let text = body
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            return Err(Failure::Final(StorageError::new(
                Code::PermissionDenied,
                format!(
                    "etcd refused the request: wrong username or password, or the user may not \
                     access this key ({endpoint} answered 401: {})",
                    text.trim()
                ),
            )));
        }
        // etcd names its cluster in every answer of its v2 API.
        if !has_cluster_id {
            let text = body
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let text: String = text.trim().chars().take(200).collect();
            return Err(Failure::WrongPeer(StorageError::new(
                Code::Unreachable,
                format!(
                    "etcd at {endpoint} did not answer as an etcd v2 server (is it etcd's client \
                     URL, started with --enable-v2? check server_list and http:// versus https://): \
                     it answered {status}: {text}"
                ),
            )));
        }
        Ok(Reply {
            endpoint: endpoint.clone(),
            status,
            index,
            body,
        })
    }
}

/// What one endpoint answered.
struct Reply {
    endpoint: String,
    status: hyper::StatusCode,
    /// `X-Etcd-Index`: the store's index when etcd began serving the request.
    index: i64,
    /// `None`: a poll whose answer did not come in time.
    body: Option<Bytes>,
}

/// What a watch poll gives.
pub(crate) enum Waited {
    Answer(Box<KeysResult>),
    /// Nothing changed under the key between the poll's `waitIndex` and `index`.
    Quiet {
        index: i64,
    },
}

fn keys_path(key: &str, query: &[(&str, String)]) -> String {
    let mut path = format!("/v2/keys{}", escape(key, true));
    if !query.is_empty() {
        path.push('?');
        path.push_str(&encode_pairs(query.iter().map(|(k, v)| (*k, v.as_str()))));
    }
    path
}

/// Reads a `/v2/keys` answer: etcd's response or its error. An answer that
/// is neither comes from something that is no etcd v2 server (it named an
/// etcd cluster, a proxy, say), not from a fault of ours.
fn keys_result(reply: &Reply, body: &[u8]) -> Result<KeysResult> {
    let (status, endpoint) = (reply.status, &reply.endpoint);
    let unreadable = |why: String| {
        StorageError::new(
            Code::Unreachable,
            format!("etcd at {endpoint} sent an unreadable v2 answer ({status}): {why}"),
        )
    };
    if status.is_success() {
        let mut resp: Response =
            serde_json::from_slice(body).map_err(|e| unreadable(e.to_string()))?;
        resp.index = reply.index;
        Ok(Ok(resp))
    } else {
        serde_json::from_slice::<EtcdError>(body)
            .map(Err)
            .map_err(|_| unreadable(String::from_utf8_lossy(body).into_owned()))
    }
}

/// A request that cannot even be built: in practice a key too long for a
/// URL (the `http` crate's limit is 65534 bytes), which no retry can help.
fn request_error(path: &str, e: hyper::http::Error) -> StorageError {
    if path.len() >= u16::MAX as usize - 1 {
        StorageError::invalid_argument(format!(
            "the request is too large for etcd's v2 API: its URL would be {} bytes, over the \
             limit of 65534 bytes (the key is too long): {e}",
            path.len()
        ))
    } else {
        StorageError::invalid_argument(format!("the request cannot be sent: {e}"))
    }
}

/// The rustls config for the TLS files, as etcd3's client reads them.
fn tls_config(config: &Config) -> Result<Option<Arc<ClientConfig>>> {
    if !tls_enabled(config) {
        return Ok(None);
    }
    let mut roots = RootCertStore::empty();
    if config.ca_file.is_empty() {
        for cert in rustls_native_certs::load_native_certs().certs {
            // A system certificate rustls cannot use is no reason to fail.
            let _ = roots.add(cert);
        }
    } else {
        for cert in CertificateDer::pem_slice_iter(&read_certs(&config.ca_file, "ca_file")?) {
            let cert = cert.map_err(|e| bad_pem("ca_file", &config.ca_file, e))?;
            roots
                .add(cert)
                .map_err(|e| bad_pem("ca_file", &config.ca_file, e))?;
        }
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StorageError::internal(format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots);
    let tls = match client_identity(config)? {
        None => builder.with_no_client_auth(),
        Some(identity) => builder
            .with_client_auth_cert(identity.certs, identity.key)
            .map_err(|e| {
                StorageError::invalid_config(format!(
                    "invalid config fields `cert_file`/`key_file`: {e}"
                ))
            })?,
    };
    Ok(Some(Arc::new(tls)))
}

/// Percent-encodes `s` for a URL path (keeping `/`) or a form value.
fn escape(s: &str, path: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (path && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encode_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .map(|(k, v)| format!("{k}={}", escape(v, false)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Dials an endpoint: TCP within the dial timeout, then TLS for `https`.
#[derive(Clone)]
struct Connector {
    tls: Option<TlsConnector>,
    dial_timeout: Duration,
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_owned());
            let host = uri
                .host()
                .ok_or_else(|| invalid("endpoint has no host"))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let https = uri.scheme_str() == Some("https");
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            let tcp =
                tokio::time::timeout(this.dial_timeout, TcpStream::connect((host.as_str(), port)))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "dial timeout"))??;
            tcp.set_nodelay(true)?;
            if !https {
                return Ok(TokioIo::new(Stream::Plain(tcp)));
            }
            let tls = this
                .tls
                .ok_or_else(|| invalid("https endpoint without TLS settings"))?;
            let name = ServerName::try_from(host).map_err(|e| invalid(&e.to_string()))?;
            // Marked, so a reset from a plaintext server is explained as TLS.
            let stream = tls
                .connect(name, tcp)
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("tls handshake failed: {e}")))?;
            Ok(TokioIo::new(Stream::Tls(Box::new(stream))))
        })
    }
}

/// A connection to an endpoint, plaintext or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_are_percent_encoded() {
        assert_eq!(
            escape("/registry/a b/c?d#e%", true),
            "/registry/a%20b/c%3Fd%23e%25"
        );
        assert_eq!(
            encode_pairs([("value", "{\"a\":\"x&y=/\"}"), ("ttl", "2")].into_iter()),
            "value=%7B%22a%22%3A%22x%26y%3D%2F%22%7D&ttl=2"
        );
    }
}
