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
