//! Verification of a sent write (agents.md 2.3, 6.4.2, 6.4.4): a re-read must show the new value; the result goes
//! into the audit log as a verification line, into the RemediationAction (`verified`) and into the fix count.

use super::remediate::Fix;
use super::{AGENT, Run};
use crate::model::{Incident, RemediationAction};
use crate::state::audit::VerificationLine;
use crate::vizora::ApiError;
use serde_json::Value;

impl Run<'_> {
    /// Appends the audit verification line of mutation `audit_id` (none when nothing was audited).
    fn verification_line(
        &self,
        audit_id: Option<&str>,
        target: &str,
        id: &str,
        ok: bool,
        detail: &str,
    ) {
        if let Some(mid) = audit_id {
            let line = VerificationLine::new(
                &self.ctx.run_id,
                AGENT.as_str(),
                mid,
                target,
                id,
                ok,
                detail,
                self.ctx.now(),
            );
            if let Err(e) = self.ctx.audit.append(&line) {
                self.ctx.error(format!("audit append failed: {e}"));
            }
        }
    }

    /// Re-reads `path` after a sent write and judges it with `verified`; `verify_detail` names the expected value
    /// (e.g. `isActive=false`). A 404 means the entity went away: nothing left to do.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn verify_write(
        &mut self,
        inc: &mut Incident,
        audit_id: Option<String>,
        action: Option<RemediationAction>,
        target: &str,
        id: &str,
        path: &str,
        verified: impl Fn(&Value) -> bool,
        verify_detail: &str,
    ) -> Fix {
        let (ok, detail, fix) = match self.api.get(path).await {
            Ok(v) if verified(&v) => (true, verify_detail.to_string(), Fix::Verified),
            Ok(_) => {
                let d = format!("re-read does not show {verify_detail}");
                inc.error = Some(format!("verification failed: {d}"));
                (false, d, Fix::NotDone)
            }
            Err(ApiError::NotFound { .. }) => (
                false,
                format!("{target} gone after the write"),
                Fix::AlreadyDone(format!("{target} no longer exists")),
            ),
            Err(e) => {
                if e.is_fatal() {
                    self.abort(&e);
                }
                inc.error = Some(format!("verification read failed: {e}"));
                (
                    false,
                    format!("verification read failed: {e}"),
                    Fix::NotDone,
                )
            }
        };
        self.verification_line(audit_id.as_deref(), target, id, ok, &detail);
        if let Some(mut a) = action {
            a.verified = Some(ok);
            self.o.remediations.push(a);
        }
        if ok {
            self.o.fixed += 1;
        }
        fix
    }
}
