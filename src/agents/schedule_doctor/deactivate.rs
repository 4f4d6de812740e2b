//! Deactivation of a schedule with a 6.4.2 fault (`PATCH /api/v1/schedules/:id {"isActive":false}`, agents.md
//! 6.4.2): a verdict resting on absence from another list is confirmed first (the fresh read must not embed the
//! relation, a direct read of the missing id must answer 404); the result decides what the coverage check and the
//! overlap check may still judge.

use super::active::{ActiveChecks, ActiveFault, MissingTarget};
use super::remediate::{EMBEDS_EVIDENCE, Fix, FixNote, refutes_absence};
use super::{DISPLAYS, GROUPS, PATCH_SCHEDULES, PLAYLISTS, Run, SCHEDULES};
use crate::agents::entities::Schedule;
use crate::agents::resolved;
use crate::model::{Incident, Severity};
use crate::vizora::Precondition;
use serde_json::{Value, json};
use std::collections::HashSet;

/// What this run's deactivations leave for the later checks (agents.md 6.4.3, 6.4.4).
#[derive(Debug)]
pub(super) struct Deactivations {
    /// Schedules deactivated (or found inactive, or planned in a dry run) this run, by position.
    pub(super) inactive_now: Vec<bool>,
    /// Positions of schedules whose deleted-playlist deactivation succeeded (or is planned): their displays get the
    /// fallback playlist (6.4.2).
    pub(super) follow_up: Vec<usize>,
    /// Ids of still-active schedules whose deactivation failed (not past end): their overlap verdicts are unknown.
    pub(super) unremediated: HashSet<String>,
}

/// The request path, the human name and the JSON relation of the entity whose absence a fault rests on; `None` when
/// the fault rests on nothing absent (past end, no playlist or no target named).
fn absence(fault: &ActiveFault) -> Option<(String, String, &'static str)> {
    match fault {
        ActiveFault::PastEnd { .. } | ActiveFault::DeletedPlaylist { playlist_id: None } => None,
        ActiveFault::DeletedPlaylist {
            playlist_id: Some(p),
        } => Some((
            format!("{PLAYLISTS}/{p}"),
            format!("playlist {p}"),
            "playlist",
        )),
        ActiveFault::NoTarget { missing: None, .. } => None,
        ActiveFault::NoTarget {
            missing: Some(MissingTarget::Display(d)),
            ..
        } => Some((format!("{DISPLAYS}/{d}"), format!("display {d}"), "display")),
        ActiveFault::NoTarget {
            missing: Some(MissingTarget::Group(g)),
            ..
        } => Some((
            format!("{GROUPS}/{g}"),
            format!("display group {g}"),
            "displayGroup",
        )),
    }
}

/// The confirmation on the fresh `before` read: already inactive, or embedding the relation called missing, means
/// nothing to write; the missing id must also answer 404 to a direct read ([`Precondition::absent`]).
fn confirmation(absent: Option<(String, String, &'static str)>) -> Precondition {
    let mut precondition = Precondition::new({
        let rel = absent.as_ref().map(|(_, what, rel)| (*rel, what.clone()));
        move |v| {
            if v.get("isActive").and_then(Value::as_bool) == Some(false) {
                return Err(
                    "a fresh read shows the schedule already inactive; nothing to write".into(),
                );
            }
            if let Some((rel, what)) = &rel
                && v.get(*rel).is_some_and(Value::is_object)
            {
                return Err(format!(
                    "{EMBEDS_EVIDENCE} {what}, so it exists; nothing to write"
                ));
            }
            Ok(())
        }
    });
    if let Some((apath, what, _)) = absent {
        precondition = precondition.absent(apath, what);
    }
    precondition
}

impl Run<'_> {
    /// Deactivates every faulty active schedule in list order, raising its incident (one found inactive or refuted
    /// only when a prior episode is active), and returns what the later checks need.
    pub(super) async fn deactivate_faults(
        &mut self,
        schedules: &[Schedule],
        checks: &ActiveChecks,
    ) -> Deactivations {
        let mut out = Deactivations {
            inactive_now: vec![false; schedules.len()],
            follow_up: Vec::new(),
            unremediated: HashSet::new(),
        };
        for (i, fault) in &checks.faults {
            let sch = &schedules[*i];
            let (inc, fix) = self.deactivate(sch, fault).await;
            let label = format!(
                "{} \"{}\" ({})",
                crate::model::kind_label(fault.kind()),
                sch.name.as_deref().unwrap_or_default(),
                sch.id
            );
            let outcome = match &fix {
                Fix::Verified => "deactivated, verified".to_string(),
                Fix::Planned => "would deactivate (dry run)".to_string(),
                Fix::AlreadyDone(w) => w.clone(),
                Fix::Refuted(w) => format!("not deactivated: {w}"),
                Fix::NotDone => {
                    format!("open: {}", inc.error.as_deref().unwrap_or(&inc.remediation))
                }
            };
            self.note(format!("{label}: {} — {outcome}", fault.reason()));
            match &fix {
                Fix::Verified | Fix::Planned | Fix::AlreadyDone(_) => {
                    out.inactive_now[*i] = true;
                    if matches!(fault, ActiveFault::DeletedPlaylist { .. })
                        && matches!(fix, Fix::Verified | Fix::Planned)
                    {
                        out.follow_up.push(*i);
                    }
                }
                // Still active: its overlap verdicts were not computed (it was not in `remaining`), so they stay
                // unexamined like those of a failed deactivation.
                Fix::NotDone | Fix::Refuted(_) => {
                    if !matches!(fault, ActiveFault::PastEnd { .. }) {
                        out.unremediated.insert(sch.id.to_string());
                    }
                }
            }
            if matches!(fix, Fix::AlreadyDone(_) | Fix::Refuted(_)) && !self.prior_active(&inc.id) {
                continue;
            }
            self.o.raise(inc);
        }
        out
    }

    /// Why the deactivation cannot be sent (aborted run, unsafe id, drifted route), with the incident updated.
    fn deactivation_blocked(&self, inc: &mut Incident, id: &str) -> bool {
        if self.aborted {
            inc.error = Some("not remediated: the run was aborted".into());
            return true;
        }
        if !crate::agents::common::path_safe_id(id) {
            inc.remediation =
                "Deactivate the schedule in the Vizora dashboard (its id is not safe to put in a request path)"
                    .into();
            return true;
        }
        if let Some((route, _)) = self.drift.get(PATCH_SCHEDULES) {
            inc.error = Some(format!(
                "{route} answered as a missing route earlier in this run (api-contract-drift); not called again"
            ));
            return true;
        }
        false
    }

    /// Deactivates a schedule for a 6.4.2 fault and returns the incident in its final status.
    async fn deactivate(&mut self, sch: &Schedule, fault: &ActiveFault) -> (Incident, Fix) {
        let id = sch.id.to_string();
        let name = sch.name_or_id().to_string();
        let kind = fault.kind();
        let path = format!("{SCHEDULES}/{id}");
        let request = format!("PATCH {path} {{\"isActive\":false}}");
        let mut inc = self.ctx.incident(
            kind,
            Severity::Warning,
            "schedule",
            &id,
            format!(
                "Schedule \"{name}\" ({id}) is active but {}",
                fault.reason()
            ),
            format!("Deactivate the schedule ({request})"),
        );
        if self.deactivation_blocked(&mut inc, &id) {
            return (inc, Fix::NotDone);
        }
        let human = match fault {
            ActiveFault::PastEnd { .. } => "past-end",
            ActiveFault::DeletedPlaylist { .. } => "deleted-playlist",
            ActiveFault::NoTarget { .. } => "no-target",
        };
        // A verdict resting on absence from another list is confirmed before the write (agents.md 6.4.2): the fresh
        // `before` read must not embed the relation, and a direct read of the missing id must answer 404.
        let absent = absence(fault);
        if let Some((apath, what, _)) = &absent {
            let missing_id = apath.rsplit('/').next().unwrap_or_default();
            if !crate::agents::common::path_safe_id(missing_id) {
                self.ctx.warn(format!(
                    "schedule {id}: {} is not a plain id; its absence cannot be confirmed by a direct read, so the \
                     schedule is not deactivated",
                    what.escape_debug()
                ));
                inc.remediation = format!(
                    "Check the schedule in the Vizora dashboard: {what} is missing from its list, but its id is not \
                     safe to put in a request path, so its absence was not confirmed"
                );
                return (inc, Fix::NotDone);
            }
        }
        let precondition = confirmation(absent);
        let fix = self
            .patch(
                &mut inc,
                format!("Deactivate {human} schedule \"{name}\""),
                "schedule",
                &id,
                &path,
                json!({"isActive": false}),
                PATCH_SCHEDULES,
                precondition,
                |v| v.get("isActive").and_then(Value::as_bool) == Some(false),
                "isActive=false",
            )
            .await;
        let now = self.ctx.now();
        let inc = match &fix {
            Fix::Verified => {
                inc.remediation =
                    format!("Deactivated ({request}); a re-read shows isActive=false");
                self.deactivated.push(FixNote {
                    item: format!("\"{name}\" ({id}): {}", fault.reason()),
                    incident: Some(resolved(inc.clone(), now)),
                });
                resolved(inc, now)
            }
            Fix::AlreadyDone(why) if refutes_absence(why) => {
                let why = why.clone();
                let (inc, _) = self.already(inc, &why);
                return (inc, Fix::Refuted(why));
            }
            Fix::AlreadyDone(why) => {
                let why = why.clone();
                return self.already(inc, &why);
            }
            Fix::Planned => {
                inc.remediation = format!("Dry run: would deactivate the schedule ({request})");
                self.deactivated.push(FixNote {
                    item: format!("\"{name}\" ({id}): {}", fault.reason()),
                    incident: None,
                });
                inc
            }
            Fix::NotDone | Fix::Refuted(_) => inc,
        };
        (inc, fix)
    }

    /// Resolution with evidence but no write: the incident is reported resolved only when a prior episode is active.
    fn already(&mut self, mut inc: Incident, why: &str) -> (Incident, Fix) {
        inc.remediation = why.to_string();
        (
            resolved(inc, self.ctx.now()),
            Fix::AlreadyDone(why.to_string()),
        )
    }
}
