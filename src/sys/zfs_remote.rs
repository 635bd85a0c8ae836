//! The zfs commands of replication: `zfs send` on the source, and `zfs` on either side (holds,
//! listings, receive), here or on a server over ssh. Every process still starts in `exec`.

use crate::dataset::Snapshot;
use crate::names::HostName;
use crate::replicate::stream::{self, Stream};
use crate::replicate::{parse_listing, Target, Tree, LISTING_PROPS};
use crate::stamp::SCHEMA;
use crate::sys::exec::{quote, Cmd};
use crate::sys::ssh::{self, Ssh};
use crate::sys::zfs::Zfs;
use anyhow::{Context, Result};
use std::collections::BTreeMap;

/// The stderr text of a receive refused because the target changed since its newest snapshot
/// (zfs goes on "since most recent snapshot", on a line of its own on zfs-fuse).
pub const MODIFIED: &str = "has been modified";

impl Zfs {
    /// `zfs send` of one snapshot, or with `from` of every snapshot after it up to `to`. `-p`
    /// carries the zbk properties (zfs takes it for an encrypted dataset only with `-w`); never
    /// `-R`, whose `-F` receive would mirror deletions.
    pub fn send_cmd(&self, from: Option<&Snapshot>, to: &Snapshot, stream: Stream) -> Cmd {
        let mut args = vec!["send"];
        match stream {
            Stream::Plain => args.push("-p"),
            Stream::Raw => args.extend(["-w", "-p"]),
            Stream::Decrypted => {}
        }
        if let Some(from) = from {
            args.push("-I");
            args.push(from.as_str());
        }
        args.push(to.as_str());
        self.cmd(args)
    }

    /// The zbk properties set on `dataset` and its snapshots, by name: what a decrypted stream
    /// leaves behind.
    pub fn stamps(&self, dataset: &str) -> Result<BTreeMap<String, Vec<(String, String)>>> {
        let props = SCHEMA.join(",");
        let out = self
            .cmd([
                "get",
                "-H",
                "-p",
                "-r",
                "-s",
                "local",
                "-o",
                "name,property,value,source",
                &props,
                dataset,
            ])
            .checked()?;
        Ok(stream::stamps(&out.stdout))
    }

    /// Whether a host dataset is a replica: `zbk replicate` gives each `mountpoint=none`, which
    /// a host backed up here can never have.
    pub fn is_replica(&self, dataset: &str) -> bool {
        self.get(dataset, "mountpoint")
            .is_ok_and(|(value, _)| value == "none")
    }
}

/// `zfs` on one side of a replication.
pub struct ZfsAt<'a> {
    zfs: &'a Zfs,
    /// For a remote target: ssh, and the `[user@]server` it logs in to.
    ssh: Option<(Ssh, String)>,
}

impl<'a> ZfsAt<'a> {
    /// `zfs` here, for the source or a local target.
    pub fn local(zfs: &'a Zfs) -> ZfsAt<'a> {
        ZfsAt { zfs, ssh: None }
    }

    /// `zfs` where the target is; over ssh, `options` are `Key=Value` pairs, each passed as `-o`.
    pub fn target(zfs: &'a Zfs, target: &Target, options: &[String]) -> Result<ZfsAt<'a>> {
        let Target::Ssh { login, .. } = target else {
            return Ok(ZfsAt::local(zfs));
        };
        Ok(ZfsAt {
            zfs,
            ssh: Some((Ssh::target(&ssh::program()?, options), login.clone())),
        })
    }

    /// A `zfs` command line on this side. Over ssh the remote shell reads one string, so every
    /// word is quoted, and `env` sets the C locale whatever the login shell.
    pub(in crate::sys) fn cmd(&self, args: &[&str]) -> Cmd {
        match &self.ssh {
            None => self.zfs.cmd(args),
            Some((ssh, login)) => {
                let mut line = String::from("env LC_ALL=C zfs");
                for arg in args {
                    line.push(' ');
                    line.push_str(&quote(arg));
                }
                ssh.cmd(login, &[line]).deadline(Some(self.zfs.deadline()))
            }
        }
    }

    /// The host datasets under `hosts` and their snapshots, in one listing; `None` when
    /// `hosts` does not exist.
    pub fn listing(&self, hosts: &str) -> Result<Option<BTreeMap<HostName, Tree>>> {
        self.listing_under(hosts, hosts)
    }

    /// Like `listing`, but of `top` only: `hosts` itself or one host dataset under it.
    pub fn listing_under(
        &self,
        top: &str,
        hosts: &str,
    ) -> Result<Option<BTreeMap<HostName, Tree>>> {
        let props = LISTING_PROPS.join(",");
        let cmd = self.cmd(&[
            "get",
            "-H",
            "-p",
            "-r",
            "-o",
            "name,property,value,source",
            &props,
            top,
        ]);
        let out = cmd.output()?;
        if out.status.success() {
            return Ok(Some(parse_listing(&out.stdout, hosts)));
        }
        if out.stderr.contains("dataset does not exist") {
            return Ok(None);
        }
        Err(cmd.failed(&out)).with_context(|| format!("cannot list {top}"))
    }

    /// Places a hold; one already there under this tag is success.
    pub fn hold(&self, tag: &str, snapshot: &Snapshot) -> Result<()> {
        let cmd = self.cmd(&["hold", tag, snapshot.as_str()]);
        let out = cmd.output()?;
        if out.status.success() || out.stderr.contains("tag already exists") {
            Ok(())
        } else {
            Err(cmd.failed(&out).into())
        }
    }

    /// Releases a hold; a snapshot without this tag, or gone already, is success.
    pub fn release(&self, tag: &str, snapshot: &Snapshot) -> Result<()> {
        let cmd = self.cmd(&["release", tag, snapshot.as_str()]);
        let out = cmd.output()?;
        if out.status.success()
            || out.stderr.contains("no such tag")
            || out.stderr.contains("dataset does not exist")
        {
            Ok(())
        } else {
            Err(cmd.failed(&out).into())
        }
    }

    pub fn exists(&self, dataset: &str) -> Result<bool> {
        crate::sys::zfs::exists_by(&self.cmd(&["list", "-H", "-o", "name", dataset]))
    }

    /// Whether what `dataset` receives is stored encrypted: it exists and has encryption on.
    /// A zfs without encryption (zfs-fuse) refuses the property: it stores plaintext.
    pub fn encrypts(&self, dataset: &str) -> Result<bool> {
        let cmd = self.cmd(&["get", "-H", "-p", "-o", "value", "encryption", dataset]);
        let out = cmd.output()?;
        if out.status.success() {
            return Ok(!matches!(out.stdout.trim(), "off" | "-" | ""));
        }
        if out.stderr.contains("dataset does not exist") || out.stderr.contains("invalid property")
        {
            return Ok(false);
        }
        Err(cmd.failed(&out).into())
    }

    /// Creates the replicas' parent, unmounted, so the received datasets inherit
    /// `mountpoint=none` and nothing (not even atime) changes them between receives.
    pub fn create_unmounted(&self, dataset: &str) -> Result<()> {
        self.cmd(&["create", "-o", "mountpoint=none", dataset])
            .checked()?;
        Ok(())
    }

    pub fn set(&self, dataset: &str, prop: &str, value: &str) -> Result<()> {
        let cmd = self.cmd(&["set", &format!("{prop}={value}"), dataset]);
        // A new mountpoint unmounts the dataset here: on zfs-fuse that races any mount of the
        // same daemon unless it takes the lock every mounting call takes.
        let _serial = match (&self.ssh, prop) {
            (None, "mountpoint") => self.zfs.mount_lock()?,
            _ => None,
        };
        cmd.checked()?;
        Ok(())
    }

    /// `zfs receive -u`, never `-F`: a target changed since its newest snapshot is refused by
    /// zfs and reported, not rolled back.
    pub fn receive_cmd(&self, dataset: &str) -> Cmd {
        self.cmd(&["receive", "-u", dataset])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_commands_are_one_quoted_line_after_the_destination() {
        let Ok(zfs) = Zfs::find() else { return };
        let target = Target::parse("root@b2:tank/off").unwrap();
        let at = ZfsAt::target(&zfs, &target, &["Port=2222".into()]).unwrap();
        let cmd = at.receive_cmd("tank/off/hosts/a b").to_string();
        assert!(
            cmd.ends_with(
                "-o BatchMode=yes -o Port=2222 -- root@b2 'env LC_ALL=C zfs receive -u '\\''tank/off/hosts/a b'\\'''"
            ),
            "{cmd}"
        );
        let local = ZfsAt::target(&zfs, &Target::parse("tank/off").unwrap(), &[]).unwrap();
        assert!(local
            .receive_cmd("tank/off/hosts/a")
            .to_string()
            .ends_with("zfs receive -u tank/off/hosts/a"));
    }

    #[test]
    fn sends_carry_properties_and_never_recurse() {
        let Ok(zfs) = Zfs::find() else { return };
        let dataset = crate::dataset::HostDataset::new("t", &HostName::parse("a").unwrap());
        let snap = |name: &str| Snapshot::listed(&dataset, name).unwrap();
        assert!(zfs
            .send_cmd(None, &snap("s1"), Stream::Plain)
            .to_string()
            .ends_with("zfs send -p t/hosts/a@s1"));
        assert!(zfs
            .send_cmd(Some(&snap("s1")), &snap("s3"), Stream::Plain)
            .to_string()
            .ends_with("zfs send -p -I t/hosts/a@s1 t/hosts/a@s3"));
        assert!(zfs
            .send_cmd(Some(&snap("s1")), &snap("s3"), Stream::Raw)
            .to_string()
            .ends_with("zfs send -w -p -I t/hosts/a@s1 t/hosts/a@s3"));
        assert!(zfs
            .send_cmd(None, &snap("s1"), Stream::Decrypted)
            .to_string()
            .ends_with("zfs send t/hosts/a@s1"));
    }
}
