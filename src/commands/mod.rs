//! One module per subcommand; what they share about choosing hosts lives here.

pub mod add;
pub mod authorize;
pub mod check;
pub mod diff;
pub mod doctor;
pub mod init;
pub mod keep;
pub mod list;
pub mod reap;
pub mod remove;
pub mod replicate;
pub mod report;
pub mod restamp;
pub mod restore;
pub mod run;
pub mod status;
pub mod verify;
pub mod versions;

use crate::crypt::KeyState;
use crate::ctx::{usage, Ctx};
use crate::inventory::Inventory;
use crate::names::HostName;
use anyhow::{Context, Result};
use std::path::Path;

/// The hosts a command names, validated and checked against the tree; none named means all.
pub fn chosen_hosts(inv: &Inventory, names: &[String]) -> Result<Vec<HostName>> {
    if names.is_empty() {
        return Ok(inv.hosts.keys().cloned().collect());
    }
    let mut out = Vec::new();
    for name in names {
        let host = HostName::parse(name).map_err(usage)?;
        if !inv.hosts.contains_key(&host) {
            return Err(usage(format!(
                "no such host: {host}: see `zbk list`, or add it with `zbk add`"
            )));
        }
        if !out.contains(&host) {
            out.push(host);
        }
    }
    Ok(out)
}

/// The encryption of `dataset` when its key is not loaded, which leaves it unmounted and
/// unreadable; `None` when it is readable, not encrypted, or zfs cannot say.
pub fn key_not_loaded(ctx: &Ctx, dataset: &str) -> Option<KeyState> {
    ctx.zfs
        .key_state(dataset)
        .ok()
        .flatten()
        .filter(KeyState::locked)
}

/// Writes a file whole or not at all, and durably: a temporary file of a unique name in the
/// same directory (so two writers never share one), synced, renamed over `path`, then the
/// directory synced so the rename itself survives a crash. A new file gets mode 0644, an
/// existing one keeps its mode.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mode = std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode() & 0o7777);
    let context = || format!("cannot write {}", path.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(".zbk-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(context)?;
    tmp.write_all(text.as_bytes()).with_context(context)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(context)?;
    tmp.as_file().sync_all().with_context(context)?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(context)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn write_atomic_replaces_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zbk.toml");
        write_atomic(&path, "one\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\n");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o644);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&path, "two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        assert_eq!(mode(&path), 0o600, "an existing file keeps its mode");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["zbk.toml"], "a temporary file was left behind");
    }

    #[test]
    fn write_atomic_names_the_file_it_cannot_write() {
        let err = write_atomic(Path::new("/nonexistent-zbk-dir/zbk.toml"), "x").unwrap_err();
        assert!(
            format!("{err:#}").contains("cannot write /nonexistent-zbk-dir/zbk.toml"),
            "{err:#}"
        );
    }
}
