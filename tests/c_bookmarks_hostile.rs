//! tests/c/bookmarks_hostile.c under valgrind against real etcd servers:
//! TTLs from update callbacks at and past their bounds, the compacted
//! revision read from hostile values, watch flags, and bookmarks under
//! request storms, steady writes, an etcd restart and an ended watch.
//!
//! Requested bookmarks need etcd 3.4.31, 3.5.13 or later: against an older
//! etcd (Debian's 3.4.23) the cases that need them check the refusal
//! instead; scripts/test.sh runs them again against etcd 3.6. Two cases
//! that depend on timing run natively (each says why).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;

use apiserver_storage::config::Config;
use apiserver_storage::factory;
use apiserver_storage::storage::Code;
use apiserver_storage::watch::WatchOptions;
use common::cbuild::{assert_no_valgrind_errors, assert_success, c_command, compile_c, run_c};
use common::{answers_progress_requests, Backend, Etcd};

fn program() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| compile_c(&["tests/c/bookmarks_hostile.c"], "bookmarks_hostile", &[]))
}

fn run(case: &str, args: &[&str]) -> String {
    let output = run_c(program(), &[&[case], args].concat());
    assert_success(case, &output);
    String::from_utf8(output.stdout).unwrap()
}

/// Generous timeouts: valgrind slows the first connection down.
fn config(etcd: &Etcd) -> String {
    etcd.config(r#""request_timeout_ms":20000"#)
}

/// etcd sending progress notifications to idle watches every 100 ms.
fn notifying_etcd() -> Etcd {
    Etcd::start_with(&["--experimental-watch-progress-notify-interval=100ms"])
}

/// Whether etcd answers progress requests; when it does not, checks (from
/// Rust, quickly) that a request is refused naming its version: the C side
/// of that is `a_request_storm_keeps_events_and_bookmarks_in_order`'s.
fn answers_requests(etcd: &Etcd) -> bool {
    let version = etcd.version();
    if answers_progress_requests(&version) {
        return true;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = Config::from_json(&config(etcd)).unwrap();
    let (store, _destroy) = rt.block_on(factory::create(&config)).unwrap();
    let watch = rt
        .block_on(store.watch("/bm", &WatchOptions::default()))
        .unwrap();
    let e = rt
        .block_on(watch.progress_requester().unwrap().request())
        .unwrap_err();
    assert_eq!(e.code, Code::Unsupported, "{e}");
    assert!(e.message.contains(&version), "{e}");
    false
}

/// 100,000 requests from 4 threads while a thread writes and another waits
/// in storage_watch_next: every write comes once, in order, and no bookmark
/// comes ahead of an event or goes back.
#[test]
fn a_request_storm_keeps_events_and_bookmarks_in_order() {
    let etcd = notifying_etcd();
    // Valgrind serialises the threads: fewer requests there.
    let requests = match std::env::var("STORAGE_TEST_VALGRIND").as_deref() {
        Ok("0") => "100000",
        _ => "5000",
    };
    let version = etcd.version();
    if answers_progress_requests(&version) {
        run("order", &[&config(&etcd), "1", "50", requests, "4"]);
    } else {
        // Refused, naming the version; the watch goes on.
        run("old_etcd", &[&config(&etcd), &version]);
    }
}

/// One request on a watch created at etcd's revision, then a write under
/// it every 20 ms for 3 s (from here, at full speed): etcd drops the
/// request until the watch has caught up with it, and the library repeats
/// it every 100 ms, which a steady stream of events must not hold back.
/// Run natively: under valgrind the library's own slowness leaves gaps of
/// 100 ms between events, which would hide a repetition held back by them.
#[test]
fn a_requested_bookmark_comes_while_events_keep_coming() {
    let etcd = Etcd::start();
    if !answers_requests(&etcd) {
        return;
    }
    let mut child = std::process::Command::new(program())
        .args(["steady", &config(&etcd)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.next().expect("the C program stopped").unwrap();
    assert_eq!(ready, "ready");
    let mut w = etcd.writer();
    for i in 0..150 {
        w.put(&format!("/registry/steady/{i}"), b"{}").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    w.put("/registry/steady/end", b"{}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert_success("steady", &output);
}

/// A bookmark requested every millisecond for 5 s while nobody reads the
/// watch: bookmarks are progress, not events, and must not fill the
/// watch's buffer until it ends as a consumer too slow. Run natively:
/// valgrind would slow the requests down too much to fill the buffer.
#[test]
fn unread_bookmarks_do_not_end_a_watch() {
    let etcd = Etcd::start();
    if !answers_requests(&etcd) {
        return;
    }
    let output = std::process::Command::new(program())
        .args(["unread", &config(&etcd), "5"])
        .output()
        .unwrap();
    assert_success("unread", &output);
}

/// Progress notifications (every 100 ms of idleness) under steady writes:
/// in order with the events, never going back.
#[test]
fn progress_notifications_keep_order_under_writes() {
    let etcd = notifying_etcd();
    let out = run("order", &[&config(&etcd), "3", "60", "0", "0"]);
    assert!(out.contains("60 events"), "{out}");
}

/// A watch through a kill and restart of etcd, with a bookmark requested
/// every millisecond (with an older etcd, progress notifications only).
#[test]
fn bookmarks_keep_order_through_an_etcd_restart() {
    let mut etcd = notifying_etcd();
    let requests = if answers_progress_requests(&etcd.version()) {
        "1"
    } else {
        "0"
    };
    // Recursive, with progress notifications.
    let mut child = c_command(program())
        .args(["restart", &config(&etcd), "3", requests])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut said = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        match line.as_str() {
            "kill" => etcd.kill_member(0),
            "start" => etcd.start_member(0),
            _ => {
                said.push(line);
                continue;
            }
        }
        writeln!(stdin, "ok").unwrap();
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert_no_valgrind_errors(&output);
    assert!(
        output.status.success(),
        "restart failed ({:?}): {said:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A request on a watch that ended (its revision was compacted) fails
/// with the watch's error instead of promising a bookmark.
#[test]
fn a_request_on_an_ended_watch_returns_its_error() {
    let etcd = Etcd::start();
    let first = etcd.put("/registry/bm/a", b"{}");
    etcd.put("/registry/bm/a", b"{}");
    // History from `last` on stays: watching after `first` needs `first + 1`.
    let last = etcd.put("/registry/bm/a", b"{}");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut c = etcd_client::Client::connect(etcd.endpoints(), None)
                .await
                .unwrap();
            c.compact(last, None).await.unwrap();
        });
    run("ended", &[&config(&etcd), &first.to_string()]);
}

for_each_backend!(update_ttls_nested_updates_and_watch_flags);

/// TTLs given by update callbacks reach etcd as given, at the bounds too;
/// refused ones change nothing. Callbacks running nested updates of their
/// own key on the same handle, and reading and watching from inside: the
/// outermost update writes last, with its TTL. Watch flags: unknown bits
/// refused, etcd2 without progress notifications or requests.
fn update_ttls_nested_updates_and_watch_flags(backend: Backend) {
    let etcd = Etcd::start_backend(backend);
    run("per_backend", &[&config(&etcd), backend.type_name()]);
    let ttl = |key: &str| etcd.ttl(&format!("/registry/ttl/{key}"));
    let raw = |key: &str| etcd.raw(&format!("/registry/ttl/{key}"));
    // 7,000,000,000 s: a TTL etcd2 can still hold (its expiry is before 2262).
    let long = ttl("long").expect("a TTL of 7e9 s on /ttl/long");
    match backend {
        // The lease manager adds its minute of reuse.
        Backend::Etcd3 => {
            assert_eq!(long, 7_000_000_060);
            assert_eq!(ttl("max"), Some(9_000_000_000));
        }
        Backend::Etcd2 => {
            assert!((6_999_999_900..=7_000_000_000).contains(&long), "{long}");
            // Past 2262 etcd2 would silently keep no TTL at all: refused.
            assert_eq!(raw("max"), None);
        }
    }
    // No TTL given keeps etcd2's TTL; etcd3 writes without a lease, as Go.
    match backend {
        Backend::Etcd3 => assert_eq!(ttl("keep"), None),
        Backend::Etcd2 => {
            let kept = ttl("keep").expect("etcd2 keeps the TTL");
            assert!((250..=300).contains(&kept), "{kept}");
        }
    }
    assert_eq!(ttl("clear"), None, "a TTL of 0 clears it");
    // The same object is not written again for a new TTL, as in Go.
    let same = ttl("same").expect("the first TTL stays");
    assert!((250..=315).contains(&same), "{same}");
    assert!(raw("bad").is_some());
    assert_eq!(raw("absent"), None);
    assert_eq!(raw("one"), None, "a TTL of 1 s expired");
    // The outermost of the nested updates: 400 s.
    let re = ttl("re").expect("a TTL on /ttl/re");
    assert!((350..=420).contains(&re), "{re}");
}

/// storage_compact_revision reads what Go's `strconv.ParseInt(v, 10, 64)`
/// reads; what Go would not use (unparsable values, which its compactor
/// ignores, and negative ones, which it never lets lower its revision) is
/// a corrupt value, not a revision.
#[test]
fn the_compacted_revision_read_from_hostile_values() {
    let etcd = Etcd::start();
    let mut child = c_command(program())
        .args(["compact_values", &config(&etcd)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut check = |expect: &str| {
        writeln!(stdin, "{expect}").unwrap();
        let answer = lines.next().expect("the C program stopped").unwrap();
        assert_eq!(answer, "done", "after {expect}");
    };
    // Absent: none recorded.
    check("0");
    let mut huge = vec![b'7'; 1 << 20];
    for (value, expect) in [
        (&b"42"[..], "42"),
        (b"0", "0"),
        (b"+5", "5"),
        (b"007", "7"),
        (b"-0", "0"),
        (b"9223372036854775807", "9223372036854775807"),
        (b"", "corrupt"),
        (b" 5", "corrupt"),
        (b"5 ", "corrupt"),
        (b"5\n", "corrupt"),
        (b"0x10", "corrupt"),
        (b"1e3", "corrupt"),
        (b"99999999999999999999", "corrupt"),
        (b"9223372036854775808", "corrupt"),
        (b"\xff\xfe5", "corrupt"),
        (b"-1", "corrupt"),
        (b"-9223372036854775808", "corrupt"),
        (&huge, "corrupt"),
    ] {
        etcd.put("compact_rev_key", value);
        check(expect);
    }
    huge.truncate(0);
    etcd.delete("compact_rev_key");
    check("0");
    writeln!(stdin, "end").unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert_no_valgrind_errors(&output);
    assert_success("compact_values", &output);
}
