//! Pure rendering of `zbk report`'s page: the fleet of one or more servers, as each server's
//! `zbk status --json` tells it, made into one self-contained HTML page (inline CSS and SVG,
//! nothing fetched, no script). Knows nothing of ZFS: every value it shows came as JSON, and
//! every text in it is escaped.

use crate::expiry::relative;
use crate::text::human_bytes;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Cells in a host's strip of recent days.
pub const STRIP_DAYS: i64 = 60;

/// The page: who made it, when, and the servers it shows.
pub struct Page {
    pub generated: DateTime<Utc>,
    pub version: String,
    pub servers: Vec<Server>,
}

/// One backup server and its hosts.
#[derive(Debug, Default)]
pub struct Server {
    pub name: String,
    /// Where its figures came from: `this server`, or the `--from` file.
    pub source: String,
    /// The pool object of its `status --json`, field by field as it came.
    pub pool: BTreeMap<String, Value>,
    pub hosts: Vec<HostRow>,
    /// Why part or all of it cannot be shown.
    pub problems: Vec<String>,
}

/// The last run's figures from rsync, as `status --json` gives them.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Changes {
    pub bytes: Option<u64>,
    pub files: Option<u64>,
}

/// One day of a host's history.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Day {
    pub date: String,
    pub status: String,
    pub runs: u64,
    pub failed_runs: u64,
    pub referenced_bytes: Option<u64>,
}

/// One object of `zbk status --json` (zbk-status(8)); a field an older zbk did not write is
/// left at its default.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct HostRow {
    pub host: String,
    pub retired: bool,
    pub state: Option<String>,
    pub state_reason: Option<String>,
    pub last_good_snapshot: Option<String>,
    pub last_good_time: Option<String>,
    pub last_run_time: Option<String>,
    pub last_run_status: Option<String>,
    pub last_run_changes: Option<Changes>,
    pub last_failure_time: Option<String>,
    pub last_failure_reason: Option<String>,
    pub mass_change_time: Option<String>,
    pub consecutive_failures: u64,
    pub snapshots: u64,
    pub pinned_snapshots: u64,
    pub snapshots_per_tier: BTreeMap<String, u64>,
    pub unreadable_stamps: u64,
    pub used_bytes: Option<u64>,
    pub replication_lag_seconds: Option<i64>,
    pub last_replicated_time: Option<String>,
    pub history: Vec<Day>,
    /// Set when the host's object did not parse: why.
    #[serde(skip)]
    pub unreadable: Option<String>,
}

impl Server {
    /// A server from its `zbk status --json`: the array of hosts, or an object holding it as
    /// `hosts` beside a `pool` object (and optionally its `server` name). A host whose object
    /// does not parse becomes a row saying so.
    pub fn from_json(name: &str, source: &str, json: &Value) -> Server {
        let mut server = Server {
            name: name.to_string(),
            source: source.to_string(),
            ..Server::default()
        };
        let hosts = match json {
            Value::Array(rows) => rows.as_slice(),
            Value::Object(map) => {
                if let Some(Value::String(n)) = map.get("server") {
                    server.name.clone_from(n);
                }
                if let Some(Value::Object(pool)) = map.get("pool") {
                    server.pool = pool.clone().into_iter().collect();
                }
                match map.get("hosts") {
                    Some(Value::Array(rows)) => rows.as_slice(),
                    _ => {
                        server
                            .problems
                            .push("no \"hosts\" array: not zbk status --json".into());
                        &[]
                    }
                }
            }
            _ => {
                server
                    .problems
                    .push("neither an array nor an object: not zbk status --json".into());
                &[]
            }
        };
        // `zbk status --json` repeats its pool in every row.
        if server.pool.is_empty() {
            if let Some(Value::Object(pool)) = hosts.first().and_then(|h| h.get("pool")) {
                server.pool = pool.clone().into_iter().collect();
            }
        }
        server.hosts = hosts.iter().map(HostRow::from_json).collect();
        server
    }
}

impl HostRow {
    fn from_json(v: &Value) -> HostRow {
        HostRow::deserialize(v).unwrap_or_else(|e| HostRow {
            host: v
                .get("host")
                .and_then(Value::as_str)
                .unwrap_or("(no name)")
                .to_string(),
            unreadable: Some(e.to_string()),
            ..HostRow::default()
        })
    }

    /// The word the page shows for the host, worst first when sorted by `rank`.
    fn verdict(&self) -> (&'static str, u8) {
        if self.unreadable.is_some() {
            return ("UNREADABLE", 0);
        }
        if self.retired {
            return ("RETIRED", 5);
        }
        match self.state.as_deref() {
            Some("CRITICAL") => ("CRITICAL", 1),
            Some("UNKNOWN") => ("UNKNOWN", 2),
            Some("WARNING") => ("WARNING", 3),
            Some("OK") => ("OK", 4),
            // An older zbk's JSON, without a judgement: judge by the last run alone.
            _ => match (
                self.last_good_time.is_some(),
                self.last_run_status.as_deref(),
            ) {
                (false, _) | (_, Some("failed")) => ("CRITICAL", 1),
                (_, Some("warning")) => ("WARNING", 3),
                _ => ("OK", 4),
            },
        }
    }
}

/// Text for HTML, in an element or a quoted attribute alike.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `3h 10m ago` for a time as JSON gives it; the text itself when it is no time.
fn ago(text: &str, now: DateTime<Utc>) -> String {
    match parse_time(text) {
        Some(t) if (now - t).num_seconds().abs() < 60 => "just now".to_string(),
        Some(t) => relative(t, now),
        None => text.to_string(),
    }
}

/// The hosts, worst first, then the longest without a good backup, then by name.
fn sorted(hosts: &[HostRow]) -> Vec<&HostRow> {
    let mut out: Vec<&HostRow> = hosts.iter().collect();
    out.sort_by(|a, b| {
        let good = |h: &HostRow| h.last_good_time.as_deref().and_then(parse_time);
        a.verdict()
            .1
            .cmp(&b.verdict().1)
            .then_with(|| good(a).cmp(&good(b)))
            .then_with(|| a.host.cmp(&b.host))
    });
    out
}

const STYLE: &str = r#"
:root{--ok:#2e7d32;--warn:#e0a800;--crit:#c62828;--unk:#6a1b9a;--ret:#8a8a8a;--ink:#1d2327;--mute:#5f6b73;--line:#e3e7ea;--bg:#f6f8f9}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif}
header{background:#22303a;color:#fff;padding:18px 28px 16px}
header h1{margin:0;font-size:20px;font-weight:600;letter-spacing:.2px}
header p{margin:4px 0 0;color:#c9d3da;font-size:13px}
main{padding:18px 28px 8px}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:0 0 18px}
.tile{background:#fff;border:1px solid var(--line);border-left:6px solid var(--ret);border-radius:6px;padding:8px 14px;min-width:120px}
.tile b{display:block;font-size:22px;line-height:1.1}
.tile span{color:var(--mute);font-size:12px;text-transform:uppercase;letter-spacing:.6px}
.tile.CRITICAL,.tile.UNREADABLE{border-left-color:var(--crit)}.tile.WARNING{border-left-color:var(--warn)}.tile.OK{border-left-color:var(--ok)}.tile.UNKNOWN{border-left-color:var(--unk)}
section{background:#fff;border:1px solid var(--line);border-radius:8px;margin:0 0 22px;overflow:hidden}
section>h2{margin:0;padding:12px 16px;font-size:16px;border-bottom:1px solid var(--line);display:flex;gap:12px;align-items:baseline;flex-wrap:wrap}
section>h2 small{color:var(--mute);font-weight:400;font-size:12px}
.pool{display:flex;flex-wrap:wrap;gap:8px 26px;align-items:center;padding:10px 16px;border-bottom:1px solid var(--line);background:#fbfcfc;font-size:13px}
.pool .k{color:var(--mute);margin-right:6px}
.pool b.bad{color:var(--crit)}.pool .why{flex-basis:100%;max-width:none;margin-top:0}
.problem{margin:0;padding:8px 16px;background:#fdecea;color:#8e1b1b;border-bottom:1px solid var(--line)}
.wrap{overflow-x:auto}
table{border-collapse:collapse;width:100%}
th{position:sticky;top:0;text-align:left;font-size:11px;text-transform:uppercase;letter-spacing:.5px;color:var(--mute);font-weight:600;padding:8px 8px;border-bottom:2px solid var(--line);background:#fff;white-space:nowrap}
td{padding:8px 8px;border-bottom:1px solid var(--line);vertical-align:top}
tr.RETIRED td{color:var(--mute)}
tr:last-child td{border-bottom:0}
.host .name{font-size:15px;margin-left:8px;vertical-align:middle}
.host .badge{vertical-align:middle}
.why{display:block;color:var(--mute);font-size:12px;font-weight:400;min-width:15em;max-width:22em;white-space:normal;margin-top:3px}
.n{white-space:nowrap;font-variant-numeric:tabular-nums}
.sub{display:block;color:var(--mute);font-size:12px}
.reason{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12px;min-width:13em;max-width:19em;overflow-wrap:anywhere;display:block}
.badge{display:inline-block;min-width:78px;text-align:center;padding:2px 8px;border-radius:4px;font-size:11px;font-weight:700;letter-spacing:.6px;color:#fff;background:var(--ret);white-space:nowrap}
.badge.OK{background:var(--ok)}.badge.WARNING{background:var(--warn);color:#1d2327}.badge.CRITICAL,.badge.UNREADABLE{background:var(--crit)}.badge.UNKNOWN{background:var(--unk)}
.word{font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.4px}
.word.ok{color:var(--ok)}.word.warning{color:#8a6400}.word.failed{color:var(--crit)}
.tiers{display:flex;flex-wrap:wrap;gap:3px;min-width:9em;max-width:13em}
.days{white-space:nowrap}
.size{display:flex;gap:6px;align-items:center;margin-top:4px;font-variant-numeric:tabular-nums}
.chip{background:#eef2f4;border-radius:3px;padding:0 5px;font-size:12px;white-space:nowrap}
.pin{display:inline-block;background:#fff4d6;border:1px solid #e0a800;color:#5c4400;border-radius:3px;padding:0 5px;font-size:11px;font-weight:700;white-space:nowrap}
.legend{display:flex;flex-wrap:wrap;gap:14px;align-items:center;color:var(--mute);font-size:12px;margin:-6px 0 16px}
.legend svg{vertical-align:middle;margin-right:3px}
svg{display:block}
.legend svg{display:inline-block}
footer{color:var(--mute);font-size:12px;padding:0 28px 24px}
@media print{body{background:#fff}header{background:#fff;color:#000;border-bottom:2px solid #000}header p{color:#333}section{break-inside:avoid}}
"#;

/// The page, as a string of HTML.
pub fn render(page: &Page) -> String {
    let now = page.generated;
    let all: Vec<&HostRow> = page.servers.iter().flat_map(|s| &s.hosts).collect();
    let mut counts: BTreeMap<u8, (&str, usize)> = BTreeMap::new();
    for h in &all {
        let (word, rank) = h.verdict();
        counts.entry(rank).or_insert((word, 0)).1 += 1;
    }
    let bad = counts
        .iter()
        .filter(|(rank, _)| **rank <= 3)
        .map(|(_, (_, n))| n)
        .sum::<usize>();
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"zbk {}\">\n<title>zbk: {} hosts, {} need attention</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&page.version),
        all.len(),
        bad
    );
    let servers = page.servers.len();
    let _ = write!(
        out,
        "<header><h1>Backups at a glance</h1><p>{} on {} &middot; generated {}</p></header>\n<main>\n",
        plural(all.len(), "host"),
        plural(servers, "server"),
        escape(&crate::expiry::Expiry::At(now).to_string())
    );
    out.push_str("<div class=\"tiles\">");
    for (word, n) in counts.values() {
        let _ = write!(
            out,
            "<div class=\"tile {word}\"><b>{n}</b><span>{word}</span></div>"
        );
    }
    out.push_str("</div>\n");
    legend(&mut out);
    for server in &page.servers {
        section(&mut out, server, now);
    }
    let _ = write!(
        out,
        "</main>\n<footer>Generated {} by zbk {} from <code>zbk status --json</code>. \
         A day without a cell had no snapshot left on the pool: expired ones are reaped.</footer>\n</body>\n</html>\n",
        escape(&crate::expiry::Expiry::At(now).to_string()),
        escape(&page.version)
    );
    out
}

fn plural(n: usize, noun: &str) -> String {
    escape(&crate::text::counted(n, noun))
}

fn legend(out: &mut String) {
    out.push_str(
        "<div class=\"legend\"><span>Last 60 days, one cell a day, today on the right:</span>",
    );
    for (status, word) in [
        ("ok", "every run ok"),
        ("warning", "some runs warned or failed"),
        ("failed", "every run failed"),
        ("", "no snapshot"),
    ] {
        let mut cell = String::new();
        strip_cell(&mut cell, 0, status, "");
        let _ = write!(
            out,
            "<span><svg width=\"4\" height=\"18\" role=\"img\" aria-label=\"{word}\">{cell}</svg>{word}</span>"
        );
    }
    out.push_str("</div>\n");
}

fn section(out: &mut String, server: &Server, now: DateTime<Utc>) {
    let _ = write!(
        out,
        "<section>\n<h2>{} <small>{} &middot; {}</small></h2>\n",
        escape(&server.name),
        escape(&server.source),
        plural(server.hosts.len(), "host")
    );
    pool(out, &server.pool);
    for p in &server.problems {
        let _ = writeln!(out, "<p class=\"problem\">{}</p>", escape(p));
    }
    out.push_str(
        "<div class=\"wrap\"><table>\n<thead><tr><th>State, host</th><th>Last good</th>\
         <th>Last run</th><th>Last failure</th><th>Snapshots</th><th>Space</th><th>Pins</th>\
         <th>Replica lag</th><th>Last 60 days: runs, size</th></tr></thead>\n<tbody>\n",
    );
    for h in sorted(&server.hosts) {
        host_row(out, h, now);
    }
    out.push_str("</tbody></table></div>\n</section>\n");
}

/// The pool as `zbk status --json` gives it (zbk-status(8)): name, state, zbk check's verdict
/// and why, capacity as a bar, errors, the last scrub; any other field after them, as it came.
fn pool(out: &mut String, pool: &BTreeMap<String, Value>) {
    if pool.is_empty() {
        return;
    }
    out.push_str("<div class=\"pool\"><b>Pool</b>");
    pool_verdicts(out, pool);
    if let Some(pct) = pool.get("capacity_percent").and_then(Value::as_f64) {
        capacity_bar(out, pct);
    }
    pool_errors(out, pool);
    pool_rest(out, pool);
    out.push_str("</div>\n");
}

/// The fields of the pool's object that `pool` shows in its own way.
const POOL_SHOWN: [&str; 12] = [
    "name",
    "state",
    "check",
    "problems",
    "capacity_percent",
    "read_errors",
    "write_errors",
    "checksum_errors",
    "data_errors",
    "scrub",
    "last_scrub_time",
    "last_scrub_errors",
];

/// One labelled figure of the pool's strip; `class` is an attribute or empty.
fn pool_field(out: &mut String, label: &str, class: &str, shown: &str) {
    let _ = write!(
        out,
        "<span><span class=\"k\">{label}</span><b{class}>{shown}</b></span>"
    );
}

/// Its name, its state (ONLINE green, anything else red) and zbk check's word on it.
fn pool_verdicts(out: &mut String, pool: &BTreeMap<String, Value>) {
    let text = |key: &str| pool.get(key).and_then(Value::as_str);
    if let Some(name) = text("name") {
        pool_field(out, "name", "", &escape(name));
    }
    if let Some(state) = text("state") {
        let class = if state == "ONLINE" { "OK" } else { "CRITICAL" };
        pool_field(
            out,
            "state",
            &format!(" class=\"badge {class}\""),
            &escape(state),
        );
    }
    if let Some(check) = text("check") {
        let class = match check {
            "OK" | "WARNING" | "CRITICAL" => check,
            _ => "UNKNOWN",
        };
        pool_field(
            out,
            "check",
            &format!(" class=\"badge {class}\""),
            &escape(check),
        );
    }
}

/// How full, as a bar that turns amber at 80 % and red at 90 %.
fn capacity_bar(out: &mut String, pct: f64) {
    let filled = (pct.clamp(0.0, 100.0) * 1.6).round();
    let colour = if pct >= 90.0 {
        "var(--crit)"
    } else if pct >= 80.0 {
        "var(--warn)"
    } else {
        "var(--ok)"
    };
    let _ = write!(
        out,
        "<span><span class=\"k\">capacity</span><svg width=\"160\" height=\"10\" style=\"display:inline-block;vertical-align:middle\" role=\"img\" aria-label=\"{pct} percent used\">\
         <rect width=\"160\" height=\"10\" rx=\"2\" fill=\"#e3e7ea\"/><rect width=\"{filled}\" height=\"10\" rx=\"2\" fill=\"{colour}\"/></svg> <b>{pct}&nbsp;%</b> used</span>"
    );
}

/// Device and data errors (red when not 0), and the last scrub.
fn pool_errors(out: &mut String, pool: &BTreeMap<String, Value>) {
    let count = |key: &str| pool.get(key).and_then(Value::as_u64);
    let device: Option<u64> = ["read_errors", "write_errors", "checksum_errors"]
        .iter()
        .map(|k| count(k))
        .sum();
    for (label, n) in [
        ("device errors", device),
        ("data errors", count("data_errors")),
    ] {
        if let Some(n) = n {
            let class = if n > 0 { " class=\"bad\"" } else { "" };
            pool_field(out, label, class, &n.to_string());
        }
    }
    let text = |key: &str| pool.get(key).and_then(Value::as_str);
    match (text("scrub"), text("last_scrub_time")) {
        (Some("finished"), Some(at)) => {
            let errors = count("last_scrub_errors").unwrap_or(0);
            pool_field(
                out,
                "last scrub",
                "",
                &format!("{} ({errors} errors)", escape(at)),
            );
        }
        (Some("running"), _) => pool_field(out, "scrub", "", "running"),
        (Some("canceled"), _) => pool_field(out, "last scrub", "", "canceled"),
        (Some(_), _) => pool_field(out, "last scrub", "", "none on record"),
        (None, _) => {}
    }
}

/// Any field `pool` does not know, as it came; then zbk check's reasons, on a line of their own.
fn pool_rest(out: &mut String, pool: &BTreeMap<String, Value>) {
    for (key, value) in pool
        .iter()
        .filter(|(k, _)| !POOL_SHOWN.contains(&k.as_str()))
    {
        let shown = match value {
            Value::String(s) => escape(s),
            Value::Null => "&ndash;".into(),
            v => escape(&v.to_string()),
        };
        pool_field(out, &escape(&key.replace('_', " ")), "", &shown);
    }
    let problems: Vec<&str> = pool
        .get("problems")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !problems.is_empty() {
        let _ = write!(
            out,
            "<span class=\"why\">{}</span>",
            escape(&problems.join("; "))
        );
    }
}

/// One host's row of the fleet table, cell by cell.
fn host_row(out: &mut String, h: &HostRow, now: DateTime<Utc>) {
    if !host_cell(out, h) {
        return;
    }
    last_good_cell(out, h, now);
    last_run_cell(out, h, now);
    last_failure_cell(out, h, now);
    tiers_cell(out, h);
    space_cell(out, h);
    pins_cell(out, h, now);
    replica_cell(out, h, now);
    out.push_str("<td class=\"days\">");
    strip(out, &h.history, now);
    sparkline(out, &h.history, now);
    out.push_str("</td></tr>\n");
}

/// An empty cell.
const DASH: &str = "<span class=\"sub\">&ndash;</span>";

/// The state and the host, with why; false when the host's row did not parse, which ends the
/// row there.
fn host_cell(out: &mut String, h: &HostRow) -> bool {
    let (word, _) = h.verdict();
    let _ = write!(
        out,
        "<tr class=\"{word}\"><td class=\"host\"><span class=\"badge {word}\">{word}</span><b class=\"name\">{}</b>",
        escape(&h.host)
    );
    if let Some(why) = &h.unreadable {
        let _ = writeln!(
            out,
            "<span class=\"why\">its status does not parse: {}</span></td>{}</tr>",
            escape(why),
            "<td></td>".repeat(8)
        );
        return false;
    }
    if let Some(why) = h.state_reason.as_deref().filter(|w| !w.is_empty()) {
        let _ = write!(out, "<span class=\"why\">{}</span>", escape(why));
    }
    if h.unreadable_stamps > 0 {
        let _ = write!(
            out,
            "<span class=\"why\">{} with an unreadable zbk:expires (kept)</span>",
            plural(h.unreadable_stamps as usize, "snapshot")
        );
    }
    out.push_str("</td>");
    true
}

/// The last good backup and its age.
fn last_good_cell(out: &mut String, h: &HostRow, now: DateTime<Utc>) {
    match &h.last_good_time {
        Some(t) => {
            let _ = write!(
                out,
                "<td class=\"n\"><b>{}</b><span class=\"sub\">{}</span></td>",
                escape(&ago(t, now)),
                escape(h.last_good_snapshot.as_deref().unwrap_or(t))
            );
        }
        None => {
            let _ = write!(out, "<td class=\"n\"><b>never</b></td>");
        }
    }
}

/// The last run, how it ended and how many failed in a row.
fn last_run_cell(out: &mut String, h: &HostRow, now: DateTime<Utc>) {
    match (&h.last_run_time, &h.last_run_status) {
        (Some(t), status) => {
            let status = status.as_deref().unwrap_or("unknown");
            let fails = if h.consecutive_failures > 1 {
                format!(", {} in a row", h.consecutive_failures)
            } else {
                String::new()
            };
            let _ = write!(
                out,
                "<td class=\"n\"><span class=\"word {0}\">{0}</span>{1}<span class=\"sub\">{2}</span></td>",
                escape(status),
                escape(&fails),
                escape(&ago(t, now))
            );
        }
        (None, _) => out.push_str(&format!("<td>{DASH}</td>")),
    }
}

/// The last failed run's reason and age.
fn last_failure_cell(out: &mut String, h: &HostRow, now: DateTime<Utc>) {
    match (&h.last_failure_time, &h.last_failure_reason) {
        (None, None) => out.push_str(&format!("<td>{DASH}</td>")),
        (t, reason) => {
            let reason = reason.as_deref().unwrap_or("(its log is gone)");
            let _ = write!(
                out,
                "<td><span class=\"reason\" title=\"{0}\">{0}</span><span class=\"sub\">{1}</span></td>",
                escape(reason),
                escape(&t.as_deref().map(|t| ago(t, now)).unwrap_or_default())
            );
        }
    }
}

/// Snapshots per tier.
fn tiers_cell(out: &mut String, h: &HostRow) {
    out.push_str("<td><div class=\"tiers\">");
    if h.snapshots_per_tier.is_empty() {
        let _ = write!(out, "<span class=\"chip\">{} in all</span>", h.snapshots);
    }
    for (tier, n) in &h.snapshots_per_tier {
        let _ = write!(out, "<span class=\"chip\">{} {n}</span>", escape(tier));
    }
    out.push_str("</div></td>");
}

/// Space used, and what the last run wrote.
fn space_cell(out: &mut String, h: &HostRow) {
    let written = h
        .last_run_changes
        .as_ref()
        .and_then(|c| c.bytes)
        .map(|b| format!("last run wrote {}", human_bytes(b)))
        .unwrap_or_default();
    let _ = write!(
        out,
        "<td class=\"n\"><b>{}</b><span class=\"sub\">{}</span></td>",
        h.used_bytes.map_or("&ndash;".to_string(), human_bytes),
        escape(&written)
    );
}

/// An unacknowledged mass change, and the pinned snapshots.
fn pins_cell(out: &mut String, h: &HostRow, now: DateTime<Utc>) {
    out.push_str("<td class=\"n\">");
    if let Some(t) = &h.mass_change_time {
        let _ = write!(
            out,
            "<span class=\"pin\" title=\"a run changed more than guard.max_change: zbk keep or zbk restamp acknowledges\">MASS CHANGE</span><span class=\"sub\">{}</span>",
            escape(&ago(t, now))
        );
    }
    let _ = write!(
        out,
        "<span class=\"sub\">{} pinned</span></td>",
        h.pinned_snapshots
    );
}

/// How far the newest replica is behind.
fn replica_cell(out: &mut String, h: &HostRow, now: DateTime<Utc>) {
    match (h.replication_lag_seconds, &h.last_replicated_time) {
        (Some(lag), t) => {
            let lag = if lag <= 0 {
                "up to date".to_string()
            } else {
                relative(now - chrono::Duration::seconds(lag), now).replace(" ago", " behind")
            };
            let _ = write!(
                out,
                "<td class=\"n\">{}<span class=\"sub\">{}</span></td>",
                escape(&lag),
                escape(&t.as_deref().map(|t| ago(t, now)).unwrap_or_default())
            );
        }
        (None, _) => out.push_str(&format!("<td>{DASH}</td>")),
    }
}

/// The strip's days, oldest first, today last.
fn strip_dates(now: DateTime<Utc>) -> Vec<NaiveDate> {
    let today = now.date_naive();
    (0..STRIP_DAYS)
        .rev()
        .map(|back| today - chrono::Duration::days(back))
        .collect()
}

const CELL: usize = 4;

/// One cell: ok a full green bar, warning a full amber bar with a notch, failed a red bar
/// broken in the middle, none a low grey tick; told apart by shape as well as colour.
fn strip_cell(out: &mut String, i: usize, status: &str, title: &str) {
    let x = i * CELL;
    let title = if title.is_empty() {
        String::new()
    } else {
        format!("<title>{}</title>", escape(title))
    };
    let _ = match status {
        "ok" => write!(
            out,
            "<rect x=\"{x}\" y=\"0\" width=\"3\" height=\"18\" fill=\"#2e7d32\">{title}</rect>"
        ),
        "warning" => write!(
            out,
            "<g><rect x=\"{x}\" y=\"4\" width=\"3\" height=\"14\" fill=\"#e0a800\"/>{title}</g>"
        ),
        "failed" => write!(
            out,
            "<g><rect x=\"{x}\" y=\"0\" width=\"3\" height=\"7\" fill=\"#c62828\"/><rect x=\"{x}\" y=\"11\" width=\"3\" height=\"7\" fill=\"#c62828\"/>{title}</g>"
        ),
        _ => write!(
            out,
            "<rect x=\"{x}\" y=\"15\" width=\"3\" height=\"3\" fill=\"#dfe4e8\">{title}</rect>"
        ),
    };
}

fn strip(out: &mut String, history: &[Day], now: DateTime<Utc>) {
    let by_date: BTreeMap<&str, &Day> = history.iter().map(|d| (d.date.as_str(), d)).collect();
    let dates = strip_dates(now);
    let known = dates
        .iter()
        .filter(|d| by_date.contains_key(d.to_string().as_str()))
        .count();
    let _ = write!(
        out,
        "<svg width=\"{}\" height=\"18\" role=\"img\" aria-label=\"{known} of the last {STRIP_DAYS} days with snapshots\">",
        dates.len() * CELL
    );
    // Days without a snapshot are the baseline, drawn once.
    let _ = write!(
        out,
        "<rect x=\"0\" y=\"15\" width=\"{}\" height=\"3\" fill=\"#dfe4e8\"><title>no snapshot</title></rect>",
        dates.len() * CELL - 1
    );
    for (i, date) in dates.iter().enumerate() {
        let date = date.to_string();
        if let Some(d) = by_date.get(date.as_str()) {
            let failed = if d.failed_runs > 0 {
                format!(", {} failed", d.failed_runs)
            } else {
                String::new()
            };
            let title = format!(
                "{date}: {}, {}{failed}",
                d.status,
                crate::text::counted(d.runs as usize, "run"),
            );
            strip_cell(out, i, &d.status, &title);
        }
    }
    out.push_str("</svg>");
}

/// The size of each day's newest good backup, as a line over the strip's days.
fn sparkline(out: &mut String, history: &[Day], now: DateTime<Utc>) {
    let dates = strip_dates(now);
    let points: Vec<(usize, u64)> = dates
        .iter()
        .enumerate()
        .filter_map(|(i, date)| {
            let date = date.to_string();
            history
                .iter()
                .find(|d| d.date == date)
                .and_then(|d| d.referenced_bytes)
                .map(|b| (i, b))
        })
        .collect();
    let Some(&(_, last)) = points.last() else {
        out.push_str("<div class=\"size sub\">no size known</div>");
        return;
    };
    let (w, h) = (STRIP_DAYS as f64 * CELL as f64, 24.0);
    let max = points.iter().map(|p| p.1).max().unwrap_or(1).max(1) as f64;
    let min = points.iter().map(|p| p.1).min().unwrap_or(0) as f64;
    let span = (max - min).max(max * 0.05).max(1.0);
    let xy = |(i, b): (usize, u64)| {
        let x = i as f64 * CELL as f64 + 1.5;
        let y = h - 3.0 - (b as f64 - min) / span * (h - 6.0);
        (x, y)
    };
    let line: Vec<String> = points
        .iter()
        .map(|p| {
            let (x, y) = xy(*p);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let (lx, ly) = xy(*points.last().expect("not empty"));
    let _ = write!(
        out,
        "<div class=\"size\"><svg width=\"{w}\" height=\"24\" role=\"img\" aria-label=\"backup size over the last {STRIP_DAYS} days\">\
         <title>from {} to {}</title><line x1=\"0\" y1=\"23.5\" x2=\"{w}\" y2=\"23.5\" stroke=\"#e3e7ea\"/>\
         <polyline points=\"{}\" fill=\"none\" stroke=\"#3b6ea8\" stroke-width=\"1.5\" stroke-linejoin=\"round\"/>\
         <circle cx=\"{lx:.1}\" cy=\"{ly:.1}\" r=\"2.2\" fill=\"#3b6ea8\"/></svg><span class=\"sub\">{}</span></div>",
        human_bytes(points[0].1),
        human_bytes(last),
        line.join(" "),
        human_bytes(last)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        parse_time("2026-11-27T12:00:00Z").unwrap()
    }

    fn page(servers: Vec<Server>) -> String {
        render(&Page {
            generated: now(),
            version: "0.1.0".into(),
            servers,
        })
    }

    fn fleet() -> Value {
        json!([
            {"host": "calm", "retired": false, "state": "OK", "state_reason": "last good backup 1h ago",
             "last_good_snapshot": "2026-11-27T110000Z", "last_good_time": "2026-11-27T11:00:00Z",
             "last_run_time": "2026-11-27T11:00:00Z", "last_run_status": "ok",
             "last_run_changes": {"files": 10, "created": 1, "deleted": 0, "changed": 2, "bytes": 4096},
             "snapshots": 3, "pinned_snapshots": 0, "snapshots_per_tier": {"default": 3},
             "used_bytes": 1048576, "replication_lag_seconds": 3600,
             "last_replicated_time": "2026-11-27T10:00:00Z",
             "history": [{"date": "2026-11-26", "status": "warning", "runs": 2, "failed_runs": 1, "referenced_bytes": 1000},
                         {"date": "2026-11-27", "status": "ok", "runs": 1, "failed_runs": 0, "referenced_bytes": 2000}]},
            {"host": "broke", "retired": false, "state": "CRITICAL", "state_reason": "no good backup, 1 failed run",
             "last_run_time": "2026-11-27T11:30:00Z", "last_run_status": "failed",
             "last_failure_time": "2026-11-27T11:30:00Z",
             "last_failure_reason": "rsync: [sender] \"/<script>x</script>\" failed",
             "consecutive_failures": 1, "snapshots": 1, "history": []},
            {"host": "old", "retired": true, "state": "OK", "state_reason": "retired", "snapshots": 0},
            {"host": "garbled", "snapshots": "many"},
        ])
    }

    #[test]
    fn every_host_shows_worst_first_and_outside_text_is_escaped() {
        let html = page(vec![Server::from_json("b1", "this server", &fleet())]);
        let rows: Vec<&str> = html
            .lines()
            .filter(|l| l.starts_with("<tr class="))
            .collect();
        let order: Vec<&str> = rows
            .iter()
            .map(|l| {
                l.split("class=\"name\">")
                    .nth(1)
                    .unwrap()
                    .split('<')
                    .next()
                    .unwrap()
            })
            .collect();
        assert_eq!(order, ["garbled", "broke", "calm", "old"]);
        assert!(rows[0].contains("UNREADABLE") && rows[0].contains("does not parse"));
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(html.contains(">CRITICAL<") && html.contains(">RETIRED<"));
        assert!(html.contains("last run wrote 4.0K"));
        assert!(html.contains("1h behind"));
        assert!(html.contains("generated 2026-11-27T12:00:00Z") && html.contains("zbk 0.1.0"));
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains("<script") && !html.contains("<link"));
    }

    #[test]
    fn the_strip_has_a_cell_a_day_and_the_day_it_knows() {
        let mut out = String::new();
        let days: Vec<Day> = serde_json::from_value(fleet()[0]["history"].clone()).unwrap();
        strip(&mut out, &days, now());
        assert_eq!(
            out.matches("<title>").count(),
            3,
            "two days and the baseline"
        );
        assert!(out.contains("<title>2026-11-26: warning, 2 runs, 1 failed</title>"));
        assert!(out.contains("width=\"240\" height=\"18\""), "{out}");
        let mut line = String::new();
        sparkline(&mut line, &days, now());
        assert!(line.contains("<polyline") && line.contains("from 1000 to 2.0K"));
        let mut none = String::new();
        sparkline(&mut none, &[], now());
        assert!(!none.contains("<svg"));
    }

    #[test]
    fn servers_come_as_arrays_or_objects_with_a_pool() {
        let obj = json!({"server": "b2", "pool": {"name": "tank", "state": "DEGRADED", "check": "CRITICAL",
                          "problems": ["pool tank is DEGRADED"], "capacity_percent": 83,
                          "read_errors": 0, "write_errors": 1, "checksum_errors": 2, "data_errors": 0,
                          "scrub": "finished", "last_scrub_time": "2026-11-01T00:00:00Z",
                          "last_scrub_errors": 0, "vdevs": 2}, "hosts": fleet()});
        let s = Server::from_json("file", "b2.json", &obj);
        assert_eq!((s.name.as_str(), s.hosts.len()), ("b2", 4));
        let html = page(vec![s, Server::from_json("x", "x.json", &json!("junk"))]);
        assert!(html.contains("badge CRITICAL\">DEGRADED"), "{html}");
        assert!(html.contains("badge CRITICAL\">CRITICAL"), "{html}");
        assert!(html.contains("pool tank is DEGRADED"), "{html}");
        assert!(html.contains("<b>83&nbsp;%</b>"));
        assert!(
            html.contains("device errors</span><b class=\"bad\">3</b>"),
            "{html}"
        );
        assert!(html.contains("data errors</span><b>0</b>"), "{html}");
        assert!(html.contains("2026-11-01T00:00:00Z (0 errors)"), "{html}");
        assert!(html.contains("vdevs</span><b>2</b>"), "{html}");
        assert!(!html.contains("problems"), "{html}");
        assert!(html.contains("not zbk status --json"));
        assert!(html.contains("4 hosts on 2 servers"));
    }

    #[test]
    fn escape_covers_elements_and_attributes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
