//! `zbk versions`: the distinct versions of one file across a host's snapshots, told apart by
//! size and mtime as httm does. Snapshots are opened one at a time (on zfs-fuse, one
//! temporary clone at a time), so the cost grows with their number but never piles up.

use super::output::print_table;
use super::view::{check_inside, SnapshotView};
use crate::cli::VersionsArgs;
use crate::ctx::{usage, Ctx, EXIT_FAILED, EXIT_OK};
use crate::expiry::Expiry;
use crate::restore::{client_path, distinct, Seen};
use crate::text::human_bytes;
use anyhow::Result;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Size and mtime (in nanoseconds) of what a snapshot's `d/` holds at `rel`, never through a
/// symlink.
fn look(data: &Path, rel: &Path, shown: &str) -> Option<(u64, i64)> {
    check_inside(data, rel, shown, "").ok()?;
    let meta = std::fs::symlink_metadata(data.join(rel)).ok()?;
    // Nanoseconds where the filesystem keeps them (OpenZFS), so two versions written within one
    // second stay two; zfs-fuse's whole seconds give nanoseconds of zero.
    let nanos = meta
        .mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec());
    Some((meta.len(), nanos))
}

pub fn run(ctx: &Ctx, args: VersionsArgs) -> Result<u8> {
    let rel = client_path(&args.path).map_err(usage)?;
    if rel.as_os_str().is_empty() {
        return Err(usage("PATH \"/\": name a file"));
    }
    let global = ctx.global()?;
    let inv = ctx.zfs.inventory(&global.dataset.hosts())?;
    let name = super::chosen_hosts(&inv, std::slice::from_ref(&args.host))?.remove(0);
    let host = &inv.hosts[&name];
    let mut seen: Vec<Seen> = Vec::new();
    for snap in &host.snapshots {
        match SnapshotView::open(ctx, &global.dataset, host, snap) {
            Ok(view) => seen.push((snap.name.clone(), look(&view.data(), &rel, &args.path))),
            Err(e) => eprintln!("zbk: warning: {name}@{}: {e:#}; skipped", snap.name),
        }
    }
    // The live copy is what the next snapshot will hold, unless a run is writing it now.
    let live = look(&ctx.layout.data(&name), &rel, &args.path);
    seen.push(("(live d/)".to_string(), live));
    let versions = distinct(&seen);
    if versions.is_empty() {
        eprintln!("zbk: {}: in no snapshot of {name}", args.path);
        return Ok(EXIT_FAILED);
    }
    let mut table = vec![["MTIME", "SIZE", "FIRST", "LAST", "SNAPSHOTS"].map(String::from)];
    for v in &versions {
        let mtime = Expiry::At(chrono::DateTime::from_timestamp_nanos(v.mtime)).to_string();
        table.push([
            mtime,
            human_bytes(v.size),
            v.first.clone(),
            v.last.clone(),
            v.snapshots.to_string(),
        ]);
    }
    print_table(&table);
    Ok(EXIT_OK)
}
