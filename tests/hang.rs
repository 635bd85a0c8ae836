//! Hangs, for real: a client whose sender rsync is stopped mid-transfer behind a real sshd, a
//! zfs-fuse daemon stopped with SIGSTOP, an OpenZFS pool on a suspended device-mapper device.
//! Each must end zbk within its deadline with a message that says why, and leave no lock
//! behind. Each test prints how long the hang took to end.
//!
//! Not run by a plain `cargo test` (`test = false` in Cargo.toml): stopping the zfs-fuse
//! daemon hangs every other suite's zfs call, so tests/run.sh runs this suite on its own after
//! the rest, one test at a time (`cargo test --test hang -- --test-threads=1`).

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use common::sshd::Sshd;
use common::{flavour, ok, only_on, sample_tree, sh, text, Flavour, Pool};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The grace zbk gives a child between SIGTERM and SIGKILL, and after SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// Slack for a loaded machine (or an emulated VM) on top of a deadline.
const SLACK: Duration = Duration::from_secs(10);

/// A process stopped with SIGSTOP, resumed when dropped: on every path, a failed assertion
/// included, since a daemon left stopped hangs everything after it.
struct Stopped(String);

impl Stopped {
    fn now(pid: &str) -> Stopped {
        ok("kill", &["-STOP", pid]);
        Stopped(pid.to_string())
    }

    /// For a process something else stops (a hook): only the resume is ours.
    fn resumed_on_drop(pid: &str) -> Stopped {
        Stopped(pid.to_string())
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = sh("kill", &["-CONT", &self.0]);
    }
}

/// zbk running in the background, killed if the test ends before it does (a pool is not
/// destroyed under a running zbk).
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Running {
    /// Fails the test, showing zbk's output, when zbk has already ended.
    fn must_be_running(&mut self) {
        let child = self.0.as_mut().expect("running");
        if child.try_wait().expect("wait").is_none() {
            return;
        }
        let out = self
            .0
            .take()
            .expect("running")
            .wait_with_output()
            .expect("wait");
        panic!(
            "zbk ended early with {:?}: stdout: {} stderr: {}",
            out.status.code(),
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

/// zbk against `pool`, started in the background.
fn spawn_zbk(pool: &Pool, args: &[&str]) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_zbk"))
        .arg("--root")
        .arg(&pool.root)
        .args(args)
        .env_remove("ZBK_ROOT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run zbk");
    Running(Some(child))
}

/// Waits for zbk to end, at most `limit`: a zbk still running then is killed and the test
/// fails, since hanging is what is under test.
fn ended_within(mut running: Running, limit: Duration, what: &str) -> Output {
    let mut child = running.0.take().expect("running");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!(
                "{what}: zbk still running after {limit:?}; killed. stdout: {} stderr: {}",
                text(&out.stdout),
                text(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().expect("wait")
}

/// The pid of the first process whose command line holds every one of `words`.
fn find_process(words: &[&str]) -> Option<String> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if words.iter().all(|w| args.iter().any(|a| a.contains(w))) {
            return Some(name);
        }
    }
    None
}

/// Appends `more` to a config file.
fn append(path: &Path, more: &str) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.write_all(more.as_bytes()).unwrap();
}

/// Sets `[zfs] timeout` in the global config `zbk init` wrote, whose `[zfs]` table is there.
fn zfs_timeout(pool: &Pool, value: &str) {
    let path = pool.root.join("etc/zbk.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\n[zfs]\n"), "{text}");
    let text = text.replace("\n[zfs]\n", &format!("\n[zfs]\ntimeout = \"{value}\"\n"));
    std::fs::write(&path, text).unwrap();
}

fn host_config(pool: &Pool, host: &str) -> PathBuf {
    pool.root.join(format!("hosts/{host}/c/zbk.toml"))
}

/// The newest snapshot of a host, with its status and expiry.
fn newest(pool: &Pool, host: &str) -> (String, String, String) {
    let snap = pool
        .snapshots(host)
        .last()
        .cloned()
        .unwrap_or_else(|| panic!("{host} has no snapshot"));
    let full = format!("{}@{snap}", pool.host_dataset(host));
    let status = pool.prop(&full, "zbk:status").0;
    let expires = pool.prop(&full, "zbk:expires").0;
    (snap, status, expires)
}

/// Logs of a run that never finished, left in a host's l/.
fn running_logs(pool: &Pool, host: &str) -> Vec<String> {
    std::fs::read_dir(pool.root.join(format!("hosts/{host}/l")))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".running.log"))
        .collect()
}

/// Whether one of a host's logs holds `needle`.
fn logged(pool: &Pool, host: &str, needle: &str) -> bool {
    let dir = pool.root.join(format!("hosts/{host}/l"));
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|log| log.contains(needle)))
}

/// Waits for zbk (at most `limit`) and says how long it took since the hang began at `t0`,
/// past the harness's capture, so that every run shows it.
fn measured(
    running: Running,
    t0: Instant,
    limit: Duration,
    what: &str,
    deadline: &str,
) -> (Output, Duration) {
    let out = ended_within(running, limit, what);
    let took = t0.elapsed();
    let _ = writeln!(
        std::io::stderr(),
        "MEASURED {what}: ended {:.1} s after the hang began ({deadline})",
        took.as_secs_f64()
    );
    (out, took)
}

#[test]
fn a_stalled_client_fails_its_host_within_io_timeout_and_the_others_go_on() {
    let pool = Pool::initialised();
    let sshd = Sshd::start();
    let src = pool.scratch("stalling-client");
    // 6 MB at 1 MB/s: a transfer long enough to stop in the middle.
    let payload: Vec<u8> = (0..6_000_000u64).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(src.join("payload.bin"), &payload).unwrap();
    // The silence counts from the start: a login that hangs is a stalled client too. So the
    // bound must outlast a slow login: a root shell's startup files on this host, an emulated
    // CPU's key exchange in the OpenZFS VM (over 20 s seen).
    let secs = match flavour() {
        Flavour::ZfsFuse => 30,
        Flavour::OpenZfs => 60,
    };
    let io_timeout = Duration::from_secs(secs);
    pool.add_remote_host(
        "staller",
        &sshd,
        &src,
        &format!("\n[rsync]\nio_timeout = \"{secs}s\"\nbwlimit = \"1M\"\n"),
    );
    let steady_src = pool.scratch("steady");
    sample_tree(&steady_src);
    pool.add_host("steady", &steady_src);

    let mut zbk = spawn_zbk(&pool, &["run", "--all", "--jobs", "2"]);
    // Mid-transfer: part of the payload is in d/ (the look at the source before the copy has
    // a sender of its own, which does not count).
    let copy = pool
        .root
        .join("hosts/staller/d")
        .join(src.strip_prefix("/").unwrap())
        .join("payload.bin");
    let started = Instant::now();
    while std::fs::metadata(&copy).map_or(0, |m| m.len()) < 1_000_000 {
        zbk.must_be_running();
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the transfer never got under way: {:?} bytes in d/",
            std::fs::metadata(&copy).map(|m| m.len())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let sender = find_process(&["--server", "--sender", src.to_str().unwrap()])
        .expect("the client's sender rsync");
    let stalled = Stopped::now(&sender);
    let t0 = Instant::now();
    // The host fails when zbk stops rsync and says so in its log; the run then still takes its
    // snapshot and ends.
    let said = format!(
        "the client sent nothing for {} (rsync.io_timeout): rsync stopped",
        humantime::format_duration(io_timeout)
    );
    let failed = loop {
        if logged(&pool, "staller", &said) {
            break t0.elapsed();
        }
        assert!(
            t0.elapsed() < io_timeout * 3 + SLACK * 6,
            "no {said:?} in the log"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = writeln!(
        std::io::stderr(),
        "MEASURED stalled sender rsync (SIGSTOP): rsync stopped and the host failed {:.1} s after the stop (rsync.io_timeout {secs}s)",
        failed.as_secs_f64()
    );
    assert!(
        failed + Duration::from_secs(1) >= io_timeout,
        "rsync was stopped {failed:?} after the stall, before rsync.io_timeout"
    );
    assert!(
        failed <= io_timeout + GRACE + SLACK,
        "the host failed only {failed:?} after its client stalled"
    );
    let (out, _) = measured(
        zbk,
        t0,
        io_timeout + GRACE + SLACK * 6,
        "zbk run --all, a client stalled",
        &format!("rsync.io_timeout {secs}s"),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&said), "{stderr}");
    let (snap, status, expires) = newest(&pool, "staller");
    assert!(snap.starts_with("failed-"), "{snap}");
    assert_eq!(status, "failed");
    assert!(
        expires.ends_with('Z'),
        "stamped with an expiry: {expires:?}"
    );
    let log = std::fs::read_to_string(pool.root.join(format!("hosts/staller/l/{snap}.log")))
        .expect("the failed run's log");
    assert!(
        log.contains(&format!("zbk: {said}")) && log.contains("zbk: result failed, finished"),
        "{log}"
    );
    assert!(running_logs(&pool, "staller").is_empty());
    // The other host went on beside it.
    assert_eq!(newest(&pool, "steady").1, "ok");

    // The client comes back: the lock is free and the next run completes the copy.
    drop(stalled);
    let _ = sh("kill", &["-KILL", &sender]);
    std::fs::write(
        host_config(&pool, "staller"),
        std::fs::read_to_string(host_config(&pool, "staller"))
            .unwrap()
            .replace("bwlimit = \"1M\"\n", ""),
    )
    .unwrap();
    pool.zbk_expect(0, &["run", "staller"]);
    let (_, status, _) = newest(&pool, "staller");
    assert_eq!(status, "ok");
    assert_eq!(std::fs::read(copy).unwrap(), payload);
}

/// A host backed up once from a local tree, with `[zfs] timeout = "3s"`.
fn pool_with_a_local_host() -> Pool {
    let pool = Pool::initialised();
    zfs_timeout(&pool, "3s");
    let src = pool.scratch("local");
    sample_tree(&src);
    pool.add_host("local", &src);
    append(
        &host_config(&pool, "local"),
        "\n[rsync]\nio_timeout = \"3s\"\n",
    );
    pool.zbk_expect(0, &["run", "local"]);
    pool
}

/// A pre_run hook that stops `pid`, so a run meets the hang after it has read its config.
fn hook_stopping(pool: &Pool, host: &str, pid: &str) {
    let hook = pool.scratch("hooks").join("stop-zfs");
    std::fs::write(&hook, format!("#!/bin/sh\nkill -STOP {pid}\n")).unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    append(
        &host_config(pool, host),
        &format!("\n[hooks]\npre_run = [\"{}\"]\n", hook.display()),
    );
}

#[test]
fn zfs_fuse_a_stopped_daemon_ends_check_and_run_within_their_deadlines() {
    if !only_on(
        Flavour::ZfsFuse,
        "zfs_fuse_a_stopped_daemon_ends_check_and_run_within_their_deadlines",
        "stops the zfs-fuse daemon",
    ) {
        return;
    }
    let pool = pool_with_a_local_host();
    let daemon = std::fs::read_to_string("/run/zfs-fuse.pid")
        .expect("/run/zfs-fuse.pid: start the daemon with tests/run.sh")
        .trim()
        .to_string();

    // zbk check: every zfs call and every read of the pool blocks, its config's included.
    {
        let _stopped = Stopped::now(&daemon);
        let t0 = Instant::now();
        let check = spawn_zbk(&pool, &["check", "-t", "3"]);
        let (out, took) = measured(
            check,
            t0,
            Duration::from_secs(3) + SLACK * 3,
            "zbk check -t 3, zfs-fuse daemon stopped",
            "-t 3",
        );
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(3), "{stdout}");
        assert!(
            stdout.starts_with("ZBK UNKNOWN - no answer within 3s (--timeout): still "),
            "{stdout}"
        );
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        assert!(took < Duration::from_secs(3) + SLACK, "{took:?}");
    }

    // zbk run: the daemon stops once the run has read its config (a pre_run hook stops it).
    hook_stopping(&pool, "local", &daemon);
    let resume = Stopped::resumed_on_drop(&daemon);
    let run = spawn_zbk(&pool, &["run", "local"]);
    let started = Instant::now();
    while sh(
        "sh",
        &["-c", &format!("grep -q '^State:.*T' /proc/{daemon}/status")],
    )
    .status
    .code()
        != Some(0)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the hook never stopped the daemon"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let t0 = Instant::now();
    let (out, took) = measured(
        run,
        t0,
        SLACK * 6,
        "zbk run, zfs-fuse daemon stopped mid-run",
        "[zfs] timeout 3s, rsync.io_timeout 3s",
    );
    drop(resume);
    let stderr = text(&out.stderr);
    let _ = writeln!(std::io::stderr(), "run: {stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("within 3s ([zfs] timeout)") || stderr.contains("(rsync.io_timeout)"),
        "{stderr}"
    );
    // At most: rsync's silence, its grace, a zfs deadline and the run's own stall bound.
    assert!(
        took < Duration::from_secs(3 * 3) + GRACE * 2 + SLACK,
        "{took:?}"
    );

    // The daemon answers again: nothing was left locked, and the next run is good.
    std::fs::write(
        host_config(&pool, "local"),
        std::fs::read_to_string(host_config(&pool, "local"))
            .unwrap()
            .replace("pre_run", "#pre_run"),
    )
    .unwrap();
    pool.zbk_expect(0, &["run", "local"]);
    assert_eq!(newest(&pool, "local").1, "ok");
    let out = pool.zbk(&["check", "-t", "30", "local"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    // And the daemon still mounts, for the suites after this one.
    let serial = common::mount_lock();
    let dataset = format!("{}/after", pool.name);
    let out = sh("timeout", &["60", "zfs", "create", &dataset]);
    drop(serial);
    assert!(
        out.status.success() && pool.root.join("after").is_dir(),
        "zfs-fuse no longer mounts after being stopped: {}",
        text(&out.stderr)
    );
}

/// A device-mapper device over a loop device over a file: `suspend` makes every write to it
/// wait in the kernel, as a dead disk under `failmode=wait` does.
struct DmDevice {
    name: String,
    loop_dev: String,
    file: PathBuf,
}

impl DmDevice {
    fn new(size: &str) -> DmDevice {
        for tool in ["dmsetup", "losetup", "blockdev"] {
            assert!(
                sh("sh", &["-c", &format!("command -v {tool}")]).status.success(),
                "{tool} not found: apt-get install dmsetup util-linux (tests/openzfs.sh needs it on the host)"
            );
        }
        let name = format!("zbkt{}dm", std::process::id());
        let dir = std::env::var_os("ZBK_TEST_POOL_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let file = dir.join(format!("{name}.img"));
        ok("truncate", &["-s", size, file.to_str().unwrap()]);
        // A kernel without udev or loop devices loaded yet (the OpenZFS VM) gets both here.
        if !Path::new("/dev/loop-control").exists() {
            let _ = sh("modprobe", &["loop"]);
        }
        let loop_dev = ok("losetup", &["-f", "--show", file.to_str().unwrap()])
            .trim()
            .to_string();
        let sectors = ok("blockdev", &["--getsz", &loop_dev]).trim().to_string();
        let table = format!("0 {sectors} linear {loop_dev} 0");
        let out = sh("dmsetup", &["create", &name, "--table", &table]);
        assert!(
            out.status.success(),
            "dmsetup create: {} (is the dm_mod kernel module loaded?)",
            text(&out.stderr)
        );
        ok("dmsetup", &["mknodes", &name]);
        DmDevice {
            name,
            loop_dev,
            file,
        }
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/dev/mapper/{}", self.name))
    }

    /// Suspends the device until the returned guard is dropped.
    fn suspend(&self) -> Suspended<'_> {
        ok("dmsetup", &["suspend", &self.name]);
        Suspended(self)
    }
}

impl Drop for DmDevice {
    fn drop(&mut self) {
        let _ = sh("dmsetup", &["remove", &self.name]);
        let _ = sh("losetup", &["-d", &self.loop_dev]);
        let _ = std::fs::remove_file(&self.file);
    }
}

/// A suspended device, resumed when dropped, on every path.
struct Suspended<'a>(&'a DmDevice);

impl Drop for Suspended<'_> {
    fn drop(&mut self) {
        let _ = sh("dmsetup", &["resume", &self.0.name]);
    }
}

#[test]
fn openzfs_a_suspended_device_ends_check_and_run_within_their_deadlines() {
    if !only_on(
        Flavour::OpenZfs,
        "openzfs_a_suspended_device_ends_check_and_run_within_their_deadlines",
        "device-mapper under the kernel module",
    ) {
        return;
    }
    assert_eq!(flavour(), Flavour::OpenZfs);
    let device = DmDevice::new("512M");
    let pool = Pool::on_device(&device.path()).init();
    // Under emulation a healthy `zfs get` can take seconds: a bound well above that.
    zfs_timeout(&pool, "15s");
    let src = pool.scratch("local");
    sample_tree(&src);
    pool.add_host("local", &src);
    pool.zbk_expect(0, &["run", "local"]);
    ok("zpool", &["sync", &pool.name]);

    let suspended = device.suspend();
    // zbk run: rsync writes into memory, then `zfs snapshot` waits on a sync that never
    // comes, in the kernel, where no signal reaches it: it is left behind and zbk ends.
    let t0 = Instant::now();
    let run = spawn_zbk(&pool, &["run", "local"]);
    let (out, took) = measured(
        run,
        t0,
        Duration::from_secs(15) + GRACE * 2 + SLACK * 6,
        "zbk run, pool device suspended",
        "[zfs] timeout 15s, then SIGTERM, SIGKILL, 5 s each",
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("did not answer within 15s ([zfs] timeout)")
            && stderr.contains("stuck in the kernel")
            && stderr.contains("was abandoned"),
        "{stderr}"
    );
    assert!(
        took < Duration::from_secs(15) + GRACE * 2 + SLACK,
        "{took:?}"
    );

    // zbk check: whatever it blocks on, it answers within -t.
    let t0 = Instant::now();
    let check = spawn_zbk(&pool, &["check", "-t", "3"]);
    let (out, took) = measured(
        check,
        t0,
        Duration::from_secs(3) + SLACK * 6,
        "zbk check -t 3, pool device suspended",
        "-t 3",
    );
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("ZBK "), "{stdout}");
    assert!(took < Duration::from_secs(3) + SLACK, "{took:?}");
    drop(suspended);
    let _ = writeln!(std::io::stderr(), "run: {stderr}\ncheck: {stdout}");

    // Resumed, the abandoned `zfs snapshot` completes: with its stamp, taken in the same call.
    ok("zpool", &["sync", &pool.name]);
    for snap in pool.snapshots("local") {
        let full = format!("{}@{snap}", pool.host_dataset("local"));
        assert!(pool.prop(&full, "zbk:expires").0.ends_with('Z'), "{full}");
    }
    pool.zbk_expect(0, &["run", "local"]);
}
