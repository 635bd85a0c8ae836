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
