//! zfs destroy: of a host's snapshots (in comma lists where OpenZFS takes them), of a host
//! dataset, of a restore's clone; each name re-checked just before the spawn.

use super::zfs::Zfs;
use crate::dataset::{self, HostDataset, RestoreClone};
use crate::flavour::Flavour;
use crate::names::SnapName;
use crate::sys::exec::Output;
use crate::sys::zfs_error::{attempt, Refused, ZfsError};
use anyhow::Result;
use std::time::Duration;

/// How one snapshot's destroy ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Destroyed {
    Gone,
    /// Held or cloned: skipped, reported, not an error.
    Busy(String),
    Failed(String),
}

impl Zfs {
    /// The target of each destroy for some of one host's snapshots: comma lists of at most
    /// `batch` names on OpenZFS, one per call elsewhere, each with the names it covers. Every
    /// target is re-checked (`dataset::destroy_target`); one refusal refuses them all.
    pub fn destroy_targets<'n>(
        flavour: Flavour,
        dataset: &HostDataset,
        names: &'n [SnapName],
        batch: usize,
    ) -> Result<Vec<(String, &'n [SnapName])>> {
        let per = match flavour {
            Flavour::Legacy => 1,
            Flavour::OpenZfs => batch.max(1),
        };
        names
            .chunks(per)
            .map(|chunk| Ok((dataset::destroy_target(dataset, chunk)?, chunk)))
            .collect()
    }

    /// Destroys some snapshots of one host dataset and says how each ended. A batch that fails
    /// is retried one snapshot at a time, so one held snapshot cannot keep the others. Nothing
    /// is spawned unless every target passes its re-check.
    pub fn destroy_snapshots(
        &self,
        dataset: &HostDataset,
        names: &[SnapName],
        batch: usize,
    ) -> Result<Vec<(String, Destroyed)>> {
        let mut results = Vec::new();
        for (target, chunk) in Self::destroy_targets(self.flavour(), dataset, names, batch)? {
            let done = attempt(&self.cmd(["destroy", &target]))?;
            match judge_destroy(done) {
                Destroyed::Gone => {
                    results.extend(chunk.iter().map(|n| (n.to_string(), Destroyed::Gone)))
                }
                _ if chunk.len() > 1 => {
                    for name in chunk {
                        let one = dataset::destroy_target(dataset, std::slice::from_ref(name))?;
                        let done = attempt(&self.cmd(["destroy", &one]))?;
                        results.push((name.to_string(), judge_destroy(done)));
                    }
                }
                outcome => results.push((chunk[0].to_string(), outcome)),
            }
        }
        Ok(results)
    }

    /// Destroys a host dataset with all its snapshots, once it passes its re-check: exactly
    /// one dataset under `<dataset>/hosts`. Never `-R`: a clone elsewhere stops it.
    pub fn destroy_tree(&self, dataset: &HostDataset) -> Result<()> {
        let checked = dataset.check()?;
        self.destroy_recursive(checked)
    }

    /// Destroys a restore's temporary clone, once it passes its re-check: exactly one clone
    /// under `<dataset>/restore`.
    pub fn destroy_clone(&self, clone: &RestoreClone) -> Result<()> {
        let checked = clone.check()?;
        self.destroy_recursive(&checked)
    }

    /// `zfs destroy -r` of a name already checked, retrying while a just-unmounted filesystem
    /// is still busy (zfs-fuse). The unmount takes the mount lock: on zfs-fuse an unmount that
    /// meets a mount in progress wedges the daemon just as two mounts do.
    fn destroy_recursive(&self, dataset: &str) -> Result<()> {
        let _serial = self.mount_lock()?;
        // Unmounting first makes the destroy's first attempt succeed far more often on
        // zfs-fuse; its failure is not judged here, since the destroy says why it cannot.
        self.cmd(["unmount", dataset]).output()?;
        let cmd = self.cmd(["destroy", "-r", dataset]);
        let mut last = None;
        for tries in 0..10 {
            let refused = match attempt(&cmd)? {
                Ok(_) => return Ok(()),
                Err(refused) => refused,
            };
            match refused.why {
                ZfsError::NotFound => return Ok(()),
                ZfsError::Busy => {}
                _ => return Err(refused.into()),
            }
            last = Some(refused);
            std::thread::sleep(Duration::from_millis(300 * (tries + 1)));
        }
        Err(last.expect("ten attempts").into())
    }
}

/// Judges a destroy: gone (or already gone), busy (held or cloned), or failed.
fn judge_destroy(done: Result<Output, Refused>) -> Destroyed {
    let Err(refused) = done else {
        return Destroyed::Gone;
    };
    let err = refused.failed.stderr.trim();
    match refused.why {
        ZfsError::NotFound => Destroyed::Gone,
        ZfsError::Busy | ZfsError::Pinned => {
            Destroyed::Busy(err.lines().next().unwrap_or_default().to_string())
        }
        _ => Destroyed::Failed(format!(
            "exit status {}: {}",
            refused.failed.code,
            err.replace('\n', "; ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::HostName;

    fn names(n: usize) -> Vec<SnapName> {
        (0..n)
            .map(|i| SnapName::parse(&format!("2026-11-27T0130{i:02}Z")).unwrap())
            .collect()
    }

    fn host_dataset() -> HostDataset {
        HostDataset::new(
            &crate::dataset::RootDataset::parse("t").unwrap(),
            &HostName::parse("a").unwrap(),
        )
    }

    fn targets(flavour: Flavour, names: &[SnapName], batch: usize) -> Vec<String> {
        Zfs::destroy_targets(flavour, &host_dataset(), names, batch)
            .unwrap()
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    }

    #[test]
    fn legacy_destroys_one_at_a_time() {
        assert_eq!(
            targets(Flavour::Legacy, &names(2), 100),
            [
                "t/hosts/a@2026-11-27T013000Z",
                "t/hosts/a@2026-11-27T013001Z"
            ]
        );
    }

    #[test]
    fn openzfs_destroys_in_bounded_comma_lists() {
        let v = targets(Flavour::OpenZfs, &names(5), 2);
        assert_eq!(
            v,
            [
                "t/hosts/a@2026-11-27T013000Z,2026-11-27T013001Z",
                "t/hosts/a@2026-11-27T013002Z,2026-11-27T013003Z",
                "t/hosts/a@2026-11-27T013004Z"
            ]
        );
    }

    #[test]
    fn destroys_refuse_before_spawning() {
        let zfs = Zfs::must_not_run();
        let good = names(3);
        let mut one_bad = good.clone();
        one_bad.insert(1, SnapName::forged("manual"));
        for batch in [1, 100] {
            let err = zfs
                .destroy_snapshots(&host_dataset(), &one_bad, batch)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("refusing to destroy"), "{err}");
        }
        let err = zfs
            .destroy_snapshots(&host_dataset(), &[], 100)
            .map(|r| r.len());
        assert_eq!(err.unwrap(), 0, "nothing named, nothing spawned");
        for forged in [
            HostDataset::forged("t", "a", "t"),
            HostDataset::forged("t", "a", "t/hosts"),
            HostDataset::forged("t", "a", "t/hosts/a/b"),
            HostDataset::forged("t", "a", "u/hosts/a"),
            HostDataset::forged("t", "a", "t/hosts/a@s"),
            HostDataset::forged("t", "-r", "t/hosts/-r"),
        ] {
            let err = zfs.destroy_tree(&forged).unwrap_err().to_string();
            assert!(err.starts_with("refusing to destroy"), "{forged:?}: {err}");
            let err = zfs
                .destroy_snapshots(&forged, &good, 100)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("refusing to destroy"), "{forged:?}: {err}");
        }
        for forged in [
            RestoreClone::forged("t", "a/b"),
            RestoreClone::forged("t", ""),
        ] {
            let err = zfs.destroy_clone(&forged).unwrap_err().to_string();
            assert!(err.starts_with("refusing to destroy"), "{forged:?}: {err}");
        }
        let clone = RestoreClone::new("t", &HostName::parse("a").unwrap(), 1, 0);
        // The checks pass for well-formed names: only then does the missing program show.
        let err = zfs.destroy_clone(&clone).unwrap_err().to_string();
        assert!(!err.contains("refusing"), "{err}");
        let err = zfs.destroy_tree(&host_dataset()).unwrap_err().to_string();
        assert!(!err.contains("refusing"), "{err}");
    }
}
