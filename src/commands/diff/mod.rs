//! `zbk diff`: what changed between two snapshots of a host, or a snapshot and d/ now.
//!
//! On OpenZFS the changed paths come from `zfs diff`, which reads them from metadata; on
//! zfs-fuse, which has none, the two trees are walked and compared, each snapshot read
//! through the read-only view `zbk restore` uses.

mod show;

use crate::cli::DiffArgs;
use crate::commands::output::print_table;
use crate::commands::view::SnapshotView;
use crate::ctx::{usage, Ctx, EXIT_OK};
use crate::dataset::{HostDataset, RootDataset};
use crate::diff::{self, Entry, Meta};
use crate::flavour::Flavour;
use crate::inventory::{Host, Snapshot};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// TO's word for the host's d/ as it is now.
const LIVE: &str = "live";

/// One side of the comparison, readable for as long as it lives.
enum Tree<'a> {
    Snapshot(SnapshotView<'a>),
    /// The host's dataset itself.
    Live(PathBuf),
}

impl Tree<'_> {
    fn data(&self) -> PathBuf {
        match self {
            Tree::Snapshot(view) => view.data(),
            Tree::Live(root) => root.join("d"),
        }
    }
}

pub fn run(ctx: &Ctx, args: DiffArgs) -> Result<u8> {
    if args.snapshots.len() > 2 {
        return Err(usage("give at most two snapshots: FROM and TO"));
    }
    let prefix = match &args.path {
        Some(p) => {
            let rel = crate::restore::client_path(p).map_err(|e| {
                usage(format!(
                    "--path: {}",
                    e.to_string().trim_start_matches("PATH ")
                ))
            })?;
            Path::new("/").join(rel)
        }
        None => PathBuf::from("/"),
    };
    let global = ctx.global()?;
    let inv = ctx.zfs.inventory(&global.dataset.hosts())?;
    let name = super::chosen_hosts(&inv, std::slice::from_ref(&args.host))?.remove(0);
    let host = &inv.hosts[&name];
    let (from, to) = choose(
        host,
        args.snapshots.first().map(String::as_str),
        args.snapshots.get(1).map(String::as_str),
    )
    .map_err(usage)?;
    let prefix_bytes = prefix.as_os_str().as_bytes();

    let mut entries = if from.name == to.map_or("", |t| t.name.as_str()) {
        Vec::new()
    } else if ctx.zfs.flavour() == Flavour::OpenZfs {
        by_zfs_diff(ctx, &global.dataset, host, from, to)?
    } else {
        let before = Tree::Snapshot(SnapshotView::open(ctx, &global.dataset, host, from)?);
        let after = match to {
            Some(snap) => Tree::Snapshot(SnapshotView::open(ctx, &global.dataset, host, snap)?),
            None => Tree::Live(ctx.layout.host(&name)),
        };
        // Both walks at once: each mostly waits for the filesystem, as rsync's two sides do.
        let (old, new) = std::thread::scope(|scope| {
            let old = scope.spawn(|| walk(&before.data(), prefix_bytes));
            let new = walk(&after.data(), prefix_bytes);
            (old.join(), new)
        });
        let old = old.map_err(|_| anyhow::anyhow!("the walk of {} panicked", from.name))??;
        diff::compare(&old, &new?)
    };
    entries.retain(|e| {
        diff::under(&e.path, prefix_bytes)
            || e.to
                .as_deref()
                .is_some_and(|t| diff::under(t, prefix_bytes))
    });
    entries.sort_by(|a, b| a.path.cmp(&b.path).then(a.change.cmp(&b.change)));

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if args.stat {
        let stats = diff::stat(&entries);
        if args.json {
            for (dir, s) in &stats {
                serde_json::to_writer(&mut out, &show::json_stat(dir, s))?;
                writeln!(out)?;
            }
        } else {
            let mut table = vec![["BYTES", "+", "-", "M", "m", "R", "DIRECTORY"].map(String::from)];
            for (dir, s) in &stats {
                table.push([
                    s.bytes.to_string(),
                    s.created.to_string(),
                    s.deleted.to_string(),
                    s.modified.to_string(),
                    s.metadata.to_string(),
                    s.renamed.to_string(),
                    show::escape(dir),
                ]);
            }
            drop(out);
            print_table(&table);
            return Ok(EXIT_OK);
        }
    } else {
        for e in &entries {
            if args.json {
                serde_json::to_writer(&mut out, &show::json_entry(e))?;
                writeln!(out)?;
            } else {
                writeln!(out, "{}", show::text_line(e))?;
            }
        }
    }
    out.flush()?;
    Ok(EXIT_OK)
}

/// FROM and TO (`None`: live) by name, or by default the two newest good snapshots; FROM
/// alone is compared with the newest good one.
fn choose<'a>(
    host: &'a Host,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(&'a Snapshot, Option<&'a Snapshot>)> {
    let named = |which: &str, name: &str| {
        host.snapshots
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{which}: {} has no snapshot {:?}: see `zbk list {}`",
                    host.name,
                    name.escape_debug().to_string(),
                    host.name
                )
            })
    };
    let good: Vec<&Snapshot> = host.snapshots.iter().filter(|s| s.is_good()).collect();
    let newest = || {
        good.last()
            .copied()
            .ok_or_else(|| anyhow::anyhow!("{} has no good snapshot to compare with", host.name))
    };
    match (from, to) {
        (None, _) => match good[..] {
            [.., a, b] => Ok((a, Some(b))),
            _ => bail!(
                "{} has fewer than two good snapshots: name FROM, or compare one with `live`",
                host.name
            ),
        },
        (Some(LIVE), _) => bail!("FROM: must be a snapshot; only TO may be {LIVE}"),
        (Some(f), None) => Ok((named("FROM", f)?, Some(newest()?))),
        (Some(f), Some(LIVE)) => Ok((named("FROM", f)?, None)),
        (Some(f), Some(t)) => {
            let (f, t) = (named("FROM", f)?, named("TO", t)?);
            if f.createtxg > t.createtxg {
                bail!(
                    "FROM {} is newer than TO {}: give the older snapshot first",
                    f.name,
                    t.name
                );
            }
            Ok((f, Some(t)))
        }
    }
}

/// The entries `zfs diff` reports, with sizes read from each side through `.zfs/snapshot`.
fn by_zfs_diff(
    ctx: &Ctx,
    dataset: &RootDataset,
    host: &Host,
    from: &Snapshot,
    to: Option<&Snapshot>,
) -> Result<Vec<Entry>> {
    let named = |s: &Snapshot| host.full_snapshot(dataset, &s.name);
    let text = match to {
        Some(s) => ctx.zfs.diff(&named(from)?, &named(s)?)?,
        None => ctx.zfs.diff(
            &named(from)?,
            &HostDataset::listed(dataset, &host.name, &host.dataset)?,
        )?,
    };
    let before = Tree::Snapshot(SnapshotView::open(ctx, dataset, host, from)?);
    let after = match to {
        Some(snap) => Tree::Snapshot(SnapshotView::open(ctx, dataset, host, snap)?),
        None => Tree::Live(ctx.layout.host(&host.name)),
    };
    let (old, new) = (before.data(), after.data());
    let live_data = ctx.layout.data(&host.name);
    let mut entries = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let Some(raw) = diff::zfs_diff::parse_line(line) else {
            eprintln!(
                "zbk: warning: zfs diff: an unreadable line: {}",
                show::escape(line.as_bytes())
            );
            continue;
        };
        let entry = diff::zfs_diff::entry(
            raw,
            live_data.as_os_str().as_bytes(),
            |p| meta(&inside(&old, p)),
            |p| meta(&inside(&new, p)),
        );
        entries.extend(entry);
    }
    Ok(entries)
}

/// A client path's place under a side's d/.
fn inside(data: &Path, client: &[u8]) -> PathBuf {
    let rel = client.strip_prefix(b"/").unwrap_or(client);
    data.join(std::ffi::OsStr::from_bytes(rel))
}

/// What `lstat` says of a path, in the terms a diff compares; `None` when it is not there.
fn meta(path: &Path) -> Option<Meta> {
    std::fs::symlink_metadata(path).ok().map(|m| from_stat(&m))
}

fn from_stat(m: &std::fs::Metadata) -> Meta {
    let t = m.file_type();
    let kind = if t.is_dir() {
        '/'
    } else if t.is_symlink() {
        '@'
    } else if t.is_fifo() {
        '|'
    } else if t.is_socket() {
        '='
    } else if t.is_block_device() {
        'B'
    } else if t.is_char_device() {
        'C'
    } else {
        'F'
    };
    Meta {
        kind,
        size: m.len(),
        mtime: (m.mtime(), m.mtime_nsec()),
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
    }
}

/// Every path under `data` at and below the client path `prefix`, by client path. The walk
/// starts at the top and goes down only through real directories, never through a symlink,
/// so a client's symlink on the way to `prefix` cannot lead it out of the snapshot.
fn walk(data: &Path, prefix: &[u8]) -> Result<BTreeMap<Vec<u8>, Meta>> {
    let mut out = BTreeMap::new();
    let Some(m) = meta(data) else {
        return Ok(out);
    };
    let mut stack = vec![(b"/".to_vec(), data.to_path_buf(), m)];
    while let Some((client, path, m)) = stack.pop() {
        let inside = diff::under(&client, prefix);
        if m.kind == '/' && (inside || diff::under(prefix, &client)) {
            let entries = std::fs::read_dir(&path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            for entry in entries {
                let entry = entry?;
                // Relative to the open directory (fstatat), not the whole path again; never
                // through a symlink.
                let Ok(cm) = entry.metadata().map(|m| from_stat(&m)) else {
                    continue;
                };
                let mut name = client.clone();
                if name != b"/" {
                    name.push(b'/');
                }
                name.extend_from_slice(entry.file_name().as_bytes());
                stack.push((name, entry.path(), cm));
            }
        }
        if inside {
            out.insert(client, m);
        }
    }
    Ok(out)
}
