//! Configuration: the global `<root>/etc/zbk.toml` and each host's `c/zbk.toml`, parsed
//! strictly and resolved into settings, with errors that name the file and the key; what
//! only the global file may hold, and the template `zbk init` writes.

mod files;
#[cfg(test)]
mod fuzz;
mod overlay;
mod settings;

pub use files::check_private;
pub use settings::{
    ChangeLimits, CheckSettings, Hooks, Online, RsyncSettings, Settings, SshSettings,
    DEFAULT_RSYNC_ARGS, DEFAULT_TIER, DEFAULT_TIERS, FAILED_TIER, MAX_SLICES,
};

use crate::expiry::Retention;
use anyhow::{anyhow, bail, Result};
use files::{parse_file, read};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long one `zfs` or `zpool` process may take until `[zfs] timeout` says otherwise.
pub const DEFAULT_ZFS_TIMEOUT: Duration = Duration::from_secs(600);

/// `check.scrub_age` and `check.capacity_warn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolLimits {
    pub scrub_age: Duration,
    pub capacity_warn: u8,
}

impl Default for PoolLimits {
    fn default() -> PoolLimits {
        PoolLimits {
            scrub_age: Duration::from_secs(35 * 86400),
            capacity_warn: 80,
        }
    }
}

/// The global configuration, resolved.
#[derive(Clone, Debug)]
pub struct Global {
    /// The dataset given to `zbk init`; hosts live under `<dataset>/hosts`.
    pub dataset: crate::dataset::RootDataset,
    /// Most snapshots named in one OpenZFS comma-list destroy.
    pub destroy_batch: usize,
    /// Hosts `zbk run` backs up at once when `--jobs` is not given; unset: by the CPUs.
    pub jobs: Option<usize>,
    /// The least time `zbk replicate`'s copies live after their creation, whatever their
    /// received expiry.
    pub offsite_expiry: Option<Retention>,
    /// How `zbk check` judges the pool: `check.scrub_age`, `check.capacity_warn`.
    pub pool: PoolLimits,
    /// `[zfs] timeout`: how long one zfs or zpool process may take, and how long `zbk run`
    /// may go without progress before it gives up on a pool that stopped answering.
    pub zfs_timeout: Duration,
    pub settings: Settings,
}

/// One host's configuration, resolved over the global one.
#[derive(Clone, Debug)]
pub struct HostConfig {
    pub sources: Vec<String>,
    pub settings: Settings,
}

/// Where the global config lives under a root.
pub fn global_path(root: &Path) -> PathBuf {
    root.join("etc").join("zbk.toml")
}

impl Global {
    /// Loads `<root>/etc/zbk.toml`.
    pub fn load(root: &Path) -> Result<Global> {
        let path = global_path(root);
        crate::watchdog::doing(format!("reading {}", path.display()));
        if !path.exists() {
            bail!(
                "{}: not found: is --root (or ZBK_ROOT) right, and has `zbk init` been run?",
                path.display()
            );
        }
        Global::parse(&read(&path)?, &path)
    }

    /// Parses the text of a global config read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Global> {
        let file = parse_file(text, path)?;
        if file.sources.is_some() {
            bail!(
                "{}: sources: belongs in a host's c/zbk.toml, not the global config",
                path.display()
            );
        }
        let dataset = file.dataset.clone().ok_or_else(|| {
            anyhow!(
                "{}: dataset: missing (the dataset given to `zbk init`)",
                path.display()
            )
        })?;
        let Ok(dataset) = crate::dataset::RootDataset::parse(&dataset) else {
            bail!(
                "{}: dataset: {dataset:?} is not a ZFS filesystem name",
                path.display()
            );
        };
        let destroy_batch = file.destroy_batch.unwrap_or(100);
        if destroy_batch == 0 {
            bail!("{}: destroy_batch: must be at least 1", path.display());
        }
        if file.jobs == Some(0) {
            bail!("{}: jobs: must be at least 1", path.display());
        }
        let offsite_expiry = file
            .offsite_expiry
            .as_deref()
            .map(Retention::parse)
            .transpose()
            .map_err(|e| anyhow!("{}: offsite_expiry: {e}", path.display()))?;
        let zfs_timeout = match file.zfs.as_ref().and_then(|z| z.timeout.as_deref()) {
            Some(text) => overlay::duration(text, "zfs.timeout")
                .map_err(|e| anyhow!("{}: {e}", path.display()))?,
            None => DEFAULT_ZFS_TIMEOUT,
        };
        let settings = Settings::default().overlay(&file, path)?;
        let pool = pool_limits(&file).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        Ok(Global {
            dataset,
            destroy_batch,
            jobs: file.jobs,
            offsite_expiry,
            pool,
            zfs_timeout,
            settings,
        })
    }

    /// Loads a host's `c/zbk.toml` over these settings.
    pub fn load_host(&self, path: &Path) -> Result<HostConfig> {
        self.parse_host(&read(path)?, path)
    }

    /// Parses a host config's text over these settings.
    pub fn parse_host(&self, text: &str, path: &Path) -> Result<HostConfig> {
        let file = parse_file(text, path)?;
        for (key, set) in [
            ("dataset", file.dataset.is_some()),
            ("destroy_batch", file.destroy_batch.is_some()),
            ("jobs", file.jobs.is_some()),
            ("offsite_expiry", file.offsite_expiry.is_some()),
            (
                "check.scrub_age",
                file.check.as_ref().is_some_and(|c| c.scrub_age.is_some()),
            ),
            (
                "check.capacity_warn",
                file.check
                    .as_ref()
                    .is_some_and(|c| c.capacity_warn.is_some()),
            ),
            ("zfs", file.zfs.is_some()),
        ] {
            if set {
                bail!(
                    "{}: {key}: belongs in the global config, not a host's",
                    path.display()
                );
            }
        }
        let sources = file.sources.clone().ok_or_else(|| {
            anyhow!(
                "{}: sources: missing (a list of rsync sources)",
                path.display()
            )
        })?;
        if sources.is_empty() {
            bail!(
                "{}: sources: empty (a list of rsync sources)",
                path.display()
            );
        }
        for source in &sources {
            check_source(source).map_err(|e| anyhow!("{}: sources: {e}", path.display()))?;
        }
        Ok(HostConfig {
            sources,
            settings: self.settings.overlay(&file, path)?,
        })
    }
}

/// The pool's limits from the global file's `[check]`: they judge the one pool all hosts share.
fn pool_limits(file: &files::FileConfig) -> Result<PoolLimits> {
    let mut limits = PoolLimits::default();
    let Some(check) = &file.check else {
        return Ok(limits);
    };
    if let Some(text) = &check.scrub_age {
        limits.scrub_age = overlay::duration(text, "check.scrub_age")?;
    }
    if let Some(pct) = check.capacity_warn {
        if !(1..=100).contains(&pct) {
            bail!("check.capacity_warn: {pct} is not a percentage from 1 to 100");
        }
        limits.capacity_warn = pct;
    }
    Ok(limits)
}

/// Refuses sources that rsync would read as an option or that carry control characters.
pub fn check_source(source: &str) -> Result<()> {
    if source.is_empty() {
        bail!("empty source");
    }
    if source.starts_with('-') {
        bail!("{source:?} starts with '-' and would be read as an rsync option");
    }
    if source.chars().any(char::is_control) {
        bail!("{:?} contains a control character", source);
    }
    let remote = source
        .split_once(':')
        .filter(|(host, _)| !host.contains('/'));
    match remote {
        Some((host, path)) if host.is_empty() || !path.starts_with('/') => {
            bail!("{source:?}: a remote source is [user@]host:/absolute/path")
        }
        None if !source.starts_with('/') => {
            bail!("{source:?}: a local source must be an absolute path")
        }
        _ => Ok(()),
    }
}

/// Whether a source is remote (`[user@]host:/path`) rather than a local path.
pub fn is_remote(source: &str) -> bool {
    source
        .split_once(':')
        .is_some_and(|(host, _)| !host.is_empty() && !host.contains('/'))
}

/// The commented global config `zbk init` writes.
pub fn template(dataset: &str) -> String {
    let mut text = format!(
        "# zbk global configuration; see zbk.toml(5).\n\
         # Hosts live in {dataset}/hosts/<host>; each may override these keys in its c/zbk.toml.\n\
         dataset = \"{dataset}\"\n\n\
         # Newest good snapshots each active host keeps, whatever their expiry.\n\
         #min_keep = 1\n\
         # Run logs kept live in each host's l/ (older ones live on in snapshots).\n\
         #log_keep = 30\n\
         # Hosts `zbk run` backs up at once unless --jobs says (default: the CPUs, at most 4).\n\
         #jobs = 4\n\
         # Snapshots per comma-list destroy on OpenZFS.\n\
         #destroy_batch = 100\n\
         # Least time copies made by `zbk replicate` live on the target, whatever their expiry.\n\
         #offsite_expiry = \"30days\"\n\n\
         # How long each tier's snapshots live: a duration (7days, 5weeks, 13months) or \"never\".\n\
         [tiers]\n"
    );
    for (name, duration) in DEFAULT_TIERS {
        text.push_str(&format!("#{name} = \"{duration}\"\n"));
    }
    text.push_str("\n[rsync]\n# Replaces the default arguments:\n#args = [");
    text.push_str(&DEFAULT_RSYNC_ARGS.map(|a| format!("\"{a}\"")).join(", "));
    text.push_str(
        "]\n# Added after them:\n#extra_args = []\n#ok_codes = [0]\n#warning_codes = [24]\n",
    );
    text.push_str(
        "# rsync gives up on a client that sends nothing this long (\"none\": never).\n\
         #io_timeout = \"10m\"\n\n\
         [zfs]\n\
         # Longest a zfs or zpool command may take (a send | receive: without a byte).\n\
         #timeout = \"10m\"\n",
    );
    text.push_str(
        "\n[verify]\n# Slices of each host's tree: a plain `zbk verify` compares the next one with the client.\n#slices = 30\n",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(text: &str) -> Result<Global> {
        Global::parse(text, Path::new("/backup/etc/zbk.toml"))
    }

    #[test]
    fn the_template_parses_to_the_defaults() {
        let g = global(&template("tank/backup")).unwrap();
        assert_eq!(g.dataset.as_str(), "tank/backup");
        assert_eq!(g.destroy_batch, 100);
        assert_eq!(g.jobs, None);
        assert_eq!(g.settings, Settings::default());
        assert_eq!(global("dataset = \"t\"\njobs = 6\n").unwrap().jobs, Some(6));
    }

    #[test]
    fn host_config_overrides_the_global_one() {
        let g = global("dataset = \"t\"\nmin_keep = 3\n").unwrap();
        let path = Path::new("/backup/hosts/a/c/zbk.toml");
        let h = g
            .parse_host("sources = [\"/srv/\", \"root@a:/etc/\"]\nlog_keep = 5\n[tiers]\ndefault = \"1d\"\n", path)
            .unwrap();
        assert_eq!(h.settings.min_keep, 3);
        assert_eq!(h.settings.log_keep, 5);
        assert_eq!(h.settings.tier("default").unwrap().to_string(), "1day");
        assert_eq!(h.settings.online, Online::Always);
        let laptop = g
            .parse_host(
                "sources = [\"root@a:/home/\"]\nonline = \"sometimes\"\n",
                path,
            )
            .unwrap();
        assert_eq!(laptop.settings.online, Online::Sometimes);
        for (text, want) in [
            ("", "sources: missing"),
            ("sources = []", "sources: empty"),
            ("sources = [\"-e sh\"]", "would be read as an rsync option"),
            ("sources = [\"relative/path\"]", "absolute path"),
            (
                "sources = [\"host:relative\"]",
                "[user@]host:/absolute/path",
            ),
            (
                "sources = [\"/x\"]\ndataset = \"y\"",
                "dataset: belongs in the global config",
            ),
            (
                "sources = [\"/x\"]\noffsite_expiry = \"30d\"",
                "offsite_expiry: belongs in the global config",
            ),
            (
                "sources = [\"/x\"]\nonline = \"mostly\"",
                "zbk.toml: online: \"mostly\" is neither",
            ),
            (
                "sources = [\"/x\"]\njobs = 2",
                "jobs: belongs in the global config",
            ),
        ] {
            let err = g.parse_host(text, path).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(err.starts_with("/backup/hosts/a/c/zbk.toml"), "{err}");
        }
    }
}
