//! `zbk verify` end to end: a real pool, real rsync, a real sshd behind the `rrsync -ro` key
//! `zbk authorize` prints: a silent difference (a byte changed under the same size and mtime)
//! is named and nothing else is, slices cover every file once, the stamp, and `zbk check`'s
//! transitions (CRITICAL until --ack, a warning once the tree was not verified in time).

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use common::sshd::Sshd;
use common::{json, ok, sample_tree, text, Pool};
use std::path::Path;
use std::process::Output;

/// A tree of the sample files and `n` more small ones in a few directories.
fn tree(dir: &Path, n: usize) {
    sample_tree(dir);
    for i in 0..n {
        let sub = dir.join(format!("data/d{}", i % 7));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("f{i:03}.txt")), format!("file {i}\n")).unwrap();
    }
}

/// Regular files under `dir`, as rsync counts them (each hard link too).
fn regular_files(dir: &Path) -> u64 {
    ok("find", &[dir.to_str().unwrap(), "-type", "f"])
        .lines()
        .count() as u64
}

/// Changes one byte of `path` and puts back its size and mtime, as `touch -r` from a copy
/// made before: the change rsync's quick check never sees.
fn change_silently(path: &Path) {
    let reference = path.with_extension("mtime-reference");
    ok(
        "cp",
        &["-p", path.to_str().unwrap(), reference.to_str().unwrap()],
    );
    let mut bytes = std::fs::read(path).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(path, &bytes).unwrap();
    ok(
        "touch",
        &["-r", reference.to_str().unwrap(), path.to_str().unwrap()],
    );
    std::fs::remove_file(&reference).unwrap();
}

/// The host's newest snapshot's `zbk:verified`, as the fields of its value.
fn stamp(pool: &Pool, host: &str) -> std::collections::BTreeMap<String, String> {
    let snap = pool.snapshots(host).last().unwrap().clone();
    let (value, source) = pool.prop(
        &format!("{}@{snap}", pool.host_dataset(host)),
        "zbk:verified",
    );
    assert_eq!(source, "local", "no stamp on {host}@{snap}: {value}");
    value
        .split(' ')
        .map(|w| {
            let (k, v) = w.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The lines of zbk's stderr that name a silent difference.
fn silent_lines(out: &Output) -> Vec<String> {
    text(&out.stderr)
        .lines()
        .filter(|l| l.contains(": silent difference: "))
        .map(String::from)
        .collect()
}

/// zbk as it would run `days` days from now (faketime moves its clock and nothing else's).
fn zbk_later(pool: &Pool, days: u32, args: &[&str]) -> Output {
    common::zbk_faked(&format!("+{days}d"))
        .args(["--root", pool.root.to_str().unwrap()])
        .args(args)
        .output()
        .expect("zbk")
}

#[test]
fn a_byte_changed_under_the_same_size_and_mtime_is_named_and_nothing_else() {
    let pool = Pool::initialised();
    let src = pool.scratch("client");
    tree(&src, 40);
    pool.add_host("h", &src);
    pool.zbk_expect(0, &["run", "h"]);

    // Nothing differs yet: silent on success, figures with -v, a stamp on the snapshot.
    let out = pool.zbk_expect(0, &["verify", "h", "--full"]);
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        text(&out.stderr)
    );
    let s = stamp(&pool, "h");
    assert_eq!(s["slice"], "all/30");
    assert_eq!(s["files"], regular_files(&src).to_string());
    assert_eq!((s["silent"].as_str(), s["unacked"].as_str()), ("0", "0"));
    assert_eq!(s["changed"], "0", "{s:?}");
    pool.zbk_expect(0, &["check", "h"]);

    // One silent difference, and ordinary changes of every kind around it.
    let victim = src.join("data/d3/f010.txt");
    change_silently(&victim);
    std::fs::write(
        src.join("data/d1/f001.txt"),
        "rewritten, longer than before\n",
    )
    .unwrap();
    ok(
        "touch",
        &[
            "-d",
            "+1 hour",
            src.join("data/d2/f002.txt").to_str().unwrap(),
        ],
    );
    std::fs::write(src.join("data/appeared.txt"), "new\n").unwrap();
    std::fs::remove_file(src.join("data/d4/f004.txt")).unwrap();

    let out = pool.zbk_expect(1, &["verify", "h", "--full", "-v"]);
    let named = silent_lines(&out);
    assert_eq!(named.len(), 1, "{}", text(&out.stderr));
    assert!(
        named[0].starts_with(&format!(
            "zbk: h: silent difference: {}: ",
            victim.display()
        )),
        "{named:?}"
    );
    assert!(
        text(&out.stderr).contains("zbk check is CRITICAL until `zbk verify --ack h`"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("2 changed, 1 appeared, 1 vanished, 1 silent difference"),
        "{}",
        text(&out.stdout)
    );
    let s = stamp(&pool, "h");
    assert_eq!((s["silent"].as_str(), s["unacked"].as_str()), ("1", "1"));
    assert_eq!(s["changed"], "4");
    // The log in l/ names it too, and the snapshot and the client are as they were.
    let logs: Vec<_> = std::fs::read_dir(pool.root.join("hosts/h/l"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("verify-")
        })
        .collect();
    assert!(!logs.is_empty());
    assert!(logs.iter().any(|l| std::fs::read_to_string(l)
        .unwrap()
        .contains(&format!("silent difference: {}", victim.display()))));
    assert!(src.join("data/appeared.txt").exists() && !src.join("data/d4/f004.txt").exists());

    // CRITICAL until acknowledged, whatever clean verifies come after.
    let out = pool.zbk_expect(2, &["check", "h"]);
    assert!(
        text(&out.stdout).starts_with("ZBK CRITICAL - h: ")
            && text(&out.stdout).contains("1 silent difference found by zbk verify"),
        "{}",
        text(&out.stdout)
    );
    // The next run's quick check skips the file too, so its snapshot differs the same way:
    // named again, still one silent difference.
    pool.zbk_expect(0, &["run", "h"]);
    let out = pool.zbk_expect(1, &["verify", "h", "--full"]);
    assert_eq!(silent_lines(&out).len(), 1, "{}", text(&out.stderr));
    assert_eq!(stamp(&pool, "h")["unacked"], "1");
    pool.zbk_expect(2, &["check", "h"]);
    let status = json(&pool.zbk_expect(0, &["status", "--json", "h"]));
    assert_eq!(status[0]["verify_unacknowledged"], 1, "{status}");
    let out = pool.zbk_expect(0, &["verify", "--ack", "h"]);
    assert_eq!(
        text(&out.stdout).trim(),
        "h: acknowledged 1 silent difference found by zbk verify"
    );
    pool.zbk_expect(0, &["check", "h"]);
    let s = stamp(&pool, "h");
    assert_eq!(s["unacked"], "0");
    assert!(s.contains_key("acked"));

    // list, status and the textfile show the stamp.
    let list = json(&pool.zbk_expect(0, &["list", "--json", "h"]));
    let newest = list.as_array().unwrap().last().unwrap();
    assert_eq!(newest["verified"]["slice"], "all/30", "{newest}");
    let status = json(&pool.zbk_expect(0, &["status", "--json", "h"]));
    assert_eq!(status[0]["verified_slice"], "all/30", "{status}");
    assert_eq!(status[0]["verify_unacknowledged"], 0);
    assert!(status[0]["fully_verified_time"].is_string(), "{status}");
    let prom = text(&pool.zbk_expect(0, &["status", "--prometheus", "h"]).stdout);
    assert!(
        prom.contains("zbk_verify_silent_differences{host=\"h\"} 0\n"),
        "{prom}"
    );
    assert!(
        prom.contains("zbk_fully_verified_timestamp_seconds{host=\"h\"} "),
        "{prom}"
    );
}

#[test]
fn slices_cover_every_file_once_and_a_late_one_warns() {
    let pool = Pool::initialised();
    let src = pool.scratch("client");
    tree(&src, 60);
    pool.add_host("h", &src);
    let config = pool.root.join("hosts/h/c/zbk.toml");
    let old = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{old}\n[verify]\nslices = 4\n")).unwrap();
    pool.zbk_expect(0, &["run", "h"]);
    let victim = src.join("etc/app/app.conf");
    change_silently(&victim);

    // Four plain verifies take the four slices in turn; the files they compare add up to the
    // tree, and the silent difference turns up in exactly one of them.
    let mut compared = 0;
    let mut found_in = Vec::new();
    for k in 1..=4 {
        let out = pool.zbk(&["verify", "h"]);
        let s = stamp(&pool, "h");
        assert_eq!(s["slice"], format!("{k}/4"));
        compared += s["files"].parse::<u64>().unwrap();
        if !silent_lines(&out).is_empty() {
            assert_eq!(out.status.code(), Some(1));
            assert_eq!(silent_lines(&out).len(), 1, "{}", text(&out.stderr));
            found_in.push(k);
        } else {
            assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        }
        if k < 4 {
            let out = pool.zbk(&["check", "h"]);
            assert!(
                text(&out.stdout)
                    .contains(&format!("not fully verified yet ({k} of 4 slices verified")),
                "{}",
                text(&out.stdout)
            );
        }
    }
    assert_eq!(compared, regular_files(&src));
    assert_eq!(found_in.len(), 1, "found in slices {found_in:?}");
    assert_eq!(stamp(&pool, "h")["unacked"], "1");
    // Put the byte back (the client now matches the snapshot again) and acknowledge.
    change_silently(&victim);
    pool.zbk_expect(0, &["verify", "--ack", "h"]);
    pool.zbk_expect(0, &["check", "h"]);
    // The fifth starts the round again.
    pool.zbk_expect(0, &["verify", "h"]);
    assert_eq!(stamp(&pool, "h")["slice"], "1/4");

    // A pool 36 days old with no scrub warns by itself (check.scrub_age); this is about verify.
    pool.add_global("[check]\nscrub_age = \"1000days\"\n");
    // 36 days on, with backups still fresh by their own limits: not fully verified in time.
    let out = zbk_later(&pool, 36, &["check", "h", "--warn", "60d", "--crit", "90d"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("h: ")
            && text(&out.stdout).contains("not fully verified within 35d"),
        "{}",
        text(&out.stdout)
    );
    // check.verify_age says how long is too long.
    let now = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{now}\n[check]\nverify_age = \"60days\"\n"),
    )
    .unwrap();
    let out = zbk_later(&pool, 36, &["check", "h", "--warn", "60d", "--crit", "90d"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn through_the_read_only_key_and_failing_without_a_trace() {
    let pool = Pool::initialised();
    let sshd = Sshd::start();
    let src = pool.scratch("client");
    tree(&src, 30);
    pool.add_remote_host("client", &sshd, &src, "\n[verify]\nslices = 3\n");
    let line = text(&pool.zbk_expect(0, &["authorize", "client"]).stdout);
    assert!(line.contains("rrsync -ro /"), "{line}");
    // The read-only line is the only way in.
    std::fs::write(sshd.dir().join("authorized_keys"), &line).unwrap();
    pool.zbk_expect(0, &["run", "client"]);
    let victim = src.join("data/d5/f005.txt");
    change_silently(&victim);

    let out = pool.zbk_expect(1, &["verify", "client", "--full"]);
    let named = silent_lines(&out);
    assert_eq!(named.len(), 1, "{}", text(&out.stderr));
    assert!(
        named[0].contains(&format!("silent difference: {}: ", victim.display())),
        "{named:?}"
    );
    let before = stamp(&pool, "client");
    // A slice goes through the same key (its paths travel as --files-from=-).
    let out = pool.zbk(&["verify", "client", "-v"]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("verified 1/3"),
        "{} {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let after_slice = stamp(&pool, "client");
    assert_eq!(after_slice["slice"], "1/3");
    // Found again or not, it is the same one silent difference.
    assert_eq!(after_slice["unacked"], "1");
    assert_ne!(before, after_slice);

    // The client goes away: the verify fails with the reason and no stamp changes.
    drop(sshd);
    let out = pool.zbk_expect(1, &["verify", "client"]);
    let err = text(&out.stderr);
    assert!(
        err.starts_with("zbk: client: verify failed: ") && err.contains("rsync exited"),
        "{err}"
    );
    assert_eq!(stamp(&pool, "client"), after_slice);
    let out = pool.zbk_expect(1, &["verify", "client", "--full"]);
    assert!(text(&out.stderr).contains("verify failed"));
    assert_eq!(stamp(&pool, "client"), after_slice);
}

#[test]
fn bad_input_is_refused_with_the_flag_named() {
    let pool = Pool::initialised();
    let src = pool.scratch("client");
    tree(&src, 3);
    pool.add_host("h", &src);
    let out = pool.zbk_expect(2, &["verify"]);
    assert!(text(&out.stderr).contains("name the hosts to verify, or give --all"));
    let out = pool.zbk_expect(2, &["verify", "h", "--all"]);
    assert!(text(&out.stderr).contains("--all"));
    let out = pool.zbk_expect(2, &["verify", "h", "--ack", "--full"]);
    assert!(text(&out.stderr).contains("--ack and --full"));
    pool.zbk_expect(2, &["verify", "nosuch"]);
    // No snapshot yet: that host fails, saying why.
    let out = pool.zbk_expect(1, &["verify", "--all"]);
    assert!(
        text(&out.stderr).contains("h: verify failed: no good snapshot to verify yet"),
        "{}",
        text(&out.stderr)
    );
    pool.zbk_expect(0, &["run", "h"]);
    let config = pool.root.join("hosts/h/c/zbk.toml");
    let old = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{old}\n[verify]\nslices = 0\n")).unwrap();
    let out = pool.zbk_expect(1, &["verify", "h"]);
    assert!(
        text(&out.stderr).contains("verify.slices: 0 is not between 1 and 366"),
        "{}",
        text(&out.stderr)
    );
}
