//! Compiling C programs against the committed header and the built library,
//! and running them under valgrind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>`, where cargo put the cdylib this test was built with.
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let so = dir.join("libapiserver_storage.so");
    let built = std::fs::metadata(&so)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{so:?} not found: run `cargo build` first"));
    // `cargo test` alone rebuilds the rlib the Rust tests use, not the cdylib.
    if let Some(newer) = newest_source().filter(|(t, _)| *t > built) {
        panic!(
            "{so:?} is older than {:?}: run `cargo build` first",
            newer.1
        );
    }
    // Programs linked with it need the library by its soname, as when installed.
    let soname = dir.join(format!(
        "libapiserver_storage.so.{}",
        env!("CARGO_PKG_VERSION_MAJOR")
    ));
    if !soname.exists() {
        let _ = std::os::unix::fs::symlink("libapiserver_storage.so", &soname);
    }
    dir
}

fn newest_source() -> Option<(std::time::SystemTime, PathBuf)> {
    fn walk(dir: &Path, newest: &mut Option<(std::time::SystemTime, PathBuf)>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, newest);
            } else if let Ok(t) = entry.metadata().and_then(|m| m.modified()) {
                if newest.as_ref().is_none_or(|(n, _)| t > *n) {
                    *newest = Some((t, path));
                }
            }
        }
    }
    let mut newest = None;
    walk(&manifest_dir().join("src"), &mut newest);
    newest
}

/// Compiles `sources` (paths relative to the crate) into an executable linked
/// against the shared library; warnings are errors.
/// `STORAGE_TEST_SANITIZER=address` builds the C programs with AddressSanitizer
/// (which also checks the library's heap: it allocates through malloc) and
/// runs them natively instead of under valgrind.
fn sanitizer() -> Option<String> {
    std::env::var("STORAGE_TEST_SANITIZER")
        .ok()
        .filter(|s| !s.is_empty())
}

pub fn compile_c(sources: &[&str], out_name: &str, extra: &[&str]) -> PathBuf {
    let lib = lib_dir();
    let sanitizer = sanitizer();
    let suffix = sanitizer
        .as_deref()
        .map_or(String::new(), |s| format!("-{s}"));
    let out = lib.join(format!("ctest-{out_name}{suffix}"));
    // C++ sources (the header-only wrapper's tests) go to the C++ compiler.
    let cxx = sources.iter().any(|s| s.ends_with(".cpp"));
    let (compiler, std) = if cxx {
        ("CXX", "-std=c++17")
    } else {
        ("CC", "-std=c99")
    };
    let default = if cxx { "c++" } else { "cc" };
    let mut cmd = Command::new(std::env::var(compiler).unwrap_or_else(|_| default.into()));
    cmd.args([
        std,
        "-D_POSIX_C_SOURCE=200809L",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
        "-g",
    ])
    .arg("-I")
    .arg(manifest_dir().join("include"));
    if let Some(s) = &sanitizer {
        cmd.arg(format!("-fsanitize={s}"))
            .arg("-fno-omit-frame-pointer");
    }
    for s in sources {
        cmd.arg(manifest_dir().join(s));
    }
    cmd.arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()));
    cmd.args(["-lapiserver_storage", "-lpthread"])
        .args(extra)
        .arg("-o")
        .arg(&out);
    let output = cmd.output().expect("run the C compiler");
    assert!(
        output.status.success(),
        "compiling {sources:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// A command running a compiled C program under valgrind (memcheck; any error
/// or definite leak exits 99) unless `STORAGE_TEST_VALGRIND=0`.
pub fn c_command(program: &Path) -> Command {
    if sanitizer().is_some() {
        let mut c = Command::new(program);
        // Exit 99 like valgrind, so both fail the same way.
        c.env("ASAN_OPTIONS", "exitcode=99:detect_leaks=1");
        return c;
    }
    if std::env::var("STORAGE_TEST_VALGRIND").is_ok_and(|v| v == "0") {
        return Command::new(program);
    }
    let mut c = Command::new("valgrind");
    c.args([
        "--quiet",
        "--error-exitcode=99",
        "--leak-check=full",
        "--errors-for-leak-kinds=definite",
        "--show-leak-kinds=definite",
    ])
    .arg(program);
    c
}

/// Runs a compiled C program through `c_command`, failing on valgrind errors.
pub fn run_c(program: &Path, args: &[&str]) -> Output {
    let output = c_command(program)
        .args(args)
        .output()
        .expect("run the C test program (is valgrind installed?)");
    assert_no_valgrind_errors(&output);
    output
}

pub fn assert_no_valgrind_errors(output: &Output) {
    assert!(
        output.status.code() != Some(99),
        "valgrind or AddressSanitizer found errors:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Asserts the program exited 0, showing its output otherwise.
pub fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `go` in `dir` (a module: Go's module mode, offline), with cgo pointed at
/// the committed header and the built library. Modules and the build cache
/// live under `work` and `target/` (the cache makes `-race` rebuilds cheap).
pub fn go_command(dir: &str, work: &Path) -> Command {
    let mut c = cgo_command(dir);
    c.env("GOPATH", work);
    c
}

/// `go_command` for the modules under `tests/kube`, which build against the
/// Kubernetes modules already in the user's module cache (`go env
/// GOMODCACHE`; `scripts/install-deps.sh` downloads them), offline.
pub fn kube_go_command(dir: &str) -> Command {
    cgo_command(dir)
}

fn cgo_command(dir: &str) -> Command {
    let lib = lib_dir();
    let mut c = Command::new("go");
    c.current_dir(manifest_dir().join(dir))
        .env("GOCACHE", lib.join("go-build-cache"))
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("CGO_ENABLED", "1")
        .env(
            "CGO_CFLAGS",
            format!("-I{}", manifest_dir().join("include").display()),
        )
        .env(
            "CGO_LDFLAGS",
            format!("-L{0} -Wl,-rpath,{0}", lib.display()),
        )
        .env_remove("GO111MODULE");
    c
}
