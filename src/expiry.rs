//! Pure expiry arithmetic: retention durations, the `zbk:expires` value, and when it has passed.
//!
//! Nothing here reads the clock: every function that needs the time takes `now`.

use anyhow::{anyhow, bail, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use std::fmt;
use std::time::Duration;

/// How long a snapshot of a tier is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    For(Duration),
    Never,
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
    /// Parses a humantime duration such as `7days`, `1y 6months`, or `never`.
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
        Ok(Retention::For(duration))
    }

    /// The expiry of a snapshot taken at `taken`; a retention beyond the calendar is `never`.
    pub fn expiry_from(self, taken: DateTime<Utc>) -> Expiry {
        match self {
            Retention::Never => Expiry::Never,
            Retention::For(d) => chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| taken.checked_add_signed(d))
                .map_or(Expiry::Never, Expiry::At),
        }
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Retention::Never => f.write_str(NEVER),
            Retention::For(d) => write!(f, "{}", humantime::format_duration(*d)),
        }
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

    #[test]
    fn months_and_years_use_humantime_lengths() {
        let taken = t("2026-01-01T00:00:00Z");
        // humantime: a month is 30.44 days, a year 365.25 days.
        assert_eq!(
            Retention::parse("13months")
                .unwrap()
                .expiry_from(taken)
                .to_string(),
            "2027-01-31T17:16:48Z"
        );
        assert_eq!(
            Retention::parse("1y")
                .unwrap()
                .expiry_from(taken)
                .to_string(),
            "2027-01-01T06:00:00Z"
        );
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
