//! Property tests of the config parsers: any text, and known keys with values of any type,
//! give a config or a one-line error naming the file; never a panic.

use super::Global;
use proptest::prelude::*;
use std::path::Path;

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
    ("", "online"),
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
    ("check", "verify_age"),
    ("verify", "slices"),
    ("verify", "bogus"),
    ("check", "scrub_age"),
    ("check", "capacity_warn"),
    ("guard", "check_file"),
    ("guard", "max_delete"),
    ("guard", "max_capacity"),
    ("guard", "bogus"),
    ("zfs", "timeout"),
    ("zfs", "bogus"),
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
        Just("\"sometimes\"".to_string()),
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

proptest! {
    #![proptest_config(crate::fuzz::config("src/proptest-regressions/config.txt"))]

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
                prop_assert!(!g.dataset.as_str().is_empty());
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
}
