//! `zbk add`: a host's dataset, its c/ d/ l/ directories and its config, or nothing at all.

use crate::cli::AddArgs;
use crate::config::check_source;
use crate::ctx::{usage, Ctx, EXIT_OK};
use crate::dataset::HostDataset;
use crate::names::HostName;
use anyhow::{bail, Result};
use fs_err as fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// ZFS's limit on a full snapshot name, less room for the longest name zbk gives a snapshot.
const MAX_DATASET: usize = 255 - "@failed-2026-11-27T013000Z-999".len();

/// Paths on a whole-system source that are not worth a backup.
const SYSTEM_EXCLUDES: &str =
    "/dev/\n/proc/\n/sys/\n/run/\n/tmp/\n/var/tmp/\n/mnt/\n/media/\n/lost+found/\n";

pub fn run(ctx: &Ctx, args: AddArgs) -> Result<u8> {
    let global = ctx.global()?;
    let host = HostName::parse(&args.host).map_err(usage)?;
    let sources = if args.source.is_empty() {
        vec![format!("root@{host}:/")]
    } else {
        args.source.clone()
    };
    for source in &sources {
        check_source(source).map_err(|e| usage(format!("--source: {e}")))?;
    }
    let dataset = HostDataset::new(&global.dataset, &host);
    if dataset.as_str().len() > MAX_DATASET {
        return Err(usage(format!(
            "host name {host}: the dataset {dataset} would be too long for ZFS ({MAX_DATASET} characters at most)"
        )));
    }
    if !ctx.zfs.exists(&global.dataset.hosts())? {
        return Err(usage(format!(
            "{}/hosts does not exist: run `zbk init {}` first",
            global.dataset, global.dataset
        )));
    }
    if ctx.zfs.exists(&dataset)? {
        return Err(usage(format!(
            "host {host} already exists ({dataset}); edit {} instead",
            ctx.layout.host_config(&host).display()
        )));
    }
    ctx.zfs.create(&dataset, &[])?;
    if let Err(err) = populate(ctx, &host, &dataset, &sources) {
        let undo = ctx.zfs.destroy_tree(&dataset);
        return Err(match undo {
            Ok(()) => err.context(format!(
                "cannot add host {host}; {dataset} was destroyed again"
            )),
            Err(e) => err.context(format!(
                "cannot add host {host}, and cannot destroy {dataset} again: {e:#}"
            )),
        });
    }
    println!(
        "zbk: added host {host} ({dataset}), sources: {}",
        sources.join(" ")
    );
    Ok(EXIT_OK)
}

/// Fills the new host dataset: directories, config, exclude file.
fn populate(ctx: &Ctx, host: &HostName, dataset: &HostDataset, sources: &[String]) -> Result<()> {
    let top = ctx.layout.host(host);
    let (mountpoint, _) = ctx.zfs.get(dataset, "mountpoint")?;
    if Path::new(&mountpoint) != top {
        bail!("the new dataset is mounted at {mountpoint}, not {}: is the dataset's mountpoint the root?", top.display());
    }
    for dir in [
        top.clone(),
        ctx.layout.config_dir(host),
        ctx.layout.data(host),
        ctx.layout.logs(host),
    ] {
        fs::create_dir_all(&dir)?;
        // Backups hold every client's secrets: only root reads them.
        fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let quoted: Vec<String> = sources
        .iter()
        .map(|s| toml::Value::String(s.clone()).to_string())
        .collect();
    let config = format!(
        "# zbk host configuration for {host}; see zbk.toml(5).\n\
         # rsync sources: local paths or [user@]host:/path; each lands under d/ at its own path.\n\
         sources = [{}]\n\n\
         # Any global key but dataset and destroy_batch may be overridden here, e.g.:\n\
         #min_keep = 2\n\
         #[tiers]\n\
         #default = \"14days\"\n",
        quoted.join(", ")
    );
    super::write_atomic(&ctx.layout.host_config(host), &config)?;
    let whole_system = sources.iter().any(|s| s.ends_with(":/"));
    let mut exclude = String::from(
        "# rsync exclude patterns for this host, one per line; see rsync(1) --exclude-from.\n",
    );
    if whole_system {
        exclude.push_str(SYSTEM_EXCLUDES);
    }
    super::write_atomic(&ctx.layout.exclude_file(host), &exclude)?;
    Ok(())
}
