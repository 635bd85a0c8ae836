//! A run's pre_run and post_run hooks: their command, their environment, their output in the log.

use crate::config::Hooks as Settings;
use crate::names::HostName;
use crate::progress::Progress;
use crate::stamp::Status;
use crate::sys::exec::{abandoned_text, Deadline, Ended, Limits};
use crate::sys::hook::Hook;
use anyhow::Result;
use fs_err as fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// The hooks of one host's run, with what every hook is told: the host, the tier, d/.
pub(super) struct Hooks<'a> {
    pub(super) settings: &'a Settings,
    pub(super) host: &'a HostName,
    pub(super) tier: &'a str,
    pub(super) data: &'a Path,
}

impl Hooks<'_> {
    /// Runs pre_run, if any, with its output in the log; `Some(reason)` fails the run.
    pub(super) fn pre_run(
        &self,
        log_path: &Path,
        log: &mut fs::File,
        progress: &Progress,
        cancel: &AtomicBool,
    ) -> Result<Option<String>> {
        let Some(argv) = &self.settings.pre_run else {
            return Ok(None);
        };
        progress.set(self.host.as_str(), "pre_run", None);
        let hook = self
            .env(Hook::new(argv)?)
            .env("ZBK_LOG", log_path)
            .env("ZBK_PHASE", "pre_run");
        run_hook("pre_run", &hook, log, self.settings.timeout, cancel)
    }

    /// Runs post_run, if any, appending to the log the snapshot holds; `Some(reason)` when it
    /// failed, which leaves the backup standing.
    pub(super) fn post_run(
        &self,
        log: &Path,
        snapshot: &str,
        status: Status,
        progress: &Progress,
    ) -> Result<Option<String>> {
        let Some(argv) = &self.settings.post_run else {
            return Ok(None);
        };
        progress.set(self.host.as_str(), "post_run", None);
        let mut live = fs::OpenOptions::new().append(true).open(log)?;
        let hook = self
            .env(Hook::new(argv)?)
            .env("ZBK_LOG", log)
            .env("ZBK_PHASE", "post_run")
            .env("ZBK_SNAPSHOT", snapshot)
            .env("ZBK_STATUS", status.as_str());
        // The cancel flag is not passed: post_run must see a failed run through, too.
        run_hook(
            "post_run",
            &hook,
            &mut live,
            self.settings.timeout,
            &AtomicBool::new(false),
        )
    }

    fn env(&self, hook: Hook) -> Hook {
        hook.env("ZBK_HOST", self.host.as_str())
            .env("ZBK_TIER", self.tier)
            .env("ZBK_DATA", self.data)
    }
}

/// Runs a hook with its output in the log; `Some(reason)` when it failed or timed out.
fn run_hook(
    kind: &str,
    hook: &Hook,
    log: &mut fs::File,
    timeout: Duration,
    cancel: &AtomicBool,
) -> Result<Option<String>> {
    writeln!(log, "$ {hook}  # {kind}")?;
    let limits = Limits {
        deadline: Some(Deadline::hook(timeout)),
        cancel: Some(cancel),
    };
    let failure = match hook.run(log.file(), limits) {
        Ok(Ended::Exited(0)) => None,
        Ok(Ended::Exited(code)) => Some(format!("{kind} hook exited with status {code}")),
        Ok(Ended::TimedOut(abandoned)) => Some(format!(
            "{kind} hook timed out after {}{}",
            humantime::format_duration(timeout),
            abandoned
                .map(|pid| format!("; {}", abandoned_text(pid, &hook.to_string())))
                .unwrap_or_default()
        )),
        Ok(Ended::Cancelled) => Some(format!("{kind} hook stopped: interrupted by a signal")),
        Err(e) => Some(format!("{kind} hook: {e:#}")),
    };
    if let Some(f) = &failure {
        writeln!(log, "zbk: {f}")?;
    }
    Ok(failure)
}
