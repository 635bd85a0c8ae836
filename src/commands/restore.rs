//! `zbk restore`: copies files and directories out of one snapshot with rsync, to a local
//! directory or back to the client over ssh.
//!
//! The snapshot is read through `.zfs/snapshot` where the pool offers it (OpenZFS), and
//! otherwise (zfs-fuse) through a temporary read-only clone outside the hosts tree, which is
//! destroyed however the restore ends.

use crate::cli::RestoreArgs;
use crate::config::HostConfig;
use crate::ctx::{usage, Ctx, EXIT_OK};
use crate::dataset::RestoreClone;
use crate::expiry::parse_time;
use crate::inventory::{Host, Snapshot};
use crate::layout::hosts_dataset;
use crate::restore::{self, Choice};
use crate::sys::rsync::Rsync;
use crate::sys::ssh::{self, Ssh};
use crate::sys::zfs::Zfs;
use anyhow::{anyhow, bail, Result};
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Clones made by this process, for unique names when `versions` opens one per snapshot.
static CLONES: AtomicUsize = AtomicUsize::new(0);

/// A snapshot's files, readable at `root` for as long as this lives.
pub struct SnapshotView<'a> {
    zfs: &'a Zfs,
    /// The temporary clone and its mountpoint, when the snapshot had to be cloned.
    clone: Option<(RestoreClone, PathBuf)>,
    pub root: PathBuf,
}

impl<'a> SnapshotView<'a> {
    /// Opens `host@snap`: `.zfs/snapshot/<snap>` when it is there, else a read-only clone
    /// `<dataset>/restore/<host>-<pid>-<n>` mounted under `<root>/etc/restore/`, where neither
    /// `zbk list` nor `zbk reap` looks.
    pub fn open(
        ctx: &'a Ctx,
        dataset: &str,
        host: &Host,
        snap: &Snapshot,
    ) -> Result<SnapshotView<'a>> {
        if let Some(root) = dot_zfs(ctx, host, snap) {
            return Ok(SnapshotView {
                zfs: &ctx.zfs,
                clone: None,
                root,
            });
        }
        let parent = RestoreClone::parent(dataset);
        if !ctx.zfs.exists(&parent)? {
            let made = ctx
                .zfs
                .create(&parent, &[("mountpoint", "none"), ("canmount", "off")]);
            // Another restore may have made it meanwhile.
            if made.is_err() && !ctx.zfs.exists(&parent)? {
                made?;
            }
        }
        let clone = RestoreClone::new(
            dataset,
            &host.name,
            std::process::id(),
            CLONES.fetch_add(1, Ordering::Relaxed),
        );
        let snapshot = crate::dataset::Snapshot::of(dataset, host, &snap.name)?;
        let mountpoint = ctx.layout.etc().join("restore").join(clone.leaf());
        fs_err::create_dir_all(&mountpoint)?;
        // The guard exists before the clone does, so a clone made but not mounted still goes.
        let view = SnapshotView {
            zfs: &ctx.zfs,
            clone: Some((clone.clone(), mountpoint.clone())),
            root: mountpoint.clone(),
        };
        ctx.zfs.clone_readonly(&snapshot, &clone, &mountpoint)?;
        if !view.root.join("d").is_dir() {
            bail!(
                "{}@{}: no d/ in the snapshot (is {} mounted?)",
                host.name,
                snap.name,
                view.root.display()
            );
        }
        Ok(view)
    }

    /// Where the client's files are in this snapshot.
    pub fn data(&self) -> PathBuf {
        self.root.join("d")
    }
}

/// The snapshot's own directory under `.zfs/snapshot` when the pool offers one (OpenZFS, with
/// `snapdir` visible or hidden alike: hidden only leaves it out of directory listings).
fn dot_zfs(ctx: &Ctx, host: &Host, snap: &Snapshot) -> Option<PathBuf> {
    let root = ctx
        .layout
        .host(&host.name)
        .join(".zfs/snapshot")
        .join(&snap.name);
    root.join("d").is_dir().then_some(root)
}

impl Drop for SnapshotView<'_> {
    fn drop(&mut self) {
        if let Some((clone, mountpoint)) = &self.clone {
            // A clone left behind would keep its snapshot from ever being reaped.
            if let Err(e) = self.zfs.destroy_clone(clone) {
                eprintln!("zbk: warning: cannot destroy the temporary clone {clone}: {e:#}; destroy it with `zfs destroy {clone}`");
            }
            let _ = std::fs::remove_dir(mountpoint);
        }
    }
}

/// Checks that a client path is in the snapshot without passing through a symlink, which
/// rsync would follow out of the snapshot; the last component may itself be a symlink, which
/// rsync copies as one.
pub fn check_inside(data: &Path, rel: &Path, shown: &str, snap: &str) -> Result<()> {
    let parts: Vec<_> = rel.components().collect();
    let mut at = data.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        let meta = std::fs::symlink_metadata(&at)
            .map_err(|_| anyhow!("PATH {shown}: not in snapshot {snap}"))?;
        let inner = i + 1 < parts.len();
        if inner && meta.file_type().is_symlink() {
            let prefix = Path::new("/").join(at.strip_prefix(data).unwrap_or(&at));
            bail!(
                "PATH {shown}: {} is a symlink in snapshot {snap}; restore the path it points to instead",
                prefix.display()
            );
        }
        if inner && !meta.is_dir() {
            bail!("PATH {shown}: not in snapshot {snap}");
        }
    }
    Ok(())
}

/// Where the files go.
enum Dest {
    Local(PathBuf),
    /// `[user@]host` and the directory on the client the client paths are recreated under.
    Client(String, String),
}

pub fn run(ctx: &Ctx, args: RestoreArgs) -> Result<u8> {
    let (paths, at) = checked_args(&args)?;
    let choice = match (&args.snapshot, at) {
        (Some(name), None) => Choice::Named(name),
        (None, Some(at)) => Choice::At(at),
        _ => Choice::Newest,
    };
    let global = ctx.global()?;
    if let Some(dir) = &args.to {
        refuse_inside_backups(dir, &ctx.layout.root.join("hosts"))?;
    }
    let inv = ctx.zfs.inventory(&hosts_dataset(&global.dataset))?;
    let name = super::chosen_hosts(&inv, std::slice::from_ref(&args.host))?.remove(0);
    let host = &inv.hosts[&name];
    if let Some(key) = super::key_not_loaded(ctx, &host.dataset) {
        bail!(
            "{name}: its encryption key is not loaded, so its snapshots cannot be read: `{}`, then restore again",
            key.load_hint()
        );
    }
    let config = host_config(ctx, &global, host, &args)?;
    let snap = restore::choose(host, choice).map_err(usage)?;
    let mut rsync_args = restore::rsync_args(&config.settings.rsync);
    let dest = destination(&args, &config, &name, &mut rsync_args)?;
    let dest_arg = match &dest {
        Dest::Local(dir) => format!("{}/", dir.display()),
        Dest::Client(client, target) => format!("{client}:{}/", target.trim_end_matches('/')),
    };
    let rsync = Rsync::find()?;
    if snap.status.is_some_and(|s| !s.is_good()) {
        eprintln!(
            "zbk: warning: {name}@{} is from a failed run and may be incomplete",
            snap.name
        );
    }
    if args.dry_run {
        // The directory the restore will read: .zfs/snapshot, or the clone it would make.
        let (data, how) = match dot_zfs(ctx, host, snap) {
            Some(root) => (root.join("d"), "read through .zfs/snapshot"),
            None => (
                ctx.layout
                    .etc()
                    .join("restore")
                    .join(format!("{name}-{}-0", std::process::id()))
                    .join("d"),
                "read through a temporary read-only clone",
            ),
        };
        println!("# {name}@{}, {how} at {}", snap.name, data.display());
        let line = rsync.restore_line(&rsync_args, &restore::sources(&data, &paths), &dest_arg);
        println!("{line}");
        return Ok(EXIT_OK);
    }
    let view = SnapshotView::open(ctx, &global.dataset, host, snap)?;
    let data = view.data();
    for (rel, shown) in paths.iter().zip(&args.paths) {
        check_inside(&data, rel, shown, &format!("{name}@{}", snap.name)).map_err(usage)?;
    }
    if let Dest::Local(dir) = &dest {
        fs_err::create_dir_all(dir)?;
    }
    rsync.restore(&rsync_args, &restore::sources(&data, &paths), &dest_arg)?;
    drop(view);
    println!(
        "restored {} from {name}@{} to {}",
        args.paths.join(" "),
        snap.name,
        dest_arg
    );
    Ok(EXIT_OK)
}

/// The client paths, and `--at` read, with every flag checked before anything is listed.
fn checked_args(args: &RestoreArgs) -> Result<(Vec<PathBuf>, Option<DateTime<Utc>>)> {
    if args.paths.is_empty() {
        return Err(usage("name at least one PATH to restore"));
    }
    let paths: Vec<PathBuf> = args
        .paths
        .iter()
        .map(|p| restore::client_path(p))
        .collect::<Result<_>>()
        .map_err(usage)?;
    let at = match (&args.snapshot, &args.at) {
        (_, None) => None,
        (None, Some(t)) => Some(parse_time(t).map_err(|e| usage(format!("--at: {e}")))?),
        (Some(_), Some(_)) => return Err(usage("--snapshot and --at: give one of them")),
    };
    if args.target.is_some() && !args.to_host {
        return Err(usage("--target: only with --to-host"));
    }
    if args.to.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
        return Err(usage(
            "--to: \"\" is not a directory: name the directory to restore into",
        ));
    }
    Ok((paths, at))
}

/// The host's config; a copy received by `zbk replicate` has none here and is restored into
/// a directory with this server's settings.
fn host_config(
    ctx: &Ctx,
    global: &crate::config::Global,
    host: &Host,
    args: &RestoreArgs,
) -> Result<HostConfig> {
    let name = &host.name;
    match global.load_host(&ctx.layout.host_config(name)) {
        Ok(config) => Ok(config),
        Err(e) => {
            // A copy received by `zbk replicate` is never mounted, so its c/ cannot be read.
            if !ctx.zfs.is_replica(&host.dataset) {
                return Err(usage(e));
            }
            if args.to_host {
                return Err(usage(format!(
                    "--to-host: {name} is a copy received by zbk replicate; restore with --to DIR"
                )));
            }
            Ok(HostConfig {
                sources: Vec::new(),
                settings: global.settings.clone(),
            })
        }
    }
}

/// Where the files go: `--to DIR`, or back to the client over ssh, whose remote shell joins
/// rsync's arguments.
fn destination(
    args: &RestoreArgs,
    config: &HostConfig,
    name: &crate::names::HostName,
    rsync_args: &mut Vec<String>,
) -> Result<Dest> {
    match (&args.to, args.to_host) {
        (Some(dir), false) => Ok(Dest::Local(dir.clone())),
        (None, true) => {
            let target = args.target.clone().unwrap_or_else(|| "/".to_string());
            restore::client_path(&target).map_err(|e| {
                usage(format!(
                    "--target: {}",
                    e.to_string().trim_start_matches("PATH ")
                ))
            })?;
            let ssh = Ssh::client(&ssh::program()?, &config.settings.ssh);
            rsync_args.push(format!("--rsh={}", ssh.rsh()));
            Ok(Dest::Client(client_of(&config.sources, name)?, target))
        }
        _ => Err(usage("give --to DIR or --to-host, one of them")),
    }
}

/// The one `[user@]host` the host's remote sources pull from, for pushing back.
fn client_of(sources: &[String], host: &crate::names::HostName) -> Result<String> {
    let clients = restore::clients(sources);
    match clients.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(usage(format!(
            "--to-host: {host} has only local sources; restore with --to DIR"
        ))),
        _ => Err(usage(format!(
            "--to-host: {host} pulls from several clients ({}); restore with --to DIR",
            clients.join(", ")
        ))),
    }
}

/// A restore into the backups themselves would change what a snapshot of them holds next.
fn refuse_inside_backups(dir: &Path, hosts: &Path) -> Result<()> {
    let abs = std::path::absolute(dir)?;
    let existing = abs
        .ancestors()
        .find_map(|a| a.canonicalize().ok())
        .unwrap_or(abs);
    let hosts = hosts.canonicalize().unwrap_or_else(|_| hosts.to_path_buf());
    if existing.starts_with(&hosts) {
        return Err(usage(format!(
            "--to: {} is inside the backups ({}); restore somewhere else",
            dir.display(),
            hosts.display()
        )));
    }
    Ok(())
}
