//! Root filesystem pieces taken from the host: busybox-static with its applet links, and host
//! binaries together with the shared libraries `ldd` says they load.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::BuildError;
use crate::layer::LayerBuilder;

/// Where Debian's busybox-static puts its binary.
pub const BUSYBOX_PATHS: &[&str] = &["/usr/bin/busybox", "/bin/busybox"];

/// The first busybox binary found on the host; it must be statically linked, since the images
/// carry no C library for it.
pub fn host_busybox() -> Result<PathBuf, BuildError> {
    let path = BUSYBOX_PATHS
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
        .ok_or_else(|| BuildError::MissingHostFile {
            path: PathBuf::from(BUSYBOX_PATHS[0]),
            hint: "install Debian's busybox-static (apt-get install busybox-static)",
        })?;
    if !ldd(path)?.is_empty() {
        return Err(BuildError::MissingHostFile {
            path: path.to_path_buf(),
            hint: "this busybox is dynamically linked; install busybox-static instead of busybox",
        });
    }
    Ok(path.to_path_buf())
}

/// The applet names of `busybox` (`busybox --list`).
pub fn busybox_applets(busybox: &Path) -> Result<Vec<String>, BuildError> {
    let out = run(Command::new(busybox).arg("--list"))?;
    Ok(out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "busybox")
        .map(str::to_string)
        .collect())
}

/// The shared libraries (and the dynamic loader) that `binary` loads, as absolute host paths
/// in the form the loader asks for them (e.g. `/lib/x86_64-linux-gnu/libc.so.6`). Empty for a
/// static binary.
pub fn ldd(binary: &Path) -> Result<Vec<PathBuf>, BuildError> {
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| BuildError::command("ldd", e.to_string()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        // glibc's ldd exits 1 with "not a dynamic executable" for static binaries.
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stdout.contains("not a dynamic executable") || stderr.contains("not a dynamic") {
            return Ok(Vec::new());
        }
        return Err(BuildError::command(
            "ldd",
            format!("{}: {stderr}", binary.display()),
        ));
    }
    parse_ldd(&stdout).map_err(|line| {
        BuildError::command(
            "ldd",
            format!("{}: cannot use line {line:?}", binary.display()),
        )
    })
}

/// Parses `ldd` output. An unresolved library (`=> not found`) is an error carrying the line.
pub(crate) fn parse_ldd(out: &str) -> Result<Vec<PathBuf>, String> {
    let mut libs = Vec::new();
    for line in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.contains("statically linked") {
            continue;
        }
        let path = match line.split_once("=>") {
            Some((_, rest)) => {
                let rest = rest.trim();
                if rest.starts_with("not found") {
                    return Err(line.to_string());
                }
                rest.split_whitespace().next().unwrap_or("")
            }
            None => line.split_whitespace().next().unwrap_or(""),
        };
        // The vDSO (`linux-vdso.so.1 (0x…)`) has no file.
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        } else if !line.starts_with("linux-vdso") && !line.starts_with("linux-gate") {
            return Err(line.to_string());
        }
    }
    Ok(libs)
}

/// Adds busybox as `/bin/busybox` with one symlink per applet in `/bin` (what
/// `busybox --install -s /bin` makes), plus `/usr/bin/env`.
pub fn add_busybox(layer: &mut LayerBuilder) -> Result<(), BuildError> {
    let busybox = host_busybox()?;
    layer.host_file("/bin/busybox", 0o755, &busybox)?;
    for applet in busybox_applets(&busybox)? {
        layer.symlink(&format!("/bin/{applet}"), "busybox")?;
    }
    layer.symlink("/usr/bin/env", "/bin/env")?;
    Ok(())
}

/// Adds host binaries at their host paths, each with every library it loads (at the path the
/// loader asks for, as a regular file). `binaries` are host paths; symlinks are followed for
/// the contents.
pub fn add_host_binaries(layer: &mut LayerBuilder, binaries: &[&Path]) -> Result<(), BuildError> {
    let mut libs = std::collections::BTreeSet::new();
    for bin in binaries {
        if !bin.exists() {
            return Err(BuildError::MissingHostFile {
                path: bin.to_path_buf(),
                hint: "install the Debian package that provides it (see docs/test-images.md)",
            });
        }
        layer.host_file(&bin.to_string_lossy(), 0o755, *bin)?;
        libs.extend(ldd(bin)?);
    }
    add_libraries(layer, libs)
}

/// Adds shared objects that are loaded at run time (`dlopen`) with their own libraries.
pub fn add_host_libraries(layer: &mut LayerBuilder, objects: &[&Path]) -> Result<(), BuildError> {
    let mut libs = std::collections::BTreeSet::new();
    for obj in objects {
        libs.insert(obj.to_path_buf());
        libs.extend(ldd(obj)?);
    }
    add_libraries(layer, libs)
}

fn add_libraries(
    layer: &mut LayerBuilder,
    libs: std::collections::BTreeSet<PathBuf>,
) -> Result<(), BuildError> {
    for lib in libs {
        if !layer.contains(&lib.to_string_lossy()) {
            layer.host_file(&lib.to_string_lossy(), 0o755, &lib)?;
        }
    }
    Ok(())
}

fn run(cmd: &mut Command) -> Result<String, BuildError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .output()
        .map_err(|e| BuildError::command(&program, e.to_string()))?;
    if !out.status.success() {
        return Err(BuildError::command(
            &program,
            format!(
                "exit {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_is_parsed_into_loader_paths() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                   \tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        let libs = parse_ldd(out).unwrap();
        assert_eq!(
            libs,
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libz.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
    }

    #[test]
    fn an_unresolved_library_is_an_error_naming_it() {
        let out = "\tlibmissing.so.3 => not found\n\tlibc.so.6 => /lib/libc.so.6 (0x1)\n";
        let err = parse_ldd(out).unwrap_err();
        assert!(err.contains("libmissing.so.3"), "{err}");
    }

    #[test]
    fn a_dynamic_host_binary_lists_its_c_library() {
        // `sh` is dynamically linked on Debian; a static busybox is not.
        let libs = ldd(Path::new("/bin/sh")).unwrap();
        assert!(
            libs.iter().any(|l| l.to_string_lossy().contains("libc.so")),
            "{libs:?}"
        );
    }
}
