//! The etcd backend: the [`Store`] contract mapped onto etcd's v3 API over gRPC.
//!
//! etcd already has the contract's model (one cluster revision, `create_revision` and
//! `mod_revision` per key, MVCC reads at a revision, ordered watches, compaction), so most
//! calls are one request: create is a transaction on `create_revision == 0`, update and
//! delete are transactions on `mod_revision`, a failed comparison reads the current value in
//! the same transaction. What Drover adds:
//!
//! - **Watches that survive disconnects** ([`watch`]): each [`Store::watch`] is one etcd watch
//!   with `prev_kv`, restarted after a stream error from the last delivered revision + 1, so a
//!   reconnect never skips nor repeats an event. Progress notifications come from etcd only
//!   through a guard on versions with the progress/event race.
//! - **Server-driven compaction and defragmentation** ([`maintenance`]), with the same
//!   retention settings as the SQLite store, coordinated between servers through one key.
//! - **Errors that say where**: an unreachable etcd is [`Error::Unavailable`] naming the
//!   endpoints (HTTP 503), the `NOSPACE` alarm is [`Error::NoSpace`] (HTTP 507).
//!
//! The client connects lazily and reconnects by itself, so a store can be opened while etcd is
//! down; calls fail with [`Error::Unavailable`] until it is back.

mod config;
mod maintenance;
mod watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, Txn, TxnOp,
    TxnOpResponse,
};

pub use config::EtcdConfig;

use crate::{
    Bytes, Error, KeyValue, RangeRequest, RangeResponse, Revision, Store, StoreStats, WatchStream,
};

/// Where the compacted revision is recorded, under the key prefix. Servers sharing one etcd
/// coordinate compaction through it (a transaction on its version), and `compacted_revision`
/// reads it: etcd itself has no call that returns its compacted revision.
const COMPACT_KEY: &str = "/drover/etcd/compacted";
/// Written by idle whole-keyspace watches on old etcd versions (see `watch`).
const FENCE_KEY: &str = "/drover/etcd/fence";

/// A store on an etcd cluster. Cloning gives another handle to the same connection.
#[derive(Clone)]
pub struct EtcdStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: EtcdConfig,
    options: ConnectOptions,
    /// The connected client; `None` until the first successful connect and after an
    /// authentication failure (a restarted etcd forgets its tokens).
    client: tokio::sync::Mutex<Option<Client>>,
    compacted: AtomicI64,
    commits: AtomicU64,
    /// Whether etcd's progress notifications can be trusted without the guard (etcd fixed the
    /// progress/event race in 3.4.31 and 3.5.13).
    progress_trusted: AtomicBool,
    /// The last health probe's result, for `/readyz/etcd`.
    health: parking_lot::Mutex<Result<(), String>>,
}

// === impl EtcdStore ===

impl EtcdStore {
    /// Prepares a store on these members. Reads the TLS files now (so a wrong path fails at
    /// start), but does not wait for etcd: the connection is made on first use and remade
    /// after failures. Starts the maintenance task (health, compaction, defragmentation) when
    /// `config.maintenance` is set; must be called inside a tokio runtime.
    pub fn open(mut config: EtcdConfig) -> Result<EtcdStore, Error> {
        config.resolve_schemes().map_err(Error::Backend)?;
        if config.endpoints.is_empty() {
            return Err(Error::Backend("no etcd endpoints were given".into()));
        }
        let options = connect_options(&config)?;
        let inner = Arc::new(Inner {
            health: parking_lot::Mutex::new(Err(format!(
                "not yet connected to etcd at {}",
                config.describe()
            ))),
            config,
            options,
            client: tokio::sync::Mutex::new(None),
            compacted: AtomicI64::new(0),
            commits: AtomicU64::new(0),
            progress_trusted: AtomicBool::new(false),
        });
        if inner.config.maintenance {
            maintenance::spawn(Arc::downgrade(&inner)).map_err(Error::Backend)?;
        }
        Ok(EtcdStore { inner })
    }

    /// The result of the last health probe: `Err` names the endpoints and what failed.
    pub fn health(&self) -> Result<(), String> {
        self.inner.health.lock().clone()
    }

    /// Checks etcd now (one read) and records the result for [`EtcdStore::health`].
    pub async fn probe(&self) -> Result<(), Error> {
        self.inner.probe().await
    }

    /// The etcd keys this store's keys map to start with this.
    pub fn key_prefix(&self) -> &str {
        &self.inner.config.prefix
    }
}

impl Inner {
    fn endpoints(&self) -> String {
        self.config.describe()
    }

    /// The connected client, connecting first if needed.
    async fn client(&self) -> Result<Client, Error> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        let connect = Client::connect(&self.config.endpoints, Some(self.options.clone()));
        let client = tokio::time::timeout(self.config.request_timeout, connect)
            .await
            .map_err(|_| self.unavailable("connecting timed out"))?
            .map_err(|e| self.map_err(e))?;
        *slot = Some(client.clone());
        drop(slot);
        Ok(client)
    }

    fn unavailable(&self, what: impl std::fmt::Display) -> Error {
        Error::Unavailable(format!(
            "etcd at {} is unavailable: {what}",
            self.endpoints()
        ))
    }

    /// Runs one request with the request timeout; failures become store errors.
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, Error>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let client = self.client().await?;
        match tokio::time::timeout(self.config.request_timeout, f(client)).await {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(e)) => Err(self.map_err(e)),
            Err(_) => Err(self.unavailable(format!(
                "no answer within {:?}",
                self.config.request_timeout
            ))),
        }
    }

    /// Maps a client error. Revision errors are mapped by the callers that know the revision.
    fn map_err(&self, e: etcd_client::Error) -> Error {
        match e {
            etcd_client::Error::GRpcStatus(s) => {
                let msg = s.message();
                if msg.contains("invalid user ID or password") {
                    // Wrong credentials do not heal by retrying: say so instead of waiting.
                    return Error::Backend(format!(
                        "etcd at {} refused the user name or password (authentication failed): \
                         check user:password@ in --datastore-endpoint or --datastore-user",
                        self.endpoints()
                    ));
                }
                if msg.contains("database space exceeded") {
                    return Error::NoSpace {
                        detail: format!(
                            "etcd at {} raised its NOSPACE alarm (database space exceeded); \
                             Drover compacts and defragments it and then disarms the alarm, \
                             or raise etcd's --quota-backend-bytes",
                            self.endpoints()
                        ),
                    };
                }
                match s.code() as i32 {
                    tonic_code::UNAVAILABLE
                    | tonic_code::DEADLINE_EXCEEDED
                    | tonic_code::CANCELLED
                    | tonic_code::UNKNOWN => self.unavailable(msg),
                    tonic_code::UNAUTHENTICATED => {
                        // A restarted etcd forgets issued tokens: authenticate again next time.
                        if let Ok(mut slot) = self.client.try_lock() {
                            *slot = None;
                        }
                        self.unavailable(format!("authentication failed: {msg}"))
                    }
                    _ if msg.contains("invalid auth token")
                        || msg.contains("authentication failed")
                        || msg.contains("user name is empty") =>
                    {
                        if let Ok(mut slot) = self.client.try_lock() {
                            *slot = None;
                        }
                        self.unavailable(format!("authentication failed: {msg}"))
                    }
                    _ => Error::Backend(format!("etcd at {}: {msg}", self.endpoints())),
                }
            }
            etcd_client::Error::TransportError(e) => self.unavailable(e),
            etcd_client::Error::WatchError(e) => self.unavailable(format!("watch: {e}")),
            etcd_client::Error::IoError(e) => self.unavailable(e),
            other => Error::Backend(format!("etcd at {}: {other}", self.endpoints())),
        }
    }

    /// `key` as stored in etcd. etcd has no empty key; the empty key means the first one.
    fn key(&self, key: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.config.prefix.len() + key.len());
        k.extend_from_slice(self.config.prefix.as_bytes());
        k.extend_from_slice(key.as_bytes());
        if k.is_empty() {
            k.push(0);
        }
        k
    }

    /// The etcd range `[start, end)` of every key that starts with `prefix`.
    fn prefix_range(&self, prefix: &str) -> (Vec<u8>, Vec<u8>) {
        let mut start = self.config.prefix.as_bytes().to_vec();
        if prefix.is_empty() && !start.is_empty() {
            // Every Drover key starts with '/': "/cluster-a" + "/" keeps "/cluster-a2/…" out.
            start.push(b'/');
        }
        start.extend_from_slice(prefix.as_bytes());
        let end = etcd_prefix_end(&start);
        if start.is_empty() {
            // etcd's "every key": key "\0", range end "\0".
            start.push(0);
        }
        (start, end)
    }

    /// The etcd range end for a store range end (`""` = one key).
    fn range_end(&self, end: &str) -> Vec<u8> {
        if end.is_empty() {
            Vec::new()
        } else if end == crate::prefix_end("") {
            // The store's "no end" sentinel: every key under our prefix.
            self.prefix_range("").1
        } else {
            self.key(end)
        }
    }

    fn kv(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue, Error> {
        let key = kv
            .key()
            .strip_prefix(self.config.prefix.as_bytes())
            .ok_or_else(|| {
                Error::Backend(format!(
                    "etcd returned key {:?} outside the prefix {:?}",
                    String::from_utf8_lossy(kv.key()),
                    self.config.prefix
                ))
            })?;
        let key = String::from_utf8(key.to_vec()).map_err(|_| {
            Error::Backend(format!(
                "etcd key {:?} is not UTF-8; it was not written by Drover",
                String::from_utf8_lossy(kv.key())
            ))
        })?;
        Ok(KeyValue {
            key,
            value: Bytes::copy_from_slice(kv.value()),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
        })
    }

    /// Reads the recorded compacted revision and the current revision in one request.
    async fn revisions(&self) -> Result<(Revision, Revision), Error> {
        let key = self.key(COMPACT_KEY);
        let resp = self
            .call(|mut c| async move { c.get(key, None).await })
            .await?;
        let current = resp.header().map_or(0, |h| h.revision());
        let recorded = match resp.kvs().first() {
            Some(kv) => parse_revision(kv.value())?,
            None => 0,
        };
        let compacted = self
            .compacted
            .fetch_max(recorded, Ordering::SeqCst)
            .max(recorded);
        Ok((current, compacted))
    }

    async fn probe(&self) -> Result<(), Error> {
        let result = self.revisions().await.map(|_| ());
        *self.health.lock() = result.as_ref().map(|_| ()).map_err(|e| e.to_string());
        result
    }

    /// Reads the key after a failed comparison, from the transaction's `or_else` get.
    fn current_of(&self, responses: &[TxnOpResponse]) -> Result<Option<KeyValue>, Error> {
        match responses.first() {
            Some(TxnOpResponse::Get(get)) => get.kvs().first().map(|kv| self.kv(kv)).transpose(),
            _ => Err(Error::Backend(
                "etcd answered a failed transaction without its read".into(),
            )),
        }
    }
}

/// gRPC status codes, by number (the client crate does not re-export tonic's `Code`).
mod tonic_code {
    pub(super) const CANCELLED: i32 = 1;
    pub(super) const UNKNOWN: i32 = 2;
    pub(super) const DEADLINE_EXCEEDED: i32 = 4;
    pub(super) const UNAVAILABLE: i32 = 14;
    pub(super) const UNAUTHENTICATED: i32 = 16;
}

fn connect_options(config: &EtcdConfig) -> Result<ConnectOptions, Error> {
    let mut options = ConnectOptions::new()
        .with_connect_timeout(config.request_timeout.min(Duration::from_secs(3)))
        .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
        .with_keep_alive_while_idle(true);
    if let Some((user, password)) = &config.user {
        options = options.with_user(user.clone(), password.clone());
    }
    if config.ca_file.is_some() || config.cert_file.is_some() {
        let read = |path: &std::path::PathBuf, what: &str| {
            std::fs::read(path).map_err(|e| {
                Error::Backend(format!(
                    "cannot read the etcd {what} {}: {e}",
                    path.display()
                ))
            })
        };
        let mut tls = etcd_client::TlsOptions::new();
        if let Some(ca) = &config.ca_file {
            tls = tls.ca_certificate(etcd_client::Certificate::from_pem(read(ca, "CA file")?));
        }
        if let (Some(cert), Some(key)) = (&config.cert_file, &config.key_file) {
            tls = tls.identity(etcd_client::Identity::from_pem(
                read(cert, "client certificate")?,
                read(key, "client key")?,
            ));
        }
        options = options.with_tls(tls);
    }
    Ok(options)
}

/// The smallest etcd key after every key that starts with `prefix` (`[0]` = no end).
fn etcd_prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn parse_revision(value: &[u8]) -> Result<Revision, Error> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| {
            Error::Backend(format!(
                "the compaction record {COMPACT_KEY} holds {:?}, not a revision",
                String::from_utf8_lossy(value)
            ))
        })
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<Revision, Error> {
    header
        .map(|h| h.revision())
        .ok_or_else(|| Error::Backend("etcd answered without a response header".into()))
}

impl Store for EtcdStore {
    async fn current_revision(&self) -> Result<Revision, Error> {
        Ok(self.inner.revisions().await?.0)
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>, Error> {
        let k = self.inner.key(key);
        let resp = self
            .inner
            .call(|mut c| async move { c.get(k, None).await })
            .await?;
        resp.kvs().first().map(|kv| self.inner.kv(kv)).transpose()
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResponse, Error> {
        let inner = &self.inner;
        let start = inner.key(&req.start);
        let mut options = GetOptions::new();
        let end = inner.range_end(&req.end);
        if !end.is_empty() {
            options = options.with_range(end);
        }
        if req.limit > 0 {
            options = options.with_limit(i64::try_from(req.limit).unwrap_or(i64::MAX));
        }
        if req.revision > 0 {
            options = options.with_revision(req.revision);
        }
        let result = inner
            .call(|mut c| async move { c.get(start, Some(options)).await })
            .await;
        let resp = match result {
            Ok(resp) => resp,
            Err(Error::Backend(m)) if m.contains("required revision has been compacted") => {
                let (_, compacted) = inner.revisions().await?;
                return Err(Error::Compacted {
                    requested: req.revision,
                    compacted: compacted.max(req.revision + 1),
                });
            }
            Err(Error::Backend(m)) if m.contains("required revision is a future revision") => {
                let (current, _) = inner.revisions().await?;
                return Err(Error::FutureRevision {
                    requested: req.revision,
                    current,
                });
            }
            Err(e) => return Err(e),
        };
        let kvs = resp
            .kvs()
            .iter()
            .map(|kv| inner.kv(kv))
            .collect::<Result<Vec<_>, _>>()?;
        let revision = if req.revision > 0 {
            req.revision
        } else {
            header_revision(resp.header())?
        };
        let count = if req.skip_count {
            kvs.len() as u64
        } else {
            u64::try_from(resp.count()).unwrap_or(0)
        };
        Ok(RangeResponse {
            more: resp.more(),
            count,
            revision,
            kvs,
        })
    }

    async fn count(&self, prefix: &str) -> Result<u64, Error> {
        let (start, end) = self.inner.prefix_range(prefix);
        let options = GetOptions::new().with_range(end).with_count_only();
        let resp = self
            .inner
            .call(|mut c| async move { c.get(start, Some(options)).await })
            .await?;
        Ok(u64::try_from(resp.count()).unwrap_or(0))
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision, Error> {
        let k = self.inner.key(key);
        let txn = Txn::new()
            .when([Compare::create_revision(k.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(k.clone(), value.to_vec(), None)])
            .or_else([TxnOp::get(k, None)]);
        let resp = self
            .inner
            .call(|mut c| async move { c.txn(txn).await })
            .await?;
        if resp.succeeded() {
            self.inner.commits.fetch_add(1, Ordering::Relaxed);
            return header_revision(resp.header());
        }
        match self.inner.current_of(&resp.op_responses())? {
            Some(current) => Err(Error::AlreadyExists {
                key: key.to_owned(),
                current: Box::new(current),
            }),
            // Deleted between the comparison and the read cannot happen inside one txn.
            None => Err(Error::Backend(format!(
                "etcd refused to create {key:?} but holds no value for it"
            ))),
        }
    }

    async fn update(&self, key: &str, expected: Revision, value: Bytes) -> Result<Revision, Error> {
        let k = self.inner.key(key);
        // The second comparison keeps `expected == 0` from creating a missing key.
        let txn = Txn::new()
            .when([
                Compare::mod_revision(k.clone(), CompareOp::Equal, expected),
                Compare::create_revision(k.clone(), CompareOp::Greater, 0),
            ])
            .and_then([TxnOp::put(k.clone(), value.to_vec(), None)])
            .or_else([TxnOp::get(k, None)]);
        let resp = self
            .inner
            .call(|mut c| async move { c.txn(txn).await })
            .await?;
        if resp.succeeded() {
            self.inner.commits.fetch_add(1, Ordering::Relaxed);
            return header_revision(resp.header());
        }
        Err(mismatch(
            key,
            expected,
            self.inner.current_of(&resp.op_responses())?,
        ))
    }

    async fn delete(&self, key: &str, expected: Revision) -> Result<(Revision, KeyValue), Error> {
        let k = self.inner.key(key);
        let condition = if expected == 0 {
            Compare::create_revision(k.clone(), CompareOp::Greater, 0)
        } else {
            Compare::mod_revision(k.clone(), CompareOp::Equal, expected)
        };
        let txn = Txn::new()
            .when([condition])
            .and_then([TxnOp::delete(
                k.clone(),
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(k, None)]);
        let resp = self
            .inner
            .call(|mut c| async move { c.txn(txn).await })
            .await?;
        let ops = resp.op_responses();
        if !resp.succeeded() {
            return Err(mismatch(key, expected, self.inner.current_of(&ops)?));
        }
        self.inner.commits.fetch_add(1, Ordering::Relaxed);
        let prev = match ops.first() {
            Some(TxnOpResponse::Delete(d)) => d.prev_kvs().first().map(|kv| self.inner.kv(kv)),
            _ => None,
        }
        .transpose()?
        .ok_or_else(|| {
            Error::Backend(format!("etcd deleted {key:?} without returning its value"))
        })?;
        Ok((header_revision(resp.header())?, prev))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, Error> {
        let (_, compacted) = self.inner.revisions().await?;
        if after < compacted {
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            let _ = tx.try_send(Err(Error::Compacted {
                requested: after,
                compacted,
            }));
            return Ok(rx);
        }
        Ok(watch::spawn(
            Arc::clone(&self.inner),
            prefix.to_owned(),
            after,
        ))
    }

    async fn compact(&self, revision: Revision) -> Result<(), Error> {
        maintenance::compact(&self.inner, revision).await
    }

    async fn compacted_revision(&self) -> Result<Revision, Error> {
        Ok(self.inner.revisions().await?.1)
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            commits: self.inner.commits.load(Ordering::Relaxed),
            // etcd syncs and keeps history on its side; it does not report them per client.
            fsyncs: 0,
            history_entries: 0,
            compacted: self.inner.compacted.load(Ordering::SeqCst),
        }
    }
}

/// The error for a failed compare-and-swap, given the key's current value.
fn mismatch(key: &str, expected: Revision, current: Option<KeyValue>) -> Error {
    match current {
        None => Error::NotFound {
            key: key.to_owned(),
        },
        Some(current) => Error::Conflict {
            key: key.to_owned(),
            expected,
            current: Some(Box::new(current)),
        },
    }
}
