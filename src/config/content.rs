//! content-lifecycle's thresholds (agents.md 8.5, 6.2): orphans, storage, detail reads, thumbnails, file size. The
//! fields live in [`super::EntityConfig`].

use super::Source;

/// Default of `OPS_ORPHAN_MIN_AGE_DAYS`, in days.
pub const DEFAULT_ORPHAN_MIN_AGE_DAYS: u64 = 30;
/// Default of `OPS_MAX_ARCHIVES_PER_RUN`.
pub const DEFAULT_MAX_ARCHIVES_PER_RUN: u64 = 100;
/// Default of `OPS_STORAGE_WARN_PCT`, percent.
pub const DEFAULT_STORAGE_WARN_PCT: f64 = 80.0;
/// Default of `OPS_STORAGE_CRITICAL_PCT`, percent.
pub const DEFAULT_STORAGE_CRITICAL_PCT: f64 = 90.0;
/// Default of `OPS_STORAGE_MAX_ARCHIVES_PER_RUN`.
pub const DEFAULT_STORAGE_MAX_ARCHIVES_PER_RUN: u64 = 100;
/// Default of `OPS_STORAGE_ARCHIVE_MIN_AGE_DAYS`, in days.
pub const DEFAULT_STORAGE_ARCHIVE_MIN_AGE_DAYS: u64 = 7;
/// Default of `OPS_CONTENT_DETAIL_READS_PER_RUN`.
pub const DEFAULT_CONTENT_DETAIL_READS_PER_RUN: u64 = 100;
/// Default of `OPS_THUMBNAIL_PROBES_PER_RUN`.
pub const DEFAULT_THUMBNAIL_PROBES_PER_RUN: u64 = 100;
/// Default of `OPS_THUMBNAIL_RECHECK_HOURS`, in hours.
pub const DEFAULT_THUMBNAIL_RECHECK_HOURS: u64 = 24;
/// Default of `OPS_MAX_FILE_SIZE_MB`, in MiB.
pub const DEFAULT_MAX_FILE_SIZE_MB: u64 = 100;
/// Default of `MINIO_BUCKET`.
pub const DEFAULT_MINIO_BUCKET: &str = "vizora-assets";
/// Bytes per MiB, the unit of `OPS_MAX_FILE_SIZE_MB`.
const MIB: u64 = 1_048_576;

/// `OPS_STORAGE_WARN_PCT` and `OPS_STORAGE_CRITICAL_PCT`; the critical level must not be below the warning one.
pub(super) fn storage_levels(src: &Source) -> (f64, f64) {
    let warn = src.f64("OPS_STORAGE_WARN_PCT", DEFAULT_STORAGE_WARN_PCT, 0.0, 100.0);
    let critical = src.f64(
        "OPS_STORAGE_CRITICAL_PCT",
        DEFAULT_STORAGE_CRITICAL_PCT,
        0.0,
        100.0,
    );
    if critical < warn {
        src.fail("OPS_STORAGE_CRITICAL_PCT: must not be below OPS_STORAGE_WARN_PCT");
    }
    (warn, critical)
}

/// content-lifecycle's caps and ages, in the order [`super::EntityConfig`] lists them.
pub(super) struct ContentLimits {
    /// `OPS_ORPHAN_MIN_AGE_DAYS`.
    pub(super) orphan_min_age_days: u64,
    /// `OPS_MAX_ARCHIVES_PER_RUN`.
    pub(super) max_archives_per_run: usize,
    /// `OPS_STORAGE_MAX_ARCHIVES_PER_RUN`.
    pub(super) storage_max_archives_per_run: usize,
    /// `OPS_STORAGE_ARCHIVE_MIN_AGE_DAYS`.
    pub(super) storage_archive_min_age_days: u64,
    /// `OPS_CONTENT_DETAIL_READS_PER_RUN`.
    pub(super) content_detail_reads_per_run: usize,
    /// `OPS_THUMBNAIL_PROBES_PER_RUN`.
    pub(super) thumbnail_probes_per_run: usize,
    /// `OPS_THUMBNAIL_RECHECK_HOURS`.
    pub(super) thumbnail_recheck_hours: u64,
    /// `OPS_MAX_FILE_SIZE_MB` in bytes.
    pub(super) max_file_size_bytes: u64,
    /// `MINIO_BUCKET`.
    pub(super) minio_bucket: String,
}

impl ContentLimits {
    /// Reads and validates them; every invalid value is recorded in `src` and replaced by its default.
    pub(super) fn parse(src: &Source) -> ContentLimits {
        let count = |key: &str, default: u64| src.u64(key, default, 0, 100_000_000) as usize;
        ContentLimits {
            // 0 days would make content created a moment ago an orphan candidate, archived before any playlist could
            // reference it (agents.md 6.2.4, 8.5: at least 1 day).
            orphan_min_age_days: src.u64(
                "OPS_ORPHAN_MIN_AGE_DAYS",
                DEFAULT_ORPHAN_MIN_AGE_DAYS,
                1,
                36_500,
            ),
            max_archives_per_run: src.u64(
                "OPS_MAX_ARCHIVES_PER_RUN",
                DEFAULT_MAX_ARCHIVES_PER_RUN,
                0,
                1_000_000,
            ) as usize,
            storage_max_archives_per_run: src.u64(
                "OPS_STORAGE_MAX_ARCHIVES_PER_RUN",
                DEFAULT_STORAGE_MAX_ARCHIVES_PER_RUN,
                0,
                1_000_000,
            ) as usize,
            storage_archive_min_age_days: src.u64(
                "OPS_STORAGE_ARCHIVE_MIN_AGE_DAYS",
                DEFAULT_STORAGE_ARCHIVE_MIN_AGE_DAYS,
                0,
                36_500,
            ),
            content_detail_reads_per_run: count(
                "OPS_CONTENT_DETAIL_READS_PER_RUN",
                DEFAULT_CONTENT_DETAIL_READS_PER_RUN,
            ),
            thumbnail_probes_per_run: count(
                "OPS_THUMBNAIL_PROBES_PER_RUN",
                DEFAULT_THUMBNAIL_PROBES_PER_RUN,
            ),
            thumbnail_recheck_hours: src.u64(
                "OPS_THUMBNAIL_RECHECK_HOURS",
                DEFAULT_THUMBNAIL_RECHECK_HOURS,
                0,
                100_000,
            ),
            max_file_size_bytes: src.u64(
                "OPS_MAX_FILE_SIZE_MB",
                DEFAULT_MAX_FILE_SIZE_MB,
                1,
                10_000_000,
            ) * MIB,
            minio_bucket: src
                .get("MINIO_BUCKET")
                .unwrap_or_else(|| DEFAULT_MINIO_BUCKET.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::cfg;

    #[test]
    fn orphan_min_age_of_zero_days_is_rejected() {
        let e = cfg(&[("OPS_ORPHAN_MIN_AGE_DAYS", "0")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("OPS_ORPHAN_MIN_AGE_DAYS") && e.contains("1..="),
            "{e}"
        );
        let c = cfg(&[("OPS_ORPHAN_MIN_AGE_DAYS", "1")]).unwrap();
        assert_eq!(c.entity.orphan_min_age_days, 1);
    }

    #[test]
    fn storage_critical_below_warning_is_rejected_and_file_size_is_in_mib() {
        let e = cfg(&[
            ("OPS_STORAGE_WARN_PCT", "95"),
            ("OPS_STORAGE_CRITICAL_PCT", "90"),
        ])
        .unwrap_err();
        assert_eq!(
            e.0,
            vec!["OPS_STORAGE_CRITICAL_PCT: must not be below OPS_STORAGE_WARN_PCT"]
        );
        let c = cfg(&[
            ("OPS_STORAGE_WARN_PCT", "90"),
            ("OPS_MAX_FILE_SIZE_MB", "2"),
        ])
        .unwrap();
        assert_eq!(
            c.entity.storage_critical_pct,
            super::DEFAULT_STORAGE_CRITICAL_PCT
        );
        assert_eq!(c.entity.max_file_size_bytes, 2 * 1_048_576);
        assert_eq!(c.entity.minio_bucket, super::DEFAULT_MINIO_BUCKET);
    }
}
