//! `zbk doctor`: checks what breaks installs in practice, one line per finding with its fix:
//! the programs (also under cron's PATH), the root, the config, the host datasets, clones a
//! killed restore left, and optionally whether each client answers over ssh.

use crate::cli::DoctorArgs;
use crate::config::Global;
use crate::crypt::{self, KeyFormat};
use crate::ctx::{Ctx, EXIT_FAILED, EXIT_OK};
use crate::dataset::{HostDataset, HostsDataset, RootDataset};
use crate::flavour::Flavour;
use crate::health::State;
use crate::inventory::Inventory;
use crate::sys::exec::find_program;
use crate::sys::ssh::{self, Ssh};
use std::collections::BTreeMap;
use std::path::Path;

/// cron's PATH when a crontab sets none.
const CRON_PATH: [&str; 2] = ["/usr/bin", "/bin"];
/// Where `exec::find_program` looks beyond PATH.
const FALLBACK: [&str; 3] = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// The findings so far.
#[derive(Default)]
struct Report {
    problems: usize,
}

impl Report {
    fn ok(&mut self, what: &str) {
        println!("ok: {what}");
    }

    fn note(&mut self, what: &str) {
        println!("note: {what}");
    }

    /// Something that works today but leaves a risk the admin chose; does not fail doctor.
    fn warning(&mut self, what: &str, fix: &str) {
        println!("warning: {}; fix: {fix}", what.replace('\n', "; "));
    }

    fn problem(&mut self, what: &str, fix: &str) {
        self.problems += 1;
        println!("problem: {}; fix: {fix}", what.replace('\n', "; "));
    }
}

pub fn run(ctx: &Ctx, args: DoctorArgs) -> anyhow::Result<u8> {
    let mut r = Report::default();
    programs(&mut r);
    flavour(ctx, &mut r);
    match ctx.global() {
        Ok(global) => tree(ctx, &global, args.ssh, &mut r),
        Err(e) => r.problem(
            &format!("{e:#}"),
            "fix the file as the message says, or run `zbk init DATASET` (see zbk.toml(5))",
        ),
    }
    Ok(if r.problems > 0 { EXIT_FAILED } else { EXIT_OK })
}

/// Which zfs answers, since zbk takes different paths on each.
fn flavour(ctx: &Ctx, r: &mut Report) {
    if crate::sys::exec::find_program("zfs").is_err() {
        return;
    }
    r.ok(match ctx.zfs.flavour() {
        Flavour::OpenZfs => {
            "zfs is OpenZFS: batched destroys, restores read .zfs/snapshot, ACLs and xattrs stored (acltype=posixacl, xattr=sa)"
        }
        Flavour::Legacy => {
            "zfs is zfs-fuse or another pre-OpenZFS zfs: one destroy per snapshot, restores through a temporary clone, no ACLs or xattrs stored"
        }
    });
}

fn programs(r: &mut Report) {
    for name in ["zfs", "rsync", "ssh"] {
        let Ok(path) = find_program(name) else {
            r.problem(
                &format!("{name} not found on PATH nor in {}", FALLBACK.join(", ")),
                &format!("install it (Debian: apt-get install {})", package(name)),
            );
            continue;
        };
        let dir = path.parent().unwrap_or(Path::new("/"));
        let in_cron_path = CRON_PATH.iter().any(|d| Path::new(d) == dir);
        let in_fallback = FALLBACK.iter().any(|d| Path::new(d) == dir);
        if in_cron_path || in_fallback {
            r.ok(&format!(
                "{name} is {}{}",
                path.display(),
                if in_cron_path {
                    ""
                } else {
                    " (not on cron's default PATH, but zbk looks there itself)"
                }
            ));
        } else {
            r.problem(
                &format!(
                    "{name} is {}, which cron's default PATH ({}) does not reach",
                    path.display(),
                    CRON_PATH.join(":")
                ),
                "the packaged /etc/cron.d/zbk sets PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; \
                 a crontab of your own needs such a PATH line too",
            );
        }
    }
}

/// The pool's state, errors, scrub and capacity, judged as `zbk check` judges them.
fn pool_health(ctx: &Ctx, global: &Global, r: &mut Report) {
    let health = super::pool::health(ctx, &global.dataset);
    let verdict = super::pool::verdict(&health, global.pool, ctx.now);
    let pool = global.dataset.pool();
    match (&health, verdict.state) {
        (Ok(p), State::Ok) => r.ok(&format!(
            "pool {pool} is {}",
            super::pool::phrase(p, ctx.now)
        )),
        (Ok(_), _) => r.problem(
            &format!("pool {pool}: {}", verdict.why.join(", ")),
            &format!(
                "see `zpool status -v {pool}`: replace or bring back a device (zpool replace, zpool online), \
                 restore the files it lists, `zpool scrub {pool}` (monthly from cron), free space or grow the pool, \
                 then `zpool clear {pool}`"
            ),
        ),
        (Err(_), _) => r.problem(
            &verdict.why.join(", "),
            &format!("run `zpool status {pool}` as root and see what it says"),
        ),
    }
}

fn package(program: &str) -> &'static str {
    match program {
        "zfs" => "zfsutils-linux (or zfs-fuse)",
        "ssh" => "openssh-client",
        _ => "rsync",
    }
}

fn tree(ctx: &Ctx, global: &Global, ssh: bool, r: &mut Report) {
    global_file(ctx, global, r);
    let dataset = &global.dataset;
    if !root_mounted(ctx, dataset, r) {
        return;
    }
    pool_health(ctx, global, r);
    etc_writable(ctx, dataset.as_str(), r);
    let locked = keys(ctx, &dataset.hosts(), r);
    let inv = match ctx.zfs.inventory(&dataset.hosts()) {
        Ok(inv) => inv,
        Err(e) => {
            r.problem(
                &format!("{e:#}"),
                &format!("zbk init {dataset} creates {dataset}/hosts"),
            );
            return;
        }
    };
    hosts(ctx, global, &inv, ssh, locked, r);
    leftover_clones(ctx, dataset, r);
}

/// The global config, read already: valid, and whether it bounds rsync's silences.
fn global_file(ctx: &Ctx, global: &Global, r: &mut Report) {
    let path = crate::config::global_path(&ctx.layout.root);
    r.ok(&format!("{} is valid", path.display()));
    if global.settings.rsync.io_timeout.is_none() {
        no_io_timeout(&path.display().to_string(), r);
    }
}

/// Whether the zbk dataset is mounted at the root; `false` when it cannot even be read, and
/// nothing below it can be.
fn root_mounted(ctx: &Ctx, dataset: &RootDataset, r: &mut Report) -> bool {
    let mounted = ctx.zfs.get(dataset, "mounted");
    let mountpoint = ctx.zfs.get(dataset, "mountpoint");
    match (mounted, mountpoint) {
        (Err(e), _) | (_, Err(e)) => {
            r.problem(
                &format!("cannot read {dataset}: {e:#}"),
                "start the zfs-fuse daemon or load the zfs module (modprobe zfs), and run zbk as root",
            );
            return false;
        }
        (Ok((m, _)), Ok((mp, _))) => {
            let root = &ctx.layout.root;
            if m != "yes" || Path::new(&mp) != root.as_path() {
                r.problem(
                    &format!(
                        "{dataset} is mounted={m} at {mp}, not at the root {}",
                        root.display()
                    ),
                    &format!(
                        "zfs set mountpoint={} {dataset}; zfs mount {dataset} (or pass --root)",
                        root.display()
                    ),
                );
            } else {
                r.ok(&format!("{dataset} is mounted at {}", root.display()));
            }
        }
    }
    true
}

/// Whether zbk can write its locks and logs under `<root>/etc`.
fn etc_writable(ctx: &Ctx, dataset: &str, r: &mut Report) {
    let probe = ctx
        .layout
        .etc()
        .join(format!(".zbk-doctor-{}", std::process::id()));
    match std::fs::write(&probe, "") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            r.ok(&format!("{} is writable", ctx.layout.etc().display()));
        }
        Err(e) => r.problem(
            &format!("cannot write in {}: {e}", ctx.layout.etc().display()),
            &format!("zfs set readonly=off {dataset}, and run zbk as root"),
        ),
    }
}

/// Each host: mounted, its config valid, reachable when `ssh`; then what rsync leaves out where
/// the pool cannot keep it, said once for all hosts alike.
fn hosts(ctx: &Ctx, global: &Global, inv: &Inventory, ssh: bool, locked: bool, r: &mut Report) {
    let facts = ctx.zfs.run_facts(&global.dataset).ok();
    let mut left_out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (name, host) in &inv.hosts {
        if !host_mounted(ctx, &global.dataset.host(name), locked, r) {
            continue;
        }
        match global.load_host(&ctx.layout.host_config(name)) {
            Err(e) => r.problem(
                &format!("{e:#}"),
                "fix the file as the message says (see zbk.toml(5))",
            ),
            Ok(config) => {
                r.ok(&format!("{name}: dataset mounted, config valid"));
                if config.settings.rsync.io_timeout.is_none()
                    && global.settings.rsync.io_timeout.is_some()
                {
                    no_io_timeout(&ctx.layout.host_config(name).display().to_string(), r);
                }
                if let Some(facts) = &facts {
                    let storable = facts.storable(name);
                    let flags = crate::rsync_args::unstorable(&config.settings.rsync, &storable);
                    if !flags.is_empty() {
                        left_out
                            .entry((flags.join(" "), storable.why))
                            .or_default()
                            .push(name.to_string());
                    }
                }
                if ssh && host.retired.is_none() {
                    reach(name.as_str(), &config, r);
                }
            }
        }
    }
    for ((flags, why), hosts) in left_out {
        let which = if hosts.len() == inv.hosts.len() {
            "every host".to_string()
        } else {
            hosts.join(", ")
        };
        r.ok(&format!(
            "zbk run leaves {flags} out of rsync's arguments for {which}: {why} (see zbk-run(8))"
        ));
    }
}

/// Whether a host's dataset is mounted with its `d/`, else what is said of it: nothing while
/// its key is not loaded (said once, with the key), a received copy, or a problem.
fn host_mounted(ctx: &Ctx, dataset: &HostDataset, locked: bool, r: &mut Report) -> bool {
    let name = dataset.host();
    let (mounted, _) = ctx.zfs.get(dataset, "mounted").unwrap_or_default();
    if mounted == "yes" && ctx.layout.data(name).is_dir() {
        return true;
    }
    if locked {
        return false; // said once, with the key
    }
    if ctx.zfs.is_replica(dataset) {
        r.ok(&format!(
            "{name}: a copy received by zbk replicate (never mounted)"
        ));
        return false;
    }
    r.problem(
        &format!(
            "{}: not mounted at {}",
            dataset,
            ctx.layout.host(name).display()
        ),
        &format!("zfs mount {dataset}"),
    );
    false
}

/// `rsync.io_timeout = "none"`: a client that stalls mid-transfer holds its host's lock until
/// someone kills the run.
fn no_io_timeout(file: &str, r: &mut Report) {
    r.warning(
        &format!("{file}: rsync.io_timeout = \"none\": a client that stops sending mid-transfer blocks its host's runs for good"),
        "remove the line (default 10m) or set a duration",
    );
}

/// The encryption of the hosts tree: whether its key is loaded and its key file safe, and
/// what to keep offline. True when the key is not loaded.
fn keys(ctx: &Ctx, hosts: &HostsDataset, r: &mut Report) -> bool {
    let Ok(Some(key)) = ctx.zfs.key_state(hosts) else {
        return false;
    };
    if key.locked() {
        r.problem(
            &format!("{hosts}: its encryption key is not loaded, so no host is mounted and every run fails"),
            &format!("{} && zfs mount -a (after every boot, once the pool is imported)", key.load_hint()),
        );
    } else {
        r.ok(&format!(
            "{hosts} is encrypted ({}, keyformat {}) and its key is loaded",
            key.encryption, key.format
        ));
    }
    let Some(path) = key.location.strip_prefix("file://") else {
        return key.locked();
    };
    match std::fs::metadata(path) {
        Err(e) => r.problem(
            &format!("the key file {path} of {}: {e}", key.root),
            "put back the copy you keep offline, mode 0600",
        ),
        Ok(meta) => {
            use std::os::unix::fs::MetadataExt as _;
            let format = KeyFormat::parse(&key.format).unwrap_or(KeyFormat::Passphrase);
            match crypt::check_key_file(meta.uid(), meta.mode(), meta.len(), format) {
                Ok(()) => r.ok(&format!("the key file {path} is root's alone")),
                Err(e) => r.problem(
                    &format!("the key file {path} {e}"),
                    &format!("chown root {path}; chmod 600 {path}"),
                ),
            }
        }
    }
    r.note(&format!(
        "keep a copy of {path} offline, away from this server: without it neither these backups nor their `zbk replicate --raw` copies can be read"
    ));
    key.locked()
}

/// Asks each remote client of a host to run `true`, the way a run would log in.
fn reach(host: &str, config: &crate::config::HostConfig, r: &mut Report) {
    let Ok(program) = ssh::program() else { return };
    // The same ssh a run gives rsync, to log in exactly as a run does.
    let ssh = Ssh::client(&program, &config.settings.ssh);
    let clients = crate::restore::clients(&config.sources);
    for client in clients {
        match ssh.login(client) {
            Ok(Ok(())) => r.ok(&format!("{host}: {client} answers over ssh")),
            Ok(Err(failed)) => r.problem(
                &format!("{host}: {failed}"),
                "check that the client is up, that root's key is in its authorized_keys, and that its host key is known (ssh it once by hand)",
            ),
            Err(e) => r.problem(&format!("{host}: {e:#}"), "install openssh-client"),
        }
    }
}

/// Temporary clones of `zbk restore` whose process is gone: each keeps its snapshot from
/// ever being reaped.
fn leftover_clones(ctx: &Ctx, dataset: &RootDataset, r: &mut Report) {
    let Ok(clones) = ctx.zfs.children(&dataset.restore_parent()) else {
        return;
    };
    for clone in &clones {
        let pid = clone.rsplit('-').nth(1).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists()) {
            continue;
        }
        r.problem(
            &format!("{clone}: a temporary clone left by an interrupted zbk restore"),
            &format!("zfs destroy {clone}"),
        );
    }
}
