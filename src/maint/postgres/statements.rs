//! VACUUM (ANALYZE) and REINDEX … CONCURRENTLY (6.6.2, 6.6.3), one statement per call, each after its own
//! `SET lock_timeout`.

use super::*;
use crate::maint::{MaintError, quote_ident, validate_identifier};
use std::time::Instant;
use tokio_postgres::types::Type;

impl PgConn {
    /// Runs the maintenance statement itself, timing it.
    pub(crate) async fn timed(
        &self,
        stmt: &str,
        statements: &mut Vec<String>,
    ) -> (u64, Result<(), MaintError>) {
        statements.push(stmt.to_string());
        let started = Instant::now();
        let r = self.simple(stmt).await.map(|_| ());
        (ms(started.elapsed()), r)
    }

    /// `VACUUM (ANALYZE) "<schema>"."<table>"` (6.6.2). Order: `n_dead_tup` (lock-free statistics read),
    /// `SET lock_timeout` (seconds, `OPS_DB_LOCK_TIMEOUT_S`), relation size (needs a lock, so under the timeout),
    /// the VACUUM as one `simple_query` outside a transaction, then `n_dead_tup` and size again. A conflicting lock
    /// held by another session makes it fail after about `lock_timeout_s` (twice at most: size read and VACUUM)
    /// with SQLSTATE `55P03` instead of waiting; the size is then not read again. Never returns `Err`: failures
    /// (including an invalid identifier) are in `error`.
    pub async fn vacuum_table(
        &self,
        schema: &str,
        table: &str,
        lock_timeout_s: u64,
    ) -> TableVacuumReport {
        let mut report = TableVacuumReport {
            table: table.to_string(),
            statement: String::new(),
            statements: Vec::new(),
            duration_ms: 0,
            dead_tuples_before: None,
            dead_tuples_after: None,
            size_before_bytes: None,
            size_after_bytes: None,
            error: None,
            sqlstate: None,
        };
        if let Err(e) = validate_identifier(schema).and_then(|_| validate_identifier(table)) {
            report.error = Some(e.to_string());
            return report;
        }
        let stmt = format!(
            "VACUUM (ANALYZE) {}.{}",
            quote_ident(schema),
            quote_ident(table)
        );
        report.statement = stmt.clone();
        let mut st = Vec::new();
        report.dead_tuples_before = self.dead_tuples(schema, table, &mut st).await;
        if let Err(e) = self.set_lock_timeout(lock_timeout_s, &mut st).await {
            set_error(&mut report.error, &mut report.sqlstate, e);
            report.statements = st;
            return report;
        }
        report.size_before_bytes = self
            .table_sizes(schema, table, &mut st)
            .await
            .ok()
            .and_then(|s| s.0);
        let (duration, result) = self.timed(&stmt, &mut st).await;
        report.duration_ms = duration;
        if let Err(e) = result {
            set_error(&mut report.error, &mut report.sqlstate, e);
        }
        report.dead_tuples_after = self.dead_tuples(schema, table, &mut st).await;
        if !report.is_lock_timeout() {
            report.size_after_bytes = self
                .table_sizes(schema, table, &mut st)
                .await
                .ok()
                .and_then(|s| s.0);
        }
        report.statements = st;
        report
    }

    pub(crate) async fn index_stats(
        &self,
        schema: &str,
        index: &str,
        statements: &mut Vec<String>,
    ) -> (Option<i64>, Option<String>, Option<f64>, Option<f64>) {
        statements.push(INDEX_STATS_SQL.to_string());
        let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 2] =
            [(&schema, Type::TEXT), (&index, Type::TEXT)];
        let q = self.client.query_typed(INDEX_STATS_SQL, &params);
        let (size, table) = match self.bounded(INDEX_STATS_SQL, q).await {
            Ok(rows) => match rows.first() {
                Some(r) => (r.get::<_, Option<i64>>(0), r.get::<_, Option<String>>(1)),
                None => (None, None),
            },
            Err(_) => (None, None),
        };
        let (mut density, mut frag) = (None, None);
        if size.is_some()
            && let Some(ext) = self.pgstattuple_schema().await
        {
            let sql = format!(
                "SELECT avg_leaf_density, leaf_fragmentation FROM \"{}\".pgstatindex($1::text::regclass)",
                ext.replace('"', "\"\"")
            );
            statements.push(sql.clone());
            let rel = format!("{}.{}", quote_ident(schema), quote_ident(index));
            if let Ok(rows) = self
                .bounded(&sql, self.client.query_typed(&sql, &[(&rel, Type::TEXT)]))
                .await
                && let Some(r) = rows.first()
            {
                density = r.get::<_, Option<f64>>(0).filter(|v| v.is_finite());
                frag = r.get::<_, Option<f64>>(1).filter(|v| v.is_finite());
            }
        }
        (size, table, density, frag)
    }

    /// `REINDEX INDEX CONCURRENTLY "<schema>"."<index>"` (6.6.3): `SET lock_timeout` first, then
    /// `pg_relation_size` and, when `pgstattuple` is installed, `pgstatindex` figures before and after. The caller
    /// checks the server version ([`PgConn::supports_reindex_concurrently`]), existence
    /// ([`PgConn::existing_indexes`]) and leftovers ([`leftover_for`]) first. A failed concurrent rebuild may itself
    /// leave an invalid `_ccnew` index, which the next [`PgConn::invalid_leftovers`] reports (it is never dropped
    /// here). Never returns `Err`; failures are in `error`.
    pub async fn reindex_index(
        &self,
        schema: &str,
        index: &str,
        lock_timeout_s: u64,
    ) -> IndexReindexReport {
        let mut report = IndexReindexReport {
            index: index.to_string(),
            table: None,
            statement: String::new(),
            statements: Vec::new(),
            duration_ms: 0,
            size_before_bytes: None,
            size_after_bytes: None,
            avg_leaf_density_before: None,
            avg_leaf_density_after: None,
            leaf_fragmentation_before: None,
            leaf_fragmentation_after: None,
            error: None,
            sqlstate: None,
        };
        if let Err(e) = validate_identifier(schema).and_then(|_| validate_identifier(index)) {
            report.error = Some(e.to_string());
            return report;
        }
        let stmt = format!(
            "REINDEX INDEX CONCURRENTLY {}.{}",
            quote_ident(schema),
            quote_ident(index)
        );
        report.statement = stmt.clone();
        let mut st = Vec::new();
        if let Err(e) = self.set_lock_timeout(lock_timeout_s, &mut st).await {
            set_error(&mut report.error, &mut report.sqlstate, e);
            report.statements = st;
            return report;
        }
        let (size, table, density, frag) = self.index_stats(schema, index, &mut st).await;
        (report.size_before_bytes, report.table) = (size, table);
        (
            report.avg_leaf_density_before,
            report.leaf_fragmentation_before,
        ) = (density, frag);
        let (duration, result) = self.timed(&stmt, &mut st).await;
        report.duration_ms = duration;
        if let Err(e) = result {
            set_error(&mut report.error, &mut report.sqlstate, e);
        }
        if report.sqlstate.as_deref() != Some(SQLSTATE_LOCK_TIMEOUT) {
            let (size, table, density, frag) = self.index_stats(schema, index, &mut st).await;
            report.size_after_bytes = size;
            if report.table.is_none() {
                report.table = table;
            }
            (
                report.avg_leaf_density_after,
                report.leaf_fragmentation_after,
            ) = (density, frag);
        }
        report.statements = st;
        report
    }

    /// `REINDEX TABLE CONCURRENTLY "<schema>"."<table>"` (6.6.3, `OPS_REINDEX_TABLES`): `SET lock_timeout` first,
    /// `pg_indexes_size` before and after. Never returns `Err`; failures are in `error`.
    pub async fn reindex_table(
        &self,
        schema: &str,
        table: &str,
        lock_timeout_s: u64,
    ) -> TableReindexReport {
        let mut report = TableReindexReport {
            table: table.to_string(),
            statement: String::new(),
            statements: Vec::new(),
            duration_ms: 0,
            indexes_size_before_bytes: None,
            indexes_size_after_bytes: None,
            error: None,
            sqlstate: None,
        };
        if let Err(e) = validate_identifier(schema).and_then(|_| validate_identifier(table)) {
            report.error = Some(e.to_string());
            return report;
        }
        let stmt = format!(
            "REINDEX TABLE CONCURRENTLY {}.{}",
            quote_ident(schema),
            quote_ident(table)
        );
        report.statement = stmt.clone();
        let mut st = Vec::new();
        if let Err(e) = self.set_lock_timeout(lock_timeout_s, &mut st).await {
            set_error(&mut report.error, &mut report.sqlstate, e);
            report.statements = st;
            return report;
        }
        report.indexes_size_before_bytes = self
            .table_sizes(schema, table, &mut st)
            .await
            .ok()
            .and_then(|s| s.1);
        let (duration, result) = self.timed(&stmt, &mut st).await;
        report.duration_ms = duration;
        if let Err(e) = result {
            set_error(&mut report.error, &mut report.sqlstate, e);
        }
        if report.sqlstate.as_deref() != Some(SQLSTATE_LOCK_TIMEOUT) {
            report.indexes_size_after_bytes = self
                .table_sizes(schema, table, &mut st)
                .await
                .ok()
                .and_then(|s| s.1);
        }
        report.statements = st;
        report
    }
}

pub(crate) fn set_error(error: &mut Option<String>, sqlstate: &mut Option<String>, e: MaintError) {
    if let MaintError::Query {
        sqlstate: s,
        message,
        ..
    } = &e
    {
        *sqlstate = s.clone();
        *error = Some(message.clone());
    } else {
        *error = Some(e.to_string());
    }
}
