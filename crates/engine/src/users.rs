//! `-u user[:group]` resolved from the image's own `/etc/passwd` and `/etc/group`, as Docker does.
//!
//! The files are read through `openat2(RESOLVE_IN_ROOT)` on the container's rootfs, so a symlink
//! the image planted (`/etc/passwd -> /host/…`) resolves inside the rootfs, never on the host.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use rustix::fs::{Mode, OFlags, ResolveFlags};

/// The identity a container process runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups (the primary group first, then every group listing the user).
    pub additional_gids: Vec<u32>,
    /// The home directory (`/` when unknown), for `HOME`.
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Reads a file of the rootfs without leaving it; `None` when it does not exist.
pub fn read_in_root(rootfs: &Path, path: &str) -> Result<Option<String>> {
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening the rootfs {}", rootfs.display()))?;
    let fd = match rustix::fs::openat2(
        &root,
        path,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {path} in the image")),
    };
    let mut text = String::new();
    std::fs::File::from(fd)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {path} in the image"))?;
    Ok(Some(text))
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).map(|h| h.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Resolves `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`, …) against the rootfs.
pub fn resolve(rootfs: &Path, spec: &str) -> Result<Identity> {
    let passwd = parse_passwd(&read_in_root(rootfs, "/etc/passwd")?.unwrap_or_default());
    let groups = parse_group(&read_in_root(rootfs, "/etc/group")?.unwrap_or_default());
    resolve_with(&passwd, &groups, spec)
}

fn resolve_with(passwd: &[PasswdEntry], groups: &[GroupEntry], spec: &str) -> Result<Identity> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let entry = match user.parse::<u32>() {
        Ok(uid) => passwd.iter().find(|p| p.uid == uid),
        Err(_) => Some(passwd.iter().find(|p| p.name == user).with_context(|| {
            format!("unable to find user {user}: no matching entries in passwd file")
        })?),
    };
    let uid = match (entry, user.parse::<u32>()) {
        (Some(e), _) => e.uid,
        (None, Ok(uid)) => uid,
        (None, Err(_)) => unreachable!("a name without an entry was refused above"),
    };
    let mut gid = entry.map_or(0, |e| e.gid);
    if let Some(group) = group {
        if group.is_empty() {
            bail!("invalid user {spec:?}: empty group");
        }
        gid = match group.parse::<u32>() {
            Ok(g) => g,
            Err(_) => {
                groups
                    .iter()
                    .find(|g| g.name == group)
                    .with_context(|| {
                        format!("unable to find group {group}: no matching entries in group file")
                    })?
                    .gid
            }
        };
    }
    let mut additional_gids = vec![gid];
    // An explicit group replaces the supplementary groups, as Docker does.
    if let (Some(e), None) = (entry, group) {
        for g in groups.iter().filter(|g| g.members.contains(&e.name)) {
            if !additional_gids.contains(&g.gid) {
                additional_gids.push(g.gid);
            }
        }
    }
    let home = entry
        .map(|e| e.home.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".into());
    Ok(Identity {
        uid,
        gid,
        additional_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nwww:x:33:33:www:/var/www:/bin/sh\n";
    const GROUP: &str =
        "root:x:0:\nwww:x:33:\nlogs:x:4:www,nobody\nstaff:x:50:www\nnogroup:x:65534:\n";

    fn ids(spec: &str) -> Result<Identity> {
        resolve_with(&parse_passwd(PASSWD), &parse_group(GROUP), spec)
    }

    #[test]
    fn names_resolve_with_supplementary_groups_and_home() {
        let id = ids("www").unwrap();
        assert_eq!((id.uid, id.gid), (33, 33));
        assert_eq!(id.additional_gids, vec![33, 4, 50]);
        assert_eq!(id.home, "/var/www");
        assert_eq!(ids("").unwrap().home, "/root");
    }

    #[test]
    fn explicit_groups_and_numeric_ids() {
        let id = ids("www:staff").unwrap();
        assert_eq!(
            (id.uid, id.gid, id.additional_gids.clone()),
            (33, 50, vec![50])
        );
        let id = ids("1234").unwrap();
        assert_eq!((id.uid, id.gid, id.home.as_str()), (1234, 0, "/"));
        let id = ids("1234:99").unwrap();
        assert_eq!((id.uid, id.gid), (1234, 99));
    }

    #[test]
    fn unknown_names_are_clear_errors() {
        let err = ids("ghost").unwrap_err().to_string();
        assert!(err.contains("unable to find user ghost"), "{err}");
        let err = ids("www:ghosts").unwrap_err().to_string();
        assert!(err.contains("unable to find group ghosts"), "{err}");
    }

    #[test]
    fn files_are_read_inside_the_rootfs_even_through_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let host = tmp.path().join("host");
        let root = tmp.path().join("root");
        std::fs::create_dir_all(host.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(host.join("etc/passwd"), "evil:x:0:0::/:/bin/sh\n").unwrap();
        // An absolute symlink in the image must resolve inside the rootfs, where there is no
        // such file, not to the host's.
        std::os::unix::fs::symlink(host.join("etc/passwd"), root.join("etc/passwd")).unwrap();
        assert_eq!(read_in_root(&root, "/etc/passwd").unwrap(), None);
        // `..` cannot climb out of the rootfs either.
        let escape = format!("../../../../../..{}", host.join("etc/passwd").display());
        std::os::unix::fs::symlink(escape, root.join("etc/group")).unwrap();
        assert_eq!(read_in_root(&root, "/etc/group").unwrap(), None);
        // Control: the host file is really there, so `None` above means "not followed".
        std::fs::write(root.join("etc/shadow"), "inside\n").unwrap();
        assert_eq!(
            read_in_root(&root, "/etc/shadow").unwrap().as_deref(),
            Some("inside\n")
        );
    }
}
