//! Config handling against real etcd servers: credentials, endpoints, TLS
//! files, and the endpoints auto-sync learns.

mod common;

use apiserver_storage::config::Config;
use apiserver_storage::factory;
use apiserver_storage::storage::{GetOptions, StorageError};
use common::{Backend, Etcd};

/// Creates a store from `config` and reads `key` (not found is `None`).
fn get(config: &str, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = Config::from_json(config)?;
    let (store, _destroy) = rt.block_on(factory::create(&config))?;
    let opts = GetOptions {
        ignore_not_found: true,
        ..Default::default()
    };
    rt.block_on(store.get(key, &opts))
        .map(|o| o.map(|o| o.data))
}

for_each_backend!(empty_username_and_password_mean_no_credentials);

fn empty_username_and_password_mean_no_credentials(backend: Backend) {
    let etcd = Etcd::start_backend(backend);
    etcd.put("/registry/k", br#"{"a":1}"#);
    for credentials in [
        r#""username":"","password":"""#,
        r#""username":"","password":null"#,
        r#""username":"""#,
    ] {
        let value = get(&etcd.config(credentials), "/k")
            .unwrap_or_else(|e| panic!("{credentials}: {:?} {}", e.code, e.message))
            .unwrap_or_else(|| panic!("{credentials}: the key is there"));
        assert!(
            String::from_utf8_lossy(&value).contains(r#""a":1"#),
            "{credentials}"
        );
    }
}
