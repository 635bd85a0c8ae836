//! `zbk keep` and `zbk restamp` end to end: pins everything honours, and restamping by a changed
//! tier table but never a pin.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use chrono::{DateTime, Duration, Utc};
use common::{full, json, ok, text, three_hosts, time, Pool};

/// The run time a snapshot's name holds: `[failed-]YYYY-MM-DDTHHMMSSZ[-N]`.
fn run_time(snap: &str) -> DateTime<Utc> {
    let stamp = &snap.trim_start_matches("failed-")[..18];
    DateTime::parse_from_str(&format!("{stamp}+0000"), "%Y-%m-%dT%H%M%SZ%z")
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn keep_pins_a_snapshot_and_everything_shows_it() {
    let pool = three_hosts();
    let snap = pool.snapshots("a")[0].clone();
    let name = full(&pool, "a", &snap);
    let before = pool.prop(&name, "zbk:expires");

    // Bad input is refused on one line and changes nothing.
    for (args, why) in [
        (vec!["keep", "a", &snap], "exactly one of"),
        (
            vec!["keep", "a", &snap, "--forever", "--for", "1d"],
            "exactly one of",
        ),
        (
            vec!["keep", "a", &snap, "--for", "soon"],
            "--for: invalid duration",
        ),
        (
            vec!["keep", "a", &snap, "--until", "2001-01-01T00:00:00Z"],
            "--until: 2001-01-01T00:00:00Z is already past",
        ),
        (
            vec!["keep", "a", &snap, "--until", "tomorrow"],
            "--until: invalid time",
        ),
        (
            vec!["keep", "a", "nosuch", "--forever"],
            "SNAPSHOT: a has no snapshot",
        ),
        (vec!["keep", "a", "../../x", "--forever"], "SNAPSHOT:"),
        (vec!["keep", "a", &name, "--forever"], "SNAPSHOT:"),
        (vec!["keep", "zz", &snap, "--forever"], "no such host: zz:"),
        (
            vec!["keep", "../a", &snap, "--forever"],
            "invalid host name",
        ),
    ] {
        let out = pool.zbk_expect(2, &args);
        let err = text(&out.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
    ok("zfs", &["snapshot", &full(&pool, "a", "manual")]);
    let out = pool.zbk_expect(2, &["keep", "a", "manual", "--forever"]);
    assert!(
        text(&out.stderr).contains("not zbk's"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(pool.prop(&name, "zbk:expires"), before);
    assert_eq!(pool.prop(&name, "zbk:pinned").1, "-");

    let out = pool.zbk_expect(0, &["keep", "a", &snap, "--for", "90days"]);
    assert!(
        text(&out.stdout).contains("pinned"),
        "{}",
        text(&out.stdout)
    );
    let (expires, source) = pool.prop(&name, "zbk:expires");
    assert_eq!(source, "local");
    let in_90_days = Utc::now() + Duration::days(90);
    assert!(
        (time(&expires) - in_90_days).num_seconds().abs() < 60,
        "{expires}"
    );
    let (pinned, source) = pool.prop(&name, "zbk:pinned");
    assert_eq!(source, "local");
    assert!((Utc::now() - time(&pinned)).num_seconds() < 60, "{pinned}");

    let rows = json(&pool.zbk_expect(0, &["list", "a", "--json"]));
    assert_eq!(rows[0]["pinned"], true);
    assert_eq!(rows[0]["expires"], expires.as_str());
    assert_eq!(rows[1]["pinned"], false);
    assert!(text(&pool.zbk_expect(0, &["list", "a"]).stdout).contains(" pinned"));
    let rows = json(&pool.zbk_expect(0, &["status", "a", "--json"]));
    assert_eq!(rows[0]["pinned_snapshots"], 1);
    let out = pool.zbk_expect(0, &["reap", "--dry-run", "a"]);
    assert!(
        text(&out.stdout).contains(&format!("keep {name}: pinned by zbk keep until {expires}")),
        "{}",
        text(&out.stdout)
    );

    pool.zbk_expect(
        0,
        &["keep", "a", &snap, "--until", "2030-06-30T12:00:00+02:00"],
    );
    assert_eq!(pool.prop(&name, "zbk:expires").0, "2030-06-30T10:00:00Z");
    pool.zbk_expect(0, &["keep", "a", &snap, "--forever"]);
    assert_eq!(pool.prop(&name, "zbk:expires").0, "never");
    let out = pool.zbk_expect(
        0,
        &["reap", "--dry-run", "--as-of", "2999-01-01T00:00:00Z", "a"],
    );
    assert!(text(&out.stdout).contains(&format!("keep {name}: pinned by zbk keep, never expires")));
}

#[test]
fn restamp_follows_a_changed_tier_table_but_not_pins() {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    std::fs::write(src.join("f"), "x").unwrap();
    pool.add_host("h", &src);
    pool.zbk_expect(0, &["run", "h"]);
    pool.zbk_expect(0, &["run", "h", "--tier", "weekly"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    pool.zbk_expect(0, &["run", "h"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    pool.zbk_expect(0, &["run", "h"]);
    let snaps = pool.snapshots("h");
    assert_eq!(snaps.len(), 4);
    let names: Vec<String> = snaps.iter().map(|s| full(&pool, "h", s)).collect();
    pool.zbk_expect(0, &["keep", "h", &snaps[2], "--forever"]);
    // Stamped with two tiers at once: the longest wins.
    ok("zfs", &["set", "zbk:tier=default,monthly", &names[3]]);
    let stamps = |pool: &Pool| -> Vec<String> {
        names
            .iter()
            .map(|n| pool.prop(n, "zbk:expires").0)
            .collect()
    };
    let before = stamps(&pool);

    // Nothing to do while the table is unchanged, except the two-tier snapshot.
    let out = pool.zbk_expect(0, &["restamp", "--dry-run"]);
    let plan = text(&out.stdout);
    assert!(
        plan.contains(&format!("would restamp {}: ", names[3])),
        "{plan}"
    );
    assert!(
        plan.contains("restamp: would change 1, unchanged 2, skipped 1"),
        "{plan}"
    );
    assert_eq!(stamps(&pool), before);

    let config = pool.root.join("hosts/h/c/zbk.toml");
    let original = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{original}\n[tiers]\ndefault = \"10days\"\nweekly = \"6weeks\"\nmonthly = \"100days\"\n")).unwrap();
    let out = pool.zbk_expect(0, &["restamp", "h", "--dry-run"]);
    assert!(
        text(&out.stdout).contains("would change 3, unchanged 0, skipped 1"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(stamps(&pool), before);
    let out = pool.zbk_expect(0, &["restamp", "h"]);
    assert!(
        text(&out.stdout).contains("changed 3, unchanged 0, skipped 1"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("pinned by zbk keep"),
        "{}",
        text(&out.stderr)
    );

    // From the run time in the name, so a second restamp finds nothing to do.
    let after = stamps(&pool);
    assert_eq!(time(&after[0]), run_time(&snaps[0]) + Duration::days(10));
    assert_eq!(time(&after[1]), run_time(&snaps[1]) + Duration::weeks(6));
    assert_eq!(after[2], "never", "pinned: left alone");
    assert_eq!(time(&after[3]), run_time(&snaps[3]) + Duration::days(100));
    let out = pool.zbk_expect(0, &["restamp"]);
    assert!(
        text(&out.stdout).contains("changed 0, unchanged 3, skipped 1"),
        "{}",
        text(&out.stdout)
    );

    // A broken host config restamps nothing of that host.
    std::fs::write(
        &config,
        format!("{original}\n[tiers]\ndefault = \"soon\"\n"),
    )
    .unwrap();
    let out = pool.zbk_expect(2, &["restamp", "h"]);
    assert!(
        text(&out.stderr).contains("tiers.default"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(stamps(&pool), after);
}

#[test]
fn restamp_keeps_failed_runs_on_the_failed_tier() {
    let pool = Pool::initialised();
    let gone = pool.scratch("gone");
    pool.add_host("h", &gone);
    std::fs::remove_dir(&gone).unwrap();
    pool.zbk_expect(1, &["run", "h", "--tier", "monthly"]);
    let snap = pool.snapshots("h")[0].clone();
    let name = full(&pool, "h", &snap);
    let config = pool.root.join("hosts/h/c/zbk.toml");
    let original = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{original}\n[tiers]\nfailed = \"3days\"\n"),
    )
    .unwrap();
    pool.zbk_expect(0, &["restamp", "h"]);
    assert_eq!(
        time(&pool.prop(&name, "zbk:expires").0),
        run_time(&snap) + Duration::days(3)
    );
}
