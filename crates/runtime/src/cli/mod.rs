//! runc's command line: `drover runtime [global flags] <verb> [flags] <id> [args]`.
//!
//! Verbs and flags follow runc 1.1 (what conmon and podman call), parsed Go-style
//! (`flags`). Exit codes: 0 on success, 1 on any error, and for a foreground `run`/`exec` the
//! program's own exit code (128+N when killed by signal N). An error goes to stderr and, with
//! `--log FILE`, to that file too; `--log-format json` writes
//! `{"level":"error","msg":"…","time":"…"}` lines, which podman reads back.

pub(crate) mod flags;
mod template;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::SystemTime;

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};

use crate::container::{self, CreateOpts};
use crate::state::{self, Root};
use flags::{Flag, opt, switch};

const GLOBAL: &[Flag] = &[
    opt(&["root"]),
    opt(&["log"]),
    opt(&["log-format"]),
    opt(&["log-level"]),
    opt(&["criu"]),
    opt(&["rootless"]),
    switch(&["debug"]),
    switch(&["systemd-cgroup"]),
    switch(&["help", "h"]),
    switch(&["version", "v"]),
];

const CREATE: &[Flag] = &[
    opt(&["bundle", "b"]),
    opt(&["console-socket"]),
    opt(&["pid-file"]),
    opt(&["preserve-fds"]),
    switch(&["no-pivot"]),
    switch(&["no-new-keyring"]),
    switch(&["help", "h"]),
];

const RUN: &[Flag] = &[
    opt(&["bundle", "b"]),
    opt(&["console-socket"]),
    opt(&["pid-file"]),
    opt(&["preserve-fds"]),
    switch(&["detach", "d"]),
    switch(&["no-subreaper"]),
    switch(&["no-pivot"]),
    switch(&["no-new-keyring"]),
    switch(&["help", "h"]),
];

const EXEC: &[Flag] = &[
    opt(&["console-socket"]),
    opt(&["cwd"]),
    opt(&["env", "e"]),
    opt(&["user", "u"]),
    opt(&["additional-gids", "g"]),
    opt(&["process", "p"]),
    opt(&["pid-file"]),
    opt(&["cap", "c"]),
    opt(&["preserve-fds"]),
    opt(&["process-label"]),
    opt(&["apparmor"]),
    opt(&["cgroup"]),
    switch(&["tty", "t"]),
    switch(&["detach", "d"]),
    switch(&["no-new-privs"]),
    switch(&["ignore-paused"]),
    switch(&["help", "h"]),
];

const USAGE: &str = "\
drover runtime: Drover's runc-compatible OCI runtime

USAGE:
   drover runtime [global options] command [command options] [arguments...]

COMMANDS:
   create    create a container (it waits for `start`)
   start     execute the user defined process in a created container
   run       create and run a container
   exec      execute a new process inside the container
   state     output the state of a container
   kill      send a signal (default: SIGTERM) to the container's init process
   delete    delete a stopped (or, with --force, any) container
   ps        display the processes running inside a container
   list      list containers started with the given root
   spec      create a new specification file
   features  show the enabled features

GLOBAL OPTIONS:
   --root value        root directory for container state (default: \"/run/drover-runtime\")
   --log value         also write errors to this file
   --log-format value  'text' (default) or 'json'
   --debug             also print seccomp notes (unknown syscalls skipped)
   --systemd-cgroup    not supported (use cgroupfs paths)
   --help, -h          show help
   --version, -v       print the version
";

/// `--debug`: also print the notes that runc keeps quiet about (seccomp syscalls unknown on this
/// architecture, foreign ABIs left out of the filter).
static DEBUG: AtomicBool = AtomicBool::new(false);

/// Whether `--debug` was given.
pub(crate) fn debug() -> bool {
    DEBUG.load(Ordering::Relaxed)
}

/// Where errors go.
#[derive(Clone, Debug)]
struct Log {
    file: Option<PathBuf>,
    json: bool,
}

/// The log settings of this invocation, for [`warn`].
static LOG: std::sync::OnceLock<Log> = std::sync::OnceLock::new();

/// A warning: to the `--log` file when there is one (podman shows the runtime's stderr to its
/// users, and runc is quiet there), else to stderr.
pub(crate) fn warn(msg: &str) {
    match LOG.get() {
        Some(log) if log.file.is_some() => log.write("warning", msg, false),
        Some(log) => log.write("warning", msg, true),
        None => eprintln!("warning: {msg}"),
    }
}

impl Log {
    fn error(&self, msg: &str) {
        self.write("error", msg, true);
    }

    fn write(&self, level: &str, msg: &str, stderr: bool) {
        let time = state::rfc3339(SystemTime::now());
        let line = if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            format!("time=\"{time}\" level={level} msg={msg:?}")
        };
        if stderr {
            match (self.json, level) {
                (true, _) => eprintln!("{line}"),
                (false, "error") => eprintln!("{msg}"),
                (false, _) => eprintln!("{level}: {msg}"),
            }
        }
        if let Some(path) = &self.file {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path);
            if let Ok(mut f) = f {
                let _ = writeln!(f, "{line}");
            }
        }
    }
}

/// Runs one runtime command and returns the process exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let args: Vec<String> = match args.into_iter().map(OsString::into_string).collect() {
        Ok(a) => a,
        Err(bad) => {
            eprintln!("drover runtime: argument {bad:?} is not valid UTF-8");
            return 1;
        }
    };
    let mut log = Log {
        file: None,
        json: false,
    };
    match dispatch(&args, &mut log) {
        Ok(code) => code,
        Err(e) => {
            log.error(&format!("{e:#}"));
            1
        }
    }
}

fn dispatch(args: &[String], log: &mut Log) -> anyhow::Result<i32> {
    let g = flags::parse(args, GLOBAL)?;
    log.file = g.get("log").map(PathBuf::from);
    log.json = match g.get("log-format").unwrap_or("text") {
        "json" => true,
        "text" => false,
        other => bail!("--log-format: unknown format {other:?} (use text or json)"),
    };
    DEBUG.store(g.on("debug"), Ordering::Relaxed);
    let _ = LOG.set(log.clone());
    if g.on("version") {
        println!("drover-runtime version {}", env!("CARGO_PKG_VERSION"));
        println!("spec: 1.2.0");
        return Ok(0);
    }
    if g.on("systemd-cgroup") {
        bail!("--systemd-cgroup: the systemd cgroup driver is not supported; use cgroupfs paths");
    }
    let root = Root::new(g.get("root").unwrap_or(state::DEFAULT_ROOT));
    let Some((verb, rest)) = g.rest.split_first() else {
        print!("{USAGE}");
        return Ok(if g.on("help") { 0 } else { 1 });
    };
    if g.on("help") || verb == "help" {
        print!("{USAGE}");
        return Ok(0);
    }
    match verb.as_str() {
        "create" => {
            let f = flags::parse(rest, CREATE)?;
            let id = one_id(&f.rest, "create")?;
            container::create(&root, id, &create_opts(&f)?)?;
            Ok(0)
        }
        "run" => {
            let f = flags::parse(rest, RUN)?;
            let id = one_id(&f.rest, "run")?;
            container::run(&root, id, &create_opts(&f)?, f.on("detach"))
        }
        "start" => {
            let f = flags::parse(rest, &[switch(&["help", "h"])])?;
            container::start(&root, one_id(&f.rest, "start")?)?;
            Ok(0)
        }
        "state" => {
            let f = flags::parse(rest, &[switch(&["help", "h"])])?;
            let v = container::state(&root, one_id(&f.rest, "state")?)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(0)
        }
        "kill" => {
            let f = flags::parse(rest, &[switch(&["all", "a"]), switch(&["help", "h"])])?;
            let (id, sig) = match f.rest.as_slice() {
                [id] => (id, libc::SIGTERM),
                [id, sig] => (id, parse_signal(sig)?),
                _ => bail!("kill: usage: kill [--all] <container-id> [signal]"),
            };
            container::kill(&root, id, sig, f.on("all"))?;
            Ok(0)
        }
        "delete" => {
            let f = flags::parse(rest, &[switch(&["force", "f"]), switch(&["help", "h"])])?;
            container::delete(&root, one_id(&f.rest, "delete")?, f.on("force"))?;
            Ok(0)
        }
        "exec" => {
            let f = flags::parse(rest, EXEC)?;
            crate::exec::main(&root, &f)
        }
        "ps" => {
            let f = flags::parse(rest, &[opt(&["format", "f"]), switch(&["help", "h"])])?;
            let Some((id, ps_args)) = f.rest.split_first() else {
                bail!("ps: usage: ps [--format table|json] <container-id> [ps options]");
            };
            ps(&root, id, f.get("format").unwrap_or("table"), ps_args)
        }
        "list" => {
            let f = flags::parse(
                rest,
                &[
                    opt(&["format", "f"]),
                    switch(&["quiet", "q"]),
                    switch(&["help", "h"]),
                ],
            )?;
            list(&root, f.get("format").unwrap_or("table"), f.on("quiet"))
        }
        "spec" => {
            let f = flags::parse(
                rest,
                &[
                    opt(&["bundle", "b"]),
                    switch(&["rootless"]),
                    switch(&["help", "h"]),
                ],
            )?;
            let dir = PathBuf::from(f.get("bundle").unwrap_or("."));
            template::write(&dir, f.on("rootless"))?;
            Ok(0)
        }
        "features" => {
            println!("{}", serde_json::to_string_pretty(&template::features())?);
            Ok(0)
        }
        other => bail!("unknown command {other:?} (see drover runtime --help)"),
    }
}

fn one_id<'a>(rest: &'a [String], verb: &str) -> anyhow::Result<&'a str> {
    match rest {
        [id] => Ok(id),
        [] => bail!("{verb}: missing the container id (usage: {verb} [options] <container-id>)"),
        _ => bail!("{verb}: expected exactly one container id, got {rest:?}"),
    }
}

fn create_opts(f: &flags::Parsed) -> anyhow::Result<CreateOpts> {
    Ok(CreateOpts {
        bundle: PathBuf::from(f.get("bundle").unwrap_or(".")),
        pid_file: f.get("pid-file").map(PathBuf::from),
        console_socket: f.get("console-socket").map(PathBuf::from),
        no_pivot: f.on("no-pivot"),
        no_new_keyring: f.on("no-new-keyring"),
        preserve_fds: parse_preserve_fds(f.get("preserve-fds"))?,
    })
}

/// `--preserve-fds N`.
pub(crate) fn parse_preserve_fds(v: Option<&str>) -> anyhow::Result<u32> {
    match v {
        None => Ok(0),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| *n < 65_536)
            .with_context(|| format!("--preserve-fds: {v:?} is not a number of file descriptors")),
    }
}

const SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// A signal by number (`9`), name (`KILL`, `SIGKILL`, any case) or `RTMIN+N`.
pub(crate) fn parse_signal(s: &str) -> anyhow::Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=libc::SIGRTMAX()).contains(&n) {
            return Ok(n);
        }
        bail!("invalid signal number {n}");
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some((_, n)) = SIGNALS.iter().find(|(k, _)| *k == name) {
        return Ok(*n);
    }
    if let Some(off) = name
        .strip_prefix("RTMIN+")
        .and_then(|o| o.parse::<i32>().ok())
    {
        let n = libc::SIGRTMIN() + off;
        if n <= libc::SIGRTMAX() {
            return Ok(n);
        }
    }
    if name == "RTMIN" {
        return Ok(libc::SIGRTMIN());
    }
    bail!("unknown signal {s:?}")
}

fn list(root: &Root, format: &str, quiet: bool) -> anyhow::Result<i32> {
    let mut rows = Vec::new();
    for id in root.list()? {
        if let Ok(v) = container::state(root, &id) {
            rows.push(v);
        }
    }
    if quiet {
        for r in &rows {
            println!("{}", r["id"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    match format {
        "json" => println!("{}", serde_json::Value::Array(rows)),
        "table" => {
            let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
            let mut table =
                vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
            for r in &rows {
                table.push([
                    s(&r["id"]),
                    r["pid"].to_string(),
                    s(&r["status"]),
                    s(&r["bundle"]),
                    s(&r["created"]),
                    s(&r["owner"]),
                ]);
            }
            let widths: Vec<usize> = (0..6)
                .map(|c| table.iter().map(|r| r[c].len()).max().unwrap_or(0))
                .collect();
            for r in &table {
                let line: Vec<String> = r
                    .iter()
                    .zip(&widths)
                    .map(|(v, w)| format!("{v:<w$}"))
                    .collect();
                println!("{}", line.join("   ").trim_end());
            }
        }
        other => bail!("--format: unknown format {other:?} (use table or json)"),
    }
    Ok(0)
}

fn ps(root: &Root, id: &str, format: &str, ps_args: &[String]) -> anyhow::Result<i32> {
    let (rec, status) = root.load_record(id)?;
    if status == state::Status::Stopped {
        bail!("container {id} is not running");
    }
    let pids = crate::exec::container_pids(&rec)?;
    match format {
        "json" => {
            println!("{}", serde_json::to_string(&pids)?);
            Ok(0)
        }
        "table" => {
            let args: Vec<String> = if ps_args.is_empty() {
                vec!["-ef".into()]
            } else {
                ps_args.to_vec()
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .context("running ps")?;
            if !out.status.success() {
                bail!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .context("ps output has no PID column")?;
            println!("{header}");
            for l in lines {
                let p = l
                    .split_whitespace()
                    .nth(col)
                    .and_then(|p| p.parse::<i32>().ok());
                if p.is_some_and(|p| pids.contains(&p)) {
                    println!("{l}");
                }
            }
            Ok(0)
        }
        other => bail!("--format: unknown format {other:?} (use table or json)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_and_number() {
        assert_eq!(parse_signal("9").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("KILL").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("SIGRTMIN+2").unwrap(), libc::SIGRTMIN() + 2);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("999").is_err());
    }

    #[test]
    fn preserve_fds_must_be_a_number() {
        assert_eq!(parse_preserve_fds(Some("2")).unwrap(), 2);
        assert_eq!(parse_preserve_fds(None).unwrap(), 0);
        assert!(
            parse_preserve_fds(Some("x"))
                .unwrap_err()
                .to_string()
                .starts_with("--preserve-fds:")
        );
    }

    #[test]
    fn errors_exit_1_and_version_exits_0() {
        assert_eq!(main(vec!["--version".into()]), 0);
        assert_eq!(main(vec!["--nope".into()]), 1);
        assert_eq!(
            main(vec!["--systemd-cgroup".into(), "state".into(), "x".into()]),
            1
        );
    }

    #[test]
    fn json_log_lines_go_to_the_log_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log.json");
        let root = dir.path().join("root");
        let code = main(
            [
                "--root",
                root.to_str().unwrap(),
                "--log",
                log.to_str().unwrap(),
                "--log-format",
                "json",
                "state",
                "nope",
            ]
            .iter()
            .map(OsString::from)
            .collect(),
        );
        assert_eq!(code, 1);
        let line: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim()).unwrap();
        assert_eq!(line["level"], "error");
        assert_eq!(line["msg"], "container \"nope\" does not exist");
        assert!(line["time"].as_str().unwrap().ends_with('Z'));
    }
}
