//! WATCH: a chunked stream of `{"type": …, "object": …}` events, served from the watch
//! cache's event window (or from a store watch for revisions older than the window).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use drover_core::registry::Resource;
use drover_store::{Revision, Store};
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::read::{Selection, list_prefix};
use super::{Ctx, convert};
use crate::body::Body;
use crate::cache::{CacheEvent, Change, Entry};
use crate::negotiate::{self, Output};
use crate::objects::{decode_stored, parse_rv, set_resource_version};
use crate::state::State;
use crate::status::{ApiError, ApiResult};

const BOOKMARK_EVERY: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// Where events come from.
enum Source {
    Cache {
        backlog: std::vec::IntoIter<Arc<CacheEvent>>,
        live: broadcast::Receiver<Arc<CacheEvent>>,
    },
    Store(
        drover_store::WatchStream,
        std::vec::IntoIter<Arc<CacheEvent>>,
    ),
}

struct Watcher {
    state: Arc<State>,
    res: Resource,
    prefix: String,
    selection: Selection,
    output: Output,
    bookmarks: bool,
    include: String,
    tx: mpsc::Sender<Bytes>,
    last: Revision,
}

/// The `timeoutSeconds` parameter (the default when unset).
pub(super) fn parse_timeout(query: &crate::route::Query) -> ApiResult<Duration> {
    match query.get("timeoutSeconds").filter(|t| !t.is_empty()) {
        Some(t) => Ok(Duration::from_secs(t.parse().map_err(|_| {
            ApiError::BadRequest(format!("invalid timeoutSeconds {t:?}"))
        })?)),
        None => Ok(DEFAULT_TIMEOUT),
    }
}

/// Serves a watch.
pub(crate) async fn watch(ctx: Ctx<'_>) -> ApiResult<Response<Body>> {
    let selection = Selection::from_query(&ctx)?;
    let output = match negotiate::choose_output(ctx.accept(), true)? {
        // Protobuf frames for kinds the codec knows (typed clients); JSON lines otherwise
        // (custom resources, YAML requests), which every client accepts.
        Output::Object(negotiate::Encoding::Protobuf)
            if drover_codec::message_for(&ctx.res.api_version(), &ctx.res.kind).is_some() =>
        {
            Output::Object(negotiate::Encoding::Protobuf)
        }
        Output::Object(_) => Output::Object(negotiate::Encoding::Json),
        other => other,
    };
    let bookmarks = ctx.query.flag("allowWatchBookmarks");
    let send_initial = ctx.query.get("sendInitialEvents") == Some("true");
    if send_initial && (!bookmarks || ctx.query.get("resourceVersionMatch") != Some("NotOlderThan"))
    {
        return Err(ApiError::Invalid {
            target: ctx.target(),
            kind: "ListOptions".into(),
            causes: vec![crate::status::Cause::new(
                "FieldValueForbidden",
                "sendInitialEvents",
                "Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled and resourceVersionMatch is NotOlderThan with allowWatchBookmarks",
            )],
        });
    }
    let timeout = parse_timeout(ctx.query)?;
    let prefix = list_prefix(&ctx);
    let rv = ctx.query.get("resourceVersion").filter(|r| !r.is_empty());
    let state = Arc::clone(ctx.state);

    let mut initial: Vec<(Arc<str>, Arc<Entry>)> = Vec::new();
    let start = if rv.is_none() || rv == Some("0") || send_initial {
        if rv.is_none() {
            let current = state.store.current_revision().await?;
            state.cache.wait_for(current).await?;
        } else if let Some(r) = rv.filter(|r| *r != "0") {
            state.cache.wait_for(parse_rv(r)?).await?;
        }
        let snap = state.cache.snapshot(&prefix, None);
        initial = snap.items;
        snap.revision
    } else {
        let r = parse_rv(rv.unwrap_or("0"))?;
        if r > state.cache.revision() {
            state.cache.wait_for(r).await?;
        }
        r
    };

    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let mut w = Watcher {
        state: Arc::clone(&state),
        res: ctx.res.clone(),
        prefix,
        selection,
        output,
        bookmarks,
        include: ctx
            .query
            .get("includeObject")
            .unwrap_or("Metadata")
            .to_owned(),
        tx,
        last: start,
    };
    let source = match state.cache.subscribe(start) {
        Some(sub) => Source::Cache {
            backlog: sub.backlog.into_iter(),
            live: sub.live,
        },
        None => match state.store.watch(&w.prefix, start).await {
            Ok(stream) => Source::Store(stream, Vec::new().into_iter()),
            Err(e) => {
                let status = ApiError::from(e).to_status();
                let _ = w.send("ERROR", status).await;
                return Ok(stream_response(rx, w.content_type()));
            }
        },
    };
    let content_type = w.content_type();
    state.metrics.watches.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        let state = Arc::clone(&w.state);
        let _ = tokio::time::timeout(timeout, w.run(initial, send_initial, source)).await;
        state.metrics.watches.fetch_sub(1, Ordering::Relaxed);
    });
    Ok(stream_response(rx, content_type))
}

fn stream_response(rx: mpsc::Receiver<Bytes>, content_type: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::Stream(rx));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    r
}

impl Watcher {
    fn content_type(&self) -> &'static str {
        if self.protobuf() {
            drover_codec::WATCH_CONTENT_TYPE
        } else {
            "application/json"
        }
    }

    fn protobuf(&self) -> bool {
        self.output == Output::Object(negotiate::Encoding::Protobuf)
    }

    async fn run(
        &mut self,
        initial: Vec<(Arc<str>, Arc<Entry>)>,
        send_initial: bool,
        mut source: Source,
    ) {
        for (_, entry) in initial {
            let Ok(obj) = decode_stored(&entry.value, entry.mod_revision) else {
                continue;
            };
            if self.selection.matches(&obj) && self.send("ADDED", obj).await.is_err() {
                return;
            }
        }
        if send_initial {
            let mark = self.bookmark(true);
            if self.send("BOOKMARK", mark).await.is_err() {
                return;
            }
        }
        let mut shutdown = self.state.shutdown.clone();
        let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
        ticker.tick().await;
        loop {
            let next = tokio::select! {
                ev = next_event(&mut source, &self.state, &self.prefix, self.last) => ev,
                _ = ticker.tick() => {
                    if self.bookmarks {
                        let mark = self.bookmark(false);
                        if self.send("BOOKMARK", mark).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
                _ = crate::state::shutting_down(&mut shutdown) => return,
                _ = self.tx.closed() => return,
            };
            match next {
                Next::Event(ev) => {
                    if ev.revision <= self.last {
                        continue;
                    }
                    self.last = ev.revision;
                    if !ev.key.starts_with(self.prefix.as_str()) {
                        continue;
                    }
                    if let Some((kind, obj)) = self.classify(&ev)
                        && self.send(kind, obj).await.is_err()
                    {
                        return;
                    }
                }
                Next::Resubscribe => {
                    source = match self.state.cache.subscribe(self.last) {
                        Some(sub) => Source::Cache {
                            backlog: sub.backlog.into_iter(),
                            live: sub.live,
                        },
                        None => match self.state.store.watch(&self.prefix, self.last).await {
                            Ok(s) => Source::Store(s, Vec::new().into_iter()),
                            Err(e) => {
                                let _ = self.send("ERROR", ApiError::from(e).to_status()).await;
                                return;
                            }
                        },
                    };
                }
                Next::Gone(status) => {
                    let _ = self.send("ERROR", status).await;
                    return;
                }
                Next::End => return,
            }
        }
    }

    fn bookmark(&self, initial_end: bool) -> Value {
        let mut meta =
            json!({"resourceVersion": self.state.cache.revision().max(self.last).to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        json!({"kind": self.res.kind, "apiVersion": self.res.api_version(), "metadata": meta})
    }

    /// Turns a store change into the event this watcher sees, if any (a change that moves an
    /// object out of the selection is a DELETED).
    fn classify(&self, ev: &CacheEvent) -> Option<(&'static str, Value)> {
        let new = decode_stored(&ev.entry.value, ev.entry.mod_revision).ok()?;
        let matches_new = self.selection.matches(&new);
        let matches_prev = |prev: &Option<Arc<Entry>>| {
            prev.as_ref()
                .and_then(|p| decode_stored(&p.value, p.mod_revision).ok())
                .is_some_and(|p| self.selection.matches(&p))
        };
        match ev.change {
            Change::Put => match (&ev.prev, matches_new) {
                (None, true) => Some(("ADDED", new)),
                (None, false) => None,
                (Some(_), true) if self.selection.is_empty() || matches_prev(&ev.prev) => {
                    Some(("MODIFIED", new))
                }
                (Some(_), true) => Some(("ADDED", new)),
                (Some(_), false) if matches_prev(&ev.prev) => Some(("DELETED", new)),
                (Some(_), false) => None,
            },
            Change::Delete => {
                if matches_new {
                    let mut obj = new;
                    set_resource_version(&mut obj, ev.revision);
                    Some(("DELETED", obj))
                } else {
                    None
                }
            }
        }
    }

    async fn send(&self, kind: &str, obj: Value) -> Result<(), ()> {
        let object = if kind == "ERROR" || kind == "BOOKMARK" {
            obj
        } else {
            let obj = convert::from_storage(&self.res, obj);
            match self.output {
                Output::Table { v1beta1 } => {
                    super::write::table_for(&self.res, &[obj], json!({}), &self.include, v1beta1)
                }
                Output::Metadata { v1beta1 } => super::read::partial_metadata(
                    &obj,
                    if v1beta1 {
                        "meta.k8s.io/v1beta1"
                    } else {
                        "meta.k8s.io/v1"
                    },
                ),
                Output::Object(_) => obj,
            }
        };
        let event = json!({"type": kind, "object": object});
        if self.protobuf() {
            return match drover_codec::encode_watch_frame(&event) {
                Ok(frame) => self.tx.send(Bytes::from(frame)).await.map_err(|_| ()),
                Err(e) => {
                    tracing::warn!("watch: cannot encode a {kind} event as protobuf: {e}");
                    Err(())
                }
            };
        }
        let mut line = serde_json::to_vec(&event).map_err(|_| ())?;
        line.push(b'\n');
        self.tx.send(Bytes::from(line)).await.map_err(|_| ())
    }
}

enum Next {
    Event(Arc<CacheEvent>),
    Resubscribe,
    Gone(Value),
    End,
}

async fn next_event(source: &mut Source, state: &State, prefix: &str, last: Revision) -> Next {
    let _ = (state, prefix);
    match source {
        Source::Cache { backlog, live } => {
            if let Some(ev) = backlog.next() {
                return Next::Event(ev);
            }
            match live.recv().await {
                Ok(ev) => Next::Event(ev),
                // Fell behind the broadcast: pick up again from the window (or the store).
                Err(broadcast::error::RecvError::Lagged(_)) => Next::Resubscribe,
                Err(broadcast::error::RecvError::Closed) => Next::End,
            }
        }
        Source::Store(stream, pending) => loop {
            if let Some(ev) = pending.next() {
                return Next::Event(ev);
            }
            match stream.recv().await {
                Some(Ok(batch)) => {
                    let evs: Vec<Arc<CacheEvent>> = batch
                        .events
                        .into_iter()
                        .map(|e| Arc::new(store_event(e)))
                        .collect();
                    *pending = evs.into_iter();
                }
                Some(Err(drover_store::Error::Compacted { compacted, .. })) => {
                    return Next::Gone(
                        ApiError::Gone(format!("too old resource version: {last} ({compacted})"))
                            .to_status(),
                    );
                }
                Some(Err(e)) => return Next::Gone(ApiError::from(e).to_status()),
                None => return Next::End,
            }
        },
    }
}

fn store_event(e: drover_store::Event) -> CacheEvent {
    let revision = e.revision();
    match e {
        drover_store::Event::Put { kv, prev } => CacheEvent {
            revision,
            key: Arc::from(kv.key.as_str()),
            change: Change::Put,
            entry: Arc::new(Entry {
                value: kv.value,
                mod_revision: kv.mod_revision,
            }),
            prev: prev.map(|p| {
                Arc::new(Entry {
                    value: p.value,
                    mod_revision: p.mod_revision,
                })
            }),
        },
        drover_store::Event::Delete { prev, .. } => CacheEvent {
            revision,
            key: Arc::from(prev.key.as_str()),
            change: Change::Delete,
            entry: Arc::new(Entry {
                value: prev.value.clone(),
                mod_revision: prev.mod_revision,
            }),
            prev: Some(Arc::new(Entry {
                value: prev.value,
                mod_revision: prev.mod_revision,
            })),
        },
    }
}
