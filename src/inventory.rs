//! Pure parsing of one `zfs get` listing of the hosts tree into hosts and their snapshots.
//!
//! User properties are arbitrary text set by anyone, so nothing here trusts them: a value that is
//! inherited, missing or unparsable is recorded as such, and the callers decide to keep.

use crate::expiry::Expiry;
use crate::names::HostName;
use crate::rsync_report::Stats;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};

/// The property holding a snapshot's expiry.
pub const PROP_EXPIRES: &str = "zbk:expires";
/// The tier (or tiers, comma-separated) a snapshot was stamped for.
pub const PROP_TIER: &str = "zbk:tier";
/// `ok`, `warning` or `failed`.
pub const PROP_STATUS: &str = "zbk:status";
/// How many files a good run copied (rsync --stats), for the next run's guard.max_delete.
pub const PROP_FILES: &str = "zbk:files";
/// A run's change figures from rsync --stats, in one value:
/// `files=N created=N deleted=N changed=N bytes=N` (see `rsync::Stats`).
pub const PROP_CHANGES: &str = "zbk:changes";
/// Set on the snapshot of a run that tripped guard.max_change: why.
pub const PROP_MASS_CHANGE: &str = "zbk:mass-change";
/// Why a snapshot is pinned when zbk pinned it itself: `mass change at TIME`, with
/// `; acknowledged at TIME` added once an admin has run `zbk keep` or `zbk restamp`.
pub const PROP_PIN_REASON: &str = "zbk:pin-reason";
/// Set on a host dataset by `zbk remove --expire`: the time it was retired.
pub const PROP_RETIRED: &str = "zbk:retired";
/// Set on a snapshot by `zbk keep`: the time its expiry was set by hand, which `zbk restamp`
/// then leaves alone.
pub const PROP_PINNED: &str = "zbk:pinned";

/// Set by `zbk replicate` on a replica's snapshot whose `offsite_expiry` outlasts its received
/// `zbk:expires`; the later of the two is the snapshot's expiry.
pub const PROP_OFFSITE_EXPIRES: &str = "zbk:offsite-expires";

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
    "usedbysnapshots",
    "createtxg",
    "creation",
    "userrefs",
    "numclones",
    "used",
];

/// How a run ended, as stamped in `zbk:status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    Warning,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "ok" => Some(Status::Ok),
            "warning" => Some(Status::Warning),
            "failed" => Some(Status::Failed),
            _ => None,
        }
    }

    /// Whether a snapshot with this status is a backup worth restoring.
    pub fn is_good(self) -> bool {
        self != Status::Failed
    }
}

/// What a snapshot's `zbk:expires` says, judged by its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stamp {
    /// Set on the snapshot itself (source local or received) and well-formed.
    Valid(Expiry),
    /// Set on the snapshot itself but unparsable: keep, and warn.
    Invalid(String),
    /// Inherited from a dataset, or not set at all: not zbk's to judge.
    Absent,
}

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
    /// When `zbk keep` (or the mass-change guard) set its expiry, if one did.
    pub pinned: Option<String>,
    /// The run's change figures, where it recorded them.
    pub changes: Option<Stats>,
    /// Why this run tripped guard.max_change, if it did.
    pub mass_change: Option<String>,
    /// Why zbk pinned it, when zbk did (see `PROP_PIN_REASON`).
    pub pin_reason: Option<String>,
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
    pub used: Option<u64>,
    /// Space the snapshots hold together (`usedbysnapshots`): what destroying them all frees.
    pub snapshots_used: Option<u64>,
    pub snapshots: Vec<Snapshot>,
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
    let (rows, unreadable) = rows(output, PROPS);
    from_rows(&rows, unreadable, hosts)
}

/// The rows of a `zfs get -H -o name,property,value,source` listing of `props`, by name:
/// property -> (value, source); and how many lines could not be read.
pub type Rows<'a> = BTreeMap<&'a str, HashMap<&'a str, (&'a str, &'a str)>>;

/// Splits a listing of `props` into its rows.
pub fn rows<'a>(output: &'a str, props: &[&str]) -> (Rows<'a>, usize) {
    let mut rows: Rows = BTreeMap::new();
    let mut unreadable = 0;
    for line in output.lines() {
        let Some((name, prop, value, source)) = split_row(line, props) else {
            if !line.is_empty() {
                unreadable += 1;
            }
            continue;
        };
        rows.entry(name).or_default().insert(prop, (value, source));
    }
    (rows, unreadable)
}

/// The hosts and snapshots in a listing's rows; rows of other datasets are ignored.
pub fn from_rows(rows: &Rows, unreadable: usize, hosts: &str) -> Inventory {
    let prefix = format!("{hosts}/");
    let mut inv = Inventory {
        unreadable,
        ..Inventory::default()
    };
    // Datasets sort before their own snapshots ('/' and '@' both follow the bare name).
    for (name, props) in rows {
        let Some((host, snap)) = host_of(name, &prefix) else {
            continue;
        };
        let local = |p: &str| own(props, p);
        let number = |p: &str| props.get(p).and_then(|(v, _)| v.parse::<u64>().ok());
        match snap {
            None => {
                inv.hosts.insert(
                    host.clone(),
                    Host {
                        name: host,
                        dataset: name.to_string(),
                        retired: local(PROP_RETIRED).map(str::to_string),
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
                let stamp = match local(PROP_EXPIRES) {
                    None => Stamp::Absent,
                    Some(v) => match Expiry::parse(v) {
                        Ok(e) => Stamp::Valid(e),
                        Err(_) => Stamp::Invalid(v.to_string()),
                    },
                };
                let stamp = with_offsite(stamp, local(PROP_OFFSITE_EXPIRES));
                entry.snapshots.push(Snapshot {
                    name: snap.to_string(),
                    stamp,
                    tier: local(PROP_TIER).map(str::to_string),
                    status: local(PROP_STATUS).and_then(Status::parse),
                    created: number("creation")
                        .and_then(|s| DateTime::from_timestamp(i64::try_from(s).ok()?, 0)),
                    createtxg: number("createtxg").unwrap_or(0),
                    held: number("userrefs").is_some_and(|n| n > 0),
                    cloned: number("numclones").is_some_and(|n| n > 0),
                    used: number("used"),
                    pinned: local(PROP_PINNED).map(str::to_string),
                    changes: local(PROP_CHANGES).and_then(Stats::from_property),
                    mass_change: local(PROP_MASS_CHANGE).map(str::to_string),
                    pin_reason: local(PROP_PIN_REASON).map(str::to_string),
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

/// A property's value where it is set on the dataset or snapshot itself (source local or
/// received), from one name's rows: property -> (value, source).
pub fn own<'a>(props: &HashMap<&str, (&'a str, &str)>, prop: &str) -> Option<&'a str> {
    props
        .get(prop)
        .filter(|(_, src)| *src == "local" || *src == "received")
        .map(|(v, _)| *v)
}

/// A replica's expiry: the later of its received stamp and its offsite one. Without a valid
/// stamp of its own the offsite one changes nothing, so a snapshot whose received properties
/// never arrived is still kept.
fn with_offsite(stamp: Stamp, offsite: Option<&str>) -> Stamp {
    match (stamp, offsite) {
        (Stamp::Valid(e), Some(v)) => match Expiry::parse(v) {
            Ok(o) => Stamp::Valid(e.max(o)),
            Err(_) => Stamp::Invalid(v.to_string()),
        },
        (stamp, _) => stamp,
    }
}

/// Splits one `-H` row into name, property, value and source. The value may itself hold tabs,
/// so the name and property are taken from the left and the source from the right.
fn split_row<'a>(line: &'a str, props: &[&str]) -> Option<(&'a str, &'a str, &'a str, &'a str)> {
    let (name, rest) = line.split_once('\t')?;
    let (prop, rest) = rest.split_once('\t')?;
    let (value, source) = rest.rsplit_once('\t')?;
    if !props.contains(&prop) {
        return None;
    }
    Some((name, prop, value, source))
}

/// Fixtures for the tests of the modules that judge snapshots.
#[cfg(test)]
impl Snapshot {
    /// A good zbk snapshot of the default tier with nothing else known.
    pub fn sample(name: &str) -> Snapshot {
        Snapshot {
            name: name.into(),
            stamp: Stamp::Absent,
            tier: Some("default".into()),
            status: Some(Status::Ok),
            created: None,
            createtxg: 0,
            held: false,
            cloned: false,
            used: None,
            pinned: None,
            changes: None,
            mass_change: None,
            pin_reason: None,
        }
    }
}

#[cfg(test)]
impl Host {
    /// An active host `web1` with these snapshots.
    pub fn sample(snapshots: Vec<Snapshot>) -> Host {
        Host {
            name: HostName::parse("web1").expect("valid"),
            dataset: "t/hosts/web1".into(),
            retired: None,
            used: None,
            snapshots_used: None,
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
    fn an_offsite_expiry_extends_a_replica_but_never_shortens_it() {
        let soon = Stamp::Valid(Expiry::parse("2026-12-01T00:00:00Z").unwrap());
        let later = "2027-01-01T00:00:00Z";
        assert_eq!(
            with_offsite(soon.clone(), Some(later)),
            Stamp::Valid(Expiry::parse(later).unwrap())
        );
        assert_eq!(
            with_offsite(soon.clone(), Some("2026-01-01T00:00:00Z")),
            soon
        );
        assert_eq!(with_offsite(soon.clone(), None), soon);
        assert_eq!(
            with_offsite(soon, Some("junk")),
            Stamp::Invalid("junk".into())
        );
        assert_eq!(with_offsite(Stamp::Absent, Some(later)), Stamp::Absent);
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
        assert_eq!(a.snapshots[0].stamp, Stamp::Valid(Expiry::Never));
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
