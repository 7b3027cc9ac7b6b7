//! `drover image …`: the Docker-style verbs over the store.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::archive::{self, Format};
use crate::auth::{self, Credentials};
use crate::mirrors::{Endpoint, RegistriesConfig};
use crate::oci::Platform;
use crate::progress::human;
use crate::pull::{PullOptions, PullPolicy, pull};
use crate::push::{PushOptions, push};
use crate::registry::{Session, http_client};
use crate::store::Store;

/// Options every `drover image` command takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Drover's data directory; images live in `<data-dir>/images`.
    #[arg(
        long,
        default_value = "/var/lib/drover",
        env = "DROVER_DATA_DIR",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Registry mirrors and settings (k3s `registries.yaml` schema); default
    /// `<data-dir>/registries.yaml`.
    #[arg(long, global = true)]
    pub registries: Option<PathBuf>,
}

impl Common {
    fn store(&self) -> anyhow::Result<Store> {
        Ok(Store::open(self.data_dir.join("images"))?)
    }
    fn registries(&self) -> anyhow::Result<RegistriesConfig> {
        let p = self
            .registries
            .clone()
            .unwrap_or_else(|| self.data_dir.join("registries.yaml"));
        Ok(RegistriesConfig::load(&p)?)
    }
}

/// `drover image` subcommands.
#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Pull an image from a registry (through configured mirrors).
    Pull {
        /// Store options.
        #[command(flatten)]
        common: Common,
        /// Image reference (`nginx:1.27-alpine`, `ghcr.io/org/app@sha256:…`).
        reference: String,
        /// When to contact the registry.
        #[arg(long = "pull", value_enum, default_value = "always")]
        policy: PullPolicy,
        /// Platform to select from multi-platform images (`os/arch[/variant]`).
        #[arg(long)]
        platform: Option<String>,
        /// Never fall back to the origin registry when mirrors fail (k3s's flag of that name).
        #[arg(long, env = "DROVER_DISABLE_DEFAULT_REGISTRY_ENDPOINT")]
        disable_default_registry_endpoint: bool,
        /// Layers downloaded at once.
        #[arg(long, default_value_t = 3)]
        concurrency: usize,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Push an image to its registry (or to DEST).
    Push {
        /// Store options.
        #[command(flatten)]
        common: Common,
        /// Local image.
        image: String,
        /// Destination reference (default: the image's name).
        dest: Option<String>,
        /// Blobs larger than this many bytes are uploaded in chunks (PATCH) of this size.
        #[arg(long, default_value_t = 8 << 20)]
        chunk_size: usize,
    },
    /// List images.
    #[command(alias = "list")]
    Ls {
        /// Store options.
        #[command(flatten)]
        common: Common,
        /// Only image IDs.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Remove image names; content no other name uses is deleted.
    #[command(alias = "remove")]
    Rm {
        /// Store options.
        #[command(flatten)]
        common: Common,
        /// Names or IDs.
        #[arg(required = true)]
        images: Vec<String>,
        /// Keep the unreferenced content (remove the name only).
        #[arg(long)]
        no_prune: bool,
    },
    /// Give an image another name.
    Tag {
        /// Store options.
        #[command(flatten)]
        common: Common,
        /// Existing image.
        source: String,
        /// New name.
        target: String,
    },
    /// Show an image's record, config and overlay lower directories as JSON.
    Inspect {
        /// Store options.
        #[command(flatten)]
        common: Common,
        /// Names or IDs.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Import an OCI layout (directory or tar) or a docker-archive tar.
    Import {
        /// Store options.
        #[command(flatten)]
        common: Common,
        /// Archive or layout directory.
        path: PathBuf,
        /// Name for the image (required if the archive has no full name).
        name: Option<String>,
        /// Platform to unpack from multi-platform layouts.
        #[arg(long)]
        platform: Option<String>,
    },
    /// Export images as a tar.
    Export {
        /// Store options.
        #[command(flatten)]
        common: Common,
        /// Names or IDs.
        #[arg(required = true)]
        images: Vec<String>,
        /// Output file (`-` for stdout).
        #[arg(long, short)]
        output: PathBuf,
        /// Archive format.
        #[arg(long, value_enum, default_value = "oci")]
        format: Format,
    },
    /// Remove blobs and snapshots no image uses, and leftovers of interrupted pulls.
    Prune {
        /// Store options.
        #[command(flatten)]
        common: Common,
    },
    /// Verify the store: every blob re-hashes to its digest; every image is complete.
    Check {
        /// Store options.
        #[command(flatten)]
        common: Common,
    },
    /// Unpack one layer blob (tar, tar+gzip or tar+zstd) into an empty directory, as the store
    /// does for snapshots; prints the diff ID. For benchmarks and debugging.
    #[command(hide = true)]
    UnpackLayer {
        /// The layer blob.
        blob: PathBuf,
        /// Destination directory (created; must be empty).
        dest: PathBuf,
    },
    /// Log in to a registry; credentials go to Docker's config.json.
    Login {
        /// Store options.
        #[command(flatten)]
        common: Common,
        /// Registry host (default docker.io).
        #[arg(default_value = "docker.io")]
        server: String,
        /// Username.
        #[arg(long, short)]
        username: String,
        /// Password (prefer --password-stdin).
        #[arg(long, short)]
        password: Option<String>,
        /// Read the password from stdin.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// Runs one `drover image` command.
pub fn run(cmd: ImageCommand) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("drover image: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(execute(cmd)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Every error of this crate already spells out its causes; `{:#}` would repeat them.
            eprintln!("drover image: {e}");
            ExitCode::FAILURE
        }
    }
}

fn platform(p: &Option<String>) -> anyhow::Result<Platform> {
    match p {
        None => Ok(Platform::host()),
        Some(s) => Platform::parse(s)
            .ok_or_else(|| anyhow::anyhow!("invalid --platform {s:?}: expected os/arch[/variant]")),
    }
}

async fn execute(cmd: ImageCommand) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match cmd {
        ImageCommand::Pull {
            common,
            reference,
            policy,
            platform: p,
            disable_default_registry_endpoint,
            concurrency,
            quiet,
        } => {
            let store = common.store()?;
            let opts = PullOptions {
                registries: common.registries()?,
                origin_fallback: !disable_default_registry_endpoint,
                platform: platform(&p)?,
                concurrency,
                progress: !quiet,
                policy,
                ..PullOptions::default()
            };
            let rep = pull(&store, &reference, &opts).await?;
            if !quiet {
                eprintln!(
                    "pulled {} from {}: fetched {} blob(s), {}; {} already present",
                    rep.image.name,
                    if rep.source.is_empty() {
                        "the local store"
                    } else {
                        &rep.source
                    },
                    rep.fetched.len(),
                    human(rep.fetched_bytes),
                    rep.present
                );
            }
            writeln!(out, "{}", rep.image.config)?;
        }
        ImageCommand::Push {
            common,
            image,
            dest,
            chunk_size,
        } => {
            let store = common.store()?;
            let opts = PushOptions {
                registries: common.registries()?,
                chunk_size: chunk_size.max(1),
                ..PushOptions::default()
            };
            let rep = push(&store, &image, dest.as_deref(), &opts).await?;
            eprintln!(
                "pushed {}: {} blob(s) uploaded, {} already there",
                rep.reference, rep.uploaded, rep.skipped
            );
            writeln!(out, "{}", rep.digest)?;
        }
        ImageCommand::Ls { common, quiet } => {
            let store = common.store()?;
            let mut images = store.images()?;
            images.sort_by(|a, b| a.name.cmp(&b.name));
            if !quiet {
                writeln!(
                    out,
                    "{:<50} {:<14} {:<10}",
                    "REPOSITORY:TAG", "IMAGE ID", "SIZE"
                )?;
            }
            for i in images {
                if quiet {
                    writeln!(out, "{}", i.config.short())?;
                    continue;
                }
                let size: u64 = store
                    .manifest(&i.manifest)
                    .map(|m| m.layers.iter().map(|l| l.size).sum())
                    .unwrap_or(0);
                let shown = i
                    .reference()
                    .map(|r| r.familiar())
                    .unwrap_or(i.name.clone());
                writeln!(
                    out,
                    "{:<50} {:<14} {:<10}",
                    shown,
                    i.config.short(),
                    human(size)
                )?;
            }
        }
        ImageCommand::Rm {
            common,
            images,
            no_prune,
        } => {
            let store = common.store()?;
            for i in &images {
                let rec = store.resolve(i)?;
                // An ID removes every name of that image; a name removes just itself.
                let by_name = i
                    .parse::<crate::Reference>()
                    .is_ok_and(|r| r.to_string() == rec.name);
                let names: Vec<String> = if by_name {
                    vec![rec.name.clone()]
                } else {
                    store
                        .images()?
                        .into_iter()
                        .filter(|x| x.config == rec.config)
                        .map(|x| x.name)
                        .collect()
                };
                for n in names {
                    store.remove_name(&n)?;
                    writeln!(out, "Untagged: {n}")?;
                }
            }
            if !no_prune {
                let g = store.gc()?;
                writeln!(
                    out,
                    "Deleted {} blob(s) and {} snapshot(s), {} freed",
                    g.blobs,
                    g.snapshots,
                    human(g.bytes)
                )?;
            }
        }
        ImageCommand::Tag {
            common,
            source,
            target,
        } => {
            let store = common.store()?;
            let _g = store.writer()?;
            let mut rec = store.resolve(&source)?;
            rec.name = target.parse::<crate::Reference>()?.to_string();
            store.set_image(&rec)?;
        }
        ImageCommand::Inspect { common, images } => {
            let store = common.store()?;
            let mut all = Vec::new();
            for i in &images {
                let rec = store.resolve(i)?;
                let cfg: serde_json::Value =
                    serde_json::from_slice(&store.read_blob(&rec.config)?)?;
                let plan = store.mount_plan(&rec)?;
                all.push(serde_json::json!({
                    "Name": rec.name,
                    "Id": rec.config,
                    "Digest": rec.target.digest,
                    "MediaType": rec.target.media_type,
                    "Manifest": rec.manifest,
                    "ChainIds": store.chain_ids(&rec)?,
                    "LowerDirs": plan.lowerdirs,
                    "Config": cfg,
                }));
            }
            serde_json::to_writer_pretty(&mut out, &all)?;
            writeln!(out)?;
        }
        ImageCommand::Import {
            common,
            path,
            name,
            platform: p,
        } => {
            let store = common.store()?;
            let p = platform(&p)?;
            let recs = tokio::task::spawn_blocking(move || {
                archive::import(&store, &path, name.as_deref(), &p)
            })
            .await??;
            for r in recs {
                writeln!(out, "Loaded image: {} ({})", r.name, r.config.short())?;
            }
        }
        ImageCommand::Export {
            common,
            images,
            output,
            format,
        } => {
            let store = common.store()?;
            if output.as_os_str() == "-" {
                if std::io::stdout().is_terminal() {
                    anyhow::bail!(
                        "refusing to write a tar to a terminal; use -o FILE or redirect stdout"
                    );
                }
                archive::export(&store, &images, format, std::io::BufWriter::new(&mut out))?;
            } else {
                let tmp = output.with_extension("partial");
                let f = std::fs::File::create(&tmp)
                    .map_err(|e| anyhow::anyhow!("creating {}: {e}", tmp.display()))?;
                let res = archive::export(&store, &images, format, std::io::BufWriter::new(f));
                if res.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                res?;
                std::fs::rename(&tmp, &output)?;
            }
        }
        ImageCommand::UnpackLayer { blob, dest } => {
            std::fs::create_dir_all(&dest)?;
            if std::fs::read_dir(&dest)?.next().is_some() {
                anyhow::bail!("{} is not empty", dest.display());
            }
            let stats = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let f = std::fs::File::open(&blob)
                    .map_err(|e| anyhow::anyhow!("opening {}: {e}", blob.display()))?;
                let mut r = std::io::BufReader::with_capacity(1 << 20, f);
                let head = std::io::BufRead::fill_buf(&mut r)?;
                let comp = crate::oci::Compression::sniff(head);
                Ok(crate::unpack::unpack_layer(r, comp, &dest, None)?)
            })
            .await??;
            writeln!(
                out,
                "{} {} bytes {} entries",
                stats.diff_id, stats.bytes, stats.entries
            )?;
        }
        ImageCommand::Prune { common } => {
            let store = common.store()?;
            let g = store.gc()?;
            writeln!(
                out,
                "Deleted {} blob(s), {} snapshot(s), {} leftover(s); {} freed",
                g.blobs,
                g.snapshots,
                g.leftovers,
                human(g.bytes)
            )?;
        }
        ImageCommand::Check { common } => {
            let store = common.store()?;
            let problems = store.check()?;
            for p in &problems {
                writeln!(out, "{p}")?;
            }
            if !problems.is_empty() {
                anyhow::bail!(
                    "{} problem(s) in the store at {}",
                    problems.len(),
                    store.root().display()
                );
            }
            writeln!(out, "ok")?;
        }
        ImageCommand::Login {
            common,
            server,
            username,
            password,
            password_stdin,
        } => {
            let password = match (password, password_stdin) {
                (Some(p), false) => p,
                (None, true) => {
                    let mut s = String::new();
                    std::io::stdin().lock().read_line(&mut s)?;
                    s.trim_end_matches(['\n', '\r']).to_owned()
                }
                _ => anyhow::bail!("give exactly one of --password or --password-stdin"),
            };
            let registry = server
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/');
            let registry = if registry == "index.docker.io" {
                crate::reference::DOCKER_HUB
            } else {
                registry
            };
            let creds = Credentials { username, password };
            let regs = common.registries()?;
            let ep = Endpoint::origin(registry);
            let http = http_client(regs.tls(&ep.host)).map_err(anyhow::Error::msg)?;
            // Checks the credentials: a token for pulling a probe repository must be granted.
            Session::connect(http, ep, "drover/login-check", Some(creds.clone()), "pull").await?;
            let path = auth::docker_config_path()
                .ok_or_else(|| anyhow::anyhow!("neither DOCKER_CONFIG nor HOME is set"))?;
            auth::store(&path, registry, &creds)?;
            writeln!(
                out,
                "Login Succeeded (credentials saved in {})",
                path.display()
            )?;
        }
    }
    Ok(())
}
