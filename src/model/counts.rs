//! The counts (README "What the counts mean", agents.md 2.3, 7.2): one definition each, used by the agents' results,
//! the reporter's summary and alerts, `status` and the demo, so that they agree by construction.

use super::*;
use chrono::{DateTime, Utc};

/// Window of "in the last 24 h" counts (agents.md 7.2, 7.3): 24 hours before `now`.
pub const COUNT_WINDOW_HOURS: i64 = 24;

/// Whether a remediation counts as a **fix**: its verification verdict is `verified: true` (agents.md 2.3; a sent
/// command or an unverified mutation is never a fix).
pub fn is_verified_fix(r: &RemediationAction) -> bool {
    r.verified == Some(true)
}

/// **fixed** of one run (`issuesFixed`): the verified remediations among `remediations` (this run's actions).
pub fn verified_fix_count(remediations: &[RemediationAction]) -> u32 {
    remediations.iter().filter(|r| is_verified_fix(r)).count() as u32
}

/// **remediations in 24 h**: the entries of `remediations` (the state's `recentRemediations`) whose `timestamp` lies
/// within [`COUNT_WINDOW_HOURS`] before `now`, in their order; an unparseable timestamp is not counted (it is kept in
/// the state, agents.md 4.4).
pub fn remediations_24h(
    remediations: &[RemediationAction],
    now: DateTime<Utc>,
) -> Vec<&RemediationAction> {
    let since = now - chrono::Duration::hours(COUNT_WINDOW_HOURS);
    remediations
        .iter()
        .filter(|r| parse_ts(&r.timestamp).is_some_and(|t| t >= since))
        .collect()
}

/// **verified fixes in 24 h**: the [`remediations_24h`] that are [`is_verified_fix`]. Equals the sum of the agents'
/// `issuesFixed` over their runs of the last 24 h while no remediation has been pruned (agents.md 4.7).
pub fn verified_fixes_24h(remediations: &[RemediationAction], now: DateTime<Utc>) -> usize {
    remediations_24h(remediations, now)
        .into_iter()
        .filter(|r| is_verified_fix(r))
        .count()
}
