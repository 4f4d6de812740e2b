//! ops-reporter with its watchdog pass (agents.md 6.5, 3.5, 7; 9 items 7, 10, 46–50).
//!
//! Fixes nothing. One run, in the order of 6.5.1:
//!
//! 1. Snapshot (lock-free, from the runtime). A state file that exists but cannot be read or parsed makes the run
//!    exit 2 without writing or alerting: an empty snapshot would report a false HEALTHY.
//! 2. Watchdog ([`watchdog`], pure): each agent of `OPS_AGENTS` except ops-reporter, its `lastRun` against its SLA
//!    (6.5.2, windows per 1.1). Silent → `ops-watchdog:agent-silent:<agent>` (critical for health-guardian, warning
//!    otherwise); within SLA → resolved by the sweep; a missing or unparseable record → WARNING, no verdict, the id is
//!    `unexamined` so it is never resolved by a missing record (9.10).
//! 3. Status S (2.4) over the snapshot with the watchdog's run merged ([`crate::state::record_agent_run`] on a copy).
//! 4. Decision and delivery (6.5.1 steps 4–5): [`crate::alert::decide`] (7.5) and
//!    [`crate::alert::Alerter::deliver_status`], which retries queued outbox entries oldest first and delivers the new
//!    status alert (Slack, then the e-mail digest for DEGRADED/CRITICAL) through the outbox (7.7): nothing counts as
//!    sent until a channel accepted it. An escalated incident's alert carries its attempt history (what was tried and
//!    when, from `recentRemediations`; what verification saw last, from its `error`).
//! 5. Locked write (step 6): the runtime records the `ops-reporter` run (its own incidents `alert-delivery-failed`,
//!    `alerting-unconfigured`, and `stats = {lastReportedStatus, lastReportedAt, lastStatusAlertAt}`); the
//!    [`StateHook`] then records the `ops-watchdog` run (incidents, sweep, `lastRun["ops-watchdog"]`), stamps the
//!    incidents covered by delivered messages (any agent's; stamps are the only change the reporter makes to other
//!    agents' incidents, 2.5) and sets `lastRun["ops-reporter:last-alert"]` when a status alert was delivered.
//! 6. Outbox (step 7): written by the alerter as it goes.
//! 7. Dashboard push (step 8; 7.4, 9.49) of the size-capped state. The runtime writes the state only after this
//!    function returns, so the payload is the snapshot with exactly this run's changes applied (the same merge,
//!    stamps, pruning and status computation the write performs); changes other agents write in between are not in
//!    it. Outcomes go to the outbox `channels` record and become `alert-delivery-failed` incidents on the next run.
//!
//! Exit code (1.4): 0 when S is HEALTHY, 1 for DEGRADED or CRITICAL, 2 when the run could not complete. S is the
//! status over the snapshot plus the watchdog's incidents; a channel failing in this run never changes it (7.1), its
//! incident counts from the next run on. Two reporters started at once are handled by the runtime's single-instance
//! guard: the second exits 2 without writing or alerting.

use super::{AgentContext, AgentOutcome, StateHook, WriteMode};
use crate::alert::{
    Alerter, Channel, DeliveryOutcome, EntryKind, IncidentRef, StatusDelivery, StatusRequest,
    dashboard, decide, decision::DecisionInput, email, outbox, slack, stamp_incidents,
};
use crate::clock::age_s;
use crate::config::Config;
use crate::effects::Gated;
use crate::model::{
    AgentName, AgentResult, Incident, IncidentStatus, OpsState, RemediationAction, Severity,
    SystemStatus, compute_status, parse_ts, ts,
};
use crate::state::{Retention, RunRecord, StampWindow, record_agent_run};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};

/// Incident types of ops-reporter (agents.md 3.5).
pub const CATALOGUE: &[&str] = &["alert-delivery-failed", "alerting-unconfigured"];
/// Incident types of the watchdog pass, recorded as agent `ops-watchdog` (agents.md 3.5).
pub const WATCHDOG_CATALOGUE: &[&str] = &["agent-silent"];
/// `lastRun` key of the last delivered status alert (agents.md 2.3, 7.5).
pub const LAST_ALERT_KEY: &str = "ops-reporter:last-alert";
/// Path of the dashboard push on the Vizora API (agents.md 7.4).
pub const OPS_STATUS_PATH: &str = "/api/v1/health/ops-status";

const SILENT: &str = "agent-silent";
/// Entries of the attempt history shown for an escalated incident.
const HISTORY_MAX: usize = 5;

/// The watchdog's judgement of one watched agent (agents.md 6.5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Ran within its SLA (ages in minutes; a `lastRun` in the future counts as age 0).
    Ok {
        /// Whole minutes since `lastRun[agent]` at `now` (0 for a future record).
        age_min: i64,
        /// The agent's SLA in minutes ([`sla_minutes`]).
        sla_min: u64,
    },
    /// Silent past its SLA (less the early margin `OPS_WINDOW_TOLERANCE_S`, agents.md 1.1): `agent-silent` raised.
    Silent {
        /// Whole minutes since `lastRun[agent]` at `now`.
        age_min: i64,
        /// The agent's SLA in minutes ([`sla_minutes`]).
        sla_min: u64,
    },
    /// No `lastRun` record: WARNING, no verdict.
    NeverRun,
    /// A record that is not a parseable timestamp: WARNING, no verdict.
    Unparseable(String),
}

/// What the watchdog pass found.
#[derive(Debug, Clone, Default)]
pub struct WatchdogPass {
    /// `agent-silent` incidents raised (continuing the prior active episode: `detected`, `attempts` carried).
    pub incidents: Vec<Incident>,
    /// Ids without a verdict (missing or unparseable record): never resolved by this run.
    pub unexamined: HashSet<String>,
    /// Verdicts in watch order.
    pub verdicts: Vec<(AgentName, Verdict)>,
    /// WARNING lines (never run, unparseable record, `lastRun` in the future).
    pub warnings: Vec<String>,
}

/// The agents the watchdog watches: `OPS_AGENTS` except ops-reporter (its own silence is covered by
/// `OPS_HEARTBEAT_URL_OPS_REPORTER`, 6.5.2).
pub fn watched_agents(cfg: &Config) -> Vec<AgentName> {
    cfg.agents
        .iter()
        .copied()
        .filter(|a| !matches!(a, AgentName::OpsReporter | AgentName::OpsWatchdog))
        .collect()
}

/// SLA of an agent in minutes: `OPS_SLA_<AGENT>_MINUTES`, else the legacy `OPS_WATCHDOG_SLA_MINUTES` (not for
/// db-maintainer), else 2 × the interval (db-maintainer 1 560), as resolved by the configuration (8.6).
pub fn sla_minutes(cfg: &Config, agent: AgentName) -> u64 {
    cfg.alert
        .sla_minutes
        .get(&agent)
        .copied()
        .unwrap_or(match agent {
            AgentName::DbMaintainer => 1560,
            a => a.interval_s() * 2 / 60,
        })
}

/// The watchdog pass (agents.md 6.5.2, 9.10), pure: for each watched agent, `now − lastRun[agent]` against its SLA
/// with the early margin of 1.1 (`OPS_WINDOW_TOLERANCE_S`): older → `agent-silent` (critical for health-guardian,
/// warning for the others) with message `<agent> has not completed a run for <m> min (SLA <s> min)`; within → no
/// incident (the sweep resolves a prior one). A missing or unparseable record gives a WARNING and no verdict, and its
/// id is unexamined so a prior incident stays open. A `lastRun` in the future (clock moved backwards) counts as age 0
/// and is reported as a WARNING.
pub fn watchdog(cfg: &Config, snapshot: &OpsState, now: DateTime<Utc>) -> WatchdogPass {
    let mut pass = WatchdogPass::default();
    for agent in watched_agents(cfg) {
        let name = agent.as_str();
        let id = crate::model::incident_id(AgentName::OpsWatchdog, SILENT, name);
        let sla_min = sla_minutes(cfg, agent);
        let raw = snapshot.last_run.get(name);
        let last = match raw {
            None => {
                pass.warnings
                    .push(format!("{name} has never run (no lastRun record)"));
                pass.unexamined.insert(id);
                pass.verdicts.push((agent, Verdict::NeverRun));
                continue;
            }
            Some(v) => match v.as_str().and_then(parse_ts) {
                Some(t) => t,
                None => {
                    let shown = crate::redact::redact_str(&v.to_string());
                    pass.warnings.push(format!(
                        "{name} has never run (lastRun {shown} is not a timestamp)"
                    ));
                    pass.unexamined.insert(id);
                    pass.verdicts.push((agent, Verdict::Unparseable(shown)));
                    continue;
                }
            },
        };
        if last > now {
            pass.warnings.push(format!(
                "lastRun of {name} ({}) is in the future (clock moved backwards?); treating its age as 0",
                ts(last)
            ));
        }
        let age = age_s(now, last);
        let age_min = age / 60;
        let window = (sla_min as i64) * 60 - cfg.window_tolerance_s;
        if age <= window {
            pass.verdicts
                .push((agent, Verdict::Ok { age_min, sla_min }));
            continue;
        }
        let severity = if agent == AgentName::HealthGuardian {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let mut inc = Incident::new(
            AgentName::OpsWatchdog,
            SILENT,
            severity,
            "agent",
            name,
            format!("{name} has not completed a run for {age_min} min (SLA {sla_min} min)"),
            format!(
                "check the {name} schedule and its last runs: PM2 app ops-{name} (`pm2 logs ops-{name}`, \
                 logs/ops-{name}.log) or the systemd timer vizora-ops-{name}.timer \
                 (`journalctl -u vizora-ops-{name}.service`); a run that exits 2 is not a completed run"
            ),
            now,
        );
        if let Some(p) = snapshot
            .incidents
            .iter()
            .find(|p| p.id == inc.id && p.is_active())
        {
            inc.detected = p.detected.clone();
            inc.attempts = p.attempts;
            inc.last_attempt_at = p.last_attempt_at.clone();
        }
        pass.incidents.push(inc);
        pass.verdicts
            .push((agent, Verdict::Silent { age_min, sla_min }));
    }
    pass
}

/// The `ops-watchdog` run record (agents.md 6.5.1 step 6): its incidents, `agent-silent` covered, the ids without a
/// verdict unexamined, `lastRun["ops-watchdog"] = timestamp`; a new `agent-silent` episode inherits its resolved
/// predecessor's alert stamps only inside `window` (2.5).
pub fn watchdog_record(
    pass: &WatchdogPass,
    run_id: &str,
    timestamp: DateTime<Utc>,
    window: StampWindow,
) -> RunRecord {
    let silent: Vec<&str> = pass
        .verdicts
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::Silent { .. }))
        .map(|(a, _)| a.as_str())
        .collect();
    let no_verdict: Vec<&str> = pass
        .verdicts
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::NeverRun | Verdict::Unparseable(_)))
        .map(|(a, _)| a.as_str())
        .collect();
    let watched: Vec<&str> = pass.verdicts.iter().map(|(a, _)| a.as_str()).collect();
    let still_active = pass.incidents.iter().any(|i| i.severity.counts());
    RunRecord {
        result: AgentResult {
            agent: AgentName::OpsWatchdog.as_str().into(),
            timestamp: ts(timestamp),
            duration_ms: 0,
            issues_found: pass
                .incidents
                .iter()
                .filter(|i| i.severity.counts())
                .count() as u32,
            issues_fixed: 0,
            issues_escalated: 0,
            incidents: pass.incidents.clone(),
            info_found: Some(0),
            issues_resolved: None,
            exit_code: Some(i32::from(still_active)),
            run_id: Some(run_id.to_string()),
            coverage: Some(vec![SILENT.to_string()]),
            stats: Some(json!({"watched": watched, "silent": silent, "noVerdict": no_verdict})),
            extra: Map::new(),
        },
        covered_types: HashSet::from([SILENT.to_string()]),
        unexamined: pass.unexamined.clone(),
        catalogue: WATCHDOG_CATALOGUE.iter().map(|s| s.to_string()).collect(),
        resolve_suffix: HashMap::new(),
        remediations: Vec::new(),
        partial: false,
        stamp_window: window,
    }
}

/// The reporter's changes to the fresh state inside the lock (agents.md 6.5.1 step 6), after the runtime recorded the
/// `ops-reporter` run: the watchdog run, the alert stamps of delivered messages, `lastRun["ops-reporter:last-alert"]`.
/// Local work only.
#[derive(Debug, Clone)]
pub struct LockedChanges {
    /// The `ops-watchdog` run; its timestamp is set to the write time.
    pub watchdog: RunRecord,
    /// References of every delivered message (stamped with `stamp_at`).
    pub stamps: Vec<IncidentRef>,
    /// `alertedAt` of the stamps.
    pub stamp_at: DateTime<Utc>,
    /// Delivery time of this run's status alert, when one was delivered.
    pub last_alert: Option<DateTime<Utc>>,
}

impl LockedChanges {
    /// Applies the changes to `st` at `now` (the write time).
    pub fn apply(self, st: &mut OpsState, now: DateTime<Utc>) {
        let mut wd = self.watchdog;
        wd.result.timestamp = ts(now);
        record_agent_run(st, wd, now);
        stamp_incidents(&mut st.incidents, &self.stamps, self.stamp_at);
        if let Some(t) = self.last_alert {
            st.last_run
                .insert(LAST_ALERT_KEY.into(), Value::String(ts(t)));
        }
    }
}

/// `R`: `agentResults["ops-reporter"].stats.lastReportedStatus` (absent or unknown → `None`, read as HEALTHY).
pub fn last_reported_status(st: &OpsState) -> Option<SystemStatus> {
    reporter_stat(st, "lastReportedStatus").and_then(SystemStatus::parse)
}

fn reporter_stat<'a>(st: &'a OpsState, key: &str) -> Option<&'a str> {
    st.agent_results
        .get(AgentName::OpsReporter.as_str())
        .and_then(|r| r.get("stats"))
        .and_then(|s| s.get(key))
        .and_then(Value::as_str)
}

/// Clears, on a copy used for the decision, alert stamps that belong to an earlier episode and lie outside the
/// de-duplication window (agents.md 2.5: a resolved incident passes on its stamps only inside the window, so that
/// flapping does not re-alert but a new episode later does).
fn drop_stale_stamps(i: &mut Incident, now: DateTime<Utc>, window_s: i64, tolerance_s: i64) {
    let (Some(at), Some(detected)) = (
        i.alerted_at.as_deref().and_then(parse_ts),
        parse_ts(&i.detected),
    ) else {
        return;
    };
    if at < detected && crate::clock::window_elapsed(now, at, window_s, tolerance_s) {
        i.clear_alert_stamps();
    }
}

/// The attempt history of an escalated incident (agents.md 7.5 issue text): the remediations of its episode on its
/// target (newest last, at most 5: time, action, method, outcome, verification) and what verification saw last (its
/// `error`). Empty when there is nothing to tell.
pub fn attempt_history(i: &Incident, remediations: &[RemediationAction]) -> String {
    let since = parse_ts(&i.detected);
    let same_target = |r: &RemediationAction| {
        r.target_id == i.target_id
            || i.target_id.starts_with(&format!("{}:", r.target_id))
            || r.target_id.starts_with(&format!("{}:", i.target_id))
    };
    let mut rows: Vec<(&RemediationAction, DateTime<Utc>)> = remediations
        .iter()
        .filter(|r| r.agent == i.agent && same_target(r))
        .filter_map(|r| parse_ts(&r.timestamp).map(|t| (r, t)))
        .filter(|(_, t)| since.is_none_or(|s| *t >= s))
        .collect();
    rows.sort_by_key(|(_, t)| *t);
    let skipped = rows.len().saturating_sub(HISTORY_MAX);
    let mut out = Vec::new();
    if !rows.is_empty() || i.attempts > 0 {
        out.push(format!(
            "Attempt history ({} attempt(s){}):",
            i.attempts,
            i.last_attempt_at
                .as_deref()
                .map(|t| format!(", last at {t}"))
                .unwrap_or_default()
        ));
    }
    if skipped > 0 {
        out.push(format!("…{skipped} earlier action(s)"));
    }
    for (r, _) in rows.iter().skip(skipped) {
        let outcome = if r.success { "done" } else { "failed" };
        let verified = match r.verified {
            Some(true) => ", verified",
            Some(false) => ", verification failed",
            None => ", not verified",
        };
        out.push(format!(
            "- {} {} ({}): {outcome}{verified}{}",
            r.timestamp,
            r.action,
            r.method,
            r.error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ));
    }
    if let Some(e) = &i.error {
        out.push(format!("Last verification: {e}"));
    }
    out.join("\n")
}

/// The stats written to `agentResults["ops-reporter"].stats` (6.5.1 step 6): `lastReportedStatus` (R after this
/// run), `lastReportedAt` (when R took its current value), `lastStatusAlertAt` (T), plus the computed status and the
/// decision reason. Absent values are omitted, never `null`.
fn reporter_stats(
    snapshot: &OpsState,
    status: SystemStatus,
    previous: Option<SystemStatus>,
    delivered_at: Option<DateTime<Utc>>,
    reason: &str,
) -> Value {
    let mut m = Map::new();
    let prior_at = reporter_stat(snapshot, "lastReportedAt").map(str::to_string);
    let prior_alert = snapshot
        .last_run_at(LAST_ALERT_KEY)
        .map(ts)
        .or_else(|| reporter_stat(snapshot, "lastStatusAlertAt").map(str::to_string));
    let (reported, reported_at, alert_at) = match delivered_at {
        Some(t) => {
            let at = if previous == Some(status) {
                prior_at.unwrap_or_else(|| ts(t))
            } else {
                ts(t)
            };
            (Some(status), Some(at), Some(ts(t)))
        }
        None => (previous, prior_at, prior_alert),
    };
    if let Some(r) = reported {
        m.insert("lastReportedStatus".into(), r.as_str().into());
    }
    if let Some(t) = reported_at {
        m.insert("lastReportedAt".into(), t.into());
    }
    if let Some(t) = alert_at {
        m.insert("lastStatusAlertAt".into(), t.into());
    }
    m.insert("computedStatus".into(), status.as_str().into());
    m.insert(
        "alertDecision".into(),
        crate::redact::redact_str(reason).into(),
    );
    Value::Object(m)
}

fn channel_word(c: Channel) -> &'static str {
    match c {
        Channel::Slack => "slack",
        Channel::Email => "email",
    }
}

/// Report lines for the delivery pass: one per attempt (which message went to which channel and what happened).
fn delivery_lines(
    d: &StatusDelivery,
    queued_before: &HashSet<String>,
    slack_title: &str,
    email_subject: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    for a in &d.attempts {
        let what = if queued_before.contains(&a.entry_id) {
            match a.kind {
                EntryKind::Status => "queued status message (retry)".to_string(),
                EntryKind::Inline => "queued inline message (retry)".to_string(),
            }
        } else {
            match a.channel {
                Channel::Slack => format!("status alert \"{slack_title}\""),
                Channel::Email => format!("e-mail digest \"{email_subject}\""),
            }
        };
        let result = match &a.outcome {
            DeliveryOutcome::Delivered => "delivered".to_string(),
            DeliveryOutcome::Retry(r) => format!("not delivered, stays queued ({r})"),
            DeliveryOutcome::Drop(r) => format!("rejected, dropped ({r})"),
        };
        out.push(format!(
            "alert → {}: {what} {result}",
            channel_word(a.channel)
        ));
    }
    if d.deferred > 0 {
        out.push(format!(
            "{} queued message(s) left for the next run (channel failing or unconfigured)",
            d.deferred
        ));
    }
    out
}

/// Runs ops-reporter once (agents.md 6.5.1; see the module docs for the order and what the hook writes).
pub async fn run(ctx: &AgentContext) -> AgentOutcome {
    let mut o = AgentOutcome::new(CATALOGUE);
    let cfg = &ctx.cfg;
    let now = ctx.started;

    // (1) The snapshot must be the real state: a corrupt or unreadable file would read as an empty, HEALTHY state.
    match std::fs::read(&cfg.state_file) {
        Ok(bytes) => {
            if let Err(e) = crate::state::parse_state(&bytes, now) {
                o.fail(
                    format!(
                        "state file {} is unreadable ({e}); cannot compute the system status",
                        cfg.state_file.display()
                    ),
                    WriteMode::None,
                );
                return o;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            o.fail(
                format!(
                    "cannot read state file {}: {e}; cannot compute the system status",
                    cfg.state_file.display()
                ),
                WriteMode::None,
            );
            return o;
        }
    }
    let snapshot = &ctx.snapshot;

    // (2) Watchdog.
    let pass = watchdog(cfg, snapshot, now);
    for w in &pass.warnings {
        ctx.warn(format!("watchdog: {w}"));
    }
    for (agent, v) in &pass.verdicts {
        o.note(match v {
            Verdict::Ok { age_min, sla_min } => {
                format!("watchdog: {agent} ok (last run {age_min} min ago, SLA {sla_min} min)")
            }
            Verdict::Silent { age_min, sla_min } => format!(
                "watchdog: {agent} SILENT — no completed run for {age_min} min (SLA {sla_min} min): agent-silent raised"
            ),
            Verdict::NeverRun => format!("watchdog: {agent} has never run — no verdict"),
            Verdict::Unparseable(v) => {
                format!("watchdog: {agent} lastRun {v} is not a timestamp — no verdict")
            }
        });
    }
    if pass.verdicts.is_empty() {
        o.note("watchdog: no agent to watch (OPS_AGENTS holds only ops-reporter)");
    }

    // (3) Status over the snapshot plus the watchdog's run.
    let mut view = snapshot.clone();
    let window = StampWindow::from_config(cfg, ctx.started);
    record_agent_run(
        &mut view,
        watchdog_record(&pass, &ctx.run_id, now, window),
        now,
    );
    let status = compute_status(view.incidents.iter());
    let previous = last_reported_status(snapshot);
    let last_alert = snapshot.last_run_at(LAST_ALERT_KEY);
    let (c, w, e) = slack::active_counts(view.incidents.iter());
    // One definition (README "What the counts mean"): the same function as `status` and the demo.
    let fixes = view.verified_fixes_24h(now);
    o.note(format!(
        "status {status} ({}): {c} critical, {w} warning active ({e} escalated); {fixes} verified fix(es) in 24 h",
        match previous {
            Some(p) => format!("last reported {p}"),
            None => "nothing reported before; read as HEALTHY".to_string(),
        }
    ));

    // (4, 5) Decision, build, enqueue, deliver (retries first).
    let dedup_s = cfg.alert.dedup_minutes as i64 * 60;
    let mut alert_view: Vec<Incident> = view.incidents.clone();
    for i in alert_view.iter_mut().filter(|i| i.is_active()) {
        drop_stale_stamps(i, now, dedup_s, cfg.window_tolerance_s);
        if i.status == IncidentStatus::Escalated {
            let h = attempt_history(i, &view.recent_remediations);
            if !h.is_empty() {
                i.message = format!("{}\n{h}", i.message);
            }
        }
    }
    let decision = decide(&DecisionInput {
        status,
        last_reported: previous,
        last_status_alert: last_alert,
        incidents: &alert_view,
        now,
        dedup_window_s: dedup_s,
        critical_realert_s: cfg.alert.critical_realert_minutes as i64 * 60,
        tolerance_s: cfg.window_tolerance_s,
    });
    let alerter = Alerter::from_config(cfg);
    let queued_before: HashSet<String> = alerter
        .outbox()
        .read()
        .entries
        .into_iter()
        .map(|e| e.id)
        .collect();
    let delivery = ctx
        .effects()
        .deliver_status(
            &alerter,
            StatusRequest {
                decision: &decision,
                status,
                previous: previous.unwrap_or(SystemStatus::Healthy),
                last_status_alert: last_alert,
                incidents: &alert_view,
                remediations: &view.recent_remediations,
                now,
                dry_run: false, // the gate sets the run's flag
            },
        )
        .await;
    let slack_title = if decision.is_recovery {
        format!(
            "Vizora Ops: HEALTHY (recovered from {})",
            previous.unwrap_or(SystemStatus::Healthy)
        )
    } else {
        format!("Vizora Ops: {status}")
    };
    let email_subject = email::subject(status, c, w);
    if !decision.send_status {
        o.note(decision.reason.clone());
    } else {
        o.note(format!("status alert due: {}", decision.reason));
        if !decision.alert_worthy.is_empty() {
            // Human words and targets, not incident ids (issue 9, one vocabulary).
            let names: Vec<String> = decision
                .alert_worthy
                .iter()
                .take(5)
                .map(|id| match alert_view.iter().find(|i| &i.id == id) {
                    Some(i) => crate::model::incident_words(&i.kind, &i.target, &i.target_id),
                    None => match crate::model::parse_incident_id(id) {
                        Some((_, kind, target_id)) => {
                            format!("{} ({target_id})", crate::model::kind_label(kind))
                        }
                        None => id.clone(),
                    },
                })
                .collect();
            let more = decision.alert_worthy.len().saturating_sub(names.len());
            o.note(format!(
                "alert names {} incident(s): {}{}",
                decision.alert_worthy.len(),
                names.join(", "),
                if more > 0 {
                    format!(", …and {more} more")
                } else {
                    String::new()
                }
            ));
        }
        let digest_due = !decision.is_recovery && status != SystemStatus::Healthy;
        if ctx.effects().is_dry_run() {
            o.note(format!(
                "dry run: would send to slack: status alert \"{slack_title}\""
            ));
            if digest_due {
                o.note(format!(
                    "dry run: would send to email: digest \"{email_subject}\""
                ));
            }
        } else if cfg.alert.capture_only {
            for m in alerter.captured() {
                o.note(format!(
                    "alert → {} (captured, not sent): {} \"{}\"",
                    m.channel, m.kind, m.title
                ));
            }
        } else {
            if cfg.alert.slack_webhook_url.is_none() {
                o.note(
                    "slack: not configured (SLACK_WEBHOOK_URL unset), status alert not sent there",
                );
            }
            if digest_due && email::SmtpSettings::from_config(&cfg.alert).is_none() {
                o.note("email: not configured (SMTP_HOST or OPS_ALERT_EMAIL/SMTP_TO unset), digest not sent");
            }
        }
    }
    for l in delivery_lines(&delivery, &queued_before, &slack_title, &email_subject) {
        o.note(l);
    }
    if decision.send_status
        && !ctx.effects().is_dry_run()
        && !cfg.alert.capture_only
        && !delivery.status_delivered
    {
        o.note("status alert not delivered on any channel: it stays queued, nothing is stamped, the last reported status is kept");
    }

    // Own incidents (catalogue 3.5), always judged on the complete outbox record.
    let priors = ctx.priors();
    let mut own: Vec<Incident> = alerter.delivery_failed_incidents(now);
    own.extend(alerter.unconfigured_incident(now));
    for i in own.iter_mut() {
        if let Some(p) = priors.get(&i.id).filter(|p| p.is_active()) {
            i.detected = p.detected.clone();
            i.attempts = p.attempts;
        }
        o.note(format!(
            "{} ({}): {}",
            i.kind,
            i.severity.as_str(),
            i.message
        ));
    }
    for t in CATALOGUE {
        o.cover(t);
    }
    for i in &own {
        o.raise(i.clone());
    }

    // (6) What the locked write records.
    let delivered_at = delivery
        .status_delivered
        .then(|| delivery.delivered_at.unwrap_or(now));
    o.stats = Some(reporter_stats(
        snapshot,
        status,
        previous,
        delivered_at,
        &decision.reason,
    ));
    let changes = LockedChanges {
        watchdog: watchdog_record(
            &pass,
            &ctx.run_id,
            now,
            StampWindow::from_config(cfg, ctx.started),
        ),
        stamps: delivery.delivered_refs.clone(),
        stamp_at: now,
        last_alert: delivered_at,
    };
    o.exit_override = Some(if status == SystemStatus::Healthy {
        0
    } else {
        1
    });

    // (8) Dashboard push of the state as this run writes it (see the module docs).
    let projected = project_written_state(ctx, &o, changes.clone(), now);
    let pushed = ctx
        .effects()
        .run(|| push_dashboard(ctx, &alerter, &projected, &mut o))
        .await;
    match pushed {
        Gated::Simulated => {
            o.note("dry run: the ops status would be pushed to the dashboard; nothing sent")
        }
        Gated::Deferred => o.note("dashboard push deferred: the run deadline was reached"),
        Gated::Applied(()) => {}
    }
    let hook: StateHook = Box::new(move |st: &mut OpsState, at: DateTime<Utc>| {
        changes.apply(st, at);
    });
    o.state_hook = Some(hook);
    o
}

/// The state the locked write will produce from the snapshot: the reporter's run record as the runtime merges it,
/// then [`LockedChanges`], pruning (4.7) and the status.
fn project_written_state(
    ctx: &AgentContext,
    o: &AgentOutcome,
    changes: LockedChanges,
    now: DateTime<Utc>,
) -> OpsState {
    let cfg = &ctx.cfg;
    let mut st = ctx.snapshot.clone();
    let record = RunRecord {
        result: AgentResult {
            agent: AgentName::OpsReporter.as_str().into(),
            timestamp: ts(now),
            issues_found: o.incidents.iter().filter(|i| i.severity.counts()).count() as u32,
            incidents: o.incidents.clone(),
            info_found: Some(o.incidents.iter().filter(|i| !i.severity.counts()).count() as u32),
            exit_code: o.exit_override,
            run_id: Some(ctx.run_id.clone()),
            coverage: Some(CATALOGUE.iter().map(|s| s.to_string()).collect()),
            stats: o.stats.clone(),
            ..Default::default()
        },
        covered_types: o.covered_types.clone(),
        unexamined: o.unexamined.clone(),
        catalogue: o.catalogue.clone(),
        resolve_suffix: o.resolve_suffix.clone(),
        remediations: Vec::new(),
        partial: false,
        stamp_window: StampWindow::from_config(cfg, ctx.started),
    };
    record_agent_run(&mut st, record, now);
    changes.apply(&mut st, now);
    crate::state::prune(
        &mut st,
        now,
        Retention {
            max_incidents: cfg.max_incidents,
            max_remediations: cfg.max_remediations,
            resolved_retention_hours: cfg.resolved_retention_hours,
        },
    );
    st.system_status = st.computed_status();
    st.last_updated = ts(now);
    st
}

/// Pushes the size-capped state (7.4) to the Vizora API (needs API credentials) and, when `OPS_SERVER_URL` is set,
/// to our ops server; records each outcome in the outbox `channels` record. Never fails the run.
async fn push_dashboard(
    ctx: &AgentContext,
    alerter: &Alerter,
    state: &OpsState,
    o: &mut AgentOutcome,
) {
    let cfg = &ctx.cfg;
    let payload = dashboard::cap_payload(state, cfg.alert.dashboard_max_bytes);
    let bytes = serde_json::to_vec(&payload).map(|b| b.len()).unwrap_or(0);
    let trimmed = payload
        .get("truncated")
        .map(|t| {
            format!(
                "; reduced to fit: {} incident(s), {} remediation(s) omitted",
                t["incidentsOmitted"].as_u64().unwrap_or(0),
                t["remediationsOmitted"].as_u64().unwrap_or(0)
            )
        })
        .unwrap_or_default();
    let now = ctx.now();
    match &ctx.api {
        None => {
            ctx.warn("dashboard push skipped: no API credentials");
            o.note("dashboard push skipped: no API credentials");
        }
        Some(api) => match api.post_idempotent(OPS_STATUS_PATH, &payload).await {
            Ok(_) => {
                ctx.effects()
                    .record_push(alerter, outbox::CH_DASHBOARD, Ok(()), now);
                o.note(format!(
                    "dashboard push: ops status ({}, {bytes} bytes{trimmed}) sent to POST {OPS_STATUS_PATH}",
                    state.system_status
                ));
            }
            Err(e) => {
                let why = crate::redact::redact_str(&e.to_string());
                ctx.warn(format!("dashboard push to the Vizora API failed: {why}"));
                ctx.effects()
                    .record_push(alerter, outbox::CH_DASHBOARD, Err(&why), now);
                o.note(format!("dashboard push failed: {why}"));
            }
        },
    }
    if let Some(url) = &cfg.alert.ops_server_url {
        let Some(token) = &cfg.alert.ops_api_token else {
            ctx.warn("ops server push skipped: OPS_SERVER_URL is set but OPS_API_TOKEN is not");
            o.note("ops server push skipped: OPS_API_TOKEN unset");
            return;
        };
        match dashboard::push_ops_server(
            alerter.client(),
            url,
            token,
            &payload,
            cfg.api.notify_timeout,
        )
        .await
        {
            Ok(()) => {
                ctx.effects()
                    .record_push(alerter, outbox::CH_OPS_SERVER, Ok(()), now);
                o.note(format!(
                    "ops server push: ops status sent to {}",
                    crate::redact::url_host_only(url)
                ));
            }
            Err(why) => {
                ctx.warn(format!("ops server push failed: {why}"));
                ctx.effects()
                    .record_push(alerter, outbox::CH_OPS_SERVER, Err(&why), now);
                o.note(format!("ops server push failed: {why}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;
    use chrono::Duration;

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        let d = std::env::temp_dir();
        Config::from_source(Source::from_pairs(pairs.iter().copied()), &d).unwrap()
    }

    fn t0() -> DateTime<Utc> {
        parse_ts("2026-08-22T10:00:00.000Z").unwrap()
    }

    fn state_with_runs(runs: &[(&str, Value)]) -> OpsState {
        let mut st = OpsState::empty(t0());
        for (k, v) in runs {
            st.last_run.insert(k.to_string(), v.clone());
        }
        st
    }

    #[test]
    fn silent_health_guardian_is_critical_and_others_warning() {
        let c = cfg(&[("OPS_AGENTS", "health-guardian,fleet-manager,ops-reporter")]);
        let old = ts(t0() - Duration::minutes(45));
        let st = state_with_runs(&[
            ("health-guardian", old.clone().into()),
            ("fleet-manager", old.into()),
        ]);
        let p = watchdog(&c, &st, t0());
        assert_eq!(p.incidents.len(), 2, "ops-reporter is not watched");
        let hg = &p.incidents[0];
        assert_eq!(hg.id, "ops-watchdog:agent-silent:health-guardian");
        assert_eq!(hg.severity, Severity::Critical);
        assert_eq!(
            hg.message,
            "health-guardian has not completed a run for 45 min (SLA 10 min)"
        );
        assert!(hg.remediation.contains("ops-health-guardian"));
        assert_eq!(p.incidents[1].severity, Severity::Warning);
    }

    #[test]
    fn sla_uses_the_early_margin_and_missing_or_malformed_records_give_no_verdict() {
        let c = cfg(&[(
            "OPS_AGENTS",
            "health-guardian,fleet-manager,schedule-doctor",
        )]);
        // SLA 10 min minus the 120 s early margin: 8 min 30 s is silent, 7 min 50 s is not.
        let st = state_with_runs(&[
            (
                "health-guardian",
                ts(t0() - Duration::seconds(8 * 60 + 30)).into(),
            ),
            ("fleet-manager", Value::from(12345)),
        ]);
        let p = watchdog(&c, &st, t0());
        assert_eq!(p.incidents.len(), 1);
        assert!(
            p.unexamined
                .contains("ops-watchdog:agent-silent:fleet-manager")
        );
        assert!(
            p.unexamined
                .contains("ops-watchdog:agent-silent:schedule-doctor")
        );
        assert!(matches!(p.verdicts[1].1, Verdict::Unparseable(_)));
        assert_eq!(p.verdicts[2].1, Verdict::NeverRun);
        let st = state_with_runs(&[(
            "health-guardian",
            ts(t0() - Duration::seconds(7 * 60 + 50)).into(),
        )]);
        assert!(watchdog(&c, &st, t0()).incidents.is_empty());
    }

    #[test]
    fn last_run_in_the_future_counts_as_age_zero_with_a_warning() {
        let c = cfg(&[("OPS_AGENTS", "fleet-manager")]);
        let st = state_with_runs(&[("fleet-manager", ts(t0() + Duration::hours(2)).into())]);
        let p = watchdog(&c, &st, t0());
        assert!(p.incidents.is_empty());
        assert!(p.warnings[0].contains("clock moved backwards"));
        assert_eq!(
            p.verdicts[0].1,
            Verdict::Ok {
                age_min: 0,
                sla_min: 20
            }
        );
    }

    #[test]
    fn stamp_of_an_earlier_episode_outside_the_window_is_ignored_but_kept_inside_it() {
        let mut i = Incident::new(
            AgentName::FleetManager,
            "display_offline",
            Severity::Warning,
            "display",
            "d1",
            "m",
            "r",
            t0(),
        );
        i.alerted_at = Some(ts(t0() - Duration::hours(3)));
        i.alerted_severity = Some(Severity::Warning);
        let mut a = i.clone();
        drop_stale_stamps(&mut a, t0(), 3600, 120);
        assert!(a.alerted_at.is_none());
        let mut b = i.clone();
        b.alerted_at = Some(ts(t0() - Duration::minutes(20)));
        drop_stale_stamps(&mut b, t0(), 3600, 120);
        assert!(
            b.alerted_at.is_some(),
            "flapping inside the window stays quiet"
        );
    }

    #[test]
    fn escalated_history_lists_the_episode_actions_and_the_last_verification() {
        let mut i = Incident::new(
            AgentName::HealthGuardian,
            "pm2-errored",
            Severity::Critical,
            "pm2-process",
            "vizora-web:0",
            "errored",
            "r",
            t0(),
        );
        i.status = IncidentStatus::Escalated;
        i.attempts = 2;
        i.error = Some("still errored 30 s after the restart".into());
        let rem = |at: DateTime<Utc>, ok: bool, verified: bool| RemediationAction {
            agent: "health-guardian".into(),
            timestamp: ts(at),
            action: "Restart vizora-web".into(),
            target: "pm2-process".into(),
            target_id: "vizora-web:0".into(),
            method: "pm2 restart".into(),
            endpoint: None,
            before: None,
            after: None,
            success: ok,
            error: None,
            verified: Some(verified),
            run_id: None,
            extra: Map::new(),
        };
        let rems = vec![
            rem(t0() - Duration::hours(1), true, true),
            rem(t0() + Duration::minutes(5), true, false),
            rem(t0() + Duration::minutes(10), false, false),
        ];
        let h = attempt_history(&i, &rems);
        assert!(h.starts_with("Attempt history (2 attempt(s)"), "{h}");
        assert_eq!(
            h.matches("Restart vizora-web").count(),
            2,
            "before the episode excluded: {h}"
        );
        assert!(h.contains("done, verification failed"));
        assert!(h.contains("failed, verification failed"));
        assert!(h.ends_with("Last verification: still errored 30 s after the restart"));
    }

    #[test]
    fn a_new_silent_episode_inherits_stamps_only_inside_the_window() {
        let c = cfg(&[("OPS_AGENTS", "fleet-manager")]);
        let st0 = state_with_runs(&[("fleet-manager", ts(t0() - Duration::hours(1)).into())]);
        let pass = watchdog(&c, &st0, t0());
        assert_eq!(pass.incidents.len(), 1);
        for (stamp_age, kept) in [(Duration::minutes(20), true), (Duration::hours(3), false)] {
            let mut st = st0.clone();
            let mut old = pass.incidents[0].clone();
            old.status = IncidentStatus::Resolved;
            old.resolved_at = Some(ts(t0() - Duration::minutes(10)));
            old.alerted_at = Some(ts(t0() - stamp_age));
            old.alerted_severity = Some(Severity::Warning);
            st.incidents.push(old);
            LockedChanges {
                watchdog: watchdog_record(
                    &pass,
                    "run",
                    t0(),
                    StampWindow {
                        started: t0(),
                        dedup_s: 3600,
                        tolerance_s: 120,
                    },
                ),
                stamps: vec![],
                stamp_at: t0(),
                last_alert: None,
            }
            .apply(&mut st, t0());
            let i = &st.incidents[0];
            assert!(i.is_active());
            assert_eq!(i.alerted_at.is_some(), kept, "stamp {stamp_age}");
            assert_eq!(st.last_run["ops-watchdog"], Value::String(ts(t0())));
        }
    }

    #[test]
    fn stats_keep_the_last_reported_status_until_a_delivery() {
        let mut st = OpsState::empty(t0());
        st.agent_results.insert(
            "ops-reporter".into(),
            json!({"agent":"ops-reporter","stats":{"lastReportedStatus":"DEGRADED","lastReportedAt":"2026-08-22T08:00:00.000Z"}}),
        );
        let s = reporter_stats(
            &st,
            SystemStatus::Critical,
            last_reported_status(&st),
            None,
            "x",
        );
        assert_eq!(s["lastReportedStatus"], "DEGRADED");
        assert_eq!(s["lastReportedAt"], "2026-08-22T08:00:00.000Z");
        assert!(s.get("lastStatusAlertAt").is_none());
        let s = reporter_stats(
            &st,
            SystemStatus::Critical,
            last_reported_status(&st),
            Some(t0()),
            "x",
        );
        assert_eq!(s["lastReportedStatus"], "CRITICAL");
        assert_eq!(s["lastReportedAt"], ts(t0()));
        assert_eq!(s["lastStatusAlertAt"], ts(t0()));
    }
}
