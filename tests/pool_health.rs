//! The pool's own health in `zbk check`, `status` and `doctor`, on a real pool: a mirror with
//! one side taken offline, a scrub and its age, capacity, errors injected on OpenZFS, and
//! zpool output that cannot be read.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use common::{json, ok, only_on, sh, text, Flavour, Pool};
use std::process::Command;

fn check(pool: &Pool, code: i32) -> String {
    let line = text(&pool.zbk_expect(code, &["check"]).stdout);
    assert_eq!(line.lines().count(), 1, "{line}");
    line
}

fn pool_json(pool: &Pool) -> serde_json::Value {
    json(&pool.zbk_expect(0, &["status", "--json"]))[0]["pool"].clone()
}

/// A mirror with one host backed up: ONLINE and young, so nothing to say about it yet.
fn backed_up_mirror() -> Pool {
    let pool = Pool::mirror();
    let src = pool.scratch("src");
    std::fs::write(src.join("f"), vec![5u8; 1 << 20]).unwrap();
    pool.add_host("a", &src);
    pool.zbk_expect(0, &["run", "a"]);
    pool
}

/// Waits for the scan zpool status shows (scrub or resilver) to end.
fn wait_for_scan(pool: &Pool) {
    for _ in 0..240 {
        let out = ok("zpool", &["status", &pool.name]);
        if !out.contains("in progress") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    panic!("the scan of {} did not end in a minute", pool.name);
}

/// Waits for the resilver a vdev back online starts to have ended. OpenZFS starts it after
/// `zpool online` has returned, so no scan in progress does not mean it is done; and a scrub
/// that starts before it reads the stale side and counts what it repairs there as checksum
/// errors, which stay on the vdev until `zpool clear` (a WARNING for zbk, as for zpool).
fn wait_for_resilver(pool: &Pool) {
    for _ in 0..240 {
        let out = ok("zpool", &["status", &pool.name]);
        if out.contains("resilver") && !out.contains("in progress") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    panic!(
        "the resilver of {} did not end in a minute:\n{}",
        pool.name,
        ok("zpool", &["status", &pool.name])
    );
}

/// Starts a scrub; OpenZFS refuses one while a resilver runs.
fn scrub(pool: &Pool) {
    for _ in 0..240 {
        let out = sh("zpool", &["scrub", &pool.name]);
        if out.status.success() {
            return;
        }
        let err = text(&out.stderr);
        assert!(err.contains("resilvering"), "zpool scrub: {err}");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    panic!("the resilver of {} did not end in a minute", pool.name);
}

#[test]
fn a_mirror_with_one_side_offline_is_critical_until_it_is_back() {
    let pool = backed_up_mirror();
    let name = &pool.name;
    let line = check(&pool, 0);
    assert!(
        line.starts_with("ZBK OK - 1 host backed up in time |"),
        "{line}"
    );
    assert!(line.contains(" 'pool capacity'="), "{line}");
    let p = pool_json(&pool);
    assert_eq!(
        (p["name"].as_str(), p["state"].as_str(), p["check"].as_str()),
        (Some(name.as_str()), Some("ONLINE"), Some("OK"))
    );
    assert_eq!(p["scrub"], "none", "{p}");

    ok("zpool", &["offline", name, pool.files[1].to_str().unwrap()]);
    let line = check(&pool, 2);
    assert!(
        line.starts_with(&format!(
            "ZBK CRITICAL - pool {name}: DEGRADED; 1 host backed up in time"
        )),
        "{line}"
    );
    let p = pool_json(&pool);
    assert_eq!(
        (p["state"].as_str(), p["check"].as_str()),
        (Some("DEGRADED"), Some("CRITICAL"))
    );
    assert_eq!(p["problems"][0], "DEGRADED");
    let table = text(&pool.zbk_expect(0, &["status"]).stdout);
    assert!(
        table.contains(&format!("pool {name}: DEGRADED, "))
            && table.contains("(CRITICAL: DEGRADED)"),
        "{table}"
    );
    let prom = text(&pool.zbk_expect(0, &["status", "--prometheus"]).stdout);
    for sample in [
        format!("zbk_pool_online{{pool=\"{name}\"}} 0"),
        format!("zbk_pool_check_state{{pool=\"{name}\"}} 2"),
    ] {
        assert!(
            prom.lines().any(|l| l == sample),
            "{sample} missing from\n{prom}"
        );
    }
    let doctor = text(&pool.zbk_expect(1, &["doctor"]).stdout);
    assert!(
        doctor.contains(&format!(
            "problem: pool {name}: DEGRADED; fix: see `zpool status -v {name}`"
        )),
        "{doctor}"
    );

    // Back online (a resilver is no scrub) and scrubbed: healthy, with the scrub's time.
    ok("zpool", &["online", name, pool.files[1].to_str().unwrap()]);
    wait_for_resilver(&pool);
    check(&pool, 0);
    scrub(&pool);
    wait_for_scan(&pool);
    let p = pool_json(&pool);
    assert_eq!(p["scrub"], "finished", "{p}");
    assert_eq!(
        (p["state"].as_str(), p["checksum_errors"].as_u64()),
        (Some("ONLINE"), Some(0)),
        "{p}\n{}",
        ok("zpool", &["status", "-v", name])
    );
    let scrubbed = common::time(p["last_scrub_time"].as_str().unwrap());
    let late = chrono::Utc::now() - scrubbed;
    assert!(
        late.num_seconds().abs() < 120,
        "scrub time {scrubbed} is not now: zpool's local time misread?"
    );
    let doctor = text(&pool.zbk_expect(0, &["doctor"]).stdout);
    assert!(
        doctor.contains(&format!("ok: pool {name} is ONLINE, ")) && doctor.contains("last scrub "),
        "{doctor}"
    );

    // The scrub ages past check.scrub_age; the pool fills past check.capacity_warn.
    pool.add_global("[check]\nscrub_age = \"1s\"\ncapacity_warn = 2\n");
    // Bytes no compression shrinks (xorshift), so the pool fills on OpenZFS too.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let filler: Vec<u8> = (0..24 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(pool.root.join("filler"), filler).unwrap();
    ok("sync", &[]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let line = check(&pool, 1);
    assert!(
        line.starts_with(&format!("ZBK WARNING - pool {name}: last scrub ")),
        "{line}"
    );
    assert!(
        line.contains("(check.scrub_age 1s)") && line.contains("full (check.capacity_warn 2%)"),
        "{line}"
    );
    // The figure is zpool list's, whether read from it (zfs-fuse) or from zpool status's JSON.
    let listed = ok("zpool", &["list", "-H", "-o", "capacity", name]);
    assert_eq!(
        pool_json(&pool)["capacity_percent"].to_string(),
        listed.trim().trim_end_matches('%'),
        "zbk status --json against zpool list"
    );
}

#[test]
fn pool_limits_belong_to_the_global_config_and_are_checked() {
    let pool = Pool::initialised();
    pool.add_global("[check]\ncapacity_warn = 120\n");
    let line = check(&pool, 3);
    assert!(
        line.contains("zbk.toml: check.capacity_warn: 120 is not a percentage from 1 to 100"),
        "{line}"
    );
    let path = pool.root.join("etc/zbk.toml");
    let text_before = std::fs::read_to_string(&path)
        .unwrap()
        .replace("capacity_warn = 120", "scrub_age = \"never\"");
    std::fs::write(&path, text_before).unwrap();
    let line = check(&pool, 3);
    assert!(
        line.contains("check.scrub_age: must be a duration, not never"),
        "{line}"
    );
}

/// zpool output zbk cannot read is UNKNOWN with the line, never OK. Nothing real prints such
/// a line, so a fake `zpool` ahead on PATH does, and its directory's name says so.
#[test]
fn unreadable_zpool_output_is_unknown_with_the_line() {
    let pool = Pool::initialised();
    let fake = pool
        .dir
        .path()
        .join("fake-zpool-prints-an-unknown-state-line");
    std::fs::create_dir_all(&fake).unwrap();
    let script = fake.join("zpool");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \"$1 $2\" in\n\"status -j\") echo \"invalid option 'j'\" >&2; exit 2;;\n\"status {n}\") printf '  pool: {n}\\n state: ONLINE\\n scrub: scrub reticulated splines\\nerrors: No known data errors\\n';;\n*) exec {real} \"$@\";;\nesac\n",
            n = pool.name,
            real = which("zpool")
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        fake.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_zbk"))
        .args(["--root", pool.root.to_str().unwrap(), "check"])
        .env("PATH", &path)
        .output()
        .unwrap();
    let line = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{line}");
    assert!(
        line.starts_with(&format!(
            "ZBK UNKNOWN - pool {}: zpool status: cannot read \"scrub: scrub reticulated splines\"",
            pool.name
        )),
        "{line}"
    );
}

fn which(program: &str) -> String {
    let out = sh("sh", &["-c", &format!("command -v {program}")]);
    text(&out.stdout).trim().to_string()
}

/// OpenZFS: `zpool status -j` read for real, with a vdev offline, then data that no side of
/// the mirror can return intact (zinject), which is CRITICAL while the pool stays ONLINE.
#[test]
fn openzfs_an_offline_vdev_and_injected_errors_are_seen() {
    if !only_on(
        Flavour::OpenZfs,
        "openzfs_an_offline_vdev_and_injected_errors_are_seen",
        "zpool status -j and zinject",
    ) {
        return;
    }
    let pool = backed_up_mirror();
    let name = &pool.name;
    ok("zpool", &["offline", name, pool.files[1].to_str().unwrap()]);
    let line = check(&pool, 2);
    assert!(
        line.starts_with(&format!("ZBK CRITICAL - pool {name}: DEGRADED;")),
        "{line}"
    );
    ok("zpool", &["online", name, pool.files[1].to_str().unwrap()]);
    wait_for_resilver(&pool);
    check(&pool, 0);

    // Nothing of the file may be cached: reads served from memory never meet the injected
    // errors (zinject -a flushes the ARC, but not what the dataset's open objects still hold).
    // Exported and imported, the pool starts cold.
    ok("zpool", &["export", name]);
    let dir = pool.files[0].parent().unwrap().to_str().unwrap();
    ok("zpool", &["import", "-d", dir, name]);

    let file = pool
        .root
        .join("hosts/a/d")
        .join(pool.scratch("src").strip_prefix("/").unwrap())
        .join("f");
    assert!(file.is_file(), "{}", file.display());
    ok(
        "zinject",
        &[
            "-t",
            "data",
            "-e",
            "checksum",
            "-f",
            "100",
            "-a",
            file.to_str().unwrap(),
        ],
    );
    let read = sh("cat", &[file.to_str().unwrap()]);
    ok("zinject", &["-c", "all"]);
    assert!(!read.status.success(), "the injected file read back whole");
    let line = check(&pool, 2);
    assert!(line.contains("data error"), "{line}");
    let p = pool_json(&pool);
    assert!(p["data_errors"].as_u64().unwrap() > 0, "{p}");
    assert!(p["checksum_errors"].as_u64().unwrap() > 0, "{p}");
    assert_eq!(p["state"], "ONLINE", "{p}");
}
