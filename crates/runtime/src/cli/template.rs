//! `spec` (a starter `config.json`) and `features` (what this runtime implements).

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Value, json};

const CAPS: &[&str] = &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// The starter spec: busybox-friendly `sh`, a read-only rootfs, the usual mounts and namespaces.
pub(crate) fn default_spec(rootless: bool) -> Value {
    let mut spec = json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": CAPS, "effective": CAPS, "permitted": CAPS},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "drover",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    if rootless {
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        let linux = &mut spec["linux"];
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        linux["namespaces"] = json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}]);
        if let Some(o) = linux.as_object_mut() {
            o.remove("resources");
        }
        // Without a network namespace of its own, sysfs cannot be mounted: bind the host's.
        let mounts = spec["mounts"]
            .as_array_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        let mounts: Vec<Value> = mounts
            .into_iter()
            .filter(|m| m["destination"] != "/sys/fs/cgroup")
            .map(|m| {
                if m["destination"] == "/sys" {
                    json!({"destination": "/sys", "type": "none", "source": "/sys",
                           "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
                } else if m["destination"] == "/dev/pts" {
                    json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                           "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]})
                } else {
                    m
                }
            })
            .collect();
        spec["mounts"] = Value::Array(mounts);
    }
    spec
}

/// Writes `<dir>/config.json`, refusing to overwrite one (runc's behaviour).
pub(crate) fn write(dir: &Path, rootless: bool) -> anyhow::Result<()> {
    let path = dir.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let body = serde_json::to_string_pretty(&default_spec(rootless))?;
    std::fs::write(&path, body + "\n").with_context(|| format!("writing {}", path.display()))
}

/// `features`: the runtime-spec features document.
pub(crate) fn features() -> Value {
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
            "noatime", "nodev", "nodiratime", "noexec", "norelatime", "nostrictatime", "nosuid",
            "private", "rbind", "relatime", "remount", "ro", "rprivate", "rshared", "rslave",
            "rw", "shared", "slave", "strictatime", "suid", "sync", "unbindable", "runbindable"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {"enabled": true},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false}
        },
        "annotations": {"io.github.drover.runtime.version": env!("CARGO_PKG_VERSION")}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_specs_pass_our_own_checks() {
        for rootless in [false, true] {
            let body = serde_json::to_vec(&default_spec(rootless)).unwrap();
            crate::spec::check(&crate::spec::parse(&body).unwrap()).unwrap();
        }
    }

    #[test]
    fn spec_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), false).unwrap();
        assert!(
            write(dir.path(), false)
                .unwrap_err()
                .to_string()
                .contains("exists. Remove it first")
        );
    }
}
