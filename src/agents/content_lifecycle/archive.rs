//! The archive of one content item (agents.md 6.2.2 steps 4–5, 6.2.4, 6.2.5): the audited
//! `POST /api/v1/content/:id/archive` with its verification read ([`Archive`] says how it ended), and the one mapping
//! of an archive outcome to the incident of an expired or orphaned item (status, attempts, evidence, notes).

use super::fields::s;
use super::{CONTENT_LIST, Run, SLUG_ARCHIVE};
use crate::vizora::{ApiError, MutationRequest, MutationStatus, Precondition};
use reqwest::Method;
use serde_json::json;

/// How an archive call ended (agents.md 6.2.2 archive outcome classes).
#[derive(Debug, Clone)]
pub(super) enum Archive {
    /// Sent (2xx or 409) and the re-read shows `archived` or 404.
    Verified(String),
    /// Sent, but the re-read does not confirm it.
    NotConfirmed(String),
    /// 404 not starting with `Cannot ` (on the `before` read or the archive): gone.
    Gone(String),
    /// 405 or 404 `Cannot POST …`: contract drift.
    Drift(String),
    /// Other failure: transient, retried next run.
    Failed(String),
    /// Not sent (drift earlier, deadline).
    NotSent(String),
    /// Not sent: the fresh `before` read failed (not 404); the finding is without evidence.
    PreReadFailed(String),
    /// Not sent: the fresh `before` read failed the confirmation; the evidence why.
    Unneeded(String),
    /// Dry run: audit line written, nothing sent.
    DryRun,
}

impl Run<'_> {
    /// `POST /api/v1/content/:id/archive` `{}` through the mutation helper, then verification by re-reading. The
    /// helper's fresh `before` read is also the confirmation when `confirm` is given (one read, 6.2.4): failing it →
    /// [`Archive::Unneeded`] with the evidence, nothing written.
    pub(super) async fn archive(
        &mut self,
        id: &str,
        action: String,
        confirm: Option<Precondition>,
    ) -> Archive {
        if let Some(d) = self.drift.get(SLUG_ARCHIVE) {
            return Archive::NotSent(format!(
                "not archived: the archive route drifted earlier in this run ({d})"
            ));
        }
        if self.past_deadline() {
            return Archive::NotSent("archive deferred: run deadline reached".into());
        }
        if !self.plain_id("content", id) {
            return Archive::NotSent(
                "not archived: the content id is not a plain id, so it is never put in a request path".into(),
            );
        }
        let path = format!("{CONTENT_LIST}/{id}/archive");
        let out = self
            .api
            .mutate(MutationRequest {
                action,
                target: "content".into(),
                target_id: id.to_string(),
                method: Method::POST,
                path,
                body: json!({}),
                before_path: format!("{CONTENT_LIST}/{id}"),
                route_slug: SLUG_ARCHIVE.into(),
                idempotent: true,
                precondition: confirm,
            })
            .await;
        let verify = match &out.status {
            MutationStatus::DryRun => return Archive::DryRun,
            MutationStatus::Gone => {
                return Archive::Gone("content gone (404 on the pre-write read)".into());
            }
            MutationStatus::PreReadFailed(e) => {
                self.check_fatal(e);
                return Archive::PreReadFailed(format!("pre-write read failed: {e}"));
            }
            MutationStatus::Unneeded(evidence) => return Archive::Unneeded(evidence.clone()),
            MutationStatus::SkippedDrift => {
                return Archive::NotSent(
                    "not archived: the archive route drifted earlier in this run".into(),
                );
            }
            MutationStatus::Done(_) => true,
            MutationStatus::Failed(ApiError::Rejected { status: 409, .. }) => true,
            MutationStatus::Failed(_) => false,
        };
        self.mutated = true;
        if !verify {
            let MutationStatus::Failed(e) = &out.status else {
                unreachable!()
            };
            self.check_fatal(e);
            if let Some(a) = out.action.clone() {
                self.out.remediations.push(a);
            }
            return match e {
                ApiError::NotFound { .. } => {
                    self.route_ok.insert(SLUG_ARCHIVE);
                    Archive::Gone(format!("content gone ({e})"))
                }
                ApiError::RouteMissing { .. } => {
                    self.drift.insert(SLUG_ARCHIVE, e.to_string());
                    Archive::Drift(e.to_string())
                }
                other => Archive::Failed(other.to_string()),
            };
        }
        self.route_ok.insert(SLUG_ARCHIVE);
        let (ok, detail) = match self.api.get(&format!("{CONTENT_LIST}/{id}")).await {
            Ok(v) => {
                let st = s(&v, "status").unwrap_or("?").to_string();
                (st == "archived", format!("status={st}"))
            }
            Err(ApiError::NotFound { .. }) => (true, "status=404 (gone)".to_string()),
            Err(e) => {
                self.check_fatal(&e);
                (false, format!("verification read failed: {e}"))
            }
        };
        self.audit_verification(&out.audit_id, "content", id, ok, &detail);
        if let Some(mut a) = out.action.clone() {
            a.verified = Some(ok);
            self.out.remediations.push(a);
        }
        if ok {
            Archive::Verified(detail)
        } else {
            Archive::NotConfirmed(format!("archive not confirmed ({detail})"))
        }
    }
}
