//! ssh: the one place its command line is built, for rsync's remote shell, `zbk doctor`'s
//! login check and `zfs` on a replication target alike.

use super::exec::{find_program, Cmd, Failed};
use crate::config::SshSettings;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// `ssh` and its options, up to where the destination goes.
#[derive(Clone, Debug)]
pub struct Ssh {
    /// The program, then its options, one word each.
    words: Vec<String>,
    /// Whether `--` goes before the destination: a replication target is typed by a user, and
    /// must never be read as an option; a client logs in exactly as rsync logs in, without it.
    end_options: bool,
}

/// Finds `ssh` on PATH or in the sbin directories.
pub fn program() -> Result<PathBuf> {
    find_program("ssh")
}

impl Ssh {
    /// ssh to a backup client as configured: batch mode so a missing key fails instead of
    /// prompting under cron, a connect timeout so a dead client fails fast, keepalives so a
    /// client that dies mid-transfer is noticed.
    pub fn client(program: &Path, s: &SshSettings) -> Ssh {
        let mut words = vec![
            program.display().to_string(),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            format!("ConnectTimeout={}", s.connect_timeout.as_secs().max(1)),
            "-o".into(),
            "ServerAliveInterval=15".into(),
            "-o".into(),
            "ServerAliveCountMax=4".into(),
        ];
        if let Some(port) = s.port {
            words.extend(["-p".into(), port.to_string()]);
        }
        if let Some(identity) = &s.identity {
            words.extend([
                "-i".into(),
                identity.display().to_string(),
                "-o".into(),
                "IdentitiesOnly=yes".into(),
            ]);
        }
        for option in &s.options {
            words.extend(["-o".into(), option.clone()]);
        }
        Ssh {
            words,
            end_options: false,
        }
    }

    /// ssh to a replication target: batch mode, so a cron job never waits on a password
    /// prompt, and `options` (`Key=Value` pairs), each passed as `-o`.
    pub fn target(program: &Path, options: &[String]) -> Ssh {
        let mut words = vec![
            program.display().to_string(),
            "-o".into(),
            "BatchMode=yes".into(),
        ];
        for option in options {
            words.extend(["-o".into(), option.clone()]);
        }
        Ssh {
            words,
            end_options: true,
        }
    }

    /// The remote shell for rsync's `--rsh`: rsync splits this string on spaces itself, so
    /// config validation keeps every value a single word.
    pub fn rsh(&self) -> String {
        self.words.join(" ")
    }

    /// `remote` run on `dest` (`[user@]host`). The remote shell joins the words into one line
    /// and reads it again: a caller quotes what must stay one word.
    pub(in crate::sys) fn cmd<S: AsRef<str>>(&self, dest: &str, remote: &[S]) -> Cmd {
        let mut cmd = Cmd::new(&self.words[0]).args(&self.words[1..]);
        if self.end_options {
            cmd = cmd.args(["--"]);
        }
        cmd.args([dest])
            .args(remote.iter().map(|w| w.as_ref().to_string()))
    }

    /// Logs in to `dest` and runs `true` there, to prove a run could log in: `Err` inside
    /// says, in one line, the command line and what ssh said.
    pub fn login(&self, dest: &str) -> Result<Result<(), String>> {
        let cmd = self.cmd(dest, &["true"]);
        let out = cmd.output()?;
        Ok(if out.status.success() {
            Ok(())
        } else {
            let Failed { cmd, stderr, .. } = cmd.failed(&out);
            Err(format!("`{cmd}` failed: {}", stderr.trim()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    #[test]
    fn the_remote_shell_fails_fast_and_never_prompts() {
        let mut s = Settings::default().ssh;
        s.port = Some(2222);
        s.identity = Some("/root/.ssh/id_zbk".into());
        s.options = vec!["Compression=no".into()];
        let ssh = Ssh::client(Path::new("/usr/bin/ssh"), &s);
        let rsh = ssh.rsh();
        assert_eq!(
            rsh,
            "/usr/bin/ssh -o BatchMode=yes -o ConnectTimeout=10 -o ServerAliveInterval=15 \
             -o ServerAliveCountMax=4 -p 2222 -i /root/.ssh/id_zbk -o IdentitiesOnly=yes -o Compression=no"
        );
        // A direct login (zbk doctor's) is the very same words rsync runs.
        assert_eq!(
            ssh.cmd("root@a", &["true"]).to_string(),
            format!("{rsh} root@a true")
        );
    }

    #[test]
    fn a_target_ends_the_options_before_its_destination() {
        let ssh = Ssh::target(Path::new("/usr/bin/ssh"), &["Port=2222".into()]);
        assert_eq!(
            ssh.cmd("-oProxyCommand=x", &["zfs list"]).to_string(),
            "/usr/bin/ssh -o BatchMode=yes -o Port=2222 -- -oProxyCommand=x 'zfs list'"
        );
    }
}
