//! The endpoints of a cluster and the retry policy over them (the part of Go's
//! clientv3 balancer kube-apiserver relies on, made stricter): a failed
//! endpoint leaves the rotation for a while and is probed back in by the next
//! request that finds no healthy endpoint, or when its time out is over.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use etcd_client::Client;
use tokio::task::JoinHandle;

use super::client::{attempt, Dialer, Failure, Rpc};
use crate::config::{Config, Endpoint, Scheme};
use crate::metrics::{Call, Method, Metrics};
use crate::storage::{Result, StorageError};
use crate::value::config::Secret;

/// How long a failed endpoint stays out of rotation, doubling per consecutive
/// failure up to `MAX_DOWN`.
const FIRST_DOWN: Duration = Duration::from_millis(500);
const MAX_DOWN: Duration = Duration::from_secs(10);
/// Pause between attempts, doubling up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// The least time worth starting another attempt with.
const MIN_ATTEMPT: Duration = Duration::from_millis(50);
/// A deadline no request reaches (a century).
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

struct Member {
    url: String,
    client: Client,
    /// Whether this client has logged in with the configured credentials.
    authenticated: AtomicBool,
    /// `Some((until, failures))` while out of rotation.
    down: Mutex<Option<(Instant, u32)>>,
}

impl Member {
    fn new(client: Client, url: String) -> Member {
        Member {
            url,
            client,
            authenticated: AtomicBool::new(false),
            down: Mutex::new(None),
        }
    }

    fn down_until(&self) -> Option<Instant> {
        self.down
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|(until, _)| until)
    }

    fn failed(&self) {
        let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        let failures = down.map_or(0, |(_, f)| f) + 1;
        let pause = FIRST_DOWN
            .saturating_mul(1 << failures.min(8))
            .min(MAX_DOWN);
        *down = Some((Instant::now() + pause, failures));
        if failures == 1 {
            tracing::warn!(endpoint = %self.url, "etcd endpoint marked down for {pause:?}");
        } else {
            tracing::debug!(endpoint = %self.url, failures, "etcd endpoint still down; out for {pause:?}");
        }
    }

    fn succeeded(&self) {
        let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        if down.is_some() {
            *down = None;
            tracing::info!(endpoint = %self.url, "etcd endpoint is up again");
        }
    }
}

pub(crate) struct Pool {
    /// Replaced whole by `sync`; requests hold the list they started with.
    members: RwLock<Arc<Vec<Arc<Member>>>>,
    next: AtomicUsize,
    credentials: Option<(String, Secret)>,
    dialer: Dialer,
    metrics: Arc<Metrics>,
    /// Advertised URLs `sync` left out and has logged.
    ignored: Mutex<HashSet<String>>,
}

impl Pool {
    /// Connects lazily; counts requests in `metrics`.
    pub async fn connect(config: &Config, metrics: Arc<Metrics>) -> Result<Pool> {
        let (dialer, urls) = Dialer::new(config)?;
        let mut members = Vec::new();
        for url in urls {
            members.push(Arc::new(Member::new(dialer.client(&url).await?, url)));
        }
        let credentials = config
            .credentials()
            .map(|(user, password)| (user.to_owned(), password.clone()));
        Ok(Pool {
            members: RwLock::new(Arc::new(members)),
            next: AtomicUsize::new(0),
            credentials,
            dialer,
            metrics,
            ignored: Mutex::new(HashSet::new()),
        })
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn members(&self) -> Arc<Vec<Arc<Member>>> {
        self.members
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The next member in rotation (when every member is out, the one due back
    /// first), and how many members there are.
    fn pick(&self) -> (Arc<Member>, usize) {
        let members = self.members();
        let n = members.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let member = (0..n)
            .map(|i| &members[(start + i) % n])
            .find(|m| m.down_until().is_none_or(|until| until <= now))
            .unwrap_or_else(|| {
                members
                    .iter()
                    .min_by_key(|m| m.down_until())
                    .expect("a pool has members")
            })
            .clone();
        (member, n)
    }

    /// Go's clientv3 auto-sync: the endpoints become the cluster's client URLs,
    /// as the member list gives them. Members that stay keep their state. URLs
    /// of the other transport than the configured one (see `learned_url`),
    /// malformed ones and ones that cannot be dialed are left out and logged.
    pub async fn sync(&self, rpc: Rpc) -> Result<()> {
        let resp = self
            .read(rpc, Method::MemberList, |c| {
                let mut cluster = c.cluster_client();
                async move { cluster.member_list().await }
            })
            .await?;
        let tls = self.dialer.tls();
        let mut urls: Vec<String> = Vec::new();
        for advertised in resp.members().iter().flat_map(|m| m.client_urls()) {
            match learned_url(advertised, tls) {
                Ok(url) => urls.push(url),
                Err(why) => self.ignore(advertised, why),
            }
        }
        urls.sort();
        urls.dedup();
        let current = self.members();
        let mut next = Vec::new();
        for url in urls {
            match current.iter().find(|m| m.url == url) {
                Some(m) => next.push(m.clone()),
                None => match self.dialer.client(&url).await {
                    Ok(client) => next.push(Arc::new(Member::new(client, url))),
                    Err(e) => self.ignore(&url, &e.message),
                },
            }
        }
        if next.is_empty() {
            return Ok(());
        }
        let changed = next.len() != current.len()
            || next.iter().zip(current.iter()).any(|(a, b)| a.url != b.url);
        if changed {
            let urls: Vec<&str> = next.iter().map(|m| m.url.as_str()).collect();
            tracing::info!(endpoints = ?urls, "etcd endpoints synced from the member list");
        }
        *self.members.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        Ok(())
    }

    /// Logs, once per URL, an advertised client URL that sync leaves out.
    fn ignore(&self, url: &str, why: &str) {
        let mut ignored = self.ignored.lock().unwrap_or_else(|p| p.into_inner());
        if ignored.insert(url.to_owned()) {
            tracing::warn!(endpoint = %url, "ignoring an endpoint etcd's member list advertises: {why}");
        }
    }

    /// Runs an idempotent request (a read), moving to another endpoint after a
    /// connection failure, with backoff, until the deadline.
    pub async fn read<T, F, Fut>(&self, rpc: Rpc, method: Method, op: F) -> Result<T>
    where
        F: Fn(&Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        self.try_read(rpc, method, op)
            .await
            .map_err(Failure::into_error)
    }

    /// `read`, telling a failure that may pass (`Failure::may_heal`) from one
    /// that would only repeat.
    pub async fn try_read<T, F, Fut>(
        &self,
        rpc: Rpc,
        method: Method,
        op: F,
    ) -> std::result::Result<T, Failure>
    where
        F: Fn(&Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let (value, call, _) = self.run(rpc, method, true, op).await?;
        call.succeeded();
        Ok(value)
    }

    /// Opens a stream as `try_read` runs a request; the returned call counts
    /// its messages and its end, and the URL names the endpoint serving it.
    pub async fn stream<T, F, Fut>(
        &self,
        rpc: Rpc,
        method: Method,
        op: F,
    ) -> std::result::Result<(T, Call<'_>, String), Failure>
    where
        F: Fn(&Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        self.run(rpc, method, true, op).await
    }

    /// Runs a request that must not be applied twice: it is retried only when
    /// it provably never reached etcd; otherwise the error says the outcome is unknown.
    pub async fn write<T, F, Fut>(&self, rpc: Rpc, method: Method, op: F) -> Result<T>
    where
        F: Fn(&Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let (value, call, _) = self
            .run(rpc, method, false, op)
            .await
            .map_err(Failure::into_error)?;
        call.succeeded();
        Ok(value)
    }

    async fn run<T, F, Fut>(
        &self,
        rpc: Rpc,
        method: Method,
        idempotent: bool,
        op: F,
    ) -> std::result::Result<(T, Call<'_>, String), Failure>
    where
        F: Fn(&Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let metrics = self.metrics.rpc(method);
        let now = Instant::now();
        // A timeout past what the clock holds waits for ever, as it asks.
        let deadline = now.checked_add(rpc.timeout).unwrap_or(now + FAR_FUTURE);
        let mut backoff = FIRST_BACKOFF;
        loop {
            let (member, members) = self.pick();
            let member = member.as_ref();
            let remaining = deadline.saturating_duration_since(Instant::now());
            // A read leaves time for another endpoint if this one hangs.
            let budget = if idempotent && members > 1 && remaining > Duration::from_secs(2) {
                remaining / 2
            } else {
                remaining
            };
            let url = member.url.as_str();
            let result = match self.login(member, rpc, budget).await {
                Ok(()) => attempt(rpc, url, budget, metrics.start(), op(&member.client)).await,
                Err(failure) => Err(failure),
            };
            let wrong_peer = matches!(result, Err(Failure::WrongPeer(_)));
            let error = match result {
                Ok((value, call)) => {
                    member.succeeded();
                    return Ok((value, call, member.url.clone()));
                }
                Err(Failure::Final(e)) => return Err(Failure::Final(e)),
                // Not an etcd server: asking it again cannot help, another may.
                Err(Failure::WrongPeer(e)) if members == 1 => {
                    member.failed();
                    return Err(Failure::WrongPeer(e));
                }
                Err(Failure::WrongPeer(e) | Failure::NotSent(e)) => e,
                Err(Failure::Connection(e)) if idempotent => e,
                Err(Failure::Connection(e)) => {
                    member.failed();
                    return Err(Failure::Connection(unknown_outcome(e, url)));
                }
            };
            member.failed();
            let remaining = deadline.saturating_duration_since(Instant::now());
            // An attempt left with a sliver of time would only time out and
            // hide the failure that matters behind a timeout.
            if remaining <= backoff + MIN_ATTEMPT {
                let error = error.context(&format!("etcd at {url} (no endpoint answered in time)"));
                return Err(if wrong_peer {
                    Failure::WrongPeer(error)
                } else {
                    Failure::Connection(error)
                });
            }
            metrics.retried();
            tracing::debug!(endpoint = %member.url, ?method, error = %error.message, "retrying the etcd request in {backoff:?}");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

impl Pool {
    /// The etcd version of each member, asked of each in turn: Kubernetes'
    /// feature checks hold only when every endpoint has the feature.
    pub async fn member_versions(&self, rpc: Rpc) -> Result<Vec<(String, String)>> {
        let metrics = self.metrics.rpc(Method::Status);
        let mut versions = Vec::new();
        for member in self.members().iter() {
            let asked = async {
                self.login(member, rpc, rpc.timeout).await?;
                let mut maintenance = member.client.maintenance_client();
                attempt(
                    rpc,
                    &member.url,
                    rpc.timeout,
                    metrics.start(),
                    maintenance.status(),
                )
                .await
            };
            let (status, call) = asked.await.map_err(Failure::into_error)?;
            call.succeeded();
            member.succeeded();
            versions.push((member.url.clone(), status.version().to_owned()));
        }
        Ok(versions)
    }

    /// Logs a member's client in before its first request, when credentials are configured.
    async fn login(
        &self,
        member: &Member,
        rpc: Rpc,
        budget: Duration,
    ) -> std::result::Result<(), Failure> {
        let Some((user, password)) = &self.credentials else {
            return Ok(());
        };
        if member.authenticated.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut client = member.client.clone();
        let creds = Some((user.clone(), password.expose().to_owned()));
        let call = self.metrics.rpc(Method::Authenticate).start();
        let result = attempt(rpc, &member.url, budget, call, client.update_user(creds)).await;
        match result {
            Ok(((), call)) => call.succeeded(),
            Err(failure) => {
                let error = &failure.error().message;
                tracing::warn!(endpoint = %member.url, user = %user, %error, "logging in to etcd failed");
                return Err(failure);
            }
        }
        tracing::info!(endpoint = %member.url, user = %user, "logged in to etcd");
        member.authenticated.store(true, Ordering::Release);
        Ok(())
    }
}

/// The URL to use for a client URL a member advertises, or why it is left out.
/// The configured transport holds for learned endpoints: under TLS a plaintext
/// `http://` URL would send credentials and values in clear, and without TLS
/// there is nothing (no CA, no client certificate) to secure an `https://` one
/// with, so both are skipped rather than followed.
fn learned_url(advertised: &str, tls: bool) -> std::result::Result<String, &'static str> {
    let endpoint = Endpoint::parse(advertised)?;
    match endpoint.scheme {
        Scheme::Http if tls => {
            Err("plaintext http:// while the configured endpoints use TLS: it would send credentials and values in clear")
        }
        Scheme::Https if !tls => {
            Err("https:// while the configured endpoints are plaintext: configure https:// endpoints (and ca_file) to use TLS")
        }
        _ => Ok(endpoint.url(tls)),
    }
}

fn unknown_outcome(e: StorageError, url: &str) -> StorageError {
    let message = format!(
        "the connection to etcd at {url} failed while the write was in flight; \
         it may or may not have been applied: {}",
        e.message
    );
    StorageError::new(e.code, message)
}

/// Runs `Pool::sync` every `interval` on the current runtime; abort the handle to stop.
pub(crate) fn start_auto_sync(pool: Arc<Pool>, interval: Duration, rpc: Rpc) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            // A failed sync keeps the endpoints it had; the next one retries.
            let _ = pool.sync(rpc).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::learned_url;

    #[test]
    fn learned_urls_keep_the_configured_transport() {
        assert_eq!(
            learned_url("https://10.0.0.1:2379", true).unwrap(),
            "https://10.0.0.1:2379"
        );
        assert_eq!(
            learned_url("HTTP://10.0.0.1:2379/", false).unwrap(),
            "http://10.0.0.1:2379"
        );
        assert_eq!(
            learned_url("10.0.0.1:2379", true).unwrap(),
            "https://10.0.0.1:2379"
        );
        assert!(learned_url("http://10.0.0.1:2379", true)
            .unwrap_err()
            .contains("plaintext"));
        assert!(learned_url("https://10.0.0.1:2379", false).is_err());
        for bad in [
            "unix:///run/etcd.sock",
            "http://10.0.0.1",
            "",
            "http://a b:1",
        ] {
            assert!(learned_url(bad, false).is_err(), "{bad}");
        }
    }
}
