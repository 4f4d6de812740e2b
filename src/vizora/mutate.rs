//! [`VizoraApi`] for [`Client`]: reads, the page walk, and the audited mutation gate (agents.md 5.8, 4.8).

use super::*;
use crate::model::{RemediationAction, ts};
use crate::state::audit::MutationLine;
use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Map, Value};
use std::time::Instant;

#[async_trait]
impl VizoraApi for Client {
    async fn get(&self, path: &str) -> Result<Value, ApiError> {
        self.request(Method::GET, path, None, true).await
    }

    async fn walk(&self, path: &str) -> Result<ListResult, ApiError> {
        let mut items: Vec<Value> = Vec::new();
        let mut r = self.walk_into(path, &mut items).await?;
        r.items = items;
        Ok(r)
    }

    async fn walk_into(&self, path: &str, sink: &mut dyn ItemSink) -> Result<ListResult, ApiError> {
        let first = self.walk_once(path, sink).await?;
        if first
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("different totals"))
        {
            crate::logging::warn(
                "api-client",
                format!("{path}: totals changed during the walk; walking once more"),
            );
            sink.restart();
            return self.walk_once(path, sink).await;
        }
        Ok(first)
    }

    async fn mutate(&self, req: MutationRequest) -> MutationOutcome {
        let none = |status| MutationOutcome {
            status,
            before: None,
            audit_id: None,
            action: None,
        };
        if self.drift.lock().expect("drift").contains(&req.route_slug) {
            return none(MutationStatus::SkippedDrift);
        }
        let started = chrono::Utc::now();
        let before = match self.get(&req.before_path).await {
            Ok(v) => v,
            Err(ApiError::NotFound { .. }) => return none(MutationStatus::Gone),
            Err(e) => return none(MutationStatus::PreReadFailed(e)),
        };
        if let Some(p) = &req.precondition
            && let Err(evidence) = p.check(&before)
        {
            return MutationOutcome {
                status: MutationStatus::Unneeded(evidence),
                before: Some(before),
                audit_id: None,
                action: None,
            };
        }
        // Absence from a list proves nothing (a list can lie consistently); a direct 404 does (agents.md 6.0).
        for a in req.precondition.iter().flat_map(|p| p.absences()) {
            match self.get(&a.path).await {
                Err(ApiError::NotFound { .. }) => {}
                Ok(_) => {
                    return MutationOutcome {
                        status: MutationStatus::Unneeded(format!(
                            "a direct read (GET {}) shows {} exists although its list omits it; nothing to write",
                            a.path, a.what
                        )),
                        before: Some(before),
                        audit_id: None,
                        action: None,
                    };
                }
                Err(e) => {
                    return MutationOutcome {
                        status: MutationStatus::PreReadFailed(e),
                        before: Some(before),
                        audit_id: None,
                        action: None,
                    };
                }
            }
        }
        let body_keys: Vec<&str> = req
            .body
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut line = MutationLine::new(
            &self.opts.run_id,
            &self.opts.agent,
            &req.action,
            req.method.as_str(),
            &req.target,
            &req.target_id,
            started,
            before.clone(),
            self.opts.dry_run,
        );
        line.endpoint = Some(req.path.clone());
        line.request = Some(req.body.clone());
        if self.opts.dry_run {
            if let Err(e) = self.audit.append(&line) {
                crate::logging::error("api-client", format!("audit append failed: {e}"));
            }
            return MutationOutcome {
                status: MutationStatus::DryRun,
                before: Some(before),
                audit_id: Some(line.id),
                action: None,
            };
        }
        let t0 = Instant::now();
        let res = self
            .request(
                req.method.clone(),
                &req.path,
                Some(&req.body),
                req.idempotent,
            )
            .await;
        line.duration_ms = Some(t0.elapsed().as_millis() as u64);
        let (status, after, error, http) = match res {
            Ok(v) => (MutationStatus::Done(v.clone()), Some(v), None, Some(200)),
            Err(ApiError::BadShape { status, .. }) => {
                crate::logging::warn(
                    "api-client",
                    format!(
                        "{} {}: success with an unparseable body",
                        req.method, req.path
                    ),
                );
                (
                    MutationStatus::Done(Value::Null),
                    Some(Value::Null),
                    None,
                    Some(status),
                )
            }
            Err(e) => {
                if matches!(e, ApiError::RouteMissing { .. }) {
                    self.drift
                        .lock()
                        .expect("drift")
                        .insert(req.route_slug.clone());
                }
                let s = e.status();
                (
                    MutationStatus::Failed(e.clone()),
                    None,
                    Some(e.to_string()),
                    s,
                )
            }
        };
        line.success = error.is_none();
        line.after = after.clone();
        line.error = error.clone();
        line.http_status = http;
        if let Err(e) = self.audit.append(&line) {
            crate::logging::error(
                "api-client",
                format!("audit append failed after a mutation: {e}"),
            );
        }
        let action = RemediationAction {
            agent: self.opts.agent.clone(),
            timestamp: ts(started),
            action: req.action.clone(),
            target: req.target.clone(),
            target_id: req.target_id.clone(),
            method: req.method.to_string(),
            endpoint: Some(req.path.clone()),
            before: Some(project(&before, &body_keys)),
            after: after.as_ref().map(|a| project(a, &body_keys)),
            success: error.is_none(),
            error,
            verified: None,
            run_id: Some(self.opts.run_id.clone()),
            extra: Map::new(),
        };
        MutationOutcome {
            status,
            before: Some(before),
            audit_id: Some(line.id),
            action: Some(action),
        }
    }

    async fn post_idempotent(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        self.request(Method::POST, path, Some(body), true).await
    }

    fn organization_id(&self) -> Option<String> {
        self.shared.org_id.lock().expect("org").clone()
    }

    fn drifted_routes(&self) -> Vec<String> {
        let mut v: Vec<String> = self.drift.lock().expect("drift").iter().cloned().collect();
        v.sort();
        v
    }
}
