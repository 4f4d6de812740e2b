//! Maintenance clients for the db-maintainer agent (agents.md 6.6): PostgreSQL VACUUM/REINDEX ([`postgres`]),
//! Redis memory report ([`redis`]), log retention ([`logs`]), S3/MinIO bucket usage ([`s3`]) and backup freshness
//! ([`backup`]).
//!
//! Each module talks to its service through a native client (tokio-postgres, redis, object_store, std files), never
//! through `psql`, `redis-cli`, `aws` or a shell (agents.md 9, items 39 and 45). The modules return typed reports and
//! typed errors ([`MaintError`]); turning them into incidents, audit lines and exit codes is the agent's job, not
//! theirs. What they deliberately never do (agents.md 1.6): SQL `DELETE`/`TRUNCATE`/`DROP`, Redis
//! `DEL`/`UNLINK`/`FLUSH*`/`CONFIG SET`, emptying or deleting a log, deleting an archive. Every error message that could
//! contain a connection string passes through [`crate::redact::redact_str`]; passwords are never put in messages.

pub mod backup;
pub mod logs;
pub mod postgres;
pub mod redis;
pub mod s3;

use regex::Regex;
use std::sync::LazyLock;

/// An error of a maintenance client. Every message is already redacted (agents.md 5.9) and safe to put in logs,
/// incidents and audit lines.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MaintError {
    /// A setting is malformed (URL, identifier, glob, location). A malformed setting is a failure, never "unset"
    /// (agents.md 9 item 43).
    #[error("invalid setting {setting}: {message}")]
    Config {
        /// The setting or value kind (`DATABASE_URL`, `identifier`, `OPS_BACKUP_PATTERN`, …).
        setting: String,
        /// What is wrong (redacted).
        message: String,
    },
    /// Could not connect or authenticate.
    #[error("connection to {target} failed: {message}")]
    Connect {
        /// The redacted target (URL without password, or host).
        target: String,
        /// The cause (redacted).
        message: String,
    },
    /// A bounded wait ran out.
    #[error("timed out after {after_ms} ms: {what}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// The bound in milliseconds.
        after_ms: u64,
    },
    /// A SQL statement failed.
    #[error("{statement}: {message}")]
    Query {
        /// The statement text (identifiers only, never values).
        statement: String,
        /// SQLSTATE code when the server reported one (`55P03` lock timeout, `57014` statement timeout, …).
        sqlstate: Option<String>,
        /// The server's or client's message (redacted).
        message: String,
    },
    /// A Redis command failed.
    #[error("redis {command}: {message}")]
    Redis {
        /// The command (`INFO memory`, `DBSIZE`, `SCAN`, …).
        command: String,
        /// The cause (redacted).
        message: String,
    },
    /// An S3 request failed.
    #[error("s3 {operation}{}: {message}", bucket.as_deref().map(|b| format!(" bucket {b}")).unwrap_or_default())]
    S3 {
        /// The operation (`ListObjectsV2`, `ListBuckets`, …).
        operation: String,
        /// The bucket, when the request had one.
        bucket: Option<String>,
        /// Why it failed.
        kind: S3ErrorKind,
        /// The cause (redacted).
        message: String,
    },
    /// A file-system operation failed.
    #[error("{path}: {message}")]
    Io {
        /// The path (as given or relative to the log dir).
        path: String,
        /// The cause.
        message: String,
    },
}

/// Classification of S3 failures, so the agent can phrase incidents (`s3-unobservable`, `backup-unverifiable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum S3ErrorKind {
    /// The bucket does not exist (`NoSuchBucket`, HTTP 404).
    BucketNotFound,
    /// Credentials rejected or access denied (HTTP 401/403).
    AccessDenied,
    /// The endpoint could not be reached (refused, DNS, TLS, timeout).
    Unreachable,
    /// Anything else (unexpected status, unparseable reply, invalid key).
    Other,
}

static IDENT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").expect("regex"));

/// Checks a configured SQL identifier (schema, table, index) against `^[A-Za-z_][A-Za-z0-9_]*$` (agents.md 6.6.1).
///
/// # Errors
/// [`MaintError::Config`] naming the rejected value.
pub fn validate_identifier(name: &str) -> Result<(), MaintError> {
    if IDENT.is_match(name) {
        Ok(())
    } else {
        Err(MaintError::Config {
            setting: "identifier".into(),
            message: format!("{name:?} must match ^[A-Za-z_][A-Za-z0-9_]*$"),
        })
    }
}

/// Double-quotes a validated identifier (`Content` → `"Content"`). Call [`validate_identifier`] first; the regex
/// admits no `"`, so no escaping is needed.
pub fn quote_ident(name: &str) -> String {
    format!("\"{name}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_validated_and_quoted() {
        for ok in ["Content", "devices", "_x1", "AuditLog_createdAt_idx"] {
            assert!(validate_identifier(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1abc", "a-b", "a\"b", "a b", "t;DROP", "é"] {
            assert!(validate_identifier(bad).is_err(), "{bad}");
        }
        assert_eq!(quote_ident("Content"), "\"Content\"");
    }
}
