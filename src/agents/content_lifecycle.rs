//! content-lifecycle (agents.md 6.2, catalogue 3.2): expired content (archive, with replacement repoint), orphaned
//! content (archive), missing thumbnails, oversized files and the organisation's storage quota.
//!
//! Flow of one run:
//!
//! 1. `GET /api/v1/organizations/storage` (read first: it also opens the session, so the concurrent walks share one
//!    login). The detail cache ([`super::content_cache`], 6.2.1) is loaded, then [`observe`] walks
//!    `GET /api/v1/content` and `GET /api/v1/playlists` concurrently (5.4), turning each item into the compact
//!    [`ContentTable`] / [`PlaylistRefs`] as its page arrives (no JSON kept; rows are linked to their cache entries).
//!    A page-1 failure or an unknown list shape ends the run with exit 2 and no state write; an incomplete walk raises
//!    info `scan-truncated` and covers none of the types depending on the lists.
//! 2. [`refresh_details`] refreshes stale entries within `OPS_CONTENT_DETAIL_READS_PER_RUN` reads, the budget and the
//!    deadline, storing each detail compactly as it arrives.
//! 3. Detection is pure ([`detect_expired`], [`harvest_references`], [`unreferenced_candidates`],
//!    [`thumbnail_check`], [`size_verdict`], [`storage_verdict`]); every mutation then goes through the audited
//!    mutation helper with a fresh `before` read and a confirming read of its own ([`confirm_expired`],
//!    [`confirm_orphan`]).
//! 4. Expired content (6.2.2): repoint playlists to a deliverable replacement (`PATCH /api/v1/playlists/:id` with the
//!    complete item list, [`repoint_body`]), then `POST /api/v1/content/:id/archive` and verify by re-reading.
//! 5. Orphans (6.2.4) only on a complete scan and a complete reference harvest; storage (6.2.5); thumbnails and
//!    sizes (6.2.3).
//! 6. Contract drift (exit 2, full write), fix notifications (7.6), inline critical alerts on drift and storage
//!    escalation, report lines, stats, and at the very end the cache write (never in a dry run, never without a
//!    state write). The runtime writes the state after this returns, so the cache is written just before it.
//!
//! Nothing here deletes anything: content is archived, playlists are repointed.

use super::common;
use super::content_cache::{CacheFile, DetailCache, EntryRef, ThumbnailCheck, refresh_plan};
use super::content_table::{
    ContentSink, ContentTable, HashSet64, PlaylistRefs, PlaylistSink, PriorSeen, SizeState,
    TableOptions, ThumbState, id_hash, is_http_url,
};
use super::{AgentContext, AgentOutcome, InlineAlert, InlineKind, WriteMode, resolved};
use crate::model::{Incident, IncidentStatus, Severity, incident_id, parse_ts, ts};
use crate::state::audit::VerificationLine;
use crate::vizora::{
    ApiError, ListResult, MutationRequest, MutationStatus, Precondition, VizoraApi,
};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Incident types of this agent (agents.md 3.2).
pub const CATALOGUE: &[&str] = &[
    T_EXPIRED,
    T_ORPHANED,
    T_THUMB,
    T_OVERSIZED,
    T_STORAGE_HIGH,
    T_STORAGE_FAILED,
    T_REF_INCOMPLETE,
    T_SCAN_TRUNCATED,
    T_DRIFT,
];

const T_EXPIRED: &str = "expired_content";
const T_ORPHANED: &str = "orphaned_content";
const T_THUMB: &str = "missing_thumbnail";
const T_OVERSIZED: &str = "oversized_file";
const T_STORAGE_HIGH: &str = "storage_high";
const T_STORAGE_FAILED: &str = "storage_check_failed";
const T_REF_INCOMPLETE: &str = "reference-scan-incomplete";
const T_SCAN_TRUNCATED: &str = "scan-truncated";
const T_DRIFT: &str = "api-contract-drift";

/// Route slug of the archive route (contract drift, 3.2).
pub const SLUG_ARCHIVE: &str = "post-content-archive";
/// Route slug of the playlist PATCH (contract drift, 3.2).
pub const SLUG_PATCH_PLAYLISTS: &str = "patch-playlists";

const CONTENT_LIST: &str = "/api/v1/content";
const PLAYLIST_LIST: &str = "/api/v1/playlists";
const STORAGE_PATH: &str = "/api/v1/organizations/storage";
/// Detail reads in flight at once (the host-wide budget paces them; the client re-logs in once for several
/// in-flight requests rejected with the same 401, agents.md 5.2).
const DETAIL_CONCURRENCY: usize = 4;
/// Most redirects a thumbnail HEAD follows (agents.md 6.2.3).
pub const THUMBNAIL_MAX_REDIRECTS: usize = 5;
const MIB: f64 = 1_048_576.0;

// ---------------------------------------------------------------------------------------------------------------
// Pure helpers over API JSON
// ---------------------------------------------------------------------------------------------------------------

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn id_of(v: &Value) -> Option<&str> {
    s(v, "id")
}

/// The label of a content item or playlist: `name`, else `title`, else the id; capped at 200 characters
/// ([`crate::model::label`], agents.md 2.2).
pub fn label(v: &Value) -> String {
    s(v, "name")
        .or_else(|| s(v, "title"))
        .filter(|n| !n.trim().is_empty())
        .map(|n| crate::model::label(n).into_owned())
        .unwrap_or_else(|| id_of(v).unwrap_or("?").to_string())
}

fn is_active(v: &Value) -> bool {
    s(v, "status") == Some("active")
}

/// Deliverable content (agents.md 6.0): `status == "active"` and `expiresAt` null or later than `now`. An unparseable
/// `expiresAt` is not deliverable (it cannot be proven).
pub fn is_deliverable(detail: &Value, now: DateTime<Utc>) -> bool {
    is_active(detail)
        && match detail.get("expiresAt") {
            None | Some(Value::Null) => true,
            Some(Value::String(t)) => parse_ts(t).is_some_and(|t| t > now),
            Some(_) => false,
        }
}

/// Formats bytes for messages: `150000000 bytes (143.1 MiB)`.
pub fn fmt_bytes(b: u64) -> String {
    format!("{b} bytes ({:.1} MiB)", b as f64 / MIB)
}

fn fmt_days(d: ChronoDuration) -> String {
    format!("{:.1}", d.num_seconds() as f64 / 86_400.0)
}

/// An active listed item whose fresh detail says it expired (agents.md 6.2.2).
#[derive(Debug, Clone, PartialEq)]
pub struct ExpiredFinding {
    /// Row of the item in the [`ContentTable`].
    pub row: u32,
    /// The content id (`<targetId>` of its `expired-content` incident).
    pub id: String,
    /// The listed label: `name`, else `title`, else the id.
    pub name: String,
    /// `expiresAt` as read.
    pub expires_at: String,
    /// `replacementContentId` of the cached detail (the fresh `before` read decides).
    pub replacement: Option<String>,
    /// The listed `fileSize` in bytes (0 when null).
    pub file_size: u64,
}

/// The expiry check over the list and the cache.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExpiredScan {
    /// Active items whose fresh cache entry has `expiresAt` ≤ `now`, in row order.
    pub findings: Vec<ExpiredFinding>,
    /// Rows of active items without a fresh entry or with an unparseable `expiresAt`: not examined.
    pub unexamined: Vec<u32>,
}

/// Expired content (agents.md 6.2.2): a listed `active` item with a fresh cache entry and `expiresAt` ≤ `now`;
/// without a fresh entry, or with an unparseable `expiresAt`, it is not examined. One pass over the rows; strings are
/// allocated only for findings.
pub fn detect_expired(
    table: &ContentTable,
    cache: &DetailCache,
    now: DateTime<Utc>,
) -> ExpiredScan {
    let mut out = ExpiredScan::default();
    for r in table.rows().filter(|r| table.is_active(*r)) {
        let Some(e) = cache.fresh(table, r) else {
            out.unexamined.push(r);
            continue;
        };
        match e.expires_time() {
            None => {}
            Some(Some(t)) if t <= now => out.findings.push(ExpiredFinding {
                row: r,
                id: table.id(r).to_string(),
                name: table.label(r).to_string(),
                expires_at: e.expires_at().unwrap_or_default().into_owned(),
                replacement: e.replacement().map(String::from),
                file_size: table.file_size(r),
            }),
            Some(Some(_)) => {}
            Some(None) => out.unexamined.push(r),
        }
    }
    out
}

/// Step 1 of 6.2.2 on the fresh `before` read: `Ok` if the item is still `active` and expired at `now`; otherwise the
/// evidence why the finding is dropped (not active any more, expiry moved forward, expiry cleared).
pub fn confirm_expired(before: &Value, now: DateTime<Utc>) -> Result<(), String> {
    if !is_active(before) {
        return Err(format!(
            "content no longer active (status={})",
            s(before, "status").unwrap_or("?")
        ));
    }
    match before.get("expiresAt") {
        None | Some(Value::Null) => Err("expiry cleared (expiresAt is null)".into()),
        Some(Value::String(t)) => match parse_ts(t) {
            Some(t) if t <= now => Ok(()),
            Some(t) => Err(format!("expiry moved forward to {}", ts(t))),
            None => Err(format!("expiresAt unparseable ({t})")),
        },
        Some(other) => Err(format!("expiresAt unparseable ({other})")),
    }
}

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

/// The content references of agents.md 6.2.4 and whether they are all known.
#[derive(Debug, Clone, Default)]
pub struct Harvest {
    /// [`id_hash`] of playlist `items[].contentId` ∪ zone `contentId`s of listed live layouts ∪
    /// `replacementContentId` of listed active items. A hash collision makes content look referenced (never
    /// archived): the safe direction.
    pub refs: HashSet64,
    /// Why the harvest is incomplete (empty = complete).
    pub gaps: Vec<String>,
}

impl Harvest {
    /// Every reference source was read.
    pub fn complete(&self) -> bool {
        self.gaps.is_empty()
    }
    /// Whether `id` is (or, on a hash collision, may be) referenced.
    pub fn references(&self, id: &str) -> bool {
        self.refs.contains(&id_hash(id))
    }
    /// A one-line reason for logs and the `reference-scan-incomplete` message.
    pub fn reason(&self) -> String {
        let mut g = self.gaps.clone();
        let n = g.len();
        g.truncate(3);
        if n > 3 {
            format!("{} (and {} more)", g.join("; "), n - 3)
        } else {
            g.join("; ")
        }
    }
}

/// Harvests the references (agents.md 6.2.4): all playlist `items[].contentId` (`playlists`, taken over), the
/// `metadata.zones[].contentId` strings of listed layouts not `archived`/`expired`, and the `replacementContentId` of
/// listed active items, the latter two from fresh cache entries. Complete only when every such layout and active item
/// has a fresh entry (items without a string id never have one) and every playlist carries an `items` array.
pub fn harvest_references(
    table: &ContentTable,
    playlists: PlaylistRefs,
    cache: &DetailCache,
) -> Harvest {
    let mut h = Harvest {
        refs: playlists.refs,
        gaps: Vec::new(),
    };
    if playlists.without_items > 0 {
        h.gaps.push(format!(
            "{} playlist(s) listed without an items array",
            playlists.without_items
        ));
    }
    let (mut layouts_missing, mut active_missing) = table.idless();
    for r in table.rows() {
        // Every row is active or a live layout (see ContentTable).
        let live_layout = table.is_layout(r);
        match cache.fresh(table, r) {
            Some(e) => {
                if live_layout {
                    h.refs.extend(e.zone_ids().map(id_hash));
                }
                if table.is_active(r)
                    && let Some(rep) = e.replacement()
                {
                    h.refs.insert(id_hash(rep));
                }
            }
            None if live_layout => layouts_missing += 1,
            None => active_missing += 1,
        }
    }
    if layouts_missing > 0 {
        h.gaps.push(format!(
            "{layouts_missing} layout(s) without a fresh detail (zone references unknown)"
        ));
    }
    if active_missing > 0 {
        h.gaps.push(format!(
            "{active_missing} active item(s) without a fresh detail (replacement pointers unknown)"
        ));
    }
    h
}

/// An unreferenced archive candidate (orphan or storage relief), by row; [`CandidateRef::materialize`] gives the
/// owned fields for messages and the confirm read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CandidateRef {
    /// Row of the item in the [`ContentTable`].
    pub row: u32,
    /// The listed `createdAt` (UTC), the sort key (oldest first).
    pub created_at: DateTime<Utc>,
}

/// An unreferenced archive candidate with its owned fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Row of the item in the [`ContentTable`].
    pub row: u32,
    /// The content id.
    pub id: String,
    /// The listed label: `name`, else `title`, else the id.
    pub name: String,
    /// The listed `type` (e.g. `image`, `video`; `?` when missing or not a string).
    pub kind: String,
    /// The listed `createdAt` (UTC).
    pub created_at: DateTime<Utc>,
    /// The listed `updatedAt` (the confirm read must show the same).
    pub updated_at: String,
    /// `fileSize` in bytes (0 when null).
    pub file_size: u64,
}

impl Candidate {
    /// The confirmation of its archive, run on the audited `before` read ([`confirm_orphan`] against the listed
    /// `updatedAt`, agents.md 6.2.4; storage relief uses the same, 6.2.5).
    pub fn confirmation(&self) -> Precondition {
        let listed_updated_at = self.updated_at.clone();
        Precondition::new(move |before| confirm_orphan(before, &listed_updated_at))
    }
}

impl CandidateRef {
    /// The owned fields of the candidate.
    pub fn materialize(&self, table: &ContentTable) -> Candidate {
        let r = self.row;
        Candidate {
            row: r,
            id: table.id(r).to_string(),
            name: table.label(r).to_string(),
            kind: table.kind(r).unwrap_or("?").to_string(),
            created_at: self.created_at,
            updated_at: table.updated_text(r).into_owned(),
            file_size: table.file_size(r),
        }
    }
}

/// Unreferenced content (agents.md 6.2.4 candidates; 6.2.5 uses the same rules with its own minimum age): listed
/// `active`, `type` ≠ `layout`, `createdAt` more than `min_age_days` days before `now`, not in the harvested
/// references, cache `isGlobal` not true, not in `exclude`; oldest first (then id). Items without a fresh entry or
/// with an unparseable `createdAt` are never candidates. One pass; no string is allocated.
pub fn unreferenced_candidates(
    table: &ContentTable,
    harvest: &Harvest,
    cache: &DetailCache,
    now: DateTime<Utc>,
    min_age_days: u64,
    exclude: &HashSet<String>,
) -> Vec<CandidateRef> {
    let min_age = ChronoDuration::days(min_age_days as i64);
    let mut out: Vec<CandidateRef> = table
        .rows()
        .filter(|r| table.is_active(*r) && !table.is_layout(*r))
        .filter_map(|r| {
            let created = table.created(r)?;
            if now - created <= min_age {
                return None;
            }
            let id = table.id(r);
            if harvest.references(id) {
                return None;
            }
            let e = cache.fresh(table, r)?;
            if e.is_global() == Some(true) || (!exclude.is_empty() && exclude.contains(id)) {
                return None;
            }
            Some(CandidateRef {
                row: r,
                created_at: created,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then_with(|| table.id(a.row).cmp(table.id(b.row)))
    });
    out
}

/// The per-candidate confirm of agents.md 6.2.4 on the fresh `before` read: `active`, empty `playlistItems`,
/// `isGlobal` not true and the listed `updatedAt`; otherwise the evidence to skip it.
pub fn confirm_orphan(before: &Value, listed_updated_at: &str) -> Result<(), String> {
    if !is_active(before) {
        return Err(format!(
            "no longer active (status={})",
            s(before, "status").unwrap_or("?")
        ));
    }
    match before.get("playlistItems") {
        Some(Value::Array(a)) if a.is_empty() => {}
        Some(Value::Array(a)) => {
            return Err(format!("now referenced by {} playlist item(s)", a.len()));
        }
        _ => return Err("detail carries no playlistItems array (references unknown)".into()),
    }
    if before.get("isGlobal").and_then(Value::as_bool) == Some(true) {
        return Err("global content (isGlobal=true)".into());
    }
    let upd = s(before, "updatedAt").unwrap_or("");
    if upd != listed_updated_at {
        return Err(format!(
            "changed since it was listed (updatedAt {listed_updated_at} → {upd})"
        ));
    }
    Ok(())
}

/// A thumbnail URL as the cache keeps it: credentials in userinfo or the query masked (agents.md 5.9; the cache file
/// is 0644), the URL itself otherwise. Probes use the listed URL; the cached form only says "same URL as probed".
pub fn cached_url_form(url: &str) -> std::borrow::Cow<'_, str> {
    if url.contains(['@', '?']) {
        std::borrow::Cow::Owned(crate::redact::redact_str(url))
    } else {
        std::borrow::Cow::Borrowed(url)
    }
}

/// How a thumbnail is judged (agents.md 6.2.3); strings borrow from the table and the cache.
#[derive(Debug, Clone, PartialEq)]
pub enum ThumbCheck<'a> {
    /// `thumbnail` is null: finding without a probe.
    Missing,
    /// A cached probe of the same URL younger than the recheck interval.
    Cached {
        /// The cached probe answered as required (final 2xx, or the object exists).
        ok: bool,
        /// Why the cached probe failed (redacted); `None` when it passed or gave no reason.
        detail: Option<&'a str>,
    },
    /// Probe `HEAD url` (http/https).
    Http(&'a str),
    /// Probe `HeadObject` of this key in `MINIO_BUCKET`.
    S3(&'a str),
    /// Not examined (S3 unconfigured, unknown URL form, unparseable field).
    NotExamined(&'static str),
}

/// The thumbnail check of row `r` if it is a listed active image or video (`None` for other items): null →
/// [`ThumbCheck::Missing`]; a cached result for the same URL checked less than `recheck_hours` before `now` →
/// [`ThumbCheck::Cached`]; `http(s)` → [`ThumbCheck::Http`]; `minio://<key>` → [`ThumbCheck::S3`] when
/// `s3_configured`, else not examined; anything else → not examined. `entry` is the row's fresh cache entry.
pub fn thumbnail_check<'a>(
    table: &'a ContentTable,
    r: u32,
    entry: Option<EntryRef<'a>>,
    now: DateTime<Utc>,
    recheck_hours: u64,
    s3_configured: bool,
) -> Option<ThumbCheck<'a>> {
    if !table.is_active(r) {
        return None;
    }
    let url = match table.thumb(r) {
        ThumbState::NoCheck => return None,
        ThumbState::Missing => return Some(ThumbCheck::Missing),
        ThumbState::NotString => return Some(ThumbCheck::NotExamined("thumbnail is not a string")),
        // Not kept: the cache held no probe for the item, so only the URL form decides.
        ThumbState::MinioNotKept if s3_configured => {
            return Some(ThumbCheck::NotExamined("minio:// thumbnail URL not kept"));
        }
        ThumbState::MinioNotKept => {
            return Some(ThumbCheck::NotExamined(
                "minio:// thumbnail and S3 is not configured",
            ));
        }
        ThumbState::OtherNotKept => {
            return Some(ThumbCheck::NotExamined("unknown thumbnail URL form"));
        }
        ThumbState::Url(span) => table.text(span),
    };
    if let Some(t) = entry.and_then(|e| e.thumbnail())
        && t.url == cached_url_form(url)
        && parse_ts(&t.checked_at).is_some_and(|at| {
            let age = now - at;
            age >= ChronoDuration::zero() && age < ChronoDuration::hours(recheck_hours as i64)
        })
    {
        return Some(ThumbCheck::Cached {
            ok: t.ok,
            detail: t.detail.as_deref(),
        });
    }
    Some(if is_http_url(url) {
        ThumbCheck::Http(url)
    } else if let Some(key) = url.strip_prefix("minio://") {
        if s3_configured {
            ThumbCheck::S3(key)
        } else {
            ThumbCheck::NotExamined("minio:// thumbnail and S3 is not configured")
        }
    } else {
        ThumbCheck::NotExamined("unknown thumbnail URL form")
    })
}

/// The size check of a listed active item (agents.md 6.2.3).
#[derive(Debug, Clone, PartialEq)]
pub enum SizeVerdict {
    /// Within the limit, or no file (`fileSize` null).
    Ok,
    /// `fileSize` > limit (bytes).
    Oversized(u64),
    /// `fileSize` present but not a non-negative integer: not examined.
    Unparseable,
}

/// The listed `fileSize` of row `r` against `max_bytes` (strictly greater is oversized).
pub fn size_verdict(table: &ContentTable, r: u32, max_bytes: u64) -> SizeVerdict {
    match table.size(r) {
        SizeState::Null => SizeVerdict::Ok,
        SizeState::Bytes(b) if b > max_bytes => SizeVerdict::Oversized(b),
        SizeState::Bytes(_) => SizeVerdict::Ok,
        SizeState::Unparseable => SizeVerdict::Unparseable,
    }
}

/// The storage verdict of agents.md 6.2.5.
#[derive(Debug, Clone, PartialEq)]
pub enum StorageVerdict {
    /// No verdict (`quotaBytes` ≤ 0, missing or unparseable fields).
    NoVerdict(String),
    /// `pct` ≤ warning threshold.
    Ok {
        /// `usedBytes` (bytes).
        used: u64,
        /// `quotaBytes` (bytes, > 0).
        quota: u64,
        /// `used / quota × 100` (percent).
        pct: f64,
    },
    /// warning < `pct` ≤ critical.
    Warning {
        /// `usedBytes` (bytes).
        used: u64,
        /// `quotaBytes` (bytes, > 0).
        quota: u64,
        /// `used / quota × 100` (percent).
        pct: f64,
    },
    /// `pct` > critical.
    Critical {
        /// `usedBytes` (bytes).
        used: u64,
        /// `quotaBytes` (bytes, > 0).
        quota: u64,
        /// `used / quota × 100` (percent).
        pct: f64,
    },
}

/// Judges a `GET /organizations/storage` payload: `pct = usedBytes / quotaBytes × 100` against `warn_pct` and
/// `crit_pct` (strict `>`).
pub fn storage_verdict(payload: &Value, warn_pct: f64, crit_pct: f64) -> StorageVerdict {
    let num = |k: &str| payload.get(k).and_then(Value::as_f64);
    let (Some(used), Some(quota)) = (num("usedBytes"), num("quotaBytes")) else {
        return StorageVerdict::NoVerdict("usedBytes/quotaBytes missing or not numbers".into());
    };
    if quota <= 0.0 {
        return StorageVerdict::NoVerdict(format!("quotaBytes is {quota} (no quota)"));
    }
    if used < 0.0 {
        return StorageVerdict::NoVerdict(format!("usedBytes is {used}"));
    }
    let pct = used / quota * 100.0;
    let (used, quota) = (used as u64, quota as u64);
    if pct > crit_pct {
        StorageVerdict::Critical { used, quota, pct }
    } else if pct > warn_pct {
        StorageVerdict::Warning { used, quota, pct }
    } else {
        StorageVerdict::Ok { used, quota, pct }
    }
}

/// Whether storage archiving must go on: projected usage `(used − freed) / quota × 100` is still ≥ `crit_pct`.
pub fn storage_still_critical(used: u64, freed: u64, quota: u64, crit_pct: f64) -> bool {
    quota > 0 && (used.saturating_sub(freed) as f64 / quota as f64 * 100.0) >= crit_pct
}

// ---------------------------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------------------------

/// What the list walks of one run leave (agents.md 6.2 inputs): the compact content table, the playlist references,
/// and the two walks' results (their `items` are empty: every item went to a sink; `collected` is the count).
#[derive(Debug)]
pub struct Observation {
    /// One compact row per listed content item (`GET /api/v1/content`).
    pub table: ContentTable,
    /// The content references harvested from the listed playlists (`GET /api/v1/playlists`).
    pub playlists: PlaylistRefs,
    /// The content walk's result (`complete`, `total`, `collected`, `reason`, `pages`).
    pub content_list: ListResult,
    /// The playlist walk's result.
    pub playlist_list: ListResult,
}

impl Observation {
    /// Both walks are complete (`scanComplete`).
    pub fn scan_complete(&self) -> bool {
        self.content_list.complete && self.playlist_list.complete
    }
}

/// The list walks of agents.md 6.2 (`GET /api/v1/content` and `GET /api/v1/playlists`, concurrently, 5.4), each item
/// turned into its compact form as its page arrives ([`ContentSink`] linked to `cache`, [`PlaylistSink`]).
///
/// Errors: a page-1 failure, a fatal API error or an unknown list shape of either walk →
/// `required list failed: <path>: <error>[; …]` (the run then ends with exit 2 and no state write).
pub async fn observe(
    api: &dyn VizoraApi,
    cache: &DetailCache,
    opts: TableOptions,
) -> Result<Observation, String> {
    let mut table = ContentTable::new(opts);
    let mut playlists = PlaylistRefs::default();
    let (c, p) = {
        let mut cs = ContentSink {
            table: &mut table,
            cache: Some(cache),
        };
        let mut ps = PlaylistSink(&mut playlists);
        tokio::join!(
            api.walk_into(CONTENT_LIST, &mut cs),
            api.walk_into(PLAYLIST_LIST, &mut ps)
        )
    };
    match (c, p) {
        (Ok(content_list), Ok(playlist_list)) => Ok(Observation {
            table,
            playlists,
            content_list,
            playlist_list,
        }),
        (c, p) => {
            let mut why = Vec::new();
            if let Err(e) = &c {
                why.push(format!("{CONTENT_LIST}: {e}"));
            }
            if let Err(e) = &p {
                why.push(format!("{PLAYLIST_LIST}: {e}"));
            }
            Err(format!("required list failed: {}", why.join("; ")))
        }
    }
}

/// Counts of one [`refresh_details`] pass.
#[derive(Debug, Default)]
pub struct RefreshReport {
    /// Details read and stored.
    pub ok: usize,
    /// Reads that failed or returned an unusable detail (the item stays not examined).
    pub failed: usize,
    /// Reads not made (deadline or budget): they wait for the next run.
    pub deferred: usize,
    /// Items whose detail answered 404 (gone since the list was read; marked gone in the table, entry removed).
    pub gone: usize,
    /// Stale or missing entries before the pass.
    pub stale_total: usize,
    /// Reads planned this run (at most the limit).
    pub planned: usize,
    /// Listed ids that are not plain ids ([`common::path_safe_id`]): never requested, the item stays not examined.
    pub invalid_ids: usize,
    /// The first fatal API error (login lost): the run stops after this pass.
    pub fatal: Option<ApiError>,
}

/// Refreshes stale or missing entries (agents.md 6.2.1): the [`refresh_plan`] of `limit` reads,
/// `GET /api/v1/content/:id` with `concurrency` in flight (paced by the client's budget), no new read after
/// `deadline`. Each detail becomes a compact entry as it arrives (no payload is kept); 404 → the row is marked gone and
/// its entry removed. `warn` receives one line per failed read; `now` stamps `fetchedAt`.
#[allow(clippy::too_many_arguments)]
pub async fn refresh_details(
    api: &dyn VizoraApi,
    table: &mut ContentTable,
    cache: &mut DetailCache,
    limit: usize,
    concurrency: usize,
    deadline: Instant,
    now: &(dyn Fn() -> DateTime<Utc> + Sync),
    warn: &mut (dyn FnMut(String) + Send),
) -> RefreshReport {
    let (mut plan, stale_total) = refresh_plan(table, cache, limit);
    // An API id enters a request path only when it is a plain id (design/vizora-api.md 2.6); the others are never
    // requested and stay not examined, reported by one WARNING per pass (never one per item).
    let before = plan.len();
    let mut first_bad: Option<String> = None;
    plan.retain(|&r| {
        let ok = common::path_safe_id(table.id(r));
        if !ok && first_bad.is_none() {
            first_bad = Some(common::shown_id(table.id(r)));
        }
        ok
    });
    let mut rep = RefreshReport {
        stale_total,
        planned: plan.len(),
        invalid_ids: before - plan.len(),
        ..RefreshReport::default()
    };
    if let Some(ex) = first_bad {
        warn(format!(
            "{CONTENT_LIST}: {} listed id(s) are not plain ids (e.g. \"{ex}\"); never requested, not examined",
            rep.invalid_ids
        ));
    }
    let mut links: Vec<(u32, u32)> = Vec::with_capacity(plan.len());
    let mut gone: Vec<u32> = Vec::new();
    {
        let t: &ContentTable = table;
        let mut results = futures::stream::iter(plan)
            .map(|r| {
                let path = format!("{CONTENT_LIST}/{}", t.id(r));
                async move {
                    if Instant::now() >= deadline {
                        return (r, None);
                    }
                    (r, Some(api.get(&path).await))
                }
            })
            .buffer_unordered(concurrency.max(1));
        while let Some((r, res)) = results.next().await {
            let id = t.id(r);
            match res {
                None => rep.deferred += 1,
                Some(Ok(v)) => match cache.store_detail(id, &v, now()) {
                    Ok(slot) => {
                        links.push((r, slot));
                        rep.ok += 1;
                    }
                    Err(why) => {
                        rep.failed += 1;
                        warn(format!(
                            "content {id}: detail not usable ({why}); not examined"
                        ));
                    }
                },
                Some(Err(ApiError::NotFound { .. })) => {
                    cache.remove(id);
                    gone.push(r);
                }
                Some(Err(e)) => {
                    if e.is_fatal() && rep.fatal.is_none() {
                        rep.fatal = Some(e.clone());
                    }
                    if matches!(e, ApiError::BudgetExhausted { .. }) {
                        rep.deferred += 1;
                    } else {
                        rep.failed += 1;
                        warn(format!("content detail read failed: {e}"));
                    }
                }
            }
        }
    }
    for (r, slot) in links {
        table.set_entry(r, slot);
    }
    rep.gone = gone.len();
    for r in gone {
        table.mark_gone(r);
    }
    rep
}

/// How an archive call ended (agents.md 6.2.2 archive outcome classes).
#[derive(Debug, Clone)]
enum Archive {
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

#[derive(Debug, Clone)]
enum Repoint {
    /// PATCH sent and the response no longer contains the expired id.
    Done,
    /// Nothing to do (playlist gone or no longer containing the item).
    Skipped(String),
    DryRun,
}

struct Run<'a> {
    ctx: &'a AgentContext,
    api: Arc<dyn VizoraApi>,
    out: AgentOutcome,
    now: DateTime<Utc>,
    priors: HashMap<String, Incident>,
    /// Prior incident kinds by target id (only stored incidents matter for `unexamined`).
    prior_kinds: HashMap<String, Vec<String>>,
    cache: DetailCache,
    table: ContentTable,
    /// Set when a fatal API error (second 401, login failure) stops the run.
    abort: Option<ApiError>,
    /// A mutation was sent (for the partial-write rule of 1.4).
    mutated: bool,
    /// Ids archived (verified) this run, with their file size.
    archived: HashMap<String, u64>,
    /// Ids judged by a remediation path this run (expired, orphan): excluded from later archive candidates.
    handled: HashSet<String>,
    drift: HashMap<&'static str, String>,
    route_ok: HashSet<&'static str>,
    fixed_expired: Vec<(String, Incident)>,
    fixed_orphans: Vec<(String, Incident)>,
    storage_archived: Vec<String>,
    planned_expired: Vec<String>,
    planned_orphans: Vec<String>,
    /// Dry run: ids that would have been archived, with their size (so the plan matches the real run).
    planned_sizes: HashMap<String, u64>,
    stats: serde_json::Map<String, Value>,
    s3: Option<Result<Arc<object_store::aws::AmazonS3>, String>>,
    /// Ids from the API refused for a request path ([`common::path_safe_id`]), by use: count and the first one
    /// (one WARNING per use at the end of the run, never one per item).
    bad_ids: std::collections::BTreeMap<&'static str, (usize, String)>,
}

/// Runs the agent once (agents.md 6.2).
pub async fn run(ctx: &AgentContext) -> AgentOutcome {
    let priors = ctx.priors();
    let mut prior_kinds: HashMap<String, Vec<String>> = HashMap::new();
    for id in priors.keys() {
        if let Some((agent, kind, target)) = crate::model::parse_incident_id(id)
            && agent == ctx.agent.as_str()
        {
            prior_kinds
                .entry(target.to_string())
                .or_default()
                .push(kind.to_string());
        }
    }
    let mut r = Run {
        ctx,
        api: ctx.api().clone(),
        out: AgentOutcome::new(CATALOGUE),
        now: ctx.started,
        priors,
        prior_kinds,
        cache: DetailCache::default(),
        table: ContentTable::default(),
        abort: None,
        mutated: false,
        archived: HashMap::new(),
        handled: HashSet::new(),
        drift: HashMap::new(),
        route_ok: HashSet::new(),
        fixed_expired: Vec::new(),
        fixed_orphans: Vec::new(),
        storage_archived: Vec::new(),
        planned_expired: Vec::new(),
        planned_orphans: Vec::new(),
        planned_sizes: HashMap::new(),
        stats: serde_json::Map::new(),
        s3: None,
        bad_ids: std::collections::BTreeMap::new(),
    };
    r.run().await;
    r.out
}

/// The per-content incident types whose prior incidents the sweep judges from the list.
const PER_CONTENT: [&str; 4] = [T_EXPIRED, T_ORPHANED, T_THUMB, T_OVERSIZED];

impl<'a> Run<'a> {
    fn incident(
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

    fn id(&self, kind: &str, target_id: &str) -> String {
        incident_id(self.ctx.agent, kind, target_id)
    }

    /// Records `kind`/`target_id` as not judged this run. Only ids of stored incidents matter to the sweep
    /// (src/state/mod.rs), so only those are recorded (no string per unexamined item).
    fn unexamined(&mut self, kind: &str, target_id: &str) {
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
    fn plain_id(&mut self, what: &'static str, id: &str) -> bool {
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

    fn past_deadline(&self) -> bool {
        Instant::now() >= self.ctx.deadline
    }

    /// Records a fatal API error (login/auth lost); later phases stop.
    fn check_fatal(&mut self, e: &ApiError) {
        if e.is_fatal() && self.abort.is_none() {
            self.abort = Some(e.clone());
        }
    }

    fn audit_verification(
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

    async fn run(&mut self) {
        // The storage figures are read first: this request also opens the session, so the two concurrent walks
        // below share one login instead of racing to log in twice.
        let storage_read = self.api.get(STORAGE_PATH).await;
        if let Err(e) = &storage_read
            && e.is_fatal()
        {
            self.out
                .fail(format!("{STORAGE_PATH}: {e}"), WriteMode::None);
            return;
        }

        // The detail cache (6.2.1) is loaded before the walks, so each listed item is linked to its entry as it
        // streams past.
        let cache_file = CacheFile::from_config(&self.ctx.cfg);
        let loaded = cache_file.load(self.ctx.effects().is_dry_run());
        for w in &loaded.warnings {
            self.ctx.warn(w);
        }
        for e in &loaded.errors {
            self.ctx.error(e);
        }
        self.cache = loaded.cache;

        // 1. Walks (concurrent, 5.4), straight into the compact table.
        let prior_targets = self
            .priors
            .values()
            .filter(|p| p.is_active() && PER_CONTENT.contains(&p.kind.as_str()))
            .map(|p| p.target_id.clone())
            .collect();
        let opts = TableOptions {
            s3_configured: self.ctx.cfg.db.s3_endpoint.is_some(),
            prior_targets,
        };
        let api = self.api.clone();
        let obs = match observe(&*api, &self.cache, opts).await {
            Ok(o) => o,
            Err(msg) => {
                self.out.fail(msg, WriteMode::None);
                return;
            }
        };
        let scan_complete = obs.scan_complete();
        let Observation {
            table,
            playlists,
            content_list: content,
            playlist_list,
        } = obs;
        self.table = table;
        self.ctx.info(format!(
            "fetched {} content item(s) ({}), {} playlist(s) ({})",
            content.collected,
            if content.complete {
                "complete"
            } else {
                "incomplete"
            },
            playlist_list.collected,
            if playlist_list.complete {
                "complete"
            } else {
                "incomplete"
            }
        ));
        self.stats
            .insert("contentListed".into(), json!(content.collected));
        self.stats
            .insert("playlistsListed".into(), json!(playlist_list.collected));
        self.stats
            .insert("scanComplete".into(), json!(scan_complete));
        self.out.cover(T_SCAN_TRUNCATED);
        if !scan_complete {
            let mut parts = Vec::new();
            for (name, l) in [("content", &content), ("playlists", &playlist_list)] {
                if !l.complete {
                    parts.push(format!(
                        "{name}: collected {}/{} ({})",
                        l.collected,
                        l.total.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
                        l.reason.as_deref().unwrap_or("incomplete")
                    ));
                }
            }
            let msg = format!("entity list walk incomplete: {}", parts.join("; "));
            self.ctx.warn(&msg);
            self.out
                .note(format!("scan truncated: {}", parts.join("; ")));
            let inc = self.incident(
                T_SCAN_TRUNCATED,
                Severity::Info,
                "content",
                "entity-lists",
                msg,
                "Investigate the failing page or the API (logs of vizora-middleware); content-list checks and \
                 archiving wait for a complete scan",
            );
            self.out.raise(inc);
        }

        // 2. Detail cache refresh (6.2.1).
        self.refresh_details().await;
        if scan_complete {
            let dropped = self.cache.retain_listed(&self.table);
            if dropped > 0 {
                self.ctx.info(format!(
                    "content cache: dropped {dropped} entries no longer needed"
                ));
            }
        }
        if self.abort.is_some() {
            return self.finish(&cache_file).await;
        }

        // 3. Expired content (6.2.2).
        self.expired(scan_complete).await;
        if self.abort.is_some() {
            return self.finish(&cache_file).await;
        }

        // 4. Orphans (6.2.4).
        let harvest = harvest_references(&self.table, playlists, &self.cache);
        let archivable = if !scan_complete {
            Err("content or playlist walk incomplete".to_string())
        } else if !harvest.complete() {
            Err(format!(
                "reference harvest incomplete: {}",
                harvest.reason()
            ))
        } else {
            Ok(())
        };
        self.out.cover(T_REF_INCOMPLETE);
        match &archivable {
            Ok(()) => {
                self.orphans(&harvest).await;
            }
            Err(reason) => {
                self.ctx.info(format!("orphan archive skipped: {reason}"));
                self.out.note(format!("orphan archive skipped: {reason}"));
                let inc = self.incident(
                    T_REF_INCOMPLETE,
                    Severity::Info,
                    "content",
                    "content-references",
                    format!(
                        "References to content are not all known ({reason}); orphan and storage archiving \
                         skipped this run"
                    ),
                    "None needed if the cache is still warming (one run reads up to \
                     OPS_CONTENT_DETAIL_READS_PER_RUN details); otherwise check the failing reads in the log",
                );
                self.out.raise(inc);
            }
        }
        if self.abort.is_some() {
            return self.finish(&cache_file).await;
        }

        // 5. Storage (6.2.5).
        self.storage(storage_read, &harvest, archivable.is_ok())
            .await;
        if self.abort.is_some() {
            return self.finish(&cache_file).await;
        }

        // 6. Thumbnails and size (6.2.3).
        self.thumbnails_and_size(scan_complete).await;

        // Sweep evidence for prior per-content incidents.
        if scan_complete {
            let mut suffixes = Vec::new();
            for p in self.priors.values().filter(|p| p.is_active()) {
                if !PER_CONTENT.contains(&p.kind.as_str()) {
                    continue;
                }
                let sfx = match self.table.prior_seen(&p.target_id) {
                    None => " — content no longer listed (gone)".to_string(),
                    Some(PriorSeen::Inactive(st)) => {
                        format!(" — content no longer active (status={st})")
                    }
                    Some(PriorSeen::Active) => continue,
                };
                suffixes.push((p.id.clone(), sfx));
            }
            for (id, sfx) in suffixes {
                self.out.resolve_suffix.entry(id).or_insert(sfx);
            }
        }
        self.finish(&cache_file).await;
    }

    /// Refreshes stale or missing entries within the read budget and the deadline ([`refresh_details`]) and logs the
    /// counts.
    async fn refresh_details(&mut self) {
        let limit = self.ctx.cfg.entity.content_detail_reads_per_run;
        let api = self.api.clone();
        let ctx = self.ctx;
        let now = || ctx.now();
        let mut warn = |m: String| ctx.warn(m);
        let rep = refresh_details(
            &*api,
            &mut self.table,
            &mut self.cache,
            limit,
            DETAIL_CONCURRENCY,
            ctx.deadline,
            &now,
            &mut warn,
        )
        .await;
        if let Some(e) = &rep.fatal {
            self.check_fatal(e);
        }
        let left = rep.stale_total.saturating_sub(rep.ok + rep.gone);
        self.ctx.info(format!(
            "detail cache: {} entries, {} refreshed, {} failed, {} deferred, {} gone, {left} still stale",
            self.cache.len(),
            rep.ok,
            rep.failed,
            rep.deferred,
            rep.gone
        ));
        self.stats
            .insert("detailReads".into(), json!(rep.ok + rep.failed + rep.gone));
        self.stats
            .insert("detailReadFailures".into(), json!(rep.failed));
        self.stats.insert("staleEntriesLeft".into(), json!(left));
    }

    // -------------------------------------------------------------------------------------------------------
    // Archive and repoint helpers
    // -------------------------------------------------------------------------------------------------------

    /// `POST /api/v1/content/:id/archive` `{}` through the mutation helper, then verification by re-reading. The
    /// helper's fresh `before` read is also the confirmation when `confirm` is given (one read, 6.2.4): failing it →
    /// [`Archive::Unneeded`] with the evidence, nothing written.
    async fn archive(
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

    /// Repoints one playlist from `expired` to `replacement` (6.2.2 step 2).
    async fn repoint(
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

    /// Marks an archive attempt on an incident (attempts + 1, `lastAttemptAt`).
    fn attempted(&self, inc: &mut Incident) {
        inc.attempts += 1;
        inc.last_attempt_at = Some(ts(self.ctx.now()));
    }

    // -------------------------------------------------------------------------------------------------------
    // 6.2.2 Expired content
    // -------------------------------------------------------------------------------------------------------

    async fn expired(&mut self, scan_complete: bool) {
        let scan = detect_expired(&self.table, &self.cache, self.now);
        for r in scan.unexamined {
            let id = self.table.id(r).to_string();
            self.unexamined(T_EXPIRED, &id);
        }
        if scan_complete {
            self.out.cover(T_EXPIRED);
        }
        self.stats
            .insert("expiredFound".into(), json!(scan.findings.len()));
        for f in scan.findings {
            if self.abort.is_some() {
                self.unexamined(T_EXPIRED, &f.id);
                continue;
            }
            self.handled.insert(f.id.clone());
            self.expired_one(f).await;
        }
    }

    async fn expired_one(&mut self, f: ExpiredFinding) {
        let name = &f.name;
        let mut inc = self.incident(
            T_EXPIRED,
            Severity::Warning,
            "content",
            &f.id,
            format!(
                "\"{name}\" is active but expired at {} (run time {})",
                f.expires_at,
                ts(self.now)
            ),
            "Archive it (after repointing playlists to a deliverable replacement)",
        );
        if let Some(d) = self.drift.get(SLUG_ARCHIVE).cloned() {
            // No repoint either: a repointed but unarchivable item helps nobody.
            inc.error = Some(d);
            inc.remediation =
                "Not archived: the archive route drifted earlier in this run; archive it in the Vizora dashboard"
                    .into();
            self.note_incident(&inc, "expired");
            self.out.raise(inc);
            return;
        }
        if !self.plain_id("content", &f.id) {
            self.unexamined(T_EXPIRED, &f.id);
            return;
        }
        let cpath = format!("{CONTENT_LIST}/{}", f.id);
        // Step 1: fresh read.
        let before = match self.api.get(&cpath).await {
            Ok(v) => v,
            Err(ApiError::NotFound { .. }) => {
                self.evidence(&inc.id, "content gone (404)");
                self.out.note(format!(
                    "expired \"{name}\" ({}): gone, nothing to do",
                    f.id
                ));
                return;
            }
            Err(e) => {
                self.check_fatal(&e);
                inc.error = Some(format!("pre-write read failed: {e}"));
                inc.remediation =
                    "Not archived this run (pre-write read failed); retried next run".into();
                self.note_incident(&inc, "expired");
                self.out.raise(inc);
                return;
            }
        };
        if let Err(ev) = confirm_expired(&before, self.now) {
            self.evidence(&inc.id, &ev);
            self.out
                .note(format!("expired \"{name}\" ({}): dropped — {ev}", f.id));
            return;
        }
        // Step 2: replacement.
        let replacement = s(&before, "replacementContentId")
            .filter(|r| !r.is_empty())
            .map(String::from);
        let mut repl_note = String::new();
        let mut deliverable_repl: Option<(String, String)> = None;
        if let Some(r) = &replacement
            && !self.plain_id("replacement content", r)
        {
            // Never requested; such an id cannot name deliverable content (design/vizora-api.md 2.6).
            repl_note = format!(
                "; replacement \"{}\" is not a plain id (never requested)",
                common::shown_id(r)
            );
        } else if let Some(r) = &replacement {
            match self.api.get(&format!("{CONTENT_LIST}/{r}")).await {
                Ok(rv) if is_deliverable(&rv, self.now) => {
                    deliverable_repl = Some((r.clone(), label(&rv)));
                }
                Ok(rv) => {
                    repl_note = format!(
                        "; replacement {r} is not deliverable (status={})",
                        s(&rv, "status").unwrap_or("?")
                    );
                }
                Err(ApiError::NotFound { .. }) => {
                    repl_note = format!("; replacement {r} does not exist");
                }
                Err(e) => {
                    self.check_fatal(&e);
                    inc.error = Some(format!("replacement read failed: {e}"));
                    inc.remediation =
                        "Not archived: the replacement could not be read, so playlists could not be repointed; \
                         retried next run"
                            .into();
                    self.note_incident(&inc, "expired");
                    self.out.raise(inc);
                    return;
                }
            }
        }
        let mut repointed = 0usize;
        let mut planned_repoints = 0usize;
        if let Some((r, rname)) = &deliverable_repl {
            for pid in playlists_of(&before) {
                match self.repoint(&pid, &f.id, name, r).await {
                    Ok(Repoint::Done) => repointed += 1,
                    Ok(Repoint::DryRun) => planned_repoints += 1,
                    Ok(Repoint::Skipped(why)) => {
                        self.ctx.info(format!("repoint of {pid} skipped: {why}"));
                    }
                    Err(e) => {
                        // Step 3: a failed repoint → no archive.
                        inc.error = Some(e.clone());
                        inc.remediation = format!(
                            "Not archived: repointing playlist {pid} to \"{rname}\" failed ({e}); retried next run"
                        );
                        if repointed > 0 {
                            inc.remediation
                                .push_str(&format!(" ({repointed} playlist(s) already repointed)"));
                        }
                        self.attempted(&mut inc);
                        self.note_incident(&inc, "expired");
                        self.out.raise(inc);
                        return;
                    }
                }
            }
            self.stats.insert(
                "repointedPlaylists".into(),
                json!(
                    self.stats
                        .get("repointedPlaylists")
                        .and_then(Value::as_u64)
                        .unwrap_or(0)
                        + repointed as u64
                ),
            );
        }
        // Step 4–5: archive and verify.
        let res = self
            .archive(&f.id, format!("Archive expired content \"{name}\""), None)
            .await;
        let repl_text = match &deliverable_repl {
            Some((r, rname)) if self.ctx.effects().is_dry_run() => {
                format!("; would repoint {planned_repoints} playlist(s) to \"{rname}\" ({r})")
            }
            Some((r, rname)) => format!("; repointed {repointed} playlist(s) to \"{rname}\" ({r})"),
            None => repl_note.clone(),
        };
        match res {
            Archive::Verified(detail) => {
                self.attempted(&mut inc);
                inc.remediation = format!("Archived (verified: {detail}){repl_text}");
                let inc = resolved(inc, self.ctx.now());
                self.out.fixed += 1;
                self.archived.insert(f.id.clone(), f.file_size);
                self.table.mark_archived(f.row);
                self.out.note(format!(
                    "expired \"{name}\" ({}): archived and verified{repl_text}",
                    f.id
                ));
                self.fixed_expired.push((name.clone(), inc.clone()));
                self.out.raise(inc);
            }
            Archive::DryRun => {
                inc.remediation = format!("Dry run: would archive{repl_text}");
                self.planned_expired.push(format!("\"{name}\" ({})", f.id));
                self.planned_sizes.insert(f.id.clone(), f.file_size);
                self.out.note(format!(
                    "expired \"{name}\" ({}): would archive{repl_text}",
                    f.id
                ));
                self.out.raise(inc);
            }
            Archive::Gone(ev) => {
                self.evidence(&inc.id, &ev);
                self.out
                    .note(format!("expired \"{name}\" ({}): {ev}", f.id));
            }
            Archive::Drift(e) => {
                self.attempted(&mut inc);
                inc.error = Some(e);
                inc.remediation = format!(
                    "Not archived: the archive route is missing (API contract drift); archive it in the Vizora \
                     dashboard{repl_text}"
                );
                self.note_incident(&inc, "expired");
                self.out.raise(inc);
            }
            Archive::Failed(e) | Archive::NotConfirmed(e) => {
                self.attempted(&mut inc);
                inc.error = Some(e);
                inc.remediation =
                    format!("Archive attempted, not confirmed; retried next run{repl_text}");
                self.note_incident(&inc, "expired");
                self.out.raise(inc);
            }
            Archive::NotSent(e) | Archive::PreReadFailed(e) | Archive::Unneeded(e) => {
                inc.error = Some(e);
                inc.remediation = format!("Not archived this run; retried next run{repl_text}");
                self.note_incident(&inc, "expired");
                self.out.raise(inc);
            }
        }
    }

    /// An item skipped with evidence: its prior incident (if active) may be swept with this suffix.
    fn evidence(&mut self, incident_id: &str, evidence: &str) {
        self.out
            .resolve_suffix
            .insert(incident_id.to_string(), format!(" — {evidence}"));
        self.out.unexamined.remove(incident_id);
    }

    fn note_incident(&mut self, inc: &Incident, what: &str) {
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

    // -------------------------------------------------------------------------------------------------------
    // 6.2.4 Orphans
    // -------------------------------------------------------------------------------------------------------

    async fn orphans(&mut self, harvest: &Harvest) {
        self.out.cover(T_ORPHANED);
        let cands = unreferenced_candidates(
            &self.table,
            harvest,
            &self.cache,
            self.now,
            self.ctx.cfg.entity.orphan_min_age_days,
            &self.handled,
        );
        self.stats
            .insert("orphanCandidates".into(), json!(cands.len()));
        let cap = self.ctx.cfg.entity.max_archives_per_run;
        let (now_list, deferred) = if cands.len() > cap {
            cands.split_at(cap)
        } else {
            (&cands[..], &[][..])
        };
        if !deferred.is_empty() {
            self.ctx.info(format!(
                "deferring {} orphan candidate(s) (OPS_MAX_ARCHIVES_PER_RUN={cap})",
                deferred.len()
            ));
            self.out.note(format!(
                "deferring {} orphan candidate(s) to later runs",
                deferred.len()
            ));
            for c in deferred {
                let id = self.table.id(c.row).to_string();
                self.unexamined(T_ORPHANED, &id);
            }
        }
        let (mut read_failed, mut late) = (0usize, 0usize);
        for c in now_list {
            let c = c.materialize(&self.table);
            let iid = self.id(T_ORPHANED, &c.id);
            if self.abort.is_some() || self.past_deadline() {
                late += 1;
                self.unexamined(T_ORPHANED, &c.id);
                continue;
            }
            self.handled.insert(c.id.clone());
            let min_age = self.ctx.cfg.entity.orphan_min_age_days;
            let mut inc = self.incident(
                T_ORPHANED,
                Severity::Info,
                "content",
                &c.id,
                format!(
                    "\"{}\" ({}) created {} ({} days ago, more than {min_age}) is active and referenced by no \
                     playlist, layout zone or replacement pointer",
                    c.name,
                    c.kind,
                    ts(c.created_at),
                    fmt_days(self.now - c.created_at)
                ),
                "Archive it (restorable from the Vizora dashboard)",
            );
            if let Some(d) = self.drift.get(SLUG_ARCHIVE).cloned() {
                inc.error = Some(d);
                inc.remediation =
                    "Not archived: the archive route drifted earlier in this run".into();
                self.out.raise(inc);
                continue;
            }
            let res = self
                .archive(
                    &c.id,
                    format!("Archive orphaned content \"{}\"", c.name),
                    Some(c.confirmation()),
                )
                .await;
            match res {
                Archive::Unneeded(ev) => {
                    self.evidence(&iid, &ev);
                    self.ctx.info(format!(
                        "orphan candidate \"{}\" ({}) skipped: {ev}",
                        c.name, c.id
                    ));
                    self.out.note(format!(
                        "orphan candidate \"{}\" ({}): skipped — {ev}",
                        c.name, c.id
                    ));
                }
                Archive::PreReadFailed(e) => {
                    read_failed += 1;
                    self.ctx.warn(format!(
                        "orphan candidate \"{}\" ({}): confirm read failed ({e}); not examined",
                        c.name, c.id
                    ));
                    self.unexamined(T_ORPHANED, &c.id);
                }
                Archive::Verified(detail) => {
                    self.attempted(&mut inc);
                    inc.remediation = format!("Archived (verified: {detail})");
                    let inc = resolved(inc, self.ctx.now());
                    self.out.fixed += 1;
                    self.archived.insert(c.id.clone(), c.file_size);
                    self.table.mark_archived(c.row);
                    self.out.note(format!(
                        "orphaned \"{}\" ({}): archived and verified",
                        c.name, c.id
                    ));
                    self.fixed_orphans.push((c.name.clone(), inc.clone()));
                    self.out.raise(inc);
                }
                Archive::DryRun => {
                    inc.remediation = "Dry run: would archive".into();
                    self.planned_sizes.insert(c.id.clone(), c.file_size);
                    self.planned_orphans
                        .push(format!("\"{}\" ({})", c.name, c.id));
                    self.out
                        .note(format!("orphaned \"{}\" ({}): would archive", c.name, c.id));
                    self.out.raise(inc);
                }
                Archive::Gone(ev) => {
                    self.evidence(&iid, &ev);
                    self.out
                        .note(format!("orphaned \"{}\" ({}): {ev}", c.name, c.id));
                }
                Archive::Drift(e) | Archive::Failed(e) | Archive::NotConfirmed(e) => {
                    self.attempted(&mut inc);
                    inc.error = Some(e);
                    inc.remediation = "Archive attempted, not confirmed; retried next run".into();
                    self.note_incident(&inc, "orphaned");
                    self.out.raise(inc);
                }
                Archive::NotSent(e) => {
                    inc.error = Some(e);
                    inc.remediation = "Not archived this run; retried next run".into();
                    self.note_incident(&inc, "orphaned");
                    self.out.raise(inc);
                }
            }
        }
        if read_failed + late + deferred.len() > 0 {
            self.ctx.info(format!(
                "orphan candidates skipped without evidence: {read_failed} read failed, {} deferred",
                late + deferred.len()
            ));
        }
    }

    // -------------------------------------------------------------------------------------------------------
    // 6.2.5 Storage
    // -------------------------------------------------------------------------------------------------------

    async fn storage(
        &mut self,
        read: Result<Value, ApiError>,
        harvest: &Harvest,
        archivable: bool,
    ) {
        let org = self
            .api
            .organization_id()
            .or_else(|| self.table.organization_id().map(String::from))
            .unwrap_or_else(|| "organization".into());
        let high_id = self.id(T_STORAGE_HIGH, &org);
        let payload = match read {
            Ok(v) => v,
            Err(e) => {
                self.check_fatal(&e);
                if self.abort.is_some() {
                    return;
                }
                let inc = self.incident(
                    T_STORAGE_FAILED,
                    Severity::Warning,
                    "storage",
                    &org,
                    format!("GET {STORAGE_PATH} failed after retries: {e}"),
                    "Check vizora-middleware and its database; storage usage is not known this run",
                );
                self.out.note(format!("storage check failed: {e}"));
                self.out.raise(inc);
                self.out.unexamined.insert(high_id);
                return;
            }
        };
        self.out.cover(T_STORAGE_FAILED);
        let cfg = &self.ctx.cfg.entity;
        let (warn, crit) = (cfg.storage_warn_pct, cfg.storage_critical_pct);
        let verdict = storage_verdict(&payload, warn, crit);
        let describe = |used: u64, quota: u64, pct: f64| {
            format!(
                "storage usage {pct:.1} % of quota ({} of {}; warning above {warn} %, critical above {crit} %)",
                fmt_bytes(used),
                fmt_bytes(quota)
            )
        };
        match verdict {
            StorageVerdict::NoVerdict(why) => {
                self.ctx.info(format!("storage: no verdict ({why})"));
                self.out.unexamined.insert(high_id);
            }
            StorageVerdict::Ok { used, quota, pct } => {
                self.out.cover(T_STORAGE_HIGH);
                self.stats.insert("storagePct".into(), json!(round1(pct)));
                self.ctx.info(describe(used, quota, pct));
            }
            StorageVerdict::Warning { used, quota, pct } => {
                self.out.cover(T_STORAGE_HIGH);
                self.stats.insert("storagePct".into(), json!(round1(pct)));
                let msg = describe(used, quota, pct);
                self.out.note(msg.clone());
                let inc = self.incident(
                    T_STORAGE_HIGH,
                    Severity::Warning,
                    "storage",
                    &org,
                    msg,
                    "Review and archive unused media, or raise the organization's storage quota; automatic \
                     archiving starts above the critical threshold",
                );
                self.out.raise(inc);
            }
            StorageVerdict::Critical { used, quota, pct } => {
                self.out.cover(T_STORAGE_HIGH);
                self.stats.insert("storagePct".into(), json!(round1(pct)));
                let msg = describe(used, quota, pct);
                self.out.note(msg.clone());
                let inc = self.incident(
                    T_STORAGE_HIGH,
                    Severity::Critical,
                    "storage",
                    &org,
                    msg,
                    "Archive unreferenced content",
                );
                self.storage_critical(inc, harvest, archivable, used, quota)
                    .await;
            }
        }
    }

    async fn storage_critical(
        &mut self,
        mut inc: Incident,
        harvest: &Harvest,
        archivable: bool,
        used: u64,
        quota: u64,
    ) {
        let crit = self.ctx.cfg.entity.storage_critical_pct;
        let prior_escalated = self
            .priors
            .get(&inc.id)
            .is_some_and(|p| p.status == IncidentStatus::Escalated);
        if prior_escalated {
            inc.status = IncidentStatus::Escalated;
            inc.remediation =
                "Escalated earlier: archiving did not free quota; manual clean-up or a larger quota is needed".into();
            self.out.raise(inc);
            return;
        }
        if !archivable {
            inc.remediation =
                "No automatic archiving: the scan or the reference harvest is incomplete this run"
                    .into();
            self.out.raise(inc);
            return;
        }
        if let Some(d) = self.drift.get(SLUG_ARCHIVE) {
            inc.remediation = "No automatic archiving: the archive route drifted this run".into();
            inc.error = Some(d.clone());
            self.out.raise(inc);
            return;
        }
        let min_age = self.ctx.cfg.entity.storage_archive_min_age_days;
        let cap = self.ctx.cfg.entity.storage_max_archives_per_run;
        let mut exclude = self.handled.clone();
        exclude.extend(self.archived.keys().cloned());
        exclude.extend(self.planned_sizes.keys().cloned());
        let cands = unreferenced_candidates(
            &self.table,
            harvest,
            &self.cache,
            self.now,
            min_age,
            &exclude,
        );
        // Archives of this run (expired, orphans) count towards the projection.
        let mut freed: u64 =
            self.archived.values().sum::<u64>() + self.planned_sizes.values().sum::<u64>();
        let (mut archived_n, mut planned) = (0usize, Vec::new());
        let mut failures = Vec::new();
        for c in &cands {
            if !storage_still_critical(used, freed, quota, crit)
                || archived_n + planned.len() >= cap
            {
                break;
            }
            if self.abort.is_some() || self.past_deadline() || self.drift.contains_key(SLUG_ARCHIVE)
            {
                break;
            }
            let c = c.materialize(&self.table);
            match self
                .archive(
                    &c.id,
                    format!(
                        "Archive unreferenced content \"{}\" (storage critical)",
                        c.name
                    ),
                    Some(c.confirmation()),
                )
                .await
            {
                Archive::Unneeded(ev) => {
                    self.ctx.info(format!(
                        "storage candidate \"{}\" ({}) skipped: {ev}",
                        c.name, c.id
                    ));
                }
                Archive::PreReadFailed(e) => {
                    self.ctx.warn(format!(
                        "storage candidate {}: confirm read failed ({e})",
                        c.id
                    ));
                }
                Archive::Verified(_) => {
                    archived_n += 1;
                    freed += c.file_size;
                    self.archived.insert(c.id.clone(), c.file_size);
                    self.table.mark_archived(c.row);
                    self.storage_archived.push(format!(
                        "\"{}\" ({}, {})",
                        c.name,
                        c.id,
                        fmt_bytes(c.file_size)
                    ));
                    self.out.note(format!(
                        "storage: archived unreferenced \"{}\" ({}), {}",
                        c.name,
                        c.id,
                        fmt_bytes(c.file_size)
                    ));
                }
                Archive::DryRun => {
                    freed += c.file_size;
                    planned.push(c.id.clone());
                    self.out.note(format!(
                        "storage: would archive unreferenced \"{}\" ({}), {}",
                        c.name,
                        c.id,
                        fmt_bytes(c.file_size)
                    ));
                }
                Archive::Gone(_) => {}
                Archive::Drift(e)
                | Archive::Failed(e)
                | Archive::NotConfirmed(e)
                | Archive::NotSent(e) => {
                    failures.push(e);
                }
            }
        }
        if let Some(e) = failures.last() {
            inc.error = Some(e.clone());
        }
        if self.ctx.effects().is_dry_run() {
            inc.remediation = format!(
                "Dry run: would archive {} unreferenced item(s) (oldest first, older than {min_age} days)",
                planned.len()
            );
            self.out.raise(inc);
            return;
        }
        let total = self.archived.len();
        let what = format!(
            "Archived {total} item(s) this run ({archived_n} unreferenced for storage relief)"
        );
        if total == 0 {
            inc.remediation = format!(
                "No unreferenced content older than {min_age} days could be archived; manual clean-up or a larger \
                 quota is needed"
            );
            self.out.raise(inc);
            return;
        }
        self.attempted(&mut inc);
        match self.api.get(STORAGE_PATH).await {
            Ok(v) => {
                let used2 = v.get("usedBytes").and_then(Value::as_f64).map(|u| u as u64);
                match used2 {
                    Some(u2) if u2 < used => {
                        inc.remediation = format!(
                            "{what}; usage went from {} to {}",
                            fmt_bytes(used),
                            fmt_bytes(u2)
                        );
                        self.out.raise(inc);
                    }
                    other => {
                        inc.status = IncidentStatus::Escalated;
                        inc.remediation = format!(
                            "{what} but usage did not go down ({} → {}): archiving does not free quota; \
                             manual clean-up or a larger quota is needed",
                            fmt_bytes(used),
                            other.map(fmt_bytes).unwrap_or_else(|| "unknown".into())
                        );
                        let refs = vec![inc.clone()];
                        let items = self.storage_archived.clone();
                        let stamps = self
                            .ctx
                            .effects()
                            .alert(InlineAlert {
                                agent: self.ctx.agent,
                                kind: InlineKind::Critical,
                                summary: format!("Storage critical and escalated: {}", inc.message),
                                items,
                                refs,
                            })
                            .await;
                        self.out.alert_stamps.extend(stamps);
                        self.out.raise(inc);
                    }
                }
            }
            Err(e) => {
                self.check_fatal(&e);
                inc.error = Some(format!("storage re-read failed: {e}"));
                inc.remediation = format!("{what}; the storage re-read failed");
                self.out.raise(inc);
            }
        }
    }

    // -------------------------------------------------------------------------------------------------------
    // 6.2.3 Thumbnails and size
    // -------------------------------------------------------------------------------------------------------

    async fn thumbnails_and_size(&mut self, scan_complete: bool) {
        if scan_complete {
            self.out.cover(T_THUMB);
            self.out.cover(T_OVERSIZED);
        }
        let cfg = self.ctx.cfg.clone();
        let s3_configured = cfg.db.s3_endpoint.is_some();
        let max_probes = cfg.entity.thumbnail_probes_per_run;
        let mut probes = 0usize;
        let mut not_examined = 0usize;
        /// What one row's thumbnail needs, owned (the check borrows the table and the cache).
        enum Todo {
            Nothing,
            Finding(String),
            NotExamined,
            Http(String),
            S3(String),
        }
        for r in 0..self.table.len() as u32 {
            if self.table.is_gone(r) || !self.table.is_active(r) || self.table.is_archived(r) {
                continue;
            }
            // Size.
            match size_verdict(&self.table, r, cfg.entity.max_file_size_bytes) {
                SizeVerdict::Ok => {}
                SizeVerdict::Unparseable => {
                    let id = self.table.id(r).to_string();
                    self.unexamined(T_OVERSIZED, &id);
                }
                SizeVerdict::Oversized(b) => {
                    let (id, name) = (self.table.id(r).to_string(), self.table.label(r));
                    let msg = format!(
                        "\"{name}\" has fileSize {} > {} (OPS_MAX_FILE_SIZE_MB)",
                        fmt_bytes(b),
                        fmt_bytes(cfg.entity.max_file_size_bytes)
                    );
                    self.out.note(format!("oversized: {msg}"));
                    let inc = self.incident(
                        T_OVERSIZED,
                        Severity::Warning,
                        "content",
                        &id,
                        msg,
                        "Re-encode or compress the file and replace it; large files slow down players",
                    );
                    self.out.raise(inc);
                }
            }
            // Thumbnail.
            let todo = {
                let entry = self.cache.fresh(&self.table, r);
                match thumbnail_check(
                    &self.table,
                    r,
                    entry,
                    self.ctx.now(),
                    cfg.entity.thumbnail_recheck_hours,
                    s3_configured,
                ) {
                    None | Some(ThumbCheck::Cached { ok: true, .. }) => Todo::Nothing,
                    Some(ThumbCheck::Missing) => Todo::Finding("thumbnail is null".into()),
                    Some(ThumbCheck::Cached { ok: false, detail }) => Todo::Finding(format!(
                        "thumbnail probe failed ({}; cached result)",
                        detail.unwrap_or("no detail")
                    )),
                    Some(ThumbCheck::NotExamined(_)) => Todo::NotExamined,
                    Some(ThumbCheck::Http(_) | ThumbCheck::S3(_))
                        if probes >= max_probes || self.past_deadline() =>
                    {
                        Todo::NotExamined
                    }
                    Some(ThumbCheck::Http(u)) => Todo::Http(u.to_string()),
                    Some(ThumbCheck::S3(k)) => Todo::S3(k.to_string()),
                }
            };
            let failure: Option<String> = match todo {
                Todo::Nothing => None,
                Todo::Finding(f) => Some(f),
                Todo::NotExamined => {
                    not_examined += 1;
                    let id = self.table.id(r).to_string();
                    self.unexamined(T_THUMB, &id);
                    None
                }
                Todo::Http(url) => {
                    probes += 1;
                    let id = self.table.id(r).to_string();
                    let res =
                        probe_http_thumbnail(&self.ctx.http, &url, cfg.api.probe_timeout).await;
                    self.remember_thumbnail(&id, &url, &res);
                    res.err().map(|e| format!("thumbnail probe failed: {e}"))
                }
                Todo::S3(key) => {
                    probes += 1;
                    let id = self.table.id(r).to_string();
                    match self.s3_head(&key).await {
                        Ok(res) => {
                            let url = format!("minio://{key}");
                            self.remember_thumbnail(&id, &url, &res);
                            res.err().map(|e| format!("thumbnail probe failed: {e}"))
                        }
                        Err(e) => {
                            self.ctx.warn(format!(
                                "thumbnail of {id}: S3 HeadObject failed ({e}); not examined"
                            ));
                            not_examined += 1;
                            self.unexamined(T_THUMB, &id);
                            None
                        }
                    }
                }
            };
            if let Some(why) = failure {
                let id = self.table.id(r).to_string();
                let msg = format!(
                    "\"{}\" ({}) has no usable thumbnail: {}",
                    self.table.label(r),
                    self.table.kind(r).unwrap_or("?"),
                    crate::redact::redact_str(&why)
                );
                self.out.note(format!("missing thumbnail: {msg}"));
                let inc = self.incident(
                    T_THUMB,
                    Severity::Warning,
                    "content",
                    &id,
                    msg,
                    "Regenerate the thumbnail (re-upload or re-process the media in the Vizora dashboard)",
                );
                self.out.raise(inc);
            }
        }
        self.stats.insert("thumbnailProbes".into(), json!(probes));
        if not_examined > 0 {
            self.ctx
                .info(format!("{not_examined} thumbnail(s) not examined (S3 unconfigured, probe cap, or unknown form)"));
        }
    }

    fn remember_thumbnail(&mut self, id: &str, url: &str, r: &Result<(), String>) {
        let now = ts(self.ctx.now());
        self.cache.set_thumbnail(
            id,
            ThumbnailCheck {
                url: cached_url_form(url).into_owned(),
                ok: r.is_ok(),
                checked_at: now,
                detail: r.as_ref().err().map(|e| crate::redact::redact_str(e)),
            },
        );
    }

    /// `HeadObject` of `key` in `MINIO_BUCKET`: `Ok(Ok)` exists, `Ok(Err)` missing (a finding), `Err` the probe could
    /// not run (not examined).
    async fn s3_head(&mut self, key: &str) -> Result<Result<(), String>, String> {
        use object_store::ObjectStoreExt;
        if self.s3.is_none() {
            self.s3 = Some(build_s3(&self.ctx.cfg).map(Arc::new));
        }
        let store = match self.s3.as_ref().expect("set above") {
            Ok(s) => s.clone(),
            Err(e) => return Err(e.clone()),
        };
        let path = object_store::path::Path::from(key);
        match tokio::time::timeout(self.ctx.cfg.api.probe_timeout, store.head(&path)).await {
            Err(_) => Err("HeadObject timed out".into()),
            Ok(Ok(_)) => Ok(Ok(())),
            Ok(Err(object_store::Error::NotFound { .. })) => Ok(Err(format!(
                "object {key} not found in bucket {}",
                self.ctx.cfg.entity.minio_bucket
            ))),
            Ok(Err(e)) => Err(crate::redact::redact_str(&e.to_string())),
        }
    }

    // -------------------------------------------------------------------------------------------------------
    // End of run
    // -------------------------------------------------------------------------------------------------------

    async fn finish(&mut self, cache_file: &CacheFile) {
        for (what, (n, first)) in std::mem::take(&mut self.bad_ids) {
            self.ctx.warn(format!(
                "{n} {what} id(s) from the API are not plain ids (e.g. \"{first}\"): never requested; those items \
                 are skipped this run"
            ));
        }
        // Contract drift (3.2): critical, exit 2 with a full write.
        let mut slugs: Vec<(&'static str, String)> =
            self.drift.iter().map(|(k, v)| (*k, v.clone())).collect();
        slugs.sort();
        for (slug, err) in &slugs {
            let inc = self.incident(
                T_DRIFT,
                Severity::Critical,
                "api",
                slug,
                format!("The API answered {err}: the route is missing (API contract drift)"),
                "Check the Vizora API version against vizora-ops; the route is not called again this run and \
                 affected items stay open",
            );
            self.out
                .note(format!("API contract drift on {slug}: {err}"));
            let opened = !self.priors.get(&inc.id).is_some_and(|p| p.is_active());
            if opened {
                let stamps = self
                    .ctx
                    .effects()
                    .alert(InlineAlert {
                        agent: self.ctx.agent,
                        kind: InlineKind::Critical,
                        summary: format!("API contract drift on {slug}"),
                        items: vec![err.clone()],
                        refs: vec![inc.clone()],
                    })
                    .await;
                self.out.alert_stamps.extend(stamps);
            }
            self.out.raise(inc);
        }
        // A route that succeeded this run resolves its prior drift incident; an uncalled route is not examined.
        self.out.cover(T_DRIFT);
        for slug in [SLUG_ARCHIVE, SLUG_PATCH_PLAYLISTS] {
            if self.drift.contains_key(slug) {
                continue;
            }
            let id = self.id(T_DRIFT, slug);
            if self.route_ok.contains(slug) {
                self.out
                    .resolve_suffix
                    .insert(id, " — the route answered again this run".into());
            } else {
                self.out.unexamined.insert(id);
            }
        }

        // Fix notifications (7.6), one per kind.
        self.notify_fixed(
            "expired",
            self.fixed_expired.clone(),
            self.planned_expired.clone(),
        )
        .await;
        self.notify_fixed(
            "orphaned",
            self.fixed_orphans.clone(),
            self.planned_orphans.clone(),
        )
        .await;
        if !self.storage_archived.is_empty() {
            let items = self.storage_archived.clone();
            let stamps = self
                .ctx
                .effects()
                .alert(InlineAlert {
                    agent: self.ctx.agent,
                    kind: InlineKind::Fixed,
                    summary: format!(
                        "Auto-archived {} unreferenced content item(s) to relieve storage",
                        items.len()
                    ),
                    items,
                    refs: Vec::new(),
                })
                .await;
            self.out.alert_stamps.extend(stamps);
        }

        self.stats.insert(
            "archived".into(),
            json!({
                "expired": self.fixed_expired.len(),
                "orphaned": self.fixed_orphans.len(),
                "storage": self.storage_archived.len(),
            }),
        );
        // Items archived this run no longer need a detail entry.
        for id in self.archived.keys() {
            self.cache.remove(id);
        }
        self.stats
            .insert("cacheEntries".into(), json!(self.cache.len()));
        self.out.stats = Some(Value::Object(self.stats.clone()));

        if let Some(e) = &self.abort {
            let mode = if self.mutated {
                WriteMode::Partial
            } else {
                WriteMode::None
            };
            self.out.fail(format!("run aborted: {e}"), mode);
        } else if !slugs.is_empty() {
            let names: Vec<&str> = slugs.iter().map(|(s, _)| *s).collect();
            self.out.fail(
                format!("API contract drift: {}", names.join(", ")),
                WriteMode::Full,
            );
        }

        // The cache is written after the state write, by the runtime (6.2.1): never in a dry run, never when the
        // state write did not happen or failed.
        if !self.ctx.effects().is_dry_run() && self.out.write != WriteMode::None {
            let cache = std::mem::take(&mut self.cache);
            let file = cache_file.clone();
            self.out.after_write = Some(Box::new(move || {
                file.save(&cache)
                    .map_err(|e| format!("content cache not written: {e}"))
            }));
        }
    }

    async fn notify_fixed(
        &mut self,
        what: &str,
        fixed: Vec<(String, Incident)>,
        planned: Vec<String>,
    ) {
        let (summary, items, refs) = if self.ctx.effects().is_dry_run() {
            if planned.is_empty() {
                return;
            }
            (
                format!("Auto-archived {} {what} content item(s)", planned.len()),
                planned,
                Vec::new(),
            )
        } else {
            if fixed.is_empty() {
                return;
            }
            let items: Vec<String> = fixed
                .iter()
                .map(|(name, i)| format!("\"{name}\" ({})", i.target_id))
                .collect();
            (
                format!("Auto-archived {} {what} content item(s)", fixed.len()),
                items,
                fixed.into_iter().map(|(_, i)| i).collect(),
            )
        };
        let stamps = self
            .ctx
            .effects()
            .alert(InlineAlert {
                agent: self.ctx.agent,
                kind: InlineKind::Fixed,
                summary,
                items,
                refs,
            })
            .await;
        self.out.alert_stamps.extend(stamps);
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn build_s3(cfg: &crate::config::Config) -> Result<object_store::aws::AmazonS3, String> {
    let ep = cfg
        .db
        .s3_endpoint
        .as_ref()
        .ok_or_else(|| "S3 is not configured".to_string())?;
    let mut b = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(ep)
        .with_bucket_name(&cfg.entity.minio_bucket)
        .with_region(&cfg.db.s3_region)
        .with_allow_http(ep.starts_with("http://"))
        .with_virtual_hosted_style_request(false)
        .with_retry(object_store::RetryConfig {
            max_retries: 0,
            ..Default::default()
        });
    match (&cfg.db.s3_access_key, &cfg.db.s3_secret_key) {
        (Some(k), Some(s)) => {
            b = b.with_access_key_id(k).with_secret_access_key(s);
        }
        _ => b = b.with_skip_signature(true),
    }
    b.build()
        .map_err(|e| crate::redact::redact_str(&e.to_string()))
}

/// `HEAD url` following at most [`THUMBNAIL_MAX_REDIRECTS`] redirects (any http(s) origin); `Ok` on a final 2xx.
/// Each request is bounded by `timeout`. Errors say why (status, transport error, too many redirects), redacted.
pub async fn probe_http_thumbnail(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<(), String> {
    let mut cur = url::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
    for _ in 0..=THUMBNAIL_MAX_REDIRECTS {
        if !matches!(cur.scheme(), "http" | "https") {
            return Err(format!("redirect to a non-http URL ({})", cur.scheme()));
        }
        let r = http
            .head(cur.clone())
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| {
                crate::redact::redact_str(&if e.is_timeout() {
                    format!("HEAD timed out after {} ms", timeout.as_millis())
                } else {
                    format!("HEAD failed: {}", e.without_url())
                })
            })?;
        let st = r.status();
        if st.is_success() {
            return Ok(());
        }
        if st.is_redirection() {
            let loc = r
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| format!("HEAD answered {st} without a Location"))?;
            cur = cur
                .join(loc)
                .map_err(|e| format!("bad redirect Location: {e}"))?;
            continue;
        }
        return Err(format!("HEAD answered {}", st.as_u16()));
    }
    Err(format!("more than {THUMBNAIL_MAX_REDIRECTS} redirects"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 8, 26, 13, 42, 17).unwrap()
    }
    fn days_ago(d: f64) -> String {
        ts(now() - ChronoDuration::seconds((d * 86_400.0) as i64))
    }
    fn item(id: &str, kind: &str, status: &str, created_days_ago: f64) -> Value {
        json!({"id": id, "name": format!("Item {id}"), "type": kind, "status": status,
            "createdAt": days_ago(created_days_ago), "updatedAt": "u-".to_string() + id,
            "thumbnail": "minio://org/thumbs/x.jpg", "fileSize": 1000})
    }
    fn detail(id: &str, extra: Value) -> Value {
        let mut d = json!({"id": id, "status": "active", "updatedAt": "u-".to_string() + id,
            "expiresAt": null, "replacementContentId": null, "isGlobal": false, "playlistItems": []});
        for (k, v) in extra.as_object().unwrap() {
            d[k] = v.clone();
        }
        d
    }
    fn cache_with(entries: &[(&str, Value)]) -> DetailCache {
        let mut c = DetailCache::default();
        for (id, extra) in entries {
            c.store_detail(id, &detail(id, extra.clone()), now())
                .unwrap();
        }
        c
    }
    /// The compact table of `items`, linked to `cache` (thumbnail URLs kept, as with S3 configured).
    fn table(items: &[Value], cache: &DetailCache) -> ContentTable {
        let opts = TableOptions {
            s3_configured: true,
            ..TableOptions::default()
        };
        ContentTable::from_items(items, opts, Some(cache))
    }
    fn ids(t: &ContentTable, rows: &[u32]) -> Vec<String> {
        rows.iter().map(|r| t.id(*r).to_string()).collect()
    }

    #[test]
    fn cached_thumbnail_urls_never_hold_credentials_but_still_match_the_same_url() {
        let secret = "https://admin:s3cr3tpw@cdn.example/t.jpg?token=tok_SECRET_123&w=200";
        let kept = cached_url_form(secret);
        assert!(
            !kept.contains("s3cr3tpw") && !kept.contains("tok_SECRET_123"),
            "{kept}"
        );
        assert!(kept.contains("cdn.example/t.jpg"), "{kept}");
        assert_eq!(
            cached_url_form(secret),
            kept,
            "the same listed URL maps to the same kept form"
        );
        let plain = "https://cdn.example/thumbs/a.jpg";
        assert_eq!(cached_url_form(plain), plain);
        assert!(matches!(
            cached_url_form(plain),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn expired_needs_a_fresh_entry_and_expiry_not_after_now() {
        let content = vec![
            item("exp", "image", "active", 50.0),
            item("future", "image", "active", 50.0),
            item("nocache", "image", "active", 50.0),
            item("archived", "image", "archived", 50.0),
            item("bad", "image", "active", 50.0),
            item("exactly", "image", "active", 50.0),
        ];
        let cache = cache_with(&[
            (
                "exp",
                json!({"expiresAt": ts(now() - ChronoDuration::minutes(12)), "replacementContentId": "r1"}),
            ),
            (
                "future",
                json!({"expiresAt": ts(now() + ChronoDuration::days(5))}),
            ),
            ("archived", json!({"expiresAt": days_ago(3.0)})),
            ("bad", json!({"expiresAt": "next tuesday"})),
            ("exactly", json!({"expiresAt": ts(now())})),
        ]);
        let t = table(&content, &cache);
        let scan = detect_expired(&t, &cache, now());
        let found: Vec<&str> = scan.findings.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(found, vec!["exp", "exactly"]);
        assert_eq!(scan.findings[0].replacement.as_deref(), Some("r1"));
        assert_eq!(scan.findings[0].name, "Item exp");
        assert_eq!(scan.findings[0].file_size, 1000);
        assert_eq!(
            scan.findings[0].expires_at,
            ts(now() - ChronoDuration::minutes(12))
        );
        assert_eq!(ids(&t, &scan.unexamined), vec!["nocache", "bad"]);
    }

    #[test]
    fn stale_cache_entry_makes_expiry_unexamined() {
        let content = vec![item("a", "image", "active", 50.0)];
        let mut cache = cache_with(&[("a", json!({"expiresAt": days_ago(1.0)}))]);
        let mut e = cache.get("a").unwrap();
        e.updated_at = "older".into();
        cache.store("a", e);
        let t = table(&content, &cache);
        let scan = detect_expired(&t, &cache, now());
        assert!(scan.findings.is_empty());
        assert_eq!(ids(&t, &scan.unexamined), vec!["a"]);
    }

    #[test]
    fn confirm_expired_drops_moved_or_inactive_items_with_evidence() {
        let past = days_ago(0.1);
        assert!(confirm_expired(&detail("a", json!({"expiresAt": past})), now()).is_ok());
        let e =
            confirm_expired(&detail("a", json!({"expiresAt": days_ago(-3.0)})), now()).unwrap_err();
        assert!(e.contains("moved forward"), "{e}");
        let e = confirm_expired(
            &detail("a", json!({"status": "expired", "expiresAt": past})),
            now(),
        )
        .unwrap_err();
        assert!(e.contains("status=expired"), "{e}");
        assert!(confirm_expired(&detail("a", json!({})), now()).is_err());
    }

    #[test]
    fn replacement_is_deliverable_only_when_active_and_not_expired() {
        assert!(is_deliverable(&detail("r", json!({})), now()));
        assert!(is_deliverable(
            &detail("r", json!({"expiresAt": days_ago(-10.0)})),
            now()
        ));
        assert!(!is_deliverable(
            &detail("r", json!({"status": "archived"})),
            now()
        ));
        assert!(!is_deliverable(
            &detail("r", json!({"expiresAt": days_ago(1.0)})),
            now()
        ));
        assert!(!is_deliverable(
            &detail("r", json!({"expiresAt": "garbage"})),
            now()
        ));
    }

    #[test]
    fn repoint_body_keeps_the_whole_list_in_order_and_omits_null_durations() {
        let pl = json!({"id": "p", "items": [
            {"id": "i2", "contentId": "exp", "order": 2, "duration": null},
            {"id": "i0", "contentId": "a", "order": 0, "duration": 15},
            {"id": "i1", "contentId": "b", "order": 1, "duration": null},
            {"id": "i3", "contentId": "exp", "order": 3, "duration": 20},
        ]});
        let body = repoint_body(&pl, "exp", "rep").unwrap().unwrap();
        assert_eq!(
            body,
            json!({"items": [
                {"contentId": "a", "order": 0, "duration": 15},
                {"contentId": "b", "order": 1},
                {"contentId": "rep", "order": 2},
                {"contentId": "rep", "order": 3, "duration": 20},
            ]})
        );
        assert_eq!(playlist_contains(&body, "exp"), Some(false));
        // Nothing to do when the item is gone from the playlist.
        assert_eq!(repoint_body(&pl, "zzz", "rep").unwrap(), None);
        // A list we cannot rebuild completely is refused.
        assert!(repoint_body(&json!({"id": "p"}), "exp", "rep").is_err());
        assert!(
            repoint_body(
                &json!({"items": [{"contentId": "exp", "order": 0}, {"order": 1}]}),
                "exp",
                "rep"
            )
            .is_err()
        );
    }

    #[test]
    fn playlists_of_a_detail_are_distinct_and_ordered() {
        let d = json!({"playlistItems": [
            {"playlistId": "p1"}, {"playlist": {"id": "p2"}}, {"playlistId": "p1"}]});
        assert_eq!(playlists_of(&d), vec!["p1", "p2"]);
        assert!(playlists_of(&json!({})).is_empty());
    }

    fn orphan_fixture() -> (Vec<Value>, Vec<Value>, DetailCache) {
        let content = vec![
            item("orphan-old", "image", "active", 200.0),
            item("orphan-new", "video", "active", 31.0),
            item("near-29", "image", "active", 29.0),
            item("in-playlist", "image", "active", 300.0),
            item("in-zone", "image", "active", 300.0),
            item("replacement-target", "image", "active", 45.0),
            item("global", "image", "active", 300.0),
            item("archived", "image", "archived", 300.0),
            item("layout", "layout", "active", 300.0),
            item("dead-layout", "layout", "archived", 300.0),
            item("dead-zone", "image", "active", 300.0),
            item("points", "image", "active", 2.0),
        ];
        let playlists = vec![
            json!({"id": "p1", "items": [{"contentId": "in-playlist"}, {"contentId": "layout"},
            {"contentId": "points"}]}),
        ];
        let cache = cache_with(&[
            ("orphan-old", json!({})),
            ("orphan-new", json!({})),
            ("near-29", json!({})),
            ("in-playlist", json!({})),
            ("in-zone", json!({})),
            ("replacement-target", json!({})),
            ("global", json!({"isGlobal": true})),
            (
                "layout",
                json!({"metadata": {"zones": [{"contentId": "in-zone"}, {"contentId": null}]}}),
            ),
            ("dead-zone", json!({})),
            (
                "points",
                json!({"expiresAt": days_ago(-30.0), "replacementContentId": "replacement-target"}),
            ),
        ]);
        // The archived layout's zones are not references (it is not listed fresh: no entry needed).
        (content, playlists, cache)
    }

    #[test]
    fn orphan_candidates_respect_every_exclusion_and_sort_oldest_first() {
        let (content, playlists, cache) = orphan_fixture();
        let t = table(&content, &cache);
        let h = harvest_references(&t, PlaylistRefs::from_items(&playlists), &cache);
        assert!(h.complete(), "{:?}", h.gaps);
        let c = unreferenced_candidates(&t, &h, &cache, now(), 30, &HashSet::new());
        let rows: Vec<u32> = c.iter().map(|c| c.row).collect();
        // dead-zone is only referenced by an archived layout: it is an orphan.
        assert_eq!(
            ids(&t, &rows),
            vec!["dead-zone", "orphan-old", "orphan-new"]
        );
        let m = c[1].materialize(&t);
        assert_eq!(
            (
                m.id.as_str(),
                m.name.as_str(),
                m.kind.as_str(),
                m.updated_at.as_str()
            ),
            ("orphan-old", "Item orphan-old", "image", "u-orphan-old")
        );
        assert_eq!(ts(m.created_at), days_ago(200.0));
        assert_eq!(m.file_size, 1000);
        // Storage relief uses a lower minimum age: the 29-day item joins, the 2-day one does not.
        let c7 = unreferenced_candidates(&t, &h, &cache, now(), 7, &HashSet::new());
        assert!(c7.iter().any(|c| t.id(c.row) == "near-29"));
        assert!(!c7.iter().any(|c| t.id(c.row) == "points"));
        // Excluded ids (handled this run) are skipped.
        let ex: HashSet<String> = ["orphan-old".to_string()].into();
        let c = unreferenced_candidates(&t, &h, &cache, now(), 30, &ex);
        assert!(!c.iter().any(|c| t.id(c.row) == "orphan-old"));
    }

    #[test]
    fn harvest_is_incomplete_without_layout_or_active_details_or_playlist_items() {
        let (content, playlists, mut cache) = orphan_fixture();
        assert!(cache.remove("layout"));
        let t = table(&content, &cache);
        let h = harvest_references(&t, PlaylistRefs::from_items(&playlists), &cache);
        assert!(!h.complete());
        assert!(h.reason().contains("layout"), "{}", h.reason());
        let (content, playlists, mut cache) = orphan_fixture();
        assert!(cache.remove("points"));
        let t = table(&content, &cache);
        let h = harvest_references(&t, PlaylistRefs::from_items(&playlists), &cache);
        assert!(h.reason().contains("replacement"), "{}", h.reason());
        let (content, _, cache) = orphan_fixture();
        let t = table(&content, &cache);
        let h = harvest_references(
            &t,
            PlaylistRefs::from_items(&[json!({"id": "p", "itemCount": 3})]),
            &cache,
        );
        assert!(h.reason().contains("items array"), "{}", h.reason());
        // An active item without a string id can never have a fresh entry.
        let (mut content, playlists, cache) = orphan_fixture();
        content.push(json!({"id": 7, "type": "image", "status": "active"}));
        let t = table(&content, &cache);
        let h = harvest_references(&t, PlaylistRefs::from_items(&playlists), &cache);
        assert!(h.reason().contains("1 active item(s)"), "{}", h.reason());
    }

    #[test]
    fn orphan_confirm_needs_active_unreferenced_non_global_unchanged() {
        assert!(confirm_orphan(&detail("a", json!({})), "u-a").is_ok());
        for (extra, want) in [
            (json!({"status": "archived"}), "status=archived"),
            (
                json!({"playlistItems": [{"playlistId": "p"}]}),
                "referenced",
            ),
            (json!({"isGlobal": true}), "global"),
            (json!({"updatedAt": "later"}), "changed"),
            (json!({"playlistItems": null}), "unknown"),
        ] {
            let e = confirm_orphan(&detail("a", extra), "u-a").unwrap_err();
            assert!(e.contains(want), "{e} should contain {want}");
        }
    }

    /// An owned copy of a [`ThumbCheck`] (the check borrows a table local to [`thumb_of`]).
    #[derive(Debug, PartialEq)]
    enum Owned {
        Missing,
        Cached { ok: bool, detail: Option<String> },
        Http(String),
        S3(String),
        NotExamined,
    }

    /// The thumbnail check of one listed item (its table built with `cache`).
    fn thumb_of(it: &Value, cache: &DetailCache, recheck_hours: u64, s3: bool) -> Option<Owned> {
        let t = table(std::slice::from_ref(it), cache);
        let r = t.rows().next()?;
        let c = thumbnail_check(&t, r, cache.fresh(&t, r), now(), recheck_hours, s3);
        c.map(|c| match c {
            ThumbCheck::Missing => Owned::Missing,
            ThumbCheck::Cached { ok, detail } => Owned::Cached {
                ok,
                detail: detail.map(String::from),
            },
            ThumbCheck::Http(u) => Owned::Http(u.to_string()),
            ThumbCheck::S3(k) => Owned::S3(k.to_string()),
            ThumbCheck::NotExamined(_) => Owned::NotExamined,
        })
    }

    #[test]
    fn thumbnail_rules_probe_only_what_can_be_probed() {
        let none = DetailCache::default();
        let mut it = item("a", "image", "active", 3.0);
        it["thumbnail"] = Value::Null;
        assert_eq!(thumb_of(&it, &none, 24, false), Some(Owned::Missing));
        it["thumbnail"] = json!("   ");
        assert_eq!(thumb_of(&it, &none, 24, false), Some(Owned::Missing));
        it["thumbnail"] = json!(42);
        assert_eq!(thumb_of(&it, &none, 24, false), Some(Owned::NotExamined));
        it["thumbnail"] = json!("minio://org/t.jpg");
        assert_eq!(thumb_of(&it, &none, 24, false), Some(Owned::NotExamined));
        assert_eq!(
            thumb_of(&it, &none, 24, true),
            Some(Owned::S3("org/t.jpg".into()))
        );
        // Not kept by a walk without S3 (no cached probe): still not examined, never probed.
        let t = ContentTable::from_items(
            std::slice::from_ref(&it),
            TableOptions::default(),
            Some(&none),
        );
        assert!(matches!(
            thumbnail_check(&t, 0, None, now(), 24, false),
            Some(ThumbCheck::NotExamined(_))
        ));
        it["thumbnail"] = json!("https://cdn.test/t.jpg");
        assert_eq!(
            thumb_of(&it, &none, 24, false),
            Some(Owned::Http("https://cdn.test/t.jpg".into()))
        );
        it["thumbnail"] = json!("HTTP://cdn.test/t.jpg");
        assert_eq!(
            thumb_of(&it, &none, 24, false),
            Some(Owned::Http("HTTP://cdn.test/t.jpg".into()))
        );
        it["thumbnail"] = json!("ftp://cdn.test/t.jpg");
        assert_eq!(thumb_of(&it, &none, 24, true), Some(Owned::NotExamined));
        it["thumbnail"] = json!("https://cdn.test/t.jpg");
        let mut cache = cache_with(&[("a", json!({"updatedAt": "u-a"}))]);
        cache.set_thumbnail(
            "a",
            ThumbnailCheck {
                url: "https://cdn.test/t.jpg".into(),
                ok: false,
                checked_at: ts(now() - ChronoDuration::hours(2)),
                detail: Some("HEAD answered 404".into()),
            },
        );
        assert_eq!(
            thumb_of(&it, &cache, 24, false),
            Some(Owned::Cached {
                ok: false,
                detail: Some("HEAD answered 404".into())
            })
        );
        // A cached probe of an unknown URL form is reused too (the walk keeps the URL of items with a probe).
        let mut ftp = it.clone();
        ftp["thumbnail"] = json!("ftp://cdn.test/t.jpg");
        let mut c2 = cache.clone();
        c2.set_thumbnail(
            "a",
            ThumbnailCheck {
                url: "ftp://cdn.test/t.jpg".into(),
                ok: true,
                checked_at: ts(now() - ChronoDuration::hours(2)),
                detail: None,
            },
        );
        let t = ContentTable::from_items(
            std::slice::from_ref(&ftp),
            TableOptions::default(),
            Some(&c2),
        );
        assert!(matches!(
            thumbnail_check(&t, 0, c2.fresh(&t, 0), now(), 24, false),
            Some(ThumbCheck::Cached { ok: true, .. })
        ));
        // Older than the recheck interval, or another URL → probe again.
        assert!(matches!(
            thumb_of(&it, &cache, 1, false),
            Some(Owned::Http(_))
        ));
        it["thumbnail"] = json!("https://cdn.test/other.jpg");
        assert!(matches!(
            thumb_of(&it, &cache, 24, false),
            Some(Owned::Http(_))
        ));
        // Not image/video, or not active → no check.
        let mut pdf = item("p", "pdf", "active", 3.0);
        pdf["thumbnail"] = Value::Null;
        assert_eq!(thumb_of(&pdf, &none, 24, false), None);
        let mut arch = item("x", "video", "archived", 3.0);
        arch["thumbnail"] = Value::Null;
        assert_eq!(thumb_of(&arch, &none, 24, false), None);
    }

    #[test]
    fn oversized_is_strictly_above_the_limit() {
        let max = 100 * 1_048_576;
        let none = DetailCache::default();
        let verdict = |it: &Value| size_verdict(&table(std::slice::from_ref(it), &none), 0, max);
        let mut it = item("a", "video", "active", 3.0);
        it["fileSize"] = json!(max);
        assert_eq!(verdict(&it), SizeVerdict::Ok);
        it["fileSize"] = json!(max + 1);
        assert_eq!(verdict(&it), SizeVerdict::Oversized(max + 1));
        it["fileSize"] = Value::Null;
        assert_eq!(verdict(&it), SizeVerdict::Ok);
        it.as_object_mut().unwrap().remove("fileSize");
        assert_eq!(verdict(&it), SizeVerdict::Ok);
        it["fileSize"] = json!("big");
        assert_eq!(verdict(&it), SizeVerdict::Unparseable);
        it["fileSize"] = json!(-5);
        assert_eq!(verdict(&it), SizeVerdict::Unparseable);
    }

    #[test]
    fn storage_thresholds_are_strict_and_zero_quota_has_no_verdict() {
        let v = |u: u64, q: i64| json!({"usedBytes": u, "quotaBytes": q});
        assert!(matches!(
            storage_verdict(&v(80, 100), 80.0, 90.0),
            StorageVerdict::Ok { .. }
        ));
        assert!(matches!(
            storage_verdict(&v(81, 100), 80.0, 90.0),
            StorageVerdict::Warning { .. }
        ));
        assert!(matches!(
            storage_verdict(&v(90, 100), 80.0, 90.0),
            StorageVerdict::Warning { .. }
        ));
        assert!(matches!(
            storage_verdict(&v(91, 100), 80.0, 90.0),
            StorageVerdict::Critical { .. }
        ));
        assert!(matches!(
            storage_verdict(&v(5, 0), 80.0, 90.0),
            StorageVerdict::NoVerdict(_)
        ));
        assert!(matches!(
            storage_verdict(&json!({"usedBytes": "x"}), 80.0, 90.0),
            StorageVerdict::NoVerdict(_)
        ));
        // Storage archiving stops once projected usage is under the critical threshold.
        assert!(storage_still_critical(95, 4, 100, 90.0));
        assert!(!storage_still_critical(95, 6, 100, 90.0));
    }
}
