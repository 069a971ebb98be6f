//! Hostile configs through the C ABI (tests/c/config_hostile.c): malformed
//! endpoints, secrets in the wrong fields, oversized files, empty
//! credentials, TLS errors and mismatched client certificates, against real
//! etcd servers, under valgrind.

mod common;

use std::process::Command;

use common::cbuild::{assert_success, compile_c, run_c};
use common::tls::Certs;
use common::Etcd;

#[test]
fn hostile_configs_get_their_documented_codes() {
    let plain = Etcd::start();
    let certs = Certs::generate();
    let tls = Etcd::start_tls(&certs);
    let big = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(big.path(), vec![b'-'; (1 << 20) + 1]).unwrap();
    let certs_dir = certs.path("ca.pem").parent().unwrap().display().to_string();
    let program = compile_c(&["tests/c/config_hostile.c"], "config_hostile", &[]);
    let args = |mode| {
        [
            mode,
            plain.endpoint(),
            tls.endpoint(),
            certs_dir.clone(),
            big.path().to_str().unwrap().to_owned(),
        ]
    };
    let passed = |mode: &str, output: &std::process::Output| {
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_success(&format!("config_hostile {mode}\n{stdout}"), output);
        let summary = stdout.lines().last().unwrap().to_owned();
        eprintln!("{mode}: {summary}");
        summary
            .trim_start_matches("config_hostile: ")
            .split(' ')
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap()
    };
    let config = args("config".into());
    let config: Vec<&str> = config.iter().map(String::as_str).collect();
    assert!(passed("config", &run_c(&program, &config)) >= 60);
    // The TLS cases natively: memcheck does not follow ring's assembly
    // AES-GCM and reports every TLS record as uninitialised bytes.
    let output = Command::new(&program)
        .args(args("tls".into()))
        .output()
        .unwrap();
    assert!(passed("tls", &output) >= 5);
}
