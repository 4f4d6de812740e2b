//! Injected time (style.md): agents read "now" from a [`Clock`] so that backoff, de-duplication windows and SLAs are
//! tested without sleeping.

use chrono::{DateTime, Duration, Utc};
use std::sync::Mutex;

/// A source of the current instant.
pub trait Clock: Send + Sync {
    /// The current instant (UTC).
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock tests set and move by hand; it may move backwards (agents.md 1.1 covers that case).
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A manual clock that reads `t` (UTC) until it is set or advanced.
    pub fn new(t: DateTime<Utc>) -> ManualClock {
        ManualClock(Mutex::new(t))
    }
    /// Sets the current instant.
    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().expect("clock lock") = t;
    }
    /// Moves the clock by `d` (negative moves it backwards).
    pub fn advance(&self, d: Duration) {
        let mut g = self.0.lock().expect("clock lock");
        *g += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }
}

/// Age of `then` at `now`, in seconds; negative ages (clock moved backwards) count as 0 (agents.md 1.1).
pub fn age_s(now: DateTime<Utc>, then: DateTime<Utc>) -> i64 {
    (now - then).num_seconds().max(0)
}

/// The "at least `window_s` since `then`" test of agents.md 1.1: the age at the run's start compared with the window
/// minus the early margin `tolerance_s`. A negative age counts as 0, so it never extends a window.
pub fn window_elapsed(
    now: DateTime<Utc>,
    then: DateTime<Utc>,
    window_s: i64,
    tolerance_s: i64,
) -> bool {
    age_s(now, then) >= window_s - tolerance_s
}

/// `now + d` helper for readability in rules.
pub fn plus_s(t: DateTime<Utc>, s: i64) -> DateTime<Utc> {
    t + Duration::seconds(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hourly_window_passes_at_sixty_minutes_with_tolerance_not_ninety() {
        let t0 = Utc::now();
        assert!(!window_elapsed(t0 + Duration::minutes(30), t0, 3600, 120));
        assert!(window_elapsed(t0 + Duration::seconds(3540), t0, 3600, 120));
    }

    #[test]
    fn clock_moving_backwards_never_extends_or_opens_a_window() {
        let t0 = Utc::now();
        assert_eq!(age_s(t0 - Duration::minutes(5), t0), 0);
        assert!(!window_elapsed(t0 - Duration::minutes(5), t0, 600, 120));
    }
}
