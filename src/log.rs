//! The library's logs: `tracing` events, written to stderr when the
//! environment variable `APISERVER_STORAGE_LOG` holds a filter, and nowhere
//! otherwise. Events name keys, endpoints and users, never a value, password,
//! token or key.

use std::sync::Once;

use tracing_subscriber::EnvFilter;

/// The variable holding the filter, in `tracing-subscriber`'s `EnvFilter` syntax.
pub const ENV: &str = "APISERVER_STORAGE_LOG";

/// The crate's target, which bare levels are limited to.
const TARGET: &str = "apiserver_storage";

/// Installs the stderr logger once per process, when `APISERVER_STORAGE_LOG`
/// is set. A process that already has a global subscriber keeps it (the
/// library's events then go there). Called when a store or health check is created.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(spec) = std::env::var(ENV) else {
            return;
        };
        let spec = scoped(&spec);
        if spec.is_empty() {
            return;
        }
        match EnvFilter::try_new(&spec) {
            Ok(filter) => {
                let _ = tracing_subscriber::fmt()
                    .with_env_filter(filter)
                    .with_writer(std::io::stderr)
                    .with_ansi(false)
                    .try_init();
            }
            Err(e) => eprintln!("apiserver-storage: ignoring {ENV}={spec:?}: {e}"),
        }
    });
}

/// A bare level (`debug`) applies to the library's own events only: the
/// transport's debug logs are noisy, and would need naming (`h2=debug`).
fn scoped(spec: &str) -> String {
    spec.split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            if d.contains('=') || d.contains('[') || !is_level(d) {
                d.to_owned()
            } else {
                format!("{TARGET}={d}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn is_level(d: &str) -> bool {
    ["off", "error", "warn", "info", "debug", "trace"]
        .iter()
        .any(|l| l.eq_ignore_ascii_case(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_levels_are_scoped_to_the_library() {
        assert_eq!(scoped("debug"), "apiserver_storage=debug");
        assert_eq!(
            scoped(" INFO , h2=trace"),
            "apiserver_storage=INFO,h2=trace"
        );
        assert_eq!(
            scoped("apiserver_storage::etcd3=trace"),
            "apiserver_storage::etcd3=trace"
        );
        assert_eq!(scoped(""), "");
    }
}
