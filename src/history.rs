//! Pure reading of a host's past from its snapshots, as of a given `now`: how each recent day's
//! runs went, the size of its backup day by day, its snapshots per tier, its last replicated
//! snapshot, and why its last failed run failed (from that run's log).

use crate::inventory::{Host, Snapshot};
use crate::stamp::{tiers, Status};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;

/// How many days `zbk status --json` and `zbk report` look back.
pub const DAYS: i64 = 60;

/// One UTC day on which zbk took snapshots of a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Day {
    pub date: NaiveDate,
    /// `ok` when every run that day was, `failed` when none was good, else `warning`.
    pub status: Status,
    pub runs: usize,
    pub failed: usize,
    /// The size of the day's newest good backup (`referenced`), where known.
    pub referenced: Option<u64>,
}

/// The days of the last `days` (today, as of `now`, the last of them) on which zbk took a
/// snapshot of `host`, oldest first. A day whose snapshots have all been reaped is not there.
pub fn days(host: &Host, now: DateTime<Utc>, days: i64) -> Vec<Day> {
    let today = now.date_naive();
    let first = today - chrono::Duration::days(days - 1);
    let mut by_day: BTreeMap<NaiveDate, Vec<&Snapshot>> = BTreeMap::new();
    for s in &host.snapshots {
        let (Some(_), Some(created)) = (s.status, s.created) else {
            continue;
        };
        let date = created.date_naive();
        if (first..=today).contains(&date) {
            by_day.entry(date).or_default().push(s);
        }
    }
    by_day
        .into_iter()
        .map(|(date, snaps)| {
            let failed = snaps
                .iter()
                .filter(|s| s.status == Some(Status::Failed))
                .count();
            let all_ok = snaps.iter().all(|s| s.status == Some(Status::Ok));
            let status = if all_ok {
                Status::Ok
            } else if failed == snaps.len() {
                Status::Failed
            } else {
                Status::Warning
            };
            let newest_good = snaps
                .iter()
                .filter(|s| s.is_good())
                .max_by_key(|s| (s.created, s.createtxg));
            Day {
                date,
                status,
                runs: snaps.len(),
                failed,
                referenced: newest_good.and_then(|s| s.referenced),
            }
        })
        .collect()
}

/// How many of the host's snapshots serve each tier; a snapshot of `default,monthly` counts
/// for both.
pub fn per_tier(host: &Host) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for value in host.snapshots.iter().filter_map(|s| s.tier.as_deref()) {
        for tier in tiers(value) {
            *out.entry(tier.to_string()).or_default() += 1;
        }
    }
    out
}

/// The newest snapshot with a hold: `zbk replicate` holds the last one it sent to a target,
/// so this is how far the copy has come.
pub fn last_held(host: &Host) -> Option<&Snapshot> {
    host.snapshots.iter().rev().find(|s| s.held)
}

/// How long the last run took: from the time its snapshot's name encodes (the start) to the
/// snapshot's creation (the end); `None` for a name zbk did not make.
pub fn run_seconds(run: &Snapshot) -> Option<i64> {
    let started = crate::names::snapshot_time(&run.name)?;
    Some((run.created? - started).num_seconds().max(0))
}

/// Snapshots whose expiry has passed as of `now`: what the next `zbk reap` destroys (held or
/// cloned ones, and the last good backup, stay).
pub fn expired(host: &Host, now: DateTime<Utc>) -> usize {
    host.snapshots
        .iter()
        .filter(|s| matches!(s.stamp, crate::stamp::Stamp::Valid(e) if e.has_passed(now)))
        .count()
}

/// Per tier: the snapshots serving it, and the space they alone hold (`used`; a snapshot of
/// several tiers counts for each).
pub fn tier_space(host: &Host) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for s in &host.snapshots {
        for tier in s.tier.as_deref().map(tiers).unwrap_or_default() {
            *out.entry(tier.to_string()).or_default() += s.used.unwrap_or(0);
        }
    }
    out
}

/// Snapshots whose own `zbk:expires` does not parse.
pub fn unreadable_stamps(host: &Host) -> usize {
    host.snapshots
        .iter()
        .filter(|s| matches!(s.stamp, crate::stamp::Stamp::Invalid(_)))
        .count()
}

/// The newest snapshot of a failed run.
pub fn last_failed(host: &Host) -> Option<&Snapshot> {
    host.snapshots
        .iter()
        .rev()
        .find(|s| s.status == Some(Status::Failed))
}

/// Why a run failed, from its log: the last line zbk wrote there itself (`zbk: ...`) other
/// than the closing `result` line and its notes on what the dataset cannot store; failing
/// that, rsync's last complaint.
pub fn failure_reason(log: &str) -> Option<String> {
    let own = log.lines().rev().find_map(|l| {
        l.strip_prefix("zbk: ")
            .filter(|r| !r.starts_with("result ") && !r.starts_with("rsync runs without"))
    });
    own.or_else(|| {
        log.lines()
            .rev()
            .find(|l| l.starts_with("rsync: ") || l.starts_with("rsync error: "))
    })
    .map(|l| l.trim().to_string())
    .filter(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expiry::parse_time;

    const NOW: &str = "2026-11-27T12:00:00Z";

    fn taken(name: &str, at: &str, status: Option<Status>, size: u64) -> Snapshot {
        Snapshot {
            referenced: Some(size),
            ..Snapshot::taken(name, at, status)
        }
    }

    #[test]
    fn each_day_is_ok_warning_or_failed_by_its_runs() {
        let h = Host::sample(vec![
            taken("old", "2026-09-01T01:00:00Z", Some(Status::Ok), 1),
            taken("a", "2026-11-25T01:00:00Z", Some(Status::Ok), 10),
            taken("b", "2026-11-25T02:00:00Z", Some(Status::Ok), 11),
            taken("failed-c", "2026-11-26T01:00:00Z", Some(Status::Failed), 0),
            taken("d", "2026-11-26T02:00:00Z", Some(Status::Ok), 12),
            taken("failed-e", "2026-11-27T01:00:00Z", Some(Status::Failed), 0),
            taken("manual", "2026-11-27T02:00:00Z", None, 99),
            taken("future", "2026-11-28T02:00:00Z", Some(Status::Ok), 99),
        ]);
        let d = days(&h, parse_time(NOW).unwrap(), DAYS);
        let got: Vec<(String, Status, usize, Option<u64>)> = d
            .iter()
            .map(|d| (d.date.to_string(), d.status, d.runs, d.referenced))
            .collect();
        assert_eq!(
            got,
            [
                ("2026-11-25".into(), Status::Ok, 2, Some(11)),
                ("2026-11-26".into(), Status::Warning, 2, Some(12)),
                ("2026-11-27".into(), Status::Failed, 1, None),
            ]
        );
        let w = Host::sample(vec![taken(
            "w",
            "2026-11-27T01:00:00Z",
            Some(Status::Warning),
            5,
        )]);
        assert_eq!(
            days(&w, parse_time(NOW).unwrap(), 1)[0].status,
            Status::Warning
        );
    }

    #[test]
    fn tiers_holds_and_stamps_are_counted() {
        let mut held = Snapshot::sample("a");
        held.tier = Some("default,monthly".into());
        held.held = true;
        let mut bad = Snapshot::sample("b");
        bad.stamp = crate::stamp::Stamp::Invalid("soon".into());
        let h = Host::sample(vec![held, bad]);
        let t = per_tier(&h);
        assert_eq!((t["default"], t["monthly"]), (2, 1));
        assert_eq!(last_held(&h).unwrap().name, "a");
        assert_eq!(unreadable_stamps(&h), 1);
        assert_eq!(tier_space(&h)["monthly"], 0);
        assert!(last_failed(&h).is_none());
    }

    #[test]
    fn runs_last_from_their_name_to_their_creation_and_expired_ones_wait_for_reap() {
        let run = taken(
            "2026-11-27T110000Z",
            "2026-11-27T11:02:05Z",
            Some(Status::Ok),
            1,
        );
        assert_eq!(run_seconds(&run), Some(125));
        assert_eq!(
            run_seconds(&taken("manual", NOW, Some(Status::Ok), 1)),
            None
        );
        let mut old = Snapshot::taken("a", "2026-11-01T00:00:00Z", Some(Status::Ok));
        old.stamp = crate::stamp::Stamp::Valid(
            crate::expiry::Expiry::parse("2026-11-20T00:00:00Z").unwrap(),
        );
        let h = Host::sample(vec![old, run]);
        assert_eq!(expired(&h, parse_time(NOW).unwrap()), 1);
    }

    #[test]
    fn the_reason_is_the_last_line_zbk_wrote() {
        let log = "zbk: rsync runs without ACLs: zfs-fuse\nrsync: [sender] link_stat \"/x\" failed\nzbk: check_file missing\nrsync error: code 23\nzbk: result failed, finished 2026-11-27T12:00:00Z\n\n";
        assert_eq!(failure_reason(log).as_deref(), Some("check_file missing"));
        let rsync_only = "zbk: rsync runs without ACLs\nrsync: [sender] link_stat \"/x\" failed\nrsync error: some files were not transferred (code 23)\nzbk: result failed, finished 2026-11-27T12:00:00Z\n";
        assert_eq!(
            failure_reason(rsync_only).as_deref(),
            Some("rsync error: some files were not transferred (code 23)")
        );
        assert_eq!(failure_reason("nothing\n"), None);
    }
}
