//! A snapshot's files, readable for as long as a `SnapshotView` lives: through `.zfs/snapshot`
//! where the pool offers it (OpenZFS), else (zfs-fuse) a temporary read-only clone outside the
//! hosts tree, destroyed however the command ends. `restore`, `versions`, `diff` and `verify`
//! read snapshots this way.

use crate::ctx::Ctx;
use crate::dataset::{RestoreClone, RootDataset};
use crate::inventory::{Host, Snapshot};
use crate::sys::zfs::Zfs;
use anyhow::{anyhow, bail, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Clones made by this process, for unique names when `versions` opens one per snapshot.
static CLONES: AtomicUsize = AtomicUsize::new(0);

/// A snapshot's files, readable at `root` for as long as this lives.
pub struct SnapshotView<'a> {
    zfs: &'a Zfs,
    /// The temporary clone and its mountpoint, when the snapshot had to be cloned.
    clone: Option<(RestoreClone, PathBuf)>,
    pub root: PathBuf,
}

impl<'a> SnapshotView<'a> {
    /// Opens `host@snap`: `.zfs/snapshot/<snap>` when it is there, else a read-only clone
    /// `<dataset>/restore/<host>-<pid>-<n>` mounted under `<root>/etc/restore/`, where neither
    /// `zbk list` nor `zbk reap` looks.
    pub fn open(
        ctx: &'a Ctx,
        dataset: &RootDataset,
        host: &Host,
        snap: &Snapshot,
    ) -> Result<SnapshotView<'a>> {
        if let Some(root) = dot_zfs(ctx, host, snap) {
            return Ok(SnapshotView {
                zfs: &ctx.zfs,
                clone: None,
                root,
            });
        }
        let parent = dataset.restore_parent();
        if !ctx.zfs.exists(&parent)? {
            let made = ctx
                .zfs
                .create(&parent, &[("mountpoint", "none"), ("canmount", "off")]);
            // Another restore may have made it meanwhile.
            if made.is_err() && !ctx.zfs.exists(&parent)? {
                made?;
            }
        }
        let clone = RestoreClone::new(
            dataset.as_str(),
            &host.name,
            std::process::id(),
            CLONES.fetch_add(1, Ordering::Relaxed),
        );
        let snapshot = host.full_snapshot(dataset, &snap.name)?;
        let mountpoint = ctx.layout.etc().join("restore").join(clone.leaf());
        fs_err::create_dir_all(&mountpoint)?;
        // The guard exists before the clone does, so a clone made but not mounted still goes.
        let view = SnapshotView {
            zfs: &ctx.zfs,
            clone: Some((clone.clone(), mountpoint.clone())),
            root: mountpoint.clone(),
        };
        ctx.zfs.clone_readonly(&snapshot, &clone, &mountpoint)?;
        if !view.root.join("d").is_dir() {
            bail!(
                "{}@{}: no d/ in the snapshot (is {} mounted?)",
                host.name,
                snap.name,
                view.root.display()
            );
        }
        Ok(view)
    }

    /// Where the client's files are in this snapshot.
    pub fn data(&self) -> PathBuf {
        self.root.join("d")
    }
}

/// The snapshot's own directory under `.zfs/snapshot` when the pool offers one (OpenZFS, with
/// `snapdir` visible or hidden alike: hidden only leaves it out of directory listings).
pub fn dot_zfs(ctx: &Ctx, host: &Host, snap: &Snapshot) -> Option<PathBuf> {
    let root = ctx
        .layout
        .host(&host.name)
        .join(".zfs/snapshot")
        .join(&snap.name);
    root.join("d").is_dir().then_some(root)
}

impl Drop for SnapshotView<'_> {
    fn drop(&mut self) {
        if let Some((clone, mountpoint)) = &self.clone {
            // A clone left behind would keep its snapshot from ever being reaped.
            if let Err(e) = self.zfs.destroy_clone(clone) {
                eprintln!("zbk: warning: cannot destroy the temporary clone {clone}: {e:#}; destroy it with `zfs destroy {clone}`");
            }
            let _ = std::fs::remove_dir(mountpoint);
        }
    }
}

/// Checks that a client path is in the snapshot without passing through a symlink, which
/// rsync would follow out of the snapshot; the last component may itself be a symlink, which
/// rsync copies as one.
pub fn check_inside(data: &Path, rel: &Path, shown: &str, snap: &str) -> Result<()> {
    let parts: Vec<_> = rel.components().collect();
    let mut at = data.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        let meta = std::fs::symlink_metadata(&at)
            .map_err(|_| anyhow!("PATH {shown}: not in snapshot {snap}"))?;
        let inner = i + 1 < parts.len();
        if inner && meta.file_type().is_symlink() {
            let prefix = Path::new("/").join(at.strip_prefix(data).unwrap_or(&at));
            bail!(
                "PATH {shown}: {} is a symlink in snapshot {snap}; restore the path it points to instead",
                prefix.display()
            );
        }
        if inner && !meta.is_dir() {
            bail!("PATH {shown}: not in snapshot {snap}");
        }
    }
    Ok(())
}
