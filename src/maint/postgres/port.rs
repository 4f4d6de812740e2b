//! [`PgPort`]: what db-maintainer's rules ask of PostgreSQL, implemented by [`PgConn`].

use super::*;
use crate::maint::MaintError;
use async_trait::async_trait;
use std::time::Duration;
use tokio_postgres::types::Type;

/// What db-maintainer's VACUUM and REINDEX rules ask of PostgreSQL (agents.md 6.6.2–6.6.3), so the rules run over a
/// recording fake in unit tests and over [`PgConn`] in production. The methods have [`PgConn`]'s meaning; the two
/// dry-run reads are only here.
#[async_trait]
pub trait PgPort: Send + Sync {
    /// `server_version_num` (e.g. 150018).
    fn server_version_num(&self) -> i32;
    /// Whether `REINDEX … CONCURRENTLY` is available (PostgreSQL 12+, 6.6.3).
    fn supports_reindex_concurrently(&self) -> bool {
        self.server_version_num() >= 120_000
    }
    /// `(present, missing)` of configured table names; see [`PgConn::existing_tables`].
    ///
    /// # Errors
    /// As [`PgConn::existing_tables`].
    async fn existing_tables(
        &self,
        schema: &str,
        names: &[String],
    ) -> Result<(Vec<String>, Vec<String>), MaintError>;
    /// `(present, missing)` of configured index names; see [`PgConn::existing_indexes`].
    ///
    /// # Errors
    /// As [`PgConn::existing_indexes`].
    async fn existing_indexes(
        &self,
        schema: &str,
        names: &[String],
    ) -> Result<(Vec<String>, Vec<String>), MaintError>;
    /// Invalid `_ccnew` leftovers of `schema`; see [`PgConn::invalid_leftovers`].
    ///
    /// # Errors
    /// As [`PgConn::invalid_leftovers`].
    async fn invalid_leftovers(&self, schema: &str) -> Result<Vec<String>, MaintError>;
    /// Dry-run read of a table: `(n_dead_tup, total size in bytes)`, each `None` when unreadable. The statistics
    /// read takes no lock; the size read runs under `SET lock_timeout` (`lock_timeout_s` seconds); each read is
    /// bounded by `lock_timeout_s + 10` s. Issues no maintenance statement.
    async fn table_figures(
        &self,
        schema: &str,
        table: &str,
        lock_timeout_s: u64,
    ) -> (Option<i64>, Option<i64>);
    /// Dry-run read of an index's size in bytes (`pg_relation_size`, bounded by 30 s); `None` when unreadable.
    async fn index_size(&self, schema: &str, index: &str) -> Option<i64>;
    /// `VACUUM (ANALYZE)` of one table; see [`PgConn::vacuum_table`].
    async fn vacuum_table(
        &self,
        schema: &str,
        table: &str,
        lock_timeout_s: u64,
    ) -> TableVacuumReport;
    /// `REINDEX INDEX CONCURRENTLY` of one index; see [`PgConn::reindex_index`].
    async fn reindex_index(
        &self,
        schema: &str,
        index: &str,
        lock_timeout_s: u64,
    ) -> IndexReindexReport;
    /// `REINDEX TABLE CONCURRENTLY` of one table; see [`PgConn::reindex_table`].
    async fn reindex_table(
        &self,
        schema: &str,
        table: &str,
        lock_timeout_s: u64,
    ) -> TableReindexReport;
}

/// Rows of a one-value `bigint` read, `None` on error or timeout.
pub(crate) fn first_i64(
    r: Result<Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>, tokio::time::error::Elapsed>,
) -> Option<i64> {
    match r {
        Ok(Ok(rows)) => rows.first().and_then(|r| r.get::<_, Option<i64>>(0)),
        _ => None,
    }
}

#[async_trait]
impl PgPort for PgConn {
    fn server_version_num(&self) -> i32 {
        PgConn::server_version_num(self)
    }
    fn supports_reindex_concurrently(&self) -> bool {
        PgConn::supports_reindex_concurrently(self)
    }
    async fn existing_tables(
        &self,
        schema: &str,
        names: &[String],
    ) -> Result<(Vec<String>, Vec<String>), MaintError> {
        PgConn::existing_tables(self, schema, names).await
    }
    async fn existing_indexes(
        &self,
        schema: &str,
        names: &[String],
    ) -> Result<(Vec<String>, Vec<String>), MaintError> {
        PgConn::existing_indexes(self, schema, names).await
    }
    async fn invalid_leftovers(&self, schema: &str) -> Result<Vec<String>, MaintError> {
        PgConn::invalid_leftovers(self, schema).await
    }
    async fn table_figures(
        &self,
        schema: &str,
        table: &str,
        lock_timeout_s: u64,
    ) -> (Option<i64>, Option<i64>) {
        let c = &self.client;
        let bound = Duration::from_secs(lock_timeout_s + 10);
        let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 2] =
            [(&schema, Type::TEXT), (&table, Type::TEXT)];
        let dead = first_i64(
            tokio::time::timeout(
                bound,
                c.query_typed(
                    "SELECT n_dead_tup FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = $2",
                    &params,
                ),
            )
            .await,
        );
        let set = format!("SET lock_timeout = '{}s'", lock_timeout_s.max(1));
        let _ = tokio::time::timeout(bound, c.simple_query(&set)).await;
        let size = first_i64(
            tokio::time::timeout(
                bound,
                c.query_typed(
                    "SELECT pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = $1 AND c.relname = $2",
                    &params,
                ),
            )
            .await,
        );
        (dead, size)
    }
    async fn index_size(&self, schema: &str, index: &str) -> Option<i64> {
        let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 2] =
            [(&schema, Type::TEXT), (&index, Type::TEXT)];
        first_i64(
            tokio::time::timeout(
                Duration::from_secs(30),
                self.client.query_typed(
                    "SELECT pg_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'i'",
                    &params,
                ),
            )
            .await,
        )
    }
    async fn vacuum_table(
        &self,
        schema: &str,
        table: &str,
        lock_timeout_s: u64,
    ) -> TableVacuumReport {
        PgConn::vacuum_table(self, schema, table, lock_timeout_s).await
    }
    async fn reindex_index(
        &self,
        schema: &str,
        index: &str,
        lock_timeout_s: u64,
    ) -> IndexReindexReport {
        PgConn::reindex_index(self, schema, index, lock_timeout_s).await
    }
    async fn reindex_table(
        &self,
        schema: &str,
        table: &str,
        lock_timeout_s: u64,
    ) -> TableReindexReport {
        PgConn::reindex_table(self, schema, table, lock_timeout_s).await
    }
}
