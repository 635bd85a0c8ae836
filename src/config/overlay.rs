//! A config file's keys laid over the settings below it (the built-in defaults under the global
//! file, the global settings under a host's), one table at a time, each value checked with an
//! error that names the file and the key.

use super::files::{
    CheckFile, FileConfig, FractionOrNone, GuardFile, HooksFile, RsyncFile, SshFile, VerifyFile,
};
use super::settings::{Online, Settings, MAX_SLICES};
use crate::expiry::Retention;
use anyhow::{anyhow, bail, Result};
use std::path::{Component, Path};
use std::time::Duration;

impl Settings {
    /// These settings with a file's overrides applied; `path` names the file in errors.
    pub(super) fn overlay(&self, file: &FileConfig, path: &Path) -> Result<Settings> {
        let mut out = self.clone();
        let at = |e: anyhow::Error| anyhow!("{}: {e}", path.display());
        top_level(&mut out, file).map_err(at)?;
        if let Some(rsync) = &file.rsync {
            overlay_rsync(&mut out, rsync).map_err(at)?;
        }
        if let Some(ssh) = &file.ssh {
            overlay_ssh(&mut out, ssh).map_err(at)?;
        }
        if let Some(guard) = &file.guard {
            overlay_guard(&mut out, guard).map_err(at)?;
        }
        if let Some(hooks) = &file.hooks {
            overlay_hooks(&mut out, hooks).map_err(at)?;
        }
        if let Some(check) = &file.check {
            overlay_check(&mut out, check).map_err(at)?;
        }
        if let Some(verify) = &file.verify {
            overlay_verify(&mut out, verify).map_err(at)?;
        }
        Ok(out)
    }
}

/// The keys outside any table, and `[tiers]`.
fn top_level(out: &mut Settings, file: &FileConfig) -> Result<()> {
    if let Some(n) = file.min_keep {
        out.min_keep = n;
    }
    if let Some(n) = file.log_keep {
        if n == 0 {
            bail!("log_keep: must be at least 1");
        }
        out.log_keep = n;
    }
    if let Some(text) = &file.online {
        out.online = Online::parse(text)
            .ok_or_else(|| anyhow!("online: {text:?} is neither \"always\" nor \"sometimes\""))?;
    }
    for (name, text) in file.tiers.iter().flatten() {
        if !crate::names::is_safe_component(name) {
            bail!("tiers.{name}: a tier name may hold only letters, digits, '_', '.', ':' and '-'");
        }
        let retention = Retention::parse(text).map_err(|e| anyhow!("tiers.{name}: {e}"))?;
        out.tiers.insert(name.clone(), retention);
    }
    Ok(())
}

fn overlay_rsync(out: &mut Settings, rsync: &RsyncFile) -> Result<()> {
    let to = &mut out.rsync;
    for (given, slot) in [
        (&rsync.args, &mut to.args),
        (&rsync.extra_args, &mut to.extra_args),
    ] {
        if let Some(args) = given {
            slot.clone_from(args);
        }
    }
    for (given, slot) in [
        (&rsync.ok_codes, &mut to.ok_codes),
        (&rsync.warning_codes, &mut to.warning_codes),
    ] {
        if let Some(codes) = given {
            slot.clone_from(codes);
        }
    }
    if let Some(rate) = &rsync.bwlimit {
        if rate.is_empty() || !rate.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
            bail!("rsync.bwlimit: {rate:?} is not a rate such as 5M or 800K");
        }
        to.bwlimit = Some(rate.clone());
    }
    if let Some(text) = &rsync.io_timeout {
        to.io_timeout = match text.as_str() {
            "none" => None,
            _ => Some(duration(text, "rsync.io_timeout")?),
        };
    }
    if let Some(file) = &rsync.exclude_file {
        to.exclude_file = file.clone();
    }
    Ok(())
}

/// Every ssh value ends up as one word of rsync's `--rsh`, which rsync splits on spaces.
fn overlay_ssh(out: &mut Settings, ssh: &SshFile) -> Result<()> {
    let word = |key: &str, value: &str| -> Result<()> {
        if value.is_empty()
            || value.starts_with('-')
            || value
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "'\"\\".contains(c))
        {
            bail!("ssh.{key}: {value:?} must be one word without quotes and not start with '-'");
        }
        Ok(())
    };
    let to = &mut out.ssh;
    if let Some(user) = &ssh.user {
        word("user", user)?;
        to.user = Some(user.clone());
    }
    if let Some(port) = ssh.port {
        to.port = Some(port);
    }
    if let Some(identity) = &ssh.identity {
        word("identity", &identity.to_string_lossy())?;
        if !identity.is_absolute() {
            bail!(
                "ssh.identity: {} is not an absolute path",
                identity.display()
            );
        }
        to.identity = Some(identity.clone());
    }
    if let Some(options) = &ssh.options {
        for option in options {
            word("options", option)?;
            if !option.contains('=') {
                bail!("ssh.options: {option:?} is not Key=Value");
            }
        }
        to.options.clone_from(options);
    }
    if let Some(text) = &ssh.connect_timeout {
        to.connect_timeout = duration(text, "ssh.connect_timeout")?;
    }
    Ok(())
}

fn overlay_guard(out: &mut Settings, guard: &GuardFile) -> Result<()> {
    let to = &mut out.guard;
    if let Some(check) = &guard.check_file {
        let escapes = check.is_absolute()
            || check
                .components()
                .any(|c| !matches!(c, Component::Normal(_)))
            || check.as_os_str().is_empty();
        if escapes {
            bail!(
                "guard.check_file: {} must be a relative path inside each source, without '..'",
                check.display()
            );
        }
        to.check_file = Some(check.clone());
    }
    if let Some(fraction) = guard.max_delete {
        if !(fraction > 0.0 && fraction <= 1.0) {
            bail!("guard.max_delete: {fraction} is not a fraction above 0 and at most 1");
        }
        to.max_delete = Some(fraction);
    }
    if let Some(percent) = guard.max_capacity {
        if !(1..=100).contains(&percent) {
            bail!("guard.max_capacity: {percent} is not a percentage from 1 to 100");
        }
        to.max_capacity = percent;
    }
    match &guard.max_change {
        None => {}
        Some(FractionOrNone::Word(w)) if w == "none" => to.change.max_change = None,
        Some(FractionOrNone::Fraction(f)) if *f > 0.0 && *f <= 1.0 => {
            to.change.max_change = Some(*f)
        }
        Some(FractionOrNone::Fraction(f)) => {
            bail!("guard.max_change: {f} is not a fraction above 0 and at most 1 (or \"none\")")
        }
        Some(FractionOrNone::Word(w)) => {
            bail!("guard.max_change: {w:?} is not a fraction above 0 and at most 1, or \"none\"")
        }
    }
    if let Some(n) = guard.min_files {
        to.change.min_files = n;
    }
    if let Some(text) = &guard.pin_for {
        to.pin_for = Retention::parse(text).map_err(|e| anyhow!("guard.pin_for: {e}"))?;
    }
    Ok(())
}

fn overlay_hooks(out: &mut Settings, hooks: &HooksFile) -> Result<()> {
    for (key, argv, slot) in [
        ("pre_run", &hooks.pre_run, &mut out.hooks.pre_run),
        ("post_run", &hooks.post_run, &mut out.hooks.post_run),
    ] {
        if let Some(argv) = argv {
            if argv.first().is_none_or(|p| p.is_empty()) {
                bail!("hooks.{key}: an argv list whose first word is the program");
            }
            *slot = Some(argv.clone());
        }
    }
    if let Some(text) = &hooks.timeout {
        out.hooks.timeout = duration(text, "hooks.timeout")?;
    }
    Ok(())
}

fn overlay_check(out: &mut Settings, check: &CheckFile) -> Result<()> {
    for (key, given, slot) in [
        ("check.warn", &check.warn, &mut out.check.warn),
        ("check.crit", &check.crit, &mut out.check.crit),
        (
            "check.mass_change",
            &check.mass_change,
            &mut out.check.mass_change,
        ),
        (
            "check.verify_age",
            &check.verify_age,
            &mut out.check.verify_age,
        ),
    ] {
        if let Some(text) = given {
            *slot = duration(text, key)?;
        }
    }
    if out.check.warn > out.check.crit {
        bail!("check.warn: longer than check.crit");
    }
    Ok(())
}

fn overlay_verify(out: &mut Settings, verify: &VerifyFile) -> Result<()> {
    if let Some(n) = verify.slices {
        let max = MAX_SLICES;
        if !(1..=max).contains(&n) {
            bail!("verify.slices: {n} is not between 1 and {max}");
        }
        out.verify.slices = n;
    }
    Ok(())
}

/// A finite, non-zero duration for a key that bounds something.
pub(super) fn duration(text: &str, key: &str) -> Result<Duration> {
    match Retention::parse(text) {
        Ok(Retention::For(span)) => Ok(span.nominal()),
        Ok(Retention::Never) => bail!("{key}: must be a duration, not never"),
        Err(e) => bail!("{key}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Global;
    use crate::expiry::Retention;
    use anyhow::Result;
    use std::path::Path;
    use std::time::Duration;

    fn global(text: &str) -> Result<Global> {
        Global::parse(text, Path::new("/backup/etc/zbk.toml"))
    }

    #[test]
    fn tiers_merge_over_the_defaults() {
        let g = global("dataset = \"t\"\n[tiers]\nweekly = \"6weeks\"\nhourly = \"2d\"\n").unwrap();
        assert_eq!(
            g.settings.tier("weekly").unwrap(),
            Retention::parse("6weeks").unwrap()
        );
        assert!(g.settings.tier("hourly").is_ok());
        assert!(g.settings.tier("yearly").is_ok());
        let err = g.settings.tier("daily").unwrap_err().to_string();
        assert!(err.contains("unknown tier \"daily\""), "{err}");
        assert!(err.contains("weekly"), "{err}");
    }

    #[test]
    fn errors_name_the_file_line_and_key() {
        let cases = [
            (
                "dataset = \"t\"\nmin_keep = \"one\"\n",
                "zbk.toml:2: min_keep: invalid type",
            ),
            (
                "dataset = \"t\"\nbogus = 1\n",
                "zbk.toml:2: bogus: unknown field `bogus`",
            ),
            (
                "dataset = \"t\"\n[tiers]\nweekly = \"soon\"\n",
                "zbk.toml: tiers.weekly: invalid duration",
            ),
            (
                "dataset = \"t\"\n[rsync]\nargs = \"-a\"\n",
                "rsync.args: invalid type",
            ),
            (
                "dataset = \"t\"\n[rsync]\nok_codes = [\"0\"]\n",
                "rsync.ok_codes[0]: invalid type",
            ),
            ("dataset = \"t\"\n[rsync\n", "zbk.toml:2:"),
            ("min_keep = 1\n", "dataset: missing"),
            (
                "dataset = \"../x\"\n",
                "dataset: \"../x\" is not a ZFS filesystem name",
            ),
            (
                "dataset = \"t\"\nsources = [\"/x\"]\n",
                "sources: belongs in a host's",
            ),
            (
                "dataset = \"t\"\nlog_keep = 0\n",
                "log_keep: must be at least 1",
            ),
            (
                "dataset = \"t\"\noffsite_expiry = \"soon\"\n",
                "offsite_expiry: invalid duration",
            ),
            (
                "dataset = \"t\"\nmin_keep = -1\n",
                "min_keep: invalid value",
            ),
            (
                "dataset = \"t\"\n[guard]\nmax_change = 1.5\n",
                "guard.max_change: 1.5 is not a fraction",
            ),
            (
                "dataset = \"t\"\n[guard]\nmax_change = \"off\"\n",
                "guard.max_change: \"off\" is not a fraction",
            ),
            (
                "dataset = \"t\"\n[guard]\npin_for = \"soon\"\n",
                "guard.pin_for: invalid duration",
            ),
            (
                "dataset = \"t\"\n[check]\nmass_change = \"never\"\n",
                "check.mass_change: must be a duration",
            ),
            (
                "dataset = \"t\"\n[verify]\nslices = 0\n",
                "verify.slices: 0 is not between 1 and 366",
            ),
            (
                "dataset = \"t\"\n[verify]\nslices = 400\n",
                "verify.slices: 400 is not between 1 and 366",
            ),
            (
                "dataset = \"t\"\n[check]\nverify_age = \"never\"\n",
                "check.verify_age: must be a duration",
            ),
            ("dataset = \"t\"\njobs = 0\n", "jobs: must be at least 1"),
            ("dataset = \"t\"\njobs = \"4\"\n", "jobs: invalid type"),
            ("dataset = \"t\"\njobs = -2\n", "jobs: invalid value"),
            (
                "dataset = \"t\"\nonline = \"never\"\n",
                "zbk.toml: online: \"never\" is neither \"always\" nor \"sometimes\"",
            ),
            ("dataset = \"t\"\nonline = true\n", "online: invalid type"),
            (
                "dataset = \"t\"\n[rsync]\nio_timeout = \"0s\"\n",
                "rsync.io_timeout: invalid duration \"0s\": must be longer than zero",
            ),
            (
                "dataset = \"t\"\n[rsync]\nio_timeout = \"-5m\"\n",
                "rsync.io_timeout: invalid duration",
            ),
            (
                "dataset = \"t\"\n[rsync]\nio_timeout = \"off\"\n",
                "rsync.io_timeout: invalid duration",
            ),
            (
                "dataset = \"t\"\n[rsync]\nio_timeout = 600\n",
                "zbk.toml:3: rsync.io_timeout: invalid type",
            ),
            (
                "dataset = \"t\"\n[zfs]\ntimeout = \"0m\"\n",
                "zfs.timeout: invalid duration \"0m\": must be longer than zero",
            ),
            (
                "dataset = \"t\"\n[zfs]\ntimeout = \"soon\"\n",
                "zfs.timeout: invalid duration",
            ),
            (
                "dataset = \"t\"\n[zfs]\ntimeout = \"never\"\n",
                "zfs.timeout: must be a duration, not never",
            ),
            (
                "dataset = \"t\"\n[zfs]\nwait = \"1m\"\n",
                "zfs.wait: unknown field",
            ),
        ];
        for (text, want) in cases {
            let err = global(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(err.starts_with("/backup/etc/zbk.toml"), "{err}");
            assert!(!err.contains('\n'), "multi-line: {err}");
        }
    }

    #[test]
    fn every_child_has_a_deadline_by_default_and_none_is_said_out_loud() {
        let g = global("dataset = \"t\"\n").unwrap();
        assert_eq!(g.zfs_timeout, Duration::from_secs(600));
        assert_eq!(g.settings.rsync.io_timeout, Some(Duration::from_secs(600)));
        let set =
            global("dataset = \"t\"\n[zfs]\ntimeout = \"30s\"\n[rsync]\nio_timeout = \"none\"\n")
                .unwrap();
        assert_eq!(set.zfs_timeout, Duration::from_secs(30));
        assert_eq!(set.settings.rsync.io_timeout, None);
        let path = Path::new("/backup/hosts/a/c/zbk.toml");
        let host = g
            .parse_host("sources = [\"/x\"]\n[rsync]\nio_timeout = \"90s\"\n", path)
            .unwrap();
        assert_eq!(
            host.settings.rsync.io_timeout,
            Some(Duration::from_secs(90))
        );
        let err = g
            .parse_host("sources = [\"/x\"]\n[zfs]\ntimeout = \"1m\"\n", path)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/backup/hosts/a/c/zbk.toml: zfs: belongs in the global config"),
            "{err}"
        );
    }

    #[test]
    fn the_mass_change_guard_is_on_by_default_and_per_host() {
        let g = global("dataset = \"t\"\n").unwrap();
        assert_eq!(g.settings.guard.change.max_change, Some(0.5));
        assert_eq!(g.settings.guard.change.min_files, 200);
        assert_eq!(g.settings.guard.pin_for.to_string(), "30days");
        let path = Path::new("/backup/hosts/a/c/zbk.toml");
        let off = g
            .parse_host("sources = [\"/x\"]\n[guard]\nmax_change = \"none\"\n", path)
            .unwrap();
        assert_eq!(off.settings.guard.change.max_change, None);
        let tight = g
            .parse_host(
                "sources = [\"/x\"]\n[guard]\nmax_change = 0.2\nmin_files = 50\npin_for = \"90days\"\n",
                path,
            )
            .unwrap();
        assert_eq!(tight.settings.guard.change.max_change, Some(0.2));
        assert_eq!(tight.settings.guard.change.min_files, 50);
        assert_eq!(
            tight.settings.guard.pin_for,
            Retention::parse("90days").unwrap()
        );
        let whole = g
            .parse_host("sources = [\"/x\"]\n[guard]\nmax_change = 1\n", path)
            .unwrap();
        assert_eq!(whole.settings.guard.change.max_change, Some(1.0));
    }
}
