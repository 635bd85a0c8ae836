//! Pure `zbk diff`: the changes between two states of a host's d/, from two tree walks
//! (zfs-fuse) or from `zfs diff -FHt` (OpenZFS, read in `zfs_diff`), told as client paths,
//! and their sums per top-level directory. `commands/diff/show.rs` writes them out.
//!
//! Paths are bytes throughout: a client's file names need not be UTF-8 and may hold newlines.

pub mod zfs_diff;

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

    /// A path of this type, size, modification time (seconds) and mode, owned by root.
    pub(super) fn meta(kind: char, size: u64, mtime: i64, mode: u32) -> Meta {
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
            .map(|e| {
                (
                    e.change.symbol(),
                    String::from_utf8_lossy(&e.path).into_owned(),
                )
            })
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
                ('+', "/etc/new\nline".into()),
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
    }
}
