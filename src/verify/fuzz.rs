//! Property tests of verify's pure parts: every path falls in exactly one slice and a run of
//! verifies covers them all; the stamp reads back what it wrote and never panics on foreign
//! text; rsync's itemized output of any shape is read without panicking.

use super::{read_itemized, slice_of, Found, Part, Verified, MAX_SLICES};
use crate::fuzz::stamp_time;
use proptest::prelude::*;

/// A path as a client may hold it: any bytes but NUL, some of them slashes.
fn path() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop_oneof![Just(b'/'), Just(b'.'), 1u8..=255u8], 1..40)
}

proptest! {
    #![proptest_config(crate::fuzz::config("src/proptest-regressions/verify.txt"))]

    /// The slices of a tree partition it: each path is in exactly one of 0..n, the same one
    /// every time it is asked.
    #[test]
    fn every_path_falls_in_exactly_one_slice(
        paths in prop::collection::vec(path(), 1..20),
        n in 1..=MAX_SLICES,
    ) {
        for p in &paths {
            let k = slice_of(p, n);
            prop_assert!(k < n);
            prop_assert_eq!(k, slice_of(p, n));
            let holding = (0..n).filter(|&j| slice_of(p, n) == j).count();
            prop_assert_eq!(holding, 1);
        }
    }

    /// n verifies one after another, each taking the slice the stamp before it names, cover
    /// every slice once, and so every path.
    #[test]
    fn n_verifies_in_a_row_cover_the_tree(
        paths in prop::collection::vec(path(), 1..50),
        n in 1..40u32,
        start in stamp_time(),
        gap in 1i64..(40 * 86400),
    ) {
        // n verifies a gap apart must end where a stamp's time can still be written (year 9999).
        let start = start.min(chrono::DateTime::from_timestamp(253_000_000_000, 0).unwrap());
        let mut last: Option<Verified> = None;
        let mut taken = Vec::new();
        let mut now = start;
        for _ in 0..n {
            let k = Verified::next(last.as_ref(), n);
            taken.push(k);
            last = Some(Verified::record(last.as_ref(), Part::Slice(k), n, now, &Found::default()));
            now += chrono::TimeDelta::seconds(gap);
        }
        let mut sorted = taken.clone();
        sorted.sort_unstable();
        prop_assert_eq!(sorted, (0..n).collect::<Vec<_>>());
        for p in &paths {
            prop_assert!(taken.contains(&slice_of(p, n)));
        }
        let last = last.unwrap();
        prop_assert_eq!(last.covered(), Some(start));
        prop_assert_eq!(Verified::from_property(&last.to_property()), Some(last.clone()));
        prop_assert!(last.to_property().len() < 8192);
    }

    #[test]
    fn a_stamp_from_any_text_never_panics(text in "(at=|slice=|seen=|[0-9,/ =a-z:TZ-]){0,60}") {
        if let Some(v) = Verified::from_property(&text) {
            prop_assert_eq!(v.seen.len(), v.slices as usize);
            prop_assert_eq!(Verified::from_property(&v.to_property()), Some(v));
        }
    }

    #[test]
    fn itemized_output_of_any_shape_never_panics(
        lines in prop::collection::vec("[<>ch.*][fdLDS.][.+cstTpoguax ?]{9}( .{0,10})?|.{0,20}", 0..20),
    ) {
        let mut found = Found::default();
        read_itemized(&lines.join("\n"), &mut found);
        prop_assert!(found.silent.len() <= lines.len());
    }
}

/// The widest stamp there is still fits in a ZFS user property.
#[test]
fn the_largest_stamp_fits_a_property() {
    let at = crate::expiry::parse_time("2026-12-01T00:00:00Z").unwrap();
    let mut v = Verified::record(None, Part::Full, MAX_SLICES, at, &Found::default());
    v.seen = (0..MAX_SLICES)
        .map(|i| Some(at - chrono::TimeDelta::seconds(i64::from(i) * 365 * 86400)))
        .collect();
    v.files = u64::MAX;
    v.acked = Some(at);
    v.pending = vec![u64::MAX; super::MAX_PENDING];
    assert!(v.to_property().len() < 8192, "{}", v.to_property().len());
}
