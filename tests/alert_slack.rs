//! Slack delivery, the outbox and the dashboard cap (agents.md 7.2, 7.4, 7.6, 7.7, 7.8) against a local HTTP
//! receiver that records every POST and can answer 200, 500, 429 with `Retry-After`, 400, or hang.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{Duration as ChronoDuration, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vizora_ops::alert::dashboard::cap_payload;
use vizora_ops::alert::outbox::{OUTBOX_FILE, delivery_failed_incidents};
use vizora_ops::alert::slack::{self, MAX_PAYLOAD_BYTES};
use vizora_ops::alert::{
    Alerter, Channel, DeliveryOutcome, EntryKind, IncidentRef, InlineKind, Outbox, OutboxEntry,
    StatusRequest, decide, decision::DecisionInput, heartbeat,
};
use vizora_ops::config::{AlertConfig, SmtpSecurity};
use vizora_ops::model::{
    AgentName, Incident, IncidentStatus, OpsState, RemediationAction, Severity, SystemStatus, ts,
};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Ok,
    Fail500,
    Fail429,
    Fail400,
    Hang,
}

#[derive(Debug, Clone)]
struct Post {
    path: String,
    body: Vec<u8>,
    answered: u16,
}

#[derive(Default)]
struct Rec {
    mode: Mutex<Option<Mode>>,
    posts: Mutex<Vec<Post>>,
}

impl Rec {
    fn set(&self, m: Mode) {
        *self.mode.lock().unwrap() = Some(m);
    }
    fn posts(&self) -> Vec<Post> {
        self.posts.lock().unwrap().clone()
    }
    fn delivered(&self) -> Vec<Value> {
        self.posts()
            .into_iter()
            .filter(|p| p.answered == 200 && p.path == "/hook")
            .map(|p| serde_json::from_slice(&p.body).unwrap())
            .collect()
    }
}

async fn handle(State(rec): State<Arc<Rec>>, uri: Uri, body: Bytes) -> Response {
    let mode = rec.mode.lock().unwrap().unwrap_or(Mode::Ok);
    let code = match mode {
        Mode::Ok => 200,
        Mode::Fail500 => 500,
        Mode::Fail429 => 429,
        Mode::Fail400 => 400,
        Mode::Hang => 0,
    };
    rec.posts.lock().unwrap().push(Post {
        path: uri.path().to_string(),
        body: body.to_vec(),
        answered: code,
    });
    match mode {
        Mode::Ok => (StatusCode::OK, "ok").into_response(),
        Mode::Fail500 => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        Mode::Fail429 => (
            StatusCode::TOO_MANY_REQUESTS,
            [("Retry-After", "30")],
            "rate_limited",
        )
            .into_response(),
        Mode::Fail400 => (StatusCode::BAD_REQUEST, "invalid_payload").into_response(),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            (StatusCode::OK, "late").into_response()
        }
    }
}

async fn receiver() -> (String, Arc<Rec>) {
    let rec = Arc::new(Rec::default());
    let app = Router::new().fallback(handle).with_state(rec.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(l, app).await.unwrap();
    });
    (format!("http://{addr}"), rec)
}

fn cfg(webhook: Option<String>) -> AlertConfig {
    AlertConfig {
        slack_webhook_url: webhook,
        smtp_host: None,
        smtp_port: 587,
        smtp_secure: SmtpSecurity::None,
        smtp_user: None,
        smtp_pass: None,
        smtp_from: "vizora-ops@vizora.cloud".into(),
        recipients: vec![],
        dedup_minutes: 60,
        critical_realert_minutes: 60,
        notify_fixes: true,
        dashboard_max_bytes: 90_000,
        ops_server_url: None,
        ops_api_token: None,
        sla_minutes: BTreeMap::new(),
        heartbeat_urls: BTreeMap::new(),
        capture_only: false,
    }
}

fn alerter(c: AlertConfig, dir: &Path) -> Alerter {
    Alerter::new(
        c,
        dir.join(OUTBOX_FILE),
        Duration::from_secs(5),
        Duration::from_millis(700),
    )
    .with_host("ops<1>&co")
}

fn incident(target_id: &str, sev: Severity, msg: &str) -> Incident {
    Incident::new(
        AgentName::HealthGuardian,
        "service-down",
        sev,
        "service",
        target_id,
        msg,
        "restart <it>",
        Utc::now() - ChronoDuration::minutes(3),
    )
}

const NASTY: &str = "Disk <http://x> *bold* & co <!channel>";
const NASTY_ESCAPED: &str = "Disk &lt;http://x&gt; *bold* &amp; co &lt;!channel&gt;";

#[tokio::test]
async fn inline_alert_escapes_untrusted_text_and_is_removed_from_the_outbox_when_delivered() {
    let (base, rec) = receiver().await;
    let tmp = tempfile::tempdir().unwrap();
    let a = alerter(cfg(Some(format!("{base}/hook"))), tmp.path());
    let inc = incident("web", Severity::Critical, NASTY);
    let refs = vec![IncidentRef::of(&inc)];
    let out = a
        .inline(
            "health-guardian",
            InlineKind::Critical,
            NASTY,
            &["<@U123> item".to_string()],
            refs.clone(),
            Utc::now(),
            false,
        )
        .await;
    assert!(out.delivered);
    assert_eq!(out.stamped_refs, refs);
    let got = rec.delivered();
    assert_eq!(got.len(), 1);
    let p = &got[0];
    assert_eq!(p["text"], "Vizora Ops: CRITICAL (health-guardian)");
    let att = &p["attachments"][0];
    assert_eq!(att["color"], "danger");
    assert_eq!(att["title"], "Vizora Ops: CRITICAL (health-guardian)");
    assert_eq!(att["text"], NASTY_ESCAPED);
    assert_eq!(att["fields"][0]["title"], "Details");
    assert_eq!(att["fields"][0]["value"], "&lt;@U123&gt; item");
    assert_eq!(att["footer"], "vizora-ops | ops&lt;1&gt;&amp;co");
    assert_eq!(att["mrkdwn_in"], json!([]));
    assert!(att["ts"].as_i64().unwrap() > 1_700_000_000);
    let raw = String::from_utf8(rec.posts()[0].body.clone()).unwrap();
    assert!(
        !raw.contains("<!channel>") && !raw.contains("<http"),
        "{raw}"
    );
    let ob = a.outbox().read();
    assert!(ob.entries.is_empty());
    assert!(ob.channels["slack"].last_ok_at.is_some());
}

#[tokio::test]
async fn status_alert_escapes_incident_text_and_names_worthy_incidents() {
    let (base, rec) = receiver().await;
    let tmp = tempfile::tempdir().unwrap();
    let a = alerter(cfg(Some(format!("{base}/hook"))), tmp.path());
    let incs = vec![
        incident("a<b>", Severity::Critical, NASTY),
        incident("w", Severity::Warning, "slow"),
    ];
    let now = Utc::now();
    let d = decide(&DecisionInput {
        status: SystemStatus::Critical,
        last_reported: Some(SystemStatus::Degraded),
        last_status_alert: None,
        incidents: &incs,
        now,
        dedup_window_s: 3600,
        critical_realert_s: 3600,
        tolerance_s: 120,
    });
    let out = a
        .deliver_status(&StatusRequest {
            decision: &d,
            status: SystemStatus::Critical,
            previous: SystemStatus::Degraded,
            last_status_alert: None,
            incidents: &incs,
            remediations: &[],
            now,
            dry_run: false,
        })
        .await;
    assert!(out.status_delivered);
    assert_eq!(out.delivered_refs.len(), 2);
    let p = &rec.delivered()[0];
    assert_eq!(
        p["text"],
        "Vizora Ops: CRITICAL (was DEGRADED) - 1 critical, 1 warning"
    );
    let atts = p["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), 3);
    assert_eq!(atts[0]["color"], "danger");
    assert_eq!(
        atts[1]["title"],
        "CRITICAL: service down (service a&lt;b&gt;)"
    );
    assert_eq!(atts[1]["text"], NASTY_ESCAPED);
    assert_eq!(atts[1]["fields"][0]["value"], "restart &lt;it&gt;");
    assert_eq!(atts[2]["color"], "warning");
    for at in atts {
        assert_eq!(at["mrkdwn_in"], json!([]));
    }
}

/// Runs one failure mode: the first attempt fails and the message stays queued; the next attempt delivers it
/// exactly once and empties the queue.
async fn failure_then_retry(mode: Mode) -> String {
    let (base, rec) = receiver().await;
    let tmp = tempfile::tempdir().unwrap();
    let a = alerter(cfg(Some(format!("{base}/hook"))), tmp.path());
    let inc = incident("db", Severity::Warning, "replication lag");
    rec.set(mode);
    let out = a
        .inline(
            "db-maintainer",
            InlineKind::Warning,
            "lag",
            &[],
            vec![IncidentRef::of(&inc)],
            Utc::now(),
            false,
        )
        .await;
    assert!(!out.delivered, "{mode:?}");
    assert!(
        out.stamped_refs.is_empty(),
        "nothing stamped until delivered"
    );
    let ob = a.outbox().read();
    assert_eq!(ob.entries.len(), 1, "{mode:?}: stays queued");
    let e = &ob.entries[0];
    assert_eq!(
        (e.channel, e.kind, e.attempts),
        (Channel::Slack, EntryKind::Inline, 1)
    );
    let reason = e.last_error.clone().unwrap();
    assert!(ob.channels["slack"].last_failed());
    assert!(
        !reason.contains("/hook"),
        "webhook path never shown: {reason}"
    );
    // alert-delivery-failed is derived while the message is queued.
    let failed = delivery_failed_incidents(&ob, Utc::now());
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, "ops-reporter:alert-delivery-failed:slack");

    rec.set(Mode::Ok);
    let r = a.retry_queued(Utc::now(), false).await;
    assert_eq!(r.attempts.len(), 1);
    assert_eq!(
        r.delivered_refs,
        vec![IncidentRef::of(&inc)],
        "the reporter stamps these"
    );
    assert!(a.outbox().read().entries.is_empty());
    let r = a.retry_queued(Utc::now(), false).await;
    assert!(r.attempts.is_empty());
    assert_eq!(rec.delivered().len(), 1, "delivered exactly once");
    assert!(delivery_failed_incidents(&a.outbox().read(), Utc::now()).is_empty());
    reason
}

#[tokio::test]
async fn http_500_stays_queued_and_is_delivered_once_on_the_next_attempt() {
    let reason = failure_then_retry(Mode::Fail500).await;
    assert!(reason.contains("HTTP 500"), "{reason}");
}

#[tokio::test]
async fn http_429_reports_retry_after_stays_queued_and_is_delivered_once_later() {
    let started = std::time::Instant::now();
    let reason = failure_then_retry(Mode::Fail429).await;
    assert!(
        reason.contains("HTTP 429") && reason.contains("Retry-After 30"),
        "{reason}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "nothing sleeps for Retry-After"
    );
}

#[tokio::test]
async fn hanging_webhook_times_out_stays_queued_and_is_delivered_once_later() {
    let reason = failure_then_retry(Mode::Hang).await;
    assert!(reason.contains("timeout"), "{reason}");
}

#[tokio::test]
async fn other_4xx_is_dropped_and_recorded() {
    let (base, rec) = receiver().await;
    let tmp = tempfile::tempdir().unwrap();
    let a = alerter(cfg(Some(format!("{base}/hook"))), tmp.path());
    rec.set(Mode::Fail400);
    let out = a
        .inline(
            "fleet-manager",
            InlineKind::Warning,
            "x",
            &[],
            vec![],
            Utc::now(),
            false,
        )
        .await;
    assert!(!out.delivered);
    let ob = a.outbox().read();
    assert!(ob.entries.is_empty(), "dropped");
    assert!(
        ob.channels["slack"]
            .last_error
            .as_deref()
            .unwrap()
            .contains("HTTP 400")
    );
    assert!(
        delivery_failed_incidents(&ob, Utc::now()).is_empty(),
        "nothing queued, so no alert-delivery-failed"
    );
}

#[tokio::test]
async fn deliver_outcome_classification() {
    let (base, rec) = receiver().await;
    let client = reqwest::Client::new();
    let hook = format!("{base}/hook");
    let t = Duration::from_millis(500);
    rec.set(Mode::Ok);
    assert_eq!(
        slack::deliver(&client, &hook, &json!({}), t).await,
        DeliveryOutcome::Delivered
    );
    rec.set(Mode::Fail400);
    assert!(matches!(
        slack::deliver(&client, &hook, &json!({}), t).await,
        DeliveryOutcome::Drop(_)
    ));
    rec.set(Mode::Fail500);
    assert!(matches!(
        slack::deliver(&client, &hook, &json!({}), t).await,
        DeliveryOutcome::Retry(_)
    ));
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!(
        "http://{}/services/T000/B000/secretpath",
        l.local_addr().unwrap()
    );
    drop(l);
    match slack::deliver(&client, &dead, &json!({}), t).await {
        DeliveryOutcome::Retry(r) => assert!(!r.contains("secretpath"), "{r}"),
        other => panic!("transport error must be retried: {other:?}"),
    }
}

#[tokio::test]
async fn newer_status_supersedes_the_queued_one_and_carries_its_references() {
    let (base, rec) = receiver().await;
    let tmp = tempfile::tempdir().unwrap();
    let a = alerter(cfg(Some(format!("{base}/hook"))), tmp.path());
    let first = vec![incident("one", Severity::Warning, "m1")];
    let now = Utc::now();
    let mk = |incs: &[Incident], s: SystemStatus| {
        decide(&DecisionInput {
            status: s,
            last_reported: None,
            last_status_alert: None,
            incidents: incs,
            now,
            dedup_window_s: 3600,
            critical_realert_s: 3600,
            tolerance_s: 120,
        })
    };
    rec.set(Mode::Fail500);
    let d1 = mk(&first, SystemStatus::Degraded);
    let out = a
        .deliver_status(&StatusRequest {
            decision: &d1,
            status: SystemStatus::Degraded,
            previous: SystemStatus::Healthy,
            last_status_alert: None,
            incidents: &first,
            remediations: &[],
            now,
            dry_run: false,
        })
        .await;
    assert!(!out.status_delivered);
    assert_eq!(a.outbox().read().entries.len(), 1);

    rec.set(Mode::Ok);
    let second = vec![incident("two", Severity::Critical, "m2")];
    let d2 = mk(&second, SystemStatus::Critical);
    let out = a
        .deliver_status(&StatusRequest {
            decision: &d2,
            status: SystemStatus::Critical,
            previous: SystemStatus::Healthy,
            last_status_alert: None,
            incidents: &second,
            remediations: &[],
            now: now + ChronoDuration::minutes(30),
            dry_run: false,
        })
        .await;
    assert!(out.status_delivered);
    assert_eq!(out.attempts.len(), 1, "the superseded alert is never sent");
    let mut ids: Vec<String> = out.delivered_refs.iter().map(|r| r.id.clone()).collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![
            "health-guardian:service-down:one",
            "health-guardian:service-down:two"
        ]
    );
    let got = rec.delivered();
    assert_eq!(got.len(), 1);
    assert!(
        got[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Vizora Ops: CRITICAL")
    );
    assert!(a.outbox().read().entries.is_empty());
}

#[tokio::test]
async fn slack_failing_never_blocks_email_and_vice_versa() {
    let (base, rec) = receiver().await;
    let tmp = tempfile::tempdir().unwrap();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = l.local_addr().unwrap().port();
    drop(l);
    let mut c = cfg(Some(format!("{base}/hook")));
    c.smtp_host = Some("127.0.0.1".into());
    c.smtp_port = dead_port;
    c.recipients = vec!["ops@example.test".into()];
    let a = alerter(c, tmp.path());
    let incs = vec![incident("x", Severity::Warning, "m")];
    let now = Utc::now();
    let d = decide(&DecisionInput {
        status: SystemStatus::Degraded,
        last_reported: None,
        last_status_alert: None,
        incidents: &incs,
        now,
        dedup_window_s: 3600,
        critical_realert_s: 3600,
        tolerance_s: 120,
    });
    let out = a
        .deliver_status(&StatusRequest {
            decision: &d,
            status: SystemStatus::Degraded,
            previous: SystemStatus::Healthy,
            last_status_alert: None,
            incidents: &incs,
            remediations: &[],
            now,
            dry_run: false,
        })
        .await;
    assert!(
        out.status_delivered,
        "Slack delivered although e-mail failed"
    );
    assert_eq!(out.attempts.len(), 2);
    assert_eq!(out.attempts[0].channel, Channel::Slack, "Slack first");
    assert!(matches!(out.attempts[1].outcome, DeliveryOutcome::Retry(_)));
    assert_eq!(rec.delivered().len(), 1);
    let ob = a.outbox().read();
    assert_eq!(ob.entries.len(), 1);
    assert_eq!(ob.entries[0].channel, Channel::Email);
    let failed = delivery_failed_incidents(&ob, now);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, "ops-reporter:alert-delivery-failed:email");
}

#[tokio::test]
async fn dry_run_capture_and_disabled_fix_notifications_send_nothing() {
    let (base, rec) = receiver().await;
    let tmp = tempfile::tempdir().unwrap();
    let a = alerter(cfg(Some(format!("{base}/hook"))), tmp.path());
    let out = a
        .inline(
            "health-guardian",
            InlineKind::Critical,
            "x",
            &[],
            vec![],
            Utc::now(),
            true,
        )
        .await;
    assert!(!out.delivered);
    assert!(
        !tmp.path().join(OUTBOX_FILE).exists(),
        "dry run writes nothing"
    );

    let mut c = cfg(Some(format!("{base}/hook")));
    c.notify_fixes = false;
    let a = alerter(c, tmp.path());
    let out = a
        .inline(
            "content-lifecycle",
            InlineKind::Fixed,
            "Archived 2",
            &[],
            vec![],
            Utc::now(),
            false,
        )
        .await;
    assert!(!out.delivered);

    let mut c = cfg(Some(format!("{base}/hook")));
    c.capture_only = true;
    let a = alerter(c, tmp.path());
    let inc = incident("c", Severity::Critical, "m");
    let out = a
        .inline(
            "content-lifecycle",
            InlineKind::Fixed,
            "Archived 2 item(s)",
            &["Spring Menu".into()],
            vec![IncidentRef::of(&inc)],
            Utc::now(),
            false,
        )
        .await;
    assert!(out.delivered && out.stamped_refs.len() == 1);
    let cap = a.captured();
    assert_eq!(cap.len(), 1);
    assert_eq!(cap[0].title, "Vizora Ops: FIXED (content-lifecycle)");
    assert_eq!(cap[0].text, "Archived 2 item(s)\nSpring Menu");
    assert!(rec.posts().is_empty(), "nothing was sent");
    assert!(!tmp.path().join(OUTBOX_FILE).exists());
}

#[tokio::test]
async fn two_thousand_long_incidents_respect_dashboard_and_slack_caps() {
    let (base, rec) = receiver().await;
    let tmp = tempfile::tempdir().unwrap();
    let now = Utc::now();
    let mut st = OpsState::empty(now);
    for n in 0..2_000 {
        let sev = if n % 2 == 0 {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let mut i = incident(
            &format!("svc-{n}"),
            sev,
            &format!("{n} {}", "é<&>".repeat(1_500)),
        );
        if n % 5 == 0 {
            i.status = IncidentStatus::Resolved;
            i.resolved_at = Some(ts(now - ChronoDuration::minutes(n as i64)));
        }
        i.error = Some("e".repeat(4_000));
        st.incidents.push(i);
    }
    for n in 0..100 {
        st.recent_remediations.push(RemediationAction {
            agent: "health-guardian".into(),
            timestamp: ts(now - ChronoDuration::minutes(n)),
            action: "Restart".into(),
            target: "service".into(),
            target_id: format!("svc-{n}"),
            method: "pm2 restart".into(),
            endpoint: None,
            before: Some(json!({"big": "b".repeat(2_000)})),
            after: None,
            success: true,
            error: None,
            verified: Some(true),
            run_id: None,
            extra: Default::default(),
        });
    }
    let capped = cap_payload(&st, 90_000);
    let size = serde_json::to_vec(&capped).unwrap().len();
    assert!(size < 90_000, "dashboard payload {size} bytes");
    assert!(capped["truncated"]["incidentsOmitted"].as_u64().unwrap() > 0);
    assert_eq!(capped["truncated"]["remediationsOmitted"], 100);
    let kept = capped["incidents"].as_array().unwrap();
    assert!(!kept.is_empty());
    assert!(
        kept.iter()
            .all(|i| i["severity"] == "critical" && i["status"] == "open")
    );

    let a = alerter(cfg(Some(format!("{base}/hook"))), tmp.path());
    let d = decide(&DecisionInput {
        status: SystemStatus::Critical,
        last_reported: None,
        last_status_alert: None,
        incidents: &st.incidents,
        now,
        dedup_window_s: 3600,
        critical_realert_s: 3600,
        tolerance_s: 120,
    });
    assert_eq!(d.alert_worthy.len(), 1_600);
    let out = a
        .deliver_status(&StatusRequest {
            decision: &d,
            status: SystemStatus::Critical,
            previous: SystemStatus::Healthy,
            last_status_alert: None,
            incidents: &st.incidents,
            remediations: &st.recent_remediations,
            now,
            dry_run: false,
        })
        .await;
    assert!(out.status_delivered);
    let body = &rec.posts()[0].body;
    assert!(
        body.len() <= MAX_PAYLOAD_BYTES,
        "Slack payload {} bytes",
        body.len()
    );
    let p: Value = serde_json::from_slice(body).unwrap();
    let atts = p["attachments"].as_array().unwrap();
    let last = atts.last().unwrap()["text"].as_str().unwrap();
    let shown = atts.len() - 2;
    assert!(shown <= 10);
    assert_eq!(last, format!("…and {} more", 1_600 - shown));
    for at in &atts[1..atts.len() - 1] {
        assert!(at["text"].as_str().unwrap().chars().count() <= 3_000);
        assert!(at["text"].as_str().unwrap().ends_with('…'));
    }
}

#[test]
fn concurrent_enqueuers_lose_no_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(OUTBOX_FILE);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let ob = Outbox::new(&path, Duration::from_secs(10), false);
                for n in 0..10 {
                    let now = Utc::now();
                    ob.enqueue(
                        OutboxEntry::new(
                            Channel::Slack,
                            EntryKind::Inline,
                            &json!({"t": t, "n": n}),
                            vec![],
                            now,
                        ),
                        now,
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let f = Outbox::new(&path, Duration::from_secs(1), false).read();
    assert_eq!(f.entries.len(), 40);
    for t in 0..4 {
        for n in 0..10 {
            assert!(
                f.entries
                    .iter()
                    .any(|e| e.payload == json!({"t": t, "n": n}))
            );
        }
    }
}

#[test]
fn concurrent_processes_lose_no_entry() {
    // Re-runs this test binary as child processes that each enqueue, racing on the same outbox file.
    if let Ok(path) = std::env::var("VIZORA_OUTBOX_CHILD") {
        let ob = Outbox::new(&path, Duration::from_secs(10), false);
        let me = std::process::id();
        for n in 0..8 {
            let now = Utc::now();
            ob.enqueue(
                OutboxEntry::new(
                    Channel::Slack,
                    EntryKind::Inline,
                    &json!({"pid": me, "n": n}),
                    vec![],
                    now,
                ),
                now,
            )
            .unwrap();
        }
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(OUTBOX_FILE);
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "concurrent_processes_lose_no_entry",
                    "--test-threads=1",
                ])
                .env("VIZORA_OUTBOX_CHILD", &path)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let pids: Vec<u32> = children.iter().map(|c| c.id()).collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let f = Outbox::new(&path, Duration::from_secs(1), false).read();
    assert_eq!(f.entries.len(), 32);
    for pid in pids {
        assert_eq!(
            f.entries.iter().filter(|e| e.payload["pid"] == pid).count(),
            8
        );
    }
}

#[tokio::test]
async fn heartbeat_posts_url_or_url_fail_and_only_logs_failures() {
    let (base, rec) = receiver().await;
    let client = reqwest::Client::new();
    assert!(
        heartbeat(
            &client,
            &format!("{base}/ping/abc"),
            false,
            Duration::from_secs(2)
        )
        .await
    );
    assert!(
        heartbeat(
            &client,
            &format!("{base}/ping/abc/"),
            true,
            Duration::from_secs(2)
        )
        .await
    );
    let paths: Vec<String> = rec.posts().iter().map(|p| p.path.clone()).collect();
    assert_eq!(paths, vec!["/ping/abc", "/ping/abc/fail"]);
    rec.set(Mode::Fail500);
    assert!(
        !heartbeat(
            &client,
            &format!("{base}/ping/abc"),
            false,
            Duration::from_secs(2)
        )
        .await
    );
}
