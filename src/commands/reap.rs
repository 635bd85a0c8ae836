//! `zbk reap`: one listing of the whole hosts tree, then destroy what expired, keeping each
//! active host's newest good backups. Stateless, so running it twice does nothing more.

use crate::app::{usage, Ctx, EXIT_FAILED, EXIT_OK};
use crate::cli::ReapArgs;
use crate::expiry::parse_time;
use crate::inventory::Host;
use crate::layout::{host_dataset, hosts_dataset};
use crate::retention::{self, Verdict};
use crate::zfs::Destroyed;
use anyhow::Result;

/// What one reap did, for `-v` and the exit status.
#[derive(Default)]
struct Tally {
    destroyed: usize,
    kept: usize,
    blocked: usize,
    errors: usize,
}

pub fn run(ctx: &Ctx, mut args: ReapArgs) -> Result<u8> {
    let global = ctx.global()?;
    // A preview of another moment must never destroy by that moment's judgement.
    args.dry_run |= args.as_of.is_some();
    let now = match &args.as_of {
        Some(t) => parse_time(t).map_err(|e| usage(format!("--as-of: {e}")))?,
        None => ctx.now,
    };
    let inv = ctx.zfs.inventory(&hosts_dataset(&global.dataset))?;
    if inv.unreadable > 0 {
        eprintln!(
            "zbk: warning: {} lines of the zfs listing could not be read (a property value with a tab or newline?); their snapshots are kept",
            inv.unreadable
        );
    }
    let mut tally = Tally::default();
    for name in super::chosen_hosts(&inv, &args.hosts)? {
        let host = &inv.hosts[&name];
        // The floor protects only active hosts, so a retired host's config need not be readable.
        let min_keep = match (
            &host.retired,
            global.load_host(&ctx.layout.host_config(&name)),
        ) {
            (Some(_), _) => 0,
            (None, Ok(config)) => config.settings.min_keep,
            // A copy made by `zbk replicate` is never mounted, so its c/ cannot be read:
            // the global floor applies, silently.
            (None, Err(_)) if ctx.zfs.is_replica(&host.dataset) => global.settings.min_keep,
            (None, Err(e)) => {
                let keep = global.settings.min_keep.max(1);
                eprintln!("zbk: warning: {name}: {e:#}; keeping its newest {keep} good backups");
                keep
            }
        };
        reap_host(
            ctx,
            &global.dataset,
            host,
            min_keep,
            now,
            &args,
            global.destroy_batch,
            &mut tally,
        );
    }
    if args.verbose || args.dry_run {
        let verb = if args.dry_run {
            "would destroy"
        } else {
            "destroyed"
        };
        println!(
            "reap: {verb} {}, kept {}, blocked {}, errors {}; zfs processes started: {}",
            tally.destroyed,
            tally.kept,
            tally.blocked,
            tally.errors,
            crate::exec::spawned()
        );
    }
    Ok(if tally.errors > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

#[allow(clippy::too_many_arguments)]
fn reap_host(
    ctx: &Ctx,
    dataset: &str,
    host: &Host,
    min_keep: usize,
    now: chrono::DateTime<chrono::Utc>,
    args: &ReapArgs,
    batch: usize,
    tally: &mut Tally,
) {
    let plan = retention::plan(host, min_keep, now);
    let mut doomed = Vec::new();
    for (snap, verdict) in &plan {
        let full = format!("{}@{}", host.dataset, snap.name);
        match verdict {
            Verdict::Destroy(expiry) => {
                if args.dry_run {
                    println!("destroy {full}: expired {expiry}");
                }
                doomed.push(snap.name.as_str());
            }
            Verdict::Keep(why) => {
                if why.is_blocked() {
                    tally.blocked += 1;
                } else {
                    tally.kept += 1;
                }
                if args.dry_run {
                    println!("keep {full}: {why}");
                } else if why.warns() || why.is_blocked() {
                    eprintln!(
                        "zbk: {}: {full}: {why}",
                        if why.warns() { "warning" } else { "skipped" }
                    );
                }
            }
        }
    }
    let mut left = plan.len() - doomed.len();
    if args.dry_run {
        tally.destroyed += doomed.len();
    } else if !doomed.is_empty() {
        match ctx.zfs.destroy_snapshots(&host.dataset, &doomed, batch) {
            Err(e) => {
                eprintln!("zbk: {}: {e:#}", host.name);
                tally.errors += 1;
                left += doomed.len();
            }
            Ok(results) => {
                for (name, outcome) in results {
                    let full = format!("{}@{name}", host.dataset);
                    match outcome {
                        Destroyed::Gone => {
                            tally.destroyed += 1;
                            if args.verbose {
                                println!("destroyed {full}");
                            }
                        }
                        Destroyed::Busy(why) => {
                            tally.blocked += 1;
                            left += 1;
                            eprintln!("zbk: skipped: {full}: {why}");
                        }
                        Destroyed::Failed(why) => {
                            tally.errors += 1;
                            left += 1;
                            eprintln!("zbk: cannot destroy {full}: {why}");
                        }
                    }
                }
            }
        }
    }
    // A retired host goes once nothing of it is left; the guard re-derives the dataset name so
    // nothing outside the hosts tree can ever be passed to a recursive destroy.
    if host.retired.is_some() && left == 0 && host.dataset == host_dataset(dataset, &host.name) {
        if args.dry_run {
            println!(
                "destroy {}: retired host with no snapshots left",
                host.dataset
            );
        } else if let Err(e) = ctx.zfs.destroy_tree(&host.dataset) {
            eprintln!("zbk: cannot destroy retired host {}: {e:#}", host.dataset);
            tally.errors += 1;
        } else if args.verbose {
            println!(
                "destroyed {}: retired host with no snapshots left",
                host.dataset
            );
        }
    }
}
