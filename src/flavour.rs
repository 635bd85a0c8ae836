//! Which ZFS zbk runs on: what the process layer probes and the domain's judgements depend on
//! (what a pool can store, how destroys batch), kept out of `sys/` so the domain never
//! imports it.

/// Which `zfs` this is, probed once per process (`sys::zfs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// OpenZFS 0.8 and later: comma-list destroys, acltype and xattr=sa.
    OpenZfs,
    /// zfs-fuse and other old implementations: one snapshot per destroy.
    Legacy,
}
