//! `zbk doctor` end to end: what breaks installs, found and named with its fix.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use common::{ok, text, Pool};

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

    // rsync.io_timeout = "none" works, but a stalled client would then hold its host for
    // good: a warning, which does not fail doctor.
    let local = pool.root.join("hosts/local/c/zbk.toml");
    let local_text = std::fs::read_to_string(&local).unwrap();
    std::fs::write(
        &local,
        format!("{local_text}\n[rsync]\nio_timeout = \"none\"\n"),
    )
    .unwrap();
    let out = pool.zbk_expect(0, &["doctor"]);
    let warnings: Vec<String> = text(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .map(str::to_string)
        .collect();
    assert_eq!(warnings.len(), 1, "{}", text(&out.stdout));
    assert!(
        warnings[0].contains("hosts/local/c/zbk.toml: rsync.io_timeout = \"none\"")
            && warnings[0].contains("; fix: "),
        "{warnings:?}"
    );
    std::fs::write(&local, local_text).unwrap();

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
