//! The `zpool` command: the pool's health, read with OpenZFS's JSON where `zpool status -j`
//! exists and with the text zfs-fuse prints where it does not, and its capacity (from `zpool
//! list` where that JSON does not carry it).

use crate::flavour::Flavour;
use crate::pool::{self, PoolHealth};
use crate::sys::exec::{Cmd, Deadline};
use crate::sys::zfs::Zfs;
use crate::sys::zfs_error::{attempt, Refused, ZfsError};
use anyhow::{Context, Result};
use std::path::PathBuf;

/// A handle on the `zpool` binary.
pub struct Zpool {
    bin: PathBuf,
    /// `[zfs] timeout`, as `zfs` has it.
    deadline: Deadline,
    /// Known to print no JSON (zfs-fuse), so it is not asked for it.
    legacy: bool,
}

impl Zpool {
    /// Finds `zpool` on PATH or in the sbin directories; its processes get `zfs`'s deadline.
    pub fn find(zfs: &Zfs) -> Result<Zpool> {
        Ok(Zpool {
            bin: crate::sys::exec::find_program("zpool")?,
            deadline: zfs.deadline(),
            legacy: zfs.flavour_without_a_process() == Some(Flavour::Legacy),
        })
    }

    /// zpool prints times in local time without a zone: in UTC, they read back unambiguously.
    fn cmd(&self, args: &[&str]) -> Cmd {
        Cmd::new(&self.bin)
            .args(args)
            .env("TZ", "UTC")
            .deadline(Some(self.deadline))
    }

    /// The pool's state, error counts, last scrub and capacity; its creation time (the root
    /// dataset's, which `creation` yields) only when no finished scrub is known, since only
    /// then does the judgement need it.
    pub fn health(
        &self,
        pool: &str,
        creation: impl FnOnce() -> Result<Option<chrono::DateTime<chrono::Utc>>>,
    ) -> Result<PoolHealth> {
        let text = || -> Result<PoolHealth> {
            let out = self.cmd(&["status", pool]).checked()?;
            pool::parse_text(&out.stdout)
        };
        let json = self.cmd(&["status", "-j", "--json-int", pool]);
        let mut health = if self.legacy {
            text()?
        } else {
            match attempt(&json)? {
                Ok(out) => pool::parse_json(&out.stdout, pool)?,
                // OpenZFS before 2.3 has no -j either.
                Err(Refused {
                    why: ZfsError::InvalidOption,
                    ..
                }) => text()?,
                Err(refused) => return Err(refused.into()),
            }
        };
        if health.capacity.is_none() {
            let list = self
                .cmd(&["list", "-H", "-o", "capacity", pool])
                .checked()?;
            health.capacity = Some(pool::parse_capacity(&list.stdout)?);
        }
        if health.scrub.finished().is_none() {
            health.created = creation().context("cannot read when the pool was made")?;
        }
        Ok(health)
    }
}
