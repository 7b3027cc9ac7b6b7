//! Docker's verbs: `run`, `ps`, `logs`, `exec`, `stop`, `kill`, `rm`, `inspect`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use crate::layout::{self, Layout, Record, RestartPolicy, State, Status};
use crate::spec::{self, ContainerOptions, HostFiles, ImageConfig, Network};
use crate::{attach, logs, supervisor, users};

/// What every engine verb needs.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Drover's data directory (containers, images, runtime state).
    #[arg(
        long,
        global = true,
        default_value = "/var/lib/drover",
        env = "DROVER_DATA_DIR"
    )]
    pub data_dir: PathBuf,
}

/// The docker-style verbs (top-level commands of `drover`).
#[derive(Subcommand, Debug)]
pub enum EngineCommand {
    /// Run a command in a new container.
    Run(Box<RunArgs>),
    /// List containers.
    Ps(PsArgs),
    /// Show a container's logs.
    Logs(LogsArgs),
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// Stop running containers (StopSignal, then SIGKILL after the timeout).
    Stop(StopArgs),
    /// Send a signal to running containers.
    Kill(KillArgs),
    /// Remove containers.
    Rm(RmArgs),
    /// Show containers' configuration and state as JSON.
    Inspect(InspectArgs),
}

/// `drover run`.
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// Print help (`-h` is `--hostname`, as in Docker).
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Remove the container when it exits.
    #[arg(long)]
    rm: bool,
    /// Run in the background and print the container id.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Keep stdin open.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a terminal.
    #[arg(short = 't', long)]
    tty: bool,
    /// The container's name.
    #[arg(long)]
    name: Option<String>,
    /// Set an environment variable (`K=V`, or `K` to pass ours).
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Read environment variables from a file.
    #[arg(long)]
    env_file: Vec<PathBuf>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// User (`name|uid[:group|gid]`).
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Memory limit (`512m`, `1g`).
    #[arg(short = 'm', long)]
    memory: Option<String>,
    /// CPUs (`0.5`).
    #[arg(long)]
    cpus: Option<f64>,
    /// Most processes.
    #[arg(long)]
    pids_limit: Option<i64>,
    /// Bind mount `/host:/ctr[:ro]`.
    #[arg(short = 'v', long = "volume")]
    volumes: Vec<String>,
    /// Mount a tmpfs (`/path[:opts]`).
    #[arg(long)]
    tmpfs: Vec<String>,
    /// Mount the root filesystem read-only.
    #[arg(long)]
    read_only: bool,
    /// `none` (default: only lo) or `host`.
    #[arg(long, default_value = "none")]
    network: String,
    /// The container's hostname.
    #[arg(short = 'h', long)]
    hostname: Option<String>,
    /// Add a capability.
    #[arg(long)]
    cap_add: Vec<String>,
    /// Drop a capability.
    #[arg(long)]
    cap_drop: Vec<String>,
    /// All capabilities, no seccomp, no masked paths.
    #[arg(long)]
    privileged: bool,
    /// `no-new-privileges`, `seccomp=unconfined`.
    #[arg(long)]
    security_opt: Vec<String>,
    /// `name=soft[:hard]`.
    #[arg(long)]
    ulimit: Vec<String>,
    /// `key=value` label.
    #[arg(short = 'l', long)]
    label: Vec<String>,
    /// Run an init (tini or catatonit from the host, statically linked) as PID 1: it forwards
    /// signals to the command and reaps zombies.
    #[arg(long)]
    init: bool,
    /// The init binary for --init (default: docker-init, tini-static or catatonit from the host).
    #[arg(long, requires = "init")]
    init_path: Option<PathBuf>,
    /// `no`, `always`, `on-failure[:N]`, `unless-stopped`.
    #[arg(long, default_value = "no")]
    restart: RestartPolicy,
    /// Override the image's entrypoint.
    #[arg(long)]
    entrypoint: Option<String>,
    /// `always`, `missing` or `never`.
    #[arg(long, default_value = "missing")]
    pull: String,
    /// Use a directory as the root filesystem instead of an image (IMAGE is then only a label).
    #[arg(long)]
    rootfs: Option<PathBuf>,
    /// Seconds `stop` waits before SIGKILL.
    #[arg(long, default_value_t = 10)]
    stop_timeout: u64,
    /// The signal `stop` sends.
    #[arg(long)]
    stop_signal: Option<String>,
    /// The parent cgroup (`/drover`): the container's cgroup is `<parent>/<id>`.
    #[arg(long)]
    cgroup_parent: Option<String>,
    /// Rotate the log file at this size.
    #[arg(long, default_value = "10m")]
    log_max_size: String,
    /// Rotated log files kept.
    #[arg(long, default_value_t = 5)]
    log_max_files: u32,
    /// The image (or, with --rootfs, a name for it).
    image: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// `drover ps`.
#[derive(Args, Debug)]
pub struct PsArgs {
    #[command(flatten)]
    common: Common,
    /// Show all containers (default: running only).
    #[arg(short = 'a', long)]
    all: bool,
    /// Only ids.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Do not truncate ids and commands.
    #[arg(long)]
    no_trunc: bool,
}

/// `drover logs`.
#[derive(Args, Debug)]
pub struct LogsArgs {
    #[command(flatten)]
    common: Common,
    /// Keep following the output.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Lines from the end (`all` or a number).
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps.
    #[arg(short = 't', long)]
    timestamps: bool,
    /// The container.
    container: String,
}

/// `drover exec`.
#[derive(Args, Debug)]
pub struct ExecArgs {
    #[command(flatten)]
    common: Common,
    /// Keep stdin open.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a terminal.
    #[arg(short = 't', long)]
    tty: bool,
    /// Run in the background.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Environment variable.
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// User.
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Working directory.
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// The container.
    container: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

/// `drover stop`.
#[derive(Args, Debug)]
pub struct StopArgs {
    #[command(flatten)]
    common: Common,
    /// Seconds to wait before SIGKILL (default: the container's, 10).
    #[arg(short = 't', long)]
    time: Option<u64>,
    /// The containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `drover kill`.
#[derive(Args, Debug)]
pub struct KillArgs {
    #[command(flatten)]
    common: Common,
    /// The signal.
    #[arg(short = 's', long, default_value = "KILL")]
    signal: String,
    /// The containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `drover rm`.
#[derive(Args, Debug)]
pub struct RmArgs {
    #[command(flatten)]
    common: Common,
    /// Kill running containers first.
    #[arg(short = 'f', long)]
    force: bool,
    /// Accepted for Docker compatibility (anonymous volumes do not exist yet).
    #[arg(short = 'v', long)]
    volumes: bool,
    /// The containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `drover inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    #[command(flatten)]
    common: Common,
    /// The containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// An image made ready to run: its id, config and overlay lower directories (topmost first).
pub struct PreparedImage {
    /// The image id (config digest).
    pub id: String,
    /// The image config blob (JSON).
    pub config: serde_json::Value,
    /// Unpacked layers, topmost first.
    pub lower_dirs: Vec<PathBuf>,
}

/// Where `run` gets images from (the image store, wired by the binary).
pub trait ImageSource {
    /// Resolves (and, per `pull`, pulls) `reference`, unpacks its layers and keeps its content
    /// alive under `lease` (the container id) until [`ImageSource::release`].
    fn prepare(
        &self,
        data_dir: &Path,
        reference: &str,
        pull: &str,
        lease: &str,
    ) -> Result<PreparedImage>;
    /// Lets the image's content go (the container was removed).
    fn release(&self, data_dir: &Path, lease: &str);
}

/// What the runtime crate knows that the spec needs: capability names and the seccomp profile.
pub struct RuntimeFacts {
    /// Capabilities a container gets by default.
    pub default_caps: &'static [&'static str],
    /// Every capability.
    pub all_caps: &'static [&'static str],
    /// The default seccomp profile for a capability set, as OCI JSON.
    pub seccomp: fn(&[String]) -> serde_json::Value,
}

/// Runs one engine verb.
pub fn run(cmd: EngineCommand, images: &dyn ImageSource, facts: &RuntimeFacts) -> ExitCode {
    let result = match cmd {
        EngineCommand::Run(a) => cmd_run(*a, images, facts),
        EngineCommand::Ps(a) => cmd_ps(a).map(|()| 0),
        EngineCommand::Logs(a) => cmd_logs(a).map(|()| 0),
        EngineCommand::Exec(a) => cmd_exec(a),
        EngineCommand::Stop(a) => cmd_stop(a).map(|()| 0),
        EngineCommand::Kill(a) => cmd_kill(a).map(|()| 0),
        EngineCommand::Rm(a) => cmd_rm(a, images).map(|()| 0),
        EngineCommand::Inspect(a) => cmd_inspect(a).map(|()| 0),
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("drover: {e:#}");
            // Docker: 125 when the engine itself failed.
            ExitCode::from(125)
        }
    }
}

fn runtime(layout: &Layout) -> Result<Command> {
    let exe = std::env::current_exe().context("finding our own binary")?;
    let mut c = supervisor::runtime_command(&exe);
    c.arg("--root").arg(layout.runtime_root());
    Ok(c)
}

fn read_env_file(path: &Path) -> Result<Vec<String>> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("reading the env file {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

fn cmd_run(a: RunArgs, images: &dyn ImageSource, facts: &RuntimeFacts) -> Result<i32> {
    if a.detach && a.rm && a.restart != RestartPolicy::No {
        bail!("conflicting options: --restart and --rm");
    }
    let network = match a.network.as_str() {
        "none" => Network::None,
        "host" => Network::Host,
        other => bail!(
            "network {other:?} is not supported yet: use none or host (bridge networking and -p come with the networking issue)"
        ),
    };
    // Before anything is pulled or created: a missing init is the user's to fix.
    let init = if a.init {
        Some(crate::init::find(
            a.init_path.as_deref(),
            &crate::init::host_candidates(),
        )?)
    } else {
        None
    };
    let layout = Layout::new(&a.common.data_dir);
    fs::create_dir_all(layout.containers())
        .with_context(|| format!("creating {}", layout.containers().display()))?;
    let existing = layout.list()?;
    let name = match &a.name {
        Some(n) => {
            layout::check_name(n)?;
            if let Some(other) = existing.iter().find(|r| &r.name == n) {
                bail!(
                    "Conflict. The container name \"/{n}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                    other.id
                );
            }
            n.clone()
        }
        None => layout::generate_name(&existing.iter().map(|r| r.name.clone()).collect::<Vec<_>>()),
    };
    let id = layout::new_id();
    let (image_id, image_config, lower_dirs, rootfs_dir) = match &a.rootfs {
        Some(dir) => {
            let dir = fs::canonicalize(dir)
                .with_context(|| format!("the rootfs {} does not exist", dir.display()))?;
            (String::new(), ImageConfig::default(), Vec::new(), Some(dir))
        }
        None => {
            let img = images.prepare(&a.common.data_dir, &a.image, &a.pull, &id)?;
            let cfg = match ImageConfig::from_json(&img.config) {
                Ok(c) => c,
                Err(e) => {
                    images.release(&a.common.data_dir, &id);
                    return Err(e);
                }
            };
            (img.id, cfg, img.lower_dirs, None)
        }
    };
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(read_env_file(f)?);
    }
    env.extend(a.env.iter().cloned());
    let mut labels = BTreeMap::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_owned(), v.to_owned());
    }
    let opts = ContainerOptions {
        entrypoint: a.entrypoint.clone(),
        cmd: a.command.clone(),
        env,
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        memory: a.memory.as_deref().map(spec::parse_bytes).transpose()?,
        cpus: a.cpus,
        pids_limit: a.pids_limit,
        volumes: a.volumes.clone(),
        tmpfs: a.tmpfs.clone(),
        read_only: a.read_only,
        network,
        hostname: a.hostname.clone(),
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        privileged: a.privileged,
        security_opt: a.security_opt.clone(),
        ulimits: a.ulimit.clone(),
        labels: labels.clone(),
        tty: a.tty,
        interactive: a.interactive,
        cgroup_parent: a.cgroup_parent.clone(),
        init: init.clone(),
    };
    // The user is resolved from the image's own files: the rootfs, or the topmost layer that
    // has /etc/passwd.
    let user_spec = opts
        .user
        .clone()
        .unwrap_or_else(|| image_config.user.clone());
    let passwd_root = match &rootfs_dir {
        Some(d) => d.clone(),
        None => lower_dirs
            .iter()
            .find(|d| {
                users::read_in_root(d, "/etc/passwd")
                    .ok()
                    .flatten()
                    .is_some()
            })
            .cloned()
            .unwrap_or_else(|| lower_dirs.first().cloned().unwrap_or_default()),
    };
    let identity = match users::resolve(&passwd_root, &user_spec) {
        Ok(i) => i,
        Err(e) => {
            images.release(&a.common.data_dir, &id);
            return Err(e);
        }
    };

    let dir = layout.container(&id);
    fs::create_dir_all(dir.rootfs())
        .with_context(|| format!("creating {}", dir.path().display()))?;
    let result = (|| -> Result<Record> {
        let seccomp = |caps: &[String]| (facts.seccomp)(caps);
        let host = HostFiles {
            dir: dir.path(),
            id: &id,
            default_caps: facts.default_caps,
            all_caps: facts.all_caps,
            seccomp: &seccomp,
        };
        let mut built = spec::build(&image_config, &opts, &identity, &host, &|k| {
            std::env::var(k).ok()
        })?;
        if let Some(d) = &rootfs_dir {
            built.spec["root"]["path"] = serde_json::Value::String(d.display().to_string());
        }
        for (path, content) in &built.files {
            fs::write(path, content).with_context(|| format!("writing {}", path.display()))?;
        }
        fs::write(
            dir.bundle().join("config.json"),
            serde_json::to_vec_pretty(&built.spec)?,
        )?;
        let stop_signal = a
            .stop_signal
            .clone()
            .or_else(|| Some(image_config.stop_signal.clone()).filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "SIGTERM".into());
        let mut all_labels = image_config.labels.clone();
        all_labels.extend(labels);
        let record = Record {
            id: id.clone(),
            name: name.clone(),
            image: a.image.clone(),
            image_id: image_id.clone(),
            created: layout::now().0,
            command: built.args.clone(),
            auto_remove: a.rm,
            restart: a.restart.clone(),
            stop_signal,
            stop_timeout: a.stop_timeout,
            open_stdin: a.interactive,
            tty: a.tty,
            lower_dirs: lower_dirs.clone(),
            rootfs_dir: rootfs_dir.clone(),
            labels: all_labels,
            healthcheck: image_config.healthcheck.clone(),
            log_max_size: spec::parse_bytes(&a.log_max_size)? as u64,
            log_max_files: a.log_max_files,
            cgroups_path: spec::cgroups_path(a.cgroup_parent.as_deref(), &id),
            own_netns: network == Network::None,
            init: init.clone(),
        };
        layout::write_atomic(&dir.record_path(), &serde_json::to_vec_pretty(&record)?)?;
        Ok(record)
    })();
    let record = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = fs::remove_dir_all(dir.path());
            images.release(&a.common.data_dir, &id);
            return Err(e);
        }
    };
    let foreground = !a.detach;
    if let Err(e) = supervisor::spawn(dir.path(), &layout.runtime_root(), foreground) {
        let msg = format!("{e:#}");
        eprintln!("drover: {msg}");
        if record.auto_remove {
            let _ = fs::remove_dir_all(dir.path());
            images.release(&a.common.data_dir, &id);
        }
        return Ok(supervisor::exit_code_for_start_error(&msg));
    }
    if a.detach {
        println!("{id}");
        return Ok(0);
    }
    attach_foreground(&layout, &record, a.interactive)
}

/// Attaches to a container that waits for us, streams its output, forwards stdin and signals,
/// and returns its exit code.
fn attach_foreground(layout: &Layout, record: &Record, stdin: bool) -> Result<i32> {
    let dir = layout.container(&record.id);
    let stream = connect_attach(dir.path())?;
    let mut writer = stream.try_clone()?;
    let hello = attach::Hello { stdin, start: true };
    attach::write_frame(
        &mut writer,
        attach::Kind::Hello,
        &serde_json::to_vec(&hello)?,
    )?;
    let _raw = if record.tty && rustix::termios::isatty(std::io::stdin()) {
        Some(RawTerminal::enter()?)
    } else {
        None
    };
    if record.tty {
        send_size(&mut writer);
    }
    // Signals are blocked (and taken by one waiting thread) before the stdin thread exists, so
    // it inherits the mask: a signal the kernel handed to it would be lost (SIGWINCH) or end us
    // (SIGTERM) instead of reaching the container.
    let stdin_writer = if stdin {
        Some(writer.try_clone()?)
    } else {
        None
    };
    forward_signals(layout, record, writer)?;
    if let Some(mut w) = stdin_writer {
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match std::io::Read::read(&mut std::io::stdin(), &mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = attach::write_frame(&mut w, attach::Kind::StdinClose, &[]);
                        break;
                    }
                    Ok(n) => {
                        if attach::write_frame(&mut w, attach::Kind::Stdin, &buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
    let mut reader = std::io::BufReader::new(stream);
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    loop {
        match attach::read_frame(&mut reader) {
            Ok(Some((attach::Kind::Stdout, data))) => {
                let _ = stdout.write_all(&data);
                let _ = stdout.flush();
            }
            Ok(Some((attach::Kind::Stderr, data))) => {
                let _ = stderr.write_all(&data);
            }
            Ok(Some((attach::Kind::Exit, data))) => {
                let info: attach::ExitInfo = serde_json::from_slice(&data).unwrap_or_default();
                return Ok(info.exit_code);
            }
            Ok(Some((attach::Kind::Error, data))) => {
                let msg = String::from_utf8_lossy(&data).into_owned();
                eprintln!("drover: {msg}");
                return Ok(supervisor::exit_code_for_start_error(&msg));
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                // The supervisor went away without a final frame: trust what it recorded.
                return Ok(dir.status().ok().and_then(|s| s.exit_code).unwrap_or(125));
            }
        }
    }
}

fn connect_attach(dir: &Path) -> Result<std::os::unix::net::UnixStream> {
    let dir_fd = fs::File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let path = format!(
        "/proc/self/fd/{}/attach.sock",
        std::os::fd::AsRawFd::as_raw_fd(&dir_fd)
    );
    std::os::unix::net::UnixStream::connect(&path)
        .context("connecting to the container's supervisor")
}

fn send_size(w: &mut impl Write) {
    if let Ok(ws) = rustix::termios::tcgetwinsize(std::io::stdout()) {
        let mut p = Vec::with_capacity(4);
        p.extend_from_slice(&ws.ws_row.to_be_bytes());
        p.extend_from_slice(&ws.ws_col.to_be_bytes());
        let _ = attach::write_frame(w, attach::Kind::Resize, &p);
    }
}

/// The terminal in raw mode for as long as this lives.
struct RawTerminal {
    saved: rustix::termios::Termios,
}

impl RawTerminal {
    fn enter() -> Result<Self> {
        let saved =
            rustix::termios::tcgetattr(std::io::stdin()).context("reading the terminal mode")?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &raw,
        )
        .context("setting the terminal to raw mode")?;
        Ok(Self { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

/// Forwards the signals a user sends to the foreground `run` to the container (Docker's
/// sig-proxy), and terminal resizes to the supervisor.
#[allow(unsafe_code)]
fn forward_signals(
    layout: &Layout,
    record: &Record,
    mut writer: std::os::unix::net::UnixStream,
) -> Result<()> {
    const SIGNALS: [i32; 7] = [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGWINCH,
    ];
    // SAFETY: a sigset_t is plain data initialised by sigemptyset before use; blocking the
    // signals in this thread happens before any other thread that could receive them exists
    // (the stdin thread inherits the mask too), so only the sigwait thread below takes them.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in SIGNALS {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let exe = std::env::current_exe().context("finding our own binary")?;
    let root = layout.runtime_root();
    let id = record.id.clone();
    let tty = record.tty;
    std::thread::spawn(move || {
        loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: `set` was initialised above and `sig` is a valid out-pointer.
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                break;
            }
            if sig == libc::SIGWINCH {
                if tty {
                    send_size(&mut writer);
                }
                continue;
            }
            // With a terminal, ^C reaches the container through the pty; forward only the rest.
            if tty && sig == libc::SIGINT {
                continue;
            }
            let _ = supervisor::runtime_command(&exe)
                .arg("--root")
                .arg(&root)
                .args(["kill", &id, &sig.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    });
    Ok(())
}

/// The status to show. The supervisor records every change; only when it is gone (killed, or the
/// machine rebooted) do we look at the container's pid ourselves.
fn effective_status(dir: &layout::ContainerDir) -> Status {
    let mut st = dir.status().unwrap_or_default();
    let alive = |pid: i32| pid > 0 && Path::new(&format!("/proc/{pid}")).exists();
    let supervised = alive(st.supervisor_pid)
        && fs::read(format!("/proc/{}/cmdline", st.supervisor_pid))
            .is_ok_and(|c| c.windows(9).any(|w| w == b"supervise"));
    if st.state == State::Running && !supervised && !alive(st.pid) {
        st.state = State::Exited;
        st.pid = 0;
        if st.exit_code.is_none() {
            st.error = Some("the container's supervisor is gone; its exit code is unknown".into());
        }
    }
    st
}

/// Docker's `units.HumanDuration`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..60 => plural(s, "second"),
        60..120 => "About a minute".into(),
        120..3600 => plural(s / 60, "minute"),
        3600..7200 => "About an hour".into(),
        7200..172_800 => plural(s / 3600, "hour"),
        172_800..1_209_600 => plural(s / 86_400, "day"),
        1_209_600..7_776_000 => plural(s / 604_800, "week"),
        7_776_000..63_072_000 => plural(s / 2_592_000, "month"),
        _ => plural(s / 31_536_000, "year"),
    }
}

fn since(secs: i64) -> Duration {
    Duration::from_secs((layout::now().0 - secs).max(0) as u64)
}

/// The STATUS column of `ps`.
pub fn status_text(st: &Status) -> String {
    match st.state {
        State::Created => "Created".into(),
        State::Running => {
            let up = st.started_at.map_or(Duration::ZERO, |(s, _)| since(s));
            match st.health.as_deref() {
                Some("starting") => format!("Up {} (health: starting)", human_duration(up)),
                Some(h) => format!("Up {} ({h})", human_duration(up)),
                None => format!("Up {}", human_duration(up)),
            }
        }
        State::Restarting => format!(
            "Restarting ({}) {} ago",
            st.exit_code.unwrap_or(0),
            human_duration(st.finished_at.map_or(Duration::ZERO, |(s, _)| since(s)))
        ),
        State::Exited => match st.exit_code {
            Some(code) => format!(
                "Exited ({code}) {} ago",
                human_duration(st.finished_at.map_or(Duration::ZERO, |(s, _)| since(s)))
            ),
            None => "Exited (unknown)".into(),
        },
    }
}

fn cmd_ps(a: PsArgs) -> Result<()> {
    let layout = Layout::new(&a.common.data_dir);
    let mut rows = vec![[
        "CONTAINER ID".to_owned(),
        "IMAGE".into(),
        "COMMAND".into(),
        "CREATED".into(),
        "STATUS".into(),
        "PORTS".into(),
        "NAMES".into(),
    ]];
    let mut records = layout.list()?;
    records.reverse();
    for r in records {
        let st = effective_status(&layout.container(&r.id));
        if !a.all && st.state != State::Running {
            continue;
        }
        if a.quiet {
            println!("{}", if a.no_trunc { &r.id[..] } else { &r.id[..12] });
            continue;
        }
        let mut command = format!("\"{}\"", r.command.join(" "));
        if !a.no_trunc && command.chars().count() > 22 {
            command = format!("{}…\"", command.chars().take(20).collect::<String>());
        }
        rows.push([
            if a.no_trunc {
                r.id.clone()
            } else {
                r.id[..12].to_owned()
            },
            r.image.clone(),
            command,
            format!("{} ago", human_duration(since(r.created))),
            status_text(&st),
            String::new(),
            r.name.clone(),
        ]);
    }
    if a.quiet {
        return Ok(());
    }
    let widths: Vec<usize> = (0..7)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = std::io::stdout().lock();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c < 6 {
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 3));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn print_line(line: &logs::Line, timestamps: bool) {
    let mut out: Box<dyn Write> = match line.stream {
        logs::Stream::Stdout => Box::new(std::io::stdout().lock()),
        logs::Stream::Stderr => Box::new(std::io::stderr().lock()),
    };
    if timestamps {
        let _ = write!(out, "{} ", line.time);
    }
    let _ = out.write_all(&line.content);
    if line.complete {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

fn cmd_logs(a: LogsArgs) -> Result<()> {
    let layout = Layout::new(&a.common.data_dir);
    let record = layout.find(&a.container)?;
    let dir = layout.container(&record.id);
    let (lines, mut follower) = logs::read_and_follow(&dir.log_path(), record.log_max_files)?;
    let skip = match a.tail.as_str() {
        "all" => 0,
        n => {
            let n: usize = n
                .parse()
                .with_context(|| format!("invalid --tail {n:?}: use a number or all"))?;
            lines.len().saturating_sub(n)
        }
    };
    for l in &lines[skip..] {
        print_line(l, a.timestamps);
    }
    if !a.follow {
        for l in follower.finish() {
            print_line(&l, a.timestamps);
        }
        return Ok(());
    }
    let f = &mut follower;
    loop {
        let running = matches!(
            effective_status(&dir).state,
            State::Running | State::Restarting | State::Created
        ) && dir.path().exists();
        let lines = f.poll()?;
        for l in &lines {
            print_line(l, a.timestamps);
        }
        if !running && lines.is_empty() {
            for l in f.finish() {
                print_line(&l, a.timestamps);
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn running_record(layout: &Layout, key: &str) -> Result<(Record, Status)> {
    let record = layout.find(key)?;
    let st = effective_status(&layout.container(&record.id));
    if st.state != State::Running {
        bail!("container {} is not running", record.id);
    }
    Ok((record, st))
}

fn cmd_exec(a: ExecArgs) -> Result<i32> {
    let layout = Layout::new(&a.common.data_dir);
    let (record, _) = running_record(&layout, &a.container)?;
    let dir = layout.container(&record.id);
    let mut rt = runtime(&layout)?;
    rt.arg("exec");
    if let Some(w) = &a.workdir {
        rt.arg("--cwd").arg(w);
    }
    for e in &a.env {
        rt.arg("-e").arg(e);
    }
    if let Some(u) = &a.user {
        let root = record.rootfs_dir.clone().unwrap_or_else(|| dir.rootfs());
        let id = users::resolve(&root, u)?;
        rt.arg("-u").arg(format!("{}:{}", id.uid, id.gid));
    }
    if a.detach {
        rt.arg("-d");
    }
    if a.tty {
        return exec_with_tty(rt, &record.id, &a.command);
    }
    if !a.interactive {
        rt.stdin(Stdio::null());
    }
    let status = rt
        .arg(&record.id)
        .args(&a.command)
        .status()
        .context("running drover runtime exec")?;
    Ok(status.code().unwrap_or_else(|| {
        128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
    }))
}

fn exec_with_tty(mut rt: Command, id: &str, command: &[String]) -> Result<i32> {
    let tmp = std::env::temp_dir().join(format!("drover-exec-{}", layout::new_id()));
    fs::create_dir_all(&tmp)?;
    let sock_path = tmp.join("console.sock");
    let listener =
        std::os::unix::net::UnixListener::bind(&sock_path).context("binding the console socket")?;
    let mut child = rt
        .arg("--tty")
        .arg("--console-socket")
        .arg(&sock_path)
        .arg(id)
        .args(command)
        .stdin(Stdio::null())
        .spawn()
        .context("running drover runtime exec")?;
    let (stream, _) = listener
        .accept()
        .context("waiting for the exec's terminal")?;
    let master = supervisor::receive_fd(&stream)?;
    let _ = fs::remove_dir_all(&tmp);
    // Our terminal's size now and whenever it changes: setting it on the pty's master makes the
    // kernel send SIGWINCH to the process in the foreground there, as a terminal emulator does.
    if rustix::termios::isatty(std::io::stdout()) {
        follow_resizes(master.try_clone()?)?;
    }
    let _raw = if rustix::termios::isatty(std::io::stdin()) {
        Some(RawTerminal::enter()?)
    } else {
        None
    };
    let master_w = master.try_clone()?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match std::io::Read::read(&mut std::io::stdin(), &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if rustix::io::write(&master_w, &buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut buf = [0u8; 8192];
    let mut out = std::io::stdout();
    loop {
        match rustix::io::read(&master, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let _ = out.write_all(&buf[..n]);
                let _ = out.flush();
            }
        }
    }
    let status = child.wait()?;
    Ok(status.code().unwrap_or(1))
}

/// Copies our terminal's size to `master` now and on every SIGWINCH we get, from a thread that
/// waits for the signal (blocked in this thread first, before any other thread exists, so every
/// thread inherits the mask and only the waiter takes it).
#[allow(unsafe_code)]
fn follow_resizes(master: std::os::fd::OwnedFd) -> Result<()> {
    // SAFETY: a sigset_t is plain data initialised by sigemptyset before use; pthread_sigmask
    // only changes this thread's mask.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGWINCH);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let copy_size = move |master: &std::os::fd::OwnedFd| {
        if let Ok(ws) = rustix::termios::tcgetwinsize(std::io::stdout()) {
            let _ = rustix::termios::tcsetwinsize(master, ws);
        }
    };
    copy_size(&master);
    std::thread::spawn(move || {
        loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: `set` was initialised above and `sig` is a valid out-pointer.
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                break;
            }
            copy_size(&master);
        }
    });
    Ok(())
}

fn signal_arg(sig: &str) -> String {
    let s = sig.trim_start_matches("SIG");
    s.to_owned()
}

fn wait_exited(layout: &Layout, id: &str, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    loop {
        let dir = layout.container(id);
        let st = effective_status(&dir);
        if st.state != State::Running || !dir.path().exists() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop_one(layout: &Layout, record: &Record, timeout: u64) -> Result<()> {
    let dir = layout.container(&record.id);
    fs::write(dir.path().join("stopped-by-user"), b"")?;
    if effective_status(&dir).state != State::Running {
        return Ok(());
    }
    let _ = runtime(layout)?
        .args(["kill", &record.id, &signal_arg(&record.stop_signal)])
        .stderr(Stdio::null())
        .status();
    if !wait_exited(layout, &record.id, Duration::from_secs(timeout)) {
        let _ = runtime(layout)?
            .args(["kill", &record.id, "KILL"])
            .stderr(Stdio::null())
            .status();
        if !wait_exited(layout, &record.id, Duration::from_secs(10)) {
            bail!("container {} did not exit after SIGKILL", record.id);
        }
    }
    Ok(())
}

fn cmd_stop(a: StopArgs) -> Result<()> {
    let layout = Layout::new(&a.common.data_dir);
    each_container(&a.containers, "stopped", |key| {
        let r = layout.find(key)?;
        stop_one(&layout, &r, a.time.unwrap_or(r.stop_timeout))
    })
}

/// Runs `f` for every container named, printing each name that succeeded and each error, as
/// Docker does; fails at the end if any failed.
fn each_container(
    keys: &[String],
    done: &str,
    mut f: impl FnMut(&str) -> Result<()>,
) -> Result<()> {
    let mut failed = false;
    for key in keys {
        match f(key) {
            Ok(()) => println!("{key}"),
            Err(e) => {
                eprintln!("drover: {e:#}");
                failed = true;
            }
        }
    }
    if failed {
        bail!("some containers could not be {done}");
    }
    Ok(())
}

fn cmd_kill(a: KillArgs) -> Result<()> {
    let layout = Layout::new(&a.common.data_dir);
    each_container(&a.containers, "signalled", |key| {
        let (r, _) = running_record(&layout, key)?;
        fs::write(layout.container(&r.id).path().join("stopped-by-user"), b"")?;
        let ok = runtime(&layout)?
            .args(["kill", &r.id, &signal_arg(&a.signal)])
            .status()?
            .success();
        if !ok {
            bail!("could not send {} to {key}", a.signal);
        }
        Ok(())
    })
}

fn cmd_rm(a: RmArgs, images: &dyn ImageSource) -> Result<()> {
    let layout = Layout::new(&a.common.data_dir);
    each_container(&a.containers, "removed", |key| {
        let r = layout.find(key)?;
        let dir = layout.container(&r.id);
        let st = effective_status(&dir);
        if st.state == State::Running {
            if !a.force {
                bail!(
                    "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                    r.id
                );
            }
            fs::write(dir.path().join("stopped-by-user"), b"")?;
            let _ = runtime(&layout)?
                .args(["kill", &r.id, "KILL"])
                .stderr(Stdio::null())
                .status();
            wait_exited(&layout, &r.id, Duration::from_secs(10));
        }
        let _ = runtime(&layout)?
            .args(["delete", "--force", &r.id])
            .stderr(Stdio::null())
            .status();
        let _ = rustix::mount::unmount(dir.rootfs(), rustix::mount::UnmountFlags::DETACH);
        fs::remove_dir_all(dir.path())
            .with_context(|| format!("removing {}", dir.path().display()))?;
        if r.rootfs_dir.is_none() {
            images.release(&a.common.data_dir, &r.id);
        }
        Ok(())
    })
}

fn rfc3339(t: Option<(i64, u32)>) -> String {
    let (s, n) = t.unwrap_or((-62_135_596_800, 0));
    drover_core::time::format_rfc3339_nanos(s, n).unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
}

fn cmd_inspect(a: InspectArgs) -> Result<()> {
    let layout = Layout::new(&a.common.data_dir);
    let mut out = Vec::new();
    for key in &a.containers {
        let r = layout.find(key)?;
        let dir = layout.container(&r.id);
        let st = effective_status(&dir);
        let spec: serde_json::Value = fs::read(dir.bundle().join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let status = match st.state {
            State::Created => "created",
            State::Running => "running",
            State::Restarting => "restarting",
            State::Exited => "exited",
        };
        let restart = match &r.restart {
            RestartPolicy::No => ("no", 0),
            RestartPolicy::Always => ("always", 0),
            RestartPolicy::UnlessStopped => ("unless-stopped", 0),
            RestartPolicy::OnFailure { max } => ("on-failure", *max),
        };
        let mut state = serde_json::json!({
            "Status": status,
            "Running": st.state == State::Running,
            "Paused": false,
            "Restarting": st.state == State::Restarting,
            "OOMKilled": st.oom_killed,
            "Dead": false,
            "Pid": st.pid,
            "ExitCode": st.exit_code.unwrap_or(0),
            "Error": st.error.clone().unwrap_or_default(),
            "StartedAt": rfc3339(st.started_at),
            "FinishedAt": rfc3339(st.finished_at),
        });
        if let Some(h) = &st.health {
            state["Health"] = serde_json::json!({"Status": h, "FailingStreak": st.health_failures});
        }
        out.push(serde_json::json!({
            "Id": r.id,
            "Created": rfc3339(Some((r.created, 0))),
            "Path": r.command.first().cloned().unwrap_or_default(),
            "Args": r.command.get(1..).unwrap_or_default(),
            "State": state,
            "Image": r.image_id,
            "Name": format!("/{}", r.name),
            "RestartCount": st.restart_count,
            "LogPath": dir.log_path(),
            "Config": {
                "Hostname": spec["hostname"],
                "User": format!("{}:{}", spec["process"]["user"]["uid"], spec["process"]["user"]["gid"]),
                "Tty": r.tty,
                "OpenStdin": r.open_stdin,
                "Env": spec["process"]["env"],
                "Cmd": r.command,
                "Image": r.image,
                "WorkingDir": spec["process"]["cwd"],
                "Labels": r.labels,
                "StopSignal": r.stop_signal,
            },
            "HostConfig": {
                "AutoRemove": r.auto_remove,
                "Init": r.init.is_some().then_some(true),
                "RestartPolicy": {"Name": restart.0, "MaximumRetryCount": restart.1},
                "ReadonlyRootfs": spec["root"]["readonly"],
                "CapAdd": null,
                "Memory": spec["linux"]["resources"]["memory"]["limit"].as_i64().unwrap_or(0),
                "PidsLimit": spec["linux"]["resources"]["pids"]["limit"].as_i64(),
            },
        }));
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::Subcommand;
        EngineCommand::augment_subcommands(clap::Command::new("drover")).debug_assert();
    }

    #[test]
    fn human_durations_match_docker() {
        let d = |s| human_duration(Duration::from_secs(s));
        assert_eq!(d(0), "Less than a second");
        assert_eq!(d(1), "1 second");
        assert_eq!(d(45), "45 seconds");
        assert_eq!(d(90), "About a minute");
        assert_eq!(d(600), "10 minutes");
        assert_eq!(d(4000), "About an hour");
        assert_eq!(d(3 * 3600), "3 hours");
        assert_eq!(d(3 * 86_400), "3 days");
    }

    #[test]
    fn status_texts() {
        let mut st = Status::default();
        assert_eq!(status_text(&st), "Created");
        st.state = State::Exited;
        st.exit_code = Some(3);
        st.finished_at = Some(layout::now());
        assert_eq!(status_text(&st), "Exited (3) Less than a second ago");
        st.state = State::Running;
        st.started_at = Some((layout::now().0 - 120, 0));
        st.health = Some("healthy".into());
        assert_eq!(status_text(&st), "Up 2 minutes (healthy)");
    }
}
