//! Scheduling semantics on a real pool: colliding cron tiers, parallel hosts, hooks, and a run
//! stopped by a signal.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use chrono::{DateTime, Utc};
use common::{text, Pool};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A host whose single source takes a few seconds to copy: a 1.5 MB file behind a 500 KB/s
/// bandwidth limit.
fn slow_host(pool: &Pool, host: &str) -> std::path::PathBuf {
    let src = pool.scratch(&format!("src-{host}"));
    std::fs::write(src.join("big"), vec![1u8; 1_500_000]).unwrap();
    pool.add_host(host, &src);
    let config = pool.root.join(format!("hosts/{host}/c/zbk.toml"));
    let text_ = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text_}\n[rsync]\nbwlimit = \"500K\"\n")).unwrap();
    src
}

fn spawn_zbk(pool: &Pool, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_zbk"))
        .arg("--root")
        .arg(&pool.root)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Returns once a run holds `host`'s lock, so that a run started next surely queues behind it:
/// a fixed pause was not always enough for the first to get there on a loaded machine.
fn wait_for_lock(pool: &Pool, host: &str) {
    let path = pool.root.join(format!("etc/locks/{host}.lock"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(file) = std::fs::File::open(&path) {
            if let Err(std::fs::TryLockError::WouldBlock) = file.try_lock() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no run took {} within 60 s",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn logs(pool: &Pool, host: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(pool.root.join(format!("hosts/{host}/l")))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn colliding_tiers_make_one_backup_with_the_longer_expiry() {
    let pool = Pool::initialised();
    slow_host(&pool, "h");
    let hourly = spawn_zbk(&pool, &["run", "h"]);
    wait_for_lock(&pool, "h");
    let monthly = spawn_zbk(&pool, &["run", "h", "--tier", "monthly"]);
    let (a, b) = (
        hourly.wait_with_output().unwrap(),
        monthly.wait_with_output().unwrap(),
    );
    assert!(a.status.success(), "{}", text(&a.stderr));
    assert!(b.status.success(), "{}", text(&b.stderr));

    let snaps = pool.snapshots("h");
    assert_eq!(snaps.len(), 1, "exactly one backup: {snaps:?}");
    assert_eq!(logs(&pool, "h").len(), 1, "exactly one rsync ran");
    let full = format!("{}@{}", pool.host_dataset("h"), snaps[0]);
    assert_eq!(
        pool.prop(&full, "zbk:tier"),
        ("default,monthly".into(), "local".into())
    );
    // The monthly expiry counts 13 calendar months from the snapshot's creation.
    let (expires, _) = pool.prop(&full, "zbk:expires");
    let (created, _) = pool.prop(&full, "creation");
    let created = DateTime::<Utc>::from_timestamp(created.parse().unwrap(), 0).unwrap();
    let want = created
        .checked_add_months(chrono::Months::new(13))
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(expires, want, "monthly expiry");
}

#[test]
fn a_waiting_run_whose_predecessor_failed_takes_its_own_backup() {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    std::fs::write(src.join("f"), "x").unwrap();
    pool.add_host("h", &src);
    // A pre_run hook that fails the first run only, slowly enough for the second to queue.
    let marker = pool.scratch("marker").join("first-done");
    let config = pool.root.join("hosts/h/c/zbk.toml");
    let base = std::fs::read_to_string(&config).unwrap();
    let hook = format!(
        "[ -e {m} ] && exit 0; touch {m}; sleep 1; exit 1",
        m = marker.display()
    );
    std::fs::write(
        &config,
        format!("{base}\n[hooks]\npre_run = [\"sh\", \"-c\", {hook:?}]\n"),
    )
    .unwrap();
    let first = spawn_zbk(&pool, &["run", "h"]);
    wait_for_lock(&pool, "h");
    let second = spawn_zbk(&pool, &["run", "h", "--tier", "weekly"]);
    assert_eq!(first.wait_with_output().unwrap().status.code(), Some(1));
    let second = second.wait_with_output().unwrap();
    assert!(second.status.success(), "{}", text(&second.stderr));
    let snaps = pool.snapshots("h");
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    assert!(snaps[0].starts_with("failed-"), "{snaps:?}");
    let own = format!("{}@{}", pool.host_dataset("h"), snaps[1]);
    assert_eq!(pool.prop(&own, "zbk:tier").0, "weekly");
    assert_eq!(pool.prop(&own, "zbk:status").0, "ok");
}

#[test]
fn a_run_that_cannot_get_the_lock_in_time_gives_up_cleanly() {
    let pool = Pool::initialised();
    slow_host(&pool, "h");
    let first = spawn_zbk(&pool, &["run", "h"]);
    wait_for_lock(&pool, "h");
    let out = pool.zbk_expect(1, &["run", "h", "--wait", "1s"]);
    assert!(
        text(&out.stderr).contains("gave up (see --wait)"),
        "{}",
        text(&out.stderr)
    );
    assert!(first.wait_with_output().unwrap().status.success());
    assert_eq!(pool.snapshots("h").len(), 1);
}

#[test]
fn parallel_jobs_back_up_every_host_and_one_failure_stops_none() {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    common::sample_tree(&src);
    let hosts: Vec<String> = (0..6).map(|i| format!("h{i}")).collect();
    for h in &hosts {
        pool.add_host(h, &src);
    }
    let broken = pool.scratch("broken");
    pool.zbk_expect(
        0,
        &["add", "bad", "--source", &format!("{}/", broken.display())],
    );
    std::fs::remove_dir(&broken).unwrap();

    let started = Instant::now();
    let out = pool.zbk_expect(1, &["run", "--all", "--jobs", "4"]);
    eprintln!(
        "6 good hosts and 1 failing with --jobs 4: {:?}",
        started.elapsed()
    );
    assert!(
        text(&out.stderr).contains("bad: failed"),
        "{}",
        text(&out.stderr)
    );
    for h in &hosts {
        let snaps = pool.snapshots(h);
        assert_eq!(snaps.len(), 1, "{h}");
        assert!(!snaps[0].starts_with("failed-"));
        let copy = pool
            .root
            .join(format!("hosts/{h}/d"))
            .join(src.strip_prefix("/").unwrap());
        assert_eq!(common::manifest(&copy), common::manifest(&src), "{h}");
    }
    assert!(pool.snapshots("bad")[0].starts_with("failed-"));
    pool.zbk_expect(2, &["run", "--all", "--jobs", "0"]);
}

#[test]
fn hooks_run_around_the_backup_and_see_its_outcome() {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    std::fs::write(src.join("f"), "x").unwrap();
    pool.add_host("h", &src);
    let seen = pool.scratch("seen");
    let script = seen.join("hook.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nenv | grep '^ZBK_' | sort > \"$1/$ZBK_PHASE.env\"\necho hook ran\nexit \"${2:-0}\"\n",
    )
    .unwrap();
    common::ok("chmod", &["755", script.to_str().unwrap()]);
    let config = pool.root.join("hosts/h/c/zbk.toml");
    let base = std::fs::read_to_string(&config).unwrap();
    let hooks = |pre_exit: u8| {
        format!(
            "{base}\n[hooks]\npre_run = [\"{s}\", \"{d}\", \"{pre_exit}\"]\npost_run = [\"{s}\", \"{d}\"]\ntimeout = \"5s\"\n",
            s = script.display(),
            d = seen.display()
        )
    };
    std::fs::write(&config, hooks(0)).unwrap();
    pool.zbk_expect(0, &["run", "h"]);
    let snap = pool.snapshots("h")[0].clone();
    let post = std::fs::read_to_string(seen.join("post_run.env")).unwrap();
    assert!(
        post.contains("ZBK_HOST=h\n") && post.contains("ZBK_STATUS=ok\n"),
        "{post}"
    );
    assert!(post.contains(&format!("ZBK_SNAPSHOT={snap}\n")), "{post}");
    assert!(post.contains(&format!(
        "ZBK_LOG={}",
        pool.root.join(format!("hosts/h/l/{snap}.log")).display()
    )));
    assert!(std::fs::read_to_string(seen.join("pre_run.env"))
        .unwrap()
        .contains("ZBK_TIER=default"));

    // A failing pre_run fails the host without rsync; post_run still runs and sees it.
    std::fs::write(src.join("new-file"), "y").unwrap();
    std::fs::write(&config, hooks(3)).unwrap();
    let out = pool.zbk_expect(1, &["run", "h"]);
    assert!(
        text(&out.stderr).contains("pre_run hook exited with status 3"),
        "{}",
        text(&out.stderr)
    );
    let failed = pool.snapshots("h").last().unwrap().clone();
    assert!(failed.starts_with("failed-"));
    let copy = pool
        .root
        .join("hosts/h/d")
        .join(src.strip_prefix("/").unwrap());
    assert!(
        !copy.join("new-file").exists(),
        "rsync ran after a failed pre_run"
    );
    let post = std::fs::read_to_string(seen.join("post_run.env")).unwrap();
    assert!(post.contains("ZBK_STATUS=failed\n"), "{post}");

    // A hook that hangs is stopped by the timeout.
    std::fs::write(
        &config,
        format!("{base}\n[hooks]\npre_run = [\"sleep\", \"30\"]\ntimeout = \"1s\"\n"),
    )
    .unwrap();
    let started = Instant::now();
    let out = pool.zbk_expect(1, &["run", "h"]);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        text(&out.stderr).contains("pre_run hook timed out"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_signal_stops_rsync_and_records_a_failed_run() {
    let pool = Pool::initialised();
    slow_host(&pool, "h");
    let child = spawn_zbk(&pool, &["run", "h"]);
    // Wait until rsync is copying: its log exists.
    let deadline = Instant::now() + Duration::from_secs(10);
    while logs(&pool, "h").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    common::ok("kill", &["-TERM", &child.id().to_string()]);
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopping took {:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("interrupted by a signal"),
        "{}",
        text(&out.stderr)
    );

    let snaps = pool.snapshots("h");
    assert_eq!(snaps.len(), 1);
    assert!(snaps[0].starts_with("failed-"), "{snaps:?}");
    let full = format!("{}@{}", pool.host_dataset("h"), snaps[0]);
    assert_eq!(pool.prop(&full, "zbk:status").0, "failed");
    assert_eq!(pool.prop(&full, "zbk:tier").0, "failed");
    assert!(pool.prop(&full, "zbk:expires").0.ends_with('Z'));
    let log =
        std::fs::read_to_string(pool.root.join(format!("hosts/h/l/{}.log", snaps[0]))).unwrap();
    assert!(log.contains("interrupted by a signal"), "{log}");
    // No rsync of that run is left, and the lock is free: the next run starts at once.
    let dest = pool.root.join("hosts/h/d");
    let ps = common::ok("ps", &["-eo", "args"]);
    assert!(
        !ps.lines()
            .any(|l| l.contains("rsync") && l.contains(dest.to_str().unwrap())),
        "{ps}"
    );
    pool.zbk_expect(0, &["run", "h", "--wait", "1s"]);
}

/// A directory holding `rsync-overlap-recorder`, installed as `rsync`: it appends a start and
/// an end stamp (nanoseconds) for every call to `stamps`, holds each call open for a moment so
/// that calls running side by side overlap for sure, and runs the real rsync in between.
fn overlap_recorder(pool: &Pool, stamps: &std::path::Path) -> std::path::PathBuf {
    let dir = pool.scratch("rsync-overlap-recorder");
    let real = common::ok("sh", &["-c", "command -v rsync"]);
    let script = format!(
        "#!/bin/sh\n# rsync-overlap-recorder: stamps when each rsync starts and ends.\n\
         echo \"start $(date +%s%N)\" >> {s}\nsleep 1\n{real} \"$@\"\nrc=$?\n\
         echo \"end $(date +%s%N)\" >> {s}\nexit $rc\n",
        s = stamps.display(),
        real = real.trim()
    );
    let shim = dir.join("rsync");
    std::fs::write(&shim, script).unwrap();
    common::ok("chmod", &["755", shim.to_str().unwrap()]);
    dir
}

/// The most calls that were inside rsync at the same moment, from the recorder's stamps.
fn max_overlap(stamps: &std::path::Path) -> usize {
    let mut events: Vec<(u128, i32)> = std::fs::read_to_string(stamps)
        .unwrap()
        .lines()
        .map(|l| {
            let (kind, at) = l.split_once(' ').unwrap();
            // An end sorts before a start of the same instant: touching is not overlapping.
            (at.parse().unwrap(), if kind == "start" { 1 } else { -1 })
        })
        .collect();
    events.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, step) in events {
        now += step;
        most = most.max(now);
    }
    assert_eq!(now, 0, "every start has its end");
    most as usize
}

/// Runs zbk with the recorder first on PATH.
fn zbk_recorded(pool: &Pool, shims: &std::path::Path, args: &[&str]) -> std::process::Output {
    let path = format!("{}:{}", shims.display(), std::env::var("PATH").unwrap());
    Command::new(env!("CARGO_BIN_EXE_zbk"))
        .arg("--root")
        .arg(&pool.root)
        .args(args)
        .env("PATH", path)
        .output()
        .unwrap()
}

#[test]
fn jobs_run_that_many_hosts_inside_rsync_at_once() {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    common::sample_tree(&src);
    let hosts: Vec<String> = (0..5).map(|i| format!("p{i}")).collect();
    for h in &hosts {
        pool.add_host(h, &src);
    }
    let stamps = pool.dir.path().join("stamps");
    let shims = overlap_recorder(&pool, &stamps);

    let out = zbk_recorded(&pool, &shims, &["run", "--all", "--jobs", "3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        max_overlap(&stamps),
        3,
        "--jobs 3: three hosts in rsync together, never more"
    );
    for h in &hosts {
        let snaps = pool.snapshots(h);
        assert_eq!(snaps.len(), 1, "{h}: {snaps:?}");
        let full = format!("{}@{}", pool.host_dataset(h), snaps[0]);
        assert_eq!(pool.prop(&full, "zbk:status").0, "ok");
        let copy = pool
            .root
            .join(format!("hosts/{h}/d"))
            .join(src.strip_prefix("/").unwrap());
        assert_eq!(common::manifest(&copy), common::manifest(&src), "{h}");
    }

    // Without --jobs, the global config's `jobs` decides.
    let config = pool.root.join("etc/zbk.toml");
    let text_ = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("jobs = 2\n{text_}")).unwrap();
    std::fs::remove_file(&stamps).unwrap();
    let out = zbk_recorded(&pool, &shims, &["run", "p0", "p1", "p2", "p3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(max_overlap(&stamps), 2, "jobs = 2 in zbk.toml");
    assert_eq!(pool.snapshots("p3").len(), 2);
}
