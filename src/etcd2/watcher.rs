//! Go's `storage/etcd/etcd_watcher.go`: a watch as a chain of v2 long polls
//! (`wait=true&waitIndex=N`), each returning the first change at or after N.
//!
//! - resource version 0 reads the current objects first (as `Added` events)
//!   and then follows the changes after the read's index; N follows changes after N;
//! - a failed poll (etcd restarted, connection reset, a leader election) is
//!   sent again from the last delivered index + 1 with backoff, so no event
//!   is lost or repeated; a failure that can only repeat (a TLS problem, an
//!   endpoint that is no etcd v2 server, a key too long for a URL) ends the
//!   watch with its error, and is logged;
//! - an index etcd no longer keeps (v2 holds the last 1000 events) ends the
//!   watch with `Code::Expired` (errorCode 401, Kubernetes' 410 Gone);
//! - a value that cannot be decoded ends the watch with `CorruptObj`.

use std::sync::Arc;
use std::time::Duration;

use super::client::{Client, Response, Waited, EVENT_INDEX_CLEARED, KEY_NOT_FOUND};
use super::store::{decode, leaves, read, storage_error};
use crate::codec::Codec;
use crate::storage::{Code, Object, Result, StorageError};
use crate::watch::{queue, Backoff, Event, EventSender, EventType, Stop, Watch};

pub(crate) struct Watcher {
    pub client: Arc<Client>,
    pub codec: Codec,
    pub quorum: bool,
    pub timeout: Duration,
}

impl Watcher {
    pub(crate) fn start(self, key: String, recursive: bool, from: i64) -> Watch {
        Watch::spawn(move |tx| async move { self.run(&key, recursive, from, &tx).await })
    }

    async fn run(&self, key: &str, recursive: bool, from: i64, tx: &EventSender) -> Stop {
        let mut backoff = Backoff::new();
        let synced = match from {
            0 => match self.list(key, recursive, tx, &mut backoff).await {
                Ok(index) => index,
                Err(stop) => return stop,
            },
            _ => from,
        };
        self.follow(key, recursive, synced, tx, &mut backoff).await
    }

    /// Go's `etcdGetInitialWatchState`: the current objects as `Added` events;
    /// returns the read's index.
    async fn list(
        &self,
        key: &str,
        recursive: bool,
        tx: &EventSender,
        backoff: &mut Backoff,
    ) -> std::result::Result<i64, Stop> {
        let answer = loop {
            match read(&self.client, key, recursive, self.quorum, self.timeout).await {
                Ok(Err(e)) if passing(&e) => backoff.wait().await,
                Ok(answer) => break answer,
                Err(f) if f.may_heal() => backoff.wait().await,
                Err(f) => return Err(ended(key, f.into_error())),
            }
        };
        let (nodes, index) = match answer {
            // A directory's objects are listed by a recursive watch only.
            Ok(resp) if resp.node.dir && recursive => (leaves(resp.node), resp.index),
            Ok(resp) if resp.node.dir => (Vec::new(), resp.index),
            Ok(resp) => (vec![resp.node], resp.index),
            Err(e) if e.error_code == KEY_NOT_FOUND => (Vec::new(), e.index),
            Err(e) => return Err(storage_error(&e, key, 0).into()),
        };
        for node in nodes {
            let object = decode(self.codec, &node.key, &node, node.modified_index)?;
            let event = Event {
                event_type: EventType::Added,
                key: node.key,
                object,
                prev_object: None,
            };
            // A partly delivered list can only be resumed by listing again.
            queue(tx, event, 0).await?;
        }
        Ok(index)
    }

    /// Polls for the changes after index `synced` until the watch ends.
    async fn follow(
        &self,
        key: &str,
        recursive: bool,
        mut synced: i64,
        tx: &EventSender,
        backoff: &mut Backoff,
    ) -> Stop {
        loop {
            let mut query = vec![
                ("wait", "true".to_owned()),
                ("waitIndex", (synced + 1).to_string()),
            ];
            if recursive {
                query.push(("recursive", "true".to_owned()));
            }
            // A poll lasts the request timeout: the bound on how long a
            // silently dead connection can hold the watch.
            let answer = match self
                .client
                .wait(key, &query, self.timeout, self.timeout)
                .await
            {
                Ok(Waited::Answer(answer)) => *answer,
                // Nothing changed under the key up to etcd's index when the
                // poll began: poll again after it, so that a quiet watch does
                // not fall out of v2's short history while others write.
                Ok(Waited::Quiet { index }) => {
                    synced = synced.max(index);
                    continue;
                }
                Err(f) if f.may_heal() => {
                    backoff.wait().await;
                    continue;
                }
                Err(f) => return ended(key, f.into_error()),
            };
            let resp = match answer {
                Ok(resp) => resp,
                Err(e) if passing(&e) => {
                    backoff.wait().await;
                    continue;
                }
                Err(e) if e.error_code == EVENT_INDEX_CLEARED => {
                    return expired(synced, &e.to_string()).into()
                }
                Err(e) => return storage_error(&e, key, synced).into(),
            };
            backoff.reset();
            let index = resp.node.modified_index;
            match self.event(resp) {
                Ok(Some(event)) => {
                    if let Err(stop) = queue(tx, event, synced).await {
                        return stop;
                    }
                }
                Ok(None) => {}
                Err(e) => return e.into(),
            }
            synced = index;
        }
    }

    /// Go's `etcdWatcher.sendResult`; `None` for a directory's own change.
    fn event(&self, resp: Response) -> Result<Option<Event>> {
        if resp.node.dir {
            return Ok(None);
        }
        let key = resp.node.key.clone();
        let index = resp.node.modified_index;
        let prev_object = resp
            .prev_node
            .as_ref()
            .map(|p| decode(self.codec, &key, p, p.modified_index))
            .transpose()?;
        let decode_now = || decode(self.codec, &key, &resp.node, index);
        let (event_type, object): (EventType, Object) = match resp.action.as_str() {
            "create" => (EventType::Added, decode_now()?),
            "set" if prev_object.is_none() => (EventType::Added, decode_now()?),
            "set" | "update" | "compareAndSwap" => (EventType::Modified, decode_now()?),
            "delete" | "compareAndDelete" | "expire" => {
                let prev = resp.prev_node.as_ref().ok_or_else(|| {
                    StorageError::internal(format!(
                        "etcd sent a {} event without the previous value (key={key:?}, index={index})",
                        resp.action
                    ))
                })?;
                // As Go: the last state, stamped with the deletion's index.
                (EventType::Deleted, decode(self.codec, &key, prev, index)?)
            }
            other => {
                return Err(StorageError::internal(format!(
                    "etcd sent an unknown watch action {other:?} (key={key:?})"
                )))
            }
        };
        Ok(Some(Event {
            event_type,
            key,
            object,
            prev_object,
        }))
    }
}

/// etcd's errors that pass: v2's raft errors (300–399: an internal raft
/// error, a leader election under way).
fn passing(e: &super::client::EtcdError) -> bool {
    (300..400).contains(&e.error_code)
}

/// The end of a watch by a failure that would only repeat: logged, as the
/// consumer may not look at the error for a while.
fn ended(key: &str, error: StorageError) -> Stop {
    tracing::warn!(key = crate::watch::log_key(key), code = ?error.code, error = %error.message, "etcd watch ended");
    Stop::Fail(error)
}

/// Go's watcher on errorCode 401 (`EcodeEventIndexCleared`).
fn expired(synced: i64, detail: &str) -> StorageError {
    let mut e = StorageError::new(
        Code::Expired,
        format!(
            "The resourceVersion for the provided watch is too old. \
             (watching after index {synced}; etcd v2 keeps only the last 1000 events: {detail})"
        ),
    );
    e.resource_version = synced;
    e
}
