//! `drover-fixtures`: builds Drover's fixture images as OCI layouts and pushes them to a
//! registry. See `docs/test-images.md`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use drover_testing::fixtures;

#[derive(Parser)]
#[command(
    name = "drover-fixtures",
    about = "Build and push Drover's fixture OCI images"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the fixture images.
    List,
    /// Write one image as an OCI layout into DIR (new or empty).
    Build {
        /// Image reference, e.g. nginx:1.27-alpine or ghcr.io/myorg/web:v1.4.2.
        name: String,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write every image, each as an OCI layout in DIR/<reference with / and : as _>.
    BuildAll {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Push images to a registry with skopeo (plain HTTP), under their repository paths
    /// (library/nginx, myorg/web, …).
    Push {
        /// Registry host:port, e.g. 127.0.0.1:5000.
        #[arg(long)]
        registry: String,
        /// Layouts written by build-all; without it, images are built into a temp dir.
        #[arg(long)]
        from: Option<PathBuf>,
        /// Run skopeo inside this network namespace (ip netns exec NAME skopeo …).
        #[arg(long)]
        netns: Option<String>,
        /// Image references; none means all.
        names: Vec<String>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::List => {
            for f in fixtures::all() {
                println!("{:<32} {:<28} {}", f.reference, f.repository, f.summary);
            }
        }
        Cmd::Build { name, out } => {
            let f = fixtures::find(&name)?;
            let w = f
                .write_layout(&out)
                .with_context(|| format!("building {}", f.reference))?;
            println!("{} {} {}", f.reference, w.top.digest, out.display());
        }
        Cmd::BuildAll { out } => {
            for (f, dir, w) in fixtures::build_all(&out)? {
                println!("{} {} {}", f.reference, w.top.digest, dir.display());
            }
        }
        Cmd::Push {
            registry,
            from,
            netns,
            names,
        } => push(&registry, from, netns.as_deref(), &names)?,
    }
    Ok(())
}

fn push(
    registry: &str,
    from: Option<PathBuf>,
    netns: Option<&str>,
    names: &[String],
) -> Result<()> {
    if registry.contains('/') || !registry.contains(':') {
        bail!("--registry wants host:port (e.g. 127.0.0.1:5000), got {registry:?}");
    }
    let selected: Vec<&fixtures::Fixture> = if names.is_empty() {
        fixtures::all().iter().collect()
    } else {
        names
            .iter()
            .map(|n| fixtures::find(n))
            .collect::<Result<_, _>>()?
    };
    let tmp = tempfile::Builder::new()
        .prefix("drover-fixtures-")
        .tempdir()?;
    for f in selected {
        let dir = match &from {
            Some(from) => {
                let dir = from.join(f.slug());
                if !dir.join("index.json").exists() {
                    bail!(
                        "{} has no layout for {}; run build-all --out {} first",
                        dir.display(),
                        f.reference,
                        from.display()
                    );
                }
                dir
            }
            None => {
                let dir = tmp.path().join(f.slug());
                f.write_layout(&dir)?;
                dir
            }
        };
        let skopeo = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "skopeo"]);
                c
            }
            None => Command::new("skopeo"),
        };
        let dest = format!("{registry}/{}:{}", f.repository, f.tag);
        drover_testing::skopeo_copy(skopeo, &dir, f.tag, &dest, &Default::default())
            .with_context(|| format!("pushing {}", f.reference))?;
        println!("{} -> {dest}", f.reference);
    }
    Ok(())
}
