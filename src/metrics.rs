//! A store's metrics in the Prometheus text format: the client metrics of
//! go-grpc-prometheus (the interceptors on kube-apiserver's etcd client),
//! kube-apiserver's `apiserver_storage_transformation_operations_total`, and
//! the library's own counters of stale reads, retries and watch resumptions.
//!
//! Each store has its own registry, so two handles in one process never mix
//! counts. Series are resolved to atomic counters once, when the store is
//! built (the gRPC codes of `grpc_client_handled_total` on first use): the
//! hot path increments atomics, with no label hashing, allocation or lock.

use std::sync::OnceLock;
use std::time::Instant;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};
use tonic::Code;

use crate::value::Outcome;

/// The etcd RPCs the library issues, as go-grpc-prometheus labels them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Range,
    Txn,
    Compact,
    LeaseGrant,
    MemberList,
    Authenticate,
    Watch,
    Status,
}

impl Method {
    const ALL: [Method; 8] = [
        Method::Range,
        Method::Txn,
        Method::Compact,
        Method::LeaseGrant,
        Method::MemberList,
        Method::Authenticate,
        Method::Watch,
        Method::Status,
    ];

    fn service(self) -> &'static str {
        match self {
            Method::Range | Method::Txn | Method::Compact => "etcdserverpb.KV",
            Method::LeaseGrant => "etcdserverpb.Lease",
            Method::MemberList => "etcdserverpb.Cluster",
            Method::Authenticate => "etcdserverpb.Auth",
            Method::Watch => "etcdserverpb.Watch",
            Method::Status => "etcdserverpb.Maintenance",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Method::Range => "Range",
            Method::Txn => "Txn",
            Method::Compact => "Compact",
            Method::LeaseGrant => "LeaseGrant",
            Method::MemberList => "MemberList",
            Method::Authenticate => "Authenticate",
            Method::Watch => "Watch",
            Method::Status => "Status",
        }
    }

    fn grpc_type(self) -> &'static str {
        match self {
            Method::Watch => "bidi_stream",
            _ => "unary",
        }
    }
}

/// Go's `codes.Code.String()`, indexed by code.
const CODE_NAMES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

/// go-grpc-prometheus' default buckets (client_golang's `DefBuckets`).
const GRPC_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The series of one RPC method.
pub(crate) struct RpcMetrics {
    method: Method,
    started: IntCounter,
    sent: IntCounter,
    received: IntCounter,
    handled_vec: IntCounterVec,
    handled: [OnceLock<IntCounter>; 17],
    seconds: Histogram,
    retries: IntCounter,
}

impl RpcMetrics {
    /// Counts a started RPC and its first request message; the returned call
    /// counts what follows.
    pub(crate) fn start(&self) -> Call<'_> {
        self.started.inc();
        self.sent.inc();
        Call {
            rpc: self,
            start: Instant::now(),
            done: false,
        }
    }

    /// Counts an attempt that failed and is tried again.
    pub(crate) fn retried(&self) {
        self.retries.inc();
    }

    fn handled(&self, code: Code) {
        let index = usize::try_from(i32::from(code)).unwrap_or(2).min(16);
        let m = self.method;
        self.handled[index]
            .get_or_init(|| {
                self.handled_vec.with_label_values(&[
                    m.grpc_type(),
                    m.service(),
                    m.name(),
                    CODE_NAMES[index],
                ])
            })
            .inc();
    }
}

/// One RPC in flight. Dropped unfinished (its caller went away), it is
/// handled as `Canceled`, as gRPC reports a cancelled context.
pub(crate) struct Call<'a> {
    rpc: &'a RpcMetrics,
    start: Instant,
    done: bool,
}

impl Call<'_> {
    /// A response message arrived.
    pub(crate) fn received(&self) {
        self.rpc.received.inc();
    }

    /// The RPC ended with `code`.
    pub(crate) fn finish(mut self, code: Code) {
        self.done = true;
        self.rpc.handled(code);
        self.rpc.seconds.observe(self.start.elapsed().as_secs_f64());
    }

    /// A unary RPC got its response.
    pub(crate) fn succeeded(self) {
        self.received();
        self.finish(Code::Ok);
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.rpc.handled(Code::Cancelled);
            self.rpc.seconds.observe(self.start.elapsed().as_secs_f64());
        }
    }
}

/// kube-apiserver's series for one provider of the transformer.
struct Provider {
    from_ok: IntCounter,
    from_failed: IntCounter,
    to_ok: IntCounter,
    to_failed: IntCounter,
    stale: IntCounter,
}

/// Go's `RecordTransformation` status of an error that carries no gRPC
/// status (every in-process cipher's).
const NON_GRPC_FAILURE: &str = "unknown-non-grpc";

pub struct Metrics {
    registry: Registry,
    rpcs: Vec<RpcMetrics>,
    /// One per provider prefix of the transformer, in its order.
    providers: Vec<Provider>,
    /// Values no provider's prefix matched: Go's `transformer_prefix="unknown"`.
    unmatched: IntCounter,
    watch_resumptions: IntCounter,
    unknown_fields: IntCounter,
}

/// The metric families a store registers.
struct Families {
    started: IntCounterVec,
    handled: IntCounterVec,
    received: IntCounterVec,
    sent: IntCounterVec,
    seconds: HistogramVec,
    retries: IntCounterVec,
    transformations: IntCounterVec,
    stale: IntCounterVec,
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition")
}

const RPC_LABELS: [&str; 3] = ["grpc_type", "grpc_service", "grpc_method"];

impl Families {
    fn new() -> Self {
        Families {
            started: counter_vec(
                "grpc_client_started_total",
                "Total number of RPCs started on the client.",
                &RPC_LABELS,
            ),
            handled: counter_vec(
                "grpc_client_handled_total",
                "Total number of RPCs completed by the client, regardless of success or failure.",
                &["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
            ),
            received: counter_vec(
                "grpc_client_msg_received_total",
                "Total number of RPC stream messages received by the client.",
                &RPC_LABELS,
            ),
            sent: counter_vec(
                "grpc_client_msg_sent_total",
                "Total number of gRPC stream messages sent by the client.",
                &RPC_LABELS,
            ),
            seconds: HistogramVec::new(
                HistogramOpts::new(
                    "grpc_client_handling_seconds",
                    "Histogram of response latency (seconds) of the gRPC until it is finished by the application.",
                )
                .buckets(GRPC_BUCKETS.to_vec()),
                &RPC_LABELS,
            )
            .expect("valid metric definition"),
            retries: counter_vec(
                "apiserver_storage_etcd_retries_total",
                "Total number of etcd requests tried again after a failed attempt.",
                &["grpc_service", "grpc_method"],
            ),
            transformations: counter_vec(
                "apiserver_storage_transformation_operations_total",
                "Total number of transformations.",
                &["transformation_type", "transformer_prefix", "status"],
            ),
            stale: counter_vec(
                "apiserver_storage_transformation_stale_reads_total",
                "Total number of values read with a provider other than the one new writes use.",
                &["transformer_prefix"],
            ),
        }
    }

    fn register(&self, registry: &Registry) {
        let all: [Box<dyn prometheus::core::Collector>; 8] = [
            Box::new(self.started.clone()),
            Box::new(self.handled.clone()),
            Box::new(self.received.clone()),
            Box::new(self.sent.clone()),
            Box::new(self.seconds.clone()),
            Box::new(self.retries.clone()),
            Box::new(self.transformations.clone()),
            Box::new(self.stale.clone()),
        ];
        for c in all {
            registry.register(c).expect("metric names are unique");
        }
    }

    fn rpc(&self, m: Method) -> RpcMetrics {
        let labels = [m.grpc_type(), m.service(), m.name()];
        RpcMetrics {
            method: m,
            started: self.started.with_label_values(&labels),
            sent: self.sent.with_label_values(&labels),
            received: self.received.with_label_values(&labels),
            handled_vec: self.handled.clone(),
            handled: Default::default(),
            seconds: self.seconds.with_label_values(&labels),
            retries: self.retries.with_label_values(&[m.service(), m.name()]),
        }
    }

    fn provider(&self, prefix: &[u8]) -> Provider {
        // Go labels the empty prefix of an identity provider "identity".
        let label = match prefix {
            b"" => "identity".to_owned(),
            p => String::from_utf8_lossy(p).into_owned(),
        };
        let op = |kind, status| {
            self.transformations
                .with_label_values(&[kind, label.as_str(), status])
        };
        Provider {
            from_ok: op("from_storage", "OK"),
            from_failed: op("from_storage", NON_GRPC_FAILURE),
            to_ok: op("to_storage", "OK"),
            to_failed: op("to_storage", NON_GRPC_FAILURE),
            stale: self.stale.with_label_values(&[label.as_str()]),
        }
    }
}

impl Metrics {
    /// The metrics of a store whose transformer has providers with these
    /// prefixes (none: a plain identity transformer, which kube-apiserver
    /// does not measure either).
    pub(crate) fn new(provider_prefixes: &[Vec<u8>]) -> Self {
        Self::with(provider_prefixes, Vec::new())
    }

    /// `new`, also registering the transformer's own metrics (KMS calls).
    pub(crate) fn with(
        provider_prefixes: &[Vec<u8>],
        transformer_metrics: Vec<Box<dyn prometheus::core::Collector>>,
    ) -> Self {
        let registry = Registry::new();
        let families = Families::new();
        families.register(&registry);
        for c in transformer_metrics {
            registry.register(c).expect("metric names are unique");
        }
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric definition");
            registry
                .register(Box::new(c.clone()))
                .expect("metric names are unique");
            c
        };
        let watch_resumptions = counter(
            "apiserver_storage_watch_resumptions_total",
            "Total number of watch streams re-established after they broke.",
        );
        let unknown_fields = counter(
            "apiserver_storage_unknown_fields_reads_total",
            "Total number of objects read that hold fields the schema does not know.",
        );
        Metrics {
            rpcs: Method::ALL.iter().map(|&m| families.rpc(m)).collect(),
            providers: provider_prefixes
                .iter()
                .map(|p| families.provider(p))
                .collect(),
            unmatched: families.transformations.with_label_values(&[
                "from_storage",
                "unknown",
                NON_GRPC_FAILURE,
            ]),
            watch_resumptions,
            unknown_fields,
            registry,
        }
    }

    pub(crate) fn rpc(&self, method: Method) -> &RpcMetrics {
        &self.rpcs[method as usize]
    }

    /// What provider `provider` (`None`: no prefix matched) made of a stored value.
    pub(crate) fn transformed_from_storage(&self, provider: Option<usize>, outcome: Outcome) {
        match (provider.and_then(|i| self.providers.get(i)), outcome) {
            (Some(p), Outcome::Read { stale }) => {
                p.from_ok.inc();
                if stale {
                    p.stale.inc();
                }
            }
            (Some(p), Outcome::Failed) => p.from_failed.inc(),
            (None, _) if self.providers.is_empty() => {}
            (None, _) => self.unmatched.inc(),
        }
    }

    /// A value written by the first provider.
    pub(crate) fn transformed_to_storage(&self, ok: bool) {
        if let Some(p) = self.providers.first() {
            if ok { &p.to_ok } else { &p.to_failed }.inc();
        }
    }

    pub(crate) fn watch_resumed(&self) {
        self.watch_resumptions.inc();
    }

    /// An object read with fields the schema does not know.
    pub(crate) fn read_unknown_fields(&self) {
        self.unknown_fields.inc();
    }

    /// Every series in the Prometheus text exposition format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        // Writing into a Vec only fails on invalid metric families, which the
        // registry refuses at registration.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_index_their_own_series() {
        for (i, m) in Method::ALL.iter().enumerate() {
            assert_eq!(*m as usize, i);
        }
    }

    #[test]
    fn unfinished_calls_count_as_canceled_and_codes_use_go_names() {
        let metrics = Metrics::new(&[b"k8s:enc:aesgcm:v1:a:".to_vec(), Vec::new()]);
        let range = metrics.rpc(Method::Range);
        range.start().succeeded();
        range.start().finish(Code::Unavailable);
        drop(range.start());
        metrics.transformed_from_storage(Some(1), Outcome::Read { stale: true });
        metrics.transformed_from_storage(None, Outcome::Failed);
        let text = metrics.encode();
        for line in [
            r#"grpc_client_started_total{grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 3"#,
            r#"grpc_client_handled_total{grpc_code="Canceled",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 1"#,
            r#"grpc_client_handled_total{grpc_code="Unavailable",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 1"#,
            r#"grpc_client_msg_received_total{grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 1"#,
            r#"grpc_client_handling_seconds_count{grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 3"#,
            r#"apiserver_storage_transformation_operations_total{status="OK",transformation_type="from_storage",transformer_prefix="identity"} 1"#,
            r#"apiserver_storage_transformation_stale_reads_total{transformer_prefix="identity"} 1"#,
            r#"apiserver_storage_transformation_operations_total{status="unknown-non-grpc",transformation_type="from_storage",transformer_prefix="unknown"} 1"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
