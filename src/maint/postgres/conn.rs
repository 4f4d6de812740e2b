//! The open connection [`PgConn`], its error descriptions and its catalog and statistics reads.

use super::*;
use crate::maint::{MaintError, validate_identifier};
use crate::redact::redact_str;
use std::sync::OnceLock;
use std::time::Duration;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};
use tokio_postgres_rustls::MakeRustlsConnect;

pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = c.source();
    }
    s
}

/// A readable, redacted message and the SQLSTATE of a tokio-postgres error.
pub(crate) fn describe(e: &tokio_postgres::Error) -> (String, Option<String>) {
    if let Some(db) = e.as_db_error() {
        let mut m = format!("{}: {}", db.severity(), db.message());
        if let Some(h) = db.hint() {
            m.push_str(&format!(" (hint: {h})"));
        }
        (redact_str(&m), Some(db.code().code().to_string()))
    } else {
        (
            redact_str(&error_chain(e)),
            e.code().map(|c| c.code().to_string()),
        )
    }
}

pub(crate) fn query_err(statement: &str, e: &tokio_postgres::Error) -> MaintError {
    let (message, sqlstate) = describe(e);
    MaintError::Query {
        statement: statement.to_string(),
        sqlstate,
        message,
    }
}

/// An open maintenance connection. Dropping it drops the client, after which the background connection task sends
/// `Terminate` and ends on its own.
pub struct PgConn {
    pub(crate) client: Client,
    pub(crate) target: PgTarget,
    pub(crate) server_version_num: i32,
    pub(crate) statement_timeout_s: u64,
    pub(crate) setup_statements: Vec<String>,
    pub(crate) pgstattuple_schema: OnceLock<Option<String>>,
    /// The TLS connector of the session (`None` for `sslmode=disable`), reused for cancel requests.
    pub(crate) tls: Option<MakeRustlsConnect>,
    pub(crate) _task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConn")
            .field("target", &self.target.url_redacted)
            .field("server_version_num", &self.server_version_num)
            .finish()
    }
}

/// Connects within [`CONNECT_TIMEOUT`], sets `statement_timeout` to `statement_timeout_s` seconds
/// (`OPS_DB_STATEMENT_TIMEOUT_S`, 1 800) and reads `server_version_num`.
///
/// # Errors
/// [`MaintError::Connect`] (redacted: refused, unknown host, authentication, unknown database, `sslmode=require` and
/// the server declines TLS, TLS handshake failure…); [`MaintError::Timeout`] after 5 s; [`MaintError::Query`] if the
/// session setup fails.
pub async fn connect(target: &PgTarget, statement_timeout_s: u64) -> Result<PgConn, MaintError> {
    let tls = (target.ssl_mode != PgSslMode::Disable).then(tls_connector);
    let connected = match &tls {
        None => tokio::time::timeout(CONNECT_TIMEOUT, open(&target.config, NoTls)).await,
        Some(tls) => tokio::time::timeout(CONNECT_TIMEOUT, open(&target.config, tls.clone())).await,
    };
    let (client, task) = match connected {
        Err(_) => {
            return Err(MaintError::Timeout {
                what: format!("connecting to {}", target.url_redacted),
                after_ms: CONNECT_TIMEOUT.as_millis() as u64,
            });
        }
        Ok(Err(e)) => {
            return Err(MaintError::Connect {
                target: target.url_redacted.clone(),
                message: describe(&e).0,
            });
        }
        Ok(Ok(pair)) => pair,
    };
    let mut conn = PgConn {
        client,
        target: target.clone(),
        server_version_num: 0,
        statement_timeout_s,
        setup_statements: Vec::new(),
        pgstattuple_schema: OnceLock::new(),
        tls,
        _task: task,
    };
    let set = format!("SET statement_timeout = '{}s'", statement_timeout_s.max(1));
    conn.simple(&set).await?;
    conn.setup_statements.push(set);
    let show = "SHOW server_version_num";
    let msgs = conn.simple(show).await?;
    conn.setup_statements.push(show.to_string());
    conn.server_version_num = first_value(&msgs)
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| MaintError::Query {
            statement: show.into(),
            sqlstate: None,
            message: "no numeric server_version_num in the reply".into(),
        })?;
    Ok(conn)
}

pub(crate) fn first_value(msgs: &[SimpleQueryMessage]) -> Option<String> {
    msgs.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    })
}

impl PgConn {
    /// The underlying client (for callers that need a read the module does not offer).
    pub fn client(&self) -> &Client {
        &self.client
    }
    /// The target this connection was opened for.
    pub fn target(&self) -> &PgTarget {
        &self.target
    }
    /// `server_version_num` (e.g. 150018); REINDEX CONCURRENTLY needs ≥ 120000.
    pub fn server_version_num(&self) -> i32 {
        self.server_version_num
    }
    /// Whether the server supports `REINDEX … CONCURRENTLY` (PostgreSQL 12+).
    pub fn supports_reindex_concurrently(&self) -> bool {
        self.server_version_num >= 120_000
    }
    /// The session setup statements sent by [`connect`].
    pub fn setup_statements(&self) -> &[String] {
        &self.setup_statements
    }

    pub(crate) fn client_timeout(&self) -> Duration {
        Duration::from_secs(self.statement_timeout_s.max(1)) + CLIENT_TIMEOUT_MARGIN
    }

    pub(crate) async fn bounded<T, F>(&self, statement: &str, fut: F) -> Result<T, MaintError>
    where
        F: std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let limit = self.client_timeout();
        match tokio::time::timeout(limit, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(query_err(statement, &e)),
            Err(_) => {
                let token = self.client.cancel_token();
                let _ = match &self.tls {
                    Some(tls) => token.cancel_query(tls.clone()).await,
                    None => token.cancel_query(NoTls).await,
                };
                Err(MaintError::Timeout {
                    what: statement.to_string(),
                    after_ms: ms(limit),
                })
            }
        }
    }

    pub(crate) async fn simple(
        &self,
        statement: &str,
    ) -> Result<Vec<SimpleQueryMessage>, MaintError> {
        self.bounded(statement, self.client.simple_query(statement))
            .await
    }

    pub(crate) async fn names_query(
        &self,
        sql: &str,
        schema: &str,
        names: &[String],
    ) -> Result<Vec<String>, MaintError> {
        let rows = self
            .bounded(
                sql,
                self.client
                    .query_typed(sql, &[(&schema, Type::TEXT), (&names, Type::TEXT_ARRAY)]),
            )
            .await?;
        Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
    }

    /// Splits configured table names into `(present, missing)` in `schema` with the catalog query of 6.6.2
    /// ([`EXISTING_TABLES_SQL`]; ordinary and partitioned tables). Names are compared exactly (physical names, case
    /// included: `Content`, not `content`).
    ///
    /// # Errors
    /// [`MaintError::Config`] for an invalid identifier; [`MaintError::Query`]/[`MaintError::Timeout`] when the query
    /// fails (the check is then "not covered").
    pub async fn existing_tables(
        &self,
        schema: &str,
        names: &[String],
    ) -> Result<(Vec<String>, Vec<String>), MaintError> {
        validate_identifier(schema)?;
        names.iter().try_for_each(|n| validate_identifier(n))?;
        let found = self.names_query(EXISTING_TABLES_SQL, schema, names).await?;
        Ok(split_present(names, &found))
    }

    /// Splits configured index names into `(present, missing)` in `schema` (`relkind = 'i'`, 6.6.3).
    ///
    /// # Errors
    /// As [`PgConn::existing_tables`].
    pub async fn existing_indexes(
        &self,
        schema: &str,
        names: &[String],
    ) -> Result<(Vec<String>, Vec<String>), MaintError> {
        validate_identifier(schema)?;
        names.iter().try_for_each(|n| validate_identifier(n))?;
        let found = self
            .names_query(EXISTING_INDEXES_SQL, schema, names)
            .await?;
        Ok(split_present(names, &found))
    }

    /// Invalid indexes (`pg_index.indisvalid = false`) of `schema` whose name contains `_ccnew` (6.6.3). They are
    /// reported, never dropped.
    ///
    /// # Errors
    /// [`MaintError::Config`] for an invalid schema; [`MaintError::Query`]/[`MaintError::Timeout`].
    pub async fn invalid_leftovers(&self, schema: &str) -> Result<Vec<String>, MaintError> {
        validate_identifier(schema)?;
        let sql = INVALID_LEFTOVERS_SQL;
        let rows = self
            .bounded(sql, self.client.query_typed(sql, &[(&schema, Type::TEXT)]))
            .await?;
        Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
    }

    /// The schema holding the `pgstattuple` extension, if it is installed in this database (cached per connection).
    pub async fn pgstattuple_schema(&self) -> Option<String> {
        if let Some(v) = self.pgstattuple_schema.get() {
            return v.clone();
        }
        let v = match self
            .bounded(
                PGSTATTUPLE_SCHEMA_SQL,
                self.client.query_typed(PGSTATTUPLE_SCHEMA_SQL, &[]),
            )
            .await
        {
            Ok(rows) => rows.first().map(|r| r.get::<_, String>(0)),
            Err(_) => None,
        };
        let _ = self.pgstattuple_schema.set(v.clone());
        v
    }

    pub(crate) async fn set_lock_timeout(
        &self,
        lock_timeout_s: u64,
        statements: &mut Vec<String>,
    ) -> Result<(), MaintError> {
        let set = format!("SET lock_timeout = '{}s'", lock_timeout_s.max(1));
        statements.push(set.clone());
        self.simple(&set).await.map(|_| ())
    }

    pub(crate) async fn dead_tuples(
        &self,
        schema: &str,
        table: &str,
        statements: &mut Vec<String>,
    ) -> Option<i64> {
        statements.push(DEAD_TUPLES_SQL.to_string());
        let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 2] =
            [(&schema, Type::TEXT), (&table, Type::TEXT)];
        let rows = self
            .bounded(
                DEAD_TUPLES_SQL,
                self.client.query_typed(DEAD_TUPLES_SQL, &params),
            )
            .await
            .ok()?;
        rows.first().and_then(|r| r.get::<_, Option<i64>>(0))
    }

    /// `(total relation size, indexes size)`; needs an ACCESS SHARE lock, so it runs under `lock_timeout`.
    pub(crate) async fn table_sizes(
        &self,
        schema: &str,
        table: &str,
        statements: &mut Vec<String>,
    ) -> Result<(Option<i64>, Option<i64>), MaintError> {
        statements.push(TABLE_SIZE_SQL.to_string());
        let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 2] =
            [(&schema, Type::TEXT), (&table, Type::TEXT)];
        let rows = self
            .bounded(
                TABLE_SIZE_SQL,
                self.client.query_typed(TABLE_SIZE_SQL, &params),
            )
            .await?;
        Ok(rows
            .first()
            .map(|r| (r.get(0), r.get(1)))
            .unwrap_or((None, None)))
    }
}
