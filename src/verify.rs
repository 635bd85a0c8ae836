//! Pure logic of `zbk verify`: which slice of a host's tree a path falls in, which slice comes
//! next, where each source's files lie under `d/`, what rsync's itemized dry run of the client
//! into a snapshot found, and the `zbk:verified` stamp that records it (`health.rs` judges it for
//! `zbk check`).

#[cfg(test)]
mod fuzz;

use crate::config::MAX_SLICES;
use crate::expiry::Expiry;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};

/// The most unacknowledged silent differences a stamp remembers by path (as hashes), so that a
/// file found again by a later verify is not counted twice; past these, each is counted anew.
pub const MAX_PENDING: usize = 64;

/// FNV-1a (64 bits) of a path's bytes. Written out here, never taken from a library, so that a
/// path's slice is the same in every version of zbk and on every machine.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The slice (counted from 0) of `n` that a path relative to `d/` falls in.
pub fn slice_of(path: &[u8], n: u32) -> u32 {
    u32::try_from(fnv1a(path) % u64::from(n.max(1))).expect("less than n")
}

/// What one verify covered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// One slice, counted from 0 (shown from 1).
    Slice(u32),
    /// The whole tree (`--full`).
    Full,
}

/// What rsync's itemized dry run of one verify reported.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// Regular files the client sent to be compared (what vanished not counted).
    pub files: u64,
    /// Files whose content, size or mtime changed since the snapshot with a visible sign of it:
    /// ordinary changes, the next run copies them.
    pub changed: u64,
    /// Files on the client that the snapshot does not hold.
    pub appeared: u64,
    /// Files in the snapshot that the client no longer has.
    pub vanished: u64,
    /// Files whose content differs while size and mtime match the snapshot, as rsync prints
    /// their names: a change rsync's quick check never copies, or damage on either side.
    pub silent: Vec<String>,
}

impl Found {
    /// Ordinary changes of every kind, as the stamp counts them.
    pub fn ordinary(&self) -> u64 {
        self.changed + self.appeared + self.vanished
    }
}

/// Reads the lines of `--itemize-changes` output into `found` (the `--stats` figures and
/// anything else rsync prints are skipped). Directories are left out: their times change
/// with every file in them.
pub fn read_itemized(output: &str, found: &mut Found) {
    for line in output.lines() {
        let Some((flags, name)) = itemized(line) else {
            continue;
        };
        let kind = flags.as_bytes()[1];
        if flags.starts_with("*deleting") {
            if !name.ends_with('/') {
                found.vanished += 1;
            }
            continue;
        }
        if kind == b'd' {
            continue;
        }
        let attrs = &flags[2..];
        if attrs.bytes().all(|c| c == b'+') {
            found.appeared += 1;
        } else if kind == b'f' && attrs.starts_with("c..") {
            found.silent.push(name.to_string());
        } else if attrs.bytes().any(|c| c != b'.' && c != b' ') || flags.starts_with('h') {
            found.changed += 1;
        }
    }
}

/// `YXcstpoguax name` split in two; `None` for a line of anything else.
fn itemized(line: &str) -> Option<(&str, &str)> {
    let (flags, name) = (line.get(..11)?, line.get(12..)?);
    if line.as_bytes()[11] != b' ' || name.is_empty() {
        return None;
    }
    if flags.starts_with("*deleting") {
        return Some((flags, name));
    }
    let b = flags.as_bytes();
    let update = b"<>ch.".contains(&b[0]);
    let kind = b"fdLDS".contains(&b[1]);
    let attrs = b[2..]
        .iter()
        .all(|c| b".+ ?cstTpoguaxnb".contains(c) || c.is_ascii_alphabetic());
    (update && kind && attrs).then_some((flags, name))
}

/// One source of a host, as a verify of one slice reads it: the directory rsync is pointed at
/// (`--files-from` names paths relative to it) and the directory under `d/` its files are in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceRoot {
    /// The source up to the directory that stands for `d/` itself: `host:/` for a source
    /// copied with `--relative`, the part before `/./` when it has one.
    pub base: String,
    /// Where the source's files are, relative to `d/` (empty: all of it).
    pub under: PathBuf,
}

/// Where a source's files lie under `d/`, as the run copied them: with `--relative` at their
/// full path (from the `/./` mark on, when there is one), otherwise the source's contents into
/// `d/` (or the directory itself, for a source without a trailing slash).
pub fn source_root(source: &str, relative: bool) -> SourceRoot {
    let (login, path) = match source.split_once(':') {
        Some((host, path)) if crate::config::is_remote(source) => (Some(host), path.to_string()),
        _ => (None, source.to_string()),
    };
    let with_login = |dir: &str| match login {
        Some(host) => format!("{host}:{dir}"),
        None => dir.to_string(),
    };
    let slash = |dir: &str| {
        if dir.ends_with('/') {
            dir.to_string()
        } else {
            format!("{dir}/")
        }
    };
    if relative {
        if let Some((before, after)) = path.split_once("/./") {
            return SourceRoot {
                base: with_login(&slash(before)),
                under: clean(after),
            };
        }
        return SourceRoot {
            base: with_login("/"),
            under: clean(&path),
        };
    }
    if path.ends_with('/') || path.is_empty() {
        return SourceRoot {
            base: with_login(&slash(&path)),
            under: PathBuf::new(),
        };
    }
    let p = Path::new(&path);
    let parent = p
        .parent()
        .map_or_else(String::new, |d| d.display().to_string());
    SourceRoot {
        base: with_login(&slash(&parent)),
        under: p.file_name().map(PathBuf::from).unwrap_or_default(),
    }
}

impl SourceRoot {
    /// A name as rsync itemizes it, as a path on the client: with `--relative` rsync names
    /// files by their full path already, otherwise relative to the source's base.
    pub fn client_path(&self, name: &str) -> String {
        if name.starts_with('/') {
            return name.to_string();
        }
        let base = match self.base.split_once(':') {
            Some((_, path)) if crate::config::is_remote(&self.base) => path,
            _ => self.base.as_str(),
        };
        format!("{base}{name}")
    }
}

/// A path as rsync names it inside a transfer: no leading slash, no `.` components.
fn clean(path: &str) -> PathBuf {
    Path::new(path)
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .collect()
}

/// Whether rsync's arguments copy with `--relative` (`-R` in a cluster too), as the default
/// ones do.
pub fn copies_relative(args: &[String]) -> bool {
    let mut relative = false;
    for a in args {
        match a.as_str() {
            "--relative" => relative = true,
            "--no-relative" | "--no-R" => relative = false,
            _ if a.starts_with('-') && !a.starts_with("--") && a.contains('R') => relative = true,
            _ => {}
        }
    }
    relative
}

/// The `zbk:verified` stamp: this verify's figures, the silent differences not yet
/// acknowledged (this one's and earlier ones'), and when each slice was last verified, so that
/// the next verify and `zbk check` need no other record than the newest stamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub at: DateTime<Utc>,
    pub part: Part,
    pub slices: u32,
    /// Regular files compared.
    pub files: u64,
    /// Ordinary changes: changed, appeared and vanished files.
    pub changed: u64,
    /// Silent differences this verify found.
    pub silent: u64,
    /// Silent differences found by this verify and earlier ones that `zbk verify --ack` has
    /// not acknowledged yet.
    pub unacked: u64,
    /// When `zbk verify --ack` last acknowledged some.
    pub acked: Option<DateTime<Utc>>,
    /// The FNV-1a hashes of the unacknowledged ones' paths, at most `MAX_PENDING`.
    pub pending: Vec<u64>,
    /// When each slice was last verified, as of this stamp (`None`: never).
    pub seen: Vec<Option<DateTime<Utc>>>,
}

impl Verified {
    /// The stamp of a verify at `now` of `part` of `slices`, after `last` (the host's newest
    /// stamp): what a verify with another slice count found is kept only for its
    /// unacknowledged silent differences.
    pub fn record(
        last: Option<&Verified>,
        part: Part,
        slices: u32,
        now: DateTime<Utc>,
        found: &Found,
    ) -> Verified {
        let mut seen = match last {
            Some(l) if l.slices == slices && l.seen.len() == slices as usize => l.seen.clone(),
            _ => vec![None; slices as usize],
        };
        match part {
            Part::Full => seen.iter_mut().for_each(|s| *s = Some(now)),
            Part::Slice(k) => {
                if let Some(s) = seen.get_mut(k as usize) {
                    *s = Some(now);
                }
            }
        }
        let mut pending = last.map_or_else(Vec::new, |l| l.pending.clone());
        let mut unacked = last.map_or(0, |l| l.unacked);
        for path in &found.silent {
            let hash = fnv1a(path.as_bytes());
            if !pending.contains(&hash) {
                unacked += 1;
                if pending.len() < MAX_PENDING {
                    pending.push(hash);
                }
            }
        }
        Verified {
            at: now,
            part,
            slices,
            files: found.files,
            changed: found.ordinary(),
            silent: found.silent.len() as u64,
            unacked,
            acked: last.and_then(|l| l.acked),
            pending,
            seen,
        }
    }

    /// The slice the next verify takes: the one verified longest ago, a never-verified one
    /// first, the lowest on a tie; the first one when nothing (or another slice count) was.
    pub fn next(last: Option<&Verified>, slices: u32) -> u32 {
        let Some(l) = last.filter(|l| l.slices == slices && l.seen.len() == slices as usize) else {
            return 0;
        };
        let oldest = l
            .seen
            .iter()
            .enumerate()
            .min_by_key(|(i, s)| (s.is_some(), **s, *i))
            .map_or(0, |(i, _)| i);
        u32::try_from(oldest).unwrap_or(0)
    }

    /// The time since when every file of the tree has been verified: the oldest of the slices'
    /// last verifies; `None` while some slice never was.
    pub fn covered(&self) -> Option<DateTime<Utc>> {
        if self.seen.is_empty() {
            return None;
        }
        self.seen
            .iter()
            .copied()
            .try_fold(self.at, |oldest, s| Some(oldest.min(s?)))
    }

    /// The same stamp with its silent differences acknowledged at `now`.
    pub fn acknowledged(&self, now: DateTime<Utc>) -> Verified {
        Verified {
            unacked: 0,
            acked: Some(now),
            pending: Vec::new(),
            ..self.clone()
        }
    }

    /// What it covered, as `zbk list` and `zbk status` show it: `3/30` or `all/30`.
    pub fn slice_shown(&self) -> String {
        match self.part {
            Part::Slice(k) => format!("{}/{}", k + 1, self.slices),
            Part::Full => format!("all/{}", self.slices),
        }
    }

    /// The property's value: `at=TIME slice=K/N files=N changed=N silent=N unacked=N
    /// [acked=TIME] [pending=H,H,…] seen=S,S,…`, each `H` a path's hash in hex, each `S` the
    /// seconds before `at` that slice was last verified, `-` for never.
    pub fn to_property(&self) -> String {
        let seen: Vec<String> = self
            .seen
            .iter()
            .map(|s| s.map_or("-".to_string(), |t| (self.at - t).num_seconds().to_string()))
            .collect();
        let acked = self
            .acked
            .map(|t| format!(" acked={}", Expiry::At(t)))
            .unwrap_or_default();
        let pending = if self.pending.is_empty() {
            String::new()
        } else {
            let hashes: Vec<String> = self.pending.iter().map(|h| format!("{h:016x}")).collect();
            format!(" pending={}", hashes.join(","))
        };
        format!(
            "at={} slice={} files={} changed={} silent={} unacked={}{acked}{pending} seen={}",
            Expiry::At(self.at),
            self.slice_shown(),
            self.files,
            self.changed,
            self.silent,
            self.unacked,
            seen.join(",")
        )
    }

    /// Reads `to_property`'s form back; `None` for anything else, since the value is anyone's
    /// to set.
    pub fn from_property(text: &str) -> Option<Verified> {
        let mut fields = std::collections::BTreeMap::new();
        for word in text.split(' ') {
            let (key, value) = word.split_once('=')?;
            if fields.insert(key, value).is_some() {
                return None;
            }
        }
        let time = |v: &str| crate::expiry::parse_time(v).ok();
        let number = |k: &str| fields.get(k)?.parse::<u64>().ok();
        let at = time(fields.get("at")?)?;
        let (part, slices) = fields.get("slice")?.split_once('/')?;
        let slices: u32 = slices
            .parse()
            .ok()
            .filter(|n| (1..=MAX_SLICES).contains(n))?;
        let part = match part {
            "all" => Part::Full,
            k => {
                let k: u32 = k.parse().ok().filter(|k| (1..=slices).contains(k))?;
                Part::Slice(k - 1)
            }
        };
        let seen: Vec<Option<DateTime<Utc>>> = fields
            .get("seen")?
            .split(',')
            .map(|s| match s {
                "-" => Some(None),
                secs => {
                    let secs: i64 = secs.parse().ok().filter(|s| *s >= 0)?;
                    Some(Some(at - chrono::TimeDelta::try_seconds(secs)?))
                }
            })
            .collect::<Option<_>>()?;
        if seen.len() != slices as usize {
            return None;
        }
        let acked = match fields.get("acked") {
            Some(v) => Some(time(v)?),
            None => None,
        };
        let pending = match fields.get("pending") {
            Some(v) => v
                .split(',')
                .map(|h| {
                    (h.len() == 16)
                        .then(|| u64::from_str_radix(h, 16).ok())
                        .flatten()
                })
                .collect::<Option<Vec<u64>>>()
                .filter(|p| p.len() <= MAX_PENDING)?,
            None => Vec::new(),
        };
        let known = [
            "at", "slice", "files", "changed", "silent", "unacked", "acked", "pending", "seen",
        ];
        if fields.keys().any(|k| !known.contains(k)) {
            return None;
        }
        Some(Verified {
            at,
            part,
            slices,
            files: number("files")?,
            changed: number("changed")?,
            silent: number("silent")?,
            unacked: number("unacked")?,
            acked,
            pending,
            seen,
        })
    }
}

/// The newest of the stamps, by the time of the verify: the one that carries the host's record.
pub fn newest<'a>(stamps: impl IntoIterator<Item = &'a Verified>) -> Option<&'a Verified> {
    stamps.into_iter().max_by_key(|v| v.at)
}

#[cfg(test)]
impl Found {
    /// Ten files compared, one changed, one appeared, and `silent` silent differences.
    pub fn sample(silent: usize) -> Found {
        Found {
            files: 10,
            changed: 1,
            appeared: 1,
            vanished: 0,
            silent: (0..silent).map(|i| format!("f{i}")).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expiry::parse_time;

    fn t(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap()
    }

    const DAY: i64 = 86400;

    #[test]
    fn fnv1a_is_the_published_function() {
        // The reference values of FNV-1a 64 (Fowler, Noll, Vo).
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
        // And so the slices of the paths a user sees never move between versions.
        assert_eq!(
            slice_of(b"etc/passwd", 30),
            (fnv1a(b"etc/passwd") % 30) as u32
        );
        assert_eq!(slice_of(b"x", 1), 0);
    }

    #[test]
    fn itemized_lines_tell_silent_differences_from_ordinary_changes() {
        let out = "\
.d..t...... srv/\n\
>fc........ srv/silent\n\
>fcst...... srv/grown\n\
>fc.t...... srv/touched\n\
>f..t...... srv/mtime only\n\
>f+++++++++ srv/new\n\
*deleting   srv/gone\n\
*deleting   srv/gone-dir/\n\
cL+++++++++ srv/link -> x\n\
.f...p..... srv/perms\n\
>fc......x. srv/silent with xattrs\n\
hf+++++++++ srv/hard => srv/new\n\
\n\
Number of files: 6 (reg: 4, dir: 2)\n\
sent 222 bytes  received 25 bytes  494.00 bytes/sec\n";
        let mut found = Found::default();
        read_itemized(out, &mut found);
        assert_eq!(found.silent, ["srv/silent", "srv/silent with xattrs"]);
        assert_eq!(found.changed, 4, "{found:?}");
        assert_eq!(found.appeared, 3);
        assert_eq!(found.vanished, 1);
        assert_eq!(found.ordinary(), 8);
    }

    #[test]
    fn each_source_is_read_from_where_the_run_put_it() {
        let root = |s: &str, r: bool| {
            let x = source_root(s, r);
            (x.base, x.under.display().to_string())
        };
        assert_eq!(root("root@web1:/", true), ("root@web1:/".into(), "".into()));
        assert_eq!(
            root("root@web1:/srv/www/", true),
            ("root@web1:/".into(), "srv/www".into())
        );
        assert_eq!(
            root("web1:/srv/./www/", true),
            ("web1:/srv/".into(), "www".into())
        );
        assert_eq!(root("/srv/share/", true), ("/".into(), "srv/share".into()));
        assert_eq!(
            root("/srv/share/", false),
            ("/srv/share/".into(), "".into())
        );
        assert_eq!(root("/srv/share", false), ("/srv/".into(), "share".into()));
        assert_eq!(root("h:/srv/www", false), ("h:/srv/".into(), "www".into()));
        let www = source_root("root@web1:/srv/www/", true);
        assert_eq!(www.client_path("srv/www/x"), "/srv/www/x");
        assert_eq!(www.client_path("/srv/www/x"), "/srv/www/x");
        assert_eq!(
            source_root("/srv/share", false).client_path("share/x"),
            "/srv/share/x"
        );
        assert!(copies_relative(&["--archive".into(), "--relative".into()]));
        assert!(copies_relative(&["-aR".into()]));
        assert!(!copies_relative(&["-a".into()]));
        assert!(!copies_relative(&[
            "--relative".into(),
            "--no-relative".into()
        ]));
    }

    #[test]
    fn slices_go_round_the_oldest_first_and_the_stamp_reads_back() {
        let mut now = t("2026-12-01T03:00:00Z");
        let mut last: Option<Verified> = None;
        let mut order = Vec::new();
        for _ in 0..7 {
            let k = Verified::next(last.as_ref(), 3);
            order.push(k);
            let v = Verified::record(last.as_ref(), Part::Slice(k), 3, now, &Found::sample(0));
            assert_eq!(Verified::from_property(&v.to_property()).as_ref(), Some(&v));
            last = Some(v);
            now += chrono::TimeDelta::seconds(DAY);
        }
        assert_eq!(order, [0, 1, 2, 0, 1, 2, 0]);
        let v = last.unwrap();
        assert_eq!(v.slice_shown(), "1/3");
        // Slices 2 and 3 were last verified on days 5 and 6; slice 1 on day 7.
        assert_eq!(v.covered(), Some(t("2026-12-05T03:00:00Z")));
        // Another slice count starts over.
        assert_eq!(Verified::next(Some(&v), 4), 0);
        let other = Verified::record(Some(&v), Part::Slice(0), 4, now, &Found::sample(0));
        assert_eq!(other.covered(), None);
        let full = Verified::record(Some(&other), Part::Full, 4, now, &Found::sample(0));
        assert_eq!(full.covered(), Some(now));
        assert_eq!(full.slice_shown(), "all/4");
        assert!(full
            .to_property()
            .starts_with("at=2026-12-08T03:00:00Z slice=all/4 files=10 changed=2 silent=0 unacked=0 seen=0,0,0,0"));
    }

    #[test]
    fn foreign_values_are_not_stamps() {
        for bad in [
            "",
            "yes",
            "at=2026-12-01T03:00:00Z slice=1/2 files=1 changed=0 silent=0 unacked=0 seen=0",
            "at=2026-12-01T03:00:00Z slice=3/2 files=1 changed=0 silent=0 unacked=0 seen=0,-",
            "at=2026-12-01T03:00:00Z slice=1/2 files=1 changed=0 silent=0 unacked=0 seen=0,-1",
            "at=2026-12-01T03:00:00Z slice=1/2 files=1 changed=0 silent=0 unacked=0 seen=0,- x=1",
            "at=2026-12-01T03:00:00Z slice=1/0 files=1 changed=0 silent=0 unacked=0 seen=",
            "at=2026-12-01T03:00:00Z slice=1/2 files=1 files=2 changed=0 silent=0 unacked=0 seen=0,-",
        ] {
            assert_eq!(Verified::from_property(bad), None, "{bad}");
        }
    }
}
