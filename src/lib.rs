//! The Kubernetes API server's storage layer (`k8s.io/apiserver/pkg/storage`)
//! as a Rust library with a C ABI (`src/ffi`).

pub mod codec;
pub mod config;
pub mod etcd3;
pub mod factory;
pub mod storage;
pub mod value;

mod ffi;
