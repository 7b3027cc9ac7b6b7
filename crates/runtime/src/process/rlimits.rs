//! Resource limits: the spec's names, and the clamp to the host's hard limits.
//!
//! Raising a hard limit needs `CAP_SYS_RESOURCE` in the initial user namespace. Hosts without it
//! exist (this one: root's `ulimit -Hn` is 20000), and podman's default `nofile=1048576` then
//! fails in runc and crun with `setrlimit: Operation not permitted`. Drover clamps instead: a
//! limit above what the runtime process itself may set is lowered to that, with a warning.

use oci_spec::runtime::PosixRlimitType;
use rustix::process::Resource;

/// `RLIM_INFINITY` as the spec writes it.
pub const INFINITY: u64 = u64::MAX;

/// The spec's name of an rlimit type (`RLIMIT_NOFILE`) and the kernel's resource.
pub fn resource(t: PosixRlimitType) -> (&'static str, Resource) {
    use PosixRlimitType as T;
    match t {
        T::RlimitCpu => ("RLIMIT_CPU", Resource::Cpu),
        T::RlimitFsize => ("RLIMIT_FSIZE", Resource::Fsize),
        T::RlimitData => ("RLIMIT_DATA", Resource::Data),
        T::RlimitStack => ("RLIMIT_STACK", Resource::Stack),
        T::RlimitCore => ("RLIMIT_CORE", Resource::Core),
        T::RlimitRss => ("RLIMIT_RSS", Resource::Rss),
        T::RlimitNproc => ("RLIMIT_NPROC", Resource::Nproc),
        T::RlimitNofile => ("RLIMIT_NOFILE", Resource::Nofile),
        T::RlimitMemlock => ("RLIMIT_MEMLOCK", Resource::Memlock),
        T::RlimitAs => ("RLIMIT_AS", Resource::As),
        T::RlimitLocks => ("RLIMIT_LOCKS", Resource::Locks),
        T::RlimitSigpending => ("RLIMIT_SIGPENDING", Resource::Sigpending),
        T::RlimitMsgqueue => ("RLIMIT_MSGQUEUE", Resource::Msgqueue),
        T::RlimitNice => ("RLIMIT_NICE", Resource::Nice),
        T::RlimitRtprio => ("RLIMIT_RTPRIO", Resource::Rtprio),
        T::RlimitRttime => ("RLIMIT_RTTIME", Resource::Rttime),
    }
}

/// A soft/hard pair after the clamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clamped {
    /// The soft limit to set.
    pub soft: u64,
    /// The hard limit to set.
    pub hard: u64,
    /// Whether the request was lowered.
    pub lowered: bool,
}

/// Clamp a requested `(soft, hard)` pair: with `CAP_SYS_RESOURCE` nothing changes; without it
/// the hard limit cannot exceed `host_hard` (the runtime's own hard limit, which the child
/// inherits) and the soft limit cannot exceed the resulting hard limit.
pub fn clamp(soft: u64, hard: u64, host_hard: u64, cap_sys_resource: bool) -> Clamped {
    if cap_sys_resource || hard <= host_hard {
        return Clamped {
            soft,
            hard,
            lowered: false,
        };
    }
    Clamped {
        soft: soft.min(host_hard),
        hard: host_hard,
        lowered: true,
    }
}

/// Clamp an `oom_score_adj`: lowering it below the current value needs `CAP_SYS_RESOURCE`
/// (the kernel refuses values below `oom_score_adj_min`, which starts at the inherited value),
/// so without the capability a lower request keeps the current value.
pub fn clamp_oom_score_adj(requested: i32, current: i32, cap_sys_resource: bool) -> (i32, bool) {
    if cap_sys_resource || requested >= current {
        (requested, false)
    } else {
        (current, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_cap_sys_resource_the_hard_limit_is_capped_at_the_hosts() {
        let c = clamp(1_048_576, 1_048_576, 20_000, false);
        assert_eq!(
            c,
            Clamped {
                soft: 20_000,
                hard: 20_000,
                lowered: true
            }
        );
        // A soft limit already under the cap stays.
        let c = clamp(1024, 1_048_576, 20_000, false);
        assert_eq!(
            c,
            Clamped {
                soft: 1024,
                hard: 20_000,
                lowered: true
            }
        );
        // Infinity is the largest request of all.
        let c = clamp(INFINITY, INFINITY, 20_000, false);
        assert_eq!((c.soft, c.hard), (20_000, 20_000));
    }

    #[test]
    fn requests_within_the_hosts_hard_limit_or_with_the_capability_are_kept() {
        assert_eq!(
            clamp(10, 100, 20_000, false),
            Clamped {
                soft: 10,
                hard: 100,
                lowered: false
            }
        );
        assert_eq!(
            clamp(1_048_576, 1_048_576, 20_000, true),
            Clamped {
                soft: 1_048_576,
                hard: 1_048_576,
                lowered: false
            }
        );
        assert_eq!(clamp(5, INFINITY, INFINITY, false).hard, INFINITY);
    }

    #[test]
    fn oom_score_adj_is_not_lowered_without_the_capability() {
        assert_eq!(clamp_oom_score_adj(-500, 0, false), (0, true));
        assert_eq!(clamp_oom_score_adj(-500, 0, true), (-500, false));
        assert_eq!(clamp_oom_score_adj(500, 0, false), (500, false));
    }
}
