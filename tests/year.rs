//! A year of cron in minutes: the shipped `packaging/cron.d/zbk`, parsed, replayed over 400
//! simulated days under libfaketime, against a real pool and a real rsync, with the source gone
//! for nine days in the middle and, later, three days of a client whose sender stops
//! mid-transfer behind a real sshd (each such run must end by itself within rsync.io_timeout
//! and the grace period); after every reap what is left is compared with what each tier's
//! retention promises, and `zbk check` with what it should say.
//!
//! Clocks. libfaketime (`common::zbk_faked`) sets zbk's clock to each cron line's minute, and
//! zbk's children (zfs, rsync) inherit it through `LD_PRELOAD`. That is harmless: the `zfs` command only passes
//! requests to ZFS, and rsync only measures intervals, which tick at the real rate. ZFS itself
//! (the zfs-fuse daemon, which is no child of zbk; the kernel on OpenZFS) keeps the real clock,
//! so a snapshot's `creation` is the real moment it was taken, while its name and `zbk:expires`
//! come from the faked one. Everything zbk decides by its stamps (expiry, reap, the tiers) runs
//! on the simulated calendar; `zbk check`, which ages the last good backup by its `creation`,
//! is asked at that snapshot's real creation plus the simulated time since it was taken: the
//! moment on the ZFS clock that corresponds to the simulated one. The simulated years start
//! two years ahead of the real date, so every `creation` lies in their past, as it would.
//! The monotonic clock is left alone (`FAKETIME_DONT_FAKE_MONOTONIC`), so timeouts stay real.
//!
//! Cadence. The hourly line fires once a day, at its minute of the first hour: the tiers and
//! the reap fire exactly as cron would fire them.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, TimeDelta, Utc};
use common::{text, Pool};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const DAYS: u64 = 400;
/// The source's outage: from the first Sunday on or after this day (July 9th or 10th), this
/// many days: long enough that the last good backup before it expires during it, and clear
/// of the 1st of a month, so that it costs no monthly or quarterly snapshot.
const OUTAGE_FROM: u64 = 190;
const OUTAGE_DAYS: u64 = 9;
/// The stalled client: from the first Monday on or after this day (November 6th or 7th), this
/// many days, clear of the 1st of a month, the source is pulled over ssh and its sender stops
/// mid-transfer (SIGSTOP), as a client whose disk hangs would.
const STALL_FROM: u64 = 310;
const STALL_DAYS: u64 = 3;
/// The stall days' rsync.io_timeout, and how long zbk may take past it to end the run: the
/// grace period between SIGTERM and SIGKILL (5s), and slack for a loaded machine.
const IO_TIMEOUT_SECS: u64 = 3;
const STALL_GRACE_SECS: u64 = 30;
const HOST: &str = "web";
/// zbk check's default thresholds (zbk.toml(5)), in hours.
const WARN_HOURS: i64 = 26;
const CRIT_HOURS: i64 = 50;

/// Where the test's time goes, by kind of step: printed at the end, for whoever makes it faster
/// (nothing here is asserted: this machine's load is anyone's).
#[derive(Default)]
struct Spent(std::collections::BTreeMap<&'static str, (u32, Duration)>);

impl Spent {
    fn time<T>(&mut self, kind: &'static str, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = f();
        let entry = self.0.entry(kind).or_default();
        entry.0 += 1;
        entry.1 += started.elapsed();
        out
    }

    fn table(&self, total: Duration) -> String {
        let mut out = format!(
            "{:<28} {:>6} {:>9} {:>8}\n",
            "step", "count", "total s", "each ms"
        );
        for (kind, (n, took)) in &self.0 {
            out += &format!(
                "{kind:<28} {n:>6} {:>9.1} {:>8.0}\n",
                took.as_secs_f64(),
                took.as_secs_f64() * 1000.0 / f64::from(*n)
            );
        }
        let counted: Duration = self.0.values().map(|(_, t)| *t).sum();
        out += &format!(
            "{:<28} {:>6} {:>9.1}\n{:<28} {:>6} {:>9.1}\n",
            "(the rest)",
            "",
            total.saturating_sub(counted).as_secs_f64(),
            "all",
            "",
            total.as_secs_f64()
        );
        out
    }
}

/// One field of a cron line: `*`, or the values it lists (`1,4,7,10`, `1-5`, `*/15`).
#[derive(Debug)]
enum Field {
    Any,
    Set(Vec<u32>),
}

impl Field {
    fn parse(text: &str, min: u32, max: u32) -> Field {
        if text == "*" {
            return Field::Any;
        }
        let mut values = Vec::new();
        for part in text.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => (r, s.parse().expect("a cron step")),
                None => (part, 1),
            };
            let (lo, hi) = match range {
                "*" => (min, max),
                r => match r.split_once('-') {
                    Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
                    None => {
                        let n = r.parse().unwrap_or_else(|_| panic!("cron field {text:?}"));
                        (n, n)
                    }
                },
            };
            values.extend((lo..=hi).step_by(step));
        }
        Field::Set(values)
    }

    fn has(&self, value: u32) -> bool {
        match self {
            Field::Any => true,
            Field::Set(v) => v.contains(&value),
        }
    }

    fn first(&self, min: u32) -> u32 {
        match self {
            Field::Any => min,
            Field::Set(v) => *v.iter().min().expect("a value"),
        }
    }
}

/// A crontab line: when, and the zbk arguments it runs.
#[derive(Debug)]
struct Line {
    minute: Field,
    hour: Field,
    dom: Field,
    month: Field,
    dow: Field,
    args: Vec<String>,
}

impl Line {
    /// Whether cron fires this line on `day`: day of month and day of week are alternatives
    /// when both are restricted (crontab(5)).
    fn fires_on(&self, day: NaiveDate) -> bool {
        let dom = self.dom.has(day.day());
        let dow = self.dow.has(day.weekday().num_days_from_sunday())
            || (day.weekday().num_days_from_sunday() == 0 && self.dow.has(7));
        let when = match (&self.dom, &self.dow) {
            (Field::Set(_), Field::Set(_)) => dom || dow,
            _ => dom && dow,
        };
        when && self.month.has(day.month())
    }

    /// The minute of the day it fires at: the hourly line once a day, in the first hour.
    fn time(&self) -> NaiveTime {
        NaiveTime::from_hms_opt(self.hour.first(0), self.minute.first(0), 0).expect("a time")
    }
}

/// The active lines of a crontab fragment (`m h dom mon dow user command`), each reduced to
/// the arguments of the `zbk` its command ends in.
fn crontab(text: &str) -> Vec<Line> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| !l.split_whitespace().next().unwrap_or("").contains('='))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // The command after the user; cron's own guards (`[ -x ... ] &&`) before zbk.
            let command = f[6..].join(" ");
            let command = command.rsplit("&& ").next().unwrap();
            let words: Vec<String> = command.split_whitespace().map(String::from).collect();
            assert_eq!(words[0], "zbk", "a cron line that runs something else: {l}");
            Line {
                minute: Field::parse(f[0], 0, 59),
                hour: Field::parse(f[1], 0, 23),
                dom: Field::parse(f[2], 1, 31),
                month: Field::parse(f[3], 1, 12),
                dow: Field::parse(f[4], 0, 7),
                args: words[1..].to_vec(),
            }
        })
        .collect()
}

/// What each tier promises (zbk.toml(5)'s defaults): calendar months, or exact days.
fn expiry(tier: &str, taken: DateTime<Utc>) -> DateTime<Utc> {
    let months = |n| taken.checked_add_months(Months::new(n)).unwrap();
    let days = |n| taken.checked_add_days(Days::new(n)).unwrap();
    match tier {
        "default" => days(7),
        "weekly" => days(35),
        "monthly" => months(13),
        "quarterly" => months(24),
        "yearly" => months(84),
        "failed" => days(2),
        other => panic!("a tier the cron file should not name: {other}"),
    }
}

/// A run as the test expects it to be remembered.
#[derive(Clone, Debug)]
struct Run {
    name: String,
    taken: DateTime<Utc>,
    /// The tier stamped: the run's, or `failed`.
    tier: String,
    good: bool,
}

impl Run {
    fn expires(&self) -> DateTime<Utc> {
        expiry(&self.tier, self.taken)
    }

    /// The `zbk:status` it must be stamped with.
    fn status(&self) -> &'static str {
        if self.good {
            "ok"
        } else {
            "failed"
        }
    }
}

/// A run done but not yet seen in a listing: when cron started it, the tier it must be
/// stamped with, and whether it was to succeed.
#[derive(Debug)]
struct Pending {
    at: DateTime<Utc>,
    tier: String,
    good: bool,
}

/// Lists the host once and takes in the runs since the last listing: the snapshots that
/// were not there before must be exactly theirs, one each, in order, named for the minute
/// cron started them and stamped with their tier and status. Returns the listing. (One
/// listing a day serves every run of the day: none of them expires before the day's reap.)
fn take_in(
    pool: &Pool,
    present: &mut Vec<Run>,
    pending: &mut Vec<Pending>,
    runs: &mut Vec<Run>,
) -> Vec<(String, String, String, String)> {
    let have = stamped(pool);
    let new: Vec<&(String, String, String, String)> = have
        .iter()
        .filter(|(name, ..)| !present.iter().any(|r| &r.name == name))
        .collect();
    assert_eq!(
        new.len(),
        pending.len(),
        "a run that took no snapshot, or a snapshot no run took: {new:?} for {pending:?}"
    );
    for ((name, tier, status, _), run) in new.into_iter().zip(pending.drain(..)) {
        let taken = name_time(name);
        assert!(
            taken >= run.at && taken < run.at + TimeDelta::minutes(1),
            "{name} is not the run of {}",
            run.at
        );
        let run = Run {
            name: name.clone(),
            taken,
            tier: run.tier,
            good: run.good,
        };
        assert_eq!(tier, &run.tier, "{name}");
        assert_eq!(status, run.status(), "{name}");
        runs.push(run.clone());
        present.push(run);
    }
    have
}

/// libfaketime's clock that starts at `at` and runs on.
fn clock(at: DateTime<Utc>) -> String {
    format!("@{}", at.format("%Y-%m-%d %H:%M:%S"))
}

/// zbk at the simulated moment `at`, under libfaketime.
fn zbk_at(pool: &Pool, at: DateTime<Utc>, args: &[&str]) -> Output {
    common::zbk_faked(&clock(at))
        .arg("--root")
        .arg(&pool.root)
        .args(args)
        .output()
        .expect("zbk")
}

/// The pids of the `rsync --server --sender` processes sshd started to send `path`: the
/// client's side of a pull.
fn senders(path: &str) -> Vec<String> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let Ok(argv) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let argv: Vec<String> = argv
            .split(|b| *b == 0)
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        let has = |w: &str| argv.iter().any(|a| a == w);
        // rsync itself, not the ssh client whose command line names the same words; the
        // copy's, not the guards' look at the source before it.
        if argv[0].ends_with("rsync")
            && !has("--list-only")
            && has("--server")
            && has("--sender")
            && argv.iter().any(|a| a.contains(path))
        {
            pids.push(pid);
        }
    }
    pids
}

/// Stopped processes, killed however the test ends.
struct Stopped(Vec<String>);

impl Drop for Stopped {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
}

/// A run of a stall day: zbk at `at`, its client's sender stopped as soon as the copy of
/// `growing` (in d/) is under way. Returns zbk's output and how long after the stop it ended.
fn stalled_run(
    pool: &Pool,
    at: DateTime<Utc>,
    args: &[&str],
    src: &str,
    growing: &Path,
) -> (Output, Duration) {
    let mut child = common::zbk_faked(&clock(at))
        .arg("--root")
        .arg(&pool.root)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("zbk");
    let started = Instant::now();
    // d/ may hold what an earlier stall left of the file: the copy is under way once it changes.
    let seen = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.len(), m.modified().ok()))
    };
    let before = seen(growing);
    let stopped = loop {
        let copying = seen(growing).is_some_and(|now| Some(now) != before);
        let pids = senders(src);
        if copying && !pids.is_empty() {
            for pid in &pids {
                common::ok("kill", &["-STOP", pid]);
            }
            break Stopped(pids);
        }
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "{at}: the run ended ({status}) before its copy was under way: {}",
                text(&out.stderr)
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{at}: the copy never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let stop = Instant::now();
    let limit = Duration::from_secs(IO_TIMEOUT_SECS + STALL_GRACE_SECS);
    while child.try_wait().unwrap().is_none() && stop.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = stop.elapsed();
    let ended = child.try_wait().unwrap().is_some();
    // The stopped sender goes either way, as the client's reboot would end it.
    drop(stopped);
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(
        ended,
        "{at}: zbk was still running {took:?} after the client's sender stopped: {stderr}"
    );
    // zbk's own watch on the silence and rsync's --timeout run out together: either may say.
    let why = format!("the client sent nothing for {IO_TIMEOUT_SECS}s (rsync.io_timeout)");
    assert!(
        stderr.contains(&why) || stderr.contains("rsync exited 30 (timeout in data send/receive)"),
        "{at}: {stderr}"
    );
    eprintln!("{at}: the stalled run ended {took:?} after its sender stopped");
    (out, took)
}

/// The host's snapshots with their stamps, oldest first: (name, tier, status, expires).
fn stamped(pool: &Pool) -> Vec<(String, String, String, String)> {
    pool.snapshot_rows(HOST, &["zbk:tier", "zbk:status", "zbk:expires"])
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone(), r[3].clone()))
        .collect()
}

/// The time a snapshot name of zbk's encodes.
fn name_time(name: &str) -> DateTime<Utc> {
    let stamp = name.trim_start_matches("failed-");
    let naive = chrono::NaiveDateTime::parse_from_str(&stamp[..18], "%Y-%m-%dT%H%M%SZ")
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    naive.and_utc()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `len` bytes that no other day's share a block with, so rsync has to send them all.
fn noise(day: NaiveDate, len: usize) -> Vec<u8> {
    let mut x = u64::from(day.num_days_from_ce().unsigned_abs()) | 1 << 40;
    (0..len / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect()
}

/// The day's file: its bytes say which day it is.
fn day_bytes(day: NaiveDate) -> Vec<u8> {
    format!("the source as of {day}\n").repeat(64).into_bytes()
}

#[test]
fn a_year_of_the_shipped_cron_schedule_keeps_what_each_tier_promises() {
    let cron =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/cron.d/zbk"))
            .expect("packaging/cron.d/zbk");
    let lines = crontab(&cron);
    let tiers: Vec<String> = lines.iter().map(|l| l.args.join(" ")).collect();
    for want in [
        "run --all",
        "run --all --tier weekly",
        "run --all --tier monthly",
        "run --all --tier quarterly",
        "run --all --tier yearly",
        "reap",
    ] {
        assert!(
            tiers.iter().any(|t| t == want),
            "{want:?} not in the cron file: {tiers:?}"
        );
    }

    let began = Instant::now();
    let mut spent = Spent::default();
    let pool = spent.time("set-up: pool, init, sshd", Pool::initialised);
    // No scrub in 400 days is the pool's own warning (check.scrub_age), not what this judges.
    pool.add_global("[check]\nscrub_age = \"1000days\"\n");
    let src = pool.scratch("src");
    let away = pool.dir.path().join("src.away");
    let file = src.join("day.txt");
    let big = src.join("big.bin");
    pool.add_host(HOST, &src);
    let config = pool.root.join(format!("hosts/{HOST}/c/zbk.toml"));
    let local_config = std::fs::read_to_string(&config).unwrap();
    let sshd = spent.time("set-up: pool, init, sshd", common::sshd::Sshd::start);
    // The stall days pull the same tree over ssh, slowly enough to be caught mid-transfer.
    let remote_config = format!(
        "sources = [\"root@127.0.0.1:{}/\"]\n\n[rsync]\nio_timeout = \"{IO_TIMEOUT_SECS}s\"\nbwlimit = \"256K\"\n{}",
        src.display(),
        sshd.zbk_config()
    );
    let growing = pool
        .root
        .join(format!("hosts/{HOST}/d"))
        .join(big.strip_prefix("/").unwrap());
    let mut stalls = Vec::new();

    let start = NaiveDate::from_ymd_opt(Utc::now().year() + 2, 1, 1).unwrap();
    let outage_start = (OUTAGE_FROM..)
        .map(|d| start + Days::new(d))
        .find(|d| d.weekday() == chrono::Weekday::Sun)
        .unwrap();
    let outage = outage_start..outage_start + Days::new(OUTAGE_DAYS);
    let stall_start = (STALL_FROM..)
        .map(|d| start + Days::new(d))
        .find(|d| d.weekday() == chrono::Weekday::Mon)
        .unwrap();
    let stall = stall_start..stall_start + Days::new(STALL_DAYS);
    let mut runs: Vec<Run> = Vec::new();
    let mut present: Vec<Run> = Vec::new();
    let mut pending: Vec<Pending> = Vec::new();
    // The newest good backup before the outage, which the min_keep floor must keep through it.
    let mut before_outage: Option<Run> = None;

    for d in 0..DAYS {
        let day = start + Days::new(d);
        let down = outage.contains(&day);
        let stalled = stall.contains(&day);
        let failing = down || stalled;
        if stalled {
            std::fs::write(&config, &remote_config).unwrap();
            std::fs::write(&big, noise(day, 8 << 20)).unwrap();
        } else if big.exists() {
            std::fs::write(&config, &local_config).unwrap();
            std::fs::remove_file(&big).unwrap();
        }
        if down && src.exists() {
            before_outage = present.iter().rev().find(|r| r.good).cloned();
            std::fs::rename(&src, &away).unwrap();
        } else if !down && away.exists() {
            std::fs::rename(&away, &src).unwrap();
        }
        if !down {
            std::fs::write(&file, day_bytes(day)).unwrap();
            let midnight = std::time::SystemTime::from(day.and_hms_opt(0, 0, 0).unwrap().and_utc());
            std::fs::File::options()
                .write(true)
                .open(&file)
                .unwrap()
                .set_modified(midnight)
                .unwrap();
        }
        let mut today: Vec<(DateTime<Utc>, &Line)> = lines
            .iter()
            .filter(|l| l.fires_on(day))
            .map(|l| (day.and_time(l.time()).and_utc(), l))
            .collect();
        today.sort_by_key(|(t, _)| *t);
        for (at, line) in today {
            let args: Vec<&str> = line.args.iter().map(String::as_str).collect();
            let out = if stalled && args[0] == "run" {
                let (out, took) = spent.time("zbk run, stalled client", || {
                    stalled_run(&pool, at, &args, src.to_str().unwrap(), &growing)
                });
                stalls.push(took);
                out
            } else {
                let kind = match &args[..] {
                    ["reap"] => "zbk reap",
                    ["run", "--all"] => "zbk run (default tier)",
                    _ => "zbk run --tier (longer)",
                };
                spent.time(kind, || zbk_at(&pool, at, &args))
            };
            let said = || {
                format!(
                    "{at} zbk {args:?}: {} {}",
                    text(&out.stdout),
                    text(&out.stderr)
                )
            };
            if args[0] == "run" {
                let tier = args
                    .iter()
                    .position(|a| *a == "--tier")
                    .map_or("default", |i| args[i + 1]);
                assert_eq!(
                    out.status.code(),
                    Some(if failing { 1 } else { 0 }),
                    "{}",
                    said()
                );
                pending.push(Pending {
                    at,
                    tier: if failing { "failed" } else { tier }.to_string(),
                    good: !failing,
                });
            } else {
                assert_eq!(args, ["reap"]);
                assert_eq!(out.status.code(), Some(0), "{}", said());
                spent.time("zfs list (the test's)", || {
                    let have = take_in(&pool, &mut present, &mut pending, &mut runs);
                    reaped(&have, &mut present, at, day);
                });
                if down {
                    let kept = before_outage.as_ref().unwrap();
                    assert!(
                        present.iter().any(|r| r.name == kept.name),
                        "{day}: the last good backup before the outage, {}, was reaped",
                        kept.name
                    );
                    assert!(present.iter().any(|r| r.good), "{day}: no good backup left");
                }
            }
        }
        // Runs after the day's reap (none in the shipped file) are seen at the end of the day.
        if !pending.is_empty() {
            spent.time("zfs list (the test's)", || {
                take_in(&pool, &mut present, &mut pending, &mut runs);
            });
        }
        // Around the outage every day, where the state changes; elsewhere once a week.
        let near = |r: &std::ops::Range<NaiveDate>| {
            r.start - Days::new(2) <= day && day <= r.end + Days::new(2)
        };
        let near = near(&outage) || near(&stall);
        if near || day.weekday() == chrono::Weekday::Wed {
            check(&pool, &present, day, &mut spent);
        }
    }

    assert_eq!(stalls.len(), STALL_DAYS as usize, "{stalls:?}");
    eprintln!(
        "stall days: zbk ended {stalls:?} after the client's sender stopped \
         (rsync.io_timeout {IO_TIMEOUT_SECS}s)"
    );
    drop(sshd);

    // What the last reap left: exactly what each tier promises at that moment.
    let end = start + Days::new(DAYS - 1);
    let by_tier = |tier: &str| present.iter().filter(|r| r.tier == tier).count();
    let quarterly_runs = runs.iter().filter(|r| r.tier == "quarterly").count();
    assert_eq!(
        [
            by_tier("default"),
            by_tier("weekly"),
            by_tier("monthly"),
            by_tier("quarterly"),
            by_tier("yearly"),
            by_tier("failed"),
        ],
        // 7 days, 5 weeks, 13 months, every quarter of 2 years, both New Years of 7 years,
        // and the outage's failures long gone.
        [7, 5, 13, quarterly_runs, 2, 0],
        "at {end}: {present:#?}"
    );
    assert_eq!(quarterly_runs, 5, "{runs:#?}");

    // The oldest yearly snapshot still restores its day's bytes.
    let oldest = present.iter().find(|r| r.tier == "yearly").unwrap();
    assert_eq!(oldest.taken.date_naive(), start);
    let to = pool.scratch("restored");
    let restore = Instant::now();
    let path = file.to_str().unwrap();
    pool.zbk_expect(
        0,
        &[
            "restore",
            HOST,
            "--snapshot",
            &oldest.name,
            path,
            "--to",
            to.to_str().unwrap(),
        ],
    );
    spent.0.insert("zbk restore", (1, restore.elapsed()));
    let back = std::fs::read(to.join(path.trim_start_matches('/'))).unwrap();
    assert!(
        back == day_bytes(start),
        "{}",
        String::from_utf8_lossy(&back)
    );
    eprintln!("where the time went:\n{}", spent.table(began.elapsed()));
}

/// After the reap at `at`, listed as `have`: the host holds exactly the runs whose expiry,
/// calendar-exact, is still ahead, plus its newest good one (min_keep = 1); each stamped with
/// its tier, its status and that expiry.
fn reaped(
    have: &[(String, String, String, String)],
    present: &mut Vec<Run>,
    at: DateTime<Utc>,
    day: NaiveDate,
) {
    let newest_good = present
        .iter()
        .rev()
        .find(|r| r.good)
        .map(|r| r.name.clone());
    present.retain(|r| r.expires() > at || Some(&r.name) == newest_good.as_ref());
    let names: Vec<&str> = have.iter().map(|(n, ..)| n.as_str()).collect();
    let want: Vec<&str> = present.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names, want,
        "{day}: the reap at {at} left the wrong snapshots"
    );
    for ((name, tier, status, expires), run) in have.iter().zip(present.iter()) {
        assert_eq!(tier, &run.tier, "{name}");
        assert_eq!(status, run.status(), "{name}");
        assert_eq!(
            expires,
            &rfc3339(run.expires()),
            "{name} ({tier}) is not calendar-exact"
        );
    }
}

/// `zbk check` at half past six of `day`: OK while the last good backup is younger than 26h,
/// WARNING until 50h, CRITICAL after, naming the failed runs since. Asked on the ZFS clock:
/// the last good snapshot's real creation plus the simulated time since it was taken.
fn check(pool: &Pool, present: &[Run], day: NaiveDate, spent: &mut Spent) {
    let now = day.and_hms_opt(6, 30, 0).unwrap().and_utc();
    let good = present
        .iter()
        .rev()
        .find(|r| r.good)
        .expect("a good backup");
    let status = spent.time("zbk status --json", || {
        common::json(&pool.zbk_expect(0, &["status", "--json", HOST]))
    });
    assert_eq!(status[0]["last_good_snapshot"], good.name.as_str(), "{day}");
    let ds = format!("{}@{}", pool.host_dataset(HOST), good.name);
    let created: i64 = spent
        .time("zfs get creation", || {
            common::ok("zfs", &["get", "-H", "-p", "-o", "value", "creation", &ds])
        })
        .trim()
        .parse()
        .unwrap();
    let age = now - good.taken;
    let on_zfs_clock = DateTime::from_timestamp(created, 0).unwrap() + age;
    let out = spent.time("zbk check", || zbk_at(pool, on_zfs_clock, &["check", HOST]));
    let line = text(&out.stdout);
    let (code, label) = if age < TimeDelta::hours(WARN_HOURS) {
        (0, "OK")
    } else if age < TimeDelta::hours(CRIT_HOURS) {
        (1, "WARNING")
    } else {
        (2, "CRITICAL")
    };
    assert_eq!(
        out.status.code(),
        Some(code),
        "{day}, {age} since {}: {line}",
        good.name
    );
    assert!(
        line.starts_with(&format!("ZBK {label} - ")),
        "{day}: {line}"
    );
    let failed = present
        .iter()
        .filter(|r| r.taken > good.taken && !r.good)
        .count();
    if code > 0 {
        let runs = if failed == 1 { "run" } else { "runs" };
        assert!(
            line.contains(&format!("{failed} failed {runs} since")),
            "{day}: {failed} failed runs since {}: {line}",
            good.name
        );
    }
}

#[test]
fn the_crontab_reader_follows_crontab_5() {
    let lines = crontab(
        "SHELL=/bin/sh\n# m h dom mon dow\n47 4 1 1,4,7,10 * root [ -x z ] && zbk run --all --tier q\n\
         0 */6 * * 1-5 root zbk reap\n0 0 13 * 5 root zbk run --all\n",
    );
    assert_eq!(lines.len(), 3);
    let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
    assert!(lines[0].fires_on(d(2028, 4, 1)) && !lines[0].fires_on(d(2028, 5, 1)));
    assert_eq!(lines[0].args, ["run", "--all", "--tier", "q"]);
    assert_eq!(lines[0].time(), NaiveTime::from_hms_opt(4, 47, 0).unwrap());
    // 2028-03-06 is a Monday, 2028-03-04 a Saturday.
    assert!(lines[1].fires_on(d(2028, 3, 6)) && !lines[1].fires_on(d(2028, 3, 4)));
    assert_eq!(lines[1].time(), NaiveTime::from_hms_opt(0, 0, 0).unwrap());
    // The 13th or a Friday: 2028-03-03 is a Friday, 2028-03-13 a Monday.
    assert!(lines[2].fires_on(d(2028, 3, 3)) && lines[2].fires_on(d(2028, 3, 13)));
    assert!(!lines[2].fires_on(d(2028, 3, 14)));
}
