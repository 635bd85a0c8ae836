//! One host's backup: the guards, rsync into d/ with its log in l/, the stamped snapshot.

use super::hooks::Hooks;
use super::{Finished, HostRun, Job, Outcome, Request};
use crate::commands::pin;
use crate::config::{Global, HostConfig, Online, FAILED_TIER};
use crate::ctx::Ctx;
use crate::dataset::{HostDataset, Snapshot};
use crate::expiry::{Expiry, Retention};
use crate::lock::{Acquired, HostLock};
use crate::names::{snapshot_name, HostName, SnapName, FAILED_PREFIX};
use crate::rsync_args::{self, Call};
use crate::rsync_report::Stats;
use crate::run_facts::Storable;
use crate::stamp::{
    self, Stamp, Status, PROP_CHANGES, PROP_EXPIRES, PROP_FILES, PROP_LAST_UNREACHABLE,
    PROP_MASS_CHANGE, PROP_STATUS, PROP_TIER,
};
use crate::sys::exec::Overdue;
use crate::sys::rsync::{Copy, Looked, Reach, Rsync};
use crate::sys::ssh::Ssh;
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use fs_err as fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One host's copy as prepared before anything runs: its dataset, rsync's commands for each
/// source, and what the guards and the copy share.
struct Prepared<'r> {
    dataset: HostDataset,
    rsh: Option<String>,
    max_delete: Option<u64>,
    storable: Storable,
    data: PathBuf,
    copy: Copy<'r>,
}

/// An open run of one host: its lock, its log, and when it started.
struct Opened {
    _lock: HostLock,
    started: DateTime<Utc>,
    logs: PathBuf,
    log_path: PathBuf,
    log: fs::File,
}

/// How the run stands so far: the worst status seen, every reason, and the copy's figures.
struct Verdict {
    status: Status,
    why: Vec<String>,
    stats: Option<Stats>,
}

impl Verdict {
    fn failed(&self) -> bool {
        self.status == Status::Failed
    }

    /// Fails the run for `problem`, said in the log too.
    fn fail(&mut self, log: &mut fs::File, problem: String) -> Result<()> {
        writeln!(log, "zbk: {problem}")?;
        self.why.push(problem);
        self.status = Status::Failed;
        Ok(())
    }
}

/// Backs up one host: guards, copy, then the snapshot that finishes it.
pub(super) fn backup_host(job: &Job, run: &HostRun) -> Result<Finished> {
    let prepared = prepare(job, run)?;
    if job.request.dry_run {
        return dry_run(job, run, &prepared);
    }
    let mut opened = match open(job, run, &prepared)? {
        Opening::Opened(opened) => opened,
        Opening::Merged(outcome) => return Ok(Finished::Snapshot(outcome)),
    };
    let _doing = crate::watchdog::Doing::new(format!("writing into {}", opened.logs.display()));
    // Before the hooks: a pre_run hook that reaches for the client would only fail too.
    if let (Online::Sometimes, Some(rsh)) = (run.config.settings.online, prepared.rsh.as_deref()) {
        if let Some(why) = unreachable(&job.programs.rsync, rsh, &run.config)? {
            writeln!(opened.log, "zbk: {why}")?;
            let Opened {
                started,
                log_path,
                log,
                ..
            } = opened;
            return unreached(
                job.ctx,
                &prepared.dataset,
                &run.config,
                log,
                &log_path,
                started,
                why,
            );
        }
    }
    let hooks = Hooks {
        settings: &run.config.settings.hooks,
        host: run.host,
        tier: &job.request.tier,
        data: &prepared.data,
    };
    let mut verdict = guards(job, run, &prepared, &hooks, &mut opened)?;
    if !verdict.failed() {
        copy(job, run, &prepared, &mut opened, &mut verdict)?;
    }
    finish(job, run, &prepared, &hooks, opened, verdict)
}

/// Resolves what the copy needs: the remote shell, the deletion limit from the last good
/// run's file count, and rsync's arguments for each source.
fn prepare<'r>(job: &Job<'r>, run: &HostRun) -> Result<Prepared<'r>> {
    let Job {
        ctx,
        programs,
        global,
        facts,
        progress,
        ..
    } = *job;
    let config = &run.config;
    let host = run.host;
    let dataset = HostDataset::new(&global.dataset, host);
    let rsh = if config.sources.iter().any(|s| rsync_args::is_remote(s)) {
        let ssh = programs
            .ssh
            .as_deref()
            .context("cannot find `ssh` for a remote source: install openssh-client")?;
        Some(Ssh::client(ssh, &config.settings.ssh).rsh())
    } else {
        None
    };
    let exclude = ctx
        .layout
        .config_dir(host)
        .join(&config.settings.rsync.exclude_file);
    let max_delete = match config.settings.guard.max_delete {
        Some(fraction) => ctx
            .zfs
            .last_good_files(&dataset)?
            .map(|files| (fraction * files as f64).ceil() as u64),
        None => None,
    };
    let storable = facts.storable(host);
    let call = Call {
        storable: &storable,
        max_delete,
        settings: &config.settings.rsync,
        rsh: rsh.as_deref(),
        exclude_from: exclude.is_file().then_some(exclude.as_path()),
        progress: progress.enabled(),
    };
    let data = ctx.layout.data(host);
    let user = config.settings.ssh.user.as_deref();
    let copy = programs.rsync.copy(&call, &config.sources, user, &data);
    Ok(Prepared {
        dataset,
        rsh,
        max_delete,
        storable,
        data,
        copy,
    })
}

/// Prints what the run would do, and the snapshot it would take.
fn dry_run(job: &Job, run: &HostRun, prepared: &Prepared) -> Result<Finished> {
    let ctx = job.ctx;
    for line in prepared.copy.lines() {
        println!("{line}");
    }
    let name = SnapName::for_run(ctx.now, false, 0);
    let expires = run.retention.expiry_from(ctx.now);
    println!(
        "{}",
        ctx.zfs.snapshot_line(
            &Snapshot::new(&prepared.dataset, &name),
            &stamp(&job.request.tier, Status::Ok, expires)
        )
    );
    Ok(Finished::Snapshot(Outcome {
        status: Status::Ok,
        snapshot: name.to_string(),
        expires,
        log: PathBuf::new(),
        why: Vec::new(),
        merged: false,
        hook_failed: false,
    }))
}

/// How a run of one host begins: opened, or merged into the run it waited for.
enum Opening {
    Opened(Opened),
    Merged(Outcome),
}

/// The pool's capacity guard, the host's lock, and the run's log opened, unless the run was
/// merged into the one it waited for (`merge_into_recent`).
fn open(job: &Job, run: &HostRun, prepared: &Prepared) -> Result<Opening> {
    let Job {
        ctx,
        global,
        facts,
        request,
        progress,
        ..
    } = *job;
    let (host, config) = (run.host, &run.config);
    progress.set(host.as_str(), "waiting for another run", None);
    let capacity = match facts.take_capacity() {
        Some(fresh) => fresh,
        None => ctx.zfs.capacity(&global.dataset)?,
    };
    if capacity > config.settings.guard.max_capacity {
        bail!(
            "the pool is {capacity}% full, over guard.max_capacity {}%: not starting; free space (zbk reap) or raise the limit",
            config.settings.guard.max_capacity
        );
    }
    let Acquired { lock, waited } =
        HostLock::acquire(&ctx.layout.lock(host), request.wait, &ctx.cancel)?;
    if waited {
        let dataset = &prepared.dataset;
        if let Some(outcome) =
            merge_into_recent(ctx, global, host, dataset, request, run.retention)?
        {
            return Ok(Opening::Merged(outcome));
        }
    }
    Ok(Opening::Opened(open_log(job, run, prepared, lock)?))
}

/// The run's log in l/, its first lines written: what runs, and what rsync leaves out.
fn open_log(job: &Job, run: &HostRun, prepared: &Prepared, lock: HostLock) -> Result<Opened> {
    let (ctx, request) = (job.ctx, job.request);
    let (host, config) = (run.host, &run.config);
    let started = Utc::now();
    let logs = ctx.layout.logs(host);
    if !logs.is_dir() {
        bail!(
            "{} is missing: is {} mounted?",
            logs.display(),
            prepared.dataset
        );
    }
    // Renamed for its snapshot once that is named; until then a name no snapshot has.
    let log_path = logs.join(format!("{}.running.log", snapshot_name(started, false, 0)));
    let mut log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    writeln!(
        log,
        "zbk {}: run of {host}, tier {}, started {}",
        env!("CARGO_PKG_VERSION"),
        request.tier,
        Expiry::At(started)
    )?;
    let unstorable = rsync_args::unstorable(&config.settings.rsync, &prepared.storable);
    if !unstorable.is_empty() {
        writeln!(
            log,
            "zbk: rsync runs without {}: {}",
            unstorable.join(" "),
            prepared.storable.why
        )?;
    }
    Ok(Opened {
        _lock: lock,
        started,
        logs,
        log_path,
        log,
    })
}
/// The guards before rsync may touch d/: the pre_run hook, the look at each source, and with
/// a deletion limit a dry run, so a run that would delete too much fails before it has
/// deleted anything and d/ keeps what the last good run had.
fn guards(
    job: &Job,
    run: &HostRun,
    prepared: &Prepared,
    hooks: &Hooks,
    opened: &mut Opened,
) -> Result<Verdict> {
    let config = &run.config;
    let log = &mut opened.log;
    let mut verdict = Verdict {
        status: Status::Ok,
        why: Vec::new(),
        stats: None,
    };
    let cancel = &job.ctx.cancel;
    if let Some(failure) = hooks.pre_run(&opened.log_path, log, job.progress, cancel)? {
        verdict.why.push(failure);
        verdict.status = Status::Failed;
        return Ok(verdict);
    }
    let rsh = prepared.rsh.as_deref();
    if let Some(problem) = preflight(&job.programs.rsync, rsh, config)? {
        verdict.fail(log, problem)?;
        return Ok(verdict);
    }
    let Some(limit) = prepared.max_delete else {
        return Ok(verdict);
    };
    let problem = match prepared
        .copy
        .over_max_delete(log, config.settings.rsync.io_timeout)
    {
        Ok(None) => None,
        Ok(Some(source)) => Some(format!(
            "{source}: more than {limit} files would be deleted (guard.max_delete {} of the last good run's files): is the source complete? Nothing was deleted",
            config.settings.guard.max_delete.unwrap_or_default()
        )),
        // A client silent through the dry run fails the run like any failure, recorded.
        Err(e) if e.is::<Overdue>() => Some(format!("{e:#}")),
        Err(e) => return Err(e),
    };
    if let Some(problem) = problem {
        verdict.fail(log, problem)?;
    }
    Ok(verdict)
}

/// rsync into d/, source by source, its output in the log; the copy's status becomes the
/// run's.
fn copy(
    job: &Job,
    run: &HostRun,
    prepared: &Prepared,
    opened: &mut Opened,
    verdict: &mut Verdict,
) -> Result<()> {
    let host = run.host;
    let settings = &run.config.settings;
    let log_path = &opened.log_path;
    let step = |i: usize, n: usize| {
        job.progress.set(
            host.as_str(),
            &format!("rsync {}/{n}", i + 1),
            Some(log_path),
        );
    };
    let t = prepared.copy.run(
        &mut opened.log,
        log_path,
        &settings.rsync,
        &job.ctx.cancel,
        step,
    )?;
    verdict.status = t.status;
    verdict.why.extend(t.why);
    verdict.stats = t.stats;
    if let (Some(n), true) = (prepared.max_delete, t.codes.contains(&25)) {
        verdict.why.push(format!(
            "more than {n} files would have been deleted (guard.max_delete {} of the last good run's files): is the source complete? The last good snapshot is untouched",
            settings.guard.max_delete.unwrap_or_default()
        ));
    }
    Ok(())
}

/// Ends the run: the mass-change guard, the log's last line, the stamped snapshot under the
/// tier the status gives, the host's record, and the post_run hook.
fn finish(
    job: &Job,
    run: &HostRun,
    prepared: &Prepared,
    hooks: &Hooks,
    opened: Opened,
    mut verdict: Verdict,
) -> Result<Finished> {
    let (ctx, progress) = (job.ctx, job.progress);
    let (host, config, dataset) = (run.host, &run.config, &prepared.dataset);
    let Opened {
        _lock,
        started,
        logs,
        log_path,
        mut log,
    } = opened;
    let mass_change = verdict
        .stats
        .filter(|_| verdict.status.is_good())
        .and_then(|s| pin::guard_mass_change(ctx, dataset, host, &s, config, started));
    if let Some(why) = &mass_change {
        writeln!(log, "zbk: {why}")?;
        verdict.status = verdict.status.max(Status::Warning);
    }
    writeln!(
        log,
        "zbk: result {}, finished {}",
        verdict.status.as_str(),
        Expiry::At(Utc::now())
    )?;
    // No fsync: the snapshot that follows takes the log with everything else written so far.
    drop(log);

    prune_logs(&logs, config.settings.log_keep, &log_path)?;
    progress.set(host.as_str(), "snapshot", None);
    let (snapshot, log, expires) =
        snapshot(job, run, dataset, &log_path, started, &verdict, mass_change)?;
    let Verdict {
        status, mut why, ..
    } = verdict;
    let hosts = job.global.dataset.hosts();
    if let Err(e) = crate::commands::record_host(ctx, &hosts, dataset) {
        why.push(format!(
            "{e:#}; zbk check and zbk status list it in full until its next run"
        ));
    }

    let mut hook_failed = false;
    if let Some(failure) = hooks.post_run(&log, &snapshot, status, progress)? {
        why.push(failure);
        hook_failed = true;
    }
    Ok(Finished::Snapshot(Outcome {
        status,
        snapshot,
        expires,
        log,
        why,
        merged: false,
        hook_failed,
    }))
}

/// The run's snapshot, stamped under the tier its status gives, with the copy's figures and
/// any mass change; its name, its log's path, and its expiry.
fn snapshot(
    job: &Job,
    run: &HostRun,
    dataset: &HostDataset,
    log_path: &Path,
    started: DateTime<Utc>,
    verdict: &Verdict,
    mass_change: Option<String>,
) -> Result<(String, PathBuf, Expiry)> {
    let status = verdict.status;
    let (tier, retention) = if status == Status::Failed {
        (FAILED_TIER, run.failed_retention)
    } else {
        (job.request.tier.as_str(), run.retention)
    };
    let expires = retention.expiry_from(started);
    let mut props = stamp(tier, status, expires);
    if let Some(s) = &verdict.stats {
        if status.is_good() {
            props.push((PROP_FILES, s.files.to_string()));
        }
        props.push((PROP_CHANGES, s.to_property()));
    }
    props.extend(mass_change.map(|why| (PROP_MASS_CHANGE, why)));
    let (snapshot, log) = take_snapshot(job.ctx, dataset, log_path, started, status, &props)?;
    Ok((snapshot, log, expires))
}

/// The first remote source whose client ssh could not reach, and what ssh said; `None` when
/// every one answered. Only a client that is not always online is asked first.
fn unreachable(rsync: &Rsync, rsh: &str, config: &HostConfig) -> Result<Option<String>> {
    let user = config.settings.ssh.user.as_deref();
    for source in config.sources.iter().filter(|s| rsync_args::is_remote(s)) {
        let io_timeout = config.settings.rsync.io_timeout;
        if let Reach::Unreachable(line) = rsync.reach(rsh, source, user, io_timeout)? {
            return Ok(Some(format!("{source}: unreachable: {line}")));
        }
    }
    Ok(None)
}

/// Ends a run whose client could not be reached: no snapshot, the log kept in l/ under a name
/// that says so, and the attempt's time on the host's dataset for `zbk status`.
fn unreached(
    ctx: &Ctx,
    dataset: &HostDataset,
    config: &HostConfig,
    mut log: fs::File,
    log_path: &Path,
    started: DateTime<Utc>,
    why: String,
) -> Result<Finished> {
    writeln!(
        log,
        "zbk: result unreachable, finished {}; no snapshot",
        Expiry::At(Utc::now())
    )?;
    drop(log);
    let named = log_path.with_file_name(format!(
        "{}.unreachable.log",
        snapshot_name(started, false, 0)
    ));
    fs::rename(log_path, &named)?;
    let logs = named.parent().context("the run's log has no directory")?;
    prune_logs(logs, config.settings.log_keep, &named)?;
    ctx.zfs.set(
        dataset,
        PROP_LAST_UNREACHABLE,
        &Expiry::At(started).to_string(),
    )?;
    Ok(Finished::Unreachable { why, log: named })
}

/// The properties stamped on a run's snapshot, in the snapshot's own creating call.
fn stamp(tier: &str, status: Status, expires: Expiry) -> Vec<(&'static str, String)> {
    vec![
        (PROP_EXPIRES, expires.to_string()),
        (PROP_TIER, tier.to_string()),
        (PROP_STATUS, status.as_str().to_string()),
    ]
}

/// After waiting for another run of the same host: when that run produced a good snapshot
/// since this invocation started, stamp it with the longer expiry of the two and record both
/// tiers, instead of a second backup moments after the first.
fn merge_into_recent(
    ctx: &Ctx,
    global: &Global,
    host: &HostName,
    dataset: &HostDataset,
    request: &Request,
    retention: Retention,
) -> Result<Option<Outcome>> {
    let inv = ctx.zfs.host_inventory(&global.dataset.hosts(), dataset)?;
    let Some(newest) = inv.hosts.get(host).and_then(|h| h.snapshots.last()) else {
        return Ok(None);
    };
    let invoked = ctx.now.timestamp();
    let (Some(created), Some(status), Stamp::Valid(current)) =
        (newest.created, newest.status, &newest.stamp)
    else {
        return Ok(None);
    };
    if created.timestamp() < invoked || !status.is_good() {
        return Ok(None);
    }
    let expires = (*current).max(retention.expiry_from(created));
    let tiers = stamp::merge_tiers(newest.tier.as_deref().unwrap_or_default(), &request.tier);
    let full = Snapshot::listed(dataset, &newest.name)?;
    // The expiry first: should zbk die between the two, the snapshot lives longer, never shorter.
    if expires != *current {
        ctx.zfs.stamp(&full, PROP_EXPIRES, &expires.to_string())?;
    }
    if Some(tiers.as_str()) != newest.tier.as_deref() {
        ctx.zfs.stamp(&full, PROP_TIER, &tiers)?;
    }
    Ok(Some(Outcome {
        status,
        snapshot: newest.name.clone(),
        expires,
        log: ctx.layout.logs(host).join(format!("{}.log", newest.name)),
        why: Vec::new(),
        merged: true,
        hook_failed: false,
    }))
}

/// Checks every source before rsync may touch d/: that it is not empty (an unmounted disk,
/// a wrong path) and that guard.check_file is there. `Some(reason)` fails the run.
fn preflight(rsync: &Rsync, rsh: Option<&str>, config: &HostConfig) -> Result<Option<String>> {
    let check = config.settings.guard.check_file.as_deref();
    for source in &config.sources {
        let user = config.settings.ssh.user.as_deref();
        let looked = rsync.look(rsh, source, user, check, config.settings.rsync.io_timeout);
        let looked = match looked {
            Err(e) if e.is::<Overdue>() => return Ok(Some(format!("{source}: {e:#}"))),
            other => other?,
        };
        match looked {
            Looked::Ready => {}
            Looked::Empty => return Ok(Some(format!(
                "{source}: the source is empty: is it mounted? (guard: an empty source never becomes a good backup)"
            ))),
            Looked::NoCheckFile(check) => return Ok(Some(format!(
                "{source}: guard.check_file {} is missing: is the source mounted?",
                check.display()
            ))),
        }
    }
    Ok(None)
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
    dataset: &HostDataset,
    log: &Path,
    started: DateTime<Utc>,
    status: Status,
    props: &[(&str, String)],
) -> Result<(String, PathBuf)> {
    let mut log = log.to_path_buf();
    for attempt in 0..100 {
        let name = SnapName::for_run(started, status == Status::Failed, attempt);
        let named = log.with_file_name(format!("{name}.log"));
        fs::rename(&log, &named)?;
        log = named;
        if ctx.zfs.snapshot(&Snapshot::new(dataset, &name), props)? {
            return Ok((name.to_string(), log));
        }
    }
    bail!(
        "cannot find a free snapshot name for {dataset} at {}",
        Expiry::At(started)
    )
}
