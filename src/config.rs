//! Configuration: the global `<root>/etc/zbk.toml` and each host's `c/zbk.toml`, parsed
//! strictly and resolved into settings, with errors that name the file and the key.

use crate::expiry::Retention;
use anyhow::{anyhow, bail, Result};
use fs_err as fs;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The tier a plain run stamps.
pub const DEFAULT_TIER: &str = "default";
/// The tier a failed run stamps.
pub const FAILED_TIER: &str = "failed";

/// The built-in tier table, overridable key by key.
pub const DEFAULT_TIERS: [(&str, &str); 6] = [
    (DEFAULT_TIER, "7days"),
    ("weekly", "5weeks"),
    ("monthly", "13months"),
    ("quarterly", "2years"),
    ("yearly", "7years"),
    (FAILED_TIER, "2days"),
];

/// rsync's arguments unless the config replaces them: a faithful copy (`--archive
/// --hard-links --acls --xattrs --numeric-ids`), the client's paths under `d/` (`--relative`),
/// and in-place block updates so unchanged blocks stay shared with earlier snapshots.
pub const DEFAULT_RSYNC_ARGS: [&str; 10] = [
    "--archive",
    "--hard-links",
    "--acls",
    "--xattrs",
    "--numeric-ids",
    "--delete",
    "--delete-excluded",
    "--relative",
    "--inplace",
    "--no-whole-file",
];

/// The keys either file may hold, exactly as written; which file allows which is checked after.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    dataset: Option<String>,
    destroy_batch: Option<usize>,
    jobs: Option<usize>,
    offsite_expiry: Option<String>,
    sources: Option<Vec<String>>,
    min_keep: Option<usize>,
    log_keep: Option<usize>,
    tiers: Option<BTreeMap<String, String>>,
    rsync: Option<RsyncFile>,
    ssh: Option<SshFile>,
    hooks: Option<HooksFile>,
    check: Option<CheckFile>,
    guard: Option<GuardFile>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct GuardFile {
    check_file: Option<PathBuf>,
    max_delete: Option<f64>,
    max_capacity: Option<u8>,
    max_change: Option<FractionOrNone>,
    min_files: Option<u64>,
    pin_for: Option<String>,
}

/// A fraction, or the word `none` for a limit turned off.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum FractionOrNone {
    Fraction(f64),
    Word(String),
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct CheckFile {
    warn: Option<String>,
    crit: Option<String>,
    mass_change: Option<String>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct SshFile {
    user: Option<String>,
    port: Option<u16>,
    identity: Option<PathBuf>,
    options: Option<Vec<String>>,
    connect_timeout: Option<String>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct HooksFile {
    pre_run: Option<Vec<String>>,
    post_run: Option<Vec<String>>,
    timeout: Option<String>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct RsyncFile {
    args: Option<Vec<String>>,
    extra_args: Option<Vec<String>>,
    ok_codes: Option<Vec<i32>>,
    warning_codes: Option<Vec<i32>>,
    bwlimit: Option<String>,
    io_timeout: Option<String>,
    exclude_file: Option<PathBuf>,
}

/// Settings a host may override: everything but where the tree lives.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Newest good snapshots an active host keeps whatever their expiry.
    pub min_keep: usize,
    /// Run logs kept live in `l/`.
    pub log_keep: usize,
    pub tiers: BTreeMap<String, Retention>,
    pub rsync: RsyncSettings,
    pub ssh: SshSettings,
    pub hooks: Hooks,
    pub check: CheckSettings,
    pub guard: Guard,
}

/// What keeps an empty, unmounted or shrunken source from becoming the newest good backup.
#[derive(Clone, Debug, PartialEq)]
pub struct Guard {
    /// A path, relative to each source, that must exist there before rsync may run.
    pub check_file: Option<PathBuf>,
    /// The largest fraction of the last good run's files one run may delete.
    pub max_delete: Option<f64>,
    /// A run refuses to start when the pool is fuller than this percentage.
    pub max_capacity: u8,
    /// The most of the source's files one run may change or delete before it is stamped
    /// `warning` and the last clean snapshot is pinned, and the host size it applies from.
    pub change: crate::guard::Limits,
    /// How long such a pin keeps the last clean snapshot, at least.
    pub pin_for: Retention,
}

/// How old a host's last good backup may get before `zbk check` warns, then goes critical.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CheckSettings {
    pub warn: Duration,
    pub crit: Duration,
    /// How long `zbk check` warns after a mass change that nobody has acknowledged.
    pub mass_change: Duration,
}

/// How rsync reaches a remote client. Every value ends up as one word of rsync's `--rsh`
/// command, which rsync itself splits on spaces, so none may hold white space or quotes.
#[derive(Clone, Debug, PartialEq)]
pub struct SshSettings {
    /// Login name for sources that give none.
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity: Option<PathBuf>,
    /// Extra `-o` options, each `Key=Value`.
    pub options: Vec<String>,
    /// How long a client that is down may take to refuse: it fails fast, the others go on.
    pub connect_timeout: Duration,
}

/// Commands run around a host's backup, as argv lists.
#[derive(Clone, Debug, PartialEq)]
pub struct Hooks {
    pub pre_run: Option<Vec<String>>,
    pub post_run: Option<Vec<String>>,
    pub timeout: Duration,
}

/// How rsync is called and how its exit codes are judged.
#[derive(Clone, Debug, PartialEq)]
pub struct RsyncSettings {
    pub args: Vec<String>,
    pub extra_args: Vec<String>,
    pub ok_codes: Vec<i32>,
    pub warning_codes: Vec<i32>,
    /// `--bwlimit` for the transfer, as rsync takes it (`5M`, `800K`).
    pub bwlimit: Option<String>,
    /// `--timeout`: rsync gives up on a transfer silent for this long.
    pub io_timeout: Option<Duration>,
    /// The exclude file; relative paths are under the host's c/. Default `exclude`.
    pub exclude_file: PathBuf,
}

/// The global configuration, resolved.
#[derive(Clone, Debug)]
pub struct Global {
    /// The dataset given to `zbk init`; hosts live under `<dataset>/hosts`.
    pub dataset: String,
    /// Most snapshots named in one OpenZFS comma-list destroy.
    pub destroy_batch: usize,
    /// Hosts `zbk run` backs up at once when `--jobs` is not given; unset: by the CPUs.
    pub jobs: Option<usize>,
    /// The least time `zbk replicate`'s copies live after their creation, whatever their
    /// received expiry.
    pub offsite_expiry: Option<Retention>,
    pub settings: Settings,
}

/// One host's configuration, resolved over the global one.
#[derive(Clone, Debug)]
pub struct HostConfig {
    pub sources: Vec<String>,
    pub settings: Settings,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            min_keep: 1,
            log_keep: 30,
            tiers: DEFAULT_TIERS
                .iter()
                .map(|(name, d)| {
                    (
                        name.to_string(),
                        Retention::parse(d).expect("built-in tier"),
                    )
                })
                .collect(),
            rsync: RsyncSettings {
                args: DEFAULT_RSYNC_ARGS.iter().map(|s| s.to_string()).collect(),
                extra_args: Vec::new(),
                ok_codes: vec![0],
                warning_codes: vec![24],
                bwlimit: None,
                io_timeout: None,
                exclude_file: PathBuf::from("exclude"),
            },
            ssh: SshSettings {
                user: None,
                port: None,
                identity: None,
                options: Vec::new(),
                connect_timeout: Duration::from_secs(10),
            },
            hooks: Hooks {
                pre_run: None,
                post_run: None,
                timeout: Duration::from_secs(600),
            },
            // An hourly schedule that missed a whole day, then two: a day and two hours of slack.
            check: CheckSettings {
                warn: Duration::from_secs(26 * 3600),
                crit: Duration::from_secs(50 * 3600),
                mass_change: Duration::from_secs(7 * 86400),
            },
            guard: Guard {
                check_file: None,
                max_delete: None,
                max_capacity: 95,
                change: crate::guard::Limits {
                    max_change: Some(0.5),
                    min_files: 200,
                },
                pin_for: Retention::parse("30days").expect("built-in duration"),
            },
        }
    }
}

impl Settings {
    /// The retention of a tier, or an error listing the tiers there are.
    pub fn tier(&self, name: &str) -> Result<Retention> {
        self.tiers.get(name).copied().ok_or_else(|| {
            let known: Vec<&str> = self.tiers.keys().map(String::as_str).collect();
            anyhow!("unknown tier {name:?} (known tiers: {})", known.join(", "))
        })
    }

    /// These settings with a file's overrides applied; `path` names the file in errors.
    fn overlay(&self, file: &FileConfig, path: &Path) -> Result<Settings> {
        let mut out = self.clone();
        if let Some(n) = file.min_keep {
            out.min_keep = n;
        }
        if let Some(n) = file.log_keep {
            if n == 0 {
                bail!("{}: log_keep: must be at least 1", path.display());
            }
            out.log_keep = n;
        }
        for (name, text) in file.tiers.iter().flatten() {
            if !crate::names::is_safe_component(name) {
                bail!("{}: tiers.{name}: a tier name may hold only letters, digits, '_', '.', ':' and '-'", path.display());
            }
            let retention = Retention::parse(text)
                .map_err(|e| anyhow!("{}: tiers.{name}: {e}", path.display()))?;
            out.tiers.insert(name.clone(), retention);
        }
        if let Some(rsync) = &file.rsync {
            if let Some(args) = &rsync.args {
                out.rsync.args = args.clone();
            }
            if let Some(args) = &rsync.extra_args {
                out.rsync.extra_args = args.clone();
            }
            if let Some(codes) = &rsync.ok_codes {
                out.rsync.ok_codes = codes.clone();
            }
            if let Some(codes) = &rsync.warning_codes {
                out.rsync.warning_codes = codes.clone();
            }
            if let Some(rate) = &rsync.bwlimit {
                if rate.is_empty() || !rate.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
                    bail!(
                        "{}: rsync.bwlimit: {rate:?} is not a rate such as 5M or 800K",
                        path.display()
                    );
                }
                out.rsync.bwlimit = Some(rate.clone());
            }
            if let Some(text) = &rsync.io_timeout {
                out.rsync.io_timeout = Some(duration(text, path, "rsync.io_timeout")?);
            }
            if let Some(file) = &rsync.exclude_file {
                out.rsync.exclude_file = file.clone();
            }
        }
        if let Some(ssh) = &file.ssh {
            let word = |key: &str, value: &str| -> Result<()> {
                if value.is_empty()
                    || value.starts_with('-')
                    || value
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control() || "'\"\\".contains(c))
                {
                    bail!("{}: ssh.{key}: {value:?} must be one word without quotes and not start with '-'", path.display());
                }
                Ok(())
            };
            if let Some(user) = &ssh.user {
                word("user", user)?;
                out.ssh.user = Some(user.clone());
            }
            if let Some(port) = ssh.port {
                out.ssh.port = Some(port);
            }
            if let Some(identity) = &ssh.identity {
                word("identity", &identity.to_string_lossy())?;
                if !identity.is_absolute() {
                    bail!(
                        "{}: ssh.identity: {} is not an absolute path",
                        path.display(),
                        identity.display()
                    );
                }
                out.ssh.identity = Some(identity.clone());
            }
            if let Some(options) = &ssh.options {
                for option in options {
                    word("options", option)?;
                    if !option.contains('=') {
                        bail!(
                            "{}: ssh.options: {option:?} is not Key=Value",
                            path.display()
                        );
                    }
                }
                out.ssh.options = options.clone();
            }
            if let Some(text) = &ssh.connect_timeout {
                out.ssh.connect_timeout = duration(text, path, "ssh.connect_timeout")?;
            }
        }
        if let Some(guard) = &file.guard {
            if let Some(check) = &guard.check_file {
                let escapes = check.is_absolute()
                    || check
                        .components()
                        .any(|c| !matches!(c, std::path::Component::Normal(_)))
                    || check.as_os_str().is_empty();
                if escapes {
                    bail!("{}: guard.check_file: {} must be a relative path inside each source, without '..'", path.display(), check.display());
                }
                out.guard.check_file = Some(check.clone());
            }
            if let Some(fraction) = guard.max_delete {
                if !(fraction > 0.0 && fraction <= 1.0) {
                    bail!(
                        "{}: guard.max_delete: {fraction} is not a fraction above 0 and at most 1",
                        path.display()
                    );
                }
                out.guard.max_delete = Some(fraction);
            }
            if let Some(percent) = guard.max_capacity {
                if !(1..=100).contains(&percent) {
                    bail!(
                        "{}: guard.max_capacity: {percent} is not a percentage from 1 to 100",
                        path.display()
                    );
                }
                out.guard.max_capacity = percent;
            }
            match &guard.max_change {
                None => {}
                Some(FractionOrNone::Word(w)) if w == "none" => out.guard.change.max_change = None,
                Some(FractionOrNone::Fraction(f)) if *f > 0.0 && *f <= 1.0 => {
                    out.guard.change.max_change = Some(*f)
                }
                Some(FractionOrNone::Fraction(f)) => bail!(
                    "{}: guard.max_change: {f} is not a fraction above 0 and at most 1 (or \"none\")",
                    path.display()
                ),
                Some(FractionOrNone::Word(w)) => bail!(
                    "{}: guard.max_change: {w:?} is not a fraction above 0 and at most 1, or \"none\"",
                    path.display()
                ),
            }
            if let Some(n) = guard.min_files {
                out.guard.change.min_files = n;
            }
            if let Some(text) = &guard.pin_for {
                out.guard.pin_for = Retention::parse(text)
                    .map_err(|e| anyhow!("{}: guard.pin_for: {e}", path.display()))?;
            }
        }
        if let Some(hooks) = &file.hooks {
            for (key, argv, slot) in [
                ("pre_run", &hooks.pre_run, &mut out.hooks.pre_run),
                ("post_run", &hooks.post_run, &mut out.hooks.post_run),
            ] {
                if let Some(argv) = argv {
                    if argv.first().is_none_or(|p| p.is_empty()) {
                        bail!(
                            "{}: hooks.{key}: an argv list whose first word is the program",
                            path.display()
                        );
                    }
                    *slot = Some(argv.clone());
                }
            }
            if let Some(text) = &hooks.timeout {
                out.hooks.timeout = duration(text, path, "hooks.timeout")?;
            }
        }
        if let Some(check) = &file.check {
            if let Some(text) = &check.warn {
                out.check.warn = duration(text, path, "check.warn")?;
            }
            if let Some(text) = &check.crit {
                out.check.crit = duration(text, path, "check.crit")?;
            }
            if let Some(text) = &check.mass_change {
                out.check.mass_change = duration(text, path, "check.mass_change")?;
            }
            if out.check.warn > out.check.crit {
                bail!("{}: check.warn: longer than check.crit", path.display());
            }
        }
        Ok(out)
    }
}

/// Parses TOML text strictly; the error is one line naming the file, the line and the key.
fn parse_file(text: &str, path: &Path) -> Result<FileConfig> {
    let located = |e: &toml::de::Error| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        match line {
            Some(line) => format!("{}:{line}", path.display()),
            None => path.display().to_string(),
        }
    };
    let de = toml::Deserializer::parse(text)
        .map_err(|e| anyhow!("{}: {}", located(&e), one_line(e.message())))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let at = located(&inner);
        if key == "." {
            anyhow!("{at}: {}", one_line(inner.message()))
        } else {
            anyhow!("{at}: {key}: {}", one_line(inner.message()))
        }
    })
}

/// A finite, non-zero duration for a key that bounds something.
fn duration(text: &str, path: &Path, key: &str) -> Result<Duration> {
    match Retention::parse(text) {
        Ok(Retention::For(span)) => Ok(span.nominal()),
        Ok(Retention::Never) => bail!("{}: {key}: must be a duration, not never", path.display()),
        Err(e) => bail!("{}: {key}: {e}", path.display()),
    }
}

fn one_line(message: &str) -> String {
    message.trim().replace('\n', "; ")
}

fn read(path: &Path) -> Result<String> {
    let text = fs::read_to_string(path).map_err(|e| anyhow!("{}", e))?;
    check_private(path)?;
    Ok(text)
}

/// Refuses a file that zbk runs or obeys as root when anyone but root (or the user running
/// zbk) could have changed it, or its directory: the rule sshd applies to its own files.
pub fn check_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid(2) takes no arguments and cannot fail.
    let me = unsafe { libc::geteuid() };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    for (what, p) in [("file", Some(path)), ("directory", dir)] {
        let Some(p) = p else { continue };
        let meta = fs::metadata(p)?;
        let foreign_owner = meta.uid() != 0 && meta.uid() != me;
        // A sticky directory (/tmp) lets others add files but not replace this one.
        let sticky = what == "directory" && meta.mode() & 0o1000 != 0;
        if foreign_owner || (meta.mode() & 0o022 != 0 && !sticky) {
            bail!(
                "{}: refusing it: its {what} {} is owned by uid {} with mode {:o}; only root may be able to change it (chown root, chmod go-w)",
                path.display(),
                p.display(),
                meta.uid(),
                meta.mode() & 0o7777
            );
        }
    }
    Ok(())
}

/// Where the global config lives under a root.
pub fn global_path(root: &Path) -> PathBuf {
    root.join("etc").join("zbk.toml")
}

impl Global {
    /// Loads `<root>/etc/zbk.toml`.
    pub fn load(root: &Path) -> Result<Global> {
        let path = global_path(root);
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
        if dataset.is_empty()
            || dataset.starts_with('/')
            || dataset.contains('@')
            || dataset
                .split('/')
                .any(|c| !crate::names::is_safe_component(c))
        {
            bail!(
                "{}: dataset: {dataset:?} is not a ZFS filesystem name",
                path.display()
            );
        }
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
        let settings = Settings::default().overlay(&file, path)?;
        Ok(Global {
            dataset,
            destroy_batch,
            jobs: file.jobs,
            offsite_expiry,
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
        assert_eq!(g.dataset, "tank/backup");
        assert_eq!(g.destroy_batch, 100);
        assert_eq!(g.jobs, None);
        assert_eq!(g.settings, Settings::default());
        assert_eq!(global("dataset = \"t\"\njobs = 6\n").unwrap().jobs, Some(6));
    }

    #[test]
    fn tiers_merge_over_the_defaults() {
        let g = global("dataset = \"t\"\n[tiers]\nweekly = \"6weeks\"\nhourly = \"2d\"\n").unwrap();
        assert_eq!(
            g.settings.tier("weekly").unwrap(),
            Retention::parse("6weeks").unwrap()
        );
        assert!(g.settings.tier("hourly").is_ok());
        assert!(g.settings.tier("yearly").is_ok());
        let err = g.settings.tier("daily").unwrap_err().to_string();
        assert!(err.contains("unknown tier \"daily\""), "{err}");
        assert!(err.contains("weekly"), "{err}");
    }

    #[test]
    fn errors_name_the_file_line_and_key() {
        let cases = [
            (
                "dataset = \"t\"\nmin_keep = \"one\"\n",
                "zbk.toml:2: min_keep: invalid type",
            ),
            (
                "dataset = \"t\"\nbogus = 1\n",
                "zbk.toml:2: bogus: unknown field `bogus`",
            ),
            (
                "dataset = \"t\"\n[tiers]\nweekly = \"soon\"\n",
                "zbk.toml: tiers.weekly: invalid duration",
            ),
            (
                "dataset = \"t\"\n[rsync]\nargs = \"-a\"\n",
                "rsync.args: invalid type",
            ),
            (
                "dataset = \"t\"\n[rsync]\nok_codes = [\"0\"]\n",
                "rsync.ok_codes[0]: invalid type",
            ),
            ("dataset = \"t\"\n[rsync\n", "zbk.toml:2:"),
            ("min_keep = 1\n", "dataset: missing"),
            (
                "dataset = \"../x\"\n",
                "dataset: \"../x\" is not a ZFS filesystem name",
            ),
            (
                "dataset = \"t\"\nsources = [\"/x\"]\n",
                "sources: belongs in a host's",
            ),
            (
                "dataset = \"t\"\nlog_keep = 0\n",
                "log_keep: must be at least 1",
            ),
            (
                "dataset = \"t\"\noffsite_expiry = \"soon\"\n",
                "offsite_expiry: invalid duration",
            ),
            (
                "dataset = \"t\"\nmin_keep = -1\n",
                "min_keep: invalid value",
            ),
            (
                "dataset = \"t\"\n[guard]\nmax_change = 1.5\n",
                "guard.max_change: 1.5 is not a fraction",
            ),
            (
                "dataset = \"t\"\n[guard]\nmax_change = \"off\"\n",
                "guard.max_change: \"off\" is not a fraction",
            ),
            (
                "dataset = \"t\"\n[guard]\npin_for = \"soon\"\n",
                "guard.pin_for: invalid duration",
            ),
            (
                "dataset = \"t\"\n[check]\nmass_change = \"never\"\n",
                "check.mass_change: must be a duration",
            ),
            ("dataset = \"t\"\njobs = 0\n", "jobs: must be at least 1"),
            ("dataset = \"t\"\njobs = \"4\"\n", "jobs: invalid type"),
            ("dataset = \"t\"\njobs = -2\n", "jobs: invalid value"),
        ];
        for (text, want) in cases {
            let err = global(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(err.starts_with("/backup/etc/zbk.toml"), "{err}");
            assert!(!err.contains('\n'), "multi-line: {err}");
        }
    }

    #[test]
    fn the_mass_change_guard_is_on_by_default_and_per_host() {
        let g = global("dataset = \"t\"\n").unwrap();
        assert_eq!(g.settings.guard.change.max_change, Some(0.5));
        assert_eq!(g.settings.guard.change.min_files, 200);
        assert_eq!(g.settings.guard.pin_for.to_string(), "30days");
        let path = Path::new("/backup/hosts/a/c/zbk.toml");
        let off = g
            .parse_host("sources = [\"/x\"]\n[guard]\nmax_change = \"none\"\n", path)
            .unwrap();
        assert_eq!(off.settings.guard.change.max_change, None);
        let tight = g
            .parse_host(
                "sources = [\"/x\"]\n[guard]\nmax_change = 0.2\nmin_files = 50\npin_for = \"90days\"\n",
                path,
            )
            .unwrap();
        assert_eq!(tight.settings.guard.change.max_change, Some(0.2));
        assert_eq!(tight.settings.guard.change.min_files, 50);
        assert_eq!(
            tight.settings.guard.pin_for,
            Retention::parse("90days").unwrap()
        );
        let whole = g
            .parse_host("sources = [\"/x\"]\n[guard]\nmax_change = 1\n", path)
            .unwrap();
        assert_eq!(whole.settings.guard.change.max_change, Some(1.0));
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
