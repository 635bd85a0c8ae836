//! `zbk replicate`: per host, send what the target lacks with `zfs send -p | zfs receive -u`,
//! then pin the newest shared snapshot on the source with a hold, so the chain never breaks.
//!
//! The target is a second zbk root's dataset: copies land in TARGET/hosts/HOST, unmounted,
//! and that server's own `zbk reap` expires them by their received (or offsite) expiry.
//! Encrypted hosts go raw (`--raw`), or decrypted only where asked; `host.rs` replicates one.

mod host;

use crate::cli::ReplicateArgs;
use crate::crypt::KeyState;
use crate::ctx::{usage, Ctx, EXIT_FAILED, EXIT_OK};
use crate::dataset::{HostDataset, HostsDataset, RootDataset};
use crate::names::HostName;
use crate::replicate::stream::{self, Stream};
use crate::replicate::{self, check_ssh_option, Lag, Target, Tree};
use crate::sys::zfs_remote::ZfsAt;
use crate::text::counted;
use anyhow::{anyhow, Result};
use host::{endpoints, replicate_host, Sending};
use std::collections::BTreeMap;

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
    let (target, names) = checked_args(&args, &global.dataset)?;
    let source_hosts = global.dataset.hosts();
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
    let streams = streams(ctx, &args, &at, &target, &source_hosts, &source, &hosts)?;
    let replicas = open_target(&at, &target, args.dry_run)?;

    let mut tally = Tally::default();
    for host in &hosts {
        let src = &source[host];
        let there = replicas.get(host);
        let dataset = HostDataset::listed(&global.dataset, host, &src.dataset);
        let stream = streams[host];
        if args.dry_run {
            match dataset {
                Ok(dataset) => preview(ctx, &target, &dataset, src, there, stream),
                Err(e) => println!("{host}: would fail: {e:#}"),
            }
            continue;
        }
        let done = dataset.and_then(|dataset| {
            let sending = Sending {
                dataset: &dataset,
                src,
                there,
                stream,
            };
            replicate_host(ctx, &at, &target, &sending, global.offsite_expiry)
        });
        tally.count(host, &target, done, args.verbose);
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

impl Tally {
    /// Counts how one host's replication ended, and says so when verbose or failed.
    fn count(&mut self, host: &HostName, target: &Target, done: Result<usize>, verbose: bool) {
        match done {
            Ok(0) => {
                self.current += 1;
                if verbose {
                    println!("{host}: up to date on {target}");
                }
            }
            Ok(n) => {
                self.sent_hosts += 1;
                self.sent_snapshots += n;
                if verbose {
                    println!("{host}: sent {} to {target}", counted(n, "snapshot"));
                }
            }
            Err(e) => {
                self.failed += 1;
                eprintln!("zbk: {host}: {e:#}");
            }
        }
    }
}

/// The target and the hosts named, with every flag checked before anything is listed.
fn checked_args(args: &ReplicateArgs, root: &RootDataset) -> Result<(Target, Vec<HostName>)> {
    let target = Target::parse(&args.to).map_err(|e| usage(format!("--to: {e}")))?;
    for option in &args.ssh_option {
        check_ssh_option(option).map_err(|e| usage(format!("--ssh-option: {e}")))?;
    }
    if !args.ssh_option.is_empty() && matches!(target, Target::Local { .. }) {
        return Err(usage(
            "--ssh-option: only for a TARGET over ssh ([user@]server:dataset)",
        ));
    }
    let source_hosts = root.hosts();
    if let Target::Local { dataset } = &target {
        let inside = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}/"));
        if inside(dataset.as_str(), source_hosts.as_str())
            || inside(root.as_str(), dataset.as_str())
        {
            return Err(usage(format!(
                "--to: {dataset} overlaps the backup tree {}; name a dataset outside it",
                root
            )));
        }
    }
    if args.raw && args.plaintext {
        return Err(usage("--raw and --plaintext: give one of them"));
    }
    let mut names = Vec::new();
    for name in &args.hosts {
        names.push(HostName::parse(name).map_err(|e| usage(format!("HOST: {e}")))?);
    }
    Ok((target, names))
}

/// How each host travels, decided for all before anything is sent: `--raw` only from
/// encrypted hosts, and an encrypted host decrypted only to a target that encrypts it again,
/// or with `--plaintext`.
fn streams(
    ctx: &Ctx,
    args: &ReplicateArgs,
    at: &ZfsAt,
    target: &Target,
    source_hosts: &HostsDataset,
    source: &BTreeMap<HostName, Tree>,
    hosts: &[HostName],
) -> Result<BTreeMap<HostName, Stream>> {
    let keys = ctx.zfs.key_states(source_hosts, true)?;
    let encrypted = |host: &HostName| {
        keys.get(&source[host].dataset)
            .is_some_and(KeyState::encrypted)
    };
    let target_encrypts = !args.raw
        && !args.plaintext
        && hosts.iter().any(encrypted)
        && at.encrypts(&target.hosts_dataset())?;
    let mut out = BTreeMap::new();
    for host in hosts {
        let stream = stream::choose(args.raw, args.plaintext, encrypted(host), target_encrypts)
            .map_err(|e| usage(format!("{host}: {e}")))?;
        out.insert(host.clone(), stream);
    }
    Ok(out)
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
fn preview(
    ctx: &Ctx,
    target: &Target,
    dataset: &HostDataset,
    src: &Tree,
    there: Option<&Tree>,
    stream: Stream,
) {
    let host = dataset.host();
    let lag = replicate::lag(src, there);
    match replicate::plan(src, there) {
        Err(refused) => println!("{host}: {}; would fail: {refused}", lag.describe(ctx.now)),
        Ok(plan) => {
            println!("{host}: {}", lag.describe(ctx.now));
            for send in &plan.sends {
                let from_cmd = match endpoints(dataset, send) {
                    Ok((from, to)) => ctx.zfs.send_line(from.as_ref(), &to, stream),
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

/// Each host's replication lag to `target`, from one listing of each side.
// Not called by replicate itself: it is the entry point for `zbk status`.
#[allow(dead_code)]
pub fn lags(
    ctx: &Ctx,
    dataset: &RootDataset,
    target: &Target,
    ssh_options: &[String],
) -> Result<Vec<(HostName, Lag)>> {
    let source = ZfsAt::local(&ctx.zfs)
        .listing(&dataset.hosts())?
        .unwrap_or_default();
    let replicas = ZfsAt::target(&ctx.zfs, target, ssh_options)?
        .listing(&target.hosts_dataset())?
        .unwrap_or_default();
    Ok(source
        .iter()
        .map(|(host, tree)| (host.clone(), replicate::lag(tree, replicas.get(host))))
        .collect())
}
