//! Encrypted hosts and raw replication, end to end: `zbk init --encrypt` and its key file, runs,
//! doctor and restore with the key loaded and not, `zbk replicate --raw` to a second pool that
//! never gets the key (full, incremental, holds, its own reap), a restore there once the key is
//! loaded, and the refusals that keep plaintext from reaching a target unasked. Native
//! encryption is OpenZFS's: tests/openzfs.sh runs these in its VM; on zfs-fuse only the
//! refusals run, and the rest say why they are skipped.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use common::{manifest, ok, only_on, sample_tree, sh, text, Flavour, Pool};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const HOST: &str = "web1.example.com";

/// A pool initialised with `--encrypt`, one host backed up from a sample tree, its tree.
fn encrypted_source() -> (Pool, PathBuf) {
    let pool = Pool::new();
    let out = pool.zbk_expect(0, &["init", &pool.name, "--encrypt"]);
    let said = text(&out.stdout);
    assert!(said.contains("made the key"), "{said}");
    let src = pool.scratch("src");
    sample_tree(&src);
    pool.add_host(HOST, &src);
    (pool, src)
}

fn key_file(pool: &Pool) -> PathBuf {
    pool.root.join("etc/zbk.key")
}

/// Where a restore of the absolute `src` into `dir` puts it.
fn under(dir: &Path, src: &Path) -> PathBuf {
    dir.join(src.strip_prefix("/").unwrap())
}

/// `zbk restore` of the whole source tree `src` into `dir`, expecting exit status `code`.
fn restore(pool: &Pool, src: &Path, dir: &Path, code: i32) -> std::process::Output {
    let (src, dir) = (src.to_str().unwrap(), dir.to_str().unwrap());
    pool.zbk_expect(code, &["restore", HOST, src, "--to", dir])
}

/// Unmounts the host datasets and the hosts dataset, and unloads the key: a server after a
/// reboot before anyone loaded it.
fn unload_key(pool: &Pool) {
    let hosts = format!("{}/hosts", pool.name);
    ok("zfs", &["unmount", &pool.host_dataset(HOST)]);
    ok("zfs", &["unmount", &hosts]);
    ok("zfs", &["unload-key", &hosts]);
    assert_eq!(pool.prop(&hosts, "keystatus").0, "unavailable");
}

#[test]
fn openzfs_encrypted_init_runs_and_says_how_to_load_a_missing_key() {
    if !only_on(
        Flavour::OpenZfs,
        "openzfs_encrypted_init_runs_and_says_how_to_load_a_missing_key",
        "native encryption",
    ) {
        return;
    }
    let (pool, src) = encrypted_source();
    let hosts = format!("{}/hosts", pool.name);
    let key = key_file(&pool);
    assert_eq!(pool.prop(&hosts, "encryption").0, "aes-256-gcm");
    assert_eq!(pool.prop(&hosts, "keyformat").0, "raw");
    assert_eq!(
        pool.prop(&hosts, "keylocation").0,
        format!("file://{}", key.display())
    );
    let meta = std::fs::metadata(&key).unwrap();
    assert_eq!(
        (meta.len(), meta.mode() & 0o777, meta.uid()),
        (32, 0o600, 0)
    );
    assert_eq!(
        pool.prop(&pool.host_dataset(HOST), "encryptionroot").0,
        hosts,
        "a host inherits the key of the hosts dataset"
    );
    // Idempotent, and the key is never replaced.
    let before = std::fs::read(&key).unwrap();
    let out = pool.zbk_expect(0, &["init", &pool.name, "--encrypt"]);
    assert!(text(&out.stdout).contains("already initialised"));
    assert_eq!(std::fs::read(&key).unwrap(), before);

    pool.zbk_expect(0, &["run", HOST]);
    assert_eq!(pool.snapshots(HOST).len(), 1);
    let out = pool.zbk_expect(0, &["doctor"]);
    let said = text(&out.stdout);
    assert!(said.contains("is encrypted (aes-256-gcm, keyformat raw) and its key is loaded"));
    assert!(said.contains(&format!("note: keep a copy of {} offline", key.display())));

    // A key others can read is a problem doctor names with its fix.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = pool.zbk_expect(1, &["doctor"]);
    assert!(
        text(&out.stdout).contains("chmod 600"),
        "{}",
        text(&out.stdout)
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    // After a reboot, before the key is loaded: every command that needs the files says how.
    unload_key(&pool);
    let hint = format!("zfs load-key {hosts}");
    let out = pool.zbk_expect(1, &["run", HOST]);
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{hint} && zfs mount -a")), "{err}");
    assert_eq!(pool.snapshots(HOST).len(), 1, "nothing was snapshotted");
    let dir = pool.scratch("out-locked");
    let out = restore(&pool, &src, &dir, 1);
    assert!(text(&out.stderr).contains(&hint), "{}", text(&out.stderr));
    let out = pool.zbk_expect(1, &["verify", HOST]);
    let err = text(&out.stderr);
    assert!(
        err.contains("verify failed: its encryption key is not loaded") && err.contains(&hint),
        "{err}"
    );
    let out = pool.zbk_expect(1, &["doctor"]);
    let said = text(&out.stdout);
    assert!(said.contains("its encryption key is not loaded"), "{said}");
    assert!(
        !said.contains("not mounted at"),
        "the key is the one problem: {said}"
    );
    // Snapshots' stamps stay readable without the key: list and reap still work.
    pool.zbk_expect(0, &["list", HOST]);
    pool.zbk_expect(0, &["reap"]);

    ok("zfs", &["load-key", &hosts]);
    // What the hint's `zfs mount -a` does for this pool alone: -a would also mount the other
    // tests' pools, racing their receives ("mountpoint or dataset is busy").
    ok("zfs", &["mount", "-R", &hosts]);
    pool.zbk_expect(0, &["run", HOST]);
    assert_eq!(pool.snapshots(HOST).len(), 2);
    let dir = pool.scratch("out");
    restore(&pool, &src, &dir, 0);
    assert_eq!(manifest(&under(&dir, &src)), manifest(&src));
}

#[test]
fn openzfs_init_encrypt_refuses_what_it_cannot_do_safely() {
    if !only_on(
        Flavour::OpenZfs,
        "openzfs_init_encrypt_refuses_what_it_cannot_do_safely",
        "native encryption",
    ) {
        return;
    }
    let pool = Pool::new();
    let name = pool.name.as_str();
    for (args, says) in [
        (
            vec!["--encrypt", "--key-format", "hex"],
            "--key-format: \"hex\" is not a key format",
        ),
        (
            vec!["--encrypt", "--key-file", "zbk.key"],
            "--key-file: \"zbk.key\" is not an absolute path",
        ),
        (
            vec!["--key-format", "raw"],
            "--key-format: only with --encrypt",
        ),
    ] {
        let mut full = vec!["init", name];
        full.extend(args);
        let out = pool.zbk_expect(2, &full);
        assert!(text(&out.stderr).contains(says), "{}", text(&out.stderr));
    }
    // A key file the admin made, readable by others: refused before anything is created.
    let key = pool.scratch("keys").join("loose.key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let key_arg = key.to_str().unwrap();
    let out = pool.zbk_expect(2, &["init", name, "--encrypt", "--key-file", key_arg]);
    assert!(
        text(&out.stderr).contains("chmod 600"),
        "{}",
        text(&out.stderr)
    );
    assert!(!pool.exists(&format!("{name}/hosts")));
    // A passphrase file of the admin's, with --key-format passphrase.
    std::fs::write(&key, "correct horse battery staple\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = pool.zbk_expect(
        0,
        &[
            "init",
            name,
            "--encrypt",
            "--key-format",
            "passphrase",
            "--key-file",
            key_arg,
        ],
    );
    assert!(
        !text(&out.stdout).contains("made the key"),
        "its own key is used"
    );
    let hosts = format!("{name}/hosts");
    assert_eq!(pool.prop(&hosts, "keyformat").0, "passphrase");
    assert_eq!(
        pool.prop(&hosts, "keylocation").0,
        format!("file://{key_arg}")
    );

    // An unencrypted hosts dataset cannot become encrypted.
    let plain = Pool::initialised();
    let out = plain.zbk_expect(2, &["init", &plain.name, "--encrypt"]);
    assert!(
        text(&out.stderr).contains("exists and is not encrypted"),
        "{}",
        text(&out.stderr)
    );
    assert!(!key_file(&plain).exists(), "no key made for nothing");
}

#[test]
fn openzfs_raw_copies_expire_and_restore_on_a_target_that_never_had_the_key() {
    if !only_on(
        Flavour::OpenZfs,
        "openzfs_raw_copies_expire_and_restore_on_a_target_that_never_had_the_key",
        "native encryption and raw sends",
    ) {
        return;
    }
    let (src_pool, src) = encrypted_source();
    for _ in 0..2 {
        src_pool.zbk_expect(0, &["run", HOST, "--expires", "1s"]);
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    let dst = Pool::initialised();
    // Without --raw the copy would be plaintext there: refused before anything is sent.
    let out = src_pool.zbk_expect(2, &["replicate", "--to", &dst.name]);
    let err = text(&out.stderr);
    assert!(
        err.contains("--raw") && err.contains("--plaintext"),
        "{err}"
    );
    assert!(!dst.exists(&dst.host_dataset(HOST)));

    let out = src_pool.zbk_expect(0, &["replicate", "--raw", "--to", &dst.name, "-v"]);
    assert!(
        text(&out.stdout).contains("sent 2 snapshots"),
        "{}",
        text(&out.stdout)
    );
    let copy = dst.host_dataset(HOST);
    assert_eq!(dst.prop(&copy, "keystatus").0, "unavailable");
    assert_eq!(dst.prop(&copy, "encryptionroot").0, copy);
    let copies = dst.snapshots(HOST);
    assert_eq!(copies, src_pool.snapshots(HOST));
    assert_eq!(
        dst.prop(&format!("{copy}@{}", copies[0]), "zbk:expires").1,
        "received"
    );
    // The target's doctor knows a copy is never mounted and needs no key.
    let out = dst.zbk_expect(0, &["doctor"]);
    assert!(
        text(&out.stdout).contains(&format!("{HOST}: a copy received by zbk replicate")),
        "{}",
        text(&out.stdout)
    );
    // The files cannot be read there: a clone of a copy does not mount without the key.
    let peek = dst.scratch("peek");
    let _ = sh(
        "zfs",
        &[
            "clone",
            "-o",
            &format!("mountpoint={}", peek.display()),
            &format!("{copy}@{}", copies[1]),
            &format!("{}/peek", dst.name),
        ],
    );
    assert!(
        !peek.join("d").exists(),
        "a raw copy was readable without the key"
    );
    let _ = sh("zfs", &["destroy", &format!("{}/peek", dst.name)]);
    let dir = dst.scratch("out-locked");
    let out = restore(&dst, &src, &dir, 1);
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("zfs load-key -L file:///path/to/zbk.key {copy}")),
        "{err}"
    );

    // Incremental, raw again, with the holds moved on both sides.
    src_pool.zbk_expect(0, &["run", HOST]);
    let out = src_pool.zbk_expect(0, &["replicate", "--raw", "--to", &dst.name, "-v"]);
    assert!(
        text(&out.stdout).contains("sent 1 snapshot "),
        "{}",
        text(&out.stdout)
    );
    let copies = dst.snapshots(HOST);
    assert_eq!(copies.len(), 3);
    let newest = format!("{copy}@{}", copies[2]);
    assert_eq!(
        dst.prop(&newest, "userrefs").0,
        "1",
        "the target holds its newest copy"
    );
    assert_eq!(
        dst.prop(&format!("{copy}@{}", copies[1]), "userrefs").0,
        "0"
    );

    // A raw copy goes on raw: a decrypted stream onto it is refused, with the way out.
    src_pool.zbk_expect(0, &["run", HOST]);
    let out = src_pool.zbk_expect(1, &["replicate", "--plaintext", "--to", &dst.name]);
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{copy} is a raw copy")), "{err}");
    assert_eq!(dst.snapshots(HOST), copies, "nothing was received");

    // The target's own reap, keyless, expires the copies by their received expiry.
    let out = dst.zbk_expect(0, &["reap", "-v"]);
    assert!(
        !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(dst.snapshots(HOST), [copies[2].clone()]);
    assert_eq!(dst.prop(&copy, "keystatus").0, "unavailable");

    // The documented recovery: the key file to the target, load-key, restore.
    let key = key_file(&src_pool);
    ok(
        "zfs",
        &[
            "load-key",
            "-L",
            &format!("file://{}", key.display()),
            &copy,
        ],
    );
    let dir = dst.scratch("out");
    restore(&dst, &src, &dir, 0);
    assert_eq!(manifest(&under(&dir, &src)), manifest(&src));
    let out = dst.zbk_expect(2, &["restore", HOST, src.to_str().unwrap(), "--to-host"]);
    assert!(
        text(&out.stderr).contains("restore with --to DIR"),
        "{}",
        text(&out.stderr)
    );

    // Asked for plaintext: the copy is readable there, and carries its stamps all the same.
    let clear = Pool::initialised();
    src_pool.zbk_expect(0, &["replicate", "--plaintext", "--to", &clear.name]);
    let copy = clear.host_dataset(HOST);
    assert_eq!(clear.prop(&copy, "encryption").0, "off");
    let names = clear.snapshots(HOST);
    assert_eq!(names, src_pool.snapshots(HOST));
    for name in &names {
        let here = format!("{}@{name}", src_pool.host_dataset(HOST));
        let there = format!("{copy}@{name}");
        for prop in ["zbk:expires", "zbk:tier", "zbk:status"] {
            assert_eq!(
                clear.prop(&there, prop).0,
                src_pool.prop(&here, prop).0,
                "{prop}"
            );
        }
    }
    clear.zbk_expect(0, &["reap"]);
}

#[test]
fn raw_from_a_host_that_is_not_encrypted_is_refused() {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    sample_tree(&src);
    pool.add_host(HOST, &src);
    pool.zbk_expect(0, &["run", HOST]);
    let dst = Pool::initialised();
    let out = pool.zbk_expect(2, &["replicate", "--raw", "--to", &dst.name]);
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("{HOST}: --raw: it is not encrypted here")),
        "{err}"
    );
    assert!(!dst.exists(&dst.host_dataset(HOST)), "nothing was sent");
    let out = pool.zbk_expect(2, &["replicate", "--raw", "--plaintext", "--to", &dst.name]);
    assert!(text(&out.stderr).contains("--raw and --plaintext"));
}

#[test]
fn zfs_fuse_init_encrypt_names_what_is_missing() {
    if !only_on(
        Flavour::ZfsFuse,
        "zfs_fuse_init_encrypt_names_what_is_missing",
        "zfs-fuse's lack of encryption",
    ) {
        return;
    }
    let pool = Pool::new();
    let out = pool.zbk_expect(2, &["init", &pool.name, "--encrypt"]);
    let err = text(&out.stderr);
    assert!(
        err.contains("--encrypt: native encryption needs OpenZFS"),
        "{err}"
    );
    assert!(
        !pool.exists(&format!("{}/hosts", pool.name)),
        "nothing made"
    );
    assert!(!key_file(&pool).exists(), "no key made");
}
