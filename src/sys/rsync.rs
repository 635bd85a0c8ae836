//! rsync: the argument vector for one source, and what its exit codes mean for a backup.

use crate::config::RsyncSettings;
use crate::inventory::Status;
use crate::run_facts::Storable;
use std::ffi::OsString;
use std::path::Path;

/// What shapes one rsync call besides the source: the settings, the remote shell, the
/// exclude file, and whether to report progress for a terminal.
pub struct Call<'a> {
    pub settings: &'a RsyncSettings,
    pub rsh: Option<&'a str>,
    pub exclude_from: Option<&'a Path>,
    pub progress: bool,
    /// `--max-delete`: the most files this run may delete (guard.max_delete).
    pub max_delete: Option<u64>,
    /// What the destination can keep: `--acls` and `--xattrs` are left out where it cannot.
    pub storable: &'a Storable,
}

/// The arguments for copying `source` into `dest` (a host's `d/`).
pub fn argv(call: &Call, source: &str, dest: &Path) -> Vec<OsString> {
    let settings = call.settings;
    let storable = |args: &[String]| -> Vec<OsString> {
        args.iter()
            .filter_map(|a| keep_storable(a, call.storable))
            .map(OsString::from)
            .collect()
    };
    let mut argv = storable(&settings.args);
    if let Some(rsh) = call.rsh {
        argv.push(format!("--rsh={rsh}").into());
    }
    if let Some(rate) = &settings.bwlimit {
        argv.push(format!("--bwlimit={rate}").into());
    }
    if let Some(timeout) = settings.io_timeout {
        argv.push(format!("--timeout={}", timeout.as_secs().max(1)).into());
    }
    if let Some(file) = call.exclude_from {
        let mut arg = OsString::from("--exclude-from=");
        arg.push(file);
        argv.push(arg);
    }
    if let Some(n) = call.max_delete {
        argv.push(format!("--max-delete={n}").into());
    }
    if call.progress {
        argv.push("--info=progress2".into());
    }
    // Its figures are stamped on the snapshot, for the guards and for `zbk list`.
    argv.push("--stats".into());
    argv.extend(storable(&settings.extra_args));
    argv.push(source.into());
    // The trailing slash makes rsync copy into d/, never create d/d.
    let mut dest = dest.as_os_str().to_os_string();
    dest.push("/");
    argv.push(dest);
    argv
}

/// `arg` without what asks rsync for ACLs or extended attributes the destination cannot keep:
/// `--acls`, `--xattrs`, and `A` or `X` in a cluster of short options (`-aHAX` becomes `-aH`);
/// `None` when nothing is left of it.
fn keep_storable(arg: &str, storable: &Storable) -> Option<String> {
    let unwanted = |c: char| (c == 'A' && !storable.acls) || (c == 'X' && !storable.xattrs);
    match arg {
        "--acls" if !storable.acls => None,
        "--xattrs" if !storable.xattrs => None,
        _ if short_cluster(arg) && arg.chars().any(unwanted) => {
            let kept: String = arg[1..].chars().filter(|c| !unwanted(*c)).collect();
            (!kept.is_empty()).then(|| format!("-{kept}"))
        }
        _ => Some(arg.to_string()),
    }
}

/// `-aHAX`: short options without a value. A cluster with one that takes a value (`-e`, `-f`,
/// `-B`, `-T`, `-M`) is left alone, since the rest of it may be that value.
fn short_cluster(arg: &str) -> bool {
    arg.len() > 1
        && arg.starts_with('-')
        && !arg.starts_with("--")
        && arg[1..].chars().all(|c| c.is_ascii_alphabetic())
        && !arg[1..].contains(['e', 'f', 'B', 'T', 'M'])
}

/// The flags the configured arguments ask for that the destination cannot keep, by their
/// long names, for the run log: empty when nothing is left out.
pub fn unstorable(settings: &RsyncSettings, storable: &Storable) -> Vec<&'static str> {
    let args: Vec<&String> = settings.args.iter().chain(&settings.extra_args).collect();
    let asks = |long: &str, short: char| {
        args.iter()
            .any(|a| *a == long || (short_cluster(a) && a[1..].contains(short)))
    };
    let mut out = Vec::new();
    if !storable.acls && asks("--acls", 'A') {
        out.push("--acls");
    }
    if !storable.xattrs && asks("--xattrs", 'X') {
        out.push("--xattrs");
    }
    out
}

/// What one rsync call (or several, summed) reports in `--stats`: the figures a run stamps on
/// its snapshot (`zbk:changes`) and the mass-change guard judges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Entries in the source: files, directories, links ("Number of files").
    pub files: u64,
    /// Entries new in d/ ("Number of created files").
    pub created: u64,
    /// Entries removed from d/ ("Number of deleted files").
    pub deleted: u64,
    /// Regular files that existed and were rewritten: "Number of regular files transferred"
    /// less the regular files among the created ones, which rsync counts in both.
    pub changed: u64,
    /// The size of the files created or rewritten ("Total transferred file size").
    pub bytes: u64,
}

impl std::ops::Add for Stats {
    type Output = Stats;
    fn add(self, o: Stats) -> Stats {
        Stats {
            files: self.files + o.files,
            created: self.created + o.created,
            deleted: self.deleted + o.deleted,
            changed: self.changed + o.changed,
            bytes: self.bytes + o.bytes,
        }
    }
}

impl Stats {
    /// The compact form stamped as `zbk:changes`: `files=N created=N deleted=N changed=N bytes=N`.
    pub fn to_property(self) -> String {
        format!(
            "files={} created={} deleted={} changed={} bytes={}",
            self.files, self.created, self.deleted, self.changed, self.bytes
        )
    }

    /// Reads `to_property`'s form back; `None` for anything else (the value is anyone's to set).
    pub fn from_property(text: &str) -> Option<Stats> {
        let mut s = Stats::default();
        let mut seen = 0;
        for word in text.split(' ') {
            let (key, value) = word.split_once('=')?;
            let value: u64 = value.parse().ok()?;
            let slot = match key {
                "files" => &mut s.files,
                "created" => &mut s.created,
                "deleted" => &mut s.deleted,
                "changed" => &mut s.changed,
                "bytes" => &mut s.bytes,
                _ => return None,
            };
            *slot = value;
            seen += 1;
        }
        (seen == 5).then_some(s)
    }
}

/// The figures in rsync's `--stats` output (the last report, should there be several); `None`
/// when the file count is missing, as after an rsync that died before its report.
pub fn stats(output: &str) -> Option<Stats> {
    // "Number of files: 12,345 (reg: 12,000, dir: 345)": the leading number, and one of the
    // parenthesised counts by name.
    let number = |text: &str| -> Option<u64> {
        let digits: String = text
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ',')
            .filter(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    let last = |label: &str| {
        output
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(label))
            .map(str::to_string)
    };
    let files = number(&last("Number of files: ")?)?;
    let created_line = last("Number of created files: ").unwrap_or_default();
    let created = number(&created_line).unwrap_or(0);
    let created_reg = created_line
        .split_once("reg: ")
        .and_then(|(_, rest)| number(rest))
        .unwrap_or(0);
    let transferred = last("Number of regular files transferred: ")
        .and_then(|t| number(&t))
        .unwrap_or(0);
    Some(Stats {
        files,
        created,
        deleted: last("Number of deleted files: ")
            .and_then(|t| number(&t))
            .unwrap_or(0),
        changed: transferred.saturating_sub(created_reg),
        bytes: last("Total transferred file size: ")
            .and_then(|t| number(&t))
            .unwrap_or(0),
    })
}

/// `source/relative`: a path inside a source, for checking it exists.
pub fn inside(source: &str, relative: &Path) -> String {
    let sep = if source.ends_with('/') { "" } else { "/" };
    format!("{source}{sep}{}", relative.display())
}

/// A remote source with the configured login added when it names none: `host:/p` becomes
/// `user@host:/p`; a source's own `user@` wins.
pub fn with_user(source: &str, user: Option<&str>) -> String {
    match user {
        Some(user)
            if is_remote(source) && !source.split(':').next().unwrap_or_default().contains('@') =>
        {
            format!("{user}@{source}")
        }
        _ => source.to_string(),
    }
}

/// Whether a source is remote (`[user@]host:/path`) rather than a local path.
pub fn is_remote(source: &str) -> bool {
    source
        .split_once(':')
        .is_some_and(|(host, _)| !host.is_empty() && !host.contains('/'))
}

/// Judges an exit code by the configured ok and warning codes; anything else failed.
pub fn judge(code: i32, settings: &RsyncSettings) -> Status {
    if settings.ok_codes.contains(&code) {
        Status::Ok
    } else if settings.warning_codes.contains(&code) {
        Status::Warning
    } else {
        Status::Failed
    }
}

/// rsync's own words for its exit codes (rsync(1), EXIT VALUES).
pub fn meaning(code: i32) -> &'static str {
    match code {
        0 => "success",
        1 => "syntax or usage error",
        2 => "protocol incompatibility",
        3 => "errors selecting input/output files, dirs",
        4 => "requested action not supported",
        5 => "error starting client-server protocol",
        10 => "error in socket I/O",
        11 => "error in file I/O",
        12 => "error in rsync protocol data stream",
        13 => "errors with program diagnostics",
        14 => "error in IPC code",
        20 => "received SIGUSR1 or SIGINT",
        21 => "some error returned by waitpid()",
        22 => "error allocating core memory buffers",
        23 => "partial transfer due to error",
        24 => "partial transfer due to vanished source files",
        25 => "the --max-delete limit stopped deletions",
        30 => "timeout in data send/receive",
        35 => "timeout waiting for daemon connection",
        255 => "ssh or the remote shell failed",
        _ => "unexpected exit status",
    }
}

/// A hint for a failure whose cause the exit code hides: the pool refusing ACLs or xattrs,
/// which rsync reports as a bare partial transfer (23).
pub fn hint(code: i32, output: &str) -> Option<&'static str> {
    let unsupported = output.lines().any(|l| {
        l.contains("Operation not supported")
            && ["acl", "xattr", "xal"]
                .iter()
                .any(|k| l.to_ascii_lowercase().contains(k))
    });
    (code == 23 && unsupported).then_some(
        "the source carries ACLs or extended attributes and this pool cannot store them (zfs-fuse cannot; \
         OpenZFS can with acltype=posixacl, xattr=sa); set rsync.args without --acls/--xattrs to back up without them",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    #[test]
    fn argv_keeps_the_source_last_but_one_and_copies_into_d() {
        let s = Settings::default();
        let call = Call {
            settings: &s.rsync,
            rsh: Some("ssh -p 2222"),
            exclude_from: Some(Path::new("/b/hosts/a/c/exclude")),
            progress: false,
            max_delete: Some(7),
            storable: &Storable::all(),
        };
        let v = argv(&call, "root@a:/", Path::new("/b/hosts/a/d"));
        let v: Vec<String> = v.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(v[0], "--archive");
        assert!(v.contains(&"--inplace".to_string()) && v.contains(&"--no-whole-file".to_string()));
        assert!(v.contains(&"--exclude-from=/b/hosts/a/c/exclude".to_string()));
        assert!(v.contains(&"--rsh=ssh -p 2222".to_string()));
        assert!(v.contains(&"--max-delete=7".to_string()) && v.contains(&"--stats".to_string()));
        assert_eq!(&v[v.len() - 2..], ["root@a:/", "/b/hosts/a/d/"]);
    }

    #[test]
    fn acls_and_xattrs_are_left_out_where_the_pool_cannot_keep_them() {
        let mut s = Settings::default().rsync;
        s.extra_args = vec!["-aHAX".into(), "-X".into(), "-e".into(), "ssh -X".into()];
        let strip = |storable: &Storable| -> Vec<String> {
            let call = Call {
                settings: &s,
                rsh: None,
                exclude_from: None,
                progress: false,
                max_delete: None,
                storable,
            };
            argv(&call, "/src/", Path::new("/d"))
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        let fuse = Storable::judge(crate::sys::zfs::Flavour::Legacy, None, None);
        let v = strip(&fuse);
        assert!(
            !v.iter()
                .any(|a| a == "--acls" || a == "--xattrs" || a == "-X"),
            "{v:?}"
        );
        assert!(
            v.contains(&"-aH".to_string()) && v.contains(&"ssh -X".to_string()),
            "{v:?}"
        );
        assert_eq!(unstorable(&s, &fuse), ["--acls", "--xattrs"]);

        let no_xattr = Storable::judge(
            crate::sys::zfs::Flavour::OpenZfs,
            Some("posix"),
            Some("off"),
        );
        let v = strip(&no_xattr);
        assert!(v.contains(&"--acls".to_string()) && v.contains(&"-aHA".to_string()));
        assert!(!v.iter().any(|a| a == "--xattrs"));
        assert_eq!(unstorable(&s, &no_xattr), ["--xattrs"]);

        let all = Storable::all();
        assert_eq!(strip(&all).len(), strip(&fuse).len() + 3);
        assert!(unstorable(&s, &all).is_empty());
        s.args.retain(|a| a != "--acls" && a != "--xattrs");
        s.extra_args.clear();
        assert!(
            unstorable(&s, &fuse).is_empty(),
            "nothing asked, nothing left out"
        );
    }

    #[test]
    fn stats_give_the_change_figures() {
        // As rsync 3.2 and later print it, after a run that created f4 and rewrote f2.
        let out = "sent 1 bytes\nNumber of files: 12,345 (reg: 12,000, dir: 345)\n\
                   Number of created files: 1,001 (reg: 1,000, dir: 1)\n\
                   Number of deleted files: 7 (reg: 7)\n\
                   Number of regular files transferred: 1,040\n\
                   Total file size: 99,999 bytes\n\
                   Total transferred file size: 4,096 bytes\n";
        let s = stats(out).unwrap();
        assert_eq!(
            s,
            Stats {
                files: 12_345,
                created: 1_001,
                deleted: 7,
                changed: 40,
                bytes: 4_096
            }
        );
        assert_eq!(Stats::from_property(&s.to_property()), Some(s));
        assert_eq!(
            stats("Number of files: 3\nNumber of created files: 0\n")
                .unwrap()
                .files,
            3
        );
        assert_eq!(stats("nothing"), None);
        for junk in [
            "",
            "files=1",
            "files=1 created=2 deleted=3 changed=4 bytes=x",
            "a=1 b=2 c=3 d=4 e=5",
        ] {
            assert_eq!(Stats::from_property(junk), None, "{junk}");
        }
        assert_eq!(inside("/srv/", Path::new("etc/x")), "/srv/etc/x");
        assert_eq!(inside("h:/srv", Path::new("x")), "h:/srv/x");
    }

    #[test]
    fn the_configured_login_fills_in_only_where_none_is_given() {
        assert_eq!(with_user("web1:/", Some("backup")), "backup@web1:/");
        assert_eq!(with_user("root@web1:/", Some("backup")), "root@web1:/");
        assert_eq!(with_user("/srv/", Some("backup")), "/srv/");
        assert_eq!(with_user("web1:/", None), "web1:/");
    }

    #[test]
    fn remote_sources_are_told_from_local_paths() {
        assert!(is_remote("root@web1:/"));
        assert!(is_remote("web1:/srv/"));
        assert!(!is_remote("/srv/www/"));
        assert!(!is_remote("/srv/a:b/"));
    }

    #[test]
    fn exit_codes_map_to_statuses() {
        let mut s = Settings::default().rsync;
        assert_eq!(judge(0, &s), Status::Ok);
        assert_eq!(judge(24, &s), Status::Warning);
        assert_eq!(judge(23, &s), Status::Failed);
        assert_eq!(judge(255, &s), Status::Failed);
        s.warning_codes.push(23);
        assert_eq!(judge(23, &s), Status::Warning);
    }

    #[test]
    fn unsupported_acls_get_a_hint() {
        let log = "rsync: [receiver] set_acl: sys_acl_set_file(d/x, ACCESS): Operation not supported (95)\n";
        assert!(hint(23, log).is_some());
        assert!(hint(23, "rsync: open failed: Permission denied").is_none());
        assert!(hint(24, log).is_none());
    }
}
