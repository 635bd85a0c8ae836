//! `zbk restamp`: after a change of the tier table, re-stamps each zbk snapshot's expiry from
//! its run time and tier; snapshots pinned with `zbk keep` are left alone.

use crate::cli::RestampArgs;
use crate::ctx::{Ctx, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::restamp::{plan, Plan};
use crate::stamp::PROP_EXPIRES;
use anyhow::Result;

pub fn run(ctx: &Ctx, args: RestampArgs) -> Result<u8> {
    let global = ctx.global()?;
    let inv = ctx.zfs.inventory(&global.dataset.hosts())?;
    let mut exit = EXIT_OK;
    let (mut changed, mut same, mut skipped) = (0, 0, 0);
    for name in super::chosen_hosts(&inv, &args.hosts)? {
        let host = &inv.hosts[&name];
        let config = match global.load_host(&ctx.layout.host_config(&name)) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("zbk: {name}: {e:#}; its snapshots are left as they are");
                exit = exit.max(EXIT_USAGE);
                continue;
            }
        };
        for snap in &host.snapshots {
            let full = match host.full_snapshot(&global.dataset, &snap.name) {
                Ok(full) => full,
                Err(e) => {
                    eprintln!("zbk: {name}: {e:#}; left as it is");
                    skipped += 1;
                    continue;
                }
            };
            match plan(snap, &config.settings) {
                Plan::Same => same += 1,
                Plan::Skip(None) => {}
                Plan::Skip(Some(why)) => {
                    skipped += 1;
                    eprintln!("zbk: {full}: skipped: {why}");
                }
                Plan::Change { from, to } => {
                    let from = from.shown();
                    if args.dry_run {
                        println!("would restamp {full}: {from} -> {to}");
                        changed += 1;
                    } else if let Err(e) = ctx.zfs.stamp(&full, PROP_EXPIRES, &to.to_string()) {
                        eprintln!("zbk: {full}: {e:#}");
                        exit = exit.max(EXIT_FAILED);
                    } else {
                        println!("restamped {full}: {from} -> {to}");
                        changed += 1;
                    }
                }
            }
        }
        if !args.dry_run {
            if let Err(e) = super::pin::acknowledge(ctx, &global.dataset, host) {
                eprintln!("zbk: {name}: {e:#}");
                exit = exit.max(EXIT_FAILED);
            }
            super::record_or_warn(
                ctx,
                &global.dataset.hosts(),
                &global.dataset.host(&host.name),
            );
        }
    }
    println!(
        "restamp: {} {changed}, unchanged {same}, skipped {skipped}",
        if args.dry_run {
            "would change"
        } else {
            "changed"
        }
    );
    Ok(exit)
}
