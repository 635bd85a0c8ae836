//! Pure restamping: the expiry a zbk snapshot would get today from its run time and tier, so
//! that a change of the tier table can be carried over to the snapshots already taken.

use crate::config::{Settings, FAILED_TIER};
use crate::expiry::{Expiry, Retention};
use crate::inventory::Snapshot;
use crate::names::snapshot_time;
use crate::stamp::{self, Stamp, Status};

/// What restamping does to one snapshot.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Its stamp differs from what the tier table says now.
    Change { from: Stamp, to: Expiry },
    /// Already stamped as the table says.
    Same,
    /// Left alone, and why; `None` for a snapshot that is not zbk's and needs no word.
    Skip(Option<String>),
}

/// Plans one snapshot against a host's settings. The base time is the run's start, which zbk
/// writes into the snapshot's name and stamps from, else the creation time. A failed run is
/// stamped with the failed tier; a snapshot stamped with several tiers (`default,monthly`)
/// gets the longest of them.
pub fn plan(snap: &Snapshot, settings: &Settings) -> Plan {
    if !snap.is_zbk() {
        return Plan::Skip(None);
    }
    if let Some(at) = &snap.pinned {
        return Plan::Skip(Some(format!("pinned by zbk keep at {at}")));
    }
    let Some(base) = snapshot_time(&snap.name).or(snap.created) else {
        return Plan::Skip(Some("no creation time".into()));
    };
    let tiers: Vec<&str> = if snap.status == Some(Status::Failed) {
        vec![FAILED_TIER]
    } else {
        stamp::tiers(snap.tier.as_deref().unwrap_or_default())
    };
    let retentions: Vec<Retention> = match tiers.iter().map(|t| settings.tier(t)).collect() {
        Ok(r) => r,
        Err(e) => return Plan::Skip(Some(format!("{e}; left as it is"))),
    };
    let Some(to) = stamp::longest(&retentions, base) else {
        return Plan::Skip(Some("no zbk:tier of its own".into()));
    };
    if snap.stamp == Stamp::Valid(to) {
        Plan::Same
    } else {
        Plan::Change {
            from: snap.stamp.clone(),
            to,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(name: &str, tier: &str, status: Status, expires: &str) -> Snapshot {
        Snapshot {
            stamp: Stamp::Valid(Expiry::parse(expires).unwrap()),
            tier: Some(tier.into()),
            status: Some(status),
            ..Snapshot::sample(name)
        }
    }

    fn settings(tiers: &[(&str, &str)]) -> Settings {
        let mut s = Settings::default();
        for (name, d) in tiers {
            s.tiers
                .insert(name.to_string(), Retention::parse(d).unwrap());
        }
        s
    }

    fn to(p: Plan) -> String {
        match p {
            Plan::Change { to, .. } => to.to_string(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn a_longer_tier_moves_the_expiry_from_the_run_time() {
        let s = snap(
            "2026-11-27T013005Z",
            "weekly",
            Status::Ok,
            "2027-01-01T01:30:05Z",
        );
        assert_eq!(
            to(plan(&s, &settings(&[("weekly", "6weeks")]))),
            "2027-01-08T01:30:05Z"
        );
        assert_eq!(plan(&s, &settings(&[("weekly", "5weeks")])), Plan::Same);
    }

    #[test]
    fn failed_runs_keep_the_failed_tier_and_numbered_names_parse() {
        let s = snap(
            "failed-2026-11-27T013005Z-1",
            "failed",
            Status::Failed,
            "2026-11-29T01:30:05Z",
        );
        assert_eq!(
            to(plan(&s, &settings(&[("failed", "3days")]))),
            "2026-11-30T01:30:05Z"
        );
        let mut odd = s.clone();
        odd.tier = Some("monthly".into());
        assert_eq!(
            to(plan(&odd, &settings(&[("failed", "3days")]))),
            "2026-11-30T01:30:05Z"
        );
    }

    #[test]
    fn several_tiers_take_the_longest_and_never_beats_all() {
        let s = snap(
            "2026-11-27T013005Z",
            "default,monthly",
            Status::Ok,
            "2026-12-04T01:30:05Z",
        );
        let p = plan(&s, &settings(&[("monthly", "60days")]));
        assert_eq!(to(p), "2027-01-26T01:30:05Z");
        let p = plan(&s, &settings(&[("default", "never")]));
        assert_eq!(to(p), "never");
    }

    #[test]
    fn pinned_foreign_and_unknown_tiers_are_left_alone() {
        let mut pinned = snap(
            "2026-11-27T013005Z",
            "default",
            Status::Ok,
            "2030-01-01T00:00:00Z",
        );
        pinned.pinned = Some("2026-11-28T00:00:00Z".into());
        assert!(
            matches!(plan(&pinned, &Settings::default()), Plan::Skip(Some(w)) if w.contains("pinned"))
        );
        let mut foreign = snap("manual", "x", Status::Ok, "2030-01-01T00:00:00Z");
        foreign.tier = None;
        foreign.status = None;
        assert_eq!(plan(&foreign, &Settings::default()), Plan::Skip(None));
        let gone = snap(
            "2026-11-27T013005Z",
            "hourly",
            Status::Ok,
            "2030-01-01T00:00:00Z",
        );
        assert!(
            matches!(plan(&gone, &Settings::default()), Plan::Skip(Some(w)) if w.contains("unknown tier \"hourly\""))
        );
    }

    #[test]
    fn a_foreign_name_falls_back_to_the_creation_time() {
        let mut s = snap("renamed", "default", Status::Ok, "2030-01-01T00:00:00Z");
        s.created = Some(crate::expiry::parse_time("2026-11-27T00:00:00Z").unwrap());
        assert_eq!(to(plan(&s, &Settings::default())), "2026-12-04T00:00:00Z");
    }
}
