//! The fault suite (issue 5): each scenario injects a fault for real against a zfs-fuse pool,
//! rsync and sshd, then checks that every good snapshot that existed is still there with its
//! properties, that the next run succeeds, and that zbk said what happened.
//!
//! Faults that cannot be produced for real without disturbing other engineers' pools (the
//! zfs-fuse daemon going away, a zbk killed exactly while `zfs snapshot` runs) are injected
//! by a fake `zfs` written into the test's temporary directory, under a directory named for
//! the fault, and put first on zbk's PATH.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use common::{ok, sh, text, Pool};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Every row captured before is still there, unchanged.
fn assert_kept(pool: &Pool, before: &[String]) {
    let after = pool.good_rows();
    for row in before {
        assert!(
            after.contains(row),
            "good snapshot row lost or changed: {row}\nnow: {after:#?}"
        );
    }
}

/// A host's config file.
fn host_config(pool: &Pool, host: &str) -> PathBuf {
    pool.root.join("hosts").join(host).join("c/zbk.toml")
}

fn append(path: &Path, extra: &str) {
    let mut text = std::fs::read_to_string(path).unwrap();
    text.push_str(extra);
    std::fs::write(path, text).unwrap();
}

/// A run that must succeed and leave one more good snapshot, stamped ok.
fn next_run_succeeds(pool: &Pool, host: &str) {
    let before = pool.snapshots(host);
    pool.zbk_expect(0, &["run", host]);
    let after = pool.snapshots(host);
    assert_eq!(after.len(), before.len() + 1, "{after:?}");
    let newest = format!("{}@{}", pool.host_dataset(host), after.last().unwrap());
    assert_eq!(
        pool.prop(&newest, "zbk:status"),
        ("ok".into(), "local".into())
    );
}

/// zbk in the background, with `path_first` (a fake program directory) ahead on PATH.
fn spawn_zbk(pool: &Pool, path_first: Option<&Path>, args: &[&str]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zbk"));
    cmd.arg("--root")
        .arg(&pool.root)
        .args(args)
        .env_remove("ZBK_ROOT");
    if let Some(dir) = path_first {
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{path}", dir.display()));
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn zbk")
}

fn zbk_with_path(pool: &Pool, dir: &Path, args: &[&str]) -> Output {
    spawn_zbk(pool, Some(dir), args).wait_with_output().unwrap()
}

/// Writes an executable fake `zfs` at `<dir>/<fault>/zfs` and returns its directory.
fn fake_zfs(dir: &Path, fault: &str, script: &str) -> PathBuf {
    let bin = dir.join(fault);
    std::fs::create_dir_all(&bin).unwrap();
    let path = bin.join("zfs");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// The pids of the direct children of `pid`.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = rest.split(' ').nth(1).unwrap().parse().unwrap();
        if ppid == pid {
            out.push(child);
        }
    }
    out
}

fn descendants(pid: u32) -> Vec<u32> {
    let mut all = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for c in children(p) {
            all.push(c);
            todo.push(c);
        }
    }
    all
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn alive(pid: u32) -> bool {
    // A zombie has no cmdline but still a /proc entry.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
        .unwrap_or(false)
}

fn kill9(pid: u32) {
    ok("kill", &["-9", &pid.to_string()]);
}

/// Waits up to `secs` for `f` to give something.
fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A file of `len` bytes that compresses badly, so a bwlimit makes copying it slow.
fn random_file(path: &Path, len: usize) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ len as u64;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(path, bytes).unwrap();
}

/// A pool with a host `h` backed up once from a small local tree.
fn with_one_good_run() -> (Pool, PathBuf) {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    common::sample_tree(&src);
    pool.add_host("h", &src);
    next_run_succeeds(&pool, "h");
    (pool, src)
}

fn stderr(out: &Output) -> String {
    text(&out.stderr)
}

#[test]
fn s01_kill_9_during_rsync() {
    let (pool, src) = with_one_good_run();
    let before = pool.good_rows();
    random_file(&src.join("slow.bin"), 3_000_000);
    append(&host_config(&pool, "h"), "\n[rsync]\nbwlimit = \"300K\"\n");

    let child = spawn_zbk(&pool, None, &["run", "h"]);
    let zbk = child.id();
    let rsync = wait_for(20, "rsync to start", || {
        children(zbk).into_iter().find(|&c| comm(c) == "rsync")
    });
    std::thread::sleep(Duration::from_secs(1));
    kill9(zbk);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), None, "killed by a signal");

    // rsync runs in its own process group, but the kernel stops it when zbk dies
    // (PR_SET_PDEATHSIG), so it cannot go on writing into d/ beside the next run.
    wait_for(10, "the orphaned rsync to stop", || {
        (!alive(rsync)).then_some(())
    });

    // No snapshot for the killed run; the good ones untouched; its log says it never ended.
    assert_eq!(pool.snapshots("h").len(), 1);
    assert_kept(&pool, &before);
    let logs: Vec<String> = std::fs::read_dir(pool.root.join("hosts/h/l"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".running.log"))
        .collect();
    assert_eq!(logs.len(), 1, "the killed run's log stays as .running.log");
    let log = std::fs::read_to_string(pool.root.join("hosts/h/l").join(&logs[0])).unwrap();
    assert!(
        log.contains("run of h") && !log.contains("zbk: result"),
        "{log}"
    );

    std::fs::write(
        host_config(&pool, "h"),
        format!("sources = [\"{}/\"]\n", src.display()),
    )
    .unwrap();
    next_run_succeeds(&pool, "h");
    assert_eq!(
        std::fs::read(src.join("slow.bin")).unwrap(),
        std::fs::read(
            pool.root
                .join("hosts/h/d")
                .join(src.strip_prefix("/").unwrap())
                .join("slow.bin")
        )
        .unwrap()
    );
}

#[test]
fn s02_kill_9_during_the_snapshot_step() {
    let (pool, _src) = with_one_good_run();
    let before = pool.good_rows();
    let marker = pool.dir.path().join("snapshot-started");
    // Only the timing is faked: the real `zfs snapshot` runs, late, after zbk is gone.
    let bin = fake_zfs(
        pool.dir.path(),
        "zfs-slow-snapshot",
        &format!(
            "#!/bin/sh\n# Fault: zbk killed while `zfs snapshot` runs. A real snapshot is too quick to\n\
             # kill zbk inside it, so this zfs waits 2 s first, then runs the real one.\n\
             if [ \"$1\" = snapshot ]; then touch {m}; sleep 2; fi\nexec '{zfs}' \"$@\"\n",
            m = marker.display(),
            zfs = common::real_zfs()
        ),
    );
    let child = spawn_zbk(&pool, Some(&bin), &["run", "h"]);
    let zbk = child.id();
    wait_for(120, "the snapshot step", || marker.exists().then_some(()));
    let script = children(zbk);
    kill9(zbk);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), None);
    // The zfs it started finishes on its own: a snapshot appears whole, with its stamp, or
    // not at all.
    wait_for(20, "the orphaned zfs snapshot", || {
        (!script.iter().any(|&p| alive(p))).then_some(())
    });
    let snaps = pool.snapshots("h");
    assert!(snaps.len() <= 2, "{snaps:?}");
    for snap in &snaps {
        let full = format!("{}@{snap}", pool.host_dataset("h"));
        for prop in ["zbk:expires", "zbk:tier", "zbk:status"] {
            let (value, source) = pool.prop(&full, prop);
            assert_eq!(source, "local", "{full} {prop}={value}: half-stamped");
        }
    }
    assert_kept(&pool, &before);
    next_run_succeeds(&pool, "h");
}

/// The pids of an sshd started by `Sshd::start()` and of its sessions.
fn sshd_pids(sshd: &common::sshd::Sshd) -> Vec<u32> {
    let config = sshd.dir().join("sshd_config");
    let needle = config.to_string_lossy().into_owned();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            pids.push(pid);
            pids.extend(descendants(pid));
        }
    }
    pids
}

#[test]
fn s03_sshd_killed_mid_transfer() {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    common::sample_tree(&src);
    pool.zbk_expect(0, &["add", "h", "--source", "/nonexistent/"]);
    let sshd = common::sshd::Sshd::start();
    let remote = |sshd: &common::sshd::Sshd, extra: &str| {
        std::fs::write(
            host_config(&pool, "h"),
            format!(
                "sources = [\"root@127.0.0.1:{}/\"]\n{}{extra}",
                src.display(),
                sshd.zbk_config()
            ),
        )
        .unwrap();
    };
    remote(&sshd, "");
    next_run_succeeds(&pool, "h");
    let before = pool.good_rows();

    random_file(&src.join("slow.bin"), 3_000_000);
    remote(&sshd, "\n[rsync]\nbwlimit = \"300K\"\n");
    let child = spawn_zbk(&pool, None, &["run", "h"]);
    let zbk = child.id();
    wait_for(20, "rsync to start", || {
        children(zbk).into_iter().find(|&c| comm(c) == "rsync")
    });
    // The session that serves this rsync: on an emulated CPU its login can take a while, and
    // its first processes (pre-authentication) give way to the session's own.
    wait_for(60, "sshd and a session", || {
        (sshd_pids(&sshd).len() >= 2).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let pids = sshd_pids(&sshd);
    assert!(pids.len() >= 2, "sshd and a session: {pids:?}");
    for p in pids {
        let _ = sh("kill", &["-9", &p.to_string()]);
    }
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("rsync exited"), "{err}");
    assert!(err.contains("failed: snapshot failed-"), "{err}");
    eprintln!("s03 message: {err}");
    let snaps = pool.snapshots("h");
    assert!(snaps.last().unwrap().starts_with("failed-"), "{snaps:?}");
    assert_kept(&pool, &before);
    drop(sshd);

    let sshd = common::sshd::Sshd::start();
    remote(&sshd, "");
    next_run_succeeds(&pool, "h");
}

#[test]
fn s04_pool_fills_up_during_a_run() {
    let pool = Pool::sized("128M");
    pool.zbk_expect(0, &["init", &pool.name]);
    let src = pool.scratch("src");
    common::sample_tree(&src);
    pool.add_host("h", &src);
    next_run_succeeds(&pool, "h");
    let before = pool.good_rows();

    random_file(&src.join("huge.bin"), 200_000_000);
    let out = pool.zbk(&["run", "h"]);
    let err = stderr(&out);
    eprintln!("s04 message: {err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert_kept(&pool, &before);
    assert!(
        pool.snapshots("h")
            .iter()
            .all(|s| !s.starts_with("failed-")),
        "a failed- snapshot would need room for its log"
    );

    // The partial copy fills the pool from d/: the capacity guard refuses the next run (its
    // wording and what it leaves alone are tests/guards.rs's)...
    let out = pool.zbk(&["run", "h"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_kept(&pool, &before);
    // ...but never reap.
    pool.zbk_expect(0, &["reap"]);
    assert_kept(&pool, &before);

    // The operator removes the culprit at the source and its partial copy in d/.
    std::fs::remove_file(src.join("huge.bin")).unwrap();
    let partial = pool
        .root
        .join("hosts/h/d")
        .join(src.strip_prefix("/").unwrap())
        .join("huge.bin");
    std::fs::remove_file(&partial).unwrap();
    // ZFS frees the blocks a few transaction groups later.
    wait_for(60, "the pool to have room again", || {
        // As zbk measures it: used / (used + available) of the root dataset.
        let out = ok(
            "zfs",
            &[
                "get",
                "-H",
                "-p",
                "-o",
                "value",
                "used,available",
                &pool.name,
            ],
        );
        let n: Vec<u64> = out.lines().map(|l| l.trim().parse().unwrap()).collect();
        (n[0] * 100 / (n[0] + n[1]) < 95).then_some(())
    });
    next_run_succeeds(&pool, "h");
    assert_kept(&pool, &before);
}

#[test]
fn s05_zfs_daemon_stopped_while_zbk_runs() {
    let (pool, _src) = with_one_good_run();
    let before = pool.good_rows();
    // Fault: the zfs-fuse daemon is gone when zbk snapshots. Stopping the real daemon would
    // take every other test's pool down with it, so this zfs answers `snapshot` the way
    // zfs-fuse answers everything when its daemon is not running (text observed on zfs-fuse
    // 0.7.0, see the zfs CLI reference §10), and passes everything else to the real zfs.
    let bin = fake_zfs(
        pool.dir.path(),
        "zfs-daemon-down",
        &format!(
            "#!/bin/sh\n# Fault: the zfs-fuse daemon stopped (cannot be produced for real without\n\
             # disturbing other pools on the same daemon).\n\
             if [ \"$1\" = snapshot ]; then\n\
             printf 'connect: No such file or directory\\nPlease make sure that the zfs-fuse daemon is running.\\ninternal error: failed to initialize ZFS library\\n' >&2\n\
             exit 1\nfi\nexec '{}' \"$@\"\n",
            common::real_zfs()
        ),
    );
    let out = zbk_with_path(&pool, &bin, &["run", "h"]);
    let err = stderr(&out);
    eprintln!("s05 message: {err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("zfs-fuse daemon is running"), "{err}");
    assert!(err.contains("snapshot"), "{err}");
    assert_eq!(pool.snapshots("h").len(), 1, "no half-stamped snapshot");
    assert_kept(&pool, &before);
    next_run_succeeds(&pool, "h");
}

#[test]
fn s06_two_runs_and_a_reap_at_once() {
    let (pool, src) = with_one_good_run();
    random_file(&src.join("some.bin"), 2_000_000);
    let before = pool.good_rows();
    let a = spawn_zbk(&pool, None, &["run", "h", "-v"]);
    let b = spawn_zbk(&pool, None, &["run", "h", "--tier", "weekly", "-v"]);
    let r = spawn_zbk(&pool, None, &["reap", "-v"]);
    let (a, b, r) = (
        a.wait_with_output().unwrap(),
        b.wait_with_output().unwrap(),
        r.wait_with_output().unwrap(),
    );
    for (what, out) in [("run", &a), ("run --tier weekly", &b), ("reap", &r)] {
        assert_eq!(
            out.status.code(),
            Some(0),
            "{what}: {}{}",
            text(&out.stdout),
            stderr(out)
        );
    }
    let said = format!("{}{}", text(&a.stdout), text(&b.stdout));
    eprintln!("s06 message: {said}");
    assert_kept(&pool, &before);
    let snaps = pool.snapshots("h");
    assert!((2..=3).contains(&snaps.len()), "{snaps:?}");
    let tiers: Vec<String> = snaps[1..]
        .iter()
        .map(|s| {
            pool.prop(&format!("{}@{s}", pool.host_dataset("h")), "zbk:tier")
                .0
        })
        .collect();
    if snaps.len() == 2 {
        // The second run waited and restamped the first one's snapshot with both tiers.
        assert!(said.contains("restamped"), "{said}");
        assert!(
            tiers[0].contains("default") && tiers[0].contains("weekly"),
            "{tiers:?}"
        );
    } else {
        assert!(tiers.iter().any(|t| t.contains("weekly")), "{tiers:?}");
    }
    next_run_succeeds(&pool, "h");
}

#[test]
fn s08_unreadable_source_rsync_23() {
    let (pool, src) = with_one_good_run();
    let before = pool.good_rows();
    // A second source that is not there (a client path that vanished or a typo): rsync
    // cannot stat it and ends with 23, a partial transfer.
    let missing = pool.dir.path().join("no-such-dir");
    std::fs::write(
        host_config(&pool, "h"),
        format!(
            "sources = [\"{}/\", \"{}/\"]\n",
            src.display(),
            missing.display()
        ),
    )
    .unwrap();
    let out = pool.zbk(&["run", "h"]);
    let err = stderr(&out);
    eprintln!("s08 message: {err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("rsync exited 23"), "{err}");
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(pool.snapshots("h").last().unwrap().starts_with("failed-"));
    assert_kept(&pool, &before);
    std::fs::write(
        host_config(&pool, "h"),
        format!("sources = [\"{}/\"]\n", src.display()),
    )
    .unwrap();
    next_run_succeeds(&pool, "h");
}

#[test]
fn s09_vanishing_source_file_rsync_24() {
    let (pool, src) = with_one_good_run();
    let before = pool.good_rows();
    let many = src.join("many");
    std::fs::create_dir_all(&many).unwrap();
    for i in 0..100 {
        random_file(&many.join(format!("f{i:03}")), 5_000);
    }
    append(&host_config(&pool, "h"), "\n[rsync]\nbwlimit = \"50K\"\n");
    let child = spawn_zbk(&pool, None, &["run", "h", "-v"]);
    let zbk = child.id();
    wait_for(20, "rsync to start", || {
        children(zbk).into_iter().find(|&c| comm(c) == "rsync")
    });
    std::thread::sleep(Duration::from_millis(1500));
    for i in 50..100 {
        std::fs::remove_file(many.join(format!("f{i:03}"))).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", text(&out.stdout), stderr(&out));
    eprintln!("s09 message: {said}");
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("rsync exited 24"), "{said}");
    assert!(said.contains("warning: snapshot"), "{said}");
    let newest = pool.snapshots("h").last().unwrap().clone();
    assert!(!newest.starts_with("failed-"));
    assert_eq!(
        pool.prop(
            &format!("{}@{newest}", pool.host_dataset("h")),
            "zbk:status"
        ),
        ("warning".into(), "local".into())
    );
    assert_kept(&pool, &before);
    std::fs::write(
        host_config(&pool, "h"),
        format!("sources = [\"{}/\"]\n", src.display()),
    )
    .unwrap();
    next_run_succeeds(&pool, "h");
}

#[test]
fn s10_garbage_empty_huge_expiry_by_hand() {
    let (pool, _src) = with_one_good_run();
    for _ in 0..3 {
        pool.zbk_expect(0, &["run", "h", "--expires", "1s"]);
        std::thread::sleep(Duration::from_millis(1100));
    }
    pool.zbk_expect(0, &["run", "h"]);
    let snaps = pool.snapshots("h");
    let ds = pool.host_dataset("h");
    let huge = "x".repeat(8000);
    let hand: Vec<(String, &str)> = vec![
        (format!("{ds}@{}", snaps[1]), "garbage"),
        // zfs-fuse refuses `zbk:expires=` (missing value): blank is the nearest to empty.
        (format!("{ds}@{}", snaps[2]), " "),
        (format!("{ds}@{}", snaps[3]), huge.as_str()),
    ];
    for (full, value) in &hand {
        ok("zfs", &["set", &format!("zbk:expires={value}"), full]);
    }
    let before: Vec<String> = pool
        .good_rows()
        .into_iter()
        .filter(|r| !hand.iter().any(|(f, _)| r.starts_with(&format!("{f}\t"))))
        .collect();
    // Those three were stamped to expire after 1 s: only their hand-set values keep them.
    let out = pool.zbk(&["reap"]);
    let err = stderr(&out);
    eprintln!("s10 message: {}", err.replace(&huge, "x*8000"));
    // Kept, all of them, and named.
    assert_eq!(pool.snapshots("h"), snaps);
    for (full, _) in &hand {
        assert!(
            err.contains(&format!("warning: {full}: unreadable zbk:expires")),
            "{err}"
        );
    }
    assert!(err.contains("garbage"), "{err}");
    // Finding: the 8000-byte value is echoed whole in the warning (one 8 KB line for cron).
    eprintln!("s10: huge value echoed whole: {}", err.contains(&huge));
    assert_kept(&pool, &before);
    pool.zbk_expect(0, &["list"]);
    pool.zbk_expect(0, &["list", "--json"]);
    // A clock that went back to 2000 judges nothing: every snapshot is from its future.
    let out = pool.zbk_expect(0, &["reap", "--as-of", "2000-01-01T00:00:00Z"]);
    let said = text(&out.stdout);
    eprintln!(
        "s10 clock guard: {}",
        said.lines().next().unwrap_or_default()
    );
    assert!(!said.lines().any(|l| l.starts_with("destroy ")), "{said}");
    assert!(said.contains("created in the future"), "{said}");
    next_run_succeeds(&pool, "h");
}

#[test]
fn s11_expiry_on_a_host_dataset_is_inherited_not_trusted() {
    let (pool, _src) = with_one_good_run();
    let ds = pool.host_dataset("h");
    ok("zfs", &["snapshot", &format!("{ds}@manual")]);
    ok("zfs", &["set", "zbk:expires=2000-01-01T00:00:00Z", &ds]);
    ok(
        "zfs",
        &[
            "set",
            "zbk:expires=2000-01-01T00:00:00Z",
            &format!("{}/hosts", pool.name),
        ],
    );
    assert_eq!(
        pool.prop(&format!("{ds}@manual"), "zbk:expires"),
        (
            "2000-01-01T00:00:00Z".into(),
            format!("inherited from {ds}")
        )
    );
    let before = pool
        .good_rows()
        .into_iter()
        .filter(|r| !r.contains("inherited from"))
        .collect::<Vec<_>>();
    let out = pool.zbk(&["reap", "-v"]);
    eprintln!("s11 message: {}{}", text(&out.stdout), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(pool.snapshots("h").contains(&"manual".to_string()));
    assert_eq!(pool.snapshots("h").len(), 2);
    assert_kept(&pool, &before);
    next_run_succeeds(&pool, "h");
    let newest = pool.snapshots("h").last().unwrap().clone();
    assert_eq!(
        pool.prop(&format!("{ds}@{newest}"), "zbk:expires").1,
        "local"
    );
}

#[test]
fn s12_held_and_cloned_among_expired() {
    let (pool, _src) = with_one_good_run();
    for _ in 0..3 {
        pool.zbk_expect(0, &["run", "h", "--expires", "1s"]);
        std::thread::sleep(Duration::from_millis(1100));
    }
    pool.zbk_expect(0, &["run", "h"]);
    let snaps = pool.snapshots("h");
    let ds = pool.host_dataset("h");
    let (held, cloned, plain) = (
        format!("{ds}@{}", snaps[1]),
        format!("{ds}@{}", snaps[2]),
        format!("{ds}@{}", snaps[3]),
    );
    ok("zfs", &["hold", "faults", &held]);
    let clone = format!("{}/clone", pool.name);
    {
        let _serial = common::mount_lock();
        ok("zfs", &["clone", "-o", "canmount=off", &cloned, &clone]);
    }
    let before: Vec<String> = pool
        .good_rows()
        .into_iter()
        .filter(|r| !r.starts_with(&format!("{plain}\t")))
        .collect();
    let out = pool.zbk(&["reap", "-v"]);
    let said = format!("{}{}", text(&out.stdout), stderr(&out));
    eprintln!("s12 message: {said}");
    assert!(!pool.exists(&plain), "the plain expired one goes");
    assert!(pool.exists(&held) && pool.exists(&cloned));
    assert!(said.contains(&held) && said.contains(&cloned), "{said}");
    assert_kept(&pool, &before);
    // Once released and uncloned, the next reap takes them.
    ok("zfs", &["release", "faults", &held]);
    ok("zfs", &["destroy", &clone]);
    pool.zbk_expect(0, &["reap"]);
    assert!(!pool.exists(&held) && !pool.exists(&cloned));
    next_run_succeeds(&pool, "h");
}

#[test]
fn s13_hostile_host_names_and_paths() {
    let (pool, src) = with_one_good_run();
    let before = pool.good_rows();
    let datasets = || ok("zfs", &["list", "-H", "-r", "-o", "name", &pool.name]);
    let listed = datasets();
    let to = pool.scratch("restored");
    let to = to.to_str().unwrap();
    let hostile = [
        "..",
        "/",
        "a b",
        "a\nb",
        "-rf",
        "--all",
        "héllo",
        "../etc",
        "a/b",
        "",
        "H",
        ".",
        "h\u{1b}[2J",
    ];
    for name in hostile {
        let commands: Vec<Vec<&str>> = vec![
            vec!["add", "--source", "/srv/", "--", name],
            vec!["run", "--", name],
            vec!["reap", "--", name],
            vec!["remove", "--purge", "--yes", "--", name],
            vec!["list", "--", name],
            vec!["status", "--", name],
            vec!["check", "--", name],
            vec!["keep", "--forever", "--", name, "x"],
            vec!["restamp", "--", name],
            vec!["restore", "--to", to, "--", name, "/etc"],
            vec!["versions", "--", name, "/etc"],
            vec!["authorize", "--", name],
            vec!["replicate", "--to", "x/y", "--", name],
        ];
        for args in commands {
            let out = pool.zbk(&args);
            let err = format!("{}{}", text(&out.stdout), stderr(&out));
            // `check` is a Nagios plugin: a usage error is UNKNOWN (3) there.
            let want = if args[0] == "check" { 3 } else { 2 };
            assert_eq!(out.status.code(), Some(want), "{args:?}: {err}");
            assert!(
                err.contains("invalid host name") || err.contains("Error:") || err.contains("NUL"),
                "{args:?}: {err}"
            );
            assert!(
                !err.trim_end().contains('\n') || err.contains("Run zbk"),
                "{args:?}: {err}"
            );
        }
    }
    eprintln!(
        "s13 message: {}",
        stderr(&pool.zbk(&["run", "--", "../etc"]))
    );
    // Hostile sources and restore paths.
    for source in ["relative/x", "-e sh", "a\nb", "", "host:relative"] {
        let out = pool.zbk(&["add", "--source", source, "--", "ok-host"]);
        assert_eq!(out.status.code(), Some(2), "{source:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("--source"), "{}", stderr(&out));
    }
    let snap = pool.snapshots("h")[0].clone();
    for path in ["../../etc/passwd", "etc", "/../../../etc", "-rf", "/a\nb"] {
        let out = pool.zbk(&["restore", "h", "--snapshot", &snap, "--to", to, "--", path]);
        assert_ne!(out.status.code(), Some(0), "{path:?}: {}", stderr(&out));
        let out = pool.zbk(&["versions", "h", "--", path]);
        assert_ne!(out.status.code(), Some(0), "{path:?}: {}", stderr(&out));
    }
    assert!(
        !Path::new(to).join("etc/passwd").exists(),
        "nothing restored from outside the snapshot"
    );
    assert_eq!(datasets(), listed, "no dataset created or destroyed");
    assert_kept(&pool, &before);
    let _ = src;
    next_run_succeeds(&pool, "h");
}

#[test]
fn s14_hostile_file_names_backed_up_and_restored_intact() {
    use std::ffi::OsStr;
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    std::fs::write(src.join("new\nline"), "newline\n").unwrap();
    std::fs::write(src.join(OsStr::from_bytes(b"bad-\xff\xfe-utf8")), "latin\n").unwrap();
    std::fs::write(src.join(" leading space"), "s\n").unwrap();
    std::fs::write(src.join("-dash"), "d\n").unwrap();
    std::fs::write(src.join("tab\there"), "t\n").unwrap();
    // About 3900 bytes of nested directories under the source.
    let mut deep = src.clone();
    for i in 0..19 {
        deep = deep.join(format!("{i:02}{}", "d".repeat(200)));
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("leaf"), "deep\n").unwrap();
    let rel_len = deep
        .join("leaf")
        .strip_prefix(&src)
        .unwrap()
        .as_os_str()
        .len();
    assert!(rel_len > 3800, "{rel_len}");
    ok(
        "mknod",
        &[src.join("null-dev").to_str().unwrap(), "c", "1", "3"],
    );
    ok(
        "mknod",
        &[src.join("loop-dev").to_str().unwrap(), "b", "7", "200"],
    );
    ok("mkfifo", &[src.join("fifo").to_str().unwrap()]);
    ok(
        "truncate",
        &["-s", "100M", src.join("sparse").to_str().unwrap()],
    );
    std::fs::write(src.join("sparse.tail"), "x").unwrap();

    pool.add_host("h", &src);
    next_run_succeeds(&pool, "h");
    let snap = pool.snapshots("h")[0].clone();
    let to = pool.scratch("restored");
    let out = pool.zbk(&[
        "restore",
        "h",
        "--snapshot",
        &snap,
        src.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let restored = to.join(src.strip_prefix("/").unwrap());
    assert_eq!(common::manifest(&restored), common::manifest(&src));
    let sparse = std::fs::metadata(restored.join("sparse")).unwrap();
    assert_eq!(sparse.len(), 100 * 1024 * 1024);
    assert!(
        sparse.blocks() * 512 < 1024 * 1024,
        "restored sparse file takes {} bytes on disk",
        sparse.blocks() * 512
    );
    next_run_succeeds(&pool, "h");
}

#[test]
fn s15_malformed_config() {
    let (pool, src) = with_one_good_run();
    let before = pool.good_rows();
    let global = pool.root.join("etc/zbk.toml");
    let good_global = std::fs::read_to_string(&global).unwrap();
    let host = host_config(&pool, "h");
    let good_host = std::fs::read_to_string(&host).unwrap();
    let ds = format!("dataset = \"{}\"\n", pool.name);
    // Every key with a wrong type, in the global config and in the host's.
    let wrong: &[(&str, &str)] = &[
        ("", "destroy_batch = \"many\""),
        ("", "offsite_expiry = 30"),
        ("", "min_keep = \"1\""),
        ("", "log_keep = true"),
        ("", "tiers = 7"),
        ("[tiers]\n", "default = 7"),
        ("[rsync]\n", "args = \"-a\""),
        ("[rsync]\n", "extra_args = [1]"),
        ("[rsync]\n", "ok_codes = [\"0\"]"),
        ("[rsync]\n", "warning_codes = 24"),
        ("[rsync]\n", "bwlimit = 300"),
        ("[rsync]\n", "io_timeout = 10"),
        ("[rsync]\n", "exclude_file = []"),
        ("[ssh]\n", "user = 0"),
        ("[ssh]\n", "port = \"22\""),
        ("[ssh]\n", "port = 70000"),
        ("[ssh]\n", "identity = 1"),
        ("[ssh]\n", "options = \"A=B\""),
        ("[ssh]\n", "connect_timeout = 5"),
        ("[hooks]\n", "pre_run = \"true\""),
        ("[hooks]\n", "post_run = [true]"),
        ("[hooks]\n", "timeout = 1"),
        ("[check]\n", "warn = 1"),
        ("[check]\n", "crit = []"),
        ("[guard]\n", "check_file = 1"),
        ("[guard]\n", "max_delete = \"half\""),
        ("[guard]\n", "max_capacity = 1000"),
        ("", "bogus = 1"),
        ("[rsync]\n", "bogus = 1"),
        ("[nonsense]\n", "x = 1"),
    ];
    for (table, line) in wrong {
        let key = line.split(' ').next().unwrap();
        std::fs::write(&global, format!("{ds}{table}{line}\n")).unwrap();
        let out = pool.zbk(&["run", "h"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{table}{line}: {err}");
        assert!(err.contains(&global.display().to_string()), "{line}: {err}");
        assert!(err.contains(key), "{line}: names the key: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        std::fs::write(&global, &good_global).unwrap();

        std::fs::write(&host, format!("{good_host}{table}{line}\n")).unwrap();
        let out = pool.zbk(&["run", "h"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "host {table}{line}: {err}");
        assert!(err.contains(&host.display().to_string()), "{line}: {err}");
        assert!(err.contains(key), "{line}: {err}");
        std::fs::write(&host, &good_host).unwrap();
    }
    eprintln!("s15 message: {}", {
        std::fs::write(&global, format!("{ds}[rsync]\nok_codes = [\"0\"]\n")).unwrap();
        let e = stderr(&pool.zbk(&["run", "h"]));
        std::fs::write(&global, &good_global).unwrap();
        e
    });
    // Truncated files: cut inside a string, a table header, an array.
    for (file, good) in [(&global, &good_global), (&host, &good_host)] {
        for cut in [good.len() / 3, good.len() / 2, good.len() - 2] {
            let mut at = cut;
            while !good.is_char_boundary(at) {
                at -= 1;
            }
            std::fs::write(file, &good[..at]).unwrap();
            let out = pool.zbk(&["run", "h"]);
            let err = stderr(&out);
            // A cut may leave a valid file (between lines); anything else is refused cleanly.
            if out.status.code() != Some(0) {
                assert_eq!(out.status.code(), Some(2), "cut at {at}: {err}");
                assert!(err.contains(&file.display().to_string()), "{err}");
            }
        }
        std::fs::write(file, good).unwrap();
    }
    std::fs::write(&host, "sources = [\"/srv/").unwrap();
    let err = stderr(&pool.zbk_expect(2, &["run", "h"]));
    assert!(err.contains(&host.display().to_string()), "{err}");
    eprintln!("s15 truncated: {err}");
    std::fs::write(&host, &good_host).unwrap();
    assert_kept(&pool, &before);
    let _ = src;
    next_run_succeeds(&pool, "h");
}
