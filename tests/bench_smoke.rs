//! Smoke test of the benchmark harness (tests/bench/bench.sh) in its tiniest mode: it must run
//! end to end against real zfs-fuse pools and print a table with a row for every contender.
//! No timing is asserted: the figures are for people, and this machine's load is anyone's.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

use std::process::Command;

#[test]
fn the_harness_runs_and_reports_every_contender() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_file = dir.path().join("results.md");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bench/bench.sh");
    let out = Command::new("bash")
        .arg(script)
        .args([
            "--quick",
            "--files",
            "200",
            "--cycles",
            "2",
            "--large-mib",
            "4",
            "--reap-hosts",
            "2",
            "--reap-snaps",
            "10",
            "--list-hosts",
            "2",
            "--list-snaps",
            "25",
            "--out",
        ])
        .arg(&out_file)
        // The binary under test, so the harness does not build a release one.
        .env("ZBK_BIN", env!("CARGO_BIN_EXE_zbk"))
        .env("TMPDIR", dir.path())
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench.sh failed (it needs root and zfs-fuse: run tests/run.sh):\n{stdout}\n{stderr}"
    );
    let written = std::fs::read_to_string(&out_file).expect("results file");
    assert_eq!(written.trim(), stdout.trim(), "stdout and the file differ");
    for row in [
        "| zbk run |",
        "| zbk run, rsync args without --acls --xattrs",
        "| floor: rsync --inplace --no-whole-file && zfs snapshot |",
        "| rsnapshot link_dest 1 |",
        "| rsnapshot cp -al (link_dest 0) |",
        "| zbk reap |",
        "| naive loop: zfs get + zfs destroy per snapshot |",
        "| floor: raw zfs destroy loop on the known names |",
        "| reference: the same destroys, 4 in parallel (xargs -P 4) |",
        "| zbk list --json |",
        "| zbk status |",
        "| floor: one zfs get -H -p -r of the same properties |",
        "| zbk per cycle within 5 % of the floor |",
    ] {
        assert!(
            written.contains(row),
            "no row {row:?} in the table:\n{written}"
        );
    }
}
