//! Reap over 50 hosts and 1,000 snapshots: the number of zfs processes must not grow with the
//! number of snapshots, except for the destroys themselves.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use common::{ok, text, Pool};

const HOSTS: usize = 50;
const PER_HOST: usize = 20;

#[test]
fn reap_lists_once_whatever_the_number_of_snapshots() {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    for h in 0..HOSTS {
        pool.add_host(&format!("host{h:02}"), &src);
    }
    // Half of each host's snapshots expired long ago, the newer half expires far ahead.
    for h in 0..HOSTS {
        let ds = pool.host_dataset(&format!("host{h:02}"));
        for i in 0..PER_HOST {
            let expires = if i < PER_HOST / 2 {
                "2001-01-01T00:00:00Z"
            } else {
                "2099-01-01T00:00:00Z"
            };
            // Named as zbk names its runs: reap destroys no other name.
            pool.stamped_snapshot(&ds, &format!("2025-01-01T{i:02}0000Z"), expires);
        }
    }
    let out = pool.zbk_expect(0, &["reap", "-v"]);
    let stdout = text(&out.stdout);
    let summary = stdout.lines().last().unwrap();
    let processes: usize = summary.rsplit(' ').next().unwrap().parse().unwrap();
    let expired = HOSTS * PER_HOST / 2;
    assert!(
        summary.contains(&format!("destroyed {expired},")),
        "{summary}"
    );
    // One listing of the whole tree, after a `zfs version` probe on OpenZFS (zfs-fuse, with no
    // /dev/zfs, needs none), then the destroys: one each on zfs-fuse, one comma-list per host
    // on OpenZFS; then for each host its record anew (is it a replica, its listing, the `zfs
    // set`).
    let listing_and_probe = match common::flavour() {
        common::Flavour::OpenZfs => 2,
        common::Flavour::ZfsFuse => 1,
    };
    let records = 3 * HOSTS;
    assert!(
        processes == listing_and_probe + expired + records
            || processes == listing_and_probe + HOSTS + records,
        "{summary}"
    );
    eprintln!("reap over {HOSTS} hosts x {PER_HOST} snapshots: {summary}");
    let left = ok(
        "zfs",
        &[
            "list", "-H", "-t", "snapshot", "-r", "-o", "name", &pool.name,
        ],
    );
    assert_eq!(left.lines().count(), HOSTS * PER_HOST / 2);
    assert!(left
        .lines()
        .all(|l| l.rsplit('@').next().unwrap() >= "2025-01-01T100000Z"));
}
