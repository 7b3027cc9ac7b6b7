//! Device rules for the v1 `devices` controller.
//!
//! A container's device cgroup starts from "deny everything" (`devices.deny` ← `a`), then the
//! spec's `linux.resources.devices` rules in order, then runc's standard allow list (the
//! devices every container gets: null, zero, full, random, urandom, tty, the pty master and
//! slaves, tun, plus `mknod` of anything, which the rootfs code needs to create `/dev`).

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::CgroupError;

/// runc's default allow list (`AllowedDevices` in runc's `libcontainer/specconv`), as
/// `(type, major, minor, access)`; `None` is the `*` wildcard.
const DEFAULT_ALLOWED: &[(char, Option<i64>, Option<i64>, &str)] = &[
    ('c', None, None, "m"),            // mknod of any character device
    ('b', None, None, "m"),            // mknod of any block device
    ('c', Some(1), Some(3), "rwm"),    // /dev/null
    ('c', Some(1), Some(8), "rwm"),    // /dev/random
    ('c', Some(1), Some(7), "rwm"),    // /dev/full
    ('c', Some(5), Some(0), "rwm"),    // /dev/tty
    ('c', Some(1), Some(5), "rwm"),    // /dev/zero
    ('c', Some(1), Some(9), "rwm"),    // /dev/urandom
    ('c', Some(136), None, "rwm"),     // /dev/pts/*
    ('c', Some(5), Some(2), "rwm"),    // /dev/ptmx
    ('c', Some(10), Some(200), "rwm"), // /dev/net/tun
];

/// runc's default allow list as OCI device rules (every container gets them after its own).
pub fn default_allowed_devices() -> Vec<LinuxDeviceCgroup> {
    DEFAULT_ALLOWED
        .iter()
        .map(|&(t, major, minor, access)| {
            let mut r = LinuxDeviceCgroup::default();
            r.set_allow(true);
            r.set_typ(Some(if t == 'b' {
                LinuxDeviceType::B
            } else {
                LinuxDeviceType::C
            }));
            r.set_major(major);
            r.set_minor(minor);
            r.set_access(Some(access.to_string()));
            r
        })
        .collect()
}

/// `resources` with an allow rule (`rwm`) appended for every device node the spec creates
/// (`linux.devices`), so a container can use the nodes it was given, as runc allows them.
pub fn allow_spec_devices(
    resources: Option<&LinuxResources>,
    devices: &[LinuxDevice],
) -> LinuxResources {
    let mut r = resources.cloned().unwrap_or_default();
    let mut rules = r.devices().clone().unwrap_or_default();
    for d in devices {
        let mut rule = LinuxDeviceCgroup::default();
        rule.set_allow(true);
        rule.set_typ(Some(d.typ()));
        rule.set_major(Some(d.major()));
        rule.set_minor(Some(d.minor()));
        rule.set_access(Some("rwm".to_string()));
        rules.push(rule);
    }
    r.set_devices(Some(rules));
    r
}

/// The `(file, value)` writes for a v1 devices cgroup: deny all, `rules`, then the defaults.
pub(super) fn v1_device_writes(
    rules: &[LinuxDeviceCgroup],
) -> Result<Vec<(&'static str, String)>, CgroupError> {
    let mut out = vec![("devices.deny", "a".to_string())];
    for r in rules.iter().cloned().chain(default_allowed_devices()) {
        let file = if r.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        out.push((file, rule_string(&r)?));
    }
    Ok(out)
}

/// Whether `rules` only add permissions (no deny rule), so that a host without a device
/// controller enforces nothing the spec asked to forbid.
pub(super) fn only_allows(rules: &[LinuxDeviceCgroup]) -> bool {
    rules.iter().all(|r| r.allow())
}

/// `c 1:3 rwm`, the format of `devices.allow` and `devices.deny`.
pub(super) fn rule_string(r: &LinuxDeviceCgroup) -> Result<String, CgroupError> {
    let t = match r.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => 'a',
        LinuxDeviceType::B => 'b',
        LinuxDeviceType::C | LinuxDeviceType::U => 'c',
        LinuxDeviceType::P => {
            return Err(CgroupError::BadValue {
                field: "devices",
                reason: "type \"p\" (FIFO) cannot be a device cgroup rule; use a, b or c".into(),
            });
        }
    };
    let num = |n: Option<i64>| match n {
        None | Some(-1) => Ok("*".to_string()),
        Some(n) if n >= 0 => Ok(n.to_string()),
        Some(n) => Err(CgroupError::BadValue {
            field: "devices",
            reason: format!("device number {n} is negative"),
        }),
    };
    let access = r.access().clone().unwrap_or_else(|| "rwm".to_string());
    let access = if access.is_empty() {
        "rwm".to_string()
    } else {
        access
    };
    if !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(CgroupError::BadValue {
            field: "devices",
            reason: format!("access {access:?} may only contain r, w and m"),
        });
    }
    Ok(format!(
        "{t} {}:{} {access}",
        num(r.major())?,
        num(r.minor())?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        t: LinuxDeviceType,
        major: Option<i64>,
        minor: Option<i64>,
        a: &str,
    ) -> LinuxDeviceCgroup {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(allow);
        r.set_typ(Some(t));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(a.to_string()));
        r
    }

    #[test]
    fn device_writes_deny_all_then_spec_rules_in_order_then_runc_defaults() {
        let spec = [
            rule(false, LinuxDeviceType::A, None, None, "rwm"),
            rule(true, LinuxDeviceType::B, Some(8), Some(0), "r"),
        ];
        let w = v1_device_writes(&spec).unwrap();
        assert_eq!(w[0], ("devices.deny", "a".to_string()));
        assert_eq!(w[1], ("devices.deny", "a *:* rwm".to_string()));
        assert_eq!(w[2], ("devices.allow", "b 8:0 r".to_string()));
        assert_eq!(w[3], ("devices.allow", "c *:* m".to_string()));
        assert!(w.contains(&("devices.allow", "c 1:3 rwm".to_string())));
        assert!(w.contains(&("devices.allow", "c 136:* rwm".to_string())));
        assert_eq!(w.len(), 3 + DEFAULT_ALLOWED.len());
    }

    #[test]
    fn spec_device_nodes_get_allow_rules_after_the_resource_rules() {
        let res: LinuxResources =
            serde_json::from_str(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#).unwrap();
        let fuse: LinuxDevice =
            serde_json::from_str(r#"{"path":"/dev/fuse","type":"c","major":10,"minor":229}"#)
                .unwrap();
        let r = allow_spec_devices(Some(&res), &[fuse]);
        let w = v1_device_writes(r.devices().as_ref().unwrap()).unwrap();
        assert_eq!(w[1], ("devices.deny", "a *:* rwm".to_string()));
        assert_eq!(w[2], ("devices.allow", "c 10:229 rwm".to_string()));
    }

    #[test]
    fn bad_device_rules_are_errors_naming_the_problem() {
        let e = rule_string(&rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwx")).unwrap_err();
        assert!(e.to_string().contains("\"rwx\""), "{e}");
        let e = rule_string(&rule(true, LinuxDeviceType::P, None, None, "r")).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
    }
}
