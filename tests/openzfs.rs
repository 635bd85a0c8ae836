//! What only real OpenZFS can prove (run by tests/openzfs.sh inside the OpenZFS VM): ACL, xattr,
//! sparse, hard-link and nanosecond-mtime fidelity from client to snapshot and back; reap's
//! comma-list destroys, counted; restores through `.zfs/snapshot` with no clone; init's dataset
//! properties and doctor's flavour line; replication's holds on both sides and an interrupted
//! receive. On zfs-fuse each test says why it is skipped and returns.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use common::sshd::Sshd;
use common::{ok, only_on, sh, text, CountingZfs, Flavour, Pool};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A dataset of the test pool with ACLs and xattrs stored like a Linux client's filesystem and
/// no compression, so that a file written without holes takes its blocks.
fn plain_fs(pool: &Pool, name: &str) -> PathBuf {
    let ds = format!("{}/{name}", pool.name);
    let _serial = common::mount_lock();
    ok(
        "zfs",
        &[
            "create",
            "-o",
            "acltype=posix",
            "-o",
            "xattr=sa",
            "-o",
            "compression=off",
            &ds,
        ],
    );
    pool.root.join(name)
}

fn run(program: &str, args: &[&str], dir: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}; tests/openzfs.sh installs it"));
    assert!(
        out.status.success(),
        "{program} {args:?} in {}: {}",
        dir.display(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A client tree with what a careless copy loses: access and default ACLs, user.* and
/// trusted.* xattrs, a sparse file, hard links, a symlink and nanosecond mtimes.
fn rich_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("shared/sub")).unwrap();
    std::fs::write(dir.join("shared/report.txt"), "quarterly figures\n").unwrap();
    std::fs::write(dir.join("shared/sub/notes"), "notes\n").unwrap();
    std::fs::write(dir.join("plain"), "plain\n").unwrap();
    std::fs::hard_link(dir.join("plain"), dir.join("plain-link")).unwrap();
    std::os::unix::fs::symlink("shared/report.txt", dir.join("report-link")).unwrap();
    // 64 MiB with 4 KiB of data in the middle: a copy that fills the hole takes 64 MiB.
    let f = std::fs::File::create(dir.join("sparse.img")).unwrap();
    f.set_len(64 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[0xab; 4096], 32 << 20).unwrap();
    drop(f);
    run(
        "setfacl",
        &["-m", "u:1234:rw,g:2345:r", "shared/report.txt"],
        dir,
    );
    run("setfacl", &["-m", "u:1234:rwx", "shared"], dir);
    run(
        "setfacl",
        &["-d", "-m", "u:1234:rwx,g:2345:rx", "shared"],
        dir,
    );
    run(
        "setfattr",
        &["-n", "user.colour", "-v", "blue", "plain"],
        dir,
    );
    run(
        "setfattr",
        &["-n", "user.dir-note", "-v", "kept", "shared"],
        dir,
    );
    run(
        "setfattr",
        &[
            "-n",
            "trusted.zbk-test",
            "-v",
            "0x00ff10",
            "shared/report.txt",
        ],
        dir,
    );
    // Last, since setting ACLs and xattrs on a directory's entries would move its mtime.
    for (path, when) in [
        ("plain", "2021-03-04 05:06:07.123456789"),
        ("shared/report.txt", "2022-01-02 03:04:05.987654321"),
        ("shared/sub/notes", "2020-02-29 23:59:59.000000001"),
        ("sparse.img", "2019-12-31 12:00:00.5"),
        ("shared/sub", "2018-06-07 08:09:10.111111111"),
        ("shared", "2018-06-07 08:09:10.222222222"),
    ] {
        run("touch", &["-h", "-d", when, path], dir);
    }
}

/// Everything a restore must bring back, as text to compare: ACLs (getfacl), every xattr
/// namespace root can read (getfattr), and per entry its type, mode, owner, size, link count,
/// nanosecond mtime and which entries share an inode.
fn fidelity(dir: &Path) -> String {
    // Both tools print one block per file in directory order, which differs between copies.
    let by_file = |out: String| {
        let mut blocks: Vec<String> = out
            .split("\n\n")
            .map(|b| b.trim().to_string())
            .filter(|b| !b.is_empty())
            .collect();
        blocks.sort();
        blocks.join("\n\n")
    };
    let acls = by_file(run("getfacl", &["-R", "-p", "-P", "."], dir));
    let xattrs = by_file(run(
        "getfattr",
        &["-R", "-P", "-h", "-d", "-m", "-", "-e", "hex", "."],
        dir,
    ));
    let stats = run(
        "find",
        &[
            ".",
            "-mindepth",
            "1",
            "(",
            "-type",
            "d",
            "-printf",
            "%p %y %m %U:%G %T@\\n",
            ")",
            "-o",
            "(",
            "-printf",
            "%p %y %m %U:%G size=%s links=%n %T@ %l\\n",
            ")",
        ],
        dir,
    );
    let mut stats: Vec<&str> = stats.lines().collect();
    stats.sort();
    let mut by_inode: Vec<(u64, String)> = Vec::new();
    for line in &stats {
        let path = dir.join(line.split(' ').next().unwrap());
        let m = std::fs::symlink_metadata(&path).unwrap();
        if m.is_file() && m.nlink() > 1 {
            by_inode.push((m.ino(), line.split(' ').next().unwrap().to_string()));
        }
    }
    by_inode.sort();
    let groups: Vec<String> = by_inode
        .chunk_by(|a, b| a.0 == b.0)
        .map(|g| {
            g.iter()
                .map(|(_, p)| p.as_str())
                .collect::<Vec<_>>()
                .join("=")
        })
        .collect();
    format!(
        "{acls}\n{xattrs}\n{}\nhard links: {}",
        stats.join("\n"),
        groups.join(" ")
    )
}

/// Where a restore under `to` puts the client directory `client` (restores keep full paths).
fn under(to: &Path, client: &Path) -> PathBuf {
    to.join(client.strip_prefix("/").unwrap())
}

/// Allocated bytes of a file.
fn allocated(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().blocks() * 512
}

#[test]
fn openzfs_acls_xattrs_sparse_links_and_nanosecond_mtimes_survive_backup_and_restore() {
    if !only_on(
        Flavour::OpenZfs,
        "openzfs_acls_xattrs_sparse_links_and_nanosecond_mtimes_survive_backup_and_restore",
        "zfs-fuse stores no ACLs or xattrs and keeps whole-second mtimes",
    ) {
        return;
    }
    let pool = Pool::initialised();
    let client = plain_fs(&pool, "client");
    rich_tree(&client);
    let want = fidelity(&client);
    assert!(
        want.contains("user:1234:rw-") && want.contains("default:group:2345:r-x"),
        "the source tree lacks its ACLs: {want}"
    );
    assert!(want.contains("trusted.zbk-test=0x00ff10"), "{want}");
    assert!(want.contains(".123456789"), "no nanosecond mtime: {want}");

    // Pulled over ssh, as from a real client.
    let sshd = Sshd::start();
    pool.add_remote_host("c1", &sshd, &client, "");
    pool.zbk_expect(0, &["run", "c1"]);
    let snap = pool.snapshots("c1").pop().expect("a snapshot");
    let in_snapshot = pool
        .root
        .join("hosts/c1/.zfs/snapshot")
        .join(&snap)
        .join("d");
    assert_eq!(
        fidelity(&under(&in_snapshot, &client)),
        want,
        "the snapshot differs from the client"
    );

    // To a directory on the server.
    let restored = plain_fs(&pool, "restored");
    pool.zbk_expect(
        0,
        &[
            "restore",
            "c1",
            client.to_str().unwrap(),
            "--to",
            restored.to_str().unwrap(),
        ],
    );
    let back = under(&restored, &client);
    assert_eq!(fidelity(&back), want, "restored to a directory");
    assert!(
        allocated(&back.join("sparse.img")) < 8 << 20,
        "the hole was filled: {} bytes allocated",
        allocated(&back.join("sparse.img"))
    );

    // Back onto the client, under another directory there.
    let target = plain_fs(&pool, "client-target");
    pool.zbk_expect(
        0,
        &[
            "restore",
            "c1",
            client.to_str().unwrap(),
            "--to-host",
            "--target",
            target.to_str().unwrap(),
        ],
    );
    let back = under(&target, &client);
    assert_eq!(fidelity(&back), want, "restored to the client");
    assert!(allocated(&back.join("sparse.img")) < 8 << 20);
}

/// Snapshot names as runs make them: reap destroys no other kind.
const NEW: &str = "2001-01-02T000000Z";

fn again(i: usize) -> String {
    format!("2001-01-03T00{i:02}00Z")
}

#[test]
fn openzfs_reap_destroys_in_comma_list_batches_and_reports_held_and_cloned() {
    if !only_on(
        Flavour::OpenZfs,
        "openzfs_reap_destroys_in_comma_list_batches_and_reports_held_and_cloned",
        "zfs-fuse destroys one snapshot per call",
    ) {
        return;
    }
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    std::fs::write(src.join("f"), "x").unwrap();
    // A top-level key: before the file's first table.
    let etc = pool.root.join("etc/zbk.toml");
    let config = std::fs::read_to_string(&etc).unwrap();
    std::fs::write(&etc, format!("destroy_batch = 5\n{config}")).unwrap();
    for h in ["a", "b"] {
        pool.add_host(h, &src);
        let ds = pool.host_dataset(h);
        for i in 0..12 {
            pool.stamped_snapshot(
                &ds,
                &format!("2001-01-01T00{i:02}00Z"),
                "2001-01-01T00:00:00Z",
            );
        }
        pool.stamped_snapshot(&ds, NEW, "2099-01-01T00:00:00Z");
    }

    let zfs = CountingZfs::new();
    let out = zfs.zbk(&pool, &["reap"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let calls = zfs.calls();
    let destroys: Vec<&String> = calls.iter().filter(|c| c.starts_with("destroy")).collect();
    let others: Vec<&String> = calls.iter().filter(|c| !c.starts_with("destroy")).collect();
    // 12 expired per host in lists of at most 5: 5 + 5 + 2, twice.
    assert_eq!(destroys.len(), 6, "{calls:#?}");
    for d in &destroys {
        let names = d.split_once('@').unwrap().1.split(',').count();
        assert!(names <= 5, "a batch over destroy_batch: {d}");
    }
    // Then each host's record (zbk-check(8), RECORDS): whether it is a replica, its listing,
    // and the record set on it.
    let records = calls
        .iter()
        .filter(|c| c.starts_with("set zbk:record="))
        .count();
    assert_eq!(records, 2, "{calls:#?}");
    // A host's listing is read again, once, when it falls in the second of the dataset's last
    // change (`record_host`: `snapshots_changed` counts whole seconds); that is timing, not
    // batching, so it is counted apart.
    let rereads: usize = ["a", "b"]
        .iter()
        .map(|h| {
            let listing = format!(" {}", pool.host_dataset(h));
            let reads = others
                .iter()
                .filter(|c| c.starts_with("get -H -p -d 1") && c.ends_with(&listing))
                .count();
            assert!(
                (1..=2).contains(&reads),
                "{h} listed {reads} times: {calls:#?}"
            );
            reads - 1
        })
        .sum();
    assert_eq!(
        others.len() - rereads,
        2 + 3 * records,
        "one flavour probe and one listing, then three calls per record: {calls:#?}"
    );
    assert!(
        others.iter().any(|c| c.starts_with("version")),
        "{calls:#?}"
    );
    for h in ["a", "b"] {
        assert_eq!(pool.snapshots(h), [NEW]);
    }

    // A held and a cloned snapshot among the expired: skipped and named, the rest still go.
    let ds = pool.host_dataset("a");
    for i in 0..6 {
        pool.stamped_snapshot(&ds, &again(i), "2001-01-01T00:00:00Z");
    }
    ok("zfs", &["hold", "keep-me", &format!("{ds}@{}", again(1))]);
    {
        let _serial = common::mount_lock();
        ok(
            "zfs",
            &[
                "clone",
                &format!("{ds}@{}", again(4)),
                &format!("{}/a-clone", pool.name),
            ],
        );
    }
    let out = zfs.zbk(&pool, &["reap"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&again(1)) && stderr.contains(&again(4)),
        "{stderr}"
    );
    // again5, the newest good snapshot, stays too: reap never takes the last good backup.
    assert_eq!(
        pool.snapshots("a"),
        [NEW.to_string(), again(1), again(4), again(5)]
    );
    let holds = ok("zfs", &["holds", "-H", &format!("{ds}@{}", again(1))]);
    assert!(holds.contains("keep-me"), "{holds}");
}

#[test]
fn openzfs_restore_reads_through_dot_zfs_with_no_clone_even_when_snapdir_is_hidden() {
    if !only_on(
        Flavour::OpenZfs,
        "openzfs_restore_reads_through_dot_zfs_with_no_clone_even_when_snapdir_is_hidden",
        "zfs-fuse has no .zfs/snapshot; it restores through a clone",
    ) {
        return;
    }
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    common::sample_tree(&src);
    pool.add_host("h", &src);
    pool.zbk_expect(0, &["run", "h"]);
    let snap = pool.snapshots("h").pop().unwrap();
    let ds = pool.host_dataset("h");
    let expected = common::manifest(&src);
    let source = src.to_str().unwrap();
    let reads = pool
        .root
        .join("hosts/h/.zfs/snapshot")
        .join(&snap)
        .join("d");

    for snapdir in ["visible", "hidden"] {
        ok("zfs", &["set", &format!("snapdir={snapdir}"), &ds]);
        let to = pool.scratch(&format!("to-{snapdir}"));
        let to_arg = to.to_str().unwrap();
        // The dry run names the very directory the restore reads.
        let out = pool.zbk_expect(0, &["restore", "h", source, "--to", to_arg, "--dry-run"]);
        let printed = text(&out.stdout);
        assert!(
            printed.contains(&format!("{}/.{}", reads.display(), source)),
            "snapdir={snapdir}: the dry run does not name {}: {printed}",
            reads.display()
        );
        assert!(!printed.contains("clone"), "{printed}");
        pool.zbk_expect(0, &["restore", "h", source, "--to", to_arg]);
        assert_eq!(
            common::manifest(&under(&to, &src)),
            expected,
            "snapdir={snapdir}"
        );
        let datasets = ok("zfs", &["list", "-H", "-r", "-o", "name", &pool.name]);
        assert!(
            !datasets.contains("/restore"),
            "a clone was made: {datasets}"
        );
        let clones = pool.prop(&format!("{ds}@{snap}"), "clones").0;
        assert!(!clones.contains('/'), "cloned: {clones}");
    }
    // Hidden means unlisted, not unreachable.
    let listed = std::fs::read_dir(pool.root.join("hosts/h"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect::<Vec<_>>();
    assert!(!listed.contains(&".zfs".to_string()), "{listed:?}");
}

#[test]
fn openzfs_init_stores_acls_and_xattrs_and_doctor_names_the_flavour() {
    if !only_on(
        Flavour::OpenZfs,
        "openzfs_init_stores_acls_and_xattrs_and_doctor_names_the_flavour",
        "acltype and xattr=sa are OpenZFS properties",
    ) {
        return;
    }
    let pool = Pool::initialised();
    let hosts = format!("{}/hosts", pool.name);
    assert_eq!(
        pool.prop(&hosts, "acltype"),
        ("posix".into(), "local".into())
    );
    assert_eq!(pool.prop(&hosts, "xattr"), ("sa".into(), "local".into()));
    let src = pool.scratch("src");
    std::fs::write(src.join("f"), "x").unwrap();
    pool.add_host("h", &src);
    let ds = pool.host_dataset("h");
    assert_eq!(pool.prop(&ds, "acltype").0, "posix", "a host inherits it");
    let out = pool.zbk(&["doctor"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("ok: zfs is OpenZFS"),
        "doctor does not name the flavour: {stdout}"
    );
}

fn userrefs(snapshot: &str) -> String {
    ok("zfs", &["get", "-H", "-o", "value", "userrefs", snapshot])
        .trim()
        .to_string()
}

#[test]
fn openzfs_replicate_holds_on_both_sides_and_recovers_from_a_killed_receive() {
    if !only_on(
        Flavour::OpenZfs,
        "openzfs_replicate_holds_on_both_sides_and_recovers_from_a_killed_receive",
        "zfs-fuse's send streams and holds differ",
    ) {
        return;
    }
    let pool = Pool::initialised();
    let target = Pool::new();
    let src = pool.scratch("src");
    common::sample_tree(&src);
    pool.add_host("h", &src);
    pool.zbk_expect(0, &["run", "h"]);
    let to = format!("{}/offsite", target.name);
    ok("zfs", &["create", "-o", "mountpoint=none", &to]);
    pool.zbk_expect(0, &["replicate", "--to", &to]);
    let first = pool.snapshots("h").pop().unwrap();
    let here = format!("{}@{first}", pool.host_dataset("h"));
    let there = format!("{to}/hosts/h@{first}");
    assert_eq!(userrefs(&here), "1", "the common snapshot is held here");
    let holds = ok("zfs", &["holds", "-H", &here]);
    assert!(holds.contains("zbk-replica"), "{holds}");
    let received = ok(
        "zfs",
        &["get", "-H", "-o", "value,source", "zbk:expires", &there],
    );
    assert!(received.ends_with("\treceived\n"), "{received}");

    // A bigger increment, and its receive killed while the stream flows.
    let big = src.join("big.random");
    ok(
        "dd",
        &[
            "if=/dev/urandom",
            &format!("of={}", big.display()),
            "bs=1M",
            "count=96",
            "status=none",
        ],
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    pool.zbk_expect(0, &["run", "h"]);
    let second = pool.snapshots("h").pop().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_zbk"))
        .arg("--root")
        .arg(&pool.root)
        .args(["replicate", "--to", &to])
        .env_remove("ZBK_ROOT")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut killed = false;
    for _ in 0..400 {
        let out = sh("pkill", &["-9", "-f", &format!("zfs receive -u {to}/")]);
        if out.status.success() {
            killed = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let out = child.wait_with_output().unwrap();
    assert!(killed, "the receive ended before it could be killed");
    assert_ne!(out.status.code(), Some(0), "a killed receive is a failure");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("replication stopped"), "{stderr}");
    // zfs receive commits a snapshot whole or not at all: a kill that lands after the last
    // record leaves the full copy, any earlier one leaves nothing of it.
    let copies = ok("zfs", &["list", "-H", "-t", "all", "-r", "-o", "name", &to]);
    let landed = copies.contains(&second);
    eprintln!(
        "the killed receive left the copy {}",
        if landed { "whole" } else { "out" }
    );
    assert_eq!(
        userrefs(&here),
        "1",
        "the old common snapshot is still held"
    );

    // The next replicate starts over from the common snapshot and completes.
    pool.zbk_expect(0, &["replicate", "--to", &to]);
    let there2 = format!("{to}/hosts/h@{second}");
    assert!(target.exists(&there2));
    assert_eq!(
        userrefs(&format!("{}@{second}", pool.host_dataset("h"))),
        "1"
    );
    assert_eq!(userrefs(&here), "0", "the old hold is released");
    assert_eq!(userrefs(&there), "0", "the target's old hold is released");
    let theirs = ok("zfs", &["holds", "-H", &there2]);
    assert!(
        theirs.contains("zbk-replica"),
        "the target holds its newest copy: {theirs}"
    );
    // The copy's bytes are the snapshot's: the copy is never mounted, so mount its snapshot.
    let view = target.scratch("view");
    ok("mount", &["-t", "zfs", &there2, view.to_str().unwrap()]);
    let theirs = common::manifest(&view.join("d"));
    ok("umount", &[view.to_str().unwrap()]);
    let ours = common::manifest(
        &pool
            .root
            .join("hosts/h/.zfs/snapshot")
            .join(&second)
            .join("d"),
    );
    assert_eq!(theirs, ours);
}

#[test]
fn openzfs_a_dataset_with_xattr_off_keeps_acls_and_leaves_only_xattrs_out() {
    if !only_on(
        Flavour::OpenZfs,
        "openzfs_a_dataset_with_xattr_off_keeps_acls_and_leaves_only_xattrs_out",
        "the xattr property is OpenZFS's",
    ) {
        return;
    }
    let pool = Pool::initialised();
    let client = plain_fs(&pool, "client");
    rich_tree(&client);
    pool.zbk_expect(
        0,
        &["add", "h", "--source", &format!("{}/", client.display())],
    );
    ok("zfs", &["set", "xattr=off", &pool.host_dataset("h")]);
    pool.zbk_expect(0, &["run", "h"]);
    let snap = pool.snapshots("h").pop().unwrap();
    let full = format!("{}@{snap}", pool.host_dataset("h"));
    assert_eq!(pool.prop(&full, "zbk:status").0, "ok");
    let log = std::fs::read_to_string(pool.root.join(format!("hosts/h/l/{snap}.log"))).unwrap();
    let said: Vec<&str> = log.lines().filter(|l| l.contains("runs without")).collect();
    assert_eq!(
        said,
        ["zbk: rsync runs without --xattrs: the dataset has xattr=off"],
        "{log}"
    );
    let argv = log.lines().find(|l| l.starts_with("$ ")).unwrap();
    assert!(
        argv.contains("--acls") && !argv.contains("--xattrs"),
        "{argv}"
    );
    let copy = under(&pool.root.join("hosts/h/d"), &client);
    let acl = run("getfacl", &["-p", "shared/report.txt"], &copy);
    assert!(acl.contains("user:1234:rw-"), "ACLs are kept: {acl}");
    let xattrs = run("getfattr", &["-d", "plain"], &copy);
    assert!(!xattrs.contains("user.colour"), "{xattrs}");
}
