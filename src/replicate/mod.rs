//! Pure replication: what TARGET means and what one side's listing says; `plan` decides what
//! to send and hold, `stream` how an encrypted host travels.
//!
//! Snapshots are matched across the two sides by `guid`, which `zfs receive` keeps, so a
//! snapshot renamed or taken by hand with a zbk-like name is never mistaken for a copy.

mod plan;
pub mod stream;

pub use plan::{lag, offsite_stamps, plan, stale_holds, Lag, Plan, Send};

use crate::dataset::{HostDataset, HostsDataset, RootDataset};
use crate::expiry::Expiry;
use crate::inventory::host_of;
use crate::listing::{number, own, value, Listing};
use crate::names::{is_safe_component, HostName};
use crate::stamp::{PROP_EXPIRES, PROP_OFFSITE_EXPIRES, PROP_RETIRED};
use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::fmt;

/// The properties one side's listing asks for, in one `zfs get -r`.
pub const LISTING_PROPS: [&str; 8] = [
    "guid",
    "createtxg",
    "creation",
    "userrefs",
    "mountpoint",
    PROP_EXPIRES,
    PROP_OFFSITE_EXPIRES,
    PROP_RETIRED,
];

/// Longest TARGET dataset accepted: room for `/hosts/<host>@<snapshot>` within ZFS's 255.
const MAX_TARGET_DATASET: usize = 120;

/// Where replicas go: a dataset here, or one on a server reached over ssh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Local { dataset: RootDataset },
    Ssh { login: String, dataset: RootDataset },
}

impl Target {
    /// Parses `pool/dataset` or `[user@]server:pool/dataset`. The dataset name later travels
    /// to a remote shell, so it is held to the characters zbk itself uses.
    pub fn parse(text: &str) -> Result<Target> {
        let remote = text
            .split_once(':')
            .filter(|(login, _)| !login.contains('/'));
        let (login, dataset) = match remote {
            Some((login, dataset)) => (Some(login), dataset),
            None => (None, text),
        };
        let dataset = dataset.trim_end_matches('/');
        // A pool name begins with a letter: this also refuses `host::x` and `a:b:c` mistakes.
        if dataset.is_empty()
            || dataset.len() > MAX_TARGET_DATASET
            || !dataset.starts_with(|c: char| c.is_ascii_alphabetic())
            || dataset.split('/').any(|c| !is_safe_component(c))
        {
            bail!(
                "{text:?} is not POOL/DATASET or [user@]server:POOL/DATASET: the dataset must be a ZFS filesystem name such as tank/offsite (a letter first, then letters, digits, '_', '.', ':', '-', at most {MAX_TARGET_DATASET} characters)"
            );
        }
        let Some(login) = login else {
            return Ok(Target::Local {
                dataset: RootDataset::parse(dataset)?,
            });
        };
        let (user, server) = match login.split_once('@') {
            Some((user, server)) => (Some(user), server),
            None => (None, login),
        };
        let server_ok = !server.is_empty()
            && server.len() <= 253
            && !server.starts_with(['-', '.'])
            && server
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !server_ok {
            bail!("{text:?}: {server:?} is not a server name (letters, digits, '.', '-')");
        }
        if let Some(user) = user {
            let user_ok = !user.is_empty()
                && user.len() <= 32
                && !user.starts_with('-')
                && user
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !user_ok {
                bail!("{text:?}: {user:?} is not a user name");
            }
        }
        Ok(Target::Ssh {
            login: login.to_string(),
            dataset: RootDataset::parse(dataset)?,
        })
    }

    pub fn dataset(&self) -> &RootDataset {
        match self {
            Target::Local { dataset } | Target::Ssh { dataset, .. } => dataset,
        }
    }

    /// The parent of the replicas, made once with `mountpoint=none`.
    pub fn hosts_dataset(&self) -> HostsDataset {
        self.dataset().hosts()
    }

    pub fn host_dataset(&self, host: &HostName) -> HostDataset {
        self.dataset().host(host)
    }

    /// The hold tag that pins, on the source, the newest snapshot this target shares (the target
    /// holds its copy under `REPLICA_TAG`): one per
    /// target, so replicating to two places keeps both chains.
    pub fn hold_tag(&self) -> String {
        format!("zbk-replica:{self}")
    }
}

/// The hold tag on a target's newest copy: the base of the next incremental, which a reap on
/// the target must not take. A target has one source, so one tag serves.
pub const REPLICA_TAG: &str = "zbk-replica";

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Local { dataset } => f.write_str(dataset.as_str()),
            Target::Ssh { login, dataset } => write!(f, "{login}:{dataset}"),
        }
    }
}

/// Refuses an `--ssh-option` that ssh would not read as one `-o Key=Value`.
pub fn check_ssh_option(option: &str) -> Result<()> {
    let key = option.split_once('=').map(|(k, _)| k);
    match key {
        Some(k) if !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric()) => {}
        _ => bail!("{option:?} is not Key=Value, e.g. Port=2222"),
    }
    if option.chars().any(char::is_control) {
        bail!("{:?} contains a control character", option);
    }
    Ok(())
}

/// One snapshot as a side's listing shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Snap {
    pub name: String,
    pub guid: Option<u64>,
    pub createtxg: u64,
    pub created: Option<DateTime<Utc>>,
    /// `zbk:expires` set on the snapshot itself (local or received) and readable.
    pub expires: Option<Expiry>,
    pub offsite: Option<Expiry>,
    pub held: bool,
}

/// One host dataset on one side, its snapshots oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tree {
    pub dataset: String,
    pub retired: bool,
    pub mountpoint: Option<String>,
    pub snapshots: Vec<Snap>,
}

/// Parses `zfs get -H -p -r -o name,property,value,source LISTING_PROPS <hosts>` into the host
/// datasets directly under `hosts`, valid host names only.
pub fn parse_listing(output: &str, hosts: &str) -> BTreeMap<HostName, Tree> {
    let rows = Listing::parse(output, &LISTING_PROPS).names;
    let prefix = format!("{hosts}/");
    let mut out: BTreeMap<HostName, Tree> = BTreeMap::new();
    for (name, props) in &rows {
        let Some((host, snap)) = host_of(name, &prefix) else {
            continue;
        };
        let own = |p: &str| own(props, p);
        let number = |p: &str| number(props, p);
        match snap {
            None => {
                out.insert(
                    host,
                    Tree {
                        dataset: name.to_string(),
                        retired: own(PROP_RETIRED).is_some(),
                        mountpoint: value(props, "mountpoint").map(str::to_string),
                        snapshots: Vec::new(),
                    },
                );
            }
            Some(snap) => {
                let Some(tree) = out.get_mut(&host) else {
                    continue;
                };
                tree.snapshots.push(Snap {
                    name: snap.to_string(),
                    guid: number("guid"),
                    createtxg: number("createtxg").unwrap_or(0),
                    created: number("creation")
                        .and_then(|s| DateTime::from_timestamp(i64::try_from(s).ok()?, 0)),
                    expires: own(PROP_EXPIRES).and_then(|v| Expiry::parse(v).ok()),
                    offsite: own(PROP_OFFSITE_EXPIRES).and_then(|v| Expiry::parse(v).ok()),
                    held: number("userrefs").is_some_and(|n| n > 0),
                });
            }
        }
    }
    for tree in out.values_mut() {
        tree.snapshots
            .sort_by(|a, b| a.createtxg.cmp(&b.createtxg).then(a.name.cmp(&b.name)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_strictly() {
        assert_eq!(
            Target::parse("tank/offsite").unwrap(),
            Target::Local {
                dataset: RootDataset::parse("tank/offsite").unwrap()
            }
        );
        let t = Target::parse("root@b2.example.com:tank/offsite/").unwrap();
        assert_eq!(
            t,
            Target::Ssh {
                login: "root@b2.example.com".into(),
                dataset: RootDataset::parse("tank/offsite").unwrap()
            }
        );
        assert_eq!(t.to_string(), "root@b2.example.com:tank/offsite");
        assert_eq!(t.hosts_dataset().as_str(), "tank/offsite/hosts");
        assert_eq!(t.hold_tag(), "zbk-replica:root@b2.example.com:tank/offsite");
        assert!(Target::parse("b2:tank").is_ok());
        assert!(
            Target::parse("tank/a:b").is_ok(),
            "a colon after a slash is local"
        );
        for bad in [
            "",
            "/tank",
            "tank//x",
            "tank/x@snap",
            "b2:",
            ":tank",
            "-oProxyCommand=x:tank",
            "b2:tank; rm -rf /",
            "b2:tank/$(id)",
            "us er@b2:tank",
            "b2:-tank",
            "b 2:tank",
            "tank/../x",
            "garbage::x",
            "b2:1tank",
            "_tank",
        ] {
            let err = Target::parse(bad);
            assert!(err.is_err(), "{bad:?} accepted as {err:?}");
            assert!(!err.unwrap_err().to_string().contains('\n'));
        }
    }

    #[test]
    fn ssh_options_are_key_value() {
        assert!(check_ssh_option("Port=2222").is_ok());
        assert!(check_ssh_option("IdentityFile=/root/.ssh/offsite key").is_ok());
        for bad in ["-p", "Port", "=x", "Pro xy=1", "Port=2\n2"] {
            assert!(check_ssh_option(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_listing_becomes_trees_with_guids() {
        let out = "t/hosts\tguid\t1\t-\n\
                   t/hosts/a\tmountpoint\tnone\tlocal\n\
                   t/hosts/a\tzbk:retired\t-\t-\n\
                   t/hosts/a@s2\tguid\t12\t-\n\
                   t/hosts/a@s2\tcreatetxg\t20\t-\n\
                   t/hosts/a@s2\tuserrefs\t1\t-\n\
                   t/hosts/a@s2\tzbk:expires\t2026-12-01T00:00:00Z\treceived\n\
                   t/hosts/a@s1\tguid\t11\t-\n\
                   t/hosts/a@s1\tcreatetxg\t10\t-\n\
                   t/hosts/a@s1\tcreation\t1780272000\t-\n\
                   t/hosts/a@s1\tzbk:expires\t2026-12-01T00:00:00Z\tinherited from t/hosts\n\
                   t/hosts/a@s1\tzbk:offsite-expires\tnever\tlocal\n\
                   t/hosts/B\tguid\t3\t-\n\
                   garbage\n";
        let trees = parse_listing(out, "t/hosts");
        assert_eq!(trees.len(), 1);
        let a = &trees[&HostName::parse("a").unwrap()];
        assert_eq!(a.mountpoint.as_deref(), Some("none"));
        assert!(!a.retired);
        let names: Vec<&str> = a.snapshots.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["s1", "s2"]);
        assert_eq!(a.snapshots[0].guid, Some(11));
        assert_eq!(a.snapshots[0].expires, None, "inherited does not count");
        assert_eq!(a.snapshots[0].offsite, Some(Expiry::Never));
        assert!(a.snapshots[0].created.is_some());
        assert!(a.snapshots[1].held);
        assert!(matches!(a.snapshots[1].expires, Some(Expiry::At(_))));
    }
}
