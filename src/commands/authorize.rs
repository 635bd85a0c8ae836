//! `zbk authorize`: the line for a client's authorized_keys that lets this server read, and
//! only read, over rsync: the server's key, forced to `rrsync -ro`, with every ssh extra off.

use crate::cli::AuthorizeArgs;
use crate::ctx::{usage, Ctx, EXIT_OK};
use crate::dataset::HostDataset;
use crate::names::HostName;
use anyhow::{anyhow, Result};
use fs_err as fs;
use std::path::PathBuf;

/// Public keys tried, in order, when the host names no ssh.identity.
const DEFAULT_KEYS: [&str; 3] = ["id_ed25519", "id_ecdsa", "id_rsa"];

pub fn run(ctx: &Ctx, args: AuthorizeArgs) -> Result<u8> {
    let global = ctx.global()?;
    let host = HostName::parse(&args.host).map_err(usage)?;
    for (flag, value) in [
        ("--from", args.from.as_deref()),
        ("--rrsync", Some(args.rrsync.as_str())),
    ] {
        if let Some(v) = value
            .filter(|v| v.is_empty() || v.chars().any(|c| c.is_whitespace() || "\"\\,".contains(c)))
        {
            return Err(usage(format!(
                "{flag}: {v:?} must be one word without quotes or commas"
            )));
        }
    }
    let dataset = HostDataset::new(&global.dataset, &host);
    if !ctx.zfs.exists(&dataset)? {
        return Err(usage(format!(
            "no such host: {host} ({dataset} does not exist): see `zbk list`, or add it with `zbk add`"
        )));
    }
    let config = global
        .load_host(&ctx.layout.host_config(&host))
        .map_err(usage)?;
    let public = public_key(config.settings.ssh.identity.clone())?;
    let key = fs::read_to_string(&public)?;
    let key = key
        .lines()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| anyhow!("{} is empty", public.display()))?;
    println!(
        "{}",
        authorized_line(&args.rrsync, args.from.as_deref(), key)
    );
    Ok(EXIT_OK)
}

/// The public half of the key this host is reached with.
fn public_key(identity: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(identity) = identity {
        let public = PathBuf::from(format!("{}.pub", identity.display()));
        return if public.is_file() {
            Ok(public)
        } else {
            Err(anyhow!(
                "{} not found: the public half of ssh.identity",
                public.display()
            ))
        };
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    DEFAULT_KEYS
        .iter()
        .map(|k| home.join(".ssh").join(format!("{k}.pub")))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!(
                "no ssh key in {}/.ssh: make one with `ssh-keygen -t ed25519 -N '' -f {}/.ssh/id_ed25519`, or set ssh.identity",
                home.display(),
                home.display()
            )
        })
}

/// `restrict` turns off forwarding, ptys and rc files; the forced command allows only
/// read-only rsync; `from=` pins the server's address when given.
fn authorized_line(rrsync: &str, from: Option<&str>, key: &str) -> String {
    let from = from.map(|f| format!(",from=\"{f}\"")).unwrap_or_default();
    format!("command=\"{rrsync} -ro /\",restrict{from} {}", key.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_forces_read_only_rsync() {
        let line = authorized_line(
            "/usr/bin/rrsync",
            Some("192.0.2.7"),
            "ssh-ed25519 AAAA zbk@backup\n",
        );
        assert_eq!(
            line,
            "command=\"/usr/bin/rrsync -ro /\",restrict,from=\"192.0.2.7\" ssh-ed25519 AAAA zbk@backup"
        );
        assert!(!authorized_line("/usr/bin/rrsync", None, "k").contains("from="));
    }
}
