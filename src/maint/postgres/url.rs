//! The connection settings: a Prisma-style `DATABASE_URL` made into a [`PgTarget`] (agents.md 6.6.1).

use super::*;
use crate::maint::{MaintError, validate_identifier};
use crate::redact::redact_str;
use serde::Serialize;
use std::str::FromStr;

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
    pub(crate) config: tokio_postgres::Config,
}

impl PgTarget {
    /// The tokio-postgres configuration (connect timeout 5 s, `application_name` defaulted to `vizora-ops`).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }
}

pub(crate) fn config_err(message: impl Into<String>) -> MaintError {
    MaintError::Config {
        setting: "DATABASE_URL".into(),
        message: redact_str(&message.into()),
    }
}

pub(crate) fn percent_decode(s: &str) -> String {
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
