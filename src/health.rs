//! Pure judgement of how each host stands, as of a given `now`: the summary `zbk status`
//! prints, the Nagios state `zbk check` derives from it, and the Prometheus textfile.

use crate::config::CheckSettings;
use crate::expiry::relative;
use crate::inventory::{Host, Snapshot};
use crate::stamp::Status;
use crate::text::counted;
use chrono::{DateTime, Utc};
use std::fmt::Write as _;

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
    Summary {
        host,
        last_good,
        last_run: host.snapshots.iter().rev().find(|s| s.is_zbk()),
        consecutive_failures,
        pinned: host.snapshots.iter().filter(|s| s.pinned.is_some()).count(),
        future: host
            .snapshots
            .iter()
            .filter(|s| s.created.is_some_and(|t| t > now))
            .count(),
        mass_change: crate::guard::unacknowledged(host),
    }
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
            (None, _) if s.host.snapshots.is_empty() => {
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

/// A threshold as an admin wrote it: whole hours read best in a one-line status.
fn hours(d: std::time::Duration) -> String {
    if d.as_secs().is_multiple_of(3600) {
        format!("{}h", d.as_secs() / 3600)
    } else {
        humantime::format_duration(d).to_string()
    }
}

/// The Nagios plugin output: one status line with perfdata, worst hosts named first.
pub fn plugin_line(results: &[(&str, Judged, CheckSettings)]) -> (State, String) {
    let worst = results
        .iter()
        .map(|(_, j, _)| j.state)
        .max()
        .unwrap_or(State::Unknown);
    let mut problems: Vec<&(&str, Judged, CheckSettings)> = results
        .iter()
        .filter(|(_, j, _)| j.state != State::Ok)
        .collect();
    problems.sort_by(|a, b| b.1.state.cmp(&a.1.state).then(a.0.cmp(b.0)));
    let text = if results.is_empty() {
        "no hosts to check".to_string()
    } else if problems.is_empty() {
        format!("{} backed up in time", counted(results.len(), "host"))
    } else {
        problems
            .iter()
            .map(|(host, j, _)| format!("{host}: {}", j.why))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut perf = String::new();
    for (host, j, limits) in results {
        let age = j.age.map_or("U".to_string(), |a| format!("{a}s"));
        let _ = write!(
            perf,
            " '{host} age'={age};{};{};0",
            limits.warn.as_secs(),
            limits.crit.as_secs()
        );
    }
    let perf = if perf.is_empty() {
        String::new()
    } else {
        format!(" |{perf}")
    };
    (worst, format!("ZBK {} - {text}{perf}", worst.label()))
}

/// A snapshot's creation time in seconds since the epoch; 0 for none, so that an alert on
/// the age fires for a host that never had one.
fn epoch(s: Option<&Snapshot>) -> f64 {
    s.and_then(|s| s.created)
        .map_or(0.0, |t| t.timestamp() as f64)
}

/// The node_exporter textfile for some hosts: one gauge family per metric, a sample per host.
pub fn prometheus(summaries: &[Summary]) -> String {
    type Metric = (&'static str, &'static str, fn(&Summary) -> Option<f64>);
    let metrics: [Metric; 10] = [
        (
            "zbk_last_good_backup_timestamp_seconds",
            "Creation time of the newest snapshot stamped ok or warning (0: none).",
            |s| Some(epoch(s.last_good)),
        ),
        (
            "zbk_last_run_timestamp_seconds",
            "Creation time of the newest snapshot zbk took (0: none).",
            |s| Some(epoch(s.last_run)),
        ),
        (
            "zbk_last_run_status",
            "How the last run ended: 0 ok, 1 warning, 2 failed; absent before the first run.",
            |s| {
                s.last_run.and_then(|r| r.status).map(|st| match st {
                    Status::Ok => 0.0,
                    Status::Warning => 1.0,
                    Status::Failed => 2.0,
                })
            },
        ),
        (
            "zbk_consecutive_failures",
            "Failed runs since the last good one.",
            |s| Some(s.consecutive_failures as f64),
        ),
        (
            "zbk_snapshots",
            "Snapshots of the host's dataset, zbk's and others.",
            |s| Some(s.host.snapshots.len() as f64),
        ),
        (
            "zbk_snapshot_bytes",
            "Space the host's snapshots hold together (usedbysnapshots).",
            |s| s.host.snapshots_used.map(|b| b as f64),
        ),
        (
            "zbk_used_bytes",
            "Space the host's dataset uses with its snapshots (used).",
            |s| s.host.used.map(|b| b as f64),
        ),
        (
            "zbk_pinned_snapshots",
            "Snapshots whose expiry was set by zbk keep.",
            |s| Some(s.pinned as f64),
        ),
        (
            "zbk_mass_change_timestamp_seconds",
            "Time of the newest run that tripped guard.max_change and that nobody has acknowledged with zbk keep or zbk restamp (0: none).",
            |s| Some(s.mass_change.map_or(0.0, |t| t.timestamp() as f64)),
        ),
        (
            "zbk_retired",
            "1 for a host retired with zbk remove --expire, else 0.",
            |s| Some(if s.host.retired.is_some() { 1.0 } else { 0.0 }),
        ),
    ];
    let mut out = String::new();
    for (name, help, value) in metrics {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for s in summaries {
            if let Some(v) = value(s) {
                // Host names are DNS names: nothing in them needs escaping in a label.
                let _ = writeln!(out, "{name}{{host=\"{}\"}} {v}", s.host.name);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expiry::{parse_time, Expiry};
    use crate::stamp::Stamp;
    use std::time::Duration;

    fn t(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap()
    }

    fn snap(name: &str, created: &str, status: Option<Status>) -> Snapshot {
        Snapshot {
            stamp: Stamp::Valid(Expiry::Never),
            tier: status.map(|_| "default".into()),
            status,
            created: Some(t(created)),
            used: Some(1),
            ..Snapshot::sample(name)
        }
    }

    fn host(snapshots: Vec<Snapshot>) -> Host {
        Host {
            used: Some(4096),
            snapshots_used: Some(1024),
            ..Host::sample(snapshots)
        }
    }

    const LIMITS: CheckSettings = CheckSettings {
        warn: Duration::from_secs(26 * 3600),
        crit: Duration::from_secs(50 * 3600),
        mass_change: Duration::from_secs(7 * 86400),
    };
    const NOW: &str = "2026-11-27T12:00:00Z";

    fn state(h: &Host, now: &str) -> Judged {
        judge(&summarize(h, t(now)), LIMITS, t(now))
    }

    #[test]
    fn age_of_the_last_good_backup_decides() {
        let fresh = host(vec![snap("a", "2026-11-27T11:00:00Z", Some(Status::Ok))]);
        assert_eq!(state(&fresh, NOW).state, State::Ok);
        assert_eq!(state(&fresh, NOW).age, Some(3600));
        assert_eq!(state(&fresh, "2026-11-28T13:00:00Z").state, State::Warning);
        assert_eq!(state(&fresh, "2026-11-29T13:00:00Z").state, State::Critical);
        let j = state(&fresh, "2026-11-29T13:00:00Z");
        assert!(j.why.contains("critical after 50h"), "{}", j.why);
    }

    #[test]
    fn a_string_of_failures_does_not_count_as_a_backup() {
        let h = host(vec![
            snap("good", "2026-11-24T11:00:00Z", Some(Status::Warning)),
            snap("failed-1", "2026-11-27T10:00:00Z", Some(Status::Failed)),
            snap("manual", "2026-11-27T10:30:00Z", None),
            snap("failed-2", "2026-11-27T11:00:00Z", Some(Status::Failed)),
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
        assert_eq!(state(&host(vec![]), NOW).state, State::Critical);
        assert_eq!(state(&host(vec![]), NOW).why, "no backup yet");
        let h = host(vec![snap(
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
        let h = host(vec![snap("a", "2026-11-28T11:00:00Z", Some(Status::Ok))]);
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
        let mut pinned = snap("a", "2026-11-27T01:00:00Z", Some(Status::Ok));
        pinned.pin_reason = Some("mass change at 2026-11-27T02:00:00Z".into());
        let h = host(vec![
            pinned.clone(),
            snap("b", "2026-11-27T11:00:00Z", Some(Status::Warning)),
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
        let text = prometheus(&[summarize(&h, t(NOW))]);
        assert!(text.contains(&format!(
            "zbk_mass_change_timestamp_seconds{{host=\"web1\"}} {}\n",
            t("2026-11-27T02:00:00Z").timestamp()
        )));
        pinned.pin_reason = Some(
            "mass change at 2026-11-27T02:00:00Z; acknowledged at 2026-11-27T09:00:00Z".into(),
        );
        let acked = host(vec![
            pinned,
            snap("b", "2026-11-27T11:00:00Z", Some(Status::Warning)),
        ]);
        assert_eq!(state(&acked, NOW).state, State::Ok);
        let text = prometheus(&[summarize(&acked, t(NOW))]);
        assert!(text.contains("zbk_mass_change_timestamp_seconds{host=\"web1\"} 0\n"));
    }

    #[test]
    fn retired_hosts_are_not_expected_to_run() {
        let mut h = host(vec![]);
        h.retired = Some(NOW.into());
        assert_eq!(state(&h, NOW).state, State::Ok);
    }

    #[test]
    fn the_plugin_line_names_the_worst_first_and_carries_perfdata() {
        let ok = state(
            &host(vec![snap("a", "2026-11-27T11:00:00Z", Some(Status::Ok))]),
            NOW,
        );
        let crit = state(&host(vec![]), NOW);
        let warn = state(
            &host(vec![snap("a", "2026-11-26T08:00:00Z", Some(Status::Ok))]),
            NOW,
        );
        let (worst, line) =
            plugin_line(&[("a", ok, LIMITS), ("b", warn, LIMITS), ("c", crit, LIMITS)]);
        assert_eq!(worst, State::Critical);
        assert!(
            line.starts_with("ZBK CRITICAL - c: no backup yet; b: last good backup 1d 4h ago"),
            "{line}"
        );
        assert!(line.ends_with("| 'a age'=3600s;93600;180000;0 'b age'=100800s;93600;180000;0 'c age'=U;93600;180000;0"), "{line}");
        assert_eq!(line.lines().count(), 1);
        let (state, line) = plugin_line(&[]);
        assert_eq!(
            (state, line.as_str()),
            (State::Unknown, "ZBK UNKNOWN - no hosts to check")
        );
    }

    #[test]
    fn prometheus_metrics_have_help_type_and_a_sample_per_host() {
        let h = host(vec![
            snap("a", "2026-11-27T11:00:00Z", Some(Status::Ok)),
            snap("failed-b", "2026-11-27T11:30:00Z", Some(Status::Failed)),
        ]);
        let text = prometheus(&[summarize(&h, t(NOW))]);
        for line in [
            "# TYPE zbk_last_good_backup_timestamp_seconds gauge",
            &format!(
                "zbk_last_good_backup_timestamp_seconds{{host=\"web1\"}} {}",
                t("2026-11-27T11:00:00Z").timestamp()
            ),
            "zbk_last_run_status{host=\"web1\"} 2",
            "zbk_consecutive_failures{host=\"web1\"} 1",
            "zbk_snapshots{host=\"web1\"} 2",
            "zbk_snapshot_bytes{host=\"web1\"} 1024",
            "zbk_used_bytes{host=\"web1\"} 4096",
            "zbk_retired{host=\"web1\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        let empty = host(vec![]);
        let text = prometheus(&[summarize(&empty, t(NOW))]);
        assert!(text.contains("zbk_last_good_backup_timestamp_seconds{host=\"web1\"} 0\n"));
        assert!(!text.contains("zbk_last_run_status{"));
    }
}
