//! Dispatch: resolve the root and the clock, then hand each command its context.

use crate::cli::{Command, TopArgs};
use crate::config::Global;
use crate::layout::Layout;
use crate::zfs::Zfs;
use anyhow::Result;
use chrono::{DateTime, Utc};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Every host ended ok or warning.
pub const EXIT_OK: u8 = 0;
/// Some host or snapshot failed.
pub const EXIT_FAILED: u8 = 1;
/// Bad usage or configuration: nothing was attempted for the offending part.
pub const EXIT_USAGE: u8 = 2;

/// The backup root when neither --root nor ZBK_ROOT names one.
pub const DEFAULT_ROOT: &str = "/backup";

/// An error in what the user asked or configured, as opposed to one met while doing it.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Wraps any error as a usage error (exit status 2).
pub fn usage(err: impl fmt::Display) -> anyhow::Error {
    UsageError(err.to_string()).into()
}

/// The exit status an error ends zbk with.
pub fn exit_code_of(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| e.is::<UsageError>()) {
        EXIT_USAGE
    } else {
        EXIT_FAILED
    }
}

/// What every command gets: where the tree is, how to reach zfs, and what time it is.
pub struct Ctx {
    pub layout: Layout,
    pub zfs: Zfs,
    pub now: DateTime<Utc>,
    /// Raised by SIGINT, SIGTERM or SIGHUP: stop what runs, record it, start nothing new.
    pub cancel: Arc<AtomicBool>,
}

impl Ctx {
    /// Loads the global config; a missing or bad one is a usage error.
    pub fn global(&self) -> Result<Global> {
        Global::load(&self.layout.root).map_err(usage)
    }
}

/// A flag raised by the first SIGINT, SIGTERM or SIGHUP, so that a run can stop rsync and
/// still record the run as failed; a second signal ends zbk at once.
fn on_signals() -> Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, Arc::clone(&flag))?;
        signal_hook::flag::register(signal, Arc::clone(&flag))?;
    }
    Ok(flag)
}

/// Runs the parsed command line and returns the exit status.
pub fn run(args: TopArgs) -> Result<u8> {
    if args.version {
        println!("zbk {}", env!("CARGO_PKG_VERSION"));
        return Ok(EXIT_OK);
    }
    let Some(command) = args.command else {
        return Err(usage("no command given; see `zbk --help` or zbk(8)"));
    };
    let root = args
        .root
        .or_else(|| {
            std::env::var_os("ZBK_ROOT")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
    if !root.is_absolute() {
        return Err(usage(format!(
            "--root: {} is not an absolute path",
            root.display()
        )));
    }
    let ctx = Ctx {
        layout: Layout::new(root),
        zfs: Zfs::find()?,
        now: Utc::now(),
        cancel: on_signals()?,
    };
    match command {
        Command::Init(a) => crate::commands::init::run(&ctx, a),
        Command::Add(a) => crate::commands::add::run(&ctx, a),
        Command::Run(a) => crate::commands::run::run(&ctx, a),
        Command::Reap(a) => crate::commands::reap::run(&ctx, a),
        Command::Remove(a) => crate::commands::remove::run(&ctx, a),
        Command::List(a) => crate::commands::list::run(&ctx, a),
        Command::Authorize(a) => crate::commands::authorize::run(&ctx, a),
        Command::Replicate(a) => crate::commands::replicate::run(&ctx, a),
        Command::Status(a) => crate::commands::status::run(&ctx, a),
        Command::Check(a) => crate::commands::check::run(&ctx, a),
        Command::Doctor(a) => crate::commands::doctor::run(&ctx, a),
        Command::Keep(a) => crate::commands::keep::run(&ctx, a),
        Command::Restamp(a) => crate::commands::restamp::run(&ctx, a),
        Command::Restore(a) => crate::commands::restore::run(&ctx, a),
        Command::Versions(a) => crate::commands::versions::run(&ctx, a),
        Command::Diff(a) => crate::commands::diff::run(&ctx, a),
    }
}
