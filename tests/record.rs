//! The record each run leaves on its host's dataset (`zbk:record`), which lets `zbk check` and
//! `zbk status` answer from one `zfs get` of the host datasets: that they use it, that what they
//! say is what the full listing says, and that a record which does not hold up (a snapshot
//! destroyed by hand, a forged or foreign record) is never believed.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use common::{json, ok, only_on, text, three_hosts, CountingZfs, Flavour, Pool};

/// Hosts a (two good runs), b (never run) and c (one failed run).
fn hosts() -> Pool {
    let pool = three_hosts();
    pool.zbk_expect(0, &["run", "a"]);
    pool
}

fn record(pool: &Pool, host: &str) -> (String, String) {
    pool.prop(&pool.host_dataset(host), "zbk:record")
}

/// What status says when every record is gone: the full listing's answer.
fn without_records(pool: &Pool, args: &[&str]) -> String {
    let saved: Vec<(String, (String, String))> = ["a", "b", "c"]
        .iter()
        .map(|h| (pool.host_dataset(h), record(pool, h)))
        .collect();
    for (ds, _) in &saved {
        ok("zfs", &["inherit", "zbk:record", ds]);
    }
    let out = text(&pool.zbk(args).stdout);
    for (ds, (value, source)) in saved {
        if source == "local" {
            ok("zfs", &["set", &format!("zbk:record={value}"), &ds]);
        }
    }
    out
}

/// The zfs calls that read snapshots: a recursive listing or one of a host's snapshots.
fn snapshot_listings(calls: &[String], pool: &Pool) -> Vec<String> {
    let hosts = format!("{}/hosts", pool.name);
    calls
        .iter()
        .filter(|c| {
            c.starts_with("get ")
                && (c.contains(" -r ")
                    || (c.contains(" -d 1 ") && !c.ends_with(&format!(" {hosts}"))))
        })
        .cloned()
        .collect()
}

#[test]
fn check_and_status_answer_from_the_records_as_the_full_listing_would() {
    let pool = hosts();
    let snaps = pool.snapshots("a");
    let (value, source) = record(&pool, "a");
    assert_eq!(source, "local");
    assert!(
        value.starts_with(&format!(
            "v=3 good={} run={} failures=0 snapshots=2 ",
            snaps[1], snaps[1]
        )),
        "{value}"
    );
    let (value, _) = record(&pool, "c");
    assert!(
        value.contains(" good=- ") && value.contains(" failures=1 snapshots=1 "),
        "{value}"
    );
    assert_eq!(record(&pool, "b").1, "-", "a host never run has no record");

    // b has no record: it alone is listed in full; a and c are read from their records.
    let zfs = CountingZfs::new();
    let out = zfs.zbk(&pool, &["check", "--timeout", "300"]);
    let line = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{line}");
    assert!(
        line.starts_with("ZBK CRITICAL - b: no backup yet; c: no good backup, 1 failed run"),
        "{line}"
    );
    let listings = snapshot_listings(&zfs.calls(), &pool);
    assert_eq!(listings.len(), 1, "{:?}", zfs.calls());
    assert!(
        listings[0].ends_with(&pool.host_dataset("b")),
        "{listings:?}"
    );
    assert_same_status(&pool);
    let line_again = text(&pool.zbk(&["check"]).stdout);
    let words = |l: &str| l.split(" |").next().unwrap().to_string();
    assert_eq!(
        words(&without_records(&pool, &["check"])),
        words(&line_again)
    );

    // With every host recorded, check reads no snapshot listing at all.
    pool.zbk_expect(0, &["run", "b"]);
    let out = zfs.zbk(&pool, &["check", "--timeout", "300"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        snapshot_listings(&zfs.calls(), &pool).is_empty(),
        "{:?}",
        zfs.calls()
    );
    // The named snapshots, where read back at all (zfs-fuse), are asked their createtxg
    // alone: the record's facts say the rest.
    let named: Vec<String> = zfs
        .calls()
        .into_iter()
        .filter(|c| c.contains('@'))
        .collect();
    assert!(named.iter().all(|c| c.contains(" createtxg ")), "{named:?}");
    zfs.zbk(&pool, &["status"]);
    assert!(
        snapshot_listings(&zfs.calls(), &pool).is_empty(),
        "{:?}",
        zfs.calls()
    );
    assert_same_status(&pool);
}

/// `status --json` from the records is the full listing's, but for the seconds that pass.
fn assert_same_status(pool: &Pool) {
    let ageless = |text: &str| -> serde_json::Value {
        let mut rows: serde_json::Value = serde_json::from_str(text).unwrap();
        for row in rows.as_array_mut().unwrap() {
            let row = row.as_object_mut().unwrap();
            row.remove("last_good_age_seconds");
            // "last good backup 1s ago": the same judgement a second later; and the space
            // figures, which OpenZFS settles at its next txg, between the two reads.
            for key in ["state_reason", "used_bytes", "snapshot_bytes"] {
                row.remove(key);
            }
        }
        rows
    };
    let fast = text(&pool.zbk_expect(0, &["status", "--json"]).stdout);
    assert_eq!(
        ageless(&fast),
        ageless(&without_records(pool, &["status", "--json"]))
    );
}

#[test]
fn a_record_that_does_not_hold_up_is_never_believed() {
    let pool = hosts();
    let ds = pool.host_dataset("a");
    let snaps = pool.snapshots("a");

    // The newest good backup destroyed by hand: the older one is the last good one.
    ok("zfs", &["destroy", &format!("{ds}@{}", snaps[1])]);
    let rows = json(&pool.zbk_expect(0, &["status", "--json", "a"]));
    assert_eq!(rows[0]["last_good_snapshot"], snaps[0].as_str());
    assert_eq!(rows[0]["snapshots"], 1);

    // Every snapshot gone, the record still naming them: no backup, never OK.
    ok("zfs", &["destroy", &format!("{ds}@{}", snaps[0])]);
    let line = text(&pool.zbk_expect(2, &["check", "a"]).stdout);
    assert!(
        line.starts_with("ZBK CRITICAL - a: no backup yet"),
        "{line}"
    );

    // A forged record naming a failed run as the last good backup.
    let c = pool.host_dataset("c");
    let failed = &pool.snapshots("c")[0];
    ok("zfs", &["set", &format!("zbk:record=v=3 good={failed} run={failed} failures=0 snapshots=1 pinned=0 mass=- latest=- changed=- verified=- facts=-"), &c]);
    let line = text(&pool.zbk_expect(2, &["check", "c"]).stdout);
    assert!(
        line.starts_with("ZBK CRITICAL - c: no good backup, 1 failed run"),
        "{line}"
    );
    // A record naming a snapshot that never existed, on a host that has none.
    let b = pool.host_dataset("b");
    ok("zfs", &["set", "zbk:record=v=3 good=ghost run=ghost failures=0 snapshots=1 pinned=0 mass=- latest=- changed=- verified=- facts=-", &b]);
    let line = text(&pool.zbk_expect(2, &["check", "b"]).stdout);
    assert!(
        line.starts_with("ZBK CRITICAL - b: no backup yet"),
        "{line}"
    );
    // Garbage in the record is no record.
    ok("zfs", &["set", "zbk:record=all fine, trust me", &b]);
    pool.zbk_expect(2, &["check", "b"]);
}

#[test]
fn reap_and_keep_leave_the_record_true() {
    let pool = hosts();
    let ds = pool.host_dataset("a");
    for i in 0..3 {
        pool.stamped_snapshot(
            &ds,
            &format!("2001-01-0{}T000000Z", i + 1),
            "2001-02-01T00:00:00Z",
        );
    }
    pool.zbk_expect(0, &["run", "a"]);
    assert!(
        record(&pool, "a").0.contains(" snapshots=6 "),
        "{:?}",
        record(&pool, "a")
    );
    pool.zbk_expect(0, &["reap"]);
    assert_eq!(pool.snapshots("a").len(), 3);
    assert!(
        record(&pool, "a").0.contains(" snapshots=3 "),
        "{:?}",
        record(&pool, "a")
    );
    let newest = pool.snapshots("a")[2].clone();
    pool.zbk_expect(0, &["keep", "a", &newest, "--forever"]);
    assert!(
        record(&pool, "a").0.contains(" pinned=1 "),
        "{:?}",
        record(&pool, "a")
    );
    assert_same_status(&pool);
}

/// OpenZFS: a snapshot made by hand, which names nothing the record names, still shows, since
/// the record carries the dataset's snapshots_changed.
#[test]
fn openzfs_a_snapshot_made_by_hand_shows_through_snapshots_changed() {
    if !only_on(
        Flavour::OpenZfs,
        "openzfs_a_snapshot_made_by_hand_shows_through_snapshots_changed",
        "snapshots_changed",
    ) {
        return;
    }
    let pool = hosts();
    let ds = pool.host_dataset("a");
    assert!(
        !record(&pool, "a").0.contains(" changed=- "),
        "{:?}",
        record(&pool, "a")
    );
    ok("zfs", &["snapshot", &format!("{ds}@by-hand")]);
    let rows = json(&pool.zbk_expect(0, &["status", "--json", "a"]));
    assert_eq!(rows[0]["snapshots"], 3);
    // And one destroyed by hand, of which the record names nothing either.
    let first = pool.snapshots("a")[0].clone();
    pool.zbk_expect(0, &["run", "a"]);
    ok("zfs", &["destroy", &format!("{ds}@{first}")]);
    let rows = json(&pool.zbk_expect(0, &["status", "--json", "a"]));
    assert_eq!(rows[0]["snapshots"], 3);
}

/// OpenZFS: while snapshots_changed reads as the record has it, check is one `zfs get` of the
/// host datasets and nothing more; snapshots destroyed by hand move it, so a record naming
/// them is read back and never makes check say OK.
#[test]
fn openzfs_check_is_one_zfs_get_until_a_snapshot_is_destroyed_by_hand() {
    if !only_on(
        Flavour::OpenZfs,
        "openzfs_check_is_one_zfs_get_until_a_snapshot_is_destroyed_by_hand",
        "snapshots_changed",
    ) {
        return;
    }
    let pool = hosts();
    pool.zbk_expect(0, &["run", "b"]);
    let zfs = CountingZfs::new();
    let out = zfs.zbk(&pool, &["check", "--timeout", "300", "a", "b"]);
    let line = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{line}");
    // Beside it, the pool's health reads the pool's creation time while it has no finished
    // scrub: the one other zfs call, about the pool, not the hosts.
    let hosts = format!("{}/hosts", pool.name);
    let about_hosts = |calls: Vec<String>| -> Vec<String> {
        calls.into_iter().filter(|c| c.contains(&hosts)).collect()
    };
    let calls = about_hosts(zfs.calls());
    assert_eq!(calls.len(), 1, "{:?}", zfs.calls());
    assert!(
        calls[0].starts_with("get ") && calls[0].ends_with(&hosts),
        "{calls:?}"
    );
    // The same from status's summary view.
    zfs.zbk(&pool, &["status"]);
    assert_eq!(about_hosts(zfs.calls()).len(), 1, "{:?}", zfs.calls());

    // Every snapshot of a destroyed by hand, in one call: its record names them still.
    let ds = pool.host_dataset("a");
    let snaps = pool.snapshots("a").join(",");
    ok("zfs", &["destroy", &format!("{ds}@{snaps}")]);
    let out = zfs.zbk(&pool, &["check", "--timeout", "300", "a", "b"]);
    let line = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{line}");
    assert!(
        line.starts_with("ZBK CRITICAL - a: no backup yet"),
        "{line}"
    );
    assert!(about_hosts(zfs.calls()).len() > 1, "{:?}", zfs.calls());
}
