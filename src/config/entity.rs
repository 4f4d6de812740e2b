//! content-lifecycle, fleet-manager and schedule-doctor settings (agents.md 8.5): orphan and storage thresholds,
//! per-run caps, offline ages and the fleet command budget.

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
/// Default of `OPS_OFFLINE_MINUTES`, in minutes.
pub const DEFAULT_OFFLINE_MINUTES: u64 = 15;
/// Default of `OPS_PERSISTENT_OFFLINE_MINUTES`, in minutes.
pub const DEFAULT_PERSISTENT_OFFLINE_MINUTES: u64 = 60;
/// Default of `OPS_RECONNECT_VERIFY_S`, in seconds.
pub const DEFAULT_RECONNECT_VERIFY_S: u64 = 60;
/// Default of `OPS_FLEET_COMMANDS_PER_MINUTE`.
pub const DEFAULT_FLEET_COMMANDS_PER_MINUTE: u64 = 10;
/// Default of `OPS_FLEET_MAX_COMMANDS_PER_RUN`.
pub const DEFAULT_FLEET_MAX_COMMANDS_PER_RUN: u64 = 20;
/// Default of `OPS_FLEET_MAX_COMMANDS_PER_EPISODE`.
pub const DEFAULT_FLEET_MAX_COMMANDS_PER_EPISODE: u64 = 2;
/// Default of `OPS_FLEET_DISPLAY_COOLDOWN_MINUTES`, in minutes.
pub const DEFAULT_FLEET_DISPLAY_COOLDOWN_MINUTES: u64 = 30;
/// Default of `OPS_LOCATION_MIN_DISPLAYS`.
pub const DEFAULT_LOCATION_MIN_DISPLAYS: u64 = 3;
/// Default of `OPS_OVERLAP_MAX_COMPARISONS`.
pub const DEFAULT_OVERLAP_MAX_COMPARISONS: u64 = 50;
/// Bytes per MiB, the unit of `OPS_MAX_FILE_SIZE_MB`.
const MIB: u64 = 1_048_576;

/// content-lifecycle, fleet-manager and schedule-doctor settings (agents.md 8.5).
#[derive(Debug, Clone)]
pub struct EntityConfig {
    /// `OPS_ORPHAN_MIN_AGE_DAYS` (default [`DEFAULT_ORPHAN_MIN_AGE_DAYS`], at least 1): minimum `createdAt` age of an
    /// orphan candidate (agents.md 6.2.4).
    pub orphan_min_age_days: u64,
    /// `OPS_MAX_ARCHIVES_PER_RUN` (default [`DEFAULT_MAX_ARCHIVES_PER_RUN`]): orphan candidates processed per run;
    /// the rest are deferred (agents.md 6.2.4).
    pub max_archives_per_run: usize,
    /// `OPS_STORAGE_WARN_PCT` (default [`DEFAULT_STORAGE_WARN_PCT`], percent 0–100): storage use above it is a
    /// warning `storage_high` (agents.md 6.2.5).
    pub storage_warn_pct: f64,
    /// `OPS_STORAGE_CRITICAL_PCT` (default [`DEFAULT_STORAGE_CRITICAL_PCT`], percent, not below the warning level):
    /// above it `storage_high` is critical and archiving starts (agents.md 6.2.5).
    pub storage_critical_pct: f64,
    /// `OPS_STORAGE_MAX_ARCHIVES_PER_RUN` (default [`DEFAULT_STORAGE_MAX_ARCHIVES_PER_RUN`]): archives per run to
    /// relieve critical storage (agents.md 6.2.5).
    pub storage_max_archives_per_run: usize,
    /// `OPS_STORAGE_ARCHIVE_MIN_AGE_DAYS` (default [`DEFAULT_STORAGE_ARCHIVE_MIN_AGE_DAYS`]): minimum age of content
    /// archived for storage (agents.md 6.2.5).
    pub storage_archive_min_age_days: u64,
    /// `OPS_CONTENT_DETAIL_READS_PER_RUN` (default [`DEFAULT_CONTENT_DETAIL_READS_PER_RUN`]): content detail reads
    /// per run that refresh the detail cache (agents.md 6.2.1).
    pub content_detail_reads_per_run: usize,
    /// `OPS_THUMBNAIL_PROBES_PER_RUN` (default [`DEFAULT_THUMBNAIL_PROBES_PER_RUN`]): thumbnail probes per run
    /// (agents.md 6.2.3).
    pub thumbnail_probes_per_run: usize,
    /// `OPS_THUMBNAIL_RECHECK_HOURS` (default [`DEFAULT_THUMBNAIL_RECHECK_HOURS`]): a cached result for the same URL
    /// younger than this is reused, not re-probed (agents.md 6.2.3).
    pub thumbnail_recheck_hours: u64,
    /// Oversized threshold in bytes: `OPS_MAX_FILE_SIZE_MB` (default [`DEFAULT_MAX_FILE_SIZE_MB`]) × 1 048 576.
    pub max_file_size_bytes: u64,
    /// `MINIO_BUCKET` (default [`DEFAULT_MINIO_BUCKET`]): bucket of `minio://<key>` thumbnails (agents.md 6.2.3).
    pub minio_bucket: String,
    /// `OPS_OFFLINE_MINUTES` (default [`DEFAULT_OFFLINE_MINUTES`]): heartbeat age from which a paired display is
    /// offline (agents.md 6.0, 6.3.1).
    pub offline_minutes: u64,
    /// `OPS_PERSISTENT_OFFLINE_MINUTES` (default [`DEFAULT_PERSISTENT_OFFLINE_MINUTES`], greater than
    /// `offline_minutes`): age from which offline is persistent: escalated, no command (agents.md 6.3.1).
    pub persistent_offline_minutes: u64,
    /// `OPS_RECONNECT_VERIFY_S` (default [`DEFAULT_RECONNECT_VERIFY_S`], 0..=3600): wait after a reload command
    /// before checking the reconnection (agents.md 6.3.3).
    pub reconnect_verify_s: u64,
    /// `OPS_FLEET_COMMANDS_PER_MINUTE` (default [`DEFAULT_FLEET_COMMANDS_PER_MINUTE`]): fleet commands in any 60 s
    /// (agents.md 6.3.3).
    pub fleet_commands_per_minute: usize,
    /// `OPS_FLEET_MAX_COMMANDS_PER_RUN` (default [`DEFAULT_FLEET_MAX_COMMANDS_PER_RUN`]): fleet commands per run
    /// (agents.md 6.3.3).
    pub fleet_max_commands_per_run: usize,
    /// `OPS_FLEET_MAX_COMMANDS_PER_EPISODE` (default [`DEFAULT_FLEET_MAX_COMMANDS_PER_EPISODE`]): reloads per offline
    /// episode (agents.md 6.3.3).
    pub fleet_max_commands_per_episode: u32,
    /// `OPS_FLEET_DISPLAY_COOLDOWN_MINUTES` (default [`DEFAULT_FLEET_DISPLAY_COOLDOWN_MINUTES`]): at most one reload
    /// per display per this period, across episodes (agents.md 6.3.3).
    pub fleet_display_cooldown_minutes: u64,
    /// `OPS_LOCATION_MIN_DISPLAYS` (default [`DEFAULT_LOCATION_MIN_DISPLAYS`]): enabled paired displays a location
    /// needs, all offline, for `location_offline` (agents.md 6.3.2).
    pub location_min_displays: usize,
    /// `OPS_FALLBACK_PLAYLIST_ID`: last-resort fallback playlist id; `None` when unset (agents.md 6.4.1).
    pub fallback_playlist_id: Option<String>,
    /// `OPS_OVERLAP_MAX_COMPARISONS` (default [`DEFAULT_OVERLAP_MAX_COMPARISONS`]): overlap comparisons per schedule
    /// (agents.md 6.4.3).
    pub overlap_max_comparisons: usize,
}

impl EntityConfig {
    /// Reads and validates the section; every invalid value is recorded in `src` and replaced by its default.
    pub(super) fn parse(src: &Source) -> EntityConfig {
        let storage_warn_pct =
            src.f64("OPS_STORAGE_WARN_PCT", DEFAULT_STORAGE_WARN_PCT, 0.0, 100.0);
        let storage_critical_pct = src.f64(
            "OPS_STORAGE_CRITICAL_PCT",
            DEFAULT_STORAGE_CRITICAL_PCT,
            0.0,
            100.0,
        );
        if storage_critical_pct < storage_warn_pct {
            src.fail("OPS_STORAGE_CRITICAL_PCT: must not be below OPS_STORAGE_WARN_PCT");
        }
        let offline_minutes = src.u64("OPS_OFFLINE_MINUTES", DEFAULT_OFFLINE_MINUTES, 1, 100_000);
        let persistent_offline_minutes = src.u64(
            "OPS_PERSISTENT_OFFLINE_MINUTES",
            DEFAULT_PERSISTENT_OFFLINE_MINUTES,
            1,
            100_000,
        );
        if persistent_offline_minutes <= offline_minutes {
            src.fail("OPS_PERSISTENT_OFFLINE_MINUTES: must be greater than OPS_OFFLINE_MINUTES");
        }
        let count =
            |key: &str, default: u64, min: u64, max: u64| src.u64(key, default, min, max) as usize;
        EntityConfig {
            // 0 days would make content created a moment ago an orphan candidate, archived before any playlist could
            // reference it (agents.md 6.2.4, 8.5: at least 1 day).
            orphan_min_age_days: src.u64(
                "OPS_ORPHAN_MIN_AGE_DAYS",
                DEFAULT_ORPHAN_MIN_AGE_DAYS,
                1,
                36_500,
            ),
            max_archives_per_run: count(
                "OPS_MAX_ARCHIVES_PER_RUN",
                DEFAULT_MAX_ARCHIVES_PER_RUN,
                0,
                1_000_000,
            ),
            storage_warn_pct,
            storage_critical_pct,
            storage_max_archives_per_run: count(
                "OPS_STORAGE_MAX_ARCHIVES_PER_RUN",
                DEFAULT_STORAGE_MAX_ARCHIVES_PER_RUN,
                0,
                1_000_000,
            ),
            storage_archive_min_age_days: src.u64(
                "OPS_STORAGE_ARCHIVE_MIN_AGE_DAYS",
                DEFAULT_STORAGE_ARCHIVE_MIN_AGE_DAYS,
                0,
                36_500,
            ),
            content_detail_reads_per_run: count(
                "OPS_CONTENT_DETAIL_READS_PER_RUN",
                DEFAULT_CONTENT_DETAIL_READS_PER_RUN,
                0,
                100_000_000,
            ),
            thumbnail_probes_per_run: count(
                "OPS_THUMBNAIL_PROBES_PER_RUN",
                DEFAULT_THUMBNAIL_PROBES_PER_RUN,
                0,
                100_000_000,
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
            offline_minutes,
            persistent_offline_minutes,
            reconnect_verify_s: src.u64(
                "OPS_RECONNECT_VERIFY_S",
                DEFAULT_RECONNECT_VERIFY_S,
                0,
                3600,
            ),
            fleet_commands_per_minute: count(
                "OPS_FLEET_COMMANDS_PER_MINUTE",
                DEFAULT_FLEET_COMMANDS_PER_MINUTE,
                1,
                10_000,
            ),
            fleet_max_commands_per_run: count(
                "OPS_FLEET_MAX_COMMANDS_PER_RUN",
                DEFAULT_FLEET_MAX_COMMANDS_PER_RUN,
                0,
                100_000,
            ),
            fleet_max_commands_per_episode: src.u64(
                "OPS_FLEET_MAX_COMMANDS_PER_EPISODE",
                DEFAULT_FLEET_MAX_COMMANDS_PER_EPISODE,
                0,
                1000,
            ) as u32,
            fleet_display_cooldown_minutes: src.u64(
                "OPS_FLEET_DISPLAY_COOLDOWN_MINUTES",
                DEFAULT_FLEET_DISPLAY_COOLDOWN_MINUTES,
                0,
                100_000,
            ),
            location_min_displays: count(
                "OPS_LOCATION_MIN_DISPLAYS",
                DEFAULT_LOCATION_MIN_DISPLAYS,
                1,
                100_000,
            ),
            fallback_playlist_id: src.get("OPS_FALLBACK_PLAYLIST_ID"),
            overlap_max_comparisons: count(
                "OPS_OVERLAP_MAX_COMPARISONS",
                DEFAULT_OVERLAP_MAX_COMPARISONS,
                1,
                1_000_000,
            ),
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
    fn storage_and_offline_levels_must_be_ordered() {
        let e = cfg(&[
            ("OPS_STORAGE_WARN_PCT", "95"),
            ("OPS_STORAGE_CRITICAL_PCT", "90"),
            ("OPS_OFFLINE_MINUTES", "60"),
        ])
        .unwrap_err();
        assert_eq!(
            e.0,
            vec![
                "OPS_STORAGE_CRITICAL_PCT: must not be below OPS_STORAGE_WARN_PCT",
                "OPS_PERSISTENT_OFFLINE_MINUTES: must be greater than OPS_OFFLINE_MINUTES",
            ]
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
    }
}
