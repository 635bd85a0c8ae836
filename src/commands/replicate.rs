//! `zbk replicate`: per host, send what the target lacks with `zfs send -p | zfs receive -u`,
//! then pin the newest shared snapshot on the source with a hold, so the chain never breaks.
//!
//! The target is a second zbk root's dataset: copies land in TARGET/hosts/HOST, unmounted,
//! and that server's own `zbk reap` expires them by their received (or offsite) expiry.

use crate::cli::ReplicateArgs;
use crate::ctx::{usage, Ctx, EXIT_FAILED, EXIT_OK};
use crate::dataset::{HostDataset, Snapshot};
use crate::expiry::Retention;
use crate::inventory::PROP_OFFSITE_EXPIRES;
use crate::layout::hosts_dataset;
use crate::lock::HostLock;
use crate::names::HostName;
use crate::replicate::{self, check_ssh_option, Lag, Plan, Send, Target, Tree, REPLICA_TAG};
use crate::sys::exec::{pipe, Output};
use crate::sys::zfs_remote::{ZfsAt, MODIFIED};
use crate::text::counted;
use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a host waits for another replicate of it to finish.
const LOCK_WAIT: Duration = Duration::from_secs(4 * 3600);

/// What one invocation did, for the summary.
#[derive(Default)]
struct Tally {
    current: usize,
    sent_hosts: usize,
    sent_snapshots: usize,
    failed: usize,
}

pub fn run(ctx: &Ctx, args: ReplicateArgs) -> Result<u8> {
    let global = ctx.global()?;
    let target = Target::parse(&args.to).map_err(|e| usage(format!("--to: {e}")))?;
    for option in &args.ssh_option {
        check_ssh_option(option).map_err(|e| usage(format!("--ssh-option: {e}")))?;
    }
    if !args.ssh_option.is_empty() && matches!(target, Target::Local { .. }) {
        return Err(usage(
            "--ssh-option: only for a TARGET over ssh ([user@]server:dataset)",
        ));
    }
    let source_hosts = hosts_dataset(&global.dataset);
    if let Target::Local { dataset } = &target {
        let inside = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}/"));
        if inside(dataset, &source_hosts) || inside(&global.dataset, dataset) {
            return Err(usage(format!(
                "--to: {dataset} overlaps the backup tree {}; name a dataset outside it",
                global.dataset
            )));
        }
    }
    let mut names = Vec::new();
    for name in &args.hosts {
        names.push(HostName::parse(name).map_err(|e| usage(format!("HOST: {e}")))?);
    }

    let source = ZfsAt::local(&ctx.zfs)
        .listing(&source_hosts)?
        .ok_or_else(|| anyhow!("{source_hosts} does not exist: run `zbk init` first"))?;
    for name in &names {
        if !source.contains_key(name) {
            return Err(usage(format!(
                "no such host: {name}: see `zbk list`, or add it with `zbk add`"
            )));
        }
    }
    let hosts: Vec<HostName> = if names.is_empty() {
        source.keys().cloned().collect()
    } else {
        names
    };

    let at = ZfsAt::target(&ctx.zfs, &target, &args.ssh_option)?;
    let replicas = open_target(&at, &target, args.dry_run)?;

    let mut tally = Tally::default();
    for host in &hosts {
        let src = &source[host];
        let there = replicas.get(host);
        let dataset = HostDataset::listed(&global.dataset, host, &src.dataset);
        if args.dry_run {
            match dataset {
                Ok(dataset) => preview(ctx, &target, &dataset, src, there),
                Err(e) => println!("{host}: would fail: {e:#}"),
            }
            continue;
        }
        let done = dataset.and_then(|dataset| {
            replicate_host(
                ctx,
                &at,
                &target,
                &dataset,
                src,
                there,
                global.offsite_expiry,
            )
        });
        match done {
            Ok(0) => {
                tally.current += 1;
                if args.verbose {
                    println!("{host}: up to date on {target}");
                }
            }
            Ok(n) => {
                tally.sent_hosts += 1;
                tally.sent_snapshots += n;
                if args.verbose {
                    println!("{host}: sent {} to {target}", counted(n, "snapshot"));
                }
            }
            Err(e) => {
                tally.failed += 1;
                eprintln!("zbk: {host}: {e:#}");
            }
        }
    }
    if args.verbose && !args.dry_run {
        println!(
            "replicate: {} to {target}: {} up to date, {} sent ({}), {} failed",
            counted(hosts.len(), "host"),
            tally.current,
            tally.sent_hosts,
            counted(tally.sent_snapshots, "snapshot"),
            tally.failed
        );
    }
    Ok(if tally.failed > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

/// The replicas already on the target; creates TARGET/hosts the first time. A TARGET that does
/// not exist is a usage error: a typo must not grow a new tree.
fn open_target(at: &ZfsAt, target: &Target, dry_run: bool) -> Result<BTreeMap<HostName, Tree>> {
    let hosts = target.hosts_dataset();
    if let Some(replicas) = at.listing(&hosts)? {
        return Ok(replicas);
    }
    if !at.exists(target.dataset())? {
        return Err(usage(format!(
            "--to: {target}: dataset {} does not exist; create it first (zfs create -o mountpoint=none {})",
            target.dataset(),
            target.dataset()
        )));
    }
    if !dry_run {
        at.create_unmounted(&hosts)?;
    }
    Ok(BTreeMap::new())
}

/// Prints what a run would send for one host, and how far its copy lags.
fn preview(ctx: &Ctx, target: &Target, dataset: &HostDataset, src: &Tree, there: Option<&Tree>) {
    let host = dataset.host();
    let lag = replicate::lag(src, there);
    match replicate::plan(src, there) {
        Err(refused) => println!("{host}: {}; would fail: {refused}", lag.describe(ctx.now)),
        Ok(plan) => {
            println!("{host}: {}", lag.describe(ctx.now));
            for send in &plan.sends {
                let from_cmd = match endpoints(dataset, send) {
                    Ok((from, to)) => ctx.zfs.send_cmd(from.as_ref(), &to).to_string(),
                    Err(e) => format!("({e:#})"),
                };
                println!(
                    "  {from_cmd} | zfs receive -u {}",
                    target.host_dataset(host)
                );
            }
        }
    }
}

/// The snapshots one send starts after (if incremental) and ends at.
fn endpoints(dataset: &HostDataset, send: &Send) -> Result<(Option<Snapshot>, Snapshot)> {
    Ok(match send {
        Send::Full { snapshot } => (None, Snapshot::listed(dataset, snapshot)?),
        Send::Incremental { from, to } => (
            Some(Snapshot::listed(dataset, from)?),
            Snapshot::listed(dataset, to)?,
        ),
    })
}

/// Replicates one host and returns how many snapshots went over.
fn replicate_host(
    ctx: &Ctx,
    at: &ZfsAt,
    target: &Target,
    dataset: &HostDataset,
    src: &Tree,
    there: Option<&Tree>,
    offsite: Option<Retention>,
) -> Result<usize> {
    let host = dataset.host();
    let plan: Plan = replicate::plan(src, there).map_err(|refused| anyhow!("{refused}"))?;
    let lock_path = ctx
        .layout
        .etc()
        .join("locks")
        .join(format!("{host}.replicate.lock"));
    let _lock = HostLock::acquire(&lock_path, LOCK_WAIT, &ctx.cancel)?;
    let tag = target.hold_tag();
    let here = ZfsAt::local(&ctx.zfs);
    let snapshot = |name: &str| Snapshot::listed(dataset, name);
    let dest = target.host_dataset(host);
    let copies = HostDataset::new(target.dataset(), host);
    let copy = |name: &str| Snapshot::listed(&copies, name);
    // Pinned before the send too, so a reap meanwhile cannot take the stream's base.
    if let Some(common) = &plan.common {
        here.hold(&tag, &snapshot(common)?)?;
    }
    for send in &plan.sends {
        if ctx.cancel.load(std::sync::atomic::Ordering::Relaxed) {
            bail!(
                "interrupted; the next replicate goes on from the last snapshot both sides share"
            );
        }
        let (from, to) = endpoints(dataset, send)?;
        let send_cmd = ctx.zfs.send_cmd(from.as_ref(), &to);
        let receive_cmd = at.receive_cmd(&dest);
        let (sent, received) = pipe(&send_cmd, &receive_cmd)?;
        if !(sent.status.success() && received.status.success()) {
            bail!(pipeline_error(
                &dest,
                &plan,
                &send_cmd,
                &sent,
                &receive_cmd,
                &received
            ));
        }
        if matches!(send, Send::Full { .. }) {
            // Inherited from TARGET/hosts when zbk made it; a target that is itself a zbk root
            // has a mounted hosts dataset, and a mounted copy drifts (atime) and mounts at boot.
            at.set(&dest, "mountpoint", "none")?;
        }
    }
    if src.retired {
        // No run will add to a retired host, and a hold would keep reap from ever removing it.
        for name in replicate::stale_holds(src, None) {
            here.release(&tag, &snapshot(name)?)?;
        }
        for name in there
            .map(|t| replicate::stale_holds(t, None))
            .unwrap_or_default()
        {
            at.release(REPLICA_TAG, &copy(name)?)?;
        }
    } else if let Some(newest) = &plan.newest {
        here.hold(&tag, &snapshot(newest)?)?;
        for name in replicate::stale_holds(src, Some(newest)) {
            here.release(&tag, &snapshot(name)?)?;
        }
        // The target keeps the base of the next increment too, whatever its own reap decides.
        at.hold(REPLICA_TAG, &copy(newest)?)?;
        for name in there
            .map(|t| replicate::stale_holds(t, Some(newest)))
            .unwrap_or_default()
        {
            at.release(REPLICA_TAG, &copy(name)?)?;
        }
    }
    if let Some(minimum) = offsite {
        stamp_offsite(at, target, host, minimum)?;
    }
    Ok(plan.count)
}

/// Why a pipeline failed, with both ends' statuses; a receive refused because the copy changed
/// since its newest snapshot is named as a hand modification.
fn pipeline_error(
    dest: &str,
    plan: &Plan,
    send_cmd: &crate::sys::exec::Cmd,
    sent: &Output,
    receive_cmd: &crate::sys::exec::Cmd,
    received: &Output,
) -> String {
    if received.stderr.contains(MODIFIED) {
        let common = plan.common.as_deref().unwrap_or("its newest snapshot");
        return format!(
            "{dest} was modified by hand since {common}, its newest snapshot (mounted and written?); zbk will not roll it back: keep what you need, then `zfs rollback {dest}@{common}`"
        );
    }
    let mut parts = Vec::new();
    if !received.status.success() {
        parts.push(receive_cmd.failed(received).to_string());
    }
    if !sent.status.success() {
        parts.push(send_cmd.failed(sent).to_string());
    }
    format!(
        "replication stopped, the copy is unchanged and the next run goes on from the last snapshot both sides share: {}",
        parts.join("; ")
    )
}

/// Stamps `zbk:offsite-expires` where `offsite_expiry` keeps a copy longer than its own expiry.
fn stamp_offsite(at: &ZfsAt, target: &Target, host: &HostName, minimum: Retention) -> Result<()> {
    let listing = at
        .listing_under(&target.host_dataset(host), &target.hosts_dataset())?
        .unwrap_or_default();
    let Some(tree) = listing.get(host) else {
        return Ok(());
    };
    let dataset = HostDataset::listed(target.dataset(), host, &tree.dataset)?;
    for (name, expiry) in replicate::offsite_stamps(tree, minimum) {
        at.set(
            Snapshot::listed(&dataset, name)?.as_str(),
            PROP_OFFSITE_EXPIRES,
            &expiry.to_string(),
        )?;
    }
    Ok(())
}

/// Each host's replication lag to `target`, from one listing of each side.
// Not called by replicate itself: it is the entry point for `zbk status`.
#[allow(dead_code)]
pub fn lags(
    ctx: &Ctx,
    dataset: &str,
    target: &Target,
    ssh_options: &[String],
) -> Result<Vec<(HostName, Lag)>> {
    let source = ZfsAt::local(&ctx.zfs)
        .listing(&hosts_dataset(dataset))?
        .unwrap_or_default();
    let replicas = ZfsAt::target(&ctx.zfs, target, ssh_options)?
        .listing(&target.hosts_dataset())?
        .unwrap_or_default();
    Ok(source
        .iter()
        .map(|(host, tree)| (host.clone(), replicate::lag(tree, replicas.get(host))))
        .collect())
}
