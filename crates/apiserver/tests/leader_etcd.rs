//! A leader whose datastore stops answering must stop leading before anyone else could take
//! the Lease over: within the renew deadline, which is shorter than the lease duration. The
//! datastore is a real etcd (frozen with SIGSTOP, so requests hang rather than fail). Negative
//! control: an elector that does not bound its renewals by the renew deadline keeps leading
//! past the point where a follower may take over, and the same check flags it.
//!
//! Needs `/usr/bin/etcd` (Debian's etcd-server); skips with a reason when it is missing, unless
//! `DROVER_REQUIRE_PEERS=1`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drover_apiserver::leader::{ElectionConfig, Elector, Fault};
use drover_store::{AnyStore, EtcdConfig, EtcdStore};

const LEASE: Duration = Duration::from_secs(2);
const RENEW: Duration = Duration::from_secs(1);
const RETRY: Duration = Duration::from_millis(200);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// This test's own etcd, killed by PID and its directory removed on drop.
struct Etcd {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Etcd {
    fn start() -> Option<Etcd> {
        if !std::path::Path::new("/usr/bin/etcd").exists() {
            assert!(
                std::env::var("DROVER_REQUIRE_PEERS").as_deref() != Ok("1"),
                "etcd is required (DROVER_REQUIRE_PEERS=1): apt-get install etcd-server"
            );
            println!("skipping: /usr/bin/etcd is missing (apt-get install etcd-server)");
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "drover-test-leader-etcd-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("etcd dir");
        let (port, peer) = (free_port(), free_port());
        let client = format!("http://127.0.0.1:{port}");
        let peer = format!("http://127.0.0.1:{peer}");
        let child = Command::new("/usr/bin/etcd")
            .args(["--name", "drover-test", "--data-dir"])
            .arg(dir.join("data"))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("drover-test={peer}")])
            .args(["--logger", "zap", "--log-level", "error"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd");
        Some(Etcd { child, dir, port })
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig} etcd");
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.signal("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Leads on `etcd`, freezes etcd, and returns how long after the freeze the elector stopped
/// leading (None: still leading 8 s later). Then thaws etcd and requires it to lead again.
async fn step_down_after_freeze(etcd: &Etcd, fault: Fault, name: &str) -> Option<Duration> {
    let store = EtcdStore::open(EtcdConfig::new(vec![format!(
        "http://127.0.0.1:{}",
        etcd.port
    )]))
    .expect("etcd store");
    let mut cfg = ElectionConfig::new("kube-system", name);
    cfg.lease_duration = LEASE;
    cfg.renew_deadline = RENEW;
    cfg.retry_period = RETRY;
    cfg.fault = fault;
    let elector = Elector::new(Arc::new(AnyStore::from(store)), cfg).expect("elector");
    let mut handle = elector.handle();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(elector.run(rx));
    tokio::time::timeout(Duration::from_secs(30), handle.wait_for(true))
        .await
        .expect("no leadership within 30 s of etcd starting (etcd down or elector stuck?)");
    // Let a few renewals pass, then freeze the datastore.
    tokio::time::sleep(RETRY * 3).await;
    etcd.signal("STOP");
    let frozen = Instant::now();
    let stepped = tokio::time::timeout(Duration::from_secs(8), handle.wait_for(false))
        .await
        .ok()
        .map(|_| frozen.elapsed());
    etcd.signal("CONT");
    tokio::time::timeout(Duration::from_secs(30), handle.wait_for(true))
        .await
        .expect("the elector did not lead again after etcd came back");
    let _ = tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    stepped
}

/// A follower may take over `LEASE` after it saw the last renewal, which began at most
/// `RETRY` before the freeze: the leader must have stopped before then.
fn stepped_down_in_time(stepped: Option<Duration>) -> bool {
    stepped.is_some_and(|d| d < LEASE - RETRY)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_datastore_hangs_steps_down_within_the_renew_deadline() {
    let Some(etcd) = Etcd::start() else { return };
    let stepped = step_down_after_freeze(&etcd, Fault::None, "freeze").await;
    println!(
        "correct elector: stopped leading {stepped:?} after etcd froze (renew deadline {RENEW:?}, lease {LEASE:?})"
    );
    assert!(
        stepped_down_in_time(stepped),
        "the leader kept leading {stepped:?} after its datastore froze; a follower may take over after {:?}",
        LEASE - RETRY
    );

    // Negative control: without the renew deadline bound, the same check fails.
    let broken = step_down_after_freeze(&etcd, Fault::NoRenewDeadline, "freeze-broken").await;
    println!("broken elector: stopped leading {broken:?} after etcd froze");
    assert!(
        !stepped_down_in_time(broken),
        "the check must flag an elector that ignores its renew deadline (stepped down after {broken:?})"
    );
}
