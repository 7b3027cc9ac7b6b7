//! The stand-in images behave like the originals where the seed's manifests rely on it, checked
//! without a container runtime: each image is unpacked and its Entrypoint+Cmd run in a chroot
//! inside a test network namespace (fresh PID, mount and UTS namespaces). Needs root.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use drover_testing::chroot::{ChrootProcess, RunSpec, chroot_exec};
use drover_testing::layout::Platform;
use drover_testing::{NetNs, fixtures, require_peers, unpack};
use serde_json::Value;

const PEERS: &[&str] = &["ip", "unshare", "setpriv", "busybox", "timeout"];

/// [`PEERS`] plus the host files the image `reference` is made of.
fn peers_for(reference: &str) -> Vec<&'static str> {
    let mut peers = PEERS.to_vec();
    peers.extend_from_slice(fixtures::find(reference).unwrap().host_files);
    peers
}

struct Unpacked {
    tmp: tempfile::TempDir,
    root: PathBuf,
    config: Value,
}

fn unpacked(reference: &str) -> Unpacked {
    let tmp = tempfile::Builder::new()
        .prefix("drover-test-image-")
        .tempdir()
        .unwrap();
    let f = fixtures::find(reference).unwrap();
    let layout = tmp.path().join("layout");
    f.write_layout(&layout).unwrap();
    let root = tmp.path().join("root");
    unpack::unpack(&layout, f.tag, &root).unwrap();
    let config = unpack::config_for(&layout, f.tag, &Platform::host()).unwrap();
    Unpacked { tmp, root, config }
}

impl Unpacked {
    fn spawn(&self, ns: &NetNs, spec: &RunSpec) -> ChrootProcess {
        ChrootProcess::spawn(ns, &self.root, spec, &self.tmp.path().join("out.log")).unwrap()
    }
}

/// `GET http://127.0.0.1:<port><path>` from inside `ns`; the body, or the error output.
fn http_get(ns: &NetNs, port: u16, path: &str) -> Result<String, String> {
    // Not `wget -T`: Debian's busybox 1.35 wget crashes with it.
    let out = ns
        .command("timeout")
        .args(["5", "busybox", "wget", "-q", "-O", "-"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn nginx_serves_root_and_healthz_on_port_80_and_stops_cleanly_on_sigquit() {
    if require_peers("nginx_serves_root_and_healthz", PEERS, true).is_err() {
        return;
    }
    let image = unpacked("nginx:1.27-alpine");
    let ns = NetNs::create("nginx").unwrap();
    let mut proc = image.spawn(&ns, &RunSpec::from_config(&image.config));
    let health = wait_for(
        "nginx stand-in to answer /healthz",
        Duration::from_secs(20),
        || http_get(&ns, 80, "/healthz").ok(),
    );
    assert_eq!(health, "ok\n");
    let index = http_get(&ns, 80, "/").unwrap();
    assert!(index.contains("Welcome to nginx!"), "{index}");
    // Negative control: a path that does not exist is a 404, not a page.
    let missing = http_get(&ns, 80, "/no-such-page").unwrap_err();
    assert!(missing.contains("404"), "{missing}");
    // The image's StopSignal is SIGQUIT; like nginx, it ends the server with status 0.
    assert_eq!(image.config["config"]["StopSignal"], "SIGQUIT");
    proc.signal("QUIT").unwrap();
    let status = proc
        .wait_timeout(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("nginx stand-in ignored SIGQUIT; log:\n{}", proc.log()));
    assert!(status.success(), "{status:?}; log:\n{}", proc.log());
    assert!(
        http_get(&ns, 80, "/healthz").is_err(),
        "still serving after SIGQUIT"
    );
    // Requests are logged (httpd -vv), for `kubectl logs`.
    assert!(proc.log().contains("url:/healthz"), "{}", proc.log());
}

#[test]
fn web_versions_answer_with_their_version_and_hostname_and_stop_on_sigterm() {
    if require_peers("web_versions_answer_with_their_version", PEERS, true).is_err() {
        return;
    }
    for version in ["v1.4.2", "v1.4.3"] {
        let image = unpacked(&format!("ghcr.io/myorg/web:{version}"));
        let ns = NetNs::create("web").unwrap();
        let mut spec = RunSpec::from_config(&image.config);
        spec.hostname = "web-7d4b9c-abcde".into();
        let mut proc = image.spawn(&ns, &spec);
        let body = wait_for("web stand-in to answer /", Duration::from_secs(20), || {
            http_get(&ns, 80, "/").ok()
        });
        assert_eq!(body, format!("web {version} host=web-7d4b9c-abcde\n"));
        assert_eq!(http_get(&ns, 80, "/healthz").unwrap(), "ok\n");
        assert_eq!(
            http_get(&ns, 80, "/version").unwrap(),
            format!("{version}\n")
        );
        proc.signal("TERM").unwrap();
        let status = proc
            .wait_timeout(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("web ignored SIGTERM; log:\n{}", proc.log()));
        assert!(status.success(), "{status:?}");
    }
}

#[test]
fn redis_answers_ping_on_6379_and_runs_as_user_redis() {
    if require_peers("redis_answers_ping", &peers_for("redis:7-alpine"), true).is_err() {
        return;
    }
    let image = unpacked("redis:7-alpine");
    let ns = NetNs::create("redis").unwrap();
    let spec = RunSpec::from_config(&image.config);
    let proc = image.spawn(&ns, &spec);
    let cli = |args: &[&str]| {
        let mut argv = vec!["redis-cli", "-h", "127.0.0.1", "-p", "6379"];
        argv.extend_from_slice(args);
        chroot_exec(&ns, &image.root, &spec.env, &argv, Duration::from_secs(10)).unwrap()
    };
    wait_for(
        "redis-server to answer PING",
        Duration::from_secs(20),
        || {
            let out = cli(&["ping"]);
            (String::from_utf8_lossy(&out.stdout).trim() == "PONG").then_some(())
        },
    );
    let set = cli(&["set", "greeting", "hello"]);
    assert_eq!(String::from_utf8_lossy(&set.stdout).trim(), "OK");
    let get = cli(&["get", "greeting"]);
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "hello");
    // Protected mode is off like in the official image (it would refuse non-loopback clients).
    let mode = cli(&["config", "get", "protected-mode"]);
    assert!(
        String::from_utf8_lossy(&mode.stdout).contains("no"),
        "{mode:?}"
    );
    // The entrypoint dropped root: a SAVE writes /data/dump.rdb as uid 999.
    let save = cli(&["save"]);
    assert_eq!(
        String::from_utf8_lossy(&save.stdout).trim(),
        "OK",
        "{save:?}"
    );
    use std::os::unix::fs::MetadataExt;
    let dump = std::fs::metadata(image.root.join("data/dump.rdb")).unwrap();
    assert_eq!(dump.uid(), 999);
    drop(proc);
    // Negative control: with the server gone, PING fails.
    let out = cli(&["ping"]);
    assert_ne!(String::from_utf8_lossy(&out.stdout).trim(), "PONG");
}

#[test]
fn postgres_initialises_with_the_official_env_and_answers_pg_isready() {
    if require_peers(
        "postgres_initialises",
        &peers_for("postgres:16-alpine"),
        true,
    )
    .is_err()
    {
        return;
    }
    let image = unpacked("postgres:16-alpine");
    let ns = NetNs::create("pg").unwrap();
    let mut spec = RunSpec::from_config(&image.config);
    spec.set_env("POSTGRES_PASSWORD", "dev")
        .set_env("POSTGRES_DB", "myapp");
    let mut proc = image.spawn(&ns, &spec);
    let run = |env: &[String], argv: &[&str]| {
        chroot_exec(&ns, &image.root, env, argv, Duration::from_secs(20)).unwrap()
    };
    // Wait on TCP: during initialisation the entrypoint's temporary server answers on the
    // unix socket only (as in the official image).
    let tcp_ready = [
        "pg_isready",
        "-h",
        "127.0.0.1",
        "-p",
        "5432",
        "-U",
        "postgres",
    ];
    wait_for(
        "postgres to accept TCP connections",
        Duration::from_secs(90),
        || {
            if let Some(status) = proc.wait_timeout(Duration::ZERO) {
                panic!("postgres exited with {status:?}; log:\n{}", proc.log());
            }
            run(&spec.env, &tcp_ready).status.success().then_some(())
        },
    );
    // The seed's compose health check: `pg_isready -U postgres` (unix socket).
    let socket = run(&spec.env, &["pg_isready", "-U", "postgres"]);
    assert!(socket.status.success(), "{socket:?}");
    let mut with_password = spec.env.clone();
    with_password.push("PGPASSWORD=dev".into());
    let psql = run(
        &with_password,
        &[
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "myapp",
            "-tAc",
            "select current_database()",
        ],
    );
    assert!(psql.status.success(), "{psql:?}\nlog:\n{}", proc.log());
    assert_eq!(String::from_utf8_lossy(&psql.stdout).trim(), "myapp");
    // Negative control: a wrong password is refused over TCP.
    let mut wrong = spec.env.clone();
    wrong.push("PGPASSWORD=wrong".into());
    let bad = run(
        &wrong,
        &[
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "myapp",
            "-c",
            "select 1",
        ],
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("password authentication failed"),
        "{bad:?}"
    );
    // The data directory belongs to postgres (uid 70).
    use std::os::unix::fs::MetadataExt;
    let pgdata = std::fs::metadata(image.root.join("var/lib/postgresql/data/PG_VERSION")).unwrap();
    assert_eq!(pgdata.uid(), 70);
    // StopSignal SIGINT: fast shutdown, status 0.
    proc.signal("INT").unwrap();
    let status = proc
        .wait_timeout(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("postgres ignored SIGINT; log:\n{}", proc.log()));
    assert!(status.success(), "{status:?}\n{}", proc.log());
}

#[test]
fn postgres_without_a_password_refuses_to_initialise_like_the_official_image() {
    if require_peers(
        "postgres_without_a_password",
        &peers_for("postgres:16-alpine"),
        true,
    )
    .is_err()
    {
        return;
    }
    let image = unpacked("postgres:16-alpine");
    let ns = NetNs::create("pg").unwrap();
    let mut proc = image.spawn(&ns, &RunSpec::from_config(&image.config));
    let status = proc
        .wait_timeout(Duration::from_secs(30))
        .expect("entrypoint without POSTGRES_PASSWORD should exit");
    assert_eq!(status.code(), Some(1), "{}", proc.log());
    assert!(proc.log().contains("POSTGRES_PASSWORD"), "{}", proc.log());
    assert!(
        !image
            .root
            .join("var/lib/postgresql/data/PG_VERSION")
            .exists()
    );
}

#[test]
fn the_config_fixture_runs_its_entrypoint_and_cmd_as_its_user_in_its_working_dir_with_its_env() {
    if require_peers("the_config_fixture_runs", PEERS, true).is_err() {
        return;
    }
    let image = unpacked("drover-fixtures/config:v1");
    let ns = NetNs::create("cfg").unwrap();
    let mut proc = image.spawn(&ns, &RunSpec::from_config(&image.config));
    let status = proc
        .wait_timeout(Duration::from_secs(20))
        .expect("config fixture should exit");
    assert!(status.success(), "{}", proc.log());
    // User www-data: uid 33, primary group 33, supplementary groups adm (4) and users (100).
    assert_eq!(
        proc.log(),
        "hello from /srv/app as www-data groups 33 4 100\n"
    );
}

#[test]
fn a_static_binary_copied_into_distroless_runs_there_and_no_shell_does() {
    if require_peers(
        "a_static_binary_copied_into_distroless",
        &peers_for("gcr.io/distroless/static-debian12"),
        true,
    )
    .is_err()
    {
        return;
    }
    // What the seed's Go Dockerfile does: COPY --from=builder /out/server /server; here the
    // static binary is busybox, run as the image's User (0).
    let image = unpacked("gcr.io/distroless/static-debian12");
    let busybox = drover_testing::rootfs::host_busybox().unwrap();
    std::fs::copy(&busybox, image.root.join("busybox")).unwrap();
    let ns = NetNs::create("distroless").unwrap();
    let mut spec = RunSpec::from_config(&image.config);
    spec.argv = vec!["/busybox".into(), "cat".into(), "/etc/passwd".into()];
    let mut proc = image.spawn(&ns, &spec);
    let status = proc
        .wait_timeout(Duration::from_secs(20))
        .expect("/busybox should exit");
    assert!(status.success(), "{}", proc.log());
    assert!(
        proc.log().contains("nonroot:x:65532:65532:"),
        "{}",
        proc.log()
    );
    // Negative control: there is no /bin/sh to run.
    spec.argv = vec!["/bin/sh".into(), "-c".into(), "true".into()];
    let mut proc = image.spawn(&ns, &spec);
    let status = proc
        .wait_timeout(Duration::from_secs(20))
        .expect("should fail fast");
    assert!(
        !status.success(),
        "a shell ran in distroless: {}",
        proc.log()
    );
}

fn netns_pids(ns: &NetNs) -> String {
    let out = std::process::Command::new("ip")
        .args(["netns", "pids", ns.name()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn dropping_a_chroot_process_that_changed_user_kills_everything_in_it() {
    if require_peers("dropping_a_chroot_process", PEERS, true).is_err() {
        return;
    }
    let image = unpacked("drover-fixtures/config:v1");
    let ns = NetNs::create("kill").unwrap();
    let mut spec = RunSpec::from_config(&image.config);
    // www-data (from the config) runs a shell with a background child: two processes whose
    // parent-death signal was cleared by the user change.
    spec.argv = vec!["sh".into(), "-c".into(), "sleep 600 & sleep 600".into()];
    let proc = image.spawn(&ns, &spec);
    let pids = wait_for(
        "two processes in the namespace",
        Duration::from_secs(10),
        || {
            let pids = netns_pids(&ns);
            (pids.lines().count() >= 3).then_some(pids)
        },
    );
    let init = proc.init_pid().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    assert!(status.contains("Uid:\t33\t"), "{status}");
    drop(proc);
    // Everything that ran in the namespace is gone (a few ms for the kernel to reap).
    wait_for(
        "the namespace's processes to die",
        Duration::from_secs(5),
        || netns_pids(&ns).is_empty().then_some(()),
    );
    assert!(!pids.is_empty());
}

#[test]
fn a_chroot_exec_that_outlives_its_timeout_is_killed_with_its_children() {
    if require_peers("a_chroot_exec_that_outlives_its_timeout", PEERS, true).is_err() {
        return;
    }
    let image = unpacked("busybox");
    let ns = NetNs::create("timeout").unwrap();
    let env = vec![fixtures::PATH_ENV.to_string()];
    let err = chroot_exec(
        &ns,
        &image.root,
        &env,
        &["sh", "-c", "sleep 600 & sleep 600"],
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert!(err.to_string().contains("still running"), "{err}");
    wait_for(
        "the namespace's processes to die",
        Duration::from_secs(5),
        || netns_pids(&ns).is_empty().then_some(()),
    );
    // Control: a quick command succeeds with its output.
    let out = chroot_exec(
        &ns,
        &image.root,
        &env,
        &["echo", "hi"],
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
}
