//! The Python `kubernetes` client (an independent, generated client that speaks JSON) against
//! the real `drover` binary: ConfigMap and custom-resource CRUD, watch, every patch type, and
//! an informer-style list/watch loop that survives a restart and a forced 410.
//!
//! Each scenario is a script under `tests/python/`; it raises on the first failed check and
//! prints a JSON summary as its last stdout line, which the test asserts on.
mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Server;
use serde_json::Value;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

fn command(py: &Path, s: &Server, name: &str) -> Command {
    let mut cmd = Command::new(py);
    cmd.arg(script(name))
        .arg(s.kubeconfig())
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs a script to completion and returns its JSON summary (the last stdout line).
fn run_script(py: &Path, s: &Server, name: &str, timeout: Duration) -> Value {
    let child = command(py, s, name)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("run {py:?} {name}: {e}"));
    let out = common::wait_with_timeout(
        child,
        timeout,
        &format!("python {name} (a watch that never ends?)"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python {name} failed ({}):\nstdout: {stdout}\nstderr: {stderr}\nserver log tail:\n{}",
        out.status,
        common::tail(&s.log(), 40)
    );
    summary(&stdout, name)
}

fn summary(stdout: &str, name: &str) -> Value {
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| {
        panic!("python {name}: last line is not a JSON summary ({e}): {stdout}")
    })
}

#[test]
fn python_client_configmap_create_list_watch_patch_apply_delete() {
    let py = require_python_kubernetes!();
    let s = Server::start();
    let out = run_script(&py, &s, "configmap_crud.py", Duration::from_secs(120));
    assert_eq!(out["ok"], true, "{out}");
    assert!(
        out["events"].as_u64().unwrap_or(0) >= 10,
        "watch saw too few events: {out}"
    );
}

#[test]
fn python_client_custom_resource_crd_established_then_crud_watch_patch_delete() {
    let py = require_python_kubernetes!();
    let s = Server::start();
    let out = run_script(&py, &s, "custom_resource.py", Duration::from_secs(120));
    assert_eq!(out["ok"], true, "{out}");
}

/// Runs `watch_resilience.py` against a server with a tiny history window. The script asks
/// for restarts on stdout (`{"request": "restart"}`) and waits for `restarted` on stdin.
/// Returns the exit status, stdout lines, stderr, and how many restarts it asked for.
fn run_watch_resilience(
    py: &Path,
    env: &[(&str, &str)],
) -> (ExitStatus, Vec<String>, String, usize, Server) {
    let mut s = Server::start_with(&[
        "--datastore-history-retention",
        "1s",
        "--datastore-max-history",
        "50",
    ]);
    let mut child = command(py, &s, "watch_resilience.py")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .spawn()
        .expect("run watch_resilience.py");
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let err_thread =
        std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());

    let deadline = Instant::now() + Duration::from_secs(240);
    let mut restarts = 0;
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                if v["request"] == "restart" {
                    s.restart();
                    restarts += 1;
                    writeln!(stdin, "restarted").expect("tell the script the server is back");
                    stdin.flush().expect("flush");
                }
                lines.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
                let _ = child.wait();
                panic!(
                    "watch_resilience.py did not finish within 240s after {restarts} restarts (informer stuck \
                     reconnecting, or a watch that ignores timeoutSeconds?); stdout so far: {lines:?}\nstderr:\n{}\nserver log tail:\n{}",
                    common::tail(&err_thread.join().unwrap_or_default(), 40),
                    common::tail(&s.log(), 40)
                );
            }
        }
    }
    let status = child.wait().expect("wait python");
    let stderr = err_thread.join().unwrap_or_default();
    (status, lines, stderr, restarts, s)
}

#[test]
fn python_watch_loop_survives_restart_and_forced_410_and_equals_a_fresh_list() {
    let py = require_python_kubernetes!();
    let (status, lines, stderr, restarts, s) = run_watch_resilience(&py, &[]);
    assert!(
        status.success(),
        "watch_resilience.py failed ({status}):\nstdout: {lines:?}\nstderr:\n{}\nserver log tail:\n{}",
        common::tail(&stderr, 60),
        common::tail(&s.log(), 40)
    );
    assert_eq!(
        restarts, 2,
        "the script asks for exactly two restarts: {lines:?}"
    );
    let out = summary(&lines.join("\n"), "watch_resilience.py");
    eprintln!("watch_resilience.py summary: {out}");
    let stats = &out["stats"];
    assert_eq!(out["ok"], true, "{out}");
    assert!(
        stats["gone"].as_u64().unwrap_or(0) >= 1,
        "no 410 was observed, so the relist path is unproven: {out}"
    );
    assert!(
        stats["lists"].as_u64().unwrap_or(0) >= 2,
        "a 410 must cause a relist: {out}"
    );
    assert!(
        stats["conn_errors"].as_u64().unwrap_or(0) + stats["watches"].as_u64().unwrap_or(0) >= 3,
        "the loop should have reconnected across two restarts: {out}"
    );
}

/// Negative control for the check above: a loop that retries the same resourceVersion after
/// a 410 instead of relisting never sees the later writes, and the convergence check says so.
#[test]
fn python_watch_check_flags_a_loop_that_ignores_410() {
    let py = require_python_kubernetes!();
    let (status, lines, stderr, _, _s) =
        run_watch_resilience(&py, &[("DROVER_E2E_BROKEN_INFORMER", "ignore-410")]);
    assert!(
        !status.success(),
        "the broken informer passed, so the check proves nothing: {lines:?}"
    );
    assert!(
        stderr.contains("not converged after a forced 410") && stderr.contains("informer: 410"),
        "the broken informer should fail the convergence check after a 410:\n{}",
        common::tail(&stderr, 30)
    );
}
