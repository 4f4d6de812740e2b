//! PostgreSQL maintenance for db-maintainer (agents.md 6.6.1–6.6.3): connection from a Prisma-style `DATABASE_URL`,
//! table and index existence checks, `VACUUM (ANALYZE)`, `REINDEX … CONCURRENTLY` and detection of invalid `_ccnew`
//! leftovers of interrupted rebuilds.
//!
//! * Native client only (tokio-postgres); the password stays inside [`tokio_postgres::Config`] (whose `Debug` hides
//!   it) and never reaches argv, logs or errors (agents.md 9 item 39).
//! * Catalog reads use `query_typed` (unnamed statements, one round trip), so they also work through PgBouncer in
//!   transaction mode. VACUUM and REINDEX go through `simple_query`, one statement per call, outside a transaction
//!   block (the client is in autocommit), each preceded by its own `SET lock_timeout` call.
//! * Identifiers are checked against `^[A-Za-z_][A-Za-z0-9_]*$` and double-quoted; values are never interpolated.
//! * Nothing here drops, deletes or truncates anything; an invalid `_ccnew` index is reported, never dropped.
//!
//! **TLS** (`sslmode`, agents.md 6.6.1), with libpq's meaning: `disable` connects in plain text; `prefer` (the
//! default) asks for TLS and falls back to plain text only when the server declines TLS; `require` needs TLS and fails
//! with a clear [`MaintError::Connect`](crate::maint::MaintError::Connect) when the server declines. Like libpq's `require`/`prefer` without a root
//! certificate, the server certificate is not verified (encryption without server authentication; `verify-ca` and
//! `verify-full` are rejected as unsupported when the URL is read). TLS is rustls on the aws-lc-rs provider that the
//! HTTP client already uses, through `tokio-postgres-rustls`.
//!
//! **Dead-tuple counters.** `n_dead_tup` comes from the cumulative statistics (`pg_stat_user_tables`). Since
//! PostgreSQL 15 each backend flushes its pending counters to shared memory when it goes idle, at most once per
//! second and at the latest after ~10 s (`PGSTAT_IDLE_INTERVAL`) or 60 s while busy; before 15 the stats collector
//! applies them with a ~0.5 s delay. `pg_stat_force_next_flush()` (PG 15+) only flushes the *calling* backend's own
//! pending counters, so calling it from the maintainer's connection does not make other sessions' updates visible
//! and it is therefore not called here. The "before" figure may thus lag the last few seconds of application
//! writes; the "after" figure is exact because VACUUM writes its result to the shared statistics directly. Each
//! statistics read runs in its own autocommit transaction, so the per-transaction statistics snapshot
//! (`stats_fetch_consistency = cache`) never serves a stale value. Tests call `pg_stat_force_next_flush()` on the
//! connection that churned the rows.

mod conn;
mod port;
mod reports;
mod statements;
mod tls;
mod url;

pub use conn::*;
pub use port::*;
pub use reports::*;
#[allow(unused_imports)]
pub(crate) use tls::*;
pub use url::*;

use std::time::Duration;

/// Query parameters understood only by Prisma; they are removed before the URL reaches tokio-postgres (6.6.1).
pub const PRISMA_ONLY_PARAMS: [&str; 6] = [
    "schema",
    "connection_limit",
    "pool_timeout",
    "pgbouncer",
    "statement_cache_size",
    "socket_timeout",
];

/// Bound on establishing a connection, TCP connect and authentication together (6.6.1): 5 s.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Extra time the client waits beyond the server-side `statement_timeout` before it cancels a statement itself
/// (protects against a silent network): 30 s.
pub const CLIENT_TIMEOUT_MARGIN: Duration = Duration::from_secs(30);

/// SQLSTATE of "canceling statement due to lock timeout".
pub const SQLSTATE_LOCK_TIMEOUT: &str = "55P03";
/// SQLSTATE of "canceling statement due to statement timeout".
pub const SQLSTATE_STATEMENT_TIMEOUT: &str = "57014";

/// Catalog query of 6.6.2 step 1 (tables and partitioned tables of a schema among the given names).
pub const EXISTING_TABLES_SQL: &str = "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = $1 AND c.relkind IN ('r','p') AND c.relname = ANY($2)";
/// Index existence check of 6.6.3 (`relkind = 'i'`).
pub const EXISTING_INDEXES_SQL: &str = "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = $1 AND c.relkind = 'i' AND c.relname = ANY($2)";
/// Invalid indexes of a schema whose name contains `_ccnew` (leftovers of an interrupted `REINDEX CONCURRENTLY`).
pub const INVALID_LEFTOVERS_SQL: &str = "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = $1 AND NOT i.indisvalid AND strpos(c.relname, '_ccnew') > 0 ORDER BY c.relname";
pub(crate) const DEAD_TUPLES_SQL: &str =
    "SELECT n_dead_tup FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = $2";
pub(crate) const TABLE_SIZE_SQL: &str = "SELECT pg_total_relation_size(c.oid), pg_indexes_size(c.oid) \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r','p')";
pub(crate) const INDEX_STATS_SQL: &str = "SELECT pg_relation_size(c.oid), t.relname FROM pg_class c \
     JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_index i ON i.indexrelid = c.oid \
     JOIN pg_class t ON t.oid = i.indrelid WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'i'";
pub(crate) const PGSTATTUPLE_SCHEMA_SQL: &str = "SELECT n.nspname FROM pg_extension e \
     JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pgstattuple'";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prisma_params_are_stripped_and_schema_taken() {
        let t = prepare_url(
            "postgresql://ops:s3cretpw@db.internal:6543/vizora?schema=tenant_a&connection_limit=5&pool_timeout=10\
             &pgbouncer=true&statement_cache_size=0&socket_timeout=3&sslmode=disable&application_name=x",
        )
        .unwrap();
        assert_eq!(t.schema, "tenant_a");
        assert_eq!(t.ssl_mode, PgSslMode::Disable);
        assert_eq!(t.stripped_params.len(), 6);
        assert!(!t.url_redacted.contains("s3cretpw"), "{}", t.url_redacted);
        assert!(!format!("{t:?}").contains("s3cretpw"));
        assert_eq!(t.config().get_dbname(), Some("vizora"));
        assert_eq!(t.config().get_ports(), &[6543]);
        assert_eq!(t.config().get_application_name(), Some("x"));
        assert_eq!(t.config().get_connect_timeout(), Some(&CONNECT_TIMEOUT));
    }

    #[test]
    fn defaults_and_rejections() {
        let t = prepare_url("postgres://u@h/d").unwrap();
        assert_eq!(
            (t.schema.as_str(), t.ssl_mode),
            ("public", PgSslMode::Prefer)
        );
        assert_eq!(
            prepare_url("postgres://u@h/d?sslmode=require")
                .unwrap()
                .ssl_mode,
            PgSslMode::Require
        );
        for bad in [
            "mysql://u:pw@h/d",
            "postgres://u:pw@h/d?sslmode=verify-full",
            "postgres://u:pw@h/d?schema=a-b",
            "postgres://u:pw@h/d?bogus_option=1",
        ] {
            let e = prepare_url(bad).unwrap_err().to_string();
            assert!(!e.contains(":pw@"), "{e}");
        }
        assert_eq!(
            prepare_url("postgres://u@h/d?schema=%41bc").unwrap().schema,
            "Abc"
        );
    }

    #[test]
    fn leftovers_match_their_index_only() {
        let l = vec![
            "Content_status_idx_ccnew".to_string(),
            "x_ccnew1".to_string(),
        ];
        assert_eq!(
            leftover_for("Content_status_idx", &l),
            Some("Content_status_idx_ccnew")
        );
        assert_eq!(leftover_for("x", &l), Some("x_ccnew1"));
        assert_eq!(leftover_for("Content_status", &l), None);
        let long = "a".repeat(70);
        let trunc = vec![format!("{}_ccnew", &long[..57])];
        assert_eq!(trunc[0].len(), 63);
        assert!(leftover_for(&long, &trunc).is_some());
    }
}
