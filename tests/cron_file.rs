//! Checks packaging/cron.d/zbk, installed as /etc/cron.d/zbk: cron syntax, the guard, one line
//! per tier plus the reap, no two jobs starting in the same minute, and the systemd timers
//! keeping the same schedule. std only.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const GUARD: &str = "[ -x /usr/sbin/zbk ] && [ -f /backup/etc/zbk.toml ] && ";

fn packaging() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging")
}

fn cron_text() -> String {
    let path = packaging().join("cron.d").join("zbk");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One job line of a system crontab: five time fields, the user, the command.
#[derive(Debug)]
struct Job {
    line: usize,
    fields: [String; 5],
    user: String,
    command: String,
}

/// The name and range of each time field, and the names cron accepts in it.
const FIELDS: [(&str, u32, u32, &[&str]); 5] = [
    ("minute", 0, 59, &[]),
    ("hour", 0, 23, &[]),
    ("day of month", 1, 31, &[]),
    (
        "month",
        1,
        12,
        &[
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ],
    ),
    (
        "day of week",
        0,
        7,
        &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    ),
];

/// A number or (where the field has names) a three-letter name, as cron reads it.
fn value(text: &str, field: usize) -> Result<u32, String> {
    let (name, lo, hi, names) = FIELDS[field];
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        // Months count from 1 (jan), weekdays from 0 (sun).
        return Ok(i as u32 + lo);
    }
    let n: u32 = text
        .parse()
        .map_err(|_| format!("{name}: {text:?} is not a number"))?;
    if n < lo || n > hi {
        return Err(format!("{name}: {n} is outside {lo}-{hi}"));
    }
    Ok(n)
}

/// Expands one time field (`*`, `*/n`, `a`, `a-b`, `a-b/n`, comma lists of these) to the set of
/// values it matches, or says why cron would reject it.
fn expand(text: &str, field: usize) -> Result<BTreeSet<u32>, String> {
    let (name, lo, hi, _) = FIELDS[field];
    let mut out = BTreeSet::new();
    if text.is_empty() {
        return Err(format!("{name}: empty"));
    }
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .map_err(|_| format!("{name}: bad step in {item:?}"))?;
                if step == 0 {
                    return Err(format!("{name}: zero step in {item:?}"));
                }
                (range, step)
            }
            None => (item, 1),
        };
        let (start, end) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(a, field)?, value(b, field)?);
            if a > b {
                return Err(format!("{name}: backwards range {item:?}"));
            }
            (a, b)
        } else {
            let a = value(range, field)?;
            if step != 1 {
                return Err(format!("{name}: a step needs a range or * in {item:?}"));
            }
            (a, a)
        };
        out.extend((start..=end).step_by(step as usize));
    }
    // Day of week 7 is Sunday, like 0.
    if field == 4 && out.remove(&7) {
        out.insert(0);
    }
    Ok(out)
}

/// Splits the file into its environment settings and its jobs, failing on anything else.
fn parse(text: &str) -> (BTreeMap<String, String>, Vec<Job>) {
    let mut env = BTreeMap::new();
    let mut jobs = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.split_whitespace().next().unwrap();
        if let Some((name, _)) = first
            .split_once('=')
            .filter(|(n, _)| !n.is_empty() && !n.contains(['*', ',']))
        {
            // NAME=value: the whole rest of the line is the value.
            let val = line[name.len() + 1..].trim().trim_matches('"').to_string();
            env.insert(name.to_string(), val);
            continue;
        }
        let mut words = line.split_whitespace();
        let fields: Vec<String> = words.by_ref().take(5).map(String::from).collect();
        let user = words.next().unwrap_or_default().to_string();
        let command = words.collect::<Vec<_>>().join(" ");
        assert!(
            fields.len() == 5 && !user.is_empty() && !command.is_empty(),
            "line {}: want 5 time fields, a user and a command: {raw:?}",
            i + 1
        );
        jobs.push(Job {
            line: i + 1,
            fields: fields.try_into().unwrap(),
            user,
            command,
        });
    }
    (env, jobs)
}

/// The tier a job's command runs ("default" for a plain run), or "reap".
fn tier_of(job: &Job) -> String {
    let command = job.command.strip_prefix(GUARD).unwrap_or_else(|| {
        panic!(
            "line {}: not guarded by {GUARD:?}: {:?}",
            job.line, job.command
        )
    });
    let words: Vec<&str> = command.split_whitespace().collect();
    match words.as_slice() {
        ["zbk", "run", "--all"] => "default".into(),
        ["zbk", "run", "--all", "--tier", tier] => tier.to_string(),
        ["zbk", "reap"] => "reap".into(),
        _ => panic!(
            "line {}: not a zbk run --all [--tier T] or zbk reap: {command:?}",
            job.line
        ),
    }
}

#[test]
fn the_cron_file_is_a_valid_system_crontab() {
    let text = cron_text();
    assert!(
        text.starts_with("# "),
        "the file opens with a comment saying what it is"
    );
    assert!(
        text.ends_with('\n'),
        "cron ignores a last line without a newline"
    );
    assert!(!text.contains('\r'), "no CR line ends");
    assert!(!text.contains('\t'), "spaces only, for readable columns");
    let (env, jobs) = parse(&text);

    let path = env
        .get("PATH")
        .expect("a PATH= line (cron's default lacks /usr/sbin)");
    let dirs: Vec<&str> = path.split(':').collect();
    for want in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        assert!(dirs.contains(&want), "PATH {path:?} lacks {want}");
    }
    assert!(
        env.keys().all(|k| k == "PATH" || k == "SHELL"),
        "only PATH and SHELL are set: {env:?}"
    );

    assert!(!jobs.is_empty(), "no job lines");
    for job in &jobs {
        for (i, f) in job.fields.iter().enumerate() {
            if let Err(e) = expand(f, i) {
                panic!("line {}: {e}", job.line);
            }
        }
        assert_eq!(job.user, "root", "line {}: zbk runs as root", job.line);
        let command = job.command.strip_prefix(GUARD).unwrap_or_else(|| {
            panic!(
                "line {}: not guarded by {GUARD:?}: {:?}",
                job.line, job.command
            )
        });
        assert!(
            command.starts_with("zbk "),
            "line {}: the command is zbk: {command:?}",
            job.line
        );
        assert!(
            !command.contains('%'),
            "line {}: cron turns % into a newline",
            job.line
        );
    }
}

#[test]
fn every_tier_and_the_reap_run_once_on_their_own_schedule() {
    let (_, jobs) = parse(&cron_text());
    let mut by_tier: BTreeMap<String, &Job> = BTreeMap::new();
    for job in &jobs {
        let tier = tier_of(job);
        if let Some(other) = by_tier.insert(tier.clone(), job) {
            panic!("tier {tier} on lines {} and {}", other.line, job.line);
        }
    }
    let names: Vec<&str> = by_tier.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "default",
            "monthly",
            "quarterly",
            "reap",
            "weekly",
            "yearly"
        ]
    );

    let sets = |tier: &str| -> Vec<BTreeSet<u32>> {
        let job = by_tier[tier];
        (0..5).map(|i| expand(&job.fields[i], i).unwrap()).collect()
    };
    let all = |i: usize| -> BTreeSet<u32> { expand("*", i).unwrap() };
    let one = |v: u32| -> BTreeSet<u32> { BTreeSet::from([v]) };
    let weekdays: BTreeSet<u32> = (0..7).collect();

    // default: once an hour, every hour of every day.
    let s = sets("default");
    assert_eq!(
        (s[0].len(), &s[1], &s[2], &s[3], &s[4]),
        (1, &all(1), &all(2), &all(3), &weekdays)
    );
    // reap: once a day.
    let s = sets("reap");
    assert_eq!(
        (s[0].len(), s[1].len(), &s[2], &s[3], &s[4]),
        (1, 1, &all(2), &all(3), &weekdays)
    );
    // weekly: once a week, on one weekday.
    let s = sets("weekly");
    assert_eq!(
        (s[0].len(), s[1].len(), &s[2], &s[3], s[4].len()),
        (1, 1, &all(2), &all(3), 1)
    );
    // monthly: on the 1st of every month.
    let s = sets("monthly");
    assert_eq!(
        (s[0].len(), s[1].len(), &s[2], &s[3], &s[4]),
        (1, 1, &one(1), &all(3), &weekdays)
    );
    // quarterly: on the 1st of January, April, July and October.
    let s = sets("quarterly");
    let quarters = BTreeSet::from([1, 4, 7, 10]);
    assert_eq!(
        (s[0].len(), s[1].len(), &s[2], &s[3], &s[4]),
        (1, 1, &one(1), &quarters, &weekdays)
    );
    // yearly: on 1 January.
    let s = sets("yearly");
    assert_eq!(
        (s[0].len(), s[1].len(), &s[2], &s[3], &s[4]),
        (1, 1, &one(1), &one(1), &weekdays)
    );
    // A day-of-month and a day-of-week restriction together mean "either" to cron.
    for job in &jobs {
        assert!(
            job.fields[2] == "*" || job.fields[4] == "*",
            "line {}: dom and dow both set",
            job.line
        );
    }
}

#[test]
fn no_two_jobs_start_in_the_same_minute() {
    let (_, jobs) = parse(&cron_text());
    let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
    for job in &jobs {
        // Distinct minutes of the hour suffice: the hourly line fires in every hour.
        for minute in expand(&job.fields[0], 0).unwrap() {
            if let Some(line) = seen.insert(minute, job.line) {
                panic!(
                    "lines {line} and {} both start at minute {minute}",
                    job.line
                );
            }
        }
    }
}

#[test]
fn the_future_replicate_line_is_only_a_comment() {
    let text = cron_text();
    let replicate: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("zbk replicate"))
        .collect();
    assert_eq!(replicate.len(), 1, "one commented-out replicate line");
    assert!(
        replicate[0].trim_start().starts_with('#'),
        "replicate is not a command yet"
    );
    assert!(replicate[0].contains("--to TARGET"));
}

#[test]
fn the_systemd_timers_keep_the_cron_schedule() {
    let (_, jobs) = parse(&cron_text());
    let dir = packaging().join("systemd");
    for job in &jobs {
        let tier = tier_of(job);
        let (timer, unit) = if tier == "reap" {
            ("zbk-reap.timer".to_string(), "zbk-reap.service".to_string())
        } else {
            (
                format!("zbk-run-{tier}.timer"),
                format!("zbk-run@{tier}.service"),
            )
        };
        let path = dir.join(&timer);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let key = |k: &str| -> String {
            text.lines()
                .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
                .unwrap_or_else(|| panic!("{timer}: no {k}="))
                .trim()
                .to_string()
        };
        assert_eq!(key("Unit"), unit, "{timer}");
        // OnCalendar ends in HH:MM:SS (or *:MM:SS); it must agree with the cron line.
        let calendar = key("OnCalendar");
        let time = calendar.rsplit(' ').next().unwrap();
        let hms: Vec<&str> = time.split(':').collect();
        assert_eq!(hms.len(), 3, "{timer}: OnCalendar={calendar}");
        let as_cron = |t: &str| {
            if t == "*" {
                "*".to_string()
            } else {
                t.parse::<u32>().unwrap().to_string()
            }
        };
        assert_eq!(
            (as_cron(hms[1]), as_cron(hms[0])),
            (job.fields[0].clone(), job.fields[1].clone()),
            "{timer}: OnCalendar={calendar} vs cron line {}",
            job.line
        );
        assert!(
            text.contains("\nPersistent="),
            "{timer}: Persistent= said explicitly"
        );
        assert!(dir
            .join(if tier == "reap" {
                "zbk-reap.service"
            } else {
                "zbk-run@.service"
            })
            .exists());
    }
}

#[test]
fn the_field_checker_rejects_what_cron_rejects() {
    for (text, field) in [
        ("60", 0),
        ("24", 1),
        ("0", 2),
        ("13", 3),
        ("8", 4),
        ("", 0),
        ("5-1", 0),
        ("*/0", 0),
        ("x", 0),
        ("1/2", 0),
    ] {
        assert!(
            expand(text, field).is_err(),
            "{text:?} accepted as field {field}"
        );
    }
    assert_eq!(
        expand("1,4,7,10", 3).unwrap(),
        BTreeSet::from([1, 4, 7, 10])
    );
    assert_eq!(expand("jan,apr", 3).unwrap(), BTreeSet::from([1, 4]));
    assert_eq!(expand("sun", 4).unwrap(), BTreeSet::from([0]));
    assert_eq!(expand("7", 4).unwrap(), BTreeSet::from([0]));
    assert_eq!(expand("*/15", 0).unwrap(), BTreeSet::from([0, 15, 30, 45]));
    assert_eq!(expand("1-10/3", 2).unwrap(), BTreeSet::from([1, 4, 7, 10]));
}

/// The verify line: a daily `zbk verify --all`, commented out, at a minute of its own, and
/// `zbk-verify.timer` at the same time.
#[test]
fn the_verify_line_is_a_commented_daily_line_with_its_own_minute_and_timer() {
    let text = cron_text();
    let verify: Vec<&str> = text.lines().filter(|l| l.contains("zbk verify")).collect();
    assert_eq!(verify.len(), 1, "one verify line: {verify:?}");
    let line = verify[0].trim_start().strip_prefix('#').unwrap_or_else(|| {
        panic!("the verify line reads every byte of a slice of each client: commented out")
    });
    let (_, jobs) = parse(&format!("{line}\n"));
    let job = &jobs[0];
    assert_eq!(job.command, format!("{GUARD}zbk verify --all"));
    let sets: Vec<BTreeSet<u32>> = (0..5).map(|i| expand(&job.fields[i], i).unwrap()).collect();
    assert_eq!(
        (sets[0].len(), sets[1].len(), &sets[2], &sets[3], &sets[4]),
        (
            1,
            1,
            &expand("*", 2).unwrap(),
            &expand("*", 3).unwrap(),
            &(0..7).collect()
        ),
        "once a day"
    );
    let (_, active) = parse(&text);
    for other in &active {
        assert_ne!(
            other.fields[0], job.fields[0],
            "line {} shares its minute",
            other.line
        );
    }
    let timer = std::fs::read_to_string(packaging().join("systemd/zbk-verify.timer")).unwrap();
    assert!(
        timer.contains(&format!(
            "\nOnCalendar=*-*-* {:02}:{:02}:00\n",
            job.fields[1].parse::<u32>().unwrap(),
            job.fields[0].parse::<u32>().unwrap()
        )),
        "{timer}"
    );
    assert!(timer.contains("\nUnit=zbk-verify.service\n") && timer.contains("\nPersistent="));
    let service = std::fs::read_to_string(packaging().join("systemd/zbk-verify.service")).unwrap();
    assert!(
        service.contains("\nExecStart=/usr/sbin/zbk verify --all\n"),
        "{service}"
    );
}
