//! 6.4.2 check 3, no target: an active schedule that names neither a display nor a group, or whose display or group
//! is missing from its complete list (and not embedded), is deactivated once a direct read confirms the absence
//! (agents.md 6.0, 6.4.2).

use crate::agents::entities::Schedule;

use super::targeting::EntitySets;

/// A schedule's target that is absent from the display or group list (agents.md 6.4.2 check 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissingTarget {
    /// `displayId` (confirmed with `GET /api/v1/displays/:id` → 404).
    Display(String),
    /// `displayGroupId` (confirmed with `GET /api/v1/display-groups/:id` → 404).
    Group(String),
}

/// Check 3: `Some((reason, missing target))` when the schedule reaches no existing target; the missing target is
/// `None` when it names none at all (nothing to confirm).
pub(super) fn check(
    sch: &Schedule,
    sets: &EntitySets<'_>,
) -> Option<(String, Option<MissingTarget>)> {
    match (sch.display_target(), sch.group_target()) {
        (None, None) => Some((
            "it has neither a displayId nor a displayGroupId".to_string(),
            None,
        )),
        (Some(d), _) if !sets.has_display(d) && !sch.embeds_display => Some((
            format!("its display {d} does not exist"),
            Some(MissingTarget::Display(d.to_string())),
        )),
        (_, Some(g)) if !sets.has_group(g) && !sch.embeds_group => Some((
            format!("its display group {g} does not exist"),
            Some(MissingTarget::Group(g.to_string())),
        )),
        _ => None,
    }
}
