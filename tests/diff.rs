//! `zbk diff` against a real pool: a scripted change between two runs must come back exactly,
//! path by path, hostile names included, through the tree walk on zfs-fuse and through
//! `zfs diff` on OpenZFS.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use common::{ok, text, Pool};
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// One changed path as `zbk diff --json` gives it: change, type, exact path bytes.
type Seen = (String, String, Vec<u8>);

/// The objects of `zbk diff --json`, one per line, with paths as bytes.
fn json_lines(out: &[u8]) -> Vec<(Seen, serde_json::Value)> {
    text(out)
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let path = match (&v["path"], &v["path_bytes"]) {
                (serde_json::Value::String(s), _) => s.as_bytes().to_vec(),
                (_, serde_json::Value::Array(bytes)) => bytes
                    .iter()
                    .map(|b| u8::try_from(b.as_u64().unwrap()).unwrap())
                    .collect(),
                _ => panic!("no path in {line}"),
            };
            let seen = (
                v["change"].as_str().unwrap().to_string(),
                v["type"].as_str().unwrap().to_string(),
                path,
            );
            (seen, v)
        })
        .collect()
}

fn client(src: &Path, rel: &[u8]) -> Vec<u8> {
    src.join(OsStr::from_bytes(rel))
        .as_os_str()
        .as_bytes()
        .to_vec()
}

/// A host backed up once, then changed by a script and backed up again. Returns the pool,
/// the source, and the script's own list of what it did to files: (change, client path).
fn scripted_change() -> (Pool, PathBuf, BTreeSet<(String, Vec<u8>)>) {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    for dir in ["a", "b", "c"] {
        std::fs::create_dir_all(src.join(dir)).unwrap();
    }
    for rel in [
        "a/gone1", "b/gone2", "a/mod1", "b/mod2", "a/meta1", "c/same",
    ] {
        std::fs::write(src.join(rel), format!("first {rel}\n")).unwrap();
    }
    pool.add_host("h", &src);
    pool.zbk_expect(0, &["run", "h"]);

    let mut done = BTreeSet::new();
    let mut did = |change: &str, rel: &[u8]| {
        done.insert((change.to_string(), client(&src, rel)));
    };
    for rel in [&b"a/new1"[..], b"b/sub/new2", b"c/new\nline", b"c/bad\xff"] {
        let path = src.join(OsStr::from_bytes(rel));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "created\n").unwrap();
        did("+", rel);
    }
    for rel in ["a/gone1", "b/gone2"] {
        std::fs::remove_file(src.join(rel)).unwrap();
        did("-", rel.as_bytes());
    }
    for rel in ["a/mod1", "b/mod2"] {
        std::fs::write(src.join(rel), "rewritten, and longer than before\n").unwrap();
        did("M", rel.as_bytes());
    }
    std::fs::set_permissions(src.join("a/meta1"), std::fs::Permissions::from_mode(0o600)).unwrap();
    did("m", b"a/meta1");
    pool.zbk_expect(0, &["run", "h"]);
    (pool, src, done)
}

/// The regular files among a diff's entries, as (change, path).
fn files(entries: &[(Seen, serde_json::Value)]) -> BTreeSet<(String, Vec<u8>)> {
    entries
        .iter()
        .filter(|((_, kind, _), _)| kind == "F")
        .map(|((change, _, path), _)| (change.clone(), path.clone()))
        .collect()
}

/// What every flavour must give for the scripted change.
fn check_scripted_change(pool: &Pool, src: &Path, done: &BTreeSet<(String, Vec<u8>)>) {
    let out = pool.zbk_expect(0, &["diff", "h", "--json"]);
    let entries = json_lines(&out.stdout);
    assert_eq!(&files(&entries), done, "{}", text(&out.stdout));
    // The new directory is there too, and the sizes are the files' own.
    assert!(entries
        .iter()
        .any(|((c, k, p), _)| c == "+" && k == "/" && *p == client(src, b"b/sub")));
    let (_, modified) = entries
        .iter()
        .find(|((_, _, p), _)| *p == client(src, b"a/mod1"))
        .unwrap();
    assert_eq!(modified["size_before"], "first a/mod1\n".len());
    assert_eq!(
        modified["size_after"],
        "rewritten, and longer than before\n".len()
    );
    let (_, bad) = entries
        .iter()
        .find(|((_, _, p), _)| *p == client(src, b"c/bad\xff"))
        .unwrap();
    assert!(bad["path"].is_null(), "{bad}");

    // Text: one line per path, hostile names escaped, so lines stay lines.
    let out = pool.zbk_expect(0, &["diff", "h"]);
    let lines = text(&out.stdout);
    assert_eq!(lines.lines().count(), entries.len(), "{lines}");
    let src_text = src.display().to_string();
    for want in [
        format!("+ F      8  {src_text}/c/new\\012line"),
        format!("+ F      8  {src_text}/c/bad\\377"),
        format!("- F     14  {src_text}/a/gone1"),
        format!("m F     14  {src_text}/a/meta1"),
    ] {
        assert!(lines.lines().any(|l| l == want), "{want:?} not in\n{lines}");
    }

    // --stat: everything is under the source's top-level directory.
    let out = pool.zbk_expect(0, &["diff", "h", "--stat", "--json"]);
    let stat: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(stat.len(), 1, "{stat:?}");
    let count = |c: &str| entries.iter().filter(|((x, _, _), _)| x == c).count();
    assert_eq!(stat[0]["created"], count("+"));
    assert_eq!(stat[0]["deleted"], count("-"));
    assert_eq!(stat[0]["metadata"], count("m"));
    let top = src.components().take(2).collect::<PathBuf>();
    assert_eq!(stat[0]["dir"], top.display().to_string());

    // --path narrows to one directory of the client.
    let a = format!("{src_text}/a");
    let out = pool.zbk_expect(0, &["diff", "h", "--json", "--path", &a]);
    let narrowed = files(&json_lines(&out.stdout));
    let want: BTreeSet<_> = done
        .iter()
        .filter(|(_, p)| p.starts_with(format!("{a}/").as_bytes()))
        .cloned()
        .collect();
    assert_eq!(narrowed, want);
}

#[test]
fn diff_lists_exactly_what_a_scripted_change_did() {
    let (pool, src, done) = scripted_change();
    check_scripted_change(&pool, &src, &done);
    let snaps = pool.snapshots("h");

    // Named snapshots give the same; a snapshot against itself, nothing.
    let named = pool.zbk_expect(0, &["diff", "h", &snaps[0], &snaps[1], "--json"]);
    assert_eq!(files(&json_lines(&named.stdout)), done);
    let same = pool.zbk_expect(0, &["diff", "h", &snaps[1], &snaps[1]]);
    assert!(same.stdout.is_empty());

    // live: d/ as it is now, against the newest snapshot.
    let live_file = pool
        .root
        .join("hosts/h/d")
        .join(src.strip_prefix("/").unwrap())
        .join("c/after");
    std::fs::write(&live_file, "x").unwrap();
    let out = pool.zbk_expect(0, &["diff", "h", &snaps[1], "live", "--json"]);
    let want: BTreeSet<_> = [("+".to_string(), client(&src, b"c/after"))].into();
    assert_eq!(files(&json_lines(&out.stdout)), want);

    // No temporary clone is left behind to keep a snapshot from being reaped.
    let all = ok("zfs", &["list", "-H", "-r", "-o", "name", &pool.name]);
    assert!(
        !all.lines().any(|l| l.contains("/restore/")),
        "clone left: {all}"
    );

    for (args, want) in [
        (
            vec!["diff", "h", "nosuch"],
            "FROM: h has no snapshot \"nosuch\"",
        ),
        (vec!["diff", "h", "live"], "FROM: must be a snapshot"),
        (vec!["diff", "h", &snaps[1], &snaps[0]], "is newer than TO"),
        (vec!["diff", "h", "--path", "rel"], "--path"),
        (vec!["diff", "h", "a", "b", "c"], "at most two snapshots"),
    ] {
        let out = pool.zbk_expect(2, &args);
        let err = text(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn diff_needs_two_good_snapshots_by_default() {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    std::fs::write(src.join("f"), "x").unwrap();
    pool.add_host("h", &src);
    pool.zbk_expect(0, &["run", "h"]);
    let out = pool.zbk_expect(2, &["diff", "h"]);
    assert!(
        text(&out.stderr).contains("fewer than two good snapshots"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn openzfs_diff_lists_exactly_what_a_scripted_change_did_through_zfs_diff() {
    if !common::only_on(
        common::Flavour::OpenZfs,
        "openzfs_diff_lists_exactly_what_a_scripted_change_did_through_zfs_diff",
        "zfs-fuse has no zfs diff",
    ) {
        return;
    }
    let (pool, src, done) = scripted_change();
    check_scripted_change(&pool, &src, &done);
    // A rename: rsync writes the new name and deletes the old one, which zfs diff reports as
    // such; should the inode survive (a transfer that renames), as one R entry.
    std::fs::rename(src.join("c/same"), src.join("c/moved")).unwrap();
    pool.zbk_expect(0, &["run", "h"]);
    let out = pool.zbk_expect(0, &["diff", "h", "--json"]);
    let got = files(&json_lines(&out.stdout));
    let pair: BTreeSet<_> = [
        ("+".to_string(), client(&src, b"c/moved")),
        ("-".to_string(), client(&src, b"c/same")),
    ]
    .into();
    let renamed: BTreeSet<_> = [("R".to_string(), client(&src, b"c/same"))].into();
    assert!(got == pair || got == renamed, "{}", text(&out.stdout));
}
