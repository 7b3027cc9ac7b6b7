//! The per-container supervisor: `drover supervise <container-dir> --runtime-root DIR
//! [--wait-attach]`.
//!
//! It starts in its own session (so it outlives the CLI or agent that started it and is reparented
//! to init), becomes a child subreaper, mounts the container's overlay rootfs and drives `drover
//! runtime` as conmon drives runc: `create` with the container's stdio on pipes (or a pty received
//! over `--console-socket`), `lo` up in a new network namespace, `start`. Then a single-threaded
//! poll loop copies output into the CRI log and to attach clients, feeds stdin, resizes the
//! terminal, runs health checks, reaps, and records the exit code (128+signal) and OOM kills in
//! `status.json`. The restart policy runs the container again; `--rm` removes it at the end.
//!
//! The first line it writes to stdout (a pipe from whoever spawned it) is `ok` or `error: …`;
//! after that its stdout and stderr go to `supervisor.log`.

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, WaitOptions};

use crate::attach::{self, ExitInfo, Hello, Kind};
use crate::layout::{ContainerDir, Record, RestartPolicy, State, Status};
use crate::logs::{LogWriter, Stream};

/// A client that sends more than this is dropped rather than slowing the container down.
const CLIENT_BUFFER_LIMIT: usize = 8 << 20;

/// What the supervisor needs from crates it does not depend on; the binary wires them in.
#[derive(Clone, Copy)]
pub struct Hooks {
    /// Whether the kernel's OOM killer acted in the cgroup at this `cgroupsPath` (the runtime
    /// crate knows how, per cgroup version).
    pub oom_killed: fn(&str) -> bool,
    /// Releases the image lease of a removed container (`data dir`, container id).
    pub release_image: fn(&Path, &str),
}

/// Runs the supervisor; returns its exit code.
pub fn main(args: Vec<OsString>, hooks: Hooks) -> i32 {
    let mut dir = None;
    let mut runtime_root = None;
    let mut wait_attach = false;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.to_str() {
            Some("--runtime-root") => runtime_root = it.next().map(PathBuf::from),
            Some("--wait-attach") => wait_attach = true,
            _ => dir = Some(PathBuf::from(a)),
        }
    }
    let (Some(dir), Some(runtime_root)) = (dir, runtime_root) else {
        println!(
            "error: usage: drover supervise <container-dir> --runtime-root DIR [--wait-attach]"
        );
        return 2;
    };
    let mut sup = match Supervisor::new(ContainerDir(dir), runtime_root, wait_attach, hooks) {
        Ok(s) => s,
        Err(e) => {
            println!("error: {e:#}");
            return 1;
        }
    };
    sup.run()
}

struct Client {
    stream: UnixStream,
    decoder: attach::Decoder,
    out: Vec<u8>,
    hello: Option<Hello>,
}

struct HealthRun {
    pid: Pid,
    /// Readable when the check's process exits.
    fd: Option<OwnedFd>,
    deadline: Instant,
}

struct Supervisor {
    dir: ContainerDir,
    record: Record,
    runtime: PathBuf,
    runtime_root: PathBuf,
    wait_attach: bool,
    status: Status,
    log: LogWriter,
    listener: UnixListener,
    /// Keeps the container directory open so sockets bind through `/proc/self/fd/N/…` (a
    /// socket path must fit in 108 bytes; the directory's own path may not).
    dir_fd: OwnedFd,
    clients: Vec<Client>,
    stdin_w: Option<OwnedFd>,
    stdin_buf: Vec<u8>,
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    pty: Option<OwnedFd>,
    init: Option<Pid>,
    /// Readable when the init exits, so the loop wakes for it (output EOF can come first).
    init_fd: Option<OwnedFd>,
    init_exit: Option<i32>,
    health: Option<HealthRun>,
    next_health: Option<Instant>,
    started: Instant,
    start_requested: bool,
    mounted: bool,
    reported: bool,
    hooks: Hooks,
}

fn short_path(dir_fd: &OwnedFd, name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}/{name}", dir_fd.as_raw_fd()))
}

impl Supervisor {
    fn new(
        dir: ContainerDir,
        runtime_root: PathBuf,
        wait_attach: bool,
        hooks: Hooks,
    ) -> Result<Self> {
        // Our own session: no controlling terminal, and whoever started us can die.
        let _ = rustix::process::setsid();
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
            .context("becoming a child subreaper")?;
        let record = dir.record()?;
        let runtime = std::env::current_exe().context("finding our own binary")?;
        let log = LogWriter::open(&dir.log_path(), record.log_max_size, record.log_max_files)
            .with_context(|| format!("opening {}", dir.log_path().display()))?;
        let dir_fd = rustix::fs::open(
            dir.path(),
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .with_context(|| format!("opening {}", dir.path().display()))?;
        let _ = fs::remove_file(dir.attach_socket());
        let listener = UnixListener::bind(short_path(&dir_fd, "attach.sock"))
            .context("binding the attach socket")?;
        listener.set_nonblocking(true)?;
        let mut status = dir.status()?;
        status.supervisor_pid = rustix::process::getpid().as_raw_nonzero().get();
        Ok(Self {
            dir,
            record,
            runtime,
            runtime_root,
            wait_attach,
            status,
            log,
            listener,
            dir_fd,
            clients: Vec::new(),
            stdin_w: None,
            stdin_buf: Vec::new(),
            out: None,
            err: None,
            pty: None,
            init: None,
            init_fd: None,
            init_exit: None,
            health: None,
            next_health: None,
            started: Instant::now(),
            start_requested: false,
            mounted: false,
            reported: false,
            hooks,
        })
    }

    fn run(&mut self) -> i32 {
        let mut first = true;
        let mut backoff = Duration::from_millis(100);
        loop {
            if let Err(e) = self.start_once(first) {
                let msg = format!("{e:#}");
                self.status.state = State::Exited;
                self.status.error = Some(msg.clone());
                self.status.exit_code = Some(exit_code_for_start_error(&msg));
                self.status.finished_at = Some(crate::layout::now());
                let _ = self.dir.write_status(&self.status);
                if !self.reported {
                    println!("error: {msg}");
                    let _ = std::io::stdout().flush();
                }
                self.broadcast(Kind::Error, msg.as_bytes());
                self.finish_clients();
                self.cleanup();
                return 1;
            }
            if !self.reported {
                self.report_ok();
            }
            first = false;
            self.watch();
            let exit = self.init_exit.take().unwrap_or(255);
            self.record_exit(exit);
            self.runtime_cmd(&["delete", "--force", &self.record.id.clone()]);
            if !self.should_restart(exit) {
                break;
            }
            self.status.state = State::Restarting;
            self.status.restart_count += 1;
            let _ = self.dir.write_status(&self.status);
            // Docker doubles the delay after each quick failure and resets it after a run of 10s.
            if self.started.elapsed() > Duration::from_secs(10) {
                backoff = Duration::from_millis(100);
            }
            self.sleep_serving(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(60));
        }
        let info = ExitInfo {
            exit_code: self.status.exit_code.unwrap_or(255),
            oom_killed: self.status.oom_killed,
        };
        // Clean up first: a foreground `run --rm` returns only once the container is gone.
        self.cleanup();
        self.broadcast(Kind::Exit, &serde_json::to_vec(&info).unwrap_or_default());
        self.finish_clients();
        0
    }

    /// Tells the spawner the container exists; from then on our stdout/stderr must not hold its
    /// pipe open.
    fn report_ok(&mut self) {
        let pid = self.init.map_or(0, |p| p.as_raw_nonzero().get());
        println!("ok {pid}");
        let _ = std::io::stdout().flush();
        self.reported = true;
        self.redirect_own_output();
    }

    fn redirect_own_output(&self) {
        if let Ok(f) = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("supervisor.log"))
        {
            let fd: OwnedFd = f.into();
            let _ = rustix::stdio::dup2_stdout(&fd);
            let _ = rustix::stdio::dup2_stderr(&fd);
        }
    }

    fn runtime_base(&self) -> Command {
        let mut c = runtime_command(&self.runtime);
        c.arg("--root")
            .arg(&self.runtime_root)
            .arg("--log")
            .arg(self.dir.path().join("runtime.log"))
            .arg("--log-format")
            .arg("json");
        c
    }

    /// Runs a runtime command with no stdio; true when it succeeded.
    fn runtime_cmd(&self, args: &[&str]) -> bool {
        self.runtime_base()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The last error the runtime logged (JSON lines with `level` and `msg`).
    fn runtime_error(&self) -> Option<String> {
        let text = fs::read_to_string(self.dir.path().join("runtime.log")).ok()?;
        text.lines().rev().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            (v["level"] == "error").then(|| v["msg"].as_str().unwrap_or(l).to_owned())
        })
    }

    fn mount_rootfs(&mut self) -> Result<()> {
        if self.mounted || self.record.lower_dirs.is_empty() {
            return Ok(());
        }
        let upper = self.dir.path().join("upper");
        let work = self.dir.path().join("work");
        let target = self.dir.rootfs();
        for d in [&upper, &work, &target] {
            fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let lower: Vec<String> = self
            .record
            .lower_dirs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            upper.display(),
            work.display()
        );
        let data = std::ffi::CString::new(data).context("overlay options contain a NUL byte")?;
        rustix::mount::mount(
            "overlay",
            &target,
            "overlay",
            rustix::mount::MountFlags::empty(),
            Some(data.as_c_str()),
        )
        .with_context(|| format!("mounting the overlay rootfs at {}", target.display()))?;
        self.mounted = true;
        Ok(())
    }

    fn start_once(&mut self, first: bool) -> Result<()> {
        self.mount_rootfs()?;
        let id = self.record.id.clone();
        let pid_file = self.dir.path().join("init.pid");
        let _ = fs::remove_file(&pid_file);
        let _ = fs::remove_file(self.dir.path().join("runtime.log"));
        let mut cmd = self.runtime_base();
        cmd.arg("create")
            .arg("--bundle")
            .arg(self.dir.bundle())
            .arg("--pid-file")
            .arg(&pid_file);
        // Stdin: a pipe the attach clients feed, or nothing.
        let mut child_stdin = Stdio::null();
        if self.record.open_stdin && !self.record.tty {
            let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
            child_stdin = Stdio::from(r);
            rustix::fs::fcntl_setfl(&w, rustix::fs::OFlags::NONBLOCK)?;
            self.stdin_w = Some(w);
        }
        let console = if self.record.tty {
            let path = short_path(&self.dir_fd, "console.sock");
            let _ = fs::remove_file(self.dir.path().join("console.sock"));
            let l = UnixListener::bind(&path).context("binding the console socket")?;
            // The runtime is another process: it reaches the socket through our fd table.
            let pid = rustix::process::getpid().as_raw_nonzero().get();
            cmd.arg("--console-socket").arg(format!(
                "/proc/{pid}/fd/{}/console.sock",
                self.dir_fd.as_raw_fd()
            ));
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            Some(l)
        } else {
            let (out_r, out_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
            let (err_r, err_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
            cmd.stdout(Stdio::from(out_w)).stderr(Stdio::from(err_w));
            rustix::fs::fcntl_setfl(&out_r, rustix::fs::OFlags::NONBLOCK)?;
            rustix::fs::fcntl_setfl(&err_r, rustix::fs::OFlags::NONBLOCK)?;
            self.out = Some(out_r);
            self.err = Some(err_r);
            None
        };
        cmd.stdin(child_stdin).arg(&id);
        let status = cmd.status().context("running drover runtime create")?;
        // Our copies of the write ends went with `cmd`: output EOF now means the container's
        // processes closed theirs.
        drop(cmd);
        if !status.success() {
            let why = self
                .runtime_error()
                .unwrap_or_else(|| format!("drover runtime create exited with {status}"));
            self.out = None;
            self.err = None;
            bail!("{why}");
        }
        if let Some(l) = console {
            let (stream, _) = l
                .accept()
                .context("accepting the runtime's console socket")?;
            let master = receive_fd(&stream).context("receiving the terminal from the runtime")?;
            rustix::fs::fcntl_setfl(&master, rustix::fs::OFlags::NONBLOCK)?;
            self.pty = Some(master);
            let _ = fs::remove_file(self.dir.path().join("console.sock"));
        }
        let pid: i32 = fs::read_to_string(&pid_file)
            .context("reading the container's pid file")?
            .trim()
            .parse()
            .context("parsing the container's pid file")?;
        let pid = Pid::from_raw(pid).ok_or_else(|| anyhow!("the runtime reported pid 0"))?;
        self.init = Some(pid);
        self.init_fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok();
        if self.record.own_netns {
            loopback_up(pid).context("bringing up lo in the container's network namespace")?;
        }
        if first && self.wait_attach {
            // Foreground `run`: the CLI attaches after our report, and we start once it has, so
            // no output is missed.
            self.report_ok();
            let deadline = Instant::now() + Duration::from_secs(30);
            while !self.start_requested && Instant::now() < deadline {
                self.poll_once(Some(Duration::from_millis(200)));
            }
        }
        if !self.runtime_cmd(&["start", &id]) {
            let why = self
                .runtime_error()
                .unwrap_or_else(|| "drover runtime start failed".into());
            self.runtime_cmd(&["delete", "--force", &id]);
            bail!("{why}");
        }
        self.started = Instant::now();
        self.status.state = State::Running;
        self.status.pid = pid.as_raw_nonzero().get();
        self.status.started_at = Some(crate::layout::now());
        self.status.finished_at = None;
        self.status.exit_code = None;
        self.status.oom_killed = false;
        self.status.error = None;
        if let Some(h) = &self.record.healthcheck {
            self.status.health = Some("starting".into());
            self.status.health_failures = 0;
            self.next_health = Some(Instant::now() + Duration::from_secs(h.interval_secs));
        }
        self.dir.write_status(&self.status)?;
        Ok(())
    }

    /// Serves output and clients until the init process exited and its output is drained.
    fn watch(&mut self) {
        while self.init_exit.is_none() {
            let timeout = self.next_timeout();
            self.poll_once(timeout);
            self.health_tick();
        }
        // The init is gone; the kernel kills the rest of its pid namespace. Drain what they wrote.
        let deadline = Instant::now() + Duration::from_secs(2);
        while (self.out.is_some() || self.err.is_some() || self.pty.is_some())
            && Instant::now() < deadline
        {
            self.poll_once(Some(Duration::from_millis(100)));
        }
        self.out = None;
        self.err = None;
        self.pty = None;
        self.stdin_w = None;
        let _ = self.log.flush_partial();
        if let Some(h) = self.health.take() {
            let _ = rustix::process::kill_process(h.pid, rustix::process::Signal::KILL);
        }
    }

    fn next_timeout(&self) -> Option<Duration> {
        let mut t = Duration::from_secs(5);
        if let Some(next) = self.next_health {
            t = t.min(next.saturating_duration_since(Instant::now()));
        }
        if let Some(h) = &self.health {
            t = t.min(h.deadline.saturating_duration_since(Instant::now()));
        }
        Some(t.max(Duration::from_millis(10)))
    }

    fn sleep_serving(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.poll_once(Some(end.saturating_duration_since(Instant::now())));
        }
    }

    /// One round of poll: accept clients, move bytes, reap children.
    fn poll_once(&mut self, timeout: Option<Duration>) {
        #[derive(Clone, Copy)]
        enum Slot {
            Listener,
            Out,
            Err,
            Pty,
            Stdin,
            Init,
            Health,
            Client(usize),
        }
        let mut slots = vec![Slot::Listener];
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(5 + self.clients.len());
        fds.push(PollFd::new(&self.listener, PollFlags::IN));
        for (slot, fd) in [
            (Slot::Out, &self.out),
            (Slot::Err, &self.err),
            (Slot::Pty, &self.pty),
        ] {
            if let Some(fd) = fd {
                slots.push(slot);
                fds.push(PollFd::new(fd, PollFlags::IN));
            }
        }
        if let Some(fd) = &self.init_fd {
            slots.push(Slot::Init);
            fds.push(PollFd::new(fd, PollFlags::IN));
        }
        if let Some(fd) = self.health.as_ref().and_then(|h| h.fd.as_ref()) {
            slots.push(Slot::Health);
            fds.push(PollFd::new(fd, PollFlags::IN));
        }
        if let Some(w) = &self.stdin_w
            && !self.stdin_buf.is_empty()
        {
            slots.push(Slot::Stdin);
            fds.push(PollFd::new(w, PollFlags::OUT));
        }
        for (i, c) in self.clients.iter().enumerate() {
            let mut f = PollFlags::IN;
            if !c.out.is_empty() {
                f |= PollFlags::OUT;
            }
            slots.push(Slot::Client(i));
            fds.push(PollFd::new(&c.stream, f));
        }
        let ts = timeout.map(|d| rustix::time::Timespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: i64::from(d.subsec_nanos()),
        });
        let ready = rustix::event::poll(&mut fds, ts.as_ref()).unwrap_or(0);
        let revents: Vec<PollFlags> = fds.iter().map(PollFd::revents).collect();
        drop(fds);
        if ready > 0 {
            let mut drop_clients = Vec::new();
            for (slot, r) in slots.into_iter().zip(revents) {
                if r.is_empty() {
                    continue;
                }
                match slot {
                    Slot::Listener => self.accept_clients(),
                    Slot::Out => self.read_output(Stream::Stdout, false),
                    Slot::Err => self.read_output(Stream::Stderr, false),
                    Slot::Pty => self.read_output(Stream::Stdout, true),
                    Slot::Stdin => self.flush_stdin(),
                    // Reaped below.
                    Slot::Init | Slot::Health => {}
                    Slot::Client(i) => {
                        if !self.serve_client(i, r) {
                            drop_clients.push(i);
                        }
                    }
                }
            }
            for i in drop_clients.into_iter().rev() {
                self.clients.remove(i);
            }
        }
        self.reap();
    }

    fn accept_clients(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            if stream.set_nonblocking(true).is_ok() {
                self.clients.push(Client {
                    stream,
                    decoder: attach::Decoder::default(),
                    out: Vec::new(),
                    hello: None,
                });
            }
        }
    }

    fn read_output(&mut self, stream: Stream, pty: bool) {
        let slot = match (stream, pty) {
            (_, true) => &mut self.pty,
            (Stream::Stdout, false) => &mut self.out,
            (Stream::Stderr, false) => &mut self.err,
        };
        let Some(fd) = slot.as_ref() else { return };
        let mut buf = [0u8; 32 * 1024];
        match rustix::io::read(fd, &mut buf) {
            Ok(0) | Err(rustix::io::Errno::IO) => *slot = None,
            Ok(n) => {
                let data = buf[..n].to_vec();
                let _ = self.log.write(stream, &data);
                let kind = if stream == Stream::Stderr {
                    Kind::Stderr
                } else {
                    Kind::Stdout
                };
                self.broadcast(kind, &data);
            }
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
            Err(_) => *slot = None,
        }
    }

    fn broadcast(&mut self, kind: Kind, data: &[u8]) {
        let frame = attach::frame(kind, data);
        self.clients.retain_mut(|c| {
            if c.hello.is_none() && !matches!(kind, Kind::Exit | Kind::Error) {
                return true;
            }
            c.out.extend_from_slice(&frame);
            c.out.len() <= CLIENT_BUFFER_LIMIT
        });
        for c in &mut self.clients {
            flush_client(c);
        }
    }

    fn flush_stdin(&mut self) {
        let Some(w) = self.stdin_w.as_ref() else {
            self.stdin_buf.clear();
            return;
        };
        match rustix::io::write(w, &self.stdin_buf) {
            Ok(n) => {
                self.stdin_buf.drain(..n);
            }
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
            Err(_) => {
                self.stdin_w = None;
                self.stdin_buf.clear();
            }
        }
    }

    /// Handles one client's readiness; false drops it.
    fn serve_client(&mut self, i: usize, revents: PollFlags) -> bool {
        if revents.contains(PollFlags::OUT) {
            flush_client(&mut self.clients[i]);
        }
        if !revents.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
            return true;
        }
        let mut buf = [0u8; 16 * 1024];
        let n = match self.clients[i].stream.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        };
        let frames = match self.clients[i].decoder.push(&buf[..n]) {
            Ok(f) => f,
            Err(_) => return false,
        };
        for (kind, payload) in frames {
            match kind {
                Kind::Hello => {
                    let hello: Hello = serde_json::from_slice(&payload).unwrap_or_default();
                    self.start_requested |= hello.start;
                    self.clients[i].hello = Some(hello);
                }
                Kind::Stdin => {
                    if let Some(pty) = &self.pty {
                        let _ = rustix::io::write(pty, &payload);
                    } else if self.stdin_w.is_some() {
                        self.stdin_buf.extend_from_slice(&payload);
                        self.flush_stdin();
                    }
                }
                Kind::StdinClose => {
                    if self.pty.is_none() {
                        // Closing stdin once the buffered bytes are out; drop them otherwise.
                        self.flush_stdin();
                        self.stdin_w = None;
                        self.stdin_buf.clear();
                    }
                }
                Kind::Resize if payload.len() == 4 => {
                    if let Some(pty) = &self.pty {
                        let ws = rustix::termios::Winsize {
                            ws_row: u16::from_be_bytes([payload[0], payload[1]]),
                            ws_col: u16::from_be_bytes([payload[2], payload[3]]),
                            ws_xpixel: 0,
                            ws_ypixel: 0,
                        };
                        let _ = rustix::termios::tcsetwinsize(pty, ws);
                    }
                }
                _ => return false,
            }
        }
        true
    }

    /// Sends what clients still have buffered (bounded wait), then closes them.
    fn finish_clients(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        for c in &mut self.clients {
            let _ = c.stream.set_nonblocking(false);
            let _ = c.stream.set_write_timeout(Some(
                deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(10)),
            ));
            let _ = c.stream.write_all(&c.out);
            c.out.clear();
        }
        self.clients.clear();
    }

    fn reap(&mut self) {
        while let Ok(Some((pid, status))) = rustix::process::wait(WaitOptions::NOHANG) {
            let code = status
                .exit_status()
                .or_else(|| status.terminating_signal().map(|s| 128 + s))
                .unwrap_or(255);
            if Some(pid) == self.init {
                self.init_exit = Some(code);
                self.init = None;
                self.init_fd = None;
            } else if self.health.as_ref().is_some_and(|h| h.pid == pid) {
                self.health = None;
                self.health_result(code == 0);
            }
        }
    }

    fn health_tick(&mut self) {
        let now = Instant::now();
        if let Some(h) = &self.health {
            if now >= h.deadline {
                let _ = rustix::process::kill_process(h.pid, rustix::process::Signal::KILL);
            }
            return;
        }
        let Some(check) = self.record.healthcheck.clone() else {
            return;
        };
        if self.next_health.is_some_and(|t| now < t) || self.init.is_none() {
            return;
        }
        self.next_health = Some(now + Duration::from_secs(check.interval_secs.max(1)));
        let args: Vec<String> = match check.test.first().map(String::as_str) {
            Some("CMD") => check.test[1..].to_vec(),
            Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), check.test[1..].join(" ")],
            _ => return,
        };
        let spawned = self
            .runtime_base()
            .arg("exec")
            .arg(&self.record.id)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(child) => {
                if let Some(pid) = Pid::from_raw(child.id() as i32) {
                    self.health = Some(HealthRun {
                        pid,
                        fd: rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
                            .ok(),
                        deadline: now + Duration::from_secs(check.timeout_secs.max(1)),
                    });
                }
            }
            Err(_) => self.health_result(false),
        }
    }

    fn health_result(&mut self, ok: bool) {
        let Some(check) = &self.record.healthcheck else {
            return;
        };
        let in_grace = self.started.elapsed() < Duration::from_secs(check.start_period_secs);
        if ok {
            self.status.health = Some("healthy".into());
            self.status.health_failures = 0;
        } else if !in_grace {
            self.status.health_failures += 1;
            if self.status.health_failures >= check.retries {
                self.status.health = Some("unhealthy".into());
            }
        }
        let _ = self.dir.write_status(&self.status);
    }

    fn record_exit(&mut self, code: i32) {
        let oom = self.oom_killed();
        self.status.state = State::Exited;
        self.status.exit_code = Some(code);
        self.status.oom_killed = oom;
        self.status.finished_at = Some(crate::layout::now());
        self.status.pid = 0;
        self.status.stopped_by_user = self.dir.path().join("stopped-by-user").exists();
        if self.status.health.is_some() {
            self.status.health = Some("unhealthy".into());
        }
        let _ = self.dir.write_status(&self.status);
    }

    fn oom_killed(&self) -> bool {
        (self.hooks.oom_killed)(&self.record.cgroups_path)
    }

    fn should_restart(&self, exit: i32) -> bool {
        if self.status.stopped_by_user {
            return false;
        }
        match self.record.restart {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure { max } => {
                exit != 0 && (max == 0 || self.status.restart_count < max)
            }
        }
    }

    fn cleanup(&mut self) {
        if self.mounted {
            let _ = rustix::mount::unmount(self.dir.rootfs(), rustix::mount::UnmountFlags::DETACH);
            self.mounted = false;
        }
        let _ = fs::remove_file(self.dir.attach_socket());
        if self.record.auto_remove {
            let _ = fs::remove_dir_all(self.dir.path());
            if self.record.rootfs_dir.is_none()
                && let Some(data_dir) = self.dir.path().parent().and_then(Path::parent)
            {
                (self.hooks.release_image)(data_dir, &self.record.id);
            }
        }
    }
}

fn flush_client(c: &mut Client) {
    while !c.out.is_empty() {
        match c.stream.write(&c.out) {
            Ok(0) => break,
            Ok(n) => {
                c.out.drain(..n);
            }
            Err(_) => break,
        }
    }
}

/// The runtime to drive: `drover runtime` of our own binary, or any runc-compatible binary named
/// by `DROVER_RUNTIME` (how the engine is tested against runc and crun too).
pub fn runtime_command(own_binary: &Path) -> Command {
    match std::env::var_os("DROVER_RUNTIME") {
        Some(other) if !other.is_empty() => Command::new(other),
        _ => {
            let mut c = Command::new(own_binary);
            c.arg("runtime");
            c
        }
    }
}

/// Docker's exit codes for a container that could not start: 127 for a missing command, 126 for
/// one that cannot be executed, 125 for everything else.
pub fn exit_code_for_start_error(msg: &str) -> i32 {
    let m = msg.to_ascii_lowercase();
    if m.contains("not found") || m.contains("no such file") {
        127
    } else if m.contains("permission denied") || m.contains("exec format error") {
        126
    } else {
        125
    }
}

/// Receives one file descriptor sent with SCM_RIGHTS (the runtime's `--console-socket`
/// protocol).
pub fn receive_fd(stream: &UnixStream) -> Result<OwnedFd> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut ancillary = RecvAncillaryBuffer::new(&mut space);
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    rustix::net::recvmsg(
        stream.as_fd(),
        &mut iov,
        &mut ancillary,
        RecvFlags::CMSG_CLOEXEC,
    )
    .context("recvmsg on the console socket")?;
    for msg in ancillary.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg
            && let Some(fd) = fds.next()
        {
            return Ok(fd);
        }
    }
    bail!("the runtime sent no terminal over the console socket")
}

/// Sets `lo` up inside the network namespace of `pid` (Docker's `--network none` has a working
/// loopback). Runs on a short-lived thread, because joining a network namespace changes only
/// the calling thread.
fn loopback_up(pid: Pid) -> Result<()> {
    let ns = fs::File::open(format!("/proc/{}/ns/net", pid.as_raw_nonzero()))
        .context("opening the container's network namespace")?;
    std::thread::spawn(move || -> Result<()> {
        rustix::thread::move_into_link_name_space(
            ns.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .context("joining the network namespace")?;
        set_link_up(c"lo")
    })
    .join()
    .map_err(|_| anyhow!("the loopback thread panicked"))?
}

#[allow(unsafe_code)]
fn set_link_up(name: &std::ffi::CStr) -> Result<()> {
    let sock = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        None,
    )
    .context("opening a socket for SIOCSIFFLAGS")?;
    // SAFETY: `ifreq` is plain old data, zeroed, and the name is copied within its bounds (NUL
    // kept); the ioctls read and write only that struct, which outlives the calls.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req
            .ifr_name
            .iter_mut()
            .zip(name.to_bytes().iter().take(libc::IFNAMSIZ - 1))
        {
            *dst = *src as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(std::io::Error::last_os_error()).context("SIOCGIFFLAGS on lo");
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(std::io::Error::last_os_error()).context("SIOCSIFFLAGS on lo");
        }
    }
    Ok(())
}

/// Spawns a supervisor for the container in `dir` and waits for its first report. Returns the
/// container's pid.
pub fn spawn(dir: &Path, runtime_root: &Path, wait_attach: bool) -> Result<i32> {
    let exe = std::env::current_exe().context("finding our own binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("supervise")
        .arg(dir)
        .arg("--runtime-root")
        .arg(runtime_root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if wait_attach {
        cmd.arg("--wait-attach");
    }
    let mut child = cmd.spawn().context("starting the container's supervisor")?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let mut r = std::io::BufReader::new(out);
        std::io::BufRead::read_line(&mut r, &mut line)
            .context("reading the supervisor's report")?;
    }
    let line = line.trim();
    if let Some(pid) = line.strip_prefix("ok ") {
        // The supervisor lives on in its own session; it is no longer our business to wait for
        // it, but a zombie must not linger while we run: reap it if it already exited.
        let _ = child.try_wait();
        return Ok(pid.parse().unwrap_or(0));
    }
    let _ = child.wait();
    match line.strip_prefix("error: ") {
        Some(msg) => bail!("{msg}"),
        None => bail!("the supervisor ended without a report"),
    }
}
