//! Which cgroup hierarchies the host has: read from `/proc/self/mountinfo`, the unified mount's
//! `cgroup.controllers` and `/proc/self/cgroup`.
//!
//! Every path is read under a *root* argument so unit tests run detection against recorded trees
//! (`testdata/cgroups/{v1,v2,hybrid}`); the real call is [`detect`] with root `/`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::CgroupError;

/// The three shapes a host's cgroup filesystems come in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LayoutKind {
    /// Only v1 hierarchies (one per controller or per co-mounted group).
    V1,
    /// Only the unified (cgroup2) hierarchy.
    V2,
    /// v1 hierarchies for the controllers plus a cgroup2 mount (usually
    /// `/sys/fs/cgroup/unified`) with few or no controllers.
    Hybrid,
}

/// One mounted v1 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Hierarchy {
    /// Where the hierarchy is mounted (under the detection root), e.g. `/sys/fs/cgroup/memory`.
    pub mount_point: PathBuf,
    /// The controllers bound to it (`cpu`, `cpuacct`, …) or a named hierarchy (`name=systemd`).
    pub controllers: Vec<String>,
    /// The mount options that select it, as `mount -t cgroup -o <options>` takes them
    /// (`cpu,cpuacct`, `name=systemd`): what a container's own cgroup mount uses.
    pub options: String,
    /// This process's cgroup in the hierarchy, relative to the mount (from `/proc/self/cgroup`).
    pub own_path: PathBuf,
}

impl V1Hierarchy {
    /// Whether `controller` is bound to this hierarchy.
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// The directory name runc uses for it inside a container: the options string
    /// (`cpu,cpuacct`), or the name for a named hierarchy (`systemd`).
    pub fn dir_name(&self) -> &str {
        self.options.strip_prefix("name=").unwrap_or(&self.options)
    }
}

/// The mounted unified (cgroup2) hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unified {
    /// Where it is mounted (under the detection root): `/sys/fs/cgroup` or `/sys/fs/cgroup/unified`.
    pub mount_point: PathBuf,
    /// The controllers its root offers (`cgroup.controllers`); empty or nearly so on hybrid hosts.
    pub controllers: Vec<String>,
    /// This process's cgroup in it, relative to the mount (the `0::` line of `/proc/self/cgroup`).
    pub own_path: PathBuf,
}

impl Unified {
    /// Whether `controller` is available at the unified root.
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The cgroup filesystems of a host, as [`detect`] found them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupLayout {
    /// v1, v2 or hybrid.
    pub kind: LayoutKind,
    /// The v1 hierarchies, in mountinfo order (empty on v2).
    pub v1: Vec<V1Hierarchy>,
    /// The unified hierarchy, if cgroup2 is mounted.
    pub unified: Option<Unified>,
}

impl CgroupLayout {
    /// The v1 hierarchy a controller is bound to.
    pub fn v1_for(&self, controller: &str) -> Option<&V1Hierarchy> {
        self.v1.iter().find(|h| h.has(controller))
    }

    /// Whether a controller exists anywhere (a v1 hierarchy or the unified root).
    pub fn has_controller(&self, controller: &str) -> bool {
        self.v1_for(controller).is_some()
            || self.unified.as_ref().is_some_and(|u| u.has(controller))
    }
}

/// Detects the layout of this host (root `/`).
pub fn detect() -> Result<CgroupLayout, CgroupError> {
    detect_at(Path::new("/"))
}

/// Detects the layout from `root/proc/self/mountinfo`, `root/proc/self/cgroup` and the unified
/// mount's `cgroup.controllers` under `root`. Mount points in the result are joined to `root`.
pub fn detect_at(root: &Path) -> Result<CgroupLayout, CgroupError> {
    let mountinfo_path = root.join("proc/self/mountinfo");
    let mountinfo = read(&mountinfo_path)?;
    let cgroup_path = root.join("proc/self/cgroup");
    let own = parse_proc_cgroup(&read(&cgroup_path)?, &cgroup_path)?;

    let mut v1 = Vec::new();
    let mut unified = None;
    let mut seen_devices = HashSet::new();
    for (n, line) in mountinfo.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let m = parse_mountinfo_line(line).ok_or_else(|| CgroupError::Mountinfo {
            path: mountinfo_path.clone(),
            line: n + 1,
            text: line.to_string(),
        })?;
        if m.fstype != "cgroup" && m.fstype != "cgroup2" {
            continue;
        }
        // The same hierarchy bind-mounted twice shows the same device: keep the first.
        if !seen_devices.insert(m.device.clone()) {
            continue;
        }
        let mount_point = under_root(root, &m.mount_point);
        if m.fstype == "cgroup2" {
            let controllers_file = mount_point.join("cgroup.controllers");
            let controllers = read(&controllers_file)?
                .split_whitespace()
                .map(str::to_string)
                .collect();
            let own_path = relative_to_mount(&m.root, own.unified.as_deref().unwrap_or("/"));
            unified = Some(Unified {
                mount_point,
                controllers,
                own_path,
            });
        } else {
            let controllers = v1_controllers(&m.super_options);
            if controllers.is_empty() {
                return Err(CgroupError::Mountinfo {
                    path: mountinfo_path.clone(),
                    line: n + 1,
                    text: format!("{line} (a cgroup v1 mount that names no controller)"),
                });
            }
            let options = controllers.join(",");
            let own_line = own.v1.iter().find(|(set, _)| same_set(set, &controllers));
            let own_path = relative_to_mount(&m.root, own_line.map_or("/", |(_, p)| p.as_str()));
            v1.push(V1Hierarchy {
                mount_point,
                controllers,
                options,
                own_path,
            });
        }
    }
    let kind = match (v1.is_empty(), unified.is_some()) {
        (false, false) => LayoutKind::V1,
        (true, true) => LayoutKind::V2,
        (false, true) => LayoutKind::Hybrid,
        (true, false) => {
            return Err(CgroupError::NoCgroupFs {
                mountinfo: mountinfo_path,
            });
        }
    };
    Ok(CgroupLayout { kind, v1, unified })
}

fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })
}

fn under_root(root: &Path, p: &str) -> PathBuf {
    root.join(p.trim_start_matches('/'))
}

/// A cgroup path from `/proc/self/cgroup` made relative to the mount's root (a container that
/// bind-mounts its own subtree sees `root` = its path).
fn relative_to_mount(mount_root: &str, cgroup: &str) -> PathBuf {
    let cg = Path::new(cgroup);
    let rel = cg.strip_prefix(mount_root).unwrap_or(cg);
    rel.strip_prefix("/").unwrap_or(rel).to_path_buf()
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

/// The fields of one mountinfo line this module needs.
struct MountLine {
    device: String,
    root: String,
    mount_point: String,
    fstype: String,
    super_options: String,
}

/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue` (proc(5)).
fn parse_mountinfo_line(line: &str) -> Option<MountLine> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let _id = l.next()?;
    let _parent = l.next()?;
    let device = l.next()?;
    let root = l.next()?;
    let mount_point = l.next()?;
    let _opts = l.next()?;
    let mut r = right.split(' ');
    let fstype = r.next()?;
    let _source = r.next()?;
    let super_options = r.next()?;
    // Only cgroup mounts must have a path as their root: nsfs mounts (`ip netns add`) show
    // `net:[4026532177]` there.
    let root_ok = root.starts_with('/') || !fstype.starts_with("cgroup");
    if !device.contains(':') || !root_ok || !mount_point.starts_with('/') {
        return None;
    }
    Some(MountLine {
        device: device.to_string(),
        root: unescape(root),
        mount_point: unescape(mount_point),
        fstype: fstype.to_string(),
        super_options: super_options.to_string(),
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = (b[i] == b'\\' && i + 3 < b.len())
            .then(|| &b[i + 1..i + 4])
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| {
                let v = d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
                u8::try_from(v).ok()
            });
        if let Some(v) = octal {
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The controllers in a v1 mount's super options (`rw,cpu,cpuacct`, `rw,xattr,name=systemd`):
/// every option except the generic ones and `key=value` options other than `name=`.
fn v1_controllers(super_options: &str) -> Vec<String> {
    const GENERIC: &[&str] = &[
        "rw",
        "ro",
        "xattr",
        "noprefix",
        "clone_children",
        "cpuset_v2_mode",
        "favordynmods",
        "none",
    ];
    super_options
        .split(',')
        .filter(|o| !GENERIC.contains(o))
        .filter(|o| !o.contains('=') || o.starts_with("name="))
        .map(str::to_string)
        .collect()
}

/// This process's cgroups: v1 lines `N:ctrl,ctrl:/path` and the v2 line `0::/path`.
struct OwnCgroups {
    v1: Vec<(Vec<String>, String)>,
    unified: Option<String>,
}

fn parse_proc_cgroup(text: &str, path: &Path) -> Result<OwnCgroups, CgroupError> {
    let mut own = OwnCgroups {
        v1: Vec::new(),
        unified: None,
    };
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(ctrls), Some(p)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CgroupError::Mountinfo {
                path: path.to_path_buf(),
                line: n + 1,
                text: line.to_string(),
            });
        };
        if ctrls.is_empty() {
            own.unified = Some(p.to_string());
        } else {
            own.v1.push((
                ctrls.split(',').map(str::to_string).collect(),
                p.to_string(),
            ));
        }
    }
    Ok(own)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/cgroups")
            .join(name)
    }

    #[test]
    fn hybrid_host_like_this_one_has_v1_controllers_and_a_unified_mount_with_only_hugetlb() {
        let root = testdata("hybrid");
        let l = detect_at(&root).unwrap();
        assert_eq!(l.kind, LayoutKind::Hybrid);
        let names: Vec<&str> = l.v1.iter().map(|h| h.options.as_str()).collect();
        assert_eq!(
            names,
            [
                "cpu",
                "cpuacct",
                "cpuset",
                "memory",
                "devices",
                "freezer",
                "blkio",
                "pids",
                "name=systemd"
            ]
        );
        let u = l.unified.as_ref().unwrap();
        assert_eq!(u.mount_point, root.join("sys/fs/cgroup/unified"));
        assert_eq!(u.controllers, ["hugetlb"]);
        assert_eq!(
            l.v1_for("memory").unwrap().own_path,
            Path::new("process_api/5c46")
        );
        assert_eq!(l.v1_for("pids").unwrap().own_path, Path::new(""));
        assert_eq!(l.v1[8].dir_name(), "systemd");
        assert!(l.has_controller("hugetlb") && !l.has_controller("io"));
    }

    #[test]
    fn v1_host_with_co_mounted_controllers_keeps_them_together() {
        let l = detect_at(&testdata("v1")).unwrap();
        assert_eq!(l.kind, LayoutKind::V1);
        assert!(l.unified.is_none());
        let cpu = l.v1_for("cpuacct").unwrap();
        assert_eq!(cpu.controllers, ["cpu", "cpuacct"]);
        assert_eq!(cpu.dir_name(), "cpu,cpuacct");
        assert_eq!(cpu.own_path, Path::new("user.slice"));
        assert!(l.v1_for("net_prio").is_some());
        // The bind mount of the same hierarchy (same device) is not a second hierarchy.
        assert_eq!(l.v1.iter().filter(|h| h.has("memory")).count(), 1);
    }

    #[test]
    fn v2_host_reads_controllers_from_the_unified_root() {
        let root = testdata("v2");
        let l = detect_at(&root).unwrap();
        assert_eq!(l.kind, LayoutKind::V2);
        assert!(l.v1.is_empty());
        let u = l.unified.unwrap();
        assert_eq!(u.mount_point, root.join("sys/fs/cgroup"));
        assert_eq!(
            u.controllers,
            [
                "cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"
            ]
        );
        assert_eq!(
            u.own_path,
            Path::new("user.slice/user-1000.slice/session-1.scope")
        );
    }

    #[test]
    fn broken_mountinfo_is_an_error_naming_the_file_and_line() {
        let err = detect_at(&testdata("broken")).unwrap_err().to_string();
        assert!(
            err.contains("proc/self/mountinfo") && err.contains("line 3"),
            "{err}"
        );
    }

    #[test]
    fn a_host_without_cgroup_mounts_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/self")).unwrap();
        std::fs::write(
            dir.path().join("proc/self/mountinfo"),
            "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("proc/self/cgroup"), "0::/\n").unwrap();
        let err = detect_at(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no cgroup filesystem"), "{err}");
    }

    #[test]
    fn garbled_mountinfo_never_panics() {
        // Mutations of real lines (bytes dropped, swapped in, truncated): each parse either
        // succeeds or is an error; none may panic.
        let real = std::fs::read_to_string(testdata("hybrid").join("proc/self/mountinfo")).unwrap();
        let alphabet = b" -/:\\0123456789abcdefgnrwxyz,=[]";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut ok, mut err) = (0, 0);
        for _ in 0..3000 {
            let mut bytes = real.as_bytes().to_vec();
            for _ in 0..(next() % 8 + 1) {
                let i = (next() as usize) % bytes.len().max(1);
                match next() % 3 {
                    0 => bytes[i] = alphabet[(next() as usize) % alphabet.len()],
                    1 => drop(bytes.remove(i)),
                    _ => bytes.truncate(i),
                }
                if bytes.is_empty() {
                    break;
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            for line in text.lines() {
                match parse_mountinfo_line(line) {
                    Some(_) => ok += 1,
                    None => err += 1,
                }
                let _ = unescape(line);
                let _ = v1_controllers(line);
            }
            let _ = parse_proc_cgroup(&text, Path::new("x"));
        }
        assert!(
            ok > 0 && err > 0,
            "the mutations hit both outcomes: {ok} ok, {err} errors"
        );
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape(r"/mnt/a\040b"), "/mnt/a b");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(
            unescape(r"/odd\777"),
            r"/odd\777",
            "not a byte: kept as written"
        );
    }
}
