//! What rsync reports: the `--stats` figures a run stamps as `zbk:changes`, what its exit
//! codes mean for a backup, and whether its ssh ever reached the client.

use crate::config::RsyncSettings;
use crate::stamp::Status;

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
    let last = |label: &str| last_line(output, label);
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

/// What rsync's `--stats` counted in "Number of files: 12 (reg: 9, dir: 2, link: 1)": all
/// entries, the regular files among them and the directories, for `zbk verify`.
pub fn entries(output: &str) -> Option<(u64, u64, u64)> {
    let line = last_line(output, "Number of files: ")?;
    let total = number(&line)?;
    // rsync leaves a kind out when it counted none of it.
    let kind = |label: &str| {
        line.split_once(label)
            .map_or(Some(0), |(_, rest)| number(rest))
    };
    Some((total, kind("reg: ")?, kind("dir: ")?))
}

/// "Number of files: 12,345 (reg: 12,000, dir: 345)": the leading number of a figure, or of
/// one of its parenthesised counts.
fn number(text: &str) -> Option<u64> {
    let digits: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The rest of the last line of `output` that starts with `label`.
fn last_line(output: &str, label: &str) -> Option<String> {
    output
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(label))
        .map(str::to_string)
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

/// ssh's own line when it gave up before it reached the client's sshd, so that nothing ran
/// there: the connection refused, no route, or no answer within its ConnectTimeout. `None` for
/// everything else, a refused key and a name that does not resolve included (a typo looks the
/// same), and a success. rsync's exit code cannot tell (it says 255, or 12 when it sees the
/// pipe close before ssh's status), so this reads what ssh printed, which reaches rsync's
/// stderr unchanged; its messages have kept these words for twenty years, and `LogLevel=QUIET`
/// silences them, which leaves such a run an ordinary failure.
pub fn unreachable(code: i32, stderr: &str) -> Option<&str> {
    if code == 0 {
        return None;
    }
    stderr.lines().map(str::trim).find(|l| {
        // sshconnect.c: "ssh: connect to host %s port %s: %s", after every address failed.
        l.starts_with("ssh: connect to host ")
            // A connection that some box accepted for a client that never answered
            // (a VPN or NAT in front of a sleeping laptop): still within ConnectTimeout.
            || *l == "Connection timed out during banner exchange"
    })
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
    fn only_ssh_giving_up_before_the_login_is_unreachable() {
        // As rsync 3.2 and OpenSSH 9 print them, on a port nobody listens on.
        let refused = "ssh: connect to host 127.0.0.1 port 1: Connection refused\n\
                       rsync: connection unexpectedly closed (0 bytes received so far) [Receiver]\n\
                       rsync error: error in rsync protocol data stream (code 12) at io.c(232) [Receiver=3.2.7]\n";
        assert_eq!(
            unreachable(12, refused),
            Some("ssh: connect to host 127.0.0.1 port 1: Connection refused")
        );
        for reason in [
            "No route to host",
            "Connection timed out",
            "Network is unreachable",
        ] {
            let text = format!("ssh: connect to host laptop port 22: {reason}\r\n");
            assert!(unreachable(255, &text).is_some(), "{reason}");
        }
        let banner = "Connection timed out during banner exchange\nConnection to 10.0.0.9 port 22 timed out\n";
        assert!(unreachable(255, banner).is_some());
        for other in [
            "root@127.0.0.1: Permission denied (publickey).\n",
            "ssh: Could not resolve hostname lapotp: Name or service not known\n",
            "kex_exchange_identification: Connection closed by remote host\n",
            "rsync: change_dir \"/nope\" failed: No such file or directory (2)\n",
            "",
        ] {
            assert_eq!(unreachable(255, other), None, "{other}");
        }
        assert_eq!(unreachable(0, refused), None);
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

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::fuzz::config("src/proptest-regressions/rsync_report.txt"))]

        /// `zbk:changes` values, and the rsync --stats they come from, are any text.
        #[test]
        fn run_figures_from_any_text(text in "(.|\n|\t|=){0,80}") {
            let _ = super::Stats::from_property(&text);
            let _ = super::stats(&text);
        }
    }
}
