//! The `zbk:*` property schema: the names zbk stamps on datasets and snapshots, what a
//! snapshot's expiry stamp says once judged by its source, a run's status, and how the tiers
//! of one snapshot combine (`default,monthly` lives as long as the longest of them).

use crate::expiry::{Expiry, Retention};
use chrono::{DateTime, Utc};

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
/// Set on a host dataset whose client is `online = "sometimes"` when a run could not reach it:
/// the time of that attempt (RFC 3339, UTC). Such a run takes no snapshot, so this is where
/// `zbk status` learns of it; a run that reached the client leaves it, and a snapshot newer
/// than it says the client answered since. Not in `SCHEMA`: it tells how this server reached
/// the client, which is nothing a copy elsewhere should carry.
pub const PROP_LAST_UNREACHABLE: &str = "zbk:last-unreachable";
/// Set on a snapshot by `zbk keep`: the time its expiry was set by hand, which `zbk restamp`
/// then leaves alone.
pub const PROP_PINNED: &str = "zbk:pinned";
/// Set by `zbk replicate` on a replica's snapshot whose `offsite_expiry` outlasts its received
/// `zbk:expires`; the later of the two is the snapshot's expiry.
pub const PROP_OFFSITE_EXPIRES: &str = "zbk:offsite-expires";
/// Set on a host dataset after every change to its snapshots (a run, reap, keep, restamp):
/// what `zbk check` and `zbk status` need of them, so they need not list them all (see
/// `record.rs`). Not part of `SCHEMA`: a replica's copy describes the source, not the replica.
pub const PROP_RECORD: &str = "zbk:record";
/// OpenZFS 2.2 and later: when a snapshot of the dataset was last made or destroyed.
pub const PROP_SNAPSHOTS_CHANGED: &str = "snapshots_changed";

/// Set on a snapshot by `zbk verify`: what comparing it with the live client found, and the
/// host's record of verifies so far (see `verify::Verified`).
pub const PROP_VERIFIED: &str = "zbk:verified";

/// Every property of the schema a copy carries: what a decrypted `zbk replicate` stream, which cannot carry
/// properties, copies to the target itself.
pub const SCHEMA: [&str; 11] = [
    PROP_EXPIRES,
    PROP_TIER,
    PROP_STATUS,
    PROP_FILES,
    PROP_CHANGES,
    PROP_MASS_CHANGE,
    PROP_PIN_REASON,
    PROP_RETIRED,
    PROP_PINNED,
    PROP_OFFSITE_EXPIRES,
    PROP_VERIFIED,
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

impl Stamp {
    /// The stamp of a snapshot from its own `zbk:expires` and `zbk:offsite-expires` (values set
    /// on it, local or received; `None` for inherited or unset ones). A replica's expiry is the
    /// later of the two; without a valid stamp of its own the offsite one changes nothing, so a
    /// snapshot whose received properties never arrived is still kept.
    pub fn read(expires: Option<&str>, offsite: Option<&str>) -> Stamp {
        let stamp = match expires {
            None => Stamp::Absent,
            Some(v) => match Expiry::parse(v) {
                Ok(e) => Stamp::Valid(e),
                Err(_) => Stamp::Invalid(v.to_string()),
            },
        };
        match (stamp, offsite) {
            (Stamp::Valid(e), Some(v)) => match Expiry::parse(v) {
                Ok(o) => Stamp::Valid(e.max(o)),
                Err(_) => Stamp::Invalid(v.to_string()),
            },
            (stamp, _) => stamp,
        }
    }

    /// The stamp as `keep` and `restamp` report what they replaced.
    pub fn shown(&self) -> String {
        match self {
            Stamp::Valid(e) => e.to_string(),
            Stamp::Invalid(v) => format!("invalid {:?}", v.escape_debug().to_string()),
            Stamp::Absent => "none".to_string(),
        }
    }
}

/// The tiers of a `zbk:tier` value, in order: `default,monthly` → `default`, `monthly`.
pub fn tiers(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

/// A `zbk:tier` value with `tier` added once: `default` + `monthly` → `default,monthly`. A run
/// that waited for another of the same host stamps the snapshot that one took this way.
pub fn merge_tiers(existing: &str, tier: &str) -> String {
    let mut list = tiers(existing);
    if !list.contains(&tier) {
        list.push(tier);
    }
    list.join(",")
}

/// The expiry of a snapshot taken at `taken` for all of `retentions`, one per tier it serves:
/// the longest, since it must outlive every tier it was stamped for; `None` for no tier.
pub fn longest(retentions: &[Retention], taken: DateTime<Utc>) -> Option<Expiry> {
    retentions.iter().map(|r| r.expiry_from(taken)).max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expiry::parse_time;

    #[test]
    fn statuses_read_back_what_they_stamp() {
        for s in [Status::Ok, Status::Warning, Status::Failed] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("OK"), None);
        assert!(Status::Warning.is_good() && !Status::Failed.is_good());
    }

    #[test]
    fn a_stamp_is_valid_invalid_or_absent() {
        let at = "2026-12-01T00:00:00Z";
        assert_eq!(
            Stamp::read(Some(at), None),
            Stamp::Valid(Expiry::parse(at).unwrap())
        );
        assert_eq!(
            Stamp::read(Some("soon"), None),
            Stamp::Invalid("soon".into())
        );
        assert_eq!(Stamp::read(None, None), Stamp::Absent);
        assert_eq!(Stamp::read(None, None).shown(), "none");
        assert_eq!(Stamp::read(Some(at), None).shown(), at);
        assert_eq!(Stamp::Invalid("a\tb".into()).shown(), "invalid \"a\\\\tb\"");
    }

    #[test]
    fn an_offsite_expiry_extends_a_replica_but_never_shortens_it() {
        let soon = "2026-12-01T00:00:00Z";
        let later = "2027-01-01T00:00:00Z";
        let valid = |v: &str| Stamp::Valid(Expiry::parse(v).unwrap());
        assert_eq!(Stamp::read(Some(soon), Some(later)), valid(later));
        assert_eq!(
            Stamp::read(Some(soon), Some("2026-01-01T00:00:00Z")),
            valid(soon)
        );
        assert_eq!(Stamp::read(Some(soon), None), valid(soon));
        assert_eq!(
            Stamp::read(Some(soon), Some("junk")),
            Stamp::Invalid("junk".into())
        );
        assert_eq!(Stamp::read(None, Some(later)), Stamp::Absent);
        assert_eq!(
            Stamp::read(Some("junk"), Some(later)),
            Stamp::Invalid("junk".into())
        );
    }

    #[test]
    fn tiers_merge_once_and_in_order() {
        assert_eq!(tiers(" default , monthly,,"), ["default", "monthly"]);
        assert_eq!(merge_tiers("default", "monthly"), "default,monthly");
        assert_eq!(merge_tiers("default,monthly", "monthly"), "default,monthly");
        assert_eq!(merge_tiers("", "weekly"), "weekly");
    }

    #[test]
    fn several_tiers_live_as_long_as_the_longest() {
        let taken = parse_time("2026-11-27T01:30:05Z").unwrap();
        let r = |d: &str| Retention::parse(d).unwrap();
        assert_eq!(
            longest(&[r("7days"), r("13months")], taken)
                .unwrap()
                .to_string(),
            "2027-12-27T01:30:05Z"
        );
        assert_eq!(
            longest(&[r("never"), r("7days")], taken),
            Some(Expiry::Never)
        );
        assert_eq!(longest(&[], taken), None);
    }
}
