//! End-to-end tests of getting files back: `zbk restore` to a directory and to a client over a
//! real sshd, and `zbk versions`, comparing bytes and metadata with the original source.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use common::sshd::Sshd;
use common::{manifest, ok, sample_tree, text, Pool};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The temporary clones a restore may leave: datasets under `<pool>/restore`, and mountpoints
/// under `<root>/etc/restore`.
fn leftovers(pool: &Pool) -> Vec<String> {
    let mut found: Vec<String> = ok("zfs", &["list", "-H", "-r", "-o", "name", &pool.name])
        .lines()
        .filter(|l| l.starts_with(&format!("{}/restore/", pool.name)))
        .map(String::from)
        .collect();
    if let Ok(dir) = std::fs::read_dir(pool.root.join("etc/restore")) {
        found.extend(dir.map(|e| e.unwrap().path().display().to_string()));
    }
    found
}

/// Where a client path lands under a restore directory.
fn under(dir: &Path, client_path: &Path) -> PathBuf {
    dir.join(client_path.strip_prefix("/").unwrap())
}

/// A faithful copy of a tree, as the reference the restores are compared with.
fn reference_copy(pool: &Pool, src: &Path, name: &str) -> PathBuf {
    let copy = pool.scratch(name);
    ok(
        "rsync",
        &[
            "-aH",
            "--numeric-ids",
            &format!("{}/", src.display()),
            &format!("{}/", copy.display()),
        ],
    );
    copy
}

/// A host `h` backed up twice from a sample tree: the first snapshot holds the original
/// tree, the second the tree after a file was deleted and another changed.
struct TwoRuns {
    pool: Pool,
    src: PathBuf,
    original: PathBuf,
    first: String,
    second: String,
}

fn two_runs(source_for: impl Fn(&Path) -> String, extra_config: &str) -> TwoRuns {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    sample_tree(&src);
    // An owner zbk must carry over by number, and a sparse file.
    std::os::unix::fs::chown(src.join("etc/app/app.conf"), Some(1234), Some(5678)).unwrap();
    let sparse = std::fs::File::create(src.join("sparse.img")).unwrap();
    sparse.set_len(20 << 20).unwrap();
    std::fs::write(src.join("etc/app/other.conf"), "other\n").unwrap();
    let original = reference_copy(&pool, &src, "original");
    pool.zbk_expect(0, &["add", "h", "--source", &source_for(&src)]);
    if !extra_config.is_empty() {
        let config = pool.root.join("hosts/h/c/zbk.toml");
        let text_ = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, format!("{text_}{extra_config}")).unwrap();
    }
    pool.zbk_expect(0, &["run", "h"]);
    std::fs::remove_file(src.join("secret")).unwrap();
    std::fs::write(src.join("etc/app/app.conf"), "key = changed\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    pool.zbk_expect(0, &["run", "h"]);
    let snaps = pool.snapshots("h");
    assert_eq!(snaps.len(), 2);
    TwoRuns {
        first: snaps[0].clone(),
        second: snaps[1].clone(),
        pool,
        src,
        original,
    }
}

fn local(src: &Path) -> String {
    format!("{}/", src.display())
}

#[test]
fn restore_to_a_directory_brings_back_trees_files_and_deleted_files() {
    let t = two_runs(local, "");
    let pool = &t.pool;

    // The whole tree from the newest snapshot: what the source is now.
    let out_dir = pool.scratch("out-newest");
    let src = t.src.to_str().unwrap();
    let out = pool.zbk_expect(0, &["restore", "h", src, "--to", out_dir.to_str().unwrap()]);
    assert!(
        text(&out.stdout).contains(&t.second),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(manifest(&under(&out_dir, &t.src)), manifest(&t.src));
    assert!(leftovers(pool).is_empty(), "{:?}", leftovers(pool));

    // The whole tree as it was, from the first snapshot by name.
    let out_dir = pool.scratch("out-first");
    pool.zbk_expect(
        0,
        &[
            "restore",
            "h",
            "--snapshot",
            &t.first,
            src,
            "--to",
            out_dir.to_str().unwrap(),
        ],
    );
    let restored = under(&out_dir, &t.src);
    assert_eq!(manifest(&restored), manifest(&t.original));
    let sparse = std::fs::metadata(restored.join("sparse.img")).unwrap();
    assert_eq!(sparse.len(), 20 << 20);
    assert!(
        sparse.blocks() * 512 < 1 << 20,
        "sparse file restored dense: {} blocks",
        sparse.blocks()
    );

    // Single files, among them the deleted one and its hard link, by --at.
    let out_dir = pool.scratch("out-files");
    let file = |rel: &str| t.src.join(rel).display().to_string();
    let (created, _) = pool.prop(
        &format!("{}@{}", pool.host_dataset("h"), t.first),
        "creation",
    );
    let at = chrono::DateTime::from_timestamp(created.parse::<i64>().unwrap(), 0)
        .unwrap()
        .to_rfc3339();
    pool.zbk_expect(
        0,
        &[
            "restore",
            "h",
            "--at",
            &at,
            &file("secret"),
            &file("secret-hardlink"),
            &file("etc/app/app.conf"),
            &file("conf-link"),
            "--to",
            out_dir.to_str().unwrap(),
        ],
    );
    let restored = under(&out_dir, &t.src);
    let want: Vec<String> = manifest(&t.original)
        .into_iter()
        .filter(|l| {
            [
                "secret ",
                "secret-hardlink ",
                "etc/app/app.conf ",
                "conf-link ",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .collect();
    let got: Vec<String> = manifest(&restored)
        .into_iter()
        .filter(|l| !l.contains(" dir mode="))
        .collect();
    assert_eq!(got, want);
    assert_eq!(std::fs::read(restored.join("secret")).unwrap(), b"s3cr3t\n");
    let conf = std::fs::metadata(restored.join("etc/app/app.conf")).unwrap();
    assert_eq!((conf.uid(), conf.gid()), (1234, 5678));
    assert!(
        !restored.join("etc/app/other.conf").exists(),
        "only the named files"
    );
    assert!(leftovers(pool).is_empty(), "{:?}", leftovers(pool));
}

#[test]
fn a_failed_or_refused_restore_changes_nothing_and_leaves_no_clone() {
    let t = two_runs(local, "");
    let pool = &t.pool;
    let out_dir = pool.scratch("out");
    let to = out_dir.to_str().unwrap();
    let src = t.src.display().to_string();
    // A symlink to a directory outside the snapshot, backed up as a symlink.
    std::os::unix::fs::symlink("/etc", t.src.join("escape")).unwrap();
    pool.zbk_expect(0, &["run", "h"]);

    let hosts = pool.root.join("hosts/h/d").display().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![format!("{src}/nonexistent")], "not in snapshot"),
        (
            vec![format!("{src}/escape/hostname")],
            "is a symlink in snapshot",
        ),
        (vec![format!("{src}/secret-hardlink/x")], "not in snapshot"),
        (
            vec!["relative/path".into()],
            "PATH \"relative/path\": not an absolute path",
        ),
        (vec![format!("{src}/../../etc/passwd")], "'..'"),
        (
            vec![src.clone(), "--snapshot".into(), "nosuch".into()],
            "--snapshot: h has no snapshot",
        ),
        (
            vec![src.clone(), "--at".into(), "2001-01-01T00:00:00Z".into()],
            "--at: h has no good snapshot",
        ),
        (
            vec![src.clone(), "--at".into(), "yesterday".into()],
            "--at: invalid time",
        ),
        (
            vec![src.clone(), "--to-host".into()],
            "--to DIR or --to-host",
        ),
        (
            vec![src.clone(), "--target".into(), "/x".into()],
            "--target: only with --to-host",
        ),
        (vec![], "at least one PATH"),
    ];
    for (extra, why) in cases {
        let mut args = vec!["restore".to_string(), "h".into()];
        args.extend(extra);
        args.extend(["--to".into(), to.into()]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = pool.zbk_expect(2, &refs);
        let err = text(&out.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(
            leftovers(pool).is_empty(),
            "{args:?}: {:?}",
            leftovers(pool)
        );
    }
    let out = pool.zbk_expect(2, &["restore", "h", &src, "--to", &format!("{hosts}/x")]);
    assert!(
        text(&out.stderr).contains("inside the backups"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_dir(&out_dir).unwrap().count(),
        0,
        "nothing restored"
    );

    // Local-only sources cannot be pushed back.
    let out = pool.zbk_expect(2, &["restore", "h", &src, "--to-host"]);
    assert!(
        text(&out.stderr).contains("only local sources"),
        "{}",
        text(&out.stderr)
    );

    // The snapshots stay reapable: no clone depends on them.
    for snap in pool.snapshots("h") {
        let full = format!("{}@{snap}", pool.host_dataset("h"));
        assert_eq!(pool.prop(&full, "numclones").0, "0", "{full}");
    }
}

#[test]
fn dry_run_prints_the_rsync_command_and_copies_nothing() {
    let t = two_runs(local, "");
    let out_dir = t.pool.scratch("out");
    let src = t.src.display().to_string();
    let out = t.pool.zbk_expect(
        0,
        &[
            "restore",
            "h",
            &src,
            "--to",
            out_dir.to_str().unwrap(),
            "--dry-run",
        ],
    );
    let printed = text(&out.stdout);
    let cmd = printed
        .lines()
        .find(|l| l.contains("rsync"))
        .unwrap_or_else(|| panic!("{printed}"));
    for arg in [
        "--archive",
        "--hard-links",
        "--numeric-ids",
        "--relative",
        "--sparse",
    ] {
        assert!(cmd.contains(arg), "{arg}: {cmd}");
    }
    for arg in ["--delete", "--inplace", "-L", "--copy-links"] {
        assert!(!cmd.split(' ').any(|w| w == arg), "{arg}: {cmd}");
    }
    assert!(cmd.contains(&format!("/d/.{src}")), "{cmd}");
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0);
    assert!(leftovers(&t.pool).is_empty());
}

#[test]
fn restore_to_the_client_over_ssh_puts_files_back_in_place() {
    let sshd = Sshd::start();
    let t = two_runs(
        |src| format!("root@127.0.0.1:{}/", src.display()),
        &sshd.zbk_config(),
    );
    let pool = &t.pool;
    let src = t.src.display().to_string();

    // A deleted file and a changed one, back where they were, as they were.
    let out = pool.zbk_expect(
        0,
        &[
            "restore",
            "h",
            "--snapshot",
            &t.first,
            &format!("{src}/secret"),
            &format!("{src}/etc/app/app.conf"),
            "--to-host",
        ],
    );
    assert!(
        text(&out.stdout).contains("root@127.0.0.1:/"),
        "{}",
        text(&out.stdout)
    );
    // The hard link to secret stayed on the client, so the restored secret has a link count
    // of its own; everything else must be as it was.
    let pick = |m: Vec<String>| -> Vec<String> {
        m.into_iter()
            .filter(|l| l.starts_with("secret ") || l.starts_with("etc/app/app.conf "))
            .map(|l| l.replace("nlink=2", "nlink=1"))
            .collect()
    };
    let now = manifest(&t.src);
    let was = manifest(&t.original);
    assert_eq!(pick(now.clone()), pick(was.clone()));

    // A whole tree into another place on the client, with --target.
    let target = pool.scratch("client-target");
    pool.zbk_expect(
        0,
        &[
            "restore",
            "h",
            "--snapshot",
            &t.first,
            &src,
            "--to-host",
            "--target",
            target.to_str().unwrap(),
        ],
    );
    assert_eq!(manifest(&under(&target, &t.src)), was);
    assert!(leftovers(pool).is_empty(), "{:?}", leftovers(pool));

    // --dry-run shows the remote shell zbk would use.
    let out = pool.zbk_expect(0, &["restore", "h", &src, "--to-host", "--dry-run"]);
    let printed = text(&out.stdout);
    assert!(
        printed.contains(&format!("-p {}", sshd.port)) && printed.contains("BatchMode=yes"),
        "{printed}"
    );
    let out = pool.zbk_expect(
        2,
        &["restore", "h", &src, "--to-host", "--target", "relative"],
    );
    assert!(
        text(&out.stderr).contains("--target"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_sshd_harness_accepts_its_key() {
    let sshd = Sshd::start();
    let mut args = sshd.ssh_args();
    args.extend(["root@127.0.0.1".to_string(), "echo".into(), "hello".into()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(ok("ssh", &refs), "hello\n");
}

#[test]
fn versions_lists_each_distinct_version_once() {
    let t = two_runs(local, "");
    let pool = &t.pool;
    std::thread::sleep(std::time::Duration::from_millis(1100));
    pool.zbk_expect(0, &["run", "h"]);
    let conf = t.src.join("etc/app/app.conf").display().to_string();
    let out = pool.zbk_expect(0, &["versions", "h", &conf]);
    let table = text(&out.stdout);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert_eq!(
        &rows[0][1..],
        ["12", t.first.as_str(), t.first.as_str(), "1"],
        "{table}"
    );
    assert_eq!(
        &rows[1][1..],
        ["14", t.second.as_str(), "(live", "d/)", "3"],
        "{table}"
    );
    let mtime = std::fs::metadata(&conf).unwrap().mtime();
    let shown = chrono::DateTime::parse_from_rfc3339(rows[1][0])
        .unwrap()
        .timestamp();
    assert_eq!(shown, mtime);

    let secret = t.src.join("secret").display().to_string();
    let out = pool.zbk_expect(0, &["versions", "h", &secret]);
    assert_eq!(
        text(&out.stdout).lines().count(),
        2,
        "{}",
        text(&out.stdout)
    );
    let out = pool.zbk_expect(
        1,
        &["versions", "h", &format!("{}/nonexistent", t.src.display())],
    );
    assert!(
        text(&out.stderr).contains("in no snapshot"),
        "{}",
        text(&out.stderr)
    );
    pool.zbk_expect(2, &["versions", "h", "relative"]);
    assert!(leftovers(pool).is_empty(), "{:?}", leftovers(pool));
}
