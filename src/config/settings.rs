//! The settings a host may override, resolved: their types, the built-in defaults, and a
//! tier's retention by name.

use crate::expiry::Retention;
use anyhow::{anyhow, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
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

/// `rsync.io_timeout` unless the config says otherwise.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(600);

/// Settings a host may override: everything but where the tree lives.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Newest good snapshots an active host keeps whatever their expiry.
    pub min_keep: usize,
    /// Run logs kept live in `l/`.
    pub log_keep: usize,
    /// Whether the client is expected to answer every run (`online`).
    pub online: Online,
    pub tiers: BTreeMap<String, Retention>,
    pub rsync: RsyncSettings,
    pub ssh: SshSettings,
    pub hooks: Hooks,
    pub check: CheckSettings,
    pub guard: Guard,
    pub verify: VerifySettings,
}

/// guard.max_change and the host size below which it does not apply.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChangeLimits {
    /// The largest fraction of the source's files one run may change or delete; `None`: off.
    pub max_change: Option<f64>,
    /// Hosts with fewer files than this are never judged: on a small tree a few edits are a
    /// large fraction.
    pub min_files: u64,
}

/// The most slices a tree may be cut into: a daily verify covers it within a year, and the
/// stamp, which records when each slice was last verified, stays well inside the 8 KiB a ZFS
/// user property may hold.
pub const MAX_SLICES: u32 = 366;

/// How `zbk verify` cuts a host's tree.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VerifySettings {
    /// Slices of the tree: a plain verify compares one of them with the client.
    pub slices: u32,
}

/// Whether a host's client is expected to answer every run. A client that is `Sometimes`
/// online (a laptop that sleeps at night) and cannot be reached is recorded, not failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Online {
    Always,
    Sometimes,
}

impl Online {
    /// The value as `online` takes it in a config file.
    pub fn parse(text: &str) -> Option<Online> {
        match text {
            "always" => Some(Online::Always),
            "sometimes" => Some(Online::Sometimes),
            _ => None,
        }
    }
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
    pub change: ChangeLimits,
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
    /// How long a file may go without `zbk verify` comparing it, once a host is verified.
    pub verify_age: Duration,
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
    /// `--timeout`: rsync gives up on a transfer silent for this long, and zbk stops the
    /// rsync (and its ssh) then; `None` only when the config says "none".
    pub io_timeout: Option<Duration>,
    /// The exclude file; relative paths are under the host's c/. Default `exclude`.
    pub exclude_file: PathBuf,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            min_keep: 1,
            log_keep: 30,
            online: Online::Always,
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
                io_timeout: Some(DEFAULT_IO_TIMEOUT),
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
                // A daily verify of 30 slices covers a tree in 30 days; five days of slack.
                verify_age: Duration::from_secs(35 * 86400),
            },
            guard: Guard {
                check_file: None,
                max_delete: None,
                max_capacity: 95,
                change: ChangeLimits {
                    max_change: Some(0.5),
                    min_files: 200,
                },
                pin_for: Retention::parse("30days").expect("built-in duration"),
            },
            verify: VerifySettings { slices: 30 },
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
}
