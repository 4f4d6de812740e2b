//! health-guardian against the sandbox's three simulated services (agents.md 6.1, 3.1, 2.5, 9 items 8, 9, 23–26),
//! with the sandbox process manager (`OPS_PROCESS_MANAGER=sandbox`: restarts go through the control API).
//!
//! Each test starts its own sandbox and state dir; the backoff tests share one state dir across runs and move a
//! `ManualClock` between them.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use vizora_ops::agents::InlineKind;
use vizora_ops::clock::{Clock, ManualClock};
use vizora_ops::config::{Config, Source};
use vizora_ops::model::AgentName;
use vizora_ops::runner::{RunOptions, RunReport, Wiring, run_agent};
use vizora_ops::sandbox::{
    DEMO_FIXTURE, FaultSpec, Sandbox, SandboxOptions, Service, ServiceState,
};
use vizora_ops::testing::RecordingSink;

const AGENT: AgentName = AgentName::HealthGuardian;

struct Env {
    sb: Sandbox,
    dir: tempfile::TempDir,
    cfg: Arc<Config>,
    alerts: Arc<RecordingSink>,
    clock: Option<Arc<ManualClock>>,
}

fn config(sb: &Sandbox, dir: &Path, extra: &[(&str, &str)]) -> Arc<Config> {
    let log = dir.display().to_string();
    let eco = dir.join("no-ecosystem.config.js").display().to_string();
    let mw = format!("{}/api/v1/health/ready", sb.api_url);
    let rt = format!("{}/api/health/ready", sb.realtime_url);
    let web = format!("{}/", sb.web_url);
    let mut pairs: Vec<(String, String)> = [
        ("VALIDATOR_BASE_URL", sb.api_url.as_str()),
        ("OPS_LOG_DIR", log.as_str()),
        ("OPS_RATE_LIMIT_BACKEND", "memory"),
        ("OPS_RATE_PER_SECOND", "1000"),
        ("OPS_RATE_PER_MINUTE", "100000"),
        ("OPS_RATE_PER_HOUR", "1000000"),
        ("OPS_PROCESS_MANAGER", "sandbox"),
        ("OPS_SANDBOX_CONTROL_URL", sb.control_url.as_str()),
        ("OPS_MIDDLEWARE_PROBE_URL", mw.as_str()),
        ("OPS_REALTIME_PROBE_URL", rt.as_str()),
        ("OPS_WEB_PROBE_URL", web.as_str()),
        ("OPS_PROBE_CONFIRM_S", "1"),
        ("OPS_RESTART_COOLDOWN_S", "1"),
        ("OPS_ECOSYSTEM_FILE", eco.as_str()),
        // The test host's own memory must not decide exit codes.
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

async fn env(extra: &[(&str, &str)], clock: bool) -> Env {
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
        sb,
        dir,
        cfg,
        alerts: Arc::new(RecordingSink::default()),
        clock: clock.then(|| Arc::new(ManualClock::new(Utc::now().trunc_subsecs(3)))),
    }
}

impl Env {
    async fn run(&self, dry_run: bool) -> RunReport {
        self.run_with(self.cfg.clone(), dry_run).await
    }

    async fn run_with(&self, cfg: Arc<Config>, dry_run: bool) -> RunReport {
        let r = run_agent(
            cfg,
            AGENT,
            RunOptions { dry_run },
            Wiring {
                alerts: Some(self.alerts.clone()),
                clock: self.clock.clone().map(|c| c as Arc<dyn Clock>),
                ..Default::default()
            },
        )
        .await;
        assert!(r.fatal.is_none(), "run failed: {:?}", r.fatal);
        r
    }

    fn advance_to(&self, secs_after_start: i64, t0: DateTime<Utc>) {
        self.clock
            .as_ref()
            .expect("manual clock")
            .set(t0 + Duration::seconds(secs_after_start));
    }

    fn state(&self) -> Value {
        serde_json::from_slice(
            &std::fs::read(self.dir.path().join("ops-state.json")).expect("state file written"),
        )
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

    fn incident(&self, kind: &str, target: &str) -> Value {
        let id = format!("health-guardian:{kind}:{target}");
        self.incidents()
            .remove(&id)
            .unwrap_or_else(|| panic!("no incident {id} in {:#?}", self.incidents().keys()))
    }

    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("ops-audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn mutations(&self) -> Vec<Value> {
        self.audit()
            .into_iter()
            .filter(|l| l["kind"] == "mutation")
            .collect()
    }

    fn restarts(&self, svc: Service) -> u32 {
        self.sb.services()[&svc].restarts
    }
}

fn status(inc: &Value) -> &str {
    inc["status"].as_str().unwrap()
}

#[tokio::test]
async fn a_down_web_service_is_restarted_once_verified_and_a_second_run_changes_nothing() {
    let env = env(&[], false).await;
    env.sb.set_service(Service::Web, ServiceState::Down);

    let r = env.run(false).await;
    assert_eq!(
        r.exit_code, 0,
        "fixed and verified → exit 0; report: {:#?}",
        r.report
    );
    assert_eq!(env.restarts(Service::Web), 1);
    assert_eq!(env.restarts(Service::Api), 0);
    assert_eq!(env.restarts(Service::Realtime), 0);
    assert_eq!(r.result.issues_fixed, 1, "one verified restart");

    let down = env.incident("service-down", "web");
    assert_eq!(status(&down), "resolved", "{down:#}");
    assert_eq!(down["severity"], "critical");
    assert_eq!(down["target"], "service");
    assert_eq!(down["attempts"], 1);
    assert!(down["lastAttemptAt"].is_string());
    // The sandbox reports the down service as errored: the app restart covers that instance too.
    let errored = env.incident("pm2-errored", "vizora-web:2");
    assert_eq!(status(&errored), "resolved", "{errored:#}");

    let muts = env.mutations();
    assert_eq!(muts.len(), 1, "exactly one command: {muts:#?}");
    let m = &muts[0];
    assert_eq!(m["method"], "pm2 restart");
    assert_eq!(m["target"], "service");
    assert_eq!(m["targetId"], "web");
    assert_eq!(m["dryRun"], false);
    assert_eq!(m["success"], true);
    assert!(
        m.get("endpoint").is_none(),
        "no endpoint for a process command"
    );
    assert_eq!(
        m["command"],
        serde_json::json!(["sandbox", "restart", "vizora-web"])
    );
    assert_eq!(m["before"]["app"], "vizora-web");
    assert_eq!(m["before"]["instances"][0]["status"], "errored");
    let ver: Vec<Value> = env
        .audit()
        .into_iter()
        .filter(|l| l["kind"] == "verification")
        .collect();
    assert_eq!(ver.len(), 1);
    assert_eq!(ver[0]["mutationId"], m["id"]);
    assert_eq!(ver[0]["verified"], true);

    let rem = env.state()["recentRemediations"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(rem.len(), 1);
    assert_eq!(rem[0]["method"], "pm2 restart");
    assert_eq!(rem[0]["verified"], true);
    assert_eq!(rem[0]["success"], true);
    assert!(
        r.report.iter().any(|l| l.contains("probe web: down")),
        "{:#?}",
        r.report
    );

    // Second pass: healthy, nothing to do.
    let r2 = env.run(false).await;
    assert_eq!(r2.exit_code, 0);
    assert_eq!(env.restarts(Service::Web), 1);
    assert_eq!(env.mutations().len(), 1, "no new command");
}

#[tokio::test]
async fn a_single_failed_probe_followed_by_a_passing_one_restarts_nothing() {
    let env = env(&[], false).await;
    for (svc, path) in [
        (Service::Web, "/"),
        (Service::Api, "/api/v1/health/ready"),
        (Service::Realtime, "/api/health/ready"),
    ] {
        env.sb.add_fault(FaultSpec {
            path: path.into(),
            status: Some(500),
            count: 1,
            service: Some(svc),
            ..Default::default()
        });
    }
    let r = env.run(false).await;
    assert_eq!(r.exit_code, 0, "{:#?}", r.report);
    for svc in Service::ALL {
        assert_eq!(env.restarts(svc), 0, "{svc} must not be restarted");
    }
    assert!(env.mutations().is_empty());
    let confirmed = r
        .report
        .iter()
        .filter(|l| l.contains("confirmation probe passed"))
        .count();
    assert_eq!(
        confirmed, 3,
        "each first probe failed and was confirmed healthy: {:#?}",
        r.report
    );
    assert!(
        env.incidents().keys().all(|k| !k.contains("service-down")),
        "no service-down: {:#?}",
        env.incidents()
    );
}

#[tokio::test]
async fn readiness_503_while_liveness_passes_is_service_unready_alerted_once_and_never_restarted() {
    let env = env(&[], false).await;
    env.sb.set_service(Service::Api, ServiceState::Unhealthy);
    env.sb
        .set_service(Service::Realtime, ServiceState::Unhealthy);

    let r = env.run(false).await;
    assert_eq!(r.exit_code, 1, "{:#?}", r.report);
    for svc in ["middleware", "realtime"] {
        let inc = env.incident("service-unready", svc);
        assert_eq!(status(&inc), "open");
        assert_eq!(inc["severity"], "critical");
        assert!(
            !env.incidents()
                .contains_key(&format!("health-guardian:service-down:{svc}")),
            "a live process with a dependency down is not service-down"
        );
    }
    assert_eq!(env.restarts(Service::Api), 0);
    assert_eq!(env.restarts(Service::Realtime), 0);
    assert!(env.mutations().is_empty());
    let alerts = env.alerts.take();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].kind, InlineKind::Critical);
    assert!(
        alerts[0]
            .incident_ids
            .contains(&"health-guardian:service-unready:middleware".to_string())
    );
    assert!(
        alerts[0]
            .incident_ids
            .contains(&"health-guardian:service-unready:realtime".to_string())
    );

    // Still unready: no new alert (only the open transition alerts), still no restart.
    let r = env.run(false).await;
    assert_eq!(r.exit_code, 1);
    assert!(env.alerts.take().is_empty());
    assert_eq!(env.restarts(Service::Api), 0);

    // Dependency back: resolved by the sweep, exit 0.
    env.sb.set_service(Service::Api, ServiceState::Healthy);
    env.sb.set_service(Service::Realtime, ServiceState::Healthy);
    let r = env.run(false).await;
    assert_eq!(r.exit_code, 0);
    assert_eq!(
        status(&env.incident("service-unready", "middleware")),
        "resolved"
    );
    assert_eq!(
        status(&env.incident("service-unready", "realtime")),
        "resolved"
    );
}

#[tokio::test]
async fn a_degraded_middleware_is_info_only_and_exits_0() {
    let env = env(&[], false).await;
    env.sb.set_service(Service::Api, ServiceState::Degraded);
    let r = env.run(false).await;
    assert_eq!(r.exit_code, 0, "{:#?}", r.report);
    let inc = env.incident("service-degraded", "middleware");
    assert_eq!(inc["severity"], "info");
    assert_eq!(status(&inc), "open");
    assert_eq!(env.restarts(Service::Api), 0);
    assert!(env.alerts.take().is_empty());
}

#[tokio::test]
async fn broken_static_assets_make_web_down_and_a_restart_fixes_it() {
    let env = env(&[], false).await;
    env.sb.set_service(Service::Web, ServiceState::AssetsBroken);
    let r = env.run(false).await;
    assert_eq!(r.exit_code, 0, "{:#?}", r.report);
    assert_eq!(env.restarts(Service::Web), 1);
    let inc = env.incident("service-down", "web");
    assert_eq!(status(&inc), "resolved");
    let msg = inc["message"].as_str().unwrap();
    assert!(
        msg.contains("asset") && msg.contains("404"),
        "the failing asset is named with its status: {msg}"
    );
    // The sandbox lists an assets-broken web as online: no process incident.
    assert!(
        !env.incidents()
            .contains_key("health-guardian:pm2-errored:vizora-web:2")
    );
}

#[tokio::test]
async fn dry_run_runs_no_command_and_lists_the_command_the_real_run_then_makes() {
    let env = env(&[], false).await;
    env.sb.set_service(Service::Web, ServiceState::Down);

    let dry = env.run(true).await;
    assert_eq!(
        dry.exit_code, 1,
        "a planned remediation counts as not attempted"
    );
    assert!(!dry.wrote_state);
    assert!(!env.dir.path().join("ops-state.json").exists());
    assert_eq!(env.restarts(Service::Web), 0);
    let planned = env.mutations();
    assert_eq!(planned.len(), 1, "{planned:#?}");
    assert_eq!(planned[0]["dryRun"], true);
    assert_eq!(planned[0]["success"], true);
    assert!(planned[0].get("after").is_none());
    assert!(
        dry.report
            .iter()
            .any(|l| l.contains("dry run: would run `sandbox restart vizora-web`")),
        "{:#?}",
        dry.report
    );

    let real = env.run(false).await;
    assert_eq!(real.exit_code, 0);
    assert_eq!(env.restarts(Service::Web), 1);
    let muts = env.mutations();
    assert_eq!(muts.len(), 2);
    assert_eq!(muts[1]["dryRun"], false);
    assert_eq!(muts[1]["command"], planned[0]["command"]);
    assert_eq!(muts[1]["action"], planned[0]["action"]);
}

/// Flapping (fails, passes, fails, …): restarts are bounded per episode, the backoff holds across runs, the episode
/// continues across a short healthy gap and escalates after the 2nd attempt; a long stable period starts anew.
#[tokio::test]
async fn a_flapping_service_is_restarted_at_most_twice_with_backoff_then_escalated() {
    let env = env(&[], true).await;
    let t0 = env.clock.as_ref().unwrap().now();

    // Run 1 at t0: down → attempt 1 → verified.
    env.sb.set_service(Service::Web, ServiceState::Down);
    let r = env.run(false).await;
    assert_eq!(r.exit_code, 0);
    assert_eq!(env.restarts(Service::Web), 1);
    let inc = env.incident("service-down", "web");
    assert_eq!(status(&inc), "resolved");
    let detected = inc["detected"].as_str().unwrap().to_string();

    // Run 2 at t0+30 s: down again, inside the 60 s backoff (30 s × 2^1) → open, no restart.
    env.sb.set_service(Service::Web, ServiceState::Down);
    env.advance_to(30, t0);
    let r = env.run(false).await;
    assert_eq!(r.exit_code, 1);
    assert_eq!(env.restarts(Service::Web), 1, "backoff respected");
    let inc = env.incident("service-down", "web");
    assert_eq!(status(&inc), "open");
    assert_eq!(
        inc["attempts"], 1,
        "episode continued from the recently resolved incident"
    );
    assert_eq!(inc["detected"].as_str().unwrap(), detected);
    let rem = inc["remediation"].as_str().unwrap();
    let allowed = vizora_ops::model::ts(t0 + Duration::seconds(60));
    assert!(
        rem.contains(&format!("next restart allowed after {allowed}")),
        "{rem}"
    );

    // Run 3 at t0+61 s: backoff elapsed → attempt 2 → verified.
    env.advance_to(61, t0);
    let r = env.run(false).await;
    assert_eq!(r.exit_code, 0, "{:#?}", r.report);
    assert_eq!(env.restarts(Service::Web), 2);
    let inc = env.incident("service-down", "web");
    assert_eq!(status(&inc), "resolved");
    assert_eq!(inc["attempts"], 2);

    // Run 4 at t0+200 s: down again within the 30-minute reset → attempts exhausted → escalated, no command, alert.
    env.alerts.take();
    env.sb.set_service(Service::Web, ServiceState::Down);
    env.advance_to(200, t0);
    let r = env.run(false).await;
    assert_eq!(r.exit_code, 1);
    assert_eq!(
        env.restarts(Service::Web),
        2,
        "no third restart in the episode"
    );
    let inc = env.incident("service-down", "web");
    assert_eq!(status(&inc), "escalated");
    assert_eq!(inc["attempts"], 2);
    assert_eq!(inc["detected"].as_str().unwrap(), detected);
    assert_eq!(
        r.result.issues_escalated, 2,
        "service-down and its errored instance"
    );
    let alerts = env.alerts.take();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].kind, InlineKind::Critical);
    assert!(
        alerts[0]
            .incident_ids
            .contains(&"health-guardian:service-down:web".to_string())
    );

    // Run 5 at t0+400 s: still down → escalated unchanged, no command, no repeated alert.
    env.advance_to(400, t0);
    let r = env.run(false).await;
    assert_eq!(r.exit_code, 1);
    assert_eq!(env.restarts(Service::Web), 2);
    assert_eq!(status(&env.incident("service-down", "web")), "escalated");
    assert!(env.alerts.take().is_empty());

    // Run 6: healthy again (an operator fixed it) → resolved by the sweep.
    env.sb.set_service(Service::Web, ServiceState::Healthy);
    env.advance_to(500, t0);
    let r = env.run(false).await;
    assert_eq!(r.exit_code, 0);
    assert_eq!(status(&env.incident("service-down", "web")), "resolved");

    // Run 7, 31 minutes of stability later: a new failure starts a new episode at attempt 0.
    env.sb.set_service(Service::Web, ServiceState::Down);
    env.advance_to(500 + 31 * 60, t0);
    let r = env.run(false).await;
    assert_eq!(r.exit_code, 0, "{:#?}", r.report);
    assert_eq!(env.restarts(Service::Web), 3);
    let inc = env.incident("service-down", "web");
    assert_eq!(status(&inc), "resolved");
    assert_eq!(inc["attempts"], 1, "a new episode");
    assert_ne!(inc["detected"].as_str().unwrap(), detected);
    assert_eq!(
        env.mutations()
            .iter()
            .filter(|m| m["dryRun"] == false)
            .count(),
        3
    );
}

#[tokio::test]
async fn an_unreachable_edge_alerts_without_restarting_and_closes_when_the_watch_is_switched_off() {
    // 192.0.2.1 (TEST-NET-1) never answers: the edge fails while every local service is healthy.
    let env = env(
        &[
            ("WEB_URL", "http://192.0.2.1:9/"),
            ("OPS_PROBE_TIMEOUT_MS", "700"),
        ],
        false,
    )
    .await;
    let r = env.run(false).await;
    assert_eq!(r.exit_code, 1, "{:#?}", r.report);
    let inc = env.incident("edge-unreachable", "192.0.2.1");
    assert_eq!(status(&inc), "open");
    assert_eq!(inc["severity"], "critical");
    assert!(
        inc["message"]
            .as_str()
            .unwrap()
            .contains("not proof of external DNS/firewall")
    );
    let err = inc["error"].as_str().unwrap();
    assert!(err.contains("/ (backed by web)"), "{err}");
    assert!(
        err.contains("/api/v1/health/ready (backed by middleware)"),
        "{err}"
    );
    assert!(inc["remediation"].as_str().unwrap().contains("nginx -t"));
    for svc in Service::ALL {
        assert_eq!(
            env.restarts(svc),
            0,
            "an edge failure never restarts anything"
        );
    }
    assert!(env.mutations().is_empty());
    let alerts = env.alerts.take();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, InlineKind::Critical);

    // Local web down: its edge path is skipped and named as such; the web restart is a local matter.
    env.sb.set_service(Service::Web, ServiceState::Down);
    let r = env.run(false).await;
    assert_eq!(env.restarts(Service::Web), 1);
    assert_eq!(r.exit_code, 1);
    let err = env.incident("edge-unreachable", "192.0.2.1")["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.contains("/api/v1/health/ready (backed by middleware)"),
        "{err}"
    );
    assert!(
        !err.contains("local web not healthy"),
        "web was restarted and verified first: {err}"
    );

    // Watch switched off: the stale incident is closed with the documented suffix.
    let off = config(&env.sb, env.dir.path(), &[]);
    let r = env.run_with(off, false).await;
    assert_eq!(r.exit_code, 0);
    let inc = env.incident("edge-unreachable", "192.0.2.1");
    assert_eq!(status(&inc), "resolved");
    assert!(
        inc["message"]
            .as_str()
            .unwrap()
            .ends_with(" — edge watch disabled by configuration; closing stale incident")
    );
}

#[tokio::test]
async fn a_locally_down_service_skips_its_edge_path_and_partial_evidence_resolves_nothing() {
    let env = env(
        &[
            ("WEB_URL", "http://192.0.2.1:9/"),
            ("OPS_PROBE_TIMEOUT_MS", "700"),
        ],
        false,
    )
    .await;
    // Middleware readiness keeps answering 500 (not a dependency 503): service-down, restarted without effect, so
    // its edge path is skipped.
    env.sb.add_fault(FaultSpec {
        path: "/api/v1/health/ready".into(),
        status: Some(500),
        count: 100,
        service: Some(Service::Api),
        ..Default::default()
    });
    let r = env.run(false).await;
    assert_eq!(status(&env.incident("service-down", "middleware")), "open");
    assert_eq!(r.exit_code, 1);
    let inc = env.incident("edge-unreachable", "192.0.2.1");
    let err = inc["error"].as_str().unwrap();
    assert!(err.contains("/ (backed by web)"), "{err}");
    assert!(
        err.contains("(skipped: /api/v1/health/ready — local middleware not healthy)"),
        "{err}"
    );
}
