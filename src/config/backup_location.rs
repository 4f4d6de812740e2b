//! Backup locations (agents.md 6.6.7, 8.6): `OPS_BACKUP_LOCATIONS`, `BACKUP_DIR` and `BACKUP_S3_BUCKET` values parsed
//! into [`BackupLocation`]. Here, in `config`, because `config check` validates them and `config` imports nothing
//! but `model`, `redact` and `logging` (design/README.md §3); `maint::backup` re-exports them for db-maintainer.

use crate::redact::redact_str;
use regex::Regex;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::LazyLock;

static S3_LOCATION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^s3://[A-Za-z0-9.\-_]+(/[A-Za-z0-9.\-_/]*)?$").expect("regex"));

/// A validated backup location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum BackupLocation {
    /// `s3://bucket[/prefix]`.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix without leading/trailing slashes (`None` = whole bucket).
        prefix: Option<String>,
    },
    /// An absolute directory.
    Dir(PathBuf),
}

impl std::fmt::Display for BackupLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackupLocation::S3 {
                bucket,
                prefix: Some(p),
            } => write!(f, "s3://{bucket}/{p}"),
            BackupLocation::S3 {
                bucket,
                prefix: None,
            } => write!(f, "s3://{bucket}"),
            BackupLocation::Dir(d) => write!(f, "{}", redact_str(&d.display().to_string())),
        }
    }
}

/// Parses one entry of `OPS_BACKUP_LOCATIONS` (or `BACKUP_DIR`, or `BACKUP_S3_BUCKET` with `s3://` added):
/// `s3://` values must match `^s3://[A-Za-z0-9.\-_]+(/[A-Za-z0-9.\-_/]*)?$`; anything else must be an absolute
/// directory.
///
/// # Errors
/// A redacted message naming the value and the expected forms (the agent's `backup-unverifiable`).
pub fn parse_location(raw: &str) -> Result<BackupLocation, String> {
    let v = raw.trim();
    let shown = redact_str(v);
    if v.is_empty() {
        return Err("empty backup location".into());
    }
    if v.to_ascii_lowercase().starts_with("s3://") {
        if !S3_LOCATION.is_match(v) {
            return Err(format!(
                "malformed backup location {shown:?}: expected s3://bucket[/prefix] with characters A-Za-z0-9.-_/"
            ));
        }
        let rest = &v["s3://".len()..];
        let (bucket, prefix) = match rest.split_once('/') {
            Some((b, p)) => (b, p.trim_matches('/')),
            None => (rest, ""),
        };
        return Ok(BackupLocation::S3 {
            bucket: bucket.to_string(),
            prefix: (!prefix.is_empty()).then(|| prefix.to_string()),
        });
    }
    if v.starts_with('/') {
        return Ok(BackupLocation::Dir(PathBuf::from(v)));
    }
    if v.contains("://") {
        return Err(format!(
            "malformed backup location {shown:?}: only s3:// URLs and absolute directories are supported"
        ));
    }
    Err(format!(
        "malformed backup location {shown:?}: directories must be absolute (or use s3://bucket[/prefix])"
    ))
}
