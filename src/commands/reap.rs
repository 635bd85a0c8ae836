//! `zbk reap`: one listing of the whole hosts tree, then destroy what expired, keeping each
//! active host's newest good backups. Stateless, so running it twice does nothing more.

use crate::cli::ReapArgs;
use crate::ctx::{usage, Ctx, EXIT_FAILED, EXIT_OK};
use crate::dataset::{HostDataset, Snapshot};
use crate::expiry::parse_time;
use crate::inventory::Host;
use crate::names::SnapName;
use crate::parallel;
use crate::retention::{self, Verdict};
use crate::sys::zfs_destroy::Destroyed;
use anyhow::{anyhow, Result};

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
    let inv = ctx.zfs.inventory(&global.dataset.hosts())?;
    if inv.unreadable > 0 {
        eprintln!(
            "zbk: warning: {} lines of the zfs listing could not be read (a property value with a tab or newline?); their snapshots are kept",
            inv.unreadable
        );
    }
    let mut tally = Tally::default();
    let mut work = Vec::new();
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
            (None, Err(_)) if ctx.zfs.is_replica(&global.dataset.host(&name)) => {
                global.settings.min_keep
            }
            (None, Err(e)) => {
                let keep = global.settings.min_keep.max(1);
                eprintln!("zbk: warning: {name}: {e:#}; keeping its newest {keep} good backups");
                keep
            }
        };
        match HostDataset::listed(&global.dataset, &name, &host.dataset) {
            Ok(dataset) => work.push(plan_host(host, dataset, min_keep, now, &args, &mut tally)),
            Err(e) => {
                eprintln!("zbk: {name}: {e:#}; nothing of it is destroyed");
                tally.errors += 1;
            }
        }
    }
    let results = if args.dry_run {
        Vec::new()
    } else {
        destroy_all(ctx, &work, global.destroy_batch)
    };
    let mut results = results.into_iter();
    for pending in &work {
        finish_host(ctx, pending, results.next().flatten(), &args, &mut tally);
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
            crate::sys::exec::spawned()
        );
    }
    Ok(if tally.errors > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

/// Hosts whose snapshots are destroyed at the same time. A destroy mostly waits (a process
/// start, a txg sync), so a few hosts at once take a fraction of the time: on zfs-fuse 4
/// workers halved 4,000 destroys (tests/bench/BENCHMARKS.md). Few, so that a reap never floods
/// the pool with destroys the way the field reports in prior-art §3 describe.
const DESTROY_WORKERS: usize = 4;

/// One host's judgement, made before anything is destroyed.
struct Pending<'a> {
    host: &'a Host,
    /// The host's dataset, checked against the one its name gives.
    dataset: HostDataset,
    /// Expired snapshots with names of zbk's grammar: the only ones a destroy is asked for.
    doomed: Vec<SnapName>,
    /// Snapshots that stay whatever the destroys do.
    kept: usize,
}

type Outcomes = Result<Vec<(String, Destroyed)>>;

/// Destroys every host's doomed snapshots, one host per worker at a time and each host's own
/// in order; the outcomes come back in the order of `work`. A worker that panics fails its
/// host's destroys, which the caller reports as an error.
fn destroy_all(ctx: &Ctx, work: &[Pending], batch: usize) -> Vec<Option<Outcomes>> {
    let busy: Vec<&Pending> = work.iter().filter(|p| !p.doomed.is_empty()).collect();
    let mut outcomes = parallel::map(&busy, DESTROY_WORKERS, |pending| {
        ctx.zfs
            .destroy_snapshots(&pending.dataset, &pending.doomed, batch)
    })
    .into_iter()
    .map(|outcome| {
        outcome.unwrap_or_else(|panic| {
            Err(anyhow!("zbk itself went wrong ({panic}); please report it"))
        })
    });
    work.iter()
        .map(|p| (!p.doomed.is_empty()).then(|| outcomes.next()).flatten())
        .collect()
}

/// Judges one host's snapshots and reports what stays; destroys nothing, so every host is
/// judged before the first destroy starts.
fn plan_host<'a>(
    host: &'a Host,
    dataset: HostDataset,
    min_keep: usize,
    now: chrono::DateTime<chrono::Utc>,
    args: &ReapArgs,
    tally: &mut Tally,
) -> Pending<'a> {
    let plan = retention::plan(host, min_keep, now);
    let mut doomed = Vec::new();
    for (snap, verdict) in &plan {
        let full = shown(&dataset, &snap.name);
        match verdict {
            Verdict::Destroy(expiry) => match SnapName::parse(&snap.name) {
                Ok(name) => {
                    if args.dry_run {
                        println!("destroy {full}: expired {expiry}");
                    }
                    doomed.push(name);
                }
                // Anyone with `zfs snapshot -o` can stamp a snapshot of their own: zbk
                // destroys only what it named.
                Err(e) => {
                    tally.kept += 1;
                    let why = format!("expired {expiry}, but {e:#}; kept");
                    if args.dry_run {
                        println!("keep {full}: {why}");
                    } else {
                        eprintln!("zbk: warning: {full}: {why}");
                    }
                }
            },
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
    Pending {
        host,
        dataset,
        kept: plan.len() - doomed.len(),
        doomed,
    }
}

/// Tallies and reports one host's destroys (`None`: none were tried), then destroys a
/// retired host that has nothing left.
fn finish_host(
    ctx: &Ctx,
    pending: &Pending,
    outcomes: Option<Outcomes>,
    args: &ReapArgs,
    tally: &mut Tally,
) {
    let host = pending.host;
    let doomed = &pending.doomed;
    let mut left = pending.kept;
    if args.dry_run {
        tally.destroyed += doomed.len();
    } else if let Some(outcomes) = outcomes {
        match outcomes {
            Err(e) => {
                eprintln!("zbk: {}: {e:#}", host.name);
                tally.errors += 1;
                left += doomed.len();
            }
            Ok(results) => {
                for (name, outcome) in results {
                    let full = shown(&pending.dataset, &name);
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
    // A retired host goes once nothing of it is left; `destroy_tree` re-checks that its
    // dataset is exactly one host dataset under the hosts tree. Any other host whose snapshots
    // changed has its record written anew; not a replica's, whose snapshots come and go with
    // each receive that no record of the target's would follow.
    let retired_and_empty = host.retired.is_some() && left == 0;
    let destroyed_some = left < pending.kept + doomed.len();
    if !args.dry_run
        && destroyed_some
        && !retired_and_empty
        && !ctx.zfs.is_replica(&pending.dataset)
    {
        super::record_or_warn(ctx, &pending.dataset.hosts(), &pending.dataset);
    }
    if retired_and_empty {
        if args.dry_run {
            println!(
                "destroy {}: retired host with no snapshots left",
                host.dataset
            );
        } else if let Err(e) = ctx.zfs.destroy_tree(&pending.dataset) {
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

/// `dataset@name` for a message, however odd the listed name.
fn shown(dataset: &HostDataset, name: &str) -> String {
    Snapshot::listed(dataset, name)
        .map(|s| s.to_string())
        .unwrap_or_else(|_| format!("{dataset}@{:?}", name.escape_debug().to_string()))
}
