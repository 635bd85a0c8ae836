//! What every command shares: the context it runs in (`Ctx`), usage errors, and zbk's exit
//! statuses. Commands import this, never `app.rs`, which only dispatches to them.

use crate::config::Global;
use crate::layout::Layout;
use crate::sys::zfs::Zfs;
use anyhow::Result;
use chrono::{DateTime, Utc};
use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Every host ended ok or warning.
pub const EXIT_OK: u8 = 0;
/// Some host or snapshot failed.
pub const EXIT_FAILED: u8 = 1;
/// Bad usage or configuration: nothing was attempted for the offending part.
pub const EXIT_USAGE: u8 = 2;

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
    /// Loads the global config; a missing or bad one is a usage error. Its `[zfs] timeout`
    /// bounds every later zfs process.
    pub fn global(&self) -> Result<Global> {
        let global = Global::load(&self.layout.root).map_err(usage)?;
        self.zfs.set_timeout(global.zfs_timeout);
        Ok(global)
    }
}
