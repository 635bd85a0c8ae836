//! Wording shared by the messages a user reads: a count with its noun in the right number,
//! a size in the units of `zfs list`.

/// `1 host`, `2 hosts`: `noun` is a singular whose plural takes an `s`.
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Bytes in the units `zfs list` uses: 512, 4.5K, 1.2M, 3.0G.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["K", "M", "G", "T", "P", "E"];
    if n < 1024 {
        return n.to_string();
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1}{}", UNITS[unit])
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
    fn bytes_read_like_zfs() {
        assert_eq!(human_bytes(512), "512");
        assert_eq!(human_bytes(4608), "4.5K");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0G");
    }
}
