//! `storage/etcd3`: the store kube-apiserver keeps its objects in.

mod client;
mod compact;
mod continue_token;
mod feature;
mod health;
mod lease;
mod list;
mod pool;
mod reencrypt;
mod store;
mod watcher;

pub(crate) use client::{
    bad_pem, chain, client_identity, endpoints, read_certs, tls_enabled, tls_problem, Rpc,
};
pub(crate) use compact::start as start_compactor;
pub use compact::{Compactor, Round};
pub use health::HealthCheck;
pub(crate) use pool::{start_auto_sync, Pool};
pub use store::Store;
