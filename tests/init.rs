//! `zbk init` end to end on a real pool: the hosts dataset and the config, made once, and the
//! datasets it refuses.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use common::{text, Pool};

#[test]
fn init_creates_the_hosts_dataset_and_config_once() {
    let pool = Pool::new();
    let out = pool.zbk_expect(
        0,
        &[
            "init",
            &pool.name,
            "--compression",
            "gzip",
            "--dedup",
            "off",
        ],
    );
    assert!(
        text(&out.stdout).contains("created"),
        "{}",
        text(&out.stdout)
    );
    let hosts = format!("{}/hosts", pool.name);
    assert_eq!(
        pool.prop(&hosts, "compression"),
        ("gzip".into(), "local".into())
    );
    assert_eq!(pool.prop(&hosts, "dedup"), ("off".into(), "local".into()));
    let config = std::fs::read_to_string(pool.root.join("etc/zbk.toml")).unwrap();
    assert!(config.contains(&format!("dataset = \"{}\"", pool.name)));

    let out = pool.zbk_expect(0, &["init", &pool.name]);
    assert!(
        text(&out.stdout).contains("nothing changed"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(pool.root.join("etc/zbk.toml")).unwrap(),
        config
    );
}

#[test]
fn init_refuses_a_missing_or_misplaced_dataset() {
    let pool = Pool::new();
    let out = pool.zbk_expect(2, &["init", &format!("{}/nope", pool.name)]);
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );
    let elsewhere = pool.scratch("elsewhere");
    let out = common::sh(
        env!("CARGO_BIN_EXE_zbk"),
        &["--root", elsewhere.to_str().unwrap(), "init", &pool.name],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not at the root"),
        "{}",
        text(&out.stderr)
    );
    assert!(!pool.exists(&format!("{}/hosts", pool.name)));
    let out = pool.zbk_expect(2, &["init", &pool.name, "--dedup", "-o"]);
    assert!(
        text(&out.stderr).contains("--dedup"),
        "{}",
        text(&out.stderr)
    );
}
