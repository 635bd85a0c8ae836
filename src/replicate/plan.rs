//! Which snapshots to send for one host, which snapshot both sides share, which holds to move,
//! what counts as a target changed by hand, the offsite expiry to stamp, and how far behind a
//! copy is: pure decisions over the two sides' listings.

use super::{Snap, Tree};
use crate::expiry::{Expiry, Retention};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::fmt;

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
