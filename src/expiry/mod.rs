//! Pure expiry arithmetic: retention durations, the `zbk:expires` value, and when it has passed.
//!
//! Nothing here reads the clock: every function that needs the time takes `now`.

#[cfg(test)]
mod fuzz;

use anyhow::{anyhow, bail, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use std::fmt;
use std::time::Duration;

/// How long a snapshot of a tier is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    For(Span),
    Never,
}

/// A length of time as people give it: whole calendar months (a year is 12 of them), then an
/// exact duration (days, weeks, hours... and any fraction of a month or year).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub months: u64,
    pub exact: Duration,
}

/// humantime's lengths of a month (30.44 days) and a year (365.25 days), in seconds.
const NOMINAL_MONTH: u64 = 2_630_016;
const NOMINAL_YEAR: u64 = 31_557_600;

impl Span {
    /// The span as one duration, a month counted as 30.44 days: for timeouts and waits, where
    /// the calendar does not matter.
    pub fn nominal(self) -> Duration {
        Duration::from_secs(self.months.saturating_mul(NOMINAL_MONTH)).saturating_add(self.exact)
    }

    /// `taken` plus the calendar months (the same time of day, the day of the month clamped to
    /// the month's last), then the exact part; `None` past the calendar's end.
    pub fn after(self, taken: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let months = chrono::Months::new(u32::try_from(self.months).ok()?);
        let exact = chrono::Duration::from_std(self.exact).ok()?;
        taken.checked_add_months(months)?.checked_add_signed(exact)
    }
}

/// The moment a snapshot may be destroyed, as stamped in `zbk:expires`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Expiry {
    At(DateTime<Utc>),
    Never,
}

/// The literal that means "keep forever", both as a retention and as an expiry.
pub const NEVER: &str = "never";

impl Retention {
    /// Parses a humantime duration such as `7days`, `1y 6months`, or `never`. Months and years
    /// are calendar units: their whole numbers count calendar months; the rest is exact.
    pub fn parse(text: &str) -> Result<Retention> {
        let text = text.trim();
        if text == NEVER {
            return Ok(Retention::Never);
        }
        let duration = humantime::parse_duration(text).map_err(|e| {
            anyhow!("invalid duration {text:?}: {e} (e.g. 7days, 5weeks, 13months, never)")
        })?;
        if duration.is_zero() {
            bail!("invalid duration {text:?}: must be longer than zero");
        }
        // humantime counted each whole month and year at its nominal length: take those out
        // of the total again and count them as calendar months.
        let (mut months, mut nominal) = (0u64, 0u64);
        for (whole, unit) in terms(text) {
            let (per, seconds) = match unit {
                "months" | "month" | "M" => (1, NOMINAL_MONTH),
                "years" | "year" | "yr" | "yrs" | "y" => (12, NOMINAL_YEAR),
                _ => continue,
            };
            months = months.saturating_add(whole.saturating_mul(per));
            nominal = nominal.saturating_add(whole.saturating_mul(seconds));
        }
        let exact = duration
            .checked_sub(Duration::from_secs(nominal))
            .ok_or_else(|| anyhow!("invalid duration {text:?}: cannot read its months"))?;
        Ok(Retention::For(Span { months, exact }))
    }

    /// The expiry of a snapshot taken at `taken`; a retention beyond the calendar is `never`.
    pub fn expiry_from(self, taken: DateTime<Utc>) -> Expiry {
        match self {
            Retention::Never => Expiry::Never,
            Retention::For(span) => span.after(taken).map_or(Expiry::Never, Expiry::At),
        }
    }
}

/// The whole number and the unit of each term of a duration humantime has accepted: `1y 6M`
/// gives (1, "y") and (6, "M"); a fraction's digits are dropped, since only whole months are
/// calendar months.
fn terms(text: &str) -> Vec<(u64, &str)> {
    let is_unit = |c: char| c.is_ascii_alphabetic() || c == 'µ';
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest.find(is_unit).unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_end);
        let unit_end = tail.find(|c: char| !is_unit(c)).unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        // humantime reads digits across white space and ends the whole part at a '.'.
        let whole: String = number
            .split('.')
            .next()
            .unwrap_or_default()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        out.push((whole.parse().unwrap_or(u64::MAX), unit));
        rest = tail;
    }
    out
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let span = match self {
            Retention::Never => return f.write_str(NEVER),
            Retention::For(span) => span,
        };
        let plural = |n: u64, one: &str| format!("{n}{one}{}", if n == 1 { "" } else { "s" });
        let mut parts = Vec::new();
        match span.months {
            0 => {}
            m if m % 12 == 0 => parts.push(plural(m / 12, "year")),
            m => parts.push(plural(m, "month")),
        }
        // Days at most: humantime would write 35 days as months, which read back as calendar.
        let secs = span.exact.as_secs();
        let nanos = u64::from(span.exact.subsec_nanos());
        if secs >= 86_400 {
            parts.push(plural(secs / 86_400, "day"));
        }
        for (value, unit) in [
            (secs / 3600 % 24, "h"),
            (secs / 60 % 60, "m"),
            (secs % 60, "s"),
            (nanos / 1_000_000, "ms"),
            (nanos / 1000 % 1000, "us"),
            (nanos % 1000, "ns"),
        ] {
            if value > 0 {
                parts.push(format!("{value}{unit}"));
            }
        }
        f.write_str(&parts.join(" "))
    }
}

impl Expiry {
    /// Parses a stamped value: RFC 3339 in UTC (`2026-12-04T01:30:00Z`) or `never`. Offsets other
    /// than `Z` are refused so that every stamp reads the same in `zfs list`.
    pub fn parse(value: &str) -> Result<Expiry> {
        if value == NEVER {
            return Ok(Expiry::Never);
        }
        if value.len() > 64 || !value.ends_with('Z') {
            bail!("not an RFC 3339 UTC time ending in Z, nor `never`");
        }
        DateTime::parse_from_rfc3339(value)
            .map(|t| Expiry::At(t.with_timezone(&Utc)))
            .map_err(|e| anyhow!("not an RFC 3339 UTC time: {e}"))
    }

    /// Whether the snapshot may go at `now`.
    pub fn has_passed(self, now: DateTime<Utc>) -> bool {
        match self {
            Expiry::At(t) => t <= now,
            Expiry::Never => false,
        }
    }
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expiry::Never => f.write_str(NEVER),
            Expiry::At(t) => f.write_str(&t.to_rfc3339_opts(SecondsFormat::Secs, true)),
        }
    }
}

/// Parses a time given on the command line (`--as-of`): RFC 3339 with any offset.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| anyhow!("invalid time {text:?}: {e} (e.g. 2027-01-01T00:00:00Z)"))
}

/// "in 6d 23h" or "2h ago": how far `then` is from `now`, to the two largest units.
pub fn relative(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (then - now).num_seconds();
    let text = coarse(secs.unsigned_abs());
    if secs >= 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

fn coarse(secs: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (31_557_600, "y"),
        (86_400, "d"),
        (3_600, "h"),
        (60, "m"),
        (1, "s"),
    ];
    let mut parts = Vec::new();
    let mut rest = secs;
    for (size, unit) in UNITS {
        if rest >= size {
            parts.push(format!("{}{unit}", rest / size));
            rest %= size;
        }
        if parts.len() == 2 {
            break;
        }
    }
    if parts.is_empty() {
        "0s".to_string()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap()
    }

    #[test]
    fn seven_days_from_a_run() {
        let r = Retention::parse("7days").unwrap();
        let e = r.expiry_from(t("2026-11-27T01:30:00Z"));
        assert_eq!(e.to_string(), "2026-12-04T01:30:00Z");
    }

    fn after(retention: &str, taken: &str) -> String {
        Retention::parse(retention)
            .unwrap()
            .expiry_from(t(taken))
            .to_string()
    }

    #[test]
    fn months_and_years_are_calendar_months_at_the_same_time_of_day() {
        assert_eq!(
            after("13months", "2026-11-30T04:46:47Z"),
            "2027-12-30T04:46:47Z"
        );
        assert_eq!(
            after("1month", "2027-01-31T10:00:00Z"),
            "2027-02-28T10:00:00Z"
        );
        assert_eq!(after("1M", "2028-01-31T10:00:00Z"), "2028-02-29T10:00:00Z");
        assert_eq!(after("7y", "2026-02-28T05:57:00Z"), "2033-02-28T05:57:00Z");
        assert_eq!(
            after("7years", "2028-02-29T05:57:00Z"),
            "2035-02-28T05:57:00Z"
        );
        assert_eq!(after("4y", "2028-02-29T05:57:00Z"), "2032-02-29T05:57:00Z");
        assert_eq!(
            after("2years", "2026-01-01T00:00:00Z"),
            "2028-01-01T00:00:00Z"
        );
    }

    #[test]
    fn days_and_weeks_stay_exact() {
        assert_eq!(
            after("5weeks", "2026-02-20T01:00:00Z"),
            "2026-03-27T01:00:00Z"
        );
        assert_eq!(after("36h", "2026-02-28T12:00:00Z"), "2026-03-02T00:00:00Z");
    }

    #[test]
    fn mixed_units_take_the_calendar_part_first() {
        // One calendar month to 28 February, then two exact days.
        assert_eq!(
            after("1month2d", "2027-01-31T08:00:00Z"),
            "2027-03-02T08:00:00Z"
        );
        assert_eq!(
            after("1y6months", "2026-08-31T08:00:00Z"),
            "2028-02-29T08:00:00Z"
        );
        assert_eq!(
            after("1y 6M 12h", "2026-01-15T00:00:00Z"),
            "2027-07-15T12:00:00Z"
        );
        // A fraction of a month is not a calendar month: half of 30.44 days, exactly.
        assert_eq!(
            after("1.5months", "2026-01-01T00:00:00Z"),
            "2026-02-16T05:16:48Z"
        );
        assert_eq!(
            Retention::parse("1y 6months 2d").unwrap(),
            Retention::For(Span {
                months: 18,
                exact: Duration::from_secs(2 * 86_400)
            })
        );
    }

    #[test]
    fn retentions_print_as_they_read_back() {
        for (given, shown) in [
            ("13months", "13months"),
            ("1y", "1year"),
            ("24M", "2years"),
            ("5weeks", "35days"),
            ("1d 2h 3m 4s", "1day 2h 3m 4s"),
            ("1month 2days", "1month 2days"),
            ("1500ms", "1s 500ms"),
        ] {
            let r = Retention::parse(given).unwrap();
            assert_eq!(r.to_string(), shown, "{given}");
            assert_eq!(Retention::parse(shown).unwrap(), r, "{shown}");
        }
    }

    #[test]
    fn timeouts_count_a_month_as_humantime_does() {
        let Retention::For(span) = Retention::parse("1month 1s").unwrap() else {
            panic!("not a span")
        };
        assert_eq!(span.nominal(), Duration::from_secs(2_630_017));
    }

    #[test]
    fn never_is_a_retention_and_an_expiry() {
        let e = Retention::parse("never")
            .unwrap()
            .expiry_from(t("2026-01-01T00:00:00Z"));
        assert_eq!(e, Expiry::Never);
        assert!(!e.has_passed(t("9999-01-01T00:00:00Z")));
        assert_eq!(Expiry::parse("never").unwrap(), Expiry::Never);
    }

    #[test]
    fn bad_durations_are_refused() {
        for bad in ["", "7", "soon", "0s", "-1d", "7 dayz"] {
            assert!(Retention::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_retention_past_the_calendar_is_never() {
        let e = Retention::parse("100000000y")
            .unwrap()
            .expiry_from(t("2026-01-01T00:00:00Z"));
        assert_eq!(e, Expiry::Never);
    }

    #[test]
    fn stamps_must_be_utc() {
        assert!(Expiry::parse("2026-12-04T01:30:00Z").is_ok());
        for bad in [
            "2026-12-04T01:30:00+01:00",
            "2026-12-04",
            "",
            "-",
            "garbage",
            "Z",
            "1735689600",
        ] {
            assert!(Expiry::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Expiry::parse(&"9".repeat(9000)).is_err());
    }

    #[test]
    fn expiry_passes_at_its_moment() {
        let e = Expiry::parse("2026-12-04T01:30:00Z").unwrap();
        assert!(!e.has_passed(t("2026-12-04T01:29:59Z")));
        assert!(e.has_passed(t("2026-12-04T01:30:00Z")));
    }

    #[test]
    fn relative_times_read_naturally() {
        let now = t("2026-11-27T00:00:00Z");
        assert_eq!(relative(t("2026-12-03T23:00:00Z"), now), "in 6d 23h");
        assert_eq!(relative(t("2026-11-26T22:00:00Z"), now), "2h ago");
        assert_eq!(relative(now, now), "in 0s");
    }
}
