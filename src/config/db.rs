//! db-maintainer settings (agents.md 8.7, 8.8): PostgreSQL and Redis maintenance, log rotation, and (from
//! [`super::backup`] and [`super::storage`]) backups and S3 buckets, all in one [`DbConfig`].

use super::Source;
use super::backup::{self, BackupSettings};
use super::storage::{self, S3Settings};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default of `REDIS_URL`.
pub const DEFAULT_REDIS_URL: &str = "redis://localhost:6379";
/// Default of `OPS_VACUUM_TABLES`: the seven tables of agents.md 6.6.2.
pub const DEFAULT_VACUUM_TABLES: [&str; 7] = [
    "Content",
    "devices",
    "Schedule",
    "Playlist",
    "AuditLog",
    "users",
    "content_impressions",
];
/// Default of `OPS_REINDEX_INDEXES`: the twelve indexes of agents.md 6.6.3.
pub const DEFAULT_REINDEX_INDEXES: [&str; 12] = [
    "devices_organizationId_idx",
    "devices_status_idx",
    "devices_lastHeartbeat_idx",
    "devices_organizationId_status_createdAt_idx",
    "Content_organizationId_status_createdAt_idx",
    "Content_status_idx",
    "Content_expiresAt_idx",
    "Schedule_organizationId_isActive_priority_createdAt_idx",
    "Schedule_displayId_startDate_endDate_idx",
    "PlaylistItem_playlistId_idx",
    "PlaylistItem_contentId_idx",
    "AuditLog_createdAt_idx",
];
/// Default of `OPS_DB_LOCK_TIMEOUT_S`, in seconds.
pub const DEFAULT_DB_LOCK_TIMEOUT_S: u64 = 30;
/// Default of `OPS_DB_STATEMENT_TIMEOUT_S`, in seconds.
pub const DEFAULT_DB_STATEMENT_TIMEOUT_S: u64 = 1800;
/// Default of `OPS_REDIS_SCAN_MAX_KEYS`.
pub const DEFAULT_REDIS_SCAN_MAX_KEYS: u64 = 100_000;
/// Default of `OPS_REDIS_MEMORY_WARN_PCT`, percent.
pub const DEFAULT_REDIS_MEMORY_WARN_PCT: f64 = 85.0;
/// Default of `OPS_LOG_ROTATE_DAYS`, in days.
pub const DEFAULT_LOG_ROTATE_DAYS: u64 = 7;
/// Default of `OPS_LOG_TAIL_BYTES`, in bytes (1 MiB).
pub const DEFAULT_LOG_TAIL_BYTES: u64 = 1_048_576;
/// Default of `OPS_LOG_MAX_BYTES` and `OPS_AUDIT_MAX_BYTES`, in bytes (50 MiB).
pub const DEFAULT_LOG_MAX_BYTES: u64 = 52_428_800;

/// Plain SQL identifiers only: the names are interpolated into maintenance statements (agents.md 6.6.2).
static IDENT: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").expect("regex"));

/// db-maintainer settings (agents.md 8.7, 8.8).
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// `DATABASE_URL` (`postgres://` or `postgresql://`, a secret); `None` → `db-not-configured`
    /// (agents.md 6.6.1).
    pub database_url: Option<String>,
    /// `REDIS_URL` (default [`DEFAULT_REDIS_URL`]; `redis` or `rediss`), a secret (agents.md 6.6.4).
    pub redis_url: String,
    /// `OPS_VACUUM_TABLES`: physical tables to VACUUM (ANALYZE), plain SQL identifiers; default
    /// [`DEFAULT_VACUUM_TABLES`].
    pub vacuum_tables: Vec<String>,
    /// `OPS_REINDEX_INDEXES`: indexes to REINDEX CONCURRENTLY, plain SQL identifiers; default
    /// [`DEFAULT_REINDEX_INDEXES`].
    pub reindex_indexes: Vec<String>,
    /// `OPS_REINDEX_TABLES` (default empty): tables to REINDEX CONCURRENTLY (agents.md 6.6.3).
    pub reindex_tables: Vec<String>,
    /// `OPS_DB_LOCK_TIMEOUT_S` (default [`DEFAULT_DB_LOCK_TIMEOUT_S`]): `lock_timeout` set before every VACUUM and REINDEX
    /// (agents.md 6.6.1).
    pub lock_timeout_s: u64,
    /// `OPS_DB_STATEMENT_TIMEOUT_S` (default [`DEFAULT_DB_STATEMENT_TIMEOUT_S`]): the session's `statement_timeout`
    /// (agents.md 6.6.1).
    pub statement_timeout_s: u64,
    /// `OPS_REDIS_SCAN_MAX_KEYS` (default [`DEFAULT_REDIS_SCAN_MAX_KEYS`]): keys after which the SCAN pass stops
    /// (agents.md 6.6.4).
    pub redis_scan_max_keys: u64,
    /// `OPS_REDIS_MEMORY_WARN_PCT` (default [`DEFAULT_REDIS_MEMORY_WARN_PCT`], percent 0–100): `used_memory` above this share
    /// of `maxmemory` is `redis-memory-high` (agents.md 6.6.4).
    pub redis_memory_warn_pct: f64,
    /// `OPS_PM2_LOG_DIR` (default the log dir): directory whose `*.log` files are rotated
    /// (agents.md 6.6.5).
    pub pm2_log_dir: PathBuf,
    /// `OPS_LOG_ROTATE_DAYS` (default [`DEFAULT_LOG_ROTATE_DAYS`]): a log is due when its newest archive is older
    /// (agents.md 6.6.5).
    pub log_rotate_days: u64,
    /// `OPS_LOG_TAIL_BYTES` (default [`DEFAULT_LOG_TAIL_BYTES`]): logs at or below it never rotate; the tail kept
    /// after a rotation (agents.md 6.6.5).
    pub log_tail_bytes: u64,
    /// `OPS_LOG_MAX_BYTES` (default [`DEFAULT_LOG_MAX_BYTES`]): a log above it rotates whatever its age
    /// (agents.md 6.6.5).
    pub log_max_bytes: u64,
    /// `OPS_AUDIT_MAX_BYTES` (default [`DEFAULT_LOG_MAX_BYTES`]): the audit log above it is archived
    /// (agents.md 4.8, 6.6.5).
    pub audit_max_bytes: u64,
    /// Raw backup locations (validated by db-maintainer, where a malformed one is an incident, not a config error).
    pub backup_locations: Vec<String>,
    /// `OPS_BACKUP_S3_ENDPOINT` (http(s)); `None` → the AWS default endpoint (agents.md 6.6.7).
    pub backup_s3_endpoint: Option<String>,
    /// `OPS_BACKUP_MAX_AGE_HOURS` (default [`backup::DEFAULT_BACKUP_MAX_AGE_HOURS`]): a newest backup older than this is
    /// `backup-stale` (agents.md 6.6.7).
    pub backup_max_age_hours: u64,
    /// `OPS_BACKUP_PATTERN`: optional glob that backup file names must match; `None` → every file
    /// (agents.md 6.6.7).
    pub backup_pattern: Option<String>,
    /// `AWS_ACCESS_KEY_ID`: access key for listing S3 backups (agents.md 6.6.7).
    pub aws_access_key: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`: its secret key, a secret (agents.md 6.6.7, 5.9).
    pub aws_secret_key: Option<String>,
    /// `AWS_REGION` (default [`backup::DEFAULT_AWS_REGION`]): region of the backup listing (agents.md 6.6.7).
    pub aws_region: String,
    /// `OPS_S3_ENDPOINT`, else `http(s)://<MINIO_ENDPOINT>:<MINIO_PORT>` (`MINIO_USE_SSL`); `None` → S3
    /// features off: bucket usage and `minio://` thumbnails (agents.md 8.8).
    pub s3_endpoint: Option<String>,
    /// `OPS_S3_ACCESS_KEY`, else `MINIO_ACCESS_KEY`, else `AWS_ACCESS_KEY_ID` (agents.md 8.8).
    pub s3_access_key: Option<String>,
    /// `OPS_S3_SECRET_KEY`, else `MINIO_SECRET_KEY`, else `AWS_SECRET_ACCESS_KEY`; a secret
    /// (agents.md 8.8).
    pub s3_secret_key: Option<String>,
    /// `OPS_S3_REGION` (default [`storage::DEFAULT_S3_REGION`]) (agents.md 8.8).
    pub s3_region: String,
    /// `OPS_S3_BUCKETS` (comma list); `None` when unset or empty → every bucket `ListBuckets` returns
    /// (agents.md 6.6.6).
    pub s3_buckets: Option<Vec<String>>,
    /// `OPS_S3_WARN_BYTES` (bytes): a bucket above it is `bucket-size-high`; `None` → no size verdict
    /// (agents.md 6.6.6).
    pub s3_warn_bytes: Option<u64>,
}

impl DbConfig {
    /// Reads and validates the section; every invalid value is recorded in `src` and replaced by its default.
    /// `log_dir` is the default of `OPS_PM2_LOG_DIR`.
    pub(super) fn parse(src: &Source, log_dir: &Path) -> DbConfig {
        let vacuum_tables = ident_list(src, "OPS_VACUUM_TABLES", &DEFAULT_VACUUM_TABLES);
        let reindex_indexes = ident_list(src, "OPS_REINDEX_INDEXES", &DEFAULT_REINDEX_INDEXES);
        let reindex_tables = ident_list(src, "OPS_REINDEX_TABLES", &[]);
        let database_url = src.get("DATABASE_URL");
        if let Some(d) = &database_url
            && !(d.starts_with("postgres://") || d.starts_with("postgresql://"))
        {
            src.fail("DATABASE_URL: expected a postgres:// or postgresql:// URL");
        }
        let backup_locations = backup::locations(src);
        let s3_endpoint = storage::endpoint(src);
        let redis_url = src
            .url("REDIS_URL", Some(DEFAULT_REDIS_URL), &["redis", "rediss"])
            .unwrap_or_default();
        let lock_timeout_s = src.u64(
            "OPS_DB_LOCK_TIMEOUT_S",
            DEFAULT_DB_LOCK_TIMEOUT_S,
            1,
            86_400,
        );
        let statement_timeout_s = src.u64(
            "OPS_DB_STATEMENT_TIMEOUT_S",
            DEFAULT_DB_STATEMENT_TIMEOUT_S,
            1,
            86_400,
        );
        let redis_scan_max_keys = src.u64(
            "OPS_REDIS_SCAN_MAX_KEYS",
            DEFAULT_REDIS_SCAN_MAX_KEYS,
            0,
            1_000_000_000,
        );
        let redis_memory_warn_pct = src.f64(
            "OPS_REDIS_MEMORY_WARN_PCT",
            DEFAULT_REDIS_MEMORY_WARN_PCT,
            0.0,
            100.0,
        );
        let pm2_log_dir = src
            .get("OPS_PM2_LOG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| log_dir.to_path_buf());
        let log_rotate_days = src.u64("OPS_LOG_ROTATE_DAYS", DEFAULT_LOG_ROTATE_DAYS, 0, 36_500);
        let bytes = |key: &str, default: u64| src.u64(key, default, 1, u64::MAX / 2);
        let log_tail_bytes = bytes("OPS_LOG_TAIL_BYTES", DEFAULT_LOG_TAIL_BYTES);
        let log_max_bytes = bytes("OPS_LOG_MAX_BYTES", DEFAULT_LOG_MAX_BYTES);
        let audit_max_bytes = bytes("OPS_AUDIT_MAX_BYTES", DEFAULT_LOG_MAX_BYTES);
        let backup = BackupSettings::parse(src);
        let s3 = S3Settings::parse(src);
        DbConfig {
            database_url,
            redis_url,
            vacuum_tables,
            reindex_indexes,
            reindex_tables,
            lock_timeout_s,
            statement_timeout_s,
            redis_scan_max_keys,
            redis_memory_warn_pct,
            pm2_log_dir,
            log_rotate_days,
            log_tail_bytes,
            log_max_bytes,
            audit_max_bytes,
            backup_locations,
            backup_s3_endpoint: backup.s3_endpoint,
            backup_max_age_hours: backup.max_age_hours,
            backup_pattern: backup.pattern,
            aws_access_key: backup.aws_access_key,
            aws_secret_key: backup.aws_secret_key,
            aws_region: backup.aws_region,
            s3_endpoint,
            s3_access_key: s3.access_key,
            s3_secret_key: s3.secret_key,
            s3_region: s3.region,
            s3_buckets: s3.buckets,
            s3_warn_bytes: s3.warn_bytes,
        }
    }
}

impl DbConfig {
    /// [`DbConfig::lock_timeout_s`] as a duration (agents.md 6.6.1).
    pub fn lock_timeout(&self) -> Duration {
        Duration::from_secs(self.lock_timeout_s)
    }

    /// [`DbConfig::statement_timeout_s`] as a duration (agents.md 6.6.1).
    pub fn statement_timeout(&self) -> Duration {
        Duration::from_secs(self.statement_timeout_s)
    }
}

/// A comma list of plain SQL identifiers, `default` when unset; each other entry is recorded as an error.
fn ident_list(src: &Source, key: &str, default: &[&str]) -> Vec<String> {
    let l = src
        .list(key)
        .unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect());
    for i in &l {
        if !IDENT.is_match(i) {
            src.fail(format!("{key}: {i:?} is not a plain SQL identifier"));
        }
    }
    l
}

#[cfg(test)]
mod tests {
    use super::super::tests::cfg;

    #[test]
    fn maintenance_names_must_be_plain_identifiers_and_database_url_postgres() {
        let e = cfg(&[
            ("OPS_VACUUM_TABLES", "Content; DROP TABLE x"),
            ("OPS_REINDEX_TABLES", "ok_table,1bad"),
            ("DATABASE_URL", "mysql://db"),
        ])
        .unwrap_err();
        assert_eq!(e.0.len(), 3, "{e}");
        assert!(
            e.0[0].starts_with("OPS_VACUUM_TABLES: \"Content; DROP TABLE x\""),
            "{e}"
        );
        assert!(e.0[1].starts_with("OPS_REINDEX_TABLES: \"1bad\""), "{e}");
        assert!(e.0[2].starts_with("DATABASE_URL:"), "{e}");
        let c = cfg(&[]).unwrap();
        assert_eq!(
            c.db.reindex_indexes.len(),
            super::DEFAULT_REINDEX_INDEXES.len()
        );
        assert_eq!(c.db.redis_url, super::DEFAULT_REDIS_URL);
        assert_eq!(c.db.pm2_log_dir, std::path::Path::new("/tmp/ops-root/logs"));
        assert_eq!(c.db.audit_max_bytes, super::DEFAULT_LOG_MAX_BYTES);
        assert_eq!(
            c.db.statement_timeout(),
            std::time::Duration::from_secs(1800)
        );
        assert_eq!(
            c.db.lock_timeout().as_secs(),
            super::DEFAULT_DB_LOCK_TIMEOUT_S
        );
    }
}
