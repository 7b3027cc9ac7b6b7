//! Health probes, server-driven compaction and the defragmentation policy.
//!
//! One task per store, every `maintenance_interval`:
//!
//! 1. **Health**: one read (the compaction record); its result is what `/readyz/etcd` shows.
//! 2. **Compaction**, with the SQLite store's retention rules: history younger than
//!    `retention` is kept, and never more than `max_history` revisions. The target revision is
//!    recorded first in [`COMPACT_KEY`] by a transaction on that key's version — when several
//!    servers share one etcd only one of them wins each round — and then etcd compacts to it.
//!    A round runs when the target moved 1 000 revisions (or a tenth of `max_history`, if
//!    smaller) or a minute passed.
//! 3. **Defragmentation** (bbolt never shrinks its file by itself): after a compaction, and
//!    whenever the `NOSPACE` alarm is raised, each member whose file is larger than
//!    `defrag_ratio` (2) times the bytes in use, with at least `defrag_min_free_bytes` (64 MiB)
//!    free, is defragmented, one member at a time, off the request path. Defragmenting blocks
//!    that member's reads and writes for its duration; with several members the client fails
//!    over to the others meanwhile.
//! 4. **NOSPACE**: when the alarm is raised, the task compacts as far as retention allows,
//!    defragments, and disarms the alarm. etcd re-checks its quota on every write and raises
//!    the alarm again if the space is still exceeded, so disarming is always safe.

use std::collections::VecDeque;
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use etcd_client::{AlarmAction, AlarmOptions, AlarmType, Client, Compare, CompareOp, Txn, TxnOp};

use super::watch::progress_fixed;
use super::{COMPACT_KEY, Inner, parse_revision};
use crate::{Error, Revision};

/// A compaction round runs when its target moved this far (or a tenth of `max_history`, if
/// smaller), or after [`COMPACT_EVERY`].
const COMPACT_STEP: Revision = 1000;
const COMPACT_EVERY: Duration = Duration::from_secs(60);
/// Members are checked for defragmentation at least this often even without compactions.
const DEFRAG_CHECK_EVERY: Duration = Duration::from_secs(300);
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

pub(super) fn spawn(inner: Weak<Inner>) -> Result<(), String> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| "the etcd store must be opened inside a tokio runtime".to_owned())?;
    runtime.spawn(async move {
        let mut state = State::default();
        loop {
            let Some(inner) = inner.upgrade() else { return };
            let interval = inner.config.maintenance_interval;
            state.round(&inner).await;
            drop(inner);
            tokio::time::sleep(interval).await;
        }
    });
    Ok(())
}

#[derive(Default)]
struct State {
    /// `(t, rev)`: the current revision was `rev` at `t`. Oldest first.
    samples: VecDeque<(Instant, Revision)>,
    last_compaction: Option<Instant>,
    last_defrag_check: Option<Instant>,
    version_checked: bool,
    /// One client per member, for status and defragment (which address one member).
    members: Vec<Option<Client>>,
}

impl State {
    async fn round(&mut self, inner: &Inner) {
        let probed = inner.revisions().await;
        *inner.health.lock() = probed.as_ref().map(|_| ()).map_err(|e| e.to_string());
        let Ok((current, compacted)) = probed else {
            return;
        };
        if !self.version_checked {
            self.check_version(inner).await;
        }
        let now = Instant::now();
        if self
            .samples
            .back()
            .is_none_or(|&(t, r)| r < current && now.duration_since(t) >= SAMPLE_EVERY)
        {
            self.samples.push_back((now, current));
        }
        let nospace_members = self.nospace_alarm(inner).await;
        let nospace = !nospace_members.is_empty();
        let target = self.target(inner, current, now);
        let due = self
            .last_compaction
            .is_none_or(|t| now.duration_since(t) >= COMPACT_EVERY);
        let mut compacted_now = false;
        // Small histories compact in small steps, large ones every COMPACT_STEP revisions.
        let max_history = i64::try_from(inner.config.max_history).unwrap_or(i64::MAX);
        let step = (max_history / 10).clamp(1, COMPACT_STEP);
        if target > compacted && (target - compacted >= step || due || nospace) {
            match compact(inner, target).await {
                Ok(()) => compacted_now = true,
                Err(e) => {
                    tracing::warn!(error = %e, target, "etcd compaction failed; retrying later")
                }
            }
            self.last_compaction = Some(now);
        }
        let check_due = self
            .last_defrag_check
            .is_none_or(|t| now.duration_since(t) >= DEFRAG_CHECK_EVERY);
        if compacted_now || nospace || check_due {
            self.last_defrag_check = Some(now);
            self.defragment(inner).await;
        }
        for member in nospace_members {
            // etcd deactivates an alarm per member.
            let mut options = AlarmOptions::new();
            options.with_member(member);
            let disarm = inner
                .call(|c| async move {
                    c.maintenance_client()
                        .alarm(AlarmAction::Deactivate, AlarmType::Nospace, Some(options))
                        .await
                })
                .await;
            match disarm {
                Ok(_) => {
                    tracing::warn!(endpoints = %inner.endpoints(), member, "etcd NOSPACE alarm: compacted, defragmented and disarmed it (etcd raises it again if the quota is still exceeded)")
                }
                Err(e) => tracing::warn!(error = %e, member, "cannot disarm etcd's NOSPACE alarm"),
            }
        }
    }

    /// The revision retention allows compacting to.
    fn target(&mut self, inner: &Inner, current: Revision, now: Instant) -> Revision {
        let retention = inner.config.retention;
        let old_enough = |t: Instant| {
            now.checked_duration_since(t)
                .is_some_and(|a| a >= retention)
        };
        while self.samples.len() > 1 && old_enough(self.samples[1].0) {
            self.samples.pop_front();
        }
        let by_time = match self.samples.front() {
            Some(&(t, r)) if old_enough(t) => r,
            _ => 0,
        };
        let max_history = i64::try_from(inner.config.max_history).unwrap_or(i64::MAX);
        by_time.max(current - max_history).min(current)
    }

    async fn check_version(&mut self, inner: &Inner) {
        let status = inner
            .call(|c| async move { c.maintenance_client().status().await })
            .await;
        if let Ok(status) = status {
            let fixed = progress_fixed(status.version());
            inner.progress_trusted.store(fixed, Ordering::Relaxed);
            self.version_checked = true;
            if !fixed {
                tracing::info!(
                    version = status.version(),
                    "etcd predates the progress-notification fix; watch progress is guarded"
                );
            }
        }
    }

    /// The members with a raised NOSPACE alarm.
    async fn nospace_alarm(&self, inner: &Inner) -> Vec<u64> {
        let alarms = inner
            .call(|c| async move {
                c.maintenance_client()
                    .alarm(AlarmAction::Get, AlarmType::None, None)
                    .await
            })
            .await;
        alarms.map_or_else(
            |_| Vec::new(),
            |a| {
                a.alarms()
                    .iter()
                    .filter(|m| m.alarm() == AlarmType::Nospace)
                    .map(|m| m.member_id())
                    .collect()
            },
        )
    }

    /// Defragments every member whose file is mostly free (see the module docs).
    async fn defragment(&mut self, inner: &Inner) {
        let endpoints = inner.config.endpoints.clone();
        self.members.resize(endpoints.len(), None);
        for (i, endpoint) in endpoints.iter().enumerate() {
            let client = match &self.members[i] {
                Some(c) => c.clone(),
                None => {
                    let connect = Client::connect([endpoint], Some(inner.options.clone()));
                    match tokio::time::timeout(inner.config.request_timeout, connect).await {
                        Ok(Ok(c)) => {
                            self.members[i] = Some(c.clone());
                            c
                        }
                        _ => continue,
                    }
                }
            };
            let mut maintenance = client.maintenance_client();
            let status =
                tokio::time::timeout(inner.config.request_timeout, maintenance.status()).await;
            let Ok(Ok(status)) = status else {
                self.members[i] = None;
                continue;
            };
            let (size, in_use) = (
                status.db_size().max(0) as u64,
                status.raft_used_db_size().max(0) as u64,
            );
            if !defrag_due(
                size,
                in_use,
                inner.config.defrag_ratio,
                inner.config.defrag_min_free_bytes,
            ) {
                continue;
            }
            let started = Instant::now();
            // Defragmentation takes as long as it takes; it is not bound by the request timeout.
            match maintenance.defragment().await {
                Ok(_) => {
                    tracing::info!(%endpoint, size, in_use, took = ?started.elapsed(), "defragmented etcd member")
                }
                Err(e) => tracing::warn!(%endpoint, error = %e, "etcd defragmentation failed"),
            }
        }
    }
}

/// The defragmentation rule: the file is more than `ratio` times what is in use, and at
/// least `min_free` bytes of it are free.
pub(crate) fn defrag_due(size: u64, in_use: u64, ratio: f64, min_free: u64) -> bool {
    size as f64 > ratio * in_use as f64 && size.saturating_sub(in_use) >= min_free
}

/// Records `revision` as compacted (only moving forward), then compacts etcd to it.
pub(super) async fn compact(inner: &Inner, revision: Revision) -> Result<(), Error> {
    let key = inner.key(COMPACT_KEY);
    loop {
        let get_key = key.clone();
        let resp = inner
            .call(|mut c| async move { c.get(get_key, None).await })
            .await?;
        let current = super::header_revision(resp.header())?;
        if revision > current {
            return Err(Error::FutureRevision {
                requested: revision,
                current,
            });
        }
        let (recorded, version) = match resp.kvs().first() {
            Some(kv) => (parse_revision(kv.value())?, kv.version()),
            None => (0, 0),
        };
        inner.compacted.fetch_max(recorded, Ordering::SeqCst);
        if revision <= recorded {
            return Ok(());
        }
        let txn = Txn::new()
            .when([Compare::version(key.clone(), CompareOp::Equal, version)])
            .and_then([TxnOp::put(key.clone(), revision.to_string(), None)]);
        match inner.call(|mut c| async move { c.txn(txn).await }).await {
            Ok(resp) if resp.succeeded() => break,
            Ok(_) => {}
            // Under the NOSPACE alarm etcd takes no puts, but compacting is how space comes
            // back: compact now, the record follows with the next compaction.
            Err(Error::NoSpace { .. }) => break,
            Err(e) => return Err(e),
        }
        // Another server recorded a compaction meanwhile: look again.
    }
    let result = inner
        .call(|mut c| async move { c.compact(revision, None).await })
        .await;
    match result {
        Ok(_) => {}
        // Already compacted further (by another server, or etcd's own auto-compaction).
        Err(Error::Backend(m)) if m.contains("required revision has been compacted") => {}
        Err(e) => return Err(e),
    }
    inner.compacted.fetch_max(revision, Ordering::SeqCst);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::defrag_due;

    #[test]
    fn defragments_only_mostly_free_files_with_enough_to_gain() {
        const MIB: u64 = 1024 * 1024;
        assert!(defrag_due(300 * MIB, 100 * MIB, 2.0, 64 * MIB));
        assert!(
            !defrag_due(150 * MIB, 100 * MIB, 2.0, 64 * MIB),
            "under 2x in use"
        );
        assert!(
            !defrag_due(30 * MIB, 5 * MIB, 2.0, 64 * MIB),
            "too little to gain"
        );
        assert!(defrag_due(30 * MIB, 5 * MIB, 2.0, 0));
    }
}
