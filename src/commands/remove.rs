//! `zbk remove`: purge a host now, or retire it and let reap take it once its snapshots expired.

use crate::cli::RemoveArgs;
use crate::ctx::{usage, Ctx, EXIT_OK};
use crate::dataset::HostDataset;
use crate::expiry::Expiry;
use crate::names::HostName;
use crate::stamp::PROP_RETIRED;
use anyhow::Result;

pub fn run(ctx: &Ctx, args: RemoveArgs) -> Result<u8> {
    let global = ctx.global()?;
    let host = HostName::parse(&args.host).map_err(usage)?;
    if args.purge == args.expire {
        return Err(usage(
            "give exactly one of --purge (with --yes) or --expire",
        ));
    }
    if args.purge && !args.yes {
        return Err(usage(format!(
            "--purge destroys {host} and every one of its snapshots now; add --yes to confirm"
        )));
    }
    let dataset = HostDataset::new(&global.dataset, &host);
    if !ctx.zfs.exists(&dataset)? {
        return Err(usage(format!(
            "no such host: {host} ({dataset} does not exist)"
        )));
    }
    if args.purge {
        ctx.zfs.destroy_tree(&dataset)?;
        let _ = fs_err::remove_file(ctx.layout.lock(&host));
        println!("zbk: purged {host}: destroyed {dataset} and all its snapshots");
        return Ok(EXIT_OK);
    }
    let (value, source) = ctx.zfs.get(&dataset, PROP_RETIRED)?;
    if source == "local" {
        println!("zbk: {host} is already retired (since {value}); nothing changed");
        return Ok(EXIT_OK);
    }
    ctx.zfs
        .set(&dataset, PROP_RETIRED, &Expiry::At(ctx.now).to_string())?;
    println!(
        "zbk: retired {host}: no more runs; reap destroys {dataset} once its last snapshot expired"
    );
    Ok(EXIT_OK)
}
