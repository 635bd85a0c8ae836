//! `zbk reap` end to end: the expired go, the newest good stays, failed runs never count, and only
//! snapshot names zbk makes are ever destroyed.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use common::{ok, text, Pool};

#[test]
fn reap_destroys_the_expired_keeps_the_newest_good_and_ignores_the_rest() {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    std::fs::write(src.join("f"), "x").unwrap();
    pool.add_host("h", &src);
    let ds = pool.host_dataset("h");
    for _ in 0..3 {
        pool.zbk_expect(0, &["run", "h", "--expires", "1s"]);
    }
    let zbk_snaps = pool.snapshots("h");
    assert_eq!(zbk_snaps.len(), 3);
    // A foreign snapshot, and an expiry inherited from the host dataset: neither is zbk's.
    ok("zfs", &["snapshot", &format!("{ds}@manual")]);
    ok("zfs", &["set", "zbk:expires=2000-01-01T00:00:00Z", &ds]);
    assert_eq!(
        pool.prop(&format!("{ds}@manual"), "zbk:expires").1,
        format!("inherited from {ds}")
    );
    // A foreign snapshot outside the hosts tree, stamped as expired.
    ok(
        "zfs",
        &[
            "snapshot",
            "-o",
            "zbk:expires=2000-01-01T00:00:00Z",
            &format!("{}@outside", pool.name),
        ],
    );

    // As of a past moment nothing has expired; --as-of only ever previews.
    let out = pool.zbk_expect(0, &["reap", "--as-of", "2000-01-01T00:00:00Z"]);
    assert!(
        !text(&out.stdout).lines().any(|l| l.starts_with("destroy ")),
        "{}",
        text(&out.stdout)
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let out = pool.zbk_expect(0, &["reap", "--as-of", "2099-01-01T00:00:00Z"]);
    assert_eq!(
        text(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("destroy "))
            .count(),
        2
    );
    assert_eq!(pool.snapshots("h").len(), 4, "--as-of destroyed something");

    let out = pool.zbk_expect(0, &["reap", "--dry-run"]);
    let plan = text(&out.stdout);
    let destroys: Vec<&str> = plan.lines().filter(|l| l.starts_with("destroy ")).collect();
    assert_eq!(destroys.len(), 2, "{plan}");
    assert!(
        plan.contains(&format!(
            "keep {ds}@{}: expired, kept as one of the newest good",
            zbk_snaps[2]
        )),
        "{plan}"
    );
    assert!(
        plan.contains(&format!("keep {ds}@manual: no zbk:expires of its own")),
        "{plan}"
    );
    assert_eq!(pool.snapshots("h").len(), 4, "dry run destroyed something");

    let out = pool.zbk_expect(0, &["reap"]);
    assert!(
        out.stdout.is_empty(),
        "reap is silent: {}",
        text(&out.stdout)
    );
    assert_eq!(
        pool.snapshots("h"),
        [zbk_snaps[2].clone(), "manual".to_string()]
    );
    assert!(pool.exists(&format!("{}@outside", pool.name)));

    // Idempotent: a second reap finds nothing more.
    let out = pool.zbk_expect(0, &["reap", "-v"]);
    assert!(
        text(&out.stdout).contains("destroyed 0"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(pool.snapshots("h").len(), 2);
}

#[test]
fn failed_runs_never_count_as_the_last_good_backup() {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    std::fs::write(src.join("f"), "x").unwrap();
    pool.add_host("h", &src);
    // A host override: failed snapshots here live one second.
    let config = pool.root.join("hosts/h/c/zbk.toml");
    let text_ = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text_}\n[tiers]\nfailed = \"1s\"\n")).unwrap();
    pool.zbk_expect(0, &["run", "h", "--expires", "1s"]);
    let good = pool.snapshots("h")[0].clone();
    std::fs::remove_file(src.join("f")).unwrap();
    std::fs::remove_dir(&src).unwrap();
    for _ in 0..2 {
        pool.zbk_expect(1, &["run", "h"]);
    }
    assert_eq!(pool.snapshots("h").len(), 3);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    pool.zbk_expect(0, &["reap"]);
    assert_eq!(pool.snapshots("h"), [good]);
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
