//! Pure: the summary each host's dataset carries (`zbk:record`), so that `zbk check` and `zbk
//! status` read one `zfs get` of the host datasets instead of every snapshot, and the rules that
//! tell a record still true from a stale one.
//!
//! A record is a claim, never trusted alone. It carries what the snapshots it names said of
//! themselves when it was written (their facts), and on OpenZFS the dataset's
//! `snapshots_changed` as it was then. While that value still reads the same, no snapshot was
//! made, destroyed or renamed since (`record_host` reads its listing in a later second than the
//! value, and any such change stamps the second it happens in), so the named snapshots still
//! exist as they were and their facts stand in for reading them back: check is one `zfs get`.
//! Where zfs has no such value (zfs-fuse), the named snapshots are read back with their
//! `createtxg` alone, which tells each from one destroyed and made again under its name. What
//! zbk later sets on a named snapshot (a verify's stamp) it records again; a hand `zfs set` of
//! zbk's properties on a snapshot is as far outside this as a hand-written record. Whatever
//! does not hold up sends that host to the full listing: slower, never wrong.

use crate::health::Summary;
use crate::inventory::{host_of, Host, Inventory, Snapshot};
use crate::listing::{value, Listing};
use crate::names::HostName;
use crate::rsync_report::Stats;
use crate::stamp::{
    Status, PROP_CHANGES, PROP_LAST_UNREACHABLE, PROP_RECORD, PROP_RETIRED, PROP_SNAPSHOTS_CHANGED,
    PROP_STATUS, PROP_TIER, PROP_VERIFIED,
};
use crate::verify::Verified;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// What the glance asks of the host datasets: what a summary reads of the dataset itself. Few,
/// since zfs-fuse's time goes by the row.
pub const HOST_PROPS: &[&str] = &[
    PROP_RECORD,
    PROP_RETIRED,
    PROP_LAST_UNREACHABLE,
    "used",
    "usedbysnapshots",
];
/// What it asks of the snapshots the records name: what a summary reads of them.
pub const SNAPSHOT_PROPS: &[&str] = &[
    PROP_STATUS,
    PROP_TIER,
    PROP_CHANGES,
    PROP_VERIFIED,
    "creation",
    "createtxg",
];

/// The host datasets with only the snapshots their records name, and the records.
#[derive(Debug, Default)]
pub struct Glance {
    pub inv: Inventory,
    pub claims: BTreeMap<HostName, Claim>,
}

/// A host dataset's record as read, with what judges it.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub dataset: String,
    /// `None`: no record, or one this zbk cannot read.
    pub record: Option<Record>,
    pub source: String,
    /// The dataset's `snapshots_changed` now; `None` where zfs has none.
    pub changed: Option<u64>,
}

impl Claim {
    /// Whether the record's facts stand for the snapshots it names: it was written here (not
    /// received with a replica), with facts, and no snapshot was made or destroyed since.
    pub fn vouched(&self) -> bool {
        self.source == "local"
            && self.changed.is_some()
            && self
                .record
                .as_ref()
                .is_some_and(|r| r.changed == self.changed && r.facts.is_some())
    }

    /// The full names of the snapshots the record names that must be read back: none when
    /// its facts stand for them, or when it cannot hold whatever they say.
    pub fn named(&self) -> Vec<String> {
        let Some(r) = &self.record else {
            return Vec::new();
        };
        if self.vouched() || self.source != "local" || r.changed != self.changed {
            return Vec::new();
        }
        let mut names: Vec<String> = [&r.good, &r.run, &r.verified]
            .into_iter()
            .flatten()
            .map(|n| format!("{}@{n}", self.dataset))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// What the named snapshots are read back for: only their `createtxg` where every record
/// that needs them carries facts (a snapshot destroyed and made again under its name has
/// another), else all that a summary reads of them.
pub fn confirming(claims: &BTreeMap<HostName, Claim>) -> &'static [&'static str] {
    let all_facts = claims
        .values()
        .all(|c| c.named().is_empty() || c.record.as_ref().is_some_and(|r| r.facts.is_some()));
    if all_facts {
        &["createtxg"]
    } else {
        SNAPSHOT_PROPS
    }
}

/// Each host's claim in a `zfs get -d 1` listing of the hosts dataset.
pub fn claims(output: &str, hosts: &str) -> BTreeMap<HostName, Claim> {
    let listing = Listing::parse(output, &[PROP_RECORD, PROP_SNAPSHOTS_CHANGED]);
    let prefix = format!("{hosts}/");
    let mut out = BTreeMap::new();
    for (name, props) in &listing.names {
        let Some((host, None)) = host_of(name, &prefix) else {
            continue;
        };
        let (record, source) = match props.get(PROP_RECORD) {
            Some((v, src)) => (Record::parse(v), src.to_string()),
            None => (None, "-".to_string()),
        };
        out.insert(
            host,
            Claim {
                dataset: name.to_string(),
                record,
                source,
                changed: value(props, PROP_SNAPSHOTS_CHANGED).and_then(|v| v.parse().ok()),
            },
        );
    }
    out
}

/// Puts the facts of each record into its host's listing, as reading the named snapshots
/// back would have: all of them where `snapshots_changed` vouches for them, else those that
/// were read back with the `createtxg` the facts have.
pub fn vouch(inv: &mut Inventory, claims: &BTreeMap<HostName, Claim>) {
    for (name, claim) in claims {
        let facts = claim.record.as_ref().and_then(|r| r.facts.clone());
        let (Some(facts), Some(host)) = (facts, inv.hosts.get_mut(name)) else {
            continue;
        };
        let vouched = claim.vouched();
        host.snapshots = facts
            .into_iter()
            .filter(|f| {
                vouched
                    || host
                        .snapshots
                        .iter()
                        .any(|s| s.name == f.name && s.createtxg == f.createtxg && s.createtxg > 0)
            })
            .collect();
        host.snapshots.sort_by(|a, b| {
            a.createtxg
                .cmp(&b.createtxg)
                .then_with(|| a.name.cmp(&b.name))
        });
    }
}

/// `snapshots_changed` of `dataset` in a listing; `None` where zfs has none.
pub fn changed(output: &str, dataset: &str) -> Option<u64> {
    Listing::parse(output, &[PROP_SNAPSHOTS_CHANGED])
        .value(dataset, PROP_SNAPSHOTS_CHANGED)
        .and_then(|v| v.parse().ok())
}

/// The record's format: a record of another version is stale.
const VERSION: &str = "3";

/// The longest value written with facts: past it (a long verify stamp), the record goes
/// without them and check reads the named snapshots back. OpenZFS refuses a user property
/// value of 8 KiB or more.
const MAX_VALUE: usize = 8000;

/// What a host's full listing said when the record was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The newest good snapshot's short name.
    pub good: Option<String>,
    /// The newest snapshot zbk took, whatever its status.
    pub run: Option<String>,
    pub failures: usize,
    pub snapshots: usize,
    pub pinned: usize,
    /// The newest mass change nobody has acknowledged.
    pub mass_change: Option<DateTime<Utc>>,
    /// The latest creation time of any snapshot: past `now`, some are dated in the future.
    pub latest: Option<DateTime<Utc>>,
    /// The dataset's `snapshots_changed` (OpenZFS) when the listing was read.
    pub changed: Option<u64>,
    /// The snapshot with the newest `zbk verify` stamp.
    pub verified: Option<String>,
    /// What the named snapshots said of themselves (`SNAPSHOT_PROPS`); `None` when that
    /// would make the value too long.
    pub facts: Option<Vec<Snapshot>>,
}

impl Record {
    /// The record of a host from its full listing, with its `snapshots_changed` when zfs has one.
    pub fn of(host: &Host, changed: Option<u64>, now: DateTime<Utc>) -> Record {
        let s = crate::health::summarize(host, now);
        let mut record = Record {
            good: s.last_good.map(|g| g.name.clone()),
            run: s.last_run.map(|r| r.name.clone()),
            failures: s.consecutive_failures,
            snapshots: host.snapshots.len(),
            pinned: s.pinned,
            mass_change: s.mass_change,
            latest: host.snapshots.iter().filter_map(|s| s.created).max(),
            changed,
            verified: s.verified.and_then(|v| {
                host.snapshots
                    .iter()
                    .find(|snap| snap.verified.as_ref().is_some_and(|w| std::ptr::eq(w, v)))
                    .map(|snap| snap.name.clone())
            }),
            facts: None,
        };
        let named = [&record.good, &record.run, &record.verified];
        record.facts = Some(
            host.snapshots
                .iter()
                .filter(|snap| named.iter().any(|n| n.as_ref() == Some(&snap.name)))
                .map(fact_of)
                .collect(),
        );
        if record.to_value().len() > MAX_VALUE {
            record.facts = None;
        }
        record
    }

    /// The property's value: `v=1 good=NAME run=NAME failures=N ...`, `-` for none.
    pub fn to_value(&self) -> String {
        let name = |n: &Option<String>| n.clone().unwrap_or_else(|| "-".into());
        let time = |t: Option<DateTime<Utc>>| t.map_or("-".into(), |t| t.timestamp().to_string());
        format!(
            "v={VERSION} good={} run={} failures={} snapshots={} pinned={} mass={} latest={} changed={} verified={} facts={}",
            name(&self.good),
            name(&self.run),
            self.failures,
            self.snapshots,
            self.pinned,
            time(self.mass_change),
            time(self.latest),
            self.changed.map_or("-".into(), |c| c.to_string()),
            name(&self.verified),
            self.facts.as_ref().map_or("-".into(), |f| {
                f.iter().map(fact_to_value).collect::<Vec<_>>().join(",")
            }),
        )
    }

    /// Reads a value back; `None` for anything not written by this version.
    pub fn parse(value: &str) -> Option<Record> {
        let mut fields = std::collections::HashMap::new();
        for word in value.split(' ') {
            let (k, v) = word.split_once('=')?;
            if fields.insert(k, v).is_some() {
                return None;
            }
        }
        if fields.len() != 11 || fields.get("v") != Some(&VERSION) {
            return None;
        }
        let name = |k: &str| -> Option<Option<String>> {
            match *fields.get(k)? {
                "-" => Some(None),
                n if crate::names::is_safe_component(n) => Some(Some(n.to_string())),
                _ => None,
            }
        };
        let number = |k: &str| -> Option<u64> { fields.get(k)?.parse().ok() };
        let maybe = |k: &str| -> Option<Option<u64>> {
            match *fields.get(k)? {
                "-" => Some(None),
                n => n.parse().ok().map(Some),
            }
        };
        let time = |k: &str| -> Option<Option<DateTime<Utc>>> {
            match maybe(k)? {
                None => Some(None),
                Some(secs) => DateTime::from_timestamp(i64::try_from(secs).ok()?, 0).map(Some),
            }
        };
        Some(Record {
            good: name("good")?,
            run: name("run")?,
            failures: usize::try_from(number("failures")?).ok()?,
            snapshots: usize::try_from(number("snapshots")?).ok()?,
            pinned: usize::try_from(number("pinned")?).ok()?,
            mass_change: time("mass")?,
            latest: time("latest")?,
            changed: maybe("changed")?,
            verified: name("verified")?,
            facts: match *fields.get("facts")? {
                "-" => None,
                "" => Some(Vec::new()),
                f => Some(f.split(',').map(fact_parse).collect::<Option<_>>()?),
            },
        })
    }
}

/// What a record keeps of a named snapshot: what `SNAPSHOT_PROPS` read of it.
fn fact_of(s: &Snapshot) -> Snapshot {
    Snapshot {
        name: s.name.clone(),
        status: s.status,
        tier: s.tier.clone(),
        created: s.created,
        createtxg: s.createtxg,
        changes: s.changes,
        verified: s.verified.clone(),
        ..Snapshot::bare(&s.name)
    }
}

/// A fact in the record: `NAME;STATUS;TIER;CREATION;CREATETXG;CHANGES;VERIFIED`, each escaped
/// (`escape`), empty for none.
fn fact_to_value(s: &Snapshot) -> String {
    let opt = |v: Option<String>| v.map(|v| escape(&v)).unwrap_or_default();
    [
        escape(&s.name),
        opt(s.status.map(|st| st.as_str().to_string())),
        opt(s.tier.clone()),
        opt(s.created.map(|t| t.timestamp().to_string())),
        s.createtxg.to_string(),
        opt(s.changes.map(Stats::to_property)),
        opt(s.verified.as_ref().map(Verified::to_property)),
    ]
    .join(";")
}

fn fact_parse(text: &str) -> Option<Snapshot> {
    let parts: Vec<String> = text.split(';').map(unescape).collect::<Option<_>>()?;
    let [name, status, tier, created, txg, changes, verified] =
        <[String; 7]>::try_from(parts).ok()?;
    if !crate::names::is_safe_component(&name) {
        return None;
    }
    // Each present field must read as the snapshot's own property would: anything else is
    // not what this zbk wrote.
    fn maybe<T>(v: &str, parse: impl Fn(&str) -> Option<T>) -> Option<Option<T>> {
        if v.is_empty() {
            Some(None)
        } else {
            parse(v).map(Some)
        }
    }
    Some(Snapshot {
        status: maybe(&status, Status::parse)?,
        tier: maybe(&tier, |t| Some(t.to_string()))?,
        created: maybe(&created, |c| DateTime::from_timestamp(c.parse().ok()?, 0))?,
        createtxg: txg.parse().ok()?,
        changes: maybe(&changes, Stats::from_property)?,
        verified: maybe(&verified, Verified::from_property)?,
        ..Snapshot::bare(&name)
    })
}

/// Escapes what would end a field of the record or of a fact: `%XX` for every byte but
/// letters, digits and `._:=-`.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"._:=-".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unescape(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else if b.is_ascii_alphanumeric() || b"._:=-".contains(&b) {
            out.push(b);
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

/// The summary a host's record gives, or `None` when it does not hold up and the host needs
/// its full listing. `host` is the host dataset's listing with only the snapshots the record
/// names (whichever of them exist); `source` is the record's property source, and `changed`
/// the dataset's `snapshots_changed` now (`None` on a zfs without it).
pub fn summary<'a>(
    host: &'a Host,
    record: &Record,
    source: &str,
    changed: Option<u64>,
    now: DateTime<Utc>,
) -> Option<Summary<'a>> {
    // Received with a replica, a record describes the source's snapshots, not these.
    if source != "local" || record.changed != changed {
        return None;
    }
    // Snapshots dated in the future are counted from the full listing.
    if record.latest.is_some_and(|t| t > now) {
        return None;
    }
    let named = |n: &Option<String>| -> Option<Option<&'a crate::inventory::Snapshot>> {
        match n {
            None => Some(None),
            Some(n) => host.snapshots.iter().find(|s| &s.name == n).map(Some),
        }
    };
    let last_good = named(&record.good)?;
    let last_run = named(&record.run)?;
    // The snapshot named for the newest verify must still carry a stamp.
    let verified = match named(&record.verified)? {
        None => None,
        Some(s) => Some(s.verified.as_ref()?),
    };
    // The named snapshots must say themselves what the record says of them.
    if last_good.is_some_and(|g| !g.is_good() || g.created.is_none()) {
        return None;
    }
    if last_run.is_some_and(|r| !r.is_zbk()) {
        return None;
    }
    if let (Some(g), Some(r)) = (last_good, last_run) {
        if r.createtxg < g.createtxg {
            return None;
        }
    }
    if record.snapshots < usize::from(last_good.is_some()).max(usize::from(last_run.is_some())) {
        return None;
    }
    Some(Summary {
        host,
        last_good,
        last_run,
        consecutive_failures: record.failures,
        pinned: record.pinned,
        future: 0,
        mass_change: record.mass_change,
        snapshots: record.snapshots,
        verified,
        unreachable: crate::health::unreachable_since(host, last_run),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expiry::parse_time;
    use crate::inventory::Snapshot;
    use crate::stamp::Status;

    const NOW: &str = "2026-11-27T12:00:00Z";

    fn t(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap()
    }

    fn snap(name: &str, at: &str, status: Option<Status>, txg: u64) -> Snapshot {
        Snapshot {
            createtxg: txg,
            ..Snapshot::taken(name, at, status)
        }
    }

    fn full() -> Host {
        Host::sample(vec![
            snap("a", "2026-11-25T01:00:00Z", Some(Status::Ok), 10),
            snap("b", "2026-11-26T01:00:00Z", Some(Status::Warning), 20),
            snap("manual", "2026-11-26T02:00:00Z", None, 25),
            snap("failed-c", "2026-11-27T01:00:00Z", Some(Status::Failed), 30),
        ])
    }

    /// The host dataset's listing as check reads it: only the named snapshots.
    fn confirmed(host: &Host, record: &Record) -> Host {
        let named = [&record.good, &record.run, &record.verified];
        Host {
            snapshots: host
                .snapshots
                .iter()
                .filter(|s| named.iter().any(|n| n.as_deref() == Some(s.name.as_str())))
                .cloned()
                .collect(),
            ..host.clone()
        }
    }

    #[test]
    fn a_record_round_trips_and_odd_values_are_stale() {
        let r = Record::of(&full(), Some(1796552963), t(NOW));
        assert_eq!(r.good.as_deref(), Some("b"));
        assert_eq!(r.run.as_deref(), Some("failed-c"));
        assert_eq!((r.failures, r.snapshots, r.pinned), (1, 4, 0));
        assert_eq!(Record::parse(&r.to_value()), Some(r.clone()));
        let empty = Record::of(&Host::sample(vec![]), None, t(NOW));
        assert_eq!(
            empty.to_value(),
            "v=3 good=- run=- failures=0 snapshots=0 pinned=0 mass=- latest=- changed=- verified=- facts="
        );
        assert_eq!(Record::parse(&empty.to_value()), Some(empty));
        for bad in [
            "",
            "v=2 good=- run=- failures=0 snapshots=0 pinned=0 mass=- latest=- changed=- verified=-",
            "v=4 good=- run=- failures=0 snapshots=0 pinned=0 mass=- latest=- changed=- verified=- facts=-",
            "v=3 good=- run=- failures=0 snapshots=0 pinned=0 mass=- latest=- changed=- verified=-",
            "v=3 good=- good=- run=- failures=0 snapshots=0 pinned=0 mass=- latest=- changed=- facts=-",
            "v=3 good=a/b run=- failures=0 snapshots=0 pinned=0 mass=- latest=- changed=- verified=- facts=-",
            "v=3 good=- run=- failures=x snapshots=0 pinned=0 mass=- latest=- changed=- verified=- facts=-",
            "v=3  good=- run=- failures=0 snapshots=0 pinned=0 mass=- latest=- changed=- verified=- facts=-",
            // Facts that are not what this zbk writes: a bad name, status, time or stamp.
            "v=3 good=- run=- failures=0 snapshots=0 pinned=0 mass=- latest=- changed=1 verified=- facts=a%2Fb;ok;;;1;;",
            "v=3 good=- run=- failures=0 snapshots=0 pinned=0 mass=- latest=- changed=1 verified=- facts=a;fine;;;1;;",
            "v=3 good=- run=- failures=0 snapshots=0 pinned=0 mass=- latest=- changed=1 verified=- facts=a;ok;;x;1;;",
            "v=3 good=- run=- failures=0 snapshots=0 pinned=0 mass=- latest=- changed=1 verified=- facts=a;ok;;;1;;at%3",
            "v=3 good=- run=- failures=0 snapshots=0 pinned=0 mass=- latest=- changed=1 verified=- facts=a;ok;;;1;",
        ] {
            assert_eq!(Record::parse(bad), None, "{bad:?}");
        }
    }

    /// A summary from a record says what the full listing's says, judgement included.
    fn assert_same_summary(fast: &Summary, slow: &Summary, now: DateTime<Utc>) {
        let names = |s: &Summary| {
            (
                s.last_good.map(|g| g.name.clone()),
                s.last_run.map(|r| (r.name.clone(), r.changes)),
            )
        };
        assert_eq!(names(fast), names(slow));
        let counts = |s: &Summary| {
            (
                s.consecutive_failures,
                s.pinned,
                s.future,
                s.snapshots,
                s.mass_change,
                s.verified.cloned(),
            )
        };
        assert_eq!(counts(fast), counts(slow));
        let limits = crate::config::Settings::default().check;
        assert_eq!(
            crate::health::judge(fast, limits, now),
            crate::health::judge(slow, limits, now)
        );
    }

    #[test]
    fn a_record_that_holds_gives_the_full_listing_s_summary() {
        let now = t(NOW);
        let host = full();
        let r = Record::of(&host, Some(7), now);
        let part = confirmed(&host, &r);
        let fast = summary(&part, &r, "local", Some(7), now).expect("holds");
        assert_same_summary(&fast, &crate::health::summarize(&host, now), now);
    }

    #[test]
    fn a_record_that_does_not_hold_sends_the_host_to_the_full_listing() {
        let now = t(NOW);
        let host = full();
        let r = Record::of(&host, Some(7), now);
        let part = confirmed(&host, &r);
        // Snapshots made or destroyed since (OpenZFS), or a record received with a replica.
        assert!(summary(&part, &r, "local", Some(8), now).is_none());
        assert!(summary(&part, &r, "received", Some(7), now).is_none());
        // The last good snapshot destroyed by hand.
        let mut gone = part.clone();
        gone.snapshots.retain(|s| s.name != "b");
        assert!(summary(&gone, &r, "local", Some(7), now).is_none());
        // A record naming a failed run as the last good one, or the names swapped.
        let mut lie = r.clone();
        lie.good = Some("failed-c".into());
        assert!(summary(&part, &lie, "local", Some(7), now).is_none());
        let mut swapped = r.clone();
        (swapped.good, swapped.run) = (Some("b".into()), Some("a".into()));
        let both = Host {
            snapshots: host
                .snapshots
                .iter()
                .filter(|s| s.name == "a" || s.name == "b")
                .cloned()
                .collect(),
            ..host.clone()
        };
        assert!(summary(&both, &swapped, "local", Some(7), now).is_none());
        // A snapshot dated in the future: counted from the listing.
        assert!(summary(&part, &r, "local", Some(7), t("2026-11-26T12:00:00Z")).is_none());
        // Without snapshots_changed (zfs-fuse), the named snapshots are the check.
        let r = Record::of(&host, None, now);
        assert!(summary(&part, &r, "local", None, now).is_some());
        assert!(summary(&gone, &r, "local", None, now).is_none());
    }

    fn claim(host: &Host, record: &Record, source: &str, changed: Option<u64>) -> Claim {
        Claim {
            dataset: host.dataset.clone(),
            record: Some(record.clone()),
            source: source.into(),
            changed,
        }
    }

    #[test]
    fn facts_stand_for_the_named_snapshots_only_while_snapshots_changed_holds() {
        let now = t(NOW);
        let mut host = full();
        // A verify stamp and change figures, whose own formats the record escapes.
        let stamp = "at=2026-11-26T03:00:00Z slice=all/30 files=9 changed=1 silent=0 unacked=0 seen=0,-,5,-,-,-,-,-,-,-,-,-,-,-,-,-,-,-,-,-,-,-,-,-,-,-,-,-,-,-";
        host.snapshots[1].verified = Some(Verified::from_property(stamp).unwrap());
        host.snapshots[3].changes =
            Stats::from_property("files=3 created=1 deleted=0 changed=2 bytes=7");
        let r = Record::of(&host, Some(7), now);
        assert_eq!(Record::parse(&r.to_value()), Some(r.clone()));
        assert_eq!(r.facts.as_ref().map(Vec::len), Some(2), "{}", r.to_value());
        // Vouched: nothing to read back, and the facts give the full listing's summary.
        let c = claim(&host, &r, "local", Some(7));
        assert!(c.vouched() && c.named().is_empty());
        let name = host.name.clone();
        let mut inv = Inventory::default();
        inv.hosts.insert(
            name.clone(),
            Host {
                snapshots: Vec::new(),
                ..host.clone()
            },
        );
        let claims = BTreeMap::from([(name.clone(), c)]);
        vouch(&mut inv, &claims);
        let fast = summary(&inv.hosts[&name], &r, "local", Some(7), now).expect("holds");
        assert_same_summary(&fast, &crate::health::summarize(&host, now), now);
        // A snapshot made or destroyed since (snapshots_changed moved), or a record received
        // with a replica: the record cannot hold, and nothing is read back for it.
        for c in [
            claim(&host, &r, "local", Some(8)),
            claim(&host, &r, "received", Some(7)),
        ] {
            assert!(!c.vouched() && c.named().is_empty(), "{c:?}");
        }
        let c = claim(&host, &Record::of(&host, None, now), "local", None);
        assert!(!c.vouched());
        assert_eq!(c.named().len(), 2, "{c:?}");
        // Without snapshots_changed (zfs-fuse), the named snapshots are read back for their
        // createtxg alone; one destroyed and made again under its name is not the fact.
        let r = Record::of(&host, None, now);
        let c = claim(&host, &r, "local", None);
        let claims = BTreeMap::from([(name.clone(), c)]);
        assert_eq!(confirming(&claims), ["createtxg"]);
        let read_back = |txg_of_b: u64| Host {
            snapshots: vec![
                Snapshot {
                    createtxg: txg_of_b,
                    ..Snapshot::bare("b")
                },
                Snapshot {
                    createtxg: 30,
                    ..Snapshot::bare("failed-c")
                },
            ],
            ..host.clone()
        };
        inv.hosts.insert(name.clone(), read_back(20));
        vouch(&mut inv, &claims);
        let fast = summary(&inv.hosts[&name], &r, "local", None, now).expect("holds");
        assert_same_summary(&fast, &crate::health::summarize(&host, now), now);
        inv.hosts.insert(name.clone(), read_back(40));
        vouch(&mut inv, &claims);
        assert!(summary(&inv.hosts[&name], &r, "local", None, now).is_none());

        // Stamps too long for one property leave the facts out, and the record stays.
        let mut long = Verified::from_property(stamp).unwrap();
        long.slices = crate::config::MAX_SLICES;
        long.seen = vec![Some(t("2026-06-01T00:00:00Z")); long.slices as usize];
        long.pending = vec![u64::MAX; crate::verify::MAX_PENDING];
        host.snapshots[1].verified = Some(long.clone());
        host.snapshots[3].verified = Some(long);
        let r = Record::of(&host, Some(7), now);
        assert_eq!(r.facts, None);
        assert!(r.to_value().len() <= MAX_VALUE, "{}", r.to_value().len());
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::fuzz::config("src/proptest-regressions/record.txt"))]

        /// A record is anyone's text: read back or refused, and what is read writes the same.
        #[test]
        fn records_of_any_text(text in "((v|good|run|failures|snapshots|pinned|mass|latest|changed|facts)=[-a-z0-9;%,]{0,12} ?){0,11}") {
            if let Some(r) = super::Record::parse(&text) {
                prop_assert_eq!(super::Record::parse(&r.to_value()), Some(r));
            }
        }
    }
}
