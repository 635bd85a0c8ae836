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

/// A key the test client does not know.
fn stranger_key(pool: &Pool) -> std::path::PathBuf {
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
    stranger
}

#[test]
fn a_client_that_is_down_or_refuses_the_key_fails_fast_and_alone() {
    let pool = Pool::initialised();
    let sshd = Sshd::start();
    let src = pool.scratch("client");
    std::fs::write(src.join("f"), "x").unwrap();
    let stranger = stranger_key(&pool);
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
    // Fast means well inside rsync.io_timeout (10m) and ssh's connect timeout, with room for
    // the VM tier's emulated CPU, where three hosts' runs alone take half a minute.
    assert!(
        started.elapsed() < Duration::from_secs(90),
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

/// A host's config pulling `src` over `sshd`'s port with its key, `online` as given.
fn laptop_config(sshd: &Sshd, src: &std::path::Path, top: &str, tables: &str) -> String {
    format!(
        "{top}sources = [\"root@127.0.0.1:{}/\"]\n{}{tables}",
        src.display(),
        sshd.zbk_config()
    )
}

/// The files in a host's l/ whose names end in `suffix`.
fn logs_ending(pool: &Pool, host: &str, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(pool.root.join(format!("hosts/{host}/l")))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
}

/// `online = "sometimes"`: a client that ssh cannot reach (a port nobody listens on, a real
/// sshd that is then stopped, a socket that never says a word) is recorded, not failed: no
/// snapshot, nothing printed, exit 0, `unreachable` in its log and in `zbk status`; `zbk
/// check` still ages its last good backup, by its own check.warn. Any other failure of such a
/// host (a refused key) and the same outage of a default host fail as ever.
#[test]
fn a_client_online_sometimes_that_cannot_be_reached_is_recorded_not_failed() {
    let pool = Pool::initialised();
    let sshd = Sshd::start();
    let src = pool.scratch("client");
    sample_tree(&src);
    let sometimes = "online = \"sometimes\"\n";
    let check = "\n[check]\nwarn = \"2h\"\ncrit = \"1d\"\n";
    for host in ["laptop", "nowhere", "mute", "refused", "server"] {
        pool.add_remote_host(host, &sshd, &src, "");
    }
    let write = |host: &str, text: &str| {
        std::fs::write(pool.root.join(format!("hosts/{host}/c/zbk.toml")), text).unwrap();
    };
    write("laptop", &laptop_config(&sshd, &src, sometimes, check));
    write("server", &laptop_config(&sshd, &src, "", ""));
    // A port nobody listens on: refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    write(
        "nowhere",
        &laptop_config(&sshd, &src, sometimes, "").replace(
            &format!("port = {}", sshd.port),
            &format!("port = {closed_port}"),
        ),
    );
    // A socket that accepts (the kernel's backlog does) and never says a word, like a VPN in
    // front of a sleeping laptop: ssh gives up within its ConnectTimeout.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mute_port = mute.local_addr().unwrap().port();
    write(
        "mute",
        &laptop_config(&sshd, &src, sometimes, "")
            .replace(
                &format!("port = {}", sshd.port),
                &format!("port = {mute_port}"),
            )
            .replace("[ssh]\n", "[ssh]\nconnect_timeout = \"2s\"\n"),
    );
    // A key the client does not know: not unreachable, a failure to look at.
    let stranger = stranger_key(&pool);
    write(
        "refused",
        &laptop_config(&sshd, &src, sometimes, "")
            .replace(sshd.key_path.to_str().unwrap(), stranger.to_str().unwrap()),
    );

    let out = pool.zbk_expect(1, &["run", "--all"]);
    let err = text(&out.stderr);
    assert!(
        err.contains("refused: failed") && err.lines().all(|l| l.contains("refused")),
        "only the refused key is heard of: {err}"
    );
    assert!(text(&out.stdout).is_empty(), "{}", text(&out.stdout));
    assert!(pool.snapshots("refused")[0].starts_with("failed-"));
    for host in ["laptop", "server"] {
        let snaps = pool.snapshots(host);
        assert!(
            snaps.len() == 1 && !snaps[0].starts_with("failed-"),
            "{host}: {snaps:?}"
        );
    }
    for (host, said) in [
        ("nowhere", "Connection refused"),
        ("mute", "Connection timed out during banner exchange"),
    ] {
        assert_eq!(pool.snapshots(host), Vec::<String>::new(), "{host}");
        let logs = logs_ending(&pool, host, ".unreachable.log");
        assert_eq!(logs.len(), 1, "{host}: {logs:?}");
        let log =
            std::fs::read_to_string(pool.root.join(format!("hosts/{host}/l/{}", logs[0]))).unwrap();
        assert!(
            log.contains(said) && log.contains("zbk: result unreachable"),
            "{host}: {log}"
        );
        let (at, source) = pool.prop(&pool.host_dataset(host), "zbk:last-unreachable");
        assert_eq!(source, "local");
        assert!(logs[0].starts_with(&at.replace(':', "")), "{at} {logs:?}");
    }
    drop(mute);

    // The client's sshd stops, as a laptop's does when it sleeps: the sometimes host is quiet,
    // the server fails as it always has.
    let good = pool.snapshots("laptop");
    drop(sshd);
    let out = pool.zbk_expect(0, &["run", "laptop"]);
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    assert_eq!(pool.snapshots("laptop"), good, "no snapshot, failed or not");
    let out = pool.zbk_expect(0, &["run", "-v", "laptop"]);
    assert!(
        text(&out.stdout).contains("laptop: unreachable: root@127.0.0.1:")
            && text(&out.stdout).contains("Connection refused"),
        "{}",
        text(&out.stdout)
    );
    pool.zbk_expect(1, &["run", "server"]);
    assert!(pool.snapshots("server")[1].starts_with("failed-"));

    let status = text(&pool.zbk_expect(0, &["status", "laptop", "server"]).stdout);
    let row = |host: &str| {
        status
            .lines()
            .find(|l| l.starts_with(host))
            .unwrap()
            .to_string()
    };
    assert!(row("laptop").contains("unreachable"), "{status}");
    assert!(row("server").contains("failed"), "{status}");
    let json = common::json(&pool.zbk_expect(0, &["status", "--json", "laptop"]));
    let at = pool
        .prop(&pool.host_dataset("laptop"), "zbk:last-unreachable")
        .0;
    assert_eq!(json[0]["unreachable_time"], at.as_str(), "{json}");
    assert_eq!(json[0]["last_run_status"], "ok", "{json}");
    let metrics = text(&pool.zbk_expect(0, &["status", "--prometheus"]).stdout);
    let epoch = common::time(&at).timestamp();
    assert!(
        metrics.contains(&format!(
            "zbk_unreachable_timestamp_seconds{{host=\"laptop\"}} {epoch}\n"
        )) && metrics.contains("zbk_unreachable_timestamp_seconds{host=\"server\"} 0\n"),
        "{metrics}"
    );

    // check ages the last good backup by the host's own check.warn (2h, where the default is
    // 26h): three hours on, WARNING, and says why the backups stopped.
    let later = chrono::Utc::now() + chrono::Duration::hours(3);
    let out = common::zbk_faked(&format!("@{}", later.format("%Y-%m-%d %H:%M:%S")))
        .arg("--root")
        .arg(&pool.root)
        .args(["check", "laptop"])
        .output()
        .expect("zbk");
    let line = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{line} {}", text(&out.stderr));
    assert!(
        line.starts_with("ZBK WARNING - laptop: last good backup 3h")
            && line.contains("(warning after 2h)")
            && line.contains("client unreachable at the last attempt"),
        "{line}"
    );

    // It wakes up (a new sshd, on another port): the next run backs it up and status forgets.
    let sshd = Sshd::start();
    write("laptop", &laptop_config(&sshd, &src, sometimes, check));
    pool.zbk_expect(0, &["run", "laptop"]);
    assert_eq!(pool.snapshots("laptop").len(), 2);
    let json = common::json(&pool.zbk_expect(0, &["status", "--json", "laptop"]));
    assert!(json[0]["unreachable_time"].is_null(), "{json}");
}
