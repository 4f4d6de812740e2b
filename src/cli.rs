//! Terminal output of `vizora-ops status` and the deployment files of `vizora-ops deploy` (design/README.md §1, §6).

use crate::config::Config;
use crate::model::{AgentName, Incident, OpsState, SystemStatus};
use crate::state::StateStore;
use chrono::{DateTime, Utc};
use serde_json::Value;

fn age(now: DateTime<Utc>, t: Option<DateTime<Utc>>) -> String {
    match t {
        None => "never".into(),
        Some(t) => {
            let s = (now - t).num_seconds().max(0);
            if s < 120 {
                format!("{s} s ago")
            } else if s < 7200 {
                format!("{} min ago", s / 60)
            } else if s < 172_800 {
                format!("{} h ago", s / 3600)
            } else {
                format!("{} days ago", s / 86_400)
            }
        }
    }
}

fn incident_line(i: &Incident) -> String {
    // Human words for the type and target (model::incident_words; not `backup backup`).
    format!(
        "{:<8} {:<9} {} — {}{}",
        i.severity.as_str(),
        i.status.as_str(),
        crate::model::incident_words(&i.kind, &i.target, &i.target_id),
        i.message,
        if i.attempts > 0 {
            format!(" [attempts {}]", i.attempts)
        } else {
            String::new()
        }
    )
}

/// The human status report of a state: computed status, active incidents (escalated, critical, warning, info), last
/// runs per agent, the remediations of the last 24 h and fleet reconnect statistics.
pub fn status_lines(state: &OpsState, now: DateTime<Utc>) -> Vec<String> {
    let mut out = vec![format!("System status: {}", state.computed_status())];
    let mut active: Vec<&Incident> = state.incidents.iter().filter(|i| i.is_active()).collect();
    active.sort_by_key(|i| {
        (
            std::cmp::Reverse(i.status == crate::model::IncidentStatus::Escalated),
            std::cmp::Reverse(i.severity.rank()),
            i.id.clone(),
        )
    });
    out.push(format!("Active incidents ({}):", active.len()));
    if active.is_empty() {
        out.push("  none".into());
    }
    for i in active {
        out.push(format!("  {}", incident_line(i)));
    }
    out.push("Last runs:".into());
    for a in AgentName::ALL {
        let last = state.last_run_at(a.as_str());
        let res = state.agent_result(a.as_str());
        let detail = res
            .map(|r| {
                format!(
                    " — found {}, fixed {}, escalated {}, exit {}",
                    r.issues_found,
                    r.issues_fixed,
                    r.issues_escalated,
                    r.exit_code
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "?".into())
                )
            })
            .unwrap_or_default();
        out.push(format!("  {:<18} {}{}", a.as_str(), age(now, last), detail));
    }
    // One definition per count (README "What the counts mean"): the same functions as the reporter and the demo.
    let recent = state.remediations_24h(now);
    let fixes = state.verified_fixes_24h(now);
    out.push(format!(
        "Remediations in the last 24 h ({}): {fixes} verified fix(es), {} failed or not verified:",
        recent.len(),
        recent.len() - fixes
    ));
    if recent.len() > 20 {
        out.push(format!(
            "  (newest 20 shown; …and {} more in the state file and the audit log)",
            recent.len() - 20
        ));
    }
    for r in recent.iter().rev().take(20) {
        out.push(format!(
            "  {} {:<17} {} — {}{}",
            r.timestamp,
            r.agent,
            r.action,
            if r.success { "ok" } else { "failed" },
            match r.verified {
                Some(true) => ", verified",
                Some(false) => ", NOT verified",
                None => "",
            }
        ));
    }
    if let Some(stats) = state
        .agent_results
        .get("fleet-manager")
        .and_then(|r| r.get("stats"))
    {
        let lines = crate::agents::fleet_manager::reconnect_summary(stats);
        if !lines.is_empty() {
            out.push("Fleet reconnects (7 days):".into());
            out.extend(lines.into_iter().map(|l| format!("  {l}")));
        }
    }
    out
}

/// `status` exit code for a system status (the monitoring-plugin convention, agents.md 1.4): 0 HEALTHY, 1 DEGRADED,
/// 2 CRITICAL; [`STATUS_UNKNOWN`] when there is no data.
pub fn status_exit_code(s: SystemStatus) -> u8 {
    match s {
        SystemStatus::Healthy => 0,
        SystemStatus::Degraded => 1,
        SystemStatus::Critical => 2,
    }
}

/// `status` exit code 3: unknown — no state file yet (nothing has run), or it is unreadable or corrupt (agents.md 1.4).
pub const STATUS_UNKNOWN: u8 = 3;

/// Prints `status` for the configured state file; `json` prints the state JSON plus `computedStatus` and `neverRun`.
/// Returns the exit code of agents.md 1.4 for `status`: 0 HEALTHY, 1 DEGRADED, 2 CRITICAL, 3 unknown. Unknown is a
/// missing state file (nothing has run yet: the text says so, `--json` has `systemStatus: null`, `neverRun: true`)
/// or an unreadable or corrupt one (the report says so instead of showing an empty, HEALTHY state; `--json` prints
/// `{"computedStatus":"UNKNOWN","error":…}`).
pub fn print_status(cfg: &Config, json: bool) -> u8 {
    let now = Utc::now();
    let state = match StateStore::from_config(cfg).try_snapshot(now) {
        Ok(s) => s,
        Err(e) => {
            let e = crate::redact::redact_str(&e);
            if json {
                let v = serde_json::json!({"computedStatus": "UNKNOWN", "error": e});
                crate::logging::out_raw(serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                crate::outln!("State file: {}", cfg.state_file.display());
                crate::outln!("System status: UNKNOWN — {e}");
                if e.contains(" is corrupt (") {
                    crate::outln!(
                        "  the next agent run quarantines it (<state>.corrupt-<pid>-<n>, bytes kept) and starts afresh"
                    );
                } else {
                    crate::outln!(
                        "  agent runs exit 2 without writing until the file is readable again"
                    );
                }
            }
            return STATUS_UNKNOWN;
        }
    };
    // No state file: nothing has run with this configuration, which is no evidence of health.
    let never_run = !cfg.state_file.exists();
    if json {
        let mut v = state.to_value();
        if let Value::Object(m) = &mut v {
            let computed = if never_run {
                Value::Null
            } else {
                Value::String(state.computed_status().as_str().into())
            };
            if never_run {
                m.insert("systemStatus".into(), Value::Null);
            }
            m.insert("computedStatus".into(), computed);
            m.insert("neverRun".into(), Value::Bool(never_run));
        }
        crate::logging::out_raw(serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        crate::outln!("State file: {}", cfg.state_file.display());
        if never_run {
            crate::outln!("System status: unknown — nothing has run yet");
            crate::outln!(
                "No state file yet: no agent has run with this configuration (set OPS_LOG_DIR or OPS_STATE_FILE to \
                 the directory the agents use)."
            );
            return STATUS_UNKNOWN;
        }
        for l in status_lines(&state, now) {
            crate::outln!("{l}");
        }
    }
    if never_run {
        STATUS_UNKNOWN
    } else {
        status_exit_code(state.computed_status())
    }
}

/// Deployment files for `pm2`, `systemd` or `k8s` (design/README.md §6): one-shot runs on the staggered schedules of
/// agents.md 1.2. Errors name the accepted targets.
pub fn deploy_files(target: &str) -> Result<String, String> {
    let bin = "/usr/local/bin/vizora-ops";
    match target {
        "pm2" => {
            let mut s = String::from(
                "// Save as ecosystem.ops.config.js (the name must end in .config.js), then: pm2 start ecosystem.ops.config.js && pm2 save\n// One-shot vizora-ops agents under PM2 cron; .env is read from cwd (OPS_ROOT_DIR).\nmodule.exports = {\n  apps: [\n",
            );
            for a in AgentName::ALL {
                s.push_str(&format!(
                    "    {{\n      name: 'ops-{n}',\n      script: '{bin}',\n      args: ['run', '{n}'],\n      cwd: '/opt/vizora',\n      interpreter: 'none',\n      autorestart: false,\n      cron_restart: '{c}',\n      out_file: 'logs/ops-{n}.log',\n      error_file: 'logs/ops-{n}.log',\n      merge_logs: true,\n    }},\n",
                    n = a.as_str(),
                    c = a.default_cron()
                ));
            }
            s.push_str("  ],\n};\n");
            Ok(s)
        }
        "systemd" => {
            let mut s = String::new();
            for a in AgentName::ALL {
                let n = a.as_str();
                s.push_str(&format!(
                    "# /etc/systemd/system/vizora-ops-{n}.service\n[Unit]\nDescription=vizora-ops {n} (one run)\nAfter=network-online.target\n\n[Service]\nType=oneshot\nWorkingDirectory=/opt/vizora\nEnvironmentFile=-/opt/vizora/.env\nExecStart={bin} run {n}\nSuccessExitStatus=1\nTimeoutStartSec={d}\n\n",
                    d = a.default_deadline_s() + 60
                ));
                s.push_str(&format!(
                    "# /etc/systemd/system/vizora-ops-{n}.timer\n[Unit]\nDescription=vizora-ops {n} schedule\n\n[Timer]\nOnCalendar={cal}\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n\n",
                    cal = systemd_calendar(a)
                ));
            }
            Ok(s)
        }
        "k8s" => {
            // Until the Redis state backend exists, the agents share the state, audit, outbox and rate-budget files
            // through one volume mounted by every job.
            let mut s = String::from(
                "# vizora-ops one-shot agents as CronJobs. Build an image with the vizora-ops binary at /usr/local/bin.\n\
                 # The agents share ops-state.json, the audit log, the outbox and the host-wide rate budget through the\n\
                 # volume below (ReadWriteMany, or schedule every job on one node with ReadWriteOnce).\n\
                 ---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: vizora-ops-state\nspec:\n  \
                 accessModes: [ReadWriteMany]\n  resources:\n    requests:\n      storage: 1Gi\n",
            );
            for a in AgentName::ALL {
                s.push_str(&format!(
                    "---\napiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: vizora-ops-{n}\nspec:\n  schedule: \"{c}\"\n  concurrencyPolicy: Forbid\n  jobTemplate:\n    spec:\n      backoffLimit: 0\n      activeDeadlineSeconds: {d}\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n            - name: vizora-ops\n              image: vizora-ops:latest\n              args: [\"run\", \"{n}\"]\n              env:\n                - name: OPS_LOG_DIR\n                  value: /var/lib/vizora-ops\n              envFrom:\n                - secretRef:\n                    name: vizora-ops-env\n              volumeMounts:\n                - name: state\n                  mountPath: /var/lib/vizora-ops\n          volumes:\n            - name: state\n              persistentVolumeClaim:\n                claimName: vizora-ops-state\n",
                    n = a.as_str(),
                    c = a.default_cron(),
                    d = a.default_deadline_s() + 60
                ));
            }
            Ok(s)
        }
        other => Err(format!(
            "unknown deploy target {other:?} (expected pm2, systemd or k8s)"
        )),
    }
}

fn systemd_calendar(a: AgentName) -> &'static str {
    match a {
        AgentName::HealthGuardian => "*:0/5",
        AgentName::FleetManager => "*:2/10",
        AgentName::ContentLifecycle => "*:4/15",
        AgentName::ScheduleDoctor => "*:7/15",
        AgentName::OpsReporter | AgentName::OpsWatchdog => "*:10,40",
        AgentName::DbMaintainer => "*-*-* 03:00:00",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_files_use_staggered_schedules_and_argv_not_shell() {
        let pm2 = deploy_files("pm2").unwrap();
        assert!(pm2.contains("cron_restart: '2-59/10 * * * *'"));
        assert!(pm2.contains("autorestart: false"));
        assert!(pm2.contains("out_file: 'logs/ops-db-maintainer.log'"));
        assert!(
            deploy_files("k8s")
                .unwrap()
                .contains("concurrencyPolicy: Forbid")
        );
        assert!(deploy_files("docker").is_err());
    }
}
