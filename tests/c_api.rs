//! The C ABI, tested from C: tests/c/api_test.c compiled against the committed
//! header and the built library, run under valgrind, against a real etcd.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::cbuild::{
    assert_no_valgrind_errors, assert_success, c_command, compile_c, manifest_dir, run_c,
};
use common::{answers_progress_requests, free_port, Backend, Etcd};

fn api_test() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| compile_c(&["tests/c/api_test.c"], "api_test", &[]))
}

fn run(case: &str, args: &[&str]) {
    let mut all = vec![case];
    all.extend_from_slice(args);
    let output = run_c(api_test(), &all);
    assert_success(case, &output);
}

const CM: &str = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm1","namespace":"default"},"data":{"a":"b"}}"#;

#[test]
fn header_compiles_as_c99_and_cxx() {
    let header = manifest_dir().join("include/apiserver_storage.h");
    for (compiler, flags) in [
        ("cc", &["-x", "c", "-std=c99", "-pedantic"][..]),
        ("c++", &["-x", "c++", "-std=c++11"][..]),
    ] {
        let status = Command::new(compiler)
            .args(flags)
            .args(["-Wall", "-Wextra", "-Werror", "-fsyntax-only"])
            .arg(&header)
            .status()
            .unwrap();
        assert!(status.success(), "{compiler} rejects the header");
    }
}

#[test]
fn roundtrip_through_the_c_abi() {
    let etcd = Etcd::start();
    let rv = etcd.put("/registry/configmaps/default/cm1", CM.as_bytes());
    // Generous timeouts: valgrind slows the first connection down.
    let config = etcd.config(r#""prefix":"registry","health_timeout_ms":10000"#);
    run(
        "roundtrip",
        &[
            &config,
            "/configmaps/default/../default/cm1",
            &rv.to_string(),
            "cm1",
            "/registry/missing/key",
        ],
    );
    // Serializable reads give the same answer from a single member.
    let config = etcd.config(r#""prefix":"/registry/","quorum":false,"health_timeout_ms":10000"#);
    run(
        "roundtrip",
        &[
            &config,
            "configmaps/default/cm1",
            &rv.to_string(),
            "cm1",
            "/registry/missing/key",
        ],
    );
}

#[test]
fn raw_codec_and_corrupt_objects() {
    let etcd = Etcd::start();
    etcd.put("/registry/raw/x", b"not json at all");
    run(
        "raw",
        &[
            &etcd.config(r#""codec":"raw""#),
            "/raw/x",
            "not json at all",
        ],
    );
    run("corrupt", &[&etcd.config(""), "/raw/x", "/registry/raw/x"]);
}

#[test]
fn null_arguments_and_invalid_utf8() {
    let etcd = Etcd::start();
    run("nulls", &[&etcd.config("")]);
}

#[test]
fn malformed_configs() {
    run("configs", &["http://127.0.0.1:1"]);
}

#[test]
fn sixteen_threads_share_one_handle() {
    let etcd = Etcd::start();
    let rv = etcd.put("/registry/configmaps/default/cm1", CM.as_bytes());
    let (config, rv) = (etcd.config(""), rv.to_string());
    let args = ["threads", &config, "/configmaps/default/cm1", &rv];
    // Every result checked at full count natively; valgrind serialises the
    // threads, so the memory check runs a tenth of the reads.
    let native = Command::new(api_test())
        .args(args)
        .arg("1000")
        .output()
        .unwrap();
    assert_success("threads (native)", &native);
    assert_eq!(
        String::from_utf8_lossy(&native.stdout).trim(),
        "16000 reads checked"
    );
    let checked = run_c(api_test(), &[&args[..], &["100"]].concat());
    assert_success("threads (valgrind)", &checked);
}

#[test]
fn calls_are_bounded_while_etcd_is_down() {
    // Nothing listens on this port.
    let config = format!(
        r#"{{"server_list":["http://127.0.0.1:{}"],"health_timeout_ms":1000,"request_timeout_ms":2000,"dial_timeout_ms":1000}}"#,
        free_port()
    );
    run(
        "down",
        &[&config, "1", "2", "error getting data from etcd: "],
    );
}

for_each_backend!(
    stopped_etcd_fails_health_within_its_timeout,
    health_check_turns_healthy_after_etcd_starts,
    writes_lists_and_counts_through_the_c_abi,
    update_callbacks_set_ttls,
);

fn stopped_etcd_fails_health_within_its_timeout(backend: Backend) {
    let mut etcd = Etcd::start_backend(backend);
    let config = etcd.config(r#""health_timeout_ms":1500,"request_timeout_ms":3000"#);
    etcd.kill_member(0);
    // Go's messages: etcd3 reads a key, etcd2 lists the members.
    let message = match backend {
        Backend::Etcd3 => "error getting data from etcd: ",
        Backend::Etcd2 => "error listing etcd members: ",
    };
    run("down", &[&config, "1.5", "3", message]);
}

fn health_check_turns_healthy_after_etcd_starts(backend: Backend) {
    let mut etcd = Etcd::unstarted_backend(1, backend);
    let config = etcd.config("");
    let mut child = c_command(api_test())
        .args(["check_wait", &config])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("check_wait printed nothing").unwrap();
    assert_eq!(first, "created");
    etcd.start_member(0);
    let output = child.wait_with_output().unwrap();
    let rest: Vec<String> = lines.map_while(|l| l.ok()).collect();
    assert_no_valgrind_errors(&output);
    assert!(
        output.status.success(),
        "check_wait failed ({:?}): {rest:?}",
        output.status
    );
    assert!(
        rest.iter().any(|l| l.starts_with("healthy after")),
        "{rest:?}"
    );
}

fn writes_lists_and_counts_through_the_c_abi(backend: Backend) {
    let etcd = Etcd::start_backend(backend);
    // etcd3 pages (and checks tokens); etcd2 answers every list whole and
    // refuses continue tokens.
    let (pages, bogus_token) = match backend {
        Backend::Etcd3 => ("3", "100"),
        Backend::Etcd2 => ("1", "102"),
    };
    run("writes", &[&etcd.config(""), pages, bogus_token]);
}

#[test]
fn hostile_inputs_get_their_documented_codes() {
    let etcd = Etcd::start();
    let program = compile_c(&["tests/c/hostile.c"], "hostile", &[]);
    let aesgcm = r#""transformer":{"providers":[{"aesgcm":{"keys":[{"name":"key1","secret":"dwhZ/08myNrj5qqgb2WFNsPdHF5GCp/2rQY7cmtIG5A="}]}}]}"#;
    let output = run_c(
        &program,
        &[
            &etcd.config(""),
            &etcd.config(r#""codec":"raw""#),
            &etcd.config(aesgcm),
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_success(&format!("hostile\n{stdout}"), &output);
    let summary = stdout.lines().last().unwrap();
    let passed: usize = summary
        .trim_start_matches("hostile: ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(passed >= 100, "{summary}");
    eprintln!("{summary}");
}

#[test]
fn a_fork_child_gets_a_clear_error_from_an_inherited_handle() {
    let etcd = Etcd::start();
    etcd.put("/registry/configmaps/default/cm1", CM.as_bytes());
    // Natively: in a fork child, valgrind counts what only the parent's
    // (absent) thread stacks reference as lost.
    let output = Command::new(api_test())
        .args(["fork", &etcd.config(""), "/configmaps/default/cm1"])
        .output()
        .unwrap();
    assert_success("fork", &output);
}

#[test]
fn sixty_four_threads_of_mixed_operations_for_twenty_seconds() {
    let etcd = Etcd::start();
    let program = compile_c(&["tests/c/soak.c"], "soak", &[]);
    // Natively: valgrind would serialise the 64 threads. The driver's own
    // timeout catches a deadlock.
    let mut child = Command::new(&program)
        .args([&etcd.config(r#""request_timeout_ms":10000"#), "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("soak did not finish: deadlock?");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let output = child.wait_with_output().unwrap();
    eprintln!("{}", String::from_utf8_lossy(&output.stdout));
    assert_success("soak", &output);
}

#[test]
fn cxx_wrapper_against_etcd() {
    let etcd = Etcd::start();
    let program = compile_c(&["tests/c/cxx_test.cpp"], "cxx_test", &[]);
    // Generous timeouts: valgrind slows the first connection down.
    let output = run_c(
        &program,
        &[&etcd.config(r#""health_timeout_ms":10000,"request_timeout_ms":20000"#)],
    );
    assert_success("cxx_test", &output);
    assert!(String::from_utf8_lossy(&output.stdout).contains("all checks passed"));
}

#[test]
fn metrics_count_real_calls_from_c() {
    let etcd = Etcd::start();
    etcd.put("/registry/configmaps/default/cm1", CM.as_bytes());
    let config =
        etcd.config(r#""prefix":"/registry","request_timeout_ms":10000,"health_timeout_ms":10000"#);
    // A stopped etcd: nothing listens on its port.
    let down = format!(
        r#"{{"server_list":["http://127.0.0.1:{}"],"request_timeout_ms":1500,"dial_timeout_ms":500}}"#,
        free_port()
    );
    run(
        "metrics",
        &[&config, "/configmaps/default/cm1", "9", "4", &down],
    );
}

const ROOT_PASSWORD: &str = "pw-4b1d-never-logged";
const AES_KEY: &str = "dwhZ/08myNrj5qqgb2WFNsPdHF5GCp/2rQY7cmtIG5A=";
const CIPHERTEXT_MARKER: &str = "CIPHERTEXT-NEVER-LOGGED";

/// The `logs` case against an etcd with authentication on, through an
/// encrypted config whose first endpoint is down; returns its stderr.
fn logs_of(log_env: Option<&str>) -> String {
    let etcd = Etcd::start();
    let forged = format!("k8s:enc:aesgcm:v1:key1:{CIPHERTEXT_MARKER}");
    etcd.put("/registry/secrets/default/forged", forged.as_bytes());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut c = etcd_client::Client::connect(etcd.endpoints(), None)
            .await
            .unwrap();
        c.role_add("root").await.unwrap();
        c.user_add("root", ROOT_PASSWORD, None).await.unwrap();
        c.user_grant_role("root", "root").await.unwrap();
        c.auth_enable().await.unwrap();
    });
    let endpoints =
        serde_json::json!([format!("http://127.0.0.1:{}", free_port()), etcd.endpoint()]);
    let config = format!(
        r#"{{"server_list":{endpoints},"prefix":"/registry","username":"root","password":"{ROOT_PASSWORD}","request_timeout_ms":10000,"dial_timeout_ms":1000,
            "transformer":{{"providers":[{{"aesgcm":{{"keys":[{{"name":"key1","secret":"{AES_KEY}"}}]}}}}]}}}}"#
    );
    let mut cmd = c_command(api_test());
    cmd.args(["logs", &config, "/secrets/default/forged"]);
    match log_env {
        Some(v) => cmd.env("APISERVER_STORAGE_LOG", v),
        None => cmd.env_remove("APISERVER_STORAGE_LOG"),
    };
    let output = cmd.output().unwrap();
    assert_no_valgrind_errors(&output);
    assert_success("logs", &output);
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn logs_go_to_stderr_when_asked_and_keep_secrets_out() {
    let logs = logs_of(Some("debug"));
    for event in [
        "etcd endpoint marked down",
        "retrying the etcd request",
        "logged in to etcd",
        "user=root",
        "unable to transform stored data",
        "/registry/secrets/default/forged",
    ] {
        assert!(logs.contains(event), "no {event:?} in the logs:\n{logs}");
    }
    for secret in [ROOT_PASSWORD, AES_KEY, CIPHERTEXT_MARKER] {
        assert!(
            !logs.contains(secret),
            "{secret:?} leaked into the logs:\n{logs}"
        );
    }
    // A filter naming a target keeps the others out.
    let logs = logs_of(Some("apiserver_storage::etcd3::store=warn"));
    assert!(logs.contains("unable to transform stored data"), "{logs}");
    assert!(!logs.contains("logged in to etcd"), "{logs}");
}

#[test]
fn without_the_variable_nothing_is_logged() {
    assert_eq!(logs_of(None), "");
}

/// A TTL returned by the update callback reaches etcd (etcd3: a lease; etcd2:
/// the key's TTL); out-of-range ones are refused.
fn update_callbacks_set_ttls(backend: Backend) {
    let etcd = Etcd::start_backend(backend);
    run("ttl", &[&etcd.config(""), "/events/t"]);
    let ttl = etcd.ttl("/registry/events/t").expect("a TTL on the key");
    assert!((290..=315).contains(&ttl), "{ttl}");
}

#[test]
fn the_compacted_revision_through_the_c_abi() {
    let etcd = Etcd::start();
    etcd.put("compact_rev_key", b"42");
    run("compact_revision", &[&etcd.config(""), "42"]);
}

/// Bookmarks: etcd's progress notifications, and requested ones where etcd's
/// version answers them correctly (3.4.31, 3.5.13 and later).
#[test]
fn bookmarks_through_the_c_abi() {
    let etcd = Etcd::start_with(&["--experimental-watch-progress-notify-interval=300ms"]);
    let rv = etcd.put("/registry/pods/a", b"{}");
    // etcd answers watches that have caught up with its revision.
    etcd.put("/unrelated", b"x");
    let version = etcd.version();
    let requests = if answers_progress_requests(&version) {
        "supported"
    } else {
        version.as_str()
    };
    run(
        "bookmarks",
        &[&etcd.config(""), "/pods", &rv.to_string(), requests],
    );
}
