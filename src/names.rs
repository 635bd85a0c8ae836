//! Validated names: host names that cannot escape the tree, and the snapshot names zbk makes.

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use std::fmt;

/// A host name: a lowercase DNS name, safe as a dataset component and a directory name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostName(String);

/// Longest host name accepted: DNS's limit.
const MAX_HOST: usize = 253;

impl HostName {
    /// Validates `name`, saying which rule it broke.
    pub fn parse(name: &str) -> Result<HostName> {
        let shown = name.escape_debug();
        if name.is_empty() {
            bail!("invalid host name \"\": it is empty");
        }
        if name.len() > MAX_HOST {
            bail!("invalid host name \"{shown}\": longer than {MAX_HOST} characters");
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
        {
            bail!(
                "invalid host name \"{shown}\": {:?} is not allowed (use lowercase letters, digits, '-' and '.')",
                c
            );
        }
        for label in name.split('.') {
            if label.is_empty() {
                bail!(
                    "invalid host name \"{shown}\": empty label (leading, trailing or double '.')"
                );
            }
            if label.len() > 63 {
                bail!(
                    "invalid host name \"{shown}\": label {label:?} is longer than 63 characters"
                );
            }
            if label.starts_with('-') || label.ends_with('-') {
                bail!("invalid host name \"{shown}\": label {label:?} starts or ends with '-'");
            }
        }
        Ok(HostName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The prefix of a snapshot taken by a failed run.
pub const FAILED_PREFIX: &str = "failed-";

/// The snapshot name for a run that ended at `at`: `2026-11-27T013000Z`, or with the failed
/// prefix; `attempt` > 0 adds a suffix for a same-second clash.
pub fn snapshot_name(at: DateTime<Utc>, failed: bool, attempt: u32) -> String {
    let stamp = at.format("%Y-%m-%dT%H%M%SZ");
    let prefix = if failed { FAILED_PREFIX } else { "" };
    if attempt == 0 {
        format!("{prefix}{stamp}")
    } else {
        format!("{prefix}{stamp}-{attempt}")
    }
}

/// The run time a snapshot name made by `snapshot_name` encodes, failed or numbered alike;
/// `None` for a name zbk did not make.
pub fn snapshot_time(name: &str) -> Option<DateTime<Utc>> {
    let name = name.strip_prefix(FAILED_PREFIX).unwrap_or(name);
    let stamp = name.get(..18)?;
    let rest = &name[18..];
    if !(rest.is_empty()
        || rest
            .strip_prefix('-')
            .is_some_and(|n| n.parse::<u32>().is_ok()))
    {
        return None;
    }
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// Whether `name` follows the grammar of `snapshot_name`: `[failed-]<stamp>[-<attempt>]`, with
/// a real date and time and a decimal attempt; the only snapshot names zbk ever destroys.
pub fn is_snapshot_name(name: &str) -> bool {
    let bare = name.strip_prefix(FAILED_PREFIX).unwrap_or(name);
    // chrono tolerates signs and padding that zbk never writes: the shape is checked first.
    const SHAPE: &[u8; 18] = b"0000-00-00T000000Z";
    let shaped = bare.len() >= SHAPE.len()
        && bare.as_bytes()[..SHAPE.len()]
            .iter()
            .zip(SHAPE)
            .all(|(b, s)| {
                if *s == b'0' {
                    b.is_ascii_digit()
                } else {
                    b == s
                }
            });
    if !shaped {
        return false;
    }
    let attempt = &bare[SHAPE.len()..];
    let attempt_ok = attempt.is_empty()
        || attempt.strip_prefix('-').is_some_and(|n| {
            !n.is_empty() && n.len() <= 9 && n.bytes().all(|b| b.is_ascii_digit())
        });
    attempt_ok && snapshot_time(name).is_some()
}

/// A snapshot name made by `snapshot_name`, or read from a listing and found to follow its
/// grammar: what `Zfs::destroy_snapshots` takes, so a foreign snapshot cannot be destroyed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnapName(String);

impl SnapName {
    /// The name of a run that ended at `at` (see `snapshot_name`).
    pub fn for_run(at: DateTime<Utc>, failed: bool, attempt: u32) -> SnapName {
        SnapName(snapshot_name(at, failed, attempt))
    }

    /// Checks a name from a listing or the command line against zbk's grammar.
    pub fn parse(name: &str) -> Result<SnapName> {
        if !is_snapshot_name(name) {
            bail!(
                "{:?} is not a snapshot name zbk makes ([failed-]YYYY-MM-DDTHHMMSSZ[-N])",
                name.escape_debug().to_string()
            );
        }
        Ok(SnapName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SnapName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Values the parsers refuse, for the tests that prove the destroys re-check their input.
#[cfg(test)]
impl SnapName {
    pub fn forged(name: &str) -> SnapName {
        SnapName(name.to_string())
    }
}

#[cfg(test)]
impl HostName {
    pub fn forged(name: &str) -> HostName {
        HostName(name.to_string())
    }
}

/// Whether a dataset or snapshot component is one zbk could have made and can pass to `zfs`
/// safely: no leading dash (an option to zfs), no separators.
pub fn is_safe_component(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names_are_accepted() {
        for ok in ["web1", "web1.example.com", "a", "x-y.z9", &"a".repeat(63)] {
            assert!(HostName::parse(ok).is_ok(), "{ok} refused");
        }
    }

    #[test]
    fn hostile_names_are_refused_with_the_rule() {
        let cases = [
            ("", "empty"),
            ("..", "empty label"),
            ("../etc", "'/'"),
            ("a/b", "'/'"),
            ("Web1", "'W'"),
            ("a b", "' '"),
            ("a\nb", "'\\n'"),
            ("-rf", "starts or ends"),
            ("a.-b", "starts or ends"),
            ("a.", "empty label"),
            ("héllo", "'é'"),
            ("a@b", "'@'"),
        ];
        for (bad, why) in cases {
            let err = HostName::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
            assert!(!err.contains('\n'), "{bad:?}: multi-line error {err}");
        }
        assert!(HostName::parse(&"a".repeat(64)).is_err());
        assert!(HostName::parse(&"a.".repeat(127)).is_err());
    }

    #[test]
    fn snapshot_names_have_no_colons() {
        let at = DateTime::parse_from_rfc3339("2026-11-27T01:30:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(snapshot_name(at, false, 0), "2026-11-27T013005Z");
        assert_eq!(snapshot_name(at, true, 0), "failed-2026-11-27T013005Z");
        assert_eq!(snapshot_name(at, false, 2), "2026-11-27T013005Z-2");
        for attempt in [0, 2] {
            for failed in [false, true] {
                assert_eq!(snapshot_time(&snapshot_name(at, failed, attempt)), Some(at));
            }
        }
        for foreign in [
            "manual",
            "2026-11-27T013005Z-x",
            "2026-13-27T013005Z",
            "2026-11-27",
        ] {
            assert_eq!(snapshot_time(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn only_zbk_made_names_are_snapshot_names() {
        let at = DateTime::parse_from_rfc3339("2026-11-27T01:30:05Z")
            .unwrap()
            .with_timezone(&Utc);
        for attempt in [0, 1, 99] {
            for failed in [false, true] {
                let made = SnapName::for_run(at, failed, attempt);
                assert_eq!(SnapName::parse(made.as_str()).unwrap(), made);
            }
        }
        for foreign in [
            "",
            "manual",
            "s01",
            "failed-",
            "2026-11-27T013005Z-",
            "2026-11-27T013005Z-+1",
            "2026-11-27T013005Z-x",
            "2026-11-27T013005Z-1-2",
            "2026-11-27T013005Zx",
            "2026-13-27T013005Z",
            "+026-11-27T013005Z",
            " 2026-11-27T013005Z",
            "-2026-11-27T013005Z",
            "2026-11-27T013005Z,2026-11-27T013006Z",
            "2026-11-27T013005Z@x",
            "2026-11-27T013005Z/x",
            "failed-failed-2026-11-27T013005Z",
            "2026-11-27T013005Z-12345678901",
            "2026-11-27T01300é",
        ] {
            let err = SnapName::parse(foreign).unwrap_err().to_string();
            assert!(
                err.contains("not a snapshot name zbk makes"),
                "{foreign:?}: {err}"
            );
        }
    }

    #[test]
    fn safe_components() {
        assert!(is_safe_component("2026-11-27T013005Z"));
        assert!(!is_safe_component("-r"));
        assert!(!is_safe_component("a b"));
        assert!(!is_safe_component("a/b"));
        assert!(!is_safe_component(".."));
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::fuzz::config("src/proptest-regressions/names.txt"))]

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
        fn host_names_from_any_text(name in "(.|\n){0,300}") {
            if let Ok(h) = HostName::parse(&name) {
                prop_assert!(h.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'));
            }
        }
    }
}
