//! Backup freshness per configured location (agents.md 6.6.7): `backup-not-configured`, `backup-unverifiable`,
//! `backup-missing`, `backup-stale`; incidents of locations no longer configured close with
//! [`STALE_LOCATION_SUFFIX`].

use super::ENABLE_BACKUPS;
use super::report::{Part, human_bytes, id_of, past_deadline, remaining};
use crate::agents::AgentContext;
use crate::maint::backup::{self, BackupVerdict};
use crate::maint::s3::S3Settings;
use crate::model::{Severity, ts};
use crate::redact::redact_str;
use serde_json::{Value, json};
use std::collections::HashSet;

/// Types of the per-location backup checks (6.6.7).
pub(super) const BACKUP_LOCATION_TYPES: [&str; 3] =
    ["backup-unverifiable", "backup-missing", "backup-stale"];

/// Message suffix of a `backup-*` incident closed because its location is no longer configured (6.6.7, 9 item 43).
pub const STALE_LOCATION_SUFFIX: &str = " — location no longer configured; closing stale incident (this does not show that a backup exists)";

/// The backup verification task (6.6.7).
pub(super) async fn task(ctx: &AgentContext) -> Part {
    let mut p = Part::default();
    let db = &ctx.cfg.db;
    let priors = ctx.priors();
    p.covered.push("backup-not-configured");
    // Every location type is judged per configured location; any other location's incident is stale.
    for t in BACKUP_LOCATION_TYPES {
        p.covered.push(t);
    }
    let mut configured_ids: HashSet<String> = HashSet::new();

    if db.backup_locations.is_empty() {
        p.note(format!(
            "backups: no backup location configured — nothing shows that a backup exists; set {ENABLE_BACKUPS}"
        ));
        p.not_configured("backups", ENABLE_BACKUPS);
        p.incidents.push(ctx.incident(
            "backup-not-configured",
            Severity::Info,
            "backup",
            "backup",
            "no backup location is configured (OPS_BACKUP_LOCATIONS, BACKUP_DIR and BACKUP_S3_BUCKET are unset); \
             no backup is verified and none is known to exist",
            format!("set {ENABLE_BACKUPS} so db-maintainer verifies the newest backup every day"),
        ));
        p.stat("backups", Value::Array(vec![]));
    } else if ctx.cfg.demo {
        p.note("backups: locations configured but not checked in the demo (no bucket or directory is contacted)");
        // Nothing judged: keep every prior backup incident as it is.
        for i in priors.values() {
            if BACKUP_LOCATION_TYPES.contains(&i.kind.as_str()) {
                p.unexamined.push(i.id.clone());
            }
        }
        p.stat("backups", Value::Array(vec![]));
        return p;
    } else {
        let s3 = S3Settings::for_backups(db);
        let mut rows = Vec::new();
        for raw in &db.backup_locations {
            let (row, target_id) = check_location(ctx, raw, &s3, &mut p).await;
            configured_ids.insert(target_id);
            rows.extend(row);
        }
        p.stat("backups", Value::Array(rows));
    }

    // Incidents of locations that are no longer configured close with a suffix that proves nothing (9 item 43).
    for i in priors.values() {
        if i.is_active()
            && BACKUP_LOCATION_TYPES.contains(&i.kind.as_str())
            && !configured_ids.contains(&i.target_id)
        {
            p.suffix
                .push((i.id.clone(), STALE_LOCATION_SUFFIX.to_string()));
        }
    }
    p
}

/// Checks one configured location; returns its stats row (`None` when deferred past the deadline: its incidents
/// are then not examined) and its incident target id.
async fn check_location(
    ctx: &AgentContext,
    raw: &str,
    s3: &S3Settings,
    p: &mut Part,
) -> (Option<Value>, String) {
    let db = &ctx.cfg.db;
    let loc = match backup::parse_location(raw) {
        Ok(l) => l,
        Err(msg) => {
            let target = redact_str(raw.trim());
            p.note(format!("backup {target}: unverifiable — {msg}"));
            let mut inc = ctx.incident(
                "backup-unverifiable",
                Severity::Critical,
                "backup",
                &target,
                format!("{msg}; a malformed location is a failure, not \"unset\": no backup was verified"),
                "fix OPS_BACKUP_LOCATIONS (comma list of s3://bucket[/prefix] or absolute directories) or \
                 BACKUP_DIR / BACKUP_S3_BUCKET",
            );
            inc.error = Some(msg.clone());
            p.incidents.push(inc);
            return (
                Some(json!({"location": target, "verdict": "unverifiable", "error": msg})),
                target,
            );
        }
    };
    let target = loc.to_string();
    let kind = match &loc {
        backup::BackupLocation::S3 { .. } => "s3",
        backup::BackupLocation::Dir(_) => "dir",
    };
    let deferred = |p: &mut Part| {
        p.note(format!(
            "backup {target}: deferred — the run deadline was reached"
        ));
        for t in BACKUP_LOCATION_TYPES {
            p.unexamined.push(id_of(t, &target));
        }
    };
    if past_deadline(ctx) {
        deferred(p);
        return (None, target);
    }
    let Ok(result) = tokio::time::timeout(
        remaining(ctx),
        backup::newest_backup(&loc, db.backup_pattern.as_deref(), s3),
    )
    .await
    else {
        deferred(p);
        return (None, target);
    };
    let scan = match result {
        Ok(s) => s,
        Err(e) => {
            let err = redact_str(&e.to_string());
            p.note(format!("backup {target}: unverifiable — {err}"));
            let mut inc = ctx.incident(
                "backup-unverifiable",
                Severity::Critical,
                "backup",
                &target,
                format!("cannot list backups at {target}: {err}; no backup was verified"),
                if kind == "s3" {
                    "check the bucket and prefix, OPS_BACKUP_S3_ENDPOINT and the AWS_* credentials"
                } else {
                    "check that the directory exists and is readable by vizora-ops"
                },
            );
            inc.error = Some(err.clone());
            p.incidents.push(inc);
            return (
                Some(
                    json!({"location": target, "kind": kind, "verdict": "unverifiable", "error": err}),
                ),
                target,
            );
        }
    };
    let max_h = db.backup_max_age_hours;
    let verdict = backup::judge(scan.newest.as_ref(), ctx.started, max_h);
    let pattern = db
        .backup_pattern
        .as_deref()
        .map(|g| format!(" matching OPS_BACKUP_PATTERN {g:?}"))
        .unwrap_or_default();
    let newest_desc = scan.newest.as_ref().map(|b| {
        format!(
            "{} ({}, modified {})",
            redact_str(&b.path_or_key),
            human_bytes(b.size),
            ts(b.modified)
        )
    });
    let mut row = json!({
        "location": target,
        "kind": kind,
        "candidates": scan.candidates,
        "partial": scan.partial,
        "newest": scan.newest,
        "maxAgeHours": max_h,
    });
    let inconclusive = scan.partial && !matches!(verdict, BackupVerdict::Fresh { .. });
    let (verdict_name, age) = match verdict {
        BackupVerdict::Fresh { age_h } => ("fresh", Some(age_h)),
        BackupVerdict::Stale { age_h } => ("stale", Some(age_h)),
        BackupVerdict::Missing => ("missing", None),
        BackupVerdict::Empty => ("empty", None),
    };
    if let Value::Object(m) = &mut row {
        m.insert(
            "verdict".into(),
            Value::String(
                if inconclusive {
                    "unverifiable"
                } else {
                    verdict_name
                }
                .into(),
            ),
        );
        m.insert("ageHours".into(), json!(age));
    }
    if inconclusive {
        let msg = format!(
            "the listing of {target} stopped at its bound (1 000 000 objects or 10 min) before a fresh backup was \
             found; the newest backup is unknown"
        );
        p.note(format!("backup {target}: unverifiable — {msg}"));
        p.incidents.push(ctx.incident(
            "backup-unverifiable",
            Severity::Critical,
            "backup",
            &target,
            msg,
            "narrow the location with a prefix (s3://bucket/prefix) or OPS_BACKUP_PATTERN",
        ));
        return (Some(row), target);
    }
    report_verdict(
        ctx,
        &target,
        verdict,
        newest_desc,
        &pattern,
        scan.candidates,
        p,
    );
    (Some(row), target)
}

/// The note and the incident of a conclusive verdict on one location (6.6.7): fresh → a note only; stale → critical
/// `backup-stale`; none found or the newest is empty → critical `backup-missing`.
fn report_verdict(
    ctx: &AgentContext,
    target: &str,
    verdict: BackupVerdict,
    newest_desc: Option<String>,
    pattern: &str,
    candidates: u64,
    p: &mut Part,
) {
    let max_h = ctx.cfg.db.backup_max_age_hours;
    match verdict {
        BackupVerdict::Fresh { age_h } => {
            p.note(format!(
                "backup {target}: newest {}, {age_h:.1} h old (limit {max_h} h)",
                newest_desc.unwrap_or_default()
            ));
        }
        BackupVerdict::Stale { age_h } => {
            let d = newest_desc.unwrap_or_default();
            p.note(format!(
                "backup {target}: STALE — newest {d} is {age_h:.1} h old (limit {max_h} h)"
            ));
            p.incidents.push(ctx.incident(
                "backup-stale",
                Severity::Critical,
                "backup",
                target,
                format!(
                    "newest backup at {target} is {age_h:.1} h old (> OPS_BACKUP_MAX_AGE_HOURS {max_h} h): {d}"
                ),
                format!(
                    "check the backup job (schedule, logs, disk space, credentials): it has not produced a backup \
                     in the last {max_h} h; run one now and verify it is non-empty"
                ),
            ));
        }
        BackupVerdict::Missing => {
            p.note(format!(
                "backup {target}: MISSING — no backup found{pattern} ({} candidate(s))",
                candidates
            ));
            p.incidents.push(ctx.incident(
                "backup-missing",
                Severity::Critical,
                "backup",
                target,
                format!("no backup found at {target}{pattern}"),
                "check the backup job and that it writes to this location; run a backup now and verify it is \
                 non-empty",
            ));
        }
        BackupVerdict::Empty => {
            let d = newest_desc.unwrap_or_default();
            p.note(format!(
                "backup {target}: MISSING — the newest backup {d} is empty (0 bytes)"
            ));
            p.incidents.push(ctx.incident(
                "backup-missing",
                Severity::Critical,
                "backup",
                target,
                format!(
                    "the newest backup at {target} is empty (0 bytes): {d}; an empty file is not a backup"
                ),
                "check the backup job's log (a failed dump often leaves a 0-byte file); run a backup now and verify \
                 it is non-empty",
            ));
        }
    }
}
