//! A host's row as `zbk status` prints it and `--json` writes it, with what `--json` tells
//! beyond the table; `zbk report` renders the same JSON values for its own server.

use crate::config::Global;
use crate::ctx::Ctx;
use crate::expiry::Expiry;
use crate::health::{self, Summary};
use crate::history;
use crate::inventory::Inventory;
use crate::names::HostName;
use crate::verify::Verified;
use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One object of `zbk status --json`; the field names are documented in zbk-status(8).
#[derive(Serialize)]
pub struct Row<'a> {
    pub host: &'a str,
    pub retired: bool,
    pub last_good_snapshot: Option<&'a str>,
    pub last_good_time: Option<String>,
    pub last_good_age_seconds: Option<i64>,
    pub last_run_snapshot: Option<&'a str>,
    pub last_run_time: Option<String>,
    pub last_run_status: Option<&'static str>,
    /// The last run's change figures from rsync, where it recorded them.
    pub last_run_changes: Option<crate::rsync_report::Stats>,
    /// The newest mass change (guard.max_change) nobody has acknowledged yet.
    pub mass_change_time: Option<String>,
    /// When the newest attempt found the client unreachable (`online = "sometimes"`), if no
    /// run has taken a snapshot since.
    pub unreachable_time: Option<String>,
    pub consecutive_failures: usize,
    pub snapshots: usize,
    pub pinned_snapshots: usize,
    pub future_snapshots: usize,
    pub used_bytes: Option<u64>,
    pub snapshot_bytes: Option<u64>,
    /// The newest `zbk verify`: when, which slice (`K/N`, `all/N`), on which snapshot.
    pub verified_time: Option<String>,
    pub verified_slice: Option<String>,
    pub verified_snapshot: Option<&'a str>,
    /// Since when every file of the tree has been verified.
    pub fully_verified_time: Option<String>,
    /// Silent differences found that `zbk verify --ack` has not acknowledged.
    pub verify_unacknowledged: u64,
    /// The pool the host lives on, the same for every host.
    pub pool: &'a super::pool::Json,
    #[serde(flatten)]
    more: More,
}

/// What `--json` tells beyond the table, for `zbk report` and other servers' pages: the
/// host's state as `zbk check` judges it, its recent days, and what is known of its copies.
#[derive(Serialize, Default)]
struct More {
    state: Option<&'static str>,
    state_reason: Option<String>,
    snapshots_per_tier: std::collections::BTreeMap<String, usize>,
    unreadable_stamps: usize,
    last_failure_snapshot: Option<String>,
    last_failure_time: Option<String>,
    last_failure_reason: Option<String>,
    last_replicated_snapshot: Option<String>,
    last_replicated_time: Option<String>,
    replication_lag_seconds: Option<i64>,
    history: Vec<HistoryDay>,
}

/// One day of `history` in `--json`.
#[derive(Serialize)]
struct HistoryDay {
    date: String,
    status: &'static str,
    runs: usize,
    failed_runs: usize,
    referenced_bytes: Option<u64>,
}

/// The `--json` extras of one host: its config and its last failed run's log are read here.
fn more(ctx: &Ctx, global: &Global, s: &Summary) -> More {
    let host = s.host;
    let time = |t: Option<DateTime<Utc>>| t.map(|t| Expiry::At(t).to_string());
    let (judged, _) = super::judge::judge_host(ctx, global, s, None, None);
    let failed = history::last_failed(host);
    // The log is in l/ of the live tree: pruned by log_keep, so an old failure may have none.
    let reason = failed.and_then(|f| {
        let log = ctx.layout.logs(&host.name).join(format!("{}.log", f.name));
        std::fs::read_to_string(log)
            .ok()
            .and_then(|text| history::failure_reason(&text))
    });
    let held = history::last_held(host);
    let good_at = s.last_good.and_then(|g| g.created);
    More {
        state: Some(judged.state.label()),
        state_reason: Some(judged.why),
        snapshots_per_tier: history::per_tier(host),
        unreadable_stamps: history::unreadable_stamps(host),
        last_failure_snapshot: failed.map(|f| f.name.clone()),
        last_failure_time: time(failed.and_then(|f| f.created)),
        last_failure_reason: reason,
        last_replicated_snapshot: held.map(|h| h.name.clone()),
        last_replicated_time: time(held.and_then(|h| h.created)),
        replication_lag_seconds: held
            .and_then(|h| h.created)
            .zip(good_at)
            .map(|(sent, good)| (good - sent).num_seconds().max(0)),
        history: history::days(host, ctx.now, history::DAYS)
            .into_iter()
            .map(|d| HistoryDay {
                date: d.date.to_string(),
                status: d.status.as_str(),
                runs: d.runs,
                failed_runs: d.failed,
                referenced_bytes: d.referenced,
            })
            .collect(),
    }
}

/// The hosts as `--json` prints them, as JSON values: `zbk report` reads its own server the
/// way it reads another's.
pub fn json_rows(
    ctx: &Ctx,
    global: &Global,
    inv: &Inventory,
    hosts: &[HostName],
    pool: &super::pool::Json,
) -> Result<serde_json::Value> {
    let rows: Vec<Row> = hosts
        .iter()
        .map(|h| {
            let s = health::summarize(&inv.hosts[h], ctx.now);
            let mut r = row(&s, pool, ctx.now);
            r.more = more(ctx, global, &s);
            r
        })
        .collect();
    Ok(serde_json::to_value(rows)?)
}

pub fn row<'a>(s: &Summary<'a>, pool: &'a super::pool::Json, now: DateTime<Utc>) -> Row<'a> {
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
        unreachable_time: time(s.unreachable),
        consecutive_failures: s.consecutive_failures,
        snapshots: s.snapshots,
        pinned_snapshots: s.pinned,
        future_snapshots: s.future,
        used_bytes: s.host.used,
        snapshot_bytes: s.host.snapshots_used,
        verified_time: time(s.verified.map(|v| v.at)),
        verified_slice: s.verified.map(Verified::slice_shown),
        verified_snapshot: s.verified.and_then(|v| {
            s.host
                .snapshots
                .iter()
                .find(|snap| snap.verified.as_ref() == Some(v))
                .map(|snap| snap.name.as_str())
        }),
        fully_verified_time: time(s.verified.and_then(Verified::covered)),
        verify_unacknowledged: s.verified.map_or(0, |v| v.unacked),
        more: More::default(),
        pool,
    }
}
