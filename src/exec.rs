//! The one place that starts external processes: argv vectors only, never a shell.
//!
//! Every child runs with `LC_ALL=C` so that the error texts zbk classifies are the untranslated
//! ones. Failures carry the quoted command line, the exit status and the trimmed stderr.

use anyhow::{anyhow, Context, Result};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many processes this zbk process has started; reported by `reap -v` so the cost of a
/// reap can be checked against the number of snapshots.
static SPAWNED: AtomicUsize = AtomicUsize::new(0);

/// The number of child processes started so far.
pub fn spawned() -> usize {
    SPAWNED.load(Ordering::Relaxed)
}

/// A command line: the program and its arguments, kept as a vector from start to end.
#[derive(Clone, Debug)]
pub struct Cmd {
    program: PathBuf,
    args: Vec<OsString>,
}

/// What a finished child left behind.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The exit code, or 128 + signal for a child killed by a signal, as shells report it.
    pub fn code(&self) -> i32 {
        exit_code(self.status)
    }
}

/// A command that ran and did not succeed.
#[derive(Debug)]
pub struct Failed {
    pub cmd: String,
    pub code: i32,
    pub stderr: String,
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` exited with status {}", self.cmd, self.code)?;
        let stderr = self.stderr.trim();
        if !stderr.is_empty() {
            write!(f, ": {}", stderr.replace('\n', "; "))?;
        }
        Ok(())
    }
}

impl std::error::Error for Failed {}

/// The exit code of a status, mapping death by signal to 128 + signal.
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

impl Cmd {
    /// A command for `program`, a path resolved once by the caller.
    pub fn new(program: impl AsRef<Path>) -> Cmd {
        Cmd {
            program: program.as_ref().to_path_buf(),
            args: Vec::new(),
        }
    }

    /// Appends several arguments.
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args).env("LC_ALL", "C");
        command
    }

    /// Runs to completion, capturing stdout and stderr; any exit status is returned, not judged.
    pub fn output(&self) -> Result<Output> {
        SPAWNED.fetch_add(1, Ordering::Relaxed);
        let out = self
            .command()
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot start `{self}`"))?;
        Ok(Output {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Runs to completion and fails unless the exit status is 0.
    pub fn checked(&self) -> Result<Output> {
        let out = self.output()?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(anyhow!(self.failed(&out)))
        }
    }

    /// The error for a finished run that did not succeed.
    pub fn failed(&self, out: &Output) -> Failed {
        Failed {
            cmd: self.to_string(),
            code: out.code(),
            stderr: out.stderr.clone(),
        }
    }

    /// Runs with stdout and stderr both appended to `log`; returns the exit code. Used for
    /// rsync, whose output is for the run log, not for parsing.
    pub fn run_logged(&self, log: &std::fs::File) -> Result<i32> {
        SPAWNED.fetch_add(1, Ordering::Relaxed);
        let status = self
            .command()
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?)
            .status()
            .with_context(|| format!("cannot start `{self}`"))?;
        Ok(exit_code(status))
    }
}

/// Quotes one word for display the way a POSIX shell would read it back.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", quote(&self.program.to_string_lossy()))?;
        for arg in &self.args {
            write!(f, " {}", quote(&arg.to_string_lossy()))?;
        }
        Ok(())
    }
}

/// Finds a program on PATH, falling back to the sbin directories that cron's PATH lacks.
pub fn find_program(name: &str) -> Result<PathBuf> {
    if let Ok(path) = which::which(name) {
        return Ok(path);
    }
    for dir in ["/usr/local/sbin", "/usr/sbin", "/sbin"] {
        let candidate = Path::new(dir).join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(anyhow!(
        "cannot find `{name}` on PATH or in /usr/local/sbin, /usr/sbin, /sbin: install it or fix PATH"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_round_trips_for_the_shell() {
        assert_eq!(
            quote("tank/hosts/a@2026-01-01T000000Z"),
            "tank/hosts/a@2026-01-01T000000Z"
        );
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn display_shows_the_whole_argv() {
        let cmd = Cmd::new("/usr/sbin/zfs").args(["destroy", "tank/hosts/a@x y"]);
        assert_eq!(cmd.to_string(), "/usr/sbin/zfs destroy 'tank/hosts/a@x y'");
    }

    #[test]
    fn failure_names_command_status_and_stderr() {
        let cmd = Cmd::new("false");
        let out = cmd.output().unwrap();
        let err = cmd.failed(&out).to_string();
        assert_eq!(err, "`false` exited with status 1");
    }
}
