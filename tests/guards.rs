//! The guards that keep a bad day from costing good backups: empty or unmounted sources, mass
//! deletions, a full pool, and config or hooks that others than root could change.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use common::{ok, text, Pool};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where a host's copy of a local source lives in its d/.
fn client_copy(pool: &Pool, src: &Path) -> PathBuf {
    pool.root
        .join("hosts/h/d")
        .join(src.strip_prefix("/").unwrap())
}

fn add_config(pool: &Pool, host: &str, extra: &str) {
    let config = pool.root.join(format!("hosts/{host}/c/zbk.toml"));
    let base = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{base}\n{extra}")).unwrap();
}

#[test]
fn an_empty_source_never_becomes_the_newest_good_backup() {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    std::fs::write(src.join("data"), "precious").unwrap();
    pool.add_host("h", &src);
    pool.zbk_expect(0, &["run", "h"]);
    let before = pool.good_rows();
    let copy = client_copy(&pool, &src);
    let kept = common::manifest(&copy);
    // The source's file system is not mounted: an empty directory where the data was.
    std::fs::remove_file(src.join("data")).unwrap();
    let out = pool.zbk_expect(1, &["run", "h"]);
    assert!(
        text(&out.stderr).contains("the source is empty: is it mounted?"),
        "{}",
        text(&out.stderr)
    );
    assert!(pool.snapshots("h").last().unwrap().starts_with("failed-"));
    assert_eq!(pool.good_rows(), before);
    assert_eq!(common::manifest(&copy), kept, "d/ was thinned");
    assert_eq!(
        std::fs::read_to_string(copy.join("data")).unwrap(),
        "precious",
        "d/ was emptied"
    );
    std::fs::write(src.join("data"), "precious").unwrap();
    pool.zbk_expect(0, &["run", "h"]);
}

#[test]
fn a_missing_check_file_stops_the_run() {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    std::fs::write(src.join("data"), "x").unwrap();
    pool.add_host("h", &src);
    pool.zbk_expect(0, &["run", "h"]);
    let before = pool.good_rows();
    let copy = client_copy(&pool, &src);
    let kept = common::manifest(&copy);
    let config = pool.root.join("hosts/h/c/zbk.toml");
    let base = std::fs::read_to_string(&config).unwrap();
    add_config(&pool, "h", "[guard]\ncheck_file = \".mounted\"\n");
    let out = pool.zbk_expect(1, &["run", "h"]);
    assert!(
        text(&out.stderr).contains("guard.check_file .mounted is missing"),
        "{}",
        text(&out.stderr)
    );
    assert!(pool.snapshots("h").last().unwrap().starts_with("failed-"));
    assert_eq!(pool.good_rows(), before);
    assert_eq!(common::manifest(&copy), kept, "d/ was thinned");
    std::fs::write(src.join(".mounted"), "").unwrap();
    pool.zbk_expect(0, &["run", "h"]);

    for bad in ["../etc/passwd", "/etc/passwd"] {
        std::fs::write(
            &config,
            format!("{base}\n[guard]\ncheck_file = \"{bad}\"\n"),
        )
        .unwrap();
        let out = pool.zbk_expect(2, &["run", "h"]);
        assert!(
            text(&out.stderr).contains("guard.check_file"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn a_mass_deletion_fails_the_run_and_keeps_the_last_good_snapshot() {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    for i in 0..100 {
        std::fs::write(src.join(format!("f{i:03}")), format!("{i}")).unwrap();
    }
    pool.add_host("h", &src);
    add_config(&pool, "h", "[guard]\nmax_delete = 0.5\n");
    pool.zbk_expect(0, &["run", "h"]);
    let first = pool.snapshots("h")[0].clone();
    let full = format!("{}@{first}", pool.host_dataset("h"));
    let (files, source) = pool.prop(&full, "zbk:files");
    assert_eq!(source, "local");
    assert!(files.parse::<u32>().unwrap() >= 100, "{files}");
    let before = pool.good_rows();

    for i in 0..80 {
        std::fs::remove_file(src.join(format!("f{i:03}"))).unwrap();
    }
    let out = pool.zbk_expect(1, &["run", "h"]);
    let err = text(&out.stderr);
    let limit = (files.parse::<f64>().unwrap() * 0.5).ceil() as usize;
    assert!(
        err.contains(&format!(
            "more than {limit} files would be deleted (guard.max_delete 0.5"
        )) && err.contains("Nothing was deleted"),
        "{err}"
    );
    assert!(pool.snapshots("h").last().unwrap().starts_with("failed-"));
    assert_eq!(pool.good_rows(), before);
    // The dry run caught it: d/ still holds all that the last good run copied.
    let copy = client_copy(&pool, &src);
    assert_eq!(std::fs::read_dir(&copy).unwrap().count(), 100);

    // A run within the limit goes through.
    for i in 0..79 {
        std::fs::write(src.join(format!("f{i:03}")), "back").unwrap();
    }
    pool.zbk_expect(0, &["run", "h"]);
}

#[test]
fn a_full_pool_stops_runs_but_not_reap() {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    std::fs::write(src.join("data"), "x").unwrap();
    pool.add_host("h", &src);
    pool.zbk_expect(0, &["run", "h", "--expires", "1s"]);
    pool.zbk_expect(0, &["run", "h", "--expires", "1s"]);
    // Incompressible: OpenZFS stores compressed zeros as holes, and the pool would stay empty.
    let ballast = pool.root.join("ballast");
    ok(
        "dd",
        &[
            "if=/dev/urandom",
            &format!("of={}", ballast.display()),
            "bs=1M",
            "count=20",
            "status=none",
        ],
    );
    ok("sync", &[]);
    add_config(&pool, "h", "[guard]\nmax_capacity = 1\n");
    let out = pool.zbk_expect(1, &["run", "h"]);
    let err = text(&out.stderr);
    assert!(
        err.contains("full, over guard.max_capacity 1%") && err.contains("not starting"),
        "{err}"
    );
    assert_eq!(
        pool.snapshots("h").len(),
        2,
        "a refused run takes no snapshot"
    );
    std::thread::sleep(std::time::Duration::from_millis(1200));
    pool.zbk_expect(0, &["reap"]);
    assert_eq!(pool.snapshots("h").len(), 1);
}

#[test]
fn config_and_hooks_writable_by_others_are_refused() {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    std::fs::write(src.join("data"), "x").unwrap();
    pool.add_host("h", &src);
    let global = pool.root.join("etc/zbk.toml");
    std::fs::set_permissions(&global, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = pool.zbk_expect(2, &["run", "h"]);
    let err = text(&out.stderr);
    assert!(
        err.contains(global.to_str().unwrap()) && err.contains("chmod go-w"),
        "{err}"
    );
    std::fs::set_permissions(&global, std::fs::Permissions::from_mode(0o644)).unwrap();
    let host = pool.root.join("hosts/h/c/zbk.toml");
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o646)).unwrap();
    let out = pool.zbk_expect(2, &["run", "h"]);
    let err = text(&out.stderr);
    assert!(
        err.contains(host.to_str().unwrap()) && err.contains("refusing it"),
        "{err}"
    );
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o644)).unwrap();

    let hook = pool.scratch("hooks").join("pre.sh");
    std::fs::write(&hook, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o777)).unwrap();
    add_config(
        &pool,
        "h",
        &format!("[hooks]\npre_run = [\"{}\"]\n", hook.display()),
    );
    let out = pool.zbk_expect(1, &["run", "h"]);
    let err = text(&out.stderr);
    assert!(
        err.contains(hook.to_str().unwrap()) && err.contains("refusing it"),
        "{err}"
    );
    assert!(
        pool.snapshots("h").is_empty(),
        "the hook never ran and nothing was copied"
    );
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    pool.zbk_expect(0, &["run", "h"]);
}

/// Deterministic bytes that no compression or rsync delta can make small: what an encrypted
/// file looks like.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A client tree of `n` files of 1 KiB in a few directories.
fn client_tree(src: &std::path::Path, n: usize) -> Vec<std::path::PathBuf> {
    (0..n)
        .map(|i| {
            let dir = src.join(format!("dir{}", i % 5));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("f{i:04}"));
            std::fs::write(&path, noise(i as u64, 1024)).unwrap();
            path
        })
        .collect()
}

/// The zbk:changes figures of a snapshot: files, created, deleted, changed, bytes.
fn changes(pool: &Pool, host: &str, snap: &str) -> [u64; 5] {
    let (value, source) = pool.prop(
        &format!("{}@{snap}", pool.host_dataset(host)),
        "zbk:changes",
    );
    assert_eq!(source, "local", "{snap}: zbk:changes {value:?}");
    let mut out = [0u64; 5];
    for (slot, key) in out
        .iter_mut()
        .zip(["files=", "created=", "deleted=", "changed=", "bytes="])
    {
        *slot = value
            .split(' ')
            .find_map(|w| w.strip_prefix(key))
            .unwrap_or_else(|| panic!("{key} missing from {value:?}"))
            .parse()
            .unwrap();
    }
    out
}

#[test]
fn a_mass_rewrite_warns_and_pins_the_last_clean_backup() {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    let files = client_tree(&src, 300);
    pool.add_host("h", &src);
    let ds = pool.host_dataset("h");
    let status = |snap: &str| pool.prop(&format!("{ds}@{snap}"), "zbk:status").0;

    // The first run creates everything and never trips the guard.
    pool.zbk_expect(0, &["run", "h"]);
    let first = pool.snapshots("h")[0].clone();
    assert_eq!(status(&first), "ok");
    let [n, created, deleted, changed, _] = changes(&pool, "h", &first);
    // 300 files, 5 directories, and the source's own path, which --relative recreates.
    assert!(n > 305 && n < 320, "{n}");
    assert_eq!((created, deleted, changed), (n, 0, 0));

    // A normal hour: 1 % of the files rewritten, one created, one deleted.
    for path in &files[..3] {
        std::fs::write(path, noise(9, 1100)).unwrap();
    }
    std::fs::write(src.join("dir0/new"), "new").unwrap();
    std::fs::remove_file(&files[299]).unwrap();
    let out = pool.zbk_expect(0, &["run", "h"]);
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let clean = pool.snapshots("h")[1].clone();
    assert_eq!(status(&clean), "ok");
    assert_eq!(
        changes(&pool, "h", &clean),
        [n, 1, 1, 3, 3 * 1100 + 3],
        "files, created, deleted, changed, bytes"
    );
    assert_eq!(pool.prop(&format!("{ds}@{clean}"), "zbk:pinned").1, "-");
    let clean_expires = pool.prop(&format!("{ds}@{clean}"), "zbk:expires").0;

    // Ransomware: 80 % of the files rewritten with random bytes (and a header).
    for (i, path) in files[..240].iter().enumerate() {
        std::fs::write(path, noise(1000 + i as u64, 1040)).unwrap();
    }
    let out = pool.zbk_expect(0, &["run", "h"]);
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "mass change: 240 of {n} files changed and 0 deleted ({:.0}%), over guard.max_change 0.5",
            240.0 * 100.0 / n as f64
        )) && err.contains(&format!("Kept h@{clean}, the last backup before it")),
        "{err}"
    );
    let encrypted = pool.snapshots("h")[2].clone();
    assert_eq!(status(&encrypted), "warning");
    assert!(pool
        .prop(&format!("{ds}@{encrypted}"), "zbk:mass-change")
        .0
        .starts_with(&format!("mass change: 240 of {n}")));

    // The clean one is pinned for 30 days from now, and says why; the first is not.
    let now = chrono::Utc::now();
    let (expires, source) = pool.prop(&format!("{ds}@{clean}"), "zbk:expires");
    assert_eq!(source, "local");
    let expires = chrono::DateTime::parse_from_rfc3339(&expires).unwrap();
    assert!(
        expires >= now + chrono::Duration::days(30) - chrono::Duration::minutes(2),
        "{expires} (was {clean_expires})"
    );
    let reason = pool.prop(&format!("{ds}@{clean}"), "zbk:pin-reason").0;
    assert!(reason.starts_with("mass change at "), "{reason}");
    assert_eq!(pool.prop(&format!("{ds}@{first}"), "zbk:pinned").1, "-");
    let list = text(&pool.zbk_expect(0, &["list", "h"]).stdout);
    let row = list.lines().find(|l| l.contains(&clean)).unwrap();
    assert!(row.contains("pinned: mass change at "), "{list}");

    // The check warns, and Prometheus has the time.
    let out = pool.zbk_expect(1, &["check", "h"]);
    assert!(
        text(&out.stdout).starts_with("ZBK WARNING - h: ")
            && text(&out.stdout).contains("mass change at"),
        "{}",
        text(&out.stdout)
    );
    let prom = text(&pool.zbk_expect(0, &["status", "--prometheus"]).stdout);
    let stamp = prom
        .lines()
        .find_map(|l| l.strip_prefix("zbk_mass_change_timestamp_seconds{host=\"h\"} "))
        .unwrap();
    assert!(stamp.parse::<f64>().unwrap() > 0.0, "{prom}");

    // The next run changes little: it is good again, and does not pin the warning one.
    let out = pool.zbk_expect(0, &["run", "h"]);
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let last = pool.snapshots("h")[3].clone();
    assert_eq!(status(&last), "ok");
    assert_eq!(pool.prop(&format!("{ds}@{encrypted}"), "zbk:pinned").1, "-");

    // Eight days on, the other hourlies go; the clean one stays (the newest by min_keep).
    let as_of = (now + chrono::Duration::days(8))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let plan = text(&pool.zbk_expect(0, &["reap", "--as-of", &as_of]).stdout);
    let destroyed: Vec<&str> = plan
        .lines()
        .filter_map(|l| l.strip_prefix("destroy "))
        .filter_map(|l| l.split(':').next())
        .collect();
    assert_eq!(
        destroyed,
        [format!("{ds}@{first}"), format!("{ds}@{encrypted}")],
        "{plan}"
    );
    assert!(
        plan.contains(&format!("keep {ds}@{clean}: pinned")),
        "{plan}"
    );

    // An admin who has looked acknowledges with restamp; the pin stays, the warning goes.
    let out = pool.zbk_expect(0, &["restamp", "h"]);
    assert!(
        text(&out.stdout).contains("acknowledged: mass change at"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(&pool.prop(&format!("{ds}@{clean}"), "zbk:expires").0)
            .unwrap(),
        expires
    );
    pool.zbk_expect(0, &["check", "h"]);
    let json: serde_json::Value =
        serde_json::from_slice(&pool.zbk_expect(0, &["status", "--json", "h"]).stdout).unwrap();
    assert_eq!(json[0]["mass_change_time"], serde_json::Value::Null);
    assert_eq!(json[0]["last_run_changes"]["files"], n);
}

#[test]
fn max_change_none_turns_the_guard_off_and_small_hosts_are_not_judged() {
    let pool = Pool::initialised();
    let big = pool.scratch("big");
    let big_files = client_tree(&big, 250);
    let small = pool.scratch("small");
    let small_files = client_tree(&small, 50);
    pool.add_host("off", &big);
    add_config(&pool, "off", "[guard]\nmax_change = \"none\"\n");
    pool.add_host("small", &small);
    pool.zbk_expect(0, &["run", "off", "small"]);
    for (i, path) in big_files.iter().chain(&small_files).enumerate() {
        std::fs::write(path, noise(5000 + i as u64, 1030)).unwrap();
    }
    let out = pool.zbk_expect(0, &["run", "off", "small"]);
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    for host in ["off", "small"] {
        let snap = pool.snapshots(host)[1].clone();
        let ds = pool.host_dataset(host);
        assert_eq!(pool.prop(&format!("{ds}@{snap}"), "zbk:status").0, "ok");
        assert_eq!(
            pool.prop(&format!("{ds}@{}", pool.snapshots(host)[0]), "zbk:pinned")
                .1,
            "-"
        );
    }
}
