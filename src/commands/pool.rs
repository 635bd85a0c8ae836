//! The pool's health as `check`, `status` and `doctor` show it: read once through `zpool`,
//! judged by `pool::judge`, and written as a phrase, a JSON object or Prometheus samples.

use crate::config::PoolLimits;
use crate::ctx::Ctx;
use crate::dataset::RootDataset;
use crate::expiry::{relative, Expiry};
use crate::health::State;
use crate::pool::{self, PoolHealth, Scrub};
use crate::sys::zpool::Zpool;
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt::Write as _;

/// The health of the pool the tree under `dataset` lives on.
pub fn health(ctx: &Ctx, dataset: &RootDataset) -> Result<PoolHealth> {
    let pool = dataset.pool();
    let health = Zpool::find(&ctx.zfs)?.health(pool.as_str(), || {
        let (value, _) = ctx.zfs.get(&pool, "creation")?;
        Ok(value
            .parse()
            .ok()
            .and_then(|secs| DateTime::from_timestamp(secs, 0)))
    });
    health.with_context(|| format!("pool {pool}"))
}

/// The pool at a glance: `ONLINE, 12% full, last scrub 3d 2h ago`.
pub fn phrase(p: &PoolHealth, now: DateTime<Utc>) -> String {
    let mut out = p.state.clone();
    if let Some(c) = p.capacity {
        let _ = write!(out, ", {c}% full");
    }
    match &p.scrub {
        Scrub::Finished { at, .. } => {
            let _ = write!(out, ", last scrub {}", relative(*at, now));
        }
        Scrub::Running { .. } => out.push_str(", scrub in progress"),
        Scrub::Canceled { .. } => out.push_str(", last scrub canceled"),
        Scrub::None => out.push_str(", no scrub on record"),
    }
    out
}

/// The `pool` object of `zbk status --json`; the field names are documented in zbk-status(8).
#[derive(Serialize)]
pub struct Json {
    name: String,
    /// OK, WARNING, CRITICAL or UNKNOWN, as `zbk check` judges the pool.
    check: &'static str,
    problems: Vec<String>,
    state: Option<String>,
    read_errors: Option<u64>,
    write_errors: Option<u64>,
    checksum_errors: Option<u64>,
    data_errors: Option<u64>,
    capacity_percent: Option<u8>,
    scrub: Option<&'static str>,
    last_scrub_time: Option<String>,
    last_scrub_errors: Option<u64>,
}

/// The verdict on a pool whose health may not have been readable: UNKNOWN then, with why.
pub fn verdict(
    health: &Result<PoolHealth>,
    limits: PoolLimits,
    now: DateTime<Utc>,
) -> pool::Verdict {
    match health {
        Ok(p) => pool::judge(p, limits, now),
        Err(e) => pool::Verdict {
            state: State::Unknown,
            why: vec![format!("{e:#}").replace('\n', "; ")],
        },
    }
}

pub fn json(dataset: &RootDataset, health: &Result<PoolHealth>, verdict: &pool::Verdict) -> Json {
    let p = health.as_ref().ok();
    let (scrub, last) = match p.map(|p| &p.scrub) {
        None => (None, None),
        Some(Scrub::None) => (Some("none"), None),
        Some(Scrub::Running { .. }) => (Some("running"), None),
        Some(Scrub::Canceled { .. }) => (Some("canceled"), None),
        Some(Scrub::Finished { at, errors }) => (Some("finished"), Some((*at, *errors))),
    };
    Json {
        name: dataset.pool().to_string(),
        check: verdict.state.label(),
        problems: verdict.why.clone(),
        state: p.map(|p| p.state.clone()),
        read_errors: p.map(|p| p.read_errors),
        write_errors: p.map(|p| p.write_errors),
        checksum_errors: p.map(|p| p.checksum_errors),
        data_errors: p.map(|p| p.data_errors),
        capacity_percent: p.and_then(|p| p.capacity),
        scrub,
        last_scrub_time: last.map(|(at, _)| Expiry::At(at).to_string()),
        last_scrub_errors: last.map(|(_, e)| e),
    }
}

/// The pool's gauges for the node_exporter textfile, labelled with its name.
pub fn prometheus(
    dataset: &RootDataset,
    health: &Result<PoolHealth>,
    verdict: &pool::Verdict,
) -> String {
    let p = health.as_ref().ok();
    let label = format!("{{pool=\"{}\"}}", dataset.pool());
    let samples: [(&str, &str, Option<f64>); 7] = [
        (
            "zbk_pool_check_state",
            "The pool as zbk check judges it: 0 ok, 1 warning, 2 critical, 3 unknown.",
            Some(f64::from(verdict.state.code())),
        ),
        (
            "zbk_pool_online",
            "1 when the pool's state is ONLINE, else 0.",
            p.map(|p| if p.state == "ONLINE" { 1.0 } else { 0.0 }),
        ),
        (
            "zbk_pool_device_errors",
            "Read, write and checksum errors counted on the pool's devices, together.",
            p.map(|p| (p.read_errors + p.write_errors + p.checksum_errors) as f64),
        ),
        (
            "zbk_pool_data_errors",
            "Permanent errors in the pool's data (zpool status -v lists the files).",
            p.map(|p| p.data_errors as f64),
        ),
        (
            "zbk_pool_capacity_percent",
            "How full the pool is, as zpool list says.",
            p.and_then(|p| p.capacity).map(f64::from),
        ),
        (
            "zbk_pool_last_scrub_timestamp_seconds",
            "When the pool's last scrub finished (0: none on record).",
            p.map(|p| p.scrub.finished().map_or(0.0, |t| t.timestamp() as f64)),
        ),
        (
            "zbk_pool_scrub_running",
            "1 while a scrub runs, else 0.",
            p.map(|p| {
                if matches!(p.scrub, Scrub::Running { .. }) {
                    1.0
                } else {
                    0.0
                }
            }),
        ),
    ];
    let mut out = String::new();
    for (metric, help, value) in samples {
        let _ = writeln!(out, "# HELP {metric} {help}");
        let _ = writeln!(out, "# TYPE {metric} gauge");
        if let Some(v) = value {
            let _ = writeln!(out, "{metric}{label} {v}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expiry::parse_time;

    #[test]
    fn an_unreadable_pool_is_unknown_in_every_form() {
        let now = parse_time("2026-12-06T12:00:00Z").unwrap();
        let health: Result<PoolHealth> = Err(anyhow::anyhow!("no zpool"));
        let v = verdict(&health, PoolLimits::default(), now);
        assert_eq!(v.state, State::Unknown);
        let j = serde_json::to_value(json(
            &RootDataset::parse("tank/backup").unwrap(),
            &health,
            &v,
        ))
        .unwrap();
        assert_eq!(j["name"], "tank");
        assert_eq!(j["check"], "UNKNOWN");
        assert_eq!(j["problems"][0], "no zpool");
        assert_eq!(j["state"], serde_json::Value::Null);
        let text = prometheus(&RootDataset::parse("tank/backup").unwrap(), &health, &v);
        assert!(
            text.contains("zbk_pool_check_state{pool=\"tank\"} 3\n"),
            "{text}"
        );
        assert!(!text.contains("zbk_pool_online{"), "{text}");
    }

    #[test]
    fn a_healthy_pool_reads_the_same_in_every_form() {
        let now = parse_time("2026-12-06T12:00:00Z").unwrap();
        let p = PoolHealth {
            name: "tank".into(),
            state: "DEGRADED".into(),
            read_errors: 1,
            write_errors: 2,
            checksum_errors: 3,
            data_errors: 0,
            scrub: Scrub::Finished {
                at: parse_time("2026-12-05T12:00:00Z").unwrap(),
                errors: 0,
            },
            capacity: Some(12),
            created: None,
        };
        assert_eq!(phrase(&p, now), "DEGRADED, 12% full, last scrub 1d ago");
        let health = Ok(p);
        let v = verdict(&health, PoolLimits::default(), now);
        let j =
            serde_json::to_value(json(&RootDataset::parse("tank").unwrap(), &health, &v)).unwrap();
        assert_eq!(j["check"], "CRITICAL");
        assert_eq!(j["state"], "DEGRADED");
        assert_eq!(j["capacity_percent"], 12);
        assert_eq!(j["scrub"], "finished");
        assert_eq!(j["last_scrub_time"], "2026-12-05T12:00:00Z");
        let text = prometheus(&RootDataset::parse("tank").unwrap(), &health, &v);
        for line in [
            "zbk_pool_check_state{pool=\"tank\"} 2",
            "zbk_pool_online{pool=\"tank\"} 0",
            "zbk_pool_device_errors{pool=\"tank\"} 6",
            "zbk_pool_capacity_percent{pool=\"tank\"} 12",
            &format!(
                "zbk_pool_last_scrub_timestamp_seconds{{pool=\"tank\"}} {}",
                parse_time("2026-12-05T12:00:00Z").unwrap().timestamp()
            ),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
