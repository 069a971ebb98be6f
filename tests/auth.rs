//! etcd authentication against a real etcd with auth enabled.

mod common;

use apiserver_storage::config::Config;
use apiserver_storage::factory;
use apiserver_storage::storage::{Code, GetOptions, StorageError};
use common::Etcd;
use etcd_client::{Client, Permission};

fn enable_auth(etcd: &Etcd) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut c = Client::connect(etcd.endpoints(), None).await.unwrap();
        c.role_add("root").await.unwrap();
        c.user_add("root", "r00t-secret", None).await.unwrap();
        c.user_grant_role("root", "root").await.unwrap();
        c.role_add("reader").await.unwrap();
        c.role_grant_permission("reader", Permission::read("/registry/").with_prefix())
            .await
            .unwrap();
        c.user_add("alice", "alice-secret", None).await.unwrap();
        c.user_grant_role("alice", "reader").await.unwrap();
        c.user_add("mallory", "mallory-secret", None).await.unwrap();
        c.auth_enable().await.unwrap();
    });
}

fn get(etcd: &Etcd, credentials: &str) -> Result<Option<Vec<u8>>, StorageError> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = Config::from_json(&etcd.config(credentials)).unwrap();
    let (store, _destroy) = rt.block_on(factory::create(&config)).unwrap();
    rt.block_on(store.get("/k", &GetOptions::default()))
        .map(|o| o.map(|o| o.data))
}

#[test]
fn users_passwords_and_permissions() {
    let etcd = Etcd::start();
    etcd.put("/registry/k", br#"{"a":1}"#);
    enable_auth(&etcd);

    let ok = get(&etcd, r#""username":"alice","password":"alice-secret""#)
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&ok).contains(r#""a":1"#));

    let wrong = get(&etcd, r#""username":"alice","password":"not-her-password""#).unwrap_err();
    assert_eq!(wrong.code, Code::InvalidConfig, "{}", wrong.message);
    assert!(
        wrong.message.contains("authentication failed"),
        "{}",
        wrong.message
    );
    assert!(!wrong.message.contains("not-her-password"));

    let denied = get(&etcd, r#""username":"mallory","password":"mallory-secret""#).unwrap_err();
    assert_eq!(denied.code, Code::PermissionDenied, "{}", denied.message);
    assert!(
        denied.message.contains("permission denied"),
        "{}",
        denied.message
    );
    assert!(!denied.message.contains("mallory-secret"));

    let anonymous = get(&etcd, "").unwrap_err();
    assert_eq!(anonymous.code, Code::InvalidConfig, "{}", anonymous.message);
    assert!(
        anonymous.message.contains("requires authentication"),
        "{}",
        anonymous.message
    );
}

#[test]
fn expired_tokens_are_refreshed() {
    let etcd = Etcd::start_with(&["--auth-token-ttl", "1"]);
    etcd.put("/registry/k", br#"{"a":1}"#);
    enable_auth(&etcd);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config =
        Config::from_json(&etcd.config(r#""username":"alice","password":"alice-secret""#)).unwrap();
    let (store, _destroy) = rt.block_on(factory::create(&config)).unwrap();
    for _ in 0..3 {
        assert!(rt
            .block_on(store.get("/k", &GetOptions::default()))
            .unwrap()
            .is_some());
        // Past the token's one-second TTL.
        std::thread::sleep(std::time::Duration::from_millis(2500));
    }
}
