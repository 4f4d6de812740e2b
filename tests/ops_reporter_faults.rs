//! ops-reporter under faults (agents.md 7.1–7.4, 7.7, 1.1, 1.3; 9 items 47–49): Slack answering 500, 429 with
//! `Retry-After` or hanging; SMTP refusing the connection or the credentials; a state with 2 000 incidents and long
//! messages; incident text with Slack markup; the clock moving backwards; two reporters started at once.

mod ops_reporter_harness;

use chrono::Duration;
use ops_reporter_harness::{self as h, Env, Mode, support};
use serde_json::Value;
use std::time::Instant;
use vizora_ops::clock::Clock;
use vizora_ops::model::{AgentName, Severity, ts};
use vizora_ops::sandbox::{DEMO_FIXTURE, Sandbox, SandboxOptions};

fn warning_state(env: &Env) -> String {
    let t = env.clock.now();
    let w = h::incident(
        AgentName::FleetManager,
        "display_offline",
        Severity::Warning,
        "d1",
        "offline for 20 min",
        t,
    );
    let id = w.id.clone();
    env.write_state(&h::state_with(vec![w], t));
    id
}

#[tokio::test]
async fn slack_failing_500_429_or_hanging_stays_queued_and_never_blocks_the_digest() {
    for (mode, expect) in [
        (Mode::Fail500, "HTTP 500"),
        (Mode::Fail429, "Retry-After 30"),
        (Mode::Hang, "timeout after 1500 ms"),
    ] {
        let mut env = Env::new(&[]).await;
        let (rcpt, sink) = env.with_smtp_sink("slack-down");
        let wid = warning_state(&env);
        env.slack.set(mode);
        let started = Instant::now();
        let r = env.run().await;
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{mode:?}: bounded by the notify timeout"
        );
        assert_eq!(r.exit_code, 1, "{mode:?}: the status decides the exit code");
        assert_eq!(env.slack.posts().len(), 1, "{mode:?}: one attempt per run");
        assert_eq!(
            h::stored_for(&sink, &rcpt).len(),
            1,
            "{mode:?}: e-mail delivered although Slack failed"
        );
        let ob = env.outbox();
        let entries = ob["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{mode:?}: {ob}");
        assert_eq!(entries[0]["channel"], "slack");
        assert_eq!(entries[0]["kind"], "status");
        assert_eq!(entries[0]["attempts"], 1);
        let err = ob["channels"]["slack"]["lastError"].as_str().unwrap();
        assert!(err.contains(expect), "{mode:?}: {err}");
        assert!(!err.contains("/hook"), "webhook path never shown: {err}");
        assert!(
            r.report
                .iter()
                .any(|l| l.starts_with("alert → slack:") && l.contains("stays queued")),
            "{:?}",
            r.report
        );
        // Delivered on one channel: stamped, R := S.
        assert!(env.incident(&wid).alerted_at.is_some());
        let f = env.incident("ops-reporter:alert-delivery-failed:slack");
        assert!(f.is_active() && f.severity == Severity::Warning);
    }
}

#[tokio::test]
async fn smtp_refusing_the_connection_keeps_the_digest_queued_and_slack_still_delivers() {
    let mut env = Env::new(&[]).await;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    drop(l);
    let rcpt = h::unique_rcpt("refused");
    env.set(&[
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_PORT", port.as_str()),
        ("SMTP_SECURE", "none"),
        ("OPS_ALERT_EMAIL", rcpt.as_str()),
    ]);
    warning_state(&env);
    let r = env.run().await;
    assert_eq!(r.exit_code, 1);
    assert_eq!(env.slack.delivered().len(), 1);
    let ob = env.outbox();
    let entries = ob["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["channel"], "email");
    assert!(
        r.report
            .iter()
            .any(|l| l.starts_with("alert → email:") && l.contains("stays queued")),
        "{:?}",
        r.report
    );
    let f = env.incident("ops-reporter:alert-delivery-failed:email");
    assert!(f.is_active() && f.severity == Severity::Warning);
}

#[tokio::test]
async fn smtp_refusing_the_credentials_drops_the_digest_without_leaking_the_password() {
    let mut env = Env::new(&[]).await;
    let (host, port, dir) = support::smtp_auth_sink();
    let user = support::require_env("VIZORA_TEST_SMTP_AUTH_USER");
    let wrong = "Wr0ng-reporter-pass-417";
    let rcpt = h::unique_rcpt("badauth");
    let port = port.to_string();
    env.set(&[
        ("SMTP_HOST", host.as_str()),
        ("SMTP_PORT", port.as_str()),
        ("SMTP_SECURE", "none"),
        ("SMTP_USER", user.as_str()),
        ("SMTP_PASS", wrong),
        ("OPS_ALERT_EMAIL", rcpt.as_str()),
    ]);
    warning_state(&env);
    let r = env.run().await;
    assert_eq!(r.exit_code, 1);
    assert_eq!(env.slack.delivered().len(), 1, "Slack unaffected");
    assert!(h::stored_for(&dir, &rcpt).is_empty());
    let ob = env.outbox();
    assert_eq!(env.queued(), 0, "a permanent refusal is dropped: {ob}");
    let err = ob["channels"]["email"]["lastError"].as_str().unwrap();
    assert!(err.contains("535"), "{err}");
    assert!(
        r.report
            .iter()
            .any(|l| l.starts_with("alert → email:") && l.contains("rejected, dropped"))
    );
    for text in [
        std::fs::read_to_string(env.outbox_path()).unwrap(),
        std::fs::read_to_string(env.state_path()).unwrap(),
        r.report.join("\n"),
    ] {
        assert!(!text.contains(wrong), "password leaked");
    }
}

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

#[tokio::test]
async fn two_thousand_incidents_with_long_messages_stay_under_the_size_caps() {
    let sb = sandbox().await;
    let mut env = Env::new(&[]).await;
    with_api(&mut env, &sb);
    let t = env.clock.now();
    let long = "x".repeat(2_000);
    let incidents: Vec<_> = (0..2_000)
        .map(|n| {
            let sev = if n % 10 == 0 {
                Severity::Critical
            } else {
                Severity::Warning
            };
            h::incident(
                AgentName::FleetManager,
                "display_offline",
                sev,
                &format!("d{n}"),
                &format!("display {n}: {long}"),
                t - Duration::seconds(n),
            )
        })
        .collect();
    env.write_state(&h::state_with(incidents, t));
    let r = env.run().await;
    assert_eq!(r.exit_code, 1);

    // Slack: at most 40 KB, 10 incident attachments, the rest counted.
    let d = env.slack.delivered();
    assert_eq!(d.len(), 1);
    assert!(serde_json::to_vec(&d[0]).unwrap().len() <= 40_000);
    let atts = d[0]["attachments"].as_array().unwrap();
    assert!(atts.len() <= 12);
    assert!(
        atts.last().unwrap()["text"]
            .as_str()
            .unwrap()
            .starts_with("…and "),
        "{}",
        atts.last().unwrap()
    );
    assert_eq!(
        d[0]["text"],
        "Vizora Ops: CRITICAL (was HEALTHY) - 200 critical, 1800 warning"
    );

    // Dashboard: below OPS_DASHBOARD_MAX_BYTES, accepted, with the omitted counts.
    let push = sb
        .requests()
        .into_iter()
        .find(|q| q.method == "POST" && q.path == "/api/v1/health/ops-status")
        .expect("pushed");
    assert_eq!(push.status, 201);
    let sent = serde_json::to_vec(push.body.as_ref().unwrap())
        .unwrap()
        .len();
    assert!(sent < 90_000, "{sent} bytes");
    let stored = sb.ops_status().expect("the sandbox holds the ops status");
    let kept = stored["incidents"].as_array().unwrap().len();
    assert!(kept > 0 && kept < 2_000);
    assert_eq!(
        stored["truncated"]["incidentsOmitted"].as_u64().unwrap() as usize,
        2_000 - kept
    );
    assert!(
        stored["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["severity"] == "critical"),
        "warnings dropped before criticals"
    );
    assert_eq!(stored["systemStatus"], "CRITICAL");
    // The state keeps every active incident, each stamped.
    let st = env.state();
    assert_eq!(st.incidents.iter().filter(|i| i.is_active()).count(), 2_000);
    assert!(st.incidents.iter().all(|i| i.alerted_at.is_some()));
    sb.shutdown().await;
}

#[tokio::test]
async fn incident_text_cannot_format_link_or_mention_in_slack() {
    let env = Env::new(&[]).await;
    let t = env.clock.now();
    let w = h::incident(
        AgentName::ContentLifecycle,
        "oversized_file",
        Severity::Warning,
        "c<1>",
        "Disk <http://x> *bold* & co <!channel>",
        t,
    );
    env.write_state(&h::state_with(vec![w], t));
    env.run().await;
    let d = env.slack.delivered();
    assert_eq!(d.len(), 1);
    let att = &d[0]["attachments"][1];
    assert_eq!(
        att["text"],
        "Disk &lt;http://x&gt; *bold* &amp; co &lt;!channel&gt;"
    );
    assert_eq!(att["title"], "WARNING: oversized file (display c&lt;1&gt;)");
    for a in d[0]["attachments"].as_array().unwrap() {
        assert_eq!(a["mrkdwn_in"], Value::Array(vec![]));
    }
    let raw = serde_json::to_string(&d[0]).unwrap();
    for bad in ["<http://x>", "<!channel>", "<1>"] {
        assert!(!raw.contains(bad), "{bad} reached Slack unescaped");
    }
    assert!(!d[0]["text"].as_str().unwrap().contains("Disk"));
}

#[tokio::test]
async fn a_clock_moving_backwards_neither_alerts_nor_silences_nor_extends_the_window() {
    let env = Env::new(&[("OPS_AGENTS", "fleet-manager,ops-reporter")]).await;
    let t = env.clock.now();
    let c = h::incident(
        AgentName::FleetManager,
        "location_offline",
        Severity::Critical,
        "org/hq",
        "3 displays offline",
        t,
    );
    env.write_state(&h::state_with(vec![c], t));
    env.run().await;
    assert_eq!(env.slack.delivered().len(), 1);

    env.at_s(t, -3 * 3600);
    let r = env.run().await;
    assert_eq!(r.exit_code, 1);
    assert_eq!(
        env.slack.posts().len(),
        1,
        "no alert from a backwards clock"
    );
    assert!(
        r.report
            .iter()
            .any(|l| l.starts_with("watchdog: fleet-manager ok (last run 0 min ago")),
        "{:?}",
        r.report
    );
    assert!(
        env.state()
            .incidents
            .iter()
            .all(|i| i.kind != "agent-silent")
    );

    // Back to normal time: the hourly re-alert still comes on the run at about 60 min, not later.
    env.at_s(t, 30 * 60);
    env.edit_state(|st| {
        st.last_run.insert(
            "fleet-manager".into(),
            Value::String(ts(t + Duration::minutes(29))),
        );
    });
    env.run().await;
    assert_eq!(env.slack.posts().len(), 1);
    env.edit_state(|st| {
        st.last_run.insert(
            "fleet-manager".into(),
            Value::String(ts(t + Duration::minutes(58))),
        );
    });
    env.at_s(t, 59 * 60);
    env.run().await;
    assert_eq!(env.slack.delivered().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reporters_started_at_once_send_one_alert() {
    let env = Env::new(&[]).await;
    warning_state(&env);
    // Slack answers slowly so that the first run still holds its guard when the second starts.
    env.slack.set(Mode::SlowOk(1_500));
    let dir = env.dir.path().display().to_string();
    let spawn = || {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_vizora-ops"))
            .args(["run", "ops-reporter"])
            .env_clear()
            .env("OPS_ROOT_DIR", &dir)
            .env("OPS_LOG_DIR", &dir)
            .env("SLACK_WEBHOOK_URL", &env.hook)
            .env("OPS_AGENTS", "ops-reporter")
            .env("OPS_NOTIFY_TIMEOUT_MS", "10000")
            .env("OPS_RATE_LIMIT_BACKEND", "memory")
            .output()
    };
    let (a, b) = tokio::join!(spawn(), spawn());
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut codes = vec![a.status.code(), b.status.code()];
    codes.sort();
    assert_eq!(
        codes,
        vec![Some(1), Some(2)],
        "one DEGRADED run, one refused"
    );
    let loser = if a.status.code() == Some(2) { &a } else { &b };
    let out = String::from_utf8_lossy(&loser.stdout);
    assert!(
        out.contains("another ops-reporter run is in progress"),
        "{out}"
    );
    assert_eq!(env.slack.posts().len(), 1, "exactly one alert");
    assert_eq!(
        env.state().agent_results["ops-reporter"]["stats"]["lastReportedStatus"],
        "DEGRADED"
    );
}
