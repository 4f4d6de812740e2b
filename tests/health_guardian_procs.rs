//! health-guardian's process verdicts and ladder with a scripted process manager (agents.md 6.1.2, 6.1.3, 9 items 8,
//! 27, 45): the probes go to the sandbox's real services; the process list and the commands come from an in-memory
//! manager that behaves like PM2 (`kind() == "pm2"`) and records every command.

use async_trait::async_trait;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use vizora_ops::agents::InlineKind;
use vizora_ops::config::{Config, Source};
use vizora_ops::model::AgentName;
use vizora_ops::procman::{
    CommandRecord, PmError, ProcStatus, ProcTarget, ProcessInfo, ProcessManager,
};
use vizora_ops::runner::{RunOptions, RunReport, Wiring, run_agent};
use vizora_ops::sandbox::{DEMO_FIXTURE, Sandbox, SandboxOptions};
use vizora_ops::testing::RecordingSink;

const MIB: u64 = 1 << 20;

/// What a restart/reload does to the scripted process.
#[derive(Clone, Copy)]
enum OnCommand {
    /// The process comes back online with 50 MiB.
    Heal,
    /// Nothing changes.
    Nothing,
    /// The command exits 1 with a PM2 error line.
    Fail,
}

struct FakePm {
    procs: Mutex<Vec<ProcessInfo>>,
    calls: Mutex<Vec<Vec<String>>>,
    list_error: Mutex<Option<PmError>>,
    on_command: Mutex<OnCommand>,
}

impl FakePm {
    fn new(procs: Vec<ProcessInfo>) -> Arc<FakePm> {
        Arc::new(FakePm {
            procs: Mutex::new(procs),
            calls: Mutex::new(Vec::new()),
            list_error: Mutex::new(None),
            on_command: Mutex::new(OnCommand::Heal),
        })
    }

    fn calls(&self) -> Vec<Vec<String>> {
        self.calls.lock().unwrap().clone()
    }

    fn set_status(&self, pm_id: u32, status: ProcStatus) {
        for p in self.procs.lock().unwrap().iter_mut() {
            if p.pm_id == Some(pm_id) {
                p.status = status.clone();
            }
        }
    }

    fn status(&self, pm_id: u32) -> ProcStatus {
        self.procs
            .lock()
            .unwrap()
            .iter()
            .find(|p| p.pm_id == Some(pm_id))
            .unwrap()
            .status
            .clone()
    }

    fn command(&self, verb: &str, target: &ProcTarget) -> Result<CommandRecord, PmError> {
        let argv = vec!["pm2".to_string(), verb.to_string(), target.arg()?];
        self.calls.lock().unwrap().push(argv.clone());
        match *self.on_command.lock().unwrap() {
            OnCommand::Fail => {
                return Err(PmError::Failed {
                    argv,
                    code: Some(1),
                    stderr_first_line: Some(format!(
                        "[PM2][ERROR] Process or Namespace {target} not found"
                    )),
                });
            }
            OnCommand::Nothing => {}
            OnCommand::Heal => {
                for p in self.procs.lock().unwrap().iter_mut() {
                    let hit = match target {
                        ProcTarget::PmId(n) => p.pm_id == Some(*n),
                        ProcTarget::App(a) | ProcTarget::Unit(a) => &p.name == a,
                    };
                    if hit {
                        p.status = ProcStatus::Online;
                        p.memory_bytes = Some(50 * MIB);
                        p.restart_time = Some(p.restart_time.unwrap_or(0) + 1);
                    }
                }
            }
        }
        Ok(CommandRecord {
            argv,
            exit_code: Some(0),
            stderr_first_line: None,
            duration_ms: 1,
        })
    }
}

#[async_trait]
impl ProcessManager for FakePm {
    fn kind(&self) -> &'static str {
        "pm2"
    }
    async fn list(&self) -> Result<Vec<ProcessInfo>, PmError> {
        if let Some(e) = self.list_error.lock().unwrap().clone() {
            return Err(e);
        }
        Ok(self.procs.lock().unwrap().clone())
    }
    async fn restart(&self, target: &ProcTarget) -> Result<CommandRecord, PmError> {
        self.command("restart", target)
    }
    async fn reload(&self, target: &ProcTarget) -> Result<CommandRecord, PmError> {
        self.command("reload", target)
    }
}

fn proc(name: &str, pm_id: u32, status: ProcStatus) -> ProcessInfo {
    ProcessInfo {
        name: name.into(),
        pm_id: Some(pm_id),
        status,
        exec_mode: Some("fork_mode".into()),
        memory_bytes: Some(50 * MIB),
        max_memory_restart: None,
        restart_time: Some(0),
        pm_uptime: Some(1_700_000_000_000),
    }
}

fn healthy_fleet() -> Vec<ProcessInfo> {
    vec![
        proc("vizora-middleware", 0, ProcStatus::Online),
        proc("vizora-realtime", 1, ProcStatus::Online),
        proc("vizora-web", 2, ProcStatus::Online),
    ]
}

struct Env {
    _sb: Sandbox,
    dir: tempfile::TempDir,
    cfg: Arc<Config>,
    pm: Arc<FakePm>,
    alerts: Arc<RecordingSink>,
}

/// A loopback port nothing listens on.
fn closed_port_url(path: &str) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}{path}")
}

fn config(sb: &Sandbox, dir: &Path, extra: &[(&str, &str)]) -> Arc<Config> {
    let log = dir.display().to_string();
    let mw = format!("{}/api/v1/health/ready", sb.api_url);
    let rt = format!("{}/api/health/ready", sb.realtime_url);
    let web = format!("{}/", sb.web_url);
    let eco = dir.join("absent-ecosystem.config.js").display().to_string();
    let mut pairs: Vec<(String, String)> = [
        ("VALIDATOR_BASE_URL", sb.api_url.as_str()),
        ("OPS_LOG_DIR", log.as_str()),
        ("OPS_RATE_LIMIT_BACKEND", "memory"),
        ("OPS_MIDDLEWARE_PROBE_URL", mw.as_str()),
        ("OPS_REALTIME_PROBE_URL", rt.as_str()),
        ("OPS_WEB_PROBE_URL", web.as_str()),
        ("OPS_PROBE_CONFIRM_S", "0"),
        ("OPS_RESTART_COOLDOWN_S", "0"),
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

async fn env(procs: Vec<ProcessInfo>, extra: &[(&str, &str)]) -> Env {
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
    let cfg = config(&sb, dir.path(), extra);
    Env {
        _sb: sb,
        dir,
        cfg,
        pm: FakePm::new(procs),
        alerts: Arc::new(RecordingSink::default()),
    }
}

impl Env {
    async fn run(&self) -> RunReport {
        let r = run_agent(
            self.cfg.clone(),
            AgentName::HealthGuardian,
            RunOptions { dry_run: false },
            Wiring {
                alerts: Some(self.alerts.clone()),
                process_manager: Some(self.pm.clone()),
                ..Default::default()
            },
        )
        .await;
        assert!(r.fatal.is_none(), "{:?}", r.fatal);
        r
    }

    fn state(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.path().join("ops-state.json")).unwrap())
            .unwrap()
    }

    fn incidents(&self) -> HashMap<String, Value> {
        self.state()["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["id"].as_str().unwrap().to_string(), i.clone()))
            .collect()
    }

    fn incident(&self, kind: &str, target: &str) -> Option<Value> {
        self.incidents()
            .remove(&format!("health-guardian:{kind}:{target}"))
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

fn argv(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn an_errored_instance_is_restarted_by_pm_id_and_verified() {
    let mut procs = healthy_fleet();
    procs[1].status = ProcStatus::Errored;
    let env = env(procs, &[]).await;
    let r = env.run().await;
    assert_eq!(r.exit_code, 0, "{:#?}", r.report);
    assert_eq!(
        env.pm.calls(),
        vec![argv(&["pm2", "restart", "1"])],
        "the pm_id, never the app"
    );
    let inc = env.incident("pm2-errored", "vizora-realtime:1").unwrap();
    assert_eq!(inc["status"], "resolved");
    assert_eq!(inc["target"], "pm2-process");
    let m = &env.mutations()[0];
    assert_eq!(m["target"], "pm2-process");
    assert_eq!(m["targetId"], "vizora-realtime:1");
    assert_eq!(m["before"]["status"], "errored");
    assert_eq!(m["before"]["pmId"], 1);
    assert_eq!(m["command"], serde_json::json!(["pm2", "restart", "1"]));
    assert_eq!(r.result.issues_fixed, 1);
}

#[tokio::test]
async fn a_transitional_process_is_not_examined_until_its_third_consecutive_run() {
    let mut procs = healthy_fleet();
    procs[2].status = ProcStatus::Transitional("waiting restart".into());
    let env = env(procs, &[]).await;
    for n in 1..=2u64 {
        let r = env.run().await;
        assert_eq!(
            r.exit_code, 0,
            "run {n}: not examined, nothing raised: {:#?}",
            r.report
        );
        assert!(
            env.pm.calls().is_empty(),
            "run {n}: PM2 is acting, no command"
        );
        assert_eq!(
            env.state()["agentResults"]["health-guardian"]["stats"]["transitionalRuns"]["vizora-web:2"],
            n
        );
    }
    // Third consecutive run: treated as errored.
    let r = env.run().await;
    assert_eq!(env.pm.calls(), vec![argv(&["pm2", "restart", "2"])]);
    assert_eq!(r.exit_code, 0, "restart verified online: {:#?}", r.report);
    let inc = env.incident("pm2-errored", "vizora-web:2").unwrap();
    assert_eq!(inc["status"], "resolved");
    assert!(
        inc["message"]
            .as_str()
            .unwrap()
            .contains("3 consecutive runs")
    );
    // Online now: the counter is gone.
    env.run().await;
    assert!(
        env.state()["agentResults"]["health-guardian"]["stats"]["transitionalRuns"]
            .get("vizora-web:2")
            .is_none()
    );
}

#[tokio::test]
async fn a_transitional_run_breaks_the_count_when_the_process_is_online_in_between() {
    let mut procs = healthy_fleet();
    procs[2].status = ProcStatus::Transitional("launching".into());
    let env = env(procs, &[]).await;
    env.run().await;
    env.run().await;
    env.pm.set_status(2, ProcStatus::Online);
    env.run().await;
    env.pm
        .set_status(2, ProcStatus::Transitional("launching".into()));
    env.run().await;
    assert!(env.pm.calls().is_empty(), "never three consecutive runs");
}

#[tokio::test]
async fn memory_over_the_own_limit_reloads_cluster_instances_and_restarts_fork_instances() {
    let mut procs = healthy_fleet();
    // middleware: cluster_mode, 90 MiB of 100 MiB → reload.
    procs[0].exec_mode = Some("cluster_mode".into());
    procs[0].memory_bytes = Some(90 * MIB);
    procs[0].max_memory_restart = Some(100 * MIB);
    // realtime: fork_mode, 95 of 100 → restart.
    procs[1].memory_bytes = Some(95 * MIB);
    procs[1].max_memory_restart = Some(100 * MIB);
    // web: exactly 85 % → not over (strict).
    procs[2].memory_bytes = Some(85 * MIB);
    procs[2].max_memory_restart = Some(100 * MIB);
    let env = env(procs, &[]).await;
    let r = env.run().await;
    assert_eq!(r.exit_code, 0, "{:#?}", r.report);
    let mut calls = env.pm.calls();
    calls.sort();
    assert_eq!(
        calls,
        vec![
            argv(&["pm2", "reload", "0"]),
            argv(&["pm2", "restart", "1"])
        ]
    );
    let muts = env.mutations();
    let methods: Vec<&str> = muts.iter().map(|m| m["method"].as_str().unwrap()).collect();
    assert!(
        methods.contains(&"pm2 reload") && methods.contains(&"pm2 restart"),
        "{methods:?}"
    );
    for key in ["vizora-middleware:0", "vizora-realtime:1"] {
        let inc = env.incident("high-memory", key).unwrap();
        assert_eq!(inc["status"], "resolved", "{inc:#}");
        assert_eq!(inc["severity"], "warning");
    }
    assert!(env.incident("high-memory", "vizora-web:2").is_none());
}

#[tokio::test]
async fn an_unknown_memory_limit_skips_the_check_and_the_ecosystem_file_supplies_a_missing_limit() {
    let mut procs = healthy_fleet();
    for p in procs.iter_mut() {
        p.memory_bytes = Some(500 * MIB);
    }
    // No limit anywhere: never a default, nothing raised.
    let env1 = env(procs.clone(), &[]).await;
    let r = env1.run().await;
    assert_eq!(r.exit_code, 0);
    assert!(env1.pm.calls().is_empty());
    assert!(env1.incidents().keys().all(|k| !k.contains("high-memory")));

    // The ecosystem file names a 512M limit for web only (read through `node -e`).
    let dir = tempfile::tempdir().unwrap();
    let eco = dir.path().join("ecosystem.config.js");
    std::fs::write(
        &eco,
        "module.exports = { apps: [ { name: 'vizora-web', script: 'x.js', max_memory_restart: '512M' } ] };\n",
    )
    .unwrap();
    let eco_s = eco.display().to_string();
    let env2 = env(procs, &[("OPS_ECOSYSTEM_FILE", eco_s.as_str())]).await;
    *env2.pm.on_command.lock().unwrap() = OnCommand::Nothing;
    let r = env2.run().await;
    assert_eq!(env2.pm.calls(), vec![argv(&["pm2", "restart", "2"])]);
    assert_eq!(r.exit_code, 1, "memory did not drop: {:#?}", r.report);
    let inc = env2.incident("high-memory", "vizora-web:2").unwrap();
    assert_eq!(inc["status"], "open");
    assert!(
        inc["message"].as_str().unwrap().contains("ecosystem file"),
        "{inc:#}"
    );
    assert!(
        inc["error"].as_str().unwrap().contains("memory still"),
        "{inc:#}"
    );
    assert_eq!(inc["attempts"], 1);
}

#[tokio::test]
async fn stopped_processes_are_left_alone_even_when_their_service_is_down() {
    let mut procs = healthy_fleet();
    procs[2].status = ProcStatus::Stopped;
    procs.push(proc("vizora-web", 3, ProcStatus::Stopped));
    // Web's probe finds nothing listening: down, but every instance is stopped on purpose.
    let web = closed_port_url("/");
    let env = env(procs, &[("OPS_WEB_PROBE_URL", web.as_str())]).await;
    let r = env.run().await;
    assert_eq!(
        r.exit_code, 1,
        "service-down stays critical: {:#?}",
        r.report
    );
    assert!(
        env.pm.calls().is_empty(),
        "no command for stopped processes"
    );
    assert!(env.mutations().is_empty());
    let down = env.incident("service-down", "web").unwrap();
    assert_eq!(down["status"], "open");
    assert_eq!(down["remediation"], "stopped by an operator; not restarted");
    for key in ["vizora-web:2", "vizora-web:3"] {
        let s = env.incident("pm2-stopped", key).unwrap();
        assert_eq!(s["severity"], "info");
    }
    assert_eq!(env.pm.status(2), ProcStatus::Stopped);
}

#[tokio::test]
async fn a_stopped_process_with_a_healthy_service_is_info_only_and_exits_0() {
    let mut procs = healthy_fleet();
    procs.push(proc("vizora-web", 3, ProcStatus::Stopped));
    let env = env(procs, &[]).await;
    let r = env.run().await;
    assert_eq!(r.exit_code, 0);
    assert!(env.pm.calls().is_empty());
    assert_eq!(
        env.incident("pm2-stopped", "vizora-web:3").unwrap()["status"],
        "open"
    );
    // Online again: resolved.
    env.pm.set_status(3, ProcStatus::Online);
    env.run().await;
    assert_eq!(
        env.incident("pm2-stopped", "vizora-web:3").unwrap()["status"],
        "resolved"
    );
}

#[tokio::test]
async fn a_missing_app_is_critical_alerted_once_and_never_started() {
    let procs: Vec<ProcessInfo> = healthy_fleet().into_iter().take(2).collect();
    let env = env(procs, &[]).await;
    let r = env.run().await;
    assert_eq!(r.exit_code, 1);
    let inc = env.incident("pm2-missing", "vizora-web").unwrap();
    assert_eq!(inc["severity"], "critical");
    assert!(env.pm.calls().is_empty());
    let alerts = env.alerts.take();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, InlineKind::Critical);
    assert_eq!(
        alerts[0].incident_ids,
        vec!["health-guardian:pm2-missing:vizora-web".to_string()]
    );
    env.run().await;
    assert!(env.alerts.all().is_empty(), "no repeat while it stays open");
}

#[tokio::test]
async fn an_unreadable_process_list_is_critical_and_judges_no_process() {
    let mut procs = healthy_fleet();
    procs[2].status = ProcStatus::Errored;
    let env = env(procs, &[("OPS_RESTART_MAX_ATTEMPTS", "3")]).await;
    *env.pm.on_command.lock().unwrap() = OnCommand::Nothing;
    env.run().await;
    assert_eq!(
        env.incident("pm2-errored", "vizora-web:2").unwrap()["status"],
        "open"
    );
    let before = env.pm.calls().len();

    *env.pm.list_error.lock().unwrap() = Some(PmError::BadOutput(
        "pm2 jlist printed no JSON array (1 line(s) of output)".into(),
    ));
    let r = env.run().await;
    assert_eq!(r.exit_code, 1);
    let inc = env.incident("process-manager-unavailable", "pm2").unwrap();
    assert_eq!(inc["severity"], "critical");
    assert_eq!(inc["target"], "host");
    assert_eq!(
        env.pm.calls().len(),
        before,
        "no command without a process list"
    );
    // No process verdict: the errored incident is neither re-judged nor swept.
    assert_eq!(
        env.incident("pm2-errored", "vizora-web:2").unwrap()["status"],
        "open"
    );
    let cov = env.state()["agentResults"]["health-guardian"]["coverage"].clone();
    assert!(
        !cov.as_array().unwrap().iter().any(|c| c == "pm2-errored"),
        "{cov}"
    );

    // Readable again: resolved.
    *env.pm.list_error.lock().unwrap() = None;
    env.run().await;
    assert_eq!(
        env.incident("process-manager-unavailable", "pm2").unwrap()["status"],
        "resolved"
    );
}

#[tokio::test]
async fn a_failed_command_is_an_attempt_with_the_first_stderr_line() {
    let mut procs = healthy_fleet();
    procs[0].status = ProcStatus::Errored;
    let env = env(procs, &[]).await;
    *env.pm.on_command.lock().unwrap() = OnCommand::Fail;
    let r = env.run().await;
    assert_eq!(r.exit_code, 1);
    let inc = env.incident("pm2-errored", "vizora-middleware:0").unwrap();
    assert_eq!(inc["status"], "open");
    assert_eq!(inc["attempts"], 1);
    assert_eq!(
        inc["error"],
        "pm2 restart failed: [PM2][ERROR] Process or Namespace 0 not found"
    );
    let m = &env.mutations()[0];
    assert_eq!(m["success"], false);
    assert!(
        m["error"]
            .as_str()
            .unwrap()
            .starts_with("pm2 restart failed")
    );
    let rem = &env.state()["recentRemediations"][0];
    assert_eq!(rem["success"], false);
}

#[tokio::test]
async fn a_configured_app_name_outside_the_allowed_alphabet_is_never_put_in_a_command() {
    for bad in [
        "vizora-web; touch /tmp/hg-pwned",
        "vizora web",
        "$(touch /tmp/hg-pwned)",
    ] {
        let mut procs = healthy_fleet();
        procs[2].name = bad.into();
        procs[2].status = ProcStatus::Errored;
        let web = closed_port_url("/");
        let env = env(
            procs,
            &[
                ("OPS_PM2_APP_WEB", bad),
                ("OPS_WEB_PROBE_URL", web.as_str()),
            ],
        )
        .await;
        let r = env.run().await;
        assert_eq!(r.exit_code, 1, "{bad:?}");
        assert!(env.pm.calls().is_empty(), "{bad:?}: {:?}", env.pm.calls());
        assert!(env.mutations().is_empty());
        let down = env.incident("service-down", "web").unwrap();
        assert_eq!(down["error"], "rejected process name or id", "{down:#}");
        let key = format!("{bad}:2");
        let errored = env.incident("pm2-errored", &key).unwrap();
        assert_eq!(errored["status"], "open");
    }
}
