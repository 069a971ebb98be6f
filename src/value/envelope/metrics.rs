//! Go's `envelope/metrics` and the envelope part of `value/metrics.go`: one
//! set per store, registered with the store's other metrics. Key IDs appear
//! only hashed; keys and plaintext never.

use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts};
use sha2::{Digest, Sha256};

/// The KMS metrics of one store's providers.
#[derive(Clone)]
pub(crate) struct KmsMetrics {
    latency: HistogramVec,
    cache_misses: IntCounter,
    key_id_hashes: IntCounterVec,
    dek_source_cache_size: IntGaugeVec,
}

impl KmsMetrics {
    pub(crate) fn new() -> Self {
        // Go's ExponentialBuckets(0.0001, 2, 20).
        let buckets = (0..20).map(|i| 0.0001 * f64::from(1u32 << i)).collect();
        KmsMetrics {
            latency: HistogramVec::new(
                HistogramOpts::new(
                    "apiserver_envelope_encryption_kms_operations_latency_seconds",
                    "KMS operation duration with gRPC error code status total.",
                )
                .buckets(buckets),
                &["provider_name", "method_name", "grpc_status_code"],
            )
            .expect("valid metric definition"),
            cache_misses: IntCounter::new(
                "apiserver_storage_envelope_transformation_cache_misses_total",
                "Total number of cache misses while accessing key decryption key(KEK).",
            )
            .expect("valid metric definition"),
            key_id_hashes: IntCounterVec::new(
                Opts::new(
                    "apiserver_envelope_encryption_key_id_hash_total",
                    "Number of times a keyID is used split by transformation type, provider, and apiserver identity.",
                ),
                &["transformation_type", "provider_name", "key_id_hash", "apiserver_id_hash"],
            )
            .expect("valid metric definition"),
            dek_source_cache_size: IntGaugeVec::new(
                Opts::new(
                    "apiserver_envelope_encryption_dek_source_cache_size",
                    "Number of records in data encryption key (DEK) source cache. On a restart, this value is an approximation of the number of decrypt RPC calls the server will make to the KMS plugin.",
                ),
                &["provider_name"],
            )
            .expect("valid metric definition"),
        }
    }

    /// What the store registers.
    pub(crate) fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.latency.clone()),
            Box::new(self.cache_misses.clone()),
            Box::new(self.key_id_hashes.clone()),
            Box::new(self.dek_source_cache_size.clone()),
        ]
    }

    /// One finished call to a plugin, by its full gRPC method name.
    pub(crate) fn call(&self, provider: &str, method: &str, code: tonic::Code, took: Duration) {
        self.latency
            .with_label_values(&[provider, method, &grpc_code_name(code)])
            .observe(took.as_secs_f64());
    }

    pub(crate) fn cache_miss(&self) {
        self.cache_misses.inc();
    }

    /// A key ID used to read (`from_storage`) or write (`to_storage`).
    pub(crate) fn key_id_used(&self, transformation: &str, provider: &str, key_id: &str) {
        self.key_id_hashes
            .with_label_values(&[transformation, provider, &key_id_hash(key_id), ""])
            .inc();
    }

    pub(crate) fn dek_sources_cached(&self, provider: &str, n: usize) {
        self.dek_source_cache_size
            .with_label_values(&[provider])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

/// Go's `getHash`: `sha256:<hex>`, or `""` for an empty key ID.
pub(crate) fn key_id_hash(key_id: &str) -> String {
    if key_id.is_empty() {
        return String::new();
    }
    let digest = Sha256::digest(key_id.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// grpc-go's `codes.Code.String()`.
fn grpc_code_name(code: tonic::Code) -> String {
    let name = match code {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "Canceled",
        tonic::Code::Unknown => "Unknown",
        tonic::Code::InvalidArgument => "InvalidArgument",
        tonic::Code::DeadlineExceeded => "DeadlineExceeded",
        tonic::Code::NotFound => "NotFound",
        tonic::Code::AlreadyExists => "AlreadyExists",
        tonic::Code::PermissionDenied => "PermissionDenied",
        tonic::Code::ResourceExhausted => "ResourceExhausted",
        tonic::Code::FailedPrecondition => "FailedPrecondition",
        tonic::Code::Aborted => "Aborted",
        tonic::Code::OutOfRange => "OutOfRange",
        tonic::Code::Unimplemented => "Unimplemented",
        tonic::Code::Internal => "Internal",
        tonic::Code::Unavailable => "Unavailable",
        tonic::Code::DataLoss => "DataLoss",
        tonic::Code::Unauthenticated => "Unauthenticated",
    };
    name.to_owned()
}
