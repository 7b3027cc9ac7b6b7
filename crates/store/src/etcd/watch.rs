//! Watches on etcd that survive disconnects, and the guard on etcd's progress notifications.
//!
//! Each [`crate::Store::watch`] runs one task that owns one etcd watch stream (`prev_kv` on,
//! from `delivered + 1`). When the stream breaks (etcd restarted, a member failed, the network
//! hiccuped) the task opens a new one from `delivered + 1` after a backoff, and drops any event
//! at or below `delivered`, so the receiver sees every revision once, in order, across any
//! number of reconnects. A start revision etcd has compacted ends the stream with
//! [`Error::Compacted`].
//!
//! Progress: every `progress_interval` without events the task sends an empty batch carrying
//! `delivered` (always true: everything up to it was sent). Beyond that, etcd must say how far
//! the watch is. etcd before 3.4.31 / 3.5.13 answers a progress *request* with its current
//! revision even while events before it are still queued for a slow watcher, and can send a
//! periodic notification for revision R just before the event at R (the races fixed upstream in
//! those versions). So:
//!
//! - on fixed versions the task requests progress when idle and believes the answer;
//! - on older versions it never requests progress. etcd's periodic notifications (sent only to
//!   watchers etcd considers in sync) are believed once a *later* message on the same ordered
//!   stream arrived without an event at or below them ([`ProgressGuard`]). And a watch whose
//!   range holds the fence key (the API server's whole-keyspace watch) writes that key when
//!   idle and behind etcd's revision (other clients wrote elsewhere in etcd): the fence's own
//!   event then carries the watch past every earlier revision, with no trust in progress at
//!   all.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use etcd_client::{EventType, WatchOptions};
use tokio::sync::mpsc;

use super::{FENCE_KEY, Inner};
use crate::{Error, Event, Revision, WatchBatch, WatchStream};

/// How many batches a receiver may lag before the task waits for it (back-pressure goes to
/// etcd's stream, whose own buffer then fills; etcd handles slow watchers itself).
const QUEUE: usize = 256;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

pub(super) fn spawn(inner: Arc<Inner>, prefix: String, after: Revision) -> WatchStream {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(run(inner, prefix, after, tx));
    rx
}

/// Why one etcd stream ended.
enum Ended {
    /// The receiver was dropped.
    Receiver,
    /// The history after `delivered` is gone.
    Compacted(Revision),
    /// Open a new stream after a pause.
    Retry(Error),
}

struct Watch {
    inner: Arc<Inner>,
    prefix: String,
    tx: mpsc::Sender<Result<WatchBatch, Error>>,
    /// Every matching event up to here has been sent.
    delivered: Revision,
    guard: ProgressGuard,
}

async fn run(
    inner: Arc<Inner>,
    prefix: String,
    after: Revision,
    tx: mpsc::Sender<Result<WatchBatch, Error>>,
) {
    let trusted = inner.progress_trusted.load(Ordering::Relaxed);
    let mut w = Watch {
        inner,
        prefix,
        tx,
        delivered: after,
        guard: ProgressGuard::new(trusted),
    };
    let mut backoff = BACKOFF_MIN;
    loop {
        let started = tokio::time::Instant::now();
        match w.session().await {
            Ended::Receiver => return,
            Ended::Compacted(compacted) => {
                let _ =
                    w.tx.send(Err(Error::Compacted {
                        requested: w.delivered,
                        compacted,
                    }))
                    .await;
                return;
            }
            Ended::Retry(e) => {
                if started.elapsed() > BACKOFF_MAX {
                    backoff = BACKOFF_MIN;
                }
                tracing::warn!(error = %e, after = w.delivered, retry_in = ?backoff, "etcd watch stream ended; resuming");
                tokio::select! {
                    _ = w.tx.closed() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

impl Watch {
    /// Runs one etcd watch stream until it ends.
    async fn session(&mut self) -> Ended {
        let inner = Arc::clone(&self.inner);
        let (start, end) = inner.prefix_range(&self.prefix);
        let (start_copy, end_copy) = (start.clone(), end.clone());
        let options = WatchOptions::new()
            .with_range(end)
            .with_start_revision(self.delivered + 1)
            .with_prev_key()
            .with_progress_notify();
        let client = match inner.client().await {
            Ok(c) => c,
            Err(e) => return Ended::Retry(e),
        };
        let open = async move { client.watch_client().watch(start, Some(options)).await };
        let (mut watcher, mut stream) =
            match tokio::time::timeout(inner.config.request_timeout, open).await {
                Ok(Ok(pair)) => pair,
                Ok(Err(e)) => return Ended::Retry(inner.map_err(e)),
                Err(_) => return Ended::Retry(inner.unavailable("opening a watch timed out")),
            };
        let fence_key = inner.key(FENCE_KEY);
        let fence_in_range = fence_key >= start_copy && (fence_key < end_copy || end_copy == [0]);
        let mut tick = tokio::time::interval(inner.config.progress_interval);
        tick.tick().await;
        let mut idle = true;
        loop {
            tokio::select! {
                _ = self.tx.closed() => {
                    let _ = watcher.cancel().await;
                    return Ended::Receiver;
                }
                _ = tick.tick() => {
                    if idle {
                        let batch = WatchBatch { events: Vec::new(), revision: self.delivered };
                        if self.tx.send(Ok(batch)).await.is_err() {
                            return Ended::Receiver;
                        }
                        if self.guard.trusted {
                            if let Err(e) = watcher.request_progress().await {
                                return Ended::Retry(inner.map_err(e));
                            }
                        } else if fence_in_range {
                            self.fence().await;
                        }
                    }
                    idle = true;
                }
                message = stream.message() => {
                    let resp = match message {
                        Ok(Some(resp)) => resp,
                        Ok(None) => return Ended::Retry(inner.unavailable("the watch stream closed")),
                        Err(e) => return Ended::Retry(inner.map_err(e)),
                    };
                    if resp.compact_revision() > 0 {
                        return Ended::Compacted(resp.compact_revision());
                    }
                    if resp.canceled() {
                        return Ended::Retry(inner.unavailable(format!(
                            "etcd cancelled the watch: {}",
                            resp.cancel_reason()
                        )));
                    }
                    if resp.events().is_empty() {
                        let revision = resp.header().map_or(0, |h| h.revision());
                        if let Some(r) = self.guard.on_progress(revision)
                            && r > self.delivered
                        {
                            self.delivered = r;
                            let batch = WatchBatch { events: Vec::new(), revision: r };
                            if self.tx.send(Ok(batch)).await.is_err() {
                                return Ended::Receiver;
                            }
                        }
                        continue;
                    }
                    let events = match self.convert(resp.events()) {
                        Ok(events) => events,
                        Err(Ended::Compacted(_)) => {
                            // A previous value was compacted away before we could send it.
                            let compacted = inner.revisions().await.map_or(self.delivered + 1, |r| r.1);
                            return Ended::Compacted(compacted.max(self.delivered + 1));
                        }
                        Err(other) => return other,
                    };
                    let Some(last) = events.last().map(Event::revision) else {
                        continue;
                    };
                    self.guard.on_event(last);
                    if self.tx.send(Ok(WatchBatch { events, revision: last })).await.is_err() {
                        return Ended::Receiver;
                    }
                    self.delivered = last;
                    idle = false;
                }
            }
        }
    }

    /// Writes the fence key when etcd's revision is ahead of what this watch delivered (other
    /// clients wrote outside the prefix): its event, on this ordered stream, then proves every
    /// revision before it delivered. Only for watches whose range holds the fence key, and only
    /// on etcd versions whose progress notifications cannot be asked for safely.
    async fn fence(&self) {
        let Ok((current, _)) = self.inner.revisions().await else {
            return;
        };
        if current <= self.delivered {
            return;
        }
        let key = self.inner.key(FENCE_KEY);
        let put = self
            .inner
            .call(|mut c| async move { c.put(key, current.to_string(), None).await })
            .await;
        if let Err(e) = put {
            tracing::debug!(error = %e, "cannot write the watch fence key");
        }
    }

    /// Maps etcd events newer than `delivered` (older ones are replays after a reconnect).
    fn convert(&self, events: &[etcd_client::Event]) -> Result<Vec<Event>, Ended> {
        let mut out = Vec::with_capacity(events.len());
        for ev in events {
            let Some(kv) = ev.kv() else {
                return Err(Ended::Retry(Error::Backend(
                    "etcd sent a watch event without a key".into(),
                )));
            };
            if kv.mod_revision() <= self.delivered {
                continue;
            }
            let prev = ev
                .prev_kv()
                .map(|p| self.inner.kv(p))
                .transpose()
                .map_err(Ended::Retry)?;
            let event = match ev.event_type() {
                EventType::Put => {
                    // An update whose previous value is gone: its history was compacted.
                    if prev.is_none() && kv.version() > 1 {
                        return Err(Ended::Compacted(0));
                    }
                    Event::Put {
                        kv: self.inner.kv(kv).map_err(Ended::Retry)?,
                        prev,
                    }
                }
                EventType::Delete => Event::Delete {
                    revision: kv.mod_revision(),
                    prev: prev.ok_or(Ended::Compacted(0))?,
                },
            };
            out.push(event);
        }
        Ok(out)
    }
}

/// Decides which of etcd's progress notifications to believe (see the module docs).
#[derive(Debug)]
pub(crate) struct ProgressGuard {
    pub(crate) trusted: bool,
    /// A notification not yet confirmed by a later message.
    pending: Option<Revision>,
}

impl ProgressGuard {
    /// `trusted`: the etcd version has the upstream fix, so notifications are believed at once.
    pub(crate) fn new(trusted: bool) -> Self {
        Self {
            trusted,
            pending: None,
        }
    }

    /// An event at `revision` arrived. If it is at or below the pending notification, the
    /// notification raced it and is dropped; a newer event confirms it (etcd sends one
    /// watcher's events in revision order) but also supersedes it.
    pub(crate) fn on_event(&mut self, revision: Revision) {
        if let Some(p) = self.pending.take()
            && revision <= p
        {
            tracing::warn!(
                progress = p,
                event = revision,
                "etcd sent a progress notification before an event it covers (the etcd <3.4.31 race); ignored it"
            );
        }
    }

    /// A progress notification for `revision` arrived. Returns the revision that is now known
    /// to be complete, if any.
    pub(crate) fn on_progress(&mut self, revision: Revision) -> Option<Revision> {
        if self.trusted {
            return Some(revision);
        }
        let confirmed = self.pending.take();
        self.pending = Some(revision);
        confirmed
    }
}

/// Whether an etcd server version has the progress-notification fix (3.4.31+, 3.5.13+, 3.6+).
pub(crate) fn progress_fixed(version: &str) -> bool {
    let mut parts = version
        .trim_start_matches('v')
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    match (major, minor) {
        (3, 4) => patch >= 31,
        (3, 5) => patch >= 13,
        (3, m) => m >= 6,
        (m, _) => m > 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a watch stream receives from etcd.
    #[derive(Clone, Copy)]
    enum Msg {
        Event(Revision),
        Progress(Revision),
    }

    /// Feeds `msgs` through a guard and returns what the receiver sees: `Ok(rev)` for events,
    /// `Err(rev)` for progress batches. An event at or below an earlier progress is a broken
    /// promise, which `broken_promises` finds.
    fn deliver(trusted: bool, msgs: &[Msg]) -> Vec<Result<Revision, Revision>> {
        let mut guard = ProgressGuard::new(trusted);
        let mut out = Vec::new();
        for m in msgs {
            match *m {
                Msg::Event(r) => {
                    guard.on_event(r);
                    out.push(Ok(r));
                }
                Msg::Progress(r) => out.extend(guard.on_progress(r).map(Err)),
            }
        }
        out
    }

    fn broken_promises(seen: &[Result<Revision, Revision>]) -> Vec<Revision> {
        let mut promised = 0;
        let mut broken = Vec::new();
        for s in seen {
            match *s {
                Ok(event) if event <= promised => broken.push(event),
                Ok(_) => {}
                Err(progress) => promised = promised.max(progress),
            }
        }
        broken
    }

    /// etcd 3.4.23's race: progress 10 is sent, then the event at 10.
    const RACE: [Msg; 4] = [
        Msg::Event(8),
        Msg::Progress(10),
        Msg::Event(10),
        Msg::Progress(12),
    ];

    #[test]
    fn guard_never_promises_a_revision_whose_event_comes_later() {
        let seen = deliver(false, &RACE);
        assert_eq!(broken_promises(&seen), Vec::<Revision>::new(), "{seen:?}");
        // A quiet stream still makes progress, one notification late.
        let quiet = deliver(
            false,
            &[Msg::Progress(5), Msg::Progress(7), Msg::Progress(9)],
        );
        assert_eq!(quiet, vec![Err(5), Err(7)]);
    }

    /// Negative control: believing notifications at once (what `trusted` does, right only on
    /// fixed etcd versions) breaks the promise under the race, and the checker sees it.
    #[test]
    fn unguarded_progress_breaks_the_promise_under_the_race() {
        let seen = deliver(true, &RACE);
        assert_eq!(broken_promises(&seen), vec![10], "{seen:?}");
    }

    #[test]
    fn fixed_versions_are_recognised() {
        for (v, fixed) in [
            ("3.4.23", false),
            ("3.4.31", true),
            ("3.5.12", false),
            ("3.5.13", true),
            ("3.6.0", true),
            ("v3.4.30", false),
            ("garbage", false),
        ] {
            assert_eq!(progress_fixed(v), fixed, "{v}");
        }
    }
}
