//! The lines of `zfs diff -FHt` (OpenZFS): their shape, OpenZFS's octal escapes, and the
//! entry each makes once its paths are the client's.

use super::{client_path, judge, Change, Entry, Meta};

/// What one `zfs diff` line says: change letter, type letter, absolute path, new path (R).
pub type RawLine = (char, char, Vec<u8>, Option<Vec<u8>>);

/// One line of `zfs diff -FHt`: `TIME\tCHANGE\tTYPE\tPATH[\tNEWPATH]`, paths absolute with
/// OpenZFS's escapes undone. `None` for a line of any other shape.
pub fn parse_line(line: &str) -> Option<RawLine> {
    let mut fields = line.split('\t');
    let _time = fields.next()?;
    let change = one_char(fields.next()?)?;
    let kind = one_char(fields.next()?)?;
    let path = unescape(fields.next()?);
    let to = fields.next().map(unescape);
    if fields.next().is_some() || !"+-MR".contains(change) || (change == 'R') != to.is_some() {
        return None;
    }
    Some((change, kind, path, to))
}

/// The entry for one parsed `zfs diff` line, its paths made the client's by stripping `data`
/// (the host's d/ as mounted); `None` for changes outside d/. `before` and `after` look a
/// client path up on either side: they give the sizes, and tell a content change (`M`) from
/// one of metadata only (`m`), which `zfs diff` reports alike.
pub fn entry(
    raw: RawLine,
    data: &[u8],
    before: impl Fn(&[u8]) -> Option<Meta>,
    after: impl Fn(&[u8]) -> Option<Meta>,
) -> Option<Entry> {
    let (change, kind, path, to) = raw;
    let path = client_path(&path, data);
    let to = to.and_then(|t| client_path(&t, data));
    let (change, path, to) = match (change, path, to) {
        ('R', Some(p), Some(t)) => (Change::Renamed, p, Some(t)),
        ('R', Some(p), None) | ('-', Some(p), _) => (Change::Deleted, p, None),
        ('R', None, Some(t)) | ('+', Some(t), _) => (Change::Created, t, None),
        ('M', Some(p), _) => (Change::Modified, p, None),
        _ => return None,
    };
    let b = match change {
        Change::Created => None,
        _ => before(&path),
    };
    let a = match change {
        Change::Deleted => None,
        _ => after(to.as_deref().unwrap_or(&path)),
    };
    let change = match (change, &b, &a) {
        (Change::Modified, Some(b), Some(a)) if judge(b, a) != Some(Change::Modified) => {
            Change::Metadata
        }
        (c, _, _) => c,
    };
    Some(Entry {
        change,
        kind,
        size_before: b.map(|m| m.size),
        size_after: a.map(|m| m.size),
        path,
        to,
    })
}

fn one_char(s: &str) -> Option<char> {
    let mut chars = s.chars();
    let c = chars.next()?;
    chars.next().is_none().then_some(c)
}

/// Undoes `zfs diff`'s escapes: every byte that is not printable ASCII, and the backslash and
/// space, become a backslash and four octal digits (`\0012` for a newline).
pub fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let digits = bytes[i + 1..]
                .iter()
                .take(4)
                .take_while(|b| (b'0'..=b'7').contains(b))
                .count();
            if digits > 0 {
                let value = bytes[i + 1..i + 1 + digits]
                    .iter()
                    .fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 1 + digits;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::meta;
    use super::*;

    #[test]
    fn zfs_diff_lines_parse_with_their_escapes_undone() {
        // As OpenZFS 2.4 prints them (checked on a real pool).
        let lines = [
            "1796023163.120000000\t+\tF\t/b/hosts/h/d/etc/new\\0012line",
            "1796023163.124000000\t+\tF\t/b/hosts/h/d/etc/bad\\0377",
            "1796023163.124000000\t+\tF\t/b/hosts/h/d/etc/back\\0134slash",
            "1796023162.580000000\tR\tF\t/b/hosts/h/d/etc/c\t/b/hosts/h/d/etc/c2",
            "1796023163.124000000\tM\t/\t/b/hosts/h/d/etc",
        ];
        let parsed: Vec<_> = lines.iter().map(|l| parse_line(l).unwrap()).collect();
        assert_eq!(parsed[0].2, b"/b/hosts/h/d/etc/new\nline");
        assert_eq!(parsed[1].2, b"/b/hosts/h/d/etc/bad\xff");
        assert_eq!(parsed[2].2, b"/b/hosts/h/d/etc/back\\slash");
        assert_eq!(parsed[3].0, 'R');
        assert_eq!(parsed[3].3.as_deref(), Some(&b"/b/hosts/h/d/etc/c2"[..]));
        assert_eq!((parsed[4].0, parsed[4].1), ('M', '/'));
        for junk in [
            "",
            "x",
            "1\tQ\tF\t/p",
            "1\tR\tF\t/p",
            "1\t+\tF\t/p\t/q",
            "1\tMM\tF\t/p",
        ] {
            assert_eq!(parse_line(junk), None, "{junk:?}");
        }
        assert_eq!(unescape("a\\b\\"), b"a\\b\\");
        assert_eq!(unescape("sp\\0040ace"), b"sp ace");
    }

    #[test]
    fn zfs_diff_entries_get_client_paths_sizes_and_m_or_m() {
        let data = b"/b/hosts/h/d";
        let old = |p: &[u8]| match p {
            b"/etc/b" => Some(meta('F', 2, 1, 0o644)),
            b"/etc/meta" => Some(meta('F', 2, 1, 0o644)),
            b"/etc/c" => Some(meta('F', 4, 1, 0o644)),
            b"/etc/a" => Some(meta('F', 1, 1, 0o644)),
            _ => None,
        };
        let new = |p: &[u8]| match p {
            b"/etc/b" => Some(meta('F', 5, 2, 0o644)),
            b"/etc/meta" => Some(meta('F', 2, 1, 0o600)),
            b"/etc/c2" => Some(meta('F', 4, 1, 0o644)),
            b"/etc/new" => Some(meta('F', 8, 1, 0o644)),
            _ => None,
        };
        let get = |line: &str| entry(parse_line(line).unwrap(), data, old, new);
        let b = get("1\tM\tF\t/b/hosts/h/d/etc/b").unwrap();
        assert_eq!(
            (b.change, b.size_before, b.size_after),
            (Change::Modified, Some(2), Some(5))
        );
        assert_eq!(
            get("1\tM\tF\t/b/hosts/h/d/etc/meta").unwrap().change,
            Change::Metadata
        );
        let r = get("1\tR\tF\t/b/hosts/h/d/etc/c\t/b/hosts/h/d/etc/c2").unwrap();
        assert_eq!(
            (r.change, r.path.as_slice(), r.to.as_deref(), r.size_after),
            (
                Change::Renamed,
                &b"/etc/c"[..],
                Some(&b"/etc/c2"[..]),
                Some(4)
            )
        );
        let a = get("1\t-\tF\t/b/hosts/h/d/etc/a").unwrap();
        assert_eq!(
            (a.change, a.size_before, a.size_after),
            (Change::Deleted, Some(1), None)
        );
        let n = get("1\t+\tF\t/b/hosts/h/d/etc/new").unwrap();
        assert_eq!((n.change, n.size_after), (Change::Created, Some(8)));
        assert_eq!(get("1\t+\tF\t/b/hosts/h/l/x.log"), None);
        // Moved out of d/ is gone from the client's view; moved in is new there.
        let out = get("1\tR\tF\t/b/hosts/h/d/etc/a\t/b/hosts/h/l/a").unwrap();
        assert_eq!(out.change, Change::Deleted);
        let into = get("1\tR\tF\t/b/hosts/h/c/x\t/b/hosts/h/d/etc/new").unwrap();
        assert_eq!(
            (into.change, into.path.as_slice()),
            (Change::Created, &b"/etc/new"[..])
        );
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::fuzz::config("src/proptest-regressions/diff.txt"))]

        #[test]
        fn zfs_escapes_round_trip(name in prop::collection::vec(any::<u8>(), 0..60)) {
            // OpenZFS writes every byte outside printable ASCII, and the backslash and space,
            // as a backslash and four octal digits.
            let zfs: String = name
                .iter()
                .map(|&b| match b {
                    b'!'..=b'~' if b != b'\\' => (b as char).to_string(),
                    _ => format!("\\{b:04o}"),
                })
                .collect();
            prop_assert_eq!(unescape(&zfs), name.clone());
            let line = format!("1.0\t+\tF\t/d/{zfs}");
            let parsed = parse_line(&line).unwrap();
            prop_assert_eq!(&parsed.2[3..], &name[..]);
        }

        #[test]
        fn zfs_diff_lines_from_any_text(text in "(.|\n|\t|\\\\[0-7]{1,5}){0,80}") {
            for line in text.lines() {
                let _ = parse_line(line);
            }
            let _ = unescape(&text);
        }
    }
}
