//! The port agents use ([`VizoraApi`]), its list and mutation types (agents.md 5.3, 5.8).

use super::*;
use crate::model::RemediationAction;
use async_trait::async_trait;
use reqwest::Method;
use serde_json::Value;
use std::sync::Arc;

/// A page walk's outcome (agents.md 5.4).
#[derive(Debug, Clone, Default)]
pub struct ListResult {
    /// The collected items, de-duplicated by `id`, in list order. Empty after [`VizoraApi::walk_into`], which hands
    /// the items to its sink instead.
    pub items: Vec<Value>,
    /// How many unique items the walk handed over (equals `items.len()` after [`VizoraApi::walk`]).
    pub collected: usize,
    /// True only if every page succeeded, all reported the same `meta.total` and the unique ids equal it.
    pub complete: bool,
    /// The last `meta.total` seen.
    pub total: Option<u64>,
    /// Why the walk is incomplete.
    pub reason: Option<String>,
    /// Number of page requests made.
    pub pages: u32,
}

/// One audited API mutation (agents.md 5.8).
#[derive(Debug, Clone)]
pub struct MutationRequest {
    /// Human action, e.g. `Archive expired content "Summer Sale"`.
    pub action: String,
    /// Entity kind (`content`, `display`, `schedule`, `playlist`).
    pub target: String,
    /// Id of the target entity (audit `targetId`, RemediationAction `targetId`).
    pub target_id: String,
    /// HTTP method of the write (`POST` or `PATCH`; the client has no DELETE, agents.md 5.1).
    pub method: Method,
    /// Path under the origin, including `/api/v1`.
    pub path: String,
    /// JSON request body, sent as is; its top-level keys are also kept in the state's `before`/`after` projections.
    pub body: Value,
    /// Path of the fresh `before` read.
    pub before_path: String,
    /// Route slug for contract drift (`post-content-archive`, `patch-playlists`, …).
    pub route_slug: String,
    /// Retried on 5xx/timeouts (false for `POST /fleet/commands`; agents.md 5.6).
    pub idempotent: bool,
    /// A check of the fresh `before` read that must pass for the write to be sent (the agent's confirm step, e.g.
    /// "still active and unreferenced", 6.2.4); `None` = always send. One read serves as both the confirmation and
    /// the audited `before`.
    pub precondition: Option<Precondition>,
}

/// A confirmation of a mutation's fresh `before` read: `Ok(())` to send the write, `Err(evidence)` to skip it (the
/// evidence says why the finding no longer holds, e.g. `no longer active (status=archived)`). It may also require
/// absences ([`Precondition::absent`]): a verdict that rests on an id missing from another list is confirmed by a
/// direct read of that id answering 404 before anything is written (agents.md 6.0 "absence is confirmed").
#[derive(Clone)]
pub struct Precondition {
    pub(crate) check: Arc<PreconditionFn>,
    pub(crate) absent: Vec<Absence>,
}

/// The check behind a [`Precondition`]: the `before` read → `Ok(())` or the evidence.
pub type PreconditionFn = dyn Fn(&Value) -> Result<(), String> + Send + Sync;

/// An entity that must not exist for a write to be sent: `GET path` must answer 404 (agents.md 6.0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Absence {
    /// The detail path read, e.g. `/api/v1/playlists/<id>` (an id already checked to be path-safe).
    pub path: String,
    /// What it is, for the evidence, e.g. `playlist <id>`.
    pub what: String,
}

impl Precondition {
    /// Wraps a check of the `before` read.
    pub fn new(
        check: impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static,
    ) -> Precondition {
        Precondition {
            check: Arc::new(check),
            absent: Vec::new(),
        }
    }

    /// Also requires `GET path` to answer 404, read after the `before` read passed its check (one budgeted,
    /// retried GET per absence; a dry run makes it too). An answer with the entity → [`MutationStatus::Unneeded`]
    /// with the evidence `a direct read shows <what> exists …`; another failure → [`MutationStatus::PreReadFailed`]
    /// (absence unconfirmed, nothing written).
    pub fn absent(mut self, path: impl Into<String>, what: impl Into<String>) -> Precondition {
        self.absent.push(Absence {
            path: path.into(),
            what: what.into(),
        });
        self
    }

    /// Runs the check on `before`.
    pub fn check(&self, before: &Value) -> Result<(), String> {
        (self.check)(before)
    }

    /// The absences to confirm by direct reads, in order.
    pub fn absences(&self) -> &[Absence] {
        &self.absent
    }
}

impl std::fmt::Debug for Precondition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Precondition(..)")
    }
}

/// Outcome of a mutation.
#[derive(Debug, Clone)]
pub enum MutationStatus {
    /// Sent and succeeded; the unwrapped response (`Null` for a bad body, with a WARNING).
    Done(Value),
    /// Dry run: the audit line was written, nothing sent.
    DryRun,
    /// The `before` read answered 404: nothing written; the caller resolves.
    Gone,
    /// The `before` read failed otherwise: nothing written, finding stays open (`pre-write read failed: …`).
    PreReadFailed(ApiError),
    /// The `before` read failed the request's [`Precondition`]: nothing written, no audit line; the evidence why.
    Unneeded(String),
    /// The route drifted earlier in this run: not called.
    SkippedDrift,
    /// Sent and failed.
    Failed(ApiError),
}

/// A mutation's outcome with its audit id, `before` and the RemediationAction recorded for it (none for dry runs,
/// skipped or pre-read failures).
#[derive(Debug, Clone)]
pub struct MutationOutcome {
    /// What happened to the write.
    pub status: MutationStatus,
    /// The fresh `before` read (unwrapped entity JSON); `None` when the route drifted or the read failed or was 404.
    pub before: Option<Value>,
    /// Id (UUID) of the audit line written for this mutation (also for dry runs); `None` when nothing was audited.
    pub audit_id: Option<String>,
    /// The RemediationAction recorded for a sent write (success or failure, `verified: None`), with `before`/`after`
    /// projections (agents.md 2.3, 5.8); `None` unless the write was sent.
    pub action: Option<RemediationAction>,
}

impl MutationOutcome {
    /// The route answered 404 `Cannot …` or 405.
    pub fn is_drift(&self) -> bool {
        matches!(
            &self.status,
            MutationStatus::Failed(ApiError::RouteMissing { .. })
        )
    }
}

/// Receives the unique items of a page walk as each page arrives, so that an agent keeps only the small typed record
/// it needs of each item instead of whole pages of JSON (a 500 000-item content list is about 1.5 GB as
/// `serde_json::Value`s).
pub trait ItemSink: Send {
    /// One unique item (de-duplicated by `id`), in list order.
    fn item(&mut self, item: Value);
    /// The walk starts over (the list's total changed during the walk, agents.md 5.4): forget every item received.
    fn restart(&mut self);
}

impl ItemSink for Vec<Value> {
    fn item(&mut self, item: Value) {
        self.push(item);
    }
    fn restart(&mut self) {
        self.clear();
    }
}

/// What agents need from the API (a trait, so agents run against fakes in unit tests).
#[async_trait]
pub trait VizoraApi: Send + Sync {
    /// `GET path`, unwrapped.
    async fn get(&self, path: &str) -> Result<Value, ApiError>;
    /// Page walk of a list route, collecting the items in [`ListResult::items`].
    async fn walk(&self, path: &str) -> Result<ListResult, ApiError>;
    /// Page walk of a list route handing each unique item to `sink` as its page arrives; the result carries the
    /// counts and completeness, no items. The default collects through [`VizoraApi::walk`] (fakes); the real client
    /// streams, keeping one page in memory at a time.
    async fn walk_into(&self, path: &str, sink: &mut dyn ItemSink) -> Result<ListResult, ApiError> {
        let mut r = self.walk(path).await?;
        r.collected = r.items.len();
        for item in std::mem::take(&mut r.items) {
            sink.item(item);
        }
        Ok(r)
    }
    /// Audited mutation (agents.md 5.8).
    async fn mutate(&self, req: MutationRequest) -> MutationOutcome;
    /// Idempotent non-mutation POST (dashboard push), retried per 5.6. Not audited.
    async fn post_idempotent(&self, path: &str, body: &Value) -> Result<Value, ApiError>;
    /// The organization id of the ops user (after login).
    fn organization_id(&self) -> Option<String>;
    /// Route slugs that drifted in this run.
    fn drifted_routes(&self) -> Vec<String>;
}
