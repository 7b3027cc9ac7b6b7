//! `linux.resources` → the cgroupfs writes that apply it, planned without touching the
//! filesystem so unit tests check them on every layout.

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::{Cgroup, CgroupError, devices};

/// One planned write: `value` into `file` of directory `dir` of a [`Cgroup`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// Index into [`Cgroup::dirs`].
    pub dir: usize,
    /// The file name inside the directory.
    pub file: String,
    /// The value written.
    pub value: String,
    /// The `linux.resources` field it comes from (for error messages).
    pub field: &'static str,
    /// A second file (with its own value) used when `file` does not exist, e.g. `blkio.weight`
    /// on kernels without BFQ's `blkio.bfq.weight`.
    pub fallback: Option<(String, String)>,
    /// A write that may fail because an ordering constraint is only met by a later write
    /// (a memory limit raised above the current memory+swap limit during an update).
    pub may_fail: bool,
}

/// runc's conversion of cgroup v1 `cpu.shares` (2–262144) to cgroup v2 `cpu.weight`
/// (1–10000): `1 + ((shares - 2) * 9999) / 262142`, from `ConvertCPUSharesToCgroupV2Value`
/// in runc's `libcontainer/cgroups/utils.go` (also in the OCI/Kubernetes docs on cgroup v2).
/// 0 means "not set".
pub fn cpu_shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// runc's blkio weight (10–1000) → `io.weight` (1–10000).
fn blkio_weight_to_io_weight(w: u16) -> u64 {
    let w = u64::from(w.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

/// Plans the writes for `r` on `cg`. `creating` adds the device rules (an update leaves them).
pub fn plan_resources(
    cg: &Cgroup,
    r: &LinuxResources,
    creating: bool,
) -> Result<Vec<Write>, CgroupError> {
    let mut p = Planner {
        cg,
        out: Vec::new(),
    };
    if let Some(m) = r.memory() {
        p.memory(m, creating)?;
    }
    if let Some(c) = r.cpu() {
        p.cpu(c)?;
    }
    if let Some(pids) = r.pids() {
        let limit = pids.limit();
        if limit != 0 {
            let v = if limit < 0 {
                "max".to_string()
            } else {
                limit.to_string()
            };
            let d = p.dir("pids", "pids")?;
            p.push(d, "pids.max", v, "pids");
        }
    }
    if let Some(b) = r.block_io() {
        p.block_io(b)?;
    }
    for h in r.hugepage_limits().iter().flatten() {
        let size = h.page_size();
        if size.is_empty() || !size.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err(CgroupError::BadValue {
                field: "hugepageLimits",
                reason: format!("page size {size:?} is not like \"2MB\" or \"1GB\""),
            });
        }
        let (d, v2) = p.dir_kind("hugetlb", "hugepageLimits")?;
        let (file, value) = if v2 {
            (format!("hugetlb.{size}.max"), max_or(h.limit()))
        } else {
            (
                format!("hugetlb.{size}.limit_in_bytes"),
                h.limit().to_string(),
            )
        };
        p.push(d, &file, value, "hugepageLimits");
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            let d = p.v1_only("net_cls", "network.classID")?;
            p.push(d, "net_cls.classid", id.to_string(), "network.classID");
        }
        for prio in n.priorities().iter().flatten() {
            let d = p.v1_only("net_prio", "network.priorities")?;
            let v = format!("{} {}", prio.name(), prio.priority());
            p.push(d, "net_prio.ifpriomap", v, "network.priorities");
        }
    }
    for (dev, limit) in r.rdma().iter().flatten() {
        let d = p.dir("rdma", "rdma")?;
        let mut v = dev.clone();
        if let Some(h) = limit.hca_handles() {
            v.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = limit.hca_objects() {
            v.push_str(&format!(" hca_object={o}"));
        }
        p.push(d, "rdma.max", v, "rdma");
    }
    if let Some(u) = r.unified() {
        p.unified(u)?;
    }
    if creating {
        let rules = r.devices().clone().unwrap_or_default();
        p.devices(&rules)?;
    }
    Ok(p.out)
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

struct Planner<'a> {
    cg: &'a Cgroup,
    out: Vec<Write>,
}

impl Planner<'_> {
    /// The directory holding `controller` and whether it is the unified one: v1 first, then
    /// the unified root's controllers.
    fn dir_kind(
        &self,
        controller: &str,
        field: &'static str,
    ) -> Result<(usize, bool), CgroupError> {
        if let Some(i) = self
            .cg
            .dirs
            .iter()
            .position(|d| !d.is_unified() && d.has(controller))
        {
            return Ok((i, false));
        }
        if let Some(i) = self
            .cg
            .dirs
            .iter()
            .position(|d| d.is_unified() && d.has(controller))
        {
            return Ok((i, true));
        }
        Err(CgroupError::Unsupported {
            what: format!(
                "linux.resources.{field} needs the {controller} controller, which this host has \
                 in no v1 hierarchy and not in the unified root's cgroup.controllers"
            ),
        })
    }

    fn dir(&self, controller: &str, field: &'static str) -> Result<usize, CgroupError> {
        self.dir_kind(controller, field).map(|(d, _)| d)
    }

    fn v1_only(&self, controller: &str, field: &'static str) -> Result<usize, CgroupError> {
        match self.dir_kind(controller, field)? {
            (d, false) => Ok(d),
            (_, true) => Err(CgroupError::Unsupported {
                what: format!("linux.resources.{field} has no cgroup v2 equivalent"),
            }),
        }
    }

    fn push(&mut self, dir: usize, file: &str, value: String, field: &'static str) {
        self.out.push(Write {
            dir,
            file: file.to_string(),
            value,
            field,
            fallback: None,
            may_fail: false,
        });
    }

    fn memory(&mut self, m: &LinuxMemory, creating: bool) -> Result<(), CgroupError> {
        let (d, v2) = self.dir_kind("memory", "memory")?;
        let limit = m.limit();
        let swap = m.swap();
        if let (Some(l), Some(s)) = (limit, swap)
            && l > 0
            && s > 0
            && s < l
        {
            return Err(CgroupError::BadValue {
                field: "memory.swap",
                reason: format!("memory+swap {s} is below the memory limit {l}"),
            });
        }
        if v2 {
            return self.memory_v2(d, m);
        }
        self.memory_v1(d, m, creating)
    }

    fn memory_v2(&mut self, d: usize, m: &LinuxMemory) -> Result<(), CgroupError> {
        let (limit, swap) = (m.limit(), m.swap());
        if let Some(l) = limit {
            self.push(d, "memory.max", max_or(l), "memory.limit");
        }
        if let Some(s) = swap
            && s != 0
        {
            // OCI's swap is memory+swap; v2's memory.swap.max is swap alone.
            let v = if s < 0 {
                "max".to_string()
            } else {
                match limit {
                    Some(l) if l > 0 => (s - l).to_string(),
                    _ => {
                        return Err(CgroupError::BadValue {
                            field: "memory.swap",
                            reason: "a swap limit needs a memory limit on cgroup v2".into(),
                        });
                    }
                }
            };
            self.push(d, "memory.swap.max", v, "memory.swap");
        }
        if let Some(r) = m.reservation() {
            self.push(d, "memory.low", max_or(r), "memory.reservation");
        }
        if m.swappiness().is_some() {
            return Err(CgroupError::Unsupported {
                what: "linux.resources.memory.swappiness has no cgroup v2 equivalent".into(),
            });
        }
        if m.disable_oom_killer() == Some(true) {
            return Err(CgroupError::Unsupported {
                what: "linux.resources.memory.disableOOMKiller has no cgroup v2 equivalent".into(),
            });
        }
        Ok(())
    }

    fn memory_v1(&mut self, d: usize, m: &LinuxMemory, creating: bool) -> Result<(), CgroupError> {
        let (limit, swap) = (m.limit(), m.swap());
        let both = limit.is_some() && swap.is_some();
        if let Some(l) = limit {
            self.push(d, "memory.limit_in_bytes", l.to_string(), "memory.limit");
            if both && !creating {
                // Raising both: this write fails until memsw is raised, so it is repeated.
                self.out.last_mut().expect("just pushed").may_fail = true;
            }
        }
        if let Some(s) = swap {
            self.push(
                d,
                "memory.memsw.limit_in_bytes",
                s.to_string(),
                "memory.swap",
            );
            if both && !creating {
                self.push(
                    d,
                    "memory.limit_in_bytes",
                    limit.unwrap_or(-1).to_string(),
                    "memory.limit",
                );
            }
        }
        if let Some(r) = m.reservation() {
            self.push(
                d,
                "memory.soft_limit_in_bytes",
                r.to_string(),
                "memory.reservation",
            );
        }
        if let Some(k) = m.kernel_tcp() {
            self.push(
                d,
                "memory.kmem.tcp.limit_in_bytes",
                k.to_string(),
                "memory.kernelTCP",
            );
        }
        if let Some(s) = m.swappiness() {
            if s > 100 {
                return Err(CgroupError::BadValue {
                    field: "memory.swappiness",
                    reason: format!("{s} is above 100"),
                });
            }
            self.push(d, "memory.swappiness", s.to_string(), "memory.swappiness");
        }
        if let Some(disable) = m.disable_oom_killer() {
            self.push(
                d,
                "memory.oom_control",
                u8::from(disable).to_string(),
                "memory.disableOOMKiller",
            );
        }
        Ok(())
    }

    fn cpu(&mut self, c: &LinuxCpu) -> Result<(), CgroupError> {
        let wants_cpu = c.shares().is_some()
            || c.quota().is_some()
            || c.period().is_some()
            || c.burst().is_some()
            || c.idle().is_some()
            || c.realtime_period().is_some()
            || c.realtime_runtime().is_some();
        if wants_cpu {
            let (d, v2) = self.dir_kind("cpu", "cpu")?;
            if v2 {
                self.cpu_v2(d, c)?;
            } else {
                self.cpu_v1(d, c);
            }
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            let d = self.dir("cpuset", "cpu.cpus")?;
            self.push(d, "cpuset.cpus", cpus.to_string(), "cpu.cpus");
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            let d = self.dir("cpuset", "cpu.mems")?;
            self.push(d, "cpuset.mems", mems.to_string(), "cpu.mems");
        }
        Ok(())
    }

    fn cpu_v1(&mut self, d: usize, c: &LinuxCpu) {
        if let Some(s) = c.shares().filter(|&s| s != 0) {
            self.push(d, "cpu.shares", s.to_string(), "cpu.shares");
        }
        if let Some(p) = c.period().filter(|&p| p != 0) {
            self.push(d, "cpu.cfs_period_us", p.to_string(), "cpu.period");
        }
        if let Some(q) = c.quota().filter(|&q| q != 0) {
            self.push(d, "cpu.cfs_quota_us", q.to_string(), "cpu.quota");
        }
        if let Some(b) = c.burst() {
            self.push(d, "cpu.cfs_burst_us", b.to_string(), "cpu.burst");
        }
        if let Some(p) = c.realtime_period().filter(|&p| p != 0) {
            self.push(d, "cpu.rt_period_us", p.to_string(), "cpu.realtimePeriod");
        }
        if let Some(r) = c.realtime_runtime().filter(|&r| r != 0) {
            self.push(d, "cpu.rt_runtime_us", r.to_string(), "cpu.realtimeRuntime");
        }
        if let Some(i) = c.idle() {
            self.push(d, "cpu.idle", i.to_string(), "cpu.idle");
        }
    }

    fn cpu_v2(&mut self, d: usize, c: &LinuxCpu) -> Result<(), CgroupError> {
        if c.realtime_period().is_some_and(|p| p != 0)
            || c.realtime_runtime().is_some_and(|r| r != 0)
        {
            return Err(CgroupError::Unsupported {
                what: "linux.resources.cpu.realtimePeriod/realtimeRuntime are not supported on cgroup v2".into(),
            });
        }
        if let Some(s) = c.shares().filter(|&s| s != 0) {
            self.push(
                d,
                "cpu.weight",
                cpu_shares_to_weight(s).to_string(),
                "cpu.shares",
            );
        }
        let quota = c.quota().filter(|&q| q != 0);
        let period = c.period().filter(|&p| p != 0);
        if quota.is_some() || period.is_some() {
            let mut v = match quota {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".to_string(),
            };
            if let Some(p) = period {
                v.push_str(&format!(" {p}"));
            }
            self.push(d, "cpu.max", v, "cpu.quota");
        }
        if let Some(b) = c.burst() {
            self.push(d, "cpu.max.burst", b.to_string(), "cpu.burst");
        }
        if let Some(i) = c.idle() {
            self.push(d, "cpu.idle", i.to_string(), "cpu.idle");
        }
        Ok(())
    }

    fn block_io(&mut self, b: &LinuxBlockIo) -> Result<(), CgroupError> {
        let has_any = b.weight().is_some()
            || b.leaf_weight().is_some()
            || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
            || [
                b.throttle_read_bps_device(),
                b.throttle_write_bps_device(),
                b.throttle_read_iops_device(),
                b.throttle_write_iops_device(),
            ]
            .iter()
            .any(|t| t.as_ref().is_some_and(|v| !v.is_empty()));
        if !has_any {
            return Ok(());
        }
        let (d, v2) = if self
            .cg
            .dirs
            .iter()
            .any(|d| !d.is_unified() && d.has("blkio"))
        {
            self.dir_kind("blkio", "blockIO")?
        } else {
            self.dir_kind("io", "blockIO")?
        };
        self.weights(d, v2, b)?;
        self.throttles(d, v2, b);
        Ok(())
    }

    /// `blockIO.weight`, `leafWeight`, `weightDevice`: BFQ's files first, the CFQ/io.weight
    /// ones as the fallback.
    fn weights(&mut self, d: usize, v2: bool, b: &LinuxBlockIo) -> Result<(), CgroupError> {
        let field = "blockIO";
        if let Some(w) = b.weight().filter(|&w| w != 0) {
            let (file, value, fb) = if v2 {
                (
                    "io.bfq.weight",
                    w.to_string(),
                    ("io.weight", blkio_weight_to_io_weight(w).to_string()),
                )
            } else {
                (
                    "blkio.bfq.weight",
                    w.to_string(),
                    ("blkio.weight", w.to_string()),
                )
            };
            self.push(d, file, value, field);
            self.out.last_mut().expect("just pushed").fallback = Some((fb.0.into(), fb.1));
        }
        if let Some(w) = b.leaf_weight().filter(|&w| w != 0) {
            if v2 {
                return Err(CgroupError::Unsupported {
                    what: "linux.resources.blockIO.leafWeight has no cgroup v2 equivalent".into(),
                });
            }
            self.push(d, "blkio.leaf_weight", w.to_string(), field);
        }
        for wd in b.weight_device().iter().flatten() {
            if let Some(w) = wd.weight() {
                let dev = format!("{}:{}", wd.major(), wd.minor());
                let (file, value, fb) = if v2 {
                    (
                        "io.bfq.weight",
                        format!("{dev} {w}"),
                        (
                            "io.weight",
                            format!("{dev} {}", blkio_weight_to_io_weight(w)),
                        ),
                    )
                } else {
                    (
                        "blkio.bfq.weight_device",
                        format!("{dev} {w}"),
                        ("blkio.weight_device", format!("{dev} {w}")),
                    )
                };
                self.push(d, file, value, field);
                self.out.last_mut().expect("just pushed").fallback = Some((fb.0.into(), fb.1));
            }
        }
        Ok(())
    }

    /// `blockIO.throttle*Device`: v1 `blkio.throttle.*`, v2 `io.max` keys.
    fn throttles(&mut self, d: usize, v2: bool, b: &LinuxBlockIo) {
        let field = "blockIO";
        let throttles = [
            (
                b.throttle_read_bps_device(),
                "blkio.throttle.read_bps_device",
                "rbps",
            ),
            (
                b.throttle_write_bps_device(),
                "blkio.throttle.write_bps_device",
                "wbps",
            ),
            (
                b.throttle_read_iops_device(),
                "blkio.throttle.read_iops_device",
                "riops",
            ),
            (
                b.throttle_write_iops_device(),
                "blkio.throttle.write_iops_device",
                "wiops",
            ),
        ];
        for (list, v1_file, v2_key) in throttles {
            for t in list.iter().flatten() {
                let dev = format!("{}:{}", t.major(), t.minor());
                if v2 {
                    self.push(d, "io.max", format!("{dev} {v2_key}={}", t.rate()), field);
                } else {
                    self.push(d, v1_file, format!("{dev} {}", t.rate()), field);
                }
            }
        }
    }

    fn unified(
        &mut self,
        u: &std::collections::HashMap<String, String>,
    ) -> Result<(), CgroupError> {
        if u.is_empty() {
            return Ok(());
        }
        let Some(d) = self.cg.dirs.iter().position(|d| d.is_unified()) else {
            return Err(CgroupError::Unsupported {
                what: "linux.resources.unified needs cgroup v2, and this host has no cgroup2 mount"
                    .into(),
            });
        };
        let mut keys: Vec<&String> = u.keys().collect();
        keys.sort();
        for k in keys {
            if k.contains('/') || k.starts_with('.') || !k.contains('.') {
                return Err(CgroupError::BadValue {
                    field: "unified",
                    reason: format!("{k:?} is not a cgroup v2 file name like \"memory.high\""),
                });
            }
            self.push(d, k, u[k].clone(), "unified");
        }
        Ok(())
    }

    fn devices(
        &mut self,
        rules: &[oci_spec::runtime::LinuxDeviceCgroup],
    ) -> Result<(), CgroupError> {
        if let Some(d) = self
            .cg
            .dirs
            .iter()
            .position(|d| !d.is_unified() && d.has("devices"))
        {
            for (file, value) in devices::v1_device_writes(rules)? {
                self.push(d, file, value, "devices");
            }
            return Ok(());
        }
        if self.cg.dirs.iter().any(|d| d.is_unified()) {
            // cgroup v2: a BPF program, loaded and attached by Cgroup::create.
            return Ok(());
        }
        if devices::only_allows(rules) {
            // Without any device controller there is nothing to write; allow rules are met.
            return Ok(());
        }
        Err(CgroupError::Unsupported {
            what: "linux.resources.devices has deny rules, and this host has neither a v1 \
                   devices controller nor cgroup2 for a device BPF program"
                .into(),
        })
    }
}
