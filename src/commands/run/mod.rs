//! `zbk run`: resolves the request, backs up the chosen hosts side by side and reports each.
//!
//! Per host, rsync pulls each source into d/, logs into l/ and the run ends in a snapshot with
//! its stamp (backup.rs), between the host's own hooks (hooks.rs). A failed run still
//! snapshots, under a `failed-` name with the failed tier's short expiry, so the evidence
//! survives and the good snapshots before it are not crowded out. Runs of one host never
//! overlap: a second run waits for the first and, when the first just produced a good
//! snapshot, stamps its own tier onto that snapshot instead of copying everything again.

mod backup;
mod hooks;

use crate::cli::RunArgs;
use crate::config::{Global, HostConfig, DEFAULT_TIER, FAILED_TIER};
use crate::ctx::{usage, Ctx, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::expiry::{Expiry, Retention};
use crate::names::HostName;
use crate::parallel;
use crate::progress::Progress;
use crate::run_facts::Facts as RunFacts;
use crate::stamp::Status;
use crate::sys::rsync::Rsync;
use crate::sys::ssh;
use crate::watchdog;
use anyhow::{Context, Result};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What was asked of every host in this invocation.
struct Request {
    tier: String,
    expires: Option<Retention>,
    wait: Duration,
    dry_run: bool,
    verbose: bool,
    /// Every host was asked for (`--all`): skipped ones go unmentioned unless verbose.
    all: bool,
}

/// One host's part of the request, resolved once before its backup: its config, and the
/// retentions its tier and a failure give (a host's own config may add tiers).
struct HostRun<'a> {
    host: &'a HostName,
    config: HostConfig,
    /// The tier's retention, or `--expires`.
    retention: Retention,
    /// The failed tier's, for a run that fails.
    failed_retention: Retention,
}

/// The programs a run calls, resolved once.
struct Programs {
    rsync: Rsync,
    ssh: Option<PathBuf>,
}

/// What every host's run in this invocation shares.
struct Job<'a> {
    ctx: &'a Ctx,
    programs: &'a Programs,
    global: &'a Global,
    facts: &'a RunFacts,
    request: &'a Request,
    progress: &'a Progress,
}

/// How one host's run ended: in a snapshot, or without one because its client, which is
/// not always online, could not be reached.
enum Finished {
    Snapshot(Outcome),
    Unreachable {
        /// What ssh said.
        why: String,
        log: PathBuf,
    },
}

/// A run that ended in a snapshot.
struct Outcome {
    status: Status,
    snapshot: String,
    expires: Expiry,
    log: PathBuf,
    /// Why it failed or warned, for stderr.
    why: Vec<String>,
    /// The snapshot came from a concurrent run and was restamped, not taken.
    merged: bool,
    /// A post_run hook failed: the backup stands, but someone should look.
    hook_failed: bool,
}

pub fn run(ctx: &Ctx, args: RunArgs) -> Result<u8> {
    stall_watchdog(ctx);
    let global = ctx.global()?;
    watchdog::set_limit(global.zfs_timeout);
    if args.all != args.hosts.is_empty() {
        return Err(usage("name the hosts to back up, or give --all (not both)"));
    }
    let tier = args
        .tier
        .clone()
        .unwrap_or_else(|| DEFAULT_TIER.to_string());
    if tier == FAILED_TIER {
        return Err(usage(
            "--tier failed: that tier is stamped on failed runs only",
        ));
    }
    let expires = args
        .expires
        .as_deref()
        .map(Retention::parse)
        .transpose()
        .map_err(|e| usage(format!("--expires: {e}")))?;
    let wait = match Retention::parse(&args.wait) {
        Ok(Retention::For(span)) => span.nominal(),
        Ok(Retention::Never) => Duration::MAX,
        Err(e) => return Err(usage(format!("--wait: {e}"))),
    };
    let jobs = match args.jobs {
        Some(0) => return Err(usage("--jobs: must be at least 1")),
        Some(n) => n,
        None => global
            .jobs
            .unwrap_or_else(|| parallel::default_jobs(parallel::cpus())),
    };
    let request = Request {
        tier,
        expires,
        wait,
        dry_run: args.dry_run,
        verbose: args.verbose,
        all: args.all,
    };
    let facts = ctx.zfs.run_facts(&global.dataset)?;
    let hosts = super::chosen_hosts(&facts.inventory, &args.hosts)?;
    let programs = Programs {
        rsync: Rsync::find()?,
        ssh: ssh::program().ok(),
    };
    let progress = Progress::new(!args.dry_run && std::io::stderr().is_terminal());
    let job = Job {
        ctx,
        programs: &programs,
        global: &global,
        facts: &facts,
        request: &request,
        progress: &progress,
    };

    let finished = AtomicBool::new(false);
    let codes = std::thread::scope(|scope| {
        if progress.enabled() {
            scope.spawn(|| {
                while !finished.load(Ordering::Relaxed) {
                    progress.draw();
                    std::thread::sleep(Duration::from_millis(500));
                }
                progress.clear();
            });
        }
        let codes = parallel::map(&hosts, jobs, |host| {
            if ctx.cancel.load(Ordering::Relaxed) {
                eprintln!("zbk: {host}: not started: interrupted");
                return EXIT_FAILED;
            }
            one_host(&job, host)
        });
        finished.store(true, Ordering::Relaxed);
        codes
    });
    let mut exit = EXIT_OK;
    for (host, code) in hosts.iter().zip(codes) {
        let code = code.unwrap_or_else(|panic| {
            progress.done(host.as_str());
            eprintln!("zbk: {host}: failed: zbk itself went wrong ({panic}); please report it");
            EXIT_FAILED
        });
        exit = exit.max(code);
    }
    Ok(exit)
}

/// Ends a run that has made no progress for the `[zfs] timeout` (the built-in one until the
/// config that may set it is read): its children have deadlines of their own, but zbk's own
/// reads and writes on a pool that stopped answering (its config, a host's log) have none.
/// A lock dies with the process; a snapshot is taken with its stamp or not at all.
fn stall_watchdog(ctx: &Ctx) {
    let root = ctx.layout.root.display().to_string();
    let fire = move |doing: &str, limit: Duration| {
        let doing = if doing.is_empty() {
            format!("reading or writing under {root}")
        } else {
            doing.to_string()
        };
        eprintln!(
            "zbk: run: {doing} did not answer within {} ([zfs] timeout): is the pool suspended or its zfs stopped? Giving up; whatever is stuck in the kernel is left behind",
            humantime::format_duration(limit)
        );
        std::process::exit(EXIT_FAILED.into());
    };
    watchdog::arm(
        watchdog::Bound::Stall,
        crate::config::DEFAULT_ZFS_TIMEOUT,
        Box::new(fire),
    );
}

/// Backs up one host and reports; returns its exit status.
fn one_host(job: &Job, host: &HostName) -> u8 {
    let Job {
        ctx,
        global,
        facts,
        request,
        progress,
        ..
    } = *job;
    if let Some(since) = &facts.inventory.hosts[host].retired {
        if !request.all || request.verbose {
            eprintln!("zbk: {host}: retired since {since}; skipped");
        }
        return EXIT_OK;
    }
    let run = global
        .load_host(&ctx.layout.host_config(host))
        .and_then(|config| {
            let tier = config.settings.tier(&request.tier).context("--tier")?;
            Ok(HostRun {
                host,
                retention: request.expires.unwrap_or(tier),
                failed_retention: config.settings.tier(FAILED_TIER)?,
                config,
            })
        });
    let run = match run {
        Ok(run) => run,
        // On a server that also receives `zbk replicate` copies, those are not backed up here.
        Err(_) if ctx.zfs.is_replica(&global.dataset.host(host)) => {
            if !request.all || request.verbose {
                eprintln!("zbk: {host}: a copy received by zbk replicate; skipped");
            }
            return EXIT_OK;
        }
        Err(e) => {
            // The config lives in the host's dataset, unreadable while its key is not loaded.
            if let Some(key) = super::key_not_loaded(ctx, &global.dataset.host(host)) {
                eprintln!(
                    "zbk: {host}: its encryption key is not loaded, so nothing in it can be read or written: `{} && zfs mount -a`, then run again",
                    key.load_hint()
                );
                return EXIT_FAILED;
            }
            eprintln!("zbk: {host}: {e:#}");
            return EXIT_USAGE;
        }
    };
    let result = backup::backup_host(job, &run);
    progress.done(host.as_str());
    match result {
        // Expected of a client that is online only sometimes: recorded, and quiet for cron.
        Ok(Finished::Unreachable { why, log }) => {
            if request.verbose {
                println!(
                    "{host}: unreachable: {why}; no snapshot, log {}",
                    log.display()
                );
            }
            EXIT_OK
        }
        Ok(Finished::Snapshot(outcome)) => {
            report(host, &outcome, request);
            if outcome.status == Status::Failed || outcome.hook_failed {
                EXIT_FAILED
            } else {
                EXIT_OK
            }
        }
        Err(e) => {
            eprintln!("zbk: {host}: {e:#}");
            EXIT_FAILED
        }
    }
}

/// Silent on success unless verbose; failures on stderr, for cron to mail.
fn report(host: &HostName, o: &Outcome, request: &Request) {
    if request.dry_run {
        return;
    }
    let merged = if o.merged {
        " (taken by the run this one waited for; restamped)"
    } else {
        ""
    };
    let line = format!(
        "{host}: {}: snapshot {}{merged}, expires {}, log {}",
        o.status.as_str(),
        o.snapshot,
        o.expires,
        o.log.display()
    );
    // A warning (vanished files) is a good backup: cron hears of it only with -v.
    let loud = o.status == Status::Failed || o.hook_failed;
    if loud {
        eprintln!("zbk: {line}");
    } else if request.verbose {
        println!("{line}");
    }
    if loud || request.verbose {
        for why in &o.why {
            eprintln!("zbk: {host}: {why}");
        }
    }
}
