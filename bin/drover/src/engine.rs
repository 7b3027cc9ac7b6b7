//! Wires the container engine to the runtime crate (capabilities, seccomp, cgroups) and the
//! image store, which the engine only sees through small seams.

use std::path::Path;

use anyhow::{Context, Result, bail};
use drover_engine::cli::{ImageSource, PreparedImage, RuntimeFacts};
use drover_image::mirrors::RegistriesConfig;
use drover_image::{PullOptions, PullPolicy, Store};

/// Capability names and the default seccomp profile, from the runtime crate.
pub(crate) static RUNTIME_FACTS: RuntimeFacts = RuntimeFacts {
    default_caps: &drover_runtime::process::caps::DEFAULT_CAPABILITIES,
    all_caps: &drover_runtime::process::caps::NAMES,
    seccomp: default_seccomp,
};

fn default_seccomp(caps: &[String]) -> serde_json::Value {
    serde_json::to_value(drover_runtime::seccomp::default_profile(caps)).unwrap_or_default()
}

/// The supervisor's hooks into the runtime and image crates.
pub(crate) const SUPERVISOR_HOOKS: drover_engine::supervisor::Hooks =
    drover_engine::supervisor::Hooks {
        oom_killed,
        release_image,
    };

/// Whether the OOM killer acted in the cgroup at `cgroups_path` (any cgroup version).
fn oom_killed(cgroups_path: &str) -> bool {
    let Ok(layout) = drover_runtime::cgroups::detect() else {
        return false;
    };
    drover_runtime::cgroups::Cgroup::open(&layout, cgroups_path)
        .and_then(|cg| cg.oom_killed())
        .unwrap_or(false)
}

fn release_image(data_dir: &Path, lease: &str) {
    if let Ok(store) = Store::open(data_dir.join("images")) {
        let _ = store.remove_lease(lease);
    }
}

/// Images for `drover run`, from the image store under the data dir, pulled through the
/// registry mirrors of `<data-dir>/registries.yaml`.
pub(crate) struct ImageStore;

impl ImageSource for ImageStore {
    fn prepare(
        &self,
        data_dir: &Path,
        reference: &str,
        pull: &str,
        lease: &str,
    ) -> Result<PreparedImage> {
        let policy = match pull {
            "always" => PullPolicy::Always,
            "missing" => PullPolicy::Missing,
            "never" => PullPolicy::Never,
            other => bail!("invalid --pull {other:?}: use always, missing or never"),
        };
        let store = Store::open(data_dir.join("images"))?;
        let registries = RegistriesConfig::load(&data_dir.join("registries.yaml"))?;
        let opts = PullOptions {
            registries,
            policy,
            progress: true,
            ..PullOptions::default()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the pull's async runtime")?;
        let report = runtime.block_on(drover_image::pull::pull(&store, reference, &opts))?;
        let image = report.image;
        store.add_lease(lease, &image)?;
        let prepared = (|| -> Result<PreparedImage> {
            let plan = store.mount_plan(&image)?;
            let config = serde_json::from_slice(&store.read_blob(&image.config)?)
                .context("parsing the image config")?;
            Ok(PreparedImage {
                id: image.config.to_string(),
                config,
                lower_dirs: plan.lowerdirs,
            })
        })();
        if prepared.is_err() {
            let _ = store.remove_lease(lease);
        }
        prepared
    }

    fn release(&self, data_dir: &Path, lease: &str) {
        release_image(data_dir, lease);
    }
}
