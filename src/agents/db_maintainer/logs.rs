//! Log retention (agents.md 6.6.5, 4.8): archive and trim the PM2 logs and the audit log; `log-retention-failed`.
//! Runs last so rotating the audit log never races this run's own appends (6.6).

use super::AGENT;
use super::report::{Part, action, audit, human_bytes, past_deadline};
use crate::agents::AgentContext;
use crate::effects::Gated;
use crate::maint::logs::{self, PlannedRotation, RotationParams, RotationReport};
use crate::model::{Incident, Severity};
use crate::redact::redact_str;
use crate::state::audit::MutationLine;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Instant;

/// The path of `file` relative to the log dir (4.8), else relative to `dir`, else as given.
fn rel_path(ctx: &AgentContext, file: &Path, dir: &Path) -> String {
    file.strip_prefix(&ctx.cfg.log_dir)
        .or_else(|_| file.strip_prefix(dir))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| file.display().to_string())
}

/// The log retention task (6.6.5).
pub(super) async fn task(ctx: &AgentContext) -> Part {
    let mut p = Part::default();
    let db = &ctx.cfg.db;
    let dir = db.pm2_log_dir.clone();
    let shown_dir = redact_str(&dir.display().to_string());
    if past_deadline(ctx) {
        p.note("logs: rotation deferred — the run deadline was reached");
        p.stat("rotation", Value::Null);
        return p;
    }
    let params = RotationParams {
        rotate_days: db.log_rotate_days,
        tail_bytes: db.log_tail_bytes,
        max_bytes: db.log_max_bytes,
        audit_max_bytes: db.audit_max_bytes,
    };
    let audit_file = ctx.cfg.audit_file.clone();
    let now = ctx.now();
    let started = Instant::now();
    let (d, af) = (dir.clone(), audit_file.clone());
    let planned =
        tokio::task::spawn_blocking(move || logs::plan_rotation(&d, Some(&af), &params, now)).await;
    // The rotation itself is a side effect: the gate runs it, or in a dry run only the plan is reported (1.5).
    let (d, af) = (dir.clone(), audit_file.clone());
    let rotation = ctx
        .effects()
        .run(|| tokio::task::spawn_blocking(move || logs::rotate_logs(&d, Some(&af), &params, now)))
        .await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let failed = |e: tokio::task::JoinError, p: &mut Part| {
        let err = format!("rotation task failed: {e}");
        p.covered.push("log-retention-failed");
        p.incidents
            .push(retention_incident(ctx, &shown_dir, &[err]));
        p.stat("rotation", Value::Null);
    };
    let (plans, examined, plan_errors) = match planned {
        Ok(x) => x,
        Err(e) => {
            failed(e, &mut p);
            return p;
        }
    };
    let report = match rotation {
        Gated::Applied(Ok(r)) => Some(r),
        Gated::Applied(Err(e)) => {
            failed(e, &mut p);
            return p;
        }
        Gated::Simulated => None,
        Gated::Deferred => {
            p.note("logs: rotation deferred — the run deadline was reached");
            p.stat("rotation", Value::Null);
            return p;
        }
    };
    p.covered.push("log-retention-failed");
    let errors: Vec<String> = match &report {
        Some(r) => r.errors.clone(),
        None => plan_errors.clone(),
    };
    match &report {
        None => report_plan(ctx, &plans, examined, &errors, &dir, &params, now, &mut p),
        Some(r) => report_rotation(ctx, r, &plans, &dir, now, duration_ms, &mut p),
    }
    if !errors.is_empty() {
        p.note(format!(
            "logs: rotation in {shown_dir} had {} error(s): {}",
            errors.len(),
            errors.join("; ")
        ));
        p.incidents
            .push(retention_incident(ctx, &shown_dir, &errors));
    }
    p
}

/// Dry run (1.5): one audit line with `dryRun: true` and one note per planned rotation; the `rotation` stats.
#[allow(clippy::too_many_arguments)]
fn report_plan(
    ctx: &AgentContext,
    plans: &[PlannedRotation],
    examined: usize,
    errors: &[String],
    dir: &Path,
    params: &RotationParams,
    now: DateTime<Utc>,
    p: &mut Part,
) {
    let shown_dir = redact_str(&dir.display().to_string());
    for plan in plans {
        let rel = rel_path(ctx, &plan.path, dir);
        let mut line = MutationLine::new(
            &ctx.run_id,
            AGENT.as_str(),
            &format!("Archive and trim log {rel}"),
            "FILE",
            "logs",
            &rel,
            now,
            json!({"sizeBytes": plan.size_bytes}),
            true,
        );
        line.path = Some(rel.clone());
        audit(ctx, &line);
        p.note(format!(
            "logs: would archive {rel} ({}, {}) to archive/ and keep its last {} (dry run)",
            human_bytes(plan.size_bytes),
            serde_json::to_value(plan.reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            if plan.audit {
                "0 B — the audit log is moved aside, never rewritten".to_string()
            } else {
                human_bytes(params.tail_bytes.min(plan.size_bytes))
            }
        ));
    }
    if plans.is_empty() {
        p.note(format!(
            "logs: {examined} log file(s) in {shown_dir}, none due for rotation (dry run)"
        ));
    }
    p.stat(
        "rotation",
        json!({"dir": shown_dir, "dryRun": true, "filesExamined": examined, "planned": plans, "errors": errors}),
    );
}

/// A real run (6.6.5, 4.8): one audit mutation line and remediation record per rotated file and per planned
/// rotation that failed; notes for skipped files; the `rotation` stats.
fn report_rotation(
    ctx: &AgentContext,
    r: &RotationReport,
    plans: &[PlannedRotation],
    dir: &Path,
    now: DateTime<Utc>,
    duration_ms: u64,
    p: &mut Part,
) {
    let shown_dir = redact_str(&dir.display().to_string());
    for f in &r.rotated {
        let plan = plans.iter().find(|pl| pl.file == f.file);
        let full = plan
            .map(|pl| pl.path.clone())
            .unwrap_or_else(|| dir.join(&f.file));
        let rel = rel_path(ctx, &full, dir);
        let what = format!("Archive and trim log {rel}");
        let before = json!({"sizeBytes": f.bytes_archived});
        let after = json!({
            "archive": f.archive, "archiveBytes": f.archive_bytes, "keptBytes": f.kept_bytes,
        });
        let mut line = MutationLine::new(
            &ctx.run_id,
            AGENT.as_str(),
            &what,
            "FILE",
            "logs",
            &rel,
            now,
            before.clone(),
            false,
        );
        line.path = Some(rel.clone());
        line.after = Some(after.clone());
        line.duration_ms = Some(duration_ms);
        audit(ctx, &line);
        p.remediations.push(action(
            ctx,
            now,
            &what,
            "logs",
            &rel,
            "FILE",
            before,
            Some(after),
            true,
            None,
        ));
        p.note(format!(
            "logs: archived {rel} ({}) to {} ({}), kept the last {}",
            human_bytes(f.bytes_archived),
            f.archive,
            human_bytes(f.archive_bytes),
            human_bytes(f.kept_bytes)
        ));
    }
    // Planned rotations that failed are audited as failed mutations.
    for plan in plans {
        if r.rotated.iter().any(|f| f.file == plan.file) || r.skipped_changed.contains(&plan.file) {
            continue;
        }
        let prefix = format!("{}: ", plan.file);
        if let Some(err) = r.errors.iter().find(|e| e.starts_with(&prefix)) {
            let rel = rel_path(ctx, &plan.path, dir);
            let mut line = MutationLine::new(
                &ctx.run_id,
                AGENT.as_str(),
                &format!("Archive and trim log {rel}"),
                "FILE",
                "logs",
                &rel,
                now,
                json!({"sizeBytes": plan.size_bytes}),
                false,
            );
            line.path = Some(rel.clone());
            line.success = false;
            line.error = Some(err.clone());
            line.duration_ms = Some(duration_ms);
            audit(ctx, &line);
            p.remediations.push(action(
                ctx,
                now,
                &format!("Archive and trim log {rel}"),
                "logs",
                &rel,
                "FILE",
                json!({"sizeBytes": plan.size_bytes}),
                None,
                false,
                Some(err.clone()),
            ));
        }
    }
    for s in &r.skipped_changed {
        p.note(format!(
            "logs: {s} changed while it was archived — left untouched (its archive is kept); the next run retries"
        ));
    }
    if r.rotated.is_empty() && r.errors.is_empty() {
        if r.dir_exists {
            p.note(format!(
                "logs: {} log file(s) in {shown_dir}, none due for rotation",
                r.files_examined
            ));
        } else {
            p.note(format!(
                "logs: {shown_dir} does not exist — nothing to rotate"
            ));
        }
    }
    p.stat(
        "rotation",
        json!({
            "dir": shown_dir,
            "dirExists": r.dir_exists,
            "filesExamined": r.files_examined,
            "rotated": r.rotated,
            "skippedChanged": r.skipped_changed,
            "errors": r.errors,
            "durationMs": duration_ms,
        }),
    );
}

fn retention_incident(ctx: &AgentContext, dir: &str, errors: &[String]) -> Incident {
    let mut shown: Vec<String> = errors.iter().take(3).map(|e| redact_str(e)).collect();
    if errors.len() > 3 {
        shown.push(format!("and {} more", errors.len() - 3));
    }
    let mut inc = ctx.incident(
        "log-retention-failed",
        Severity::Warning,
        "logs",
        "logs-dir",
        format!(
            "log rotation in {dir} had {} error(s): {}",
            errors.len(),
            shown.join("; ")
        ),
        format!(
            "check permissions and free space of {dir} and its archive/ directory; nothing was emptied or deleted \
             and the affected logs keep growing until rotation succeeds"
        ),
    );
    inc.error = errors.first().map(|e| redact_str(e));
    inc
}
