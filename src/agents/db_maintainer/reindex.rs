//! REINDEX … CONCURRENTLY of `OPS_REINDEX_INDEXES` and `OPS_REINDEX_TABLES` (agents.md 6.6.3) over [`PgPort`]:
//! `reindex-unsupported`, `reindex-failed`, `reindex-invalid-leftover` (reported, never dropped).

use super::leftovers;
use super::postgres::{BLOCKER_HINT, lock_hint, run_statement};
use super::report::{Part, action, id_of, opt_bytes, past_deadline};
use crate::agents::AgentContext;
use crate::effects::Gated;
use crate::maint::postgres::{self, PgPort, SQLSTATE_LOCK_TIMEOUT};
use crate::maint::quote_ident;
use crate::model::Severity;
use crate::redact::redact_str;
use serde_json::{Value, json};

/// REINDEX CONCURRENTLY of `OPS_REINDEX_INDEXES` and `OPS_REINDEX_TABLES` (6.6.3), with invalid `_ccnew` leftovers
/// reported (never dropped) and their indexes skipped.
pub(super) async fn reindex(ctx: &AgentContext, conn: &dyn PgPort, schema: &str, p: &mut Part) {
    let db = &ctx.cfg.db;
    if db.reindex_indexes.is_empty() && db.reindex_tables.is_empty() {
        p.note(
            "REINDEX: nothing configured (OPS_REINDEX_INDEXES and OPS_REINDEX_TABLES are empty)",
        );
    }
    p.covered.push("reindex-unsupported");
    if !conn.supports_reindex_concurrently() {
        let v = conn.server_version_num();
        p.note(format!(
            "REINDEX: skipped — server_version_num {v} < 120000 (REINDEX CONCURRENTLY needs PostgreSQL 12+)"
        ));
        p.incidents.push(ctx.incident(
            "reindex-unsupported",
            Severity::Info,
            "database",
            "server-version",
            format!(
                "server_version_num {v} < 120000: REINDEX … CONCURRENTLY needs PostgreSQL 12 or later; a \
                 non-concurrent rebuild blocks writes and never runs"
            ),
            "upgrade PostgreSQL to 12 or later; until then rebuild bloated indexes manually in a maintenance window",
        ));
        p.stat("indexes", Value::Array(vec![]));
        return;
    }

    let leftovers = match conn.invalid_leftovers(schema).await {
        Ok(l) => l,
        Err(e) => {
            // Without knowing the leftovers a rebuild could add another one: nothing is reindexed.
            let err = redact_str(&e.to_string());
            p.note(format!(
                "REINDEX: the invalid-index check failed — {err}; nothing was reindexed"
            ));
            for i in db.reindex_indexes.iter().chain(db.reindex_tables.iter()) {
                let mut inc = ctx.incident(
                    "reindex-failed",
                    Severity::Warning,
                    "database",
                    i,
                    format!("not reindexed: the check for invalid _ccnew leftovers failed: {err}"),
                    "check the PostgreSQL log and catalog access; the next run retries",
                );
                inc.error = Some(err.clone());
                p.incidents.push(inc);
            }
            p.stat("indexes", Value::Array(vec![]));
            return;
        }
    };
    p.covered.push("reindex-invalid-leftover");
    leftovers::report_leftovers(ctx, schema, &leftovers, p);

    let rows = reindex_indexes(ctx, conn, schema, &leftovers, p).await;
    let table_rows = reindex_tables(ctx, conn, schema, p).await;

    // A failed concurrent rebuild may leave a new invalid index behind: report it in this run.
    let any_failed = p
        .incidents
        .iter()
        .any(|i| i.kind == "reindex-failed" && i.error.is_some());
    if any_failed
        && !ctx.effects().is_dry_run()
        && let Ok(after) = conn.invalid_leftovers(schema).await
    {
        let new: Vec<String> = after
            .into_iter()
            .filter(|l| !leftovers.contains(l))
            .collect();
        leftovers::report_leftovers(ctx, schema, &new, p);
    }
    p.stat("indexes", Value::Array(rows));
    p.stat("reindexTables", Value::Array(table_rows));
}

/// The configured indexes (6.6.3): existence, then one concurrent rebuild each unless an invalid leftover of it
/// exists or the deadline passed. Returns the `indexes` stats rows.
async fn reindex_indexes(
    ctx: &AgentContext,
    conn: &dyn PgPort,
    schema: &str,
    leftovers: &[String],
    p: &mut Part,
) -> Vec<Value> {
    let db = &ctx.cfg.db;
    let mut rows = Vec::new();
    match conn.existing_indexes(schema, &db.reindex_indexes).await {
        Err(e) => {
            let err = redact_str(&e.to_string());
            p.note(format!(
                "REINDEX: index existence check failed — {err}; no index was reindexed"
            ));
        }
        Ok((present, missing)) => {
            p.covered.push("reindex-failed");
            for i in &missing {
                p.note(format!(
                    "index \"{i}\": does not exist in schema \"{schema}\" — not reindexed"
                ));
                p.incidents.push(ctx.incident(
                    "reindex-failed",
                    Severity::Warning,
                    "database",
                    i,
                    format!(
                        "configured index \"{i}\" does not exist in schema \"{schema}\" (OPS_REINDEX_INDEXES); not \
                         reindexed"
                    ),
                    "correct OPS_REINDEX_INDEXES (physical index names, e.g. \"Content_status_idx\") or create the \
                     index through a migration",
                ));
                rows.push(json!({"index": i, "missing": true}));
            }
            for i in &present {
                if let Some(l) = postgres::leftover_for(i, leftovers) {
                    p.unexamined.push(id_of("reindex-failed", i));
                    p.note(format!(
                        "index \"{i}\": not reindexed — invalid leftover \"{l}\" of an interrupted rebuild exists"
                    ));
                    rows.push(json!({"index": i, "skipped": format!("invalid leftover {l}")}));
                    continue;
                }
                if past_deadline(ctx) {
                    p.unexamined.push(id_of("reindex-failed", i));
                    p.note(format!(
                        "index \"{i}\": REINDEX deferred — the run deadline was reached"
                    ));
                    continue;
                }
                rows.push(reindex_one(ctx, conn, schema, i, p).await);
            }
        }
    }
    rows
}

/// The configured tables (6.6.3, `OPS_REINDEX_TABLES`): existence, then one concurrent rebuild each. Returns the
/// `reindexTables` stats rows.
async fn reindex_tables(
    ctx: &AgentContext,
    conn: &dyn PgPort,
    schema: &str,
    p: &mut Part,
) -> Vec<Value> {
    let db = &ctx.cfg.db;
    let mut table_rows = Vec::new();
    if !db.reindex_tables.is_empty() {
        match conn.existing_tables(schema, &db.reindex_tables).await {
            Err(e) => {
                let err = redact_str(&e.to_string());
                p.note(format!(
                    "REINDEX TABLE: table existence check failed — {err}; no table was reindexed"
                ));
                for t in &db.reindex_tables {
                    p.unexamined.push(id_of("reindex-failed", t));
                }
            }
            Ok((present, missing)) => {
                for t in &missing {
                    p.note(format!(
                        "table \"{t}\": does not exist in schema \"{schema}\" — REINDEX TABLE skipped"
                    ));
                    p.incidents.push(ctx.incident(
                        "reindex-failed",
                        Severity::Warning,
                        "database",
                        t,
                        format!(
                            "configured table \"{t}\" does not exist in schema \"{schema}\" (OPS_REINDEX_TABLES); \
                             not reindexed"
                        ),
                        "correct OPS_REINDEX_TABLES (physical table names)",
                    ));
                    table_rows.push(json!({"table": t, "missing": true}));
                }
                for t in &present {
                    if past_deadline(ctx) {
                        p.unexamined.push(id_of("reindex-failed", t));
                        continue;
                    }
                    table_rows.push(reindex_table_one(ctx, conn, schema, t, p).await);
                }
            }
        }
    }
    table_rows
}

/// The stats row of a statement the gate deferred: the run deadline passed before it could start (1.2).
fn deferred(name: &str, key: &str, stmt: &str, p: &mut Part) -> Value {
    p.unexamined.push(id_of("reindex-failed", name));
    p.note(format!(
        "{key} \"{name}\": REINDEX deferred — the run deadline was reached"
    ));
    json!({key: name, "deferred": true, "statement": stmt})
}

async fn reindex_one(
    ctx: &AgentContext,
    conn: &dyn PgPort,
    schema: &str,
    index: &str,
    p: &mut Part,
) -> Value {
    let db = &ctx.cfg.db;
    let stmt = format!(
        "REINDEX INDEX CONCURRENTLY {}.{}",
        quote_ident(schema),
        quote_ident(index)
    );
    let what = format!("REINDEX INDEX CONCURRENTLY \"{index}\"");
    let started = ctx.now();
    let op = || conn.reindex_index(schema, index, db.lock_timeout_s);
    let r = match run_statement(ctx, &what, index, &stmt, started, op).await {
        Gated::Applied(r) => r,
        Gated::Deferred => return deferred(index, "index", &stmt, p),
        Gated::Simulated => {
            let size = conn.index_size(schema, index).await;
            p.unexamined.push(id_of("reindex-failed", index));
            p.note(format!(
                "index \"{index}\": would run {stmt} (dry run) — size {}",
                opt_bytes(size)
            ));
            return json!({"index": index, "dryRun": true, "statement": stmt, "sizeBeforeBytes": size});
        }
    };
    let before = json!({
        "sizeBytes": r.size_before_bytes,
        "avgLeafDensity": r.avg_leaf_density_before,
        "leafFragmentation": r.leaf_fragmentation_before,
    });
    let after = json!({
        "sizeBytes": r.size_after_bytes,
        "avgLeafDensity": r.avg_leaf_density_after,
        "leafFragmentation": r.leaf_fragmentation_after,
    });
    if r.ok() {
        let density = match (r.avg_leaf_density_before, r.avg_leaf_density_after) {
            (Some(b), Some(a)) => format!(", leaf density {b:.1} % → {a:.1} %"),
            _ => String::new(),
        };
        p.note(format!(
            "index \"{index}\": rebuilt concurrently, size {} → {}{density}, {} ms",
            opt_bytes(r.size_before_bytes),
            opt_bytes(r.size_after_bytes),
            r.duration_ms
        ));
    } else {
        let err = r.error.clone().unwrap_or_default();
        let hint = lock_hint(r.sqlstate.as_deref(), db.lock_timeout_s);
        p.note(format!(
            "index \"{index}\": REINDEX failed after {} ms — {err}{hint}",
            r.duration_ms
        ));
        let mut inc = ctx.incident(
            "reindex-failed",
            Severity::Warning,
            "database",
            index,
            format!("{stmt} failed: {err}{hint}"),
            if r.sqlstate.as_deref() == Some(SQLSTATE_LOCK_TIMEOUT) {
                BLOCKER_HINT.to_string()
            } else {
                "check the PostgreSQL log; an interrupted rebuild may leave an invalid _ccnew index (reported \
                 separately, never dropped automatically); the next run retries"
                    .to_string()
            },
        );
        inc.error = Some(err);
        p.incidents.push(inc);
    }
    p.remediations.push(action(
        ctx,
        started,
        &what,
        "database",
        index,
        "SQL",
        before,
        r.ok().then_some(after),
        r.ok(),
        r.error.clone(),
    ));
    json!({
        "index": index,
        "table": r.table,
        "statement": r.statement,
        "durationMs": r.duration_ms,
        "sizeBeforeBytes": r.size_before_bytes,
        "sizeAfterBytes": r.size_after_bytes,
        "avgLeafDensityBefore": r.avg_leaf_density_before,
        "avgLeafDensityAfter": r.avg_leaf_density_after,
        "leafFragmentationBefore": r.leaf_fragmentation_before,
        "leafFragmentationAfter": r.leaf_fragmentation_after,
        "ok": r.ok(),
        "error": r.error,
        "sqlstate": r.sqlstate,
    })
}

async fn reindex_table_one(
    ctx: &AgentContext,
    conn: &dyn PgPort,
    schema: &str,
    table: &str,
    p: &mut Part,
) -> Value {
    let db = &ctx.cfg.db;
    let stmt = format!(
        "REINDEX TABLE CONCURRENTLY {}.{}",
        quote_ident(schema),
        quote_ident(table)
    );
    let what = format!("REINDEX TABLE CONCURRENTLY \"{table}\"");
    let started = ctx.now();
    let op = || conn.reindex_table(schema, table, db.lock_timeout_s);
    let r = match run_statement(ctx, &what, table, &stmt, started, op).await {
        Gated::Applied(r) => r,
        Gated::Deferred => return deferred(table, "table", &stmt, p),
        Gated::Simulated => {
            p.unexamined.push(id_of("reindex-failed", table));
            p.note(format!("table \"{table}\": would run {stmt} (dry run)"));
            return json!({"table": table, "dryRun": true, "statement": stmt});
        }
    };
    let before = json!({"indexesSizeBytes": r.indexes_size_before_bytes});
    let after = json!({"indexesSizeBytes": r.indexes_size_after_bytes});
    if r.ok() {
        p.note(format!(
            "table \"{table}\": indexes rebuilt concurrently, {} → {}, {} ms",
            opt_bytes(r.indexes_size_before_bytes),
            opt_bytes(r.indexes_size_after_bytes),
            r.duration_ms
        ));
    } else {
        let err = r.error.clone().unwrap_or_default();
        let hint = lock_hint(r.sqlstate.as_deref(), db.lock_timeout_s);
        p.note(format!(
            "table \"{table}\": REINDEX TABLE failed after {} ms — {err}{hint}",
            r.duration_ms
        ));
        let mut inc = ctx.incident(
            "reindex-failed",
            Severity::Warning,
            "database",
            table,
            format!("{stmt} failed: {err}{hint}"),
            if r.sqlstate.as_deref() == Some(SQLSTATE_LOCK_TIMEOUT) {
                BLOCKER_HINT.to_string()
            } else {
                "check the PostgreSQL log; the next run retries".to_string()
            },
        );
        inc.error = Some(err);
        p.incidents.push(inc);
    }
    p.remediations.push(action(
        ctx,
        started,
        &what,
        "database",
        table,
        "SQL",
        before,
        r.ok().then_some(after),
        r.ok(),
        r.error.clone(),
    ));
    json!({
        "table": table,
        "statement": r.statement,
        "durationMs": r.duration_ms,
        "indexesSizeBeforeBytes": r.indexes_size_before_bytes,
        "indexesSizeAfterBytes": r.indexes_size_after_bytes,
        "ok": r.ok(),
        "error": r.error,
        "sqlstate": r.sqlstate,
    })
}

#[cfg(test)]
mod tests {
    use super::super::fake::{FakePg, Harness, incident};
    use super::*;
    use std::time::Duration;

    const INDEXES: (&str, &str) = ("OPS_REINDEX_INDEXES", "Content_status_idx,devices_pkey");

    fn harness(pairs: &[(&str, &str)], dry_run: bool) -> Harness {
        Harness::new(pairs, dry_run, Duration::from_secs(60))
    }

    async fn run(h: &Harness, pg: &FakePg) -> Part {
        let mut p = Part::default();
        reindex(&h.ctx, pg, "public", &mut p).await;
        p
    }

    #[tokio::test]
    async fn an_index_with_an_invalid_leftover_is_skipped_and_the_leftover_reported_never_dropped()
    {
        let h = harness(&[INDEXES, ("OPS_DB_LOCK_TIMEOUT_S", "5")], false);
        let mut pg = FakePg::new();
        pg.leftovers = vec!["Content_status_idx_ccnew".into()];
        let p = run(&h, &pg).await;
        assert_eq!(
            pg.calls(),
            [
                "invalid_leftovers",
                "existing_indexes Content_status_idx,devices_pkey",
                "REINDEX INDEX devices_pkey lock_timeout=5",
            ]
        );
        let l =
            incident(&p, "reindex-invalid-leftover", "Content_status_idx_ccnew").expect("reported");
        assert_eq!(l.severity, Severity::Warning);
        assert!(
            l.remediation
                .contains("DROP INDEX CONCURRENTLY \"public\".\"Content_status_idx_ccnew\"")
        );
        assert!(
            p.unexamined
                .contains(&id_of("reindex-failed", "Content_status_idx"))
        );
        assert_eq!(
            p.stats["invalidLeftovers"],
            json!(["Content_status_idx_ccnew"])
        );
        assert_eq!(p.remediations.len(), 1);
        assert_eq!(h.audit().len(), 1);
    }

    #[tokio::test]
    async fn a_server_before_12_gets_no_statement_and_an_info_finding() {
        let h = harness(&[INDEXES], false);
        let mut pg = FakePg::new();
        pg.version = 110_022;
        let p = run(&h, &pg).await;
        assert!(pg.calls().is_empty(), "{:?}", pg.calls());
        let i = incident(&p, "reindex-unsupported", "server-version").expect("raised");
        assert_eq!(i.severity, Severity::Info);
        assert!(i.message.contains("110022"));
    }

    #[tokio::test]
    async fn a_failed_leftover_check_reindexes_nothing() {
        let h = harness(&[INDEXES, ("OPS_REINDEX_TABLES", "devices")], false);
        let mut pg = FakePg::new();
        pg.leftovers_fail = true;
        let p = run(&h, &pg).await;
        assert_eq!(pg.calls(), ["invalid_leftovers"]);
        for t in ["Content_status_idx", "devices_pkey", "devices"] {
            let i = incident(&p, "reindex-failed", t).expect("each configured name raised");
            assert!(i.message.contains("connection reset"), "{}", i.message);
        }
        assert!(!p.covered.contains(&"reindex-invalid-leftover"));
    }

    #[tokio::test]
    async fn a_lock_timeout_rebuild_is_reindex_failed_with_the_blocker_hint_and_new_leftovers_are_checked()
     {
        let h = harness(&[INDEXES], false);
        let mut pg = FakePg::new().failing("Content_status_idx", SQLSTATE_LOCK_TIMEOUT);
        pg.leftovers_later = vec!["Content_status_idx_ccnew".into()];
        let p = run(&h, &pg).await;
        assert_eq!(
            pg.calls(),
            [
                "invalid_leftovers",
                "existing_indexes Content_status_idx,devices_pkey",
                "REINDEX INDEX Content_status_idx lock_timeout=30",
                "REINDEX INDEX devices_pkey lock_timeout=30",
                "invalid_leftovers",
            ]
        );
        let f = incident(&p, "reindex-failed", "Content_status_idx").expect("raised");
        assert_eq!(f.remediation, BLOCKER_HINT);
        assert!(
            f.message.contains("OPS_DB_LOCK_TIMEOUT_S=30"),
            "{}",
            f.message
        );
        assert!(incident(&p, "reindex-failed", "devices_pkey").is_none());
        assert!(incident(&p, "reindex-invalid-leftover", "Content_status_idx_ccnew").is_some());
    }

    #[tokio::test]
    async fn dry_run_reindex_issues_no_statement_and_audits_each_would_be_statement() {
        let h = harness(&[INDEXES, ("OPS_REINDEX_TABLES", "devices")], true);
        let pg = FakePg::new();
        let p = run(&h, &pg).await;
        assert!(pg.statements().is_empty(), "{:?}", pg.calls());
        assert_eq!(
            pg.calls()
                .iter()
                .filter(|c| c.starts_with("index_size"))
                .count(),
            2
        );
        assert!(p.remediations.is_empty());
        let audit = h.audit();
        assert_eq!(audit.len(), 3);
        assert!(audit.iter().all(|l| l["dryRun"] == true));
        assert_eq!(
            audit[2]["statement"],
            "REINDEX TABLE CONCURRENTLY \"public\".\"devices\""
        );
    }

    #[tokio::test]
    async fn reindex_tables_follow_the_indexes_and_a_missing_table_is_reindex_failed() {
        let h = harness(&[INDEXES, ("OPS_REINDEX_TABLES", "devices,gone")], false);
        let pg = FakePg::new().missing("gone");
        let p = run(&h, &pg).await;
        assert_eq!(
            pg.statements(),
            [
                "REINDEX INDEX Content_status_idx lock_timeout=30",
                "REINDEX INDEX devices_pkey lock_timeout=30",
                "REINDEX TABLE devices lock_timeout=30",
            ]
        );
        let m = incident(&p, "reindex-failed", "gone").expect("raised");
        assert!(m.message.contains("OPS_REINDEX_TABLES"), "{}", m.message);
        assert_eq!(p.stats["reindexTables"][0]["missing"], true);
    }
}
