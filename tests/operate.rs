//! End-to-end tests of operating zbk on a real zfs-fuse pool: status, the Nagios check, keep,
//! restamp, and what reap says about pinned snapshots.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use chrono::{DateTime, Duration, Utc};
use common::{ok, text, Pool};
use serde_json::Value;

/// A pool with hosts `a` (one good run), `b` (no run) and `c` (only a failed run).
fn three_hosts() -> Pool {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    std::fs::write(src.join("f"), "x").unwrap();
    pool.add_host("a", &src);
    pool.add_host("b", &src);
    let gone = pool.scratch("gone");
    pool.add_host("c", &gone);
    std::fs::remove_dir(&gone).unwrap();
    pool.zbk_expect(0, &["run", "a"]);
    pool.zbk_expect(1, &["run", "c"]);
    pool
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stdout)))
}

fn time(v: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v).unwrap().with_timezone(&Utc)
}

/// The run time a snapshot's name holds: `[failed-]YYYY-MM-DDTHHMMSSZ[-N]`.
fn run_time(snap: &str) -> DateTime<Utc> {
    let stamp = &snap.trim_start_matches("failed-")[..18];
    DateTime::parse_from_str(&format!("{stamp}+0000"), "%Y-%m-%dT%H%M%SZ%z")
        .unwrap()
        .with_timezone(&Utc)
}

fn full(pool: &Pool, host: &str, snap: &str) -> String {
    format!("{}@{snap}", pool.host_dataset(host))
}

#[test]
fn status_shows_every_host_as_a_table_json_and_metrics() {
    let pool = three_hosts();
    let a_snap = pool.snapshots("a")[0].clone();
    let out = pool.zbk_expect(0, &["status"]);
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("HOST") && lines[0].contains("LAST GOOD"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("a ") && lines[1].contains(&a_snap),
        "{table}"
    );
    assert!(
        lines[1].contains("active") && lines[1].contains(" ok "),
        "{table}"
    );
    assert!(
        lines[3].starts_with("c ") && lines[3].contains("failed"),
        "{table}"
    );

    let rows = json(&pool.zbk_expect(0, &["status", "--json"]));
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let (a, b, c) = (&rows[0], &rows[1], &rows[2]);
    assert_eq!(a["host"], "a");
    assert_eq!(a["last_good_snapshot"], a_snap.as_str());
    assert_eq!(a["last_run_status"], "ok");
    assert_eq!(a["consecutive_failures"], 0);
    assert_eq!(a["snapshots"], 1);
    assert_eq!(a["retired"], false);
    assert!(a["last_good_age_seconds"].as_i64().unwrap() < 120);
    assert!(a["used_bytes"].as_u64().unwrap() > 0);
    assert!(a["snapshot_bytes"].is_u64());
    let (created, _) = pool.prop(&full(&pool, "a", &a_snap), "creation");
    assert_eq!(
        time(a["last_good_time"].as_str().unwrap()).timestamp(),
        created.parse::<i64>().unwrap()
    );
    assert!(b["last_good_snapshot"].is_null() && b["last_run_status"].is_null());
    assert_eq!(b["snapshots"], 0);
    assert!(c["last_good_snapshot"].is_null());
    assert_eq!(c["last_run_status"], "failed");
    assert_eq!(c["consecutive_failures"], 1);

    let out = pool.zbk_expect(0, &["status", "--prometheus", "a", "c"]);
    let metrics = text(&out.stdout);
    for want in [
        format!("zbk_last_good_backup_timestamp_seconds{{host=\"a\"}} {created}"),
        "zbk_last_good_backup_timestamp_seconds{host=\"c\"} 0".to_string(),
        "zbk_last_run_status{host=\"a\"} 0".to_string(),
        "zbk_last_run_status{host=\"c\"} 2".to_string(),
        "zbk_consecutive_failures{host=\"c\"} 1".to_string(),
        "zbk_snapshots{host=\"a\"} 1".to_string(),
    ] {
        assert!(
            metrics.lines().any(|l| l == want),
            "{want} not in\n{metrics}"
        );
    }
    assert!(!metrics.contains("host=\"b\""), "{metrics}");
    assert!(
        metrics.contains("# TYPE zbk_snapshot_bytes gauge"),
        "{metrics}"
    );

    pool.zbk_expect(2, &["status", "--json", "--prometheus"]);
    pool.zbk_expect(2, &["status", "nosuchhost"]);
}

#[test]
fn check_speaks_nagios() {
    let pool = three_hosts();
    let out = pool.zbk_expect(2, &["check"]);
    let line = text(&out.stdout);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.starts_with("ZBK CRITICAL - b: no backup yet; c: no good backup, 1 failed run"),
        "{line}"
    );
    assert!(
        line.contains("| 'a age'=") && line.contains("'b age'=U;93600;180000;0"),
        "{line}"
    );

    let out = pool.zbk_expect(0, &["check", "a"]);
    assert!(
        text(&out.stdout).starts_with("ZBK OK - 1 host backed up in time |"),
        "{}",
        text(&out.stdout)
    );

    // Thresholds from the command line, then from the host's config.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let out = pool.zbk_expect(1, &["check", "a", "--warn", "1s", "--crit", "1h"]);
    assert!(
        text(&out.stdout).starts_with("ZBK WARNING - a: last good backup"),
        "{}",
        text(&out.stdout)
    );
    let config = pool.root.join("hosts/a/c/zbk.toml");
    let original = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{original}\n[check]\nwarn = \"1s\"\ncrit = \"2s\"\n"),
    )
    .unwrap();
    let out = pool.zbk_expect(2, &["check", "a"]);
    assert!(
        text(&out.stdout).contains("critical after 2s"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stdout).contains("'a age'="),
        "{}",
        text(&out.stdout)
    );

    // What stops the check is UNKNOWN, on one line.
    std::fs::write(&config, format!("{original}\n[check]\nwarn = \"soon\"\n")).unwrap();
    let out = pool.zbk_expect(3, &["check", "a"]);
    assert!(
        text(&out.stdout).contains("check.warn"),
        "{}",
        text(&out.stdout)
    );
    std::fs::write(&config, &original).unwrap();
    let out = pool.zbk_expect(3, &["check", "--warn", "soon"]);
    assert!(
        text(&out.stdout).starts_with("ZBK UNKNOWN - --warn: invalid duration"),
        "{}",
        text(&out.stdout)
    );
    pool.zbk_expect(3, &["check", "nosuchhost"]);
    let global = pool.root.join("etc/zbk.toml");
    std::fs::write(&global, "dataset = \"nosuchpool\"\n").unwrap();
    let out = pool.zbk_expect(3, &["check"]);
    let line = text(&out.stdout);
    assert!(
        line.starts_with("ZBK UNKNOWN - cannot list the hosts tree"),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1, "{line}");
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

#[test]
fn doctor_finds_what_breaks_and_says_how_to_fix_it() {
    let sshd = common::sshd::Sshd::start();
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    std::fs::write(src.join("f"), "x").unwrap();
    pool.add_host("local", &src);
    pool.zbk_expect(
        0,
        &[
            "add",
            "remote",
            "--source",
            &format!("root@127.0.0.1:{}/", src.display()),
        ],
    );
    let config = pool.root.join("hosts/remote/c/zbk.toml");
    let original = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{original}{}", sshd.zbk_config())).unwrap();

    let out = pool.zbk_expect(0, &["doctor", "--ssh"]);
    let report = text(&out.stdout);
    assert!(report.lines().all(|l| l.starts_with("ok: ")), "{report}");
    for want in [
        "ok: zfs is ",
        "ok: rsync is ",
        "ok: ssh is ",
        "zbk.toml is valid",
        "is writable",
        "ok: local: dataset mounted",
        "ok: remote: root@127.0.0.1 answers over ssh",
    ] {
        assert!(report.contains(want), "{want}: {report}");
    }
    // zfs-fuse keeps neither ACLs nor xattrs: said once, for every host. OpenZFS keeps both
    // where zbk init set the dataset up, and nothing is said.
    let left_out: Vec<&str> = report
        .lines()
        .filter(|l| l.contains("out of rsync's arguments"))
        .collect();
    let expected: &[&str] = match common::flavour() {
        common::Flavour::ZfsFuse => &["ok: zbk run leaves --acls --xattrs out of rsync's arguments for every host: zfs-fuse cannot store ACLs or extended attributes (see zbk-run(8))"],
        common::Flavour::OpenZfs => &[],
    };
    assert_eq!(left_out, expected, "{report}");
    pool.zbk_expect(0, &["run", "--all"]);

    // A client that does not answer, a broken host config, an unmounted host and a clone left
    // by a killed restore: each one line with its fix, and exit 1.
    std::fs::write(
        &config,
        format!("{original}\n[ssh]\nport = 1\nconnect_timeout = \"2s\"\n"),
    )
    .unwrap();
    std::fs::write(pool.root.join("hosts/local/c/zbk.toml"), "sources = []\n").unwrap();
    ok(
        "zfs",
        &[
            "create",
            "-o",
            "mountpoint=none",
            "-o",
            "canmount=off",
            &format!("{}/restore", pool.name),
        ],
    );
    let snap = format!(
        "{}@{}",
        pool.host_dataset("local"),
        pool.snapshots("local")[0]
    );
    let stale = format!("{}/restore/local-999999999-0", pool.name);
    ok("zfs", &["clone", "-o", "mountpoint=none", &snap, &stale]);
    let out = pool.zbk_expect(1, &["doctor", "--ssh"]);
    let report = text(&out.stdout);
    let problems: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("problem: "))
        .collect();
    assert_eq!(problems.len(), 3, "{report}");
    assert!(problems.iter().all(|l| l.contains("; fix: ")), "{report}");
    assert!(problems[0].contains("sources: empty"), "{report}");
    assert!(
        problems[1].contains("remote: `") && problems[1].contains("authorized_keys"),
        "{report}"
    );
    assert!(
        problems[2].contains(&stale) && problems[2].ends_with(&format!("fix: zfs destroy {stale}")),
        "{report}"
    );
    ok("zfs", &["destroy", &stale]);

    ok("zfs", &["unmount", &pool.host_dataset("local")]);
    let out = pool.zbk_expect(1, &["doctor"]);
    assert!(
        text(&out.stdout).contains(&format!("fix: zfs mount {}", pool.host_dataset("local"))),
        "{}",
        text(&out.stdout)
    );
    let serial = common::mount_lock();
    ok("zfs", &["mount", &pool.host_dataset("local")]);
    drop(serial);

    std::fs::write(pool.root.join("etc/zbk.toml"), "dataset = 5\n").unwrap();
    let out = pool.zbk_expect(1, &["doctor"]);
    assert!(
        text(&out.stdout).contains("problem: ") && text(&out.stdout).contains("dataset"),
        "{}",
        text(&out.stdout)
    );
}

/// Anyone with `zfs snapshot -o` can stamp a snapshot of their own with an expired
/// zbk:expires: reap destroys only names zbk makes, keeps the rest and says why.
#[test]
fn reap_destroys_only_snapshot_names_zbk_makes() {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    std::fs::write(src.join("f"), "x").unwrap();
    pool.add_host("a", &src);
    let ds = pool.host_dataset("a");
    let stamped = |name: &str| {
        ok(
            "zfs",
            &[
                "snapshot",
                "-o",
                "zbk:expires=2000-01-01T00:00:00Z",
                "-o",
                "zbk:tier=default",
                "-o",
                "zbk:status=ok",
                &format!("{ds}@{name}"),
            ],
        );
    };
    stamped("2001-01-01T000000Z");
    stamped("by-hand");
    stamped("2001-01-01T000000Z-x");
    // The newest good backup, which the floor keeps, is a run's.
    pool.zbk_expect(0, &["run", "a"]);
    let before = pool.snapshots("a");
    assert_eq!(before.len(), 4, "{before:?}");

    let out = pool.zbk_expect(0, &["reap", "-v"]);
    let err = text(&out.stderr);
    let left = pool.snapshots("a");
    assert!(
        !left.contains(&"2001-01-01T000000Z".to_string()),
        "{left:?}"
    );
    for foreign in ["by-hand", "2001-01-01T000000Z-x"] {
        assert!(
            left.contains(&foreign.to_string()),
            "{foreign} destroyed: {left:?}"
        );
        assert!(
            err.lines().any(|l| l.contains(&format!("{ds}@{foreign}"))
                && l.contains("not a snapshot name zbk makes")),
            "{foreign}: {err}"
        );
    }
    assert_eq!(left.len(), 3, "{left:?}");
}
