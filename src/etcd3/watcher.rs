//! Go's `etcd3/watcher.go`: a watch on one key or a key prefix from a
//! resource version, kept alive across connection loss.
//!
//! As Go's watcher (with clientv3's reconnection underneath):
//! - resource version 0 lists the current objects first (as `Added` events) and
//!   then follows the changes after the list's revision; N follows changes after N;
//! - a broken stream (etcd restarted, connection reset) is re-established from
//!   the last delivered revision + 1 with backoff, so no event is lost or repeated;
//!   failed requests are retried the same way while the failure may pass
//!   (etcd unreachable, restarting, overloaded); one that can only repeat (a
//!   TLS problem, an endpoint that is no etcd, a message over the size limit)
//!   ends the watch with its error, and is logged;
//! - a compacted revision ends the watch with `Code::Expired` (410 Gone);
//! - a value that cannot be decrypted or decoded ends the watch with a
//!   `CorruptObj` error naming the key, as Go sends an error event and stops:
//!   skipping it would leave the consumer's view silently wrong.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Event as EtcdEvent, EventType as EtcdEventType, GetOptions, WatchOptions as EtcdWatch,
    WatchResponse,
};
use tokio::sync::Notify;

use super::client::{classify, grpc_code, Failure, Rpc};
use super::pool::Pool;
use super::store::decode;
use crate::codec::Codec;
use crate::metrics::Method;
use crate::storage::{Code, Object, Result, StorageError};
use crate::value::Transformer;
use crate::watch::{queue, Backoff, Event, EventSender, EventType, Stop, Watch};

/// etcd drops a progress request while the watch has not caught up with its
/// revision: it is sent again this often until a bookmark answers it, as
/// Kubernetes' watch cache does.
const PROGRESS_RETRY: Duration = Duration::from_millis(100);

/// What a watch needs from the store.
pub(crate) struct Watcher {
    pub pool: Arc<Pool>,
    pub rpc: Rpc,
    pub transformer: Arc<dyn Transformer>,
    pub codec: Codec,
    pub progress_notify: bool,
    /// Notified when the consumer asks for a bookmark.
    pub progress_wanted: Arc<Notify>,
}

impl Watcher {
    /// Starts watching `key` (a full etcd key) after revision `from`, or with a
    /// list first when `from` is 0.
    pub(crate) fn start(self, key: String, recursive: bool, from: i64) -> Watch {
        // As Go: a recursive watch covers `key/...`, not siblings such as `keyX`.
        let key = if recursive && !key.ends_with('/') {
            key + "/"
        } else {
            key
        };
        Watch::spawn(move |tx| async move { self.run(&key, recursive, from, &tx).await })
    }

    async fn run(&self, key: &str, recursive: bool, from: i64, tx: &EventSender) -> Stop {
        let mut backoff = Backoff::new();
        let listed = match from {
            0 => self.list(key, recursive, tx, &mut backoff).await,
            _ => Ok(from),
        };
        match listed {
            Ok(synced) => self.follow(key, recursive, synced, tx, &mut backoff).await,
            Err(stop) => stop,
        }
    }

    /// Go's `sync`: the current objects as `Added` events; returns the list's revision.
    async fn list(
        &self,
        key: &str,
        recursive: bool,
        tx: &EventSender,
        backoff: &mut Backoff,
    ) -> std::result::Result<i64, Stop> {
        let options = if recursive {
            GetOptions::new().with_prefix()
        } else {
            GetOptions::new()
        };
        let resp = retry(key, backoff, || {
            self.pool.try_read(self.rpc, Method::Range, |c| {
                let (mut kv, options) = (c.kv_client(), options.clone());
                async move { kv.get(key, Some(options)).await }
            })
        })
        .await?;
        for kv in resp.kvs() {
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            let object = self.decode(&key, kv.value(), kv.mod_revision()).await?;
            let event = Event {
                event_type: EventType::Added,
                key,
                object,
                prev_object: None,
            };
            // A partly delivered list can only be resumed by listing again.
            queue(tx, event, 0).await?;
        }
        Ok(resp.header().map_or(0, |h| h.revision()))
    }

    /// Follows the changes after revision `synced`, re-establishing the etcd
    /// stream whenever it breaks. Returns only when the watch ends.
    async fn follow(
        &self,
        key: &str,
        recursive: bool,
        mut synced: i64,
        tx: &EventSender,
        backoff: &mut Backoff,
    ) -> Stop {
        let mut resumed = false;
        // A progress request not yet answered by a bookmark.
        let mut progress_pending = false;
        // When to send it again: a deadline that events coming in do not
        // move, or a steady stream of them would hold the request back.
        let mut progress_retry = tokio::time::Instant::now();
        loop {
            let mut options = EtcdWatch::new()
                .with_start_revision(synced + 1)
                .with_prev_key();
            if recursive {
                options = options.with_prefix();
            }
            if self.progress_notify {
                options = options.with_progress_notify();
            }
            let stream = retry(key, backoff, || {
                self.pool.stream(self.rpc, Method::Watch, |c| {
                    let (mut watch, options) = (c.watch_client(), options.clone());
                    async move { watch.watch(key, Some(options)).await }
                })
            })
            .await;
            let (mut stream, call, url) = match stream {
                Ok(stream) => stream,
                Err(stop) => return stop,
            };
            if resumed {
                self.pool.metrics().watch_resumed();
                tracing::info!(key, revision = synced + 1, "etcd watch resumed");
            }
            loop {
                let message = tokio::select! {
                    message = stream.message() => message,
                    () = self.progress_wanted.notified() => {
                        progress_pending = true;
                        progress_retry = tokio::time::Instant::now() + PROGRESS_RETRY;
                        // A failed send means a broken stream, which `message` reports.
                        let _ = stream.request_progress().await;
                        continue;
                    }
                    () = tokio::time::sleep_until(progress_retry), if progress_pending => {
                        progress_retry = tokio::time::Instant::now() + PROGRESS_RETRY;
                        let _ = stream.request_progress().await;
                        continue;
                    }
                };
                match message {
                    Ok(Some(resp)) => {
                        call.received();
                        backoff.reset();
                        match self.deliver(&resp, &mut synced, tx).await {
                            Ok(bookmark) => progress_pending &= !bookmark,
                            Err(stop) => return stop,
                        }
                    }
                    Ok(None) => {
                        call.finish(tonic::Code::Ok);
                        break;
                    }
                    Err(e) => {
                        call.finish(grpc_code(&e));
                        let failure = classify(&e, self.rpc, &url);
                        if !failure.may_heal() {
                            return ended(
                                key,
                                failure.into_error().context("the etcd watch stream failed"),
                            );
                        }
                        break;
                    }
                }
            }
            // The stream broke: the next one starts after the last delivered revision.
            resumed = true;
            tracing::info!(
                key,
                revision = synced + 1,
                "the etcd watch stream broke; resuming"
            );
            backoff.wait().await;
        }
    }

    /// Queues the events of one response, advancing `synced` past them;
    /// tells whether it queued a bookmark (which answers a progress request).
    async fn deliver(
        &self,
        resp: &WatchResponse,
        synced: &mut i64,
        tx: &EventSender,
    ) -> std::result::Result<bool, Stop> {
        if resp.compact_revision() != 0 {
            return Err(expired(*synced, resp.compact_revision()).into());
        }
        if resp.canceled() {
            let reason = resp.cancel_reason();
            let code = if reason.contains("permission denied") {
                Code::PermissionDenied
            } else {
                Code::Unreachable
            };
            return Err(
                StorageError::new(code, format!("etcd canceled the watch: {reason}")).into(),
            );
        }
        if is_progress_notify(resp) {
            let revision = resp.header().map_or(0, |h| h.revision());
            // Behind what was delivered (an etcd member that lags): no answer.
            if revision < *synced {
                return Ok(false);
            }
            // A full buffer drops it; a request it answered is sent again.
            let queued = tx
                .try_send_bookmark(Event::bookmark(revision))
                .map_err(|_| Stop::Gone)?;
            if queued {
                // Every event up to it has come: a resumed stream can start after it.
                *synced = revision;
            }
            return Ok(queued);
        }
        // etcd never splits one revision across responses, so a broken stream
        // always resumes at a revision boundary.
        for e in resp.events() {
            let event = self.event(e).await?;
            let rev = event.resource_version();
            queue(tx, event, rev - 1).await?;
            *synced = rev;
        }
        Ok(false)
    }

    /// Go's `parseEvent` and `transform`.
    async fn event(&self, e: &EtcdEvent) -> Result<Event> {
        let kv = e
            .kv()
            .ok_or_else(|| StorageError::internal("etcd sent a watch event without a key"))?;
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        let rev = kv.mod_revision();
        let prev_object = match e.prev_kv() {
            Some(p) => Some(self.decode(&key, p.value(), p.mod_revision()).await?),
            None => None,
        };
        let (event_type, object) = match e.event_type() {
            EtcdEventType::Put if kv.create_revision() == rev => {
                (EventType::Added, self.decode(&key, kv.value(), rev).await?)
            }
            EtcdEventType::Put => (
                EventType::Modified,
                self.decode(&key, kv.value(), rev).await?,
            ),
            EtcdEventType::Delete => {
                let prev = e.prev_kv().ok_or_else(|| {
                    StorageError::internal(format!(
                        "etcd event received with PrevKv=nil (key={key:?}, modRevision={rev}, type=DELETE)"
                    ))
                })?;
                // Go sends the last state stamped with the deletion's revision.
                (
                    EventType::Deleted,
                    self.decode(&key, prev.value(), rev).await?,
                )
            }
        };
        Ok(Event {
            event_type,
            key,
            object,
            prev_object,
        })
    }

    async fn decode(&self, key: &str, value: &[u8], resource_version: i64) -> Result<Object> {
        decode(
            &*self.transformer,
            self.pool.metrics(),
            self.codec,
            key,
            value,
            resource_version,
        )
        .await
        .map(|s| s.object)
    }
}

/// clientv3's `IsProgressNotify`: a response that carries only a revision.
fn is_progress_notify(resp: &WatchResponse) -> bool {
    resp.events().is_empty()
        && !resp.canceled()
        && !resp.created()
        && resp.compact_revision() == 0
        && resp.header().is_some_and(|h| h.revision() != 0)
}

/// Go's `interpretWatchError` for `ErrCompacted`.
fn expired(synced: i64, compacted: i64) -> StorageError {
    let mut e = StorageError::new(
        Code::Expired,
        format!(
            "The resourceVersion for the provided watch is too old. \
             (watching after revision {synced}; etcd's history starts at revision {compacted})"
        ),
    );
    e.resource_version = synced;
    e
}

/// Runs `attempt` until it succeeds, waiting between failures that may pass
/// (etcd unreachable, restarting or overloaded); any other failure ends the
/// watch with its error.
async fn retry<T, F, Fut>(
    key: &str,
    backoff: &mut Backoff,
    mut attempt: F,
) -> std::result::Result<T, Stop>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, Failure>>,
{
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(failure) if failure.may_heal() => {
                let error = &failure.error().message;
                tracing::debug!(key = crate::watch::log_key(key), %error, "etcd watch request failed; trying again");
                backoff.wait().await
            }
            Err(failure) => return Err(ended(key, failure.into_error())),
        }
    }
}

/// The end of a watch by a failure that would only repeat: logged, as the
/// consumer may not look at the error for a while.
fn ended(key: &str, error: StorageError) -> Stop {
    tracing::warn!(key = crate::watch::log_key(key), code = ?error.code, error = %error.message, "etcd watch ended");
    Stop::Fail(error)
}
