//! `zbk status`: how every host stands, from one listing of the whole tree: as a table, as
//! JSON, or as a textfile for the Prometheus node_exporter.

use super::output::print_table;
use super::rows::{json_rows, row, Row};
use crate::cli::StatusArgs;
use crate::ctx::{usage, Ctx, EXIT_OK};
use crate::expiry::relative;
use crate::health::{self, State, Summary};
use crate::history;
use crate::inventory::Snapshot;
use crate::stamp::Status;
use crate::text::human_bytes;
use crate::verify::Verified;
use anyhow::Result;
use chrono::{DateTime, Utc};
use std::fmt::Write as _;

pub fn run(ctx: &Ctx, args: StatusArgs) -> Result<u8> {
    if args.json && args.prometheus {
        return Err(usage("--json and --prometheus: give one of them"));
    }
    let global = ctx.global()?;
    let hosts_dataset = global.dataset.hosts();
    // The table needs each host's newest snapshots: their records, one `zfs get` of the host
    // datasets. JSON and the textfile tell each host's past (days, tiers, what the next reap
    // takes): the full listing. The pool's health comes from other programs: read beside it.
    let full = args.json || args.prometheus;
    let (pool, read) = std::thread::scope(|s| {
        let pool = s.spawn(|| super::pool::health(ctx, &global.dataset));
        let read = if full {
            ctx.zfs.inventory(&hosts_dataset).and_then(|inv| {
                let hosts = super::chosen_hosts(&inv, &args.hosts)?;
                Ok((None, Some(inv), hosts))
            })
        } else {
            super::Standing::read(ctx, &hosts_dataset, &args.hosts)
                .map(|(standing, hosts)| (Some(standing), None, hosts))
        };
        (pool.join(), read)
    });
    let pool = pool.unwrap_or_else(|_| Err(anyhow::anyhow!("reading the pool's health panicked")));
    let (standing, inv, hosts) = read?;
    let summaries: Vec<Summary> = hosts
        .iter()
        .map(|h| match (&standing, &inv) {
            (Some(standing), _) => standing.summary(h),
            (None, Some(inv)) => health::summarize(&inv.hosts[h], ctx.now),
            (None, None) => unreachable!("one of the two listings was read"),
        })
        .collect();
    let verdict = super::pool::verdict(&pool, global.pool, ctx.now);
    if args.prometheus {
        // The zbk dataset's own fullness (a quota caps it below the pool's): one more small
        // zfs call; without it the metric is left out.
        let capacity = ctx.zfs.capacity(&global.dataset).ok();
        print!(
            "{}",
            prometheus(
                &summaries,
                ctx.now,
                capacity.map(|c| (global.dataset.as_str(), c))
            )
        );
        print!(
            "{}",
            super::pool::prometheus(&global.dataset, &pool, &verdict)
        );
        return Ok(EXIT_OK);
    }
    let pool_json = super::pool::json(&global.dataset, &pool, &verdict);
    if args.json {
        let inv = inv.as_ref().expect("--json reads the full listing");
        let rows = json_rows(ctx, &global, inv, &hosts, &pool_json)?;
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(EXIT_OK);
    }
    let rows: Vec<Row> = summaries
        .iter()
        .map(|s| row(s, &pool_json, ctx.now))
        .collect();
    print_hosts(&rows, &summaries, ctx.now);
    let judged = match verdict.state {
        State::Ok => String::new(),
        state => format!(" ({}: {})", state.label(), verdict.why.join(", ")),
    };
    match &pool {
        Ok(p) => println!(
            "\npool {}: {}{judged}",
            p.name,
            super::pool::phrase(p, ctx.now)
        ),
        Err(_) => println!("\n{} (UNKNOWN)", verdict.why.join(", ")),
    }
    for r in rows.iter().filter(|r| r.future_snapshots > 0) {
        eprintln!(
            "zbk: warning: {}: {} snapshots dated in the future: is the clock right?",
            r.host, r.future_snapshots
        );
    }
    Ok(EXIT_OK)
}

/// The table of hosts, one line each: their rows, and the summaries the ages come from.
fn print_hosts(rows: &[Row], summaries: &[Summary], now: DateTime<Utc>) {
    let mut table = vec![[
        "HOST",
        "STATE",
        "LAST GOOD",
        "AGE",
        "LAST RUN",
        "RESULT",
        "FAILS",
        "SNAPS",
        "PINNED",
        "USED",
    ]
    .map(String::from)];
    let dash = || "-".to_string();
    for (r, s) in rows.iter().zip(summaries) {
        table.push([
            r.host.to_string(),
            if r.retired { "retired" } else { "active" }.to_string(),
            r.last_good_snapshot.map_or_else(dash, str::to_string),
            s.last_good
                .and_then(|g| g.created)
                .map_or_else(dash, |t| relative(t, now)),
            // An attempt that found the client unreachable took no snapshot, but it is the last.
            r.unreachable_time
                .clone()
                .or_else(|| r.last_run_time.clone())
                .unwrap_or_else(dash),
            match r.unreachable_time {
                Some(_) => "unreachable".to_string(),
                None => r.last_run_status.map_or_else(dash, str::to_string),
            },
            r.consecutive_failures.to_string(),
            r.snapshots.to_string(),
            r.pinned_snapshots.to_string(),
            r.used_bytes.map_or_else(dash, human_bytes),
        ]);
    }
    print_table(&table);
}

/// A snapshot's creation time in seconds since the epoch; 0 for none, so that an alert on
/// the age fires for a host that never had one.
fn epoch(s: Option<&Snapshot>) -> f64 {
    s.and_then(|s| s.created)
        .map_or(0.0, |t| t.timestamp() as f64)
}

/// The node_exporter textfile for some hosts: one gauge family per metric, a sample per host
/// (per host and tier for the tier families), and the pool's capacity.
fn prometheus(summaries: &[Summary], now: DateTime<Utc>, capacity: Option<(&str, u8)>) -> String {
    let mut out = String::new();
    host_gauges(&mut out, summaries);
    snapshot_gauges(&mut out, summaries, now);
    if let Some((dataset, pct)) = capacity {
        family(
            &mut out,
            "zbk_dataset_capacity_percent",
            "How full the zbk dataset is, in percent of what it can reach (used / (used + available)).",
        );
        let _ = writeln!(
            out,
            "zbk_dataset_capacity_percent{{dataset=\"{}\"}} {pct}",
            label(dataset)
        );
    }
    out
}

/// A gauge of each host: its name, its help, and its value for a host (none: no sample).
type Metric = (&'static str, &'static str, fn(&Summary) -> Option<f64>);

/// The gauges every host gets, in the textfile's order.
const HOST_GAUGES: [Metric; 17] = [
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
        |s| Some(s.snapshots as f64),
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
        "zbk_unreachable_timestamp_seconds",
        "Time of the newest attempt, when it found the client unreachable (online = \"sometimes\") and no run has taken a snapshot since (0: none).",
        |s| Some(s.unreachable.map_or(0.0, |t| t.timestamp() as f64)),
    ),
    (
        "zbk_verified_timestamp_seconds",
        "Time of the newest zbk verify of the host, a slice or all (0: never).",
        |s| Some(s.verified.map_or(0.0, |v| v.at.timestamp() as f64)),
    ),
    (
        "zbk_fully_verified_timestamp_seconds",
        "Time since which zbk verify has compared every file of the host with the client (0: not yet).",
        |s| Some(s.verified.and_then(Verified::covered).map_or(0.0, |t| t.timestamp() as f64)),
    ),
    (
        "zbk_verify_silent_differences",
        "Files zbk verify found changed under the same size and mtime that nobody has acknowledged with zbk verify --ack.",
        |s| Some(s.verified.map_or(0.0, |v| v.unacked as f64)),
    ),
    (
        "zbk_retired",
        "1 for a host retired with zbk remove --expire, else 0.",
        |s| Some(if s.host.retired.is_some() { 1.0 } else { 0.0 }),
    ),
    (
        "zbk_last_run_duration_seconds",
        "How long the last run took, from its start (in its snapshot's name) to its snapshot.",
        |s| s.last_run.and_then(history::run_seconds).map(|n| n as f64),
    ),
    (
        "zbk_last_run_bytes",
        "Bytes rsync copied in the last run (Total transferred file size).",
        |s| s.last_run.and_then(|r| r.changes).map(|c| c.bytes as f64),
    ),
    (
        "zbk_future_snapshots",
        "Snapshots dated in the future: the clock was ahead when they were taken, or is behind.",
        |s| Some(s.future as f64),
    ),
];

/// One sample per host of each of `HOST_GAUGES`.
fn host_gauges(out: &mut String, summaries: &[Summary]) {
    for (name, help, value) in HOST_GAUGES {
        family(out, name, help);
        for s in summaries {
            if let Some(v) = value(s) {
                // Host names are DNS names: nothing in them needs escaping in a label.
                let _ = writeln!(out, "{name}{{host=\"{}\"}} {v}", s.host.name);
            }
        }
    }
}

/// A metric family's HELP and TYPE lines.
fn family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

/// The snapshots awaiting reap, and per tier their count and space.
fn snapshot_gauges(out: &mut String, summaries: &[Summary], now: DateTime<Utc>) {
    family(
        out,
        "zbk_expired_snapshots",
        "Snapshots whose expiry has passed: what the next zbk reap destroys.",
    );
    for s in summaries {
        let n = history::expired(s.host, now);
        let _ = writeln!(out, "zbk_expired_snapshots{{host=\"{}\"}} {n}", s.host.name);
    }
    family(
        out,
        "zbk_tier_snapshots",
        "Snapshots serving a tier (one of several tiers counts for each).",
    );
    for s in summaries {
        for (tier, n) in history::per_tier(s.host) {
            let _ = writeln!(
                out,
                "zbk_tier_snapshots{{host=\"{}\",tier=\"{}\"}} {n}",
                s.host.name,
                label(&tier)
            );
        }
    }
    family(
        out,
        "zbk_tier_bytes",
        "Space the snapshots of a tier alone hold (the sum of their used).",
    );
    for s in summaries {
        for (tier, n) in history::tier_space(s.host) {
            let _ = writeln!(
                out,
                "zbk_tier_bytes{{host=\"{}\",tier=\"{}\"}} {n}",
                s.host.name,
                label(&tier)
            );
        }
    }
}

/// A label value in the text format: a tier name or dataset is anyone's text.
fn label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expiry::parse_time;
    use crate::health;
    use crate::inventory::Host;

    const NOW: &str = "2026-11-27T12:00:00Z";

    fn t(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap()
    }

    #[test]
    fn prometheus_metrics_have_help_type_and_a_sample_per_host() {
        let h = Host::sample(vec![
            Snapshot::taken("a", "2026-11-27T11:00:00Z", Some(Status::Ok)),
            Snapshot::taken("failed-b", "2026-11-27T11:30:00Z", Some(Status::Failed)),
        ]);
        let text = prometheus(&[health::summarize(&h, t(NOW))], t(NOW), None);
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
            "zbk_tier_snapshots{host=\"web1\",tier=\"default\"} 2",
            "zbk_tier_bytes{host=\"web1\",tier=\"default\"} 2",
            "zbk_expired_snapshots{host=\"web1\"} 0",
            "zbk_future_snapshots{host=\"web1\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        let empty = Host::sample(vec![]);
        let text = prometheus(
            &[health::summarize(&empty, t(NOW))],
            t(NOW),
            Some(("tank/b", 42)),
        );
        assert!(text.contains("zbk_dataset_capacity_percent{dataset=\"tank/b\"} 42\n"));
        assert!(text.contains("zbk_last_good_backup_timestamp_seconds{host=\"web1\"} 0\n"));
        assert!(!text.contains("zbk_last_run_status{"));
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn an_unreachable_client_shows_its_last_attempt() {
        let mut h = Host::sample(vec![Snapshot::taken(
            "2026-11-27T010000Z",
            "2026-11-27T01:00:00Z",
            Some(Status::Ok),
        )]);
        let text = prometheus(&[health::summarize(&h, t(NOW))], t(NOW), None);
        assert!(text.contains("zbk_unreachable_timestamp_seconds{host=\"web1\"} 0\n"));
        h.unreachable = Some(t("2026-11-27T11:00:00Z"));
        let s = health::summarize(&h, t(NOW));
        let text = prometheus(std::slice::from_ref(&s), t(NOW), None);
        assert!(text.contains(&format!(
            "zbk_unreachable_timestamp_seconds{{host=\"web1\"}} {}\n",
            t("2026-11-27T11:00:00Z").timestamp()
        )));
        let unread = Err(anyhow::anyhow!("no pool"));
        let verdict = super::super::pool::verdict(&unread, Default::default(), t(NOW));
        let pool = super::super::pool::json(
            &crate::dataset::RootDataset::parse("tank/backup").unwrap(),
            &unread,
            &verdict,
        );
        let r = row(&s, &pool, t(NOW));
        assert_eq!(r.unreachable_time.as_deref(), Some("2026-11-27T11:00:00Z"));
        assert_eq!(
            r.last_run_status,
            Some("ok"),
            "the last snapshot's status stays"
        );
    }

    #[test]
    fn a_mass_change_shows_until_acknowledged() {
        let mut pinned = Snapshot::taken("a", "2026-11-27T01:00:00Z", Some(Status::Ok));
        pinned.pin_reason = Some("mass change at 2026-11-27T02:00:00Z".into());
        let later = Snapshot::taken("b", "2026-11-27T11:00:00Z", Some(Status::Warning));
        let h = Host::sample(vec![pinned.clone(), later.clone()]);
        let text = prometheus(&[health::summarize(&h, t(NOW))], t(NOW), None);
        assert!(text.contains(&format!(
            "zbk_mass_change_timestamp_seconds{{host=\"web1\"}} {}\n",
            t("2026-11-27T02:00:00Z").timestamp()
        )));
        pinned.pin_reason = Some(
            "mass change at 2026-11-27T02:00:00Z; acknowledged at 2026-11-27T09:00:00Z".into(),
        );
        let acked = Host::sample(vec![pinned, later]);
        let text = prometheus(&[health::summarize(&acked, t(NOW))], t(NOW), None);
        assert!(text.contains("zbk_mass_change_timestamp_seconds{host=\"web1\"} 0\n"));
    }
}
