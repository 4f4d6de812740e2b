//! content-lifecycle's detail cache `ops-content-cache.json` (agents.md 6.2.1, 4.1).
//!
//! The content list of the Vizora API lacks `expiresAt`, `replacementContentId`, `isGlobal` and `metadata`
//! (vizora-api.md §3.1), so the agent keeps what it learnt from `GET /api/v1/content/:id` here:
//!
//! ```json
//! {"version":1,"items":{"<id>":{"updatedAt","fetchedAt","status","expiresAt","replacementContentId","isGlobal",
//!   "zoneContentIds":[…],"thumbnail":{"url","ok","checkedAt"}}}}
//! ```
//!
//! * An entry is **fresh** when its `updatedAt` equals the list item's `updatedAt` (string equality).
//! * [`refresh_plan`] picks the stale or missing entries of listed `active` items and of listed layouts that are not
//!   `archived`/`expired`: layouts first, then oldest `createdAt`, at most `limit` of them.
//! * The file has its own lock (`<cache>.lock`, the protocol of agents.md 4.2 via [`FileLock`]) and is written with
//!   [`atomic_write`] (mode 0644). A corrupt file is quarantined to `<cache>.corrupt-<pid>-<n>` (never modified) and
//!   the cache is rebuilt from empty; in a dry run nothing is renamed or written.
//!
//! Everything but [`CacheFile::load`] and [`CacheFile::save`] is pure.

use crate::model::{parse_ts, ts};
use crate::state::lock::{FileLock, atomic_write, lock_path_for};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// File name of the cache in the state dir (agents.md 4.1).
pub const CACHE_FILE_NAME: &str = "ops-content-cache.json";
/// Format version written and accepted.
pub const CACHE_VERSION: u64 = 1;

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

/// What the agent keeps of one content detail read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
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
    #[serde(default)]
    pub zone_content_ids: Vec<String>,
    /// Last thumbnail probe, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<ThumbnailCheck>,
}

impl CacheEntry {
    /// Builds an entry from a `GET /api/v1/content/:id` payload read at `now`.
    ///
    /// Errors (the read then counts as failed: the item stays without a fresh entry, i.e. not examined): the payload
    /// is not an object, `updatedAt` or `status` is not a string, `isGlobal` is neither boolean nor null,
    /// `replacementContentId` is neither string nor null, or `metadata.zones` exists but is not an array.
    pub fn from_detail(detail: &Value, now: DateTime<Utc>) -> Result<CacheEntry, String> {
        let m = detail
            .as_object()
            .ok_or_else(|| "content detail is not a JSON object".to_string())?;
        let updated_at = m
            .get("updatedAt")
            .and_then(Value::as_str)
            .ok_or_else(|| "content detail has no string updatedAt".to_string())?
            .to_string();
        let status = m
            .get("status")
            .and_then(Value::as_str)
            .ok_or_else(|| "content detail has no string status".to_string())?
            .to_string();
        let expires_at = match m.get("expiresAt") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        let replacement_content_id = match m.get("replacementContentId") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
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
                .map(String::from)
                .collect(),
            Some(_) => return Err("metadata.zones is not an array".into()),
        };
        Ok(CacheEntry {
            updated_at,
            fetched_at: ts(now),
            status,
            expires_at,
            replacement_content_id,
            is_global,
            zone_content_ids,
            thumbnail: None,
        })
    }
}

/// The cache document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetailCache {
    /// Entries by content id.
    pub items: BTreeMap<String, CacheEntry>,
}

/// Whether a listed content item needs a detail entry (agents.md 6.2.1): `active`, or a layout that is not
/// `archived`/`expired` (its zones protect content).
pub fn needs_detail(item: &Value) -> bool {
    let status = item.get("status").and_then(Value::as_str).unwrap_or("");
    let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
    status == "active" || (kind == "layout" && status != "archived" && status != "expired")
}

fn item_id(item: &Value) -> Option<&str> {
    item.get("id").and_then(Value::as_str)
}

impl DetailCache {
    /// The entry of `id` if it is fresh for the list item (same `updatedAt`).
    pub fn fresh(&self, item: &Value) -> Option<&CacheEntry> {
        let id = item_id(item)?;
        let listed = item.get("updatedAt").and_then(Value::as_str)?;
        self.items.get(id).filter(|e| e.updated_at == listed)
    }

    /// Stores a freshly read entry, keeping the previous thumbnail result (it is keyed by URL and time, not by the
    /// detail).
    pub fn store(&mut self, id: &str, mut entry: CacheEntry) {
        if entry.thumbnail.is_none()
            && let Some(old) = self.items.get(id)
        {
            entry.thumbnail = old.thumbnail.clone();
        }
        self.items.insert(id.to_string(), entry);
    }

    /// After a complete scan: drops entries of ids that are not listed, and of listed items that no longer need a
    /// detail (neither active nor a live layout). Returns how many were dropped.
    pub fn retain_listed(&mut self, content: &[Value]) -> usize {
        let listed: HashMap<&str, &Value> = content
            .iter()
            .filter_map(|c| item_id(c).map(|id| (id, c)))
            .collect();
        let before = self.items.len();
        self.items
            .retain(|id, _| listed.get(id.as_str()).is_some_and(|c| needs_detail(c)));
        before - self.items.len()
    }

    /// Serialises the cache (`{"version":1,"items":{…}}`, 2-space indentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut items = Map::new();
        for (k, v) in &self.items {
            items.insert(k.clone(), serde_json::to_value(v).unwrap_or(Value::Null));
        }
        serde_json::to_vec_pretty(&json!({"version": CACHE_VERSION, "items": items}))
            .unwrap_or_default()
    }
}

/// Parses cache bytes. Errors (→ quarantine) when the JSON is unparseable, the top level is not an object, `version`
/// is not 1 or `items` is not an object. Single malformed entries are dropped (they are simply stale) and counted in
/// the second value.
pub fn parse_cache(bytes: &[u8]) -> Result<(DetailCache, usize), String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("unparseable JSON: {e}"))?;
    let m = v
        .as_object()
        .ok_or_else(|| "top level is not an object".to_string())?;
    match m.get("version").and_then(Value::as_u64) {
        Some(CACHE_VERSION) => {}
        other => return Err(format!("unsupported version {other:?}")),
    }
    let items = m
        .get("items")
        .and_then(Value::as_object)
        .ok_or_else(|| "items is not an object".to_string())?;
    let mut cache = DetailCache::default();
    let mut dropped = 0;
    for (id, e) in items {
        match serde_json::from_value::<CacheEntry>(e.clone()) {
            Ok(entry) => {
                cache.items.insert(id.clone(), entry);
            }
            Err(_) => dropped += 1,
        }
    }
    Ok((cache, dropped))
}

/// The detail reads of one run (agents.md 6.2.1): ids of listed items that need a detail and have no fresh entry,
/// layouts first, then oldest `createdAt` (unparseable last), then id; at most `limit`. The second value is the number
/// of stale or missing entries in total (the rest wait for later runs).
pub fn refresh_plan(content: &[Value], cache: &DetailCache, limit: usize) -> (Vec<String>, usize) {
    let mut stale: Vec<(bool, Option<DateTime<Utc>>, &str)> = content
        .iter()
        .filter(|c| needs_detail(c))
        .filter(|c| cache.fresh(c).is_none())
        .filter_map(|c| {
            let id = item_id(c)?;
            let layout = c.get("type").and_then(Value::as_str) == Some("layout");
            let created = c
                .get("createdAt")
                .and_then(Value::as_str)
                .and_then(parse_ts);
            Some((layout, created, id))
        })
        .collect();
    stale.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| match (a.1, b.1) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
            .then_with(|| a.2.cmp(b.2))
    });
    let total = stale.len();
    (
        stale
            .into_iter()
            .take(limit)
            .map(|(_, _, id)| id.to_string())
            .collect(),
        total,
    )
}

/// The cache file in the state dir, with its lock deadline.
#[derive(Debug, Clone)]
pub struct CacheFile {
    path: PathBuf,
    lock_timeout: Duration,
}

/// The result of [`CacheFile::load`].
#[derive(Debug, Default)]
pub struct Loaded {
    /// The cache read (empty when missing, corrupt or unreadable).
    pub cache: DetailCache,
    /// WARNING lines for the agent's log (malformed entries dropped).
    pub warnings: Vec<String>,
    /// ERROR lines for the agent's log (quarantine, lock or read failure).
    pub errors: Vec<String>,
}

impl CacheFile {
    /// The cache at `path` (normally `<state dir>/ops-content-cache.json`), locked with `lock_timeout`.
    pub fn new(path: impl Into<PathBuf>, lock_timeout: Duration) -> CacheFile {
        CacheFile {
            path: path.into(),
            lock_timeout,
        }
    }

    /// The cache of a configuration: `<state dir>/ops-content-cache.json`, lock deadline `OPS_LOCK_TIMEOUT_MS`.
    pub fn from_config(cfg: &crate::config::Config) -> CacheFile {
        CacheFile::new(
            cfg.state_dir().join(CACHE_FILE_NAME),
            Duration::from_millis(cfg.lock_timeout_ms),
        )
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the cache under its lock. Missing → empty. Corrupt → renamed to `<cache>.corrupt-<pid>-<n>` (unless
    /// `dry_run`, where nothing on disk changes) and empty, with an ERROR line. A lock timeout or unreadable file →
    /// empty with an ERROR line (the run then re-reads details; never fatal).
    pub fn load(&self, dry_run: bool) -> Loaded {
        let mut out = Loaded::default();
        let guard = if dry_run {
            None
        } else {
            match FileLock::acquire(&lock_path_for(&self.path), self.lock_timeout) {
                Ok(g) => Some(g),
                Err(e) => {
                    out.errors.push(format!(
                        "content cache lock failed ({e}); continuing without the cache"
                    ));
                    return out;
                }
            }
        };
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return out,
            Err(e) => {
                out.errors.push(format!(
                    "cannot read content cache {}: {e}; continuing without it",
                    self.path.display()
                ));
                return out;
            }
        };
        match parse_cache(&bytes) {
            Ok((cache, dropped)) => {
                if dropped > 0 {
                    out.warnings.push(format!(
                        "content cache: dropped {dropped} malformed entr{} (re-read as stale)",
                        if dropped == 1 { "y" } else { "ies" }
                    ));
                }
                out.cache = cache;
            }
            Err(reason) if dry_run => out.errors.push(format!(
                "content cache {} is corrupt ({reason}); dry run: not quarantined, continuing from an empty cache",
                self.path.display()
            )),
            Err(reason) => {
                match crate::state::lock::quarantine(&self.path) {
                    Ok(q) => out.errors.push(format!(
                        "content cache {} is corrupt ({reason}); quarantined as {} and rebuilding",
                        self.path.display(),
                        q.display()
                    )),
                    Err(e) => out.errors.push(format!(
                        "content cache {} is corrupt ({reason}); quarantine failed ({e}); rebuilding",
                        self.path.display()
                    )),
                }
            }
        }
        drop(guard);
        out
    }

    /// Writes the cache atomically (temp file, fsync, rename; mode 0644) under its own lock.
    ///
    /// Errors: lock timeout or write failure (the old file stays; the next run re-reads what is stale).
    pub fn save(&self, cache: &DetailCache) -> Result<(), String> {
        let _guard = FileLock::acquire(&lock_path_for(&self.path), self.lock_timeout)
            .map_err(|e| e.to_string())?;
        atomic_write(&self.path, &cache.to_bytes(), 0o644)
            .map_err(|e| format!("cannot write content cache {}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 8, 26, 13, 42, 17).unwrap()
    }

    fn item(id: &str, kind: &str, status: &str, created: &str, updated: &str) -> Value {
        json!({"id": id, "type": kind, "status": status, "createdAt": created, "updatedAt": updated})
    }

    fn entry(updated: &str) -> CacheEntry {
        CacheEntry::from_detail(&json!({"updatedAt": updated, "status": "active"}), now()).unwrap()
    }

    #[test]
    fn detail_projection_keeps_zones_replacement_and_global_flag() {
        let e = CacheEntry::from_detail(
            &json!({"id":"c1","updatedAt":"2026-08-01T00:00:00.000Z","status":"active",
                "expiresAt":"2026-09-01T00:00:00.000Z","replacementContentId":"c2","isGlobal":true,
                "metadata":{"zones":[{"contentId":"z1"},{"contentId":null},{"x":1},{"contentId":"z2"}]}}),
            now(),
        )
        .unwrap();
        assert_eq!(e.zone_content_ids, vec!["z1", "z2"]);
        assert_eq!(e.replacement_content_id.as_deref(), Some("c2"));
        assert_eq!(e.is_global, Some(true));
        assert_eq!(e.expires_at.as_deref(), Some("2026-09-01T00:00:00.000Z"));
        assert_eq!(e.fetched_at, "2026-08-26T13:42:17.000Z");
    }

    #[test]
    fn malformed_detail_fields_are_refused_not_guessed() {
        for bad in [
            json!({"status":"active"}),
            json!({"updatedAt":"x","status":"active","isGlobal":"yes"}),
            json!({"updatedAt":"x","status":"active","metadata":{"zones":{"a":1}}}),
            json!({"updatedAt":"x","status":"active","replacementContentId":5}),
            json!([1, 2]),
        ] {
            assert!(CacheEntry::from_detail(&bad, now()).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_entry_is_fresh_only_for_the_same_updated_at() {
        let mut c = DetailCache::default();
        c.store("a", entry("2026-08-01T00:00:00.000Z"));
        let listed = item(
            "a",
            "image",
            "active",
            "2026-01-01T00:00:00.000Z",
            "2026-08-01T00:00:00.000Z",
        );
        assert!(c.fresh(&listed).is_some());
        let changed = item(
            "a",
            "image",
            "active",
            "2026-01-01T00:00:00.000Z",
            "2026-08-02T00:00:00.000Z",
        );
        assert!(c.fresh(&changed).is_none());
    }

    #[test]
    fn refresh_plan_reads_layouts_first_then_oldest_and_respects_the_limit() {
        let content = vec![
            item("new", "image", "active", "2026-08-01T00:00:00.000Z", "u"),
            item("old", "image", "active", "2025-01-01T00:00:00.000Z", "u"),
            item("lay", "layout", "draft", "2026-08-20T00:00:00.000Z", "u"),
            item(
                "deadlay",
                "layout",
                "archived",
                "2020-01-01T00:00:00.000Z",
                "u",
            ),
            item("arch", "image", "archived", "2020-01-01T00:00:00.000Z", "u"),
            item("fresh", "image", "active", "2019-01-01T00:00:00.000Z", "u"),
        ];
        let mut cache = DetailCache::default();
        cache.store("fresh", entry("u"));
        let (ids, total) = refresh_plan(&content, &cache, 2);
        assert_eq!(ids, vec!["lay", "old"]);
        assert_eq!(total, 3);
    }

    #[test]
    fn complete_scan_drops_unlisted_and_no_longer_needed_entries() {
        let mut cache = DetailCache::default();
        for id in ["keep", "gone", "archived"] {
            cache.store(id, entry("u"));
        }
        let content = vec![
            item("keep", "image", "active", "x", "u"),
            item("archived", "image", "archived", "x", "u"),
        ];
        assert_eq!(cache.retain_listed(&content), 2);
        assert_eq!(cache.items.keys().collect::<Vec<_>>(), vec!["keep"]);
    }

    #[test]
    fn refreshed_entry_keeps_the_previous_thumbnail_probe() {
        let mut cache = DetailCache::default();
        let mut e = entry("u1");
        e.thumbnail = Some(ThumbnailCheck {
            url: "https://x.test/t.jpg".into(),
            ok: true,
            checked_at: "2026-08-26T00:00:00.000Z".into(),
            detail: None,
        });
        cache.store("a", e);
        cache.store("a", entry("u2"));
        assert_eq!(cache.items["a"].updated_at, "u2");
        assert!(cache.items["a"].thumbnail.as_ref().unwrap().ok);
    }

    #[test]
    fn save_then_load_round_trips_and_corrupt_file_is_quarantined_untouched() {
        let d = tempfile::tempdir().unwrap();
        let f = CacheFile::new(d.path().join(CACHE_FILE_NAME), Duration::from_millis(500));
        let mut cache = DetailCache::default();
        cache.store("a", entry("u"));
        f.save(&cache).unwrap();
        let loaded = f.load(false);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        assert_eq!(loaded.cache, cache);
        assert!(!lock_path_for(f.path()).exists(), "lock released");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(f.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);

        std::fs::write(f.path(), b"{not json").unwrap();
        // Dry run: reported, nothing moved.
        let dry = f.load(true);
        assert!(dry.cache.items.is_empty());
        assert!(f.path().exists());
        let loaded = f.load(false);
        assert!(loaded.cache.items.is_empty());
        assert!(
            loaded.errors[0].contains("quarantined as"),
            "{:?}",
            loaded.errors
        );
        assert!(!f.path().exists());
        let q: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.contains(".corrupt-"))
            .collect();
        assert_eq!(q.len(), 1);
        assert_eq!(std::fs::read(d.path().join(&q[0])).unwrap(), b"{not json");
    }

    #[test]
    fn wrong_version_is_corrupt_and_bad_entries_are_dropped() {
        assert!(parse_cache(br#"{"version":2,"items":{}}"#).is_err());
        assert!(parse_cache(br#"[1]"#).is_err());
        let (c, dropped) = parse_cache(
            br#"{"version":1,"items":{"a":{"updatedAt":"u","fetchedAt":"f","status":"active","expiresAt":null,
            "replacementContentId":null,"isGlobal":null,"zoneContentIds":[]},"b":{"status":3}}}"#,
        )
        .unwrap();
        assert_eq!(dropped, 1);
        assert!(c.items.contains_key("a"));
    }
}
