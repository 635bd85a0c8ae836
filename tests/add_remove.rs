//! `zbk add` and `zbk remove` end to end: a host's layout, names that are refused, a purge, and a
//! retired host that expires.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use common::{ok, text, Pool};

#[test]
fn add_creates_the_host_layout() {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    pool.add_host("web1.example.com", &src);
    let top = pool.root.join("hosts/web1.example.com");
    assert!(pool.exists(&pool.host_dataset("web1.example.com")));
    for dir in ["c", "d", "l"] {
        assert!(top.join(dir).is_dir(), "{dir}/ missing");
    }
    let config = std::fs::read_to_string(top.join("c/zbk.toml")).unwrap();
    assert!(
        config.contains(&format!("sources = [\"{}/\"]", src.display())),
        "{config}"
    );

    // The default source is the whole client over ssh, with the system paths excluded.
    pool.zbk_expect(0, &["add", "db1"]);
    let config = std::fs::read_to_string(pool.root.join("hosts/db1/c/zbk.toml")).unwrap();
    assert!(config.contains("sources = [\"root@db1:/\"]"), "{config}");
    let exclude = std::fs::read_to_string(pool.root.join("hosts/db1/c/exclude")).unwrap();
    assert!(exclude.contains("/proc/"));

    let out = pool.zbk_expect(2, &["add", "db1"]);
    assert!(text(&out.stderr).contains("already exists"));
}

#[test]
fn bad_host_names_are_refused_and_change_nothing() {
    let pool = Pool::initialised();
    let before = ok("zfs", &["list", "-H", "-r", "-o", "name", &pool.name]);
    for bad in [
        "..", "../etc", "a/b", "Web1", "a b", "a\nb", "-rf", "héllo", "", "x@y",
    ] {
        let out = pool.zbk_expect(2, &["add", "--source", "/tmp/", "--", bad]);
        let err = text(&out.stderr);
        assert!(err.contains("invalid host name"), "{bad:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{bad:?}: one line: {err}"
        );
        for cmd in ["run", "reap", "list"] {
            pool.zbk_expect(2, &[cmd, "--", bad]);
        }
        pool.zbk_expect(2, &["remove", "--expire", "--", bad]);
    }
    let out = pool.zbk_expect(2, &["add", "ok1", "--source", "relative/path"]);
    assert!(text(&out.stderr).contains("--source"));
    assert_eq!(
        ok("zfs", &["list", "-H", "-r", "-o", "name", &pool.name]),
        before
    );
}

#[test]
fn purge_needs_yes_and_destroys_everything() {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    std::fs::write(src.join("f"), "x").unwrap();
    pool.add_host("h", &src);
    pool.zbk_expect(0, &["run", "h"]);
    let out = pool.zbk_expect(2, &["remove", "h", "--purge"]);
    assert!(text(&out.stderr).contains("--yes"));
    assert_eq!(pool.snapshots("h").len(), 1);
    pool.zbk_expect(2, &["remove", "h"]);
    pool.zbk_expect(2, &["remove", "h", "--purge", "--expire", "--yes"]);
    pool.zbk_expect(0, &["remove", "h", "--purge", "--yes"]);
    assert!(!pool.exists(&pool.host_dataset("h")));
    pool.zbk_expect(2, &["remove", "h", "--purge", "--yes"]);
}

#[test]
fn an_expired_host_stops_running_and_goes_with_its_last_snapshot() {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    std::fs::write(src.join("f"), "x").unwrap();
    pool.add_host("old", &src);
    pool.add_host("new", &src);
    pool.zbk_expect(0, &["run", "--all", "--expires", "1s"]);
    pool.zbk_expect(0, &["remove", "old", "--expire"]);
    let (retired, source) = pool.prop(&pool.host_dataset("old"), "zbk:retired");
    assert_eq!(source, "local");
    assert!(retired.ends_with('Z'));
    let out = pool.zbk_expect(0, &["remove", "old", "--expire"]);
    assert!(text(&out.stdout).contains("already retired"));

    // No more runs: skipped with a notice when named, quietly under --all.
    let out = pool.zbk_expect(0, &["run", "old"]);
    assert!(text(&out.stderr).contains("retired"));
    pool.zbk_expect(0, &["run", "--all", "--expires", "1s"]);
    assert_eq!(pool.snapshots("old").len(), 1);
    assert_eq!(pool.snapshots("new").len(), 2);

    // Once expired, the snapshot and then the dataset go: a retired host has no floor.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    pool.zbk_expect(0, &["reap"]);
    assert!(!pool.exists(&pool.host_dataset("old")));
    assert_eq!(
        pool.snapshots("new").len(),
        1,
        "the active host keeps its newest"
    );
}
