//! `k8s.io/apimachinery/pkg/watch`: the events a watch delivers, and the
//! bounded buffer between a backend's event stream and the consumer.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, Notify};
use tokio::task::AbortHandle;

use crate::storage::{Object, Result, StorageError};

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Options of a watch, as the parts of Go's `storage.ListOptions` a watch uses.
#[derive(Clone, Debug, Default)]
pub struct WatchOptions {
    /// `""`/`"0"`: the current objects first (as `Added` events), then every
    /// change after them; `N`: every change after revision N.
    pub resource_version: String,
    /// Watch every key under `key + "/"` instead of `key` alone.
    pub recursive: bool,
    /// etcd's `WithProgressNotify` (Go's `ProgressNotify`): while no event
    /// comes, etcd sends a bookmark every `--watch-progress-notify-interval`.
    pub progress_notify: bool,
}

/// Go's `watch.EventType` (the kinds a storage watch produces).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
    /// No change: every event up to the bookmark's revision has been delivered.
    Bookmark,
}

/// One change of one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub event_type: EventType,
    /// The full etcd key (prefix included).
    pub key: String,
    /// The object after the change, stamped with the change's revision. For
    /// `Deleted`, the last state of the object stamped with the deletion's
    /// revision, as Go sends it.
    pub object: Object,
    /// The object before the change, with its own resourceVersion: present for
    /// `Modified` and `Deleted` (unless etcd compacted it away).
    pub prev_object: Option<Object>,
}

impl Event {
    /// A bookmark at `revision`: no key, and an empty object carrying only the
    /// resource version (Go sends an empty object of the watched type).
    pub(crate) fn bookmark(revision: i64) -> Event {
        Event {
            event_type: EventType::Bookmark,
            key: String::new(),
            object: Object {
                data: Vec::new(),
                resource_version: revision,
                stale: false,
                unknown_fields: Vec::new(),
            },
            prev_object: None,
        }
    }

    /// The revision of the change: the event's resourceVersion.
    pub fn resource_version(&self) -> i64 {
        self.object.resource_version
    }
}

/// A running watch. Events come in revision order; an `Err` ends it (and
/// `next` then returns `None`). Dropping it stops the background work.
pub struct Watch {
    events: mpsc::Receiver<Result<Event>>,
    task: AbortHandle,
    progress: Option<ProgressRequester>,
}

/// Whether the backend can answer progress requests (etcd's, by version).
#[async_trait]
pub(crate) trait ProgressSupport: Send + Sync {
    async fn check(&self) -> Result<()>;
}

/// Asks a running watch for a bookmark (Go's `RequestWatchProgress`, for one
/// watch): it comes after every event up to the revision etcd is at.
#[derive(Clone)]
pub struct ProgressRequester {
    wanted: Arc<Notify>,
    support: Arc<dyn ProgressSupport>,
}

impl ProgressRequester {
    /// `wanted` is what the watch's producer waits on.
    pub(crate) fn new(wanted: Arc<Notify>, support: Arc<dyn ProgressSupport>) -> Self {
        ProgressRequester { wanted, support }
    }

    /// Requests one bookmark; requests made before it is sent merge into one.
    pub async fn request(&self) -> Result<()> {
        self.support.check().await?;
        self.wanted.notify_one();
        Ok(())
    }
}

impl Watch {
    /// How many events a watch holds for its consumer.
    ///
    /// cbindgen:ignore
    pub const BUFFER_EVENTS: usize = 1000;

    /// How long a full buffer may stay full before the watch ends: as
    /// Kubernetes' cacher, a consumer that does not keep up is cut off rather
    /// than buffered without bound.
    pub const OVERFLOW_GRACE: Duration = Duration::from_secs(2);

    /// Spawns `produce` on the current tokio runtime, feeding a new watch; the
    /// error it stops with, if any, is the watch's last item.
    pub(crate) fn spawn<F, Fut>(produce: F) -> Watch
    where
        F: FnOnce(EventSender) -> Fut,
        Fut: Future<Output = Stop> + Send + 'static,
    {
        let (tx, events) = mpsc::channel(Self::BUFFER_EVENTS);
        let tx = EventSender(tx);
        let producing = produce(tx.clone());
        let task = tokio::spawn(async move {
            if let Stop::Fail(e) = producing.await {
                tx.fail(e).await;
            }
        })
        .abort_handle();
        Watch {
            events,
            task,
            progress: None,
        }
    }

    /// A watch that answers progress requests through `requester`.
    pub(crate) fn with_progress(mut self, requester: ProgressRequester) -> Watch {
        self.progress = Some(requester);
        self
    }

    /// What requests bookmarks of this watch; it may be used while another
    /// task waits in `next`.
    pub fn progress_requester(&self) -> Result<ProgressRequester> {
        self.progress.clone().ok_or_else(|| {
            StorageError::unsupported("this backend's watches have no progress requests (etcd2)")
        })
    }

    /// The next event, waiting for one; `None` once the watch has ended.
    pub async fn next(&mut self) -> Option<Result<Event>> {
        self.events.recv().await
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why an event could not be queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SendError {
    /// The consumer dropped the watch.
    Closed,
    /// The buffer stayed full for `Watch::OVERFLOW_GRACE`.
    Overflow,
}

/// The producing side of a watch.
#[derive(Clone)]
pub(crate) struct EventSender(mpsc::Sender<Result<Event>>);

impl EventSender {
    /// Queues an event, waiting at most `Watch::OVERFLOW_GRACE` for room.
    pub(crate) async fn send(&self, event: Event) -> std::result::Result<(), SendError> {
        match self.0.send_timeout(Ok(event), Watch::OVERFLOW_GRACE).await {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => Err(SendError::Overflow),
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(SendError::Closed),
        }
    }

    /// Queues a bookmark only if there is room, telling whether it did: a
    /// bookmark is progress, not an event, and waiting for room would end
    /// the watch as a consumer too slow over nothing but bookmarks (as
    /// Kubernetes' cacher, which sends bookmarks only where there is room).
    pub(crate) fn try_send_bookmark(&self, event: Event) -> std::result::Result<bool, SendError> {
        match self.0.try_send(Ok(event)) {
            Ok(()) => Ok(true),
            Err(mpsc::error::TrySendError::Full(_)) => Ok(false),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::Closed),
        }
    }

    /// Ends the watch with `error`, delivered after the events already queued.
    pub(crate) async fn fail(self, error: StorageError) {
        // A consumer that is gone needs no error.
        let _ = self.0.send(Err(error)).await;
    }
}

/// The error ending a watch whose consumer fell behind. Every event up to
/// revision `resume_from` has been queued, so watching again from there loses
/// nothing (a transaction's events already queued may come again).
pub(crate) fn overflow_error(resume_from: i64) -> StorageError {
    let mut e = StorageError::internal(format!(
        "watch buffer overflow: consumer too slow, restart the watch from resourceVersion {resume_from}"
    ));
    e.resource_version = resume_from;
    e
}

/// Why a watch stops.
pub(crate) enum Stop {
    /// The consumer dropped the watch: there is no one to tell.
    Gone,
    /// The consumer gets this error as the watch's last item.
    Fail(StorageError),
}

impl From<StorageError> for Stop {
    fn from(e: StorageError) -> Self {
        Stop::Fail(e)
    }
}

/// Queues one event; `resume_from` is the revision a restart after an
/// overflow here must start from to lose nothing.
pub(crate) async fn queue(
    tx: &EventSender,
    event: Event,
    resume_from: i64,
) -> std::result::Result<(), Stop> {
    tx.send(event).await.map_err(|e| match e {
        SendError::Closed => Stop::Gone,
        SendError::Overflow => Stop::Fail(overflow_error(resume_from)),
    })
}

/// A key as logs show it: at most its first 256 bytes (a key may be megabytes).
pub(crate) fn log_key(key: &str) -> &str {
    let mut end = key.len().min(256);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}

/// Exponential backoff between reconnection attempts.
pub(crate) struct Backoff(Duration);

impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff(BACKOFF_MIN)
    }

    pub(crate) fn reset(&mut self) {
        self.0 = BACKOFF_MIN;
    }

    pub(crate) async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(BACKOFF_MAX);
    }
}
