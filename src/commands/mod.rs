//! One module per subcommand; what they share about choosing hosts lives here.

pub mod add;
pub mod authorize;
pub mod check;
pub mod diff;
pub mod doctor;
pub mod init;
pub mod keep;
pub mod list;
pub mod reap;
pub mod remove;
pub mod replicate;
pub mod restamp;
pub mod restore;
pub mod run;
pub mod status;
pub mod versions;

use crate::app::usage;
use crate::inventory::Inventory;
use crate::names::HostName;
use anyhow::Result;

/// The hosts a command names, validated and checked against the tree; none named means all.
pub fn chosen_hosts(inv: &Inventory, names: &[String]) -> Result<Vec<HostName>> {
    if names.is_empty() {
        return Ok(inv.hosts.keys().cloned().collect());
    }
    let mut out = Vec::new();
    for name in names {
        let host = HostName::parse(name).map_err(usage)?;
        if !inv.hosts.contains_key(&host) {
            return Err(usage(format!(
                "no such host {host:?}: see `zbk list`, or add it with `zbk add`"
            )));
        }
        if !out.contains(&host) {
            out.push(host);
        }
    }
    Ok(out)
}

/// Writes a file whole or not at all: a temporary file beside it, then a rename.
pub fn write_atomic(path: &std::path::Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs_err::write(&tmp, text)?;
    fs_err::rename(&tmp, path)?;
    Ok(())
}
