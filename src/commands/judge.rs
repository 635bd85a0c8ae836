//! One host judged as `zbk check` judges it, with its own config's thresholds: `check` prints
//! it as the plugin's line, `status --json` (and so `zbk report`) as the host's state.

use crate::config::{CheckSettings, Global};
use crate::ctx::Ctx;
use crate::health::{self, Judged, State, Summary};
use std::time::Duration;

/// Judges one host as `zbk check` does, with its own config's thresholds unless `warn` or
/// `crit` override them; a host whose config cannot be read is UNKNOWN, with the reason.
pub fn judge_host(
    ctx: &Ctx,
    global: &Global,
    summary: &Summary,
    warn: Option<Duration>,
    crit: Option<Duration>,
) -> (Judged, CheckSettings) {
    let host = summary.host;
    // A retired host is judged on nothing its config says, so a broken one cannot matter.
    let configured = match host.retired {
        Some(_) => Ok(global.settings.check),
        None => global
            .load_host(&ctx.layout.host_config(&host.name))
            .map(|c| c.settings.check),
    };
    let judged = configured.map(|c| {
        let limits = CheckSettings {
            warn: warn.unwrap_or(c.warn),
            crit: crit.unwrap_or(c.crit),
            mass_change: c.mass_change,
            verify_age: c.verify_age,
        };
        (limits, health::judge(summary, limits, ctx.now))
    });
    match judged {
        Ok((limits, _)) if limits.warn > limits.crit => (
            Judged {
                state: State::Unknown,
                why: "the warning threshold is longer than the critical one".into(),
                age: None,
            },
            limits,
        ),
        Ok((limits, judged)) => (judged, limits),
        Err(e) => (
            Judged {
                state: State::Unknown,
                why: format!("{e:#}"),
                age: None,
            },
            global.settings.check,
        ),
    }
}
