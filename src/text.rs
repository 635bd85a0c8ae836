//! Wording shared by the messages a user reads: a count with its noun in the right number.

/// `1 host`, `2 hosts`: `noun` is a singular whose plural takes an `s`.
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
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
}
