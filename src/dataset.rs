//! The ZFS names zbk acts on, each built in one place: the zbk dataset and its hosts dataset, a
//! host's dataset, one of its snapshots, a comma-list destroy target, and a restore's temporary
//! clone. The verbs in `sys/` take only these (`ZfsName` where a verb takes any of them). The
//! destroys in `zfs.rs` re-check them here just before they spawn, so no caller can destroy
//! anything outside the hosts tree or a snapshot zbk did not name.

use crate::layout;
use crate::names::{is_safe_component, is_snapshot_name, HostName, SnapName};
use anyhow::{bail, Result};
use std::fmt;

/// A name the verbs in `sys/` hand to zfs: only the typed names here implement it, so no
/// command can pass a string it assembled itself.
pub trait ZfsName: sealed::Sealed {
    fn zfs_name(&self) -> &str;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! zfs_name {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl ZfsName for $t {
            fn zfs_name(&self) -> &str {
                self.as_str()
            }
        }
    )*};
}
zfs_name!(
    RootDataset,
    HostsDataset,
    HostDataset,
    Snapshot,
    Pool,
    RestoreParent
);

/// Whether `name` is a filesystem name of plain components (`tank/backup`): what the zbk
/// dataset, here or on a replication target, must be.
fn is_plain_dataset(name: &str) -> bool {
    !name.is_empty() && name.split('/').all(is_safe_component)
}

/// The dataset given to `zbk init` (`[zbk] dataset`), or a replication target's: the top of a
/// zbk tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootDataset(String);

impl RootDataset {
    pub fn parse(name: &str) -> Result<RootDataset> {
        if !is_plain_dataset(name) {
            bail!(
                "{:?} is not a ZFS filesystem name",
                name.escape_debug().to_string()
            );
        }
        Ok(RootDataset(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `<root>/hosts`, the parent of every host dataset.
    pub fn hosts(&self) -> HostsDataset {
        HostsDataset {
            root: self.clone(),
            name: layout::hosts_dataset(&self.0),
        }
    }

    /// The dataset of one host under this root.
    pub fn host(&self, host: &HostName) -> HostDataset {
        HostDataset::new(self, host)
    }

    /// The pool the tree lives on: its first component.
    pub fn pool(&self) -> Pool {
        Pool(self.0.split('/').next().unwrap_or(&self.0).to_string())
    }

    /// `<root>/restore`, the parent of `zbk restore`'s clones.
    pub fn restore_parent(&self) -> RestoreParent {
        RestoreParent(RestoreClone::parent(&self.0))
    }
}

impl fmt::Display for RootDataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `<root>/hosts`: the parent of the host datasets, made by `zbk init` (or `zbk replicate`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostsDataset {
    root: RootDataset,
    name: String,
}

impl HostsDataset {
    pub fn root(&self) -> &RootDataset {
        &self.root
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for HostsDataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// The pool a zbk tree lives on, for the pool-wide properties (`creation`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool(String);

impl Pool {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `<root>/restore`: made unmounted the first time `zbk restore` needs a clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreParent(String);

impl RestoreParent {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `<dataset>/hosts/<host>`: one host's dataset under the zbk dataset (the one `zbk init` made,
/// here or on a replication target).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostDataset {
    root: RootDataset,
    host: HostName,
    name: String,
}

impl HostDataset {
    pub fn new(root: &RootDataset, host: &HostName) -> HostDataset {
        HostDataset {
            root: root.clone(),
            host: host.clone(),
            name: layout::host_dataset(root.as_str(), host),
        }
    }

    /// The host dataset a listing named, accepted only when it is the one `new` builds.
    pub fn listed(root: &RootDataset, host: &HostName, listed: &str) -> Result<HostDataset> {
        let dataset = HostDataset::new(root, host);
        if dataset.name != listed {
            bail!(
                "{:?} is not the dataset of host {host} ({})",
                listed.escape_debug().to_string(),
                dataset.name
            );
        }
        Ok(dataset)
    }

    pub fn host(&self) -> &HostName {
        &self.host
    }

    /// `<root>/hosts`, the dataset this one lies in.
    pub fn hosts(&self) -> HostsDataset {
        self.root.hosts()
    }

    /// The zbk dataset it lies under.
    pub fn root(&self) -> &RootDataset {
        &self.root
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Re-derives the name from its parts and checks it is exactly two levels under
    /// `<root>/hosts`, with a valid host name: what every destroy asks just before it spawns.
    pub fn check(&self) -> Result<&str> {
        let refuse = |why: &str| -> Result<&str> {
            bail!(
                "refusing to destroy {:?}: {why}",
                self.name.escape_debug().to_string()
            )
        };
        if !is_plain_dataset(self.root.as_str()) {
            return refuse("the zbk dataset is not a plain dataset name");
        }
        if HostName::parse(self.host.as_str()).is_err() {
            return refuse("not a valid host name");
        }
        let Some(rest) = self
            .name
            .strip_prefix(&layout::hosts_dataset(&self.root.0))
            .and_then(|r| r.strip_prefix('/'))
        else {
            return refuse(&format!(
                "not under {}",
                layout::hosts_dataset(&self.root.0)
            ));
        };
        if rest != self.host.as_str() || rest.contains(['/', '@']) {
            return refuse(&format!(
                "not exactly one host dataset under {}",
                layout::hosts_dataset(&self.root.0)
            ));
        }
        Ok(&self.name)
    }
}

impl fmt::Display for HostDataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// `dataset@name`: one snapshot of a host dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot(String);

impl Snapshot {
    /// One of zbk's own snapshots.
    pub fn new(dataset: &HostDataset, name: &SnapName) -> Snapshot {
        Snapshot(format!("{dataset}@{name}"))
    }

    /// Any snapshot of a host dataset as a listing or the user named it, zbk's or not: for
    /// reading, stamping, holds and sends. Destroys take `SnapName`s, never one of these.
    pub fn listed(dataset: &HostDataset, name: &str) -> Result<Snapshot> {
        if name.is_empty() || name.contains(['@', '/', ',']) || name.chars().any(char::is_control) {
            bail!(
                "{:?} is not a snapshot name",
                name.escape_debug().to_string()
            );
        }
        Ok(Snapshot(format!("{dataset}@{name}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The argument of one `zfs destroy` of some snapshots of one host dataset,
/// `dataset@a[,b...]`, re-checked whole: a host dataset exactly under the hosts tree, and one
/// `@` followed by names of zbk's grammar only.
pub fn destroy_target(dataset: &HostDataset, names: &[SnapName]) -> Result<String> {
    let base = dataset.check()?;
    if names.is_empty() {
        bail!("refusing to destroy {base}@: no snapshot named");
    }
    for name in names {
        if !is_snapshot_name(name.as_str()) {
            bail!(
                "refusing to destroy {base}@{:?}: not a snapshot name zbk makes",
                name.as_str().escape_debug().to_string()
            );
        }
    }
    let list: Vec<&str> = names.iter().map(SnapName::as_str).collect();
    let target = format!("{base}@{}", list.join(","));
    if target.matches('@').count() != 1 {
        bail!("refusing to destroy {target:?}: not one '@'");
    }
    Ok(target)
}

/// `<dataset>/restore/<host>-<pid>-<n>`: a read-only clone `zbk restore` mounts to read a
/// snapshot where `.zfs/snapshot` is missing, outside the hosts tree so no listing sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreClone {
    root: String,
    leaf: String,
}

impl RestoreClone {
    pub fn new(root: &str, host: &HostName, pid: u32, n: usize) -> RestoreClone {
        RestoreClone {
            root: root.to_string(),
            leaf: format!("{host}-{pid}-{n}"),
        }
    }

    /// The parent of every restore clone: `<dataset>/restore`.
    pub fn parent(root: &str) -> String {
        format!("{root}/restore")
    }

    /// The clone's last component, which also names its mountpoint directory.
    pub fn leaf(&self) -> &str {
        &self.leaf
    }

    pub fn name(&self) -> String {
        format!("{}/{}", RestoreClone::parent(&self.root), self.leaf)
    }

    /// Checks the name is exactly one component under `<root>/restore` before a destroy.
    pub fn check(&self) -> Result<String> {
        let name = self.name();
        if !is_plain_dataset(&self.root) || !is_safe_component(&self.leaf) {
            bail!(
                "refusing to destroy {:?}: not exactly one clone under {}",
                name.escape_debug().to_string(),
                RestoreClone::parent(&self.root)
            );
        }
        Ok(name)
    }
}

impl fmt::Display for RestoreClone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Values no constructor makes, as a bug or a later change could: for the tests that prove
/// the re-checks refuse them.
#[cfg(test)]
impl HostDataset {
    pub fn forged(root: &str, host: &str, name: &str) -> HostDataset {
        HostDataset {
            root: RootDataset(root.into()),
            host: HostName::forged(host),
            name: name.into(),
        }
    }
}

#[cfg(test)]
impl RestoreClone {
    pub fn forged(root: &str, leaf: &str) -> RestoreClone {
        RestoreClone {
            root: root.into(),
            leaf: leaf.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(name: &str) -> RootDataset {
        RootDataset::parse(name).unwrap()
    }

    fn host(name: &str) -> HostName {
        HostName::parse(name).unwrap()
    }

    fn snap(name: &str) -> SnapName {
        SnapName::parse(name).unwrap()
    }

    const S1: &str = "2026-11-27T013005Z";
    const S2: &str = "failed-2026-11-27T023005Z-1";

    #[test]
    fn names_are_built_in_one_shape() {
        let ds = HostDataset::new(&root("tank/backup"), &host("web1"));
        assert_eq!(ds.as_str(), "tank/backup/hosts/web1");
        assert_eq!(ds.check().unwrap(), "tank/backup/hosts/web1");
        assert_eq!(
            Snapshot::new(&ds, &snap(S1)).as_str(),
            "tank/backup/hosts/web1@2026-11-27T013005Z"
        );
        assert_eq!(
            Snapshot::listed(&ds, "manual").unwrap().as_str(),
            "tank/backup/hosts/web1@manual"
        );
        assert_eq!(
            destroy_target(&ds, &[snap(S1), snap(S2)]).unwrap(),
            format!("tank/backup/hosts/web1@{S1},{S2}")
        );
        assert!(HostDataset::listed(&root("tank/backup"), &host("web1"), ds.as_str()).is_ok());
        let root = root("tank/backup");
        assert_eq!(root.hosts().as_str(), "tank/backup/hosts");
        assert_eq!(root.host(&host("web1")), ds);
        assert_eq!(ds.hosts(), root.hosts());
        assert_eq!(root.pool().as_str(), "tank");
        assert_eq!(root.restore_parent().as_str(), "tank/backup/restore");
        for bad in [
            "", "/tank", "tank/", "tank//b", "tank@s", "-r", "tank/a b", "tank/..",
        ] {
            assert!(RootDataset::parse(bad).is_err(), "{bad:?}");
        }
        let clone = RestoreClone::new("tank/backup", &host("web1"), 42, 0);
        assert_eq!(clone.check().unwrap(), "tank/backup/restore/web1-42-0");
    }

    #[test]
    fn a_listed_dataset_must_be_the_host_own() {
        for listed in [
            "tank/backup/hosts/web2",
            "tank/backup/hosts/web1/x",
            "tank/backup/hosts",
            "tank/hosts/web1",
            "tank/backup/hosts/web1@s",
        ] {
            assert!(
                HostDataset::listed(&root("tank/backup"), &host("web1"), listed).is_err(),
                "{listed}"
            );
        }
    }

    #[test]
    fn the_recheck_refuses_anything_but_one_host_dataset() {
        let forged = |root: &str, name: &str| HostDataset::forged(root, "web1", name);
        for (ds, why) in [
            (forged("tank/backup", "tank/backup"), "not under"),
            (forged("tank/backup", "tank/backup/hosts"), "not under"),
            (forged("tank/backup", "tank"), "not under"),
            (
                forged("tank/backup", "tank/backup/hostsx/web1"),
                "not under",
            ),
            (forged("tank/backup", "tank/other/hosts/web1"), "not under"),
            (
                forged("tank/backup", "tank/backup/hosts/web1/d"),
                "not exactly one",
            ),
            (
                forged("tank/backup", "tank/backup/hosts/web2"),
                "not exactly one",
            ),
            (
                forged("tank/backup", "tank/backup/hosts/web1@s"),
                "not exactly one",
            ),
            (forged("", "/hosts/web1"), "zbk dataset"),
            (forged("tank//b", "tank//b/hosts/web1"), "zbk dataset"),
            (forged("-r tank", "-r tank/hosts/web1"), "zbk dataset"),
        ] {
            let err = ds.check().unwrap_err().to_string();
            assert!(err.contains(why), "{ds:?}: {err}");
            assert!(err.starts_with("refusing to destroy"), "{err}");
            let err = destroy_target(&ds, &[snap(S1)]).unwrap_err().to_string();
            assert!(err.contains(why), "{ds:?}: {err}");
        }
        let bad_host = HostDataset::forged("tank", "../x", "tank/hosts/../x");
        assert!(bad_host
            .check()
            .unwrap_err()
            .to_string()
            .contains("host name"));
    }

    #[test]
    fn a_destroy_target_holds_only_zbk_names_after_one_at() {
        let ds = HostDataset::new(&root("tank"), &host("a"));
        let err = destroy_target(&ds, &[]).unwrap_err().to_string();
        assert!(err.contains("no snapshot named"), "{err}");
        for forged in ["manual", "", "x@y", "2026-11-27T013005Z,manual", "-r"] {
            let names = [snap(S1), SnapName::forged(forged)];
            let err = destroy_target(&ds, &names).unwrap_err().to_string();
            assert!(
                err.contains("not a snapshot name zbk makes"),
                "{forged}: {err}"
            );
        }
    }

    #[test]
    fn listed_snapshot_names_cannot_reach_another_dataset() {
        let ds = HostDataset::new(&root("tank"), &host("a"));
        for bad in ["", "x@y", "../b", "a,b", "a\nb"] {
            assert!(Snapshot::listed(&ds, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_clone_recheck_refuses_other_names() {
        let forged = RestoreClone::forged;
        for clone in [
            forged("tank", "a/b"),
            forged("tank", ""),
            forged("tank", ".."),
            forged("tank", "x@y"),
            forged("", "x"),
            forged("tank/", "x"),
        ] {
            let err = clone.check().unwrap_err().to_string();
            assert!(err.contains("refusing to destroy"), "{clone:?}: {err}");
        }
    }
}
