//! The playlist repoint of expired content (agents.md 6.2.2 step 2): the complete-list PATCH body
//! ([`repoint_body`]) and the audited PATCH with its verification.

use super::fields::{label, s};
use super::{PLAYLIST_LIST, Run, SLUG_PATCH_PLAYLISTS};
use crate::agents::common;
use crate::vizora::{ApiError, MutationRequest, MutationStatus, Precondition};
use reqwest::Method;
use serde_json::{Value, json};

/// The distinct playlist ids of a content detail's `playlistItems[]` (`playlistId`, else `playlist.id`), in order.
pub fn playlists_of(detail: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for it in detail
        .get("playlistItems")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let pid = s(it, "playlistId").or_else(|| it.get("playlist").and_then(|p| s(p, "id")));
        if let Some(p) = pid
            && !out.iter().any(|x| x == p)
        {
            out.push(p.to_string());
        }
    }
    out
}

/// Whether a playlist payload's `items[]` reference `content_id`; `None` when it has no `items` array.
pub fn playlist_contains(playlist: &Value, content_id: &str) -> Option<bool> {
    playlist
        .get("items")
        .and_then(Value::as_array)
        .map(|a| a.iter().any(|i| s(i, "contentId") == Some(content_id)))
}

/// The `PATCH /api/v1/playlists/:id` body of a repoint (agents.md 6.2.2 step 2): the complete item list of the fresh
/// playlist read, sorted by `order`, every `contentId == expired` replaced by `replacement`, each item
/// `{"contentId","order","duration"}` with a null `duration` (or `order`) omitted — the route replaces the whole list.
///
/// `Ok(None)` when the playlist no longer contains the expired id (nothing to do). Errors when the playlist has no
/// `items` array or an item lacks a string `contentId` (a partial list would delete items).
pub fn repoint_body(
    playlist: &Value,
    expired: &str,
    replacement: &str,
) -> Result<Option<Value>, String> {
    let items = playlist
        .get("items")
        .and_then(Value::as_array)
        .ok_or_else(|| "playlist read has no items array".to_string())?;
    if !items.iter().any(|i| s(i, "contentId") == Some(expired)) {
        return Ok(None);
    }
    let mut sorted: Vec<&Value> = items.iter().collect();
    sorted.sort_by_key(|i| i.get("order").and_then(Value::as_i64).unwrap_or(i64::MAX));
    let mut out = Vec::with_capacity(sorted.len());
    for it in sorted {
        let cid = s(it, "contentId")
            .ok_or_else(|| "playlist item without a string contentId".to_string())?;
        let mut o = serde_json::Map::new();
        o.insert(
            "contentId".into(),
            Value::String(if cid == expired { replacement } else { cid }.to_string()),
        );
        if let Some(order) = it.get("order").filter(|v| !v.is_null()) {
            o.insert("order".into(), order.clone());
        }
        if let Some(d) = it.get("duration").filter(|v| !v.is_null()) {
            o.insert("duration".into(), d.clone());
        }
        out.push(Value::Object(o));
    }
    Ok(Some(json!({ "items": out })))
}

#[derive(Debug, Clone)]
pub(super) enum Repoint {
    /// PATCH sent and the response no longer contains the expired id.
    Done,
    /// Nothing to do (playlist gone or no longer containing the item).
    Skipped(String),
    DryRun,
}

impl Run<'_> {
    /// Repoints one playlist from `expired` to `replacement` (6.2.2 step 2).
    pub(super) async fn repoint(
        &mut self,
        pid: &str,
        expired: &str,
        expired_name: &str,
        replacement: &str,
    ) -> Result<Repoint, String> {
        if let Some(d) = self.drift.get(SLUG_PATCH_PLAYLISTS) {
            return Err(format!(
                "playlist PATCH route drifted earlier in this run ({d})"
            ));
        }
        if self.past_deadline() {
            return Err("repoint deferred: run deadline reached".into());
        }
        if !self.plain_id("playlist", pid) {
            return Err(format!(
                "playlist id \"{}\" is not a plain id; never requested, so the playlist cannot be repointed",
                common::shown_id(pid)
            ));
        }
        let ppath = format!("{PLAYLIST_LIST}/{pid}");
        let pl = match self.api.get(&ppath).await {
            Ok(v) => v,
            Err(ApiError::NotFound { .. }) => {
                return Ok(Repoint::Skipped(format!("playlist {pid} gone")));
            }
            Err(e) => {
                self.check_fatal(&e);
                return Err(format!("playlist read failed: {e}"));
            }
        };
        let Some(body) = repoint_body(&pl, expired, replacement)? else {
            return Ok(Repoint::Skipped(format!(
                "playlist {pid} no longer contains the item"
            )));
        };
        // The body replaces the whole item list, so it must be built from the list the write replaces: the helper's
        // fresh `before` read must still carry the same items, else nothing is written (retried next run).
        let read_items = pl.get("items").cloned();
        let unchanged = Precondition::new(move |before: &Value| {
            if before.get("items").cloned() == read_items {
                Ok(())
            } else {
                Err("the playlist's items changed since it was read; not repointed this run".into())
            }
        });
        let out = self
            .api
            .mutate(MutationRequest {
                action: format!(
                    "Repoint playlist \"{}\" from expired content \"{expired_name}\" to its replacement {replacement}",
                    label(&pl)
                ),
                target: "playlist".into(),
                target_id: pid.to_string(),
                method: Method::PATCH,
                path: ppath.clone(),
                body,
                before_path: ppath.clone(),
                route_slug: SLUG_PATCH_PLAYLISTS.into(),
                idempotent: true,
                precondition: Some(unchanged),
            })
            .await;
        match &out.status {
            MutationStatus::DryRun => Ok(Repoint::DryRun),
            MutationStatus::Unneeded(evidence) => Err(evidence.clone()),
            MutationStatus::Gone => Ok(Repoint::Skipped(format!("playlist {pid} gone"))),
            MutationStatus::PreReadFailed(e) => {
                self.check_fatal(e);
                Err(format!("pre-write read failed: {e}"))
            }
            MutationStatus::SkippedDrift => {
                Err("playlist PATCH route drifted earlier in this run".into())
            }
            MutationStatus::Failed(e) => {
                self.mutated = true;
                self.check_fatal(e);
                if let Some(a) = out.action.clone() {
                    self.out.remediations.push(a);
                }
                match e {
                    ApiError::NotFound { .. } => {
                        Ok(Repoint::Skipped(format!("playlist {pid} gone")))
                    }
                    ApiError::RouteMissing { .. } => {
                        self.drift.insert(SLUG_PATCH_PLAYLISTS, e.to_string());
                        Err(format!("repoint failed: {e}"))
                    }
                    other => Err(format!("repoint failed: {other}")),
                }
            }
            MutationStatus::Done(after) => {
                self.mutated = true;
                self.route_ok.insert(SLUG_PATCH_PLAYLISTS);
                let contains = match playlist_contains(after, expired) {
                    Some(c) => Ok(c),
                    None => match self.api.get(&ppath).await {
                        Ok(v) => playlist_contains(&v, expired)
                            .ok_or_else(|| "playlist re-read has no items array".to_string()),
                        Err(e) => {
                            self.check_fatal(&e);
                            Err(format!("playlist re-read failed: {e}"))
                        }
                    },
                };
                let (ok, detail) = match &contains {
                    Ok(false) => (true, format!("items no longer contain {expired}")),
                    Ok(true) => (false, format!("items still contain {expired}")),
                    Err(e) => (false, e.clone()),
                };
                self.audit_verification(&out.audit_id, "playlist", pid, ok, &detail);
                if let Some(mut a) = out.action.clone() {
                    a.verified = Some(ok);
                    self.out.remediations.push(a);
                }
                if ok {
                    Ok(Repoint::Done)
                } else {
                    Err(format!("repoint not confirmed: {detail}"))
                }
            }
        }
    }
}
