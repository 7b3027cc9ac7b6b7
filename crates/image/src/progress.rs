//! Download progress on stderr, only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Shared counters updated by downloads and read by the ticker.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    pub(crate) total: AtomicU64,
    pub(crate) done: AtomicU64,
    pub(crate) layers_total: AtomicU64,
    pub(crate) layers_done: AtomicU64,
    stop: AtomicBool,
}

impl Progress {
    /// Starts a ticker redrawing one status line if `enabled` and stderr is a TTY.
    pub(crate) fn start(
        label: String,
        enabled: bool,
    ) -> (Arc<Progress>, Option<tokio::task::JoinHandle<()>>) {
        let p = Arc::new(Progress::default());
        if !enabled || !std::io::stderr().is_terminal() {
            return (p, None);
        }
        let q = p.clone();
        let h = tokio::spawn(async move {
            loop {
                let stop = q.stop.load(Ordering::Relaxed);
                let (d, t) = (
                    q.done.load(Ordering::Relaxed),
                    q.total.load(Ordering::Relaxed),
                );
                let width = 30usize;
                let filled = if t == 0 {
                    0
                } else {
                    ((d.min(t) as f64 / t as f64) * width as f64) as usize
                };
                let bar: String = "#".repeat(filled) + &" ".repeat(width - filled);
                let mut e = std::io::stderr();
                let _ = write!(
                    e,
                    "\r{label}: [{bar}] {} / {}  layers {}/{}   ",
                    human(d),
                    human(t),
                    q.layers_done.load(Ordering::Relaxed),
                    q.layers_total.load(Ordering::Relaxed)
                );
                if stop {
                    let _ = writeln!(e);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        });
        (p, Some(h))
    }

    pub(crate) async fn finish(&self, h: Option<tokio::task::JoinHandle<()>>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = h {
            let _ = h.await;
        }
    }
}

/// `12.3 MB` style sizes (decimal units, like Docker).
pub(crate) fn human(n: u64) -> String {
    const U: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < U.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}
