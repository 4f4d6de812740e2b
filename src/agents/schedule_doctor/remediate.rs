//! Remediation of schedule-doctor (agents.md 6.4.2, 6.4.4): one audited, idempotent PATCH through the client's
//! mutation helper, whose fresh `before` read is also the confirmation; its outcome as a [`Fix`]. The writes
//! themselves are `deactivate` (a schedule) and `assign` (the fallback playlist); `verify` re-reads after a write.

use super::Run;
use crate::model::{Incident, ts};
use crate::vizora::{ApiError, MutationRequest, MutationStatus, Precondition};
use reqwest::Method;
use serde_json::Value;

/// How one remediation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Fix {
    /// Sent and verified by a re-read.
    Verified,
    /// Nothing to write: the fresh read shows it done already, or the entity is gone (the string says which).
    AlreadyDone(String),
    /// Dry run: the audit line was written, nothing sent.
    Planned,
    /// Not done (error text in the incident).
    NotDone,
    /// Not done because the finding was false: a fresh read embeds the "missing" playlist/display/group, or a direct
    /// read of it answered (agents.md 6.4.2). The schedule stays active; the string is the evidence.
    Refuted(String),
}

/// Whether a skipped write's evidence shows that the entity its verdict called absent exists (the precondition's
/// relation check below, or the client's absence read, [`Precondition::absent`]).
pub(super) fn refutes_absence(evidence: &str) -> bool {
    evidence.starts_with("a direct read") || evidence.starts_with(EMBEDS_EVIDENCE)
}

/// Start of the evidence when the schedule's fresh read embeds the relation its verdict called missing.
pub(super) const EMBEDS_EVIDENCE: &str = "a fresh read of the schedule embeds";

/// A verified (or, in a dry run, planned) fix for the batched notifications.
pub(super) struct FixNote {
    /// The line of the batched notification.
    pub(super) item: String,
    /// The resolved incident it refers to (none in a dry run).
    pub(super) incident: Option<Incident>,
}

impl Run<'_> {
    /// Sends one audited PATCH and verifies it with `verified(re-read)`. The helper's fresh `before` read is also the
    /// confirmation: `precondition` fails on it → nothing written, [`Fix::AlreadyDone`] with the evidence; 404 →
    /// `the <target> no longer exists; nothing to write`. `inc` gets attempts, errors and the remediation text.
    /// `slug` is the route slug for drift.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn patch(
        &mut self,
        inc: &mut Incident,
        action: String,
        target: &str,
        id: &str,
        path: &str,
        body: Value,
        slug: &'static str,
        precondition: Precondition,
        verified: impl Fn(&Value) -> bool,
        verify_detail: &str,
    ) -> Fix {
        let out = self
            .api
            .mutate(MutationRequest {
                action,
                target: target.to_string(),
                target_id: id.to_string(),
                method: Method::PATCH,
                path: path.to_string(),
                body: body.clone(),
                before_path: path.to_string(),
                route_slug: slug.to_string(),
                idempotent: true,
                precondition: Some(precondition),
            })
            .await;
        let now = self.ctx.now();
        match out.status {
            MutationStatus::DryRun => Fix::Planned,
            MutationStatus::Gone => {
                Fix::AlreadyDone(format!("the {target} no longer exists; nothing to write"))
            }
            MutationStatus::Unneeded(evidence) => Fix::AlreadyDone(evidence),
            MutationStatus::SkippedDrift => {
                inc.error = Some(format!(
                    "PATCH {path} not sent: the route drifted earlier in this run"
                ));
                Fix::NotDone
            }
            MutationStatus::PreReadFailed(e) => {
                if e.is_fatal() {
                    self.abort(&e);
                }
                inc.error = Some(format!("pre-write read failed: {e}"));
                Fix::NotDone
            }
            MutationStatus::Failed(e) => {
                self.mutated = true;
                inc.attempts += 1;
                inc.last_attempt_at = Some(ts(now));
                inc.error = Some(e.to_string());
                if let Some(a) = out.action {
                    self.o.remediations.push(a);
                }
                if matches!(e, ApiError::RouteMissing { .. }) {
                    self.drift
                        .entry(slug)
                        .or_insert_with(|| (format!("PATCH {path}"), e.to_string()));
                } else if e.is_fatal() {
                    self.abort(&e);
                }
                Fix::NotDone
            }
            MutationStatus::Done(_) => {
                self.mutated = true;
                self.route_ok.insert(slug);
                inc.attempts += 1;
                inc.last_attempt_at = Some(ts(now));
                self.verify_write(
                    inc,
                    out.audit_id,
                    out.action,
                    target,
                    id,
                    path,
                    verified,
                    verify_detail,
                )
                .await
            }
        }
    }
}

/// `"label" (id)`, or just the id when the label is the id (a display without a nickname).
pub(super) fn named(label: &str, id: &str) -> String {
    if label == id {
        id.to_string()
    } else {
        format!("\"{label}\" ({id})")
    }
}

#[cfg(test)]
mod tests {
    use crate::agents::schedule_doctor::detect::path_safe_id;

    #[test]
    fn path_ids_are_restricted_to_id_characters() {
        assert!(path_safe_id("cmt4zn6gwa6tjfh7kssxmv3bn"));
        assert!(path_safe_id("26f7c3c8-a5b3-4893-a4bd-39c4d4e1127e"));
        assert!(!path_safe_id("../admin"));
        assert!(!path_safe_id("a?b=1"));
        assert!(!path_safe_id(""));
    }
}
