//! `zbk keep`: sets one snapshot's expiry by hand (a legal hold, before a risky change) and
//! marks it pinned, so that `zbk restamp` leaves it alone. The mass-change guard pins the
//! same way from a run (`pin.rs` sets both), and `keep` (like `restamp`) acknowledges what the
//! guard reported.

use super::pin::{acknowledge, pin};
use crate::cli::KeepArgs;
use crate::ctx::{usage, Ctx, EXIT_OK};
use crate::expiry::{parse_time, Expiry, Retention};
use crate::names::is_safe_component;
use anyhow::Result;

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
    let inv = ctx.zfs.inventory(&global.dataset.hosts())?;
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
    let full = host.full_snapshot(&global.dataset, &snap.name)?;
    pin(&ctx.zfs, &full, ctx.now, Some(expiry), None)?;
    let was = snap.stamp.shown();
    println!(
        "{name}@{}: expires {expiry} (was {was}); pinned, restamp leaves it alone",
        snap.name
    );
    acknowledge(ctx, &global.dataset, host)?;
    super::record_or_warn(
        ctx,
        &global.dataset.hosts(),
        &global.dataset.host(&host.name),
    );
    Ok(EXIT_OK)
}
