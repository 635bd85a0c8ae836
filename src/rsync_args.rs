//! rsync's arguments: those of one source of a host's copy, with what the pool cannot keep
//! left out, and the sources' own forms (local or `[user@]host:/path`).

pub use crate::config::is_remote;
use crate::config::RsyncSettings;
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
pub(super) fn argv(call: &Call, source: &str, dest: &Path) -> Vec<OsString> {
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

/// `source/relative`: a path inside a source, for checking it exists.
pub(super) fn inside(source: &str, relative: &Path) -> String {
    let sep = if source.ends_with('/') { "" } else { "/" };
    format!("{source}{sep}{}", relative.display())
}

/// A remote source with the configured login added when it names none: `host:/p` becomes
/// `user@host:/p`; a source's own `user@` wins.
pub(super) fn with_user(source: &str, user: Option<&str>) -> String {
    match user {
        Some(user)
            if is_remote(source) && !source.split(':').next().unwrap_or_default().contains('@') =>
        {
            format!("{user}@{source}")
        }
        _ => source.to_string(),
    }
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
        let fuse = Storable::judge(crate::flavour::Flavour::Legacy, None, None);
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

        let no_xattr =
            Storable::judge(crate::flavour::Flavour::OpenZfs, Some("posix"), Some("off"));
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
    fn a_check_file_is_looked_for_inside_the_source() {
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
}
