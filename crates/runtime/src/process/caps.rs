//! Capability names and numbers, and the five sets of a process.
//!
//! The table covers capabilities 0..=40 (`CAP_CHOWN` … `CAP_CHECKPOINT_RESTORE`), the numbers of
//! `include/uapi/linux/capability.h`. Sets are plain `u64` bit masks so the child can hand them
//! to `capset` and `prctl` without allocating.

use anyhow::{Context as _, bail};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

/// The names of capabilities 0..=40, indexed by number.
pub const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The highest capability number the table knows.
pub const LAST_KNOWN: u8 = (NAMES.len() - 1) as u8;

/// containerd's default capability set for unprivileged containers (`defaultUnixCaps` in
/// containerd's `pkg/oci/spec.go`; Docker documents the same 14 in its security defaults). Spec
/// generators (the node agent, tests) use it; the runtime itself applies exactly what the spec
/// lists, and a spec without `process.capabilities` gets no capabilities at all (as runc).
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The number of a capability given by name: `CAP_NET_BIND_SERVICE`, `NET_BIND_SERVICE` or any
/// letter case of those. An unknown name is an error that names it.
pub fn number(name: &str) -> anyhow::Result<u8> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    match NAMES.iter().position(|n| &n[4..] == bare) {
        Some(i) => Ok(i as u8),
        None => bail!(
            "unknown capability {name:?}: known capabilities are {} … {} (numbers 0..={LAST_KNOWN})",
            NAMES[0],
            NAMES[LAST_KNOWN as usize]
        ),
    }
}

/// The name of capability `n`, or `None` past the table.
pub fn name(n: u8) -> Option<&'static str> {
    NAMES.get(usize::from(n)).copied()
}

/// A set of capabilities as a bit mask (bit `n` = capability `n`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSet(pub u64);

impl CapSet {
    /// A set from capability names; `field` names the spec field in errors.
    pub fn from_names<'a>(
        names: impl IntoIterator<Item = &'a str>,
        field: &str,
    ) -> anyhow::Result<Self> {
        let mut bits = 0u64;
        for n in names {
            bits |= 1 << number(n).with_context(|| format!("in {field}"))?;
        }
        Ok(Self(bits))
    }

    /// A set from oci-spec's typed capabilities (their serialized names go through the table).
    pub fn from_spec(caps: Option<&Capabilities>, field: &str) -> anyhow::Result<Self> {
        let mut names = Vec::new();
        for c in caps.into_iter().flatten() {
            names.push(spec_name(*c)?);
        }
        Self::from_names(names.iter().map(String::as_str), field)
    }

    /// Whether capability `n` is in the set.
    pub fn contains(self, n: u8) -> bool {
        n < 64 && self.0 & (1 << n) != 0
    }

    /// The names of the members, lowest number first.
    pub fn names(self) -> Vec<&'static str> {
        (0..=LAST_KNOWN)
            .filter(|n| self.contains(*n))
            .filter_map(name)
            .collect()
    }
}

fn spec_name(c: Capability) -> anyhow::Result<String> {
    match serde_json::to_value(c).context("serializing a capability name")? {
        serde_json::Value::String(s) => Ok(s),
        other => bail!("capability serialized as {other}, not as a name"),
    }
}

/// The five capability sets of a process, as the spec's `process.capabilities` gives them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sets {
    /// Bounding set: what the process and its descendants can ever gain.
    pub bounding: CapSet,
    /// Effective set: what the kernel checks.
    pub effective: CapSet,
    /// Permitted set: the limiting superset of the effective set.
    pub permitted: CapSet,
    /// Inheritable set: preserved across `execve` for files with matching inheritable bits.
    pub inheritable: CapSet,
    /// Ambient set: preserved across `execve` of unprivileged programs.
    pub ambient: CapSet,
}

impl Sets {
    /// The sets of `process.capabilities` (absent: every set empty, as runc), checked for the
    /// kernel's rules so that `capset` and `PR_CAP_AMBIENT_RAISE` cannot fail later in the child.
    pub fn from_spec(caps: Option<&LinuxCapabilities>) -> anyhow::Result<Self> {
        let Some(c) = caps else {
            return Ok(Self::default());
        };
        let sets = Self {
            bounding: CapSet::from_spec(c.bounding().as_ref(), "process.capabilities.bounding")?,
            effective: CapSet::from_spec(c.effective().as_ref(), "process.capabilities.effective")?,
            permitted: CapSet::from_spec(c.permitted().as_ref(), "process.capabilities.permitted")?,
            inheritable: CapSet::from_spec(
                c.inheritable().as_ref(),
                "process.capabilities.inheritable",
            )?,
            ambient: CapSet::from_spec(c.ambient().as_ref(), "process.capabilities.ambient")?,
        };
        sets.check()?;
        Ok(sets)
    }

    /// The kernel's rule for `capset`: effective ⊆ permitted.
    pub fn check(&self) -> anyhow::Result<()> {
        let extra = CapSet(self.effective.0 & !self.permitted.0);
        if extra.0 != 0 {
            bail!(
                "process.capabilities.effective has {} which process.capabilities.permitted lacks; \
                 the effective set must be a subset of the permitted set",
                extra.names().join(", ")
            );
        }
        Ok(())
    }

    /// Remove the ambient capabilities the kernel would refuse to raise (those not in both the
    /// permitted and the inheritable set) and return them. runc's own `runc spec` lists ambient
    /// capabilities without inheritable ones; runc and crun accept that and the kernel simply
    /// does not raise them, so Drover does the same, with a warning.
    pub fn trim_ambient(&mut self) -> CapSet {
        let dropped = CapSet(self.ambient.0 & !(self.permitted.0 & self.inheritable.0));
        self.ambient.0 &= !dropped.0;
        dropped
    }

    /// Every set limited to capabilities `0..=last_cap` (the running kernel's
    /// `/proc/sys/kernel/cap_last_cap`): like runc, capabilities the kernel does not know are
    /// left out rather than failing the container.
    pub fn limit_to(self, last_cap: u8) -> Self {
        let mask = if last_cap >= 63 {
            u64::MAX
        } else {
            (1u64 << (last_cap + 1)) - 1
        };
        let m = |s: CapSet| CapSet(s.0 & mask);
        Self {
            bounding: m(self.bounding),
            effective: m(self.effective),
            permitted: m(self.permitted),
            inheritable: m(self.inheritable),
            ambient: m(self.ambient),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::thread::CapabilitySet as C;

    #[test]
    fn table_numbers_match_the_kernel_headers_as_rustix_has_them() {
        let expected: [(&str, C); 41] = [
            ("CAP_CHOWN", C::CHOWN),
            ("CAP_DAC_OVERRIDE", C::DAC_OVERRIDE),
            ("CAP_DAC_READ_SEARCH", C::DAC_READ_SEARCH),
            ("CAP_FOWNER", C::FOWNER),
            ("CAP_FSETID", C::FSETID),
            ("CAP_KILL", C::KILL),
            ("CAP_SETGID", C::SETGID),
            ("CAP_SETUID", C::SETUID),
            ("CAP_SETPCAP", C::SETPCAP),
            ("CAP_LINUX_IMMUTABLE", C::LINUX_IMMUTABLE),
            ("CAP_NET_BIND_SERVICE", C::NET_BIND_SERVICE),
            ("CAP_NET_BROADCAST", C::NET_BROADCAST),
            ("CAP_NET_ADMIN", C::NET_ADMIN),
            ("CAP_NET_RAW", C::NET_RAW),
            ("CAP_IPC_LOCK", C::IPC_LOCK),
            ("CAP_IPC_OWNER", C::IPC_OWNER),
            ("CAP_SYS_MODULE", C::SYS_MODULE),
            ("CAP_SYS_RAWIO", C::SYS_RAWIO),
            ("CAP_SYS_CHROOT", C::SYS_CHROOT),
            ("CAP_SYS_PTRACE", C::SYS_PTRACE),
            ("CAP_SYS_PACCT", C::SYS_PACCT),
            ("CAP_SYS_ADMIN", C::SYS_ADMIN),
            ("CAP_SYS_BOOT", C::SYS_BOOT),
            ("CAP_SYS_NICE", C::SYS_NICE),
            ("CAP_SYS_RESOURCE", C::SYS_RESOURCE),
            ("CAP_SYS_TIME", C::SYS_TIME),
            ("CAP_SYS_TTY_CONFIG", C::SYS_TTY_CONFIG),
            ("CAP_MKNOD", C::MKNOD),
            ("CAP_LEASE", C::LEASE),
            ("CAP_AUDIT_WRITE", C::AUDIT_WRITE),
            ("CAP_AUDIT_CONTROL", C::AUDIT_CONTROL),
            ("CAP_SETFCAP", C::SETFCAP),
            ("CAP_MAC_OVERRIDE", C::MAC_OVERRIDE),
            ("CAP_MAC_ADMIN", C::MAC_ADMIN),
            ("CAP_SYSLOG", C::SYSLOG),
            ("CAP_WAKE_ALARM", C::WAKE_ALARM),
            ("CAP_BLOCK_SUSPEND", C::BLOCK_SUSPEND),
            ("CAP_AUDIT_READ", C::AUDIT_READ),
            ("CAP_PERFMON", C::PERFMON),
            ("CAP_BPF", C::BPF),
            ("CAP_CHECKPOINT_RESTORE", C::CHECKPOINT_RESTORE),
        ];
        for (name, set) in expected {
            let n = number(name).unwrap();
            assert_eq!(1u64 << n, set.bits(), "{name}");
            assert_eq!(super::name(n), Some(name));
        }
    }

    #[test]
    fn names_parse_with_or_without_prefix_in_any_case() {
        assert_eq!(number("CAP_NET_BIND_SERVICE").unwrap(), 10);
        assert_eq!(number("net_bind_service").unwrap(), 10);
        assert_eq!(number("cap_sys_admin").unwrap(), 21);
        assert_eq!(number("CAP_CHECKPOINT_RESTORE").unwrap(), 40);
    }

    #[test]
    fn unknown_capability_is_an_error_naming_it_and_the_field() {
        let err = CapSet::from_names(
            ["CAP_KILL", "CAP_TELEPORT"],
            "process.capabilities.bounding",
        )
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("CAP_TELEPORT"), "{msg}");
        assert!(msg.contains("process.capabilities.bounding"), "{msg}");
    }

    #[test]
    fn default_set_is_containerds_fourteen() {
        let set = CapSet::from_names(DEFAULT_CAPABILITIES, "default").unwrap();
        assert_eq!(set.0.count_ones(), 14);
        // CapEff as /proc/self/status prints it for containerd's default set.
        assert_eq!(format!("{:016x}", set.0), "00000000a80425fb");
    }

    #[test]
    fn sets_follow_the_kernel_subset_rules() {
        let perm = CapSet::from_names(["CAP_KILL", "CAP_CHOWN"], "p").unwrap();
        let eff = CapSet::from_names(["CAP_KILL", "CAP_NET_RAW"], "e").unwrap();
        let bad = Sets {
            effective: eff,
            permitted: perm,
            ..Sets::default()
        };
        let msg = format!("{:#}", bad.check().unwrap_err());
        assert!(
            msg.contains("CAP_NET_RAW") && msg.contains("effective"),
            "{msg}"
        );

        let amb = CapSet::from_names(["CAP_KILL", "CAP_CHOWN"], "a").unwrap();
        let kill = CapSet::from_names(["CAP_KILL"], "i").unwrap();
        let mut runc_spec = Sets {
            permitted: perm,
            inheritable: kill,
            ambient: amb,
            ..Sets::default()
        };
        runc_spec.check().unwrap();
        assert_eq!(runc_spec.trim_ambient().names(), ["CAP_CHOWN"]);
        assert_eq!(runc_spec.ambient, kill);
    }

    #[test]
    fn limit_to_drops_capabilities_the_kernel_does_not_know() {
        let all = CapSet((1u64 << 41) - 1);
        let s = Sets {
            bounding: all,
            ..Sets::default()
        }
        .limit_to(37);
        assert_eq!(s.bounding.0, (1u64 << 38) - 1);
        assert!(!s.bounding.contains(38));
    }

    #[test]
    fn spec_capabilities_go_through_the_table() {
        let caps: Capabilities = [Capability::NetBindService, Capability::SysAdmin].into();
        let set = CapSet::from_spec(Some(&caps), "x").unwrap();
        assert_eq!(set.names(), ["CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"]);
    }
}
