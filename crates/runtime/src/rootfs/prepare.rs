//! Parent side: the spec → a [`Plan`].

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, bail};
use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};

use super::options::{self, ms};
use super::path::{InRootPath, Kind};
use super::{LinkOp, MountOp, Op, Options, Plan, dev};
use crate::cgroups::{Cgroup, Hierarchy};

/// Files under `/proc` a mount may cover (lxcfs-style), as runc allows.
const PROC_FILES_ALLOWED: [&str; 10] = [
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// Which namespaces the spec gives the container (new or joined).
#[derive(Clone, Copy, Debug, Default)]
struct Namespaces {
    ipc: bool,
    net: bool,
    uts: bool,
    cgroup: bool,
}

impl Namespaces {
    fn of(spec: &Spec) -> Self {
        let mut n = Self::default();
        let list = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        for ns in list {
            match ns.typ() {
                LinuxNamespaceType::Ipc => n.ipc = true,
                LinuxNamespaceType::Network => n.net = true,
                LinuxNamespaceType::Uts => n.uts = true,
                LinuxNamespaceType::Cgroup => n.cgroup = true,
                _ => {}
            }
        }
        n
    }
}

/// Turn the spec's root, mounts, devices, sysctls, masked and read-only paths into a [`Plan`].
pub fn prepare(spec: &Spec, opts: &Options<'_>) -> anyhow::Result<Plan> {
    // Bind sources are mounted by path from the child: make them absolute here.
    let bundle = opts
        .bundle
        .canonicalize()
        .with_context(|| format!("bundle {}: cannot resolve it", opts.bundle.display()))?;
    let opts = &Options {
        bundle: &bundle,
        ..*opts
    };
    let root = spec.root().as_ref().context("the spec has no root")?;
    let rootfs = opts.bundle.join(root.path());
    let rootfs_path = rootfs
        .canonicalize()
        .with_context(|| format!("root.path {}: cannot resolve it", rootfs.display()))?;
    if !rootfs_path.is_dir() {
        bail!("root.path {} is not a directory", rootfs_path.display());
    }
    let linux = spec.linux().as_ref();
    let namespaces = Namespaces::of(spec);

    let (root_propagation, after_pivot_propagation, parent_mount) = match linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .filter(|s| !s.is_empty())
    {
        None => (ms::REC | ms::PRIVATE, None, None),
        Some(name) => {
            let Some(flag) = options::propagation(name) else {
                bail!(
                    "linux.rootfsPropagation {name:?} is not one of private, rprivate, slave, \
                         rslave, shared, rshared, unbindable, runbindable"
                );
            };
            // pivot_root refuses a new root whose parent mount is shared: make that one
            // private again, and give the new root the asked propagation afterwards.
            let parent = if flag & ms::SHARED != 0 {
                Some(cstring(
                    &mount_point_of(&rootfs_path)?,
                    "rootfs parent mount",
                )?)
            } else {
                None
            };
            // Always recursive, so no mount we make below leaks to a host peer unasked.
            (flag | ms::REC, Some(flag), parent)
        }
    };

    let mut ops = Vec::new();
    let mut descriptions = Vec::new();
    let mounts = with_dev_defaults(spec.mounts().clone().unwrap_or_default(), opts, namespaces);
    let dev_mount = mounts
        .iter()
        .map(|(_, m)| m)
        .find(|m| same_path(m.destination(), "/dev"));
    let setup_dev = !dev_mount.is_some_and(is_bind);
    let mut dev_read_only = false;
    for (label, m) in &mounts {
        let dev_ro = mount_ops(label, m, opts, namespaces, &mut ops, &mut descriptions)?;
        dev_read_only |= dev_ro;
    }

    if setup_dev {
        let devices = linux.and_then(|l| l.devices().clone()).unwrap_or_default();
        for node in dev::nodes(&devices, opts.user_namespace)? {
            descriptions.push(format!("device {}", node.target.display));
            ops.push(Op::Node(node));
        }
        for link in dev::links()? {
            descriptions.push(format!(
                "symlink {} -> {}",
                link.link.display,
                link.target.to_string_lossy()
            ));
            ops.push(Op::Link(link));
        }
    }
    if opts.console.is_some() {
        descriptions.push("/dev/console".to_owned());
        ops.push(Op::Console(InRootPath::new(
            Path::new("/dev/console"),
            "console",
        )?));
    }
    if dev_read_only {
        descriptions.push("read-only /dev".to_owned());
        ops.push(Op::RemountRo(InRootPath::new(Path::new("/dev"), "/dev")?));
    }

    let mut sysctls = Vec::new();
    let mut sysctl_names = Vec::new();
    let mut keys: Vec<(&String, &String)> = linux
        .and_then(|l| l.sysctl().as_ref())
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    keys.sort();
    for (key, value) in keys {
        let path = sysctl_path(key, namespaces)?;
        sysctls.push((
            cstring(Path::new(&path), "linux.sysctl")?,
            value.as_bytes().to_vec(),
        ));
        sysctl_names.push(format!("{key} = {value}"));
    }

    let abs_paths = |list: Option<&Vec<String>>, field: &str| -> anyhow::Result<Vec<CString>> {
        let mut out = Vec::new();
        for p in list.into_iter().flatten() {
            if !p.starts_with('/') {
                bail!("{field} entry {p:?} must be an absolute path");
            }
            out.push(cstring(Path::new(p), field)?);
        }
        Ok(out)
    };

    Ok(Plan {
        rootfs: cstring(&rootfs_path, "root.path")?,
        rootfs_path,
        root_propagation,
        after_pivot_propagation,
        parent_mount,
        ops,
        descriptions,
        console: opts.console.map(|p| cstring(p, "console")).transpose()?,
        no_pivot: opts.no_pivot,
        sysctls,
        sysctl_names,
        readonly_paths: abs_paths(
            linux.and_then(|l| l.readonly_paths().as_ref()),
            "linux.readonlyPaths",
        )?,
        masked_paths: abs_paths(
            linux.and_then(|l| l.masked_paths().as_ref()),
            "linux.maskedPaths",
        )?,
        readonly_root: root.readonly().unwrap_or(false),
    })
}

/// The spec's mounts, each with its label for messages (`mounts[3]`), with runc's `/dev` set
/// added where the spec has none: a tmpfs on `/dev` first, then devpts, `/dev/shm` and (with an
/// IPC namespace) `/dev/mqueue` after the rest.
fn with_dev_defaults(
    spec_mounts: Vec<Mount>,
    opts: &Options<'_>,
    ns: Namespaces,
) -> Vec<(String, Mount)> {
    let mut mounts: Vec<(String, Mount)> = spec_mounts
        .into_iter()
        .enumerate()
        .map(|(i, m)| (format!("mounts[{i}]"), m))
        .collect();
    let has = |mounts: &[(String, Mount)], d: &str| {
        mounts.iter().any(|(_, m)| same_path(m.destination(), d))
    };
    let mk = |dest: &str, typ: &str, options: &[&str]| {
        let mut m = Mount::default();
        m.set_destination(PathBuf::from(dest));
        m.set_typ(Some(typ.to_owned()));
        m.set_source(Some(PathBuf::from(typ)));
        m.set_options(Some(options.iter().map(|s| (*s).to_owned()).collect()));
        (format!("default mount {dest}"), m)
    };
    if !has(&mounts, "/dev") {
        let dev = mk(
            "/dev",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        );
        mounts.insert(0, dev);
    } else if mounts
        .iter()
        .any(|(_, m)| same_path(m.destination(), "/dev") && is_bind(m))
    {
        return mounts;
    }
    if !has(&mounts, "/dev/pts") {
        let mut o = vec![
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
        ];
        if !opts.user_namespace {
            o.push("gid=5");
        }
        mounts.push(mk("/dev/pts", "devpts", &o));
    }
    if !has(&mounts, "/dev/shm") {
        let o = ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"];
        mounts.push(mk("/dev/shm", "tmpfs", &o));
    }
    if ns.ipc && !has(&mounts, "/dev/mqueue") {
        mounts.push(mk("/dev/mqueue", "mqueue", &["nosuid", "noexec", "nodev"]));
    }
    mounts
}

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// Lexically equal container paths (`/dev/` = `/dev`).
fn same_path(a: &Path, b: &str) -> bool {
    normalize(a) == Path::new(b)
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// The ops of mount `i`; returns whether it is a read-only `/dev` (made read-only only after
/// the nodes are in it, as runc).
fn mount_ops(
    label: &str,
    m: &Mount,
    opts: &Options<'_>,
    ns: Namespaces,
    ops: &mut Vec<Op>,
    descriptions: &mut Vec<String>,
) -> anyhow::Result<bool> {
    let typ = m.typ().as_deref().unwrap_or("");
    let dest_norm = normalize(m.destination());
    let what = format!("{label} ({typ} on {})", m.destination().display());
    let target = InRootPath::new(m.destination(), &format!("{what} destination"))?;
    let parsed = options::parse(m.options().iter().flatten().map(String::as_str), &what)?;
    let is_bind_mount = parsed.bind.is_some() || typ == "bind";
    let source_is_procfs = is_bind_mount
        && m.source().as_ref().is_some_and(|s| {
            rustix::fs::statfs(opts.bundle.join(s)).is_ok_and(|st| st.f_type == PROC_SUPER_MAGIC)
        });
    check_proc_destination(&dest_norm, typ, source_is_procfs, &what)?;

    if typ == "cgroup" || typ == "cgroup2" {
        let Some(cg) = opts.cgroup else {
            bail!("{what}: the spec mounts a cgroup filesystem but the container has no cgroup");
        };
        return cgroup_ops(&what, &target, &parsed, cg, ns.cgroup, ops, descriptions)
            .map(|()| false);
    }

    if parsed.tmpcopyup && typ != "tmpfs" {
        bail!("{what}: tmpcopyup is only for tmpfs mounts");
    }
    let mut dev_ro = false;
    let op = if parsed.bind.is_some() || typ == "bind" {
        let source = m
            .source()
            .as_ref()
            .with_context(|| format!("{what}: a bind mount needs a source"))?;
        let source = opts.bundle.join(source);
        let meta = std::fs::metadata(&source)
            .with_context(|| format!("{what}: bind source {} does not exist", source.display()))?;
        MountOp {
            target,
            kind: if meta.is_dir() { Kind::Dir } else { Kind::File },
            source: cstring(&source, &what)?,
            fstype: CString::default(),
            flags: ms::BIND
                | if parsed.bind == Some(true) {
                    ms::REC
                } else {
                    0
                },
            data: None,
            bind_remount: (parsed.flags != 0).then_some((parsed.flags, parsed.cleared)),
            propagation: parsed.propagation,
            rbind_fallback: None,
            into_proc: dest_norm.starts_with("/proc"),
            recursive: parsed.recursive,
            copy_up: parsed.tmpcopyup,
        }
    } else {
        if typ.is_empty() {
            bail!("{what}: no type, and no bind or rbind option");
        }
        let mut flags = parsed.flags;
        if dest_norm == Path::new("/dev") && flags & ms::RDONLY != 0 {
            flags &= !ms::RDONLY;
            dev_ro = true;
        }
        // A read-only tmpfs with tmpcopyup is filled first, then made read-only.
        let copy_up_ro = parsed.tmpcopyup && flags & ms::RDONLY != 0;
        if copy_up_ro {
            flags &= !ms::RDONLY;
        }
        let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
        MountOp {
            target,
            kind: Kind::Dir,
            source: cstring(&source, &what)?,
            fstype: CString::new(typ).with_context(|| format!("{what}: NUL in the type"))?,
            flags,
            data: if parsed.data.is_empty() {
                None
            } else {
                Some(CString::new(parsed.data).with_context(|| format!("{what}: NUL in options"))?)
            },
            bind_remount: copy_up_ro.then_some((ms::RDONLY, 0)),
            propagation: parsed.propagation,
            rbind_fallback: (typ == "sysfs" && opts.user_namespace).then(|| c"/sys".to_owned()),
            into_proc: dest_norm.starts_with("/proc"),
            recursive: parsed.recursive,
            copy_up: parsed.tmpcopyup,
        }
    };
    descriptions.push(what);
    ops.push(Op::Mount(op));
    Ok(dev_ro)
}

/// `PROC_SUPER_MAGIC` (`statfs(2)`).
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

fn check_proc_destination(
    dest: &Path,
    typ: &str,
    source_is_procfs: bool,
    what: &str,
) -> anyhow::Result<()> {
    if !dest.starts_with("/proc") {
        return Ok(());
    }
    // A proc filesystem on /proc itself: a new one, or a bind of one (a user namespace without
    // its own PID namespace cannot mount a new one).
    if (dest == Path::new("/proc") && (typ == "proc" || source_is_procfs))
        || PROC_FILES_ALLOWED.iter().any(|p| dest == Path::new(p))
    {
        return Ok(());
    }
    bail!(
        "{what}: mounts inside /proc are refused (they could cover the kernel's own files); only \
         a proc filesystem (new or bound) on /proc itself and {} may be mounted there",
        PROC_FILES_ALLOWED.join(", ")
    )
}

/// Expand a `cgroup` mount: v2 alone → one mount; v1 or hybrid → a tmpfs with one mount per
/// hierarchy, symlinks for co-mounted controllers (`cpu -> cpu,cpuacct`) and `unified`.
#[allow(clippy::too_many_arguments)]
fn cgroup_ops(
    what: &str,
    dest: &InRootPath,
    parsed: &options::Parsed,
    cg: &Cgroup,
    cgroupns: bool,
    ops: &mut Vec<Op>,
    descriptions: &mut Vec<String>,
) -> anyhow::Result<()> {
    let mut push = |op: Op, d: String| {
        ops.push(op);
        descriptions.push(d);
    };
    let hierarchy = |target: InRootPath, fstype: &str, data: Option<String>, host: &Path| {
        if cgroupns {
            Ok::<_, anyhow::Error>(MountOp {
                target,
                kind: Kind::Dir,
                source: CString::new(fstype)?,
                fstype: CString::new(fstype)?,
                flags: parsed.flags,
                data: data.map(CString::new).transpose()?,
                bind_remount: None,
                propagation: Vec::new(),
                rbind_fallback: None,
                into_proc: false,
                recursive: None,
                copy_up: false,
            })
        } else {
            Ok(MountOp {
                target,
                kind: Kind::Dir,
                source: cstring(host, what)?,
                fstype: CString::default(),
                flags: ms::BIND,
                data: None,
                bind_remount: (parsed.flags != 0).then_some((parsed.flags, parsed.cleared)),
                propagation: Vec::new(),
                rbind_fallback: None,
                into_proc: false,
                recursive: None,
                copy_up: false,
            })
        }
    };
    let v1: Vec<_> = cg
        .dirs
        .iter()
        .filter_map(|d| match &d.hierarchy {
            Hierarchy::V1(c) => Some((c, d)),
            Hierarchy::Unified(_) => None,
        })
        .collect();
    let unified = cg
        .dirs
        .iter()
        .find(|d| matches!(d.hierarchy, Hierarchy::Unified(_)));
    if v1.is_empty() {
        let u =
            unified.with_context(|| format!("{what}: the container's cgroup has no directory"))?;
        let op = hierarchy(dest.clone(), "cgroup2", None, &u.path)?;
        push(Op::Mount(op), format!("{what}: cgroup2"));
        return Ok(());
    }
    let tmpfs = MountOp {
        target: dest.clone(),
        kind: Kind::Dir,
        source: c"tmpfs".to_owned(),
        fstype: c"tmpfs".to_owned(),
        flags: parsed.flags & !ms::RDONLY,
        data: Some(c"mode=755".to_owned()),
        bind_remount: None,
        propagation: Vec::new(),
        rbind_fallback: None,
        into_proc: false,
        recursive: None,
        copy_up: false,
    };
    push(Op::Mount(tmpfs), format!("{what}: tmpfs"));
    for (controllers, d) in v1 {
        let options = controllers.join(",");
        let dir = options.strip_prefix("name=").unwrap_or(&options).to_owned();
        let target = dest.join(&dir, what)?;
        let op = hierarchy(target, "cgroup", Some(options.clone()), &d.path)?;
        push(Op::Mount(op), format!("{what}: {dir}"));
        if controllers.len() > 1 {
            for c in controllers.iter().filter(|c| !c.starts_with("name=")) {
                let link = LinkOp {
                    link: dest.join(c, what)?,
                    target: CString::new(dir.as_str())?,
                    replace: false,
                };
                push(Op::Link(link), format!("{what}: symlink {c} -> {dir}"));
            }
        }
    }
    if let Some(u) = unified {
        let op = hierarchy(dest.join("unified", what)?, "cgroup2", None, &u.path)?;
        push(Op::Mount(op), format!("{what}: unified"));
    }
    // As runc 1.1, the tmpfs itself stays writable (nosuid, nodev, noexec); `ro` makes the
    // hierarchies read-only.
    Ok(())
}

/// `/proc/sys/…` for a sysctl key, refused unless the container has the namespace that makes
/// the setting its own (runc's rules: IPC for `kernel.msg*`/`sem`/`shm*` and `fs.mqueue.*`,
/// network for `net.*`, UTS for the host and domain names).
fn sysctl_path(key: &str, ns: Namespaces) -> anyhow::Result<String> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if key.is_empty()
        || key.split(['.', '/']).any(|c| c.is_empty() || c == "..")
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/:".contains(&b))
    {
        bail!("linux.sysctl key {key:?} is not a sysctl name");
    }
    // Classify by the dotted form; only the leading components matter.
    let dotted = key.replace('/', ".");
    let key_d = dotted.as_str();
    let allowed = if IPC.contains(&key_d) || key_d.starts_with("fs.mqueue.") {
        ns.ipc
    } else if key_d.starts_with("net.") {
        ns.net
    } else if key_d == "kernel.hostname" || key_d == "kernel.domainname" {
        ns.uts
    } else {
        false
    };
    if !allowed {
        bail!(
            "linux.sysctl {key:?} would change the host: it is not namespaced, or the container \
             lacks the namespace (ipc, network or uts) that makes it its own"
        );
    }
    // A key with '/' is already a path (interface names may hold dots: net/ipv4/conf/eth0.100/…).
    let rel = if key.contains('/') {
        key.to_owned()
    } else {
        key.replace('.', "/")
    };
    Ok(format!("/proc/sys/{rel}"))
}

/// The mount point (from `/proc/self/mountinfo`) that holds `path`.
fn mount_point_of(path: &Path) -> anyhow::Result<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").context("reading mountinfo")?;
    let mut best = PathBuf::from("/");
    for line in info.lines() {
        let Some(mp) = line.split(' ').nth(4) else {
            continue;
        };
        let mp = PathBuf::from(unescape(mp));
        if path.starts_with(&mp) && mp.as_os_str().len() > best.as_os_str().len() {
            best = mp;
        }
    }
    Ok(best)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn cstring(p: &Path, what: &str) -> anyhow::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).with_context(|| format!("{what}: NUL byte in {p:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(ipc: bool, net: bool, uts: bool) -> Namespaces {
        Namespaces {
            ipc,
            net,
            uts,
            cgroup: false,
        }
    }

    #[test]
    fn sysctls_need_their_namespace() {
        assert_eq!(
            sysctl_path("net.ipv4.ip_forward", ns(false, true, false)).unwrap(),
            "/proc/sys/net/ipv4/ip_forward"
        );
        let err = sysctl_path("net.ipv4.ip_forward", ns(true, false, true))
            .unwrap_err()
            .to_string();
        assert!(err.contains("net.ipv4.ip_forward"), "{err}");
        assert!(sysctl_path("kernel.shmmax", ns(true, false, false)).is_ok());
        assert!(sysctl_path("fs.mqueue.msg_max", ns(false, true, true)).is_err());
        assert!(sysctl_path("kernel.domainname", ns(false, false, true)).is_ok());
        assert!(sysctl_path("vm.swappiness", ns(true, true, true)).is_err());
        assert_eq!(
            sysctl_path("net/ipv4/conf/eth0.100/forwarding", ns(false, true, false)).unwrap(),
            "/proc/sys/net/ipv4/conf/eth0.100/forwarding"
        );
        assert!(sysctl_path("net.ipv4..x", ns(true, true, true)).is_err());
        assert!(sysctl_path("net/../../etc", ns(true, true, true)).is_err());
    }

    #[test]
    fn proc_destinations_are_refused_except_procfs_and_lxcfs_files() {
        assert!(check_proc_destination(Path::new("/proc"), "proc", false, "m").is_ok());
        assert!(check_proc_destination(Path::new("/proc/meminfo"), "bind", false, "m").is_ok());
        assert!(check_proc_destination(Path::new("/proc"), "tmpfs", false, "m").is_err());
        let err = check_proc_destination(
            &normalize(Path::new("/x/../proc/self/attr")),
            "bind",
            true,
            "mounts[3]",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("mounts[3]"), "{err}");
        assert!(check_proc_destination(Path::new("/procfs"), "bind", false, "m").is_ok());
        assert!(check_proc_destination(Path::new("/proc"), "bind", true, "m").is_ok());
        assert!(check_proc_destination(Path::new("/proc"), "bind", false, "m").is_err());
    }

    #[test]
    fn dev_defaults_are_added_only_where_missing_and_not_under_a_bound_dev() {
        let opts = Options {
            bundle: Path::new("/"),
            user_namespace: false,
            no_pivot: false,
            console: None,
            cgroup: None,
        };
        let m = with_dev_defaults(Vec::new(), &opts, ns(true, false, false));
        let dests: Vec<_> = m
            .iter()
            .map(|(_, m)| m.destination().display().to_string())
            .collect();
        assert_eq!(dests, ["/dev", "/dev/pts", "/dev/shm", "/dev/mqueue"]);
        assert!(
            m[1].1
                .options()
                .as_ref()
                .unwrap()
                .contains(&"gid=5".to_owned())
        );

        let userns = Options {
            user_namespace: true,
            ..opts
        };
        let m = with_dev_defaults(Vec::new(), &userns, ns(false, false, false));
        assert_eq!(m.len(), 3, "no mqueue without an IPC namespace");
        assert!(
            !m[1]
                .1
                .options()
                .as_ref()
                .unwrap()
                .contains(&"gid=5".to_owned())
        );

        let mut bound = Mount::default();
        bound.set_destination("/dev/".into());
        bound.set_options(Some(vec!["rbind".into()]));
        assert_eq!(
            with_dev_defaults(vec![bound], &opts, ns(true, true, true)).len(),
            1
        );
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape(r"/mnt/with\040space"), "/mnt/with space");
        assert_eq!(unescape(r"/plain"), "/plain");
    }

    #[test]
    fn rootfs_propagation_and_mount_errors_are_clear() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "mounts": [{"destination": "/data", "type": "bind", "source": "no-such-dir", "options": ["rbind"]}],
            "linux": {"rootfsPropagation": "sideways"}
        }))
        .unwrap();
        let opts = Options {
            bundle: dir.path(),
            user_namespace: false,
            no_pivot: false,
            console: None,
            cgroup: None,
        };
        let err = format!("{:#}", prepare(&spec, &opts).unwrap_err());
        assert!(err.contains("sideways"), "{err}");

        let mut spec = spec;
        spec.linux_mut()
            .as_mut()
            .unwrap()
            .set_rootfs_propagation(None);
        let err = format!("{:#}", prepare(&spec, &opts).unwrap_err());
        assert!(
            err.contains("mounts[0]") && err.contains("no-such-dir"),
            "{err}"
        );
    }

    #[test]
    fn a_v1_cgroup_mount_is_a_tmpfs_with_a_bind_per_hierarchy_and_comount_links() {
        use crate::cgroups::{CgroupDir, LayoutKind};
        let dir = |h: Hierarchy, p: &str| CgroupDir {
            hierarchy: h,
            mount_point: PathBuf::from("/sys/fs/cgroup/x"),
            path: PathBuf::from(p),
            created: 0,
        };
        let cg = Cgroup {
            kind: LayoutKind::Hybrid,
            dirs: vec![
                dir(
                    Hierarchy::V1(vec!["cpu".into(), "cpuacct".into()]),
                    "/cg/cpu,cpuacct/c1",
                ),
                dir(Hierarchy::V1(vec!["name=systemd".into()]), "/cg/systemd/c1"),
                dir(Hierarchy::Unified(vec![]), "/cg/unified/c1"),
            ],
        };
        let dest = InRootPath::new(Path::new("/sys/fs/cgroup"), "m").unwrap();
        let parsed = options::parse(["nosuid", "noexec", "nodev", "ro"], "m").unwrap();
        let (mut ops, mut d) = (Vec::new(), Vec::new());
        cgroup_ops("m", &dest, &parsed, &cg, false, &mut ops, &mut d).unwrap();
        assert_eq!(
            d,
            [
                "m: tmpfs",
                "m: cpu,cpuacct",
                "m: symlink cpu -> cpu,cpuacct",
                "m: symlink cpuacct -> cpu,cpuacct",
                "m: systemd",
                "m: unified",
            ]
        );
        let Op::Mount(tmpfs) = &ops[0] else {
            panic!("{:?}", ops[0])
        };
        assert_eq!(
            tmpfs.flags & ms::RDONLY,
            0,
            "the tmpfs stays writable, as in runc"
        );
        let Op::Mount(cpu) = &ops[1] else {
            panic!("{:?}", ops[1])
        };
        assert_eq!(cpu.source.as_c_str(), c"/cg/cpu,cpuacct/c1");
        assert_eq!(cpu.target.full(), c"sys/fs/cgroup/cpu,cpuacct");
        assert_eq!(cpu.flags, ms::BIND);
        assert!(cpu.bind_remount.is_some_and(|(f, _)| f & ms::RDONLY != 0));

        // With a cgroup namespace the hierarchies are mounted, not bound.
        let (mut ops, mut d) = (Vec::new(), Vec::new());
        cgroup_ops("m", &dest, &parsed, &cg, true, &mut ops, &mut d).unwrap();
        let Op::Mount(cpu) = &ops[1] else {
            panic!("{:?}", ops[1])
        };
        assert_eq!(cpu.fstype.as_c_str(), c"cgroup");
        assert_eq!(cpu.data.as_deref(), Some(c"cpu,cpuacct"));
        let Op::Mount(unified) = &ops[5] else {
            panic!("{:?}", ops[5])
        };
        assert_eq!(unified.fstype.as_c_str(), c"cgroup2");
    }

    #[test]
    fn child_errors_are_described_with_the_spec_item() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "mounts": [{"destination": "/data", "type": "tmpfs", "source": "tmpfs"}],
            "linux": {"namespaces": [{"type": "network"}], "sysctl": {"net.ipv4.ip_forward": "1"},
                      "maskedPaths": ["/proc/kcore"]}
        }))
        .unwrap();
        let opts = Options {
            bundle: dir.path(),
            user_namespace: false,
            no_pivot: false,
            console: None,
            cgroup: None,
        };
        let plan = prepare(&spec, &opts).unwrap();
        let e = |step, index| crate::sys::ChildError {
            step,
            errno: libc::EPERM,
            index,
        };
        // Op 0 is the default /dev tmpfs the spec lacked; op 1 is the spec's first mount.
        let msg = plan.describe(&e(super::super::STEP_MOUNT, 1));
        assert!(
            msg.starts_with("mount (mounts[0] (tmpfs on /data)): "),
            "{msg}"
        );
        let msg = plan.describe(&e(super::super::STEP_MOUNT, 0));
        assert!(msg.contains("default mount /dev"), "{msg}");
        let msg = plan.describe(&e(super::super::STEP_SYSCTL_WRITE, 0));
        assert!(msg.contains("net.ipv4.ip_forward = 1"), "{msg}");
        let msg = plan.describe(&e(super::super::STEP_MASK, 0));
        assert!(msg.contains("/proc/kcore"), "{msg}");
        assert!(plan.kept_fds().is_empty());
        assert_eq!(
            plan.rootfs(),
            dir.path().join("rootfs").canonicalize().unwrap()
        );
    }
}
