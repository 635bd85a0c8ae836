//! Property tests of the inventory parser: any bytes, and `zfs get` listings with hostile
//! names and values; a snapshot's expiry is trusted only from a row of its own.

use super::{parse, Stamp, PROPS, PROP_EXPIRES};
use crate::expiry::Expiry;
use crate::fuzz::stamp_time;
use crate::names::HostName;
use proptest::prelude::*;

/// Text that looks like `zfs get -H -p -r -o name,property,value,source` output of a hosts
/// tree, with hostile names, values holding tabs and newlines, and every kind of source.
fn zfs_get_output() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("t/hosts".to_string()),
        Just("t/hosts/a".to_string()),
        Just("t/hosts/a@s1".to_string()),
        Just("t/hosts/a@s2".to_string()),
        Just("t/hosts/b.example@failed-2026-01-01T000000Z".to_string()),
        Just("t/hosts/A@x".to_string()),
        Just("t/hosts/a/c@x".to_string()),
        Just("t/hosts/..@x".to_string()),
        Just("t/other@x".to_string()),
        "t/hosts/[a-c.@-]{0,6}",
        ".{0,12}",
    ];
    let prop = prop_oneof![
        prop::sample::select(PROPS).prop_map(str::to_string),
        Just("zbk:bogus".to_string()),
        "[a-z:]{0,8}",
    ];
    let value = prop_oneof![
        Just("2026-12-04T01:30:00Z".to_string()),
        Just("never".to_string()),
        Just("-".to_string()),
        Just(String::new()),
        Just("ok".to_string()),
        Just("failed".to_string()),
        Just("18446744073709551616".to_string()),
        Just("2026-12-04T01:30:00+01:00".to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        "[0-9TZ:.-]{0,25}",
        "(.|\t|\n){0,30}",
    ];
    let source = prop_oneof![
        Just("local".to_string()),
        Just("received".to_string()),
        Just("-".to_string()),
        Just("default".to_string()),
        Just("temporary".to_string()),
        Just("inherited from t/hosts".to_string()),
        Just("inherited from t/hosts/a".to_string()),
        "[a-z -]{0,12}",
    ];
    prop::collection::vec((name, prop, value, source, 0..4u8), 0..40).prop_map(|rows| {
        rows.into_iter()
            .map(|(n, p, v, s, shape)| match shape {
                // A well-formed row, a row missing its source, one with a stray tab, one bare.
                0 | 1 => format!("{n}\t{p}\t{v}\t{s}\n"),
                2 => format!("{n}\t{p}\t{v}\n"),
                _ => format!("{n}\t{p}\t{v}\t\t{s}\r\n"),
            })
            .collect()
    })
}

/// Whether the output holds a line stamping `full`'s expiry with a source of its own.
fn has_own_expiry_line(output: &str, full: &str) -> bool {
    output.lines().any(|line| {
        let mut cols = line.splitn(3, '\t');
        let (Some(name), Some(prop), Some(rest)) = (cols.next(), cols.next(), cols.next()) else {
            return false;
        };
        name == full
            && prop == PROP_EXPIRES
            && rest
                .rsplit_once('\t')
                .is_some_and(|(_, src)| src == "local" || src == "received")
    })
}

proptest! {
    #![proptest_config(crate::fuzz::config("src/proptest-regressions/inventory.txt"))]

    #[test]
    fn inventory_from_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse(&text, "t/hosts");
    }

    #[test]
    fn inventory_trusts_only_an_expiry_of_the_snapshot_own(output in zfs_get_output()) {
        let inv = parse(&output, "t/hosts");
        for host in inv.hosts.values() {
            prop_assert!(HostName::parse(host.name.as_str()).is_ok());
            for snap in &host.snapshots {
                let full = format!("{}@{}", host.dataset, snap.name);
                if let Stamp::Valid(_) = snap.stamp {
                    prop_assert!(
                        has_own_expiry_line(&output, &full),
                        "{full} got a valid stamp from no local or received row:\n{output}"
                    );
                }
            }
        }
    }

    #[test]
    fn inherited_expiries_are_never_valid(
        expiry in stamp_time(),
        inherited_from in prop::sample::select(&["t/hosts", "t/hosts/a", "t"][..]),
    ) {
        let value = Expiry::At(expiry).to_string();
        let output = format!(
            "t/hosts/a\tzbk:expires\t{value}\tlocal\n\
             t/hosts/a@s1\tzbk:expires\t{value}\tinherited from {inherited_from}\n\
             t/hosts/a@s1\tzbk:status\tok\tlocal\n\
             t/hosts/a@s2\tzbk:expires\t{value}\tlocal\n"
        );
        let inv = parse(&output, "t/hosts");
        let a = &inv.hosts[&HostName::parse("a").unwrap()];
        prop_assert_eq!(&a.snapshots[0].stamp, &Stamp::Absent);
        prop_assert_eq!(&a.snapshots[1].stamp, &Stamp::Valid(Expiry::At(expiry)));
    }

}

/// Inputs that once found bugs or sit on edges, replayed by name.
#[test]
fn corpus() {
    let _ = parse(
        "\t\t\t\n@\t\t\t\nt/hosts/@\tzbk:expires\tnever\tlocal",
        "t/hosts",
    );
}
