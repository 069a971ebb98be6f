//! `storage/etcd3`: the store kube-apiserver keeps its objects in.

mod client;
mod health;
mod store;

pub use client::new_client;
pub use health::{health_get, HealthCheck};
pub use store::Store;
