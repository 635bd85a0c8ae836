//! Command-line surface: argh structs only, no logic. Every flag here is documented in man/.

use argh::FromArgs;
use std::path::PathBuf;

/// zbk pulls each host's files with rsync into its own ZFS dataset, snapshots every run with an
/// expiry stamped into the zbk:expires property, and reaps what has expired.
#[derive(FromArgs, Debug)]
pub struct TopArgs {
    /// the backup root: mountpoint of the dataset given to `zbk init` (env ZBK_ROOT, default /backup)
    #[argh(option)]
    pub root: Option<PathBuf>,

    /// print the version and exit
    #[argh(switch)]
    pub version: bool,

    #[argh(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands, one man page each.
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Init(InitArgs),
    Add(AddArgs),
    Run(RunArgs),
    Reap(ReapArgs),
    Remove(RemoveArgs),
    List(ListArgs),
    Authorize(AuthorizeArgs),
    Replicate(ReplicateArgs),
    Status(StatusArgs),
    Report(ReportArgs),
    Check(CheckArgs),
    Doctor(DoctorArgs),
    Keep(KeepArgs),
    Restamp(RestampArgs),
    Restore(RestoreArgs),
    Versions(VersionsArgs),
    Diff(DiffArgs),
    Verify(VerifyArgs),
}

/// create the hosts dataset under DATASET and the global config in <root>/etc
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "init")]
pub struct InitArgs {
    /// an existing ZFS filesystem mounted at the backup root
    #[argh(positional)]
    pub dataset: String,

    /// compression for <dataset>/hosts (default gzip)
    #[argh(option, default = "String::from(\"gzip\")")]
    pub compression: String,

    /// dedup for <dataset>/hosts (default off; dedup costs RAM per unique block)
    #[argh(option, default = "String::from(\"off\")")]
    pub dedup: String,

    /// make <dataset>/hosts an encryption root (OpenZFS; aes-256-gcm), so that
    /// `zbk replicate --raw` copies can be kept where the key never goes
    #[argh(switch)]
    pub encrypt: bool,

    /// with --encrypt: raw (32 random bytes, the default) or passphrase
    #[argh(option)]
    pub key_format: Option<String>,

    /// with --encrypt: the key file (default <root>/etc/zbk.key; made, mode 0600, when absent)
    #[argh(option)]
    pub key_file: Option<std::path::PathBuf>,
}

/// add a host: its dataset, c/ d/ l/ and c/zbk.toml
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "add")]
pub struct AddArgs {
    /// the host's name: a lowercase DNS name
    #[argh(positional)]
    pub host: String,

    /// an rsync source: a local path or [user@]host:/path (repeatable; default root@HOST:/)
    #[argh(option)]
    pub source: Vec<String>,
}

/// back up hosts: rsync into d/, log into l/, snapshot with an expiry
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "run")]
pub struct RunArgs {
    /// hosts to back up
    #[argh(positional)]
    pub hosts: Vec<String>,

    /// back up every active host
    #[argh(switch)]
    pub all: bool,

    /// the retention tier to stamp (default: the tier named default)
    #[argh(option)]
    pub tier: Option<String>,

    /// stamp this retention instead of the tier's (a duration such as 10days, or never)
    #[argh(option)]
    pub expires: Option<String>,

    /// how many hosts to back up at once (default: jobs in zbk.toml, else the CPUs, at most 4)
    #[argh(option)]
    pub jobs: Option<usize>,

    /// how long to wait for another run of the same host to finish (default 4h)
    #[argh(option, default = "String::from(\"4h\")")]
    pub wait: String,

    /// print the commands that would run and change nothing
    #[argh(switch)]
    pub dry_run: bool,

    /// say what happened, also on success
    #[argh(switch, short = 'v')]
    pub verbose: bool,
}

/// destroy snapshots whose zbk:expires has passed
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "reap")]
pub struct ReapArgs {
    /// hosts to reap (default: all)
    #[argh(positional)]
    pub hosts: Vec<String>,

    /// list what would be destroyed or kept, and why, and destroy nothing
    #[argh(switch)]
    pub dry_run: bool,

    /// judge expiry as of this time (RFC 3339, e.g. 2027-01-01T00:00:00Z) instead of now
    #[argh(option)]
    pub as_of: Option<String>,

    /// say what was destroyed and how many zfs processes it took
    #[argh(switch, short = 'v')]
    pub verbose: bool,
}

/// retire a host: purge it now or let its snapshots expire
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "remove")]
pub struct RemoveArgs {
    /// the host to remove
    #[argh(positional)]
    pub host: String,

    /// destroy the host's dataset and every snapshot now (needs --yes)
    #[argh(switch)]
    pub purge: bool,

    /// stop backing up; reap destroys the dataset once its last snapshot expired
    #[argh(switch)]
    pub expire: bool,

    /// confirm --purge
    #[argh(switch)]
    pub yes: bool,
}

/// list snapshots with tier, status, expiry and space
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct ListArgs {
    /// hosts to list (default: all)
    #[argh(positional)]
    pub hosts: Vec<String>,

    /// print JSON (stable field names, see zbk-list(8))
    #[argh(switch)]
    pub json: bool,
}

/// copy each host's snapshots to another pool, here or over ssh, with zfs send/receive
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "replicate")]
pub struct ReplicateArgs {
    /// hosts to replicate (default: all)
    #[argh(positional)]
    pub hosts: Vec<String>,

    /// where to: a dataset (tank/offsite) or [user@]server:dataset over ssh
    #[argh(option)]
    pub to: String,

    /// an ssh option for a TARGET over ssh, as Key=Value, e.g. Port=2222 (repeatable)
    #[argh(option)]
    pub ssh_option: Vec<String>,

    /// send encrypted hosts raw (zfs send -w): the copies stay encrypted and the target
    /// never needs the key
    #[argh(switch)]
    pub raw: bool,

    /// send encrypted hosts decrypted even to a target that stores them unencrypted
    #[argh(switch)]
    pub plaintext: bool,

    /// print what would be sent and how far each copy lags, and change nothing
    #[argh(switch)]
    pub dry_run: bool,

    /// say what was sent, also on success
    #[argh(switch, short = 'v')]
    pub verbose: bool,
}

/// how every host stands: last good backup, last run, failures, snapshots, space
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "status")]
pub struct StatusArgs {
    /// hosts to show (default: all)
    #[argh(positional)]
    pub hosts: Vec<String>,

    /// print JSON (stable field names, see zbk-status(8))
    #[argh(switch)]
    pub json: bool,

    /// print metrics for the Prometheus node_exporter textfile collector
    #[argh(switch)]
    pub prometheus: bool,
}

/// the fleet as one self-contained HTML page: every host's state, last 60 days and space
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "report")]
pub struct ReportArgs {
    /// write the page to this file, atomically (default: standard output)
    #[argh(option)]
    pub html: Option<PathBuf>,

    /// another server's `zbk status --json`, shown as its own group (repeatable)
    #[argh(option)]
    pub from: Vec<PathBuf>,
}

/// a Nagios/Icinga plugin: is every host's last good backup recent enough?
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check")]
pub struct CheckArgs {
    /// hosts to check (default: all)
    #[argh(positional)]
    pub hosts: Vec<String>,

    /// warn when the last good backup is older than this (default: config, 26h)
    #[argh(option)]
    pub warn: Option<String>,

    /// critical when the last good backup is older than this (default: config, 50h)
    #[argh(option)]
    pub crit: Option<String>,

    /// answer UNKNOWN when the check itself takes longer than this many seconds (default 10)
    #[argh(option, short = 't', default = "10")]
    pub timeout: u64,
}

/// check what breaks installs: programs, PATH, the root, the config, datasets, ssh
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "doctor")]
pub struct DoctorArgs {
    /// also check that each remote client answers over ssh
    #[argh(switch)]
    pub ssh: bool,
}

/// set one snapshot's expiry by hand and pin it against restamp
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "keep")]
pub struct KeepArgs {
    /// the host
    #[argh(positional)]
    pub host: String,

    /// the snapshot's name, as zbk list shows it
    #[argh(positional)]
    pub snapshot: String,

    /// keep it until this time (RFC 3339, e.g. 2027-06-30T00:00:00Z)
    #[argh(option)]
    pub until: Option<String>,

    /// keep it this long from now (e.g. 90days)
    #[argh(option, long = "for")]
    pub for_: Option<String>,

    /// keep it forever
    #[argh(switch)]
    pub forever: bool,
}

/// recompute the expiry of zbk snapshots from their tier after the tier table changed
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "restamp")]
pub struct RestampArgs {
    /// hosts to restamp (default: all)
    #[argh(positional)]
    pub hosts: Vec<String>,

    /// print what would change and change nothing
    #[argh(switch)]
    pub dry_run: bool,
}

/// copy files back out of a snapshot, to a directory or to the client
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "restore")]
pub struct RestoreArgs {
    /// the host
    #[argh(positional)]
    pub host: String,

    /// absolute paths on the client, files or directories
    #[argh(positional)]
    pub paths: Vec<String>,

    /// the snapshot to restore from (default: the newest good one)
    #[argh(option)]
    pub snapshot: Option<String>,

    /// restore from the newest good snapshot taken at or before this time (RFC 3339)
    #[argh(option)]
    pub at: Option<String>,

    /// copy into this local directory, under the paths' client paths
    #[argh(option)]
    pub to: Option<PathBuf>,

    /// copy back to the client over ssh, into the original place
    #[argh(switch)]
    pub to_host: bool,

    /// with --to-host, the directory on the client to copy under instead of /
    #[argh(option)]
    pub target: Option<String>,

    /// print the rsync command and copy nothing
    #[argh(switch)]
    pub dry_run: bool,
}

/// the distinct versions of one file across a host's snapshots
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "versions")]
pub struct VersionsArgs {
    /// the host
    #[argh(positional)]
    pub host: String,

    /// an absolute path on the client
    #[argh(positional)]
    pub path: String,
}

/// what changed between two snapshots of a host, path by path
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "diff")]
pub struct DiffArgs {
    /// the host
    #[argh(positional)]
    pub host: String,

    /// FROM, the older snapshot, and TO, the newer one or live for d/ now (default: the two
    /// newest good snapshots; FROM alone: FROM and the newest good one)
    #[argh(positional, arg_name = "FROM [TO]")]
    pub snapshots: Vec<String>,

    /// one JSON object per changed path, one per line
    #[argh(switch)]
    pub json: bool,

    /// counts and bytes per top-level directory instead of the paths
    #[argh(switch)]
    pub stat: bool,

    /// only this client path and what lies under it
    #[argh(option)]
    pub path: Option<String>,
}

/// print the authorized_keys line that lets this server read a client with rsync, and only read
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "authorize")]
pub struct AuthorizeArgs {
    /// the host whose key line to print
    #[argh(positional)]
    pub host: String,

    /// the address this server connects from, pinned with from= (optional)
    #[argh(option)]
    pub from: Option<String>,

    /// rrsync on the client (default /usr/bin/rrsync)
    #[argh(option, default = "String::from(\"/usr/bin/rrsync\")")]
    pub rrsync: String,
}

/// compare a host's newest good snapshot with the live client, one slice of the tree at a time
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "verify")]
pub struct VerifyArgs {
    /// hosts to verify
    #[argh(positional)]
    pub hosts: Vec<String>,

    /// verify every active host
    #[argh(switch)]
    pub all: bool,

    /// compare the whole tree, not just the next slice
    #[argh(switch)]
    pub full: bool,

    /// acknowledge the silent differences found so far, ending zbk check's CRITICAL
    #[argh(switch)]
    pub ack: bool,

    /// say what was compared and found, also when nothing silent was
    #[argh(switch, short = 'v')]
    pub verbose: bool,
}
