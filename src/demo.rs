//! `vizora-ops demo` (design/README.md §1): the built-in default, safe by construction.
//!
//! It works in a directory of its own and builds its configuration from scratch: the process environment, `.env` and
//! every real credential, channel, database and process-manager variable are ignored. It starts the sandbox
//! in-process on free ports with the demo tenant (shipped inside the binary), takes one sandbox service down, runs
//! every agent once in the design's order (health-guardian, fleet-manager, content-lifecycle, schedule-doctor,
//! db-maintainer, ops-reporter) and prints what was found, fixed, verified and escalated. Alerts are shown as what
//! would be sent; nothing is delivered.

use crate::config::{Config, Source};
use crate::model::AgentName;
use crate::runner::{self, RunOptions, RunReport, Wiring};
use crate::sandbox::{Sandbox, SandboxOptions, Service, ServiceState};
use anyhow::Context;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The demo's settings: the sandbox's URLs, the demo account, an in-memory rate budget sized for one quick pass,
/// short verification waits, the sandbox process manager, and alert channels that only capture.
pub fn demo_source(dir: &Path, sb: &Sandbox) -> Source {
    let logs = dir.join("logs");
    let api = sb.api_url.clone();
    let pairs: Vec<(String, String)> = vec![
        ("OPS_ROOT_DIR".into(), dir.display().to_string()),
        ("OPS_LOG_DIR".into(), logs.display().to_string()),
        ("VALIDATOR_BASE_URL".into(), api.clone()),
        ("OPS_EMAIL".into(), "ops@example.test".into()),
        ("OPS_PASSWORD".into(), "ops-demo-password".into()),
        ("OPS_RATE_LIMIT_BACKEND".into(), "memory".into()),
        ("OPS_RATE_PER_SECOND".into(), "1000".into()),
        ("OPS_RATE_PER_MINUTE".into(), "100000".into()),
        ("OPS_RATE_PER_HOUR".into(), "1000000".into()),
        ("OPS_LOGINS_PER_MINUTE".into(), "100".into()),
        ("OPS_PROCESS_MANAGER".into(), "sandbox".into()),
        ("OPS_SANDBOX_CONTROL_URL".into(), sb.control_url.clone()),
        (
            "OPS_MIDDLEWARE_PROBE_URL".into(),
            format!("{api}/api/v1/health/ready"),
        ),
        (
            "OPS_REALTIME_PROBE_URL".into(),
            format!("{}/api/health/ready", sb.realtime_url),
        ),
        ("OPS_WEB_PROBE_URL".into(), format!("{}/", sb.web_url)),
        ("OPS_PROBE_CONFIRM_S".into(), "1".into()),
        ("OPS_RESTART_COOLDOWN_S".into(), "1".into()),
        ("OPS_RECONNECT_VERIFY_S".into(), "2".into()),
        ("OPS_CONTENT_DETAIL_READS_PER_RUN".into(), "1000".into()),
        (
            "OPS_ECOSYSTEM_FILE".into(),
            dir.join("ecosystem.config.js").display().to_string(),
        ),
        ("OPS_ALERT_CAPTURE_ONLY".into(), "true".into()),
        (
            "SLACK_WEBHOOK_URL".into(),
            "https://hooks.slack.invalid/services/demo".into(),
        ),
        ("SMTP_HOST".into(), "smtp.invalid".into()),
        ("OPS_ALERT_EMAIL".into(), "ops-team@example.test".into()),
        ("OPS_DEMO".into(), "true".into()),
    ];
    Source::from_pairs(pairs)
}

fn summary_header(r: &RunReport, secs: f64) -> String {
    let res = &r.result;
    let verdict = match (r.agent, r.exit_code) {
        (AgentName::OpsReporter, 0) => "system HEALTHY",
        (AgentName::OpsReporter, 1) => "system not healthy",
        (_, 0) => "clear",
        (_, 1) => "findings remain",
        _ => "could not run",
    };
    // The counts of README "What the counts mean": `closed` are this run's incidents its verified fixes closed (the
    // resolved incidents of the result minus the sweep's copies, which `resolved` counts).
    let resolved = res.issues_resolved.unwrap_or(0) as usize;
    let closed = res
        .incidents
        .iter()
        .filter(|i| i.status == crate::model::IncidentStatus::Resolved)
        .count()
        .saturating_sub(resolved);
    format!(
        "== {:<17} exit {} ({verdict}) — found {}, fixed {}, closed {closed}, escalated {}, resolved {resolved}, \
         info {}  [{:.1} s]",
        r.agent.as_str(),
        r.exit_code,
        res.issues_found,
        res.issues_fixed,
        res.issues_escalated,
        res.info_found.unwrap_or(0),
        secs
    )
}

async fn write_requests(sb: &Sandbox) -> Vec<String> {
    sb.requests()
        .into_iter()
        .filter(|r| r.method != "GET" && r.method != "HEAD" && !r.path.starts_with("/api/v1/auth/"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// Runs the demo in `dir` (created when missing). `second_pass` runs every agent again and shows it changes nothing;
/// `verbose` also prints the agents' log lines. Errors: the directory cannot be created or the sandbox cannot start.
pub async fn run_demo(dir: &Path, second_pass: bool, verbose: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir: PathBuf = std::fs::canonicalize(dir)?;
    // Each demo starts from a fresh sandbox, so it starts from a fresh state too; an earlier run's files are moved
    // aside (kept, never deleted).
    let logs = dir.join("logs");
    let mut moved_previous = None;
    if logs.exists() {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
        let prev = dir.join("previous-runs").join(&stamp);
        std::fs::create_dir_all(dir.join("previous-runs"))?;
        std::fs::rename(&logs, &prev).with_context(|| {
            format!(
                "cannot move the previous demo run aside to {}",
                prev.display()
            )
        })?;
        moved_previous = Some(prev);
    }
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let sb = Sandbox::start(
        crate::sandbox::DEMO_FIXTURE,
        SandboxOptions {
            port: 0,
            throttle: false,
            ..Default::default()
        },
    )
    .await
    .context("cannot start the sandbox")?;
    let cfg = Arc::new(Config::from_source(demo_source(&dir, &sb), &dir)?);
    crate::logging::set_quiet(!verbose);

    crate::outln!(
        "vizora-ops demo — sandbox tenant \"Fernhill Outdoor Ltd\"; nothing real is contacted or delivered"
    );
    crate::outln!(
        "  sandbox API {}  web {}  realtime {}",
        sb.api_url,
        sb.web_url,
        sb.realtime_url
    );
    crate::outln!("  working directory {}", dir.display());
    if let Some(p) = &moved_previous {
        crate::outln!(
            "  the previous demo run's files were moved to {}",
            p.display()
        );
    }
    // Half of the reload commands sent to offline screens make them reconnect, so the demo shows both a verified
    // reconnection and a screen that stays open.
    sb.set_reconnect_share(0.5);
    sb.set_service(Service::Web, ServiceState::Down);
    crate::outln!(
        "  fault injected: the web service (vizora-web) is taken down before health-guardian runs"
    );
    crate::outln!(
        "  counts per agent (README \"What the counts mean\"): found = warning/critical incidents raised; fixed = \
         verified remediations (one restart can close two incidents; archiving an info finding counts); closed = \
         this run's incidents closed by its verified fixes; escalated = left for a human; resolved = earlier \
         incidents closed by this run's checks; info = informational findings"
    );
    crate::outln!();

    let order = [
        AgentName::HealthGuardian,
        AgentName::FleetManager,
        AgentName::ContentLifecycle,
        AgentName::ScheduleDoctor,
        AgentName::DbMaintainer,
        AgentName::OpsReporter,
    ];
    let passes = if second_pass { 2 } else { 1 };
    for pass in 1..=passes {
        if pass == 2 {
            sb.clear_requests();
            crate::outln!("--- second pass: the same agents over the same sandbox ---");
        }
        for agent in order {
            let t = std::time::Instant::now();
            let r = runner::run_agent(cfg.clone(), agent, RunOptions::default(), Wiring::default())
                .await;
            crate::outln!("{}", summary_header(&r, t.elapsed().as_secs_f64()));
            if let Some(f) = &r.fatal {
                crate::outln!("   ! {}", crate::redact::redact_str(f));
            }
            for l in &r.report {
                crate::outln!("   • {l}");
            }
        }
        if pass == 2 {
            let writes: Vec<String> = write_requests(&sb)
                .await
                .into_iter()
                .filter(|w| !w.contains("/health/ops-status"))
                .collect();
            if writes.is_empty() {
                crate::outln!(
                    "second pass: no mutation was sent to the API (only reads, login/logout and the dashboard push)"
                );
            } else {
                crate::outln!(
                    "second pass sent {} write request(s): {}",
                    writes.len(),
                    writes.join(", ")
                );
            }
        }
        crate::outln!();
    }

    let captured = dir.join("logs").join("ops-captured-alerts.jsonl");
    crate::outln!("Alerts that would be sent (captured, not delivered):");
    match std::fs::read_to_string(&captured) {
        Ok(t) if !t.trim().is_empty() => {
            for line in t.lines() {
                if let Ok(v) = serde_json::from_str::<Value>(line) {
                    let title = v["title"].as_str().unwrap_or("");
                    // The text's first line without what only repeats the title (status alerts start with it).
                    let first = v["text"]
                        .as_str()
                        .and_then(|t| t.lines().map(str::trim).find(|l| !l.is_empty()))
                        .map(|l| match l.strip_prefix(title) {
                            // `Vizora Ops: CRITICAL (was HEALTHY) - …` continues the title: no dash before it.
                            Some(rest)
                                if !title.is_empty() && rest.trim_start().starts_with('(') =>
                            {
                                format!(" {}", rest.trim_start())
                            }
                            Some(rest) if !title.is_empty() => {
                                dashed(rest.trim_start_matches([' ', '-', '—']))
                            }
                            _ if repeats(title, l) => String::new(),
                            _ => dashed(l),
                        })
                        .unwrap_or_default();
                    crate::outln!(
                        "   [{}] {title}{first}",
                        v["channel"].as_str().unwrap_or("?"),
                    );
                }
            }
        }
        _ => crate::outln!("   none"),
    }
    let state = crate::state::StateStore::from_config(&cfg).snapshot(chrono::Utc::now());
    crate::outln!();
    for l in crate::cli::status_lines(&state, chrono::Utc::now())
        .into_iter()
        .take(1)
    {
        crate::outln!("{l}");
    }
    // The same functions as the reporter and `status` (README "What the counts mean"), so the numbers agree.
    let now = chrono::Utc::now();
    let recent = state.remediations_24h(now).len();
    crate::outln!(
        "Counts: {} verified fix(es) in 24 h (the sum of the agents' fixed above) among {recent} remediation(s) in 24 h",
        state.verified_fixes_24h(now)
    );
    match sb.ops_status() {
        Some(v) => {
            let incidents = v["incidents"].as_array().cloned().unwrap_or_default();
            let active: Vec<&Value> = incidents
                .iter()
                .filter(|i| i["status"] == "open" || i["status"] == "escalated")
                .collect();
            let info = active.iter().filter(|i| i["severity"] == "info").count();
            crate::outln!(
                "Dashboard: the sandbox API holds the pushed ops status (systemStatus {}, {} active incident(s): {} \
                 warning/critical and {info} info; {} resolved kept for 24 h)",
                v["systemStatus"].as_str().unwrap_or("?"),
                active.len(),
                active.len() - info,
                incidents.len() - active.len()
            )
        }
        None => crate::outln!("Dashboard: no ops status was pushed to the sandbox"),
    }
    crate::outln!(
        "Files: {} and {}",
        cfg.state_file.display(),
        cfg.audit_file.display()
    );
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "vizora-ops".into());
    crate::outln!(
        "See it again: OPS_LOG_DIR={} {exe} status",
        cfg.log_dir.display()
    );
    crate::logging::set_quiet(false);
    sb.shutdown().await;
    Ok(())
}

/// ` — <text>`, or nothing for an empty text.
fn dashed(t: &str) -> String {
    if t.is_empty() {
        String::new()
    } else {
        format!(" — {t}")
    }
}

/// Whether every word of `line` already appears in `title` (a heading that only repeats the alert's title).
fn repeats(title: &str, line: &str) -> bool {
    let words = |t: &str| -> Vec<String> {
        t.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let in_title = words(title);
    let w = words(line);
    !w.is_empty() && w.iter().all(|x| in_title.contains(x))
}
