//! `drover run --init`: a small init from the host runs as the container's PID 1, as Docker
//! (`docker-init`, which is tini, at `/sbin/docker-init`) and podman (catatonit at
//! `/run/podman-init`) do. It forwards signals to the user's command, reaps orphaned zombies and
//! exits with the command's exit code.
//!
//! The init is bind-mounted read-only from the host, so it must run in any image — busybox,
//! distroless, scratch — which means it must be statically linked: a dynamically linked binary
//! would look for its loader and libc inside the container's root. Drover's own binary is never
//! used as the init (the container never executes Drover).

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Where the init appears inside the container (Docker's path).
pub const CONTAINER_PATH: &str = "/sbin/docker-init";

/// Names looked up on `PATH`, in this order: Docker's own, Debian's static tini, podman's.
/// The plain `tini` comes last and counts only if it happens to be static.
const NAMES: &[&str] = &["docker-init", "tini-static", "catatonit", "tini"];

/// Directories outside `PATH` where Docker and podman packages keep their inits.
const EXTRA: &[&str] = &[
    "/usr/libexec/docker/docker-init",
    "/usr/local/libexec/docker/docker-init",
    "/usr/libexec/podman/catatonit",
    "/usr/local/libexec/podman/catatonit",
];

/// The candidates for an init on this host, in search order (they may not exist).
pub fn host_candidates() -> Vec<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    let mut out = Vec::new();
    for name in NAMES {
        for d in &dirs {
            out.push(d.join(name));
        }
        if *name == "docker-init" {
            out.extend(EXTRA.iter().take(2).map(PathBuf::from));
        }
        if *name == "catatonit" {
            out.extend(EXTRA.iter().skip(2).map(PathBuf::from));
        }
    }
    out
}

/// How an executable is linked, from its ELF program headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linkage {
    /// No `PT_INTERP`: runs without a loader (static, or static-pie).
    Static,
    /// Needs this loader (`PT_INTERP`).
    Dynamic(String),
    /// Not an ELF file (a script, or garbage).
    NotElf,
}

const PT_INTERP: u32 = 3;

/// Reads the ELF header and program headers of `path` to tell static from dynamic linking.
pub fn linkage(path: &Path) -> Result<Linkage> {
    let mut f = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut data = Vec::new();
    // Program headers sit near the start; 64 KiB is plenty for any real binary's.
    f.by_ref()
        .take(64 * 1024)
        .read_to_end(&mut data)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(linkage_of(&data))
}

fn linkage_of(data: &[u8]) -> Linkage {
    if data.len() < 52 || &data[..4] != b"\x7fELF" {
        return Linkage::NotElf;
    }
    let wide = match data[4] {
        1 => false,
        2 => true,
        _ => return Linkage::NotElf,
    };
    let little = match data[5] {
        1 => true,
        2 => false,
        _ => return Linkage::NotElf,
    };
    let num = |at: usize, len: usize| -> Option<u64> {
        let b = data.get(at..at + len)?;
        let mut v = 0u64;
        for i in 0..len {
            let byte = if little { b[len - 1 - i] } else { b[i] };
            v = (v << 8) | u64::from(byte);
        }
        Some(v)
    };
    let (phoff, phentsize, phnum) = if wide {
        (num(0x20, 8), num(0x36, 2), num(0x38, 2))
    } else {
        (num(0x1c, 4), num(0x2a, 2), num(0x2c, 2))
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (phoff, phentsize, phnum) else {
        return Linkage::NotElf;
    };
    for i in 0..phnum {
        let at = (phoff + i * phentsize) as usize;
        let Some(p_type) = num(at, 4) else {
            return Linkage::NotElf;
        };
        if p_type as u32 != PT_INTERP {
            continue;
        }
        let (off, size) = if wide {
            (num(at + 8, 8), num(at + 32, 8))
        } else {
            (num(at + 4, 4), num(at + 16, 4))
        };
        let interp = off
            .zip(size)
            .and_then(|(o, s)| data.get(o as usize..(o + s) as usize))
            .map(|b| String::from_utf8_lossy(b).trim_end_matches('\0').to_owned())
            .unwrap_or_else(|| "an unknown loader".into());
        return Linkage::Dynamic(interp);
    }
    Linkage::Static
}

fn is_executable_file(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether `path` is our own binary (through any link): the container never executes Drover.
fn is_own_binary(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::env::current_exe()
        .and_then(fs::metadata)
        .is_ok_and(|own| own.dev() == meta.dev() && own.ino() == meta.ino())
}

/// Checks that `path` can serve as a container's init: an executable, statically linked ELF
/// that is not Drover itself.
pub fn check(path: &Path) -> Result<()> {
    let meta = fs::metadata(path).with_context(|| {
        format!(
            "the init binary {} does not exist (install tini, which provides /usr/bin/tini-static, or catatonit; or give --init-path)",
            path.display()
        )
    })?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        bail!(
            "the init binary {} is not an executable file",
            path.display()
        );
    }
    if is_own_binary(&meta) {
        bail!(
            "the init binary {} is Drover itself, which never runs inside a container: use tini-static or catatonit",
            path.display()
        );
    }
    match linkage(path)? {
        Linkage::Static => Ok(()),
        Linkage::Dynamic(loader) => bail!(
            "the init binary {} is dynamically linked (it needs {loader}), so it cannot run in every image: use a static one such as tini-static (Debian's tini package) or catatonit",
            path.display()
        ),
        Linkage::NotElf => bail!(
            "the init binary {} is not an ELF executable: use a static binary such as tini-static or catatonit",
            path.display()
        ),
    }
}

/// The init to mount: `explicit` (`--init-path`) if given, else the first static one among
/// `candidates`. Dynamically linked candidates are skipped and named in the error.
pub fn find(explicit: Option<&Path>, candidates: &[PathBuf]) -> Result<PathBuf> {
    if let Some(p) = explicit {
        let p = if p.is_absolute() {
            p.to_owned()
        } else {
            std::env::current_dir()
                .context("reading the current directory")?
                .join(p)
        };
        check(&p)?;
        return Ok(p);
    }
    let mut skipped = Vec::new();
    for c in candidates {
        if !is_executable_file(c) || fs::metadata(c).is_ok_and(|m| is_own_binary(&m)) {
            continue;
        }
        match linkage(c) {
            Ok(Linkage::Static) => return Ok(c.clone()),
            Ok(Linkage::Dynamic(_)) => {
                skipped.push(format!("{} (dynamically linked)", c.display()))
            }
            Ok(Linkage::NotElf) => skipped.push(format!("{} (not an ELF binary)", c.display())),
            Err(_) => {}
        }
    }
    let mut msg = "--init needs a statically linked init on the host and found none: install tini (Debian and Ubuntu: apt-get install tini, for /usr/bin/tini-static) or catatonit, or give --init-path".to_owned();
    if !skipped.is_empty() {
        msg.push_str("; not usable: ");
        msg.push_str(&skipped.join(", "));
    }
    bail!("{msg}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal 64-bit little-endian ELF: the header and one program header of type `p_type`,
    /// whose contents (for PT_INTERP) are `interp`.
    fn elf64(p_type: u32, interp: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; 64 + 56];
        d[..4].copy_from_slice(b"\x7fELF");
        d[4] = 2; // 64-bit
        d[5] = 1; // little-endian
        d[0x20..0x28].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        d[0x36..0x38].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        d[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        d[64..68].copy_from_slice(&p_type.to_le_bytes());
        let off = d.len() as u64;
        d[64 + 8..64 + 16].copy_from_slice(&off.to_le_bytes()); // p_offset
        d[64 + 32..64 + 40].copy_from_slice(&(interp.len() as u64).to_le_bytes()); // p_filesz
        d.extend_from_slice(interp);
        d
    }

    fn write_exe(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, data).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn elf_linkage_is_read_from_the_program_headers() {
        assert_eq!(linkage_of(&elf64(1, b"")), Linkage::Static);
        assert_eq!(
            linkage_of(&elf64(PT_INTERP, b"/lib64/ld-linux-x86-64.so.2\0")),
            Linkage::Dynamic("/lib64/ld-linux-x86-64.so.2".into())
        );
        assert_eq!(linkage_of(b"#!/bin/sh\necho hi\n"), Linkage::NotElf);
        // Truncated program headers are not mistaken for a static binary.
        for len in [66, 70, 120] {
            let mut cut = elf64(PT_INTERP, b"/lib/ld.so\0");
            cut.truncate(len);
            assert_ne!(linkage_of(&cut), Linkage::Static, "{len}");
        }
    }

    #[test]
    fn real_binaries_on_this_host_are_classified() {
        // The test binary itself is dynamically linked (Rust links glibc by default).
        let me = std::env::current_exe().unwrap();
        assert!(matches!(linkage(&me).unwrap(), Linkage::Dynamic(_)));
        for p in ["/bin/busybox", "/usr/bin/busybox", "/usr/bin/tini-static"] {
            if Path::new(p).exists() && fs::read_link(p).is_err() {
                // Debian's busybox-static and tini-static are static.
                assert_eq!(linkage(Path::new(p)).unwrap(), Linkage::Static, "{p}");
            }
        }
    }

    #[test]
    fn the_search_takes_the_first_static_candidate_and_explains_failures() {
        let tmp = tempfile::tempdir().unwrap();
        let dynamic = write_exe(tmp.path(), "tini", &elf64(PT_INTERP, b"/lib/ld.so\0"));
        let script = write_exe(tmp.path(), "docker-init", b"#!/bin/sh\n");
        let stat = write_exe(tmp.path(), "catatonit", &elf64(1, b""));
        let missing = tmp.path().join("tini-static");
        let found = find(
            None,
            &[
                missing.clone(),
                script.clone(),
                dynamic.clone(),
                stat.clone(),
            ],
        )
        .unwrap();
        assert_eq!(found, stat);
        let err = find(None, &[missing.clone(), script, dynamic.clone()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("install tini"), "{err}");
        assert!(err.contains("tini (dynamically linked)"), "{err}");
        assert!(err.contains("docker-init (not an ELF binary)"), "{err}");
        // An explicit path is used as given, but checked.
        assert_eq!(find(Some(&stat), &[]).unwrap(), stat);
        let err = find(Some(&missing), std::slice::from_ref(&stat))
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
        let err = find(Some(&dynamic), std::slice::from_ref(&stat))
            .unwrap_err()
            .to_string();
        assert!(err.contains("dynamically linked"), "{err}");
        // Never Drover (here: the test binary) itself.
        let me = std::env::current_exe().unwrap();
        let err = find(Some(&me), &[]).unwrap_err().to_string();
        assert!(err.contains("never runs inside a container"), "{err}");
        assert_eq!(find(None, &[me, stat.clone()]).unwrap(), stat);
    }

    #[test]
    fn candidates_follow_docker_then_podman() {
        let c = host_candidates();
        let pos = |name: &str| c.iter().position(|p| p.ends_with(name)).unwrap();
        assert!(pos("docker-init") < pos("tini-static"));
        assert!(pos("tini-static") < pos("catatonit"));
        assert!(pos("catatonit") < pos("tini"));
    }
}
