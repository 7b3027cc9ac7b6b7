//! Garbage collection (mark from names and leases, sweep the rest) and the consistency check.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;

use sha2::{Digest as _, Sha256};

use super::{GcReport, Result, Store, ioe, sync_dir};
use crate::digest::{Digest, chain_ids};
use crate::oci::{self, DocKind, Index, Manifest};

impl Store {
    /// Removes every blob and snapshot no name or lease reaches, and leftovers of interrupted
    /// work. Waits for running writers (pulls, imports) to finish.
    pub fn gc(&self) -> Result<GcReport> {
        let _g = self.exclusive()?;
        let (blobs, snaps) = self.reachable()?;
        let mut rep = GcReport::default();
        let bdir = self.root.join("blobs/sha256");
        for e in fs::read_dir(&bdir)
            .map_err(ioe("listing", &bdir))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if !blobs.contains(&name) {
                rep.bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(e.path()).map_err(ioe("removing", &e.path()))?;
                rep.blobs += 1;
            }
        }
        let sdir = self.root.join("snapshots");
        for e in fs::read_dir(&sdir)
            .map_err(ioe("listing", &sdir))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") {
                fs::remove_dir_all(e.path()).map_err(ioe("removing", &e.path()))?;
                rep.leftovers += 1;
            } else if !snaps.contains(&name) {
                fs::remove_dir_all(e.path()).map_err(ioe("removing", &e.path()))?;
                rep.snapshots += 1;
            }
        }
        for d in ["ingest", "locks"] {
            let dir = self.root.join(d);
            for e in fs::read_dir(&dir).map_err(ioe("listing", &dir))?.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                // Per-item lock files are only taken under the shared store lock, which we
                // hold exclusively: nobody can hold them now.
                if d == "locks" && (name == "store" || name == "index") {
                    continue;
                }
                if d == "ingest" {
                    rep.bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                    rep.leftovers += 1;
                }
                let _ = fs::remove_file(e.path());
            }
        }
        sync_dir(&bdir)?;
        Ok(rep)
    }

    /// Blob hexes and snapshot hexes reachable from names and leases.
    fn reachable(&self) -> Result<(HashSet<String>, HashSet<String>)> {
        let mut roots: Vec<Digest> = Vec::new();
        for r in self.images()? {
            roots.push(r.target.digest.clone());
            roots.push(r.manifest.clone());
        }
        let ldir = self.root.join("leases");
        for e in fs::read_dir(&ldir)
            .map_err(ioe("listing", &ldir))?
            .flatten()
        {
            if let Ok(s) = fs::read_to_string(e.path())
                && let Ok(d) = s.trim().parse::<Digest>()
            {
                roots.push(d);
            }
        }
        let mut blobs = HashSet::new();
        let mut snaps = HashSet::new();
        while let Some(d) = roots.pop() {
            if !blobs.insert(d.hex().to_owned()) {
                continue;
            }
            let Ok(bytes) = self.read_blob(&d) else {
                continue;
            };
            match oci::classify(None, &bytes) {
                DocKind::Index => {
                    if let Ok(idx) = serde_json::from_slice::<Index>(&bytes) {
                        roots.extend(idx.manifests.into_iter().map(|m| m.digest));
                    }
                }
                DocKind::Manifest => {
                    if let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) {
                        blobs.insert(m.config.digest.hex().to_owned());
                        blobs.extend(m.layers.iter().map(|l| l.digest.hex().to_owned()));
                        if let Ok(cfg) = self.config_blob(&m.config.digest) {
                            snaps.extend(
                                chain_ids(&cfg.rootfs.diff_ids)
                                    .iter()
                                    .map(|c| c.hex().to_owned()),
                            );
                        }
                    }
                }
                _ => {}
            }
        }
        Ok((blobs, snaps))
    }

    /// Verifies the store: every blob re-hashes to its name, and every named image has all its
    /// blobs and snapshots. Returns the problems found (empty when consistent).
    pub fn check(&self) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        let bdir = self.root.join("blobs/sha256");
        for e in fs::read_dir(&bdir)
            .map_err(ioe("listing", &bdir))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let mut h = Sha256::new();
            let mut f = File::open(e.path()).map_err(ioe("opening", &e.path()))?;
            io::copy(&mut f, &mut h).map_err(ioe("reading", &e.path()))?;
            let got = Digest::from_hasher(h);
            if got.hex() != name {
                problems.push(format!("blob {name} hashes to {got}"));
            }
        }
        for rec in self.images()? {
            if !self.has_blob(&rec.target.digest) {
                problems.push(format!(
                    "{}: target {} missing",
                    rec.name, rec.target.digest
                ));
            }
            let m = match self.manifest(&rec.manifest) {
                Ok(m) => m,
                Err(e) => {
                    problems.push(format!("{}: manifest: {e}", rec.name));
                    continue;
                }
            };
            for l in m.layers.iter().chain([&m.config]) {
                if !self.has_blob(&l.digest) {
                    problems.push(format!("{}: blob {} missing", rec.name, l.digest));
                }
            }
            match self.config(&rec) {
                Ok(cfg) => {
                    for c in chain_ids(&cfg.rootfs.diff_ids) {
                        if !self.snapshot_path(&c).is_dir() {
                            problems.push(format!("{}: snapshot {c} missing", rec.name));
                        }
                    }
                }
                Err(e) => problems.push(format!("{}: config: {e}", rec.name)),
            }
        }
        Ok(problems)
    }
}
