//! `zbk list`, `zbk status` and `zbk check` end to end: every host and snapshot as a table, JSON,
//! metrics and a Nagios line.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use common::{full, json, text, three_hosts, time, Pool};

#[test]
fn list_shows_every_snapshot_and_hosts_without_one() {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    std::fs::write(src.join("f"), "x").unwrap();
    pool.add_host("a", &src);
    pool.add_host("b", &src);
    pool.zbk_expect(0, &["run", "a", "--tier", "monthly"]);
    let out = pool.zbk_expect(0, &["list"]);
    let table = text(&out.stdout);
    assert!(table.starts_with("HOST"), "{table}");
    assert!(
        table.contains("monthly") && table.contains("(in 1y"),
        "{table}"
    );
    assert!(table.lines().any(|l| l.starts_with("b ")), "{table}");

    let out = pool.zbk_expect(0, &["list", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let a = &rows[0];
    assert_eq!(a["host"], "a");
    assert_eq!(a["tier"], "monthly");
    assert_eq!(a["status"], "ok");
    assert_eq!(a["retired"], false);
    assert!(a["expires"].as_str().unwrap().ends_with('Z'));
    assert!(a["created"].as_str().unwrap().ends_with('Z'));
    assert!(a["used_bytes"].is_u64());
    assert_eq!(rows[1]["host"], "b");
    assert!(rows[1]["snapshot"].is_null());

    let out = pool.zbk_expect(0, &["list", "b", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    pool.zbk_expect(2, &["list", "nosuchhost"]);
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
