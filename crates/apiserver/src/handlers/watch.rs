//! WATCH: a chunked stream of `{"type": …, "object": …}` events, served from the watch
//! cache's event window (or from a store watch for revisions older than the window).

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
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
use crate::cache::{CacheEvent, Change, Entry, LiveEvent};
use crate::negotiate::{self, Output};
use crate::objects::{decode_stored, parse_rv};
use crate::state::State;
use crate::status::{ApiError, ApiResult};

const BOOKMARK_EVERY: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// Where events come from.
enum Source {
    Cache {
        backlog: std::vec::IntoIter<Arc<CacheEvent>>,
        live: broadcast::Receiver<Arc<LiveEvent>>,
    },
    Store(
        drover_store::WatchStream,
        std::vec::IntoIter<Arc<CacheEvent>>,
    ),
}

/// What every watcher of one live event shares, computed by the first that needs it: the
/// decoded object (and the previous one, for selectors), and each encoded frame — one per
/// event type, resource version, output form and encoding. With many watchers on a resource
/// an event is decoded once and encoded once per form, not once per watcher; each watcher
/// still applies its own selector, to the shared decoded object.
#[derive(Default)]
pub(crate) struct Shared {
    /// The object as watchers send it (resource version set; for a delete, the delete's).
    new: OnceLock<Option<Value>>,
    /// The previous object, decoded.
    prev: OnceLock<Option<Value>>,
    /// Encoded frames (`None`: the object cannot be encoded in that form).
    frames: parking_lot::Mutex<Vec<(FrameKey, Option<Bytes>)>>,
}

/// What decides a frame's bytes.
#[derive(PartialEq)]
struct FrameKey {
    kind: &'static str,
    res: Resource,
    output: Output,
    /// `includeObject` (Tables only; empty otherwise).
    include: String,
}

impl Shared {
    fn new_object(&self, ev: &CacheEvent) -> Option<&Value> {
        self.new
            .get_or_init(|| {
                let revision = match ev.change {
                    Change::Put => ev.entry.mod_revision,
                    Change::Delete => ev.revision,
                };
                decode_stored(&ev.entry.value, revision).ok()
            })
            .as_ref()
    }

    fn prev_object(&self, ev: &CacheEvent) -> Option<&Value> {
        self.prev
            .get_or_init(|| {
                let p = ev.prev.as_ref()?;
                decode_stored(&p.value, p.mod_revision).ok()
            })
            .as_ref()
    }
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
                Next::Event(live) => {
                    let ev = &live.event;
                    if ev.revision <= self.last {
                        continue;
                    }
                    self.last = ev.revision;
                    if !ev.key.starts_with(self.prefix.as_str()) {
                        continue;
                    }
                    if let Some(kind) = self.classify(&live) {
                        let Some(frame) = self.frame(&live, kind) else {
                            return;
                        };
                        if self.tx.send(frame).await.is_err() {
                            return;
                        }
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

    /// The type of the event this watcher sees for a store change, if any (a change that
    /// moves an object out of the selection is a DELETED). Selectors look at the decoded
    /// objects all watchers of the event share.
    fn classify(&self, live: &LiveEvent) -> Option<&'static str> {
        let ev = &live.event;
        let new = live.shared.new_object(ev)?;
        let matches_new = self.selection.matches(new);
        let matches_prev = || {
            live.shared
                .prev_object(ev)
                .is_some_and(|p| self.selection.matches(p))
        };
        match ev.change {
            Change::Put => match (&ev.prev, matches_new) {
                (None, true) => Some("ADDED"),
                (None, false) => None,
                (Some(_), true) if self.selection.is_empty() || matches_prev() => Some("MODIFIED"),
                (Some(_), true) => Some("ADDED"),
                (Some(_), false) if matches_prev() => Some("DELETED"),
                (Some(_), false) => None,
            },
            Change::Delete => matches_new.then_some("DELETED"),
        }
    }

    /// The encoded `kind` event of `live`'s object for this watcher: the frame another watcher
    /// with the same resource version and output made, or made now and kept for the others.
    /// `None` when the object cannot be encoded (the watch ends).
    fn frame(&self, live: &LiveEvent, kind: &'static str) -> Option<Bytes> {
        let key = FrameKey {
            kind,
            res: self.res.clone(),
            output: self.output,
            include: if matches!(self.output, Output::Table { .. }) {
                self.include.clone()
            } else {
                String::new()
            },
        };
        // Held while encoding, so the other watchers of this event wait for the frame
        // instead of encoding it too.
        let mut frames = live.shared.frames.lock();
        if let Some((_, frame)) = frames.iter().find(|(k, _)| *k == key) {
            return frame.clone();
        }
        let frame = live
            .shared
            .new_object(&live.event)
            .and_then(|obj| self.encode(kind, obj.clone()).ok());
        frames.push((key, frame.clone()));
        frame
    }

    async fn send(&self, kind: &str, obj: Value) -> Result<(), ()> {
        let frame = self.encode(kind, obj)?;
        self.tx.send(frame).await.map_err(|_| ())
    }

    /// One event as this watcher's stream carries it: a JSON line or a protobuf frame.
    fn encode(&self, kind: &str, obj: Value) -> Result<Bytes, ()> {
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
                Ok(frame) => Ok(Bytes::from(frame)),
                Err(e) => {
                    tracing::warn!("watch: cannot encode a {kind} event as protobuf: {e}");
                    Err(())
                }
            };
        }
        let mut line = serde_json::to_vec(&event).map_err(|_| ())?;
        line.push(b'\n');
        Ok(Bytes::from(line))
    }
}

enum Next {
    Event(Arc<LiveEvent>),
    Resubscribe,
    Gone(Value),
    End,
}

async fn next_event(source: &mut Source, state: &State, prefix: &str, last: Revision) -> Next {
    let _ = (state, prefix);
    match source {
        Source::Cache { backlog, live } => {
            if let Some(ev) = backlog.next() {
                return Next::Event(LiveEvent::new(ev));
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
                return Next::Event(LiveEvent::new(ev));
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
            entry: Arc::new(Entry::new(kv.value, kv.mod_revision)),
            prev: prev.map(|p| Arc::new(Entry::new(p.value, p.mod_revision))),
        },
        drover_store::Event::Delete { prev, .. } => {
            let entry = Arc::new(Entry::new(prev.value, prev.mod_revision));
            CacheEvent {
                revision,
                key: Arc::from(prev.key.as_str()),
                change: Change::Delete,
                entry: Arc::clone(&entry),
                prev: Some(entry),
            }
        }
    }
}
