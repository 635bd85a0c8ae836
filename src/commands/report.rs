//! `zbk report`: the fleet as one self-contained HTML page, from this server's `zbk status
//! --json` (one listing of the tree) and other servers' copies of theirs.

use crate::cli::ReportArgs;
use crate::ctx::{Ctx, EXIT_FAILED, EXIT_OK};
use crate::report::{render, Page, Server};
use anyhow::{anyhow, Context, Result};
use std::io::Write;
use std::path::Path;

pub fn run(ctx: &Ctx, args: ReportArgs) -> Result<u8> {
    let global = ctx.global()?;
    let (health, inv) = std::thread::scope(|s| {
        let health = s.spawn(|| super::pool::health(ctx, &global.dataset));
        let inv = ctx.zfs.inventory(&global.dataset.hosts());
        (health.join(), inv)
    });
    let health = health.unwrap_or_else(|_| Err(anyhow!("reading the pool's health panicked")));
    let inv = inv?;
    let hosts = super::chosen_hosts(&inv, &[])?;
    let verdict = super::pool::verdict(&health, global.pool, ctx.now);
    let pool = super::pool::json(&global.dataset, &health, &verdict);
    let rows = super::rows::json_rows(ctx, &global, &inv, &hosts, &pool)?;
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|n| n.trim().to_string())
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "this server".to_string());
    let mut here = Server::from_json(&name, "this server", &rows);
    here.pool = serde_json::to_value(&pool)?
        .as_object()
        .map(|o| o.clone().into_iter().collect())
        .unwrap_or_default();
    here.pool
        .insert("dataset".into(), global.dataset.to_string().into());
    if inv.unreadable > 0 {
        here.problems.push(format!(
            "{} of the zfs listing could not be read (a property value with a tab or newline)",
            crate::text::counted(inv.unreadable, "line")
        ));
    }
    let mut servers = vec![here];
    let mut unreadable = Vec::new();
    for file in &args.from {
        let stem = file.file_stem().map_or_else(
            || file.display().to_string(),
            |s| s.to_string_lossy().into(),
        );
        let source = file.display().to_string();
        match read_json(file) {
            Ok(json) => servers.push(Server::from_json(&stem, &source, &json)),
            Err(e) => {
                let why = format!("--from {}: {e:#}", file.display());
                servers.push(Server {
                    name: stem,
                    source,
                    problems: vec![why.clone()],
                    ..Server::default()
                });
                unreadable.push(why);
            }
        }
    }
    let html = render(&Page {
        generated: ctx.now,
        version: env!("CARGO_PKG_VERSION").to_string(),
        servers,
    });
    match &args.html {
        Some(path) => write_atomically(path, html.as_bytes())
            .with_context(|| format!("--html {}", path.display()))?,
        None => std::io::stdout().write_all(html.as_bytes())?,
    }
    for why in &unreadable {
        eprintln!("zbk: warning: {why}: shown as unreadable in the page");
    }
    Ok(if unreadable.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

fn read_json(file: &Path) -> Result<serde_json::Value> {
    let text = fs_err::read_to_string(file)?;
    serde_json::from_str(&text).map_err(|e| anyhow!("not JSON: {e}"))
}

/// Writes `path` through a temporary file in its directory, renamed over it once complete:
/// a web server or mail job never reads half a page, and a failure leaves nothing behind.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".zbk-report.")
        .tempfile_in(dir)
        .map_err(|e| anyhow!("cannot write in {}: {e}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    // A page is for reading: by a web server, a mail job, the admin's browser.
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.persist(path).map_err(|e| anyhow!("{}", e.error))?;
    Ok(())
}
