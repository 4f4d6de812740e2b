//! Pure rules of health-guardian (agents.md 6.1.2, 6.1.3): the restart ladder with its backoff, host memory and the
//! memory threshold. No I/O; unit-tested below.

use crate::clock::window_elapsed;
use crate::config::HealthConfig;
use chrono::{DateTime, Duration as ChronoDuration, Utc};

/// Decision of the remediation ladder for one incident id (agents.md 6.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ladder {
    /// The prior incident is `escalated`: re-raise it unchanged, no command.
    KeepEscalated,
    /// `attempts ≥ OPS_RESTART_MAX_ATTEMPTS` without a verified fix: escalate, no command.
    Escalate,
    /// Inside the backoff window: `open`, `next restart allowed after <instant>` (the nominal end of the window).
    Wait(DateTime<Utc>),
    /// Act now: this is attempt `attempts + 1`.
    Act,
}

/// Backoff before attempt `n + 1` given `n ≥ 1` attempts so far, in seconds: `min(base × 2^n, cap)`
/// (`OPS_RESTART_BACKOFF_BASE_S`, `OPS_RESTART_BACKOFF_CAP_S`; agents.md 6.1.3). Saturates instead of overflowing.
pub fn backoff_s(attempts: u32, base_s: u64, cap_s: u64) -> u64 {
    let factor = 1u64.checked_shl(attempts).unwrap_or(u64::MAX);
    base_s.saturating_mul(factor).min(cap_s)
}

/// The ladder of agents.md 6.1.3 for one incident: `prior_escalated` (the active prior is `escalated`), the
/// episode's `attempts` and the instant of its last attempt (`lastAttemptAt`, else the newest matching
/// RemediationAction; `None` = no wait), judged at the run's start `now` with the early margin `tolerance_s`
/// (agents.md 1.1: a negative age counts as 0).
pub fn ladder(
    prior_escalated: bool,
    attempts: u32,
    last_attempt: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    h: &HealthConfig,
    tolerance_s: i64,
) -> Ladder {
    if prior_escalated {
        return Ladder::KeepEscalated;
    }
    if attempts >= h.restart_max_attempts {
        return Ladder::Escalate;
    }
    if attempts >= 1
        && let Some(last) = last_attempt
    {
        let window = backoff_s(attempts, h.restart_backoff_base_s, h.restart_backoff_cap_s);
        let window = i64::try_from(window).unwrap_or(i64::MAX);
        if !window_elapsed(now, last, window, tolerance_s) {
            return Ladder::Wait(last + ChronoDuration::seconds(window));
        }
    }
    Ladder::Act
}

/// Host memory used in percent from `/proc/meminfo` text: `(MemTotal − MemAvailable) / MemTotal × 100`
/// (agents.md 6.1.2). `None` when either field is missing or MemTotal is 0.
pub fn host_memory_used_pct(meminfo: &str) -> Option<f64> {
    let field = |name: &str| -> Option<u64> {
        meminfo.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
    };
    let total = field("MemTotal")?;
    let avail = field("MemAvailable")?;
    if total == 0 {
        return None;
    }
    Some(total.saturating_sub(avail) as f64 / total as f64 * 100.0)
}

/// Whether `memory` bytes exceed `pct` % of `limit` bytes (strict, agents.md 1.1).
pub fn over_threshold(memory: u64, limit: u64, pct: f64) -> bool {
    memory as f64 > limit as f64 * pct / 100.0
}

/// `bytes` as MiB with one decimal, for messages.
pub(super) fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn cfg() -> HealthConfig {
        let dir = std::env::temp_dir();
        crate::config::Config::from_source(
            crate::config::Source::from_pairs([
                ("VALIDATOR_BASE_URL", "http://127.0.0.1:9"),
                ("OPS_RATE_LIMIT_BACKEND", "memory"),
            ]),
            &dir,
        )
        .expect("config")
        .health
    }

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 8, 22, 12, 0, 0).unwrap() + ChronoDuration::seconds(s)
    }

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_the_cap() {
        assert_eq!(backoff_s(1, 30, 600), 60);
        assert_eq!(backoff_s(2, 30, 600), 120);
        assert_eq!(backoff_s(4, 30, 600), 480);
        assert_eq!(backoff_s(5, 30, 600), 600);
        assert_eq!(backoff_s(200, 30, 600), 600);
    }

    #[test]
    fn ladder_keeps_escalated_escalates_at_the_limit_waits_inside_the_backoff() {
        let h = cfg();
        assert_eq!(h.restart_max_attempts, 2);
        assert_eq!(ladder(true, 0, None, t(0), &h, 0), Ladder::KeepEscalated);
        assert_eq!(
            ladder(false, 2, Some(t(-10_000)), t(0), &h, 0),
            Ladder::Escalate
        );
        assert_eq!(ladder(false, 0, None, t(0), &h, 0), Ladder::Act);
        // One attempt 30 s ago: the window is 60 s.
        assert_eq!(
            ladder(false, 1, Some(t(-30)), t(0), &h, 0),
            Ladder::Wait(t(30))
        );
        assert_eq!(ladder(false, 1, Some(t(-60)), t(0), &h, 0), Ladder::Act);
        // No last attempt known: no wait.
        assert_eq!(ladder(false, 1, None, t(0), &h, 0), Ladder::Act);
        // The early margin of 1.1 applies; a clock that moved backwards never opens the window.
        assert_eq!(ladder(false, 1, Some(t(-30)), t(0), &h, 30), Ladder::Act);
        assert_eq!(
            ladder(false, 1, Some(t(100)), t(0), &h, 0),
            Ladder::Wait(t(160))
        );
    }

    #[test]
    fn host_memory_comes_from_memtotal_and_memavailable() {
        let text = "MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    2000000 kB\n";
        let pct = host_memory_used_pct(text).unwrap();
        assert!((pct - 87.5).abs() < 1e-9, "{pct}");
        assert_eq!(host_memory_used_pct("MemTotal: 100 kB\n"), None);
        assert_eq!(
            host_memory_used_pct("MemTotal: 0 kB\nMemAvailable: 0 kB\n"),
            None
        );
    }

    #[test]
    fn memory_threshold_is_strict() {
        assert!(!over_threshold(85, 100, 85.0));
        assert!(over_threshold(86, 100, 85.0));
    }
}
