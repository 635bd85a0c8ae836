//! The two config files as written: the serde structs of their keys (unknown keys refused),
//! strict TOML parsing with one-line errors that name the file, the line and the key, and the
//! ownership check a file zbk obeys as root must pass.

use anyhow::{anyhow, bail, Result};
use fs_err as fs;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The keys either file may hold, exactly as written; which file allows which is checked after.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) dataset: Option<String>,
    pub(super) destroy_batch: Option<usize>,
    pub(super) jobs: Option<usize>,
    pub(super) offsite_expiry: Option<String>,
    pub(super) sources: Option<Vec<String>>,
    pub(super) min_keep: Option<usize>,
    pub(super) log_keep: Option<usize>,
    pub(super) online: Option<String>,
    pub(super) tiers: Option<BTreeMap<String, String>>,
    pub(super) rsync: Option<RsyncFile>,
    pub(super) ssh: Option<SshFile>,
    pub(super) hooks: Option<HooksFile>,
    pub(super) check: Option<CheckFile>,
    pub(super) guard: Option<GuardFile>,
    pub(super) zfs: Option<ZfsFile>,
    pub(super) verify: Option<VerifyFile>,
}

/// `[zfs]`: how zbk treats the server's own zfs (global config only).
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct ZfsFile {
    pub(super) timeout: Option<String>,
}

/// `[verify]`: how `zbk verify` cuts a host's tree.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct VerifyFile {
    pub(super) slices: Option<u32>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct GuardFile {
    pub(super) check_file: Option<PathBuf>,
    pub(super) max_delete: Option<f64>,
    pub(super) max_capacity: Option<u8>,
    pub(super) max_change: Option<FractionOrNone>,
    pub(super) min_files: Option<u64>,
    pub(super) pin_for: Option<String>,
}

/// A fraction, or the word `none` for a limit turned off.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub(super) enum FractionOrNone {
    Fraction(f64),
    Word(String),
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckFile {
    pub(super) warn: Option<String>,
    pub(super) crit: Option<String>,
    pub(super) mass_change: Option<String>,
    pub(super) verify_age: Option<String>,
    pub(super) scrub_age: Option<String>,
    pub(super) capacity_warn: Option<u8>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct SshFile {
    pub(super) user: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) identity: Option<PathBuf>,
    pub(super) options: Option<Vec<String>>,
    pub(super) connect_timeout: Option<String>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct HooksFile {
    pub(super) pre_run: Option<Vec<String>>,
    pub(super) post_run: Option<Vec<String>>,
    pub(super) timeout: Option<String>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct RsyncFile {
    pub(super) args: Option<Vec<String>>,
    pub(super) extra_args: Option<Vec<String>>,
    pub(super) ok_codes: Option<Vec<i32>>,
    pub(super) warning_codes: Option<Vec<i32>>,
    pub(super) bwlimit: Option<String>,
    pub(super) io_timeout: Option<String>,
    pub(super) exclude_file: Option<PathBuf>,
}

/// Parses TOML text strictly; the error is one line naming the file, the line and the key.
pub(super) fn parse_file(text: &str, path: &Path) -> Result<FileConfig> {
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

fn one_line(message: &str) -> String {
    message.trim().replace('\n', "; ")
}

pub(super) fn read(path: &Path) -> Result<String> {
    // On the pool, a read can hang with it: the watchdog's message names the file.
    crate::watchdog::doing(format!("reading {}", path.display()));
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
