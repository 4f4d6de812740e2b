//! db-maintainer (agents.md 6.6, daily 03:00, no API login): PostgreSQL `VACUUM (ANALYZE)` and
//! `REINDEX … CONCURRENTLY`, the Redis memory report, log retention, S3/MinIO bucket usage and backup freshness.
//!
//! The five tasks are independent (6.6): PostgreSQL, Redis, bucket usage and backup verification run concurrently,
//! each bounded by its own timeouts and the run deadline (1.2); log retention runs last, after every other task has
//! written its audit lines, so rotating the audit log (4.8) never races this run's own appends. A task that fails
//! raises its incident and never skips another task (9, item 37).
//!
//! * **Incidents** are the catalogue of 3.6 ([`CATALOGUE`]). Coverage is declared per task that reached a verdict
//!   (2.5): `vacuum-*`/`reindex-*` only when PostgreSQL was reached, `redis-*` when `INFO` succeeded,
//!   `log-retention-failed` when the sweep ran, `bucket-size-high`/`s3-unobservable` when S3 is configured,
//!   `backup-*` per configured location. A `backup-*` incident whose location is no longer configured is resolved by
//!   the sweep with [`STALE_LOCATION_SUFFIX`].
//! * **Maintenance is never a fix** (3.6): `issuesFixed` stays 0; each VACUUM, REINDEX and rotated file is a
//!   [`RemediationAction`](crate::model::RemediationAction) (method `SQL` or `FILE`, no `verified`) plus an audit mutation line (4.8) carrying the SQL
//!   `statement` (`before: null`) or the file `path` relative to the log dir.
//! * **Dry run** (1.5): existence checks, statistics, `INFO`/`SCAN`, listings, backup checks and the rotation *plan*
//!   run; no VACUUM, REINDEX or rotation. Each would-be statement or rotation gets an audit line with `dryRun: true`.
//! * **Demo** (`ctx.cfg.demo`, set only by `vizora-ops demo`): no database, Redis or bucket is contacted even when the
//!   defaults point at localhost; the report says what is not configured and which variables enable each task.
//! * **Secrets** (5.9, 9 item 39): no external program runs; connection strings are shown as `user@host:port/db`, and
//!   every error text comes redacted from `crate::maint`.
//!
//! The report (`outcome.note`) has one line per table, index, Redis, rotated file, bucket and backup location; the
//! same figures go to `agentResults["db-maintainer"].stats.maintenance`.
//!
//! One module per concern, each with its rule, its remediation and its unit tests: `postgres` (connection, 6.6.1),
//! `vacuum` (6.6.2), `reindex` and `leftovers` (6.6.3), `redis` (6.6.4), `logs` (6.6.5), `buckets` (6.6.6), `backups`
//! (6.6.7); `report` holds the shared contribution type and formatting. VACUUM and REINDEX run over the
//! [`PgPort`](crate::maint::postgres::PgPort) port. This module sequences the tasks, merges their parts and sends the
//! critical alert.

mod backups;
mod buckets;
#[cfg(test)]
mod fake;
mod leftovers;
mod logs;
mod postgres;
mod redis;
mod reindex;
mod report;
mod vacuum;

pub use backups::STALE_LOCATION_SUFFIX;
pub use redis::{FRAGMENTATION_MIN_USED_BYTES, FRAGMENTATION_RATIO_LIMIT, REDIS_SCAN_MAX};
pub use report::human_bytes;

use super::{AgentContext, AgentOutcome, InlineAlert, InlineKind, WriteMode};
use crate::maint::postgres as pg;
use crate::maint::s3::S3Settings;
use crate::model::{AgentName, Incident, Severity};
use crate::redact::redact_str;
use serde_json::{Map, Value, json};

const AGENT: AgentName = AgentName::DbMaintainer;

/// Incident types of this agent (agents.md 3.6).
pub const CATALOGUE: &[&str] = &[
    "db-not-configured",
    "vacuum-all-failed",
    "vacuum-table-missing",
    "vacuum-failed",
    "reindex-failed",
    "reindex-unsupported",
    "reindex-invalid-leftover",
    "redis-unobservable",
    "redis-memory-high",
    "redis-fragmentation-high",
    "log-retention-failed",
    "s3-unobservable",
    "bucket-size-high",
    "backup-not-configured",
    "backup-unverifiable",
    "backup-missing",
    "backup-stale",
];

/// Variables that enable each task, as the demo and unconfigured runs report them.
pub const ENABLE_POSTGRES: &str =
    "DATABASE_URL (postgres://user:password@host:5432/vizora?schema=public)";
/// Variables that enable the Redis report.
pub const ENABLE_REDIS: &str = "REDIS_URL (default redis://localhost:6379)";
/// Variables that enable bucket usage.
pub const ENABLE_S3: &str = "OPS_S3_ENDPOINT (or MINIO_ENDPOINT with MINIO_PORT/MINIO_USE_SSL) plus \
     OPS_S3_ACCESS_KEY/OPS_S3_SECRET_KEY (or MINIO_ACCESS_KEY/MINIO_SECRET_KEY); optional OPS_S3_BUCKETS, OPS_S3_WARN_BYTES";
/// Variables that enable backup verification.
pub const ENABLE_BACKUPS: &str = "OPS_BACKUP_LOCATIONS (comma list of s3://bucket[/prefix] or absolute directories), \
     or BACKUP_DIR / BACKUP_S3_BUCKET; S3 backups use OPS_BACKUP_S3_ENDPOINT and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY";

// -------------------------------------------------------------------------------------------------------------------
// Entry point

/// Runs the agent once (agents.md 6.6). Exit 2 only for a `DATABASE_URL` the maintenance client rejects as a setting
/// (invalid schema identifier, unsupported `sslmode`, unknown parameter): configuration errors stop the run before
/// any I/O (1.3). Every service fault is an incident; the exit code follows 1.4 (a remaining warning/critical → 1).
pub async fn run(ctx: &AgentContext) -> AgentOutcome {
    let mut o = AgentOutcome::new(CATALOGUE);
    let db = &ctx.cfg.db;

    // Settings first (1.3): a DATABASE_URL the client cannot use as configured is a configuration error.
    let pg_target = match db.database_url.as_deref() {
        Some(u) => match pg::prepare_url(u) {
            Ok(t) => Some(t),
            Err(e) => {
                o.fail(
                    format!("configuration error: {}", redact_str(&e.to_string())),
                    WriteMode::None,
                );
                return o;
            }
        },
        None => None,
    };

    ctx.info(format!(
        "maintenance{}: PostgreSQL {}, Redis {}, logs {}, S3 {}, backups {} location(s){}",
        if ctx.effects().is_dry_run() {
            " (dry run: reads only)"
        } else {
            ""
        },
        pg_target
            .as_ref()
            .map(postgres::pg_display)
            .unwrap_or_else(|| "not configured".into()),
        redis::redis_display(&db.redis_url),
        redact_str(&db.pm2_log_dir.display().to_string()),
        S3Settings::for_usage(db)
            .map(|s| s.endpoint_host())
            .unwrap_or_else(|| "not configured".into()),
        db.backup_locations.len(),
        if ctx.cfg.demo {
            " (demo: no database, Redis or bucket is contacted)"
        } else {
            ""
        }
    ));

    let (pg, redis, buckets, backups) = tokio::join!(
        postgres::task(ctx, pg_target.as_ref()),
        redis::task(ctx),
        buckets::task(ctx),
        backups::task(ctx),
    );
    let rotation = logs::task(ctx).await;

    let mut maintenance = Map::new();
    maintenance.insert("dryRun".into(), Value::Bool(ctx.effects().is_dry_run()));
    maintenance.insert("demo".into(), Value::Bool(ctx.cfg.demo));
    let mut not_configured = Vec::new();
    for part in [pg, redis, rotation, buckets, backups] {
        for i in part.incidents {
            o.raise(i);
        }
        for c in part.covered {
            o.cover(c);
        }
        o.unexamined.extend(part.unexamined);
        o.resolve_suffix.extend(part.suffix);
        o.remediations.extend(part.remediations);
        for n in part.notes {
            o.note(n);
        }
        maintenance.extend(part.stats);
        not_configured.extend(part.not_configured);
    }
    maintenance.insert("notConfigured".into(), Value::Array(not_configured));
    o.stats = Some(json!({ "maintenance": Value::Object(maintenance) }));
    o.fixed = 0;

    critical_alert(ctx, &mut o).await;
    o
}

/// One batched inline critical alert (7.6) for the open transition of this run's critical findings (new episode,
/// or a finding that rose to critical); delivered ids are stamped in this run's write.
async fn critical_alert(ctx: &AgentContext, o: &mut AgentOutcome) {
    let priors = ctx.priors();
    let list: Vec<Incident> = o
        .incidents
        .iter()
        .filter(|i| i.is_active() && i.severity == Severity::Critical)
        .filter(|i| {
            priors
                .get(&i.id)
                .filter(|p| p.is_active())
                .is_none_or(|p| p.severity != Severity::Critical)
        })
        .cloned()
        .collect();
    if list.is_empty() {
        return;
    }
    let alert = InlineAlert {
        agent: AGENT,
        kind: InlineKind::Critical,
        summary: format!(
            "db-maintainer: {} critical maintenance finding(s)",
            list.len()
        ),
        items: list
            .iter()
            .map(|i| {
                format!(
                    "{} {}: {} — {}",
                    i.kind, i.target_id, i.message, i.remediation
                )
            })
            .collect(),
        refs: list,
    };
    let stamps = ctx.effects().alert(alert).await;
    o.alert_stamps.extend(stamps);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_the_design_table() {
        assert_eq!(CATALOGUE.len(), 17);
        for t in backups::BACKUP_LOCATION_TYPES {
            assert!(CATALOGUE.contains(&t));
        }
        assert!(!CATALOGUE.contains(&"backup-failed"), "retired (3.7)");
        assert!(
            !CATALOGUE.contains(&"alert-fire-prune-failed"),
            "retired (3.7)"
        );
    }
}
