//! Backup verification for db-maintainer (agents.md 6.6.7): parse a configured location, find the newest backup
//! (by modification time) in a directory or under an S3 prefix, and judge its freshness.
//!
//! A malformed location is an error, never "unset" (agents.md 9 item 43); a backup of size 0 counts as missing
//! (item 40). Location strings in messages are redacted. Read-only.

use super::MaintError;
use super::s3::{S3Settings, UsageLimits, list_objects};
// Parsing a location is configuration validation (config check reports it), so it lives in `config`; re-exported
// because the agent parses the same values (design/README.md §3).
pub use crate::config::backup_location::{BackupLocation, parse_location};
use crate::redact::redact_str;
use chrono::{DateTime, Utc};
use globset::{Glob, GlobMatcher};
use regex::Regex;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

static SCHEMELESS_BUCKET: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9.\-_/]+$").expect("regex"));

/// Validates a schemeless `BACKUP_S3_BUCKET` value (`^[A-Za-z0-9.\-_/]+$`) and returns its `s3://` form.
///
/// # Errors
/// A redacted message when it does not match.
pub fn bucket_setting_to_location(raw: &str) -> Result<String, String> {
    let v = raw.trim();
    if v.starts_with("s3://") {
        return parse_location(v).map(|l| l.to_string());
    }
    if SCHEMELESS_BUCKET.is_match(v) && !v.starts_with('/') {
        Ok(format!("s3://{v}"))
    } else {
        Err(format!(
            "malformed BACKUP_S3_BUCKET {:?}: expected characters A-Za-z0-9.-_/",
            redact_str(v)
        ))
    }
}

/// The newest backup found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupObject {
    /// Absolute file path, or the S3 key.
    pub path_or_key: String,
    /// Size, bytes.
    pub size: u64,
    /// Modification time (file mtime or S3 `LastModified`).
    pub modified: DateTime<Utc>,
}

/// Result of scanning one location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupScan {
    /// The location, redacted, as displayed in incidents.
    pub location: String,
    /// The newest matching backup, if any.
    pub newest: Option<BackupObject>,
    /// Files/objects that matched the pattern.
    pub candidates: u64,
    /// True when an S3 listing hit its object or time bound (the newest may then be missing from the scan).
    pub partial: bool,
}

fn compile_pattern(pattern: Option<&str>) -> Result<Option<GlobMatcher>, MaintError> {
    match pattern.map(str::trim).filter(|p| !p.is_empty()) {
        None => Ok(None),
        Some(p) => Glob::new(p)
            .map(|g| Some(g.compile_matcher()))
            .map_err(|e| MaintError::Config {
                setting: "OPS_BACKUP_PATTERN".into(),
                message: e.to_string(),
            }),
    }
}

fn matches(m: &Option<GlobMatcher>, rel: &str) -> bool {
    match m {
        None => true,
        Some(m) => m.is_match(rel) || rel.rsplit('/').next().is_some_and(|name| m.is_match(name)),
    }
}

fn newer(candidate: &BackupObject, best: &Option<BackupObject>) -> bool {
    best.as_ref()
        .is_none_or(|b| (candidate.modified, &candidate.path_or_key) > (b.modified, &b.path_or_key))
}

fn scan_dir(
    dir: &Path,
    pattern: &Option<GlobMatcher>,
) -> Result<(Option<BackupObject>, u64), MaintError> {
    let io = |p: &Path, e: std::io::Error| MaintError::Io {
        path: redact_str(&p.display().to_string()),
        message: e.to_string(),
    };
    let mut best = None;
    let mut count = 0;
    let mut visit =
        |path: PathBuf, rel: String, meta: std::fs::Metadata| -> Result<(), MaintError> {
            if !matches(pattern, &rel) {
                return Ok(());
            }
            count += 1;
            let modified: DateTime<Utc> = meta.modified().map_err(|e| io(&path, e))?.into();
            let obj = BackupObject {
                path_or_key: path.display().to_string(),
                size: meta.len(),
                modified,
            };
            if newer(&obj, &best) {
                best = Some(obj);
            }
            Ok(())
        };
    let top = std::fs::read_dir(dir).map_err(|e| io(dir, e))?;
    for entry in top {
        let entry = entry.map_err(|e| io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta = std::fs::metadata(&path).map_err(|e| io(&path, e))?;
        if meta.is_file() {
            visit(path, name, meta)?;
        } else if meta.is_dir() {
            for sub in std::fs::read_dir(&path).map_err(|e| io(&path, e))? {
                let sub = sub.map_err(|e| io(&path, e))?;
                let sp = sub.path();
                let Ok(sm) = std::fs::metadata(&sp) else {
                    continue;
                };
                if sm.is_file() {
                    let rel = format!("{name}/{}", sub.file_name().to_string_lossy());
                    visit(sp, rel, sm)?;
                }
            }
        }
    }
    Ok((best, count))
}

/// Finds the newest backup at `location` (6.6.7): directory files at most 2 levels deep (the directory and its
/// immediate subdirectories; symlinks followed, broken ones skipped), or S3 objects under the prefix (with
/// `s3` settings, bounded by 1 000 000 objects / 10 min). `pattern` (`OPS_BACKUP_PATTERN`) is a glob matched against
/// the path relative to the location and against the bare file name; either match counts.
///
/// # Errors
/// [`MaintError::Config`] for an invalid glob; [`MaintError::Io`] when the directory (or a subdirectory) cannot be
/// read, including a missing directory; [`MaintError::S3`] when the listing fails. All are the agent's
/// `backup-unverifiable`.
pub async fn newest_backup(
    location: &BackupLocation,
    pattern: Option<&str>,
    s3: &S3Settings,
) -> Result<BackupScan, MaintError> {
    let matcher = compile_pattern(pattern)?;
    let shown = location.to_string();
    match location {
        BackupLocation::Dir(dir) => {
            let dir = dir.clone();
            let (newest, candidates) =
                tokio::task::spawn_blocking(move || scan_dir(&dir, &matcher))
                    .await
                    .map_err(|e| MaintError::Io {
                        path: shown.clone(),
                        message: e.to_string(),
                    })??;
            Ok(BackupScan {
                location: shown,
                newest,
                candidates,
                partial: false,
            })
        }
        BackupLocation::S3 { bucket, prefix } => {
            let mut best = None;
            let mut candidates = 0;
            let strip = prefix.as_ref().map(|p| format!("{p}/"));
            let (_, partial) =
                list_objects(s3, bucket, prefix.as_deref(), UsageLimits::default(), |o| {
                    let rel = strip
                        .as_deref()
                        .and_then(|p| o.key.strip_prefix(p))
                        .unwrap_or(&o.key);
                    if !matches(&matcher, rel) {
                        return;
                    }
                    candidates += 1;
                    let obj = BackupObject {
                        path_or_key: o.key.clone(),
                        size: o.size,
                        modified: o.last_modified,
                    };
                    if newer(&obj, &best) {
                        best = Some(obj);
                    }
                })
                .await?;
            Ok(BackupScan {
                location: shown,
                newest: best,
                candidates,
                partial,
            })
        }
    }
}

/// Freshness verdict of the newest backup (6.6.7). Ages in hours.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum BackupVerdict {
    /// Newest backup is non-empty and at most `max_age_hours` old (a future mtime counts as age 0).
    Fresh {
        /// Age in hours.
        age_h: f64,
    },
    /// No backup found (`backup-missing`).
    Missing,
    /// The newest backup has size 0 (`backup-missing`).
    Empty,
    /// The newest backup is older than `max_age_hours` (`backup-stale`).
    Stale {
        /// Age in hours.
        age_h: f64,
    },
}

/// Judges the newest backup: none → `Missing`; size 0 → `Empty`; age > `max_age_hours` (`OPS_BACKUP_MAX_AGE_HOURS`,
/// 24) → `Stale`; else `Fresh`.
pub fn judge(
    newest: Option<&BackupObject>,
    now: DateTime<Utc>,
    max_age_hours: u64,
) -> BackupVerdict {
    let Some(b) = newest else {
        return BackupVerdict::Missing;
    };
    if b.size == 0 {
        return BackupVerdict::Empty;
    }
    let age_h = ((now - b.modified).num_milliseconds().max(0) as f64) / 3_600_000.0;
    if age_h > max_age_hours as f64 {
        BackupVerdict::Stale { age_h }
    } else {
        BackupVerdict::Fresh { age_h }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_or_fail_loudly() {
        assert_eq!(
            parse_location("s3://vizora-backups/db/daily/").unwrap(),
            BackupLocation::S3 {
                bucket: "vizora-backups".into(),
                prefix: Some("db/daily".into())
            }
        );
        assert_eq!(
            parse_location("s3://b").unwrap(),
            BackupLocation::S3 {
                bucket: "b".into(),
                prefix: None
            }
        );
        assert_eq!(
            parse_location("/var/backups").unwrap(),
            BackupLocation::Dir("/var/backups".into())
        );
        for bad in [
            "backups",
            "./x",
            "s3://",
            "s3://b c",
            "s3://user:hunter22@b/x",
            "https://b/x",
            "",
        ] {
            let e = parse_location(bad).unwrap_err();
            assert!(!e.contains("hunter22"), "{e}");
        }
        assert_eq!(
            bucket_setting_to_location("my-bucket/db").unwrap(),
            "s3://my-bucket/db"
        );
        assert!(bucket_setting_to_location("my bucket").is_err());
    }

    #[test]
    fn verdicts() {
        let now: DateTime<Utc> = "2026-08-22T03:00:00Z".parse().unwrap();
        let obj = |h: i64, size| BackupObject {
            path_or_key: "x".into(),
            size,
            modified: now - chrono::Duration::hours(h),
        };
        assert_eq!(judge(None, now, 24), BackupVerdict::Missing);
        assert_eq!(judge(Some(&obj(1, 0)), now, 24), BackupVerdict::Empty);
        assert_eq!(
            judge(Some(&obj(2, 10)), now, 24),
            BackupVerdict::Fresh { age_h: 2.0 }
        );
        assert_eq!(
            judge(Some(&obj(25, 10)), now, 24),
            BackupVerdict::Stale { age_h: 25.0 }
        );
        assert_eq!(
            judge(Some(&obj(-3, 10)), now, 24),
            BackupVerdict::Fresh { age_h: 0.0 }
        );
    }
}
