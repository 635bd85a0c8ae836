//! Pure reap selection: for one host's snapshots, which go and which stay, and why.

use crate::expiry::Expiry;
use crate::inventory::{Host, Snapshot};
use crate::stamp::Stamp;
use chrono::{DateTime, Utc};
use std::fmt;

/// Why a snapshot stays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Its expiry is still ahead.
    NotExpired(Expiry),
    /// Its expiry, set by hand with `zbk keep`, is still ahead.
    Pinned(Expiry),
    /// Expired, but among the host's newest good snapshots (`min_keep`).
    Floor,
    /// Expired, but held (`zfs hold`): reported, not destroyed.
    Held,
    /// Expired, but a clone depends on it.
    Cloned,
    /// No expiry of its own: inherited or never set, so not zbk's.
    Foreign,
    /// zbk's snapshot whose expiry is missing: kept, with a warning.
    Missing,
    /// An expiry that cannot be read: kept, with a warning.
    Invalid(String),
    /// Created after `now`: the clock went backwards (or the one that took it was ahead).
    Future,
}

/// The verdict on one snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Destroy(Expiry),
    Keep(Keep),
}

impl Keep {
    /// Whether an admin should hear about this on every reap.
    pub fn warns(&self) -> bool {
        matches!(self, Keep::Missing | Keep::Invalid(_) | Keep::Future)
    }

    /// Whether the snapshot was due and is kept only by something in the way (hold, clone).
    pub fn is_blocked(&self) -> bool {
        matches!(self, Keep::Held | Keep::Cloned)
    }
}

impl fmt::Display for Keep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Keep::NotExpired(Expiry::Never) => f.write_str("never expires"),
            Keep::NotExpired(e) => write!(f, "expires {e}"),
            Keep::Pinned(Expiry::Never) => f.write_str("pinned by zbk keep, never expires"),
            Keep::Pinned(e) => write!(f, "pinned by zbk keep until {e}"),
            Keep::Floor => {
                f.write_str("expired, kept as one of the newest good backups (min_keep)")
            }
            Keep::Held => f.write_str("expired, but held (zfs hold); release it to let it go"),
            Keep::Cloned => f.write_str("expired, but a clone depends on it"),
            Keep::Future => {
                f.write_str("created in the future: the clock is behind; kept until it is right")
            }
            Keep::Foreign => f.write_str("no zbk:expires of its own (not zbk's)"),
            Keep::Missing => f.write_str("zbk snapshot without zbk:expires; kept"),
            Keep::Invalid(v) => {
                // Anyone with `zfs set` can make this 8 KB long: show enough to find it.
                let shown: String = v.escape_debug().to_string().chars().take(64).collect();
                let more = if v.chars().count() > 64 { "..." } else { "" };
                write!(f, "unreadable zbk:expires \"{shown}{more}\"; kept")
            }
        }
    }
}

/// Decides each snapshot of `host`, oldest first, as of `now`. An active host keeps its
/// `min_keep` newest good snapshots whatever their expiry; a retired one keeps none that way.
/// Failed snapshots never count toward that floor.
pub fn plan(host: &Host, min_keep: usize, now: DateTime<Utc>) -> Vec<(&Snapshot, Verdict)> {
    let floor = if host.retired.is_some() { 0 } else { min_keep };
    let protected: Vec<&str> = host
        .snapshots
        .iter()
        .rev()
        .filter(|s| s.is_good())
        .take(floor)
        .map(|s| s.name.as_str())
        .collect();
    host.snapshots
        .iter()
        .map(|s| (s, judge(s, protected.contains(&s.name.as_str()), now)))
        .collect()
}

fn judge(s: &Snapshot, protected: bool, now: DateTime<Utc>) -> Verdict {
    // A snapshot from the future means this clock is behind the one that took it: nothing is
    // judged by a clock that cannot be trusted.
    if s.created
        .is_some_and(|c| c > now + chrono::Duration::minutes(10))
    {
        return Verdict::Keep(Keep::Future);
    }
    let expiry = match &s.stamp {
        Stamp::Valid(e) => *e,
        Stamp::Invalid(v) => return Verdict::Keep(Keep::Invalid(v.clone())),
        Stamp::Absent if s.is_zbk() => return Verdict::Keep(Keep::Missing),
        Stamp::Absent => return Verdict::Keep(Keep::Foreign),
    };
    if !expiry.has_passed(now) && s.pinned.is_some() {
        Verdict::Keep(Keep::Pinned(expiry))
    } else if !expiry.has_passed(now) {
        Verdict::Keep(Keep::NotExpired(expiry))
    } else if protected {
        Verdict::Keep(Keep::Floor)
    } else if s.held {
        Verdict::Keep(Keep::Held)
    } else if s.cloned {
        Verdict::Keep(Keep::Cloned)
    } else {
        Verdict::Destroy(expiry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expiry::parse_time;
    use crate::stamp::Status;

    fn snap(name: &str, expires: &str, status: Status) -> Snapshot {
        Snapshot {
            stamp: Stamp::Valid(Expiry::parse(expires).unwrap()),
            status: Some(status),
            ..Snapshot::sample(name)
        }
    }

    fn host(snapshots: Vec<Snapshot>) -> Host {
        Host::sample(snapshots)
    }

    fn verdicts(host: &Host, min_keep: usize, now: &str) -> Vec<(String, Verdict)> {
        plan(host, min_keep, parse_time(now).unwrap())
            .into_iter()
            .map(|(s, v)| (s.name.clone(), v))
            .collect()
    }

    const PAST: &str = "2026-01-01T00:00:00Z";
    const FUTURE: &str = "2027-01-01T00:00:00Z";
    const NOW: &str = "2026-06-01T00:00:00Z";

    #[test]
    fn expired_goes_and_unexpired_stays() {
        let h = host(vec![
            snap("s1", PAST, Status::Ok),
            snap("s2", FUTURE, Status::Ok),
        ]);
        let v = verdicts(&h, 1, NOW);
        assert!(matches!(v[0].1, Verdict::Destroy(_)));
        assert!(matches!(v[1].1, Verdict::Keep(Keep::NotExpired(_))));
    }

    #[test]
    fn the_newest_good_backup_survives_its_expiry() {
        let h = host(vec![
            snap("s1", PAST, Status::Ok),
            snap("s2", PAST, Status::Warning),
            snap("failed-s3", PAST, Status::Failed),
        ]);
        let v = verdicts(&h, 1, NOW);
        assert!(matches!(v[0].1, Verdict::Destroy(_)));
        assert_eq!(v[1].1, Verdict::Keep(Keep::Floor));
        assert!(
            matches!(v[2].1, Verdict::Destroy(_)),
            "failed snapshots never count to the floor"
        );
    }

    #[test]
    fn backups_failing_for_weeks_never_wipe_the_last_good_one() {
        let mut snaps = vec![snap("good", PAST, Status::Ok)];
        snaps.extend((0..50).map(|i| snap(&format!("failed-{i}"), PAST, Status::Failed)));
        let h = host(snaps);
        let v = verdicts(&h, 1, NOW);
        assert_eq!(v[0].1, Verdict::Keep(Keep::Floor));
        assert!(v[1..].iter().all(|(_, v)| matches!(v, Verdict::Destroy(_))));
    }

    #[test]
    fn min_keep_zero_and_retired_hosts_have_no_floor() {
        let h = host(vec![snap("s1", PAST, Status::Ok)]);
        assert!(matches!(verdicts(&h, 0, NOW)[0].1, Verdict::Destroy(_)));
        let mut retired = h.clone();
        retired.retired = Some(PAST.into());
        assert!(matches!(
            verdicts(&retired, 3, NOW)[0].1,
            Verdict::Destroy(_)
        ));
    }

    #[test]
    fn held_cloned_foreign_and_unreadable_stay() {
        let mut held = snap("held", PAST, Status::Ok);
        held.held = true;
        let mut cloned = snap("cloned", PAST, Status::Ok);
        cloned.cloned = true;
        let mut foreign = snap("foreign", PAST, Status::Ok);
        foreign.stamp = Stamp::Absent;
        foreign.tier = None;
        foreign.status = None;
        let mut missing = snap("missing", PAST, Status::Ok);
        missing.stamp = Stamp::Absent;
        let mut invalid = snap("invalid", PAST, Status::Ok);
        invalid.stamp = Stamp::Invalid("soon".into());
        let h = host(vec![
            held,
            cloned,
            foreign,
            missing,
            invalid,
            snap("newest", FUTURE, Status::Ok),
        ]);
        let v: Vec<Verdict> = verdicts(&h, 1, NOW).into_iter().map(|(_, v)| v).collect();
        assert_eq!(v[0], Verdict::Keep(Keep::Held));
        assert_eq!(v[1], Verdict::Keep(Keep::Cloned));
        assert_eq!(v[2], Verdict::Keep(Keep::Foreign));
        assert_eq!(v[3], Verdict::Keep(Keep::Missing));
        assert_eq!(v[4], Verdict::Keep(Keep::Invalid("soon".into())));
    }

    #[test]
    fn a_pinned_snapshot_says_so_until_its_pin_runs_out() {
        let mut pinned = snap("pinned", "2026-07-01T00:00:00Z", Status::Ok);
        pinned.pinned = Some(PAST.into());
        let h = host(vec![pinned, snap("newest", FUTURE, Status::Ok)]);
        assert!(matches!(
            verdicts(&h, 1, NOW)[0].1,
            Verdict::Keep(Keep::Pinned(_))
        ));
        assert!(matches!(
            verdicts(&h, 1, "2026-08-01T00:00:00Z")[0].1,
            Verdict::Destroy(_)
        ));
    }

    #[test]
    fn a_clock_gone_backwards_destroys_nothing_from_the_future() {
        let mut s = snap("ahead", PAST, Status::Ok);
        s.created = Some(parse_time("2026-07-01T00:00:00Z").unwrap());
        let h = host(vec![s, snap("newer", PAST, Status::Ok)]);
        let v = verdicts(&h, 0, NOW);
        assert_eq!(v[0].1, Verdict::Keep(Keep::Future));
        assert!(Keep::Future.warns());
    }

    #[test]
    fn never_never_goes() {
        let mut s = snap("s", PAST, Status::Ok);
        s.stamp = Stamp::Valid(Expiry::Never);
        let h = host(vec![s, snap("newer", PAST, Status::Ok)]);
        let v = verdicts(&h, 1, "9999-01-01T00:00:00Z");
        assert_eq!(v[0].1, Verdict::Keep(Keep::NotExpired(Expiry::Never)));
    }

    #[test]
    fn a_preview_as_of_a_later_time_destroys_more() {
        let h = host(vec![
            snap("s1", "2026-07-01T00:00:00Z", Status::Ok),
            snap("s2", FUTURE, Status::Ok),
        ]);
        assert!(matches!(verdicts(&h, 1, NOW)[0].1, Verdict::Keep(_)));
        assert!(matches!(
            verdicts(&h, 1, "2026-08-01T00:00:00Z")[0].1,
            Verdict::Destroy(_)
        ));
    }
}
