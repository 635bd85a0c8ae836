//! Per-host locks: two zbk processes never write into the same host at once, whatever the tiers.

use anyhow::{bail, Context, Result};
use fs_err as fs;
use std::fs::TryLockError;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// An exclusive lock on a host, released when dropped, or by the kernel when the process dies.
pub struct HostLock {
    _file: std::fs::File,
}

/// How taking a lock went.
pub struct Acquired {
    pub lock: HostLock,
    /// Whether another run held it first: then that run may already have done our work.
    pub waited: bool,
}

impl HostLock {
    /// Takes the lock at `path`, waiting at most `wait` for another run to finish, and giving
    /// up early when `cancel` is raised.
    pub fn acquire(path: &Path, wait: Duration, cancel: &AtomicBool) -> Result<Acquired> {
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
        let started = Instant::now();
        let mut waited = false;
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(Acquired {
                        lock: HostLock { _file: file },
                        waited,
                    })
                }
                Err(TryLockError::WouldBlock) => waited = true,
                Err(TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock {}", path.display()))
                }
            }
            // Waiting for another run is not being stuck: the run's watchdog is told so.
            crate::watchdog::beat();
            if cancel.load(Ordering::Relaxed) {
                bail!("interrupted while waiting for another run to finish");
            }
            if started.elapsed() >= wait {
                bail!(
                    "another zbk run still holds {} after {}; gave up (see --wait)",
                    path.display(),
                    humantime::format_duration(wait)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
