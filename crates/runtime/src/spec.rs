//! Loading and checking a bundle's `config.json`.
//!
//! The file is parsed with [`oci_spec::runtime::Spec`] through `serde_path_to_error`, so a type
//! error names the field (`process.args: invalid type: string "x", expected a sequence`). Unknown
//! properties are ignored, as the runtime spec requires. [`check`] then rejects what Drover does
//! not implement (naming the field) instead of silently ignoring a setting the user relies on.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// A loaded and checked bundle.
#[derive(Debug)]
pub struct Bundle {
    /// The bundle directory, absolute.
    pub dir: PathBuf,
    /// The parsed `config.json`.
    pub spec: Spec,
    /// The root filesystem directory, absolute (the bundle-relative `root.path` resolved).
    pub rootfs: PathBuf,
}

/// Reads `<bundle>/config.json`, checks it and resolves the rootfs.
pub fn load(bundle: &Path) -> anyhow::Result<Bundle> {
    let dir =
        std::path::absolute(bundle).with_context(|| format!("bundle path {}", bundle.display()))?;
    let path = dir.join("config.json");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let spec =
        parse(&bytes).with_context(|| format!("{} is not a valid OCI config", path.display()))?;
    check(&spec)?;
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_default();
    let rootfs = if root.is_absolute() {
        root
    } else {
        dir.join(root)
    };
    match std::fs::metadata(&rootfs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => bail!("root.path: {} is not a directory", rootfs.display()),
        Err(e) => bail!("root.path: rootfs directory {}: {e}", rootfs.display()),
    }
    Ok(Bundle { dir, spec, rootfs })
}

/// Parses a `config.json` document; the error names the field that did not parse.
pub fn parse(bytes: &[u8]) -> anyhow::Result<Spec> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            anyhow::anyhow!("{inner}")
        } else {
            anyhow::anyhow!("{path}: {inner}")
        }
    })
}

/// Rejects configs Drover cannot run as written, naming the field.
pub fn check(spec: &Spec) -> anyhow::Result<()> {
    let version = spec.version();
    if !version.starts_with("1.") {
        bail!("ociVersion: {version:?} is not a 1.x runtime-spec version");
    }
    if spec.root().is_none() {
        bail!("root: missing (the bundle needs a root filesystem)");
    }
    let Some(process) = spec.process() else {
        bail!("process: missing");
    };
    match process.args() {
        None => bail!("process.args: missing (the container needs a program to run)"),
        Some(a) if a.is_empty() => {
            bail!("process.args: empty (the container needs a program to run)")
        }
        Some(a) if a[0].is_empty() => bail!("process.args[0]: empty program name"),
        _ => {}
    }
    if !process.cwd().is_absolute() {
        bail!("process.cwd: {:?} is not an absolute path", process.cwd());
    }
    if process
        .apparmor_profile()
        .as_deref()
        .is_some_and(|p| !p.is_empty())
    {
        bail!("process.apparmorProfile: AppArmor is not supported by drover runtime");
    }
    if process
        .selinux_label()
        .as_deref()
        .is_some_and(|p| !p.is_empty())
    {
        bail!("process.selinuxLabel: SELinux is not supported by drover runtime");
    }
    if process.io_priority().is_some() {
        bail!("process.ioPriority: not supported by drover runtime");
    }
    if process.scheduler().is_some() {
        bail!("process.scheduler: not supported by drover runtime");
    }
    if process.exec_cpu_affinity().is_some() {
        bail!("process.execCPUAffinity: not supported by drover runtime");
    }
    if let Some(linux) = spec.linux() {
        check_linux(spec, linux)?;
    }
    Ok(())
}

fn check_linux(spec: &Spec, linux: &oci_spec::runtime::Linux) -> anyhow::Result<()> {
    if linux.intel_rdt().is_some() {
        bail!("linux.intelRdt: not supported by drover runtime");
    }
    if linux.personality().is_some() {
        bail!("linux.personality: not supported by drover runtime");
    }
    if linux.memory_policy().is_some() {
        bail!("linux.memoryPolicy: not supported by drover runtime");
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty()) {
        bail!("linux.timeOffsets: not supported by drover runtime");
    }
    if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        bail!("linux.netDevices: not supported by drover runtime");
    }
    if linux
        .mount_label()
        .as_deref()
        .is_some_and(|l| !l.is_empty())
    {
        bail!("linux.mountLabel: SELinux is not supported by drover runtime");
    }
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    let mut seen = Vec::new();
    for (i, ns) in namespaces.iter().enumerate() {
        let typ = ns.typ();
        if seen.contains(&typ) {
            bail!("linux.namespaces[{i}]: namespace type {typ} listed twice");
        }
        seen.push(typ);
        if typ == LinuxNamespaceType::Time {
            bail!("linux.namespaces[{i}]: time namespaces are not supported by drover runtime");
        }
        if let Some(p) = ns.path()
            && !p.is_absolute()
        {
            bail!(
                "linux.namespaces[{i}].path: {} is not absolute",
                p.display()
            );
        }
    }
    let user_new = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if user_new && !has_maps {
        bail!("linux.uidMappings: a new user namespace needs uid and gid mappings");
    }
    if user_new && linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
        bail!("linux.gidMappings: a new user namespace needs uid and gid mappings");
    }
    if !user_new && has_maps {
        bail!("linux.uidMappings: mappings given without a new user namespace in linux.namespaces");
    }
    let has = |t| namespaces.iter().any(|n| n.typ() == t);
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        bail!("hostname: setting a hostname needs a uts namespace in linux.namespaces");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
        "process":{"cwd":"/","args":["/bin/true"],"user":{"uid":0,"gid":0}},
        "linux":{"namespaces":[{"type":"pid"},{"type":"mount"}]}}"#;

    fn with(patch: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut v: serde_json::Value = serde_json::from_str(MINIMAL).unwrap();
        patch(&mut v);
        v.to_string()
    }

    fn err(json: &str) -> String {
        match parse(json.as_bytes()).and_then(|s| check(&s)) {
            Ok(()) => panic!("accepted: {json}"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn minimal_config_is_accepted() {
        check(&parse(MINIMAL.as_bytes()).unwrap()).unwrap();
    }

    #[test]
    fn type_error_names_the_field() {
        let e = err(&with(|v| v["process"]["args"] = "/bin/true".into()));
        assert!(e.starts_with("process.args: invalid type: string"), "{e}");
        assert!(e.contains("expected a sequence"), "{e}");
    }

    #[test]
    fn nested_type_error_names_the_index() {
        let e = err(&with(|v| {
            v["linux"]["namespaces"][1]["type"] = "bogus".into()
        }));
        assert!(
            e.starts_with("linux.namespaces[1].type: unknown variant"),
            "{e}"
        );
    }

    #[test]
    fn missing_args_is_an_error() {
        let e = err(&with(|v| {
            v["process"].as_object_mut().unwrap().remove("args");
        }));
        assert!(e.starts_with("process.args: missing"), "{e}");
        let e = err(&with(|v| v["process"]["args"] = serde_json::json!([])));
        assert!(e.starts_with("process.args: empty"), "{e}");
    }

    #[test]
    fn unsupported_fields_are_named() {
        let e = err(&with(|v| {
            v["linux"]["intelRdt"] = serde_json::json!({"closID": "x"})
        }));
        assert!(e.starts_with("linux.intelRdt:"), "{e}");
        let e = err(&with(|v| v["process"]["apparmorProfile"] = "p".into()));
        assert!(e.starts_with("process.apparmorProfile:"), "{e}");
        let e = err(&with(|v| v["ociVersion"] = "2.0.0".into()));
        assert!(e.starts_with("ociVersion:"), "{e}");
    }

    #[test]
    fn user_namespace_needs_mappings() {
        let e = err(&with(|v| {
            v["linux"]["namespaces"] = serde_json::json!([{"type": "user"}]);
        }));
        assert!(e.starts_with("linux.uidMappings:"), "{e}");
        let ok = with(|v| {
            v["linux"]["namespaces"] = serde_json::json!([{"type": "user"}]);
            v["linux"]["uidMappings"] =
                serde_json::json!([{"containerID":0,"hostID":1000,"size":1}]);
            v["linux"]["gidMappings"] =
                serde_json::json!([{"containerID":0,"hostID":1000,"size":1}]);
        });
        check(&parse(ok.as_bytes()).unwrap()).unwrap();
    }

    #[test]
    fn mangled_configs_are_errors_never_panics() {
        // A cheap deterministic fuzz: every truncation and a byte substitution at every
        // position of a valid config parse and check without panicking.
        let good = with(|v| {
            v["hostname"] = "h".into();
            v["linux"]["uidMappings"] = serde_json::json!([]);
            v["process"]["rlimits"] =
                serde_json::json!([{"type": "RLIMIT_NOFILE", "hard": 1, "soft": 1}]);
        });
        let bytes = good.as_bytes();
        let mut rejected = 0;
        for i in 0..bytes.len() {
            if parse(&bytes[..i]).and_then(|s| check(&s)).is_err() {
                rejected += 1;
            }
            for sub in [b'"', b'1', b'{', b']', 0xff] {
                let mut m = bytes.to_vec();
                m[i] = sub;
                let _ = parse(&m).and_then(|s| check(&s));
            }
        }
        // Every strict prefix is incomplete JSON.
        assert_eq!(rejected, bytes.len());
    }

    #[test]
    fn missing_rootfs_directory_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), MINIMAL).unwrap();
        let e = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(e.starts_with("root.path: rootfs directory"), "{e}");
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        let b = load(dir.path()).unwrap();
        assert_eq!(b.rootfs, dir.path().join("rootfs"));
    }
}
