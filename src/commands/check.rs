//! `zbk check`: a Nagios/Icinga plugin. One status line with perfdata, and the plugin exit
//! statuses (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN) instead of zbk's own.

use crate::cli::CheckArgs;
use crate::config::CheckSettings;
use crate::ctx::Ctx;
use crate::expiry::Retention;
use crate::health::{self, Judged, State};
use crate::layout::hosts_dataset;
use anyhow::{anyhow, Result};
use std::time::Duration;

pub fn run(ctx: &Ctx, args: CheckArgs) -> Result<u8> {
    // Nagios reads stdout and the exit status only: whatever stops the check is UNKNOWN.
    let (state, line) = check(ctx, &args).unwrap_or_else(|e| {
        (
            State::Unknown,
            format!("ZBK UNKNOWN - {}", format!("{e:#}").replace('\n', "; ")),
        )
    });
    println!("{line}");
    Ok(state.code())
}

fn threshold(flag: &str, text: &Option<String>) -> Result<Option<Duration>> {
    match text.as_deref().map(Retention::parse) {
        None => Ok(None),
        Some(Ok(Retention::For(span))) => Ok(Some(span.nominal())),
        Some(Ok(Retention::Never)) => Err(anyhow!("{flag}: must be a duration, not never")),
        Some(Err(e)) => Err(anyhow!("{flag}: {e}")),
    }
}

fn check(ctx: &Ctx, args: &CheckArgs) -> Result<(State, String)> {
    let warn = threshold("--warn", &args.warn)?;
    let crit = threshold("--crit", &args.crit)?;
    let global = ctx.global()?;
    let inv = ctx.zfs.inventory(&hosts_dataset(&global.dataset))?;
    let hosts = super::chosen_hosts(&inv, &args.hosts)?;
    let mut results: Vec<(&str, Judged, CheckSettings)> = Vec::new();
    for name in &hosts {
        let host = &inv.hosts[name];
        let summary = health::summarize(host, ctx.now);
        // A retired host is judged on nothing its config says, so a broken one cannot matter.
        let configured = match host.retired {
            Some(_) => Ok(global.settings.check),
            None => global
                .load_host(&ctx.layout.host_config(name))
                .map(|c| c.settings.check),
        };
        let judged = configured.map(|c| {
            let limits = CheckSettings {
                warn: warn.unwrap_or(c.warn),
                crit: crit.unwrap_or(c.crit),
                mass_change: c.mass_change,
            };
            (limits, health::judge(&summary, limits, ctx.now))
        });
        let (limits, judged) = match judged {
            Ok((limits, _)) if limits.warn > limits.crit => (
                limits,
                Judged {
                    state: State::Unknown,
                    why: "the warning threshold is longer than the critical one".into(),
                    age: None,
                },
            ),
            Ok(pair) => pair,
            Err(e) => (
                global.settings.check,
                Judged {
                    state: State::Unknown,
                    why: format!("{e:#}"),
                    age: None,
                },
            ),
        };
        results.push((name.as_str(), judged, limits));
    }
    Ok(health::plugin_line(&results))
}
