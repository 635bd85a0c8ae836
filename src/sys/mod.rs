//! The process layer: the only code that starts a process (`exec`), and each program zbk runs
//! behind typed calls: `zfs` here (`zfs`, `zfs_destroy`) and on a replication target
//! (`zfs_remote`), `rsync` (`rsync`, `rsync_args`), `ssh`, and the hooks (`hook`).

pub mod exec;
pub mod hook;
pub mod rsync;
pub mod rsync_args;
pub mod ssh;
pub mod zfs;
pub mod zfs_destroy;
pub mod zfs_error;
pub mod zfs_remote;
pub mod zpool;
