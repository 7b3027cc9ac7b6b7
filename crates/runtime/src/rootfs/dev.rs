//! `/dev`: the standard device nodes, the spec's `linux.devices`, and the symlinks.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use rustix::fs::FileType;

use super::path::InRootPath;
use super::{LinkOp, NodeOp};

/// runc's default devices: path, major, minor (all character devices, mode 0666, root:root).
const DEFAULT_DEVICES: [(&str, u32, u32); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// The device nodes to make: the defaults, then the spec's (a spec entry with a default's path
/// replaces it). With `user_namespace`, each node is bound from the host's node of the same path.
pub(super) fn nodes(devices: &[LinuxDevice], user_namespace: bool) -> anyhow::Result<Vec<NodeOp>> {
    let mut out: Vec<NodeOp> = Vec::new();
    for (path, major, minor) in DEFAULT_DEVICES {
        if devices.iter().any(|d| d.path() == Path::new(path)) {
            continue;
        }
        out.push(node(
            Path::new(path),
            FileType::CharacterDevice,
            0o666,
            rustix::fs::makedev(major, minor),
            (0, 0),
            user_namespace,
            "default device",
        )?);
    }
    for (i, d) in devices.iter().enumerate() {
        let field = format!("linux.devices[{i}] ({})", d.path().display());
        if !d.path().is_absolute() {
            bail!("{field}: the path must be absolute");
        }
        let file_type = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => FileType::CharacterDevice,
            LinuxDeviceType::B => FileType::BlockDevice,
            LinuxDeviceType::P => FileType::Fifo,
            LinuxDeviceType::A => bail!("{field}: type \"a\" is for cgroup rules, not a node"),
        };
        let (major, minor) = (d.major(), d.minor());
        let num = |v: i64, what: &str| {
            u32::try_from(v).with_context(|| format!("{field}: {what} number {v} is out of range"))
        };
        let dev = if file_type == FileType::Fifo {
            0
        } else {
            rustix::fs::makedev(num(major, "major")?, num(minor, "minor")?)
        };
        let mode = d.file_mode().unwrap_or(0o666);
        if mode & !0o7777 & !0o170000 != 0 {
            bail!("{field}: fileMode {mode:#o} is not a permission mode");
        }
        let owner = (d.uid().unwrap_or(0), d.gid().unwrap_or(0));
        out.push(node(
            d.path(),
            file_type,
            mode & 0o7777,
            dev,
            owner,
            user_namespace,
            &field,
        )?);
    }
    Ok(out)
}

fn node(
    path: &Path,
    file_type: FileType,
    perm: u32,
    dev: u64,
    (uid, gid): (u32, u32),
    user_namespace: bool,
    field: &str,
) -> anyhow::Result<NodeOp> {
    let bind_from = if user_namespace {
        if !path.exists() {
            bail!(
                "{field}: in a user namespace device nodes are bind-mounted from the host, and the \
                 host has no {}",
                path.display()
            );
        }
        Some(CString::new(path.as_os_str().as_bytes()).context("NUL in a device path")?)
    } else {
        None
    };
    Ok(NodeOp {
        target: InRootPath::new(path, field)?,
        file_type,
        perm,
        dev,
        uid,
        gid,
        bind_from,
    })
}

/// runc's `/dev` symlinks, and `/dev/ptmx -> pts/ptmx` replacing whatever is there.
pub(super) fn links() -> anyhow::Result<Vec<LinkOp>> {
    let mut list: Vec<(&str, &str, bool)> = vec![
        ("/dev/fd", "/proc/self/fd", false),
        ("/dev/stdin", "/proc/self/fd/0", false),
        ("/dev/stdout", "/proc/self/fd/1", false),
        ("/dev/stderr", "/proc/self/fd/2", false),
    ];
    if Path::new("/proc/kcore").exists() {
        list.push(("/dev/core", "/proc/kcore", false));
    }
    list.push(("/dev/ptmx", "pts/ptmx", true));
    list.into_iter()
        .map(|(link, target, replace)| {
            Ok(LinkOp {
                link: InRootPath::new(Path::new(link), "dev symlink")?,
                target: CString::new(target)?,
                replace,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceBuilder;

    #[test]
    fn defaults_are_runcs_six_and_a_spec_device_replaces_one() {
        let fuse = LinuxDeviceBuilder::default()
            .path("/dev/fuse")
            .typ(LinuxDeviceType::C)
            .major(10)
            .minor(229)
            .file_mode(0o600u32)
            .build()
            .unwrap();
        let null = LinuxDeviceBuilder::default()
            .path("/dev/null")
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .uid(1000u32)
            .build()
            .unwrap();
        let n = nodes(&[fuse, null], false).unwrap();
        let names: Vec<_> = n.iter().map(|o| o.target.display.as_str()).collect();
        assert_eq!(
            names,
            [
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty",
                "/dev/fuse",
                "/dev/null"
            ]
        );
        let fuse = &n[5];
        assert_eq!((fuse.perm, fuse.dev), (0o600, rustix::fs::makedev(10, 229)));
        assert_eq!(n[6].uid, 1000);
        assert!(n.iter().all(|o| o.bind_from.is_none()));
    }

    #[test]
    fn user_namespace_binds_host_nodes_and_refuses_missing_ones() {
        let n = nodes(&[], true).unwrap();
        assert_eq!(n[0].bind_from.as_deref(), Some(c"/dev/null"));
        let ghost = LinuxDeviceBuilder::default()
            .path("/dev/drover-test-no-such-device")
            .typ(LinuxDeviceType::C)
            .build()
            .unwrap();
        let err = nodes(&[ghost], true).err().unwrap().to_string();
        assert!(err.contains("drover-test-no-such-device"), "{err}");
    }

    #[test]
    fn bad_devices_are_errors_naming_them() {
        let rel = LinuxDeviceBuilder::default()
            .path("dev/x")
            .typ(LinuxDeviceType::C)
            .build()
            .unwrap();
        assert!(
            nodes(&[rel], false)
                .err()
                .unwrap()
                .to_string()
                .contains("absolute")
        );
        let neg = LinuxDeviceBuilder::default()
            .path("/dev/x")
            .typ(LinuxDeviceType::B)
            .major(-1)
            .build()
            .unwrap();
        assert!(format!("{:#}", nodes(&[neg], false).err().unwrap()).contains("major"));
    }
}
