//! `zbk list`: a row per snapshot (and per host without one), as a table or stable JSON.

use super::output::print_table;
use crate::cli::ListArgs;
use crate::ctx::{Ctx, EXIT_OK};
use crate::expiry::{relative, Expiry};
use crate::inventory::{Host, Snapshot};
use crate::rsync_report::Stats;
use crate::stamp::Stamp;
use crate::text::human_bytes;
use crate::verify::Verified;
use anyhow::Result;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// One row of `zbk list --json`; the field names are documented in zbk-list(8) and stable.
#[derive(Serialize)]
struct Row<'a> {
    host: &'a str,
    snapshot: Option<&'a str>,
    tier: Option<&'a str>,
    status: Option<&'static str>,
    created: Option<String>,
    expires: Option<String>,
    used_bytes: Option<u64>,
    retired: bool,
    /// Whether `zbk keep` or the mass-change guard set the expiry.
    pinned: bool,
    /// Why zbk pinned it itself (`mass change at TIME`), if it did.
    pin_reason: Option<&'a str>,
    /// The run's change figures from rsync, where it recorded them.
    changes: Option<Stats>,
    /// Why the run tripped guard.max_change, if it did.
    mass_change: Option<&'a str>,
    /// What `zbk verify` found comparing it with the client, if it did.
    verified: Option<VerifiedRow>,
}

/// A snapshot's `zbk:verified` stamp in `zbk list --json`.
#[derive(Serialize)]
struct VerifiedRow {
    time: String,
    /// `K/N`, or `all/N` for `--full`.
    slice: String,
    files: u64,
    changed: u64,
    silent: u64,
    /// Silent differences found so far that `zbk verify --ack` has not acknowledged.
    unacknowledged: u64,
}

impl VerifiedRow {
    fn of(v: &Verified) -> VerifiedRow {
        VerifiedRow {
            time: Expiry::At(v.at).to_string(),
            slice: v.slice_shown(),
            files: v.files,
            changed: v.changed,
            silent: v.silent,
            unacknowledged: v.unacked,
        }
    }

    /// As the table's VERIFIED column shows it: `3/30`, `all/30 2 silent`.
    fn shown(&self) -> String {
        match self.silent {
            0 => self.slice.clone(),
            n => format!("{} {n} silent", self.slice),
        }
    }
}

fn row<'a>(host: &'a Host, snap: Option<&'a Snapshot>) -> Row<'a> {
    Row {
        host: host.name.as_str(),
        snapshot: snap.map(|s| s.name.as_str()),
        tier: snap.and_then(|s| s.tier.as_deref()),
        status: snap.and_then(|s| s.status).map(|s| s.as_str()),
        created: snap
            .and_then(|s| s.created)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
        expires: snap.and_then(|s| match s.stamp {
            Stamp::Valid(e) => Some(e.to_string()),
            _ => None,
        }),
        used_bytes: snap.and_then(|s| s.used),
        retired: host.retired.is_some(),
        pinned: snap.is_some_and(|s| s.pinned.is_some()),
        pin_reason: snap.and_then(|s| s.pin_reason.as_deref()),
        changes: snap.and_then(|s| s.changes),
        mass_change: snap.and_then(|s| s.mass_change.as_deref()),
        verified: snap.and_then(|s| s.verified.as_ref()).map(VerifiedRow::of),
    }
}

pub fn run(ctx: &Ctx, args: ListArgs) -> Result<u8> {
    let global = ctx.global()?;
    let inv = ctx.zfs.inventory(&global.dataset.hosts())?;
    let hosts = super::chosen_hosts(&inv, &args.hosts)?;
    let mut rows = Vec::new();
    let mut expiries = Vec::new();
    for name in &hosts {
        let host = &inv.hosts[name];
        if host.snapshots.is_empty() {
            rows.push(row(host, None));
            expiries.push(None);
        }
        for snap in &host.snapshots {
            rows.push(row(host, Some(snap)));
            expiries.push(Some(&snap.stamp));
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(EXIT_OK);
    }
    let mut table = vec![[
        "HOST", "SNAPSHOT", "TIER", "STATUS", "CREATED", "EXPIRES", "USED", "VERIFIED",
    ]
    .map(String::from)];
    for (r, stamp) in rows.iter().zip(expiries) {
        let dash = || "-".to_string();
        let host = if r.retired {
            format!("{} (retired)", r.host)
        } else {
            r.host.to_string()
        };
        table.push([
            host,
            r.snapshot.map_or_else(dash, str::to_string),
            r.tier.map_or_else(dash, str::to_string),
            r.status.map_or_else(dash, str::to_string),
            r.created.clone().unwrap_or_else(dash),
            stamp.map_or_else(dash, |s| describe(s, ctx.now))
                + &match (r.pinned, r.pin_reason) {
                    (_, Some(why)) => format!(" pinned: {}", why.escape_debug()),
                    (true, None) => " pinned".to_string(),
                    (false, None) => String::new(),
                },
            r.used_bytes.map_or_else(dash, human_bytes),
            r.verified.as_ref().map_or_else(dash, VerifiedRow::shown),
        ]);
    }
    print_table(&table);
    Ok(EXIT_OK)
}

/// An expiry with how far away it is: "2026-12-04T01:30:00Z (in 6d 23h)".
fn describe(stamp: &Stamp, now: DateTime<Utc>) -> String {
    match stamp {
        Stamp::Valid(Expiry::At(t)) => format!("{} ({})", Expiry::At(*t), relative(*t, now)),
        Stamp::Valid(Expiry::Never) => "never".to_string(),
        Stamp::Invalid(v) => format!("invalid {:?}", v.escape_debug().to_string()),
        Stamp::Absent => "-".to_string(),
    }
}
