//! Pure judgement of the mass-change guard (guard.max_change): whether one run changed or
//! deleted too much of its source, which earlier snapshot is the last clean one, what pinning
//! it sets, and whether the alert it raises still stands.
//!
//! The case it is for: a client encrypted by ransomware is backed up hourly as good runs; with
//! a seven-day default tier the reaper would take every clean hourly within a week. The run that
//! sees the jump is kept as evidence, stamped `warning`, and the clean snapshot before it is
//! pinned for guard.pin_for.

use crate::config::ChangeLimits;
use crate::expiry::{parse_time, Expiry, Retention};
use crate::inventory::{Host, Snapshot};
use crate::rsync_report::Stats;
use crate::stamp::Stamp;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// What a pin by the guard says, followed by the time of the run that tripped it.
const MASS_CHANGE_AT: &str = "mass change at ";
/// Added to the pin's reason by `zbk keep` or `zbk restamp`: the admin has seen it.
const ACKNOWLEDGED_AT: &str = "; acknowledged at ";

/// Why a run's figures exceed the limit, or `None`. The base is the files the source had
/// before this run (now, plus what it deleted, less what it created), so that a mass deletion
/// counts as much as a mass rewrite, and a first run, where everything is created, never trips.
pub fn exceeds(stats: &Stats, limits: ChangeLimits) -> Option<String> {
    let max = limits.max_change?;
    let before = (stats.files + stats.deleted).saturating_sub(stats.created);
    if before == 0 || before < limits.min_files {
        return None;
    }
    let touched = stats.changed + stats.deleted;
    let fraction = touched as f64 / before as f64;
    (fraction > max).then(|| {
        format!(
            "mass change: {} of {before} files changed and {} deleted ({:.0}%), over guard.max_change {max}",
            stats.changed,
            stats.deleted,
            fraction * 100.0
        )
    })
}

/// The newest good snapshot that did not itself trip the guard: the last clean backup.
pub fn last_clean(host: &Host) -> Option<&Snapshot> {
    host.snapshots
        .iter()
        .rev()
        .find(|s| s.is_good() && s.mass_change.is_none())
}

/// The expiry a pin sets: the snapshot's own, raised to at least `pin_for` from `now`. `None`
/// when its stamp is not a valid one of its own: such a snapshot is never reaped anyway, and a
/// pin must not shorten that.
pub fn pinned_expiry(stamp: &Stamp, now: DateTime<Utc>, pin_for: Retention) -> Option<Expiry> {
    match stamp {
        Stamp::Valid(e) => Some((*e).max(pin_for.expiry_from(now))),
        _ => None,
    }
}

/// The pin reason for a trip by the run that started at `at`.
pub fn pin_reason(at: DateTime<Utc>) -> String {
    format!("{MASS_CHANGE_AT}{}", Expiry::At(at))
}

/// The pin reason once an admin has acknowledged it at `now`; unchanged when it is not an
/// unacknowledged mass-change pin.
pub fn acknowledge(reason: &str, now: DateTime<Utc>) -> Option<String> {
    alert_time(reason).map(|_| format!("{reason}{ACKNOWLEDGED_AT}{}", Expiry::At(now)))
}

/// The time of the mass change an unacknowledged pin reason reports.
fn alert_time(reason: &str) -> Option<DateTime<Utc>> {
    if reason.contains(ACKNOWLEDGED_AT) {
        return None;
    }
    parse_time(reason.strip_prefix(MASS_CHANGE_AT)?).ok()
}

/// The newest mass change of a host that nobody has acknowledged yet, however old.
pub fn unacknowledged(host: &Host) -> Option<DateTime<Utc>> {
    host.snapshots
        .iter()
        .filter_map(|s| s.pin_reason.as_deref().and_then(alert_time))
        .max()
}

/// Whether the alert for a mass change at `at` still stands at `now`: for `alert_for`.
pub fn alerting(at: DateTime<Utc>, now: DateTime<Utc>, alert_for: Duration) -> bool {
    let window = chrono::Duration::from_std(alert_for).unwrap_or(chrono::Duration::MAX);
    now.signed_duration_since(at) < window
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stamp::Status;

    fn t(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap()
    }

    const ON: ChangeLimits = ChangeLimits {
        max_change: Some(0.5),
        min_files: 200,
    };

    fn stats(files: u64, created: u64, deleted: u64, changed: u64) -> Stats {
        Stats {
            files,
            created,
            deleted,
            changed,
            bytes: 0,
        }
    }

    #[test]
    fn rewrites_and_deletions_count_creations_do_not() {
        // Ransomware that rewrites in place: 800 of 1000.
        let why = exceeds(&stats(1000, 0, 0, 800), ON).unwrap();
        assert!(
            why.contains("800 of 1000 files changed and 0 deleted (80%)"),
            "{why}"
        );
        // Ransomware that writes x.enc and deletes x: 1000 created, 1000 deleted.
        assert!(exceeds(&stats(1000, 1000, 1000, 0), ON).is_some());
        // A normal hour: 1 %.
        assert_eq!(exceeds(&stats(1000, 5, 5, 10), ON), None);
        // Exactly the limit does not trip; just over does.
        assert_eq!(exceeds(&stats(1000, 0, 0, 500), ON), None);
        assert!(exceeds(&stats(1000, 0, 0, 501), ON).is_some());
        // The first run: everything created.
        assert_eq!(exceeds(&stats(5000, 5000, 0, 0), ON), None);
    }

    #[test]
    fn small_hosts_and_none_are_never_judged() {
        assert_eq!(exceeds(&stats(199, 0, 0, 199), ON), None);
        assert!(exceeds(&stats(200, 0, 0, 199), ON).is_some());
        let off = ChangeLimits {
            max_change: None,
            ..ON
        };
        assert_eq!(exceeds(&stats(1000, 0, 1000, 0), off), None);
        assert_eq!(exceeds(&stats(0, 0, 0, 0), ON), None);
    }

    #[test]
    fn the_last_clean_snapshot_skips_failures_and_earlier_trips() {
        let mut tripped = Snapshot::sample("c");
        tripped.status = Some(Status::Warning);
        tripped.mass_change = Some("mass change".into());
        let mut failed = Snapshot::sample("d");
        failed.status = Some(Status::Failed);
        let vanished = Snapshot {
            status: Some(Status::Warning),
            ..Snapshot::sample("b")
        };
        let host = Host::sample(vec![Snapshot::sample("a"), vanished, tripped, failed]);
        assert_eq!(last_clean(&host).unwrap().name, "b");
        assert!(last_clean(&Host::sample(vec![])).is_none());
    }

    #[test]
    fn a_pin_raises_the_expiry_and_never_lowers_it() {
        let now = t("2026-11-27T12:00:00Z");
        let month = Retention::parse("30days").unwrap();
        let soon = Stamp::Valid(Expiry::At(t("2026-12-01T00:00:00Z")));
        assert_eq!(
            pinned_expiry(&soon, now, month),
            Some(Expiry::At(t("2026-12-27T12:00:00Z")))
        );
        let late = Stamp::Valid(Expiry::At(t("2027-06-01T00:00:00Z")));
        assert_eq!(
            pinned_expiry(&late, now, month),
            Some(Expiry::At(t("2027-06-01T00:00:00Z")))
        );
        assert_eq!(
            pinned_expiry(&Stamp::Valid(Expiry::Never), now, month),
            Some(Expiry::Never)
        );
        assert_eq!(pinned_expiry(&Stamp::Invalid("x".into()), now, month), None);
        assert_eq!(pinned_expiry(&Stamp::Absent, now, month), None);
    }

    #[test]
    fn the_alert_stands_until_acknowledged_or_its_time_passes() {
        let at = t("2026-11-27T03:17:00Z");
        let reason = pin_reason(at);
        assert_eq!(reason, "mass change at 2026-11-27T03:17:00Z");
        let mut pinned = Snapshot::sample("a");
        pinned.pin_reason = Some(reason.clone());
        let host = Host::sample(vec![pinned.clone(), Snapshot::sample("b")]);
        assert_eq!(unacknowledged(&host), Some(at));
        let week = Duration::from_secs(7 * 86400);
        assert!(alerting(at, t("2026-12-04T03:16:59Z"), week));
        assert!(!alerting(at, t("2026-12-04T03:17:00Z"), week));
        let acked = acknowledge(&reason, t("2026-11-27T09:00:00Z")).unwrap();
        assert_eq!(
            acked,
            "mass change at 2026-11-27T03:17:00Z; acknowledged at 2026-11-27T09:00:00Z"
        );
        assert_eq!(acknowledge(&acked, t("2026-11-28T00:00:00Z")), None);
        pinned.pin_reason = Some(acked);
        assert_eq!(unacknowledged(&Host::sample(vec![pinned])), None);
        let mut junk = Snapshot::sample("j");
        junk.pin_reason = Some("mass change at yesterday".into());
        assert_eq!(unacknowledged(&Host::sample(vec![junk])), None);
    }
}
