//! `drover`: one binary, many roles. `main` parses the command line, builds the runtime
//! the command needs, runs it, and drains on SIGTERM/SIGINT.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use drover_apiserver::{ApiServer, Cidr, Config, Datastore};

mod datastore;
mod engine;

#[derive(Parser)]
#[command(
    name = "drover",
    version,
    about = "Drover: a whole cloud-native platform in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (API server on the embedded datastore) and, later, a local node.
    Server(Box<ServerArgs>),
    /// Export/import between datastores (SQLite ⇄ etcd), snapshots of the embedded datastore.
    #[command(subcommand)]
    Datastore(datastore::DatastoreCommand),
    /// Manage images in the local image store.
    #[command(subcommand)]
    Image(drover_image::cli::ImageCommand),
    /// Docker's verbs: run, ps, logs, exec, stop, kill, rm, inspect.
    #[command(flatten)]
    Engine(drover_engine::cli::EngineCommand),
    /// The runc-compatible OCI runtime (`drover runtime --help`). Dispatched before anything
    /// else starts, so it runs in a single-threaded process.
    Runtime,
    /// Log in to a registry (Docker's `login`; the same as `drover image login`).
    #[command(disable_help_flag = true)]
    Login {
        /// `drover image login`'s arguments: `[SERVER] -u USER (-p PASS | --password-stdin)`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Args)]
struct ServerArgs {
    /// Directory for the datastore, keys and kubeconfig.
    #[arg(long, default_value = "/var/lib/drover", env = "DROVER_DATA_DIR")]
    data_dir: PathBuf,
    /// Address the API server listens on.
    #[arg(long, default_value = "127.0.0.1")]
    bind_address: IpAddr,
    /// HTTPS port of the API server.
    #[arg(long, default_value_t = 6443)]
    https_listen_port: u16,
    /// Extra hostname or IP for the serving certificate (repeatable).
    #[arg(long = "tls-san")]
    tls_san: Vec<String>,
    /// Do not run the local node agent (no effect until the agent exists).
    #[arg(long)]
    disable_agent: bool,
    /// Service ClusterIP range.
    #[arg(long, default_value = "10.43.0.0/16")]
    service_cidr: Cidr,
    /// Pod address range.
    #[arg(long, default_value = "10.42.0.0/16")]
    cluster_cidr: Cidr,
    /// Shared secret that encrypts the cluster identity in the datastore (servers of one
    /// cluster share it). Generated into <data-dir>/token when absent.
    #[arg(long, env = "DROVER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// How long Events are kept (e.g. 1h, 30m, 90s).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    event_ttl: Duration,
    /// Requests served at once before answering 429 Too Many Requests.
    #[arg(long, default_value_t = 400)]
    max_requests_inflight: usize,
    /// Datastore history kept so watches can resume (e.g. 5m); older history is compacted.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    datastore_history_retention: Duration,
    /// Most revisions of datastore history kept, whatever their age.
    #[arg(long, default_value_t = 100_000)]
    datastore_max_history: u64,
    /// The datastore: `sqlite://PATH` (default: <data-dir>/db/state.db), or etcd members
    /// `etcd://[user:password@]host:2379[,host2:2379…]` (`http://`, `https://` also work).
    /// Servers started with the same endpoint and the same --token serve the same cluster.
    #[arg(long, value_parser = drover_apiserver::parse_datastore_endpoint)]
    datastore_endpoint: Option<Datastore>,
    /// CA bundle that signed the etcd members' certificates (turns etcd:// into https://).
    #[arg(long)]
    datastore_cafile: Option<PathBuf>,
    /// Client certificate for etcd's client-certificate auth.
    #[arg(long)]
    datastore_certfile: Option<PathBuf>,
    /// Key of --datastore-certfile.
    #[arg(long)]
    datastore_keyfile: Option<PathBuf>,
    /// etcd user (instead of user:password@ in the endpoint); the password comes from
    /// DROVER_DATASTORE_PASSWORD.
    #[arg(long)]
    datastore_user: Option<String>,
    /// Password of --datastore-user.
    #[arg(long, env = "DROVER_DATASTORE_PASSWORD", hide_env_values = true)]
    datastore_password: Option<String>,
    /// Prefix of every key Drover stores in etcd, so several clusters can share one etcd
    /// (default: none; keys are /registry/…, as kube-apiserver's and k3s's).
    #[arg(long, default_value = "")]
    datastore_prefix: String,
    /// How long a follower waits after the controllers' Lease was last renewed before taking
    /// it over (whole seconds; kube-controller-manager's flag of the same name).
    #[arg(long, default_value = "15s", value_parser = drover_apiserver::leader::parse_duration)]
    leader_elect_lease_duration: Duration,
    /// How long the leader keeps running its controllers without a successful renewal.
    #[arg(long, default_value = "10s", value_parser = drover_apiserver::leader::parse_duration)]
    leader_elect_renew_deadline: Duration,
    /// Time between leader election tries (e.g. 2s, 200ms).
    #[arg(long, default_value = "2s", value_parser = drover_apiserver::leader::parse_duration)]
    leader_elect_retry_period: Duration,
    #[command(flatten)]
    snapshots: datastore::ScheduleArgs,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 1h, 30m, 90s)"))?;
    let secs = match unit {
        "h" => n * 3600,
        "m" => n * 60,
        "s" | "" => n,
        other => return Err(format!("unknown unit {other:?} in {s:?}: use h, m or s")),
    };
    Ok(Duration::from_secs(secs))
}

fn main() -> ExitCode {
    // The OCI runtime must stay single-threaded and start fast: hand it the raw arguments before
    // clap, logging or any async runtime exist. `drover-runtime` (a link to this binary) is the
    // same as `drover runtime`, for tools that want a runc-like executable path.
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    let invoked_as_runtime = std::path::Path::new(&argv0)
        .file_name()
        .is_some_and(|n| n == "drover-runtime");
    if invoked_as_runtime {
        return exit_code(drover_runtime::cli::main(args.collect()));
    }
    if std::env::args_os().nth(1).is_some_and(|a| a == "runtime") {
        return exit_code(drover_runtime::cli::main(args.skip(1).collect()));
    }
    // The per-container supervisor is spawned by the engine and speaks its own protocol.
    if std::env::args_os().nth(1).is_some_and(|a| a == "supervise") {
        return exit_code(drover_engine::supervisor::main(
            args.skip(1).collect(),
            engine::SUPERVISOR_HOOKS,
        ));
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DROVER_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command {
        Command::Server(args) => run_server(*args),
        Command::Datastore(cmd) => datastore::run(cmd),
        Command::Image(cmd) => drover_image::cli::run(cmd),
        Command::Engine(cmd) => {
            drover_engine::cli::run(cmd, &engine::ImageStore, &engine::RUNTIME_FACTS)
        }
        Command::Runtime => unreachable!("dispatched before parsing"),
        Command::Login { args } => {
            let argv = ["drover", "image", "login"].map(std::ffi::OsString::from);
            match Cli::parse_from(argv.into_iter().chain(args)).command {
                Command::Image(cmd) => drover_image::cli::run(cmd),
                _ => unreachable!("parsed as an image command"),
            }
        }
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Applies the etcd flags to an etcd endpoint; rejects them for SQLite.
fn etcd_settings(args: &ServerArgs) -> Result<Option<Datastore>, String> {
    let endpoint = args.datastore_endpoint.clone();
    let etcd_flags = args.datastore_cafile.is_some()
        || args.datastore_certfile.is_some()
        || args.datastore_keyfile.is_some()
        || args.datastore_user.is_some()
        || !args.datastore_prefix.is_empty();
    let Some(Datastore::Etcd(mut etcd)) = endpoint else {
        if etcd_flags {
            return Err(
                "--datastore-cafile/-certfile/-keyfile/-user/-prefix apply to an etcd \
                 --datastore-endpoint (etcd://host:2379)"
                    .into(),
            );
        }
        return Ok(endpoint);
    };
    etcd.ca_file = args.datastore_cafile.clone();
    etcd.cert_file = args.datastore_certfile.clone();
    etcd.key_file = args.datastore_keyfile.clone();
    if let Some(user) = &args.datastore_user {
        let password = args.datastore_password.clone().ok_or_else(|| {
            format!(
                "--datastore-user {user} needs DROVER_DATASTORE_PASSWORD (or --datastore-password)"
            )
        })?;
        etcd.user = Some((user.clone(), password));
    }
    let prefix = &args.datastore_prefix;
    if !prefix.is_empty() && !prefix.starts_with('/') {
        return Err(format!(
            "--datastore-prefix {prefix:?} must start with '/', e.g. /cluster-a"
        ));
    }
    etcd.prefix = prefix.trim_end_matches('/').to_owned();
    etcd.resolve_schemes()?;
    Ok(Some(Datastore::Etcd(etcd)))
}

fn run_server(args: ServerArgs) -> ExitCode {
    let datastore = match etcd_settings(&args) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("drover: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (data_dir, snapshots) = (args.data_dir.clone(), args.snapshots.clone());
    let config_datastore = datastore.clone();
    let mut config = Config::new(args.data_dir);
    config.bind_address = args.bind_address;
    config.https_port = args.https_listen_port;
    config.tls_sans = args.tls_san;
    config.disable_agent = args.disable_agent;
    config.service_cidr = args.service_cidr;
    config.cluster_cidr = args.cluster_cidr;
    config.token = args.token;
    config.event_ttl = args.event_ttl;
    config.max_in_flight = args.max_requests_inflight;
    config.history_retention = args.datastore_history_retention;
    config.max_history = args.datastore_max_history;
    config.datastore = datastore;
    let mut election = drover_apiserver::leader::ElectionConfig::new(
        drover_apiserver::leader::CONTROLLERS_LEASE_NAMESPACE,
        drover_apiserver::leader::CONTROLLERS_LEASE_NAME,
    );
    election.lease_duration = args.leader_elect_lease_duration;
    election.renew_deadline = args.leader_elect_renew_deadline;
    election.retry_period = args.leader_elect_retry_period;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("drover: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let server = match ApiServer::start_with_election(config, election).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("drover: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        let snapshot_db = match &config_datastore {
            None => Some(datastore::default_db(&data_dir)),
            Some(Datastore::Sqlite(path)) => Some(path.clone()),
            Some(Datastore::Etcd(_)) => None,
        };
        if let Err(e) = datastore::spawn_schedule(&snapshots, &data_dir, snapshot_db) {
            eprintln!("drover: {e:#}");
            server.shutdown().await;
            return ExitCode::FAILURE;
        }
        println!(
            "drover: API server listening on https://{}",
            server.local_addr()
        );
        println!(
            "drover: kubeconfig written to {}",
            server.kubeconfig_path().display()
        );
        wait_for_signal().await;
        tracing::info!("shutting down");
        server.shutdown().await;
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
