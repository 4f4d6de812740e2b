//! Process checks of health-guardian (agents.md 6.1.2): the process manager's list per managed app (errored,
//! stopped, missing, transitional across runs), memory against each entry's limit, and host memory.

use super::probes::Svc;
use super::rules::{host_memory_used_pct, mib, over_threshold};
use super::verify::Verify;
use super::{AGENT, ECOSYSTEM_TIMEOUT, PROCESS_TYPES, TRANSITIONAL_RUNS_LIMIT};
use crate::agents::{AgentContext, AgentOutcome};
use crate::model::{Severity, incident_id};
use crate::procman::{self, PmError, ProcStatus, ProcTarget, ProcessInfo, ProcessManager};
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};

/// A managed app (agents.md 8.4): its service, its name (PM2 app or systemd unit), whether the name may enter an argv.
#[derive(Debug, Clone)]
pub(super) struct App {
    pub(super) svc: Svc,
    pub(super) name: String,
    pub(super) valid: bool,
    /// Its entries in the process list (none when the list is unreadable).
    pub(super) entries: Vec<ProcessInfo>,
}

/// `<app>:<pm_id>` (PM2, sandbox) or the unit (systemd) (agents.md 3.1).
pub(super) fn entry_key(p: &ProcessInfo, systemd: bool) -> String {
    match (systemd, p.pm_id) {
        (false, Some(id)) => format!("{}:{id}", p.name),
        _ => p.name.clone(),
    }
}

/// The command target of one process: the pm_id (never the app name), or the systemd unit.
pub(super) fn entry_target(p: &ProcessInfo, systemd: bool) -> Option<ProcTarget> {
    if systemd {
        Some(ProcTarget::Unit(p.name.clone()))
    } else {
        p.pm_id.map(ProcTarget::PmId)
    }
}

/// The audit `before` of one process: its list entry.
pub(super) fn projection(p: &ProcessInfo) -> Value {
    serde_json::to_value(p).unwrap_or(Value::Null)
}

/// The audit `before` of an app restart: the app and all its instances.
pub(super) fn app_projection(app: &App) -> Value {
    json!({
        "app": app.name,
        "instances": app.entries.iter().map(projection).collect::<Vec<_>>(),
    })
}

/// What step 2 saw: the process manager, its list, the managed apps and the transitional bookkeeping (6.1.2).
pub(super) struct Observed {
    /// `pm2`, `systemd` or `sandbox`.
    pub(super) kind: &'static str,
    /// Whether the manager is systemd (entries keyed by unit, commands by unit).
    pub(super) systemd: bool,
    /// The process list, or why it could not be read.
    pub(super) listed: Result<Vec<ProcessInfo>, PmError>,
    /// The managed apps in `Svc::ALL` order.
    pub(super) apps: Vec<App>,
    /// This run's `stats.transitionalRuns` (`{"<app>:<pm_id>": n}`).
    pub(super) transitional_runs: Map<String, Value>,
    /// Apps where the process manager is acting (a transitional instance not yet treated as errored) → why.
    pub(super) acting: HashMap<String, String>,
    /// Entry keys treated as errored after `TRANSITIONAL_RUNS_LIMIT` transitional runs.
    pub(super) stuck: BTreeSet<String>,
}

/// Step 2 of the run (6.1.2): reads the process list, rejects invalid configured names, raises
/// `process-manager-unavailable` and `pm2-missing`, and counts transitional entries across runs.
pub(super) async fn observe(
    ctx: &AgentContext,
    pm: &dyn ProcessManager,
    o: &mut AgentOutcome,
) -> Observed {
    let h = &ctx.cfg.health;
    let kind = pm.kind();
    let systemd = kind == "systemd";
    let listed = pm.list().await;
    let apps: Vec<App> = Svc::ALL
        .iter()
        .map(|&svc| {
            let name = if systemd {
                h.systemd_units.get(svc.key())
            } else {
                h.pm2_apps.get(svc.key())
            }
            .cloned()
            .unwrap_or_default();
            let valid = procman::validate_name(&name).is_ok();
            if !valid {
                // The actual reason (empty, leading '-', `all`, characters), not always "characters outside …".
                let why = crate::config::process_name::process_name_problem(&name)
                    .unwrap_or("it is not a valid process name");
                ctx.error(format!(
                    "rejected process name or id for {}: {:?}: {why}; no command will name it",
                    svc.key(),
                    name.chars().take(64).collect::<String>()
                ));
            }
            let entries = match &listed {
                Ok(list) => list.iter().filter(|p| p.name == name).cloned().collect(),
                Err(_) => Vec::new(),
            };
            App {
                svc,
                name,
                valid,
                entries,
            }
        })
        .collect();

    let prior_transitional = prior_transitional_runs(ctx);
    let mut transitional_runs: Map<String, Value> = Map::new();
    // Apps where PM2 is acting (a transitional instance not yet treated as errored): no app-level command.
    let mut acting: HashMap<String, String> = HashMap::new();
    // (app name, entry key) → treated as errored after repeated transitional runs.
    let mut stuck: BTreeSet<String> = BTreeSet::new();

    match &listed {
        Err(e) => {
            let msg = crate::redact::redact_str(&e.to_string());
            ctx.error(format!("process list unreadable: {msg}"));
            o.note(format!("process manager ({kind}): unreadable — {msg}"));
            o.raise(ctx.incident(
                "process-manager-unavailable",
                Severity::Critical,
                "host",
                kind,
                format!("the {kind} process list could not be read: {msg}"),
                format!(
                    "check the process manager on this host ({}); no process verdict and no restart this run",
                    if systemd {
                        "systemctl, OPS_SYSTEMCTL_BIN"
                    } else {
                        "is the PM2 daemon running? OPS_PM2_BIN, PM2_HOME"
                    }
                ),
            ));
            o.cover("process-manager-unavailable");
            // Transitional counters carry over unchanged: this run saw nothing.
            transitional_runs = prior_transitional.clone();
        }
        Ok(list) => {
            o.cover("process-manager-unavailable");
            for t in PROCESS_TYPES {
                o.cover(t);
            }
            o.note(format!(
                "process manager ({kind}): {} process(es) listed",
                list.len()
            ));
            for app in &apps {
                if app.entries.is_empty() {
                    o.raise(ctx.incident(
                        "pm2-missing",
                        Severity::Critical,
                        "pm2-process",
                        &app.name,
                        format!(
                            "managed app {:?} ({}) is absent from the {kind} process list",
                            app.name,
                            app.svc.key()
                        ),
                        if systemd {
                            format!("check that the unit {} is installed and enabled", app.name)
                        } else {
                            format!(
                                "start it (e.g. `pm2 start ecosystem.config.js --only {}`); health-guardian never \
                                 starts missing apps",
                                app.name
                            )
                        },
                    ));
                    o.note(format!("process {}: missing from the list", app.name));
                    continue;
                }
                for p in &app.entries {
                    let key = entry_key(p, systemd);
                    if let ProcStatus::Transitional(word) = &p.status {
                        let n = prior_transitional
                            .get(&key)
                            .and_then(Value::as_u64)
                            .unwrap_or(0)
                            + 1;
                        transitional_runs.insert(key.clone(), Value::from(n));
                        if n >= TRANSITIONAL_RUNS_LIMIT {
                            ctx.warn(format!(
                                "{key} seen {word:?} in {n} consecutive runs: treated as errored"
                            ));
                            stuck.insert(key.clone());
                        } else {
                            ctx.info(format!(
                                "{key} is {word:?} ({n} consecutive run(s)): the process manager is acting; not \
                                 examined, no command"
                            ));
                            o.note(format!("process {key}: {word} (run {n}); not examined"));
                            acting.insert(app.name.clone(), format!("{key} is {word}"));
                            for t in ["pm2-errored", "pm2-stopped", "high-memory"] {
                                o.unexamined.insert(incident_id(AGENT, t, &key));
                            }
                        }
                    }
                }
            }
        }
    }
    Observed {
        kind,
        systemd,
        listed,
        apps,
        transitional_runs,
        acting,
        stuck,
    }
}

/// One process's finding that may lead to a command: `pm2-errored` (restart) or `high-memory` (reload in cluster
/// mode, else restart).
pub(super) struct ProcFinding {
    /// The incident type.
    pub(super) kind: &'static str,
    /// Its severity.
    pub(super) severity: Severity,
    /// The incident message.
    pub(super) message: String,
    /// What verification checks after the command.
    pub(super) verify: Verify,
    /// `restart` or `reload`.
    pub(super) verb: &'static str,
}

/// Judges one listed process (6.1.2): errored (or stuck transitional) → `pm2-errored`; stopped → `pm2-stopped`
/// raised here (info, never acted on); online over the memory threshold of its limit (its `max_memory_restart`, else
/// the ecosystem file read once into `ecosystem`, else unknown and skipped) → `high-memory`; anything else → `None`
/// (unknown statuses are marked unexamined).
pub(super) async fn classify(
    ctx: &AgentContext,
    obs: &Observed,
    p: &ProcessInfo,
    ecosystem: &mut Option<HashMap<String, u64>>,
    o: &mut AgentOutcome,
) -> Option<ProcFinding> {
    let (kind, systemd, stuck) = (obs.kind, obs.systemd, &obs.stuck);
    let threshold = ctx.cfg.health.memory_threshold_pct;
    let key = entry_key(p, systemd);
    let errored = p.status == ProcStatus::Errored || stuck.contains(&key);
    let finding = if errored {
        let message = if stuck.contains(&key) {
            format!(
                "{key} was {} in {TRANSITIONAL_RUNS_LIMIT} consecutive runs: treated as errored",
                p.status
            )
        } else {
            format!(
                "{key} is {}{}",
                if systemd { "failed" } else { "errored" },
                p.restart_time
                    .map(|n| format!(" (restart count {n})"))
                    .unwrap_or_default()
            )
        };
        (
            "pm2-errored",
            Severity::Critical,
            message,
            Verify::Online {
                name: p.name.clone(),
                pm_id: p.pm_id,
            },
            "restart",
        )
    } else if p.status == ProcStatus::Stopped {
        o.raise(ctx.incident(
            "pm2-stopped",
            Severity::Info,
            "pm2-process",
            &key,
            format!("{key} is stopped"),
            "stopped by an operator; left alone (health-guardian never starts a stopped process)",
        ));
        o.note(format!("process {key}: stopped (left alone)"));
        return None;
    } else if p.status == ProcStatus::Online {
        let Some(mem) = p.memory_bytes else {
            ctx.info(format!("{key}: memory not reported; memory check skipped"));
            o.unexamined.insert(incident_id(AGENT, "high-memory", &key));
            return None;
        };
        let (limit, source) = match p.max_memory_restart {
            Some(l) => (Some(l), "its max_memory_restart"),
            None if kind == "pm2" => {
                if ecosystem.is_none() {
                    *ecosystem = Some(load_ecosystem(ctx).await);
                }
                (
                    ecosystem.as_ref().and_then(|m| m.get(&p.name).copied()),
                    "the ecosystem file",
                )
            }
            None => (None, ""),
        };
        let Some(limit) = limit else {
            ctx.info(format!(
                "{key}: memory limit unknown (no max_memory_restart, none in the ecosystem file); memory \
                 check skipped"
            ));
            o.unexamined.insert(incident_id(AGENT, "high-memory", &key));
            return None;
        };
        if !over_threshold(mem, limit, threshold) {
            return None;
        }
        let pct = mem as f64 / limit as f64 * 100.0;
        let cluster = p.exec_mode.as_deref() == Some("cluster_mode");
        (
            "high-memory",
            Severity::Warning,
            format!(
                "{key} uses {} = {pct:.1} % of its limit {} (from {source}); threshold {threshold} %",
                mib(mem),
                mib(limit)
            ),
            Verify::Memory {
                name: p.name.clone(),
                pm_id: p.pm_id,
                limit,
            },
            if cluster && !systemd {
                "reload"
            } else {
                "restart"
            },
        )
    } else {
        if !matches!(p.status, ProcStatus::Transitional(_)) {
            ctx.warn(format!(
                "{key}: unknown status {:?}; not examined",
                p.status.as_str()
            ));
            for t in ["pm2-errored", "pm2-stopped", "high-memory"] {
                o.unexamined.insert(incident_id(AGENT, t, &key));
            }
        }
        return None;
    };
    let (kind, severity, message, verify, verb) = finding;
    Some(ProcFinding {
        kind,
        severity,
        message,
        verify,
        verb,
    })
}

/// `agentResults["health-guardian"].stats.transitionalRuns` of the snapshot (`{"<app>:<pm_id>": n}`).
fn prior_transitional_runs(ctx: &AgentContext) -> Map<String, Value> {
    ctx.snapshot
        .agent_results
        .get(AGENT.as_str())
        .and_then(|r| r.get("stats"))
        .and_then(|s| s.get("transitionalRuns"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// The ecosystem file's limits (6.1), read once per run; an unreadable file means "unknown" for every app (logged).
async fn load_ecosystem(ctx: &AgentContext) -> HashMap<String, u64> {
    let h = &ctx.cfg.health;
    if !h.ecosystem_file.exists() {
        ctx.info(format!(
            "ecosystem file {} not found; limits without max_memory_restart are unknown",
            h.ecosystem_file.display()
        ));
        return HashMap::new();
    }
    match procman::read_ecosystem_limits(&h.node_bin, &h.ecosystem_file, ECOSYSTEM_TIMEOUT).await {
        Ok(m) => m,
        Err(e) => {
            ctx.warn(format!(
                "ecosystem file {} unreadable ({e}); limits without max_memory_restart are unknown",
                h.ecosystem_file.display()
            ));
            HashMap::new()
        }
    }
}

/// This host's name from `/proc/sys/kernel/hostname`, else `localhost`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Host memory (6.1.2): `host-memory-high` above `OPS_HOST_MEMORY_THRESHOLD_PCT` of `/proc/meminfo`; alert-only.
pub(super) fn host_memory(ctx: &AgentContext, o: &mut AgentOutcome) {
    let h = &ctx.cfg.health;
    match std::fs::read_to_string("/proc/meminfo")
        .ok()
        .as_deref()
        .and_then(host_memory_used_pct)
    {
        Some(pct) => {
            o.cover("host-memory-high");
            if pct > h.host_memory_threshold_pct {
                let host = hostname();
                o.raise(ctx.incident(
                    "host-memory-high",
                    Severity::Warning,
                    "host",
                    &host,
                    format!(
                        "host {host}: {pct:.1} % of memory used (MemTotal − MemAvailable); threshold {} %",
                        h.host_memory_threshold_pct
                    ),
                    "find the largest processes (ps, pm2 monit) and free memory; nothing is restarted for host \
                     memory",
                ));
                o.note(format!("host memory: {pct:.1} % used (above threshold)"));
            }
        }
        None => ctx.warn("/proc/meminfo unreadable or incomplete; host memory not examined"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_entries_are_keyed_by_unit_and_pm2_by_app_and_pm_id() {
        let p = ProcessInfo {
            name: "vizora-web".into(),
            pm_id: Some(3),
            status: ProcStatus::Online,
            exec_mode: None,
            memory_bytes: None,
            max_memory_restart: None,
            restart_time: None,
            pm_uptime: None,
        };
        assert_eq!(entry_key(&p, false), "vizora-web:3");
        assert_eq!(entry_target(&p, false), Some(ProcTarget::PmId(3)));
        assert_eq!(entry_key(&p, true), "vizora-web");
        assert_eq!(
            entry_target(&p, true),
            Some(ProcTarget::Unit("vizora-web".into()))
        );
    }
}
