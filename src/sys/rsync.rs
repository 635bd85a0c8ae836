//! rsync: one host's copy with its output in the run's log, the deletion-limit dry run,
//! the look at a source before it, and a restore's copy back.

use super::exec::{abandoned_text, find_program, Cmd, Deadline, Ended, Limits, Output};
use crate::config::RsyncSettings;
use crate::rsync_args::{argv, inside, is_remote, with_user, Call};
use crate::rsync_report::{self as report, Stats};
use crate::stamp::Status;
use anyhow::Result;
use fs_err as fs;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// `rsync`, found once per run.
pub struct Rsync {
    bin: PathBuf,
}

/// One host's copy: rsync's arguments for each of its sources, all into the same d/.
pub struct Copy<'r> {
    rsync: &'r Rsync,
    /// Each source as configured, with the arguments that copy it.
    sources: Vec<(String, Vec<OsString>)>,
}

/// What the rsync calls of one copy came to.
pub struct Transfer {
    pub status: Status,
    pub why: Vec<String>,
    /// Every exit code, for hints that need them.
    pub codes: Vec<i32>,
    /// The figures of all sources together, when every rsync reported them.
    pub stats: Option<Stats>,
}

/// Whether a remote source's client answered a login.
#[derive(Debug, PartialEq, Eq)]
pub enum Reach {
    /// ssh got through (whatever happened after: the copy will say).
    Reached,
    /// ssh gave up before it reached the client's sshd: what ssh said.
    Unreachable(String),
}

/// What a look at a source before the copy found.
#[derive(Debug, PartialEq, Eq)]
pub enum Looked<'c> {
    Ready,
    /// Nothing in it: an unmounted disk, a wrong path.
    Empty,
    /// guard.check_file is not there.
    NoCheckFile(&'c Path),
}

impl Rsync {
    /// Finds `rsync` on PATH or in the sbin directories.
    pub fn find() -> Result<Rsync> {
        Ok(Rsync {
            bin: find_program("rsync")?,
        })
    }

    fn cmd<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Cmd::new(&self.bin).args(args)
    }

    /// The copy of every source of a host into `dest` (its d/), a remote source logging in as
    /// `user` when it names no login of its own.
    pub fn copy(
        &self,
        call: &Call,
        sources: &[String],
        user: Option<&str>,
        dest: &Path,
    ) -> Copy<'_> {
        let sources = sources
            .iter()
            .map(|source| {
                let login = with_user(source, user);
                (source.clone(), argv(call, &login, dest))
            })
            .collect();
        Copy {
            rsync: self,
            sources,
        }
    }

    /// Looks at a source before rsync may touch d/: a local one in the file system, a remote
    /// one with `--list-only` through `rsh`, logged in as the copy will be (`user` when the
    /// source names no login); `check` is guard.check_file, relative to it.
    pub fn look<'c>(
        &self,
        rsh: Option<&str>,
        source: &str,
        user: Option<&str>,
        check: Option<&'c Path>,
        io_timeout: Option<Duration>,
    ) -> Result<Looked<'c>> {
        if !is_remote(source) {
            let root = Path::new(source);
            if fs::read_dir(root).is_ok_and(|mut d| d.next().is_none()) {
                return Ok(Looked::Empty);
            }
            if let Some(check) = check.filter(|c| fs::symlink_metadata(root.join(c)).is_err()) {
                return Ok(Looked::NoCheckFile(check));
            }
            return Ok(Looked::Ready);
        }
        let source = &with_user(source, user);
        // A listing that fails says nothing about emptiness; the transfer will fail and say why.
        let Some(listing) = self.list(rsh, source, io_timeout)? else {
            return Ok(Looked::Ready);
        };
        if listing.lines().all(|l| l.ends_with(" .")) {
            return Ok(Looked::Empty);
        }
        if let Some(check) = check {
            if self
                .list(rsh, &inside(source, check), io_timeout)?
                .is_none()
            {
                return Ok(Looked::NoCheckFile(check));
            }
        }
        Ok(Looked::Ready)
    }

    /// Whether the client of a remote `source` can be reached through `rsh`, logged in as
    /// the copy will be: one `--list-only` of the source's top directory, the very login and
    /// forced command the copy meets, so that a client restricted to rrsync is asked nothing
    /// it would refuse.
    /// A client that answers and then goes silent for `io_timeout` is no unreachable one: the
    /// error fails the host.
    pub fn reach(
        &self,
        rsh: &str,
        source: &str,
        user: Option<&str>,
        io_timeout: Option<Duration>,
    ) -> Result<Reach> {
        let out = self.list_output(Some(rsh), &with_user(source, user), io_timeout)?;
        Ok(match report::unreachable(out.code(), &out.stderr) {
            Some(line) => Reach::Unreachable(line.to_string()),
            None => Reach::Reached,
        })
    }

    /// What `rsync --list-only` prints of `target`; `None` when it cannot list it.
    /// A client silent for `io_timeout` makes the look fail, and so the host.
    fn list(
        &self,
        rsh: Option<&str>,
        target: &str,
        io_timeout: Option<Duration>,
    ) -> Result<Option<String>> {
        let out = self.list_output(rsh, target, io_timeout)?;
        Ok(out.status.success().then_some(out.stdout))
    }

    fn list_output(
        &self,
        rsh: Option<&str>,
        target: &str,
        io_timeout: Option<Duration>,
    ) -> Result<Output> {
        let mut args = vec!["--list-only".to_string()];
        args.extend(rsh.map(|r| format!("--rsh={r}")));
        args.extend(io_timeout.map(|t| format!("--timeout={}", t.as_secs().max(1))));
        args.push(target.to_string());
        self.cmd(args)
            .deadline(io_timeout.map(Deadline::rsync))
            .output()
    }

    /// `zbk verify`'s look at `source` against `dest` (a snapshot's d/), its command line
    /// logged first: the run's own arguments, so the client is read as a run reads it, as an
    /// itemized dry run with full checksums. With `files_from` (NUL-separated paths relative to
    /// `source`) only those are compared, and one the client no longer has is skipped:
    /// `--delete-missing-args` would say so, but the `rrsync -ro` of `zbk authorize` refuses
    /// every delete option. What rsync printed and its exit status are the caller's to judge.
    pub fn verify(
        &self,
        call: &Call,
        source: &str,
        user: Option<&str>,
        dest: &Path,
        files_from: Option<&Path>,
        log_line: impl FnOnce(&str),
    ) -> Result<Compared> {
        let mut before: Vec<OsString> = ["--dry-run", "--checksum", "--itemize-changes"]
            .map(OsString::from)
            .to_vec();
        if let Some(list) = files_from {
            let mut arg = OsString::from("--files-from=");
            arg.push(list);
            before.extend([arg, "--from0".into(), "--ignore-missing-args".into()]);
        }
        let cmd = self
            .cmd(before)
            .args(argv(call, &with_user(source, user), dest));
        log_line(&cmd.to_string());
        let out = cmd.output()?;
        Ok(Compared {
            code: out.code(),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    /// The copy of `sources` out of a snapshot to `dest`, with `args` before them.
    fn restore_cmd(&self, args: &[String], sources: &[OsString], dest: &str) -> Cmd {
        self.cmd(args).args(sources).args([dest])
    }

    /// The restore's command line, as a dry run prints it.
    pub fn restore_line(&self, args: &[String], sources: &[OsString], dest: &str) -> String {
        self.restore_cmd(args, sources, dest).to_string()
    }

    /// Runs the restore's copy; any exit status but 0 is an error with rsync's words.
    pub fn restore(&self, args: &[String], sources: &[OsString], dest: &str) -> Result<()> {
        self.restore_cmd(args, sources, dest).checked()?;
        Ok(())
    }
}

/// What one `zbk verify` look printed: its itemized list and figures, and its exit status.
pub struct Compared {
    pub code: i32,
    pub stdout: String,
    stderr: String,
}

impl Compared {
    /// Everything rsync printed, stdout then stderr, for the log.
    pub fn printed(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// rsync's last non-empty line on stderr: why it failed.
    pub fn last_said(&self) -> Option<&str> {
        self.stderr
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .map(str::trim)
    }
}

impl Copy<'_> {
    /// The command of each source, as the copy runs them.
    fn commands(&self) -> impl Iterator<Item = Cmd> + '_ {
        self.sources.iter().map(|(_, argv)| self.rsync.cmd(argv))
    }

    /// The command line of each source, as a dry run prints them.
    pub fn lines(&self) -> impl Iterator<Item = String> + '_ {
        self.commands().map(|cmd| cmd.to_string())
    }

    /// A dry run of each source, its command line in the log: the first source rsync says
    /// would delete more than `--max-delete` allows (exit 25), before anything is deleted.
    pub fn over_max_delete(
        &self,
        log: &mut fs::File,
        io_timeout: Option<Duration>,
    ) -> Result<Option<&str>> {
        for (source, argv) in &self.sources {
            let dry = self
                .rsync
                .cmd(["--dry-run"])
                .args(argv)
                .deadline(io_timeout.map(Deadline::rsync));
            writeln!(log, "$ {dry}")?;
            if dry.output()?.code() == 25 {
                return Ok(Some(source));
            }
        }
        Ok(None)
    }

    /// Runs rsync for each source with its output in the log at `log_path`, judged by
    /// `settings`; the worst status wins. `starting(i, n)` is told before source `i` of `n`.
    /// A raised `cancel` stops the running rsync and fails the copy, so it is recorded rather
    /// than lost.
    pub fn run(
        &self,
        log: &mut fs::File,
        log_path: &Path,
        settings: &RsyncSettings,
        cancel: &AtomicBool,
        starting: impl Fn(usize, usize),
    ) -> Result<Transfer> {
        let mut t = Transfer {
            status: Status::Ok,
            why: Vec::new(),
            codes: Vec::new(),
            stats: Some(Stats::default()),
        };
        for (i, cmd) in self.commands().enumerate() {
            let source = &self.sources[i].0;
            starting(i, self.sources.len());
            writeln!(log, "$ {cmd}")?;
            let start = log.metadata()?.len();
            let limits = Limits {
                deadline: settings.io_timeout.map(Deadline::rsync),
                cancel: Some(cancel),
            };
            let stopped = match cmd.run_logged(log.file(), limits)? {
                // rsync's own --timeout may end a stall before zbk's watch of it does: the same
                // stall, said the same way.
                Ended::Exited(30) if settings.io_timeout.is_some() => Ok(silent(settings)),
                Ended::Exited(code) => Err(code),
                Ended::TimedOut(None) => Ok(silent(settings)),
                Ended::TimedOut(Some(pid)) => Ok(format!(
                    "{}; {}",
                    silent(settings),
                    abandoned_text(pid, &cmd.to_string())
                )),
                Ended::Cancelled => Ok("interrupted by a signal: rsync stopped".to_string()),
            };
            let code = match stopped {
                Err(code) => code,
                Ok(why) => {
                    writeln!(log, "zbk: {why}")?;
                    t.why.push(format!("{source}: {why}"));
                    t.status = Status::Failed;
                    t.stats = None;
                    break;
                }
            };
            t.codes.push(code);
            let this = report::judge(code, settings);
            writeln!(
                log,
                "rsync exited {code} ({}): {}",
                report::meaning(code),
                this.as_str()
            )?;
            let output = read_from(log_path, start)?;
            t.stats = t.stats.zip(report::stats(&output)).map(|(a, b)| a + b);
            if this != Status::Ok {
                let mut line = format!("{source}: rsync exited {code} ({})", report::meaning(code));
                if let Some(hint) = report::hint(code, &output) {
                    line.push_str(": ");
                    line.push_str(hint);
                }
                t.why.push(line);
            }
            t.status = t.status.max(this);
        }
        Ok(t)
    }
}

/// Why rsync was stopped at `rsync.io_timeout`.
fn silent(settings: &RsyncSettings) -> String {
    let limit = settings.io_timeout.map(humantime::format_duration);
    format!(
        "the client sent nothing for {} (rsync.io_timeout): rsync stopped",
        limit.map(|l| l.to_string()).unwrap_or_default()
    )
}

/// The text a log gained since `offset`, for looking for hints in one rsync's output.
fn read_from(path: &Path, offset: u64) -> Result<String> {
    let bytes = fs::read(path)?;
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    Ok(String::from_utf8_lossy(&bytes[start..]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// The guards' look at a remote source logs in as the copy will: with `[ssh] user` when
    /// the source names no login. An `--rsh` that records its arguments shows the login.
    #[test]
    fn a_remote_source_is_looked_at_as_the_copy_logs_in() {
        let Ok(rsync) = Rsync::find() else {
            panic!("rsync is missing: tests/run.sh installs it");
        };
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("argv");
        let rsh = dir.path().join("rsh");
        fs::write(
            &rsh,
            format!("#!/bin/sh\necho \"$@\" >> {}\nexit 1\n", log.display()),
        )
        .unwrap();
        fs::set_permissions(&rsh, std::fs::Permissions::from_mode(0o755)).unwrap();
        let rsh = rsh.to_str().unwrap();
        let looked = rsync
            .look(Some(rsh), "web1:/srv/", Some("backup"), None, None)
            .unwrap();
        assert!(
            matches!(looked, Looked::Ready),
            "an unlistable source is left to the copy"
        );
        let argv = fs::read_to_string(&log).unwrap();
        assert!(argv.starts_with("-l backup web1 "), "{argv}");
        fs::remove_file(&log).unwrap();
        rsync
            .look(Some(rsh), "root@web1:/srv/", Some("backup"), None, None)
            .unwrap();
        let argv = fs::read_to_string(&log).unwrap();
        assert!(
            argv.starts_with("-l root web1 "),
            "the source's own login wins: {argv}"
        );
    }
}
