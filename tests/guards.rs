//! The guards that keep a bad day from costing good backups: empty or unmounted sources, mass
//! deletions, a full pool, and config or hooks that others than root could change.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use common::{ok, text, Pool};
use std::os::unix::fs::PermissionsExt;

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
    std::fs::remove_file(src.join("data")).unwrap();
    let out = pool.zbk_expect(1, &["run", "h"]);
    assert!(
        text(&out.stderr).contains("the source is empty: is it mounted?"),
        "{}",
        text(&out.stderr)
    );
    assert!(pool.snapshots("h").last().unwrap().starts_with("failed-"));
    assert_eq!(pool.good_rows(), before);
    let copy = pool
        .root
        .join("hosts/h/d")
        .join(src.strip_prefix("/").unwrap());
    assert_eq!(
        std::fs::read_to_string(copy.join("data")).unwrap(),
        "precious",
        "d/ was emptied"
    );
}

#[test]
fn a_missing_check_file_stops_the_run() {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    std::fs::write(src.join("data"), "x").unwrap();
    pool.add_host("h", &src);
    let config = pool.root.join("hosts/h/c/zbk.toml");
    let base = std::fs::read_to_string(&config).unwrap();
    add_config(&pool, "h", "[guard]\ncheck_file = \".mounted\"\n");
    let out = pool.zbk_expect(1, &["run", "h"]);
    assert!(
        text(&out.stderr).contains("guard.check_file .mounted is missing"),
        "{}",
        text(&out.stderr)
    );
    assert!(pool.snapshots("h")[0].starts_with("failed-"));
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
    let copy = pool
        .root
        .join("hosts/h/d")
        .join(src.strip_prefix("/").unwrap());
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
    assert!(
        text(&out.stderr).contains("full, over guard.max_capacity 1%"),
        "{}",
        text(&out.stderr)
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

    let hook = pool.scratch("hooks").join("pre.sh");
    std::fs::write(&hook, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o777)).unwrap();
    add_config(
        &pool,
        "h",
        &format!("[hooks]\npre_run = [\"{}\"]\n", hook.display()),
    );
    let out = pool.zbk_expect(1, &["run", "h"]);
    assert!(
        text(&out.stderr).contains(hook.to_str().unwrap()),
        "{}",
        text(&out.stderr)
    );
    assert!(
        pool.snapshots("h").is_empty(),
        "the hook never ran and nothing was copied"
    );
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    pool.zbk_expect(0, &["run", "h"]);
}
