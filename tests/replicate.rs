//! End-to-end tests of `zbk replicate` between two file-backed zfs-fuse pools: full and
//! incremental sends, holds against the source's reap, the target's own reap, an interrupted
//! stream, copies changed by hand, and refused input.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use common::{manifest, ok, sample_tree, sh, text, Pool};
use std::path::Path;
use std::process::{Command, Output};

const HOST: &str = "web1.example.com";

/// A source pool with one host backed up from a sample tree, and the tree's directory.
fn source_with_host() -> (Pool, std::path::PathBuf) {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    sample_tree(&src);
    pool.add_host(HOST, &src);
    (pool, src)
}

fn run(pool: &Pool, extra: &[&str]) {
    let mut args = vec!["run", HOST];
    args.extend_from_slice(extra);
    pool.zbk_expect(0, &args);
}

fn replicate(pool: &Pool, to: &str, code: i32) -> Output {
    pool.zbk_expect(code, &["replicate", "--to", to, "-v"])
}

/// Insists that a verbose replicate of HOST sent `n` snapshots.
fn assert_sent(out: &Output, n: usize) {
    let shown = text(&out.stdout);
    let noun = if n == 1 { "snapshot" } else { "snapshots" };
    assert!(
        shown.contains(&format!("{HOST}: sent {n} {noun} ")),
        "{shown}"
    );
}

/// The copy's snapshots, oldest first.
fn copies(target: &Pool, host: &str) -> Vec<String> {
    target.snapshots(host)
}

fn userrefs(pool: &Pool, snapshot: &str) -> String {
    pool.prop(
        &format!("{}@{snapshot}", pool.host_dataset(HOST)),
        "userrefs",
    )
    .0
}

/// The snapshot's tree as a read-only clone shows it, compared with `expected`.
fn assert_copy_matches(target: &Pool, snapshot: &str, expected: &Path) {
    let mnt = target.scratch("clone");
    let clone = format!("{}/restore", target.name);
    // The clone mounts: see common::mount_lock.
    let serial = common::mount_lock();
    ok(
        "zfs",
        &[
            "clone",
            "-o",
            &format!("mountpoint={}", mnt.display()),
            &format!("{}@{snapshot}", target.host_dataset(HOST)),
            &clone,
        ],
    );
    drop(serial);
    let got = manifest(&mnt.join(format!("d{}", expected.display())));
    assert_eq!(
        got,
        manifest(expected),
        "the copy's d/ differs from the source"
    );
    assert!(mnt.join("c/zbk.toml").is_file(), "c/ travels with the data");
    assert!(mnt.join("l").is_dir(), "l/ travels with the data");
    for _ in 0..20 {
        if sh("zfs", &["destroy", &clone]).status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

#[test]
fn first_a_full_copy_then_incrementals_with_the_properties_received() {
    let (src, tree) = source_with_host();
    run(&src, &[]);
    std::thread::sleep(std::time::Duration::from_secs(1));
    run(&src, &["--tier", "weekly"]);
    let dst = Pool::new();

    let out = replicate(&src, &dst.name, 0);
    assert_sent(&out, 2);
    let snaps = src.snapshots(HOST);
    assert_eq!(copies(&dst, HOST), snaps, "the whole history is copied");
    let hosts = format!("{}/hosts", dst.name);
    assert_eq!(
        dst.prop(&hosts, "mountpoint"),
        ("none".into(), "local".into())
    );
    let copy = dst.host_dataset(HOST);
    assert_eq!(
        dst.prop(&copy, "mounted").0,
        "no",
        "copies are never mounted"
    );
    let newest = format!("{copy}@{}", snaps[1]);
    let source_newest = format!("{}@{}", src.host_dataset(HOST), snaps[1]);
    for prop in ["zbk:expires", "zbk:tier", "zbk:status"] {
        let (value, source) = dst.prop(&newest, prop);
        assert_eq!(source, "received", "{prop}");
        assert_eq!(value, src.prop(&source_newest, prop).0, "{prop}");
    }
    assert_eq!(dst.prop(&newest, "zbk:tier").0, "weekly");
    assert_eq!(
        userrefs(&src, &snaps[1]),
        "1",
        "the common snapshot is held"
    );
    assert_eq!(userrefs(&src, &snaps[0]), "0");
    assert_copy_matches(&dst, &snaps[1], &tree);

    // Nothing new: nothing sent, nothing changed.
    let out = replicate(&src, &dst.name, 0);
    assert!(
        text(&out.stdout).contains("up to date"),
        "{}",
        text(&out.stdout)
    );

    std::fs::write(tree.join("new-file"), "new\n").unwrap();
    std::thread::sleep(std::time::Duration::from_secs(1));
    run(&src, &[]);
    let out = replicate(&src, &dst.name, 0);
    assert_sent(&out, 1);
    let snaps = src.snapshots(HOST);
    assert_eq!(copies(&dst, HOST), snaps);
    assert_eq!(
        userrefs(&src, &snaps[2]),
        "1",
        "the hold moved to the new common"
    );
    assert_eq!(userrefs(&src, &snaps[1]), "0", "the old hold was released");
    assert_copy_matches(&dst, &snaps[2], &tree);

    let out = src.zbk_expect(0, &["replicate", "--to", &dst.name, "--dry-run"]);
    let shown = text(&out.stdout);
    assert!(
        shown.contains(&format!("{HOST}: common {}", snaps[2])) && shown.contains("up to date"),
        "{shown}"
    );
}

#[test]
fn the_source_reap_never_takes_the_held_common_snapshot() {
    let (src, _tree) = source_with_host();
    let dst = Pool::new();
    run(&src, &["--expires", "1s"]);
    std::thread::sleep(std::time::Duration::from_secs(1));
    run(&src, &["--expires", "1s"]);
    replicate(&src, &dst.name, 0);
    std::thread::sleep(std::time::Duration::from_secs(1));
    run(&src, &["--expires", "1s"]);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let [s1, s2, s3]: [String; 3] = src.snapshots(HOST).try_into().unwrap();

    let out = src.zbk_expect(0, &["reap"]);
    let err = text(&out.stderr);
    assert!(err.contains(&format!("@{s2}: expired, but held")), "{err}");
    assert_eq!(
        src.snapshots(HOST),
        [s2.clone(), s3.clone()],
        "s1 reaped, s2 held, s3 the floor"
    );

    // The chain holds: the next copy goes on from s2, and the hold moves to s3.
    replicate(&src, &dst.name, 0);
    assert_eq!(copies(&dst, HOST), [s1, s2.clone(), s3.clone()]);
    assert_eq!(userrefs(&src, &s3), "1");
    src.zbk_expect(0, &["reap"]);
    assert_eq!(src.snapshots(HOST), [s3]);
}

#[test]
fn the_target_reaps_copies_by_their_received_expiry_or_the_offsite_minimum() {
    let (src, _tree) = source_with_host();
    let db_source = src.scratch("db");
    std::fs::write(db_source.join("dump.sql"), "select 1;\n").unwrap();
    src.add_host("db1", &db_source);
    let dst = Pool::initialised();
    for _ in 0..3 {
        run(&src, &["--expires", "1s"]);
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    replicate(&src, &dst.name, 0);
    let copied = copies(&dst, HOST);
    assert_eq!(copied.len(), 3);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let out = dst.zbk_expect(0, &["reap", "-v"]);
    let err = text(&out.stderr);
    assert!(
        !err.contains("warning"),
        "a copy's unreadable c/ is expected: {err}"
    );
    assert_eq!(
        copies(&dst, HOST),
        [copied[2].clone()],
        "expired copies go, the newest good one stays (min_keep)"
    );
    // The source keeps its own schedule, and the snapshot the copy goes on from.
    assert_eq!(src.snapshots(HOST), copied);

    // With offsite_expiry, the copies outlive their received expiry.
    let config = src.root.join("etc/zbk.toml");
    let edited = std::fs::read_to_string(&config).unwrap().replacen(
        '\n',
        "\noffsite_expiry = \"30days\"\n",
        1,
    );
    std::fs::write(&config, edited).unwrap();
    src.zbk_expect(0, &["run", "db1", "--expires", "1s"]);
    std::thread::sleep(std::time::Duration::from_secs(1));
    src.zbk_expect(0, &["run", "db1", "--expires", "1s"]);
    replicate(&src, &dst.name, 0);
    let db = copies(&dst, "db1");
    assert_eq!(db.len(), 2);
    let stamped = format!("{}@{}", dst.host_dataset("db1"), db[0]);
    let (offsite, source) = dst.prop(&stamped, "zbk:offsite-expires");
    assert_eq!(source, "local");
    let created: i64 = dst.prop(&stamped, "creation").0.parse().unwrap();
    let at = chrono::DateTime::parse_from_rfc3339(&offsite).unwrap();
    assert_eq!(at.timestamp() - created, 30 * 86_400);
    std::thread::sleep(std::time::Duration::from_secs(2));
    dst.zbk_expect(0, &["reap"]);
    assert_eq!(copies(&dst, "db1"), db, "offsite_expiry keeps them");
    let out = dst.zbk_expect(0, &["list", "db1", "--json"]);
    assert!(
        text(&out.stdout).contains(&offsite),
        "{}",
        text(&out.stdout)
    );
}

/// A directory holding a `zfs` that lets `zfs receive` read part of its stream and then kills
/// it, as a crash or a lost connection would; every other command is the real zfs.
fn fault_kill_receive(pool: &Pool) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let real = ok("sh", &["-c", "command -v zfs"]).trim().to_string();
    let dir = pool.scratch("zfs-fault-kill-receive");
    let script = format!(
        "#!/bin/sh\n\
         # zfs-fault-kill-receive: the receive gets 200000 bytes, then SIGKILL.\n\
         if [ \"$1\" = receive ]; then\n\
         \t( head -c 200000; sleep 2 </dev/null ) | {real} \"$@\" &\n\
         \tpid=$!\n\
         \tsleep 1\n\
         \tkill -9 $pid\n\
         \twait $pid\n\
         \texit 137\n\
         fi\n\
         exec {real} \"$@\"\n"
    );
    let path = dir.join("zfs");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn replicate_with_path(pool: &Pool, to: &str, dir: &Path) -> Output {
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(env!("CARGO_BIN_EXE_zbk"))
        .args([
            "--root",
            pool.root.to_str().unwrap(),
            "replicate",
            "--to",
            to,
        ])
        .env("PATH", path)
        .env_remove("ZBK_ROOT")
        .output()
        .unwrap()
}

#[test]
fn an_interrupted_send_changes_nothing_and_the_next_run_resumes() {
    let (src, tree) = source_with_host();
    let dst = Pool::new();
    let faulty = fault_kill_receive(&src);
    // Random data, so the stream is far longer than what the broken receive reads.
    let noise: Vec<u8> = (0..4_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(tree.join("noise.bin"), &noise).unwrap();
    run(&src, &[]);

    // Killed during the very first, full receive.
    let out = replicate_with_path(&src, &dst.name, &faulty);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("replication stopped"),
        "{}",
        text(&out.stderr)
    );
    let s1 = src.snapshots(HOST)[0].clone();
    assert!(!dst.exists(&dst.host_dataset(HOST)) || copies(&dst, HOST).is_empty());
    replicate(&src, &dst.name, 0);
    assert_eq!(copies(&dst, HOST), std::slice::from_ref(&s1));

    // Killed during an incremental one: the copy stays at s1, still held on the source.
    std::fs::write(
        tree.join("noise2.bin"),
        noise.iter().rev().copied().collect::<Vec<u8>>(),
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(1));
    run(&src, &[]);
    let out = replicate_with_path(&src, &dst.name, &faulty);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains(HOST) && err.contains("receive"), "{err}");
    assert_eq!(copies(&dst, HOST), std::slice::from_ref(&s1));
    assert_eq!(userrefs(&src, &s1), "1");

    replicate(&src, &dst.name, 0);
    let snaps = src.snapshots(HOST);
    assert_eq!(copies(&dst, HOST), snaps);
    assert_eq!(userrefs(&src, &s1), "0");
    assert_eq!(userrefs(&src, &snaps[1]), "1");
}

#[test]
fn a_copy_changed_by_hand_is_reported_not_rolled_back() {
    let (src, tree) = source_with_host();
    let dst = Pool::new();
    run(&src, &[]);
    replicate(&src, &dst.name, 0);
    let copy = dst.host_dataset(HOST);

    // A snapshot taken on the target.
    ok("zfs", &["snapshot", &format!("{copy}@byhand")]);
    std::fs::write(tree.join("more"), "more\n").unwrap();
    std::thread::sleep(std::time::Duration::from_secs(1));
    run(&src, &[]);
    let out = replicate(&src, &dst.name, 1);
    let err = text(&out.stderr);
    assert!(
        err.contains("modified by hand") && err.contains("byhand"),
        "{err}"
    );
    assert!(
        copies(&dst, HOST).contains(&"byhand".to_string()),
        "not rolled back"
    );
    assert_eq!(copies(&dst, HOST).len(), 2);

    // A file written into the mounted copy.
    ok("zfs", &["destroy", &format!("{copy}@byhand")]);
    let mnt = dst.scratch("mounted-copy");
    ok(
        "zfs",
        &["set", &format!("mountpoint={}", mnt.display()), &copy],
    );
    std::fs::write(mnt.join("written-by-hand"), "x\n").unwrap();
    let out = replicate(&src, &dst.name, 1);
    let err = text(&out.stderr);
    assert!(err.contains("modified by hand"), "{err}");
    assert!(mnt.join("written-by-hand").is_file(), "not rolled back");
    assert_eq!(copies(&dst, HOST).len(), 1);
}

#[test]
fn bad_input_changes_nothing() {
    let (src, _tree) = source_with_host();
    let dst = Pool::new();
    let cases: &[(&[&str], &str)] = &[
        (&["--to", "b2:tank; rm -rf /"], "--to"),
        (&["--to", "-oProxyCommand=x:tank"], "--to"),
        (&["--to", "tank/x@snap"], "--to"),
        (
            &["--to", "garbage::x"],
            "--to: \"garbage::x\" is not POOL/DATASET",
        ),
        (&["--to", &format!("{}/nope", dst.name)], "does not exist"),
        (&["--to", &dst.name, "Bad.Host"], "HOST"),
        (&["--to", &dst.name, "nohost"], "no such host: nohost:"),
        (
            &["--to", &dst.name, "--ssh-option", "Port=22"],
            "--ssh-option",
        ),
        (&["--to", "b2:tank", "--ssh-option", "-p22"], "--ssh-option"),
        (&["--to", &format!("{}/hosts/x", src.name)], "overlaps"),
    ];
    for (args, want) in cases {
        let mut full = vec!["replicate"];
        full.extend_from_slice(args);
        let out = src.zbk_expect(2, &full);
        let err = text(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
    assert!(!dst.exists(&format!("{}/hosts", dst.name)));
}

#[test]
fn over_ssh_to_a_real_sshd_on_loopback() {
    let sshd = common::sshd::Sshd::start();
    let (src, tree) = source_with_host();
    run(&src, &[]);
    let dst = Pool::initialised();
    let to = format!("root@127.0.0.1:{}", dst.name);
    let port = format!("Port={}", sshd.port);
    let key = format!("IdentityFile={}", sshd.key_path.display());
    let mut args = vec!["replicate", "--to", &to, "-v"];
    for option in [
        port.as_str(),
        key.as_str(),
        "StrictHostKeyChecking=no",
        "UserKnownHostsFile=/dev/null",
        "IdentitiesOnly=yes",
        "LogLevel=ERROR",
    ] {
        args.extend(["--ssh-option", option]);
    }
    src.zbk_expect(0, &args);
    assert_eq!(copies(&dst, HOST), src.snapshots(HOST));

    std::fs::write(tree.join("over-ssh"), "x\n").unwrap();
    std::thread::sleep(std::time::Duration::from_secs(1));
    run(&src, &[]);
    let out = src.zbk_expect(0, &args);
    assert_sent(&out, 1);
    let snaps = src.snapshots(HOST);
    assert_eq!(copies(&dst, HOST), snaps);
    let newest = format!("{}@{}", dst.host_dataset(HOST), snaps[1]);
    assert_eq!(dst.prop(&newest, "zbk:expires").1, "received");
    assert_eq!(userrefs(&src, &snaps[1]), "1");

    args.retain(|a| *a != "-v");
    args.push("--dry-run");
    let out = src.zbk_expect(0, &args);
    assert!(
        text(&out.stdout).contains("up to date"),
        "{}",
        text(&out.stdout)
    );
}
