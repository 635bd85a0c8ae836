//! Pure replication planning: what TARGET means, what one side's listing says, which snapshots
//! to send, which snapshot both sides share, which holds to move, what counts as a target
//! changed by hand, the offsite expiry to stamp, and how far behind a copy is.
//!
//! Snapshots are matched across the two sides by `guid`, which `zfs receive` keeps, so a
//! snapshot renamed or taken by hand with a zbk-like name is never mistaken for a copy.

pub mod stream;

use crate::expiry::{Expiry, Retention};
use crate::inventory::{host_of, own, PROP_EXPIRES, PROP_OFFSITE_EXPIRES, PROP_RETIRED};
use crate::names::{is_safe_component, HostName};
use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
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
    Local { dataset: String },
    Ssh { login: String, dataset: String },
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
                dataset: dataset.to_string(),
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
            dataset: dataset.to_string(),
        })
    }

    pub fn dataset(&self) -> &str {
        match self {
            Target::Local { dataset } | Target::Ssh { dataset, .. } => dataset,
        }
    }

    /// The parent of the replicas, made once with `mountpoint=none`.
    pub fn hosts_dataset(&self) -> String {
        crate::layout::hosts_dataset(self.dataset())
    }

    pub fn host_dataset(&self, host: &HostName) -> String {
        crate::layout::host_dataset(self.dataset(), host)
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
            Target::Local { dataset } => f.write_str(dataset),
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
    let mut rows: BTreeMap<&str, HashMap<&str, (&str, &str)>> = BTreeMap::new();
    for line in output.lines() {
        let mut fields = line.splitn(4, '\t');
        let (Some(name), Some(prop), Some(rest)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let source = fields.next().unwrap_or("-");
        rows.entry(name).or_default().insert(prop, (rest, source));
    }
    let prefix = format!("{hosts}/");
    let mut out: BTreeMap<HostName, Tree> = BTreeMap::new();
    for (name, props) in &rows {
        let Some((host, snap)) = host_of(name, &prefix) else {
            continue;
        };
        let own = |p: &str| own(props, p);
        let number = |p: &str| props.get(p).and_then(|(v, _)| v.parse::<u64>().ok());
        match snap {
            None => {
                out.insert(
                    host,
                    Tree {
                        dataset: name.to_string(),
                        retired: own(PROP_RETIRED).is_some(),
                        mountpoint: props.get("mountpoint").map(|(v, _)| v.to_string()),
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

/// One `zfs send | zfs receive`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Send {
    /// A whole snapshot, into a dataset the target does not have yet.
    Full { snapshot: String },
    /// Every snapshot after `from` up to and including `to` (`zfs send -I`).
    Incremental { from: String, to: String },
}

/// What replicating one host takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The newest snapshot both sides share before this run.
    pub common: Option<String>,
    pub sends: Vec<Send>,
    /// The newest snapshot both sides will share after it: the one to hold.
    pub newest: Option<String>,
    /// How many snapshots the sends carry.
    pub count: usize,
}

/// Why a host is not replicated; each needs a person, so none is acted on automatically.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The target has snapshots the source never sent, newer than the common one: someone
    /// took them there, and a forced receive would destroy them.
    Modified {
        target: String,
        common: String,
        foreign: Vec<String>,
    },
    /// The target has the host but no snapshot in common: the chain is broken.
    Diverged { target: String },
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Modified {
                target,
                common,
                foreign,
            } => write!(
                f,
                "{target} was modified by hand: it has snapshots newer than {common}, the newest it shares with the source, that the source never sent ({}); zbk will not roll them back: keep what you need, then `zfs rollback -r {target}@{common}`",
                foreign.join(", ")
            ),
            Refused::Diverged { target } => write!(
                f,
                "{target} shares no snapshot with the source, so no incremental stream fits it; move or destroy it (`zfs destroy -r {target}`) and the next replicate sends the host in full"
            ),
        }
    }
}

/// Decides what to send for one host. The first copy carries the whole history: a full
/// stream of the oldest snapshot, then every later one incrementally, failed runs included
/// (they expire on the target as on the source).
pub fn plan(source: &Tree, target: Option<&Tree>) -> Result<Plan, Refused> {
    let newest = source.snapshots.last().map(|s| s.name.clone());
    let Some(target) = target else {
        let mut sends = Vec::new();
        if let (Some(oldest), Some(newest)) = (source.snapshots.first(), &newest) {
            sends.push(Send::Full {
                snapshot: oldest.name.clone(),
            });
            if oldest.name != *newest {
                sends.push(Send::Incremental {
                    from: oldest.name.clone(),
                    to: newest.clone(),
                });
            }
        }
        return Ok(Plan {
            common: None,
            sends,
            newest,
            count: source.snapshots.len(),
        });
    };
    let on_target: HashMap<u64, &Snap> = target
        .snapshots
        .iter()
        .filter_map(|s| Some((s.guid?, s)))
        .collect();
    let common = source
        .snapshots
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, s)| Some((i, s, *on_target.get(&s.guid?)?)));
    let Some((index, common, there)) = common else {
        if source.snapshots.is_empty() {
            return Ok(Plan {
                common: None,
                sends: Vec::new(),
                newest: None,
                count: 0,
            });
        }
        return Err(Refused::Diverged {
            target: target.dataset.clone(),
        });
    };
    let foreign: Vec<String> = target
        .snapshots
        .iter()
        .filter(|s| s.createtxg > there.createtxg)
        .map(|s| s.name.clone())
        .collect();
    if !foreign.is_empty() {
        return Err(Refused::Modified {
            target: target.dataset.clone(),
            common: common.name.clone(),
            foreign,
        });
    }
    let later = source.snapshots.len() - index - 1;
    let sends = match &newest {
        Some(to) if later > 0 => vec![Send::Incremental {
            from: common.name.clone(),
            to: to.clone(),
        }],
        _ => Vec::new(),
    };
    Ok(Plan {
        common: Some(common.name.clone()),
        sends,
        newest,
        count: later,
    })
}

/// The source snapshots whose hold for this target may go: every held one but `keep`.
/// Snapshots held by someone else are among them; releasing a tag they lack is harmless.
pub fn stale_holds<'a>(source: &'a Tree, keep: Option<&str>) -> Vec<&'a str> {
    source
        .snapshots
        .iter()
        .filter(|s| s.held && Some(s.name.as_str()) != keep)
        .map(|s| s.name.as_str())
        .collect()
}

/// The offsite expiry of a copy: its received expiry, or `minimum` after its creation if
/// that is later.
pub fn offsite_expiry(received: Expiry, created: DateTime<Utc>, minimum: Retention) -> Expiry {
    received.max(minimum.expiry_from(created))
}

/// The `zbk:offsite-expires` stamps a replica needs: only where the minimum keeps a snapshot
/// longer than it is kept already, so a second run stamps nothing, and a snapshot without a
/// readable received expiry (kept anyway) gets none.
pub fn offsite_stamps(target: &Tree, minimum: Retention) -> Vec<(&str, Expiry)> {
    target
        .snapshots
        .iter()
        .filter_map(|s| {
            let received = s.expires?;
            let want = offsite_expiry(received, s.created?, minimum);
            let kept = received.max(s.offsite.unwrap_or(received));
            (want > kept).then_some((s.name.as_str(), want))
        })
        .collect()
}

/// How far one host's copy lags behind the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lag {
    /// The newest snapshot both sides share, and when it was taken.
    pub common: Option<(String, Option<DateTime<Utc>>)>,
    /// Source snapshots newer than the common one (all of them when there is none).
    pub behind: usize,
}

impl Lag {
    /// How old the newest copied state is, as of `now`; `None` when nothing is copied.
    // For `zbk status`, whose staleness thresholds compare durations.
    #[allow(dead_code)]
    pub fn age(&self, now: DateTime<Utc>) -> Option<chrono::Duration> {
        let (_, created) = self.common.as_ref()?;
        Some(now - (*created)?)
    }

    /// "common 2026-11-27T013005Z (3h ago), 2 snapshots behind" or "no copy yet, 5 behind".
    pub fn describe(&self, now: DateTime<Utc>) -> String {
        let behind = match self.behind {
            0 => "up to date".to_string(),
            1 => "1 snapshot behind".to_string(),
            n => format!("{n} snapshots behind"),
        };
        match &self.common {
            None => format!("no copy yet, {behind}"),
            Some((name, Some(t))) => format!(
                "common {name} ({}), {behind}",
                crate::expiry::relative(*t, now)
            ),
            Some((name, None)) => format!("common {name}, {behind}"),
        }
    }
}

/// The replication lag of one host from the two sides' listings; `zbk status` can call it.
pub fn lag(source: &Tree, target: Option<&Tree>) -> Lag {
    let guids: std::collections::HashSet<u64> = target
        .map(|t| t.snapshots.iter().filter_map(|s| s.guid).collect())
        .unwrap_or_default();
    let found = source
        .snapshots
        .iter()
        .enumerate()
        .rev()
        .find(|(_, s)| s.guid.is_some_and(|g| guids.contains(&g)));
    match found {
        Some((i, s)) => Lag {
            common: Some((s.name.clone(), s.created)),
            behind: source.snapshots.len() - i - 1,
        },
        None => Lag {
            common: None,
            behind: source.snapshots.len(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expiry::parse_time;

    fn snap(name: &str, guid: u64, txg: u64) -> Snap {
        Snap {
            name: name.into(),
            guid: Some(guid),
            createtxg: txg,
            created: Some(parse_time("2026-06-01T00:00:00Z").unwrap()),
            expires: None,
            offsite: None,
            held: false,
        }
    }

    fn tree(dataset: &str, snapshots: Vec<Snap>) -> Tree {
        Tree {
            dataset: dataset.into(),
            snapshots,
            ..Tree::default()
        }
    }

    fn source() -> Tree {
        tree(
            "t/hosts/a",
            vec![snap("s1", 11, 1), snap("s2", 12, 2), snap("s3", 13, 3)],
        )
    }

    #[test]
    fn targets_parse_strictly() {
        assert_eq!(
            Target::parse("tank/offsite").unwrap(),
            Target::Local {
                dataset: "tank/offsite".into()
            }
        );
        let t = Target::parse("root@b2.example.com:tank/offsite/").unwrap();
        assert_eq!(
            t,
            Target::Ssh {
                login: "root@b2.example.com".into(),
                dataset: "tank/offsite".into()
            }
        );
        assert_eq!(t.to_string(), "root@b2.example.com:tank/offsite");
        assert_eq!(t.hosts_dataset(), "tank/offsite/hosts");
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

    #[test]
    fn the_first_copy_carries_the_whole_history() {
        let p = plan(&source(), None).unwrap();
        assert_eq!(
            p.sends,
            [
                Send::Full {
                    snapshot: "s1".into()
                },
                Send::Incremental {
                    from: "s1".into(),
                    to: "s3".into()
                }
            ]
        );
        assert_eq!(
            (p.common, p.newest.as_deref(), p.count),
            (None, Some("s3"), 3)
        );
        let one = tree("t/hosts/a", vec![snap("s1", 11, 1)]);
        assert_eq!(plan(&one, None).unwrap().sends.len(), 1);
        let none = plan(&tree("t/hosts/a", vec![]), None).unwrap();
        assert!(none.sends.is_empty() && none.newest.is_none());
    }

    #[test]
    fn later_copies_go_on_from_the_newest_common_snapshot() {
        // The target reaped s1 by its own schedule; s2 is the newest it shares.
        let target = tree("o/hosts/a", vec![snap("s2", 12, 7)]);
        let p = plan(&source(), Some(&target)).unwrap();
        assert_eq!(p.common.as_deref(), Some("s2"));
        assert_eq!(
            p.sends,
            [Send::Incremental {
                from: "s2".into(),
                to: "s3".into()
            }]
        );
        assert_eq!(p.count, 1);
        let done = tree("o/hosts/a", vec![snap("s1", 11, 5), snap("s3", 13, 9)]);
        let p = plan(&source(), Some(&done)).unwrap();
        assert!(p.sends.is_empty());
        assert_eq!(p.common.as_deref(), Some("s3"));
    }

    #[test]
    fn names_alone_do_not_make_a_common_snapshot() {
        let target = tree("o/hosts/a", vec![snap("s3", 99, 7)]);
        assert_eq!(
            plan(&source(), Some(&target)),
            Err(Refused::Diverged {
                target: "o/hosts/a".into()
            })
        );
    }

    #[test]
    fn a_snapshot_taken_on_the_target_is_reported_not_rolled_back() {
        let target = tree("o/hosts/a", vec![snap("s2", 12, 7), snap("byhand", 77, 8)]);
        let err = plan(&source(), Some(&target)).unwrap_err();
        assert_eq!(
            err,
            Refused::Modified {
                target: "o/hosts/a".into(),
                common: "s2".into(),
                foreign: vec!["byhand".into()]
            }
        );
        let text = err.to_string();
        assert!(
            text.contains("modified by hand") && text.contains("byhand"),
            "{text}"
        );
        // A foreign snapshot older than the common one is history, not a change.
        let target = tree("o/hosts/a", vec![snap("old", 77, 3), snap("s2", 12, 7)]);
        assert!(plan(&source(), Some(&target)).is_ok());
    }

    #[test]
    fn only_the_new_common_snapshot_stays_held() {
        let mut src = source();
        src.snapshots[0].held = true;
        src.snapshots[2].held = true;
        assert_eq!(stale_holds(&src, Some("s3")), ["s1"]);
        assert_eq!(stale_holds(&src, None), ["s1", "s3"]);
    }

    #[test]
    fn offsite_keeps_the_later_of_the_two() {
        let created = parse_time("2026-06-01T00:00:00Z").unwrap();
        let month = Retention::parse("30days").unwrap();
        let soon = Expiry::parse("2026-06-08T00:00:00Z").unwrap();
        let late = Expiry::parse("2027-06-01T00:00:00Z").unwrap();
        assert_eq!(
            offsite_expiry(soon, created, month).to_string(),
            "2026-07-01T00:00:00Z"
        );
        assert_eq!(offsite_expiry(late, created, month), late);
        assert_eq!(offsite_expiry(Expiry::Never, created, month), Expiry::Never);
        assert_eq!(
            offsite_expiry(soon, created, Retention::Never),
            Expiry::Never
        );
    }

    #[test]
    fn offsite_stamps_only_what_it_lengthens_and_only_once() {
        let month = Retention::parse("30days").unwrap();
        let mut short = snap("short", 1, 1);
        short.expires = Some(Expiry::parse("2026-06-08T00:00:00Z").unwrap());
        let mut long = snap("long", 2, 2);
        long.expires = Some(Expiry::parse("2027-06-01T00:00:00Z").unwrap());
        let unstamped = snap("unstamped", 3, 3);
        let mut done = short.clone();
        done.name = "done".into();
        done.offsite = Some(Expiry::parse("2026-07-01T00:00:00Z").unwrap());
        let t = tree("o/hosts/a", vec![short, long, unstamped, done]);
        let stamps = offsite_stamps(&t, month);
        assert_eq!(stamps.len(), 1);
        assert_eq!(stamps[0].0, "short");
        assert_eq!(stamps[0].1.to_string(), "2026-07-01T00:00:00Z");
    }

    #[test]
    fn lag_counts_what_the_copy_lacks() {
        let now = parse_time("2026-06-01T03:00:00Z").unwrap();
        let none = lag(&source(), None);
        assert_eq!((none.common.is_none(), none.behind), (true, 3));
        assert_eq!(none.age(now), None);
        assert_eq!(none.describe(now), "no copy yet, 3 snapshots behind");
        let target = tree("o/hosts/a", vec![snap("s2", 12, 7)]);
        let l = lag(&source(), Some(&target));
        assert_eq!(l.behind, 1);
        assert_eq!(l.age(now), Some(chrono::Duration::hours(3)));
        assert_eq!(l.describe(now), "common s2 (3h ago), 1 snapshot behind");
    }
}
