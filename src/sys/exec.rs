//! The one place that starts external processes: argv vectors only, never a shell.
//!
//! Every child runs with `LC_ALL=C` so that the error texts zbk classifies are the untranslated
//! ones. Failures carry the quoted command line, the exit status and the trimmed stderr.

#![allow(
    clippy::disallowed_methods,
    reason = "the one module allowed to start processes (clippy.toml)"
)]

use anyhow::{anyhow, Context, Result};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
    env: Vec<(String, OsString)>,
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
    pub(in crate::sys) fn new(program: impl AsRef<Path>) -> Cmd {
        Cmd {
            program: program.as_ref().to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
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

    /// Sets an environment variable for the child (hooks learn the run's outcome this way).
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Cmd {
        self.env
            .push((key.to_string(), value.as_ref().to_os_string()));
        self
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args).env("LC_ALL", "C");
        for (k, v) in &self.env {
            command.env(k, v);
        }
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

    /// Runs with stdout and stderr both appended to `log`, in a process group of its own so
    /// that stopping it also stops what it started (rsync's ssh). The child is stopped when
    /// `limits.timeout` passes or `limits.cancel` is raised (a signal reached zbk).
    pub fn run_logged(&self, log: &std::fs::File, limits: Limits) -> Result<Ended> {
        use std::os::unix::process::CommandExt;
        SPAWNED.fetch_add(1, Ordering::Relaxed);
        let mut command = self.command();
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?)
            .process_group(0);
        // Out of zbk's process group, the child would outlive a `kill -9` of zbk and go on
        // writing into d/ beside the next run; the kernel stops it when zbk dies instead.
        // SAFETY: prctl(2) is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start `{self}`"))?;
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(Ended::Exited(exit_code(status)));
            }
            let why = if limits.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                Some(Ended::Cancelled)
            } else if limits.timeout.is_some_and(|t| started.elapsed() >= t) {
                Some(Ended::TimedOut)
            } else {
                None
            };
            if let Some(why) = why {
                stop_group(&mut child);
                return Ok(why);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Bounds on a supervised child.
#[derive(Clone, Copy, Default)]
pub struct Limits<'a> {
    pub timeout: Option<Duration>,
    pub cancel: Option<&'a AtomicBool>,
}

/// How a supervised child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    TimedOut,
    Cancelled,
}

/// Stops a child's whole process group: SIGTERM, a grace period, then SIGKILL; reaps it.
fn stop_group(child: &mut std::process::Child) {
    let Ok(pgid) = libc::pid_t::try_from(child.id()) else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    // SAFETY: kill(2) with a negative pid signals the group the child leads; no memory is shared.
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            // SAFETY: as above; whatever of the group outlived its leader goes too.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: as above.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let _ = child.wait();
}

/// Runs `from | to`: the first's stdout feeds the second's stdin. Both stderrs are captured
/// and both statuses returned, since either end can fail while the other looks fine.
pub fn pipe(from: &Cmd, to: &Cmd) -> Result<(Output, Output)> {
    use std::io::Read;
    SPAWNED.fetch_add(1, Ordering::Relaxed);
    let mut first = from
        .command()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{from}`"))?;
    let feed = first.stdout.take().expect("piped stdout");
    SPAWNED.fetch_add(1, Ordering::Relaxed);
    let second = to
        .command()
        .stdin(Stdio::from(feed))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let second = match second {
        Ok(child) => child,
        Err(e) => {
            // The first would otherwise block on a pipe nobody reads.
            let _ = first.kill();
            let _ = first.wait();
            return Err(e).with_context(|| format!("cannot start `{to}`"));
        }
    };
    let mut first_err = first.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = first_err.read_to_end(&mut buf);
        buf
    });
    let second = second.wait_with_output()?;
    let first_status = first.wait()?;
    let first_stderr = reader.join().unwrap_or_default();
    Ok((
        Output {
            status: first_status,
            stdout: String::new(),
            stderr: String::from_utf8_lossy(&first_stderr).into_owned(),
        },
        Output {
            status: second.status,
            stdout: String::from_utf8_lossy(&second.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&second.stderr).into_owned(),
        },
    ))
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
    fn a_pipe_feeds_one_into_the_other_and_reports_both() {
        let (a, b) = pipe(&Cmd::new("printf").args(["abc"]), &Cmd::new("cat")).unwrap();
        assert!(a.status.success() && b.status.success());
        assert_eq!(b.stdout, "abc");
        let (a, b) = pipe(&Cmd::new("false"), &Cmd::new("cat")).unwrap();
        assert_eq!((a.code(), b.code()), (1, 0));
        let (a, b) = pipe(&Cmd::new("yes"), &Cmd::new("false")).unwrap();
        assert_ne!(a.code(), 0, "the writer dies of the closed pipe");
        assert_eq!(b.code(), 1);
    }

    #[test]
    fn failure_names_command_status_and_stderr() {
        let cmd = Cmd::new("false");
        let out = cmd.output().unwrap();
        let err = cmd.failed(&out).to_string();
        assert_eq!(err, "`false` exited with status 1");
    }
}
