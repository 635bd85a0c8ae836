//! Pure reading and judgement of the pool's own health: `zpool status` (OpenZFS's JSON from
//! `-j --json-int`, or the text zfs-fuse prints), the capacity `zpool list` gives (read from
//! that JSON where it holds it), and the Nagios state `zbk check` derives from them as of a
//! given `now`.
//!
//! Whatever cannot be read is an error naming the line, never a guess: a pool whose health is
//! unknown must not pass for a healthy one.

use crate::config::PoolLimits;
use crate::health::State;
use crate::text::counted;
use anyhow::{anyhow, bail, Result};
use chrono::{DateTime, NaiveDateTime, Utc};
use std::time::Duration;

/// The pool as `zpool status` and `zpool list` saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolHealth {
    pub name: String,
    /// ONLINE, DEGRADED, FAULTED, SUSPENDED, UNAVAIL...
    pub state: String,
    /// Errors counted on its devices, summed over every vdev.
    pub read_errors: u64,
    pub write_errors: u64,
    pub checksum_errors: u64,
    /// Permanent errors in data (`errors: N data errors`).
    pub data_errors: u64,
    pub scrub: Scrub,
    /// `zpool list`'s capacity in percent, when asked.
    pub capacity: Option<u8>,
    /// When the pool was made (its root dataset's creation), when asked.
    pub created: Option<DateTime<Utc>>,
}

/// The pool's last scrub as far as `zpool status` tells: it shows only the last scan, so once a
/// resilver has run, an earlier scrub is no longer known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scrub {
    /// No scrub on record: never ran, or a resilver was the last scan.
    None,
    Running {
        started: Option<DateTime<Utc>>,
    },
    Finished {
        at: DateTime<Utc>,
        errors: u64,
    },
    Canceled {
        at: Option<DateTime<Utc>>,
    },
}

impl Scrub {
    /// When a scrub last covered the whole pool, if one is known to have.
    pub fn finished(&self) -> Option<DateTime<Utc>> {
        match self {
            Scrub::Finished { at, .. } => Some(*at),
            _ => None,
        }
    }
}

/// Parses `zpool status -j --json-int POOL` (OpenZFS 2.3 and later).
pub fn parse_json(text: &str, pool: &str) -> Result<PoolHealth> {
    let doc: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| anyhow!("zpool status -j: not JSON ({e}): {}", first_line(text)))?;
    let p = doc
        .get("pools")
        .and_then(|p| p.get(pool))
        .ok_or_else(|| anyhow!("zpool status -j: no pool {pool:?} in {}", first_line(text)))?;
    let field = |v: &serde_json::Value, k: &str| -> Result<u64> {
        match v.get(k) {
            None => Ok(0),
            Some(serde_json::Value::Number(n)) => n
                .as_u64()
                .ok_or_else(|| anyhow!("zpool status -j: {k}: {n} is not a count")),
            Some(serde_json::Value::String(s)) => {
                count(s).ok_or_else(|| anyhow!("zpool status -j: {k}: {s:?} is not a count"))
            }
            Some(other) => bail!("zpool status -j: {k}: {other} is not a count"),
        }
    };
    let state = p
        .get("state")
        .and_then(|s| s.as_str())
        .ok_or_else(|| anyhow!("zpool status -j: pool {pool} has no state"))?;
    let mut health = PoolHealth {
        name: pool.to_string(),
        state: state.to_string(),
        read_errors: 0,
        write_errors: 0,
        checksum_errors: 0,
        data_errors: field(p, "error_count")?,
        scrub: Scrub::None,
        capacity: None,
        created: None,
    };
    let mut stack: Vec<&serde_json::Value> = p
        .get("vdevs")
        .and_then(|v| v.as_object())
        .map(|m| m.values().collect())
        .unwrap_or_default();
    // The root vdev's space leaves log devices out, as `zpool list`'s size does, and counts
    // raidz parity in both figures, as its allocated does: the same percentage, rounded down
    // as zpool rounds it. An older zpool without the figures leaves it to `zpool list`.
    let root = stack
        .iter()
        .find(|v| v.get("vdev_type").and_then(|t| t.as_str()) == Some("root"));
    if let Some(root) = root.filter(|r| r.get("alloc_space").is_some()) {
        let (alloc, total) = (field(root, "alloc_space")?, field(root, "total_space")?);
        if total > 0 {
            let percent = u128::from(alloc) * 100 / u128::from(total);
            health.capacity = Some(u8::try_from(percent).unwrap_or(u8::MAX));
        }
    }
    while let Some(v) = stack.pop() {
        health.read_errors += field(v, "read_errors")?;
        health.write_errors += field(v, "write_errors")?;
        health.checksum_errors += field(v, "checksum_errors")?;
        if let Some(children) = v.get("vdevs").and_then(|c| c.as_object()) {
            stack.extend(children.values());
        }
    }
    if let Some(scan) = p.get("scan_stats") {
        let word = |k: &str| scan.get(k).and_then(|s| s.as_str()).unwrap_or("");
        let time = |k: &str| -> Result<Option<DateTime<Utc>>> {
            let secs = field(scan, k)?;
            Ok(i64::try_from(secs)
                .ok()
                .filter(|s| *s > 0)
                .and_then(|s| DateTime::from_timestamp(s, 0)))
        };
        health.scrub = match (word("function"), word("state")) {
            ("SCRUB", "FINISHED") => Scrub::Finished {
                at: time("end_time")?
                    .ok_or_else(|| anyhow!("zpool status -j: a finished scrub without end_time"))?,
                errors: field(scan, "errors")?,
            },
            ("SCRUB", "SCANNING") => Scrub::Running {
                started: time("start_time")?,
            },
            ("SCRUB", "CANCELED") => Scrub::Canceled {
                at: time("end_time")?,
            },
            ("SCRUB", other) => bail!("zpool status -j: a scrub in state {other:?}"),
            _ => Scrub::None,
        };
    }
    Ok(health)
}

/// Parses the text of `zpool status POOL`, run with `TZ=UTC` (its times carry no zone), as
/// zfs-fuse prints it and OpenZFS before JSON did.
pub fn parse_text(text: &str) -> Result<PoolHealth> {
    let mut name = None;
    let mut state = None;
    let mut scrub = None;
    let mut data_errors = None;
    let (mut read, mut write, mut cksum) = (0, 0, 0);
    let mut in_config = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if let Some((key, value)) = trimmed.split_once(':').filter(|_| !line.starts_with('\t')) {
            let value = value.trim();
            match key {
                "pool" => name = Some(value.to_string()),
                "state" => state = Some(value.to_string()),
                "scrub" | "scan" => scrub = Some(scan_line(value).ok_or_else(|| unread(line))?),
                "errors" => data_errors = Some(errors_line(value).ok_or_else(|| unread(line))?),
                "config" => in_config = true,
                _ => {}
            }
            if key != "config" {
                in_config = false;
            }
            continue;
        }
        if !in_config {
            continue; // the continuation of status:, action: or scan:
        }
        let words: Vec<&str> = trimmed.split_whitespace().collect();
        if words.first() == Some(&"NAME") || words.len() < 5 {
            continue; // the header, a section (logs, cache, spares) or a spare
        }
        match (count(words[2]), count(words[3]), count(words[4])) {
            (Some(r), Some(w), Some(c)) => {
                read += r;
                write += w;
                cksum += c;
            }
            _ => return Err(unread(line)),
        }
    }
    let missing = |what: &str| anyhow!("zpool status: no {what} line in {}", first_line(text));
    Ok(PoolHealth {
        name: name.ok_or_else(|| missing("pool:"))?,
        state: state.ok_or_else(|| missing("state:"))?,
        read_errors: read,
        write_errors: write,
        checksum_errors: cksum,
        data_errors: data_errors.ok_or_else(|| missing("errors:"))?,
        scrub: scrub.unwrap_or(Scrub::None),
        capacity: None,
        created: None,
    })
}

fn unread(line: &str) -> anyhow::Error {
    anyhow!("zpool status: cannot read {:?}", line.trim())
}

fn first_line(text: &str) -> String {
    format!("{:?}", text.lines().next().unwrap_or(""))
}

/// A device's error count: OpenZFS's text shortens large ones (`1.2K`).
fn count(word: &str) -> Option<u64> {
    if let Ok(n) = word.parse() {
        return Some(n);
    }
    let (number, unit) = word.split_at(word.len().checked_sub(1)?);
    let scale = match unit {
        "K" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        _ => return None,
    };
    let n: f64 = number.parse().ok()?;
    (n.is_finite() && n >= 0.0).then_some((n * scale) as u64)
}

/// The value of the `scrub:` (zfs-fuse) or `scan:` (OpenZFS) line.
fn scan_line(value: &str) -> Option<Scrub> {
    let at = |v: &str| v.rsplit_once(" on ").and_then(|(_, t)| ctime(t));
    let since = |v: &str| v.rsplit_once(" since ").and_then(|(_, t)| ctime(t));
    // A resilver shown in place of the last scrub hides when that scrub was.
    if value == "none requested" || value.starts_with("resilver") {
        Some(Scrub::None)
    } else if value.starts_with("scrub in progress") {
        Some(Scrub::Running {
            started: since(value),
        })
    } else if value.starts_with("scrub completed") || value.starts_with("scrub repaired") {
        let errors = value
            .split_once(" with ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .and_then(count)?;
        Some(Scrub::Finished {
            at: at(value)?,
            errors,
        })
    } else if value.starts_with("scrub canceled") || value.starts_with("scrub stopped") {
        Some(Scrub::Canceled { at: at(value) })
    } else if value.starts_with("scrub paused") {
        Some(Scrub::Running { started: None })
    } else {
        None
    }
}

/// The count of the `errors:` line.
fn errors_line(value: &str) -> Option<u64> {
    if value == "No known data errors" {
        return Some(0);
    }
    let (n, rest) = value.split_once(' ')?;
    rest.starts_with("data error").then(|| n.parse().ok())?
}

/// A time as ctime(3) prints it (`Sun Dec  6 10:27:29 2026`), in UTC; OpenZFS may name the
/// zone (`Sun Dec  6 10:27:29 UTC 2026`).
fn ctime(text: &str) -> Option<DateTime<Utc>> {
    let words: Vec<&str> = text
        .split_whitespace()
        .filter(|w| *w != "UTC" && *w != "GMT")
        .collect();
    NaiveDateTime::parse_from_str(&words.join(" "), "%a %b %d %H:%M:%S %Y")
        .ok()
        .map(|t| t.and_utc())
}

/// `zpool list -H -o capacity`'s value: `12%` (or `12` with `-p`).
pub fn parse_capacity(text: &str) -> Result<u8> {
    let word = text.trim();
    word.trim_end_matches('%')
        .parse()
        .map_err(|_| anyhow!("zpool list: cannot read the capacity {word:?}"))
}

/// The pool's state and the reasons for it.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    pub state: State,
    pub why: Vec<String>,
}

/// Judges the pool as of `now`: CRITICAL when it is not ONLINE or holds data errors, WARNING for
/// device errors, a scrub older than `scrub_age` (or none on a pool older than that) and a
/// capacity past `capacity_warn`.
pub fn judge(p: &PoolHealth, limits: PoolLimits, now: DateTime<Utc>) -> Verdict {
    let mut state = State::Ok;
    let mut why = Vec::new();
    let mut raise = |to: State, text: String| {
        state = state.max(to);
        why.push(text);
    };
    if p.state != "ONLINE" {
        raise(State::Critical, p.state.clone());
    }
    if p.data_errors > 0 {
        raise(
            State::Critical,
            format!(
                "{} (zpool status -v lists the files)",
                counted(p.data_errors as usize, "data error")
            ),
        );
    }
    let device = [
        (p.read_errors, "read"),
        (p.write_errors, "write"),
        (p.checksum_errors, "checksum"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect::<Vec<_>>();
    if !device.is_empty() {
        raise(
            State::Warning,
            format!(
                "device errors: {} (zpool status; zpool clear once dealt with)",
                device.join(", ")
            ),
        );
    }
    let max_age = chrono::Duration::from_std(limits.scrub_age).unwrap_or(chrono::Duration::MAX);
    let age = crate::expiry::relative;
    match &p.scrub {
        Scrub::Finished { at, errors } => {
            if now.signed_duration_since(*at) > max_age {
                raise(
                    State::Warning,
                    format!(
                        "last scrub {} (check.scrub_age {})",
                        age(*at, now),
                        days(limits.scrub_age)
                    ),
                );
            }
            if *errors > 0 {
                raise(
                    State::Warning,
                    format!("last scrub found {}", counted(*errors as usize, "error")),
                );
            }
        }
        Scrub::Running { .. } => {}
        Scrub::None | Scrub::Canceled { .. } => match p.created {
            Some(made) if now.signed_duration_since(made) <= max_age => {}
            Some(made) => raise(
                State::Warning,
                format!(
                    "no finished scrub on record, pool made {} (check.scrub_age {})",
                    age(made, now),
                    days(limits.scrub_age)
                ),
            ),
            None => raise(
                State::Warning,
                "no finished scrub on record and the pool's age unknown".to_string(),
            ),
        },
    }
    if let Some(c) = p.capacity.filter(|c| *c >= limits.capacity_warn) {
        raise(
            State::Warning,
            format!("{c}% full (check.capacity_warn {}%)", limits.capacity_warn),
        );
    }
    Verdict { state, why }
}

fn days(d: Duration) -> String {
    crate::text::whole(d, 86400, "d")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expiry::parse_time;

    fn t(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap()
    }

    const FUSE_DEGRADED: &str = "  pool: zbkt1x0
 state: DEGRADED
status: One or more devices has been taken offline by the administrator.
\tSufficient replicas exist for the pool to continue functioning in a
\tdegraded state.
action: Online the device using 'zpool online' or replace the device with
\t'zpool replace'.
 scrub: scrub completed after 0h0m with 0 errors on Sun Dec  6 10:27:29 2026
config:

\tNAME                    STATE     READ WRITE CKSUM
\tzbkt1x0                 DEGRADED     0     0     0
\t  mirror-0              DEGRADED     0     0     0
\t    /tmp/h/a.img        ONLINE       0     0     0
\t    /tmp/h/b.img        OFFLINE      0     0     0

errors: No known data errors
";

    const OPENZFS_TEXT: &str = "  pool: t
 state: ONLINE
  scan: scrub in progress since Sun Dec  6 10:29:24 2026
\t200M / 200M scanned, 59.5M / 200M issued at 59.5M/s
\t0B repaired, 29.70% done, 00:00:02 to go
config:

\tNAME        STATE     READ WRITE CKSUM
\tt           ONLINE       0     0     0
\t  mirror-0  ONLINE       0     0     0
\t    vda1    ONLINE       3     0  1.2K
\t    vda2    ONLINE       0     0     0
\tspares
\t  vda3      AVAIL

errors: 2 data errors, use '-v' for a list
";

    /// What OpenZFS 2.4 printed in the VM for a mirror after a scrub, one side offline.
    const OPENZFS_JSON: &str = r#"{"output_version":{"command":"zpool status","vers_major":0,"vers_minor":1},"pools":{"t":{"name":"t","state":"DEGRADED","pool_guid":15082910978710992544,"txg":17,"spa_version":5000,"zpl_version":5,"scan_stats":{"function":"SCRUB","state":"FINISHED","start_time":1796552964,"end_time":1796552968,"errors":0},"vdevs":{"t":{"name":"t","vdev_type":"root","class":"normal","state":"DEGRADED","alloc_space":420119552,"total_space":4026531840,"read_errors":0,"write_errors":0,"checksum_errors":0,"vdevs":{"mirror-0":{"name":"mirror-0","vdev_type":"mirror","state":"DEGRADED","read_errors":0,"write_errors":0,"checksum_errors":0,"vdevs":{"vda1":{"name":"vda1","state":"ONLINE","read_errors":5,"write_errors":0,"checksum_errors":7},"vda2":{"name":"vda2","state":"OFFLINE","read_errors":0,"write_errors":1,"checksum_errors":0}}}}}},"error_count":3}}}"#;

    #[test]
    fn zfs_fuse_text_reads_state_counts_and_scrub() {
        let p = parse_text(FUSE_DEGRADED).unwrap();
        assert_eq!(p.name, "zbkt1x0");
        assert_eq!(p.state, "DEGRADED");
        assert_eq!(
            (
                p.read_errors,
                p.write_errors,
                p.checksum_errors,
                p.data_errors
            ),
            (0, 0, 0, 0)
        );
        assert_eq!(
            p.scrub,
            Scrub::Finished {
                at: t("2026-12-06T10:27:29Z"),
                errors: 0
            }
        );
    }

    #[test]
    fn openzfs_text_reads_shortened_counts_spares_and_a_running_scrub() {
        let p = parse_text(OPENZFS_TEXT).unwrap();
        assert_eq!(
            (p.read_errors, p.checksum_errors, p.data_errors),
            (3, 1200, 2)
        );
        assert_eq!(
            p.scrub,
            Scrub::Running {
                started: Some(t("2026-12-06T10:29:24Z"))
            }
        );
        let repaired = "  pool: t\n state: ONLINE\n  scan: scrub repaired 0B in 00:00:00 with 0 errors on Sun Dec  6 10:28:06 2026\nerrors: No known data errors\n";
        assert_eq!(
            parse_text(repaired).unwrap().scrub.finished(),
            Some(t("2026-12-06T10:28:06Z"))
        );
        let resilvered = "  pool: t\n state: ONLINE\n scrub: resilver completed after 0h0m with 0 errors on Sun Dec  6 10:27:31 2026\nerrors: No known data errors\n";
        assert_eq!(parse_text(resilvered).unwrap().scrub, Scrub::None);
    }

    #[test]
    fn openzfs_json_sums_every_vdev_and_reads_the_scan() {
        let p = parse_json(OPENZFS_JSON, "t").unwrap();
        assert_eq!(p.state, "DEGRADED");
        assert_eq!(
            (
                p.read_errors,
                p.write_errors,
                p.checksum_errors,
                p.data_errors
            ),
            (5, 1, 7, 3)
        );
        assert_eq!(p.scrub.finished(), Some(t("2026-12-06T10:29:28Z")));
        // 10.43 %: `zpool list -o capacity` said 10% of this raidz pool.
        assert_eq!(p.capacity, Some(10));
        let older =
            OPENZFS_JSON.replace(r#""alloc_space":420119552,"total_space":4026531840,"#, "");
        assert_eq!(parse_json(&older, "t").unwrap().capacity, None);
        let running = OPENZFS_JSON.replace(r#""FINISHED""#, r#""SCANNING""#);
        assert!(matches!(
            parse_json(&running, "t").unwrap().scrub,
            Scrub::Running { .. }
        ));
        let resilver = OPENZFS_JSON.replace(r#""SCRUB""#, r#""RESILVER""#);
        assert_eq!(parse_json(&resilver, "t").unwrap().scrub, Scrub::None);
        let strings = r#"{"pools":{"t":{"state":"ONLINE","vdevs":{"t":{"read_errors":"1.5K"}},"error_count":"0"}}}"#;
        let p = parse_json(strings, "t").unwrap();
        assert_eq!((p.read_errors, p.scrub), (1500, Scrub::None));
    }

    #[test]
    fn what_cannot_be_read_is_named_never_guessed() {
        for (text, want) in [
            ("", "no pool: line"),
            ("  pool: t\nerrors: No known data errors\n", "no state: line"),
            ("  pool: t\n state: ONLINE\n", "no errors: line"),
            (
                "  pool: t\n state: ONLINE\n scrub: scrub exploded\nerrors: No known data errors\n",
                "cannot read \"scrub: scrub exploded\"",
            ),
            (
                "  pool: t\n state: ONLINE\nconfig:\n\tt  ONLINE  0 x 0\nerrors: No known data errors\n",
                "cannot read \"t  ONLINE  0 x 0\"",
            ),
            (
                "  pool: t\n state: ONLINE\nerrors: something new\n",
                "cannot read \"errors: something new\"",
            ),
        ] {
            let err = parse_text(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
        assert!(parse_json("nope", "t").is_err());
        assert!(parse_json(OPENZFS_JSON, "other")
            .unwrap_err()
            .to_string()
            .contains("no pool"));
        let bad = OPENZFS_JSON.replace("\"error_count\":3", "\"error_count\":\"many\"");
        assert!(parse_json(&bad, "t")
            .unwrap_err()
            .to_string()
            .contains("error_count"));
        assert_eq!(parse_capacity("81%\n").unwrap(), 81);
        assert!(parse_capacity("-").is_err());
    }

    fn healthy(scrub: Scrub) -> PoolHealth {
        PoolHealth {
            name: "tank".into(),
            state: "ONLINE".into(),
            read_errors: 0,
            write_errors: 0,
            checksum_errors: 0,
            data_errors: 0,
            scrub,
            capacity: Some(40),
            created: Some(t("2026-01-01T00:00:00Z")),
        }
    }

    #[test]
    fn not_online_or_data_errors_are_critical() {
        let now = t("2026-12-06T12:00:00Z");
        let scrubbed = Scrub::Finished {
            at: t("2026-12-01T00:00:00Z"),
            errors: 0,
        };
        let ok = judge(&healthy(scrubbed.clone()), PoolLimits::default(), now);
        assert_eq!(
            ok,
            Verdict {
                state: State::Ok,
                why: vec![]
            }
        );
        for state in ["DEGRADED", "FAULTED", "SUSPENDED", "UNAVAIL"] {
            let p = PoolHealth {
                state: state.into(),
                ..healthy(scrubbed.clone())
            };
            let v = judge(&p, PoolLimits::default(), now);
            assert_eq!((v.state, v.why[0].as_str()), (State::Critical, state));
        }
        let p = PoolHealth {
            data_errors: 2,
            ..healthy(scrubbed.clone())
        };
        let v = judge(&p, PoolLimits::default(), now);
        assert_eq!(v.state, State::Critical);
        assert!(v.why[0].starts_with("2 data errors"), "{:?}", v.why);
        let p = PoolHealth {
            checksum_errors: 4,
            ..healthy(scrubbed)
        };
        let v = judge(&p, PoolLimits::default(), now);
        assert_eq!(v.state, State::Warning);
        assert!(
            v.why[0].starts_with("device errors: 4 checksum"),
            "{:?}",
            v.why
        );
    }

    #[test]
    fn the_scrub_ages_into_a_warning() {
        let limits = PoolLimits::default();
        let p = healthy(Scrub::Finished {
            at: t("2026-11-01T00:00:00Z"),
            errors: 0,
        });
        assert_eq!(
            judge(&p, limits, t("2026-12-06T00:00:00Z")).state,
            State::Ok,
            "exactly 35 days"
        );
        let v = judge(&p, limits, t("2026-12-06T00:00:01Z"));
        assert_eq!(v.state, State::Warning);
        assert!(
            v.why[0].starts_with("last scrub 35d ") && v.why[0].ends_with("(check.scrub_age 35d)"),
            "{:?}",
            v.why
        );
        // A scrub under way neither warns nor clears a warning's cause: it is simply not judged.
        assert_eq!(
            judge(
                &healthy(Scrub::Running { started: None }),
                limits,
                t("2027-06-01T00:00:00Z")
            )
            .state,
            State::Ok
        );
        // Never scrubbed: fine while the pool is young, a warning once it is older than the limit.
        let mut young = healthy(Scrub::None);
        young.created = Some(t("2026-11-20T00:00:00Z"));
        assert_eq!(
            judge(&young, limits, t("2026-12-06T00:00:00Z")).state,
            State::Ok
        );
        let v = judge(&young, limits, t("2026-12-25T00:00:01Z"));
        assert_eq!(v.state, State::Warning);
        assert!(
            v.why[0].starts_with("no finished scrub on record, pool made 35d"),
            "{:?}",
            v.why
        );
        young.created = None;
        assert_eq!(
            judge(&young, limits, t("2026-12-06T00:00:00Z")).state,
            State::Warning
        );
        let found = healthy(Scrub::Finished {
            at: t("2026-12-05T00:00:00Z"),
            errors: 2,
        });
        assert_eq!(
            judge(&found, limits, t("2026-12-06T00:00:00Z")).why,
            ["last scrub found 2 errors"]
        );
    }

    #[test]
    fn capacity_past_the_limit_warns() {
        let now = t("2026-12-06T00:00:00Z");
        let mut p = healthy(Scrub::Finished {
            at: t("2026-12-05T00:00:00Z"),
            errors: 0,
        });
        p.capacity = Some(79);
        assert_eq!(judge(&p, PoolLimits::default(), now).state, State::Ok);
        p.capacity = Some(80);
        let v = judge(&p, PoolLimits::default(), now);
        assert_eq!(
            (v.state, v.why),
            (
                State::Warning,
                vec!["80% full (check.capacity_warn 80%)".to_string()]
            )
        );
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::fuzz::config("src/proptest-regressions/pool.txt"))]

        /// zpool's output is read whatever it holds: an error or a health, never a panic, and a
        /// health read from text names the state its `state:` line gave.
        #[test]
        fn zpool_output_of_any_shape(lines in prop::collection::vec(
            prop_oneof![
                Just("  pool: t".to_string()),
                Just(" state: ONLINE".to_string()),
                Just(" state: DEGRADED".to_string()),
                Just("config:".to_string()),
                Just("\tNAME STATE READ WRITE CKSUM".to_string()),
                Just("errors: No known data errors".to_string()),
                "errors: [0-9]{1,25} data errors".prop_map(|s| s),
                "\t[a-z0-9-]{1,8} +[A-Z]{3,8} +[0-9.KMGT]{1,6} +[0-9.KMGT]{1,6} +[0-9.KMGT]{1,6}",
                " (scrub|scan): (scrub|resilver|none)[ -~]{0,60}",
                "[ -~\t]{0,40}",
            ],
            0..12,
        )) {
            let text = lines.join("\n");
            if let Ok(p) = super::parse_text(&text) {
                let named = text
                    .lines()
                    .filter(|l| !l.starts_with('\t'))
                    .filter_map(|l| l.trim().strip_prefix("state:"))
                    .next_back()
                    .map(str::trim);
                prop_assert_eq!(Some(p.state.as_str()), named);
            }
            let _ = super::parse_json(&text, "t");
        }

        /// JSON of any shape under `pools.t` is read or refused, never a panic.
        #[test]
        fn zpool_json_of_any_shape(state in "[A-Z]{0,9}", n in any::<i64>(), word in "[ -~]{0,8}") {
            let text = format!(
                r#"{{"pools":{{"t":{{"state":"{state}","error_count":{n},"scan_stats":{{"function":"SCRUB","state":"{}","end_time":{n}}},"vdevs":{{"t":{{"read_errors":"{}"}}}}}}}}}}"#,
                word.escape_default(), word.escape_default()
            );
            let _ = super::parse_json(&text, "t");
        }
    }
}
