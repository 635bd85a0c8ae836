//! `zbk verify`: compares each host's newest good snapshot with its live client, read-only on
//! both sides, with rsync's itemized dry run and full checksums, one slice of the tree per run
//! (or all of it); stamps what it found on the snapshot as `zbk:verified`, and with `--ack`
//! acknowledges the silent differences found so far.

use super::view::SnapshotView;
use crate::cli::VerifyArgs;
use crate::config::{Global, HostConfig};
use crate::crypt::KeyState;
use crate::ctx::{usage, Ctx, EXIT_FAILED, EXIT_OK};
use crate::inventory::{Host, Inventory};
use crate::names::HostName;
use crate::restore::{self, Choice};
use crate::rsync_args::{self, Call};
use crate::rsync_report;
use crate::stamp::PROP_VERIFIED;
use crate::sys::rsync::Rsync;
use crate::sys::ssh::{self, Ssh};
use crate::text::counted;
use crate::verify::{self, Found, Part, Verified};
use anyhow::{anyhow, bail, Context, Result};
use fs_err as fs;
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub fn run(ctx: &Ctx, args: VerifyArgs) -> Result<u8> {
    match (args.hosts.is_empty(), args.all) {
        (true, false) => return Err(usage("name the hosts to verify, or give --all")),
        (false, true) => return Err(usage("--all: give hosts or --all, not both")),
        _ => {}
    }
    if args.ack && args.full {
        return Err(usage("--ack and --full: give one of them"));
    }
    let global = ctx.global()?;
    let inv = ctx.zfs.inventory(&global.dataset.hosts())?;
    let names: Vec<HostName> = if args.all {
        inv.hosts
            .values()
            .filter(|h| h.retired.is_none())
            .map(|h| h.name.clone())
            .collect()
    } else {
        super::chosen_hosts(&inv, &args.hosts)?
    };
    if args.ack {
        return ack(ctx, &global, &inv, &names);
    }
    let rsync = Rsync::find()?;
    let mut failed = false;
    for name in &names {
        let host = &inv.hosts[name];
        let mut log = String::new();
        let done = match global.load_host(&ctx.layout.host_config(name)) {
            Ok(config) => verify_host(ctx, &global, &rsync, &config, host, args.full, &mut log),
            // A copy received by `zbk replicate` is never mounted, so its c/ cannot be read.
            Err(_) if ctx.zfs.is_replica(&global.dataset.host(&host.name)) => {
                if args.all {
                    continue;
                }
                Err(anyhow!(
                    "a copy received by zbk replicate has no client to compare with"
                ))
            }
            // An encrypted host whose key is not loaded is not mounted either: its c/ is
            // missing too, and the key is what the admin must be told about.
            Err(e) => Err(super::key_not_loaded(ctx, &global.dataset.host(name))
                .map_or_else(|| usage(e), |key| key_missing(&key))),
        };
        let written = write_log(ctx, &global, name, &log);
        match done {
            Ok(done) => {
                failed |= !done.found.silent.is_empty();
                report(name, &done, written.as_deref(), args.verbose);
            }
            Err(e) => {
                failed = true;
                eprintln!(
                    "zbk: {name}: verify failed: {}",
                    format!("{e:#}").replace('\n', "; ")
                );
            }
        }
    }
    Ok(if failed { EXIT_FAILED } else { EXIT_OK })
}

/// One host's finished verify.
struct Done {
    snapshot: String,
    stamp: Verified,
    found: Found,
}

/// Compares the host's newest good snapshot with its client, source by source, and stamps the
/// result on the snapshot; `log` gets each rsync command and what it said. Any failure leaves
/// the stamps as they were.
fn verify_host(
    ctx: &Ctx,
    global: &Global,
    rsync: &Rsync,
    config: &HostConfig,
    host: &Host,
    full: bool,
    log: &mut String,
) -> Result<Done> {
    let name = &host.name;
    let dataset = global.dataset.host(name);
    // `storable`: the comparison asks for no more ACLs and xattrs than a run copies.
    let (locked, storable) = ctx.zfs.read_facts(&dataset)?;
    let snap = verifiable(ctx, config, host, locked)?;
    let slices = config.settings.verify.slices;
    let last = verify::newest(host.snapshots.iter().filter_map(|s| s.verified.as_ref()));
    let part = if full {
        Part::Full
    } else {
        Part::Slice(Verified::next(last, slices))
    };
    let rsh = if config.sources.iter().any(|s| rsync_args::is_remote(s)) {
        Some(Ssh::client(&ssh::program()?, &config.settings.ssh).rsh())
    } else {
        None
    };
    let exclude = ctx
        .layout
        .config_dir(name)
        .join(&config.settings.rsync.exclude_file);
    let all_args: Vec<String> = config
        .settings
        .rsync
        .args
        .iter()
        .chain(&config.settings.rsync.extra_args)
        .cloned()
        .collect();
    let shown_part = match part {
        Part::Full => "the whole tree".to_string(),
        Part::Slice(k) => format!("slice {}/{slices}", k + 1),
    };
    let _ = writeln!(
        log,
        "# zbk verify {name}@{}: {shown_part}, at {}",
        snap.name,
        crate::expiry::Expiry::At(ctx.now)
    );
    let view = SnapshotView::open(ctx, &global.dataset, host, snap)?;
    let data = view.data();
    // A slice's files are listed from the live d/, which holds the newest snapshot's tree
    // unless a run changed it since, and which the kernel has cached: a fresh clone on
    // zfs-fuse is read file by file through its daemon. Only what rsync compares against is
    // read from the snapshot.
    let live = ctx.layout.data(name);
    let compare = Compare {
        rsync,
        call: Call {
            settings: &config.settings.rsync,
            rsh: rsh.as_deref(),
            exclude_from: exclude.is_file().then_some(exclude.as_path()),
            progress: false,
            max_delete: None,
            storable: &storable,
        },
        user: config.settings.ssh.user.as_deref(),
        listed_from: if live.is_dir() { live } else { data.clone() },
        data,
        part,
        slices,
        relative: verify::copies_relative(&all_args),
        what: format!("{shown_part} of {name}@{}", snap.name),
    };
    let mut found = Found::default();
    for source in &config.sources {
        let this = compare.source(source, log)?;
        found.files += this.files;
        found.changed += this.changed;
        found.appeared += this.appeared;
        found.vanished += this.vanished;
        found.silent.extend(this.silent);
    }
    drop(view);
    stamp(
        ctx,
        global,
        host,
        &snap.name,
        Verified::record(last, part, slices, ctx.now, &found),
        found,
        log,
    )
}

/// The snapshot a verify of `host` compares: its newest good one, once its key is loaded (it
/// is not when `locked`) and it has a client to compare with.
fn verifiable<'h>(
    ctx: &Ctx,
    config: &HostConfig,
    host: &'h Host,
    locked: Option<KeyState>,
) -> Result<&'h crate::inventory::Snapshot> {
    let name = &host.name;
    if let Some(key) = locked {
        return Err(key_missing(&key));
    }
    if config.sources.is_empty() {
        return Err(usage(format!(
            "{}: sources: none, so there is no client to compare with",
            ctx.layout.host_config(name).display()
        )));
    }
    restore::choose(host, Choice::Newest)
        .map_err(|_| anyhow!("no good snapshot to verify yet: run `zbk run {name}` first"))
}

/// Why a host whose key is not loaded cannot be verified, and how to load it.
fn key_missing(key: &KeyState) -> anyhow::Error {
    anyhow!(
        "its encryption key is not loaded, so its snapshots cannot be read: `{}`",
        key.load_hint()
    )
}

/// One verify's comparison of a client's sources with a snapshot's `d/`.
struct Compare<'a> {
    rsync: &'a Rsync,
    call: Call<'a>,
    user: Option<&'a str>,
    /// Where a slice's file names are listed from (the live `d/`, else the snapshot's).
    listed_from: PathBuf,
    /// The snapshot's `d/`, what rsync compares against.
    data: PathBuf,
    part: Part,
    slices: u32,
    /// Whether the host's rsync copies with `--relative`.
    relative: bool,
    /// The part and snapshot, for messages.
    what: String,
}

impl Compare<'_> {
    /// Compares one source; its silent differences are named by their path on the client.
    fn source(&self, source: &str, log: &mut String) -> Result<Found> {
        let root = verify::source_root(source, self.relative);
        let logged = |line: &str| {
            let _ = writeln!(log, "$ {line}");
        };
        let (out, list) = match self.part {
            Part::Full => (
                self.rsync
                    .verify(&self.call, source, self.user, &self.data, None, logged)?,
                None,
            ),
            Part::Slice(k) => {
                let list = slice_list(&self.listed_from, &root.under, self.slices, k)
                    .with_context(|| format!("cannot read {}", self.what))?;
                let out = self.rsync.verify(
                    &self.call,
                    &root.base,
                    self.user,
                    &self.data,
                    Some(list.0.path()),
                    logged,
                )?;
                (out, Some(list))
            }
        };
        log.push_str(&out.printed());
        let code = out.code;
        let _ = writeln!(log, "rsync exited {code} ({})", rsync_report::meaning(code));
        // 24: files vanished while rsync listed them, which a dry run reads as vanished.
        if code != 0 && code != 24 {
            bail!(
                "{source}: rsync exited {code} ({}){}",
                rsync_report::meaning(code),
                out.last_said()
                    .map(|l| format!(": {l}"))
                    .unwrap_or_default()
            );
        }
        let mut this = Found::default();
        verify::read_itemized(&out.stdout, &mut this);
        let (entries, regular, dirs) = rsync_report::entries(&out.stdout).ok_or_else(|| {
            anyhow!("{source}: rsync printed no --stats figures, so what it compared is unknown")
        })?;
        // What the slice named and the client did not send has vanished from the client.
        if let Some((_, named)) = &list {
            this.vanished += named.saturating_sub(entries.saturating_sub(dirs));
        }
        this.files = regular;
        this.silent = this.silent.iter().map(|n| root.client_path(n)).collect();
        Ok(this)
    }
}

/// Stamps what a verify found on the snapshot it compared, records the host for zbk check,
/// and logs it.
fn stamp(
    ctx: &Ctx,
    global: &Global,
    host: &Host,
    snapshot: &str,
    stamp: Verified,
    found: Found,
    log: &mut String,
) -> Result<Done> {
    let target = host.full_snapshot(&global.dataset, snapshot)?;
    ctx.zfs
        .stamp(&target, PROP_VERIFIED, &stamp.to_property())?;
    // The host's record names the snapshot with the newest stamp, for zbk check.
    super::record_or_warn(
        ctx,
        &global.dataset.hosts(),
        &global.dataset.host(&host.name),
    );
    let _ = writeln!(
        log,
        "{}; {} changed, {} appeared, {} vanished; {}",
        counted(found.files as usize, "file compared"),
        found.changed,
        found.appeared,
        found.vanished,
        counted(found.silent.len(), "silent difference")
    );
    for path in &found.silent {
        let _ = writeln!(log, "silent difference: {path}");
    }
    let _ = writeln!(log, "stamped {PROP_VERIFIED}={}", stamp.to_property());
    Ok(Done {
        snapshot: snapshot.to_string(),
        stamp,
        found,
    })
}

/// The files of slice `k` of `slices` under `data/under` (a host's tree), as a temporary
/// NUL-separated list of paths relative to `data`, for rsync's `--files-from`. Directories are
/// left out: rsync creates the ones the files need and compares only what is named. Returns
/// the list and how many paths it names.
fn slice_list(
    data: &Path,
    under: &Path,
    slices: u32,
    k: u32,
) -> Result<(tempfile::NamedTempFile, u64)> {
    let mut list = tempfile::Builder::new().prefix("zbk-verify-").tempfile()?;
    let mut out = std::io::BufWriter::new(list.as_file_mut());
    let mut named = 0;
    let start = data.join(under);
    if fs::symlink_metadata(&start).is_ok_and(|m| m.is_dir()) {
        let mut dirs: Vec<PathBuf> = vec![under.to_path_buf()];
        while let Some(rel) = dirs.pop() {
            for entry in fs::read_dir(data.join(&rel))? {
                let entry = entry?;
                let path = rel.join(entry.file_name());
                // Some file systems leave the type out of a directory entry: ask then.
                let is_dir = match entry.file_type() {
                    Ok(t) => t.is_dir(),
                    Err(_) => fs::symlink_metadata(entry.path())?.is_dir(),
                };
                if is_dir {
                    dirs.push(path);
                } else if verify::slice_of(path.as_os_str().as_bytes(), slices) == k {
                    out.write_all(path.as_os_str().as_bytes())?;
                    out.write_all(b"\0")?;
                    named += 1;
                }
            }
        }
    } else if !under.as_os_str().is_empty() && fs::symlink_metadata(&start).is_ok() {
        // A source that is a single file.
        if verify::slice_of(under.as_os_str().as_bytes(), slices) == k {
            out.write_all(under.as_os_str().as_bytes())?;
            out.write_all(b"\0")?;
            named += 1;
        }
    }
    out.flush()?;
    drop(out);
    Ok((list, named))
}

/// Writes the verify's log to `l/verify-<time>.txt` of the host's live dataset, where the next
/// snapshot keeps it, and keeps `log_keep` of them; where it went, or `None` if it could not.
fn write_log(ctx: &Ctx, global: &Global, host: &HostName, log: &str) -> Option<PathBuf> {
    if log.is_empty() {
        return None;
    }
    let dir = ctx.layout.logs(host);
    let path = dir.join(format!("verify-{}.txt", ctx.now.format("%Y-%m-%dT%H%M%SZ")));
    if let Err(e) = fs::write(&path, log) {
        eprintln!("zbk: warning: {host}: cannot write the verify log: {e}");
        return None;
    }
    let keep = global
        .load_host(&ctx.layout.host_config(host))
        .map_or(global.settings.log_keep, |c| c.settings.log_keep);
    if let Ok(entries) = fs::read_dir(&dir) {
        let mut logs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("verify-") && n.ends_with(".txt"))
            })
            .collect();
        logs.sort();
        let excess = logs.len().saturating_sub(keep.max(1));
        for old in logs.into_iter().take(excess) {
            let _ = fs::remove_file(old);
        }
    }
    Some(path)
}

/// What a verify says: the silent differences always, on stderr, for cron to mail; the
/// figures with `--verbose`.
fn report(name: &HostName, done: &Done, log: Option<&Path>, verbose: bool) {
    let f = &done.found;
    if verbose {
        println!(
            "{name}@{}: verified {}: {}, {} changed, {} appeared, {} vanished, {}",
            done.snapshot,
            done.stamp.slice_shown(),
            counted(f.files as usize, "file compared"),
            f.changed,
            f.appeared,
            f.vanished,
            counted(f.silent.len(), "silent difference")
        );
    }
    if f.silent.is_empty() {
        return;
    }
    for path in &f.silent {
        eprintln!(
            "zbk: {name}: silent difference: {path}: its content differs from {name}@{} while its size and mtime match",
            done.snapshot
        );
    }
    let log = log.map_or_else(String::new, |p| format!(" (log: {})", p.display()));
    eprintln!(
        "zbk: {name}: {} in {}: a run's quick check never copies these; zbk check is CRITICAL until `zbk verify --ack {name}`{log}",
        counted(f.silent.len(), "silent difference"),
        done.stamp.slice_shown()
    );
}

/// `--ack`: the newest stamp of each host, its silent differences acknowledged.
fn ack(ctx: &Ctx, global: &Global, inv: &Inventory, names: &[HostName]) -> Result<u8> {
    for name in names {
        let host = &inv.hosts[name];
        let newest = host
            .snapshots
            .iter()
            .filter_map(|s| s.verified.as_ref().map(|v| (s, v)))
            .max_by_key(|(_, v)| v.at);
        match newest {
            Some((snap, v)) if v.unacked > 0 => {
                let target = host.full_snapshot(&global.dataset, &snap.name)?;
                ctx.zfs.stamp(
                    &target,
                    PROP_VERIFIED,
                    &v.acknowledged(ctx.now).to_property(),
                )?;
                super::record_or_warn(
                    ctx,
                    &global.dataset.hosts(),
                    &global.dataset.host(&host.name),
                );
                println!(
                    "{name}: acknowledged {} found by zbk verify",
                    counted(v.unacked as usize, "silent difference")
                );
            }
            Some(_) => println!("{name}: no silent differences to acknowledge"),
            None => println!("{name}: never verified: nothing to acknowledge"),
        }
    }
    Ok(EXIT_OK)
}
