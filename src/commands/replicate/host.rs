//! One host's replication: the sends in order, the stamps a decrypted stream cannot carry,
//! the holds moved on both sides, and the offsite expiry; a failed pipeline says which end
//! failed and that the copy is unchanged.

use crate::ctx::Ctx;
use crate::dataset::{HostDataset, Snapshot};
use crate::expiry::Retention;
use crate::lock::HostLock;
use crate::names::HostName;
use crate::replicate::stream::{self, Stream};
use crate::replicate::{self, Plan, Send, Target, Tree, REPLICA_TAG};
use crate::stamp::PROP_OFFSITE_EXPIRES;
use crate::sys::zfs_remote::{Replicated, ZfsAt};
use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a host waits for another replicate of it to finish.
const LOCK_WAIT: Duration = Duration::from_secs(4 * 3600);

/// The snapshots one send starts after (if incremental) and ends at.
pub(super) fn endpoints(
    dataset: &HostDataset,
    send: &Send,
) -> Result<(Option<Snapshot>, Snapshot)> {
    Ok(match send {
        Send::Full { snapshot } => (None, Snapshot::listed(dataset, snapshot)?),
        Send::Incremental { from, to } => (
            Some(Snapshot::listed(dataset, from)?),
            Snapshot::listed(dataset, to)?,
        ),
    })
}

/// One host as this invocation sends it: its snapshots here and there, and the stream.
pub(super) struct Sending<'a> {
    pub(super) dataset: &'a HostDataset,
    pub(super) src: &'a Tree,
    pub(super) there: Option<&'a Tree>,
    pub(super) stream: Stream,
}

/// Replicates one host and returns how many snapshots went over.
pub(super) fn replicate_host(
    ctx: &Ctx,
    at: &ZfsAt,
    target: &Target,
    sending: &Sending,
    offsite: Option<Retention>,
) -> Result<usize> {
    let Sending {
        dataset,
        src,
        there,
        stream,
    } = *sending;
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
    let copies = HostDataset::new(target.dataset(), host);
    let copy = |name: &str| Snapshot::listed(&copies, name);
    // Pinned before the send too, so a reap meanwhile cannot take the stream's base.
    if let Some(common) = &plan.common {
        here.hold(&tag, &snapshot(common)?)?;
    }
    // Read before the sends, so the stamps are those of the snapshots that went.
    let stamps = match stream {
        Stream::Decrypted => ctx.zfs.stamps(dataset)?,
        Stream::Plain | Stream::Raw => BTreeMap::new(),
    };
    for send in &plan.sends {
        if ctx.cancel.load(std::sync::atomic::Ordering::Relaxed) {
            bail!(
                "interrupted; the next replicate goes on from the last snapshot both sides share"
            );
        }
        let (from, to) = endpoints(dataset, send)?;
        match at.receive(&ctx.zfs, from.as_ref(), &to, stream, &copies)? {
            Replicated::Received => {}
            refused => bail!(pipeline_error(&copies, &plan, refused)),
        }
        if matches!(send, Send::Full { .. }) {
            // Inherited from TARGET/hosts when zbk made it; a target that is itself a zbk root
            // has a mounted hosts dataset, and a mounted copy drifts (atime) and mounts at boot.
            at.set(&copies, "mountpoint", "none")?;
        }
        if stream == Stream::Decrypted {
            carry_stamps(at, &stamps, dataset, &copies, src, send)?;
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

/// Sets on the copies what a decrypted stream could not carry: each sent snapshot's `zbk:*`
/// stamps, and with the first snapshot the host dataset's own (`zbk:retired`).
fn carry_stamps(
    at: &ZfsAt,
    stamps: &BTreeMap<String, Vec<(String, String)>>,
    dataset: &HostDataset,
    copies: &HostDataset,
    src: &Tree,
    send: &Send,
) -> Result<()> {
    let of = |name: &str| stamps.get(name).into_iter().flatten();
    if matches!(send, Send::Full { .. }) {
        for (prop, value) in of(dataset.as_str()) {
            at.set(copies, prop, value)?;
        }
    }
    for name in stream::carried(src, send) {
        let there = Snapshot::listed(copies, name)?;
        for (prop, value) in of(Snapshot::listed(dataset, name)?.as_str()) {
            at.stamp(&there, prop, value)?;
        }
    }
    Ok(())
}

/// Why a pipeline failed, with both ends' statuses; a receive refused because the copy changed
/// since its newest snapshot is named as a hand modification.
fn pipeline_error(dest: &HostDataset, plan: &Plan, refused: Replicated) -> String {
    match refused {
        Replicated::TargetModified => {
            let common = plan.common.as_deref().unwrap_or("its newest snapshot");
            format!(
                "{dest} was modified by hand since {common}, its newest snapshot (mounted and written?); zbk will not roll it back: keep what you need, then `zfs rollback {dest}@{common}`"
            )
        }
        Replicated::StreamMismatch(kind) => stream::mismatch(kind, dest.as_str()),
        Replicated::Received | Replicated::Failed(_) => {
            let parts: Vec<String> = match refused {
                Replicated::Failed(failed) => failed.iter().map(ToString::to_string).collect(),
                _ => Vec::new(),
            };
            format!(
                "replication stopped, the copy is unchanged and the next run goes on from the last snapshot both sides share: {}",
                parts.join("; ")
            )
        }
    }
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
        at.stamp(
            &Snapshot::listed(&dataset, name)?,
            PROP_OFFSITE_EXPIRES,
            &expiry.to_string(),
        )?;
    }
    Ok(())
}
