//! One detail cache entry as owned values ([`CacheEntry`], [`ThumbnailCheck`]) and the fields of a
//! `GET /api/v1/content/:id` payload it keeps ([`DetailFields`], agents.md 6.2.1).

use crate::model::ts;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;

/// The last thumbnail probe of an item (agents.md 6.2.3): the probed URL, whether it answered as required, and when
/// (ISO timestamp). Reused while the URL is unchanged and `checkedAt` is younger than `OPS_THUMBNAIL_RECHECK_HOURS`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThumbnailCheck {
    /// The probed URL (`http(s)://…` or `minio://<key>`).
    pub url: String,
    /// The probe answered as required (final 2xx, or the object exists).
    pub ok: bool,
    /// When it was probed (ISO timestamp).
    pub checked_at: String,
    /// Why the probe failed (redacted), kept for the incident message of later runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What the agent keeps of one content detail read, as owned values (the interchange form of [`DetailCache::store`](super::DetailCache::store)
/// and [`DetailCache::get`](super::DetailCache::get); the cache itself holds compact slots).
#[derive(Debug, Clone, PartialEq)]
pub struct CacheEntry {
    /// `updatedAt` of the detail read (compared with the list item's for freshness).
    pub updated_at: String,
    /// When the detail was read (ISO).
    pub fetched_at: String,
    /// `status` of the detail read.
    pub status: String,
    /// `expiresAt` as the API wrote it (`None` = null). A non-string value is kept as its JSON text, which then
    /// fails to parse and makes the expiry check "not examined" (agents.md 9 item 18).
    pub expires_at: Option<String>,
    /// `replacementContentId` (`None` = null).
    pub replacement_content_id: Option<String>,
    /// `isGlobal` (`None` = null or absent).
    pub is_global: Option<bool>,
    /// The string `metadata.zones[].contentId` values (layouts reference content this way).
    pub zone_content_ids: Vec<String>,
    /// Last thumbnail probe, if any.
    pub thumbnail: Option<ThumbnailCheck>,
}

/// The fields of a detail payload the cache keeps, borrowed from it (validated once, see [`DetailFields::parse`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DetailFields<'a> {
    /// `updatedAt` (a string).
    pub updated_at: &'a str,
    /// `status` (a string).
    pub status: &'a str,
    /// `expiresAt` as written (`None` = null or missing; a non-string value as its JSON text).
    pub expires_at: Option<Cow<'a, str>>,
    /// `replacementContentId` (`None` = null, missing or blank).
    pub replacement_content_id: Option<&'a str>,
    /// `isGlobal` (`None` = null or missing).
    pub is_global: Option<bool>,
    /// The non-empty string `metadata.zones[].contentId` values.
    pub zone_content_ids: Vec<&'a str>,
}

impl<'a> DetailFields<'a> {
    /// Validates a `GET /api/v1/content/:id` payload.
    ///
    /// Errors (the read then counts as failed: the item stays without a fresh entry, i.e. not examined): the payload
    /// is not an object, `updatedAt` or `status` is not a string, `isGlobal` is neither boolean nor null,
    /// `replacementContentId` is neither string nor null, or `metadata.zones` exists but is not an array. A blank
    /// `replacementContentId` counts as null; zone `contentId`s that are not non-empty strings are skipped.
    pub fn parse(detail: &'a Value) -> Result<DetailFields<'a>, String> {
        let m = detail
            .as_object()
            .ok_or_else(|| "content detail is not a JSON object".to_string())?;
        let updated_at = m
            .get("updatedAt")
            .and_then(Value::as_str)
            .ok_or_else(|| "content detail has no string updatedAt".to_string())?;
        let status = m
            .get("status")
            .and_then(Value::as_str)
            .ok_or_else(|| "content detail has no string status".to_string())?;
        let expires_at = match m.get("expiresAt") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(Cow::Borrowed(s.as_str())),
            Some(other) => Some(Cow::Owned(other.to_string())),
        };
        let replacement_content_id = match m.get("replacementContentId") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => return Err("replacementContentId is neither a string nor null".into()),
        };
        let is_global = match m.get("isGlobal") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err("isGlobal is neither a boolean nor null".into()),
        };
        let zone_content_ids = match m.get("metadata").and_then(|md| md.get("zones")) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(zones)) => zones
                .iter()
                .filter_map(|z| z.get("contentId").and_then(Value::as_str))
                .filter(|s| !s.is_empty())
                .collect(),
            Some(_) => return Err("metadata.zones is not an array".into()),
        };
        Ok(DetailFields {
            updated_at,
            status,
            expires_at,
            replacement_content_id,
            is_global,
            zone_content_ids,
        })
    }
}

impl CacheEntry {
    /// Builds an entry from a `GET /api/v1/content/:id` payload read at `now` (errors as [`DetailFields::parse`]).
    pub fn from_detail(detail: &Value, now: DateTime<Utc>) -> Result<CacheEntry, String> {
        let f = DetailFields::parse(detail)?;
        Ok(CacheEntry {
            updated_at: f.updated_at.to_string(),
            fetched_at: ts(now),
            status: f.status.to_string(),
            expires_at: f.expires_at.map(Cow::into_owned),
            replacement_content_id: f.replacement_content_id.map(String::from),
            is_global: f.is_global,
            zone_content_ids: f.zone_content_ids.into_iter().map(String::from).collect(),
            thumbnail: None,
        })
    }
}

/// Whether a listed content item needs a detail entry (agents.md 6.2.1): `active`, or a layout that is not
/// `archived`/`expired` (its zones protect content).
pub fn needs_detail(item: &Value) -> bool {
    let status = item.get("status").and_then(Value::as_str).unwrap_or("");
    let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
    status == "active" || (kind == "layout" && status != "archived" && status != "expired")
}
