//! Go's `envelope/grpc_service.go` and `kmsv2/grpc_service.go`: the gRPC
//! clients of a KMS plugin, on a unix socket, each call bounded by the
//! provider's timeout. The messages are those of `k8s.io/kms/apis`.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint};
use tonic_prost::ProstCodec;

use super::super::{Cause, TransformError};
use super::metrics::KmsMetrics;

/// `v2.KeyManagementService` (`k8s.io/kms/apis/v2/api.proto`).
pub(crate) mod v2 {
    use super::BTreeMap;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StatusRequest {}

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StatusResponse {
        #[prost(string, tag = "1")]
        pub version: String,
        #[prost(string, tag = "2")]
        pub healthz: String,
        #[prost(string, tag = "3")]
        pub key_id: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DecryptRequest {
        #[prost(bytes = "vec", tag = "1")]
        pub ciphertext: Vec<u8>,
        #[prost(string, tag = "2")]
        pub uid: String,
        #[prost(string, tag = "3")]
        pub key_id: String,
        #[prost(btree_map = "string, bytes", tag = "4")]
        pub annotations: BTreeMap<String, Vec<u8>>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DecryptResponse {
        #[prost(bytes = "vec", tag = "1")]
        pub plaintext: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EncryptRequest {
        #[prost(bytes = "vec", tag = "1")]
        pub plaintext: Vec<u8>,
        #[prost(string, tag = "2")]
        pub uid: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EncryptResponse {
        #[prost(bytes = "vec", tag = "1")]
        pub ciphertext: Vec<u8>,
        #[prost(string, tag = "2")]
        pub key_id: String,
        #[prost(btree_map = "string, bytes", tag = "3")]
        pub annotations: BTreeMap<String, Vec<u8>>,
    }

    pub const STATUS: &str = "/v2.KeyManagementService/Status";
    pub const DECRYPT: &str = "/v2.KeyManagementService/Decrypt";
    pub const ENCRYPT: &str = "/v2.KeyManagementService/Encrypt";
}

/// `v1beta1.KeyManagementService` (`k8s.io/kms/apis/v1beta1/api.proto`).
pub(crate) mod v1beta1 {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct VersionRequest {
        #[prost(string, tag = "1")]
        pub version: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct VersionResponse {
        #[prost(string, tag = "1")]
        pub version: String,
        #[prost(string, tag = "2")]
        pub runtime_name: String,
        #[prost(string, tag = "3")]
        pub runtime_version: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DecryptRequest {
        #[prost(string, tag = "1")]
        pub version: String,
        #[prost(bytes = "vec", tag = "2")]
        pub cipher: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DecryptResponse {
        #[prost(bytes = "vec", tag = "1")]
        pub plain: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EncryptRequest {
        #[prost(string, tag = "1")]
        pub version: String,
        #[prost(bytes = "vec", tag = "2")]
        pub plain: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EncryptResponse {
        #[prost(bytes = "vec", tag = "1")]
        pub cipher: Vec<u8>,
    }

    pub const VERSION: &str = "/v1beta1.KeyManagementService/Version";
    pub const DECRYPT: &str = "/v1beta1.KeyManagementService/Decrypt";
    pub const ENCRYPT: &str = "/v1beta1.KeyManagementService/Encrypt";
}

/// Go's `util.ParseEndpoint`: `unix:///path`, or `unix:///@name` for a Linux
/// abstract socket; nothing else.
pub(crate) fn socket_path(endpoint: &str) -> Result<String, String> {
    let rest = endpoint.strip_prefix("unix://").ok_or_else(|| {
        let scheme = endpoint.split_once("://").map_or("", |(s, _)| s);
        format!("unsupported scheme {scheme:?} for KMS provider")
    })?;
    // The authority (empty in `unix:///path`) is not part of the path.
    let path = match rest.find('/') {
        Some(i) => &rest[i..],
        None => "",
    };
    if path.is_empty() || path == "/" {
        return Err(format!("invalid endpoint {endpoint:?}: no socket path"));
    }
    Ok(path
        .strip_prefix("/@")
        .map_or(path.to_owned(), |name| format!("@{name}")))
}

/// One plugin's channel: connected lazily, so a plugin started after the
/// store is found by the first call that needs it.
pub(crate) struct Plugin {
    /// The provider's name, for messages and metrics.
    pub provider: String,
    /// The socket, as the endpoint names it, for messages.
    pub socket: String,
    timeout: Duration,
    /// Made by the first call: a channel needs the runtime that runs it.
    channel: std::sync::OnceLock<Channel>,
    metrics: KmsMetrics,
}

impl Plugin {
    pub(crate) fn new(
        provider: &str,
        endpoint: &str,
        timeout: Duration,
        metrics: KmsMetrics,
    ) -> Result<Plugin, String> {
        Ok(Plugin {
            provider: provider.to_owned(),
            socket: socket_path(endpoint)?,
            timeout,
            channel: std::sync::OnceLock::new(),
            metrics,
        })
    }

    fn channel(&self) -> Channel {
        self.channel
            .get_or_init(|| {
                let path = self.socket.clone();
                // The URI is a placeholder: the connector dials the socket
                // (Go's client dials authority "localhost" the same way).
                Endpoint::from_static("http://localhost")
                    .connect_with_connector_lazy(tower::service_fn(move |_| connect(path.clone())))
            })
            .clone()
    }

    /// One unary call, bounded by the provider's timeout.
    pub(crate) async fn call<Req, Resp>(
        &self,
        method: &'static str,
        request: Req,
    ) -> Result<Resp, TransformError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let started = Instant::now();
        let mut grpc = tonic::client::Grpc::new(self.channel());
        let attempt = async {
            grpc.ready()
                .await
                .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            let path = tonic::codegen::http::uri::PathAndQuery::from_static(method);
            grpc.unary(tonic::Request::new(request), path, ProstCodec::default())
                .await
                .map(tonic::Response::into_inner)
        };
        let result = tokio::time::timeout(self.timeout, attempt).await;
        let code = match &result {
            Ok(Ok(_)) => tonic::Code::Ok,
            Ok(Err(status)) => status.code(),
            Err(_) => tonic::Code::DeadlineExceeded,
        };
        self.metrics
            .call(&self.provider, method, code, started.elapsed());
        match result {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(status)) => Err(self.failed(method, &status)),
            Err(_) => Err(TransformError(
                format!(
                    "KMS provider {:?} ({}) did not answer {method} within {:?}",
                    self.provider, self.socket, self.timeout
                ),
                Cause::Timeout,
            )),
        }
    }

    fn failed(&self, method: &str, status: &tonic::Status) -> TransformError {
        let cause = match status.code() {
            tonic::Code::DeadlineExceeded => Cause::Timeout,
            // The connection failed: the request never reached a plugin.
            tonic::Code::Unavailable | tonic::Code::Unknown if never_connected(status) => {
                Cause::Unreachable
            }
            // The plugin answered with an error: the stored key cannot be had.
            _ => Cause::Data,
        };
        TransformError(
            format!(
                "KMS provider {:?} ({}) failed {method}: {:?}: {}",
                self.provider,
                self.socket,
                status.code(),
                status.message()
            ),
            cause,
        )
    }

    /// A call that cannot give its answer: the plugin's key is the wrong one.
    pub(crate) fn invalid(&self, method: &str, reason: impl std::fmt::Display) -> TransformError {
        TransformError::new(format!(
            "KMS provider {:?} ({}) answered {method} with {reason}",
            self.provider, self.socket
        ))
    }
}

/// Whether a failed call never reached the plugin: no socket, nobody listening.
fn never_connected(status: &tonic::Status) -> bool {
    use std::error::Error;
    let mut source = status.source();
    while let Some(e) = source {
        if e.downcast_ref::<io::Error>().is_some() || e.to_string().contains("connect") {
            return true;
        }
        source = e.source();
    }
    status.message().contains("transport error")
}

async fn connect(socket: String) -> io::Result<TokioIo<UnixStream>> {
    let stream = match socket.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            let stream = std::os::unix::net::UnixStream::connect_addr(&addr)?;
            stream.set_nonblocking(true)?;
            UnixStream::from_std(stream)?
        }
        None => UnixStream::connect(PathBuf::from(socket)).await?,
    };
    Ok(TokioIo::new(stream))
}

/// A fresh random UUID (version 4) for a request's `uid`, as Go's `uuid.NewUUID`.
pub(crate) fn uid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::socket_path;

    #[test]
    fn endpoints_as_kubernetes_parses_them() {
        assert_eq!(
            socket_path("unix:///var/run/kms.sock").unwrap(),
            "/var/run/kms.sock"
        );
        assert_eq!(socket_path("unix:///@kms").unwrap(), "@kms");
        assert!(socket_path("tcp://127.0.0.1:1")
            .unwrap_err()
            .contains("unsupported scheme \"tcp\""));
        assert!(socket_path("unix://").is_err());
        assert!(socket_path("/var/run/kms.sock").is_err());
    }
}
