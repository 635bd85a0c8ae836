//! `zbk report` end to end: the page of a real pool with ok, warning, failed and retired hosts,
//! loaded in headless Chromium (no console error, every host in the table, a screenshot kept
//! under target/report/), written atomically, and other servers' `status --json` beside it.

#![allow(
    clippy::disallowed_methods,
    reason = "a test runs zbk, zfs and the tools around them itself"
)]

mod common;

use common::{json, text, Pool};
use std::path::{Path, PathBuf};
use std::process::Command;

fn add_config(pool: &Pool, host: &str, extra: &str) {
    let config = pool.root.join(format!("hosts/{host}/c/zbk.toml"));
    let base = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{base}\n{extra}")).unwrap();
}

/// Where the test keeps its page and screenshots for people to look at: target/report/.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/report");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A pool with one host of each kind: `ok1` (good runs), `warn1` (a mass change, stamped
/// warning), `fail1` (a run stopped by a guard whose file is named `<script>x</script>`),
/// `gone1` (retired) and `new1` (never run).
fn fleet() -> Pool {
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    for i in 0..8 {
        std::fs::write(src.join(format!("f{i}")), format!("first {i}")).unwrap();
    }
    for host in ["ok1", "warn1", "fail1", "gone1", "new1"] {
        pool.add_host(host, &src);
    }
    add_config(&pool, "warn1", "[guard]\nmin_files = 1\n");
    pool.zbk_expect(0, &["run", "ok1", "warn1", "gone1"]);
    add_config(
        &pool,
        "fail1",
        "[guard]\ncheck_file = \"<script>x</script>\"\n",
    );
    pool.zbk_expect(1, &["run", "fail1"]);
    // Every file rewritten: more than guard.max_change, so the run is a warning.
    for i in 0..8 {
        std::fs::write(src.join(format!("f{i}")), format!("second, longer {i}")).unwrap();
    }
    pool.zbk_expect(0, &["run", "warn1"]);
    pool.zbk_expect(0, &["run", "ok1"]);
    pool.zbk_expect(0, &["remove", "gone1", "--expire"]);
    pool
}

/// Chromium's program, or a loud failure with the fix.
fn chromium() -> &'static str {
    let out = Command::new("chromium").arg("--version").output();
    match out {
        Ok(o) if o.status.success() => "chromium",
        _ => panic!("chromium not found: apt-get install chromium (tests/run.sh installs it)"),
    }
}

/// How long one headless Chromium may take: a page renders in under a minute even under the
/// OpenZFS tier's emulated CPU, and a Chromium that hangs must fail this test, not the tier.
const CHROMIUM_SECS: u32 = 300;

/// Runs headless Chromium on `page` with `extra` flags; returns stdout and the console
/// messages it logged (lines with `CONSOLE`).
fn headless(page: &Path, extra: &[&str]) -> (String, Vec<String>) {
    let home = tempfile::tempdir().unwrap();
    // Its output goes to files, not pipes: the crash handler Chromium starts outlives it
    // and would hold a pipe open, and reading to the end of one would wait for it.
    let (stdout, stderr) = (home.path().join("stdout"), home.path().join("stderr"));
    let status = Command::new("timeout")
        .args(["-k", "10", &CHROMIUM_SECS.to_string(), chromium()])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", home.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .env("HOME", home.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .status()
        .expect("run chromium");
    let (stdout, stderr) = (
        std::fs::read_to_string(stdout).unwrap(),
        std::fs::read_to_string(stderr).unwrap(),
    );
    assert_ne!(
        status.code(),
        Some(124),
        "chromium did not finish within {CHROMIUM_SECS} s on {}\n{stderr}",
        page.display()
    );
    assert!(status.success(), "chromium failed: {status}\n{stderr}");
    let console = stderr
        .lines()
        .filter(|l| l.contains("CONSOLE"))
        .map(str::to_string)
        .collect();
    (stdout, console)
}

#[test]
fn the_page_of_a_real_fleet_loads_in_chromium_with_every_host() {
    let pool = fleet();
    let dir = artifacts();
    let page = dir.join("report.html");
    let _ = std::fs::remove_file(&page);
    pool.zbk_expect(0, &["report", "--html", page.to_str().unwrap()]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<script>x"), "unescaped failure reason");
    assert!(
        html.contains("&lt;script&gt;x&lt;/script&gt;"),
        "reason not shown as text"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&page).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o644);

    // The way console errors are seen must see one: a page with a broken script and a
    // blocked remote image logs both.
    let broken = dir.join("broken.html");
    std::fs::write(
        &broken,
        "<!DOCTYPE html><html><body><script>console.error('seen'); undefinedCall();</script></body></html>",
    )
    .unwrap();
    let (_, console) = headless(&broken, &["--dump-dom"]);
    assert!(
        console.iter().any(|l| l.contains("seen"))
            && console.iter().any(|l| l.contains("undefinedCall")),
        "console errors are not visible this way: {console:?}"
    );

    let (dom, console) = headless(&page, &["--dump-dom"]);
    assert!(console.is_empty(), "console messages: {console:#?}");
    let hosts: Vec<&str> = dom
        .split("<b class=\"name\">")
        .skip(1)
        .map(|cell| cell.split('<').next().unwrap())
        .collect();
    assert_eq!(
        hosts,
        ["fail1", "new1", "warn1", "ok1", "gone1"],
        "worst first"
    );
    for word in ["CRITICAL", "WARNING", "OK", "RETIRED", "MASS CHANGE"] {
        assert!(dom.contains(word), "{word} missing");
    }
    assert!(
        dom.contains("&lt;script&gt;x&lt;/script&gt;"),
        "the reason shows as text"
    );

    let shot = dir.join("report.png");
    let _ = std::fs::remove_file(&shot);
    let (_, console) = headless(
        &page,
        &[
            "--hide-scrollbars",
            "--window-size=1600,1000",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    assert!(console.is_empty(), "console messages: {console:#?}");
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );

    // The sample of README.md: this fleet beside a made-up server with 60 days behind it.
    // Its path shows on the page: one any machine has, not this checkout's.
    let samples = std::env::temp_dir().join("zbk-report-sample");
    std::fs::create_dir_all(&samples).unwrap();
    let backup2 = samples.join("backup2.json");
    std::fs::write(&backup2, sample_server().to_string()).unwrap();
    let sample = dir.join("sample.html");
    pool.zbk_expect(
        0,
        &[
            "report",
            "--html",
            sample.to_str().unwrap(),
            "--from",
            backup2.to_str().unwrap(),
        ],
    );
    let shot = dir.join("sample.png");
    let (_, console) = headless(
        &sample,
        &[
            "--hide-scrollbars",
            "--window-size=1600,1300",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    assert!(console.is_empty(), "console messages: {console:#?}");
}

/// A made-up second server's `status --json` with 60 days of history, for the sample
/// screenshot beside the real pool (README.md shows it): a server the suite cannot age.
fn sample_server() -> serde_json::Value {
    use serde_json::json;
    let now = chrono::Utc::now();
    let at = |hours: i64| {
        (now - chrono::Duration::hours(hours))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    // (host, state, why, last good hours ago, days failing, warning days, base size GiB, growth)
    let hosts = [
        ("mail1", "CRITICAL", "last good backup 3d 2h ago (critical after 50h), 74 failed runs since", 74, 3, vec![], 38.0, 0.02),
        ("files1", "WARNING", "last good backup 1h ago, mass change at 2026-12-06T05:17:05Z (last clean backup pinned; zbk keep or zbk restamp acknowledges)", 1, 0, vec![0, 17, 18], 412.0, 0.15),
        ("db1", "OK", "last good backup 0h 40m ago", 1, 0, vec![9], 96.0, 0.6),
        ("web1", "OK", "last good backup 0h 40m ago", 1, 0, vec![], 12.0, 0.01),
        ("web2", "OK", "last good backup 0h 40m ago", 1, 0, vec![31, 32], 12.5, 0.01),
    ];
    let mut rows = Vec::new();
    for (host, state, why, good, failing, warnings, base, growth) in hosts {
        let history: Vec<serde_json::Value> = (0..60)
            .rev()
            .map(|back: i64| {
                let date = (now - chrono::Duration::days(back))
                    .format("%Y-%m-%d")
                    .to_string();
                let failed = back < failing;
                let warned = warnings.contains(&back);
                let size = ((base + growth * (60 - back) as f64) * 1073741824.0) as u64;
                json!({"date": date, "runs": 24,
                       "status": if failed { "failed" } else if warned { "warning" } else { "ok" },
                       "failed_runs": if failed { 24 } else if warned { 2 } else { 0 },
                       "referenced_bytes": if failed { None } else { Some(size) }})
            })
            .collect();
        let mut tiers = json!({"default": 168, "weekly": 5, "monthly": 13, "yearly": 2});
        if host == "files1" {
            tiers["quarterly"] = json!(8);
        }
        rows.push(json!({
            "host": host, "retired": false, "state": state, "state_reason": why,
            "last_good_snapshot": "2026-12-06T061705Z", "last_good_time": at(good),
            "last_run_time": at(1), "last_run_status": if failing > 0 { "failed" } else if state == "WARNING" { "warning" } else { "ok" },
            "last_run_changes": {"files": 120000, "created": 40, "deleted": 3, "changed": 210, "bytes": 734003200},
            "consecutive_failures": failing * 24,
            "last_failure_time": if failing > 0 { Some(at(1)) } else if host == "db1" { Some(at(24 * 9)) } else { None },
            "last_failure_reason": if failing > 0 { Some("rsync: connection unexpectedly closed (0 bytes received so far) [Receiver]") } else if host == "db1" { Some("pre_run [\"dump-databases\"] exited with 1") } else { None },
            "mass_change_time": if host == "files1" { Some(at(2)) } else { None },
            "snapshots": 188, "pinned_snapshots": if host == "files1" { 1 } else { 0 },
            "snapshots_per_tier": tiers,
            "used_bytes": ((base * 1.4) * 1073741824.0) as u64,
            "replication_lag_seconds": if host == "mail1" { None } else { Some(if host == "db1" { 7200 } else { 0 }) },
            "last_replicated_time": if host == "mail1" { None } else { Some(at(3)) },
            "history": history,
        }));
    }
    json!({"server": "backup2 (sample)", "pool": {"name": "tank", "check": "OK", "problems": [], "state": "ONLINE",
        "read_errors": 0, "write_errors": 0, "checksum_errors": 0, "data_errors": 0,
        "capacity_percent": 63, "scrub": "finished", "last_scrub_time": at(24 * 9), "last_scrub_errors": 0}, "hosts": rows})
}

#[test]
fn status_json_carries_what_the_page_needs_and_other_servers_join_it() {
    let pool = fleet();
    // A stamp nobody can read, on ok1's first snapshot: counted, shown, and nothing breaks.
    let first = pool.snapshots("ok1")[0].clone();
    common::ok(
        "zfs",
        &[
            "set",
            "zbk:expires=soon",
            &common::full(&pool, "ok1", &first),
        ],
    );
    let rows = json(&pool.zbk_expect(0, &["status", "--json"]));
    let by = |h: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["host"] == h)
            .unwrap()
            .clone()
    };
    let (ok1, warn1, fail1) = (by("ok1"), by("warn1"), by("fail1"));
    assert_eq!(ok1["state"], "OK");
    assert_eq!(ok1["snapshots_per_tier"]["default"], 2);
    let today = &ok1["history"][0];
    assert_eq!(
        (today["status"].as_str(), today["runs"].as_u64()),
        (Some("ok"), Some(2))
    );
    assert!(today["referenced_bytes"].as_u64().unwrap() > 0);
    assert_eq!(warn1["state"], "WARNING", "{warn1:#}");
    assert!(warn1["mass_change_time"].is_string());
    assert_eq!(fail1["state"], "CRITICAL");
    assert!(
        fail1["last_failure_reason"]
            .as_str()
            .unwrap()
            .contains("<script>x</script>"),
        "{fail1}"
    );
    assert_eq!(by("gone1")["state_reason"], "retired");
    assert_eq!(ok1["unreadable_stamps"], 1);

    // Another server's JSON, one host of it broken, and a file that is not JSON at all.
    let dir = pool.scratch("servers");
    let mut other = rows.clone();
    other.as_array_mut().unwrap()[0]["snapshots"] = "lots".into();
    let backup2 = dir.join("backup2.json");
    std::fs::write(
        &backup2,
        serde_json::json!({"pool": {"state": "DEGRADED", "check": "CRITICAL", "capacity_percent": 91}, "hosts": other})
            .to_string(),
    )
    .unwrap();
    let junk = dir.join("backup3.json");
    std::fs::write(&junk, "<html>").unwrap();
    let page = dir.join("out/fleet.html");
    std::fs::create_dir_all(page.parent().unwrap()).unwrap();
    let out = pool.zbk(&[
        "report",
        "--html",
        page.to_str().unwrap(),
        "--from",
        backup2.to_str().unwrap(),
        "--from",
        junk.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("backup3.json"),
        "{}",
        text(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<h2>backup2 ") && html.contains("<h2>backup3 "));
    assert!(html.contains("badge CRITICAL\">DEGRADED"));
    assert!(html.contains("UNREADABLE") && html.contains("its status does not parse"));
    assert!(html.contains("1 snapshot with an unreadable zbk:expires (kept)"));
    assert_eq!(html.matches("<b class=\"name\">").count(), 10);

    // To stdout, and an unwritable path named, with nothing left behind.
    let out = pool.zbk_expect(0, &["report"]);
    assert!(text(&out.stdout).starts_with("<!DOCTYPE html>"));
    let ro = pool.scratch("ro");
    let target = ro.join("missing/page.html");
    let out = pool.zbk_expect(1, &["report", "--html", target.to_str().unwrap()]);
    assert!(
        text(&out.stderr).contains(target.to_str().unwrap()),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(&ro).unwrap().count(), 0);
}

/// A program this test started, stopped when the test ends however it ends.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// GET one Prometheus API endpoint with these form parameters; its `data`.
fn api(port: u16, path: &str, params: &[(&str, &str)]) -> serde_json::Value {
    let mut args = vec![
        "-sS".to_string(),
        "--max-time".into(),
        "10".into(),
        "-G".into(),
    ];
    for (k, v) in params {
        args.push("--data-urlencode".into());
        args.push(format!("{k}={v}"));
    }
    args.push(format!("http://127.0.0.1:{port}{path}"));
    let out = Command::new("curl")
        .args(&args)
        .output()
        .expect("curl: apt-get install curl");
    let body: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{path} {params:?}: not JSON ({e}): {}", text(&out.stdout)));
    assert_eq!(body["status"], "success", "{path} {params:?}: {body}");
    body["data"].clone()
}

/// How Prometheus's scrapes of its targets went, for a failure's message: a failed scrape
/// makes every series it had stale.
fn scrapes(port: u16) -> String {
    let targets = api(port, "/api/v1/targets", &[]);
    let seen: Vec<String> = targets["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            format!(
                "target {} {} (last scrape {} s, error {:?})",
                t["scrapeUrl"], t["health"], t["lastScrapeDuration"], t["lastError"]
            )
        })
        .collect();
    seen.join("; ")
}

fn installed(program: &str, package: &str) -> &'static str {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{program} not found: apt-get install {package} (tests/run.sh installs it)"
    );
    Box::leak(program.to_string().into_boxed_str())
}

#[test]
fn monitoring_every_rule_and_dashboard_query_returns_data_through_prometheus() {
    let exporter = installed("prometheus-node-exporter", "prometheus-node-exporter");
    let prometheus = installed("prometheus", "prometheus");
    let pool = fleet();
    // The pool nearly full, for the capacity alert: a quota a tenth above what is used. On
    // OpenZFS the root dataset's `used` counts the pool's own metadata, a few hundred KB here
    // that move as the pool writes; a reservation of a child (space counted as used
    // without a byte written) makes `used` big enough that they stay far from the 80 % line.
    let serial = common::mount_lock();
    common::ok(
        "zfs",
        &[
            "create",
            "-o",
            "canmount=off",
            "-o",
            "reservation=16M",
            &format!("{}/ballast", pool.name),
        ],
    );
    drop(serial);
    let used: u64 = common::ok(
        "zfs",
        &["get", "-H", "-p", "-o", "value", "used", &pool.name],
    )
    .trim()
    .parse()
    .unwrap();
    common::ok(
        "zfs",
        &["set", &format!("quota={}", used * 11 / 10), &pool.name],
    );

    // The textfile, written the way zbk-status(8) says, by a zbk whose clock is a day behind:
    // its snapshots are then dated in the future too, so every alert has something to say.
    let dir = pool.scratch("textfile");
    let out = common::zbk_faked("-1d")
        .arg("--root")
        .arg(&pool.root)
        .args(["status", "--prometheus"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let textfile = text(&out.stdout);
    let sample = format!("zbk_dataset_capacity_percent{{dataset=\"{}\"}} ", pool.name);
    let pct: u8 = textfile
        .lines()
        .find_map(|l| l.strip_prefix(&sample))
        .unwrap_or_else(|| panic!("no {sample}in:\n{textfile}"))
        .parse()
        .unwrap();
    assert!(
        pct > 80,
        "{sample}{pct} under a quota of 110 % of used: {}",
        common::ok(
            "zfs",
            &["get", "-H", "-p", "used,available,quota", &pool.name]
        )
    );
    std::fs::write(dir.join("zbk.prom.tmp"), &out.stdout).unwrap();
    std::fs::rename(dir.join("zbk.prom.tmp"), dir.join("zbk.prom")).unwrap();

    let node_port = common::free_port();
    let _node = Daemon(
        Command::new(exporter)
            .arg(format!("--web.listen-address=127.0.0.1:{node_port}"))
            .args([
                "--collector.disable-defaults",
                "--collector.textfile",
                "--web.disable-exporter-metrics",
            ])
            .arg(format!("--collector.textfile.directory={}", dir.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let monitoring = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/monitoring");
    let prom_dir = pool.scratch("prometheus");
    let config = prom_dir.join("prometheus.yml");
    // A scrape that fails marks every series of the target stale, and a stale series is gone
    // from every query after it, whatever the lookback: under an emulated CPU busy with
    // Chromium beside this test, the 1 s timeout a 1 s interval implies was missed. Scrapes
    // are a few milliseconds; 10 s for each leaves them room.
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 10s\n  scrape_timeout: 10s\n  evaluation_interval: 10s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{node_port}']\n",
            monitoring.join("zbk.rules.yml").display()
        ),
    )
    .unwrap();
    let prom_port = common::free_port();
    let _prom = Daemon(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                prom_dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            // Queries at a later time still find the samples: see the rules below.
            .arg("--query.lookback-delta=30d")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );

    // Until Prometheus answers and has scraped every host (bounded: 120 s).
    let mut scraped = 0;
    for _ in 0..240 {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let out = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "2",
                "-G",
                "--data-urlencode",
                "query=zbk_snapshots",
            ])
            .arg(format!("http://127.0.0.1:{prom_port}/api/v1/query"))
            .output()
            .unwrap();
        if let Ok(body) = serde_json::from_slice::<serde_json::Value>(&out.stdout) {
            scraped = body["data"]["result"].as_array().map_or(0, Vec::len);
            if scraped == 5 {
                break;
            }
        }
    }
    assert_eq!(
        scraped,
        5,
        "Prometheus did not scrape the five hosts within 120 s: {}",
        scrapes(prom_port)
    );

    // Every rule's expression, evaluated 36 hours or three days on, when every backup is late
    // or missing, returns data: no rule reads a metric zbk does not export, and each can fire
    // on a real textfile.
    let later = |hours: i64| {
        (chrono::Utc::now() + chrono::Duration::hours(hours))
            .timestamp()
            .to_string()
    };
    let rules = api(prom_port, "/api/v1/rules", &[]);
    let rules: Vec<(String, String)> = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["query"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(rules.len(), 10, "{rules:?}");
    // The pool's own alerts judge a healthy pool here, so they must stay silent; what they
    // read must still be exported, metric by metric.
    let (pool_rules, rules): (Vec<_>, Vec<_>) = rules
        .into_iter()
        .partition(|(name, _)| name.starts_with("ZbkPool") && name != "ZbkPoolFull");
    assert_eq!(pool_rules.len(), 3, "{pool_rules:?}");
    for (name, query) in &pool_rules {
        let data = api(prom_port, "/api/v1/query", &[("query", query)]);
        assert!(
            data["result"].as_array().unwrap().is_empty(),
            "{name} fires on a healthy pool: {data}; {}",
            scrapes(prom_port)
        );
        let metrics: Vec<&str> = query
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("zbk_pool_"))
            .collect();
        assert!(!metrics.is_empty(), "{name}: {query}");
        for metric in metrics {
            let data = api(prom_port, "/api/v1/query", &[("query", metric)]);
            assert!(
                !data["result"].as_array().unwrap().is_empty(),
                "{name}: {metric} is not exported; {}",
                scrapes(prom_port)
            );
        }
    }
    for (name, query) in &rules {
        let fires = [36, 72].iter().any(|h| {
            let data = api(
                prom_port,
                "/api/v1/query",
                &[("query", query), ("time", &later(*h))],
            );
            !data["result"].as_array().unwrap().is_empty()
        });
        assert!(
            fires,
            "{name}: {query} returned nothing; {}",
            scrapes(prom_port)
        );
    }
    // The failed run fires now, for fail1 alone.
    let data = api(
        prom_port,
        "/api/v1/query",
        &[(
            "query",
            &rules.iter().find(|r| r.0 == "ZbkLastRunFailed").unwrap().1,
        )],
    );
    let hosts: Vec<&str> = data["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["metric"]["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["fail1"]);

    // Every panel's query returns data, now, with every host chosen.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(monitoring.join("zbk-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap().replace("$host", ".*");
            let data = api(prom_port, "/api/v1/query", &[("query", &expr)]);
            assert!(
                !data["result"].as_array().unwrap().is_empty(),
                "panel {:?}: {expr} returned nothing; {}",
                panel["title"],
                scrapes(prom_port)
            );
            queries += 1;
        }
    }
    assert!(queries >= 15, "{queries} queries");
}

/// A tiny HTTP server on 127.0.0.1 that answers 200 to everything and records each request
/// as `METHOD PATH BODY`, until it has seen `want` or `duration` has passed.
fn recorder(
    want: usize,
    duration: std::time::Duration,
) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let end = std::time::Instant::now() + duration;
        while seen.len() < want && std::time::Instant::now() < end {
            let Ok((stream, _)) = listener.accept() else {
                std::thread::sleep(std::time::Duration::from_millis(20));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut reader = BufReader::new(&stream);
            let mut first = String::new();
            reader.read_line(&mut first).unwrap();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut parts = first.split_whitespace();
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            seen.push(format!(
                "{method} {path} {}",
                String::from_utf8_lossy(&body)
            ));
            (&stream)
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK")
                .unwrap();
        }
        seen
    });
    (port, handle)
}

#[test]
fn the_dead_mans_switch_example_of_zbk_toml_5_pings_success_and_failure() {
    installed("curl", "curl");
    // The example as zbk.toml(5) prints it, roff escapes undone, pointed at the recorder.
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man/zbk.toml.5"))
            .unwrap();
    let example = page
        .lines()
        .find(|l| l.starts_with("post_run = [\"/bin/sh\"") && l.contains("hc\\-ping.com"))
        .expect("the dead man's switch example in man/zbk.toml.5")
        .replace("\\-", "-");
    let pool = Pool::initialised();
    let src = pool.scratch("src");
    std::fs::write(src.join("f"), "x").unwrap();
    pool.add_host("ok1", &src);
    let gone = pool.scratch("gone");
    pool.add_host("fail1", &gone);
    std::fs::remove_dir(&gone).unwrap();

    // Listening from here, once the pool is made (over a minute under the OpenZFS tier's
    // emulated CPU when the machine is busy), until both pings came: then it ends at once.
    let (port, server) = recorder(2, std::time::Duration::from_secs(300));
    let hook = example.replace("https://hc-ping.com", &format!("http://127.0.0.1:{port}"));
    let global = pool.root.join("etc/zbk.toml");
    let base = std::fs::read_to_string(&global).unwrap();
    std::fs::write(
        &global,
        format!("{base}\n[hooks]\n{}\n", hook.trim_start_matches("[hooks]")),
    )
    .unwrap();
    pool.zbk_expect(0, &["run", "ok1"]);
    pool.zbk_expect(1, &["run", "fail1"]);
    let ok_snap = pool.snapshots("ok1").pop().unwrap();
    let fail_snap = pool.snapshots("fail1").pop().unwrap();
    let seen = server.join().unwrap();
    assert_eq!(
        seen,
        [
            format!("POST /PING_KEY/ok1 default {ok_snap}"),
            format!("POST /PING_KEY/fail1/fail default {fail_snap}"),
        ]
    );
}
