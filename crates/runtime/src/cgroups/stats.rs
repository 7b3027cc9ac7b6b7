//! Usage figures and the OOM-kill counter of a container's cgroup.

use std::path::Path;

use super::{Cgroup, CgroupError, read_file};

/// What the supervisor and the metrics endpoint read from a container's cgroup. A figure is
/// `None` when the host has no controller for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// CPU time used, in nanoseconds (v1 `cpuacct.usage`; v2 `cpu.stat` `usage_usec` × 1000).
    pub cpu_usage_ns: Option<u64>,
    /// Memory charged, in bytes (v1 `memory.usage_in_bytes`; v2 `memory.current`).
    pub memory_usage: Option<u64>,
    /// Usage minus inactive file cache (`total_inactive_file` on v1, `inactive_file` on v2),
    /// floored at 0: the kubelet's working set, what eviction and `kubectl top` look at.
    pub memory_working_set: Option<u64>,
    /// Processes and threads in the cgroup (`pids.current`).
    pub pids_current: Option<u64>,
}

impl Cgroup {
    fn controller_dir(&self, controller: &str) -> Option<(&Path, bool)> {
        let v1 = self
            .dirs
            .iter()
            .find(|d| !d.is_unified() && d.has(controller));
        let d = v1.or_else(|| {
            self.dirs
                .iter()
                .find(|d| d.is_unified() && d.has(controller))
        })?;
        Some((d.path.as_path(), d.is_unified()))
    }

    /// Reads the usage figures.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        let mut s = Stats::default();
        // v1 keeps CPU accounting in cpuacct; v2 has it in cpu.stat even without the cpu
        // controller enabled.
        if let Some((d, _)) = self.controller_dir("cpuacct") {
            s.cpu_usage_ns = Some(read_u64(&d.join("cpuacct.usage"))?);
        } else if let Some(u) = self.dirs.iter().find(|d| d.is_unified())
            && self.kind == super::LayoutKind::V2
        {
            let stat = read_file(&u.path.join("cpu.stat"))?;
            s.cpu_usage_ns = keyed(&stat, "usage_usec").map(|us| us.saturating_mul(1000));
        }
        if let Some((d, v2)) = self.controller_dir("memory") {
            let (usage_file, inactive_key) = if v2 {
                ("memory.current", "inactive_file")
            } else {
                ("memory.usage_in_bytes", "total_inactive_file")
            };
            let usage = read_u64(&d.join(usage_file))?;
            let stat = read_file(&d.join("memory.stat"))?;
            let inactive = keyed(&stat, inactive_key).unwrap_or(0);
            s.memory_usage = Some(usage);
            s.memory_working_set = Some(usage.saturating_sub(inactive));
        }
        if let Some((d, _)) = self.controller_dir("pids") {
            s.pids_current = Some(read_u64(&d.join("pids.current"))?);
        }
        Ok(s)
    }

    /// How many processes the kernel's OOM killer killed in this cgroup (v1
    /// `memory.oom_control` `oom_kill`, kernel ≥ 4.13; v2 `memory.events` `oom_kill`). `None`
    /// without a memory controller.
    pub fn oom_kill_count(&self) -> Result<Option<u64>, CgroupError> {
        let Some((d, v2)) = self.controller_dir("memory") else {
            return Ok(None);
        };
        let file = d.join(if v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        });
        let text = read_file(&file)?;
        keyed(&text, "oom_kill")
            .map(Some)
            .ok_or_else(|| CgroupError::MissingFile {
                field: "memory",
                path: file.join("oom_kill"),
            })
    }

    /// Whether the OOM killer killed something in this cgroup: tells an OOM kill apart from a
    /// `kill -9` from outside, which leaves the counter alone.
    pub fn oom_killed(&self) -> Result<bool, CgroupError> {
        Ok(self.oom_kill_count()?.is_some_and(|n| n > 0))
    }
}

fn read_u64(path: &Path) -> Result<u64, CgroupError> {
    let text = read_file(path)?;
    text.trim().parse().map_err(|_| CgroupError::Io {
        op: "parse",
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, text.trim().to_string()),
    })
}

/// The value of `key` in a flat-keyed file (`key value` per line).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::keyed;

    #[test]
    fn keyed_files_are_read_by_exact_key() {
        let t = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed(t, "oom_kill"), Some(3));
        assert_eq!(keyed(t, "under_oom"), Some(0));
        assert_eq!(keyed(t, "oom"), None);
    }
}
