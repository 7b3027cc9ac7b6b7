//! Helpers shared by this crate's integration tests: a small tar builder with PAX records,
//! OCI layouts written by hand, and `stat`/`getxattr` wrappers.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use drover_image::Digest;
use drover_image::oci::{self, Descriptor, Index, Manifest};

/// Builds a layer tar entry by entry.
pub struct Tar {
    b: tar::Builder<Vec<u8>>,
}

/// One PAX record list: `(key, value)`.
pub type Pax<'a> = &'a [(&'a str, &'a [u8])];

impl Default for Tar {
    fn default() -> Self {
        Tar {
            b: tar::Builder::new(Vec::new()),
        }
    }
}

fn pax_block(records: Pax<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        // "LEN key=value\n", where LEN counts itself.
        let body = k.len() + v.len() + 3;
        let mut len = body + 1;
        while len.to_string().len() + body != len {
            len += 1;
        }
        out.extend_from_slice(format!("{len} {k}=").as_bytes());
        out.extend_from_slice(v);
        out.push(b'\n');
    }
    out
}

impl Tar {
    fn header(kind: tar::EntryType, mode: u32, uid: u64, gid: u64, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_size(size);
        h.set_mtime(1_600_000_000);
        h
    }

    fn pax(&mut self, records: Pax<'_>) {
        if records.is_empty() {
            return;
        }
        let data = pax_block(records);
        let mut h = Self::header(tar::EntryType::XHeader, 0o644, 0, 0, data.len() as u64);
        h.set_path("PaxHeaders/x").unwrap();
        h.set_cksum();
        self.b.append(&h, &data[..]).unwrap();
    }

    /// Raw path bytes written straight into the ustar name field (no checks), so tests can
    /// produce hostile paths (`../x`, `/abs`).
    fn set_raw_path(h: &mut tar::Header, path: &str) {
        let name = &mut h.as_old_mut().name;
        name.fill(0);
        name[..path.len()].copy_from_slice(path.as_bytes());
    }

    pub fn file(
        &mut self,
        path: &str,
        mode: u32,
        uid: u64,
        gid: u64,
        data: &[u8],
        pax: Pax<'_>,
    ) -> &mut Self {
        self.pax(pax);
        let mut h = Self::header(tar::EntryType::Regular, mode, uid, gid, data.len() as u64);
        if path.len() < 100 {
            Self::set_raw_path(&mut h, path);
            h.set_cksum();
            self.b.append(&h, data).unwrap();
        } else {
            // GNU long-name form (the tar crate writes ././@LongLink).
            self.b.append_data(&mut h, path, data).unwrap();
        }
        self
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Directory, mode, 0, 0, 0);
        Self::set_raw_path(&mut h, path);
        h.set_cksum();
        self.b.append(&h, &[][..]).unwrap();
        self
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0, 0, 0);
        Self::set_raw_path(&mut h, path);
        h.set_link_name(target).unwrap();
        h.set_cksum();
        self.b.append(&h, &[][..]).unwrap();
        self
    }

    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Link, 0o644, 0, 0, 0);
        Self::set_raw_path(&mut h, path);
        let ln = &mut h.as_old_mut().linkname;
        ln.fill(0);
        ln[..target.len()].copy_from_slice(target.as_bytes());
        h.set_cksum();
        self.b.append(&h, &[][..]).unwrap();
        self
    }

    pub fn device(
        &mut self,
        path: &str,
        kind: tar::EntryType,
        major: u32,
        minor: u32,
    ) -> &mut Self {
        let mut h = Self::header(kind, 0o666, 0, 0, 0);
        Self::set_raw_path(&mut h, path);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_cksum();
        self.b.append(&h, &[][..]).unwrap();
        self
    }

    /// A file whose long name is carried only by a PAX `path` record.
    pub fn pax_long_file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.pax(&[("path", path.as_bytes())]);
        let mut h = Self::header(tar::EntryType::Regular, 0o644, 0, 0, data.len() as u64);
        Self::set_raw_path(&mut h, "truncated-name");
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

/// Writes an OCI layout with one image made of `layers` (uncompressed tars, each stored
/// compressed as `compress` says) and returns the manifest digest.
pub fn write_layout(
    dir: &Path,
    ref_name: &str,
    layers: &[Vec<u8>],
    compress: &str,
    cmd: &[&str],
) -> Digest {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let put = |bytes: &[u8]| -> Digest {
        let d = Digest::of(bytes);
        std::fs::write(dir.join("blobs/sha256").join(d.hex()), bytes).unwrap();
        d
    };
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for l in layers {
        diff_ids.push(Digest::of(l).to_string());
        let (bytes, mt) = match compress {
            "gzip" => (gzip(l), oci::MT_OCI_LAYER_GZIP),
            "zstd" => (zstd(l), oci::MT_OCI_LAYER_ZSTD),
            _ => (l.clone(), oci::MT_OCI_LAYER),
        };
        let d = put(&bytes);
        descs.push(desc(mt, d, bytes.len()));
    }
    let config = serde_json::json!({
        "architecture": drover_image::Platform::host().architecture,
        "os": "linux",
        "config": {"Cmd": cmd, "Env": ["PATH=/bin"], "WorkingDir": "/", "StopSignal": "SIGQUIT"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let cb = serde_json::to_vec(&config).unwrap();
    let cd = put(&cb);
    let m = Manifest {
        schema_version: 2,
        media_type: Some(oci::MT_OCI_MANIFEST.into()),
        config: desc(oci::MT_OCI_CONFIG, cd, cb.len()),
        layers: descs,
        annotations: BTreeMap::new(),
    };
    let mb = serde_json::to_vec(&m).unwrap();
    let md = put(&mb);
    let mut top = desc(oci::MT_OCI_MANIFEST, md.clone(), mb.len());
    top.annotations
        .insert(oci::ANNOTATION_REF_NAME.into(), ref_name.into());
    let idx = Index {
        schema_version: 2,
        media_type: Some(oci::MT_OCI_INDEX.into()),
        manifests: vec![top],
        annotations: BTreeMap::new(),
    };
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
    md
}

pub fn desc(mt: &str, d: Digest, size: usize) -> Descriptor {
    Descriptor {
        media_type: mt.into(),
        digest: d,
        size: size as u64,
        platform: None,
        annotations: BTreeMap::new(),
    }
}

pub fn getxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(_) => None,
    }
}

/// Skips (returns true) unless root; panics instead when DROVER_REQUIRE_PEERS=1.
pub fn skip_unless_root(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return false;
    }
    if std::env::var("DROVER_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("{test} needs root and DROVER_REQUIRE_PEERS=1");
    }
    eprintln!("skipping {test}: needs root");
    true
}

/// Skips unless `program` is on PATH; panics when DROVER_REQUIRE_PEERS=1.
pub fn skip_without(test: &str, program: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()));
    if found {
        return false;
    }
    if std::env::var("DROVER_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("{test} needs {program} and DROVER_REQUIRE_PEERS=1");
    }
    eprintln!("skipping {test}: {program} is not installed");
    true
}
