//! One module per subcommand; what they share about choosing hosts lives here.

pub mod add;
pub mod authorize;
pub mod check;
pub mod diff;
pub mod doctor;
pub mod init;
pub mod judge;
pub mod keep;
pub mod list;
pub mod output;
pub mod pin;
pub mod pool;
pub mod reap;
pub mod remove;
pub mod replicate;
pub mod report;
pub mod restamp;
pub mod restore;
pub mod rows;
pub mod run;
pub mod status;
pub mod verify;
pub mod versions;
pub mod view;

use crate::crypt::KeyState;
use crate::ctx::{usage, Ctx};
use crate::dataset::{HostDataset, HostsDataset};
use crate::health::{self, Summary};
use crate::inventory::Inventory;
use crate::names::HostName;
use crate::record::{self, Glance, Record};
use crate::stamp::PROP_RECORD;
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use std::path::Path;

/// The host names a command was given, validated before anything is read: a bad one is a
/// usage error however slow the pool.
pub fn named_hosts(names: &[String]) -> Result<Vec<HostName>> {
    names
        .iter()
        .map(|name| HostName::parse(name).map_err(usage))
        .collect()
}

/// The hosts a command names, validated and checked against the tree; none named means all.
pub fn chosen_hosts(inv: &Inventory, names: &[String]) -> Result<Vec<HostName>> {
    if names.is_empty() {
        return Ok(inv.hosts.keys().cloned().collect());
    }
    let mut out = Vec::new();
    for host in named_hosts(names)? {
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

/// Writes a host's `zbk:record` from its full listing, once its snapshots have changed. Should
/// that fail, the record is removed, so that a stale one cannot stand in for the truth.
pub fn record_host(
    ctx: &Ctx,
    hosts_dataset: &HostsDataset,
    host_dataset: &HostDataset,
) -> Result<()> {
    let written = (|| -> Result<()> {
        // `snapshots_changed` counts whole seconds: a listing read in the second of the last
        // change could miss a change later in that second that leaves the value as it was.
        // Read in a later second, any change after it shows. (The wall clock, not `ctx.now`:
        // this is about the moment of the listing.)
        let mut started = Utc::now().timestamp();
        let (mut inv, mut changed) = ctx.zfs.host_for_record(hosts_dataset, host_dataset)?;
        if changed.is_some_and(|c| i64::try_from(c).unwrap_or(i64::MAX) >= started) {
            let into_next = 1000 - Utc::now().timestamp_subsec_millis().min(999);
            std::thread::sleep(std::time::Duration::from_millis(u64::from(into_next) + 10));
            started = Utc::now().timestamp();
            (inv, changed) = ctx.zfs.host_for_record(hosts_dataset, host_dataset)?;
            if changed.is_some_and(|c| i64::try_from(c).unwrap_or(i64::MAX) >= started) {
                anyhow::bail!(
                    "{host_dataset}: snapshots_changed is not in the past: is the clock right?"
                );
            }
        }
        let host = inv
            .hosts
            .values()
            .find(|h| h.dataset == host_dataset.as_str())
            .with_context(|| format!("{host_dataset}: not in its own listing"))?;
        let record = Record::of(host, changed, ctx.now);
        ctx.zfs.set(host_dataset, PROP_RECORD, &record.to_value())
    })();
    written.map_err(|e| match ctx.zfs.inherit(host_dataset, PROP_RECORD) {
        Ok(()) => e.context(format!("cannot record {host_dataset}'s newest snapshots")),
        Err(also) => e.context(format!(
            "cannot record {host_dataset}'s newest snapshots, nor remove the old record ({also:#}): `zfs inherit {PROP_RECORD} {host_dataset}`"
        )),
    })
}

/// `record_host`, for commands whose work is done whether or not the record could be written:
/// a failure is a warning, since check and status then list the host in full.
pub fn record_or_warn(ctx: &Ctx, hosts_dataset: &HostsDataset, host_dataset: &HostDataset) {
    if let Err(e) = record_host(ctx, hosts_dataset, host_dataset) {
        eprintln!(
            "zbk: warning: {e:#}; zbk check and zbk status list it in full until its next run"
        );
    }
}

/// How the hosts stand, from their records where those hold and from full listings where not.
pub struct Standing {
    pub glance: Glance,
    /// The hosts whose record did not hold, listed in full.
    full: Inventory,
    pub now: DateTime<Utc>,
}

impl Standing {
    /// Reads the hosts' records, then lists in full the chosen hosts whose record does not hold:
    /// one by one when they are few, else the whole tree at once.
    pub fn read(
        ctx: &Ctx,
        hosts_dataset: &HostsDataset,
        names: &[String],
    ) -> Result<(Standing, Vec<HostName>)> {
        let glance = ctx.zfs.glance(hosts_dataset)?;
        let hosts = chosen_hosts(&glance.inv, names)?;
        let mut standing = Standing {
            glance,
            full: Inventory::default(),
            now: ctx.now,
        };
        let stale: Vec<&HostName> = hosts
            .iter()
            .filter(|h| standing.by_record(h).is_none())
            .collect();
        if stale.len() > 3 {
            standing.full = ctx.zfs.inventory(hosts_dataset)?;
        } else {
            for name in stale {
                let dataset = HostDataset::listed(
                    hosts_dataset.root(),
                    name,
                    &standing.glance.inv.hosts[name].dataset,
                )?;
                let one = ctx
                    .zfs
                    .host_inventory(hosts_dataset, &dataset)
                    .context("cannot list the hosts tree")?;
                standing.full.hosts.extend(one.hosts);
            }
        }
        if let Some(gone) = hosts
            .iter()
            .find(|h| !standing.listed(h) && standing.by_record(h).is_none())
        {
            anyhow::bail!("cannot list the hosts tree: {gone} went away while it was read");
        }
        Ok((standing, hosts))
    }

    fn by_record(&self, name: &HostName) -> Option<Summary<'_>> {
        let claim = self.glance.claims.get(name)?;
        let host = self.glance.inv.hosts.get(name)?;
        record::summary(
            host,
            claim.record.as_ref()?,
            &claim.source,
            claim.changed,
            self.now,
        )
    }

    /// A chosen host's summary.
    pub fn summary(&self, name: &HostName) -> Summary<'_> {
        match self.full.hosts.get(name) {
            Some(host) => health::summarize(host, self.now),
            None => self
                .by_record(name)
                .expect("a host either holds up to its record or was listed in full"),
        }
    }

    /// Whether a chosen host was listed in full.
    pub fn listed(&self, name: &HostName) -> bool {
        self.full.hosts.contains_key(name)
    }
}

/// The encryption of `dataset` when its key is not loaded, which leaves it unmounted and
/// unreadable; `None` when it is readable, not encrypted, or zfs cannot say.
pub fn key_not_loaded(ctx: &Ctx, dataset: &HostDataset) -> Option<KeyState> {
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
