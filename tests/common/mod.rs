//! Test harness: a real pool on a file per test, destroyed on drop even when the test fails,
//! and helpers to run the built `zbk` against it and read back what ZFS holds.
//!
//! Two backends, told apart by `zfs version`, which exists only on OpenZFS (zbk asks it too,
//! where /dev/zfs exists; without that device it is zfs-fuse):
//! zfs-fuse (tests/run.sh: its daemon, pool files in the test's temporary directory, the shared
//! mount lock around every mounting call) and OpenZFS (tests/openzfs.sh, inside a VM: no daemon,
//! no lock, pool files under `ZBK_TEST_POOL_DIR`, since file vdevs on tmpfs do not work there).
#![allow(dead_code)]

pub mod sshd;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

static POOLS: AtomicUsize = AtomicUsize::new(0);

/// The ZFS the tests run against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    ZfsFuse,
    OpenZfs,
}

impl std::fmt::Display for Flavour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Flavour::ZfsFuse => "zfs-fuse",
            Flavour::OpenZfs => "OpenZFS",
        })
    }
}

/// Which ZFS answers here, probed once per test binary.
pub fn flavour() -> Flavour {
    static FLAVOUR: std::sync::OnceLock<Flavour> = std::sync::OnceLock::new();
    *FLAVOUR.get_or_init(|| match Command::new("zfs").arg("version").output() {
        Ok(out) if out.status.success() => Flavour::OpenZfs,
        _ => Flavour::ZfsFuse,
    })
}

/// For a test that only one flavour can run (its name says which: `openzfs_…`, `zfs_fuse_…`):
/// true when this is that flavour; otherwise prints why the test is skipped, past the test
/// harness's output capture so the reason shows in every run, and returns false.
pub fn only_on(wanted: Flavour, test: &str, why: &str) -> bool {
    use std::io::Write;
    let here = flavour();
    if here == wanted {
        return true;
    }
    let how = match wanted {
        Flavour::OpenZfs => "run tests/openzfs.sh",
        Flavour::ZfsFuse => "run tests/run.sh",
    };
    // Written to the stderr handle itself: eprintln! would be captured and shown only on failure.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: needs {wanted} ({why}); this is {here}: {how}"
    );
    false
}

/// Runs a command and returns its output; panics if it cannot start at all.
pub fn sh(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program}: {e}; run tests/run.sh, which installs it")
        })
}

/// Runs a command that must succeed and returns its stdout.
pub fn ok(program: &str, args: &[&str]) -> String {
    let out = sh(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails loudly, with the fix, when ZFS is not usable here.
fn require_zfs() {
    let fix = match flavour() {
        Flavour::ZfsFuse => {
            "start the zfs-fuse daemon (zfs-fuse --pidfile /run/zfs-fuse.pid) or run tests/run.sh as root"
        }
        Flavour::OpenZfs => "load the zfs module (modprobe zfs) or run tests/openzfs.sh as root",
    };
    let out = Command::new("zpool")
        .arg("list")
        .env("LC_ALL", "C")
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => panic!("zpool not found ({e}): install zfs-fuse (apt-get install zfs-fuse) or run tests/run.sh"),
    };
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "zpool list failed: {text}\n{fix}");
}

/// The machine-wide lock file of zfs-fuse's mounting calls (src/sys/zfs.rs MOUNT_LOCK).
pub const MOUNT_LOCK: &str = "/run/lock/zbk-zfs-fuse-mount.lock";

/// The lock zbk takes around every zfs call that mounts or unmounts on zfs-fuse (src/sys/zfs.rs
/// MOUNT_LOCK): two at once can wedge the zfs-fuse daemon, so pool creation and destruction
/// take it too. OpenZFS needs none, and zbk takes none there.
pub fn mount_lock() -> Option<std::fs::File> {
    if flavour() == Flavour::OpenZfs {
        return None;
    }
    let path = MOUNT_LOCK;
    std::fs::create_dir_all("/run/lock").unwrap();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
    file.lock()
        .unwrap_or_else(|e| panic!("cannot lock {path}: {e}"));
    Some(file)
}

/// A file-backed pool mounted under a temporary directory, with the pool's root dataset
/// mounted at `root`: the backup root for `zbk --root`.
pub struct Pool {
    pub name: String,
    pub root: PathBuf,
    pub dir: tempfile::TempDir,
    /// The pool's backing files, removed after the pool is destroyed.
    pub files: Vec<PathBuf>,
}

impl Pool {
    pub fn new() -> Pool {
        Pool::sized("512M")
    }

    /// A pool on a file of `size` (as truncate(1) reads it: 128M, 1G).
    pub fn sized(size: &str) -> Pool {
        let (dir, name) = Pool::named();
        let file = match std::env::var_os("ZBK_TEST_POOL_DIR") {
            Some(d) => PathBuf::from(d).join(format!("{name}.img")),
            None => dir.path().join("pool.img"),
        };
        ok("truncate", &["-s", size, file.to_str().unwrap()]);
        Pool::made(dir, name, vec![file.clone()], &[file.to_str().unwrap()])
    }

    /// A pool mirrored over two files, with `zbk init` done: one side can be taken offline.
    pub fn mirror() -> Pool {
        let (dir, name) = Pool::named();
        let files: Vec<PathBuf> = (0..2)
            .map(|i| match std::env::var_os("ZBK_TEST_POOL_DIR") {
                Some(d) => PathBuf::from(d).join(format!("{name}-{i}.img")),
                None => dir.path().join(format!("pool-{i}.img")),
            })
            .collect();
        for file in &files {
            ok("truncate", &["-s", "256M", file.to_str().unwrap()]);
        }
        let vdevs = [
            "mirror",
            files[0].to_str().unwrap(),
            files[1].to_str().unwrap(),
        ];
        Pool::made(dir, name, files.clone(), &vdevs).init()
    }

    /// A pool on `device`, a block device the caller made and removes after the pool is gone
    /// (a device-mapper device that a test suspends).
    pub fn on_device(device: &Path) -> Pool {
        let (dir, name) = Pool::named();
        Pool::made(dir, name, Vec::new(), &[device.to_str().unwrap()])
    }

    /// A temporary directory for a new pool, and the pool's name (zbkt<pid>x<n>).
    fn named() -> (tempfile::TempDir, String) {
        require_zfs();
        let dir = tempfile::Builder::new()
            .prefix("zbk-test-")
            .tempdir()
            .expect("tempdir");
        let name = format!(
            "zbkt{}x{}",
            std::process::id(),
            POOLS.fetch_add(1, Ordering::SeqCst)
        );
        (dir, name)
    }

    /// Creates the pool `name` on `vdevs` (as `zpool create` takes them: `mirror a b`), its
    /// root dataset mounted in `dir`; `files` are removed after the pool is gone.
    fn made(dir: tempfile::TempDir, name: String, files: Vec<PathBuf>, vdevs: &[&str]) -> Pool {
        let root = dir.path().join("root");
        // No cache file: the pool belongs to this test alone and must not be imported again.
        // A zfs-fuse daemon restarted after a wedge would otherwise bring back every cached test
        // pool, FAULTED where the test had gone and taken its backing file with it.
        let mut args = vec!["create", "-o", "cachefile=none"];
        args.extend(["-m", root.to_str().unwrap(), &name]);
        args.extend_from_slice(vdevs);
        let serial = mount_lock();
        ok("zpool", &args);
        drop(serial);
        Pool {
            name,
            root,
            dir,
            files,
        }
    }

    /// A pool with `zbk init` done.
    pub fn initialised() -> Pool {
        Pool::new().init()
    }

    /// Runs `zbk init` on this pool.
    pub fn init(self) -> Pool {
        let pool = self;
        let out = pool.zbk(&["init", &pool.name]);
        assert_eq!(out.status.code(), Some(0), "init: {}", text(&out.stderr));
        pool
    }

    /// A directory for source trees, outside the pool.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// Runs the built zbk with --root set to this pool's root.
    pub fn zbk(&self, args: &[&str]) -> Output {
        let mut full = vec!["--root", self.root.to_str().unwrap()];
        full.extend_from_slice(args);
        // zbk check bounds itself at 10 s by default (the Nagios convention); the OpenZFS tier's
        // emulated CPU under load can take longer to answer, which is not what these tests
        // judge. Tests of the deadline itself pass -t.
        let timed = args
            .iter()
            .any(|a| *a == "-t" || a.starts_with("--timeout"));
        if args.first() == Some(&"check") && !timed {
            full.extend(["--timeout", "300"]);
        }
        Command::new(env!("CARGO_BIN_EXE_zbk"))
            .args(&full)
            .env_remove("ZBK_ROOT")
            .output()
            .expect("run zbk")
    }

    /// Appends `extra` (TOML) to the global config, etc/zbk.toml.
    pub fn add_global(&self, extra: &str) {
        let path = self.root.join("etc/zbk.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}\n{extra}")).unwrap();
    }

    /// Runs zbk and insists on an exit status, showing its output otherwise.
    pub fn zbk_expect(&self, code: i32, args: &[&str]) -> Output {
        let out = self.zbk(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "zbk {args:?}: stdout: {} stderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        out
    }

    pub fn host_dataset(&self, host: &str) -> String {
        format!("{}/hosts/{host}", self.name)
    }

    /// A host backed up from a local source tree.
    pub fn add_host(&self, host: &str, source: &Path) {
        let src = format!("{}/", source.display());
        self.zbk_expect(0, &["add", host, "--source", &src]);
    }

    /// A host pulled over ssh from `src` on the test sshd, with `extra` appended to its config.
    pub fn add_remote_host(&self, host: &str, sshd: &sshd::Sshd, src: &Path, extra: &str) {
        let source = format!("root@127.0.0.1:{}/", src.display());
        self.zbk_expect(0, &["add", host, "--source", &source]);
        let config = self.root.join(format!("hosts/{host}/c/zbk.toml"));
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, format!("{text}{}{extra}", sshd.zbk_config())).unwrap();
    }

    /// The short names of a host's snapshots, oldest first.
    pub fn snapshots(&self, host: &str) -> Vec<String> {
        self.snapshot_rows(host, &[])
            .into_iter()
            .map(|mut row| row.swap_remove(0))
            .collect()
    }

    /// A host's snapshots, oldest first: each one's short name, then the values of `props`.
    pub fn snapshot_rows(&self, host: &str, props: &[&str]) -> Vec<Vec<String>> {
        let ds = self.host_dataset(host);
        let columns = std::iter::once("name")
            .chain(props.iter().copied())
            .collect::<Vec<_>>()
            .join(",");
        ok(
            "zfs",
            &[
                "list",
                "-H",
                "-t",
                "snapshot",
                "-d",
                "1",
                "-o",
                &columns,
                "-s",
                "createtxg",
                &ds,
            ],
        )
        .lines()
        .filter_map(|l| {
            let mut row: Vec<String> = l.split('\t').map(str::to_string).collect();
            row[0] = row[0].split_once('@')?.1.to_string();
            Some(row)
        })
        .collect()
    }

    /// A property's value and source, as `zfs get` prints them.
    pub fn prop(&self, dataset: &str, prop: &str) -> (String, String) {
        let out = ok(
            "zfs",
            &["get", "-H", "-p", "-o", "value,source", prop, dataset],
        );
        let line = out.lines().next().unwrap_or_default();
        let (v, s) = line.split_once('\t').unwrap();
        (v.to_string(), s.to_string())
    }

    /// The zbk:* rows of every snapshot in the hosts tree that is not a failed run, as
    /// `name property value source` lines: compared before and after a fault to show that no
    /// good backup lost anything.
    pub fn good_rows(&self) -> Vec<String> {
        let hosts = format!("{}/hosts", self.name);
        let props = "zbk:expires,zbk:tier,zbk:status";
        ok(
            "zfs",
            &[
                "get",
                "-H",
                "-p",
                "-r",
                "-o",
                "name,property,value,source",
                props,
                &hosts,
            ],
        )
        .lines()
        .filter(|l| l.contains('@') && !l.contains("@failed-"))
        .map(str::to_string)
        .collect()
    }

    /// Snapshots `dataset@name` stamped with an expiry as a good default-tier run stamps it,
    /// without a run: for tests of what reap does with many snapshots.
    pub fn stamped_snapshot(&self, dataset: &str, name: &str, expires: &str) {
        ok(
            "zfs",
            &[
                "snapshot",
                "-o",
                &format!("zbk:expires={expires}"),
                "-o",
                "zbk:tier=default",
                "-o",
                "zbk:status=ok",
                &format!("{dataset}@{name}"),
            ],
        );
    }

    pub fn exists(&self, dataset: &str) -> bool {
        sh("zfs", &["list", "-H", "-o", "name", dataset])
            .status
            .success()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // zfs-fuse may still be busy with a just-finished unmount: retry a little. Destroying
        // the pool unmounts it, which must not meet a mount elsewhere: the mount lock.
        let destroy = |args: &[&str]| {
            let out = {
                let _serial = mount_lock();
                sh("zpool", args)
            };
            out.status.success() || text(&out.stderr).contains("no such pool")
        };
        // The backing files may live outside the temporary directory (ZBK_TEST_POOL_DIR); a pool
        // on a device has none.
        let remove_files = || {
            for file in &self.files {
                let _ = std::fs::remove_file(file);
            }
        };
        for attempt in 0..40 {
            if destroy(&["destroy", "-f", &self.name]) {
                remove_files();
                return;
            }
            if attempt == 20 {
                // A pool whose device failed (FAULTED, SUSPENDED) may refuse until its errors
                // are cleared.
                let _ = sh("zpool", &["clear", &self.name]);
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        // The last way to make ZFS forget the pool.
        if destroy(&["export", "-f", &self.name]) {
            remove_files();
            return;
        }
        // The pool stays: so must its backing file, or the pool turns FAULTED and outlives every
        // later sweep. tests/run.sh destroys it once this process has ended.
        self.dir.disable_cleanup(true);
        let msg = format!(
            "could not destroy test pool {} (kept its files {:?}; tests/run.sh removes the pool)",
            self.name, self.files
        );
        if std::thread::panicking() {
            eprintln!("warning: {msg}");
        } else {
            panic!("{msg}");
        }
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A source tree with the things a faithful copy must keep: contents, modes, symlinks, hard
/// links, an empty directory, a nested file.
pub fn sample_tree(dir: &Path) {
    use std::os::unix::fs::{symlink, PermissionsExt};
    std::fs::create_dir_all(dir.join("etc/app")).unwrap();
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    std::fs::write(dir.join("etc/app/app.conf"), "key = value\n").unwrap();
    std::fs::write(dir.join("secret"), "s3cr3t\n").unwrap();
    std::fs::set_permissions(dir.join("secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(dir.join("script.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(
        dir.join("script.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(dir.join("big.bin"), vec![7u8; 300_000]).unwrap();
    symlink("etc/app/app.conf", dir.join("conf-link")).unwrap();
    symlink("/nonexistent/target", dir.join("dangling")).unwrap();
    std::fs::hard_link(dir.join("secret"), dir.join("secret-hardlink")).unwrap();
}

/// Every entry under `dir`, of any kind (files, links, devices, fifos): relative path as
/// bytes, kind, mode, size, link target, content digest and whether it shares an inode with an
/// earlier entry, sorted; two equal manifests mean a faithful copy. Devices and fifos are
/// described, never read.
pub fn manifest(dir: &Path) -> Vec<String> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    let mut inodes: Vec<(u64, String)> = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            // Names as escaped bytes, so that invalid UTF-8 stays distinct.
            let rel = p
                .strip_prefix(dir)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .escape_ascii()
                .to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            let kind = if ft.is_symlink() {
                format!("link->{:?}", std::fs::read_link(&p).unwrap())
            } else if m.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if ft.is_char_device() || ft.is_block_device() {
                format!("dev char={} rdev={:x}", ft.is_char_device(), m.rdev())
            } else if ft.is_fifo() {
                "fifo".to_string()
            } else if ft.is_socket() {
                "socket".to_string()
            } else {
                let bytes = std::fs::read(&p).unwrap();
                let sum: u64 = bytes
                    .iter()
                    .enumerate()
                    .map(|(i, b)| (i as u64 + 1) * *b as u64)
                    .sum();
                let first = inodes
                    .iter()
                    .find(|(ino, _)| *ino == m.ino())
                    .map(|(_, n)| n.clone());
                if first.is_none() {
                    inodes.push((m.ino(), rel.clone()));
                }
                format!(
                    "file len={} sum={sum} nlink={} same-as={first:?}",
                    m.len(),
                    m.nlink()
                )
            };
            let mode = if m.file_type().is_symlink() {
                0
            } else {
                m.mode() & 0o7777
            };
            let mtime = if m.is_dir() { 0 } else { m.mtime() };
            out.push(format!(
                "{rel} {kind} mode={mode:o} uid={} gid={} mtime={mtime}",
                m.uid(),
                m.gid()
            ));
        }
    }
    out.sort();
    out
}

/// A pool for the status and keep suites: hosts `a` (one good run), `b` (no run) and `c` (only
/// a failed run).
pub fn three_hosts() -> Pool {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    std::fs::write(src.join("f"), "x").unwrap();
    pool.add_host("a", &src);
    pool.add_host("b", &src);
    let gone = pool.scratch("gone");
    pool.add_host("c", &gone);
    std::fs::remove_dir(&gone).unwrap();
    pool.zbk_expect(0, &["run", "a"]);
    pool.zbk_expect(1, &["run", "c"]);
    pool
}

/// A command's stdout as JSON.
pub fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stdout)))
}

/// An RFC 3339 time as zbk prints it.
pub fn time(v: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(v)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// `dataset@snapshot` of one of a pool's hosts.
pub fn full(pool: &Pool, host: &str, snap: &str) -> String {
    format!("{}@{snap}", pool.host_dataset(host))
}

/// The path of the real `zfs` on PATH (`/usr/sbin` on zfs-fuse, where the OpenZFS tier's guest
/// has its own): what a shim that injects a fault hands every other call to.
pub fn real_zfs() -> String {
    ok("sh", &["-c", "command -v zfs"]).trim().to_string()
}

/// The built `zbk` with its clock set by libfaketime: `clock` is `FAKETIME`'s value (`@2028-01-02
/// 03:04:05` starts there and runs on, `+3d` and `-1d` are offsets from now). The library is
/// preloaded directly rather than through the `faketime` wrapper: the wrapper makes a POSIX
/// semaphore named after its own pid with O_EXCL, and one left in /dev/shm by a killed wrapper
/// fails a later wrapper that gets the same pid ("sem_open: File exists"), which a long test
/// that starts thousands of processes will meet once pids wrap. Without the wrapper's shared
/// memory every process starts its own clock at `clock`: zbk's children (zfs, rsync, ssh)
/// inherit it, harmlessly, since they only relay to ZFS or measure intervals. The monotonic
/// clock stays real, so deadlines do too.
pub fn zbk_faked(clock: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zbk"));
    cmd.env("LD_PRELOAD", libfaketime())
        .env("FAKETIME", clock)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .env("TZ", "UTC")
        .env_remove("ZBK_ROOT");
    cmd
}

/// Where Debian's libfaketime package put the library (a multiarch directory).
fn libfaketime() -> PathBuf {
    let dirs = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("faketime"))
        .chain([PathBuf::from("/usr/lib/faketime")]);
    for dir in dirs {
        let lib = dir.join("libfaketime.so.1");
        if lib.is_file() {
            return lib;
        }
    }
    panic!("libfaketime.so.1 is not under /usr/lib/*/faketime: apt-get install faketime (tests/run.sh installs it)")
}

/// A `zfs` that logs every call, then runs the real one: counts the processes a command starts.
pub struct CountingZfs {
    dir: tempfile::TempDir,
}

impl CountingZfs {
    pub fn new() -> CountingZfs {
        let real = real_zfs();
        let dir = tempfile::Builder::new()
            .prefix("zfs-call-counter-")
            .tempdir()
            .unwrap();
        let log = dir.path().join("calls");
        let script = format!(
            "#!/bin/sh\n# Counts zfs calls for the test; the real zfs does the work.\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{real}' \"$@\"\n",
            log.display()
        );
        let shim = dir.path().join("zfs");
        std::fs::write(&shim, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        CountingZfs { dir }
    }

    pub fn zbk(&self, pool: &Pool, args: &[&str]) -> std::process::Output {
        let _ = std::fs::remove_file(self.dir.path().join("calls"));
        let path = format!(
            "{}:{}",
            self.dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new(env!("CARGO_BIN_EXE_zbk"))
            .arg("--root")
            .arg(&pool.root)
            .args(args)
            .env("PATH", path)
            .env_remove("ZBK_ROOT")
            .output()
            .unwrap()
    }

    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// A port on 127.0.0.1 that nothing listens on right now (a server may still lose a race for
/// it, as `sshd::Sshd::start` knows).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}
