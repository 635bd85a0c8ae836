//! A hook: a program of the administrator's, run around a backup with the run's facts in its
//! environment and its output in the run's log.

use super::exec::{find_program, Cmd, Ended, Limits};
use anyhow::Result;
use std::ffi::OsStr;
use std::fmt;
use std::path::PathBuf;

/// A hook's command line and environment, ready to run.
pub struct Hook(Cmd);

impl Hook {
    /// `argv` with its program found on PATH (or the sbin directories) unless it names a path;
    /// a program others could change is refused, since zbk runs it as root.
    pub fn new(argv: &[String]) -> Result<Hook> {
        let program = if argv[0].contains('/') {
            PathBuf::from(&argv[0])
        } else {
            find_program(&argv[0])?
        };
        crate::config::check_private(&program)?;
        Ok(Hook(Cmd::new(program).args(&argv[1..])))
    }

    /// Adds a variable to the hook's environment.
    pub fn env(self, key: &str, value: impl AsRef<OsStr>) -> Hook {
        Hook(self.0.env(key, value))
    }

    /// Runs the hook with its output appended to `log`, within `limits`.
    pub fn run(&self, log: &std::fs::File, limits: Limits) -> Result<Ended> {
        self.0.run_logged(log, limits)
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
