//! The zfs commands of replication: `zfs send` on the source, and `zfs` on either side (holds,
//! listings, receive), here or on a server over ssh. Every process still starts in `exec`.

use crate::dataset::{HostDataset, HostsDataset, Snapshot, ZfsName};
use crate::names::HostName;
use crate::replicate::stream::{self, Mismatch, Stream};
use crate::replicate::{parse_listing, Target, Tree, LISTING_PROPS};
use crate::stamp::SCHEMA;
use crate::sys::exec::{pipe, quote, Cmd, Failed};
use crate::sys::ssh::{self, Ssh};
use crate::sys::zfs::Zfs;
use crate::sys::zfs_error::{attempt, succeeded_unless, Refused, ZfsError};
use anyhow::{Context, Result};
use std::collections::BTreeMap;

/// How one `zfs send | zfs receive` of a host ended.
#[derive(Debug)]
pub enum Replicated {
    /// The snapshots are on the target.
    Received,
    /// The receive was refused: the copy changed since its newest snapshot.
    TargetModified,
    /// The receive was refused: the stream's kind does not match the copy's.
    StreamMismatch(Mismatch),
    /// Either end failed otherwise; the failed ends, the receive first, as they read.
    Failed(Vec<Failed>),
}

impl Zfs {
    /// `zfs send` of one snapshot, or with `from` of every snapshot after it up to `to`. `-p`
    /// carries the zbk properties (zfs takes it for an encrypted dataset only with `-w`); never
    /// `-R`, whose `-F` receive would mirror deletions.
    pub(in crate::sys) fn send_cmd(
        &self,
        from: Option<&Snapshot>,
        to: &Snapshot,
        stream: Stream,
    ) -> Cmd {
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

    /// The command line of that send, as a dry run prints it.
    pub fn send_line(&self, from: Option<&Snapshot>, to: &Snapshot, stream: Stream) -> String {
        self.send_cmd(from, to, stream).to_string()
    }

    /// The zbk properties set on `dataset` and its snapshots, by name: what a decrypted stream
    /// leaves behind.
    pub fn stamps(&self, dataset: &HostDataset) -> Result<BTreeMap<String, Vec<(String, String)>>> {
        let dataset = dataset.as_str();
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
    pub fn is_replica(&self, dataset: &HostDataset) -> bool {
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
    pub fn listing(&self, hosts: &HostsDataset) -> Result<Option<BTreeMap<HostName, Tree>>> {
        self.listing_under(hosts, hosts)
    }

    /// Like `listing`, but of `top` only: `hosts` itself or one host dataset under it.
    pub fn listing_under(
        &self,
        top: &impl ZfsName,
        hosts: &HostsDataset,
    ) -> Result<Option<BTreeMap<HostName, Tree>>> {
        let (top, hosts) = (top.zfs_name(), hosts.as_str());
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
        match attempt(&cmd)? {
            Ok(out) => Ok(Some(parse_listing(&out.stdout, hosts))),
            Err(Refused {
                why: ZfsError::NotFound,
                ..
            }) => Ok(None),
            Err(refused) => Err(refused.failed).with_context(|| format!("cannot list {top}")),
        }
    }

    /// Places a hold; one already there under this tag is success.
    pub fn hold(&self, tag: &str, snapshot: &Snapshot) -> Result<()> {
        let cmd = self.cmd(&["hold", tag, snapshot.as_str()]);
        succeeded_unless(&cmd, ZfsError::Exists).map(drop)
    }

    /// Releases a hold; a snapshot without this tag, or gone already, is success.
    pub fn release(&self, tag: &str, snapshot: &Snapshot) -> Result<()> {
        let cmd = self.cmd(&["release", tag, snapshot.as_str()]);
        succeeded_unless(&cmd, ZfsError::NotFound).map(drop)
    }

    pub fn exists(&self, dataset: &impl ZfsName) -> Result<bool> {
        let dataset = dataset.zfs_name();
        succeeded_unless(
            &self.cmd(&["list", "-H", "-o", "name", dataset]),
            ZfsError::NotFound,
        )
    }

    /// Whether what `dataset` receives is stored encrypted: it exists and has encryption on.
    /// A zfs without encryption (zfs-fuse) refuses the property: it stores plaintext.
    pub fn encrypts(&self, dataset: &HostsDataset) -> Result<bool> {
        let dataset = dataset.as_str();
        let cmd = self.cmd(&["get", "-H", "-p", "-o", "value", "encryption", dataset]);
        match attempt(&cmd)? {
            Ok(out) => Ok(!matches!(out.stdout.trim(), "off" | "-" | "")),
            Err(Refused {
                why: ZfsError::NotFound | ZfsError::InvalidProperty(_),
                ..
            }) => Ok(false),
            Err(refused) => Err(refused.into()),
        }
    }

    /// Creates the replicas' parent, unmounted, so the received datasets inherit
    /// `mountpoint=none` and nothing (not even atime) changes them between receives.
    pub fn create_unmounted(&self, dataset: &HostsDataset) -> Result<()> {
        let dataset = dataset.as_str();
        self.cmd(&["create", "-o", "mountpoint=none", dataset])
            .checked()?;
        Ok(())
    }

    /// Sets one property on a snapshot of this side.
    pub fn stamp(&self, snapshot: &Snapshot, prop: &str, value: &str) -> Result<()> {
        self.set_on(snapshot.as_str(), prop, value)
    }

    /// Sets one property on a host dataset of this side.
    pub fn set(&self, dataset: &HostDataset, prop: &str, value: &str) -> Result<()> {
        self.set_on(dataset.as_str(), prop, value)
    }

    fn set_on(&self, dataset: &str, prop: &str, value: &str) -> Result<()> {
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
    pub(in crate::sys) fn receive_cmd(&self, dataset: &str) -> Cmd {
        self.cmd(&["receive", "-u", dataset])
    }

    /// Sends `to` from `source` (with `from`, every snapshot after it up to `to`) into `dest`
    /// on this side: `zfs send | zfs receive -u`, and how it ended. Either end can fail while
    /// the other looks fine, so both are judged.
    pub fn receive(
        &self,
        source: &Zfs,
        from: Option<&Snapshot>,
        to: &Snapshot,
        stream: Stream,
        dest: &HostDataset,
    ) -> Result<Replicated> {
        let send_cmd = source.send_cmd(from, to, stream);
        let receive_cmd = self.receive_cmd(dest.as_str());
        let (sent, received) = pipe(&send_cmd, &receive_cmd)?;
        if sent.status.success() && received.status.success() {
            return Ok(Replicated::Received);
        }
        if !received.status.success() {
            match ZfsError::classify(&received.stderr) {
                ZfsError::Modified => return Ok(Replicated::TargetModified),
                ZfsError::KeyNeeded => return Ok(Replicated::StreamMismatch(Mismatch::RawCopy)),
                ZfsError::RawOntoPlain => {
                    return Ok(Replicated::StreamMismatch(Mismatch::DecryptedCopy))
                }
                _ => {}
            }
        }
        let mut failed = Vec::new();
        if !received.status.success() {
            failed.push(receive_cmd.failed(&received));
        }
        if !sent.status.success() {
            failed.push(send_cmd.failed(&sent));
        }
        Ok(Replicated::Failed(failed))
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
        let dataset = crate::dataset::HostDataset::new(
            &crate::dataset::RootDataset::parse("t").unwrap(),
            &HostName::parse("a").unwrap(),
        );
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
