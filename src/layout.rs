//! Where things live under the backup root: pure path arithmetic, no I/O.

use crate::names::HostName;
use std::path::PathBuf;

/// The backup root and the paths derived from it.
#[derive(Clone, Debug)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: PathBuf) -> Layout {
        Layout { root }
    }

    /// `<root>/etc`: the global config and the lock files.
    pub fn etc(&self) -> PathBuf {
        self.root.join("etc")
    }

    /// Where a host's dataset is mounted.
    pub fn host(&self, host: &HostName) -> PathBuf {
        self.root.join("hosts").join(host.as_str())
    }

    pub fn config_dir(&self, host: &HostName) -> PathBuf {
        self.host(host).join("c")
    }

    pub fn host_config(&self, host: &HostName) -> PathBuf {
        self.config_dir(host).join("zbk.toml")
    }

    pub fn exclude_file(&self, host: &HostName) -> PathBuf {
        self.config_dir(host).join("exclude")
    }

    pub fn data(&self, host: &HostName) -> PathBuf {
        self.host(host).join("d")
    }

    pub fn logs(&self, host: &HostName) -> PathBuf {
        self.host(host).join("l")
    }

    /// The lock a run holds on a host; outside the host dataset so it never lands in a snapshot.
    pub fn lock(&self, host: &HostName) -> PathBuf {
        self.etc().join("locks").join(format!("{host}.lock"))
    }
}

/// The hosts dataset under the dataset given to `zbk init`.
pub fn hosts_dataset(dataset: &str) -> String {
    format!("{dataset}/hosts")
}

/// A host's dataset.
pub fn host_dataset(dataset: &str, host: &HostName) -> String {
    format!("{dataset}/hosts/{host}")
}
