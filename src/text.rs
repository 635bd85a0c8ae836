//! Wording shared by the messages a user reads: a count with its noun in the right number, a
//! threshold in the unit it was likely written in.

/// `1 host`, `2 hosts`: `noun` is a singular whose plural takes an `s`.
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A duration as an admin wrote it: `50h` or `35d` when it is a whole number of `unit`
/// seconds (named by `suffix`), else as humantime spells it.
pub fn whole(d: std::time::Duration, unit: u64, suffix: &str) -> String {
    if d.as_secs().is_multiple_of(unit) {
        format!("{}{suffix}", d.as_secs() / unit)
    } else {
        humantime::format_duration(d).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_the_rest_plural() {
        assert_eq!(counted(0, "host"), "0 hosts");
        assert_eq!(counted(1, "failed run"), "1 failed run");
        assert_eq!(counted(2, "snapshot"), "2 snapshots");
    }

    #[test]
    fn whole_units_read_short() {
        let d = std::time::Duration::from_secs;
        assert_eq!(whole(d(50 * 3600), 3600, "h"), "50h");
        assert_eq!(whole(d(35 * 86400), 86400, "d"), "35d");
        assert_eq!(whole(d(90), 3600, "h"), "1m 30s");
    }
}
