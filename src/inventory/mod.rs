//! Pure parsing of one `zfs get` listing of the hosts tree into hosts and their snapshots.
//!
//! User properties are arbitrary text set by anyone, so nothing here trusts them: a value that is
//! inherited, missing or unparsable is recorded as such, and the callers decide to keep.

#[cfg(test)]
mod fuzz;

use crate::dataset;
use crate::listing::{number, own, Listing};
use crate::names::HostName;
use crate::rsync_report::Stats;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

use crate::stamp::{
    Stamp, Status, PROP_CHANGES, PROP_EXPIRES, PROP_LAST_UNREACHABLE, PROP_MASS_CHANGE,
    PROP_OFFSITE_EXPIRES, PROP_PINNED, PROP_PIN_REASON, PROP_RETIRED, PROP_STATUS, PROP_TIER,
    PROP_VERIFIED,
};
use crate::verify::Verified;

/// Every property one inventory asks for, in one `zfs get`.
pub const PROPS: &[&str] = &[
    PROP_EXPIRES,
    PROP_OFFSITE_EXPIRES,
    PROP_TIER,
    PROP_STATUS,
    PROP_RETIRED,
    PROP_PINNED,
    PROP_CHANGES,
    PROP_MASS_CHANGE,
    PROP_PIN_REASON,
    PROP_LAST_UNREACHABLE,
    PROP_VERIFIED,
    "usedbysnapshots",
    "createtxg",
    "creation",
    "userrefs",
    "numclones",
    "used",
    "referenced",
];

/// One snapshot of a host dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The part after `@`.
    pub name: String,
    pub stamp: Stamp,
    pub tier: Option<String>,
    pub status: Option<Status>,
    pub created: Option<DateTime<Utc>>,
    pub createtxg: u64,
    pub held: bool,
    pub cloned: bool,
    pub used: Option<u64>,
    /// The size of the tree it holds (`referenced`): the backup's size at that time.
    pub referenced: Option<u64>,
    /// When `zbk keep` (or the mass-change guard) set its expiry, if one did.
    pub pinned: Option<String>,
    /// The run's change figures, where it recorded them.
    pub changes: Option<Stats>,
    /// Why this run tripped guard.max_change, if it did.
    pub mass_change: Option<String>,
    /// Why zbk pinned it, when zbk did (see `PROP_PIN_REASON`).
    pub pin_reason: Option<String>,
    /// What `zbk verify` found comparing it with the client, if it did.
    pub verified: Option<Verified>,
}

impl Snapshot {
    /// Whether zbk stamped this snapshot: it carries a local tier or status. Such a snapshot
    /// without a valid expiry is worth a warning; a foreign one is not.
    pub fn is_zbk(&self) -> bool {
        self.tier.is_some() || self.status.is_some()
    }

    /// A good backup: stamped ok or warning by zbk.
    pub fn is_good(&self) -> bool {
        self.status.is_some_and(Status::is_good)
    }
}

/// One host dataset and its snapshots, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct Host {
    pub name: HostName,
    pub dataset: String,
    pub retired: Option<String>,
    /// The last run that could not reach the client (`online = "sometimes"`), when one did not.
    pub unreachable: Option<DateTime<Utc>>,
    pub used: Option<u64>,
    /// Space the snapshots hold together (`usedbysnapshots`): what destroying them all frees.
    pub snapshots_used: Option<u64>,
    pub snapshots: Vec<Snapshot>,
}

impl Host {
    /// One of this host's snapshots, named as the hosts-tree listing under `root` found it.
    pub fn full_snapshot(
        &self,
        root: &dataset::RootDataset,
        name: &str,
    ) -> anyhow::Result<dataset::Snapshot> {
        dataset::Snapshot::listed(
            &dataset::HostDataset::listed(root, &self.name, &self.dataset)?,
            name,
        )
    }
}

/// The hosts tree as one listing saw it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inventory {
    pub hosts: BTreeMap<HostName, Host>,
    /// Lines that could not be read (a value with a tab or newline breaks `-H` output).
    pub unreadable: usize,
}

/// Parses `zfs get -H -p -r -o name,property,value,source PROPS <hosts>` output.
/// `hosts` is the hosts dataset (`tank/backup/hosts`); datasets that are not its direct
/// children with a valid host name are ignored, as are their snapshots.
pub fn parse(output: &str, hosts: &str) -> Inventory {
    from_listing(&Listing::parse(output, PROPS), hosts)
}

/// The hosts and snapshots in a listing; rows of other datasets are ignored.
pub fn from_listing(listing: &Listing, hosts: &str) -> Inventory {
    let prefix = format!("{hosts}/");
    let mut inv = Inventory {
        unreadable: listing.unreadable,
        ..Inventory::default()
    };
    // Datasets sort before their own snapshots, so a snapshot finds its host already there.
    for (name, props) in &listing.names {
        let Some((host, snap)) = host_of(name, &prefix) else {
            continue;
        };
        let local = |p: &str| own(props, p);
        let number = |p: &str| number(props, p);
        match snap {
            None => {
                inv.hosts.insert(
                    host.clone(),
                    Host {
                        name: host,
                        dataset: name.to_string(),
                        retired: local(PROP_RETIRED).map(str::to_string),
                        unreachable: local(PROP_LAST_UNREACHABLE)
                            .and_then(|v| crate::expiry::parse_time(v).ok()),
                        used: number("used"),
                        snapshots_used: number("usedbysnapshots"),
                        snapshots: Vec::new(),
                    },
                );
            }
            Some(snap) => {
                let Some(entry) = inv.hosts.get_mut(&host) else {
                    continue;
                };
                entry.snapshots.push(Snapshot {
                    name: snap.to_string(),
                    stamp: Stamp::read(local(PROP_EXPIRES), local(PROP_OFFSITE_EXPIRES)),
                    tier: local(PROP_TIER).map(str::to_string),
                    status: local(PROP_STATUS).and_then(Status::parse),
                    created: number("creation")
                        .and_then(|s| DateTime::from_timestamp(i64::try_from(s).ok()?, 0)),
                    createtxg: number("createtxg").unwrap_or(0),
                    held: number("userrefs").is_some_and(|n| n > 0),
                    cloned: number("numclones").is_some_and(|n| n > 0),
                    used: number("used"),
                    referenced: number("referenced"),
                    pinned: local(PROP_PINNED).map(str::to_string),
                    changes: local(PROP_CHANGES).and_then(Stats::from_property),
                    mass_change: local(PROP_MASS_CHANGE).map(str::to_string),
                    pin_reason: local(PROP_PIN_REASON).map(str::to_string),
                    verified: local(PROP_VERIFIED).and_then(Verified::from_property),
                });
            }
        }
    }
    for host in inv.hosts.values_mut() {
        host.snapshots.sort_by(|a, b| {
            a.createtxg
                .cmp(&b.createtxg)
                .then_with(|| a.name.cmp(&b.name))
        });
    }
    inv
}

/// The host a dataset or snapshot name under `prefix` (`tank/backup/hosts/`) belongs to, and
/// the snapshot's short name; `None` for anything else, or an invalid host name.
pub fn host_of<'a>(name: &'a str, prefix: &str) -> Option<(HostName, Option<&'a str>)> {
    let rest = name.strip_prefix(prefix)?;
    let (host, snap) = match rest.split_once('@') {
        Some((h, s)) => (h, Some(s)),
        None => (rest, None),
    };
    Some((HostName::parse(host).ok()?, snap))
}

impl Snapshot {
    /// A snapshot of which nothing is known but its name.
    pub fn bare(name: &str) -> Snapshot {
        Snapshot {
            name: name.into(),
            stamp: Stamp::Absent,
            tier: None,
            status: None,
            created: None,
            createtxg: 0,
            held: false,
            cloned: false,
            used: None,
            referenced: None,
            pinned: None,
            changes: None,
            mass_change: None,
            pin_reason: None,
            verified: None,
        }
    }
}

/// Fixtures for the tests of the modules that judge snapshots.
#[cfg(test)]
impl Snapshot {
    /// A good zbk snapshot of the default tier with nothing else known.
    pub fn sample(name: &str) -> Snapshot {
        Snapshot {
            tier: Some("default".into()),
            status: Some(Status::Ok),
            ..Snapshot::bare(name)
        }
    }

    /// A snapshot kept forever, created at `created`, of a run that ended with `status` (a
    /// foreign snapshot without one).
    pub fn taken(name: &str, created: &str, status: Option<Status>) -> Snapshot {
        Snapshot {
            stamp: Stamp::Valid(crate::expiry::Expiry::Never),
            tier: status.map(|_| "default".into()),
            status,
            created: Some(crate::expiry::parse_time(created).expect("a valid time")),
            used: Some(1),
            ..Snapshot::sample(name)
        }
    }
}

#[cfg(test)]
impl Host {
    /// An active host `web1` with these snapshots, using 4096 bytes, 1024 of them theirs.
    pub fn sample(snapshots: Vec<Snapshot>) -> Host {
        Host {
            name: HostName::parse("web1").expect("valid"),
            dataset: "t/hosts/web1".into(),
            retired: None,
            unreachable: None,
            used: Some(4096),
            snapshots_used: Some(1024),
            snapshots,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, prop: &str, value: &str, source: &str) -> String {
        format!("{name}\t{prop}\t{value}\t{source}\n")
    }

    fn snap(out: &mut String, name: &str, expires: (&str, &str), status: &str, txg: u64) {
        out.push_str(&row(name, PROP_EXPIRES, expires.0, expires.1));
        out.push_str(&row(name, PROP_TIER, "default", "local"));
        out.push_str(&row(name, PROP_STATUS, status, "local"));
        out.push_str(&row(name, "createtxg", &txg.to_string(), "-"));
        out.push_str(&row(name, "creation", "1795744389", "-"));
        out.push_str(&row(name, "userrefs", "0", "-"));
        out.push_str(&row(name, "numclones", "0", "-"));
        out.push_str(&row(name, "used", "4096", "-"));
    }

    #[test]
    fn a_listing_becomes_hosts_and_snapshots() {
        let mut out = String::new();
        out.push_str(&row("t/hosts", PROP_EXPIRES, "-", "-"));
        out.push_str(&row("t/hosts/a", PROP_RETIRED, "-", "-"));
        out.push_str(&row("t/hosts/a", "used", "8192", "-"));
        snap(
            &mut out,
            "t/hosts/a@s2",
            ("2026-12-04T01:30:00Z", "local"),
            "ok",
            20,
        );
        snap(
            &mut out,
            "t/hosts/a@s1",
            ("2026-12-01T01:30:00Z", "received"),
            "failed",
            10,
        );
        snap(
            &mut out,
            "t/hosts/a@s3",
            ("2026-12-01T01:30:00Z", "inherited from t/hosts/a"),
            "ok",
            30,
        );
        snap(&mut out, "t/hosts/a@s4", ("garbage", "local"), "ok", 40);
        out.push_str(&row(
            "t/hosts/b",
            PROP_RETIRED,
            "2026-11-27T00:00:00Z",
            "local",
        ));
        out.push_str(&row("t/hosts/Bad", PROP_RETIRED, "-", "-"));
        snap(
            &mut out,
            "t/hosts/Bad@x",
            ("2026-12-01T01:30:00Z", "local"),
            "ok",
            1,
        );
        out.push_str(&row("t/other/c", PROP_RETIRED, "-", "-"));
        let inv = parse(&out, "t/hosts");
        assert_eq!(inv.hosts.len(), 2);
        let a = &inv.hosts[&HostName::parse("a").unwrap()];
        assert_eq!(a.used, Some(8192));
        let names: Vec<&str> = a.snapshots.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["s1", "s2", "s3", "s4"]);
        assert!(matches!(a.snapshots[0].stamp, Stamp::Valid(_)));
        assert_eq!(a.snapshots[0].status, Some(Status::Failed));
        assert_eq!(a.snapshots[2].stamp, Stamp::Absent);
        assert_eq!(a.snapshots[3].stamp, Stamp::Invalid("garbage".into()));
        let b = &inv.hosts[&HostName::parse("b").unwrap()];
        assert_eq!(b.retired.as_deref(), Some("2026-11-27T00:00:00Z"));
        assert!(b.snapshots.is_empty());
    }

    #[test]
    fn values_with_tabs_and_newlines_do_not_confuse_the_parser() {
        let mut out = String::new();
        out.push_str(&row("t/hosts/a", PROP_RETIRED, "-", "-"));
        out.push_str(&row("t/hosts/a@s1", PROP_EXPIRES, "2026\t12", "local"));
        out.push_str(&row(
            "t/hosts/a@s2",
            PROP_EXPIRES,
            "2026-12-04T01:30:00Z\nt/hosts/a@s9\tzbk:status\tok",
            "local",
        ));
        out.push_str(&row("t/hosts/a@s2", "createtxg", "5", "-"));
        let inv = parse(&out, "t/hosts");
        let a = &inv.hosts[&HostName::parse("a").unwrap()];
        assert_eq!(a.snapshots[0].stamp, Stamp::Invalid("2026\t12".into()));
        // The broken line and its tail are unreadable; s2 has no expiry and so is kept.
        assert!(inv.unreadable >= 1);
        let s2 = a.snapshots.iter().find(|s| s.name == "s2").unwrap();
        assert_eq!(s2.stamp, Stamp::Absent);
    }

    #[test]
    fn an_offsite_expiry_extends_a_replica() {
        let mut out = String::new();
        out.push_str(&row("t/hosts/a", PROP_RETIRED, "-", "-"));
        out.push_str(&row(
            "t/hosts/a@s1",
            PROP_EXPIRES,
            "2026-12-01T00:00:00Z",
            "received",
        ));
        out.push_str(&row("t/hosts/a@s1", PROP_OFFSITE_EXPIRES, "never", "local"));
        let inv = parse(&out, "t/hosts");
        let a = &inv.hosts[&HostName::parse("a").unwrap()];
        assert_eq!(
            a.snapshots[0].stamp,
            Stamp::Valid(crate::expiry::Expiry::Never)
        );
    }

    #[test]
    fn garbage_never_panics() {
        for junk in [
            "",
            "\t\t\t",
            "a\tb",
            "t/hosts/\t\t\t",
            "t/hosts/a@\tcreatetxg\tx\t-",
            "\u{0}\t\u{1}",
        ] {
            let _ = parse(junk, "t/hosts");
        }
    }
}
