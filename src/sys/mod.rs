//! The process layer: the only code that starts a process (`exec`), and the programs zbk
//! runs, each behind typed calls: `zfs` here, `zfs` on a replication target, `rsync`, `ssh`.

pub mod exec;
pub mod hook;
pub mod rsync;
pub mod ssh;
pub mod zfs;
pub mod zfs_remote;
