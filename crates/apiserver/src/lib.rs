//! Drover's Kubernetes-compatible API server.
//!
//! [`ApiServer::start`] opens the datastore, loads (or creates) the cluster identity, primes
//! the watch cache, creates the bootstrap objects and serves HTTPS until shut down.
//! Requests flow through [`handle`]: route → authenticate → admit (in-flight limit) →
//! handler (discovery, OpenAPI, or the generic resource handlers driven by the registry).

mod alloc;
mod apply;
mod auth;
mod body;
mod bootstrap;
mod cache;
#[doc(hidden)]
pub mod cache_probe;
mod config;
mod crd;
mod custom;
mod discovery;
mod endpoints;
mod fieldset;
#[doc(hidden)]
pub mod fuzzing;
mod gc;
mod handlers;
mod identity;
pub mod leader;
mod meta;
mod metrics;
mod negotiate;
mod objects;
mod rbac;
mod route;
mod serve;
mod state;
mod status;
mod tables;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::Context as _;
use bytes::Bytes;
use drover_store::{AnyStore, EtcdStore, SqliteConfig, SqliteStore, Store};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};

pub use config::{Cidr, Config, Datastore, parse_datastore_endpoint};

use crate::auth::User;
use crate::body::Body;
use crate::route::{Query, Route};
use crate::state::State;
use crate::status::ApiError;

/// Largest request body accepted (upstream's limit is 3 MiB).
const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The version this server reports.
pub const KUBERNETES_VERSION: &str = "v1.33.0+drover";

/// A running API server.
pub struct ApiServer {
    addr: SocketAddr,
    kubeconfig: PathBuf,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    serving: tokio::task::JoinHandle<()>,
    elector: tokio::task::JoinHandle<()>,
    /// Renews this server's identity Lease; removes it from the endpoints on shutdown.
    endpoints: tokio::task::JoinHandle<()>,
    store: Arc<AnyStore>,
}

impl ApiServer {
    /// Starts serving with upstream's leader election timings for the controllers' Lease.
    /// Returns once the port is bound and the server is ready.
    pub async fn start(config: Config) -> anyhow::Result<ApiServer> {
        let election = leader::ElectionConfig::new(
            leader::CONTROLLERS_LEASE_NAMESPACE,
            leader::CONTROLLERS_LEASE_NAME,
        );
        ApiServer::start_with_election(config, election).await
    }

    /// Starts serving; the API server's own controllers run only while this server holds the
    /// Lease `election` names (see [`leader`]).
    pub async fn start_with_election(
        config: Config,
        election: leader::ElectionConfig,
    ) -> anyhow::Result<ApiServer> {
        election.validate()?;
        let data_dir = config.data_dir.clone();
        make_private_dir(&data_dir)?;
        let db_dir = data_dir.join("db");
        make_private_dir(&db_dir)?;
        let store = Arc::new(open_store(&config, &db_dir)?);

        let (token, token_hint) = resolve_token(&config)?;
        let identity = until_available("load the cluster identity", || {
            load_identity(&store, &token, &token_hint)
        })
        .await?;

        let tls_dir = data_dir.join("tls");
        make_private_dir(&tls_dir)?;
        let sans = identity::serving_sans(
            config.bind_address,
            config.first_service_ip().into(),
            &config.tls_sans,
        );
        let (chain, key) = serving_cert(&identity, &tls_dir, &sans)?;
        let tls = serve::tls_config(&chain, &key, &identity.ca_cert_pem)?;

        let listener = tokio::net::TcpListener::bind((config.bind_address, config.https_port))
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {}:{}",
                    config.bind_address, config.https_port
                )
            })?;
        let addr = listener.local_addr()?;
        let host = if config.bind_address.is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            config.bind_address.to_string()
        };
        let address = format!("{host}:{}", addr.port());
        let kubeconfig = data_dir.join("kubeconfig.yaml");
        identity::write_private(
            &kubeconfig,
            identity
                .kubeconfig(&format!("https://{address}"))
                .as_bytes(),
        )
        .with_context(|| format!("cannot write {}", kubeconfig.display()))?;

        let cache = until_available("prime the watch cache", || async {
            Ok(cache::Cache::start(Arc::clone(&store)).await?)
        })
        .await
        .context("cannot prime the watch cache")?;
        let sa_key = handlers::parse_signing_key(&identity).map_err(|e| anyhow::anyhow!(e))?;
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        let metrics = Arc::new(metrics::Metrics::default());
        let elector = leader::Elector::new(Arc::clone(&store), election)?;
        let state = Arc::new(State {
            in_flight: Arc::new(tokio::sync::Semaphore::new(config.max_in_flight)),
            objects: objects::Objects {
                store: Arc::clone(&store),
                metrics: Arc::clone(&metrics),
            },
            store: Arc::clone(&store),
            cache,
            sa_key,
            identity,
            metrics,
            resources: state::Resources::new(),
            bootstrapped: false.into(),
            crds_synced: false.into(),
            crd_docs: parking_lot::RwLock::new(None),
            shutdown: shutdown_rx.clone(),
            leader: elector.handle(),
            address,
            config,
        });
        bootstrap::run(&state).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot create the bootstrap objects: {}",
                e.to_status()["message"]
            )
        })?;
        crd::reconcile(&state).await;
        state.bootstrapped.store(true, Ordering::SeqCst);
        crd::spawn(Arc::clone(&state));
        // The controllers that write run on one server at a time: the Lease holder.
        let (lead, stop) = (state.leader.clone(), shutdown_rx.clone());
        let st = Arc::clone(&state);
        leader::spawn_while_leading(
            "namespace and event controllers",
            lead.clone(),
            stop.clone(),
            move || bootstrap::run_controllers(Arc::clone(&st)),
        );
        let st = Arc::clone(&state);
        leader::spawn_while_leading("allocator repair", lead.clone(), stop.clone(), move || {
            alloc::run_repair(Arc::clone(&st))
        });
        let st = Arc::clone(&state);
        leader::spawn_while_leading(
            "ClusterRole aggregation controller",
            lead.clone(),
            stop.clone(),
            move || rbac::aggregation::run(Arc::clone(&st)),
        );
        let st = Arc::clone(&state);
        leader::spawn_while_leading("garbage collector", lead, stop, move || {
            gc::run(Arc::clone(&st))
        });
        let endpoints = tokio::spawn(endpoints::run(Arc::clone(&state)));
        let elector = tokio::spawn(elector.run(shutdown_rx.clone()));
        let grace = state.config.shutdown_grace;
        let serving = tokio::spawn(serve::serve(state, listener, tls, shutdown_rx, grace));
        Ok(ApiServer {
            addr,
            kubeconfig,
            shutdown_tx,
            serving,
            elector,
            endpoints,
            store,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the admin kubeconfig was written.
    pub fn kubeconfig_path(&self) -> &std::path::Path {
        &self.kubeconfig
    }

    /// Stops accepting, lets in-flight requests finish (bounded), and closes the datastore.
    /// Every write acknowledged before this returns is durable.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        // Leave the `kubernetes` endpoints, so clients stop being sent here.
        let _ = self.endpoints.await;
        // Release the Lease first, so another server's controllers take over at once.
        let _ = self.elector.await;
        let _ = self.serving.await;
        drop(self.store);
    }
}

/// Opens the configured datastore (the SQLite file in `db_dir` by default).
fn open_store(config: &Config, db_dir: &std::path::Path) -> anyhow::Result<AnyStore> {
    match &config.datastore {
        Some(Datastore::Etcd(etcd)) => {
            let mut etcd = (**etcd).clone();
            etcd.retention = config.history_retention;
            etcd.max_history = config.max_history;
            let endpoints = etcd.describe();
            let store = EtcdStore::open(etcd)
                .with_context(|| format!("cannot use the etcd datastore at {endpoints}"))?;
            Ok(AnyStore::from(store))
        }
        sqlite => {
            let db_path = match sqlite {
                Some(Datastore::Sqlite(path)) => path.clone(),
                _ => db_dir.join("state.db"),
            };
            let mut store_config = SqliteConfig::new(db_path);
            store_config.retention = config.history_retention;
            store_config.max_history_rows = config.max_history;
            let store = SqliteStore::open(store_config)
                .with_context(|| format!("cannot open the datastore in {}", db_dir.display()))?;
            Ok(AnyStore::from(store))
        }
    }
}

/// Runs `f` until it does not fail with [`drover_store::Error::Unavailable`], waiting with
/// backoff in between: a server started before its etcd waits for it instead of exiting (and
/// being restarted in a loop by its supervisor).
async fn until_available<T, F, Fut>(what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut backoff = std::time::Duration::from_millis(200);
    loop {
        match f().await {
            Err(e)
                if matches!(
                    e.downcast_ref::<drover_store::Error>(),
                    Some(drover_store::Error::Unavailable(_))
                ) =>
            {
                tracing::warn!("cannot {what} yet, retrying in {backoff:?}: {e:#}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

fn make_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {}", dir.display()))?;
    Ok(())
}

/// The token from `--token`, or the one in `<data-dir>/token` (generated on first start).
fn resolve_token(config: &Config) -> anyhow::Result<(String, String)> {
    let path = config.data_dir.join("token");
    if let Some(t) = config.token.clone().filter(|t| !t.is_empty()) {
        return Ok((t, "--token".into()));
    }
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => Ok((t.trim().to_owned(), path.display().to_string())),
        _ => {
            let t = identity::random_token();
            identity::write_private(&path, format!("{t}\n").as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok((t, path.display().to_string()))
        }
    }
}

async fn load_identity(
    store: &AnyStore,
    token: &str,
    hint: &str,
) -> anyhow::Result<identity::Identity> {
    if let Some(kv) = store.get(identity::IDENTITY_KEY).await? {
        return Ok(identity::Identity::open(&kv.value, token, hint)?);
    }
    let fresh = identity::Identity::generate()?;
    match store
        .create(identity::IDENTITY_KEY, Bytes::from(fresh.seal(token)))
        .await
    {
        Ok(_) => Ok(fresh),
        // Another server created it first: use theirs.
        Err(drover_store::Error::AlreadyExists { current, .. }) => {
            Ok(identity::Identity::open(&current.value, token, hint)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Reuses the cached serving certificate when it was issued by this CA for the same SANs.
fn serving_cert(
    id: &identity::Identity,
    dir: &std::path::Path,
    sans: &[String],
) -> anyhow::Result<(String, String)> {
    let (crt, key, san_file) = (
        dir.join("serving.crt"),
        dir.join("serving.key"),
        dir.join("serving.sans"),
    );
    let want = format!("{}\n{}", sans.join(","), id.ca_cert_pem);
    if let (Ok(c), Ok(k), Ok(s)) = (
        std::fs::read_to_string(&crt),
        std::fs::read_to_string(&key),
        std::fs::read_to_string(&san_file),
    ) && s == want
    {
        return Ok((c, k));
    }
    let (c, k) = id.issue_serving(sans)?;
    identity::write_private(&key, k.as_bytes())?;
    identity::write_private(&crt, c.as_bytes())?;
    identity::write_private(&san_file, want.as_bytes())?;
    Ok((c, k))
}

// === request entry point ===

/// Serves one request.
pub(crate) async fn handle(
    state: Arc<State>,
    cert_user: Option<User>,
    req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let query = Query::parse(parts.uri.query());
    let route = route::route(&parts.method, parts.uri.path(), &query);
    let (verb, resource) = metric_labels(&route);

    let resp = match route {
        Route::Version => json_response(StatusCode::OK, &version()),
        Route::Health { endpoint, check } => health(&state, endpoint, check.as_deref(), &query),
        route => {
            let user = cert_user
                .or_else(|| handlers::bearer_user(&state, &parts.headers))
                .ok_or(ApiError::Unauthorized)
                .and_then(|u| rbac::impersonation::impersonate(&state, u, &parts.headers));
            match user {
                Err(e) => error_response(&e),
                Ok(user) => {
                    let long_running =
                        matches!(&route, Route::Resource(r) if r.verb == route::Verb::Watch);
                    let permit = if long_running {
                        None
                    } else {
                        state.in_flight.clone().try_acquire_owned().ok()
                    };
                    if !long_running && permit.is_none() {
                        state.metrics.rejected.fetch_add(1, Ordering::Relaxed);
                        let mut r = error_response(&ApiError::TooManyRequests);
                        r.headers_mut()
                            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                        r
                    } else {
                        state.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
                        let body = read_body(body).await;
                        let resp = match body {
                            Ok(body) => {
                                // A bug must cost one request a 500, never the connection.
                                use futures_util::FutureExt as _;
                                let fut = std::panic::AssertUnwindSafe(dispatch(
                                    &state, &user, route, &parts, &query, body,
                                ));
                                match fut.catch_unwind().await {
                                    Ok(r) => r,
                                    Err(panic) => {
                                        let what = panic
                                            .downcast_ref::<&str>()
                                            .map(|s| s.to_string())
                                            .or_else(|| panic.downcast_ref::<String>().cloned())
                                            .unwrap_or_default();
                                        tracing::error!("request handler panicked: {what}");
                                        error_response(&ApiError::Internal(format!(
                                            "the server failed to handle the request: {what}"
                                        )))
                                    }
                                }
                            }
                            Err(e) => error_response(&e),
                        };
                        state.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
                        drop(permit);
                        resp
                    }
                }
            }
        }
    };
    state.metrics.request(
        verb,
        &resource,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

async fn read_body(body: hyper::body::Incoming) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::TooLarge(format!(
                "the request body is too large: the limit is {MAX_BODY_BYTES} bytes (3 MiB)"
            )))
        }
        Err(e) => Err(ApiError::BadRequest(format!(
            "cannot read the request body: {e}"
        ))),
    }
}

async fn dispatch(
    state: &Arc<State>,
    user: &User,
    route: Route,
    parts: &http::request::Parts,
    query: &Query,
    body: Bytes,
) -> Response<Body> {
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    if !user.is_master()
        && !handlers::allowed_for_non_masters(&route)
        && let Err(e) = handlers::authorize_route(state, user, &route, parts.uri.path())
    {
        return error_response(&e);
    }
    let resources = state.resources.all();
    match route {
        Route::Metrics => {
            let (n, bytes) = state.cache.size();
            let mut text = state.metrics.render(state.store.stats(), n, bytes);
            text.push_str(&format!(
                "# HELP drover_leader 1 while this server holds the Lease its controllers run under.\n# TYPE drover_leader gauge\ndrover_leader{{lease=\"{}\"}} {}\n",
                state.leader.lease(),
                u8::from(state.leader.is_leader())
            ));
            let mut r = Response::new(Body::full(text));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        Route::LegacyApis => match discovery::form(accept) {
            discovery::Form::Aggregated(v) => {
                aggregated_response(&discovery::aggregated(&resources, true, v), v)
            }
            discovery::Form::Legacy => {
                json_response(StatusCode::OK, &discovery::api_versions(&state.address))
            }
        },
        Route::Apis => match discovery::form(accept) {
            discovery::Form::Aggregated(v) => {
                aggregated_response(&discovery::aggregated(&resources, false, v), v)
            }
            discovery::Form::Legacy => {
                json_response(StatusCode::OK, &discovery::api_group_list(&resources))
            }
        },
        Route::Group(g) => match discovery::api_group_doc(&resources, &g) {
            Some(doc) => json_response(StatusCode::OK, &doc),
            None => not_found(),
        },
        Route::GroupVersion { group, version } => {
            let gv = drover_core::registry::GroupVersion {
                group: group.into(),
                version: version.into(),
            };
            match discovery::api_resource_list(&resources, &gv) {
                Some(doc) => json_response(StatusCode::OK, &doc),
                None => not_found(),
            }
        }
        Route::OpenApiV3Index | Route::OpenApiV3 { .. } | Route::OpenApiV2 => {
            handlers::openapi(state, &route, &parts.headers)
        }
        Route::OidcConfig | Route::Jwks => handlers::oidc(state, &route),
        Route::Resource(rr) => handlers::resource(state, user, rr, parts, query, body).await,
        Route::NotFound => not_found(),
        Route::Version | Route::Health { .. } => unreachable!("answered before authentication"),
    }
}

fn metric_labels(route: &Route) -> (&'static str, String) {
    match route {
        Route::Resource(r) => {
            let res = match &r.subresource {
                Some(s) => format!("{}/{s}", r.resource),
                None => r.resource.clone(),
            };
            (r.verb.as_str(), res)
        }
        Route::Health { endpoint, .. } => ("get", (*endpoint).to_owned()),
        _ => ("get", String::new()),
    }
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": KUBERNETES_VERSION,
        "gitCommit": option_env!("DROVER_GIT_COMMIT").unwrap_or("unknown"),
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if cfg!(target_arch = "x86_64") { "amd64" } else if cfg!(target_arch = "aarch64") { "arm64" } else { std::env::consts::ARCH }),
    })
}

fn health(state: &State, endpoint: &str, check: Option<&str>, query: &Query) -> Response<Body> {
    let mut checks: Vec<(&str, bool)> = vec![("ping", true), ("log", true)];
    // Why the datastore check failed (it names the endpoint); a datastore outage is 503.
    let mut etcd_failure: Option<String> = None;
    let failed_code = |etcd_failure: &Option<String>| {
        if etcd_failure.is_some() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    if endpoint != "livez" {
        let ready = state.bootstrapped.load(Ordering::SeqCst);
        let etcd = state.store.health();
        etcd_failure = etcd.as_ref().err().cloned();
        checks.push(("etcd", etcd.is_ok()));
        checks.push(("informer-sync", state.cache.revision() > 0 || ready));
        checks.push(("poststarthook/bootstrap-objects", ready));
        checks.push((
            "poststarthook/crd-informer-synced",
            state.crds_synced.load(Ordering::SeqCst) && crd::all_served(state),
        ));
        checks.push(("shutdown", !*state.shutdown.borrow()));
    }
    if let Some(name) = check {
        return match checks.iter().find(|(n, _)| *n == name) {
            Some((_, true)) => text_response(StatusCode::OK, "ok".into()),
            Some((n, false)) => match (*n, &etcd_failure) {
                ("etcd", Some(why)) => text_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("[-]etcd failed: {why}\n"),
                ),
                _ => text_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("[-]{n} failed: not ready\n"),
                ),
            },
            None => not_found(),
        };
    }
    let ok = checks.iter().all(|(_, ok)| *ok);
    let code = if ok {
        StatusCode::OK
    } else {
        failed_code(&etcd_failure)
    };
    if query.get("verbose").is_some() || !ok {
        let mut s = String::new();
        for (n, good) in &checks {
            s.push_str(&if *good {
                format!("[+]{n} ok\n")
            } else if let ("etcd", Some(why)) = (*n, &etcd_failure) {
                format!("[-]etcd failed: {why}\n")
            } else {
                format!("[-]{n} failed: reason withheld\n")
            });
        }
        s.push_str(&format!(
            "{endpoint} check {}\n",
            if ok { "passed" } else { "failed" }
        ));
        return text_response(code, s);
    }
    text_response(code, "ok".into())
}

pub(crate) fn text_response(code: StatusCode, text: String) -> Response<Body> {
    let mut r = Response::new(Body::full(text));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

pub(crate) fn json_response(code: StatusCode, value: &Value) -> Response<Body> {
    let mut r = Response::new(Body::full(serde_json::to_vec(value).expect("serializable")));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn aggregated_response(value: &Value, version: &str) -> Response<Body> {
    let mut r = json_response(StatusCode::OK, value);
    let ct = discovery::aggregated_content_type(version);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&ct).expect("ascii"),
    );
    r
}

pub(crate) fn error_response(e: &ApiError) -> Response<Body> {
    let code = StatusCode::from_u16(e.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &e.to_status())
}

fn not_found() -> Response<Body> {
    error_response(&ApiError::NotFoundMessage(
        "the server could not find the requested resource".into(),
    ))
}
