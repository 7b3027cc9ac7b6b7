//! API-level load generator for a running `drover server`, over HTTPS with the admin client
//! certificate from the server's kubeconfig (HTTP/2 by ALPN, as client-go does).
//!
//! Subcommands measure one thing each and print one JSON line: `create` (ConfigMap creates at
//! a given concurrency: ops/s and latency quantiles), `list` (a namespace's LIST as JSON or as
//! a Table), `watch` (write-to-delivery latency to many watchers), `metrics` (the watch cache
//! and store counters from `/metrics`) and `startup` (time from spawning `drover server` to
//! `/readyz` answering 200). `scripts/bench/api.sh` drives them; `docs/benchmarks.md` records
//! the results.

#[path = "../stats.rs"]
mod stats;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use clap::{Parser, Subcommand};
use reqwest::{Certificate, Client, Identity, StatusCode};
use serde_json::{Value, json};
use stats::{Samples, round3};

#[derive(Parser)]
#[command(about = "API server benchmark for a running drover server")]
struct Cli {
    /// The admin kubeconfig the server wrote (`<data-dir>/kubeconfig.yaml`).
    #[arg(long, global = true, default_value = "kubeconfig.yaml")]
    kubeconfig: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create `count` ConfigMaps with `concurrency` requests in flight.
    Create {
        #[arg(long, default_value = "bench")]
        namespace: String,
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        #[arg(long, default_value_t = 2000)]
        count: usize,
        /// Object names are `<name-prefix><n>`, n from `start`.
        #[arg(long, default_value = "cm-")]
        name_prefix: String,
        #[arg(long, default_value_t = 0)]
        start: usize,
        /// Bytes in the ConfigMap's one data value.
        #[arg(long, default_value_t = 200)]
        value_size: usize,
    },
    /// LIST a namespace's ConfigMaps `repeat` times.
    List {
        #[arg(long, default_value = "bench")]
        namespace: String,
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        /// Ask for a `meta.k8s.io/v1` Table (what `kubectl get` asks for).
        #[arg(long)]
        table: bool,
        /// Page size (`limit`), following `continue` tokens to the end as `kubectl get`
        /// does (its default chunk size is 500); 0 = one unpaged LIST.
        #[arg(long, default_value_t = 0)]
        limit: usize,
    },
    /// Write-to-delivery latency: `watchers` watches (each its own connection) on a namespace,
    /// then `writes` creates spaced by `interval_ms`, each carrying its send time.
    Watch {
        #[arg(long, default_value = "bench-watch")]
        namespace: String,
        #[arg(long, default_value_t = 100)]
        watchers: usize,
        #[arg(long, default_value_t = 200)]
        writes: usize,
        #[arg(long, default_value_t = 20)]
        interval_ms: u64,
    },
    /// Print the watch cache and store gauges from `/metrics`.
    Metrics,
    /// Spawn `drover server` `runs` times and time each start to `/readyz` = 200.
    Startup {
        #[arg(long)]
        drover: PathBuf,
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 26443)]
        port: u16,
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Remove the data dir before every start (first boot: CA, keys, bootstrap objects).
        #[arg(long)]
        fresh: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Cmd::Startup {
                drover,
                data_dir,
                port,
                runs,
                fresh,
            } => startup(&drover, &data_dir, port, runs, fresh).await,
            cmd => {
                let api = Api::from_kubeconfig(&cli.kubeconfig)?;
                match cmd {
                    Cmd::Create {
                        namespace,
                        concurrency,
                        count,
                        name_prefix,
                        start,
                        value_size,
                    } => {
                        api.ensure_namespace(&namespace).await?;
                        create(
                            &api,
                            &namespace,
                            concurrency,
                            count,
                            &name_prefix,
                            start,
                            value_size,
                        )
                        .await
                    }
                    Cmd::List {
                        namespace,
                        repeat,
                        table,
                        limit,
                    } => list(&api, &namespace, repeat, table, limit).await,
                    Cmd::Watch {
                        namespace,
                        watchers,
                        writes,
                        interval_ms,
                    } => {
                        api.ensure_namespace(&namespace).await?;
                        watch(&api, &namespace, watchers, writes, interval_ms).await
                    }
                    Cmd::Metrics => metrics(&api).await,
                    Cmd::Startup { .. } => unreachable!("handled above"),
                }
            }
        }
    })
}

// === impl Api ===

/// The server address and what it takes to build authenticated clients for it.
#[derive(Clone)]
struct Api {
    server: String,
    ca: Certificate,
    identity_pem: Vec<u8>,
    client: Client,
}

impl Api {
    fn from_kubeconfig(path: &std::path::Path) -> anyhow::Result<Api> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
        let doc: serde_yaml::Value = serde_yaml::from_str(&text)?;
        let field = |v: &serde_yaml::Value, k: &str| -> anyhow::Result<String> {
            v.get(k)
                .and_then(|x| x.as_str())
                .map(str::to_owned)
                .with_context(|| format!("kubeconfig has no {k}"))
        };
        let cluster = &doc["clusters"][0]["cluster"];
        let user = &doc["users"][0]["user"];
        let server = field(cluster, "server")?;
        let ca = B64.decode(field(cluster, "certificate-authority-data")?)?;
        let mut identity_pem = B64.decode(field(user, "client-certificate-data")?)?;
        identity_pem.extend(B64.decode(field(user, "client-key-data")?)?);
        let ca = Certificate::from_pem(&ca)?;
        let client = build_client(&ca, &identity_pem)?;
        Ok(Api {
            server,
            ca,
            identity_pem,
            client,
        })
    }

    /// A client with its own connection pool (one connection per watcher, like separate informers).
    fn new_client(&self) -> anyhow::Result<Client> {
        build_client(&self.ca, &self.identity_pem)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server)
    }

    async fn ensure_namespace(&self, ns: &str) -> anyhow::Result<()> {
        let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        let r = self
            .client
            .post(self.url("/api/v1/namespaces"))
            .json_body(&body)
            .send()
            .await?;
        match r.status() {
            s if s.is_success() || s == StatusCode::CONFLICT => Ok(()),
            s => bail!(
                "creating namespace {ns}: {s}: {}",
                r.text().await.unwrap_or_default()
            ),
        }
    }
}

fn build_client(ca: &Certificate, identity_pem: &[u8]) -> anyhow::Result<Client> {
    Ok(Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca.clone())
        .identity(Identity::from_pem(identity_pem)?)
        .pool_max_idle_per_host(64)
        .build()?)
}

/// `RequestBuilder::json` needs reqwest's `json` feature; this is all we use of it.
trait JsonBody {
    fn json_body(self, v: &Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, v: &Value) -> Self {
        self.header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(v.to_string())
    }
}

fn configmap(name: &str, value_size: usize, annotations: Value) -> Value {
    let data: String = (0..value_size)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": "bench"}, "annotations": annotations},
        "data": {"payload": data},
    })
}

// === create ===

async fn create(
    api: &Api,
    ns: &str,
    concurrency: usize,
    count: usize,
    prefix: &str,
    start: usize,
    value_size: usize,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let url = api.url(&format!("/api/v1/namespaces/{ns}/configmaps"));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, url, next, errors) = (
            api.client.clone(),
            url.clone(),
            Arc::clone(&next),
            Arc::clone(&errors),
        );
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return anyhow::Ok(samples);
                }
                let body = configmap(&format!("{prefix}{:07}", start + i), value_size, json!({}));
                let s = Instant::now();
                let r = client.post(&url).json_body(&body).send().await?;
                let status = r.status();
                let _ = r.bytes().await?;
                samples.push(s.elapsed());
                if !status.is_success() && errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("api_bench: create answered {status}");
                }
            }
        }));
    }
    let mut all = Samples::with_capacity(count);
    for t in tasks {
        all.extend(t.await??);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "bench": "api-create", "concurrency": concurrency, "ops": all.len(),
            "errors": errors.load(Ordering::Relaxed), "secs": round3(secs),
            "ops_per_s": round3(all.len() as f64 / secs), "latency": all.summary(),
        })
    );
    Ok(())
}

// === list ===

async fn list(api: &Api, ns: &str, repeat: usize, table: bool, limit: usize) -> anyhow::Result<()> {
    let accept = if table {
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    } else {
        "application/json"
    };
    let url = api.url(&format!("/api/v1/namespaces/{ns}/configmaps"));
    let mut times = Samples::default();
    let (mut bytes, mut items, mut pages) = (0, 0, 0);
    for _ in 0..repeat.max(1) {
        let (mut elapsed, mut token) = (Duration::ZERO, None::<String>);
        (bytes, items, pages) = (0, 0, 0);
        loop {
            let mut query = Vec::new();
            if limit > 0 {
                query.push(("limit", limit.to_string()));
            }
            let sent = token.take();
            if let Some(t) = &sent {
                query.push(("continue", t.clone()));
            }
            let s = Instant::now();
            let r = api
                .client
                .get(&url)
                .query(&query)
                .header(reqwest::header::ACCEPT, accept)
                .send()
                .await?;
            let status = r.status();
            let body = r.bytes().await?;
            elapsed += s.elapsed();
            if !status.is_success() {
                bail!(
                    "list answered {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(300)])
                );
            }
            // Decode outside the timing: the client's decode is not the server's cost.
            let v: Value = serde_json::from_slice(&body)?;
            bytes += body.len();
            pages += 1;
            items += v
                .get(if table { "rows" } else { "items" })
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let next = v["metadata"]["continue"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            // A server that hands back the token it was given would page forever.
            if next.is_some() && next == sent {
                bail!(
                    "the server returned the continue token it was sent (page {pages}, {items} items so far): pagination does not advance"
                );
            }
            token = next;
            if token.is_none() {
                break;
            }
        }
        times.push(elapsed);
    }
    println!(
        "{}",
        json!({
            "bench": "api-list", "table": table, "limit": limit, "pages": pages, "items": items, "bytes": bytes, "repeat": repeat,
            "median_ms": round3(times.quantile_ms(0.5)), "min_ms": round3(times.quantile_ms(0.0)),
            "max_ms": round3(times.quantile_ms(1.0)),
        })
    );
    Ok(())
}

// === watch ===

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

async fn watch(
    api: &Api,
    ns: &str,
    watchers: usize,
    writes: usize,
    interval_ms: u64,
) -> anyhow::Result<()> {
    let base = api.url(&format!("/api/v1/namespaces/{ns}/configmaps"));
    let r = api.client.get(format!("{base}?limit=1")).send().await?;
    let list: Value = serde_json::from_slice(&r.bytes().await?)?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .context("list has no resourceVersion")?
        .to_owned();
    let run = now_ns();
    let ready = Arc::new(tokio::sync::Barrier::new(watchers + 1));
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let client = api.new_client()?;
        let url = format!("{base}?watch=1&resourceVersion={rv}");
        let ready = Arc::clone(&ready);
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::with_capacity(writes);
            let mut resp = client.get(&url).send().await?;
            anyhow::ensure!(
                resp.status().is_success(),
                "watch answered {}",
                resp.status()
            );
            ready.wait().await;
            let mut buf = Vec::new();
            let deadline = tokio::time::Instant::now()
                + Duration::from_secs(30)
                + Duration::from_millis(interval_ms * writes as u64);
            while samples.len() < writes {
                let chunk = match tokio::time::timeout_at(deadline, resp.chunk()).await {
                    Ok(c) => c?,
                    Err(_) => break, // report what arrived
                };
                let Some(chunk) = chunk else { break };
                let arrived = now_ns();
                buf.extend_from_slice(&chunk);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let ev: Value = serde_json::from_slice(&line)?;
                    let sent = ev["object"]["metadata"]["annotations"]["bench/sent-ns"]
                        .as_str()
                        .and_then(|s| s.parse::<u128>().ok());
                    if let (Some("ADDED"), Some(sent)) = (ev["type"].as_str(), sent) {
                        samples.push(Duration::from_nanos(arrived.saturating_sub(sent) as u64));
                    }
                }
            }
            anyhow::Ok(samples)
        }));
    }
    ready.wait().await;
    let mut creates = Samples::with_capacity(writes);
    let url = base.clone();
    for i in 0..writes {
        let sent = now_ns();
        let body = configmap(
            &format!("w{run}-{i:05}"),
            200,
            json!({"bench/sent-ns": sent.to_string()}),
        );
        let s = Instant::now();
        let r = api.client.post(&url).json_body(&body).send().await?;
        anyhow::ensure!(r.status().is_success(), "create answered {}", r.status());
        let _ = r.bytes().await?;
        creates.push(s.elapsed());
        tokio::time::sleep(Duration::from_millis(interval_ms)).await;
    }
    let mut delivered = Samples::with_capacity(writes * watchers);
    for t in tasks {
        delivered.extend(t.await??);
    }
    println!(
        "{}",
        json!({
            "bench": "api-watch", "watchers": watchers, "writes": writes,
            "expected": writes * watchers, "delivered": delivered.len(),
            "delivery_latency": delivered.summary(), "create_latency": creates.summary(),
        })
    );
    Ok(())
}

// === metrics ===

async fn metrics(api: &Api) -> anyhow::Result<()> {
    let text = api
        .client
        .get(api.url("/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let mut out = serde_json::Map::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("drover_") && !l.contains('{'))
    {
        if let Some((name, value)) = line.split_once(' ') {
            out.insert(
                name.to_owned(),
                value.parse::<f64>().map(Value::from).unwrap_or(Value::Null),
            );
        }
    }
    println!("{}", Value::Object(out));
    Ok(())
}

// === startup ===

/// VmRSS of a process in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

async fn startup(
    drover: &std::path::Path,
    data_dir: &std::path::Path,
    port: u16,
    runs: usize,
    fresh: bool,
) -> anyhow::Result<()> {
    // Anonymous and unverified: /readyz needs no identity, and a fresh start has no CA yet.
    let probe = Client::builder()
        .use_rustls_tls()
        .danger_accept_invalid_certs(true)
        .build()?;
    let url = format!("https://127.0.0.1:{port}/readyz");
    let (mut times, mut rss) = (Samples::default(), Vec::new());
    for _ in 0..runs.max(1) {
        if fresh && data_dir.exists() {
            std::fs::remove_dir_all(data_dir)?;
        }
        let s = Instant::now();
        let mut child = Command::new(drover)
            .args([
                "server",
                "--https-listen-port",
                &port.to_string(),
                "--data-dir",
            ])
            .arg(data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", drover.display()))?;
        let pid = child.id();
        let ok = loop {
            if let Ok(r) = probe.get(&url).send().await
                && r.status() == StatusCode::OK
            {
                break true;
            }
            if s.elapsed() > Duration::from_secs(30) || child.try_wait()?.is_some() {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let took = s.elapsed();
        tokio::time::sleep(Duration::from_millis(500)).await;
        rss.push(rss_kib(pid).unwrap_or(0));
        // Stop exactly the process we started, by PID, gracefully.
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let _ = child.wait();
        anyhow::ensure!(ok, "drover server (pid {pid}) was not ready within 30 s");
        times.push(took);
    }
    rss.sort_unstable();
    println!(
        "{}",
        json!({
            "bench": "startup", "fresh": fresh, "runs": times.len(),
            "median_ms": round3(times.quantile_ms(0.5)), "min_ms": round3(times.quantile_ms(0.0)),
            "max_ms": round3(times.quantile_ms(1.0)), "rss_kib_median_after_500ms": rss[rss.len() / 2],
        })
    );
    Ok(())
}
