//! `zbk run`: per host, rsync each source into d/, log into l/, snapshot with the stamp.
//!
//! A failed run still snapshots, under a `failed-` name with the failed tier's short expiry,
//! so the evidence survives and the good snapshots before it are not crowded out.

use crate::app::{usage, Ctx, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::cli::RunArgs;
use crate::config::{Global, HostConfig, DEFAULT_TIER, FAILED_TIER};
use crate::exec::{find_program, Cmd};
use crate::expiry::{Expiry, Retention};
use crate::inventory::{Status, PROP_EXPIRES, PROP_STATUS, PROP_TIER};
use crate::layout::{host_dataset, hosts_dataset};
use crate::lock::HostLock;
use crate::names::{snapshot_name, HostName, FAILED_PREFIX};
use crate::rsync;
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use fs_err as fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What was asked of every host in this invocation.
struct Request {
    tier: String,
    expires: Option<Retention>,
    dry_run: bool,
    verbose: bool,
}

/// How one host's run ended.
struct Outcome {
    status: Status,
    snapshot: String,
    expires: Expiry,
    log: PathBuf,
    /// Why it failed or warned, for stderr.
    why: Vec<String>,
}

pub fn run(ctx: &Ctx, args: RunArgs) -> Result<u8> {
    let global = ctx.global()?;
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
    let request = Request {
        tier,
        expires,
        dry_run: args.dry_run,
        verbose: args.verbose,
    };
    let inv = ctx.zfs.hosts(&hosts_dataset(&global.dataset))?;
    let hosts = super::chosen_hosts(&inv, &args.hosts)?;
    let rsync_bin = find_program("rsync")?;

    let mut exit = EXIT_OK;
    for host in hosts {
        if let Some(since) = &inv.hosts[&host].retired {
            if !args.all || args.verbose {
                eprintln!("zbk: {host}: retired since {since}; skipped");
            }
            continue;
        }
        // A host's own config may add tiers, so the tier is judged per host.
        let config = global
            .load_host(&ctx.layout.host_config(&host))
            .and_then(|c| c.settings.tier(&request.tier).map(|_| c).context("--tier"));
        let config = match config {
            Ok(config) => config,
            Err(e) => {
                eprintln!("zbk: {host}: {e:#}");
                exit = exit.max(EXIT_USAGE);
                continue;
            }
        };
        match backup_host(ctx, &rsync_bin, &global, &host, &config, &request) {
            Ok(outcome) => {
                if outcome.status == Status::Failed {
                    exit = exit.max(EXIT_FAILED);
                }
                report(&host, &outcome, &request);
            }
            Err(e) => {
                eprintln!("zbk: {host}: {e:#}");
                exit = exit.max(EXIT_FAILED);
            }
        }
    }
    Ok(exit)
}

/// Silent on success unless verbose; failures on stderr, for cron to mail.
fn report(host: &HostName, o: &Outcome, request: &Request) {
    if request.dry_run {
        return;
    }
    let line = format!(
        "{host}: {}: snapshot {}, expires {}, log {}",
        o.status.as_str(),
        o.snapshot,
        o.expires,
        o.log.display()
    );
    // A warning (vanished files) is a good backup: cron hears of it only with -v.
    match o.status {
        Status::Ok | Status::Warning if !request.verbose => {}
        Status::Ok => println!("{line}"),
        Status::Warning | Status::Failed => {
            eprintln!("zbk: {line}");
            for why in &o.why {
                eprintln!("zbk: {host}: {why}");
            }
        }
    }
}

fn backup_host(
    ctx: &Ctx,
    rsync_bin: &Path,
    global: &Global,
    host: &HostName,
    config: &HostConfig,
    request: &Request,
) -> Result<Outcome> {
    let retention = match request.expires {
        Some(r) => r,
        None => config.settings.tier(&request.tier)?,
    };
    let failed_retention = config.settings.tier(FAILED_TIER)?;
    let dataset = host_dataset(&global.dataset, host);
    let data = ctx.layout.data(host);
    let exclude = ctx.layout.exclude_file(host);
    let exclude = exclude.is_file().then_some(exclude.as_path());
    let commands: Vec<(String, Cmd)> = config
        .sources
        .iter()
        .map(|source| {
            let argv = rsync::argv(&config.settings.rsync, exclude, source, &data);
            (source.clone(), Cmd::new(rsync_bin).args(argv))
        })
        .collect();

    if request.dry_run {
        for (_, cmd) in &commands {
            println!("{cmd}");
        }
        let name = snapshot_name(ctx.now, false, 0);
        let props = stamp(&request.tier, Status::Ok, retention.expiry_from(ctx.now));
        println!(
            "{}",
            ctx.zfs.snapshot_cmd(&format!("{dataset}@{name}"), &props)
        );
        return Ok(Outcome {
            status: Status::Ok,
            snapshot: name,
            expires: retention.expiry_from(ctx.now),
            log: PathBuf::new(),
            why: Vec::new(),
        });
    }

    let _lock = HostLock::acquire(&ctx.layout.lock(host))?;
    let started = Utc::now();
    let logs = ctx.layout.logs(host);
    if !logs.is_dir() {
        bail!("{} is missing: is {dataset} mounted?", logs.display());
    }
    // Renamed for its snapshot once that is named; until then a name no snapshot has.
    let log_path = logs.join(format!("{}.running.log", snapshot_name(started, false, 0)));
    let (status, why) = transfer(&log_path, &commands, config, host, &request.tier, started)?;

    let (tier, retention) = if status == Status::Failed {
        (FAILED_TIER, failed_retention)
    } else {
        (request.tier.as_str(), retention)
    };
    let expires = retention.expiry_from(started);
    prune_logs(&logs, config.settings.log_keep, &log_path)?;
    let props = stamp(tier, status, expires);
    let (snapshot, log) = take_snapshot(ctx, &dataset, &log_path, started, status, &props)?;
    Ok(Outcome {
        status,
        snapshot,
        expires,
        log,
        why,
    })
}

/// The properties stamped on a run's snapshot, in the snapshot's own creating call.
fn stamp(tier: &str, status: Status, expires: Expiry) -> Vec<(&'static str, String)> {
    vec![
        (PROP_EXPIRES, expires.to_string()),
        (PROP_TIER, tier.to_string()),
        (PROP_STATUS, status.as_str().to_string()),
    ]
}

/// Runs rsync for each source with its output in the log; the worst status wins.
fn transfer(
    log_path: &Path,
    commands: &[(String, Cmd)],
    config: &HostConfig,
    host: &HostName,
    tier: &str,
    started: DateTime<Utc>,
) -> Result<(Status, Vec<String>)> {
    let mut log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)?;
    writeln!(
        log,
        "zbk {}: run of {host}, tier {tier}, started {}",
        env!("CARGO_PKG_VERSION"),
        Expiry::At(started)
    )?;
    let mut status = Status::Ok;
    let mut why = Vec::new();
    for (source, cmd) in commands {
        writeln!(log, "$ {cmd}")?;
        let start = log.metadata()?.len();
        let code = cmd.run_logged(log.file())?;
        let this = rsync::judge(code, &config.settings.rsync);
        writeln!(
            log,
            "rsync exited {code} ({}): {}",
            rsync::meaning(code),
            this.as_str()
        )?;
        if this != Status::Ok {
            let mut line = format!("{source}: rsync exited {code} ({})", rsync::meaning(code));
            let output = read_from(log_path, start)?;
            if let Some(hint) = rsync::hint(code, &output) {
                line.push_str(": ");
                line.push_str(hint);
            }
            why.push(line);
        }
        status = status.max(this);
    }
    writeln!(
        log,
        "zbk: result {}, finished {}",
        status.as_str(),
        Expiry::At(Utc::now())
    )?;
    log.sync_all().context("cannot flush the run log")?;
    Ok((status, why))
}

/// The text a log gained since `offset`, for looking for hints in one rsync's output.
fn read_from(path: &Path, offset: u64) -> Result<String> {
    let bytes = fs::read(path)?;
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    Ok(String::from_utf8_lossy(&bytes[start..]).into_owned())
}

/// Keeps the newest `keep` logs in l/ (the current one always); older ones live on in snapshots.
fn prune_logs(dir: &Path, keep: usize, current: &Path) -> Result<()> {
    let mut logs: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "log") && p != current)
        .collect();
    // Oldest first by the run's time, whether or not the run failed.
    logs.sort_by_key(|p| {
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        name.trim_start_matches(FAILED_PREFIX).to_string()
    });
    let excess = (logs.len() + 1).saturating_sub(keep.max(1));
    for old in logs.into_iter().take(excess) {
        fs::remove_file(old)?;
    }
    Ok(())
}

/// Takes the run's snapshot with its stamp; a same-second clash gets a numbered suffix. The
/// log is renamed first to match, so that the snapshot holds `l/<snapshot>.log`.
fn take_snapshot(
    ctx: &Ctx,
    dataset: &str,
    log: &Path,
    started: DateTime<Utc>,
    status: Status,
    props: &[(&str, String)],
) -> Result<(String, PathBuf)> {
    let mut log = log.to_path_buf();
    for attempt in 0..100 {
        let name = snapshot_name(started, status == Status::Failed, attempt);
        let named = log.with_file_name(format!("{name}.log"));
        fs::rename(&log, &named)?;
        log = named;
        if ctx.zfs.snapshot(&format!("{dataset}@{name}"), props)? {
            return Ok((name, log));
        }
    }
    bail!(
        "cannot find a free snapshot name for {dataset} at {}",
        Expiry::At(started)
    )
}
