//! `zbk check`: a Nagios/Icinga plugin. One status line with perfdata, and the plugin exit
//! statuses (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN) instead of zbk's own.

use super::judge::judge_host;
use crate::cli::CheckArgs;
use crate::config::{CheckSettings, PoolLimits};
use crate::ctx::Ctx;
use crate::expiry::Retention;
use crate::health::{Judged, State};
use crate::pool::{PoolHealth, Verdict};
use crate::text::counted;
use crate::watchdog;
use anyhow::{anyhow, Result};
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

pub fn run(ctx: &Ctx, args: CheckArgs) -> Result<u8> {
    // Nagios reads stdout and the exit status only: whatever stops the check is UNKNOWN.
    let (state, line) = within_timeout(args.timeout)
        .and_then(|()| check(ctx, &args))
        .unwrap_or_else(|e| {
            (
                State::Unknown,
                format!("ZBK UNKNOWN - {}", format!("{e:#}").replace('\n', "; ")),
            )
        });
    watchdog::disarm();
    println!("{line}");
    Ok(state.code())
}

/// Bounds everything the check does, its config read from the pool included, with a
/// process-wide alarm: a pool that stopped answering makes the check UNKNOWN with the reason,
/// not the caller's own timeout.
fn within_timeout(seconds: u64) -> Result<()> {
    if seconds == 0 {
        return Err(anyhow!("--timeout: must be at least 1 second"));
    }
    let fire = move |doing: &str, _: Duration| {
        let doing = if doing.is_empty() {
            "reading the pool"
        } else {
            doing
        };
        println!("ZBK UNKNOWN - no answer within {seconds}s (--timeout): still {doing}");
        let _ = std::io::stdout().flush();
        std::process::exit(State::Unknown.code().into());
    };
    watchdog::arm(
        watchdog::Bound::Total,
        Duration::from_secs(seconds),
        Box::new(fire),
    );
    Ok(())
}

fn threshold(flag: &str, text: &Option<String>) -> Result<Option<Duration>> {
    match text.as_deref().map(Retention::parse) {
        None => Ok(None),
        Some(Ok(Retention::For(span))) => Ok(Some(span.nominal())),
        Some(Ok(Retention::Never)) => Err(anyhow!("{flag}: must be a duration, not never")),
        Some(Err(e)) => Err(anyhow!("{flag}: {e}")),
    }
}

fn check(ctx: &Ctx, args: &CheckArgs) -> Result<(State, String)> {
    let warn = threshold("--warn", &args.warn)?;
    let crit = threshold("--crit", &args.crit)?;
    super::named_hosts(&args.hosts)?;
    let global = ctx.global()?;
    // The pool's health comes from other programs than the hosts': read side by side.
    let (pool, read) = std::thread::scope(|s| {
        let pool = s.spawn(|| super::pool::health(ctx, &global.dataset));
        let read = super::Standing::read(ctx, &global.dataset.hosts(), &args.hosts);
        (pool.join(), read)
    });
    let pool = pool.unwrap_or_else(|_| Err(anyhow!("reading the pool's health panicked")));
    let (standing, hosts) = read?;
    // Each host's config is a file on the pool, and on zfs-fuse each read waits on the
    // daemon: a few at a time.
    let judged = crate::parallel::map(&hosts, 4, |name| {
        judge_host(ctx, &global, &standing.summary(name), warn, crit)
    });
    let mut results: Vec<(&str, Judged, CheckSettings)> = Vec::new();
    for (name, outcome) in hosts.iter().zip(judged) {
        let (judged, limits) = outcome.map_err(|e| anyhow!("{name}: {e}"))?;
        results.push((name.as_str(), judged, limits));
    }
    Ok(plugin_line(
        &pool_verdict(&pool, global.pool, ctx.now),
        &results,
    ))
}

/// The pool's part of the line: its name, verdict and capacity; UNKNOWN with the reason when
/// its health cannot be read.
fn pool_verdict(
    pool: &Result<PoolHealth>,
    limits: PoolLimits,
    now: chrono::DateTime<chrono::Utc>,
) -> (Verdict, Option<u8>, PoolLimits) {
    let mut v = super::pool::verdict(pool, limits, now);
    if let Ok(p) = pool {
        v.why.insert(0, format!("pool {}", p.name));
    }
    (v, pool.as_ref().ok().and_then(|p| p.capacity), limits)
}

/// The Nagios plugin output: one status line with perfdata, the pool's problems first, then
/// the worst hosts.
fn plugin_line(
    (pool, capacity, pool_limits): &(Verdict, Option<u8>, PoolLimits),
    results: &[(&str, Judged, CheckSettings)],
) -> (State, String) {
    let worst = results
        .iter()
        .map(|(_, j, _)| j.state)
        .max()
        .unwrap_or(State::Unknown)
        .max(pool.state);
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
    let text = if pool.state == State::Ok {
        text
    } else if pool.why.len() > 1 && pool.why[0].starts_with("pool ") {
        format!("{}: {}; {text}", pool.why[0], pool.why[1..].join(", "))
    } else {
        format!("{}; {text}", pool.why.join(", "))
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
    if let Some(c) = capacity {
        let _ = write!(
            perf,
            " 'pool capacity'={c}%;{};;0;100",
            pool_limits.capacity_warn
        );
    }
    let perf = if perf.is_empty() {
        String::new()
    } else {
        format!(" |{perf}")
    };
    (worst, format!("ZBK {} - {text}{perf}", worst.label()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expiry::parse_time;
    use crate::health;
    use crate::inventory::{Host, Snapshot};
    use crate::stamp::Status;

    const NOW: &str = "2026-11-27T12:00:00Z";
    const LIMITS: CheckSettings = CheckSettings {
        warn: Duration::from_secs(26 * 3600),
        crit: Duration::from_secs(50 * 3600),
        mass_change: Duration::from_secs(7 * 86400),
        verify_age: Duration::from_secs(35 * 86400),
    };

    fn state(h: &Host, now: &str) -> Judged {
        let now = parse_time(now).unwrap();
        health::judge(&health::summarize(h, now), LIMITS, now)
    }

    #[test]
    fn the_plugin_line_names_the_worst_first_and_carries_perfdata() {
        let ok = state(
            &Host::sample(vec![Snapshot::taken(
                "a",
                "2026-11-27T11:00:00Z",
                Some(Status::Ok),
            )]),
            NOW,
        );
        let crit = state(&Host::sample(vec![]), NOW);
        let warn = state(
            &Host::sample(vec![Snapshot::taken(
                "a",
                "2026-11-26T08:00:00Z",
                Some(Status::Ok),
            )]),
            NOW,
        );
        let (worst, line) = plugin_line(
            &healthy_pool(),
            &[("a", ok, LIMITS), ("b", warn, LIMITS), ("c", crit, LIMITS)],
        );
        assert_eq!(worst, State::Critical);
        assert!(
            line.starts_with("ZBK CRITICAL - c: no backup yet; b: last good backup 1d 4h ago"),
            "{line}"
        );
        assert!(line.ends_with("| 'a age'=3600s;93600;180000;0 'b age'=100800s;93600;180000;0 'c age'=U;93600;180000;0 'pool capacity'=40%;80;;0;100"), "{line}");
        assert_eq!(line.lines().count(), 1);
        let (state, line) = plugin_line(&healthy_pool(), &[]);
        assert_eq!(
            (state, line.as_str()),
            (
                State::Unknown,
                "ZBK UNKNOWN - no hosts to check | 'pool capacity'=40%;80;;0;100"
            )
        );
    }

    fn healthy_pool() -> (Verdict, Option<u8>, PoolLimits) {
        (
            Verdict {
                state: State::Ok,
                why: vec!["pool tank".into()],
            },
            Some(40),
            PoolLimits::default(),
        )
    }

    #[test]
    fn the_pool_comes_first_and_an_unreadable_one_is_unknown_never_ok() {
        let now = parse_time(NOW).unwrap();
        let ok = state(
            &Host::sample(vec![Snapshot::taken(
                "a",
                "2026-11-27T11:00:00Z",
                Some(Status::Ok),
            )]),
            NOW,
        );
        let degraded = PoolHealth {
            name: "tank".into(),
            state: "DEGRADED".into(),
            read_errors: 0,
            write_errors: 0,
            checksum_errors: 0,
            data_errors: 0,
            scrub: crate::pool::Scrub::Running { started: None },
            capacity: Some(85),
            created: None,
        };
        let (worst, line) = plugin_line(
            &pool_verdict(&Ok(degraded), PoolLimits::default(), now),
            &[("a", ok, LIMITS)],
        );
        assert_eq!(worst, State::Critical);
        assert!(
            line.starts_with("ZBK CRITICAL - pool tank: DEGRADED, 85% full (check.capacity_warn 80%); 1 host backed up in time | 'a age'=3600s;93600;180000;0 'pool capacity'=85%;80;;0;100"),
            "{line}"
        );
        let unread = Err(anyhow!("zpool status: cannot read \"state: ??\"").context("pool tank"));
        let ok = state(
            &Host::sample(vec![Snapshot::taken(
                "a",
                "2026-11-27T11:00:00Z",
                Some(Status::Ok),
            )]),
            NOW,
        );
        let (worst, line) = plugin_line(
            &pool_verdict(&unread, PoolLimits::default(), now),
            &[("a", ok, LIMITS)],
        );
        assert_eq!(worst, State::Unknown);
        assert!(
            line.starts_with(
                "ZBK UNKNOWN - pool tank: zpool status: cannot read \"state: ??\"; 1 host"
            ),
            "{line}"
        );
    }
}
