//! ops-reporter's alert decision end to end (agents.md 6.5.1, 7.2, 7.3, 7.5, 7.6, 7.7) with a `ManualClock`, a state
//! file prepared per scenario, a local Slack receiver and the real SMTP sink: transitions in both directions, per
//! incident de-duplication, immediate alerts on a severity rise or escalation (with its attempt history), no alert
//! for a verified fix, the hourly CRITICAL re-alert, and the outbox retry delivering exactly once.

mod ops_reporter_harness;

use chrono::Duration;
use ops_reporter_harness::{self as h, Env, Mode};
use vizora_ops::alert::{Alerter, IncidentRef, InlineKind};
use vizora_ops::clock::Clock;
use vizora_ops::model::{AgentName, IncidentStatus, Severity, ts};

const MIN: i64 = 60;

fn stats(env: &Env) -> serde_json::Value {
    env.state().agent_results["ops-reporter"]["stats"].clone()
}

fn report_has(r: &vizora_ops::runner::RunReport, needle: &str) -> bool {
    r.report.iter().any(|l| l.contains(needle))
}

#[tokio::test]
async fn transitions_alert_in_both_directions_and_recovery_is_never_emailed() {
    let mut env = Env::new(&[]).await;
    let (rcpt, sink) = env.with_smtp_sink("transition");
    let t = env.clock.now();
    let w = h::incident(
        AgentName::FleetManager,
        "display_offline",
        Severity::Warning,
        "d1",
        "offline for 20 min",
        t - Duration::minutes(20),
    );
    let wid = w.id.clone();
    env.write_state(&h::state_with(vec![w], t));

    let r = env.run().await;
    assert_eq!(r.exit_code, 1, "DEGRADED exits 1");
    let d = env.slack.delivered();
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0]["text"],
        "Vizora Ops: DEGRADED (was HEALTHY) - 0 critical, 1 warning"
    );
    assert!(
        h::titles(&d[0])
            .iter()
            .any(|x| x == "WARNING: display offline (display d1)"),
        "{:?}",
        h::titles(&d[0])
    );
    assert_eq!(h::stored_for(&sink, &rcpt).len(), 1, "DEGRADED is e-mailed");
    assert_eq!(stats(&env)["lastReportedStatus"], "DEGRADED");
    let st = env.state();
    assert_eq!(st.last_run["ops-reporter:last-alert"], ts(t));
    let stamped = env.incident(&wid);
    assert_eq!(stamped.alerted_at, Some(ts(t)));
    assert_eq!(stamped.alerted_severity, Some(Severity::Warning));
    assert_eq!(stamped.alerted_status, Some(IncidentStatus::Open));

    // fleet-manager resolves it; the next reporter run reports the recovery.
    env.edit_state(|st| h::resolve(st, &wid, t + Duration::minutes(25)));
    env.at_s(t, 30 * MIN);
    let r = env.run().await;
    assert_eq!(r.exit_code, 0, "HEALTHY exits 0");
    let d = env.slack.delivered();
    assert_eq!(d.len(), 2);
    assert_eq!(
        d[1]["text"],
        "Vizora Ops: HEALTHY (was DEGRADED) - 0 critical, 0 warning"
    );
    assert_eq!(
        h::titles(&d[1]),
        vec!["Vizora Ops: HEALTHY (recovered from DEGRADED)"]
    );
    assert_eq!(d[1]["attachments"][0]["color"], "good");
    assert!(
        d[1]["attachments"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("1 incident(s) resolved"),
        "{}",
        d[1]
    );
    assert_eq!(
        h::stored_for(&sink, &rcpt).len(),
        1,
        "a recovery is never e-mailed"
    );
    assert_eq!(stats(&env)["lastReportedStatus"], "HEALTHY");

    // Nothing changed: no third message.
    env.at_s(t, 60 * MIN);
    let r = env.run().await;
    assert_eq!(r.exit_code, 0);
    assert_eq!(env.slack.posts().len(), 2);
    assert!(report_has(&r, "alert suppressed"), "{:?}", r.report);
}

#[tokio::test]
async fn an_alerted_incident_is_not_alerted_again_within_the_window() {
    let env = Env::new(&[]).await;
    let t = env.clock.now();
    let w1 = h::incident(
        AgentName::ScheduleDoctor,
        "past_end_schedule",
        Severity::Warning,
        "s1",
        "ended yesterday",
        t,
    );
    let w1_id = w1.id.clone();
    env.write_state(&h::state_with(vec![w1], t));
    env.run().await;
    assert_eq!(env.slack.delivered().len(), 1);

    env.at_s(t, 30 * MIN);
    let r = env.run().await;
    assert_eq!(r.exit_code, 1);
    assert_eq!(env.slack.posts().len(), 1, "same incident, same status");
    assert!(report_has(&r, "alert suppressed"), "{:?}", r.report);

    // A new incident alerts at once and the message names only the new one.
    let w2 = h::incident(
        AgentName::ScheduleDoctor,
        "past_end_schedule",
        Severity::Warning,
        "s2",
        "ended an hour ago",
        t + Duration::minutes(35),
    );
    env.edit_state(|st| st.incidents.push(w2));
    env.at_s(t, 40 * MIN);
    env.run().await;
    let d = env.slack.delivered();
    assert_eq!(d.len(), 2);
    let names = h::titles(&d[1]);
    assert!(
        names.iter().any(|x| x.contains("(display s2)")),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|x| x.contains("(display s1)")),
        "already alerted within the window: {names:?}"
    );
    assert_eq!(
        env.incident(&w1_id).alerted_at,
        Some(ts(t)),
        "stamp unchanged"
    );

    env.at_s(t, 58 * MIN);
    env.run().await;
    assert_eq!(env.slack.posts().len(), 2);
}

#[tokio::test]
async fn a_severity_rise_or_an_escalation_alerts_at_once_with_the_attempt_history() {
    let env = Env::new(&[]).await;
    let t = env.clock.now();
    let a = h::incident(
        AgentName::HealthGuardian,
        "service-unready",
        Severity::Critical,
        "middleware",
        "readiness 503: database down",
        t,
    );
    let b = h::incident(
        AgentName::HealthGuardian,
        "high-memory",
        Severity::Warning,
        "vizora-api:0",
        "memory 88 % of its limit",
        t,
    );
    let b_id = b.id.clone();
    env.write_state(&h::state_with(vec![a, b], t));
    env.run().await;
    assert_eq!(env.slack.delivered().len(), 1);

    // Severity rises within the window: alerted at once, only that incident named.
    env.edit_state(|st| {
        for i in st.incidents.iter_mut().filter(|i| i.id == b_id) {
            i.severity = Severity::Critical;
            i.message = "memory 97 % of its limit".into();
        }
    });
    env.at_s(t, 5 * MIN);
    let r = env.run().await;
    let d = env.slack.delivered();
    assert_eq!(d.len(), 2, "{:?}", r.report);
    assert_eq!(
        h::titles(&d[1])[1..],
        ["CRITICAL: process memory high (display vizora-api:0)".to_string()]
    );
    assert_eq!(
        env.incident(&b_id).alerted_severity,
        Some(Severity::Critical)
    );

    // Escalated after two restarts: alerted at once with what was tried, when, and what verification saw.
    env.edit_state(|st| {
        for i in st.incidents.iter_mut().filter(|i| i.id == b_id) {
            i.status = IncidentStatus::Escalated;
            i.attempts = 2;
            i.last_attempt_at = Some(ts(t + Duration::minutes(8)));
            i.error = Some("memory still 96 % 60 s after the restart".into());
        }
        let mut r1 = h::remediation(
            "vizora-api:0",
            "Restart vizora-api",
            t + Duration::minutes(3),
            false,
        );
        r1.target = "pm2-process".into();
        let mut r2 = h::remediation(
            "vizora-api:0",
            "Restart vizora-api",
            t + Duration::minutes(8),
            false,
        );
        r2.target = "pm2-process".into();
        st.recent_remediations = vec![r1, r2];
    });
    env.at_s(t, 10 * MIN);
    env.run().await;
    let d = env.slack.delivered();
    assert_eq!(d.len(), 3);
    let att = &d[2]["attachments"][1];
    assert_eq!(
        att["title"],
        "CRITICAL, escalated: process memory high (display vizora-api:0)"
    );
    let text = att["text"].as_str().unwrap();
    assert!(
        text.starts_with("memory 97 % of its limit\nAttempt history (2 attempt(s), last at "),
        "{text}"
    );
    assert_eq!(
        text.matches("Restart vizora-api (pm2 restart): done, verification failed")
            .count(),
        2,
        "{text}"
    );
    assert!(text.contains(&ts(t + Duration::minutes(3))), "{text}");
    assert!(
        text.ends_with("Last verification: memory still 96 % 60 s after the restart"),
        "{text}"
    );
    let stamped = env.incident(&b_id);
    assert_eq!(stamped.alerted_status, Some(IncidentStatus::Escalated));
    assert_eq!(
        stamped.message, "memory 97 % of its limit",
        "the history is in the alert, not the state"
    );

    env.at_s(t, 15 * MIN);
    env.run().await;
    assert_eq!(env.slack.posts().len(), 3, "escalation alerted once");
}

#[tokio::test]
async fn an_incident_fixed_and_verified_in_its_run_is_never_alerted_and_counts_as_a_verified_fix() {
    let mut env = Env::new(&[]).await;
    let (rcpt, sink) = env.with_smtp_sink("verified-fix");
    let t = env.clock.now();
    let mut fixed = h::incident(
        AgentName::HealthGuardian,
        "service-down",
        Severity::Critical,
        "web",
        "web probe failed twice",
        t - Duration::minutes(4),
    );
    fixed.status = IncidentStatus::Resolved;
    fixed.resolved_at = Some(ts(t - Duration::minutes(3)));
    let mut st = h::state_with(vec![fixed], t);
    st.recent_remediations = vec![h::remediation(
        "web",
        "Restart vizora-web",
        t - Duration::minutes(4),
        true,
    )];
    env.write_state(&st);

    let r = env.run().await;
    assert_eq!(r.exit_code, 0);
    assert!(
        env.slack.posts().is_empty(),
        "a verified fix is not an alert"
    );
    assert!(
        report_has(&r, "1 verified fix(es) in 24 h"),
        "{:?}",
        r.report
    );

    // A later warning alerts; the fix appears only among the verified fixes.
    let w = h::incident(
        AgentName::ContentLifecycle,
        "missing_thumbnail",
        Severity::Warning,
        "c1",
        "thumbnail 404",
        t,
    );
    env.edit_state(|st| st.incidents.push(w));
    env.at_s(t, 2 * MIN);
    env.run().await;
    let d = env.slack.delivered();
    assert_eq!(d.len(), 1);
    let body = serde_json::to_string(&d[0]).unwrap();
    assert!(!body.contains("service-down"), "{body}");
    let fields = d[0]["attachments"][0]["fields"].as_array().unwrap();
    let fixes = fields
        .iter()
        .find(|f| f["title"] == "Verified fixes (24 h)")
        .unwrap();
    assert_eq!(fixes["value"], "1");
    let mails = h::stored_for(&sink, &rcpt);
    assert_eq!(mails.len(), 1);
    let data = h::mail_text(&mails[0]);
    assert!(data.contains("Restart vizora-web"), "digest lists the fix");
    assert!(
        !data.contains("web probe failed twice"),
        "but not as an incident"
    );
}

#[tokio::test]
async fn a_persisting_critical_is_realerted_on_the_run_about_an_hour_later() {
    let env = Env::new(&[]).await;
    let t = env.clock.now();
    let c = h::incident(
        AgentName::DbMaintainer,
        "backup-stale",
        Severity::Critical,
        "s3://backups",
        "newest backup is 30 h old",
        t,
    );
    env.write_state(&h::state_with(vec![c], t));
    let r = env.run().await;
    assert_eq!(r.exit_code, 1);
    assert_eq!(env.slack.delivered().len(), 1);

    env.at_s(t, 29 * MIN + 30);
    env.run().await;
    assert_eq!(env.slack.posts().len(), 1, "30 min: within the hour");

    // The "hourly" run starts a little early; the 120 s margin lets it re-alert now, not 30 min later.
    env.at_s(t, 59 * MIN);
    let r = env.run().await;
    let d = env.slack.delivered();
    assert_eq!(d.len(), 2, "{:?}", r.report);
    assert_eq!(
        d[1]["text"],
        "Vizora Ops: CRITICAL (was CRITICAL) - 1 critical, 0 warning"
    );
    assert!(
        h::titles(&d[1])
            .iter()
            .any(|x| x.starts_with("CRITICAL: backup stale")),
        "the critical incident is named again"
    );
    assert!(report_has(&r, "CRITICAL re-alert"), "{:?}", r.report);
    assert_eq!(
        env.state().last_run["ops-reporter:last-alert"],
        ts(t + Duration::minutes(59))
    );

    env.at_s(t, 89 * MIN);
    env.run().await;
    assert_eq!(env.slack.posts().len(), 2);
}

#[tokio::test]
async fn an_alert_queued_while_slack_is_down_is_delivered_on_the_next_run_exactly_once() {
    let env = Env::new(&[]).await;
    let t = env.clock.now();
    let w = h::incident(
        AgentName::FleetManager,
        "display_error",
        Severity::Warning,
        "d7",
        "status error",
        t,
    );
    let wid = w.id.clone();
    env.write_state(&h::state_with(vec![w], t));
    env.slack.set(Mode::Fail500);
    let r = env.run().await;
    assert_eq!(r.exit_code, 1);
    assert_eq!(env.slack.posts().len(), 1);
    assert!(env.slack.delivered().is_empty());
    assert_eq!(env.queued(), 1, "kept in the outbox");
    assert!(report_has(&r, "stays queued"), "{:?}", r.report);
    assert!(
        env.incident(&wid).alerted_at.is_none(),
        "undelivered stamps nothing"
    );
    assert!(
        stats(&env).get("lastReportedStatus").is_none(),
        "R unchanged"
    );
    let failed = env.incident("ops-reporter:alert-delivery-failed:slack");
    assert_eq!(failed.severity, Severity::Warning);
    assert!(failed.is_active());
    assert!(failed.message.contains("HTTP 500"), "{}", failed.message);

    env.slack.set(Mode::Ok);
    env.at_s(t, 30 * MIN);
    let r = env.run().await;
    assert_eq!(r.exit_code, 1);
    let d = env.slack.delivered();
    assert_eq!(d.len(), 1, "one message, not the old and a new one");
    assert_eq!(env.slack.posts().len(), 2);
    assert!(
        d[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Vizora Ops: DEGRADED (was HEALTHY)"),
        "{}",
        d[0]["text"]
    );
    assert_eq!(env.queued(), 0);
    assert_eq!(
        env.incident(&wid).alerted_at,
        Some(ts(t + Duration::minutes(30)))
    );
    assert_eq!(stats(&env)["lastReportedStatus"], "DEGRADED");
    assert!(
        !env.incident("ops-reporter:alert-delivery-failed:slack")
            .is_active(),
        "resolved once Slack delivered"
    );

    env.at_s(t, 60 * MIN);
    env.run().await;
    assert_eq!(env.slack.posts().len(), 2, "delivered exactly once");
}

#[tokio::test]
async fn a_queued_fix_notification_is_delivered_on_slack_only_and_fixes_can_be_switched_off() {
    let mut env = Env::new(&[]).await;
    let (rcpt, sink) = env.with_smtp_sink("fixed");
    let t = env.clock.now();
    env.write_state(&h::state_with(vec![], t));
    let mut fixed = h::incident(
        AgentName::ContentLifecycle,
        "expired_content",
        Severity::Warning,
        "c9",
        "expired",
        t,
    );
    fixed.status = IncidentStatus::Resolved;
    env.slack.set(Mode::Fail500);
    let out = Alerter::from_config(&env.cfg())
        .inline(
            "content-lifecycle",
            InlineKind::Fixed,
            "Auto-archived 1 expired content item(s)",
            &["Spring Menu".to_string()],
            vec![IncidentRef::of(&fixed)],
            t,
            false,
        )
        .await;
    assert!(!out.delivered);
    assert_eq!(env.queued(), 1);

    env.slack.set(Mode::Ok);
    env.at_s(t, 10 * MIN);
    let r = env.run().await;
    assert_eq!(r.exit_code, 0);
    let d = env.slack.delivered();
    assert_eq!(d.len(), 1, "{:?}", r.report);
    assert_eq!(d[0]["attachments"][0]["color"], "good");
    assert_eq!(
        d[0]["attachments"][0]["title"],
        "Vizora Ops: FIXED (content-lifecycle)"
    );
    assert!(
        report_has(&r, "queued inline message (retry) delivered"),
        "{:?}",
        r.report
    );
    assert_eq!(env.queued(), 0);
    assert!(
        h::stored_for(&sink, &rcpt).is_empty(),
        "fixes are never e-mailed"
    );

    env.set(&[("OPS_NOTIFY_FIXES", "false")]);
    let posts_before = env.slack.posts().len();
    let out = Alerter::from_config(&env.cfg())
        .inline(
            "content-lifecycle",
            InlineKind::Fixed,
            "Auto-archived 1 expired content item(s)",
            &[],
            vec![],
            t,
            false,
        )
        .await;
    assert!(!out.delivered);
    assert_eq!(env.queued(), 0, "switched off: nothing queued");
    assert_eq!(env.slack.posts().len(), posts_before, "and nothing sent");
}
