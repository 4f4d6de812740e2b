//! The watchdog pass, the written records, the dashboard push, dry run and capture mode of ops-reporter
//! (agents.md 6.5, 3.5, 7.4, 1.4, 1.5; 9 items 10, 49).

mod ops_reporter_harness;

use chrono::Duration;
use ops_reporter_harness::{self as h, Env};
use serde_json::Value;
use std::collections::BTreeSet;
use vizora_ops::clock::Clock;
use vizora_ops::model::{AgentName, IncidentStatus, Severity, ts};
use vizora_ops::sandbox::{DEMO_FIXTURE, Sandbox, SandboxOptions};

const WATCHED: &str = "health-guardian,fleet-manager,content-lifecycle,ops-reporter";
const FM_SILENT: &str = "ops-watchdog:agent-silent:fleet-manager";

async fn sandbox() -> Sandbox {
    Sandbox::start(
        DEMO_FIXTURE,
        SandboxOptions {
            port: 0,
            throttle: false,
            ..Default::default()
        },
    )
    .await
    .expect("sandbox starts")
}

fn with_api(env: &mut Env, sb: &Sandbox) {
    env.set(&[
        ("VALIDATOR_BASE_URL", sb.api_url.as_str()),
        ("OPS_EMAIL", "ops@example.test"),
        ("OPS_PASSWORD", "ops-demo-password"),
        ("OPS_RATE_PER_SECOND", "1000"),
        ("OPS_RATE_PER_MINUTE", "100000"),
        ("OPS_RATE_PER_HOUR", "1000000"),
    ]);
}

fn set_last_run(env: &Env, agent: &str, v: Option<Value>) {
    env.edit_state(|st| match v {
        Some(v) => {
            st.last_run.insert(agent.into(), v);
        }
        None => {
            st.last_run.remove(agent);
        }
    });
}

#[tokio::test]
async fn a_silent_agent_raises_agent_silent_and_it_resolves_when_the_agent_runs_again() {
    let env = Env::new(&[("OPS_AGENTS", WATCHED)]).await;
    let t = env.clock.now();
    let mut st = h::state_with(vec![], t - Duration::minutes(2));
    st.last_run.insert(
        "fleet-manager".into(),
        Value::String(ts(t - Duration::minutes(45))),
    );
    env.write_state(&st);

    let r = env.run().await;
    assert_eq!(r.exit_code, 1, "DEGRADED by the watchdog's warning");
    let inc = env.incident(FM_SILENT);
    assert_eq!(inc.agent, "ops-watchdog");
    assert_eq!(inc.severity, Severity::Warning);
    assert_eq!(inc.target, "agent");
    assert_eq!(
        inc.message,
        "fleet-manager has not completed a run for 45 min (SLA 20 min)"
    );
    assert!(
        inc.remediation.contains("ops-fleet-manager"),
        "{}",
        inc.remediation
    );
    assert_eq!(inc.alerted_at, Some(ts(t)), "named in the delivered alert");
    let s = env.state();
    assert_eq!(s.last_run["ops-watchdog"], ts(t));
    assert_eq!(s.last_run["ops-reporter"], ts(t));
    let wd = &s.agent_results["ops-watchdog"];
    assert_eq!(wd["issuesFound"], 1);
    assert_eq!(wd["coverage"], serde_json::json!(["agent-silent"]));
    let d = env.slack.delivered();
    assert_eq!(d.len(), 1);
    assert!(
        h::titles(&d[0])
            .iter()
            .any(|x| x == "WARNING: agent silent (agent fleet-manager)")
    );
    assert!(
        r.report
            .iter()
            .any(|l| l.starts_with("watchdog: fleet-manager SILENT"))
    );
    assert!(
        r.report
            .iter()
            .any(|l| l.starts_with("watchdog: health-guardian ok"))
    );

    // Still silent 30 min later: same episode, not re-alerted.
    env.at_s(t, 30 * 60);
    env.edit_state(|st| {
        for a in ["health-guardian", "content-lifecycle"] {
            st.last_run
                .insert(a.into(), Value::String(ts(t + Duration::minutes(28))));
        }
    });
    env.run().await;
    let inc = env.incident(FM_SILENT);
    assert_eq!(inc.detected, ts(t), "episode continued");
    assert_eq!(
        inc.message,
        "fleet-manager has not completed a run for 75 min (SLA 20 min)"
    );
    assert_eq!(env.slack.posts().len(), 1);

    // fleet-manager completes a run: resolved, and the recovery is reported.
    set_last_run(
        &env,
        "fleet-manager",
        Some(ts(t + Duration::minutes(55)).into()),
    );
    env.edit_state(|st| {
        for a in ["health-guardian", "content-lifecycle"] {
            st.last_run
                .insert(a.into(), Value::String(ts(t + Duration::minutes(58))));
        }
    });
    env.at_s(t, 60 * 60);
    let r = env.run().await;
    assert_eq!(r.exit_code, 0);
    let inc = env.incident(FM_SILENT);
    assert_eq!(inc.status, IncidentStatus::Resolved);
    assert_eq!(inc.resolved_at, Some(ts(t + Duration::minutes(60))));
    assert_eq!(
        env.slack.delivered()[1]["attachments"][0]["title"],
        "Vizora Ops: HEALTHY (recovered from DEGRADED)"
    );
}

#[tokio::test]
async fn a_missing_or_malformed_record_never_resolves_agent_silent_and_health_guardian_is_critical()
{
    let env = Env::new(&[("OPS_AGENTS", WATCHED)]).await;
    let t = env.clock.now();
    let mut st = h::state_with(vec![], t - Duration::minutes(1));
    st.last_run.insert(
        "fleet-manager".into(),
        Value::String(ts(t - Duration::minutes(40))),
    );
    st.last_run.insert(
        "health-guardian".into(),
        Value::String(ts(t - Duration::minutes(11))),
    );
    env.write_state(&st);
    let r = env.run().await;
    assert_eq!(r.exit_code, 1);
    let hg = env.incident("ops-watchdog:agent-silent:health-guardian");
    assert_eq!(hg.severity, Severity::Critical);
    assert_eq!(env.state().system_status.as_str(), "CRITICAL");
    assert!(env.incident(FM_SILENT).is_active());

    for (i, bad) in [
        None,
        Some(Value::String("yesterday".into())),
        Some(Value::from(7)),
    ]
    .into_iter()
    .enumerate()
    {
        set_last_run(&env, "fleet-manager", bad);
        env.at_s(t, (i as i64 + 1) * 60);
        let r = env.run().await;
        assert!(
            env.incident(FM_SILENT).is_active(),
            "record {i}: a missing or malformed record resolves nothing"
        );
        assert!(
            r.report
                .iter()
                .any(|l| l.starts_with("watchdog: fleet-manager") && l.contains("no verdict")),
            "{:?}",
            r.report
        );
    }
}

#[tokio::test]
async fn the_dashboard_receives_the_written_state_and_no_credentials_is_a_warning() {
    let sb = sandbox().await;
    let mut env = Env::new(&[("OPS_AGENTS", WATCHED)]).await;
    with_api(&mut env, &sb);
    let t = env.clock.now();
    let mut old = h::incident(
        AgentName::ContentLifecycle,
        "expired_content",
        Severity::Warning,
        "c1",
        "expired",
        t - Duration::hours(30),
    );
    old.status = IncidentStatus::Resolved;
    old.resolved_at = Some(ts(t - Duration::hours(26)));
    let w = h::incident(
        AgentName::ScheduleDoctor,
        "coverage_gap",
        Severity::Warning,
        "d3",
        "nothing scheduled",
        t,
    );
    let mut st = h::state_with(vec![old, w], t);
    st.last_run.insert(
        "fleet-manager".into(),
        Value::String(ts(t - Duration::hours(2))),
    );
    env.write_state(&st);
    let r = env.run().await;
    assert_eq!(r.exit_code, 1);
    assert!(
        r.report
            .iter()
            .any(|l| l.starts_with("dashboard push: ops status (DEGRADED")),
        "{:?}",
        r.report
    );
    let pushed = sb.ops_status().expect("pushed");
    let written = env.state().to_value();
    assert_eq!(pushed["systemStatus"], written["systemStatus"]);
    let ids = |v: &Value| -> BTreeSet<String> {
        v["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&pushed), ids(&written), "the full state, not counters");
    assert!(ids(&pushed).contains(FM_SILENT));
    assert!(
        !ids(&pushed).contains("content-lifecycle:expired_content:c1"),
        "pruned as the write prunes"
    );
    for key in ["ops-watchdog", "ops-reporter", "ops-reporter:last-alert"] {
        assert_eq!(pushed["lastRun"][key], written["lastRun"][key], "{key}");
    }
    assert_eq!(
        pushed["agentResults"]["ops-reporter"]["stats"]["lastReportedStatus"],
        "DEGRADED"
    );
    assert!(pushed.get("truncated").is_none());
    let ob = env.outbox();
    assert!(ob["channels"]["dashboard"]["lastOkAt"].is_string(), "{ob}");
    assert!(sb.sessions().logins >= 1);

    // Without credentials the push is skipped with a WARNING; the run itself is unaffected.
    env.unset(&["OPS_EMAIL", "OPS_PASSWORD"]);
    env.at_s(t, 30 * 60);
    let before = sb.requests().len();
    let r = env.run().await;
    assert_eq!(r.exit_code, 1);
    assert!(
        r.report
            .iter()
            .any(|l| l == "dashboard push skipped: no API credentials")
    );
    assert_eq!(sb.requests().len(), before, "nothing sent to the API");
    sb.shutdown().await;
}

#[tokio::test]
async fn a_failed_push_becomes_an_info_incident_on_the_next_run() {
    let sb = sandbox().await;
    let mut env = Env::new(&[]).await;
    with_api(&mut env, &sb);
    env.set(&[("OPS_HTTP_RETRIES", "0")]);
    let t = env.clock.now();
    env.write_state(&h::state_with(vec![], t));
    sb.add_fault(vizora_ops::sandbox::FaultSpec {
        method: Some("POST".into()),
        path: "/api/v1/health/ops-status".into(),
        status: Some(413),
        count: 1,
        ..Default::default()
    });
    let r = env.run().await;
    assert_eq!(
        r.exit_code, 0,
        "a failing channel never changes the exit code"
    );
    assert!(
        r.report
            .iter()
            .any(|l| l.starts_with("dashboard push failed")),
        "{:?}",
        r.report
    );
    env.at_s(t, 30 * 60);
    let r = env.run().await;
    assert_eq!(r.exit_code, 0);
    let inc = env.incident("ops-reporter:alert-delivery-failed:dashboard");
    assert_eq!(inc.severity, Severity::Info);
    assert!(inc.is_active());
    // That run's push succeeded: resolved on the following run.
    env.at_s(t, 60 * 60);
    env.run().await;
    assert!(
        !env.incident("ops-reporter:alert-delivery-failed:dashboard")
            .is_active()
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn dry_run_sends_queues_writes_and_pushes_nothing_but_lists_the_would_be_alerts() {
    let sb = sandbox().await;
    let mut env = Env::new(&[("OPS_AGENTS", WATCHED)]).await;
    with_api(&mut env, &sb);
    let (rcpt, sink) = env.with_smtp_sink("dry");
    let t = env.clock.now();
    let w = h::incident(
        AgentName::FleetManager,
        "display_error",
        Severity::Critical,
        "d9",
        "status error",
        t,
    );
    let mut st = h::state_with(vec![w], t);
    st.last_run.insert(
        "fleet-manager".into(),
        Value::String(ts(t - Duration::hours(1))),
    );
    env.write_state(&st);
    let before = std::fs::read(env.state_path()).unwrap();
    let r = env.run_opts(true).await;
    assert_eq!(r.exit_code, 1, "the computed status still decides");
    assert!(!r.wrote_state);
    assert_eq!(std::fs::read(env.state_path()).unwrap(), before);
    assert!(env.slack.posts().is_empty());
    assert!(h::stored_for(&sink, &rcpt).is_empty());
    assert!(!env.outbox_path().exists());
    assert!(sb.requests().is_empty(), "{:?}", sb.requests());
    assert!(sb.ops_status().is_none());
    for needle in [
        "dry run: would send to slack: status alert \"Vizora Ops: CRITICAL\"",
        "dry run: would send to email: digest \"[Vizora Ops] CRITICAL — 1 critical, 1 warning(s)\"",
        "watchdog: fleet-manager SILENT",
    ] {
        assert!(
            r.report.iter().any(|l| l.contains(needle)),
            "{needle}: {:?}",
            r.report
        );
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn capture_mode_records_which_alert_goes_to_which_channel_in_the_log_dir() {
    let env = Env::new(&[
        ("OPS_ALERT_CAPTURE_ONLY", "true"),
        ("SMTP_HOST", "smtp.invalid"),
        ("OPS_ALERT_EMAIL", "ops-team@example.test"),
    ])
    .await;
    let t = env.clock.now();
    let c = h::incident(
        AgentName::HealthGuardian,
        "pm2-missing",
        Severity::Critical,
        "vizora-realtime",
        "not in the process list",
        t,
    );
    let cid = c.id.clone();
    env.write_state(&h::state_with(vec![c], t));
    let r = env.run().await;
    assert_eq!(r.exit_code, 1);
    assert!(env.slack.posts().is_empty(), "nothing delivered");
    let lines: Vec<Value> =
        std::fs::read_to_string(env.dir.path().join("ops-captured-alerts.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["channel"], "slack");
    assert_eq!(lines[0]["kind"], "status");
    assert_eq!(lines[0]["title"], "Vizora Ops: CRITICAL");
    assert_eq!(lines[1]["channel"], "email");
    assert_eq!(lines[1]["kind"], "digest");
    assert_eq!(
        lines[1]["title"],
        "[Vizora Ops] CRITICAL — 1 critical, 0 warning(s)"
    );
    assert!(
        r.report
            .iter()
            .any(|l| l == "alert → slack (captured, not sent): status \"Vizora Ops: CRITICAL\"")
    );
    assert!(
        env.incident(&cid).alerted_at.is_some(),
        "captured counts as delivered"
    );
    assert!(
        env.state()
            .incidents
            .iter()
            .all(|i| i.kind != "alerting-unconfigured")
    );
}

#[tokio::test]
async fn no_channel_configured_raises_alerting_unconfigured_and_sends_nothing() {
    let mut env = Env::new(&[]).await;
    env.unset(&["SLACK_WEBHOOK_URL"]);
    let t = env.clock.now();
    env.write_state(&h::state_with(vec![], t));
    let r = env.run().await;
    assert_eq!(r.exit_code, 0, "info never makes the exit code non-zero");
    let i = env.incident("ops-reporter:alerting-unconfigured:channels");
    assert_eq!(i.severity, Severity::Info);
    assert!(i.is_active());
    // Configuring Slack resolves it.
    let hook = env.hook.clone();
    env.set(&[("SLACK_WEBHOOK_URL", hook.as_str())]);
    env.at_s(t, 30 * 60);
    env.run().await;
    assert!(
        !env.incident("ops-reporter:alerting-unconfigured:channels")
            .is_active()
    );
}

#[tokio::test]
async fn an_unreadable_state_file_makes_the_run_exit_2_without_alerting_or_writing() {
    let env = Env::new(&[]).await;
    std::fs::write(env.state_path(), b"{not json").unwrap();
    let r = env.run().await;
    assert_eq!(r.exit_code, 2);
    assert!(!r.wrote_state);
    assert!(
        r.fatal
            .as_deref()
            .unwrap()
            .contains("cannot compute the system status")
    );
    assert_eq!(std::fs::read(env.state_path()).unwrap(), b"{not json");
    assert!(env.slack.posts().is_empty());
}
