//! Pure judgement of how each host stands, as of a given `now`: the summary `zbk status`
//! shows (as a table, JSON or Prometheus metrics) and the Nagios state and reason `zbk check`
//! derives from it. How either is written out is the commands' business.

use crate::config::CheckSettings;
use crate::expiry::{relative, Expiry};
use crate::inventory::{Host, Snapshot};
use crate::names::snapshot_time;
use crate::stamp::Status;
use crate::text::counted;
use crate::verify::Verified;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// One host at a glance, from its snapshots alone.
#[derive(Debug)]
pub struct Summary<'a> {
    pub host: &'a Host,
    /// The newest snapshot stamped ok or warning.
    pub last_good: Option<&'a Snapshot>,
    /// The newest snapshot zbk took, whatever its status: the last run.
    pub last_run: Option<&'a Snapshot>,
    /// Failed runs since the last good one (all of them when there is none).
    pub consecutive_failures: usize,
    pub pinned: usize,
    /// Snapshots created after `now`: the clock was ahead when they were taken, or is behind.
    pub future: usize,
    /// The newest mass change (guard.max_change) nobody has acknowledged yet.
    pub mass_change: Option<DateTime<Utc>>,
    /// When the newest attempt found the client unreachable (`online = "sometimes"`): the
    /// attempt's time, when no run since has taken a snapshot.
    pub unreachable: Option<DateTime<Utc>>,
    /// The newest `zbk verify` stamp, which carries the host's record of verifies.
    pub verified: Option<&'a Verified>,
    /// Snapshots of the host's dataset, zbk's and others.
    pub snapshots: usize,
}

/// Summarises a host as of `now`.
pub fn summarize(host: &Host, now: DateTime<Utc>) -> Summary<'_> {
    let last_good = host.snapshots.iter().rev().find(|s| s.is_good());
    let consecutive_failures = host
        .snapshots
        .iter()
        .rev()
        .take_while(|s| !s.is_good())
        .filter(|s| s.status == Some(Status::Failed))
        .count();
    let last_run = host.snapshots.iter().rev().find(|s| s.is_zbk());
    Summary {
        host,
        last_good,
        last_run,
        unreachable: unreachable_since(host, last_run),
        consecutive_failures,
        pinned: host.snapshots.iter().filter(|s| s.pinned.is_some()).count(),
        future: host
            .snapshots
            .iter()
            .filter(|s| s.created.is_some_and(|t| t > now))
            .count(),
        mass_change: crate::guard::unacknowledged(host),
        verified: crate::verify::newest(host.snapshots.iter().filter_map(|s| s.verified.as_ref())),
        snapshots: host.snapshots.len(),
    }
}

/// The host's last attempt that found its client unreachable, while no run has come since.
pub fn unreachable_since(host: &Host, last_run: Option<&Snapshot>) -> Option<DateTime<Utc>> {
    // Both times are zbk's own clock: the run's start in its snapshot's name, and the attempt.
    let run_at = last_run.and_then(|r| snapshot_time(&r.name).or(r.created));
    host.unreachable
        .filter(|at| run_at.is_none_or(|run| *at > run))
}

/// A Nagios plugin state, ordered from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Ok,
    Warning,
    Unknown,
    Critical,
}

impl State {
    /// The plugin exit status Nagios and Icinga read.
    pub fn code(self) -> u8 {
        match self {
            State::Ok => 0,
            State::Warning => 1,
            State::Critical => 2,
            State::Unknown => 3,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
            State::Unknown => "UNKNOWN",
        }
    }
}

/// The state of one host and the words that explain it.
#[derive(Debug, PartialEq, Eq)]
pub struct Judged {
    pub state: State,
    pub why: String,
    /// Seconds since the last good backup, for perfdata.
    pub age: Option<i64>,
}

/// Judges a host by the age of its last good backup against `limits`, and by snapshots dated
/// in the future. A retired host is not expected to have fresh backups.
pub fn judge(s: &Summary, limits: CheckSettings, now: DateTime<Utc>) -> Judged {
    let mut state = State::Ok;
    let mut why = Vec::new();
    let age = s
        .last_good
        .and_then(|g| g.created)
        .map(|t| (now - t).num_seconds());
    if s.host.retired.is_some() {
        why.push("retired".to_string());
    } else {
        match (s.last_good, age) {
            (None, _) if s.snapshots == 0 => {
                state = State::Critical;
                why.push("no backup yet".to_string());
            }
            (None, _) => {
                state = State::Critical;
                why.push(format!(
                    "no good backup, {}",
                    counted(s.consecutive_failures, "failed run")
                ));
            }
            (Some(g), None) => {
                state = State::Unknown;
                why.push(format!("{}: creation time unreadable", g.name));
            }
            (Some(g), Some(secs)) => {
                let at = g.created.expect("age implies a creation time");
                let limit = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                let ago = relative(at, now);
                if secs >= limit(limits.crit) {
                    state = State::Critical;
                    why.push(format!(
                        "last good backup {ago} (critical after {})",
                        hours(limits.crit)
                    ));
                } else if secs >= limit(limits.warn) {
                    state = State::Warning;
                    why.push(format!(
                        "last good backup {ago} (warning after {})",
                        hours(limits.warn)
                    ));
                } else {
                    why.push(format!("last good backup {ago}"));
                }
                if s.consecutive_failures > 0 {
                    why.push(format!(
                        "{} since",
                        counted(s.consecutive_failures, "failed run")
                    ));
                }
            }
        }
    }
    if let Some(at) = s
        .mass_change
        .filter(|at| crate::guard::alerting(*at, now, limits.mass_change))
    {
        state = state.max(State::Warning);
        why.push(format!(
            "mass change at {} (last clean backup pinned; zbk keep or zbk restamp acknowledges)",
            crate::expiry::Expiry::At(at)
        ));
    }
    // Judged by the age of its last good backup alone: unreachable is expected of such a
    // client, and an admin who sees the age grow learns here why.
    if let Some(at) = s.unreachable {
        why.push(format!(
            "client unreachable at the last attempt, {}",
            relative(at, now)
        ));
    }
    // A retired host has no client left to compare with; what was found stays critical.
    for (verdict, words) in judge_verified(s.verified, limits.verify_age, s.host.name.as_str(), now)
    {
        if verdict == State::Critical || s.host.retired.is_none() {
            state = state.max(verdict);
            why.push(words);
        }
    }
    if s.future > 0 {
        state = state.max(State::Warning);
        why.push(format!(
            "{} dated in the future (clock skew?)",
            counted(s.future, "snapshot")
        ));
    }
    Judged {
        state,
        why: why.join(", "),
        age,
    }
}

/// How `zbk check` judges a host's newest stamp: CRITICAL while silent differences await
/// `zbk verify --ack`; WARNING when some part of the tree was last verified more than
/// `verify_age` ago. A host never verified is not judged: verification is not set up for it.
fn judge_verified(
    last: Option<&Verified>,
    verify_age: Duration,
    host: &str,
    now: DateTime<Utc>,
) -> Vec<(State, String)> {
    let Some(last) = last else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if last.unacked > 0 {
        out.push((
            State::Critical,
            format!(
                "{} found by zbk verify (content changed while size and mtime did not; `zbk verify {host}` lists them, `zbk verify --ack {host}` acknowledges)",
                counted(last.unacked as usize, "silent difference")
            ),
        ));
    }
    let limit = chrono::TimeDelta::from_std(verify_age).unwrap_or(chrono::TimeDelta::MAX);
    match last.covered() {
        Some(t) if now - t <= limit => {}
        Some(t) => out.push((
            State::Warning,
            format!(
                "not fully verified within {} (every file last verified by {})",
                days(verify_age),
                Expiry::At(t)
            ),
        )),
        None => {
            let done = last.seen.iter().filter(|s| s.is_some()).count();
            out.push((
                State::Warning,
                format!(
                    "not fully verified yet ({done} of {} slices verified; zbk verify --full does all)",
                    last.slices
                ),
            ));
        }
    }
    out
}

/// A limit as an admin writes one: `35d`, `36h`, else humantime's words.
fn days(d: Duration) -> String {
    match d.as_secs() {
        s if s % 86400 == 0 => format!("{}d", s / 86400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        _ => humantime::format_duration(d).to_string(),
    }
}

/// A threshold as an admin wrote it: whole hours read best in a one-line status.
fn hours(d: Duration) -> String {
    crate::text::whole(d, 3600, "h")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expiry::parse_time;
    use crate::verify::{Found, Part};

    fn t(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap()
    }

    const LIMITS: CheckSettings = CheckSettings {
        warn: Duration::from_secs(26 * 3600),
        crit: Duration::from_secs(50 * 3600),
        mass_change: Duration::from_secs(7 * 86400),
        verify_age: Duration::from_secs(35 * 86400),
    };
    const NOW: &str = "2026-11-27T12:00:00Z";
    const DAY: i64 = 86400;

    fn state(h: &Host, now: &str) -> Judged {
        judge(&summarize(h, t(now)), LIMITS, t(now))
    }

    #[test]
    fn age_of_the_last_good_backup_decides() {
        let fresh = Host::sample(vec![Snapshot::taken(
            "a",
            "2026-11-27T11:00:00Z",
            Some(Status::Ok),
        )]);
        assert_eq!(state(&fresh, NOW).state, State::Ok);
        assert_eq!(state(&fresh, NOW).age, Some(3600));
        assert_eq!(state(&fresh, "2026-11-28T13:00:00Z").state, State::Warning);
        assert_eq!(state(&fresh, "2026-11-29T13:00:00Z").state, State::Critical);
        let j = state(&fresh, "2026-11-29T13:00:00Z");
        assert!(j.why.contains("critical after 50h"), "{}", j.why);
    }

    #[test]
    fn a_string_of_failures_does_not_count_as_a_backup() {
        let h = Host::sample(vec![
            Snapshot::taken("good", "2026-11-24T11:00:00Z", Some(Status::Warning)),
            Snapshot::taken("failed-1", "2026-11-27T10:00:00Z", Some(Status::Failed)),
            Snapshot::taken("manual", "2026-11-27T10:30:00Z", None),
            Snapshot::taken("failed-2", "2026-11-27T11:00:00Z", Some(Status::Failed)),
        ]);
        let s = summarize(&h, t(NOW));
        assert_eq!(s.last_good.unwrap().name, "good");
        assert_eq!(s.last_run.unwrap().name, "failed-2");
        assert_eq!(s.consecutive_failures, 2);
        let j = state(&h, NOW);
        assert_eq!(j.state, State::Critical);
        assert!(j.why.contains("2 failed runs since"), "{}", j.why);
    }

    #[test]
    fn no_snapshot_or_only_failures_is_critical() {
        assert_eq!(state(&Host::sample(vec![]), NOW).state, State::Critical);
        assert_eq!(state(&Host::sample(vec![]), NOW).why, "no backup yet");
        let h = Host::sample(vec![Snapshot::taken(
            "failed-1",
            "2026-11-27T11:00:00Z",
            Some(Status::Failed),
        )]);
        let j = state(&h, NOW);
        assert_eq!(
            (j.state, j.why.as_str()),
            (State::Critical, "no good backup, 1 failed run")
        );
    }

    #[test]
    fn future_snapshots_warn_at_least() {
        let h = Host::sample(vec![Snapshot::taken(
            "a",
            "2026-11-28T11:00:00Z",
            Some(Status::Ok),
        )]);
        let j = state(&h, NOW);
        assert_eq!(j.state, State::Warning);
        assert!(
            j.why.contains("1 snapshot dated in the future"),
            "{}",
            j.why
        );
    }

    #[test]
    fn a_mass_change_warns_until_acknowledged_or_for_its_time() {
        let mut pinned = Snapshot::taken("a", "2026-11-27T01:00:00Z", Some(Status::Ok));
        pinned.pin_reason = Some("mass change at 2026-11-27T02:00:00Z".into());
        let h = Host::sample(vec![
            pinned.clone(),
            Snapshot::taken("b", "2026-11-27T11:00:00Z", Some(Status::Warning)),
        ]);
        let j = state(&h, NOW);
        assert_eq!(j.state, State::Warning);
        assert!(
            j.why.contains("mass change at 2026-11-27T02:00:00Z"),
            "{}",
            j.why
        );
        // Seven days on, the warning has had its time (the pin itself stays).
        let later = state(&h, "2026-12-04T02:00:00Z");
        assert!(!later.why.contains("mass change"), "{}", later.why);
        pinned.pin_reason = Some(
            "mass change at 2026-11-27T02:00:00Z; acknowledged at 2026-11-27T09:00:00Z".into(),
        );
        let acked = Host::sample(vec![
            pinned,
            Snapshot::taken("b", "2026-11-27T11:00:00Z", Some(Status::Warning)),
        ]);
        assert_eq!(state(&acked, NOW).state, State::Ok);
    }

    #[test]
    fn an_unreachable_client_is_judged_by_its_last_good_backup() {
        let mut h = Host::sample(vec![Snapshot::taken(
            "2026-11-26T080000Z",
            "2026-11-26T08:00:05Z",
            Some(Status::Ok),
        )]);
        h.unreachable = Some(t("2026-11-27T11:00:00Z"));
        let s = summarize(&h, t(NOW));
        assert_eq!(s.unreachable, Some(t("2026-11-27T11:00:00Z")));
        let j = state(&h, NOW);
        assert_eq!(j.state, State::Warning);
        assert!(
            j.why.contains("last good backup 1d 3h ago")
                && j.why
                    .contains("client unreachable at the last attempt, 1h ago"),
            "{}",
            j.why
        );
        // A run since then reached it: the old attempt no longer counts. The run's own start,
        // in its name, is compared, since the attempt's time is zbk's clock too, whatever the
        // clock that stamped `creation` said.
        h.snapshots.push(Snapshot::taken(
            "failed-2026-11-27T113000Z",
            "2026-11-27T10:59:00Z",
            Some(Status::Failed),
        ));
        assert_eq!(summarize(&h, t(NOW)).unreachable, None);
        assert!(!state(&h, NOW).why.contains("unreachable"));
    }

    #[test]
    fn silent_differences_are_critical_and_an_old_verify_warns() {
        let found = Found {
            silent: vec!["etc/x".into()],
            ..Found::default()
        };
        let mut snap = Snapshot::taken("a", "2026-11-27T11:00:00Z", Some(Status::Ok));
        snap.verified = Some(Verified::record(
            None,
            Part::Full,
            30,
            t("2026-11-27T11:30:00Z"),
            &found,
        ));
        let h = Host::sample(vec![snap.clone()]);
        let j = state(&h, NOW);
        assert_eq!(j.state, State::Critical);
        assert!(
            j.why.contains("1 silent difference found by zbk verify"),
            "{}",
            j.why
        );
        let acked = snap.verified.as_ref().unwrap().acknowledged(t(NOW));
        snap.verified = Some(acked);
        assert_eq!(
            state(&Host::sample(vec![snap.clone()]), NOW).state,
            State::Ok
        );
        let later = Snapshot::taken("b", "2027-01-10T11:00:00Z", Some(Status::Ok));
        let h = Host::sample(vec![snap, later]);
        let j = state(&h, "2027-01-10T12:00:00Z");
        assert_eq!(j.state, State::Warning);
        assert!(j.why.contains("not fully verified within 35d"), "{}", j.why);
    }

    #[test]
    fn retired_hosts_are_not_expected_to_run() {
        let mut h = Host::sample(vec![]);
        h.retired = Some(NOW.into());
        assert_eq!(state(&h, NOW).state, State::Ok);
    }

    #[test]
    fn silent_differences_stay_critical_until_acknowledged() {
        let day1 = t("2026-12-01T03:00:00Z");
        let age = Duration::from_secs(35 * DAY as u64);
        let first = Verified::record(None, Part::Full, 2, day1, &Found::sample(2));
        let (state, why) = judge_verified(Some(&first), age, "web1", day1).remove(0);
        assert_eq!(state, State::Critical);
        assert!(
            why.starts_with("2 silent differences found by zbk verify"),
            "{why}"
        );
        // A clean verify later does not clear them.
        let day2 = day1 + chrono::TimeDelta::seconds(DAY);
        let second = Verified::record(Some(&first), Part::Slice(0), 2, day2, &Found::sample(0));
        assert_eq!(second.unacked, 2);
        assert_eq!(second.pending, first.pending);
        assert_eq!(
            judge_verified(Some(&second), age, "web1", day2)[0].0,
            State::Critical
        );
        // The same file found again is still one silent difference.
        let again = Verified::record(Some(&second), Part::Full, 2, day2, &Found::sample(2));
        assert_eq!(again.unacked, 2);
        let acked = second.acknowledged(day2);
        assert_eq!(judge_verified(Some(&acked), age, "web1", day2), []);
        assert_eq!(
            Verified::from_property(&acked.to_property()),
            Some(acked.clone())
        );
        let third = Verified::record(Some(&acked), Part::Slice(1), 2, day2, &Found::sample(1));
        assert_eq!((third.unacked, third.acked), (1, Some(day2)));
    }

    #[test]
    fn check_warns_when_some_slice_is_older_than_verify_age() {
        let day1 = t("2026-12-01T03:00:00Z");
        let age = Duration::from_secs(35 * DAY as u64);
        assert_eq!(
            judge_verified(None, age, "web1", day1),
            [],
            "never verified: not set up"
        );
        let one = Verified::record(None, Part::Slice(0), 2, day1, &Found::sample(0));
        let (state, why) = judge_verified(Some(&one), age, "web1", day1).remove(0);
        assert_eq!(state, State::Warning);
        assert!(why.contains("1 of 2 slices verified"), "{why}");
        let full = Verified::record(None, Part::Full, 2, day1, &Found::sample(0));
        assert_eq!(
            judge_verified(
                Some(&full),
                age,
                "web1",
                day1 + chrono::TimeDelta::seconds(35 * DAY)
            ),
            []
        );
        let late = day1 + chrono::TimeDelta::seconds(35 * DAY + 1);
        let (state, why) = judge_verified(Some(&full), age, "web1", late).remove(0);
        assert_eq!(state, State::Warning);
        assert!(
            why.starts_with(
                "not fully verified within 35d (every file last verified by 2026-12-01T03:00:00Z)"
            ),
            "{why}"
        );
    }
}
