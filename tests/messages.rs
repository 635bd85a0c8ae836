//! The messages a user sees when the input is wrong, from the real binary: one line naming the
//! flag or argument, the `zbk:` prefix, usage status 2, and for `zbk check` the plugin's
//! `ZBK UNKNOWN` line with status 3. None needs a pool: a root with a global config whose
//! dataset does not exist is enough to get past the config.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

use std::path::Path;
use std::process::{Command, Output};

/// A backup root whose config names a dataset no pool holds.
fn root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    std::fs::write(
        dir.path().join("etc/zbk.toml"),
        "dataset = \"zbknopool/backup\"\n",
    )
    .unwrap();
    dir
}

fn zbk(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zbk"))
        .env("ZBK_ROOT", root)
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs zbk expecting a usage error: status 2, nothing on stdout, and exactly one stderr line
/// that starts with `zbk: ` and contains `want`. Returns that line.
fn usage_error(args: &[&str], want: &str) -> String {
    let dir = root();
    let out = zbk(dir.path(), args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(err.starts_with("zbk: "), "{args:?}: {err}");
    assert!(err.contains(want), "{args:?}: want {want:?} in {err}");
    err
}

#[test]
fn argument_parser_errors_carry_the_prefix_on_one_line() {
    usage_error(&["--bogus"], "zbk: Unrecognized argument: --bogus");
    usage_error(&["list", "--bogus"], "--bogus");
    usage_error(
        &["add"],
        "zbk: Required positional arguments not provided: host",
    );
    usage_error(&["frobnicate"], "frobnicate");
}

#[test]
fn an_empty_root_is_shown_quoted() {
    usage_error(
        &["--root", "", "list"],
        "zbk: --root: \"\" is not an absolute path",
    );
    usage_error(
        &["--root", "rel", "list"],
        "--root: \"rel\" is not an absolute path",
    );
}

#[test]
fn host_names_are_shown_as_given_not_debug_formatted() {
    for args in [
        &["remove", "nosuchhost", "--expire"][..],
        &["authorize", "nosuchhost"][..],
    ] {
        let err = usage_error(args, "no such host: nosuchhost ");
        assert!(!err.contains("HostName("), "{err}");
        assert!(!err.contains("failed to open"), "{err}");
    }
}

#[test]
fn authorize_shows_the_flag_value_not_an_option() {
    let err = usage_error(
        &["authorize", "nosuchhost", "--from", "a,b"],
        "--from: \"a,b\" must be one word",
    );
    assert!(!err.contains("Some("), "{err}");
}

#[test]
fn restore_to_an_empty_directory_is_a_usage_error_naming_to() {
    usage_error(&["restore", "a", "/etc", "--to", ""], "zbk: --to: \"\"");
}

#[test]
fn replicate_to_a_malformed_target_names_to() {
    for bad in ["garbage::x", "b2:1tank", "b2:"] {
        usage_error(
            &["replicate", "--to", bad],
            &format!("zbk: --to: {bad:?} is not POOL/DATASET or [user@]server:POOL/DATASET"),
        );
    }
}

/// Nagios reads stdout and the exit status only; status 2 would mean CRITICAL.
#[test]
fn check_reports_its_own_usage_errors_as_unknown() {
    let dir = root();
    for args in [
        &["check", "--bogus"][..],
        &["check", "--warn"][..],
        &["check", "--warn", "soon"][..],
        &["--root", "rel", "check"][..],
    ] {
        let out = zbk(dir.path(), args);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stdout}");
        assert_eq!(stdout.lines().count(), 1, "{args:?}: {stdout}");
        assert!(stdout.starts_with("ZBK UNKNOWN - "), "{args:?}: {stdout}");
    }
    let out = zbk(dir.path(), &["check", "--help"]);
    assert_eq!(out.status.code(), Some(0));
}

/// `zbk check -t` bounds everything the check does, its own read of the config included: a
/// config that is a FIFO nobody writes blocks that read for real, as a pool that stopped
/// answering does.
#[test]
fn check_answers_unknown_within_its_timeout_whatever_blocks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    let config = dir.path().join("etc/zbk.toml");
    let made = Command::new("mkfifo").arg(&config).status().unwrap();
    assert!(made.success(), "mkfifo");
    let started = std::time::Instant::now();
    let out = zbk(dir.path(), &["check", "-t", "1"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        text(&out.stdout),
        format!(
            "ZBK UNKNOWN - no answer within 1s (--timeout): still reading {}\n",
            config.display()
        )
    );
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    for (args, want) in [
        (
            &["check", "-t", "0"][..],
            "ZBK UNKNOWN - --timeout: must be at least 1 second\n",
        ),
        (&["check", "--timeout", "-5"][..], "ZBK UNKNOWN - "),
        (&["check", "-t", "soon"][..], "ZBK UNKNOWN - "),
    ] {
        let out = zbk(dir.path(), args);
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        assert!(
            text(&out.stdout).starts_with(want),
            "{args:?}: {}",
            text(&out.stdout)
        );
        assert_eq!(text(&out.stdout).lines().count(), 1);
    }
}
