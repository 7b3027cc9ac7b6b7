//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's `leaderelection` with a
//! `LeaseLock`: one holder at a time runs the API server's own controllers (garbage collector,
//! namespace lifecycle, CRD status), however many servers share the datastore.
//!
//! The elector works on the datastore directly, with compare-and-swap on the Lease's key: the
//! Lease is stored exactly as the API stores it (so `kubectl get lease -n kube-system` shows
//! it), and the store's `mod_revision` *is* the Lease's `resourceVersion`. Every write the
//! elector makes — create, renew, release, and the fenced writes of [`Elector::write_fenced`] —
//! is conditional on the revision it last read or wrote, so a deposed holder can never
//! overwrite the record of the next one.
//!
//! Timing follows upstream: a follower takes the Lease over only when the record has not
//! changed for `leaseDurationSeconds` *as measured on its own monotonic clock since it first
//! observed that version* (no trust in other machines' clocks); a leader that has not renewed
//! within `renew_deadline` stops leading; tries are `retry_period` apart, jittered for
//! followers. On shutdown the leader releases the Lease (empty holder, 1 s duration) so the
//! next candidate takes over at once.
//!
//! The state machine is [`Phase`] plus [`Elector::step`]; [`Elector::run`] drives it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use drover_store::{AnyStore, Revision, Store};
use serde_json::{Value, json};

/// Namespace of the API server's controller Lease.
pub const CONTROLLERS_LEASE_NAMESPACE: &str = "kube-system";
/// Name of the API server's controller Lease.
pub const CONTROLLERS_LEASE_NAME: &str = "drover-controllers";

/// Annotation a fenced write sets on the Lease (the proof's "term log").
pub const WRITE_ANNOTATION: &str = "drover.dev/leader-write";

/// Upstream's jitter factor for followers' retries.
const JITTER: f64 = 1.2;

/// How long each elector step may take before it counts as failed.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// Deliberately broken electors, for the checkers' negative controls only.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Correct behaviour.
    #[default]
    None,
    /// Takes the Lease over without waiting for it to expire.
    IgnoreExpiry,
    /// Renews and writes without the resourceVersion precondition and without checking who
    /// holds the Lease (a blind overwrite).
    SkipPrecondition,
    /// Does not bound a leader's renewal by the renew deadline (keeps leading while the
    /// datastore hangs).
    NoRenewDeadline,
}

/// Who contends, for which Lease, with which timings.
#[derive(Clone, Debug)]
pub struct ElectionConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This candidate's identity (`holderIdentity`); unique per process.
    pub identity: String,
    /// How long a follower waits, after the record last changed, before taking over (upstream
    /// default 15 s). Stored as whole seconds in `leaseDurationSeconds` (at least 1).
    pub lease_duration: Duration,
    /// How long a leader keeps leading without a successful renewal (upstream default 10 s).
    pub renew_deadline: Duration,
    /// Time between tries (upstream default 2 s).
    pub retry_period: Duration,
    /// Test-only: a deliberately broken variant.
    #[doc(hidden)]
    pub fault: Fault,
}

impl ElectionConfig {
    /// Upstream's default timings (15 s / 10 s / 2 s) for the Lease `namespace/name`, with a
    /// fresh identity (hostname + random suffix).
    pub fn new(namespace: &str, name: &str) -> ElectionConfig {
        ElectionConfig {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity: new_identity(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            fault: Fault::None,
        }
    }

    /// Checks the timings the way client-go does.
    pub fn validate(&self) -> Result<(), ElectionError> {
        let bad = |why: String| Err(ElectionError::Invalid(why));
        if self.lease_duration < Duration::from_secs(1) {
            return bad(format!(
                "the lease duration must be at least 1s (it is stored in whole seconds), got {:?}",
                self.lease_duration
            ));
        }
        if self.retry_period.is_zero() {
            return bad("the retry period must be greater than zero".into());
        }
        if self.lease_duration <= self.renew_deadline {
            return bad(format!(
                "the lease duration ({:?}) must be greater than the renew deadline ({:?})",
                self.lease_duration, self.renew_deadline
            ));
        }
        if self.renew_deadline.as_secs_f64() <= JITTER * self.retry_period.as_secs_f64() {
            return bad(format!(
                "the renew deadline ({:?}) must be greater than {JITTER} × the retry period ({:?})",
                self.renew_deadline, self.retry_period
            ));
        }
        if self.identity.is_empty() {
            return bad("the identity must not be empty".into());
        }
        Ok(())
    }

    fn lease_seconds(&self) -> i64 {
        self.lease_duration.as_secs().max(1) as i64
    }

    /// The datastore key of the Lease.
    pub fn key(&self) -> String {
        format!(
            "/registry/coordination.k8s.io/leases/{}/{}",
            self.namespace, self.name
        )
    }
}

/// `hostname_xxxxx`: unique per process, readable in `kubectl get lease`.
pub fn new_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "drover".into());
    format!("{host}_{}", crate::meta::random_suffix())
}

/// Parses the lease timing flags: `15s`, `2s`, `500ms`, `1m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 15s, 500ms, 1m)"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        other => Err(format!("unknown unit {other:?} in {s:?}: use ms, s or m")),
    }
}

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum ElectionError {
    /// Bad configuration.
    #[error("invalid leader election settings: {0}")]
    Invalid(String),
    /// The datastore failed.
    #[error("leader election: the datastore failed: {0}")]
    Store(#[from] drover_store::Error),
    /// The stored Lease cannot be read.
    #[error("leader election: {key} does not hold a valid Lease: {reason}")]
    Corrupt {
        /// The datastore key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The caller is not (or no longer) the leader.
    #[error("not the leader of {lease}: {reason}")]
    NotLeading {
        /// `namespace/name` of the Lease.
        lease: String,
        /// Why.
        reason: String,
    },
}

// === LeaseRecord ===

/// The leader election fields of a Lease (`spec`), times in microseconds since the epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    /// `holderIdentity`; empty when released.
    pub holder: String,
    /// `leaseDurationSeconds`.
    pub lease_duration_seconds: i64,
    /// `acquireTime`.
    pub acquire_micros: i64,
    /// `renewTime`.
    pub renew_micros: i64,
    /// `leaseTransitions`.
    pub transitions: i64,
    /// The [`WRITE_ANNOTATION`] of the last fenced write, if any.
    pub write: Option<String>,
}

impl LeaseRecord {
    /// Reads the record from a stored Lease object.
    pub fn from_stored(key: &str, bytes: &[u8]) -> Result<LeaseRecord, ElectionError> {
        let corrupt = |reason: String| ElectionError::Corrupt {
            key: key.to_owned(),
            reason,
        };
        let obj: Value =
            serde_json::from_slice(bytes).map_err(|e| corrupt(format!("not JSON: {e}")))?;
        let spec = obj.get("spec").cloned().unwrap_or(json!({}));
        let time = |field: &str| -> Result<i64, ElectionError> {
            match spec.get(field).and_then(Value::as_str) {
                None => Ok(0),
                Some(t) => drover_core::time::parse_rfc3339(t)
                    .map(|(s, n)| s * 1_000_000 + i64::from(n / 1000))
                    .ok_or_else(|| corrupt(format!("spec.{field} {t:?} is not an RFC 3339 time"))),
            }
        };
        Ok(LeaseRecord {
            holder: spec["holderIdentity"].as_str().unwrap_or("").to_owned(),
            lease_duration_seconds: spec["leaseDurationSeconds"].as_i64().unwrap_or(0),
            acquire_micros: time("acquireTime")?,
            renew_micros: time("renewTime")?,
            transitions: spec["leaseTransitions"].as_i64().unwrap_or(0),
            write: obj
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(WRITE_ANNOTATION))
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    /// Writes the record into `obj` (a Lease), keeping the rest of its metadata.
    fn apply(&self, obj: &mut Value) {
        let spec = crate::meta::object_mut(obj, "spec");
        if self.holder.is_empty() {
            spec.remove("holderIdentity");
        } else {
            spec.insert("holderIdentity".into(), self.holder.clone().into());
        }
        spec.insert(
            "leaseDurationSeconds".into(),
            self.lease_duration_seconds.into(),
        );
        spec.insert("acquireTime".into(), micro_time(self.acquire_micros).into());
        spec.insert("renewTime".into(), micro_time(self.renew_micros).into());
        spec.insert("leaseTransitions".into(), self.transitions.into());
        let meta = crate::meta::metadata_mut(obj);
        meta.remove("resourceVersion");
        match &self.write {
            Some(w) => {
                let ann = meta
                    .entry("annotations")
                    .or_insert_with(|| json!({}))
                    .as_object_mut();
                if let Some(ann) = ann {
                    ann.insert(WRITE_ANNOTATION.into(), w.clone().into());
                }
            }
            None => {
                if let Some(ann) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                    ann.remove(WRITE_ANNOTATION);
                }
            }
        }
    }
}

/// `metav1.MicroTime`: RFC 3339 with six fractional digits.
pub(crate) fn micro_time(micros: i64) -> String {
    drover_core::time::format_rfc3339(
        micros.div_euclid(1_000_000),
        Some(micros.rem_euclid(1_000_000) as u32),
    )
    .unwrap_or_else(|| "1970-01-01T00:00:00.000000Z".into())
}

/// Microseconds since the epoch, now.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

// === LeaderHandle ===

/// Tells whether this process leads; cheap to clone.
#[derive(Clone, Debug)]
pub struct LeaderHandle {
    rx: tokio::sync::watch::Receiver<bool>,
    lease: String,
}

impl LeaderHandle {
    /// True while this process holds the Lease.
    pub fn is_leader(&self) -> bool {
        *self.rx.borrow()
    }

    /// `namespace/name` of the Lease.
    pub fn lease(&self) -> &str {
        &self.lease
    }

    /// Resolves when leadership becomes `leading` (immediately if it already is); `false` if
    /// the elector is gone.
    pub async fn wait_for(&mut self, leading: bool) -> bool {
        self.rx.wait_for(|l| *l == leading).await.is_ok()
    }
}

/// Runs `make()`'s future while this process leads: started when leadership is gained,
/// aborted when it is lost or at shutdown, started afresh on the next term. The controllers
/// it runs are level-triggered, so stopping them at any await point is safe.
pub(crate) fn spawn_while_leading<F, Fut>(
    what: &'static str,
    mut leader: LeaderHandle,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    make: F,
) where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            tokio::select! {
                alive = leader.wait_for(true) => if !alive { return },
                _ = crate::state::shutting_down(&mut shutdown) => return,
            }
            tracing::info!("leading {}: starting the {what}", leader.lease());
            let task = tokio::spawn(make());
            let stop = tokio::select! {
                _ = leader.wait_for(false) => false,
                _ = crate::state::shutting_down(&mut shutdown) => true,
            };
            task.abort();
            let _ = task.await;
            if stop {
                return;
            }
            tracing::info!("lost {}: stopped the {what}", leader.lease());
        }
    });
}

// === Elector ===

/// Where the elector stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// Not holding the Lease; trying every `retry_period` (jittered).
    Following,
    /// Holding the Lease; `renewed` is when the last successful renewal began.
    Leading { renewed: Instant },
}

/// The version of the Lease this candidate last saw, and when it first saw it.
#[derive(Clone, Debug)]
struct Observed {
    revision: Revision,
    at: Instant,
}

/// This candidate's current term.
#[derive(Clone, Debug)]
struct Term {
    /// The Lease's resourceVersion after our last write: every next write is conditional on it.
    revision: Revision,
    record: LeaseRecord,
}

#[derive(Default)]
struct Local {
    observed: Option<Observed>,
    term: Option<Term>,
}

/// Contends for one Lease. Build with [`Elector::new`], hand out [`Elector::handle`]s, then
/// [`Elector::run`] it until shutdown.
#[derive(Clone)]
pub struct Elector {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<AnyStore>,
    config: ElectionConfig,
    key: String,
    local: tokio::sync::Mutex<Local>,
    leading: tokio::sync::watch::Sender<bool>,
}

impl Elector {
    /// An elector for `config.namespace/config.name` on `store`.
    pub fn new(store: Arc<AnyStore>, config: ElectionConfig) -> Result<Elector, ElectionError> {
        config.validate()?;
        let (leading, _) = tokio::sync::watch::channel(false);
        Ok(Elector {
            inner: Arc::new(Inner {
                store,
                key: config.key(),
                config,
                local: Default::default(),
                leading,
            }),
        })
    }

    /// This candidate's identity.
    pub fn identity(&self) -> &str {
        &self.inner.config.identity
    }

    /// A handle that tells whether this candidate leads.
    pub fn handle(&self) -> LeaderHandle {
        LeaderHandle {
            rx: self.inner.leading.subscribe(),
            lease: format!("{}/{}", self.inner.config.namespace, self.inner.config.name),
        }
    }

    fn lease_name(&self) -> String {
        format!("{}/{}", self.inner.config.namespace, self.inner.config.name)
    }

    /// Contends until `shutdown` turns true; then releases the Lease if it holds it.
    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut phase = Phase::Following;
        loop {
            // The first try is immediate: a lone server leads as soon as it starts.
            phase = self.step(phase).await;
            let wait = match phase {
                Phase::Following => jittered(self.inner.config.retry_period),
                // Never sleep past the renew deadline: the next step must be able to step down
                // in time (before a follower may take over).
                Phase::Leading { renewed } => self.inner.config.retry_period.min(
                    self.inner
                        .config
                        .renew_deadline
                        .saturating_sub(renewed.elapsed()),
                ),
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = crate::state::shutting_down(&mut shutdown) => break,
            }
        }
        // Stop the controllers first, then release (bounded: a dead datastore must not hold
        // up shutdown; the Lease then simply expires).
        self.set_leading(false);
        if matches!(phase, Phase::Leading { .. }) {
            match tokio::time::timeout(STEP_TIMEOUT, self.release()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("cannot release {}: {e}", self.lease_name()),
                Err(_) => tracing::warn!(
                    "releasing {} timed out; it will expire instead",
                    self.lease_name()
                ),
            }
        }
    }

    /// One transition of the state machine: try to acquire or renew, and decide the phase.
    async fn step(&self, phase: Phase) -> Phase {
        let started = Instant::now();
        // A leader's try must end by its renew deadline, whatever the datastore does.
        let limit = match &phase {
            Phase::Following => STEP_TIMEOUT,
            Phase::Leading { .. } if self.inner.config.fault == Fault::NoRenewDeadline => {
                STEP_TIMEOUT
            }
            Phase::Leading { renewed } => self
                .inner
                .config
                .renew_deadline
                .saturating_sub(renewed.elapsed()),
        };
        let outcome = tokio::time::timeout(limit, self.try_acquire_or_renew()).await;
        let next = match (outcome, &phase) {
            (Ok(Ok(true)), _) => Phase::Leading { renewed: started },
            (Ok(Ok(false)), _) => Phase::Following,
            (Ok(Err(e)), Phase::Leading { renewed })
                if renewed.elapsed() < self.inner.config.renew_deadline =>
            {
                tracing::warn!("cannot renew {} (will retry): {e}", self.lease_name());
                phase.clone()
            }
            (Err(_), Phase::Leading { renewed })
                if renewed.elapsed() < self.inner.config.renew_deadline =>
            {
                tracing::warn!("renewing {} timed out (will retry)", self.lease_name());
                phase.clone()
            }
            (Ok(Err(e)), _) => {
                tracing::warn!("leader election on {}: {e}", self.lease_name());
                Phase::Following
            }
            (Err(_), _) => Phase::Following,
        };
        // Stop leading before anything that could wait (a fenced write may hold the lock).
        self.set_leading(matches!(next, Phase::Leading { .. }));
        if next == Phase::Following {
            self.inner.local.lock().await.term = None;
        }
        if matches!(phase, Phase::Leading { .. }) != matches!(next, Phase::Leading { .. }) {
            if matches!(next, Phase::Leading { .. }) {
                tracing::info!(
                    "{} became the leader of {}",
                    self.identity(),
                    self.lease_name()
                );
            } else {
                tracing::warn!("{} stopped leading {}", self.identity(), self.lease_name());
            }
        }
        next
    }

    fn set_leading(&self, leading: bool) {
        self.inner.leading.send_if_modified(|cur| {
            let changed = *cur != leading;
            *cur = leading;
            changed
        });
    }

    /// Reads the Lease; creates it, renews our term, or takes it over when it has expired.
    /// True when we hold it afterwards.
    async fn try_acquire_or_renew(&self) -> Result<bool, ElectionError> {
        let cfg = &self.inner.config;
        let store = &self.inner.store;
        let key = &self.inner.key;
        let mut local = self.inner.local.lock().await;
        let read = store.get(key).await?;
        // Stamped after the read: an acquisition's acquireTime is then never earlier than the
        // moment the expiry below was judged.
        let now = now_micros();
        let Some(kv) = read else {
            let record = LeaseRecord {
                holder: cfg.identity.clone(),
                lease_duration_seconds: cfg.lease_seconds(),
                acquire_micros: now,
                renew_micros: now,
                transitions: 0,
                write: None,
            };
            let mut obj = json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {
                    "name": cfg.name, "namespace": cfg.namespace,
                    "uid": crate::meta::new_uid(),
                    "creationTimestamp": crate::meta::rfc3339(now / 1_000_000),
                },
                "spec": {},
            });
            record.apply(&mut obj);
            return match store.create(key, encode(&obj)?).await {
                Ok(revision) => {
                    local.term = Some(Term { revision, record });
                    Ok(true)
                }
                Err(drover_store::Error::AlreadyExists { .. }) => Ok(false),
                Err(e) => Err(e.into()),
            };
        };
        let current = LeaseRecord::from_stored(key, &kv.value)?;
        if local.observed.as_ref().map(|o| o.revision) != Some(kv.mod_revision) {
            local.observed = Some(Observed {
                revision: kv.mod_revision,
                at: Instant::now(),
            });
        }
        // Our term, even if the answer to our last write was lost (timeout, connection reset):
        // only this process writes records naming its identity.
        let ours = local.term.as_ref().filter(|t| {
            current.holder == cfg.identity
                && current.transitions == t.record.transitions
                && current.acquire_micros == t.record.acquire_micros
        });
        let blind = cfg.fault == Fault::SkipPrecondition && local.term.is_some();
        let (record, expected) = match ours {
            // Renew: same term, newer renewTime, conditional on our own last write.
            Some(term) => {
                let mut r = term.record.clone();
                r.renew_micros = now;
                r.lease_duration_seconds = cfg.lease_seconds();
                r.write = current.write.clone();
                (r, kv.mod_revision)
            }
            None if blind => {
                // The broken variant: renews its old term over whatever is there.
                let mut r = local.term.as_ref().expect("checked").record.clone();
                r.renew_micros = now;
                (r, kv.mod_revision)
            }
            None => {
                let expired = current.holder.is_empty()
                    || local.observed.as_ref().is_some_and(|o| {
                        o.at.elapsed()
                            >= Duration::from_secs(current.lease_duration_seconds.max(0) as u64)
                    });
                if !expired && cfg.fault != Fault::IgnoreExpiry {
                    local.term = None;
                    return Ok(false);
                }
                let r = LeaseRecord {
                    holder: cfg.identity.clone(),
                    lease_duration_seconds: cfg.lease_seconds(),
                    acquire_micros: now,
                    renew_micros: now,
                    transitions: current.transitions + 1,
                    write: None,
                };
                (r, kv.mod_revision)
            }
        };
        let mut obj: Value =
            serde_json::from_slice(&kv.value).map_err(|e| ElectionError::Corrupt {
                key: key.clone(),
                reason: e.to_string(),
            })?;
        record.apply(&mut obj);
        match store.update(key, expected, encode(&obj)?).await {
            Ok(revision) => {
                local.term = Some(Term { revision, record });
                Ok(true)
            }
            Err(drover_store::Error::Conflict { .. } | drover_store::Error::NotFound { .. }) => {
                if !blind {
                    local.term = None;
                }
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A write that succeeds only while this candidate's term is current: it sets
    /// [`WRITE_ANNOTATION`] to `note` on the Lease, conditional on the resourceVersion of our
    /// last write. A deposed leader's fenced write fails (the next holder changed the Lease).
    /// Returns the new resourceVersion.
    pub async fn write_fenced(&self, note: &str) -> Result<Revision, ElectionError> {
        let cfg = &self.inner.config;
        let mut local = self.inner.local.lock().await;
        let not_leading = |reason: &str| ElectionError::NotLeading {
            lease: self.lease_name(),
            reason: reason.to_owned(),
        };
        let Some(term) = local.term.clone() else {
            return Err(not_leading("this candidate holds no term"));
        };
        let expected = if cfg.fault == Fault::SkipPrecondition {
            match self.inner.store.get(&self.inner.key).await? {
                Some(kv) => kv.mod_revision,
                None => return Err(not_leading("the Lease is gone")),
            }
        } else {
            term.revision
        };
        let mut record = term.record.clone();
        record.write = Some(note.to_owned());
        let Some(kv) = self.inner.store.get(&self.inner.key).await? else {
            return Err(not_leading("the Lease is gone"));
        };
        let mut obj: Value =
            serde_json::from_slice(&kv.value).map_err(|e| ElectionError::Corrupt {
                key: self.inner.key.clone(),
                reason: e.to_string(),
            })?;
        record.apply(&mut obj);
        match self
            .inner
            .store
            .update(&self.inner.key, expected, encode(&obj)?)
            .await
        {
            Ok(revision) => {
                local.term = Some(Term { revision, record });
                Ok(revision)
            }
            Err(drover_store::Error::Conflict { .. } | drover_store::Error::NotFound { .. }) => {
                if cfg.fault != Fault::SkipPrecondition {
                    local.term = None;
                    drop(local);
                    self.set_leading(false);
                }
                Err(not_leading(
                    "the Lease changed since our last write (another candidate took it over)",
                ))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Gives the Lease up (empty holder, 1 s duration) so the next candidate takes over at once.
    async fn release(&self) -> Result<(), ElectionError> {
        let mut local = self.inner.local.lock().await;
        let Some(term) = local.term.take() else {
            return Ok(());
        };
        let Some(kv) = self.inner.store.get(&self.inner.key).await? else {
            return Ok(());
        };
        let now = now_micros();
        let record = LeaseRecord {
            holder: String::new(),
            lease_duration_seconds: 1,
            acquire_micros: now,
            renew_micros: now,
            transitions: term.record.transitions,
            write: None,
        };
        let mut obj: Value =
            serde_json::from_slice(&kv.value).map_err(|e| ElectionError::Corrupt {
                key: self.inner.key.clone(),
                reason: e.to_string(),
            })?;
        record.apply(&mut obj);
        match self
            .inner
            .store
            .update(&self.inner.key, term.revision, encode(&obj)?)
            .await
        {
            Ok(_) => {
                tracing::info!("{} released {}", self.identity(), self.lease_name());
                Ok(())
            }
            // Someone else holds it already: nothing of ours to release.
            Err(drover_store::Error::Conflict { .. } | drover_store::Error::NotFound { .. }) => {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

fn encode(obj: &Value) -> Result<Bytes, ElectionError> {
    crate::objects::encode_stored(obj).map_err(|e| ElectionError::Invalid(format!("{e:?}")))
}

/// `d` stretched by a random factor in [1, 1 + JITTER), as client-go's `wait.Jitter`.
fn jittered(d: Duration) -> Duration {
    use rand::Rng as _;
    d.mul_f64(1.0 + rand::rng().random::<f64>() * JITTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(lease: u64, renew: u64, retry: u64) -> ElectionConfig {
        let mut c = ElectionConfig::new("kube-system", "t");
        c.lease_duration = Duration::from_millis(lease);
        c.renew_deadline = Duration::from_millis(renew);
        c.retry_period = Duration::from_millis(retry);
        c
    }

    #[test]
    fn timings_are_checked_as_client_go_does() {
        assert!(cfg(15_000, 10_000, 2_000).validate().is_ok());
        assert!(cfg(2_000, 1_000, 200).validate().is_ok());
        let e = cfg(10_000, 10_000, 2_000)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("greater than the renew deadline"), "{e}");
        let e = cfg(15_000, 2_000, 2_000)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("1.2 × the retry period"), "{e}");
        let e = cfg(500, 200, 100).validate().unwrap_err().to_string();
        assert!(e.contains("at least 1s"), "{e}");
    }

    #[test]
    fn durations_parse_with_units_and_name_bad_input() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("2h").unwrap_err().contains("\"h\""));
        assert!(parse_duration("x").unwrap_err().contains("\"x\""));
    }

    #[test]
    fn records_round_trip_through_the_stored_lease() {
        let r = LeaseRecord {
            holder: "a_bcdfg".into(),
            lease_duration_seconds: 15,
            acquire_micros: 1_700_000_000_123_456,
            renew_micros: 1_700_000_001_000_001,
            transitions: 3,
            write: Some("a_bcdfg/7".into()),
        };
        let mut obj = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "t", "namespace": "kube-system", "resourceVersion": "9"}});
        r.apply(&mut obj);
        assert_eq!(obj["spec"]["renewTime"], "2023-11-14T22:13:21.000001Z");
        assert!(obj["metadata"].get("resourceVersion").is_none());
        let back = LeaseRecord::from_stored("k", &serde_json::to_vec(&obj).unwrap()).unwrap();
        assert_eq!(back, r);
        let e = LeaseRecord::from_stored("k", b"{\"spec\":{\"renewTime\":\"yesterday\"}}")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("spec.renewTime") && e.contains("yesterday"),
            "{e}"
        );
    }

    async fn store() -> Arc<AnyStore> {
        Arc::new(AnyStore::from(drover_store::MemStore::new()))
    }

    #[tokio::test]
    async fn a_follower_waits_for_expiry_and_takes_over_a_released_lease_at_once() {
        let store = store().await;
        let a = Elector::new(Arc::clone(&store), cfg(1_000, 600, 100)).unwrap();
        let b = Elector::new(Arc::clone(&store), cfg(1_000, 600, 100)).unwrap();
        assert!(a.try_acquire_or_renew().await.unwrap());
        assert!(!b.try_acquire_or_renew().await.unwrap(), "held and fresh");
        assert!(a.try_acquire_or_renew().await.unwrap(), "renewal");
        let rv = a.write_fenced("a/1").await.unwrap();
        assert!(rv > 0);
        assert!(!b.try_acquire_or_renew().await.unwrap());
        // A deposed leader's fenced write fails: b takes over after expiry.
        tokio::time::sleep(Duration::from_millis(1_050)).await;
        assert!(
            b.try_acquire_or_renew().await.unwrap(),
            "expired: taken over"
        );
        let e = a.write_fenced("a/2").await.unwrap_err().to_string();
        assert!(e.contains("another candidate"), "{e}");
        let kv = store.get(&b.inner.key).await.unwrap().unwrap();
        let rec = LeaseRecord::from_stored("k", &kv.value).unwrap();
        assert_eq!((rec.holder.as_str(), rec.transitions), (b.identity(), 1));
        // Release: a takes over on its next try, without waiting for expiry.
        b.release().await.unwrap();
        assert!(a.try_acquire_or_renew().await.unwrap());
        let kv = store.get(&a.inner.key).await.unwrap().unwrap();
        let rec = LeaseRecord::from_stored("k", &kv.value).unwrap();
        assert_eq!((rec.holder.as_str(), rec.transitions), (a.identity(), 2));
    }

    #[tokio::test]
    async fn the_broken_variants_break_the_rules_the_checker_looks_for() {
        let store = store().await;
        let a = Elector::new(Arc::clone(&store), cfg(10_000, 6_000, 100)).unwrap();
        let mut broken = cfg(10_000, 6_000, 100);
        broken.fault = Fault::IgnoreExpiry;
        let b = Elector::new(Arc::clone(&store), broken).unwrap();
        assert!(a.try_acquire_or_renew().await.unwrap());
        assert!(b.try_acquire_or_renew().await.unwrap(), "took a live lease");
        let mut blind = cfg(10_000, 6_000, 100);
        blind.fault = Fault::SkipPrecondition;
        let c = Elector::new(Arc::clone(&store), blind).unwrap();
        assert!(!c.try_acquire_or_renew().await.unwrap());
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Give c a term by letting it win a released lease, then depose it.
        b.release().await.unwrap();
        assert!(c.try_acquire_or_renew().await.unwrap());
        let mut ignore = cfg(10_000, 6_000, 100);
        ignore.fault = Fault::IgnoreExpiry;
        let d = Elector::new(Arc::clone(&store), ignore).unwrap();
        assert!(d.try_acquire_or_renew().await.unwrap());
        assert!(c.write_fenced("c/1").await.is_ok(), "blind write succeeded");
    }

    #[tokio::test]
    async fn run_leads_and_releases_on_shutdown() {
        let store = store().await;
        let a = Elector::new(Arc::clone(&store), cfg(2_000, 1_000, 100)).unwrap();
        let mut h = a.handle();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let key = a.inner.key.clone();
        let task = tokio::spawn(a.run(rx));
        tokio::time::timeout(Duration::from_secs(10), h.wait_for(true))
            .await
            .expect("a lone candidate should lead within 10 s (elector stuck?)");
        tx.send(true).unwrap();
        task.await.unwrap();
        assert!(!h.is_leader());
        let kv = store.get(&key).await.unwrap().unwrap();
        let rec = LeaseRecord::from_stored("k", &kv.value).unwrap();
        assert_eq!(rec.holder, "", "released on shutdown");
    }
}
