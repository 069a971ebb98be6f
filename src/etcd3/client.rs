//! Building the etcd v3 client from a config (kube-apiserver's `newETCD3Client`).

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use etcd_client::{Certificate, Client, Identity, TlsOptions};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{Config, Scheme};
use crate::metrics::Call;
use crate::storage::{Code, Result, StorageError};

/// Makes one client per endpoint, each over its own lazily connected channel:
/// unlike Go's `WithBlock` dial this never waits for etcd, and requests made
/// while an endpoint is unreachable fail (and move on, see `Pool`) instead.
pub(crate) struct Dialer {
    tls: Option<TlsOptions>,
    dial_timeout: Duration,
    request_timeout: Duration,
    keepalive: (Duration, Duration),
}

impl Dialer {
    /// Reads and checks the TLS files; returns the dialer and the configured endpoints.
    pub fn new(config: &Config) -> Result<(Dialer, Vec<String>)> {
        let tls = tls_options(config)?;
        let urls = endpoints(config, tls.is_some())?;
        let dialer = Dialer {
            tls,
            dial_timeout: config.dial_timeout(),
            request_timeout: config.request_timeout(),
            keepalive: (config.keepalive_time(), config.keepalive_timeout()),
        };
        Ok((dialer, urls))
    }

    /// Whether the dialer speaks TLS.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    pub async fn client(&self, url: &str) -> Result<Client> {
        let bad = |e: &dyn Display| {
            StorageError::invalid_config(format!("invalid config field `server_list`: {url}: {e}"))
        };
        let mut endpoint = tonic::transport::Endpoint::from_shared(url.to_owned())
            .map_err(|e| bad(&e))?
            .connect_timeout(self.dial_timeout)
            .timeout(self.request_timeout)
            .http2_keep_alive_interval(self.keepalive.0)
            .keep_alive_timeout(self.keepalive.1)
            // Go's clientv3 pings only while streams are open (PermitWithoutStream=false).
            .keep_alive_while_idle(false);
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.clone()).map_err(|e| bad(&e))?;
        }
        let channel = etcd_client::Channel::Tonic(endpoint.connect_lazy());
        // Credentials are sent lazily (see `Pool`), so that creating a store
        // never waits for etcd; expired tokens are then refreshed by the client.
        let options = etcd_client::ConnectOptions::new().with_auto_token_refresh(true);
        Client::from_channel(channel, Some(options))
            .await
            .map_err(|e| bad(&e))
    }
}

/// TLS is on when an endpoint says `https://` or a TLS file is given, as in Go,
/// where any TLS file makes scheme-less endpoints secure.
fn tls_options(config: &Config) -> Result<Option<TlsOptions>> {
    if !tls_enabled(config) {
        return Ok(None);
    }
    let mut tls = TlsOptions::new();
    tls = if config.ca_file.is_empty() {
        tls.with_native_roots()
    } else {
        tls.ca_certificate(Certificate::from_pem(read_certs(
            &config.ca_file,
            "ca_file",
        )?))
    };
    if let Some(identity) = client_identity(config)? {
        tls = tls.identity(Identity::from_pem(identity.cert_pem, identity.key_pem));
    }
    Ok(Some(tls))
}

/// The configured endpoints as URLs; under TLS, a plaintext `http://` one is refused.
pub(crate) fn endpoints(config: &Config, tls: bool) -> Result<Vec<String>> {
    config
        .endpoints()?
        .iter()
        .zip(&config.server_list)
        .enumerate()
        .map(|(i, (e, s))| {
            if tls && e.scheme == Scheme::Http {
                Err(StorageError::invalid_config(format!(
                    "invalid config field `server_list[{i}]`: {s:?} is plaintext http but TLS is \
                     configured (an https:// endpoint or a TLS file is given); use https:// for \
                     every endpoint"
                )))
            } else {
                Ok(e.url(tls))
            }
        })
        .collect()
}

/// A client certificate and its private key, read from `cert_file` and
/// `key_file` and checked to belong together.
pub(crate) struct ClientIdentity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub certs: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// Reads `cert_file` and `key_file` (both backends): `None` without a client
/// certificate; `InvalidConfig` when either is unreadable or not PEM, when the
/// key is of a type TLS cannot use, or when the key is not the certificate's.
pub(crate) fn client_identity(config: &Config) -> Result<Option<ClientIdentity>> {
    use tokio_rustls::rustls::crypto::ring::default_provider;
    use tokio_rustls::rustls::sign::CertifiedKey;
    use tokio_rustls::rustls::{Error as TlsError, InconsistentKeys};
    if config.cert_file.is_empty() {
        return Ok(None);
    }
    let (cert_file, key_file) = (&config.cert_file, &config.key_file);
    let cert_pem = read_certs(cert_file, "cert_file")?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad_pem("cert_file", cert_file, e))?;
    let key_pem = read_pem(key_file, "key_file")?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| bad_pem("key_file", key_file, "no private key found"))?;
    let signing_key = default_provider()
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| {
            StorageError::invalid_config(format!(
                "invalid config field `key_file`: {key_file}: unusable private key: {e}"
            ))
        })?;
    match CertifiedKey::new(certs.clone(), signing_key).keys_match() {
        Ok(()) | Err(TlsError::InconsistentKeys(InconsistentKeys::Unknown)) => {}
        Err(TlsError::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            return Err(StorageError::invalid_config(format!(
                "invalid config fields `cert_file`/`key_file`: the certificate and the key do \
                 not match: the private key in {key_file} is not the key of the certificate in \
                 {cert_file}"
            )))
        }
        Err(e) => {
            return Err(StorageError::invalid_config(format!(
                "invalid config field `cert_file`: {cert_file}: unusable certificate: {e}"
            )))
        }
    }
    Ok(Some(ClientIdentity {
        cert_pem,
        key_pem,
        certs,
        key,
    }))
}

pub(crate) fn read_pem(path: &str, field: &str) -> Result<Vec<u8>> {
    crate::config::read_file(field, path)
}

pub(crate) fn read_certs(path: &str, field: &str) -> Result<Vec<u8>> {
    let pem = read_pem(path, field)?;
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        cert.map_err(|e| bad_pem(field, path, e))?;
        count += 1;
    }
    if count == 0 {
        return Err(bad_pem(field, path, "no certificate found"));
    }
    Ok(pem)
}

pub(crate) fn bad_pem(field: &str, path: &str, why: impl Display) -> StorageError {
    StorageError::invalid_config(format!(
        "invalid config field `{field}`: {path} is not valid PEM: {why}"
    ))
}

/// How requests are made: their deadline, and whether the client speaks TLS
/// (so connection failures can be explained as TLS problems).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rpc {
    pub timeout: Duration,
    pub tls: bool,
    /// Whether we present a client certificate: a server's rejection means
    /// "send one" without, "not this one" with.
    pub client_cert: bool,
}

impl Rpc {
    pub fn new(config: &Config, timeout: Duration) -> Self {
        Rpc {
            timeout,
            tls: tls_enabled(config),
            client_cert: !config.cert_file.is_empty(),
        }
    }
}

pub(crate) fn tls_enabled(config: &Config) -> bool {
    config.tls_enabled()
}

/// How a failed request failed, which decides whether it may be retried.
pub(crate) enum Failure {
    /// The request never left: no connection could be made.
    NotSent(StorageError),
    /// The connection failed: the request may or may not have been applied.
    Connection(StorageError),
    /// The endpoint is not an etcd gRPC server (an HTTP/1.1 server, a plaintext
    /// port of a TLS server, another gRPC service): the request was not
    /// served, and asking this endpoint again cannot help, another one may.
    WrongPeer(StorageError),
    /// etcd answered with an error, or the problem is not the connection.
    Final(StorageError),
}

impl Failure {
    pub fn error(&self) -> &StorageError {
        match self {
            Failure::NotSent(e)
            | Failure::Connection(e)
            | Failure::WrongPeer(e)
            | Failure::Final(e) => e,
        }
    }

    pub fn into_error(self) -> StorageError {
        match self {
            Failure::NotSent(e)
            | Failure::Connection(e)
            | Failure::WrongPeer(e)
            | Failure::Final(e) => e,
        }
    }

    /// Whether the same request may work later: etcd unreachable, restarting
    /// or overloaded. Everything else would only fail again.
    pub fn may_heal(&self) -> bool {
        matches!(self, Failure::NotSent(_) | Failure::Connection(_))
    }
}

/// Runs one etcd request to the endpoint `url` within `timeout`, counting its
/// outcome on `call`; on success the call is handed back for the caller to
/// finish (a unary request) or to follow (a stream).
pub(crate) async fn attempt<'m, T>(
    rpc: Rpc,
    url: &str,
    timeout: Duration,
    call: Call<'m>,
    request: impl Future<Output = std::result::Result<T, etcd_client::Error>>,
) -> std::result::Result<(T, Call<'m>), Failure> {
    match tokio::time::timeout(timeout, request).await {
        Ok(Ok(value)) => Ok((value, call)),
        Ok(Err(e)) => {
            call.finish(grpc_code(&e));
            Err(classify(&e, rpc, url))
        }
        Err(_) => {
            call.finish(tonic::Code::DeadlineExceeded);
            Err(Failure::Connection(StorageError::new(
                Code::Timeout,
                format!("etcd request timed out after {} ms", timeout.as_millis()),
            )))
        }
    }
}

/// The gRPC code a failed request ended with, as grpc-go would report it:
/// a connection that failed below gRPC is `Unavailable` (tonic may call it
/// `Unknown`, `Internal` or `Cancelled`, with the transport error as its
/// source), and tonic's per-request timeout is `DeadlineExceeded`.
pub(crate) fn grpc_code(e: &etcd_client::Error) -> tonic::Code {
    use etcd_client::Error as E;
    use tonic::Code as G;
    match e {
        // tonic's own per-request timeout, which grpc-go reports as a deadline.
        E::GRpcStatus(s) if s.code() == G::Cancelled && chain(e).contains("Timeout expired") => {
            G::DeadlineExceeded
        }
        // A failure below gRPC, which tonic reports as Unknown, Internal or
        // (a dropped connection) Cancelled.
        E::GRpcStatus(s)
            if matches!(s.code(), G::Unknown | G::Internal | G::Cancelled)
                && std::error::Error::source(s).is_some() =>
        {
            G::Unavailable
        }
        E::GRpcStatus(s) => s.code(),
        E::TransportError(_) | E::IoError(_) => tonic::Code::Unavailable,
        _ => tonic::Code::Unknown,
    }
}

/// The whole chain of causes: tonic hides the useful part (a TLS alert, a
/// refused connection) in `source()`.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let next = c.to_string();
        if !text.contains(&next) {
            text = format!("{text}: {next}");
        }
        cause = c.source();
    }
    text
}

/// Names the TLS problem behind a connection failure, when there is one.
pub(crate) fn tls_problem(detail: &str, client_cert: bool) -> Option<&'static str> {
    let has = |s: &str| detail.contains(s);
    // With TLS 1.3 the server checks our certificate after the handshake: its
    // alert may arrive, or only the closed connection (hyper's HTTP/1 pool
    // reports that as a connection that was not ready).
    let rejected = [
        "BadCertificate",
        "UnknownCA",
        "CertificateRequired",
        "broken pipe",
        "connection closed",
        "connection was not ready",
    ];
    Some(if has("invalid peer certificate") {
        "TLS: the server's certificate is not trusted (check ca_file, and that the certificate names this host)"
    } else if rejected.iter().any(|r| has(r)) {
        if client_cert {
            "TLS: the server rejected our client certificate (is cert_file signed by a CA the server trusts?)"
        } else {
            "TLS: the server requires a client certificate: set cert_file and key_file"
        }
    } else if [
        "tls handshake eof",
        "tls handshake failed",
        "InvalidContentType",
        "corrupt message",
    ]
    .iter()
    .any(|m| has(m))
    {
        "TLS: the handshake failed: the server did not answer as a TLS server (is it plaintext? use http://)"
    } else {
        return None;
    })
}

/// The numbers in grpc-go's `received message larger than max (N vs. LIMIT)`.
fn sizes(message: &str) -> Option<(u64, u64)> {
    let inner = message.rsplit_once('(')?.1.strip_suffix(')')?;
    let (found, limit) = inner.split_once(" vs. ")?;
    Some((found.trim().parse().ok()?, limit.trim().parse().ok()?))
}

/// A request or an answer over a message size limit: asking again, here or
/// elsewhere, can only fail the same way. `None` when `status` is not that.
fn too_large(status: &tonic::Status, detail: &str) -> Option<StorageError> {
    use tonic::Code as G;
    let message = status.message();
    let text = match status.code() {
        // etcd's own check, at --max-request-bytes.
        G::InvalidArgument if message.contains("request is too large") => {
            "the request is too large for etcd: over its request size limit \
             (etcd's --max-request-bytes, 1572864 bytes = 1.5 MiB by default)"
                .to_owned()
        }
        // grpc-go in etcd, at --max-request-bytes plus 512 KiB.
        G::ResourceExhausted if message.contains("received message larger than max") => {
            match sizes(message) {
                Some((found, limit)) => format!(
                    "the request is too large for etcd: {found} bytes, over etcd's gRPC message \
                     limit of {limit} bytes (--max-request-bytes, 1.5 MiB by default, plus 512 KiB)"
                ),
                None => "the request is too large for etcd: over etcd's gRPC message limit \
                         (--max-request-bytes, 1.5 MiB by default, plus 512 KiB)"
                    .to_owned(),
            }
        }
        G::ResourceExhausted if message.contains("trying to send message larger than max") => {
            "etcd's answer is too large: over etcd's gRPC send limit".to_owned()
        }
        // tonic in this client: `... message length too large: found N bytes,
        // the limit is: LIMIT bytes` (4 MiB for answers by default).
        G::OutOfRange | G::ResourceExhausted if message.contains("message length too large") => {
            let what = if message.contains("decoded") {
                "etcd's answer is too large for this client's gRPC message limit"
            } else {
                "the request is too large for this client's gRPC message limit"
            };
            format!("{what}: {message}")
        }
        _ => return None,
    };
    Some(StorageError::new(
        Code::InvalidArgument,
        format!("{text}: {detail}"),
    ))
}

/// Whether `detail` says the peer did not speak HTTP/2 or gRPC: an HTTP/1.1
/// answer (`HTTP/1.1 400 ...` read as a frame header is a frame far over the
/// size limit) or other bytes that are no HTTP/2 frames.
fn not_http2(detail: &str) -> bool {
    ["FRAME_SIZE_ERROR, Library", "PROTOCOL_ERROR, Library"]
        .iter()
        .any(|m| detail.contains(m))
}

fn wrong_peer(url: &str, detail: &str) -> Failure {
    Failure::WrongPeer(StorageError::new(
        Code::Unreachable,
        format!(
            "etcd at {url} did not answer as an etcd gRPC server (is it etcd's client URL? \
             an HTTP/1.1 server, or a TLS server asked in plaintext, answers so; \
             check server_list and http:// versus https://): {detail}"
        ),
    ))
}

/// An error of etcd's own that retrying does not heal and that names no
/// mistake of the caller's (a full database, a corrupt cluster, a lease gone).
fn refused(url: &str, detail: &str) -> Failure {
    Failure::Final(StorageError::new(
        Code::Unreachable,
        format!("etcd at {url} failed the request: {detail}"),
    ))
}

/// Maps a failed request to a code and says whether it may be retried.
/// `Code::Internal` is kept for failures inside this library (a client-side
/// error that only a wrong request built here can cause).
pub(crate) fn classify(e: &etcd_client::Error, rpc: Rpc, url: &str) -> Failure {
    use etcd_client::Error as E;
    use tonic::Code as G;
    let detail = chain(e);
    if rpc.tls {
        if let Some(problem) = tls_problem(&detail, rpc.client_cert) {
            // Another endpoint would fail the same way: not worth the deadline.
            return Failure::Final(StorageError::new(
                Code::Unreachable,
                format!("{problem}: {url}: {detail}"),
            ));
        }
    }
    let not_sent = [
        "error trying to connect",
        "tcp connect error",
        "Connection refused",
        "dns error",
    ];
    if not_sent.iter().any(|n| detail.contains(n)) {
        return Failure::NotSent(StorageError::new(Code::Unreachable, detail));
    }
    if not_http2(&detail) {
        return wrong_peer(url, &detail);
    }
    let connection = |code| Failure::Connection(StorageError::new(code, detail.clone()));
    match e {
        E::GRpcStatus(s) => {
            if let Some(error) = too_large(s, &detail) {
                return Failure::Final(error);
            }
            let has_source = std::error::Error::source(s).is_some();
            match s.code() {
                G::Unavailable => connection(Code::Unreachable),
                // A transport failure below gRPC (h2, hyper): tonic calls a
                // broken connection `Unknown` or, for some h2 errors, `Internal`.
                G::Unknown | G::Internal if has_source => connection(Code::Unreachable),
                // tonic reports its per-request timeout, and a dropped connection, as Cancelled.
                G::DeadlineExceeded | G::Cancelled => connection(Code::Timeout),
                G::OutOfRange if s.message().contains("required revision has been compacted") => {
                    Failure::Final(StorageError::new(Code::Expired, detail))
                }
                G::OutOfRange
                    if s.message()
                        .contains("required revision is a future revision") =>
                {
                    Failure::Final(StorageError::new(Code::Timeout, detail))
                }
                G::InvalidArgument if s.message().contains("authentication failed") => {
                    Failure::Final(StorageError::invalid_config(format!(
                        "etcd authentication failed (check username and password): {detail}"
                    )))
                }
                G::InvalidArgument if s.message().contains("user name is empty") => {
                    Failure::Final(StorageError::invalid_config(format!(
                        "etcd requires authentication: set username and password: {detail}"
                    )))
                }
                // An auth token that expired or a revision of etcd's auth
                // store that moved on: the client logs in again.
                G::Unauthenticated => Failure::NotSent(StorageError::new(
                    Code::PermissionDenied,
                    format!("etcd did not accept the client's authentication token: {detail}"),
                )),
                G::InvalidArgument if s.message().contains("revision of auth store is old") => {
                    Failure::NotSent(StorageError::new(Code::Unreachable, detail))
                }
                G::PermissionDenied => Failure::Final(StorageError::new(
                    Code::PermissionDenied,
                    format!("etcd denied the configured user this operation: {detail}"),
                )),
                G::InvalidArgument | G::OutOfRange => {
                    Failure::Final(StorageError::new(Code::InvalidArgument, detail))
                }
                // etcd turned the request away unapplied, and says to come back:
                // overloaded (`too many requests`), or not the leader.
                G::ResourceExhausted if s.message().contains("too many requests") => {
                    Failure::NotSent(StorageError::new(Code::Timeout, detail))
                }
                G::FailedPrecondition if s.message().contains("not leader") => {
                    Failure::NotSent(StorageError::new(Code::Unreachable, detail))
                }
                // A gRPC server without etcd's services, or an HTTP/2 server
                // answering 404.
                G::Unimplemented => wrong_peer(url, &detail),
                // Every other answer is etcd's own failure (`database space
                // exceeded`, `corrupt cluster`, `requested lease not found`, an
                // error it sends as Unknown), or a peer's that is no etcd.
                _ => refused(url, &detail),
            }
        }
        E::TransportError(_) | E::IoError(_) => connection(Code::Unreachable),
        _ => Failure::Final(StorageError::new(Code::Internal, detail)),
    }
}

/// clientv3's `GetPrefixRangeEnd`: the first key after every key starting with `prefix`.
pub(crate) fn prefix_range_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte is 0xff: the range runs to the end of the keyspace.
    vec![0]
}
