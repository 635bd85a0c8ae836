//! Test-only: what the property tests beside each parser share. They feed the parsers of
//! untrusted text (the TOML configs, `zfs get` and `zfs diff` output, stamped values,
//! durations, times, host names) arbitrary and hostile input: nothing may panic, and what is
//! accepted must keep the invariants the rest of zbk relies on.
//!
//! cargo fuzz needs a nightly toolchain, so these are proptest properties: `cargo test` runs a
//! small number of cases (`PROPTEST_CASES` raises it, e.g. `PROPTEST_CASES=100000 cargo test
//! fuzz`). Failing inputs are kept in `src/proptest-regressions/<module>.txt` and replayed
//! first on every run: those files are the corpus, commit them.

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// Cases per property unless `PROPTEST_CASES` says otherwise: enough to catch regressions,
/// few enough to keep `cargo test` fast.
const DEFAULT_CASES: u32 = 500;

/// The settings of one module's properties, whose failures are kept in `corpus`
/// (`src/proptest-regressions/<module>.txt`, from the crate's root, where cargo runs tests).
pub fn config(corpus: &'static str) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(corpus))),
        ..Config::default()
    }
}

/// A time zbk could stamp: whole seconds between 1970 and 9999.
pub fn stamp_time() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..253_402_300_799).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())
}
