//! rsync: the argument vector for one source, and what its exit codes mean for a backup.

use crate::config::RsyncSettings;
use crate::inventory::Status;
use std::ffi::OsString;
use std::path::Path;

/// The arguments for copying `source` into `dest` (a host's `d/`).
pub fn argv(
    settings: &RsyncSettings,
    exclude_from: Option<&Path>,
    source: &str,
    dest: &Path,
) -> Vec<OsString> {
    let mut argv: Vec<OsString> = settings.args.iter().map(OsString::from).collect();
    if let Some(file) = exclude_from {
        let mut arg = OsString::from("--exclude-from=");
        arg.push(file);
        argv.push(arg);
    }
    argv.extend(settings.extra_args.iter().map(OsString::from));
    argv.push(source.into());
    // The trailing slash makes rsync copy into d/, never create d/d.
    let mut dest = dest.as_os_str().to_os_string();
    dest.push("/");
    argv.push(dest);
    argv
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
        let s = Settings::default().rsync;
        let v = argv(
            &s,
            Some(Path::new("/b/hosts/a/c/exclude")),
            "root@a:/",
            Path::new("/b/hosts/a/d"),
        );
        let v: Vec<String> = v.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(v[0], "--archive");
        assert!(v.contains(&"--inplace".to_string()) && v.contains(&"--no-whole-file".to_string()));
        assert!(v.contains(&"--exclude-from=/b/hosts/a/c/exclude".to_string()));
        assert_eq!(&v[v.len() - 2..], ["root@a:/", "/b/hosts/a/d/"]);
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
