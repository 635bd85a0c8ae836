//! Pure restore logic: which snapshot to read, which client paths are acceptable, the rsync
//! arguments that copy them back faithfully, and which versions of one file are distinct.

use crate::config::RsyncSettings;
use crate::expiry::Expiry;
use crate::inventory::{Host, Snapshot};
use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Which snapshot a restore reads.
#[derive(Clone, Copy, Debug)]
pub enum Choice<'a> {
    /// By name: any snapshot, even a failed one, since the admin asked for it.
    Named(&'a str),
    /// The newest good one taken at or before this time.
    At(DateTime<Utc>),
    /// The newest good one.
    Newest,
}

/// Picks the snapshot; the error says what there is instead.
pub fn choose<'a>(host: &'a Host, choice: Choice) -> Result<&'a Snapshot> {
    let good = || host.snapshots.iter().rev().filter(|s| s.is_good());
    let found = match choice {
        Choice::Named(name) => host.snapshots.iter().find(|s| s.name == name),
        Choice::At(t) => good().find(|s| s.created.is_some_and(|c| c <= t)),
        Choice::Newest => good().next(),
    };
    match (found, choice) {
        (Some(s), _) => Ok(s),
        (None, Choice::Named(name)) => bail!(
            "--snapshot: {} has no snapshot {name:?}: see `zbk list {}`",
            host.name,
            host.name
        ),
        (None, Choice::At(t)) => bail!(
            "--at: {} has no good snapshot taken at or before {}",
            host.name,
            Expiry::At(t)
        ),
        (None, Choice::Newest) => bail!("{} has no good snapshot to restore from", host.name),
    }
}

/// A client path as given on the command line, checked: absolute, no `..`, no control
/// characters. Returns it relative to the client's root (empty for `/`), which is also where
/// it lies under a snapshot's `d/`.
pub fn client_path(text: &str) -> Result<PathBuf> {
    let path = Path::new(text);
    if !path.is_absolute() {
        bail!("PATH {text:?}: not an absolute path on the client");
    }
    if text.chars().any(char::is_control) {
        bail!(
            "PATH {:?}: contains a control character",
            text.escape_debug().to_string()
        );
    }
    let mut rel = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => rel.push(part),
            Component::ParentDir | Component::Prefix(_) => {
                bail!("PATH {text:?}: a '..' component could leave the snapshot")
            }
        }
    }
    Ok(rel)
}

/// rsync's arguments for a restore: the backup's own (so ACLs and xattrs come back where the
/// backup took them), without what deletes, filters, writes in place or follows symlinks, plus
/// `--relative` (paths land at their client paths) and `--sparse`.
pub fn rsync_args(settings: &RsyncSettings) -> Vec<String> {
    const DROPPED: [&str; 7] = [
        "remove-source-files",
        "inplace",
        "no-whole-file",
        "copy-links",
        "copy-unsafe-links",
        "copy-dirlinks",
        "keep-dirlinks",
    ];
    const DROPPED_PREFIXES: [&str; 6] = [
        "delete",
        "max-delete",
        "append",
        "exclude",
        "include",
        "filter",
    ];
    let mut out = Vec::new();
    for arg in &settings.args {
        if let Some(long) = arg.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or_default();
            let dropped = name == "del"
                || DROPPED.contains(&name)
                || DROPPED_PREFIXES.iter().any(|p| name.starts_with(p));
            if !dropped {
                out.push(arg.clone());
            }
        } else if let Some(short) = arg.strip_prefix('-') {
            // -L, -K and -k follow symlinks; a bundle such as -aL loses just those letters.
            let kept: String = short.chars().filter(|c| !"LKk".contains(*c)).collect();
            if !kept.is_empty() {
                out.push(format!("-{kept}"));
            }
        } else {
            out.push(arg.clone());
        }
    }
    for needed in ["--relative", "--sparse"] {
        if !out.iter().any(|a| a == needed) {
            out.push(needed.to_string());
        }
    }
    out
}

/// rsync's source arguments for some client paths in a snapshot's `d/`: the `/./` marks where
/// the path `--relative` recreates at the destination begins.
pub fn sources(data: &Path, paths: &[PathBuf]) -> Vec<OsString> {
    paths
        .iter()
        .map(|rel| {
            let mut arg = data.as_os_str().to_os_string();
            arg.push("/./");
            arg.push(rel);
            arg
        })
        .collect()
}

/// The `[user@]host` parts of a host's remote sources, each once, in order: the clients a
/// restore can push back to and `doctor --ssh` logs in to.
pub fn clients(sources: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for client in sources
        .iter()
        .filter(|s| crate::config::is_remote(s))
        .filter_map(|s| s.split_once(':').map(|(c, _)| c))
    {
        if !out.contains(&client) {
            out.push(client);
        }
    }
    out
}

/// What one snapshot holds at a path: its size and mtime (nanoseconds since the epoch), or
/// nothing.
pub type Seen = (String, Option<(u64, i64)>);

/// One distinct version of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub size: u64,
    pub mtime: i64,
    /// The oldest snapshot that holds it, and the newest.
    pub first: String,
    pub last: String,
    pub snapshots: usize,
}

/// The distinct versions among what the snapshots (oldest first) hold, told apart by size and
/// mtime as httm does: the same file carried through many snapshots is one version.
pub fn distinct(seen: &[Seen]) -> Vec<Version> {
    let mut out: Vec<Version> = Vec::new();
    for (snap, meta) in seen {
        let Some((size, mtime)) = *meta else { continue };
        match out.iter_mut().find(|v| v.size == size && v.mtime == mtime) {
            Some(v) => {
                v.last = snap.clone();
                v.snapshots += 1;
            }
            None => out.push(Version {
                size,
                mtime,
                first: snap.clone(),
                last: snap.clone(),
                snapshots: 1,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::expiry::parse_time;
    use crate::stamp::Status;

    fn snap(name: &str, created: &str, status: Status) -> Snapshot {
        Snapshot {
            status: Some(status),
            created: Some(parse_time(created).unwrap()),
            ..Snapshot::sample(name)
        }
    }

    fn host() -> Host {
        Host::sample(vec![
            snap("s1", "2026-11-25T00:00:00Z", Status::Ok),
            snap("s2", "2026-11-26T00:00:00Z", Status::Warning),
            snap("failed-s3", "2026-11-27T00:00:00Z", Status::Failed),
        ])
    }

    fn name(choice: Choice) -> String {
        choose(&host(), choice).map_or_else(|e| e.to_string(), |s| s.name.clone())
    }

    #[test]
    fn the_newest_good_snapshot_at_or_before_a_time() {
        assert_eq!(name(Choice::Newest), "s2");
        let at = |t: &str| Choice::At(parse_time(t).unwrap());
        assert_eq!(name(at("2026-11-28T00:00:00Z")), "s2");
        assert_eq!(name(at("2026-11-26T00:00:00Z")), "s2");
        assert_eq!(name(at("2026-11-25T23:59:59Z")), "s1");
        assert!(name(at("2026-11-24T00:00:00Z")).starts_with("--at: web1 has no good snapshot"));
        assert_eq!(name(Choice::Named("failed-s3")), "failed-s3");
        assert!(name(Choice::Named("s9")).starts_with("--snapshot: web1 has no snapshot \"s9\""));
        let mut empty = host();
        empty.snapshots.clear();
        assert!(choose(&empty, Choice::Newest).is_err());
    }

    #[test]
    fn client_paths_must_be_absolute_and_stay_inside() {
        assert_eq!(
            client_path("/etc/app.conf").unwrap(),
            Path::new("etc/app.conf")
        );
        assert_eq!(client_path("/srv/www/").unwrap(), Path::new("srv/www"));
        assert_eq!(client_path("/srv/./www").unwrap(), Path::new("srv/www"));
        assert_eq!(client_path("/").unwrap(), Path::new(""));
        for (bad, why) in [
            ("etc/app.conf", "not an absolute path"),
            ("/etc/../../root", "'..'"),
            ("/..", "'..'"),
            ("/etc/a\nb", "control character"),
            ("", "not an absolute path"),
        ] {
            let err = client_path(bad).unwrap_err().to_string();
            assert!(
                err.starts_with("PATH ") && err.contains(why),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn restore_args_keep_fidelity_and_drop_deletes_filters_and_link_following() {
        let mut s = Settings::default().rsync;
        let args = rsync_args(&s);
        for kept in [
            "--archive",
            "--hard-links",
            "--acls",
            "--xattrs",
            "--numeric-ids",
            "--relative",
            "--sparse",
        ] {
            assert!(args.iter().any(|a| a == kept), "{kept} missing: {args:?}");
        }
        for gone in [
            "--delete",
            "--delete-excluded",
            "--inplace",
            "--no-whole-file",
        ] {
            assert!(!args.iter().any(|a| a == gone), "{gone} kept: {args:?}");
        }
        s.args = [
            "-aHLk",
            "--delete-after",
            "--del",
            "--max-delete=5",
            "--exclude=*.tmp",
            "--copy-links",
            "-L",
            "--checksum",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            rsync_args(&s),
            ["-aH", "--checksum", "--relative", "--sparse"]
        );
    }

    #[test]
    fn sources_mark_where_the_client_path_begins() {
        let v = sources(
            Path::new("/b/etc/restore/x/d"),
            &[PathBuf::from("etc/app.conf"), PathBuf::new()],
        );
        assert_eq!(
            v,
            [
                OsString::from("/b/etc/restore/x/d/./etc/app.conf"),
                OsString::from("/b/etc/restore/x/d/./")
            ]
        );
    }

    #[test]
    fn clients_are_the_remote_sources_hosts_once_each() {
        let sources = ["root@a:/etc/", "/srv/", "root@a:/var/", "b:/x/"].map(String::from);
        assert_eq!(clients(&sources), ["root@a", "b"]);
    }

    #[test]
    fn versions_are_told_apart_by_size_and_mtime() {
        let seen: Vec<Seen> = vec![
            ("s1".into(), None),
            ("s2".into(), Some((10, 100))),
            ("s3".into(), Some((10, 100))),
            ("s4".into(), Some((12, 200))),
            ("s5".into(), None),
            ("s6".into(), Some((10, 100))),
        ];
        let v = distinct(&seen);
        assert_eq!(v.len(), 2);
        assert_eq!(
            (v[0].first.as_str(), v[0].last.as_str(), v[0].snapshots),
            ("s2", "s6", 3)
        );
        assert_eq!(
            (v[1].first.as_str(), v[1].size, v[1].mtime),
            ("s4", 12, 200)
        );
    }
}
