//! Backups over a real sshd on 127.0.0.1: the data, a client that is down or refuses the key,
//! and the restricted read-only key that `zbk authorize` prints.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use common::sshd::Sshd;
use common::{manifest, sample_tree, text, Pool};
use std::time::{Duration, Instant};

/// A host pulled from `src` on the test sshd, with `extra` appended to its config.
#[test]
fn a_tree_comes_over_ssh_intact() {
    let pool = Pool::initialised();
    let sshd = Sshd::start();
    let src = pool.scratch("client");
    sample_tree(&src);
    pool.add_remote_host("client", &sshd, &src, "");
    pool.zbk_expect(0, &["run", "client"]);
    let copy = pool
        .root
        .join("hosts/client/d")
        .join(src.strip_prefix("/").unwrap());
    assert_eq!(manifest(&copy), manifest(&src));
    let snap = pool.snapshots("client")[0].clone();
    assert!(!snap.starts_with("failed-"));
    let log =
        std::fs::read_to_string(pool.root.join(format!("hosts/client/l/{snap}.log"))).unwrap();
    assert!(
        log.contains("--rsh=") && log.contains("BatchMode=yes"),
        "{log}"
    );
}

#[test]
fn a_client_that_is_down_or_refuses_the_key_fails_fast_and_alone() {
    let pool = Pool::initialised();
    let sshd = Sshd::start();
    let src = pool.scratch("client");
    std::fs::write(src.join("f"), "x").unwrap();
    // A key the client does not know.
    let stranger = pool.scratch("keys").join("stranger");
    common::ok(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            stranger.to_str().unwrap(),
        ],
    );
    pool.add_remote_host("refused", &sshd, &src, "");
    let config = pool.root.join("hosts/refused/c/zbk.toml");
    let text_ = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text_.replace(sshd.key_path.to_str().unwrap(), stranger.to_str().unwrap()),
    )
    .unwrap();
    pool.add_remote_host("down", &sshd, &src, "");
    let local = pool.scratch("local");
    std::fs::write(local.join("f"), "y").unwrap();
    pool.add_host("local", &local);

    // A live sshd that does not know the key: refused at once, never a password prompt.
    let out = pool.zbk_expect(1, &["run", "refused"]);
    assert!(
        text(&out.stderr).contains("refused: failed"),
        "{}",
        text(&out.stderr)
    );
    let snap = pool.snapshots("refused")[0].clone();
    let log =
        std::fs::read_to_string(pool.root.join(format!("hosts/refused/l/{snap}.log"))).unwrap();
    // ssh's 255 as a rule; on a slow machine rsync may see the closed pipe first and say 12.
    assert!(
        log.contains("Permission denied")
            && (log.contains("rsync exited 255") || log.contains("rsync exited 12")),
        "{log}"
    );

    // The client goes down: that host fails quickly, the others go on.
    drop(sshd);
    let started = Instant::now();
    let out = pool.zbk_expect(1, &["run", "--all"]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        text(&out.stderr).contains("down: failed"),
        "{}",
        text(&out.stderr)
    );
    let snaps = pool.snapshots("down");
    assert_eq!(snaps.len(), 1);
    assert!(snaps[0].starts_with("failed-"), "{snaps:?}");
    let log =
        std::fs::read_to_string(pool.root.join(format!("hosts/down/l/{}.log", snaps[0]))).unwrap();
    assert!(
        log.contains("rsync exited 255") || log.contains("rsync exited 12"),
        "{log}"
    );
    assert!(
        !pool.snapshots("local")[0].starts_with("failed-"),
        "the local host went on"
    );
}

#[test]
fn the_authorized_line_allows_read_only_rsync_and_nothing_else() {
    let pool = Pool::initialised();
    let sshd = Sshd::start();
    let src = pool.scratch("client");
    sample_tree(&src);
    pool.add_remote_host("client", &sshd, &src, "");
    let out = pool.zbk_expect(0, &["authorize", "client", "--from", "127.0.0.1"]);
    let line = text(&out.stdout);
    assert!(
        line.starts_with(
            "command=\"/usr/bin/rrsync -ro /\",restrict,from=\"127.0.0.1\" ssh-ed25519 "
        ),
        "{line}"
    );
    // The restricted line is now the only way in.
    std::fs::write(sshd.dir().join("authorized_keys"), &line).unwrap();

    pool.zbk_expect(0, &["run", "client"]);
    let copy = pool
        .root
        .join("hosts/client/d")
        .join(src.strip_prefix("/").unwrap());
    assert_eq!(manifest(&copy), manifest(&src));

    // The same key can neither write to the client nor run a command there.
    let mut ssh: Vec<String> = vec!["ssh".into()];
    ssh.extend(sshd.ssh_args());
    let upload = common::sh(
        "rsync",
        &[
            "-e",
            &ssh.join(" "),
            "/etc/hostname",
            &format!("root@127.0.0.1:{}/planted", src.display()),
        ],
    );
    assert!(!upload.status.success(), "an upload went through");
    assert!(!src.join("planted").exists());
    let mut args = sshd.ssh_args();
    args.extend(["root@127.0.0.1", "touch", "/tmp/zbk-ssh-escape"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let shell = common::sh("ssh", &args);
    assert!(!shell.status.success());
    assert!(!std::path::Path::new("/tmp/zbk-ssh-escape").exists());

    pool.zbk_expect(2, &["authorize", "client", "--from", "a b"]);
}
