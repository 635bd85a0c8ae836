//! `zbk status`: how every host stands, from one listing of the whole tree: as a table, as
//! JSON, or as a textfile for the Prometheus node_exporter.

use super::list::{human_bytes, print_table};
use crate::cli::StatusArgs;
use crate::ctx::{usage, Ctx, EXIT_OK};
use crate::expiry::{relative, Expiry};
use crate::health::{self, Summary};
use crate::layout::hosts_dataset;
use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One object of `zbk status --json`; the field names are documented in zbk-status(8).
#[derive(Serialize)]
struct Row<'a> {
    host: &'a str,
    retired: bool,
    last_good_snapshot: Option<&'a str>,
    last_good_time: Option<String>,
    last_good_age_seconds: Option<i64>,
    last_run_snapshot: Option<&'a str>,
    last_run_time: Option<String>,
    last_run_status: Option<&'static str>,
    /// The last run's change figures from rsync, where it recorded them.
    last_run_changes: Option<crate::rsync_report::Stats>,
    /// The newest mass change (guard.max_change) nobody has acknowledged yet.
    mass_change_time: Option<String>,
    consecutive_failures: usize,
    snapshots: usize,
    pinned_snapshots: usize,
    future_snapshots: usize,
    used_bytes: Option<u64>,
    snapshot_bytes: Option<u64>,
}

fn row<'a>(s: &Summary<'a>, now: DateTime<Utc>) -> Row<'a> {
    let time = |t: Option<DateTime<Utc>>| t.map(|t| Expiry::At(t).to_string());
    let good_at = s.last_good.and_then(|g| g.created);
    Row {
        host: s.host.name.as_str(),
        retired: s.host.retired.is_some(),
        last_good_snapshot: s.last_good.map(|g| g.name.as_str()),
        last_good_time: time(good_at),
        last_good_age_seconds: good_at.map(|t| (now - t).num_seconds()),
        last_run_snapshot: s.last_run.map(|r| r.name.as_str()),
        last_run_time: time(s.last_run.and_then(|r| r.created)),
        last_run_status: s.last_run.and_then(|r| r.status).map(|st| st.as_str()),
        last_run_changes: s.last_run.and_then(|r| r.changes),
        mass_change_time: time(s.mass_change),
        consecutive_failures: s.consecutive_failures,
        snapshots: s.host.snapshots.len(),
        pinned_snapshots: s.pinned,
        future_snapshots: s.future,
        used_bytes: s.host.used,
        snapshot_bytes: s.host.snapshots_used,
    }
}

pub fn run(ctx: &Ctx, args: StatusArgs) -> Result<u8> {
    if args.json && args.prometheus {
        return Err(usage("--json and --prometheus: give one of them"));
    }
    let global = ctx.global()?;
    let inv = ctx.zfs.inventory(&hosts_dataset(&global.dataset))?;
    let hosts = super::chosen_hosts(&inv, &args.hosts)?;
    let summaries: Vec<Summary> = hosts
        .iter()
        .map(|h| health::summarize(&inv.hosts[h], ctx.now))
        .collect();
    if args.prometheus {
        print!("{}", health::prometheus(&summaries));
        return Ok(EXIT_OK);
    }
    let rows: Vec<Row> = summaries.iter().map(|s| row(s, ctx.now)).collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(EXIT_OK);
    }
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
    for (r, s) in rows.iter().zip(&summaries) {
        table.push([
            r.host.to_string(),
            if r.retired { "retired" } else { "active" }.to_string(),
            r.last_good_snapshot.map_or_else(dash, str::to_string),
            s.last_good
                .and_then(|g| g.created)
                .map_or_else(dash, |t| relative(t, ctx.now)),
            r.last_run_time.clone().unwrap_or_else(dash),
            r.last_run_status.map_or_else(dash, str::to_string),
            r.consecutive_failures.to_string(),
            r.snapshots.to_string(),
            r.pinned_snapshots.to_string(),
            r.used_bytes.map_or_else(dash, human_bytes),
        ]);
    }
    print_table(&table);
    for r in rows.iter().filter(|r| r.future_snapshots > 0) {
        eprintln!(
            "zbk: warning: {}: {} snapshots dated in the future: is the clock right?",
            r.host, r.future_snapshots
        );
    }
    Ok(EXIT_OK)
}
