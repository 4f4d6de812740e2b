//! The watchdog pass (agents.md 6.5.2, 9.10): each watched agent's `lastRun` against its SLA; a silent agent is
//! `ops-watchdog:agent-silent:<agent>`. Pure; recorded as the `ops-watchdog` run in the locked write.

use super::WATCHDOG_CATALOGUE;
use crate::agents::{AgentContext, AgentOutcome};
use crate::clock::age_s;
use crate::config::Config;
use crate::model::{AgentName, AgentResult, Incident, OpsState, Severity, parse_ts, ts};
use crate::state::{RunRecord, StampWindow};
use chrono::{DateTime, Utc};
use serde_json::{Map, json};
use std::collections::{HashMap, HashSet};

/// The incident type of the watchdog pass (agents.md 3.5).
const SILENT: &str = "agent-silent";

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

/// Logs the pass's warnings and notes one line per verdict for the run report (6.5.1 step 2).
pub(super) fn note_pass(ctx: &AgentContext, pass: &WatchdogPass, o: &mut AgentOutcome) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::ops_reporter::test_support::{cfg, state_with_runs, t0};
    use chrono::Duration;
    use serde_json::Value;

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
}
