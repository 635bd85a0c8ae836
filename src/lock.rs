//! Per-host locks: two zbk processes never write into the same host at once.

use anyhow::{Context, Result};
use fs_err as fs;
use std::path::Path;

/// An exclusive lock on a host, released when dropped (or when the process dies).
pub struct HostLock {
    _file: std::fs::File,
}

impl HostLock {
    /// Waits for the lock at `path`, creating the file and its directory as needed.
    pub fn acquire(path: &Path) -> Result<HostLock> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?
            .into_parts()
            .0;
        file.lock()
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(HostLock { _file: file })
    }
}
