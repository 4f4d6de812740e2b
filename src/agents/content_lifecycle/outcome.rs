//! The run's bookkeeping on its [`AgentOutcome`](crate::agents::AgentOutcome): incidents and their ids, items not
//! examined (only prior incidents matter to the sweep, agents.md 2.5), sweep evidence, report notes, ids refused for
//! request paths (design/vizora-api.md 2.6), the deadline, fatal API errors and verification audit lines (4.4).

use super::Run;
use crate::agents::common;
use crate::model::{Incident, Severity, incident_id, ts};
use crate::state::audit::VerificationLine;
use crate::vizora::ApiError;
use std::time::Instant;

impl Run<'_> {
    pub(super) fn incident(
        &self,
        kind: &str,
        severity: Severity,
        target: &str,
        target_id: &str,
        message: impl Into<String>,
        remediation: impl Into<String>,
    ) -> Incident {
        self.ctx
            .incident(kind, severity, target, target_id, message, remediation)
    }

    pub(super) fn id(&self, kind: &str, target_id: &str) -> String {
        incident_id(self.ctx.agent, kind, target_id)
    }

    /// Records `kind`/`target_id` as not judged this run. Only ids of stored incidents matter to the sweep
    /// (src/state/mod.rs), so only those are recorded (no string per unexamined item).
    pub(super) fn unexamined(&mut self, kind: &str, target_id: &str) {
        if self
            .prior_kinds
            .get(target_id)
            .is_some_and(|ks| ks.iter().any(|k| k == kind))
        {
            let iid = self.id(kind, target_id);
            self.out.unexamined.insert(iid);
        }
    }

    /// Whether an API id may enter a request path ([`common::path_safe_id`]); a refused one is counted under `use`
    /// for the end-of-run WARNING and never requested.
    pub(super) fn plain_id(&mut self, what: &'static str, id: &str) -> bool {
        if common::path_safe_id(id) {
            return true;
        }
        let e = self
            .bad_ids
            .entry(what)
            .or_insert_with(|| (0, common::shown_id(id)));
        e.0 += 1;
        false
    }

    pub(super) fn past_deadline(&self) -> bool {
        Instant::now() >= self.ctx.deadline
    }

    /// Records a fatal API error (login/auth lost); later phases stop.
    pub(super) fn check_fatal(&mut self, e: &ApiError) {
        if e.is_fatal() && self.abort.is_none() {
            self.abort = Some(e.clone());
        }
    }

    pub(super) fn audit_verification(
        &self,
        mutation_id: &Option<String>,
        target: &str,
        target_id: &str,
        ok: bool,
        detail: &str,
    ) {
        if let Some(mid) = mutation_id {
            let line = VerificationLine::new(
                &self.ctx.run_id,
                self.ctx.agent.as_str(),
                mid,
                target,
                target_id,
                ok,
                detail,
                self.ctx.now(),
            );
            if let Err(e) = self.ctx.audit.append(&line) {
                self.ctx
                    .error(format!("audit append failed for a verification: {e}"));
            }
        }
    }
    /// Marks an archive attempt on an incident (attempts + 1, `lastAttemptAt`).
    pub(super) fn attempted(&self, inc: &mut Incident) {
        inc.attempts += 1;
        inc.last_attempt_at = Some(ts(self.ctx.now()));
    }

    /// An item skipped with evidence: its prior incident (if active) may be swept with this suffix.
    pub(super) fn evidence(&mut self, incident_id: &str, evidence: &str) {
        self.out
            .resolve_suffix
            .insert(incident_id.to_string(), format!(" — {evidence}"));
        self.out.unexamined.remove(incident_id);
    }

    pub(super) fn note_incident(&mut self, inc: &Incident, what: &str) {
        let err = inc
            .error
            .as_deref()
            .map(|e| format!(" — {e}"))
            .unwrap_or_default();
        self.out.note(format!(
            "{what} {} ({}): {}{err}",
            inc.target, inc.target_id, inc.remediation
        ));
    }
}
