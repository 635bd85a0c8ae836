//! Pure reading of what `zbk run` asks zfs before it backs anything up, in as few `zfs get`s
//! as it can: one listing of the tree tells the hosts, whether each is retired, the pool's
//! capacity and whether each host's dataset can store ACLs and extended attributes; one
//! listing of a host's snapshots, only for guard.max_delete, tells the last good file count.

use crate::dataset::{HostDataset, Snapshot};
use crate::flavour::Flavour;
use crate::inventory::{self, Inventory};
use crate::layout;
use crate::listing::Listing;
use crate::names::HostName;
use crate::stamp::{PROP_FILES, PROP_RETIRED, PROP_STATUS};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Asked of the tree on any `zfs`.
pub const PROPS: &[&str] = &[PROP_RETIRED, "used", "available"];
/// Asked as well on OpenZFS, which alone knows `acltype`.
pub const OPENZFS_PROPS: &[&str] = &["acltype", "xattr"];
/// Asked of one host's snapshots for guard.max_delete.
pub const FILES_PROPS: &[&str] = &[PROP_STATUS, PROP_FILES, "createtxg"];

/// Whether a host's dataset keeps what rsync's `--acls` and `--xattrs` copy, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Storable {
    pub acls: bool,
    pub xattrs: bool,
    /// The reason for what it cannot keep, for the run log and `zbk doctor`.
    pub why: String,
}

impl Storable {
    pub fn all() -> Storable {
        Storable {
            acls: true,
            xattrs: true,
            why: String::new(),
        }
    }

    /// `judge` of `dataset`'s `acltype` and `xattr`, as a `zfs get` of `OPENZFS_PROPS` listed
    /// them.
    pub fn listed(flavour: Flavour, listing: &Listing, dataset: &str) -> Storable {
        Storable::judge(
            flavour,
            listing.value(dataset, "acltype"),
            listing.value(dataset, "xattr"),
        )
    }

    /// On `flavour`, with these values of the dataset's `acltype` and `xattr` (OpenZFS only).
    /// POSIX ACLs need `acltype=posix` (`posixacl`); extended attributes anything but
    /// `xattr=off`, which leaves ACLs working. zfs-fuse stores neither.
    pub fn judge(flavour: Flavour, acltype: Option<&str>, xattr: Option<&str>) -> Storable {
        if flavour == Flavour::Legacy {
            return Storable {
                acls: false,
                xattrs: false,
                why: "zfs-fuse cannot store ACLs or extended attributes".into(),
            };
        }
        // A value that did not come back is no reason to drop anything: rsync will say.
        let acls = acltype.is_none_or(|v| v == "posix" || v == "posixacl");
        let xattrs = xattr.is_none_or(|v| v != "off");
        let mut why = Vec::new();
        if !acls {
            why.push(format!("acltype={}", acltype.unwrap_or_default()));
        }
        if !xattrs {
            why.push("xattr=off".to_string());
        }
        Storable {
            acls,
            xattrs,
            why: if why.is_empty() {
                String::new()
            } else {
                format!("the dataset has {}", why.join(" and "))
            },
        }
    }
}

/// What the run's listing of the tree said.
pub struct Facts {
    pub inventory: Inventory,
    /// Whether the listing reached the hosts dataset at all.
    pub has_hosts: bool,
    flavour: Flavour,
    storable: BTreeMap<HostName, Storable>,
    /// The pool's capacity at the listing, for the first host to start; the others read it
    /// again, since a fleet run can take hours.
    capacity: Mutex<Option<u8>>,
}

impl Facts {
    /// What a host's dataset can store; all of it for a host the listing did not see.
    pub fn storable(&self, host: &HostName) -> Storable {
        match self.storable.get(host) {
            Some(s) => s.clone(),
            None if self.flavour == Flavour::Legacy => Storable::judge(self.flavour, None, None),
            None => Storable::all(),
        }
    }

    /// The capacity the listing saw, once: `None` after the first call.
    pub fn take_capacity(&self) -> Option<u8> {
        self.capacity
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

/// Parses `zfs get -H -p -d 2 -o name,property,value,source PROPS [OPENZFS_PROPS] <root>`,
/// `root` being the dataset given to `zbk init`.
pub fn parse(output: &str, root: &str, flavour: Flavour) -> Facts {
    let props: Vec<&str> = PROPS.iter().chain(OPENZFS_PROPS).copied().collect();
    let listing = Listing::parse(output, &props);
    let hosts = crate::layout::hosts_dataset(root);
    let inventory = inventory::from_listing(&listing, &hosts);
    let number = |prop: &str| {
        listing
            .value(root, prop)
            .and_then(|v| v.parse::<u64>().ok())
    };
    let capacity = number("used")
        .zip(number("available"))
        .map(|(u, a)| capacity(u, a));
    let storable = inventory
        .hosts
        .values()
        .map(|h| {
            (
                h.name.clone(),
                Storable::listed(flavour, &listing, &h.dataset),
            )
        })
        .collect();
    Facts {
        has_hosts: listing.names.contains_key(hosts.as_str()),
        inventory,
        flavour,
        storable,
        capacity: Mutex::new(capacity),
    }
}

/// How full a pool is, in percent of what a dataset can reach: used / (used + available).
pub fn capacity(used: u64, available: u64) -> u8 {
    let total = (u128::from(used) + u128::from(available)).max(1);
    u8::try_from(u128::from(used) * 100 / total).unwrap_or(100)
}

/// The file count stamped on the newest good snapshot, from a listing of FILES_PROPS of one
/// host dataset and its snapshots (`-d 1`); `None` without one, or when that snapshot has no
/// count of its own.
pub fn last_good_files(output: &str, host_dataset: &HostDataset) -> Option<u64> {
    let listing = Listing::parse(output, FILES_PROPS);
    let hosts = layout::hosts_dataset(host_dataset.root().as_str());
    let inv = inventory::from_listing(&listing, &hosts);
    let host = inv.hosts.values().next()?;
    let good = host.snapshots.iter().rev().find(|s| s.is_good())?;
    listing
        .own(
            Snapshot::listed(host_dataset, &good.name).ok()?.as_str(),
            PROP_FILES,
        )
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, prop: &str, value: &str, source: &str) -> String {
        format!("{name}\t{prop}\t{value}\t{source}\n")
    }

    fn host(name: &str) -> HostName {
        HostName::parse(name).unwrap()
    }

    #[test]
    fn one_listing_gives_hosts_capacity_and_what_each_can_store() {
        let mut out = String::new();
        out.push_str(&row("t/b", "used", "750", "-"));
        out.push_str(&row("t/b", "available", "250", "-"));
        out.push_str(&row("t/b", "acltype", "off", "default"));
        out.push_str(&row("t/b/hosts", "acltype", "posix", "local"));
        for (h, acl, xattr) in [
            ("a", "posix", "sa"),
            ("b", "off", "sa"),
            ("c", "posix", "off"),
        ] {
            let ds = format!("t/b/hosts/{h}");
            out.push_str(&row(&ds, PROP_RETIRED, "-", "-"));
            out.push_str(&row(&ds, "used", "100", "-"));
            out.push_str(&row(&ds, "acltype", acl, "inherited from t/b/hosts"));
            out.push_str(&row(&ds, "xattr", xattr, "local"));
        }
        out.push_str(&row("t/b/restore/x", "used", "1", "-"));
        let facts = parse(&out, "t/b", Flavour::OpenZfs);
        assert!(facts.has_hosts);
        assert!(!parse(&row("t/b", "used", "1", "-"), "t/b", Flavour::OpenZfs).has_hosts);
        assert_eq!(facts.inventory.hosts.len(), 3);
        assert_eq!(facts.inventory.unreadable, 0);
        assert_eq!(facts.take_capacity(), Some(75));
        assert_eq!(facts.take_capacity(), None, "fresh for the first host only");
        assert_eq!(facts.storable(&host("a")), Storable::all());
        let b = facts.storable(&host("b"));
        assert!(!b.acls && b.xattrs, "{b:?}");
        assert_eq!(b.why, "the dataset has acltype=off");
        let c = facts.storable(&host("c"));
        assert!(c.acls && !c.xattrs, "xattr=off leaves ACLs working: {c:?}");
        assert_eq!(facts.storable(&host("unseen")), Storable::all());
    }

    #[test]
    fn zfs_fuse_stores_neither() {
        let out = row("t/b/hosts/a", PROP_RETIRED, "-", "-");
        let facts = parse(&out, "t/b", Flavour::Legacy);
        let a = facts.storable(&host("a"));
        assert!(!a.acls && !a.xattrs);
        assert!(a.why.contains("zfs-fuse"));
        assert_eq!(facts.take_capacity(), None);
        assert!(!facts.storable(&host("unseen")).acls);
    }

    #[test]
    fn capacity_never_divides_by_zero_or_overflows() {
        assert_eq!(capacity(0, 0), 0);
        assert_eq!(capacity(1, 0), 100);
        assert_eq!(capacity(u64::MAX, u64::MAX), 50);
    }

    #[test]
    fn the_newest_good_snapshot_gives_the_file_count() {
        let ds = "t/b/hosts/a";
        let mut out = row(ds, PROP_STATUS, "-", "-");
        for (snap, txg, status, files, src) in [
            ("s1", "10", "ok", "500", "local"),
            ("s2", "20", "warning", "700", "local"),
            ("failed-s3", "30", "failed", "-", "-"),
        ] {
            let name = format!("{ds}@{snap}");
            out.push_str(&row(&name, PROP_STATUS, status, "local"));
            out.push_str(&row(&name, PROP_FILES, files, src));
            out.push_str(&row(&name, "createtxg", txg, "-"));
        }
        let host = HostDataset::new(
            &crate::dataset::RootDataset::parse("t/b").unwrap(),
            &crate::names::HostName::parse("a").unwrap(),
        );
        assert_eq!(last_good_files(&out, &host), Some(700));
        let inherited = out.replace("700\tlocal", "700\tinherited from t/b/hosts");
        assert_eq!(last_good_files(&inherited, &host), None);
        assert_eq!(
            last_good_files(&row(ds, PROP_STATUS, "-", "-"), &host),
            None
        );
        assert_eq!(last_good_files("", &host), None);
    }
}
