//! The one parser of `zfs get -H -p -o name,property,value,source` listings: tab-separated
//! rows grouped by dataset or snapshot name, and what a property says there.
//!
//! User properties are arbitrary text set by anyone, so a value may hold tabs or newlines;
//! nothing here trusts them, and a line that cannot be read is counted, not guessed at.

use std::collections::{BTreeMap, HashMap};

/// One name's properties: property -> (value, source).
pub type Props<'a> = HashMap<&'a str, (&'a str, &'a str)>;

/// A listing split into its rows, names in order: a dataset sorts before its own snapshots
/// and children ('/' and '@' both follow the bare name).
#[derive(Debug, Default)]
pub struct Listing<'a> {
    pub names: BTreeMap<&'a str, Props<'a>>,
    /// Lines that could not be read (a value with a tab or newline breaks `-H` output).
    pub unreadable: usize,
}

impl<'a> Listing<'a> {
    /// Splits a listing of `props`; rows of any other property are unreadable.
    pub fn parse(output: &'a str, props: &[&str]) -> Listing<'a> {
        let mut listing = Listing::default();
        for line in output.lines() {
            match split_row(line, props) {
                Some((name, prop, value, source)) => {
                    let row = listing.names.entry(name).or_default();
                    row.insert(prop, (value, source));
                }
                None if !line.is_empty() => listing.unreadable += 1,
                None => {}
            }
        }
        listing
    }

    /// A property's value on `name`, whatever its source.
    pub fn value(&self, name: &str, prop: &str) -> Option<&'a str> {
        self.names.get(name).and_then(|p| value(p, prop))
    }

    /// A property's value set on `name` itself (see `own`).
    pub fn own(&self, name: &str, prop: &str) -> Option<&'a str> {
        self.names.get(name).and_then(|p| own(p, prop))
    }
}

/// A property's value, whatever its source.
pub fn value<'a>(props: &Props<'a>, prop: &str) -> Option<&'a str> {
    props.get(prop).map(|(v, _)| *v)
}

/// A numeric property (`-p` prints exact numbers); `None` for `-` or anything unreadable.
pub fn number(props: &Props, prop: &str) -> Option<u64> {
    value(props, prop).and_then(|v| v.parse().ok())
}

/// A property's value where it is set on the dataset or snapshot itself (source local or
/// received), not inherited or defaulted.
pub fn own<'a>(props: &HashMap<&str, (&'a str, &str)>, prop: &str) -> Option<&'a str> {
    props
        .get(prop)
        .filter(|(_, src)| *src == "local" || *src == "received")
        .map(|(v, _)| *v)
}

/// Splits one `-H` row into name, property, value and source. The value may itself hold tabs,
/// so the name and property are taken from the left and the source from the right.
fn split_row<'a>(line: &'a str, props: &[&str]) -> Option<(&'a str, &'a str, &'a str, &'a str)> {
    let (name, rest) = line.split_once('\t')?;
    let (prop, rest) = rest.split_once('\t')?;
    let (value, source) = rest.rsplit_once('\t')?;
    if !props.contains(&prop) {
        return None;
    }
    Some((name, prop, value, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROPS: &[&str] = &["zbk:expires", "used"];

    #[test]
    fn rows_group_by_name_with_value_and_source() {
        let out = "t/a\tused\t8192\t-\n\
                   t/a@s1\tzbk:expires\tnever\tlocal\n\
                   t/a@s1\tused\t-\t-\n\
                   t/a@s2\tzbk:expires\tnever\tinherited from t/a\n\
                   t/a@s3\tzbk:expires\tnever\treceived\n";
        let l = Listing::parse(out, PROPS);
        assert_eq!(l.unreadable, 0);
        assert_eq!(
            l.names.keys().copied().collect::<Vec<_>>(),
            ["t/a", "t/a@s1", "t/a@s2", "t/a@s3"]
        );
        assert_eq!(number(&l.names["t/a"], "used"), Some(8192));
        assert_eq!(number(&l.names["t/a@s1"], "used"), None);
        assert_eq!(l.own("t/a@s1", "zbk:expires"), Some("never"));
        assert_eq!(l.own("t/a@s2", "zbk:expires"), None, "inherited");
        assert_eq!(l.value("t/a@s2", "zbk:expires"), Some("never"));
        assert_eq!(l.own("t/a@s3", "zbk:expires"), Some("never"), "received");
        assert_eq!(l.own("t/none", "zbk:expires"), None);
    }

    #[test]
    fn a_value_may_hold_tabs_but_not_newlines() {
        let out = "t/a\tzbk:expires\t2026\t12\tlocal\n\
                   t/b\tzbk:expires\tx\ny\tlocal\n";
        let l = Listing::parse(out, PROPS);
        assert_eq!(l.own("t/a", "zbk:expires"), Some("2026\t12"));
        assert_eq!(l.value("t/b", "zbk:expires"), None);
        assert_eq!(l.unreadable, 2, "both halves of the broken row");
    }

    #[test]
    fn rows_of_other_properties_or_shapes_are_unreadable() {
        let out = "t/a\tzbk:bogus\tx\tlocal\n\
                   t/a\tused\n\
                   \n\
                   t/a\tused\t1\n";
        let l = Listing::parse(out, PROPS);
        assert!(l.names.is_empty());
        assert_eq!(l.unreadable, 3, "the empty line is not counted");
    }
}
