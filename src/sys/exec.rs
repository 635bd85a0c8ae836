//! The one place that starts external processes: argv vectors only, never a shell.
//!
//! Every child runs with `LC_ALL=C` so that the error texts zbk classifies are the untranslated
//! ones, in a process group of its own, under a deadline when its caller gives one: past it
//! the whole group is stopped (SIGTERM, a grace period, SIGKILL) and a child that still does
//! not die (stuck in the kernel on a suspended pool) is left behind, named, so that zbk itself
//! always ends. Failures carry the quoted command line, the exit status and the trimmed stderr.

#![allow(
    clippy::disallowed_methods,
    reason = "the one module allowed to start processes (clippy.toml)"
)]

use anyhow::{anyhow, Context, Result};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
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
pub(in crate::sys) struct Cmd {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(String, OsString)>,
    deadline: Option<Deadline>,
}

/// What a finished child left behind.
#[derive(Debug)]
pub(in crate::sys) struct Output {
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
            deadline: None,
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

    /// Bounds `output` and `checked`: past the deadline the child's group is stopped and the
    /// run is an `Overdue` error. `None` lets it run as long as it takes.
    pub(in crate::sys) fn deadline(mut self, deadline: Option<Deadline>) -> Cmd {
        self.deadline = deadline;
        self
    }

    /// The program's file name, as the kernel shows it in `/proc/<pid>/stat` (15 bytes).
    fn comm(&self) -> Vec<u8> {
        let name = self
            .program
            .file_name()
            .unwrap_or_default()
            .as_encoded_bytes();
        name[..name.len().min(15)].to_vec()
    }

    /// The child's command: the C locale, its own process group so that stopping it stops
    /// what it started (rsync's ssh), and the kernel ends it should zbk die (`kill -9`), so
    /// that it never goes on writing into a host beside the next run.
    fn command(&self) -> Command {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(&self.program);
        command.args(&self.args).env("LC_ALL", "C");
        for (k, v) in &self.env {
            command.env(k, v);
        }
        command.process_group(0);
        // SAFETY: prctl(2) is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        command
    }

    fn spawn(&self, command: &mut Command) -> Result<Child> {
        SPAWNED.fetch_add(1, Ordering::Relaxed);
        command
            .spawn()
            .with_context(|| format!("cannot start `{self}`"))
    }

    /// Runs to completion, capturing stdout and stderr; any exit status is returned, not judged.
    /// A child past its deadline is stopped and reported as `Overdue`.
    pub fn output(&self) -> Result<Output> {
        let _doing = crate::watchdog::Doing::new(format!("`{self}`"));
        let mut child = self.spawn(
            self.command()
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )?;
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let limits = Limits {
            deadline: self.deadline,
            cancel: None,
        };
        let status = match supervise(&mut child, self, limits)? {
            Waited::Exited(status) => status,
            Waited::Stopped(how) => return Err(self.overdue(&how).into()),
        };
        let collect =
            |rx: Drained| String::from_utf8_lossy(&rx.recv().unwrap_or_default()).into_owned();
        Ok(Output {
            status,
            stdout: collect(stdout),
            stderr: collect(stderr),
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

    fn overdue(&self, how: &Stopped) -> Overdue {
        Overdue {
            cmd: self.to_string(),
            deadline: how.deadline,
            abandoned: how.abandoned,
        }
    }

    /// Runs with stdout and stderr both appended to `log`. The child's group is stopped when
    /// `limits.deadline` passes or `limits.cancel` is raised (a signal reached zbk).
    pub fn run_logged(&self, log: &std::fs::File, limits: Limits) -> Result<Ended> {
        let _doing = crate::watchdog::Doing::new(format!("`{self}`"));
        let mut child = self.spawn(
            self.command()
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log.try_clone()?),
        )?;
        Ok(match supervise(&mut child, self, limits)? {
            Waited::Exited(status) => Ended::Exited(exit_code(status)),
            Waited::Stopped(Stopped { deadline: None, .. }) => Ended::Cancelled,
            Waited::Stopped(Stopped {
                deadline: Some(_),
                abandoned,
            }) => Ended::TimedOut(abandoned),
        })
    }
}

/// Says that the child `pid` running `cmd` outlived SIGKILL and was left behind.
pub fn abandoned_text(pid: u32, cmd: &str) -> String {
    format!(
        "pid {pid} (`{cmd}`) did not die of SIGKILL within {}: it is stuck in the kernel (a suspended pool?) and was abandoned",
        humantime::format_duration(GRACE)
    )
}

/// How long a child may take to end after SIGTERM before SIGKILL, and after SIGKILL before it
/// is abandoned.
pub const GRACE: Duration = Duration::from_secs(5);

/// How often a supervised child's progress is measured.
const MEASURE_EVERY: Duration = Duration::from_secs(1);

/// The longest pause between two looks at a child that has not ended.
const LOOK_EVERY: Duration = Duration::from_millis(50);

/// The pauses between looks at a child. Where the kernel gives a pidfd (Linux 5.3 and later)
/// a pause ends the moment the child does, so a `zfs get` that takes 40 ms costs 40 ms; the
/// looks every 50 ms are then only for the deadline, the watchdog and an interrupt. Without
/// one, pauses start at 1 ms and double up to `LOOK_EVERY`: most children end within
/// milliseconds, and a fixed 50 ms pause made each cost at least that.
struct Looks {
    pause: Duration,
    exited: Option<std::os::fd::OwnedFd>,
}

impl Looks {
    /// Looks at `child`, woken by its end where the kernel can.
    fn new(child: &Child) -> Looks {
        match pidfd(child) {
            Some(fd) => Looks {
                pause: LOOK_EVERY,
                exited: Some(fd),
            },
            None => Looks::blind(),
        }
    }

    /// Looks with the doubling pauses alone: at more than one child, or without a pidfd.
    fn blind() -> Looks {
        Looks {
            pause: Duration::from_millis(1),
            exited: None,
        }
    }

    fn pause(&mut self) -> Duration {
        let now = self.pause;
        self.pause = (now * 2).min(LOOK_EVERY);
        now
    }

    /// Waits for the next look: the pause, or less when the child ends during it.
    fn sleep(&mut self) {
        let pause = self.pause();
        let Some(fd) = &self.exited else {
            return std::thread::sleep(pause);
        };
        use std::os::fd::AsRawFd as _;
        let mut ready = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(pause.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd, owned by this frame, for the length poll is told; a signal
        // or an error ends the pause early, and the caller looks at the child either way.
        unsafe { libc::poll(&raw mut ready, 1, ms) };
    }
}

/// A descriptor that becomes readable when `child` ends, where the kernel has pidfds.
fn pidfd(child: &Child) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd as _;
    let pid = libc::pid_t::try_from(child.id()).ok()?;
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new descriptor or -1. The pid
    // is our unreaped child's, so it cannot name another process.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = libc::c_int::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: the kernel just returned this descriptor, and nothing else owns it.
    Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// How long a child may go on, how that is judged, and the setting it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    pub limit: Duration,
    /// The setting named in the message, as the user writes it: `[zfs] timeout`.
    pub key: &'static str,
    pub by: Measure,
}

/// What a deadline measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// The child's whole run, start to exit.
    Total,
    /// Silence: the time since the program's own processes in the child's group last read a
    /// byte (rsync: since the client last sent anything; its ssh's keepalives do not count).
    Silence,
}

impl Deadline {
    /// The deadline for a `zfs` or `zpool` process.
    pub fn zfs(limit: Duration) -> Deadline {
        Deadline {
            limit,
            key: "[zfs] timeout",
            by: Measure::Total,
        }
    }

    /// The deadline for a hook: `hooks.timeout` in all.
    pub fn hook(limit: Duration) -> Deadline {
        Deadline {
            limit,
            key: "hooks.timeout",
            by: Measure::Total,
        }
    }

    /// The deadline for rsync talking to a client: `rsync.io_timeout` of silence.
    pub fn rsync(limit: Duration) -> Deadline {
        Deadline {
            limit,
            key: "rsync.io_timeout",
            by: Measure::Silence,
        }
    }
}

/// A child stopped at its deadline.
#[derive(Debug)]
pub struct Overdue {
    pub cmd: String,
    /// `None` for a child stopped because zbk was interrupted.
    pub deadline: Option<Deadline>,
    /// The pid of a child that outlived SIGKILL and was left behind.
    pub abandoned: Option<u32>,
}

impl fmt::Display for Overdue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.deadline {
            Some(d) => {
                let limit = humantime::format_duration(d.limit);
                match d.by {
                    Measure::Total => write!(
                        f,
                        "`{}` did not answer within {limit} ({})",
                        self.cmd, d.key
                    )?,
                    Measure::Silence => {
                        write!(f, "`{}` went {limit} without a byte ({})", self.cmd, d.key)?
                    }
                }
            }
            None => write!(f, "`{}` stopped: interrupted", self.cmd)?,
        }
        if let Some(pid) = self.abandoned {
            write!(f, "; {}", abandoned_text(pid, &self.cmd))?;
        }
        Ok(())
    }
}

impl std::error::Error for Overdue {}

/// Bounds on a supervised child.
#[derive(Clone, Copy, Default)]
pub struct Limits<'a> {
    pub deadline: Option<Deadline>,
    pub cancel: Option<&'a AtomicBool>,
}

/// How a supervised child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    /// Stopped at its deadline; with the pid of a child that would not die.
    TimedOut(Option<u32>),
    Cancelled,
}

/// How a wait for a child ended.
enum Waited {
    Exited(ExitStatus),
    Stopped(Stopped),
}

/// A child's group stopped by zbk: at which deadline (none: interrupted), and whether the
/// child was left behind.
struct Stopped {
    deadline: Option<Deadline>,
    abandoned: Option<u32>,
}

/// Waits for a child within `limits`, telling the run's watchdog that zbk is alive meanwhile.
fn supervise(child: &mut Child, cmd: &Cmd, limits: Limits) -> Result<Waited> {
    let mut clock = Clock::new(
        limits.deadline,
        child.id(),
        Some(cmd.comm()).filter(|_| limits.deadline.is_some_and(|d| d.by == Measure::Silence)),
    );
    let mut looks = Looks::new(child);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Waited::Exited(status));
        }
        crate::watchdog::beat();
        let why = if limits.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            Some(None)
        } else if clock.expired(None) {
            Some(limits.deadline)
        } else {
            None
        };
        if let Some(deadline) = why {
            let abandoned = stop_group(child);
            return Ok(Waited::Stopped(Stopped {
                deadline,
                abandoned,
            }));
        }
        looks.sleep();
    }
}

/// A deadline's clock: the time since the start, or since the last sign of progress.
struct Clock {
    deadline: Option<Deadline>,
    pgid: u32,
    /// For `Silence`: the program name whose processes' reads count.
    comm: Option<Vec<u8>>,
    since: Instant,
    measured: Instant,
    /// The bytes through a pipe, or each measured process's reads, at the last measure.
    last: Option<u64>,
    reads: std::collections::BTreeMap<u32, u64>,
}

impl Clock {
    fn new(deadline: Option<Deadline>, pgid: u32, comm: Option<Vec<u8>>) -> Clock {
        let now = Instant::now();
        Clock {
            deadline,
            pgid,
            comm,
            since: now,
            measured: now,
            last: None,
            reads: std::collections::BTreeMap::new(),
        }
    }

    /// Whether the deadline has passed; `counter` is progress measured by the caller (bytes
    /// through a pipe), otherwise the group's reads are measured for a `Silence` deadline.
    fn expired(&mut self, counter: Option<u64>) -> bool {
        let Some(deadline) = self.deadline else {
            return false;
        };
        if deadline.by == Measure::Silence && self.measured.elapsed() >= MEASURE_EVERY {
            self.measured = Instant::now();
            let progress = match (counter, self.comm.as_deref()) {
                (Some(now), _) => self.last.replace(now) != Some(now),
                (None, Some(comm)) => match group_reads(self.pgid, comm) {
                    // A process that read more, or one that just started; one that ended
                    // read nothing.
                    Some(now) => {
                        let more = now
                            .iter()
                            .any(|(pid, n)| self.reads.get(pid).is_none_or(|before| n > before));
                        self.reads = now;
                        more
                    }
                    // Unmeasurable (no /proc): progress, rather than stop a healthy child.
                    None => true,
                },
                (None, None) => true,
            };
            if progress {
                self.since = Instant::now();
            }
        }
        self.since.elapsed() >= deadline.limit
    }
}

/// The bytes read so far by each process of group `pgid` named `comm`, from /proc; `None`
/// when none can be measured. With more than one, the group's leader is left out: rsync's
/// leader is its generator, which reads only local files and its own receiver's messages
/// (among them the keepalive the receiver sends it at half the timeout), never the client.
fn group_reads(pgid: u32, comm: &[u8]) -> Option<std::collections::BTreeMap<u32, u64>> {
    let mut reads = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read(entry.path().join("stat")) else {
            continue;
        };
        if stat_group(&stat) != Some((comm, pgid)) {
            continue;
        }
        let Ok(io) = std::fs::read_to_string(entry.path().join("io")) else {
            continue;
        };
        let rchar = io
            .lines()
            .find_map(|l| l.strip_prefix("rchar:"))
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(n) = rchar {
            reads.insert(pid, n);
        }
    }
    if reads.len() > 1 {
        reads.remove(&pgid);
    }
    (!reads.is_empty()).then_some(reads)
}

/// The name and process group in a `/proc/<pid>/stat` line: `pid (comm) state ppid pgrp ...`.
fn stat_group(stat: &[u8]) -> Option<(&[u8], u32)> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let comm = stat.get(open + 1..close)?;
    let rest = std::str::from_utf8(stat.get(close + 1..)?).ok()?;
    let pgrp = rest.split_whitespace().nth(2)?.parse().ok()?;
    Some((comm, pgrp))
}

/// Stops a child's whole process group: SIGTERM, the grace period, then SIGKILL; reaps it.
/// Returns the child's pid when it outlived SIGKILL too (stuck in the kernel): it is left.
fn stop_group(child: &mut Child) -> Option<u32> {
    let pid = child.id();
    let Ok(pgid) = libc::pid_t::try_from(pid) else {
        let _ = child.kill();
        return (!wait_for(child, GRACE)).then_some(pid);
    };
    // SAFETY: kill(2) with a negative pid signals the group the child leads; no memory is shared.
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let ended = wait_for(child, GRACE);
    // SAFETY: as above; whatever of the group outlived SIGTERM, its leader included, goes too.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    if ended || wait_for(child, GRACE) {
        None
    } else {
        Some(pid)
    }
}

/// Waits at most `limit` for a child to end; whether it did (and was reaped).
fn wait_for(child: &mut Child, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    let mut looks = Looks::new(child);
    loop {
        crate::watchdog::beat();
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        looks.sleep();
    }
}

/// What a reader thread sends once its pipe is closed.
type Drained = mpsc::Receiver<Vec<u8>>;

/// Reads a child's pipe to its end on a thread of its own, so that a child stuck with the pipe
/// open never blocks zbk: the caller waits for the text only as long as it chooses.
fn drain(pipe: Option<impl Read + Send + 'static>) -> Drained {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
    } else {
        let _ = tx.send(Vec::new());
    }
    rx
}

/// Runs `from | to`: the first's stdout feeds the second's stdin, through zbk, which counts
/// the bytes: the pair is judged by its progress (no byte for the deadline of `from`, or of
/// `to`), never by its length, so a long healthy stream is never cut. Both stderrs are
/// captured and both statuses returned, since either end can fail while the other looks fine.
pub(in crate::sys) fn pipe(from: &Cmd, to: &Cmd) -> Result<(Output, Output)> {
    let _doing = crate::watchdog::Doing::new(format!("`{from} | {to}`"));
    let mut first = from.spawn(
        from.command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )?;
    let second = to.spawn(
        to.command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut second = match second {
        Ok(child) => child,
        Err(e) => {
            // The first would otherwise block on a pipe nobody reads.
            stop_group(&mut first);
            return Err(e);
        }
    };
    let moved = Arc::new(AtomicU64::new(0));
    let relay = {
        let (mut src, mut dst) = (first.stdout.take(), second.stdin.take());
        let moved = Arc::clone(&moved);
        std::thread::spawn(move || {
            // zbk dies of SIGPIPE like other Unix tools (main.rs); a receiver that quits must
            // give this thread EPIPE instead. The signal is the writing thread's own, so it
            // is blocked here alone and goes with the thread.
            // SAFETY: a signal mask of this thread only, from a zeroed set filled by libc.
            unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGPIPE);
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            }
            let (Some(src), Some(dst)) = (src.as_mut(), dst.as_mut()) else {
                return;
            };
            let mut buf = vec![0u8; 1 << 17];
            while let Ok(n) = src.read(&mut buf) {
                if n == 0 || dst.write_all(&buf[..n]).is_err() {
                    break;
                }
                moved.fetch_add(n as u64, Ordering::Relaxed);
            }
            // Dropping both ends: the receiver sees the end of the stream, the sender a closed
            // pipe should the receiver have quit.
        })
    };
    let first_err = drain(first.stderr.take());
    let second_out = drain(second.stdout.take());
    let second_err = drain(second.stderr.take());
    let deadline = from.deadline.or(to.deadline).map(|d| Deadline {
        by: Measure::Silence,
        ..d
    });
    let mut clock = Clock::new(deadline, first.id(), None);
    let (mut a, mut b) = (None, None);
    let mut looks = Looks::blind();
    while a.is_none() || b.is_none() {
        if a.is_none() {
            a = first.try_wait()?;
        }
        if b.is_none() {
            b = second.try_wait()?;
        }
        crate::watchdog::beat();
        if clock.expired(Some(moved.load(Ordering::Relaxed))) {
            let stuck_first = a.is_none().then(|| stop_group(&mut first)).flatten();
            let stuck_second = b.is_none().then(|| stop_group(&mut second)).flatten();
            let cmd = format!("{from} | {to}");
            return Err(Overdue {
                cmd,
                deadline,
                abandoned: stuck_first.or(stuck_second),
            }
            .into());
        }
        looks.sleep();
    }
    let _ = relay.join();
    let text = |rx: Drained| String::from_utf8_lossy(&rx.recv().unwrap_or_default()).into_owned();
    Ok((
        Output {
            status: a.expect("waited"),
            stdout: String::new(),
            stderr: text(first_err),
        },
        Output {
            status: b.expect("waited"),
            stdout: text(second_out),
            stderr: text(second_err),
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

    fn within(secs: u64, by: Measure) -> Option<Deadline> {
        Some(Deadline {
            limit: Duration::from_secs(secs),
            key: "test.timeout",
            by,
        })
    }

    /// Runs `f`, which must end within `secs` seconds.
    fn ends_within<T>(secs: u64, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let value = f();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(secs), "took {took:?}");
        value
    }

    /// Whether a process lives (a zombie does not count: it has ended).
    fn alive(pid: &str) -> bool {
        std::fs::read(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            let close = stat.iter().rposition(|&b| b == b')').unwrap();
            stat.get(close + 2) != Some(&b'Z')
        })
    }

    #[test]
    fn a_child_past_its_deadline_is_stopped_with_all_it_started() {
        // The shell's child holds the pipe too: only stopping the whole group ends both.
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
        let cmd = Cmd::new("sh")
            .args(["-c", &script])
            .deadline(within(1, Measure::Total));
        let err = ends_within(4, || cmd.output().unwrap_err());
        let overdue = err.downcast_ref::<Overdue>().expect("an Overdue error");
        assert_eq!(overdue.abandoned, None);
        assert_eq!(
            err.to_string(),
            format!(
                "`sh -c {}` did not answer within 1s (test.timeout)",
                quote(&script)
            )
        );
        let grandchild = std::fs::read_to_string(&pidfile).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !alive(grandchild.trim()),
            "the grandchild outlived its group"
        );
    }

    #[test]
    fn silence_is_judged_by_reads_not_by_length() {
        // Reads a byte every 0.7 s for about 3 s: never silent for 2 s, so never stopped.
        let talker = Cmd::new("sh")
            .args([
                "-c",
                "i=0; while [ $i -lt 4 ]; do read x < /proc/self/stat; sleep 0.7; i=$((i+1)); done; echo done",
            ])
            .deadline(within(2, Measure::Silence));
        let out = talker.output().unwrap();
        assert_eq!(out.stdout, "done\n");
        let silent = Cmd::new("sh")
            .args(["-c", "sleep 300"])
            .deadline(within(1, Measure::Silence));
        let err = ends_within(5, || silent.output().unwrap_err().to_string());
        assert!(
            err.ends_with("went 1s without a byte (test.timeout)"),
            "{err}"
        );
    }

    #[test]
    fn a_pipe_is_judged_by_the_bytes_through_it() {
        let slow = Cmd::new("sh")
            .args(["-c", "for i in 1 2 3 4; do printf x; sleep 0.7; done"])
            .deadline(within(2, Measure::Total));
        let (a, b) = pipe(&slow, &Cmd::new("cat")).unwrap();
        assert!(a.status.success() && b.status.success());
        assert_eq!(
            b.stdout, "xxxx",
            "a stream longer than the deadline is never cut"
        );
        let stuck = Cmd::new("sleep")
            .args(["300"])
            .deadline(within(1, Measure::Total));
        let err = ends_within(5, || {
            pipe(&stuck, &Cmd::new("cat")).unwrap_err().to_string()
        });
        assert_eq!(
            err,
            "`sleep 300 | cat` went 1s without a byte (test.timeout)"
        );
    }

    #[test]
    fn looks_at_a_child_soon_then_every_50_ms() {
        let mut looks = Looks::blind();
        let pauses: Vec<u128> = (0..9).map(|_| looks.pause().as_millis()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 50, 50, 50]);
    }

    #[test]
    fn a_pause_ends_when_the_child_does() {
        let mut child = Command::new("true").spawn().unwrap();
        let mut looks = Looks::new(&child);
        assert!(
            looks.exited.is_some(),
            "pidfd_open(2) failed: a kernel before 5.3, or a seccomp filter that refuses it \
             (zbk falls back to polling there; this test needs a kernel that gives pidfds)"
        );
        looks.pause = Duration::from_secs(30);
        let started = Instant::now();
        looks.sleep();
        // Bounded far above a process start, far below the pause: the wake-up came from the
        // child's end, not from the clock.
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(child.try_wait().unwrap().is_some());
    }

    #[test]
    fn stat_lines_give_name_and_group() {
        let line = b"4242 (rsync) (x) S 1 4240 4240 0 -1 4194560";
        assert_eq!(stat_group(line), Some((&b"rsync) (x"[..], 4240)));
        assert_eq!(stat_group(b"garbage"), None);
    }

    #[test]
    fn failure_names_command_status_and_stderr() {
        let cmd = Cmd::new("false");
        let out = cmd.output().unwrap();
        let err = cmd.failed(&out).to_string();
        assert_eq!(err, "`false` exited with status 1");
    }
}
