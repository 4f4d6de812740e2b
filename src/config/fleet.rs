//! fleet-manager's thresholds (agents.md 8.5, 6.3): offline ages, the reconnect wait and the fleet command budget.
//! The fields live in [`super::EntityConfig`].

use super::Source;
use std::time::Duration;

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

/// `OPS_OFFLINE_MINUTES` and `OPS_PERSISTENT_OFFLINE_MINUTES`; persistent must come after offline (agents.md 6.3.1).
pub(super) fn offline_ages(src: &Source) -> (u64, u64) {
    let offline = src.u64("OPS_OFFLINE_MINUTES", DEFAULT_OFFLINE_MINUTES, 1, 100_000);
    let persistent = src.u64(
        "OPS_PERSISTENT_OFFLINE_MINUTES",
        DEFAULT_PERSISTENT_OFFLINE_MINUTES,
        1,
        100_000,
    );
    if persistent <= offline {
        src.fail("OPS_PERSISTENT_OFFLINE_MINUTES: must be greater than OPS_OFFLINE_MINUTES");
    }
    (offline, persistent)
}

/// fleet-manager's wait and command budget, in the order [`super::EntityConfig`] lists them.
pub(super) struct FleetLimits {
    /// `OPS_RECONNECT_VERIFY_S`.
    pub(super) reconnect_verify_s: u64,
    /// `OPS_FLEET_COMMANDS_PER_MINUTE`.
    pub(super) commands_per_minute: usize,
    /// `OPS_FLEET_MAX_COMMANDS_PER_RUN`.
    pub(super) max_commands_per_run: usize,
    /// `OPS_FLEET_MAX_COMMANDS_PER_EPISODE`.
    pub(super) max_commands_per_episode: u32,
    /// `OPS_FLEET_DISPLAY_COOLDOWN_MINUTES`.
    pub(super) display_cooldown_minutes: u64,
    /// `OPS_LOCATION_MIN_DISPLAYS`.
    pub(super) location_min_displays: usize,
}

impl FleetLimits {
    /// Reads and validates them; every invalid value is recorded in `src` and replaced by its default.
    pub(super) fn parse(src: &Source) -> FleetLimits {
        FleetLimits {
            reconnect_verify_s: src.u64(
                "OPS_RECONNECT_VERIFY_S",
                DEFAULT_RECONNECT_VERIFY_S,
                0,
                3600,
            ),
            commands_per_minute: src.u64(
                "OPS_FLEET_COMMANDS_PER_MINUTE",
                DEFAULT_FLEET_COMMANDS_PER_MINUTE,
                1,
                10_000,
            ) as usize,
            max_commands_per_run: src.u64(
                "OPS_FLEET_MAX_COMMANDS_PER_RUN",
                DEFAULT_FLEET_MAX_COMMANDS_PER_RUN,
                0,
                100_000,
            ) as usize,
            max_commands_per_episode: src.u64(
                "OPS_FLEET_MAX_COMMANDS_PER_EPISODE",
                DEFAULT_FLEET_MAX_COMMANDS_PER_EPISODE,
                0,
                1000,
            ) as u32,
            display_cooldown_minutes: src.u64(
                "OPS_FLEET_DISPLAY_COOLDOWN_MINUTES",
                DEFAULT_FLEET_DISPLAY_COOLDOWN_MINUTES,
                0,
                100_000,
            ),
            location_min_displays: src.u64(
                "OPS_LOCATION_MIN_DISPLAYS",
                DEFAULT_LOCATION_MIN_DISPLAYS,
                1,
                100_000,
            ) as usize,
        }
    }
}

impl super::EntityConfig {
    /// [`EntityConfig::reconnect_verify_s`](super::EntityConfig::reconnect_verify_s) as a duration.
    pub fn reconnect_verify(&self) -> Duration {
        Duration::from_secs(self.reconnect_verify_s)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::cfg;
    use std::time::Duration;

    #[test]
    fn persistent_offline_must_come_after_offline() {
        let e = cfg(&[("OPS_OFFLINE_MINUTES", "60")]).unwrap_err();
        assert_eq!(
            e.0,
            vec!["OPS_PERSISTENT_OFFLINE_MINUTES: must be greater than OPS_OFFLINE_MINUTES"]
        );
        let c = cfg(&[
            ("OPS_OFFLINE_MINUTES", "20"),
            ("OPS_RECONNECT_VERIFY_S", "0"),
        ])
        .unwrap();
        assert_eq!(
            c.entity.persistent_offline_minutes,
            super::DEFAULT_PERSISTENT_OFFLINE_MINUTES
        );
        assert_eq!(c.entity.reconnect_verify(), Duration::ZERO);
        assert_eq!(c.entity.fleet_max_commands_per_episode, 2);
    }
}
