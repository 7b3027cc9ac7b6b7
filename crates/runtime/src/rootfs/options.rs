//! fstab-style mount options → `MS_*` flags, propagation changes and the data string.
//!
//! The names are those of mount(8) and the OCI runtime spec (config.md, "Mounts"); anything that
//! is not a flag is passed to the filesystem as data (`mode=755`, `size=65536k`, `lowerdir=…`).

use anyhow::bail;

/// `MS_*` values (`include/uapi/linux/mount.h`), as the `mount(2)` flags word.
pub(crate) mod ms {
    pub(crate) const RDONLY: u64 = 1;
    pub(crate) const NOSUID: u64 = 2;
    pub(crate) const NODEV: u64 = 4;
    pub(crate) const NOEXEC: u64 = 8;
    pub(crate) const SYNCHRONOUS: u64 = 16;
    pub(crate) const REMOUNT: u64 = 32;
    pub(crate) const MANDLOCK: u64 = 64;
    pub(crate) const DIRSYNC: u64 = 128;
    pub(crate) const NOSYMFOLLOW: u64 = 256;
    pub(crate) const NOATIME: u64 = 1024;
    pub(crate) const NODIRATIME: u64 = 2048;
    pub(crate) const BIND: u64 = 4096;
    pub(crate) const MOVE: u64 = 8192;
    pub(crate) const REC: u64 = 16384;
    pub(crate) const SILENT: u64 = 32768;
    pub(crate) const UNBINDABLE: u64 = 1 << 17;
    pub(crate) const PRIVATE: u64 = 1 << 18;
    pub(crate) const SLAVE: u64 = 1 << 19;
    pub(crate) const SHARED: u64 = 1 << 20;
    pub(crate) const RELATIME: u64 = 1 << 21;
    pub(crate) const STRICTATIME: u64 = 1 << 24;
    pub(crate) const LAZYTIME: u64 = 1 << 25;

    /// The access-time flags: one group, a remount that names none of them keeps the old one.
    pub(crate) const ATIME: u64 = NOATIME | RELATIME | STRICTATIME;
    /// Flags a bind remount must keep when the caller did not clear them: in a user namespace
    /// the kernel locks them on mounts inherited from the host and refuses to drop them. (The
    /// access-time flags need no care: a remount that names none of them keeps the old ones.)
    pub(crate) const LOCKABLE: u64 = RDONLY | NOSUID | NODEV | NOEXEC;
}

/// What a mount's option list asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Flags to set.
    pub flags: u64,
    /// Flags the options cleared explicitly (`rw`, `suid`, `dev`, `exec`, `atime`, …).
    pub cleared: u64,
    /// `bind` or `rbind` was given (`Some(true)` for `rbind`).
    pub bind: Option<bool>,
    /// Propagation changes, in order (`MS_SHARED`, `MS_PRIVATE | MS_REC`, …).
    pub propagation: Vec<u64>,
    /// The remaining options, comma-joined, for the filesystem.
    pub data: String,
    /// Recursive attributes (`rro`, `rnosuid`, …) as `MOUNT_ATTR_*` bits to set and to clear
    /// with `mount_setattr(AT_RECURSIVE)` on the mount and every mount below it.
    pub recursive: Option<(u64, u64)>,
    /// `tmpcopyup`: a tmpfs starts with a copy of what the image has at its destination.
    pub tmpcopyup: bool,
}

/// `MOUNT_ATTR_*` values (`include/uapi/linux/mount.h`), for `mount_setattr(2)`.
pub(crate) mod attr {
    pub(crate) const RDONLY: u64 = 0x1;
    pub(crate) const NOSUID: u64 = 0x2;
    pub(crate) const NODEV: u64 = 0x4;
    pub(crate) const NOEXEC: u64 = 0x8;
    /// The access-time mode field; changing the mode needs it in `attr_clr`.
    pub(crate) const ATIME: u64 = 0x70;
    pub(crate) const RELATIME: u64 = 0x0;
    pub(crate) const NOATIME: u64 = 0x10;
    pub(crate) const STRICTATIME: u64 = 0x20;
    pub(crate) const NODIRATIME: u64 = 0x80;
    pub(crate) const NOSYMFOLLOW: u64 = 0x0020_0000;
}

/// runc's recursive options: name, `MOUNT_ATTR_*` to set, to clear.
const RECURSIVE: &[(&str, u64, u64)] = &[
    ("rro", attr::RDONLY, 0),
    ("rrw", 0, attr::RDONLY),
    ("rnosuid", attr::NOSUID, 0),
    ("rsuid", 0, attr::NOSUID),
    ("rnodev", attr::NODEV, 0),
    ("rdev", 0, attr::NODEV),
    ("rnoexec", attr::NOEXEC, 0),
    ("rexec", 0, attr::NOEXEC),
    ("rnodiratime", attr::NODIRATIME, 0),
    ("rdiratime", 0, attr::NODIRATIME),
    ("rrelatime", attr::RELATIME, attr::ATIME),
    ("rnoatime", attr::NOATIME, attr::ATIME),
    ("rstrictatime", attr::STRICTATIME, attr::ATIME),
    ("rnosymfollow", attr::NOSYMFOLLOW, 0),
    ("rsymfollow", 0, attr::NOSYMFOLLOW),
];

const SET: &[(&str, u64)] = &[
    ("ro", ms::RDONLY),
    ("nosuid", ms::NOSUID),
    ("nodev", ms::NODEV),
    ("noexec", ms::NOEXEC),
    ("sync", ms::SYNCHRONOUS),
    ("dirsync", ms::DIRSYNC),
    ("mand", ms::MANDLOCK),
    ("noatime", ms::NOATIME),
    ("nodiratime", ms::NODIRATIME),
    ("relatime", ms::RELATIME),
    ("strictatime", ms::STRICTATIME),
    ("lazytime", ms::LAZYTIME),
    ("silent", ms::SILENT),
    ("nosymfollow", ms::NOSYMFOLLOW),
];

const CLEAR: &[(&str, u64)] = &[
    ("rw", ms::RDONLY),
    ("suid", ms::NOSUID),
    ("dev", ms::NODEV),
    ("exec", ms::NOEXEC),
    ("async", ms::SYNCHRONOUS),
    ("nomand", ms::MANDLOCK),
    ("atime", ms::NOATIME),
    ("diratime", ms::NODIRATIME),
    ("norelatime", ms::RELATIME),
    ("nostrictatime", ms::STRICTATIME),
    ("nolazytime", ms::LAZYTIME),
    ("loud", ms::SILENT),
    ("symfollow", ms::NOSYMFOLLOW),
];

const PROPAGATION: &[(&str, u64)] = &[
    ("private", ms::PRIVATE),
    ("rprivate", ms::PRIVATE | ms::REC),
    ("shared", ms::SHARED),
    ("rshared", ms::SHARED | ms::REC),
    ("slave", ms::SLAVE),
    ("rslave", ms::SLAVE | ms::REC),
    ("unbindable", ms::UNBINDABLE),
    ("runbindable", ms::UNBINDABLE | ms::REC),
];

/// The `MS_*` propagation flags of a propagation name (`rprivate` → `MS_PRIVATE | MS_REC`).
pub fn propagation(name: &str) -> Option<u64> {
    PROPAGATION
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
}

/// Parse one mount's options; `what` names the mount in errors.
pub fn parse<'a>(options: impl IntoIterator<Item = &'a str>, what: &str) -> anyhow::Result<Parsed> {
    let mut p = Parsed::default();
    let mut data: Vec<&str> = Vec::new();
    for o in options {
        if let Some((_, f)) = SET.iter().find(|(n, _)| *n == o) {
            if f & ms::ATIME != 0 {
                p.flags &= !ms::ATIME;
            }
            p.flags |= f;
            p.cleared &= !f;
        } else if let Some((_, f)) = CLEAR.iter().find(|(n, _)| *n == o) {
            p.flags &= !f;
            p.cleared |= f;
        } else if let Some(f) = propagation(o) {
            p.propagation.push(f);
        } else if let Some(&(_, set, clr)) = RECURSIVE.iter().find(|(n, _, _)| *n == o) {
            let (mut to_set, mut to_clear) = p.recursive.unwrap_or((0, 0));
            if clr & attr::ATIME != 0 {
                to_set &= !attr::ATIME;
            }
            to_set = (to_set & !clr) | set;
            to_clear = (to_clear & !set) | clr;
            p.recursive = Some((to_set, to_clear));
        } else {
            match o {
                "bind" => p.bind = Some(p.bind.unwrap_or(false)),
                "rbind" => p.bind = Some(true),
                "defaults" | "" => {}
                "tmpcopyup" => p.tmpcopyup = true,
                "remount" => bail!(
                    "{what}: option \"remount\" cannot be used for a container mount (each mount \
                     is a new one)"
                ),
                "idmap" | "ridmap" => bail!("{what}: id-mapped mounts ({o:?}) are not supported"),
                _ if is_recursive_attr(o) => bail!(
                    "{what}: recursive mount attribute {o:?} is not supported (known: {})",
                    RECURSIVE
                        .iter()
                        .map(|(n, _, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                _ => data.push(o),
            }
        }
    }
    p.data = data.join(",");
    Ok(p)
}

fn is_recursive_attr(o: &str) -> bool {
    o.strip_prefix('r').is_some_and(|rest| {
        SET.iter().chain(CLEAR).any(|(n, _)| *n == rest) && !matches!(o, "relatime" | "rw" | "ro")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_default_dev_mount_options() {
        let p = parse(["nosuid", "strictatime", "mode=755", "size=65536k"], "m").unwrap();
        assert_eq!(p.flags, ms::NOSUID | ms::STRICTATIME);
        assert_eq!(p.data, "mode=755,size=65536k");
        assert_eq!(p.bind, None);
    }

    #[test]
    fn later_options_win_and_clearing_is_remembered() {
        let p = parse(["ro", "rw", "nodev", "dev", "noexec"], "m").unwrap();
        assert_eq!(p.flags, ms::NOEXEC);
        assert_eq!(p.cleared, ms::RDONLY | ms::NODEV);
        let p = parse(["noatime", "relatime"], "m").unwrap();
        assert_eq!(p.flags, ms::RELATIME, "atime flags are one group");
    }

    #[test]
    fn bind_rbind_and_propagation() {
        let p = parse(["rbind", "ro", "rslave"], "m").unwrap();
        assert_eq!(p.bind, Some(true));
        assert_eq!(p.flags, ms::RDONLY);
        assert_eq!(p.propagation, vec![ms::SLAVE | ms::REC]);
        let p = parse(["bind", "private", "unbindable"], "m").unwrap();
        assert_eq!(p.bind, Some(false));
        assert_eq!(p.propagation, vec![ms::PRIVATE, ms::UNBINDABLE]);
        assert_eq!(propagation("rshared"), Some(ms::SHARED | ms::REC));
        assert_eq!(propagation("sideways"), None);
    }

    #[test]
    fn recursive_attributes_become_mount_setattr_bits() {
        let p = parse(["rbind", "rro", "rnosuid", "rnoexec"], "m").unwrap();
        assert_eq!(
            p.recursive,
            Some((attr::RDONLY | attr::NOSUID | attr::NOEXEC, 0))
        );
        assert_eq!(p.flags, 0, "recursive attributes are not mount(2) flags");
        let p = parse(["rro", "rrw"], "m").unwrap();
        assert_eq!(
            p.recursive,
            Some((0, attr::RDONLY)),
            "the later option wins"
        );
        let p = parse(["rnoatime"], "m").unwrap();
        assert_eq!(p.recursive, Some((attr::NOATIME, attr::ATIME)));
        assert_eq!(parse(["ro"], "m").unwrap().recursive, None);
    }

    #[test]
    fn tmpcopyup_is_a_flag_not_data() {
        let p = parse(["rw", "tmpcopyup", "size=1m"], "m").unwrap();
        assert!(p.tmpcopyup);
        assert_eq!(p.data, "size=1m");
    }

    #[test]
    fn overlay_options_are_data() {
        let p = parse(
            ["lowerdir=/a:/b", "upperdir=/u", "workdir=/w", "nodev"],
            "m",
        )
        .unwrap();
        assert_eq!(p.data, "lowerdir=/a:/b,upperdir=/u,workdir=/w");
        assert_eq!(p.flags, ms::NODEV);
    }

    #[test]
    fn unsupported_options_are_errors_naming_the_mount() {
        for o in ["ratime", "rnorelatime", "idmap", "remount"] {
            let err = parse([o], "mount #2 (/data)").unwrap_err().to_string();
            assert!(err.contains("mount #2 (/data)") && err.contains(o), "{err}");
        }
        // relatime is a flag, not "recursive elatime".
        assert_eq!(parse(["relatime"], "m").unwrap().flags, ms::RELATIME);
    }
}
