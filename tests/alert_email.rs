//! The e-mail digest (agents.md 7.3) against the real SMTP sinks started by `scripts/test.sh`
//! (`scripts/smtp_sink.py`: every accepted message stored as JSON `{mail_from, rcpt_tos, data}`).

mod support;

use chrono::{Duration as ChronoDuration, Utc};
use mail_parser::{MessageParser, MimeHeaders, PartType};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use vizora_ops::alert::email::{self, EmailDigest, SmtpSettings};
use vizora_ops::alert::{
    Alerter, DeliveryOutcome, StatusRequest, decide, decision::DecisionInput, outbox::OUTBOX_FILE,
};
use vizora_ops::config::{AlertConfig, SmtpSecurity};
use vizora_ops::model::{
    AgentName, Incident, IncidentStatus, RemediationAction, Severity, SystemStatus, ts,
};

/// A recipient unique to one test, so parallel tests sharing a sink find their own message.
fn unique_rcpt(tag: &str) -> String {
    format!("ops-{tag}-{}@example.test", uuid::Uuid::new_v4().simple())
}

fn settings(host: &str, port: u16, recipients: Vec<String>) -> SmtpSettings {
    SmtpSettings {
        host: host.into(),
        port,
        security: SmtpSecurity::None,
        user: None,
        pass: None,
        from: "vizora-ops@vizora.cloud".into(),
        recipients,
        timeout: Duration::from_secs(10),
    }
}

/// The stored messages whose envelope includes `rcpt`.
fn stored_for(dir: &Path, rcpt: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut names: Vec<_> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    names.sort();
    for p in names {
        let Ok(b) = std::fs::read(&p) else { continue };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&b) else {
            continue;
        };
        if v["rcpt_tos"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r.as_str() == Some(rcpt)))
        {
            out.push(v);
        }
    }
    out
}

fn incident(target_id: &str, sev: Severity, status: IncidentStatus, msg: &str) -> Incident {
    let mut i = Incident::new(
        AgentName::HealthGuardian,
        "service-down",
        sev,
        "service",
        target_id,
        msg,
        "restart it",
        Utc::now() - ChronoDuration::minutes(5),
    );
    i.status = status;
    i
}

fn sample() -> (Vec<Incident>, Vec<RemediationAction>) {
    let incs = vec![
        incident(
            "vizora-web",
            Severity::Critical,
            IncidentStatus::Open,
            r#"probe <script>alert("x")</script> & 'quoted' failed"#,
        ),
        incident(
            "vizora-api",
            Severity::Warning,
            IncidentStatus::Escalated,
            "restarts exhausted",
        ),
        incident(
            "vizora-rt",
            Severity::Warning,
            IncidentStatus::Open,
            "slow responses",
        ),
        incident("old", Severity::Critical, IncidentStatus::Resolved, "gone"),
        incident("noise", Severity::Info, IncidentStatus::Open, "info only"),
    ];
    let rem = RemediationAction {
        agent: "health-guardian".into(),
        timestamp: ts(Utc::now() - ChronoDuration::minutes(10)),
        action: "Restart <vizora-api>".into(),
        target: "pm2-process".into(),
        target_id: "vizora-api".into(),
        method: "pm2 restart".into(),
        endpoint: None,
        before: None,
        after: None,
        success: true,
        error: None,
        verified: Some(true),
        run_id: None,
        extra: Default::default(),
    };
    (incs, vec![rem])
}

fn digest() -> EmailDigest {
    let (incs, rems) = sample();
    email::build_digest(SystemStatus::Critical, &incs, &rems, "ops-host", Utc::now())
}

#[tokio::test]
async fn digest_reaches_the_sink_with_subject_both_parts_incidents_and_escaping() {
    let (host, port, dir) = support::smtp_sink();
    let a = unique_rcpt("a");
    let b = unique_rcpt("b");
    let d = digest();
    let out = email::send(&settings(&host, port, vec![a.clone(), b.clone()]), &d).await;
    assert_eq!(out, DeliveryOutcome::Delivered);

    let stored = stored_for(&dir, &a);
    assert_eq!(stored.len(), 1, "exactly one message for {a}");
    let m = &stored[0];
    assert_eq!(m["mail_from"], "vizora-ops@vizora.cloud");
    let mut rcpts: Vec<&str> = m["rcpt_tos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    rcpts.sort();
    let mut want = vec![a.as_str(), b.as_str()];
    want.sort();
    assert_eq!(rcpts, want);

    let raw = m["data"].as_str().unwrap();
    let msg = MessageParser::default()
        .parse(raw.as_bytes())
        .expect("parsable message");
    assert_eq!(
        msg.subject(),
        Some("[Vizora Ops] CRITICAL — 1 critical, 2 warning(s)")
    );
    let ct = msg.content_type().expect("content type");
    assert_eq!(ct.ctype(), "multipart");
    assert_eq!(ct.subtype(), Some("alternative"));
    let kinds: Vec<String> = msg
        .parts
        .iter()
        .filter_map(|p| {
            p.content_type()
                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
        })
        .collect();
    assert!(kinds.contains(&"text/plain".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"text/html".to_string()), "{kinds:?}");
    let text = msg
        .parts
        .iter()
        .find_map(|p| match &p.body {
            PartType::Text(t) => Some(t.to_string()),
            _ => None,
        })
        .unwrap();
    let html = msg
        .parts
        .iter()
        .find_map(|p| match &p.body {
            PartType::Html(t) => Some(t.to_string()),
            _ => None,
        })
        .unwrap();

    // Incident lines: escalated first, then critical, then warning; resolved and info absent.
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("- ")).collect();
    assert!(
        lines[0].starts_with("- warning | escalated | service down | service:vizora-api"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("- critical | open | service down | service:vizora-web"),
        "{lines:?}"
    );
    assert!(lines[2].contains("service:vizora-rt"), "{lines:?}");
    assert!(!text.contains("service:old") && !text.contains("service:noise"));
    assert!(text.contains("Critical: 1"));
    assert!(text.contains("Escalated: 1"));
    assert!(text.contains("Verified fixes (24 h): 1"));
    assert!(text.contains(r#"probe <script>alert("x")</script> & 'quoted' failed"#));

    // HTML: heading colour, table, every interpolated text escaped.
    assert!(html.contains("color:#e74c3c"), "{html}");
    assert!(html.contains(
        "probe &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quoted&#39; failed"
    ));
    assert!(!html.contains("<script>"));
    assert!(html.contains("Restart &lt;vizora-api&gt;"));
    assert!(html.contains("service:vizora-web"));
    assert!(html.contains("ops-host"));
}

#[tokio::test]
async fn authenticated_sink_accepts_the_right_credentials() {
    let (host, port, dir) = support::smtp_auth_sink();
    let user = support::require_env("VIZORA_TEST_SMTP_AUTH_USER");
    let pass = support::require_env("VIZORA_TEST_SMTP_AUTH_PASS");
    let rcpt = unique_rcpt("auth-ok");
    let mut s = settings(&host, port, vec![rcpt.clone()]);
    s.user = Some(user);
    s.pass = Some(pass);
    assert_eq!(email::send(&s, &digest()).await, DeliveryOutcome::Delivered);
    assert_eq!(stored_for(&dir, &rcpt).len(), 1);
}

#[tokio::test]
async fn refused_credentials_are_dropped_without_the_password_in_the_error() {
    let (host, port, dir) = support::smtp_auth_sink();
    let user = support::require_env("VIZORA_TEST_SMTP_AUTH_USER");
    let rcpt = unique_rcpt("auth-bad");
    let wrong = "Wr0ng-pass-w0rd-xyz";
    let mut s = settings(&host, port, vec![rcpt.clone()]);
    s.user = Some(user);
    s.pass = Some(wrong.into());
    match email::send(&s, &digest()).await {
        DeliveryOutcome::Drop(reason) => {
            assert!(reason.contains("535"), "{reason}");
            assert!(!reason.contains(wrong), "{reason}");
        }
        other => panic!("refused credentials (535) must be dropped: {other:?}"),
    }
    // Without AUTH the sink refuses MAIL with 530: permanent as well.
    let mut s = settings(&host, port, vec![rcpt.clone()]);
    s.user = None;
    match email::send(&s, &digest()).await {
        DeliveryOutcome::Drop(reason) => assert!(reason.contains("530"), "{reason}"),
        other => panic!("530 must be dropped: {other:?}"),
    }
    assert!(stored_for(&dir, &rcpt).is_empty());
}

#[tokio::test]
async fn auto_security_never_authenticates_over_plaintext() {
    // The sink offers no STARTTLS: with a user set, `auto` requires TLS before AUTH, so the attempt fails
    // (temporary: connection/TLS class) and nothing is stored.
    let (host, port, dir) = support::smtp_auth_sink();
    let rcpt = unique_rcpt("auto");
    let mut s = settings(&host, port, vec![rcpt.clone()]);
    s.security = SmtpSecurity::Auto;
    s.user = Some(support::require_env("VIZORA_TEST_SMTP_AUTH_USER"));
    let pass = support::require_env("VIZORA_TEST_SMTP_AUTH_PASS");
    s.pass = Some(pass.clone());
    match email::send(&s, &digest()).await {
        DeliveryOutcome::Retry(reason) => assert!(!reason.contains(&pass), "{reason}"),
        other => panic!("expected a retry: {other:?}"),
    }
    assert!(stored_for(&dir, &rcpt).is_empty());
    // Without a user, `auto` falls back to plaintext when STARTTLS is not offered.
    let (host, port, dir) = support::smtp_sink();
    let rcpt = unique_rcpt("auto-plain");
    let mut s = settings(&host, port, vec![rcpt.clone()]);
    s.security = SmtpSecurity::Auto;
    assert_eq!(email::send(&s, &digest()).await, DeliveryOutcome::Delivered);
    assert_eq!(stored_for(&dir, &rcpt).len(), 1);
}

#[tokio::test]
async fn connection_refused_is_retried() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let mut s = settings("127.0.0.1", port, vec![unique_rcpt("refused")]);
    s.pass = Some("never-shown-pass".into());
    s.user = Some("u".into());
    match email::send(&s, &digest()).await {
        DeliveryOutcome::Retry(reason) => {
            assert!(reason.contains(&format!("127.0.0.1:{port}")), "{reason}");
            assert!(!reason.contains("never-shown-pass"));
        }
        other => panic!("expected a retry: {other:?}"),
    }
}

fn alert_config(host: &str, port: u16, recipients: Vec<String>) -> AlertConfig {
    AlertConfig {
        slack_webhook_url: None,
        smtp_host: Some(host.into()),
        smtp_port: port,
        smtp_secure: SmtpSecurity::None,
        smtp_user: None,
        smtp_pass: None,
        smtp_from: "vizora-ops@vizora.cloud".into(),
        recipients,
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

#[tokio::test]
async fn reporter_flow_emails_degraded_digest_and_never_a_recovery() {
    let (host, port, dir) = support::smtp_sink();
    let tmp = tempfile::tempdir().unwrap();
    let rcpt = unique_rcpt("flow");
    let alerter = Alerter::new(
        alert_config(&host, port, vec![rcpt.clone()]),
        tmp.path().join(OUTBOX_FILE),
        Duration::from_secs(5),
        Duration::from_secs(10),
    );
    let now = Utc::now();
    let (incs, rems) = sample();
    let decision = decide(&DecisionInput {
        status: SystemStatus::Critical,
        last_reported: None,
        last_status_alert: None,
        incidents: &incs,
        now,
        dedup_window_s: 3600,
        critical_realert_s: 3600,
        tolerance_s: 120,
    });
    assert!(decision.send_status);
    let out = alerter
        .deliver_status(&StatusRequest {
            decision: &decision,
            status: SystemStatus::Critical,
            previous: SystemStatus::Healthy,
            last_status_alert: None,
            incidents: &incs,
            remediations: &rems,
            now,
            dry_run: false,
        })
        .await;
    assert!(out.status_delivered);
    let mut ids: Vec<&str> = out.delivered_refs.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![
            "health-guardian:service-down:vizora-api",
            "health-guardian:service-down:vizora-rt",
            "health-guardian:service-down:vizora-web"
        ]
    );
    assert_eq!(stored_for(&dir, &rcpt).len(), 1);
    assert!(
        alerter.outbox().read().entries.is_empty(),
        "removed when delivered"
    );
    assert!(
        alerter.outbox().read().channels["email"]
            .last_ok_at
            .is_some()
    );

    // Recovery: Slack only, so nothing new reaches the sink.
    let rec = decide(&DecisionInput {
        status: SystemStatus::Healthy,
        last_reported: Some(SystemStatus::Critical),
        last_status_alert: Some(now),
        incidents: &[],
        now,
        dedup_window_s: 3600,
        critical_realert_s: 3600,
        tolerance_s: 120,
    });
    assert!(rec.is_recovery);
    let out = alerter
        .deliver_status(&StatusRequest {
            decision: &rec,
            status: SystemStatus::Healthy,
            previous: SystemStatus::Critical,
            last_status_alert: Some(now),
            incidents: &[],
            remediations: &[],
            now,
            dry_run: false,
        })
        .await;
    assert!(
        !out.status_delivered,
        "no Slack configured, and e-mail never carries a recovery"
    );
    assert_eq!(stored_for(&dir, &rcpt).len(), 1);
}

#[tokio::test]
async fn failed_digest_stays_queued_and_is_delivered_once_by_the_retry() {
    let (host, port, dir) = support::smtp_sink();
    let tmp = tempfile::tempdir().unwrap();
    let rcpt = unique_rcpt("retry");
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = l.local_addr().unwrap().port();
    drop(l);
    let outbox = tmp.path().join(OUTBOX_FILE);
    let down = Alerter::new(
        alert_config("127.0.0.1", dead_port, vec![rcpt.clone()]),
        &outbox,
        Duration::from_secs(5),
        Duration::from_secs(10),
    );
    let now = Utc::now();
    let (incs, rems) = sample();
    let decision = decide(&DecisionInput {
        status: SystemStatus::Critical,
        last_reported: None,
        last_status_alert: None,
        incidents: &incs,
        now,
        dedup_window_s: 3600,
        critical_realert_s: 3600,
        tolerance_s: 120,
    });
    let req = StatusRequest {
        decision: &decision,
        status: SystemStatus::Critical,
        previous: SystemStatus::Healthy,
        last_status_alert: None,
        incidents: &incs,
        remediations: &rems,
        now,
        dry_run: false,
    };
    let out = down.deliver_status(&req).await;
    assert!(!out.status_delivered);
    assert!(out.delivered_refs.is_empty(), "nothing counts as sent");
    let q = down.outbox().read();
    assert_eq!(q.entries.len(), 1);
    assert_eq!(q.entries[0].attempts, 1);
    assert!(q.entries[0].last_error.is_some());
    assert!(q.channels["email"].last_failed());

    // The server is back (the real sink): the next run's retry delivers it exactly once.
    let up = Alerter::new(
        alert_config(&host, port, vec![rcpt.clone()]),
        &outbox,
        Duration::from_secs(5),
        Duration::from_secs(10),
    );
    let out = up.retry_queued(Utc::now(), false).await;
    assert_eq!(out.attempts.len(), 1);
    assert_eq!(out.delivered_refs.len(), 3);
    assert!(up.outbox().read().entries.is_empty());
    let again = up.retry_queued(Utc::now(), false).await;
    assert!(again.attempts.is_empty());
    assert_eq!(stored_for(&dir, &rcpt).len(), 1);
}
