//! db-maintainer's backup check settings (agents.md 6.6.7, 8.7): where backups are, how old the newest may be, and
//! the S3 listing credentials. The fields live in [`super::DbConfig`]; the location syntax in
//! [`super::backup_location`].

use super::Source;

/// Default of `OPS_BACKUP_MAX_AGE_HOURS`, in hours.
pub const DEFAULT_BACKUP_MAX_AGE_HOURS: u64 = 24;
/// Default of `AWS_REGION`, the backup listing's region.
pub const DEFAULT_AWS_REGION: &str = "us-east-1";

/// `OPS_BACKUP_LOCATIONS` (comma list), else `BACKUP_DIR` and `BACKUP_S3_BUCKET` (`s3://` added when missing). Kept
/// raw: a malformed location is db-maintainer's `backup-unverifiable` incident, not a configuration error.
pub(super) fn locations(src: &Source) -> Vec<String> {
    if let Some(l) = src.list("OPS_BACKUP_LOCATIONS") {
        return l;
    }
    let mut l = Vec::new();
    if let Some(d) = src.get("BACKUP_DIR") {
        l.push(d);
    }
    if let Some(b) = src.get("BACKUP_S3_BUCKET") {
        l.push(if b.starts_with("s3://") {
            b
        } else {
            format!("s3://{b}")
        });
    }
    l
}

/// The backup settings besides the locations, in the order [`super::DbConfig`] lists them.
pub(super) struct BackupSettings {
    /// `OPS_BACKUP_S3_ENDPOINT`.
    pub(super) s3_endpoint: Option<String>,
    /// `OPS_BACKUP_MAX_AGE_HOURS`.
    pub(super) max_age_hours: u64,
    /// `OPS_BACKUP_PATTERN`.
    pub(super) pattern: Option<String>,
    /// `AWS_ACCESS_KEY_ID`.
    pub(super) aws_access_key: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub(super) aws_secret_key: Option<String>,
    /// `AWS_REGION`.
    pub(super) aws_region: String,
}

impl BackupSettings {
    /// Reads and validates them; every invalid value is recorded in `src` and replaced by its default.
    pub(super) fn parse(src: &Source) -> BackupSettings {
        BackupSettings {
            s3_endpoint: src.url("OPS_BACKUP_S3_ENDPOINT", None, &["http", "https"]),
            max_age_hours: src.u64(
                "OPS_BACKUP_MAX_AGE_HOURS",
                DEFAULT_BACKUP_MAX_AGE_HOURS,
                1,
                1_000_000,
            ),
            pattern: src.get("OPS_BACKUP_PATTERN"),
            aws_access_key: src.get("AWS_ACCESS_KEY_ID"),
            aws_secret_key: src.get("AWS_SECRET_ACCESS_KEY"),
            aws_region: src
                .get("AWS_REGION")
                .unwrap_or_else(|| DEFAULT_AWS_REGION.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::cfg;

    #[test]
    fn backup_locations_fall_back_to_backup_dir_and_bucket_and_stay_raw() {
        let c = cfg(&[
            ("BACKUP_DIR", "/var/backups"),
            ("BACKUP_S3_BUCKET", "bk/db"),
        ])
        .unwrap();
        assert_eq!(c.db.backup_locations, vec!["/var/backups", "s3://bk/db"]);
        assert_eq!(
            c.db.backup_max_age_hours,
            super::DEFAULT_BACKUP_MAX_AGE_HOURS
        );
        // The explicit list wins, and a malformed entry is not a configuration error (db-maintainer's incident).
        let c = cfg(&[
            ("OPS_BACKUP_LOCATIONS", "ftp://x, /d"),
            ("BACKUP_DIR", "/ignored"),
        ])
        .unwrap();
        assert_eq!(c.db.backup_locations, vec!["ftp://x", "/d"]);
        assert_eq!(
            c.run_time_problems().len(),
            1,
            "{:?}",
            c.run_time_problems()
        );
    }
}
