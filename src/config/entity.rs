//! content-lifecycle, fleet-manager and schedule-doctor settings (agents.md 8.5) in one [`EntityConfig`]: the
//! thresholds per agent live in [`super::content`] and [`super::fleet`]; schedule-doctor's two are here.

use super::Source;
use super::content::{self, ContentLimits};
use super::fleet::{self, FleetLimits};

/// Default of `OPS_OVERLAP_MAX_COMPARISONS`.
pub const DEFAULT_OVERLAP_MAX_COMPARISONS: u64 = 50;

/// content-lifecycle, fleet-manager and schedule-doctor settings (agents.md 8.5).
#[derive(Debug, Clone)]
pub struct EntityConfig {
    /// `OPS_ORPHAN_MIN_AGE_DAYS` (default [`content::DEFAULT_ORPHAN_MIN_AGE_DAYS`], at least 1): minimum `createdAt` age of an
    /// orphan candidate (agents.md 6.2.4).
    pub orphan_min_age_days: u64,
    /// `OPS_MAX_ARCHIVES_PER_RUN` (default [`content::DEFAULT_MAX_ARCHIVES_PER_RUN`]): orphan candidates processed per run;
    /// the rest are deferred (agents.md 6.2.4).
    pub max_archives_per_run: usize,
    /// `OPS_STORAGE_WARN_PCT` (default [`content::DEFAULT_STORAGE_WARN_PCT`], percent 0–100): storage use above it is a
    /// warning `storage_high` (agents.md 6.2.5).
    pub storage_warn_pct: f64,
    /// `OPS_STORAGE_CRITICAL_PCT` (default [`content::DEFAULT_STORAGE_CRITICAL_PCT`], percent, not below the warning level):
    /// above it `storage_high` is critical and archiving starts (agents.md 6.2.5).
    pub storage_critical_pct: f64,
    /// `OPS_STORAGE_MAX_ARCHIVES_PER_RUN` (default [`content::DEFAULT_STORAGE_MAX_ARCHIVES_PER_RUN`]): archives per run to
    /// relieve critical storage (agents.md 6.2.5).
    pub storage_max_archives_per_run: usize,
    /// `OPS_STORAGE_ARCHIVE_MIN_AGE_DAYS` (default [`content::DEFAULT_STORAGE_ARCHIVE_MIN_AGE_DAYS`]): minimum age of content
    /// archived for storage (agents.md 6.2.5).
    pub storage_archive_min_age_days: u64,
    /// `OPS_CONTENT_DETAIL_READS_PER_RUN` (default [`content::DEFAULT_CONTENT_DETAIL_READS_PER_RUN`]): content detail reads
    /// per run that refresh the detail cache (agents.md 6.2.1).
    pub content_detail_reads_per_run: usize,
    /// `OPS_THUMBNAIL_PROBES_PER_RUN` (default [`content::DEFAULT_THUMBNAIL_PROBES_PER_RUN`]): thumbnail probes per run
    /// (agents.md 6.2.3).
    pub thumbnail_probes_per_run: usize,
    /// `OPS_THUMBNAIL_RECHECK_HOURS` (default [`content::DEFAULT_THUMBNAIL_RECHECK_HOURS`]): a cached result for the same URL
    /// younger than this is reused, not re-probed (agents.md 6.2.3).
    pub thumbnail_recheck_hours: u64,
    /// Oversized threshold in bytes: `OPS_MAX_FILE_SIZE_MB` (default [`content::DEFAULT_MAX_FILE_SIZE_MB`]) × 1 048 576.
    pub max_file_size_bytes: u64,
    /// `MINIO_BUCKET` (default [`content::DEFAULT_MINIO_BUCKET`]): bucket of `minio://<key>` thumbnails (agents.md 6.2.3).
    pub minio_bucket: String,
    /// `OPS_OFFLINE_MINUTES` (default [`fleet::DEFAULT_OFFLINE_MINUTES`]): heartbeat age from which a paired display is
    /// offline (agents.md 6.0, 6.3.1).
    pub offline_minutes: u64,
    /// `OPS_PERSISTENT_OFFLINE_MINUTES` (default [`fleet::DEFAULT_PERSISTENT_OFFLINE_MINUTES`], greater than
    /// `offline_minutes`): age from which offline is persistent: escalated, no command (agents.md 6.3.1).
    pub persistent_offline_minutes: u64,
    /// `OPS_RECONNECT_VERIFY_S` (default [`fleet::DEFAULT_RECONNECT_VERIFY_S`], 0..=3600): wait after a reload command
    /// before checking the reconnection (agents.md 6.3.3).
    pub reconnect_verify_s: u64,
    /// `OPS_FLEET_COMMANDS_PER_MINUTE` (default [`fleet::DEFAULT_FLEET_COMMANDS_PER_MINUTE`]): fleet commands in any 60 s
    /// (agents.md 6.3.3).
    pub fleet_commands_per_minute: usize,
    /// `OPS_FLEET_MAX_COMMANDS_PER_RUN` (default [`fleet::DEFAULT_FLEET_MAX_COMMANDS_PER_RUN`]): fleet commands per run
    /// (agents.md 6.3.3).
    pub fleet_max_commands_per_run: usize,
    /// `OPS_FLEET_MAX_COMMANDS_PER_EPISODE` (default [`fleet::DEFAULT_FLEET_MAX_COMMANDS_PER_EPISODE`]): reloads per offline
    /// episode (agents.md 6.3.3).
    pub fleet_max_commands_per_episode: u32,
    /// `OPS_FLEET_DISPLAY_COOLDOWN_MINUTES` (default [`fleet::DEFAULT_FLEET_DISPLAY_COOLDOWN_MINUTES`]): at most one reload
    /// per display per this period, across episodes (agents.md 6.3.3).
    pub fleet_display_cooldown_minutes: u64,
    /// `OPS_LOCATION_MIN_DISPLAYS` (default [`fleet::DEFAULT_LOCATION_MIN_DISPLAYS`]): enabled paired displays a location
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
        let (storage_warn_pct, storage_critical_pct) = content::storage_levels(src);
        let (offline_minutes, persistent_offline_minutes) = fleet::offline_ages(src);
        let c = ContentLimits::parse(src);
        let f = FleetLimits::parse(src);
        EntityConfig {
            orphan_min_age_days: c.orphan_min_age_days,
            max_archives_per_run: c.max_archives_per_run,
            storage_warn_pct,
            storage_critical_pct,
            storage_max_archives_per_run: c.storage_max_archives_per_run,
            storage_archive_min_age_days: c.storage_archive_min_age_days,
            content_detail_reads_per_run: c.content_detail_reads_per_run,
            thumbnail_probes_per_run: c.thumbnail_probes_per_run,
            thumbnail_recheck_hours: c.thumbnail_recheck_hours,
            max_file_size_bytes: c.max_file_size_bytes,
            minio_bucket: c.minio_bucket,
            offline_minutes,
            persistent_offline_minutes,
            reconnect_verify_s: f.reconnect_verify_s,
            fleet_commands_per_minute: f.commands_per_minute,
            fleet_max_commands_per_run: f.max_commands_per_run,
            fleet_max_commands_per_episode: f.max_commands_per_episode,
            fleet_display_cooldown_minutes: f.display_cooldown_minutes,
            location_min_displays: f.location_min_displays,
            fallback_playlist_id: src.get("OPS_FALLBACK_PLAYLIST_ID"),
            overlap_max_comparisons: src.u64(
                "OPS_OVERLAP_MAX_COMPARISONS",
                DEFAULT_OVERLAP_MAX_COMPARISONS,
                1,
                1_000_000,
            ) as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::cfg;

    #[test]
    fn storage_and_offline_errors_come_before_the_caps_as_before_the_split() {
        // The section is read in its old order so that `config check` lists errors as it always did.
        let e = cfg(&[
            ("OPS_MAX_ARCHIVES_PER_RUN", "x"),
            ("OPS_STORAGE_WARN_PCT", "95"),
            ("OPS_STORAGE_CRITICAL_PCT", "90"),
            ("OPS_OFFLINE_MINUTES", "60"),
            ("OPS_OVERLAP_MAX_COMPARISONS", "0"),
        ])
        .unwrap_err();
        let vars: Vec<&str> = e.0.iter().map(|m| m.split(':').next().unwrap()).collect();
        assert_eq!(
            vars,
            vec![
                "OPS_STORAGE_CRITICAL_PCT",
                "OPS_PERSISTENT_OFFLINE_MINUTES",
                "OPS_MAX_ARCHIVES_PER_RUN",
                "OPS_OVERLAP_MAX_COMPARISONS",
            ]
        );
        let c = cfg(&[("OPS_FALLBACK_PLAYLIST_ID", "pl-1")]).unwrap();
        assert_eq!(c.entity.fallback_playlist_id.as_deref(), Some("pl-1"));
        assert_eq!(c.entity.overlap_max_comparisons, 50);
    }
}
