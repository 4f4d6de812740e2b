//! health-guardian against a REAL PM2 (agents.md 6.1.2, 6.1.3, 1.6, 9 items 8, 23, 45): `VIZORA_TEST_PM2_BIN` from
//! scripts/test.sh; each test runs its own daemon in a temporary `PM2_HOME` and kills it at the end (also on panic).
//! The managed apps are the small node servers of tests/fixtures/pm2/; the probes go to the sandbox's healthy
//! services unless a test points one at a PM2-managed server.

mod support;

use chrono::{Duration, SubsecRound, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;
use vizora_ops::agents::InlineKind;
use vizora_ops::clock::{Clock, ManualClock};
use vizora_ops::config::{Config, Source};
use vizora_ops::model::AgentName;
use vizora_ops::procman::{Pm2, ProcStatus, ProcessInfo, ProcessManager};
use vizora_ops::runner::{RunOptions, RunReport, Wiring, run_agent};
use vizora_ops::sandbox::{DEMO_FIXTURE, Sandbox, SandboxOptions};
use vizora_ops::testing::RecordingSink;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/pm2/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A real PM2 daemon in its own `PM2_HOME`; `pm2 kill` on drop (panics included).
struct RealPm2 {
    bin: String,
    home: tempfile::TempDir,
}

impl RealPm2 {
    fn start() -> RealPm2 {
        let home = tempfile::Builder::new()
            .prefix("pm2h")
            .tempdir()
            .expect("temp PM2_HOME");
        RealPm2 {
            bin: support::pm2_bin(),
            home,
        }
    }

    /// Runs the pm2 CLI (test setup only, argv only).
    fn cli(&self, args: &[&str]) {
        let out = Command::new(&self.bin)
            .args(args)
            .env("PM2_HOME", self.home.path())
            .stdin(Stdio::null())
            .output()
            .expect("run pm2");
        assert!(
            out.status.success(),
            "pm2 {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn manager(&self) -> Arc<Pm2> {
        let mut pm = Pm2::new(self.bin.clone());
        pm.pm2_home = Some(self.home.path().to_path_buf());
        Arc::new(pm)
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

/// One app of the ecosystem file.
fn app(name: &str, args: &[String], crash_loop: bool) -> Value {
    let mut a = json!({"name": name, "script": fixture("server.js"), "args": args});
    if crash_loop {
        // Gives up quickly: one automatic restart, then `errored`.
        a["max_restarts"] = json!(1);
        a["min_uptime"] = json!(10000);
        a["restart_delay"] = json!(0);
    }
    a
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

struct Env {
    pm2: RealPm2,
    pm: Arc<Pm2>,
    sb: Sandbox,
    dir: tempfile::TempDir,
    eco: PathBuf,
    alerts: Arc<RecordingSink>,
    clock: Arc<ManualClock>,
}

impl Env {
    /// A sandbox for the probes, a PM2 daemon running `apps` from an ecosystem file.
    async fn start(apps: Vec<Value>) -> Env {
        let pm2 = RealPm2::start();
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
        let eco = dir.path().join("ecosystem.json");
        std::fs::write(&eco, json!({ "apps": apps }).to_string()).unwrap();
        pm2.cli(&["start", eco.to_str().unwrap()]);
        let pm = pm2.manager();
        Env {
            pm2,
            pm,
            sb,
            dir,
            eco,
            alerts: Arc::new(RecordingSink::default()),
            clock: Arc::new(ManualClock::new(Utc::now().trunc_subsecs(3))),
        }
    }

    fn config(&self, extra: &[(&str, &str)]) -> Arc<Config> {
        config_for(&self.sb, self.dir.path(), &self.pm2.bin, &self.eco, extra)
    }

    async fn run(&self, cfg: Arc<Config>) -> RunReport {
        let r = run_agent(
            cfg,
            AgentName::HealthGuardian,
            RunOptions { dry_run: false },
            Wiring {
                alerts: Some(self.alerts.clone()),
                clock: Some(self.clock.clone() as Arc<dyn Clock>),
                process_manager: Some(self.pm.clone()),
                ..Default::default()
            },
        )
        .await;
        assert!(r.fatal.is_none(), "{:?}", r.fatal);
        r
    }

    /// Polls the real jlist until `pred` holds for app `name` (panics with the last list after 30 s).
    async fn wait_for(
        &self,
        name: &str,
        what: &str,
        pred: impl Fn(&ProcessInfo) -> bool,
    ) -> ProcessInfo {
        let end = Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let list = self.pm.list().await.expect("pm2 jlist");
            if let Some(p) = list.iter().find(|p| p.name == name && pred(p)) {
                return p.clone();
            }
            assert!(
                Instant::now() < end,
                "timed out waiting for {name} {what}: {list:#?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    }

    async fn all_online(&self) {
        for n in ["vizora-middleware", "vizora-realtime", "vizora-web"] {
            self.wait_for(n, "online", |p| p.status == ProcStatus::Online)
                .await;
        }
    }

    fn incidents(&self) -> HashMap<String, Value> {
        let st: Value =
            serde_json::from_slice(&std::fs::read(self.dir.path().join("ops-state.json")).unwrap())
                .unwrap();
        st["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["id"].as_str().unwrap().to_string(), i.clone()))
            .collect()
    }

    fn incident(&self, kind: &str, target: &str) -> Value {
        let id = format!("health-guardian:{kind}:{target}");
        self.incidents()
            .remove(&id)
            .unwrap_or_else(|| panic!("no {id}: {:#?}", self.incidents().keys()))
    }

    fn mutations(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("ops-audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|l| l["kind"] == "mutation")
            .collect()
    }
}

fn config_for(
    sb: &Sandbox,
    dir: &Path,
    pm2_bin: &str,
    eco: &Path,
    extra: &[(&str, &str)],
) -> Arc<Config> {
    let log = dir.display().to_string();
    let mw = format!("{}/api/v1/health/ready", sb.api_url);
    let rt = format!("{}/api/health/ready", sb.realtime_url);
    let web = format!("{}/", sb.web_url);
    let eco = eco.display().to_string();
    let mut pairs: Vec<(String, String)> = [
        ("VALIDATOR_BASE_URL", sb.api_url.as_str()),
        ("OPS_LOG_DIR", log.as_str()),
        ("OPS_RATE_LIMIT_BACKEND", "memory"),
        ("OPS_PM2_BIN", pm2_bin),
        ("OPS_MIDDLEWARE_PROBE_URL", mw.as_str()),
        ("OPS_REALTIME_PROBE_URL", rt.as_str()),
        ("OPS_WEB_PROBE_URL", web.as_str()),
        ("OPS_PROBE_CONFIRM_S", "1"),
        ("OPS_RESTART_COOLDOWN_S", "3"),
        ("OPS_ECOSYSTEM_FILE", eco.as_str()),
        ("OPS_HOST_MEMORY_THRESHOLD_PCT", "100"),
        ("OPS_WINDOW_TOLERANCE_S", "0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        pairs.retain(|(kk, _)| kk != k);
        pairs.push((k.to_string(), v.to_string()));
    }
    Arc::new(Config::from_source(Source::from_pairs(pairs), dir).expect("valid config"))
}

fn s(v: &str) -> String {
    v.to_string()
}

#[tokio::test]
async fn a_crashed_pm2_process_is_restarted_by_pm_id_and_verified_online() {
    let work = tempfile::tempdir().unwrap();
    let flag = work.path().join("crash.flag");
    std::fs::write(&flag, "x").unwrap();
    let env = Env::start(vec![
        app("vizora-middleware", &[], false),
        app("vizora-realtime", &[], false),
        app(
            "vizora-web",
            &[s("--fail-if"), flag.display().to_string()],
            true,
        ),
    ])
    .await;
    let web = env
        .wait_for("vizora-web", "errored", |p| p.status == ProcStatus::Errored)
        .await;
    env.all_online_except_web().await;
    let id = web.pm_id.unwrap();
    std::fs::remove_file(&flag).unwrap();

    let r = env.run(env.config(&[])).await;
    assert_eq!(r.exit_code, 0, "{:#?}", r.report);
    let inc = env.incident("pm2-errored", &format!("vizora-web:{id}"));
    assert_eq!(inc["status"], "resolved", "{inc:#}");
    assert_eq!(inc["attempts"], 1);
    let muts = env.mutations();
    assert_eq!(muts.len(), 1, "{muts:#?}");
    assert_eq!(
        muts[0]["command"],
        json!([env.pm2.bin, "restart", id.to_string()])
    );
    assert_eq!(muts[0]["method"], "pm2 restart");
    assert_eq!(muts[0]["before"]["status"], "errored");
    assert_eq!(r.result.issues_fixed, 1);
    let now = env.pm.list().await.unwrap();
    assert_eq!(
        now.iter().find(|p| p.pm_id == Some(id)).unwrap().status,
        ProcStatus::Online
    );
}

impl Env {
    async fn all_online_except_web(&self) {
        for n in ["vizora-middleware", "vizora-realtime"] {
            self.wait_for(n, "online", |p| p.status == ProcStatus::Online)
                .await;
        }
    }
}

#[tokio::test]
async fn a_down_service_with_an_errored_process_is_restarted_by_app_name_and_verified_by_its_probe()
{
    let work = tempfile::tempdir().unwrap();
    let flag = work.path().join("crash.flag");
    std::fs::write(&flag, "x").unwrap();
    let port = free_port();
    let env = Env::start(vec![
        app(
            "vizora-middleware",
            &[
                s("--port"),
                port.to_string(),
                s("--fail-if"),
                flag.display().to_string(),
            ],
            true,
        ),
        app("vizora-realtime", &[], false),
        app("vizora-web", &[], false),
    ])
    .await;
    env.wait_for("vizora-middleware", "errored", |p| {
        p.status == ProcStatus::Errored
    })
    .await;
    std::fs::remove_file(&flag).unwrap();
    // The middleware probe goes to the PM2-managed server, which answers any path with {"status":"ok"}.
    let mw = format!("http://127.0.0.1:{port}/api/v1/health/ready");
    let r = env
        .run(env.config(&[("OPS_MIDDLEWARE_PROBE_URL", mw.as_str())]))
        .await;
    assert_eq!(r.exit_code, 0, "{:#?}", r.report);
    let down = env.incident("service-down", "middleware");
    assert_eq!(down["status"], "resolved", "{down:#}");
    let muts = env.mutations();
    assert_eq!(
        muts.len(),
        1,
        "one app restart replaces the per-instance one: {muts:#?}"
    );
    assert_eq!(
        muts[0]["command"],
        json!([env.pm2.bin, "restart", "vizora-middleware"])
    );
    assert_eq!(muts[0]["target"], "service");
    assert_eq!(muts[0]["before"]["instances"][0]["status"], "errored");
}

#[tokio::test]
async fn a_process_that_keeps_crashing_is_restarted_at_most_twice_with_backoff_then_escalated() {
    let work = tempfile::tempdir().unwrap();
    let flag = work.path().join("crash.flag");
    std::fs::write(&flag, "x").unwrap();
    let env = Env::start(vec![
        app("vizora-middleware", &[], false),
        app("vizora-realtime", &[], false),
        app(
            "vizora-web",
            &[s("--fail-if"), flag.display().to_string()],
            true,
        ),
    ])
    .await;
    let cfg = env.config(&[]);
    let t0 = env.clock.now();
    let errored = || env.wait_for("vizora-web", "errored", |p| p.status == ProcStatus::Errored);
    let id = errored().await.pm_id.unwrap();
    let key = format!("vizora-web:{id}");

    // Run 1: attempt 1, the process crashes again → open with the verification failure.
    let r = env.run(cfg.clone()).await;
    assert_eq!(r.exit_code, 1);
    let inc = env.incident("pm2-errored", &key);
    assert_eq!(inc["status"], "open", "{inc:#}");
    assert_eq!(inc["attempts"], 1);
    assert!(
        inc["error"]
            .as_str()
            .unwrap()
            .starts_with("still failing after"),
        "{inc:#}"
    );
    assert_eq!(env.mutations().len(), 1);

    // Run 2 at t0+30 s: inside the 60 s backoff → no command.
    errored().await;
    env.clock.set(t0 + Duration::seconds(30));
    let r = env.run(cfg.clone()).await;
    assert_eq!(r.exit_code, 1);
    assert_eq!(env.mutations().len(), 1, "backoff respected");
    assert!(
        env.incident("pm2-errored", &key)["remediation"]
            .as_str()
            .unwrap()
            .contains("next restart allowed after")
    );

    // Run 3 at t0+61 s: attempt 2, fails → escalated, alerted.
    errored().await;
    env.clock.set(t0 + Duration::seconds(61));
    let r = env.run(cfg.clone()).await;
    assert_eq!(r.exit_code, 1);
    assert_eq!(env.mutations().len(), 2);
    let inc = env.incident("pm2-errored", &key);
    assert_eq!(inc["status"], "escalated", "{inc:#}");
    assert_eq!(inc["attempts"], 2);
    let alerts = env.alerts.take();
    assert!(
        alerts.iter().any(|a| a.kind == InlineKind::Critical
            && a.incident_ids
                .contains(&format!("health-guardian:pm2-errored:{key}"))),
        "{alerts:#?}"
    );

    // Run 4 much later: still escalated, no third restart, no repeated alert.
    errored().await;
    env.clock.set(t0 + Duration::seconds(3600));
    let r = env.run(cfg).await;
    assert_eq!(r.exit_code, 1);
    assert_eq!(
        env.mutations().len(),
        2,
        "at most two restarts in the episode"
    );
    assert_eq!(env.incident("pm2-errored", &key)["status"], "escalated");
    assert!(env.alerts.all().is_empty());
    for m in env.mutations() {
        assert_eq!(
            m["command"],
            json!([env.pm2.bin, "restart", id.to_string()])
        );
    }
}

#[tokio::test]
async fn a_stopped_pm2_process_is_left_stopped() {
    let env = Env::start(vec![
        app("vizora-middleware", &[], false),
        app("vizora-realtime", &[], false),
        app("vizora-web", &[], false),
    ])
    .await;
    env.all_online().await;
    env.pm2.cli(&["stop", "vizora-web"]);
    let web = env
        .wait_for("vizora-web", "stopped", |p| p.status == ProcStatus::Stopped)
        .await;
    let r = env.run(env.config(&[])).await;
    assert_eq!(r.exit_code, 0, "info only: {:#?}", r.report);
    let inc = env.incident("pm2-stopped", &format!("vizora-web:{}", web.pm_id.unwrap()));
    assert_eq!(inc["severity"], "info");
    assert!(env.mutations().is_empty());
    let after = env.pm.list().await.unwrap();
    assert_eq!(
        after
            .iter()
            .find(|p| p.name == "vizora-web")
            .unwrap()
            .status,
        ProcStatus::Stopped
    );
}

#[tokio::test]
async fn pm2_missing_from_path_is_process_manager_unavailable_with_exit_1() {
    let sb = Sandbox::start(
        DEMO_FIXTURE,
        SandboxOptions {
            port: 0,
            throttle: false,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for bin in ["/nonexistent/vizora/pm2", "pm2-not-installed-vizora-test"] {
        let dir = tempfile::tempdir().unwrap();
        let eco = dir.path().join("none.js");
        // No Wiring override: the process manager comes from the configuration (OPS_PM2_BIN).
        let cfg = config_for(&sb, dir.path(), bin, &eco, &[]);
        let r = run_agent(
            cfg,
            AgentName::HealthGuardian,
            RunOptions { dry_run: false },
            Wiring::default(),
        )
        .await;
        assert_eq!(r.exit_code, 1, "a finding, not a failed run: {:?}", r.fatal);
        assert!(r.fatal.is_none());
        let st: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("ops-state.json")).unwrap())
                .unwrap();
        let inc = st["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == "health-guardian:process-manager-unavailable:pm2")
            .expect("process-manager-unavailable raised")
            .clone();
        assert_eq!(inc["severity"], "critical");
        assert!(
            inc["message"].as_str().unwrap().contains("not found"),
            "{inc:#}"
        );
        // No process verdict at all.
        assert!(
            st["incidents"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| !i["type"].as_str().unwrap().starts_with("pm2-"))
        );
    }
}

#[tokio::test]
async fn an_app_name_with_shell_characters_is_rejected_and_nothing_runs() {
    let env = Env::start(vec![
        app("vizora-middleware", &[], false),
        app("vizora-realtime", &[], false),
        app("vizora-web", &[], false),
    ])
    .await;
    env.all_online().await;
    let marker = env.dir.path().join("pwned");
    let closed = format!("http://127.0.0.1:{}/", free_port());
    for bad in [
        format!("vizora-web; touch {}", marker.display()),
        format!("$(touch {})", marker.display()),
        "vizora web".to_string(),
    ] {
        let r = env
            .run(env.config(&[
                ("OPS_PM2_APP_WEB", bad.as_str()),
                ("OPS_WEB_PROBE_URL", closed.as_str()),
            ]))
            .await;
        assert_eq!(r.exit_code, 1, "{bad:?}");
        let down = env.incident("service-down", "web");
        assert_eq!(down["error"], "rejected process name or id", "{down:#}");
        assert_eq!(down["status"], "open");
        assert!(env.mutations().is_empty(), "no command for {bad:?}");
        assert!(!marker.exists(), "nothing ran through a shell");
    }
    // The real app was never touched.
    let web = env
        .wait_for("vizora-web", "online", |p| p.status == ProcStatus::Online)
        .await;
    assert_eq!(web.restart_time, Some(0));
}
