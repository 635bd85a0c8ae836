//! The `zfs` command: the portable subset that OpenZFS 2.x and zfs-fuse share, the probe of
//! the `Flavour` that tells them apart, and the mount lock zfs-fuse needs. Its destroys are in
//! `zfs_destroy.rs`. Every call goes through `exec`.

use crate::crypt::{self, KeyState};
use crate::dataset::{HostDataset, HostsDataset, RestoreClone, RootDataset, Snapshot, ZfsName};
use crate::inventory::{self, Inventory};
use crate::listing::Listing;
use crate::record::{self, Glance};
use crate::run_facts::{self, Facts as RunFacts, Storable};
use crate::stamp::PROP_SNAPSHOTS_CHANGED;
use crate::sys::exec::{Cmd, Deadline};
use crate::sys::zfs_error::{attempt, succeeded_unless, Refused, ZfsError};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use crate::config::DEFAULT_ZFS_TIMEOUT as DEFAULT_TIMEOUT;

/// The lock file behind `Zfs::mount_lock`; the test harness takes the same one around
/// `zpool create`.
pub const MOUNT_LOCK: &str = "/run/lock/zbk-zfs-fuse-mount.lock";

use crate::flavour::Flavour;

/// A handle on the `zfs` binary.
pub struct Zfs {
    bin: PathBuf,
    flavour: OnceLock<Flavour>,
    /// `[zfs] timeout` in milliseconds: set once the global config is read, which lives on
    /// the pool itself, so the calls before it have the default.
    timeout_ms: AtomicU64,
}

impl Zfs {
    /// Finds `zfs` on PATH or in the sbin directories.
    pub fn find() -> Result<Zfs> {
        Ok(Zfs {
            bin: crate::sys::exec::find_program("zfs")?,
            flavour: OnceLock::new(),
            timeout_ms: AtomicU64::new(millis(DEFAULT_TIMEOUT)),
        })
    }

    /// Sets the deadline of every later `zfs` process (`[zfs] timeout`).
    pub fn set_timeout(&self, timeout: Duration) {
        self.timeout_ms.store(millis(timeout), Ordering::Relaxed);
    }

    /// The deadline of one `zfs` process, here or on a replication target.
    pub(in crate::sys) fn deadline(&self) -> Deadline {
        Deadline::zfs(Duration::from_millis(
            self.timeout_ms.load(Ordering::Relaxed),
        ))
    }

    /// A `zfs` command line with these arguments.
    pub(in crate::sys) fn cmd<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Cmd::new(&self.bin)
            .args(args)
            .deadline(Some(self.deadline()))
    }

    /// OpenZFS or legacy: `zfs version` exists only on OpenZFS.
    pub fn flavour(&self) -> Flavour {
        if let Some(known) = self.flavour_without_a_process() {
            return known;
        }
        *self
            .flavour
            .get_or_init(|| match self.cmd(["version"]).output() {
                Ok(out) if out.status.success() => Flavour::OpenZfs,
                _ => Flavour::Legacy,
            })
    }

    /// The flavour where it is known without starting a process: probed already, or legacy
    /// because there is no `/dev/zfs`. OpenZFS's `zfs` talks to its kernel module through that
    /// device and cannot work without it; zfs-fuse's talks to its daemon through a socket. On
    /// zfs-fuse every process costs a round trip to the daemon, and `zbk check` is run often.
    pub(in crate::sys) fn flavour_without_a_process(&self) -> Option<Flavour> {
        if let Some(known) = self.flavour.get() {
            return Some(*known);
        }
        if std::path::Path::new("/dev/zfs").exists() {
            return None;
        }
        Some(*self.flavour.get_or_init(|| Flavour::Legacy))
    }

    /// Serialises, machine-wide, the zfs calls that mount or unmount a filesystem (create,
    /// clone, mount, receive without -u, destroying a filesystem) on zfs-fuse: its daemon registers a new mount with two unlocked
    /// writes to a pipe, so two mounts at once can interleave them, and from then on every new
    /// mount hangs. OpenZFS needs no such lock. Hold the returned guard across the call.
    pub fn mount_lock(&self) -> Result<Option<std::fs::File>> {
        if self.flavour() == Flavour::OpenZfs {
            return Ok(None);
        }
        if let Some(dir) = std::path::Path::new(MOUNT_LOCK).parent() {
            fs_err::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(MOUNT_LOCK)
            .with_context(|| format!("cannot open {MOUNT_LOCK}"))?;
        file.lock()
            .with_context(|| format!("cannot lock {MOUNT_LOCK}"))?;
        Ok(Some(file))
    }

    /// Whether a dataset exists; other failures (no daemon, no module) are errors.
    pub fn exists(&self, dataset: &impl ZfsName) -> Result<bool> {
        let cmd = self.cmd(["list", "-H", "-o", "name", dataset.zfs_name()]);
        succeeded_unless(&cmd, ZfsError::NotFound)
    }

    /// The datasets directly under `parent`; none when it does not exist or cannot be listed.
    pub fn children(&self, parent: &impl ZfsName) -> Result<Vec<String>> {
        let parent = parent.zfs_name();
        let out = self
            .cmd(["list", "-H", "-o", "name", "-d", "1", parent])
            .output()?;
        let under = format!("{parent}/");
        Ok(out
            .stdout
            .lines()
            .filter(|l| l.starts_with(&under))
            .map(str::to_string)
            .collect())
    }

    /// One property's value and source, as `zfs get` prints them.
    pub fn get(&self, dataset: &impl ZfsName, prop: &str) -> Result<(String, String)> {
        let out = self.get_columns(dataset, &[prop], "value,source")?;
        let line = out.lines().next().unwrap_or_default();
        let (value, source) = line.split_once('\t').unwrap_or((line, "-"));
        Ok((value.to_string(), source.to_string()))
    }

    /// Several properties of one dataset in one `zfs get`, by name; a property zfs does not
    /// know fails the whole call, as it does in zfs.
    pub fn get_props(
        &self,
        dataset: &impl ZfsName,
        props: &[&str],
    ) -> Result<BTreeMap<String, String>> {
        Ok(self
            .get_columns(dataset, props, "property,value")?
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(p, v)| (p.to_string(), v.to_string()))
            .collect())
    }

    /// `zfs get -H -p` of `props` on one dataset, with the columns asked for.
    fn get_columns(&self, dataset: &impl ZfsName, props: &[&str], columns: &str) -> Result<String> {
        let cmd = self.get_cmd(dataset.zfs_name(), &[], columns, props);
        Ok(cmd.checked()?.stdout)
    }

    /// The native-encryption state of `dataset` (and with `children`, of the datasets right
    /// under it), in one `zfs get`. zfs-fuse has no encryption: nothing is asked, none returned.
    pub fn key_states(
        &self,
        dataset: &impl ZfsName,
        children: bool,
    ) -> Result<BTreeMap<String, KeyState>> {
        self.key_states_of(dataset.zfs_name(), children)
    }

    /// `key_states` of a name zfs itself gave (an encryption root). The call is the flavour
    /// probe too: a zfs that refuses the properties has no encryption.
    fn key_states_of(&self, dataset: &str, children: bool) -> Result<BTreeMap<String, KeyState>> {
        let depth: &[&str] = if children { &["-r", "-d", "1"] } else { &[] };
        let (out, read) = self.rows_with_newer(dataset, depth, &[], &crypt::KEY_PROPS)?;
        Ok(if read {
            crypt::parse_key_states(&out)
        } else {
            BTreeMap::new()
        })
    }

    /// `dataset`'s encryption, `None` when it is not encrypted (or zfs cannot encrypt). The key
    /// location is its encryption root's: below the root, zfs says `none`.
    pub fn key_state(&self, dataset: &impl ZfsName) -> Result<Option<KeyState>> {
        let dataset = dataset.zfs_name();
        let state = self
            .key_states_of(dataset, false)?
            .remove(dataset)
            .filter(KeyState::encrypted);
        self.with_root_location(dataset, state)
    }

    /// `state` of `dataset` with its encryption root's key location, which `load_hint` names.
    fn with_root_location(
        &self,
        dataset: &str,
        state: Option<KeyState>,
    ) -> Result<Option<KeyState>> {
        let Some(mut state) = state else {
            return Ok(None);
        };
        if state.root != dataset {
            if let Some(root) = self.key_states_of(&state.root, false)?.remove(&state.root) {
                state.location = root.location;
            }
        }
        Ok(Some(state))
    }

    /// What reading a host's snapshots needs to know of its dataset, in one `zfs get` that is
    /// the flavour probe as well: its key, when that is not loaded, and what it stores of
    /// rsync's `--acls` and `--xattrs`. zfs-fuse has neither encryption nor either store, and
    /// is asked nothing.
    pub fn read_facts(&self, dataset: &HostDataset) -> Result<(Option<KeyState>, Storable)> {
        let name = dataset.as_str();
        let props: Vec<&str> = crypt::KEY_PROPS
            .iter()
            .chain(run_facts::OPENZFS_PROPS)
            .copied()
            .collect();
        let (out, read) = self.rows_with_newer(name, &[], &[], &props)?;
        if !read {
            return Ok((None, Storable::judge(Flavour::Legacy, None, None)));
        }
        let listing = Listing::parse(&out, run_facts::OPENZFS_PROPS);
        let storable = Storable::listed(Flavour::OpenZfs, &listing, name);
        let locked = crypt::parse_key_states(&out)
            .remove(name)
            .filter(KeyState::locked);
        Ok((self.with_root_location(name, locked)?, storable))
    }

    /// How full the pool under `dataset` is, in percent of what the dataset can reach.
    pub fn capacity(&self, dataset: &RootDataset) -> Result<u8> {
        let props = self.get_props(dataset, &["used", "available"])?;
        let number = |prop: &str| {
            props
                .get(prop)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .with_context(|| {
                    format!("cannot read used and available of {dataset} from `zfs get`: {props:?}")
                })
        };
        Ok(run_facts::capacity(number("used")?, number("available")?))
    }

    /// What `zbk run` needs to know of the tree under `root` (the dataset given to `zbk
    /// init`), in one `zfs get`: the hosts, the pool's capacity, and on OpenZFS each host's
    /// `acltype` and `xattr`. Asking for `acltype` doubles as the flavour probe: only OpenZFS
    /// knows it, and zfs-fuse refuses the whole list, which is then asked again without it.
    pub fn run_facts(&self, root: &RootDataset) -> Result<RunFacts> {
        let root = root.as_str();
        // The listing reaches below a missing hosts dataset without a word: say it, as a
        // listing of the hosts dataset itself would.
        let checked = |facts: RunFacts| {
            if facts.has_hosts {
                Ok(facts)
            } else {
                bail!("cannot list the hosts: {root}/hosts does not exist: run `zbk init {root}`")
            }
        };
        let (out, openzfs) = self
            .rows_with_newer(
                root,
                &["-d", "2"],
                run_facts::PROPS,
                run_facts::OPENZFS_PROPS,
            )
            .context("cannot list the hosts")?;
        // Only OpenZFS knows acltype: a zfs that refused it is legacy.
        let flavour = if openzfs {
            Flavour::OpenZfs
        } else {
            *self.flavour.get_or_init(|| Flavour::Legacy)
        };
        checked(run_facts::parse(&out, root, flavour))
    }

    /// The file count stamped on a host's newest good snapshot (guard.max_delete), in one
    /// `zfs get` of the host's snapshots.
    pub fn last_good_files(&self, dataset: &HostDataset) -> Result<Option<u64>> {
        let out = self.rows(dataset.as_str(), &["-d", "1"], run_facts::FILES_PROPS)?;
        Ok(run_facts::last_good_files(&out, dataset))
    }

    /// Sets one property (zfs-fuse takes one per call).
    pub fn set(&self, dataset: &impl ZfsName, prop: &str, value: &str) -> Result<()> {
        self.cmd(["set", &format!("{prop}={value}"), dataset.zfs_name()])
            .checked()?;
        Ok(())
    }

    /// Sets one property on a snapshot: its stamp, a pin, a verification.
    pub fn stamp(&self, snapshot: &Snapshot, prop: &str, value: &str) -> Result<()> {
        self.set(snapshot, prop, value)
    }

    /// Creates a filesystem with properties set at creation.
    pub fn create(&self, dataset: &impl ZfsName, props: &[(&str, &str)]) -> Result<()> {
        let mut args = vec!["create".to_string()];
        for (k, v) in props {
            args.push("-o".into());
            args.push(format!("{k}={v}"));
        }
        args.push(dataset.zfs_name().to_string());
        let made = {
            let _serial = self.mount_lock()?;
            attempt(&self.cmd(&args))?
        };
        match made {
            Ok(_) => Ok(()),
            // OpenZFS can create a dataset and then fail to mount it; the caller checks the
            // mount.
            Err(Refused {
                why: ZfsError::CreatedUnmounted,
                ..
            }) if self.exists(dataset)? => Ok(()),
            Err(refused) => Err(refused.into()),
        }
    }

    /// The command that snapshots `dataset@name` with its properties in the same call, so a
    /// snapshot never exists without its stamp.
    fn snapshot_cmd(&self, snapshot: &Snapshot, props: &[(&str, String)]) -> Cmd {
        let mut args = vec!["snapshot".to_string()];
        for (k, v) in props {
            args.push("-o".into());
            args.push(format!("{k}={v}"));
        }
        args.push(snapshot.to_string());
        self.cmd(args)
    }

    /// That command's line, as a dry run prints it.
    pub fn snapshot_line(&self, snapshot: &Snapshot, props: &[(&str, String)]) -> String {
        self.snapshot_cmd(snapshot, props).to_string()
    }

    /// Takes the snapshot; `Ok(false)` when the name is already taken.
    pub fn snapshot(&self, snapshot: &Snapshot, props: &[(&str, String)]) -> Result<bool> {
        succeeded_unless(&self.snapshot_cmd(snapshot, props), ZfsError::Exists)
    }

    /// Clones a snapshot read-only for a restore to read, mounted at `mountpoint`.
    pub fn clone_readonly(
        &self,
        snapshot: &Snapshot,
        clone: &RestoreClone,
        mountpoint: &Path,
    ) -> Result<()> {
        let mut mp = OsString::from("mountpoint=");
        mp.push(mountpoint);
        let _serial = self.mount_lock()?;
        self.cmd([
            "clone".as_ref(),
            "-o".as_ref(),
            "readonly=on".as_ref(),
            "-o".as_ref(),
            mp.as_os_str(),
            snapshot.as_str().as_ref(),
            clone.name().as_ref(),
        ])
        .checked()?;
        Ok(())
    }

    /// `zfs diff -FHt FROM TO` (OpenZFS only): one line per changed path, escaped, with its
    /// type and change time; TO is a later snapshot of the same filesystem or the filesystem.
    pub fn diff(&self, from: &Snapshot, to: &impl ZfsName) -> Result<String> {
        Ok(self
            .cmd(["diff", "-FHt", from.as_str(), to.zfs_name()])
            .checked()?
            .stdout)
    }

    /// Lists the hosts tree with every property zbk needs: one process, whatever the number of
    /// hosts and snapshots.
    pub fn inventory(&self, hosts_dataset: &HostsDataset) -> Result<Inventory> {
        let hosts_dataset = hosts_dataset.as_str();
        self.listing(hosts_dataset, &["-r"], inventory::PROPS, hosts_dataset)
            .context("cannot list the hosts tree")
    }

    /// The same listing for one host dataset and its snapshots.
    pub fn host_inventory(
        &self,
        hosts_dataset: &HostsDataset,
        host_dataset: &HostDataset,
    ) -> Result<Inventory> {
        let (hosts_dataset, host_dataset) = (hosts_dataset.as_str(), host_dataset.as_str());
        self.listing(host_dataset, &["-d", "1"], inventory::PROPS, hosts_dataset)
    }

    /// The host datasets at a glance, in two `zfs get`s whatever the number of snapshots: the
    /// host datasets with their `zbk:record` (and `snapshots_changed` on OpenZFS), then the
    /// snapshots those records name, which do not all have to exist.
    pub fn glance(&self, hosts_dataset: &HostsDataset) -> Result<Glance> {
        let hosts_dataset = hosts_dataset.as_str();
        // snapshots_changed: OpenZFS 2.2 and later (zfs-fuse and older OpenZFS refuse it).
        let (hosts, _) = self
            .rows_with_newer(
                hosts_dataset,
                &["-d", "1"],
                record::HOST_PROPS,
                &[PROP_SNAPSHOTS_CHANGED],
            )
            .context("cannot list the hosts tree")?;
        let claims = record::claims(&hosts, hosts_dataset);
        let named: Vec<String> = claims.values().flat_map(record::Claim::named).collect();
        let mut text = hosts;
        if !named.is_empty() {
            let mut args = vec!["get", "-H", "-p", "-o", "name,property,value,source"];
            let props = record::confirming(&claims).join(",");
            args.push(&props);
            args.extend(named.iter().map(String::as_str));
            // A named snapshot that is gone is an error for zfs and a stale record for zbk:
            // the rows of those that exist are all that counts.
            text.push_str(&self.cmd(args).output()?.stdout);
        }
        let mut inv = inventory::parse(&text, hosts_dataset);
        record::vouch(&mut inv, &claims);
        Ok(Glance { inv, claims })
    }

    /// A host's full listing and its `snapshots_changed` (OpenZFS), read together so that the
    /// record written from them describes one moment.
    pub fn host_for_record(
        &self,
        hosts_dataset: &HostsDataset,
        host_dataset: &HostDataset,
    ) -> Result<(Inventory, Option<u64>)> {
        let (hosts_dataset, host_dataset) = (hosts_dataset.as_str(), host_dataset.as_str());
        let mut props: Vec<&str> = inventory::PROPS.to_vec();
        if self.flavour() == Flavour::OpenZfs {
            props.push(PROP_SNAPSHOTS_CHANGED);
        }
        let out = self.rows(host_dataset, &["-d", "1"], &props)?;
        let changed = record::changed(&out, host_dataset);
        Ok((inventory::parse(&out, hosts_dataset), changed))
    }

    /// Removes a property set on `dataset`, so that it inherits it again (or has none).
    pub fn inherit(&self, dataset: &impl ZfsName, prop: &str) -> Result<()> {
        self.cmd(["inherit", prop, dataset.zfs_name()]).checked()?;
        Ok(())
    }

    /// One `zfs get` of `props` under `top`, parsed against the hosts dataset.
    fn listing(
        &self,
        top: &str,
        depth: &[&str],
        props: &[&str],
        hosts_dataset: &str,
    ) -> Result<Inventory> {
        let out = self.rows(top, depth, props)?;
        Ok(inventory::parse(&out, hosts_dataset))
    }

    /// The rows of one `zfs get -H -p -o name,property,value,source` of `props` under `top`.
    fn rows(&self, top: &str, depth: &[&str], props: &[&str]) -> Result<String> {
        Ok(self.rows_cmd(top, depth, props).checked()?.stdout)
    }

    fn rows_cmd(&self, top: &str, depth: &[&str], props: &[&str]) -> Cmd {
        self.get_cmd(top, depth, "name,property,value,source", props)
    }

    /// `zfs get -H -p` of `props` on `top` (and below it, as `depth` says), with `columns`.
    fn get_cmd(&self, top: &str, depth: &[&str], columns: &str, props: &[&str]) -> Cmd {
        let props = props.join(",");
        let mut args = vec!["get", "-H", "-p"];
        args.extend_from_slice(depth);
        args.extend(["-o", columns, &props, top]);
        self.cmd(args)
    }

    /// The rows of `props` and `newer` (properties only OpenZFS, or a recent one, knows) under
    /// `top`, or of `props` alone where this zfs refuses one of `newer` (none when `props` is
    /// empty); and whether `newer` was read. That answer is the flavour probe too, one process
    /// fewer on OpenZFS than a `zfs version` first; a zfs known to be legacy is asked without
    /// `newer` at once.
    fn rows_with_newer(
        &self,
        top: &str,
        depth: &[&str],
        props: &[&str],
        newer: &[&str],
    ) -> Result<(String, bool)> {
        if self.flavour_without_a_process() != Some(Flavour::Legacy) {
            let all: Vec<&str> = props.iter().chain(newer).copied().collect();
            match attempt(&self.rows_cmd(top, depth, &all))? {
                Ok(out) => {
                    let _ = self.flavour.set(Flavour::OpenZfs);
                    return Ok((out.stdout, true));
                }
                Err(Refused {
                    why: ZfsError::InvalidProperty(prop),
                    ..
                }) if newer.contains(&prop.as_str()) => {}
                Err(refused) => return Err(refused.into()),
            }
        }
        if props.is_empty() {
            return Ok((String::new(), false));
        }
        Ok((self.rows(top, depth, props)?, false))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
impl Zfs {
    /// A `zfs` that must never run: a refusal has to come before any spawn, so the error is
    /// the refusal and not a failure to start this program.
    pub(super) fn must_not_run() -> Zfs {
        let zfs = Zfs {
            bin: PathBuf::from("/nonexistent/zfs-must-not-run"),
            flavour: OnceLock::new(),
            timeout_ms: AtomicU64::new(millis(DEFAULT_TIMEOUT)),
        };
        zfs.flavour.set(Flavour::OpenZfs).unwrap();
        zfs
    }
}
