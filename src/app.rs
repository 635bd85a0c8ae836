//! Dispatch: resolve the root and the clock, then hand each command its context.

use crate::cli::{Command, TopArgs};
use crate::ctx::{usage, Ctx, EXIT_OK};
use crate::layout::Layout;
use crate::sys::zfs::Zfs;
use anyhow::Result;
use chrono::Utc;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The backup root when neither --root nor ZBK_ROOT names one.
pub const DEFAULT_ROOT: &str = "/backup";

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
            "--root: {:?} is not an absolute path",
            root.display().to_string()
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
        Command::Report(a) => crate::commands::report::run(&ctx, a),
        Command::Check(a) => crate::commands::check::run(&ctx, a),
        Command::Doctor(a) => crate::commands::doctor::run(&ctx, a),
        Command::Keep(a) => crate::commands::keep::run(&ctx, a),
        Command::Restamp(a) => crate::commands::restamp::run(&ctx, a),
        Command::Restore(a) => crate::commands::restore::run(&ctx, a),
        Command::Versions(a) => crate::commands::versions::run(&ctx, a),
        Command::Diff(a) => crate::commands::diff::run(&ctx, a),
        Command::Verify(a) => crate::commands::verify::run(&ctx, a),
    }
}
