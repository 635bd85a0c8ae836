//! Progress on a terminal: one status line naming each running host, its phase, the bytes
//! rsync has moved and the time spent. Under cron (no terminal) nothing is shown.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// What each running host is doing.
pub struct Progress {
    enabled: bool,
    hosts: Mutex<BTreeMap<String, Phase>>,
}

struct Phase {
    what: String,
    since: Instant,
    log: Option<PathBuf>,
}

impl Progress {
    pub fn new(enabled: bool) -> Progress {
        Progress {
            enabled,
            hosts: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Records a host's phase; `log` is where rsync writes its progress, if it runs now.
    pub fn set(&self, host: &str, what: &str, log: Option<&Path>) {
        if !self.enabled {
            return;
        }
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let since = hosts.get(host).map_or_else(Instant::now, |p| p.since);
        hosts.insert(
            host.to_string(),
            Phase {
                what: what.to_string(),
                since,
                log: log.map(Path::to_path_buf),
            },
        );
    }

    /// Forgets a host that finished, and clears the line so its report prints cleanly.
    pub fn done(&self, host: &str) {
        if self.enabled {
            self.hosts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(host);
            self.clear();
        }
    }

    /// Redraws the status line.
    pub fn draw(&self) {
        if !self.enabled {
            return;
        }
        let hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let parts: Vec<String> = hosts
            .iter()
            .map(|(host, p)| {
                let bytes = p
                    .log
                    .as_deref()
                    .and_then(rsync_bytes)
                    .map(|b| format!(" {b}"))
                    .unwrap_or_default();
                format!("{host}: {}{bytes} {}s", p.what, p.since.elapsed().as_secs())
            })
            .collect();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{}", parts.join(" | "));
        let _ = err.flush();
    }

    pub fn clear(&self) {
        if self.enabled {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
        }
    }
}

/// The bytes figure of rsync's newest `--info=progress2` line at the end of its log.
fn rsync_bytes(log: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(log).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(2048))).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    last_progress(&String::from_utf8_lossy(&tail))
}

/// Picks the bytes column from the last progress line: `  1,234,567  45%  1.2MB/s  0:00:03`.
fn last_progress(text: &str) -> Option<String> {
    text.split(['\r', '\n'])
        .rev()
        .find(|l| l.contains('%') && l.contains("/s"))
        .and_then(|l| l.split_whitespace().next())
        .map(|b| format!("{b} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_progress_line_wins() {
        let log = "$ rsync ...\n      32,768   0%    0.00kB/s    0:00:00\r  1,234,567  45%    1.20MB/s    0:00:03 (xfr#3, to-chk=5/10)\r";
        assert_eq!(last_progress(log).as_deref(), Some("1,234,567 bytes"));
        assert_eq!(last_progress("no progress here"), None);
    }
}
