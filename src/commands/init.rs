//! `zbk init`: the hosts dataset and the global config, idempotently.

use crate::cli::InitArgs;
use crate::config::{self, Global};
use crate::ctx::{usage, Ctx, EXIT_OK};
use crate::layout::hosts_dataset;
use crate::names::is_safe_component;
use crate::sys::zfs::Flavour;
use anyhow::Result;
use fs_err as fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub fn run(ctx: &Ctx, args: InitArgs) -> Result<u8> {
    let dataset = args.dataset.trim_end_matches('/');
    if dataset.is_empty()
        || dataset.contains('@')
        || dataset.split('/').any(|c| !is_safe_component(c))
    {
        return Err(usage(format!(
            "DATASET: {:?} is not a ZFS filesystem name",
            args.dataset
        )));
    }
    for (flag, value) in [
        ("--compression", &args.compression),
        ("--dedup", &args.dedup),
    ] {
        if !is_safe_component(value) {
            return Err(usage(format!("{flag}: {value:?} is not a property value")));
        }
    }
    let root = &ctx.layout.root;
    if !ctx.zfs.exists(dataset)? {
        return Err(usage(format!(
            "dataset {dataset} does not exist: create it first, e.g. `zfs create -o mountpoint={} {dataset}`",
            root.display()
        )));
    }
    let (mountpoint, _) = ctx.zfs.get(dataset, "mountpoint")?;
    let (mounted, _) = ctx.zfs.get(dataset, "mounted")?;
    if !same_dir(Path::new(&mountpoint), root) || mounted != "yes" {
        return Err(usage(format!(
            "dataset {dataset} is mounted at {mountpoint} (mounted: {mounted}), not at the root {}: pass --root {mountpoint}, or `zfs set mountpoint={} {dataset}`",
            root.display(),
            root.display()
        )));
    }

    let config_path = config::global_path(root);
    if config_path.exists() {
        let existing = Global::load(root).map_err(usage)?;
        if existing.dataset != dataset {
            return Err(usage(format!(
                "{}: already initialised for dataset {}, not {dataset}",
                config_path.display(),
                existing.dataset
            )));
        }
    }

    let mut done = Vec::new();
    let hosts = hosts_dataset(dataset);
    if !ctx.zfs.exists(&hosts)? {
        let mut props = vec![
            ("compression", args.compression.as_str()),
            ("dedup", args.dedup.as_str()),
        ];
        if ctx.zfs.flavour() == Flavour::OpenZfs {
            // So that rsync --acls/--xattrs can store what it copies, cheaply (xattrs in the dnode).
            props.extend([("acltype", "posixacl"), ("xattr", "sa")]);
        }
        ctx.zfs.create(&hosts, &props)?;
        // A whole-system source gives d/ the client's / mode; the tree above must stay root's.
        let dir = ctx.layout.root.join("hosts");
        fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        let settings: Vec<String> = props.iter().map(|(k, v)| format!("{k}={v}")).collect();
        done.push(format!("created {hosts} ({})", settings.join(", ")));
    }
    if !config_path.exists() {
        fs::create_dir_all(ctx.layout.etc())?;
        super::write_atomic(&config_path, &config::template(dataset))?;
        done.push(format!("wrote {}", config_path.display()));
    }
    if done.is_empty() {
        println!(
            "zbk: already initialised ({hosts}, {}); nothing changed",
            config_path.display()
        );
    } else {
        for line in done {
            println!("zbk: {line}");
        }
    }
    Ok(EXIT_OK)
}

/// Whether two paths name the same directory, allowing for symlinks and trailing slashes.
fn same_dir(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
