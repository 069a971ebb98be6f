//! The Kubernetes API server's storage layer (`k8s.io/apiserver/pkg/storage`)
//! as a Rust library with a C ABI (`src/ffi`).

pub mod codec;
pub mod config;
pub mod etcd2;
pub mod etcd3;
pub mod factory;
pub mod log;
pub mod metrics;
pub mod storage;
pub mod value;
pub mod watch;

mod ffi;

/// Property-based fuzzing shared by the modules' tests: `FUZZ_CASES` cases
/// each (default 2,000).
#[cfg(test)]
pub(crate) fn fuzz_config() -> proptest::prelude::ProptestConfig {
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2000);
    proptest::prelude::ProptestConfig::with_cases(cases)
}
