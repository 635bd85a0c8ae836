//! Property tests of durations, stamped expiries and command-line times: what is accepted
//! prints back as itself, never lands before the snapshot was taken, and counts calendar
//! months as chrono does.

use super::{parse_time, Expiry, Retention};
use crate::fuzz::stamp_time;
use chrono::Datelike;
use proptest::prelude::*;

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
    #![proptest_config(crate::fuzz::config("src/proptest-regressions/expiry.txt"))]

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
}

/// Inputs that once found bugs or sit on edges, replayed by name.
#[test]
fn corpus() {
    for bad in [
        "",
        "-",
        "never ",
        "9999-12-31T23:59:60Z ",
        "+10000-01-01T00:00:00Z",
    ] {
        let _ = Expiry::parse(bad);
    }
}
