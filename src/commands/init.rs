//! `zbk init`: the hosts dataset and the global config, idempotently.

use crate::cli::InitArgs;
use crate::config::{self, Global};
use crate::crypt::{self, KeyFormat};
use crate::ctx::{usage, Ctx, EXIT_OK};
use crate::dataset::{HostsDataset, RootDataset};
use crate::flavour::Flavour;
use crate::names::is_safe_component;
use anyhow::{Context, Result};
use fs_err as fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub fn run(ctx: &Ctx, args: InitArgs) -> Result<u8> {
    let dataset = checked_args(&args)?;
    let root = &ctx.layout.root;
    let encrypt = encryption(ctx, &args)?;
    mounted_at_root(ctx, &dataset)?;
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
    let hosts = dataset.hosts();
    if ctx.zfs.exists(&hosts)? {
        if encrypt.is_some() && ctx.zfs.key_state(&hosts)?.is_none() {
            return Err(usage(format!(
                "--encrypt: {hosts} exists and is not encrypted, and ZFS encrypts a dataset only when it is made; initialise a new DATASET with --encrypt (zbk replicate can move the hosts' history there)"
            )));
        }
    } else {
        done = create_hosts(ctx, &args, &hosts, encrypt.as_ref())?;
    }
    if !config_path.exists() {
        fs::create_dir_all(ctx.layout.etc())?;
        super::write_atomic(&config_path, &config::template(dataset.as_str()))?;
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

/// DATASET without its trailing slashes, once it and the property values are names ZFS takes.
fn checked_args(args: &InitArgs) -> Result<RootDataset> {
    let Ok(dataset) = RootDataset::parse(args.dataset.trim_end_matches('/')) else {
        return Err(usage(format!(
            "DATASET: {:?} is not a ZFS filesystem name",
            args.dataset
        )));
    };
    for (flag, value) in [
        ("--compression", &args.compression),
        ("--dedup", &args.dedup),
    ] {
        if !is_safe_component(value) {
            return Err(usage(format!("{flag}: {value:?} is not a property value")));
        }
    }
    Ok(dataset)
}

/// Refuses a DATASET that does not exist or is not mounted at the backup root.
fn mounted_at_root(ctx: &Ctx, dataset: &RootDataset) -> Result<()> {
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
    Ok(())
}

/// Creates the hosts dataset with its properties (and its key, under `--encrypt`), and says
/// what it did.
fn create_hosts(
    ctx: &Ctx,
    args: &InitArgs,
    hosts: &HostsDataset,
    encrypt: Option<&(KeyFormat, PathBuf)>,
) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let mut props = vec![
        ("compression", args.compression.as_str()),
        ("dedup", args.dedup.as_str()),
    ];
    if ctx.zfs.flavour() == Flavour::OpenZfs {
        // So that rsync --acls/--xattrs can store what it copies, cheaply (xattrs in the dnode).
        props.extend([("acltype", "posixacl"), ("xattr", "sa")]);
    }
    let mut made_key = false;
    let location;
    if let Some((format, key)) = encrypt {
        made_key = ensure_key(key, *format)?;
        location = format!("file://{}", key.display());
        props.extend([
            ("encryption", crypt::CIPHER),
            ("keyformat", format.as_str()),
            ("keylocation", location.as_str()),
        ]);
    }
    ctx.zfs.create(hosts, &props)?;
    // A whole-system source gives d/ the client's / mode; the tree above must stay root's.
    let dir = ctx.layout.root.join("hosts");
    fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    let settings: Vec<String> = props.iter().map(|(k, v)| format!("{k}={v}")).collect();
    done.push(format!("created {hosts} ({})", settings.join(", ")));
    if let (true, Some((format, key))) = (made_key, encrypt) {
        done.push(format!(
            "made the key {} ({format}, mode 0600): keep a copy offline, away from this server; without it neither these backups nor their `zbk replicate --raw` copies can be read",
            key.display()
        ));
    }
    Ok(done)
}

/// `--encrypt` and its key options, checked before anything is made: the key format and the
/// key file's path, or `None` without `--encrypt`.
fn encryption(ctx: &Ctx, args: &InitArgs) -> Result<Option<(KeyFormat, PathBuf)>> {
    if !args.encrypt {
        for (flag, given) in [
            ("--key-format", args.key_format.is_some()),
            ("--key-file", args.key_file.is_some()),
        ] {
            if given {
                return Err(usage(format!("{flag}: only with --encrypt")));
            }
        }
        return Ok(None);
    }
    let format = match &args.key_format {
        Some(text) => KeyFormat::parse(text).map_err(|e| usage(format!("--key-format: {e}")))?,
        None => KeyFormat::Raw,
    };
    let key = match &args.key_file {
        Some(path) if !path.is_absolute() || path.to_str().is_none_or(|p| p.contains(' ')) => {
            return Err(usage(format!(
                "--key-file: {:?} is not an absolute path without spaces (it becomes keylocation=file://PATH)",
                path.display().to_string()
            )));
        }
        Some(path) => path.clone(),
        None => ctx.layout.etc().join(crypt::KEY_FILE),
    };
    if ctx.zfs.flavour() != Flavour::OpenZfs {
        return Err(usage(
            "--encrypt: native encryption needs OpenZFS (zfsutils-linux); this zfs (zfs-fuse or older) has none",
        ));
    }
    Ok(Some((format, key)))
}

/// Makes the key file from random bytes when it is absent, readable by root alone; an existing
/// one is checked, never replaced: it may already be the key of data elsewhere. True when made.
fn ensure_key(path: &Path, format: KeyFormat) -> Result<bool> {
    use std::io::{Read as _, Write as _};
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
    match std::fs::metadata(path) {
        Ok(meta) => {
            crypt::check_key_file(meta.uid(), meta.mode(), meta.len(), format)
                .map_err(|e| usage(format!("--key-file: {} {e}", path.display())))?;
            return Ok(false);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("cannot read {}", path.display())))
        }
    }
    let mut random = [0u8; crypt::RAW_KEY_BYTES];
    fs::File::open("/dev/urandom")?.read_exact(&mut random)?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(dir)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(&format.new_key(&random))?;
    file.sync_all()?;
    fs::File::open(dir)?.sync_all()?;
    Ok(true)
}

/// Whether two paths name the same directory, allowing for symlinks and trailing slashes.
fn same_dir(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
