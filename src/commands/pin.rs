//! What zbk sets on snapshots when it pins one or acknowledges a pin: `zbk keep`'s hold, the
//! mass-change guard's pin from a run, and the acknowledgement `keep` and `restamp` give. What
//! to pin and how long is `guard.rs`'s judgement; this sets it.

use crate::config::HostConfig;
use crate::ctx::Ctx;
use crate::dataset::{HostDataset, RootDataset, Snapshot};
use crate::expiry::Expiry;
use crate::guard;
use crate::inventory::Host;
use crate::names::HostName;
use crate::rsync_report::Stats;
use crate::stamp::{PROP_EXPIRES, PROP_PINNED, PROP_PIN_REASON};
use crate::sys::zfs::Zfs;
use anyhow::Result;
use chrono::{DateTime, Utc};

/// Marks a snapshot pinned at `at` (and why, when zbk pinned it itself), then sets its expiry.
pub fn pin(
    zfs: &Zfs,
    full: &Snapshot,
    at: DateTime<Utc>,
    expiry: Option<Expiry>,
    reason: Option<&str>,
) -> Result<()> {
    // Pinned first: should a later call fail, restamp skips it and its old expiry stands.
    zfs.stamp(full, PROP_PINNED, &Expiry::At(at).to_string())?;
    if let Some(reason) = reason {
        zfs.stamp(full, PROP_PIN_REASON, reason)?;
    }
    if let Some(expiry) = expiry {
        zfs.stamp(full, PROP_EXPIRES, &expiry.to_string())?;
    }
    Ok(())
}

/// The mass-change guard's part in a run that started `at`: when its figures exceed
/// guard.max_change and the host has a clean snapshot from before (a first run has none),
/// pins that one for guard.pin_for and returns why, for the run's own snapshot. A pin that
/// fails is reported and the run still gets its warning: its backup must not be lost to it.
pub fn guard_mass_change(
    ctx: &Ctx,
    dataset: &HostDataset,
    host: &HostName,
    stats: &Stats,
    config: &HostConfig,
    at: DateTime<Utc>,
) -> Option<String> {
    let why = guard::exceeds(stats, config.settings.guard.change)?;
    let pinned = || -> Result<Option<String>> {
        let inv = ctx.zfs.host_inventory(&dataset.hosts(), dataset)?;
        let Some(clean) = inv.hosts.get(host).and_then(guard::last_clean) else {
            return Ok(None);
        };
        let expiry = guard::pinned_expiry(&clean.stamp, at, config.settings.guard.pin_for);
        let full = Snapshot::listed(dataset, &clean.name)?;
        pin(&ctx.zfs, &full, at, expiry, Some(&guard::pin_reason(at)))?;
        let until = expiry.map_or_else(|| "as it was".to_string(), |e| format!("until {e}"));
        Ok(Some(format!(
            "Kept {host}@{}, the last backup before it, {until}",
            clean.name
        )))
    };
    let kept = match pinned() {
        Ok(Some(kept)) => kept,
        Ok(None) => return None,
        Err(e) => format!("cannot pin the last clean snapshot: {e:#}; pin it with zbk keep"),
    };
    eprintln!(
        "zbk: {host}: {why}: is the client encrypted or wiped? {kept}; `zbk keep` or `zbk restamp` on {host} acknowledges"
    );
    Some(why)
}

/// Acknowledges every mass change the guard reported for a host, so that `zbk check` stops
/// warning; the pins stay.
pub fn acknowledge(ctx: &Ctx, root: &RootDataset, host: &Host) -> Result<()> {
    for snap in &host.snapshots {
        let Some(reason) = snap.pin_reason.as_deref() else {
            continue;
        };
        if let Some(acked) = guard::acknowledge(reason, ctx.now) {
            let full = host.full_snapshot(root, &snap.name)?;
            ctx.zfs.stamp(&full, PROP_PIN_REASON, &acked)?;
            println!("{full}: acknowledged: {reason}; the pin stays");
        }
    }
    Ok(())
}
