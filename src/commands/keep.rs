//! `zbk keep`: sets one snapshot's expiry by hand (a legal hold, before a risky change) and
//! marks it pinned, so that `zbk restamp` leaves it alone. The mass-change guard pins the
//! same way from a run, and `keep` (like `restamp`) acknowledges what the guard reported.

use crate::cli::KeepArgs;
use crate::config::HostConfig;
use crate::ctx::{usage, Ctx, EXIT_OK};
use crate::dataset::{HostDataset, Snapshot};
use crate::expiry::{parse_time, Expiry, Retention};
use crate::guard;
use crate::inventory::Host;
use crate::layout::hosts_dataset;
use crate::names::{is_safe_component, HostName};
use crate::rsync_report::Stats;
use crate::stamp::{PROP_EXPIRES, PROP_PINNED, PROP_PIN_REASON};
use crate::sys::zfs::Zfs;
use anyhow::Result;
use chrono::{DateTime, Utc};

pub fn run(ctx: &Ctx, args: KeepArgs) -> Result<u8> {
    let expiry = match (&args.until, &args.for_, args.forever) {
        (Some(t), None, false) => {
            let at = parse_time(t).map_err(|e| usage(format!("--until: {e}")))?;
            if at <= ctx.now {
                return Err(usage(format!("--until: {t} is already past")));
            }
            Expiry::At(at)
        }
        (None, Some(d), false) => Retention::parse(d)
            .map_err(|e| usage(format!("--for: {e}")))?
            .expiry_from(ctx.now),
        (None, None, true) => Expiry::Never,
        _ => {
            return Err(usage(
                "give exactly one of --until TIME, --for DURATION and --forever",
            ))
        }
    };
    if !is_safe_component(&args.snapshot) {
        return Err(usage(format!(
            "SNAPSHOT: {:?} is not a snapshot name: give the part after '@', as `zbk list` shows it",
            args.snapshot.escape_debug().to_string()
        )));
    }
    let global = ctx.global()?;
    let inv = ctx.zfs.inventory(&hosts_dataset(&global.dataset))?;
    let name = super::chosen_hosts(&inv, std::slice::from_ref(&args.host))?.remove(0);
    let host = &inv.hosts[&name];
    let Some(snap) = host.snapshots.iter().find(|s| s.name == args.snapshot) else {
        return Err(usage(format!(
            "SNAPSHOT: {name} has no snapshot {:?}: see `zbk list {name}`",
            args.snapshot
        )));
    };
    if !snap.is_zbk() {
        return Err(usage(format!(
            "SNAPSHOT: {name}@{} is not zbk's (no zbk:tier or zbk:status of its own); zbk never reaps it",
            snap.name
        )));
    }
    let full = Snapshot::of(&global.dataset, host, &snap.name)?;
    pin(&ctx.zfs, full.as_str(), ctx.now, Some(expiry), None)?;
    let was = snap.stamp.shown();
    println!(
        "{name}@{}: expires {expiry} (was {was}); pinned, restamp leaves it alone",
        snap.name
    );
    acknowledge(ctx, &global.dataset, host)?;
    super::record_or_warn(ctx, &hosts_dataset(&global.dataset), &host.dataset);
    Ok(EXIT_OK)
}

/// Marks a snapshot pinned at `at` (and why, when zbk pinned it itself), then sets its expiry.
fn pin(
    zfs: &Zfs,
    full: &str,
    at: DateTime<Utc>,
    expiry: Option<Expiry>,
    reason: Option<&str>,
) -> Result<()> {
    // Pinned first: should a later call fail, restamp skips it and its old expiry stands.
    zfs.set(full, PROP_PINNED, &Expiry::At(at).to_string())?;
    if let Some(reason) = reason {
        zfs.set(full, PROP_PIN_REASON, reason)?;
    }
    if let Some(expiry) = expiry {
        zfs.set(full, PROP_EXPIRES, &expiry.to_string())?;
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
        let name = dataset.as_str();
        let hosts = name.rsplit_once('/').map_or(name, |(parent, _)| parent);
        let inv = ctx.zfs.host_inventory(hosts, name)?;
        let Some(clean) = inv.hosts.get(host).and_then(guard::last_clean) else {
            return Ok(None);
        };
        let expiry = guard::pinned_expiry(&clean.stamp, at, config.settings.guard.pin_for);
        let full = Snapshot::listed(dataset, &clean.name)?;
        pin(
            &ctx.zfs,
            full.as_str(),
            at,
            expiry,
            Some(&guard::pin_reason(at)),
        )?;
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
pub fn acknowledge(ctx: &Ctx, root: &str, host: &Host) -> Result<()> {
    for snap in &host.snapshots {
        let Some(reason) = snap.pin_reason.as_deref() else {
            continue;
        };
        if let Some(acked) = guard::acknowledge(reason, ctx.now) {
            let full = Snapshot::of(root, host, &snap.name)?;
            ctx.zfs.stamp(&full, PROP_PIN_REASON, &acked)?;
            println!("{full}: acknowledged: {reason}; the pin stays");
        }
    }
    Ok(())
}
