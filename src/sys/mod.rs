//! The process layer: the only code that starts a process (`exec`), and each program zbk runs
//! behind typed calls: `zfs` here (`zfs`, `zfs_destroy`) and on a replication target
//! (`zfs_remote`), zfs's failures read once (`zfs_error`), `rsync` (`rsync`), `ssh`, and the
//! hooks (`hook`). Commands hold verbs and typed results, never a process, its stderr or a
//! `Cmd`. `sys/` may import the domain's types and parsers; the domain never imports `sys/`.

pub mod exec;
pub mod hook;
pub mod rsync;
pub mod ssh;
pub mod zfs;
pub mod zfs_destroy;
pub mod zfs_error;
pub mod zfs_remote;
pub mod zpool;
