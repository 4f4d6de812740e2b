//! Every side effect passes the one effects gate (issue 10, design/README.md §3, agents.md 1.5): all six agents run
//! in dry run against the in-process sandbox and the real parts `scripts/test.sh` starts (a real PM2 daemon with a
//! crashing app, PostgreSQL, Redis, S3, the SMTP sink, a local Slack receiver), each with findings present, and
//! nothing changes: no API write, no process-manager command, no maintenance statement, no rotated log, no delivery,
//! no state or outbox file; the audit log holds only `dryRun: true` lines, one for each would-be mutation.

// Both harnesses include tests/support/mod.rs as their own `support` module; this test uses both harnesses.
#![allow(clippy::duplicate_mod)]

mod db_maintainer_harness;
mod ops_reporter_harness;

use chrono::{SubsecRound, Utc};
use db_maintainer_harness as dbh;
use ops_reporter_harness as orh;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vizora_ops::config::{Config, Source};
use vizora_ops::model::{AgentName, Severity};
use vizora_ops::procman::{Pm2, ProcStatus, ProcessManager};
use vizora_ops::runner::{RunOptions, RunReport, Wiring, run_agent};
use vizora_ops::sandbox::{DEMO_FIXTURE, Sandbox, SandboxOptions};

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/pm2/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A real PM2 daemon in its own `PM2_HOME`; `pm2 kill` on drop (panics included).
struct RealPm2 {
    bin: String,
    home: tempfile::TempDir,
}

impl RealPm2 {
    fn start(eco: &Path) -> RealPm2 {
        let pm2 = RealPm2 {
            bin: dbh::support::pm2_bin(),
            home: tempfile::Builder::new().prefix("pm2g").tempdir().unwrap(),
        };
        let out = Command::new(&pm2.bin)
            .args(["start", eco.to_str().unwrap()])
            .env("PM2_HOME", pm2.home.path())
            .stdin(Stdio::null())
            .output()
            .expect("run pm2");
        assert!(out.status.success(), "pm2 start: {out:?}");
        pm2
    }

    fn manager(&self) -> Arc<Pm2> {
        let mut pm = Pm2::new(self.bin.clone());
        pm.pm2_home = Some(self.home.path().to_path_buf());
        Arc::new(pm)
    }

    /// The daemon's own log: every start, restart and stop of an app is a line here.
    fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.home.path().join("pm2.log")).unwrap_or_default()
    }
}

impl Drop for RealPm2 {
    fn drop(&mut self) {
        let _ = Command::new(&self.bin)
            .arg("kill")
            .env("PM2_HOME", self.home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The web app crash-loops (one automatic restart, then `errored`) until `flag` is removed; the others stay up.
fn ecosystem(dir: &Path, flag: &Path) -> std::path::PathBuf {
    let server = fixture("server.js");
    let eco = dir.join("ecosystem.json");
    let apps = json!({"apps": [
        {"name": "vizora-middleware", "script": server, "args": []},
        {"name": "vizora-realtime", "script": server, "args": []},
        {"name": "vizora-web", "script": server, "args": ["--fail-if", flag.display().to_string()],
         "max_restarts": 1, "min_uptime": 10000, "restart_delay": 0},
    ]});
    std::fs::write(&eco, apps.to_string()).unwrap();
    eco
}

/// Polls the real process list until `vizora-web` is `errored` and the others online (30 s at most).
async fn settled(pm: &Pm2) -> (String, Option<u64>, Option<i64>) {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let list = pm.list().await.expect("pm2 jlist");
        let st = |n: &str| list.iter().find(|p| p.name == n).map(|p| p.status.clone());
        if st("vizora-web") == Some(ProcStatus::Errored)
            && st("vizora-middleware") == Some(ProcStatus::Online)
            && st("vizora-realtime") == Some(ProcStatus::Online)
        {
            return pm2_web(pm).await;
        }
        assert!(Instant::now() < end, "PM2 apps did not settle: {list:#?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The crashing app as PM2 reports it: status, `restart_time` and `pm_uptime` (epoch ms of its last start; a
/// `pm2 restart` of an errored app starts it anew without always counting a restart).
async fn pm2_web(pm: &Pm2) -> (String, Option<u64>, Option<i64>) {
    let list = pm.list().await.expect("pm2 jlist");
    let web = list.iter().find(|p| p.name == "vizora-web").expect("web");
    (
        web.status.as_str().to_string(),
        web.restart_time,
        web.pm_uptime,
    )
}

/// `vacuum_count`, `autovacuum_count`, `analyze_count`, `autoanalyze_count` per test table, and the file node of each
/// configured index (a `REINDEX … CONCURRENTLY` gives the index a new one).
async fn pg_counters(db: &dbh::TestDb) -> BTreeMap<String, Vec<i64>> {
    let mut out = BTreeMap::new();
    for r in db
        .client
        .query(
            "SELECT relname::text, vacuum_count, autovacuum_count, analyze_count, autoanalyze_count \
             FROM pg_stat_user_tables WHERE schemaname = 'public'",
            &[],
        )
        .await
        .expect("pg_stat_user_tables")
    {
        out.insert(
            format!("table {}", r.get::<_, String>(0)),
            (1..5).map(|i| r.get::<_, i64>(i)).collect(),
        );
    }
    for r in db
        .client
        .query(
            "SELECT relname::text, relfilenode::bigint FROM pg_class WHERE relname IN \
             ('Content_status_idx', 'devices_status_idx')",
            &[],
        )
        .await
        .expect("pg_class")
    {
        out.insert(
            format!("index {}", r.get::<_, String>(0)),
            vec![r.get::<_, i64>(1)],
        );
    }
    out
}

/// API requests that change something (everything but GET/HEAD, login and logout).
fn api_writes(sb: &Sandbox) -> Vec<(String, String)> {
    sb.requests()
        .into_iter()
        .filter(|r| r.method != "GET" && r.method != "HEAD")
        .filter(|r| r.path != "/api/v1/auth/login" && r.path != "/api/v1/auth/logout")
        .map(|r| (r.method, r.path))
        .collect()
}

#[tokio::test]
async fn every_agent_in_dry_run_writes_runs_and_delivers_nothing_and_audits_only_dry_run_lines() {
    // ---- the real parts, each with something to fix
    let sb = Sandbox::start(
        DEMO_FIXTURE,
        SandboxOptions {
            port: 0,
            throttle: false,
            ..Default::default()
        },
    )
    .await
    .expect("sandbox starts");
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("crash.flag");
    std::fs::write(&flag, "x").unwrap();
    let eco = ecosystem(dir.path(), &flag);
    let pm2 = RealPm2::start(&eco);
    let pm = pm2.manager();
    let restarts_before = settled(&pm).await;
    // The crash cause is gone: a restart now would bring the app online (and count).
    std::fs::remove_file(&flag).unwrap();
    let pm2_log_before = pm2.daemon_log();

    let db = dbh::TestDb::new().await;
    db.churn("Content", 2_000).await;
    db.churn("devices", 2_000).await;
    let bucket = dbh::bucket_with(&[("media/a.bin", 4096)]).await;

    let pm2_logs = dir.path().join("pm2-logs");
    std::fs::create_dir_all(&pm2_logs).unwrap();
    let due_log = pm2_logs.join("vizora-web-out.log");
    let due_bytes = dbh::log_file(&due_log, 9_000);

    let (hook, slack) = orh::slack_receiver().await;
    let (smtp_host, smtp_port, smtp_dir) = dbh::support::smtp_sink();
    let rcpt = orh::unique_rcpt("dry-run-gate");

    let log_dir = dir.path().join("ops");
    let s = |p: &Path| p.display().to_string();
    let pairs: Vec<(String, String)> = [
        ("VALIDATOR_BASE_URL", sb.api_url.clone()),
        ("OPS_EMAIL", "ops@example.test".into()),
        ("OPS_PASSWORD", "ops-demo-password".into()),
        ("OPS_LOG_DIR", s(&log_dir)),
        ("OPS_RATE_LIMIT_BACKEND", "memory".into()),
        // health-guardian: the real PM2, probes to the sandbox's healthy services
        ("OPS_PM2_BIN", pm2.bin.clone()),
        ("OPS_ECOSYSTEM_FILE", s(&eco)),
        (
            "OPS_MIDDLEWARE_PROBE_URL",
            format!("{}/api/v1/health/ready", sb.api_url),
        ),
        (
            "OPS_REALTIME_PROBE_URL",
            format!("{}/api/health/ready", sb.realtime_url),
        ),
        ("OPS_WEB_PROBE_URL", format!("{}/", sb.web_url)),
        ("OPS_PROBE_CONFIRM_S", "1".into()),
        ("OPS_RESTART_COOLDOWN_S", "3".into()),
        ("OPS_HOST_MEMORY_THRESHOLD_PCT", "100".into()),
        // db-maintainer: a missing table (critical, alerted), two tables and an index due, Redis, S3, a due log
        ("DATABASE_URL", db.url.clone()),
        ("OPS_VACUUM_TABLES", "Content,devices,NoSuchTable".into()),
        ("OPS_REINDEX_INDEXES", "Content_status_idx".into()),
        ("REDIS_URL", dbh::support::redis_url()),
        ("OPS_S3_ENDPOINT", dbh::support::s3_endpoint()),
        ("OPS_S3_ACCESS_KEY", "testing".into()),
        ("OPS_S3_SECRET_KEY", "testing-secret".into()),
        ("OPS_S3_BUCKETS", bucket),
        ("OPS_PM2_LOG_DIR", s(&pm2_logs)),
        ("OPS_LOG_MAX_BYTES", "4096".into()),
        ("OPS_LOG_TAIL_BYTES", "1024".into()),
        // deliveries: Slack to the local receiver, e-mail to the real SMTP sink for a recipient of this test only
        ("SLACK_WEBHOOK_URL", hook),
        ("SMTP_HOST", smtp_host),
        ("SMTP_PORT", smtp_port.to_string()),
        ("SMTP_SECURE", "none".into()),
        ("OPS_ALERT_EMAIL", rcpt.clone()),
        ("OPS_NOTIFY_TIMEOUT_MS", "1500".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let cfg = Arc::new(
        Config::from_source(Source::from_pairs(pairs), dir.path()).expect("valid configuration"),
    );
    // ops-reporter's finding: a critical incident in the state, never reported (a status alert and digest are due).
    let t = Utc::now().trunc_subsecs(3);
    let crit = orh::incident(
        AgentName::FleetManager,
        "location_offline",
        Severity::Critical,
        "loc-1",
        "every display of the location is offline",
        t,
    );
    std::fs::create_dir_all(&log_dir).unwrap();
    let state = serde_json::to_vec_pretty(&orh::state_with(vec![crit], t).to_value()).unwrap();
    std::fs::write(&cfg.state_file, &state).unwrap();
    let pg_before = pg_counters(&db).await;
    let entity_before = display_fields(&sb);

    // ---- every agent, dry run, real alert sink (Slack + SMTP from the configuration)
    let mut reports: Vec<RunReport> = Vec::new();
    for agent in AgentName::ALL {
        let r = run_agent(
            cfg.clone(),
            agent,
            RunOptions { dry_run: true },
            Wiring {
                process_manager: Some(pm.clone()),
                ..Default::default()
            },
        )
        .await;
        reports.push(r);
    }

    // Every leak is collected, so one failing run names them all (and the test database is dropped first).
    let mut leaks: Vec<String> = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            leaks.push(what);
        }
    };
    for r in &reports {
        check(
            r.fatal.is_none() && r.exit_code == 1,
            format!(
                "{:?} ran with its findings remaining (exit 1): exit {}, {:?}, {:#?}",
                r.agent, r.exit_code, r.fatal, r.report
            ),
        );
        check(!r.wrote_state, format!("{:?} wrote the state", r.agent));
    }
    let report_of = |a: AgentName| {
        reports
            .iter()
            .find(|r| r.agent == a)
            .unwrap()
            .report
            .join("\n")
    };
    // The would-be effects were there to be made (so "nothing happened" below means the gate held them).
    let hg = report_of(AgentName::HealthGuardian);
    check(
        hg.contains("dry run: would run `"),
        format!("health-guardian listed no command: {hg}"),
    );
    let or = report_of(AgentName::OpsReporter);
    for want in [
        "dry run: would send to slack",
        "dry run: would send to email",
        "would be pushed to the dashboard",
    ] {
        check(
            or.contains(want),
            format!("ops-reporter: no {want:?} in {or}"),
        );
    }

    // ---- no API write, no state change in the sandbox
    let writes = api_writes(&sb);
    check(writes.is_empty(), format!("API writes: {writes:?}"));
    check(
        display_fields(&sb) == entity_before,
        "the display in error changed".into(),
    );
    check(sb.ops_status().is_none(), "the dashboard was pushed".into());

    // ---- no process-manager command
    let restarts = pm2_web(&pm).await;
    check(
        restarts == restarts_before,
        format!(
            "the crashing app was restarted: (status, restart_time, pm_uptime) {restarts_before:?} → {restarts:?}"
        ),
    );
    let pm2_log_after = pm2.daemon_log();
    let added = pm2_log_after
        .strip_prefix(pm2_log_before.as_str())
        .unwrap_or(&pm2_log_after);
    check(
        !added.contains("vizora-web"),
        format!("PM2 logged a command on the app:\n{added}"),
    );

    // ---- no maintenance statement
    let pg_after = pg_counters(&db).await;
    check(
        pg_after == pg_before,
        format!("PostgreSQL statistics changed: {pg_before:?} → {pg_after:?}"),
    );

    // ---- no rotated log
    check(
        std::fs::read(&due_log).unwrap() == due_bytes,
        "the due log was rewritten".into(),
    );
    check(
        !pm2_logs.join("archive").exists(),
        "a log archive was made".into(),
    );

    // ---- no delivery, nothing queued, no local file written
    let posts = slack.posts().len();
    check(posts == 0, format!("Slack received {posts} message(s)"));
    let mails = orh::stored_for(&smtp_dir, &rcpt).len();
    check(
        mails == 0,
        format!("the SMTP sink received {mails} message(s)"),
    );
    check(
        !log_dir.join("ops-outbox.json").exists(),
        "the outbox was written".into(),
    );
    check(
        std::fs::read(&cfg.state_file).unwrap() == state,
        "the state file changed".into(),
    );

    // ---- audit lines only with dryRun: true, one for each kind of would-be mutation
    let audit: Vec<Value> = std::fs::read_to_string(&cfg.audit_file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let not_dry: Vec<&Value> = audit.iter().filter(|l| l["dryRun"] != true).collect();
    check(
        not_dry.is_empty(),
        format!("audit lines without dryRun: true: {not_dry:#?}"),
    );
    let by = |agent: &str, method: &str| {
        audit
            .iter()
            .filter(|l| l["agent"] == agent && l["method"] == method)
            .count()
    };
    for (agent, method, at_least) in [
        ("health-guardian", "pm2 restart", 1),
        ("db-maintainer", "SQL", 3),  // 2 VACUUM + 1 REINDEX
        ("db-maintainer", "FILE", 1), // the due log
        ("fleet-manager", "POST", 1),
    ] {
        let n = by(agent, method);
        check(
            n >= at_least,
            format!("{agent}: {n} {method} audit line(s), expected at least {at_least}"),
        );
    }
    db.drop().await;
    assert!(leaks.is_empty(), "{}", leaks.join("\n---\n"));
}

/// The fields of the display in error that fleet-manager would change (its heartbeat is live, so not the whole row).
fn display_fields(sb: &Sandbox) -> (Value, Value) {
    let d = sb.entity("displays", &display_in_error()).expect("display");
    (d["status"].clone(), d["updatedAt"].clone())
}

/// "Sheffield Checkout 2": the demo display in `error` that fleet-manager would PATCH (fleet_manager_sandbox.rs).
fn display_in_error() -> String {
    let fx: Value = serde_json::from_str(DEMO_FIXTURE).unwrap();
    fx["displays"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["nickname"] == "Sheffield Checkout 2")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}
