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
//! with a clear [`MaintError::Connect`] when the server declines. Like libpq's `require`/`prefer` without a root
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

use super::{MaintError, quote_ident, validate_identifier};
use crate::redact::redact_str;
use async_trait::async_trait;
use serde::Serialize;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};
use tokio_postgres_rustls::MakeRustlsConnect;

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
const DEAD_TUPLES_SQL: &str =
    "SELECT n_dead_tup FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = $2";
const TABLE_SIZE_SQL: &str = "SELECT pg_total_relation_size(c.oid), pg_indexes_size(c.oid) \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r','p')";
const INDEX_STATS_SQL: &str = "SELECT pg_relation_size(c.oid), t.relname FROM pg_class c \
     JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_index i ON i.indexrelid = c.oid \
     JOIN pg_class t ON t.oid = i.indrelid WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'i'";
const PGSTATTUPLE_SCHEMA_SQL: &str = "SELECT n.nspname FROM pg_extension e \
     JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pgstattuple'";

/// The `sslmode` of the URL (default `prefer`, as libpq).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PgSslMode {
    /// Plain text.
    Disable,
    /// TLS if the server offers it, else plain text (the libpq default).
    Prefer,
    /// TLS required; [`connect`] fails when the server declines it.
    Require,
}

/// A parsed `DATABASE_URL`: the tokio-postgres configuration (password inside, hidden from `Debug`), the schema that
/// qualifies identifiers and what was removed. Safe to log: it holds the URL only in redacted form.
#[derive(Debug, Clone)]
pub struct PgTarget {
    /// The URL with its password masked (agents.md 5.9), for messages and reports.
    pub url_redacted: String,
    /// The schema from Prisma's `schema` parameter, else `public`; validated as an identifier.
    pub schema: String,
    /// The requested `sslmode`.
    pub ssl_mode: PgSslMode,
    /// Names of the Prisma-only parameters that were removed.
    pub stripped_params: Vec<String>,
    config: tokio_postgres::Config,
}

impl PgTarget {
    /// The tokio-postgres configuration (connect timeout 5 s, `application_name` defaulted to `vizora-ops`).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }
}

fn config_err(message: impl Into<String>) -> MaintError {
    MaintError::Config {
        setting: "DATABASE_URL".into(),
        message: redact_str(&message.into()),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (
                (b[i + 1] as char).to_digit(16),
                (b[i + 2] as char).to_digit(16),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a Prisma-style `DATABASE_URL` (`postgres://` or `postgresql://`) for tokio-postgres (6.6.1): removes
/// [`PRISMA_ONLY_PARAMS`], takes `schema` (default `public`), reads `sslmode` (`disable`, `prefer`, `require`;
/// default `prefer`), sets the 5 s connect timeout and a default `application_name`.
///
/// # Errors
/// [`MaintError::Config`] (redacted) when the URL is not a PostgreSQL URL, has no host, has an unknown `sslmode`
/// (`verify-ca`, `verify-full` and `allow` are rejected), an invalid schema identifier or a parameter tokio-postgres
/// rejects.
pub fn prepare_url(database_url: &str) -> Result<PgTarget, MaintError> {
    let raw = database_url.trim();
    if !(raw.starts_with("postgres://") || raw.starts_with("postgresql://")) {
        return Err(config_err("expected a postgres:// or postgresql:// URL"));
    }
    let raw = raw.split('#').next().unwrap_or(raw);
    let (base, query) = match raw.split_once('?') {
        Some((b, q)) => (b, q),
        None => (raw, ""),
    };
    let mut kept = Vec::new();
    let mut stripped = Vec::new();
    let mut schema = "public".to_string();
    let mut ssl_mode = PgSslMode::Prefer;
    for seg in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = seg.split_once('=').unwrap_or((seg, ""));
        let key = percent_decode(k);
        let value = percent_decode(v);
        if key == "sslmode" {
            ssl_mode = match value.as_str() {
                "disable" => PgSslMode::Disable,
                "prefer" => PgSslMode::Prefer,
                "require" => PgSslMode::Require,
                other => {
                    return Err(config_err(format!(
                        "sslmode={other} is not supported (supported: disable, prefer, require)"
                    )));
                }
            };
        } else if PRISMA_ONLY_PARAMS.contains(&key.as_str()) {
            if key == "schema" && !value.is_empty() {
                schema = value;
            }
            stripped.push(key);
        } else {
            kept.push(seg);
        }
    }
    validate_identifier(&schema).map_err(|_| {
        config_err(format!(
            "schema {schema:?} must match ^[A-Za-z_][A-Za-z0-9_]*$"
        ))
    })?;
    let cleaned = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config =
        tokio_postgres::Config::from_str(&cleaned).map_err(|e| config_err(error_chain(&e)))?;
    if config.get_hosts().is_empty() {
        return Err(config_err("no host in the URL"));
    }
    config.connect_timeout(CONNECT_TIMEOUT);
    config.ssl_mode(match ssl_mode {
        PgSslMode::Disable => tokio_postgres::config::SslMode::Disable,
        PgSslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        PgSslMode::Require => tokio_postgres::config::SslMode::Require,
    });
    if config.get_application_name().is_none() {
        config.application_name("vizora-ops db-maintainer");
    }
    Ok(PgTarget {
        url_redacted: redact_str(raw),
        schema,
        ssl_mode,
        stripped_params: stripped,
        config,
    })
}

/// Opens a session over `tls` (`NoTls` or the rustls connector) and drives its connection on a task.
async fn open<T>(
    config: &tokio_postgres::Config,
    tls: T,
) -> Result<(Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>,
    T::Stream: Send + 'static,
{
    let (client, connection) = config.connect(tls).await?;
    Ok((client, tokio::spawn(async move { drop(connection.await) })))
}

/// The TLS connector of `sslmode=prefer`/`require`: rustls (aws-lc-rs provider, TLS 1.2 and 1.3) that checks the
/// handshake signatures but, like libpq's `require` without a root certificate, not the server certificate's chain or
/// name.
fn tls_connector() -> MakeRustlsConnect {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("the aws-lc-rs provider supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
        .with_no_client_auth();
    MakeRustlsConnect::new(config)
}

/// Server-certificate "verifier" of libpq's `sslmode=require`: any certificate is accepted, the handshake signatures
/// are verified with the provider's algorithms (so the session is encrypted to the holder of the presented key).
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
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
fn describe(e: &tokio_postgres::Error) -> (String, Option<String>) {
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

fn query_err(statement: &str, e: &tokio_postgres::Error) -> MaintError {
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
    client: Client,
    target: PgTarget,
    server_version_num: i32,
    statement_timeout_s: u64,
    setup_statements: Vec<String>,
    pgstattuple_schema: OnceLock<Option<String>>,
    /// The TLS connector of the session (`None` for `sslmode=disable`), reused for cancel requests.
    tls: Option<MakeRustlsConnect>,
    _task: tokio::task::JoinHandle<()>,
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

fn first_value(msgs: &[SimpleQueryMessage]) -> Option<String> {
    msgs.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    })
}

/// Result of one `VACUUM (ANALYZE)` (6.6.2). Sizes in bytes (`pg_total_relation_size`: heap, TOAST and indexes),
/// duration in milliseconds; statistics fields are `None` when they could not be read.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableVacuumReport {
    /// Physical table name.
    pub table: String,
    /// The VACUUM statement (for the audit line's `statement`).
    pub statement: String,
    /// Every statement sent for this table, in order (SET, catalog reads, VACUUM).
    pub statements: Vec<String>,
    /// Duration of the VACUUM statement alone, ms.
    pub duration_ms: u64,
    /// `n_dead_tup` before (may lag other sessions' last writes by a few seconds; module docs).
    pub dead_tuples_before: Option<i64>,
    /// `n_dead_tup` after.
    pub dead_tuples_after: Option<i64>,
    /// Total relation size before, bytes.
    pub size_before_bytes: Option<i64>,
    /// Total relation size after, bytes.
    pub size_after_bytes: Option<i64>,
    /// Redacted error when the VACUUM failed (`None` on success).
    pub error: Option<String>,
    /// SQLSTATE of the failure (`55P03` = lock timeout).
    pub sqlstate: Option<String>,
}

impl TableVacuumReport {
    /// Whether the VACUUM succeeded.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
    /// Whether it failed because the lock was not obtained within `lock_timeout`.
    pub fn is_lock_timeout(&self) -> bool {
        self.sqlstate.as_deref() == Some(SQLSTATE_LOCK_TIMEOUT)
    }
}

/// Result of one `REINDEX INDEX CONCURRENTLY` (6.6.3). Sizes in bytes (`pg_relation_size` of the index); the
/// `pgstatindex` figures (percent) are present only with the `pgstattuple` extension and a B-tree index.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexReindexReport {
    /// Index name.
    pub index: String,
    /// The table the index belongs to, when known.
    pub table: Option<String>,
    /// The REINDEX statement (for the audit line's `statement`).
    pub statement: String,
    /// Every statement sent for this index, in order.
    pub statements: Vec<String>,
    /// Duration of the REINDEX statement, ms.
    pub duration_ms: u64,
    /// Index size before, bytes.
    pub size_before_bytes: Option<i64>,
    /// Index size after, bytes.
    pub size_after_bytes: Option<i64>,
    /// `pgstatindex.avg_leaf_density` before, percent.
    pub avg_leaf_density_before: Option<f64>,
    /// `pgstatindex.avg_leaf_density` after, percent.
    pub avg_leaf_density_after: Option<f64>,
    /// `pgstatindex.leaf_fragmentation` before, percent.
    pub leaf_fragmentation_before: Option<f64>,
    /// `pgstatindex.leaf_fragmentation` after, percent.
    pub leaf_fragmentation_after: Option<f64>,
    /// Redacted error when the REINDEX failed.
    pub error: Option<String>,
    /// SQLSTATE of the failure.
    pub sqlstate: Option<String>,
}

impl IndexReindexReport {
    /// Whether the REINDEX succeeded.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Result of one `REINDEX TABLE CONCURRENTLY` (6.6.3, `OPS_REINDEX_TABLES`). Sizes in bytes (`pg_indexes_size`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableReindexReport {
    /// Physical table name.
    pub table: String,
    /// The REINDEX statement.
    pub statement: String,
    /// Every statement sent, in order.
    pub statements: Vec<String>,
    /// Duration of the REINDEX statement, ms.
    pub duration_ms: u64,
    /// Summed size of the table's indexes before, bytes.
    pub indexes_size_before_bytes: Option<i64>,
    /// Summed size of the table's indexes after, bytes.
    pub indexes_size_after_bytes: Option<i64>,
    /// Redacted error when the REINDEX failed.
    pub error: Option<String>,
    /// SQLSTATE of the failure.
    pub sqlstate: Option<String>,
}

impl TableReindexReport {
    /// Whether the REINDEX succeeded.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Finds the invalid `_ccnew` leftover that belongs to `index`, if any: `<index>_ccnew`, `<index>_ccnew<N>`, or the
/// 63-byte truncated form PostgreSQL generates for long names.
pub fn leftover_for<'a>(index: &str, leftovers: &'a [String]) -> Option<&'a str> {
    leftovers.iter().map(String::as_str).find(|l| {
        let Some(pos) = l.rfind("_ccnew") else {
            return false;
        };
        let (base, suffix) = (&l[..pos], &l[pos + "_ccnew".len()..]);
        if !suffix.chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
        base == index || (l.len() == 63 && !base.is_empty() && index.starts_with(base))
    })
}

/// Splits `names` (in their order) into those present in the catalog result and those missing.
fn split_present(names: &[String], found: &[String]) -> (Vec<String>, Vec<String>) {
    let mut present = Vec::new();
    let mut missing = Vec::new();
    for n in names {
        if found.iter().any(|f| f == n) {
            present.push(n.clone());
        } else {
            missing.push(n.clone());
        }
    }
    (present, missing)
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
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

    fn client_timeout(&self) -> Duration {
        Duration::from_secs(self.statement_timeout_s.max(1)) + CLIENT_TIMEOUT_MARGIN
    }

    async fn bounded<T, F>(&self, statement: &str, fut: F) -> Result<T, MaintError>
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

    async fn simple(&self, statement: &str) -> Result<Vec<SimpleQueryMessage>, MaintError> {
        self.bounded(statement, self.client.simple_query(statement))
            .await
    }

    async fn names_query(
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

    async fn set_lock_timeout(
        &self,
        lock_timeout_s: u64,
        statements: &mut Vec<String>,
    ) -> Result<(), MaintError> {
        let set = format!("SET lock_timeout = '{}s'", lock_timeout_s.max(1));
        statements.push(set.clone());
        self.simple(&set).await.map(|_| ())
    }

    async fn dead_tuples(
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
    async fn table_sizes(
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

    /// Runs the maintenance statement itself, timing it.
    async fn timed(
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

    async fn index_stats(
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

fn set_error(error: &mut Option<String>, sqlstate: &mut Option<String>, e: MaintError) {
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
fn first_i64(
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
