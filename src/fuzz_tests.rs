//! Property-based fuzzing of the parsers that read untrusted text: the TOML configs, `zfs get`
//! and `zfs diff` output, `zbk:expires` and `zbk:changes` values, durations, times, host names
//! and the file names `zbk diff` prints. They must never panic, and
//! what they accept must keep the invariants the rest of zbk relies on.
//!
//! cargo fuzz needs a nightly toolchain, so these are proptest properties: `cargo test` runs a
//! small number of cases (`PROPTEST_CASES` raises it, e.g. `PROPTEST_CASES=100000 cargo test
//! fuzz_tests`). Failing inputs are kept in `src/proptest-regressions/fuzz_tests.txt` and
//! replayed first on every run: that file is the corpus, commit it.

use crate::config::Global;
use crate::expiry::{parse_time, Expiry, Retention};
use crate::inventory::{self, Stamp, PROPS, PROP_EXPIRES};
use crate::names::{is_safe_component, HostName};
use chrono::{DateTime, Datelike, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use std::path::Path;

/// Cases per property unless `PROPTEST_CASES` says otherwise: enough to catch regressions,
/// few enough to keep `cargo test` fast.
const DEFAULT_CASES: u32 = 500;

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "src/proptest-regressions/fuzz_tests.txt",
        ))),
        ..Config::default()
    }
}

const GLOBAL: &str = "/backup/etc/zbk.toml";
const HOST: &str = "/backup/hosts/a/c/zbk.toml";

/// An error from a config parser: one line, naming the file.
fn check_config_error(err: &anyhow::Error, path: &str) -> Result<(), TestCaseError> {
    let text = format!("{err:#}");
    prop_assert!(text.starts_with(path), "does not name the file: {text}");
    prop_assert!(!text.contains('\n'), "more than one line: {text:?}");
    Ok(())
}

/// Every key either config file knows, by table, and keys it does not.
const KEYS: &[(&str, &str)] = &[
    ("", "dataset"),
    ("", "destroy_batch"),
    ("", "offsite_expiry"),
    ("", "sources"),
    ("", "min_keep"),
    ("", "log_keep"),
    ("", "bogus"),
    ("tiers", "default"),
    ("tiers", "weekly"),
    ("tiers", "-x"),
    ("tiers", "a b"),
    ("rsync", "args"),
    ("rsync", "extra_args"),
    ("rsync", "ok_codes"),
    ("rsync", "warning_codes"),
    ("rsync", "bwlimit"),
    ("rsync", "io_timeout"),
    ("rsync", "exclude_file"),
    ("rsync", "bogus"),
    ("ssh", "user"),
    ("ssh", "port"),
    ("ssh", "identity"),
    ("ssh", "options"),
    ("ssh", "connect_timeout"),
    ("hooks", "pre_run"),
    ("hooks", "post_run"),
    ("hooks", "timeout"),
    ("check", "warn"),
    ("check", "crit"),
    ("guard", "check_file"),
    ("guard", "max_delete"),
    ("guard", "max_capacity"),
    ("guard", "bogus"),
    ("bogus", "x"),
];

/// A TOML value of any type, some of them plausible for some key.
fn toml_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}").replace("inf", "inf").replace("NaN", "nan")),
        any::<bool>().prop_map(|b| b.to_string()),
        "[ -~é\u{0}\u{7f}]{0,12}".prop_map(|s| format!("{s:?}")),
        Just("\"7days\"".to_string()),
        Just("\"never\"".to_string()),
        Just("\"/srv/\"".to_string()),
        Just("\"root@h:/\"".to_string()),
        Just("\"-e sh\"".to_string()),
        Just("\"\"".to_string()),
        Just("1979-05-27T07:32:00Z".to_string()),
        Just("0.5".to_string()),
        Just("-1".to_string()),
        Just("256".to_string()),
        Just("65536".to_string()),
        Just("18446744073709551616".to_string()),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(("[a-z_]{1,6}", inner), 0..3).prop_map(|v| {
                let fields: Vec<String> = v.iter().map(|(k, x)| format!("{k} = {x}")).collect();
                format!("{{ {} }}", fields.join(", "))
            }),
        ]
    })
}

/// A config of known (and unknown) keys with values of any type, in table order, sometimes
/// cut short at an arbitrary byte, as a truncated write would leave it.
fn structured_config() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((prop::sample::select(KEYS), toml_value()), 0..10),
        any::<bool>(),
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(|(mut entries, with_dataset, cut, truncate)| {
            entries.sort_by_key(|((table, _), _)| *table);
            let mut text = String::new();
            if with_dataset {
                text.push_str("dataset = \"tank/backup\"\n");
            }
            let mut current = "";
            for ((table, key), value) in entries {
                if table != current {
                    text.push_str(&format!("[{table}]\n"));
                    current = table;
                }
                text.push_str(&format!("{key:?} = {value}\n"));
            }
            if truncate && !text.is_empty() {
                let mut at = cut.index(text.len());
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.truncate(at);
            }
            text
        })
}

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

/// A time zbk could stamp: whole seconds between 1970 and 9999.
fn stamp_time() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..253_402_300_799).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())
}

/// Something shaped like a duration: numbers and units, some of them wrong.
fn duration_text() -> impl Strategy<Value = String> {
    let unit = prop::sample::select(
        &[
            "", "s", "sec", "m", "min", "h", "hours", "d", "day", "days", "w", "weeks", "M",
            "months", "y", "years", "ns", "us", "ms", "dayz", "never", "µs",
        ][..],
    );
    prop::collection::vec((any::<u64>().prop_map(|n| n % 100_000_000_000), unit), 1..4).prop_map(
        |parts| {
            parts
                .into_iter()
                .map(|(n, u)| format!("{n}{u}"))
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn global_config_from_any_text(text in "(.|\n|\t|\\[|\\]|=|\"){0,200}") {
        if let Err(e) = Global::parse(&text, Path::new(GLOBAL)) {
            check_config_error(&e, GLOBAL)?;
        }
    }

    #[test]
    fn global_config_from_wrongly_typed_keys(text in structured_config()) {
        match Global::parse(&text, Path::new(GLOBAL)) {
            Err(e) => check_config_error(&e, GLOBAL)?,
            Ok(g) => {
                prop_assert!(!g.dataset.is_empty());
                prop_assert!(g.destroy_batch > 0);
            }
        }
    }

    #[test]
    fn host_config_from_any_text(text in "(.|\n|\t|\\[|\\]|=|\"){0,200}") {
        let global = Global::parse("dataset = \"tank/backup\"\n", Path::new(GLOBAL)).unwrap();
        if let Err(e) = global.parse_host(&text, Path::new(HOST)) {
            check_config_error(&e, HOST)?;
        }
    }

    #[test]
    fn host_config_from_wrongly_typed_keys(text in structured_config()) {
        let global = Global::parse("dataset = \"tank/backup\"\n", Path::new(GLOBAL)).unwrap();
        match global.parse_host(&text, Path::new(HOST)) {
            Err(e) => check_config_error(&e, HOST)?,
            Ok(h) => {
                prop_assert!(!h.sources.is_empty());
                for s in &h.sources {
                    prop_assert!(!s.starts_with('-') && !s.chars().any(char::is_control), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn inventory_from_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = inventory::parse(&text, "t/hosts");
    }

    #[test]
    fn inventory_trusts_only_an_expiry_of_the_snapshot_own(output in zfs_get_output()) {
        let inv = inventory::parse(&output, "t/hosts");
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
        let inv = inventory::parse(&output, "t/hosts");
        let a = &inv.hosts[&HostName::parse("a").unwrap()];
        prop_assert_eq!(&a.snapshots[0].stamp, &Stamp::Absent);
        prop_assert_eq!(&a.snapshots[1].stamp, &Stamp::Valid(Expiry::At(expiry)));
    }

    #[test]
    fn expiry_from_any_text(text in "(.|\n){0,80}") {
        if let Ok(e) = Expiry::parse(&text) {
            // Formatting is canonical: parsing what was formatted gives it back.
            let shown = e.to_string();
            let again = Expiry::parse(&shown).unwrap();
            prop_assert_eq!(again.to_string(), shown);
        }
    }

    #[test]
    fn expiry_from_time_like_text(text in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?([Zz]|[+-][0-9]{2}:[0-9]{2})") {
        if let Ok(e) = Expiry::parse(&text) {
            prop_assert!(text.ends_with('Z'), "non-UTC stamp accepted: {text}");
            let shown = e.to_string();
            prop_assert_eq!(Expiry::parse(&shown).unwrap().to_string(), shown);
        }
    }

    #[test]
    fn expiry_round_trips(t in stamp_time()) {
        let e = Expiry::At(t);
        let shown = e.to_string();
        prop_assert_eq!(shown.len(), 20);
        prop_assert_eq!(Expiry::parse(&shown).unwrap(), e);
    }

    #[test]
    fn retention_from_any_text(text in "(.|\n){0,40}") {
        let _ = Retention::parse(&text);
    }

    #[test]
    fn retention_from_duration_like_text(text in duration_text(), taken in stamp_time()) {
        if let Ok(r) = Retention::parse(&text) {
            // What it prints (in tiers, in messages) reads back as the same retention.
            prop_assert_eq!(Retention::parse(&r.to_string()).unwrap(), r);
            // A retention never expires a snapshot before it was taken.
            match r.expiry_from(taken) {
                Expiry::At(at) => prop_assert!(at > taken),
                Expiry::Never => {}
            }
        }
    }

    #[test]
    fn calendar_months_land_where_chrono_puts_them(
        taken in stamp_time(),
        months in 1u32..1200,
        days in 0u64..400,
    ) {
        let r = Retention::parse(&format!("{months}months {days}d")).unwrap();
        let want = taken
            .checked_add_months(chrono::Months::new(months))
            .and_then(|t| t.checked_add_signed(chrono::Duration::days(days as i64)));
        let got = r.expiry_from(taken);
        prop_assert_eq!(got, want.map_or(Expiry::Never, Expiry::At));
        // The same moment by hand: the month count moves on, the day is clamped to the
        // month's last, the time of day stays.
        let index = taken.year() as i64 * 12 + taken.month0() as i64 + months as i64;
        let (year, month) = (index.div_euclid(12) as i32, index.rem_euclid(12) as u32 + 1);
        let last = (28..=31)
            .rev()
            .find(|d| chrono::NaiveDate::from_ymd_opt(year, month, *d).is_some())
            .unwrap();
        let date = chrono::NaiveDate::from_ymd_opt(year, month, taken.day().min(last)).unwrap();
        let by_hand = date.and_time(taken.time()).and_utc() + chrono::Duration::days(days as i64);
        prop_assert_eq!(got, Expiry::At(by_hand));
    }

    #[test]
    fn years_are_twelve_calendar_months(taken in stamp_time(), years in 1u32..100) {
        prop_assert_eq!(
            Retention::parse(&format!("{years}y")).unwrap().expiry_from(taken),
            Retention::parse(&format!("{}months", years * 12)).unwrap().expiry_from(taken)
        );
    }

    #[test]
    fn parse_time_from_any_text(text in "(.|\n){0,60}") {
        let _ = parse_time(&text);
    }

    #[test]
    fn host_names_cannot_escape(name in "([a-zA-Z0-9. /_@\n\t-]|\\.\\.|é|\u{0}){0,70}") {
        if let Ok(h) = HostName::parse(&name) {
            let s = h.as_str();
            prop_assert_eq!(s, name.as_str());
            prop_assert!(!s.is_empty() && s.len() <= 253);
            prop_assert!(!s.contains('/'), "{s:?}");
            prop_assert!(!s.contains(".."), "{s:?}");
            prop_assert!(!s.chars().any(char::is_whitespace), "{s:?}");
            prop_assert!(!s.chars().any(|c| c.is_uppercase()), "{s:?}");
            prop_assert!(!s.starts_with('-') && !s.starts_with('.'), "{s:?}");
            prop_assert!(s != "." && s != "..");
            prop_assert!(is_safe_component(s), "{s:?}");
        }
    }

    #[test]
    fn diff_names_stay_on_their_line_and_zfs_escapes_round_trip(
        name in prop::collection::vec(any::<u8>(), 0..60)
    ) {
        let shown = crate::diff::escape(&name);
        prop_assert!(!shown.chars().any(char::is_control), "{shown:?}");
        // OpenZFS writes every byte outside printable ASCII, and the backslash and space, as
        // a backslash and four octal digits.
        let zfs: String = name
            .iter()
            .map(|&b| match b {
                b'!'..=b'~' if b != b'\\' => (b as char).to_string(),
                _ => format!("\\{b:04o}"),
            })
            .collect();
        prop_assert_eq!(crate::diff::unescape(&zfs), name.clone());
        let line = format!("1.0\t+\tF\t/d/{zfs}");
        let parsed = crate::diff::parse_zfs_diff(&line).unwrap();
        prop_assert_eq!(&parsed.2[3..], &name[..]);
    }

    #[test]
    fn zfs_diff_lines_and_changes_from_any_text(text in "(.|\n|\t|\\\\[0-7]{1,5}){0,80}") {
        for line in text.lines() {
            let _ = crate::diff::parse_zfs_diff(line);
        }
        let _ = crate::diff::unescape(&text);
        let _ = crate::rsync_report::Stats::from_property(&text);
        let _ = crate::rsync_report::stats(&text);
    }

    #[test]
    fn host_names_from_any_text(name in "(.|\n){0,300}") {
        if let Ok(h) = HostName::parse(&name) {
            prop_assert!(h.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'));
        }
    }
}

/// Inputs that once found bugs or sit on edges, replayed by name: the hand-kept corpus.
#[test]
fn corpus() {
    let global = Global::parse("dataset = \"t\"\n", Path::new(GLOBAL)).unwrap();
    for text in [
        "é",
        "dataset = \"t\"\né",
        "dataset = \"t\"\n[rsync\né",
        "\u{feff}dataset = \"t\"",
        "dataset = \"t\"\nmin_keep = 18446744073709551616\n",
        "dataset = \"t\"\n[guard]\nmax_delete = nan\n",
        "dataset = \"t\"\n[guard]\nmax_capacity = 300\n",
        "dataset = \"t\"\n[tiers]\ndefault = \"99999999999999999999y\"\n",
    ] {
        if let Err(e) = Global::parse(text, Path::new(GLOBAL)) {
            check_config_error(&e, GLOBAL).unwrap();
        }
        if let Err(e) = global.parse_host(text, Path::new(HOST)) {
            check_config_error(&e, HOST).unwrap();
        }
    }
    for bad in [
        "",
        "-",
        "never ",
        "9999-12-31T23:59:60Z ",
        "+10000-01-01T00:00:00Z",
    ] {
        let _ = Expiry::parse(bad);
    }
    let _ = inventory::parse(
        "\t\t\t\n@\t\t\t\nt/hosts/@\tzbk:expires\tnever\tlocal",
        "t/hosts",
    );
}
