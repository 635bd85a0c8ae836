//! `zbk restore`: copies files and directories out of one snapshot with rsync, to a local
//! directory or back to the client over ssh.
//!
//! The snapshot is read through a `SnapshotView` (`view.rs`): `.zfs/snapshot` where the pool
//! offers it (OpenZFS), otherwise (zfs-fuse) a temporary read-only clone outside the hosts tree,
//! which is destroyed however the restore ends.

use super::view::{check_inside, dot_zfs, SnapshotView};
use crate::cli::RestoreArgs;
use crate::config::HostConfig;
use crate::ctx::{usage, Ctx, EXIT_OK};
use crate::expiry::parse_time;
use crate::inventory::Host;
use crate::restore::{self, Choice};
use crate::sys::rsync::Rsync;
use crate::sys::ssh::{self, Ssh};
use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};

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
    let inv = ctx.zfs.inventory(&global.dataset.hosts())?;
    let name = super::chosen_hosts(&inv, std::slice::from_ref(&args.host))?.remove(0);
    let host = &inv.hosts[&name];
    if let Some(key) = super::key_not_loaded(ctx, &global.dataset.host(&name)) {
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
            if !ctx.zfs.is_replica(&global.dataset.host(&host.name)) {
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
