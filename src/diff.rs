//! Pure `zbk diff`: the changes between two states of a host's d/, from two tree walks
//! (zfs-fuse) or from `zfs diff -FHt` (OpenZFS), told as client paths, and their text, JSON
//! and per-directory forms.
//!
//! Paths are bytes throughout: a client's file names need not be UTF-8 and may hold newlines.

use crate::commands::list::human_bytes;
use serde::Serialize;
use std::collections::BTreeMap;

/// What happened to one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    Created,
    Deleted,
    /// Its content: size or modification time (rsync's own test), or a directory's entries.
    Modified,
    /// Only its mode or owner.
    Metadata,
    /// Moved to another path, where the ZFS reports it (OpenZFS).
    Renamed,
}

impl Change {
    pub fn symbol(self) -> char {
        match self {
            Change::Created => '+',
            Change::Deleted => '-',
            Change::Modified => 'M',
            Change::Metadata => 'm',
            Change::Renamed => 'R',
        }
    }
}

/// What one side of a diff holds at a path: `zfs diff -F`'s type letter and what `lstat` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    /// `F` file, `/` directory, `@` symlink, `|` FIFO, `=` socket, `B` block, `C` character device.
    pub kind: char,
    pub size: u64,
    /// Seconds and nanoseconds.
    pub mtime: (i64, i64),
    /// Permission bits with setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// One changed path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub change: Change,
    pub kind: char,
    /// The client's path, absolute (`/etc/hosts`).
    pub path: Vec<u8>,
    /// Where a renamed path went.
    pub to: Option<Vec<u8>>,
    pub size_before: Option<u64>,
    pub size_after: Option<u64>,
}

/// The changes between two walks of d/, keyed by client path, in path order. A path whose
/// type changed is one deletion and one creation.
pub fn compare(before: &BTreeMap<Vec<u8>, Meta>, after: &BTreeMap<Vec<u8>, Meta>) -> Vec<Entry> {
    let mut out = Vec::new();
    let entry = |change, kind, path: &Vec<u8>, b: Option<&Meta>, a: Option<&Meta>| Entry {
        change,
        kind,
        path: path.clone(),
        to: None,
        size_before: b.map(|m| m.size),
        size_after: a.map(|m| m.size),
    };
    let mut paths: Vec<&Vec<u8>> = before.keys().chain(after.keys()).collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        match (before.get(path), after.get(path)) {
            (Some(b), None) => out.push(entry(Change::Deleted, b.kind, path, Some(b), None)),
            (None, Some(a)) => out.push(entry(Change::Created, a.kind, path, None, Some(a))),
            (Some(b), Some(a)) if b.kind != a.kind => {
                out.push(entry(Change::Deleted, b.kind, path, Some(b), None));
                out.push(entry(Change::Created, a.kind, path, None, Some(a)));
            }
            (Some(b), Some(a)) => {
                if let Some(change) = judge(b, a) {
                    out.push(entry(change, a.kind, path, Some(b), Some(a)));
                }
            }
            (None, None) => {}
        }
    }
    out
}

/// Content, metadata only, or nothing, for a path both sides hold with the same type.
pub fn judge(before: &Meta, after: &Meta) -> Option<Change> {
    if before.size != after.size || before.mtime != after.mtime {
        Some(Change::Modified)
    } else if (before.mode, before.uid, before.gid) != (after.mode, after.uid, after.gid) {
        Some(Change::Metadata)
    } else {
        None
    }
}

/// What one `zfs diff` line says: change letter, type letter, absolute path, new path (R).
pub type RawLine = (char, char, Vec<u8>, Option<Vec<u8>>);

/// One line of `zfs diff -FHt`: `TIME\tCHANGE\tTYPE\tPATH[\tNEWPATH]`, paths absolute with
/// OpenZFS's escapes undone. `None` for a line of any other shape.
pub fn parse_zfs_diff(line: &str) -> Option<RawLine> {
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
pub fn zfs_entry(
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

/// A path under a host's d/ (`<data>/etc/hosts`) as the client's (`/etc/hosts`); `None` for
/// paths elsewhere in the host dataset (its config and logs).
pub fn client_path(abs: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let data = data.strip_suffix(b"/").unwrap_or(data);
    let rest = abs.strip_prefix(data)?;
    match rest {
        [] => Some(b"/".to_vec()),
        [b'/', ..] => Some(rest.to_vec()),
        _ => None,
    }
}

/// Whether a client path is `prefix` or lies under it, component by component.
pub fn under(path: &[u8], prefix: &[u8]) -> bool {
    let prefix = prefix.strip_suffix(b"/").unwrap_or(prefix);
    prefix.is_empty()
        || path == prefix
        || (path.starts_with(prefix) && path.get(prefix.len()) == Some(&b'/'))
}

/// A name for a terminal: printable UTF-8 as it is; control characters, the backslash and
/// bytes that are not UTF-8 as a backslash and three octal digits (`\012` for a newline).
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || c == '\\' {
                let mut buf = [0; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\{b:03o}"));
                }
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\{b:03o}"));
        }
    }
    out
}

/// One line of the text form: change, type, size, path (` -> ` and the new path for a rename).
/// The size is the one after the change, or before it for a deletion.
pub fn text_line(e: &Entry) -> String {
    let size = match e.change {
        Change::Deleted => e.size_before,
        _ => e.size_after,
    };
    let mut line = format!(
        "{} {} {:>6}  {}",
        e.change.symbol(),
        e.kind,
        size.map_or_else(|| "-".to_string(), human_bytes),
        escape(&e.path)
    );
    if let Some(to) = &e.to {
        line.push_str(" -> ");
        line.push_str(&escape(to));
    }
    line
}

/// One object of `zbk diff --json`, documented in zbk-diff(8). A path is a JSON string when it
/// is UTF-8 (newlines and all, escaped as JSON escapes them); otherwise `path` is null and
/// `path_bytes` holds its bytes.
#[derive(Serialize, Debug, PartialEq)]
pub struct JsonEntry {
    change: String,
    #[serde(rename = "type")]
    kind: String,
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_bytes: Option<Vec<u8>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to_bytes: Option<Vec<u8>>,
    size_before: Option<u64>,
    size_after: Option<u64>,
}

/// A path as JSON: the string when it is UTF-8, else null and the bytes.
fn json_path(bytes: &[u8]) -> (Option<String>, Option<Vec<u8>>) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (Some(s.to_string()), None),
        Err(_) => (None, Some(bytes.to_vec())),
    }
}

pub fn json_entry(e: &Entry) -> JsonEntry {
    let (path, path_bytes) = json_path(&e.path);
    let (to, to_bytes) = match &e.to {
        Some(to) => {
            let (s, b) = json_path(to);
            (Some(s), b)
        }
        None => (None, None),
    };
    JsonEntry {
        change: e.change.symbol().to_string(),
        kind: e.kind.to_string(),
        path,
        path_bytes,
        to,
        to_bytes,
        size_before: e.size_before,
        size_after: e.size_after,
    }
}

/// The changes under one top-level directory of the client.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DirStat {
    pub created: u64,
    pub deleted: u64,
    pub modified: u64,
    pub metadata: u64,
    pub renamed: u64,
    /// Content that came or went: the sizes of created and modified files after, of deleted
    /// ones before; metadata changes and renames move no content.
    pub bytes: u64,
}

/// One object of `zbk diff --stat --json`: the directory as `json_entry` gives a path
/// (`dir`, or null and `dir_bytes`), then its figures.
#[derive(Serialize, Debug, PartialEq)]
pub struct JsonStat<'a> {
    dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dir_bytes: Option<Vec<u8>>,
    #[serde(flatten)]
    stat: &'a DirStat,
}

pub fn json_stat<'a>(dir: &[u8], stat: &'a DirStat) -> JsonStat<'a> {
    let (dir, dir_bytes) = json_path(dir);
    JsonStat {
        dir,
        dir_bytes,
        stat,
    }
}

/// Per top-level directory (`/etc`; `/` for the root itself and files right in it), the
/// largest first, then by name.
pub fn stat(entries: &[Entry]) -> Vec<(Vec<u8>, DirStat)> {
    let mut dirs: BTreeMap<Vec<u8>, DirStat> = BTreeMap::new();
    for e in entries {
        let top = top_dir(&e.path, e.kind);
        let d = dirs.entry(top).or_default();
        let file_bytes = |size: Option<u64>| {
            if e.kind == '/' {
                0
            } else {
                size.unwrap_or(0)
            }
        };
        match e.change {
            Change::Created => {
                d.created += 1;
                d.bytes += file_bytes(e.size_after);
            }
            Change::Deleted => {
                d.deleted += 1;
                d.bytes += file_bytes(e.size_before);
            }
            Change::Modified => {
                d.modified += 1;
                d.bytes += file_bytes(e.size_after);
            }
            Change::Metadata => d.metadata += 1,
            Change::Renamed => d.renamed += 1,
        }
    }
    let mut out: Vec<(Vec<u8>, DirStat)> = dirs.into_iter().collect();
    out.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then_with(|| a.0.cmp(&b.0)));
    out
}

/// `/etc` for `/etc/nginx/x` and for `/etc` itself; `/` for `/` and for anything but a
/// directory right under it, which has no top-level directory of its own.
fn top_dir(path: &[u8], kind: char) -> Vec<u8> {
    let rest = path.strip_prefix(b"/").unwrap_or(path);
    match rest.iter().position(|&b| b == b'/') {
        Some(i) => path[..=i].to_vec(),
        None if kind == '/' && !rest.is_empty() => path.to_vec(),
        None => b"/".to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(kind: char, size: u64, mtime: i64, mode: u32) -> Meta {
        Meta {
            kind,
            size,
            mtime: (mtime, 0),
            mode,
            uid: 0,
            gid: 0,
        }
    }

    fn tree(items: &[(&[u8], Meta)]) -> BTreeMap<Vec<u8>, Meta> {
        items.iter().map(|(p, m)| (p.to_vec(), m.clone())).collect()
    }

    fn changes(entries: &[Entry]) -> Vec<(char, String)> {
        entries
            .iter()
            .map(|e| (e.change.symbol(), escape(&e.path)))
            .collect()
    }

    #[test]
    fn two_walks_give_created_deleted_modified_and_metadata() {
        let before = tree(&[
            (b"/", meta('/', 0, 1, 0o755)),
            (b"/etc", meta('/', 0, 1, 0o755)),
            (b"/etc/gone", meta('F', 5, 1, 0o644)),
            (b"/etc/grown", meta('F', 5, 1, 0o644)),
            (b"/etc/touched", meta('F', 5, 1, 0o644)),
            (b"/etc/chmod", meta('F', 5, 1, 0o644)),
            (b"/etc/same", meta('F', 5, 1, 0o644)),
            (b"/etc/swap", meta('F', 5, 1, 0o644)),
        ]);
        let after = tree(&[
            (b"/", meta('/', 0, 1, 0o755)),
            (b"/etc", meta('/', 0, 2, 0o755)),
            (b"/etc/grown", meta('F', 9, 1, 0o644)),
            (b"/etc/touched", meta('F', 5, 2, 0o644)),
            (b"/etc/chmod", meta('F', 5, 1, 0o600)),
            (b"/etc/same", meta('F', 5, 1, 0o644)),
            (b"/etc/swap", meta('@', 3, 1, 0o777)),
            (b"/etc/new\nline", meta('F', 7, 1, 0o644)),
        ]);
        let out = compare(&before, &after);
        assert_eq!(
            changes(&out),
            [
                ('M', "/etc".to_string()),
                ('m', "/etc/chmod".into()),
                ('-', "/etc/gone".into()),
                ('M', "/etc/grown".into()),
                ('+', "/etc/new\\012line".into()),
                ('-', "/etc/swap".into()),
                ('+', "/etc/swap".into()),
                ('M', "/etc/touched".into()),
            ]
        );
        let grown = out.iter().find(|e| e.path == b"/etc/grown").unwrap();
        assert_eq!((grown.size_before, grown.size_after), (Some(5), Some(9)));
        assert!(compare(&before, &before).is_empty());
    }

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
        let parsed: Vec<_> = lines.iter().map(|l| parse_zfs_diff(l).unwrap()).collect();
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
            assert_eq!(parse_zfs_diff(junk), None, "{junk:?}");
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
        let get = |line: &str| zfs_entry(parse_zfs_diff(line).unwrap(), data, old, new);
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
        assert_eq!(text_line(&r), "R F      4  /etc/c -> /etc/c2");
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

    #[test]
    fn only_paths_in_d_are_the_clients() {
        let data = b"/b/hosts/h/d";
        assert_eq!(
            client_path(b"/b/hosts/h/d/etc/x", data),
            Some(b"/etc/x".to_vec())
        );
        assert_eq!(client_path(b"/b/hosts/h/d", data), Some(b"/".to_vec()));
        assert_eq!(client_path(b"/b/hosts/h/l/x.log", data), None);
        assert_eq!(client_path(b"/b/hosts/h/dx", data), None);
        assert!(under(b"/etc/x", b"/etc"));
        assert!(under(b"/etc", b"/etc/"));
        assert!(under(b"/anything", b"/"));
        assert!(!under(b"/etcetera", b"/etc"));
    }

    #[test]
    fn hostile_names_are_escaped_in_text_and_exact_in_json() {
        assert_eq!(escape(b"caf\xc3\xa9 \\ \n\xff"), "café \\134 \\012\\377");
        let e = Entry {
            change: Change::Renamed,
            kind: 'F',
            path: b"/a\nb".to_vec(),
            to: Some(b"/bad\xff".to_vec()),
            size_before: Some(2048),
            size_after: Some(2048),
        };
        assert_eq!(text_line(&e), "R F   2.0K  /a\\012b -> /bad\\377");
        let json = serde_json::to_string(&json_entry(&e)).unwrap();
        assert_eq!(
            json,
            r#"{"change":"R","type":"F","path":"/a\nb","to":null,"to_bytes":[47,98,97,100,255],"size_before":2048,"size_after":2048}"#
        );
        let plain = Entry {
            change: Change::Deleted,
            to: None,
            path: b"/x".to_vec(),
            size_after: None,
            ..e
        };
        assert_eq!(text_line(&plain), "- F   2.0K  /x");
        assert_eq!(
            serde_json::to_string(&json_entry(&plain)).unwrap(),
            r#"{"change":"-","type":"F","path":"/x","size_before":2048,"size_after":null}"#
        );
    }

    #[test]
    fn stat_sums_per_top_level_directory_largest_first() {
        let e = |change, kind, path: &str, before, after| Entry {
            change,
            kind,
            path: path.as_bytes().to_vec(),
            to: None,
            size_before: before,
            size_after: after,
        };
        let entries = [
            e(Change::Created, 'F', "/srv/a/big", None, Some(9000)),
            e(Change::Modified, '/', "/srv/a", Some(4), Some(5)),
            e(Change::Modified, '/', "/srv", Some(4), Some(5)),
            e(Change::Deleted, 'F', "/etc/x", Some(10), None),
            e(Change::Metadata, 'F', "/etc/y", Some(50), Some(50)),
            e(Change::Modified, 'F', "/top", Some(1), Some(3)),
        ];
        let s = stat(&entries);
        let names: Vec<&[u8]> = s.iter().map(|(n, _)| n.as_slice()).collect();
        assert_eq!(names, [&b"/srv"[..], b"/etc", b"/"]);
        assert_eq!(
            s[0].1,
            DirStat {
                created: 1,
                modified: 2,
                bytes: 9000,
                ..DirStat::default()
            }
        );
        assert_eq!(
            s[1].1,
            DirStat {
                deleted: 1,
                metadata: 1,
                bytes: 10,
                ..DirStat::default()
            }
        );
        assert_eq!(s[2].1.bytes, 3);
        assert_eq!(
            serde_json::to_string(&json_stat(&s[2].0, &s[2].1)).unwrap(),
            r#"{"dir":"/","created":0,"deleted":0,"modified":1,"metadata":0,"renamed":0,"bytes":3}"#
        );
    }
}
