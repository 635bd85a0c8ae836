//! The one reading of zfs's stderr: each failure zbk acts on, as a type. Every caller in `sys/`
//! matches on `ZfsError` instead of judging the text itself, so the two ZFSs' wordings (zfs-fuse
//! and OpenZFS say some things differently) are known here alone. zbk runs zfs with `LC_ALL=C`
//! (`exec`), so the texts are the untranslated ones below.

use super::exec::{Cmd, Failed, Output};

/// A zfs command that ran and failed: why, as a type, and the failure as it reads (command,
/// status, stderr) for an error message.
#[derive(Debug)]
pub(in crate::sys) struct Refused {
    pub why: ZfsError,
    pub failed: Failed,
}

impl From<Refused> for anyhow::Error {
    fn from(refused: Refused) -> anyhow::Error {
        anyhow::Error::new(refused.failed)
    }
}

/// Runs a zfs (or zpool) command: its output when it succeeded, else why it failed; failing
/// to run at all (no program, past its deadline) is the outer error.
pub(in crate::sys) fn attempt(cmd: &Cmd) -> anyhow::Result<Result<Output, Refused>> {
    let out = cmd.output()?;
    if out.status.success() {
        return Ok(Ok(out));
    }
    Ok(Err(Refused {
        why: ZfsError::classify(&out.stderr),
        failed: cmd.failed(&out),
    }))
}

/// Runs a zfs command for which one failure is an answer, not an error: `Ok(true)` when it
/// succeeded, `Ok(false)` when it failed for `answer` (a snapshot name already taken, a
/// dataset that is not there), the failure itself otherwise.
pub(in crate::sys) fn succeeded_unless(cmd: &Cmd, answer: ZfsError) -> anyhow::Result<bool> {
    match attempt(cmd)? {
        Ok(_) => Ok(true),
        Err(refused) if refused.why == answer => Ok(false),
        Err(refused) => Err(refused.into()),
    }
}

/// Why a zfs command failed, as far as zbk tells failures apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZfsError {
    /// The dataset, snapshot or hold tag named does not exist.
    NotFound,
    /// The dataset is busy (a held snapshot on zfs-fuse, a filesystem still in use): it may
    /// pass on a later try.
    Busy,
    /// Held or cloned: a snapshot that stays until its hold is released or its clone destroyed.
    Pinned,
    /// The dataset, snapshot or hold tag is there already.
    Exists,
    /// This user may not do it (no delegation on OpenZFS, no access to zfs-fuse's socket).
    PermissionDenied,
    /// This zfs does not know the property: zfs-fuse, or an OpenZFS older than it.
    InvalidProperty(String),
    /// This zfs or zpool does not know the option: zfs-fuse's `zpool status` has no `-j`.
    InvalidOption,
    /// `zfs create` made the filesystem and then failed to mount it.
    CreatedUnmounted,
    /// A receive refused because the target changed since its newest snapshot.
    Modified,
    /// A receive of a non-raw stream into a raw (still encrypted) copy, whose key is not here.
    KeyNeeded,
    /// A raw receive onto a copy that was received decrypted.
    RawOntoPlain,
    /// Anything else, with zfs's words trimmed.
    Other(String),
}

impl ZfsError {
    /// Classifies the stderr of a zfs command that failed.
    pub fn classify(stderr: &str) -> ZfsError {
        let err = stderr.trim();
        let has = |s: &str| err.contains(s);
        if has("has been modified") {
            ZfsError::Modified
        } else if has("key must be loaded") {
            ZfsError::KeyNeeded
        } else if has("raw receive on top of existing unencrypted dataset") {
            ZfsError::RawOntoPlain
        } else if has("successfully created") {
            ZfsError::CreatedUnmounted
        } else if has("dataset does not exist")
            || has("could not find any snapshots")
            || has("no such tag")
        {
            ZfsError::NotFound
        } else if ["being held", "dependent clones", "is cloned"]
            .iter()
            .any(|s| has(s))
        {
            ZfsError::Pinned
        } else if has("dataset is busy") {
            ZfsError::Busy
        } else if has("already exists") {
            ZfsError::Exists
        } else if err.to_ascii_lowercase().contains("permission denied") {
            ZfsError::PermissionDenied
        } else if let Some(prop) = invalid_property(err) {
            ZfsError::InvalidProperty(prop.to_string())
        } else if has("invalid option") {
            ZfsError::InvalidOption
        } else {
            ZfsError::Other(err.to_string())
        }
    }
}

/// The property in zfs's "invalid property 'NAME'".
fn invalid_property(err: &str) -> Option<&str> {
    let rest = err.split_once("invalid property '")?.1;
    Some(rest.split_once('\'').map_or(rest, |(name, _)| name))
}

#[cfg(test)]
mod tests {
    use super::ZfsError::{self, *};

    fn judged(stderr: &str) -> ZfsError {
        ZfsError::classify(stderr)
    }

    fn invalid(prop: &str) -> ZfsError {
        InvalidProperty(prop.to_string())
    }

    /// Printed by zfs-fuse 0.7 (this machine's), with `LC_ALL=C`, for the failure named first.
    #[test]
    fn zfs_fuse_messages() {
        for (stderr, want) in [
            // zfs list / get / destroy / destroy -r of a missing dataset
            ("cannot open 'p/missing': dataset does not exist", NotFound),
            ("cannot open 'p/a@missing': dataset does not exist", NotFound),
            // zfs release / hold of a missing snapshot
            ("cannot release 'zbk' from 'p/a@missing': dataset does not exist", NotFound),
            ("cannot hold 'p/a@missing': dataset does not exist", NotFound),
            // zfs release of a tag the snapshot does not have
            ("cannot release 'nosuch' from 'p/a@s1': no such tag on this dataset", NotFound),
            // zfs receive under a missing parent
            ("cannot open 'p/nope/r': dataset does not exist\ncannot receive new filesystem stream: dataset does not exist", NotFound),
            // zfs hold of a tag already there
            ("cannot hold 'p/a@s1': tag already exists on this dataset", Exists),
            // zfs destroy of a held snapshot
            ("cannot destroy 'p/a@s1': dataset is busy", Busy),
            // zfs destroy of a cloned snapshot, and -r of its filesystem
            ("cannot destroy 'p/a@s2': snapshot has dependent clones\nuse '-R' to destroy the following datasets:\np/c", Pinned),
            ("cannot destroy 'p/a': filesystem has dependent clones\nuse '-R' to destroy the following datasets:\np/c", Pinned),
            // zfs create, snapshot, clone onto a name taken
            ("cannot create 'p/a': dataset already exists", Exists),
            ("cannot create snapshot 'p/a@s3': dataset already exists", Exists),
            // zfs receive of a full stream onto an existing dataset
            ("cannot receive new filesystem stream: destination 'p/r' exists\nmust specify -F to overwrite it", Other("cannot receive new filesystem stream: destination 'p/r' exists\nmust specify -F to overwrite it".into())),
            // zfs get of properties zfs-fuse does not have (its usage text follows)
            ("bad property list: invalid property 'acltype'\nusage:\n\tget [-rHp] [-d max] [-o \"all\" | field[,...]] [-s source[,...]]", invalid("acltype")),
            ("bad property list: invalid property 'snapshots_changed'\nusage:", invalid("snapshots_changed")),
            ("bad property list: invalid property 'encryption'\nusage:", invalid("encryption")),
            ("cannot set property for 'p/a': invalid property 'nosuchprop'", invalid("nosuchprop")),
            // zfs receive -u of an increment onto a copy written since
            ("cannot receive incremental stream: destination p/r has been modified\nsince most recent snapshot", Modified),
            // any zfs command by a user who cannot reach the daemon's socket
            // zpool status -j, an option zfs-fuse's zpool does not have (its usage follows)
            ("invalid option 'j'\nusage:\n\tstatus [-vx] [pool] ...", InvalidOption),
            ("connect: Permission denied\ninternal error: failed to initialize ZFS library", PermissionDenied),
            // zfs unmount / destroy -r of a filesystem a process is in: not zfs's "busy"
            ("umount: /m/c: target is busy.\ncannot unmount '/m/c': umount failed: umount child process failed", Other("umount: /m/c: target is busy.\ncannot unmount '/m/c': umount failed: umount child process failed".into())),
        ] {
            assert_eq!(judged(stderr), want, "{stderr}");
        }
    }

    /// Printed by OpenZFS 2.4.4 (the VM of tests/openzfs.sh), with `LC_ALL=C`, for the failure
    /// named first.
    #[test]
    fn openzfs_messages() {
        for (stderr, want) in [
            // zfs list / get / destroy / destroy -r of a missing dataset
            ("cannot open 't/missing': dataset does not exist", NotFound),
            // zfs destroy of missing snapshots, one or a comma list
            ("could not find any snapshots to destroy; check snapshot names.", NotFound),
            // zfs release / hold of a missing snapshot
            ("cannot release hold from snapshot 't/a@missing': dataset does not exist", NotFound),
            ("cannot hold snapshot 't/a@missing': dataset does not exist", NotFound),
            // zfs release of a tag the snapshot does not have
            ("cannot release hold from snapshot 't/a@s1': no such tag on this dataset", NotFound),
            // zfs hold of a tag already there
            ("cannot hold snapshot 't/a@s1': tag already exists on this dataset", Exists),
            // zfs destroy of a held snapshot, alone or in a comma list
            ("cannot destroy snapshot t/a@s1: it's being held. Run 'zfs holds -r t/a@s1' to see holders.", Pinned),
            // zfs destroy of a cloned snapshot, and -r of its filesystem
            ("cannot destroy 't/a@s2': snapshot has dependent clones\nuse '-R' to destroy the following datasets:\nt/c", Pinned),
            ("cannot destroy 't/a': filesystem has dependent clones\nuse '-R' to destroy the following datasets:\nt/c", Pinned),
            // zfs create, snapshot, clone onto a name taken
            ("cannot create 't/a': dataset already exists", Exists),
            ("cannot create snapshot 't/a@s3': dataset already exists", Exists),
            // zfs unmount / destroy -r of a filesystem a process is in
            ("cannot unmount '/t/c': pool or dataset is busy", Busy),
            // zfs set of a property OpenZFS does not have
            ("cannot set property for 't/a': invalid property 'nosuchprop'", invalid("nosuchprop")),
            // zfs receive -u of an increment onto a copy written since
            ("cannot receive incremental stream: destination t/r has been modified\nsince most recent snapshot", Modified),
            // zfs receive under a missing parent
            ("cannot open 't/nope': dataset does not exist\ncannot receive new filesystem stream: unable to restore to destination", NotFound),
            // zfs receive of an increment with no copy to go on from
            ("cannot receive incremental stream: destination 't/r2' does not exist", Other("cannot receive incremental stream: destination 't/r2' does not exist".into())),
            // zfs send of a missing snapshot
            ("cannot open 't/a@missing': dataset does not exist", NotFound),
            // zfs receive of a decrypted increment onto a raw copy (its key is not there)
            ("cannot receive incremental stream: inherited key must be loaded", KeyNeeded),
            // zfs receive of a raw increment onto a copy received decrypted
            ("cannot receive incremental stream: cannot perform raw receive on top of existing unencrypted dataset", RawOntoPlain),
            // zfs destroy of a comma list whose first snapshot is held
            ("cannot destroy snapshot t/e@s1: it's being held. Run 'zfs holds -r t/e@s1' to see holders.", Pinned),
            // any zfs command by a user without delegation
            ("Permission denied the ZFS utilities must be run as root.", PermissionDenied),
        ] {
            assert_eq!(judged(stderr), want, "{stderr}");
        }
    }
}
