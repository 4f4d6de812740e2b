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
//!   [`atomic_write_with`] (mode 0644), streamed as compact JSON. A corrupt file is quarantined to
//!   `<cache>.corrupt-<pid>-<n>` (never modified) and the cache is rebuilt from empty; in a dry run nothing is renamed
//!   or written. Files in the old pretty-printed form load the same.
//!
//! In memory ([`DetailCache`]) entries are compact slots (about 64 bytes plus the id): strings in one arena,
//! timestamps as [`Stamp`]s, `status` interned, an id index keyed by [`id_hash`] (a colliding id is left out: its item
//! has no fresh entry and is not examined, the safe direction). The file is parsed straight from a buffered reader
//! into slots (one malformed entry is dropped and counted; bad JSON or a bad top level quarantines the file).
//!
//! Everything but [`CacheFile::load`] and [`CacheFile::save`] is pure.

use super::content_table::{
    ContentTable, DetailSlots, HashMap64, Interner, NONE, Span, Stamp, id_hash,
};
use crate::model::ts;
use crate::state::lock::{FileLock, atomic_write_with, lock_path_for};
use chrono::{DateTime, Utc};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
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

/// What the agent keeps of one content detail read, as owned values (the interchange form of [`DetailCache::store`]
/// and [`DetailCache::get`]; the cache itself holds compact slots).
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

/// One compact entry (see the module docs).
#[derive(Debug, Clone, Copy)]
struct Slot {
    id: Span,
    updated: Stamp,
    fetched: Stamp,
    /// [`Stamp::ABSENT`] = null.
    expires: Stamp,
    replacement: Span,
    zones_start: u32,
    zones_len: u32,
    thumb: u32,
    status: u32,
    /// 0 = null, 1 = false, 2 = true.
    is_global: u8,
    alive: bool,
}

/// The cache document, compact (see the module docs). Slot numbers (`u32`) stay valid for the run; a removed entry
/// leaves a dead slot.
#[derive(Debug, Clone, Default)]
pub struct DetailCache {
    arena: String,
    slots: Vec<Slot>,
    zones: Vec<Span>,
    thumbs: Vec<ThumbnailCheck>,
    statuses: Interner,
    index: HashMap64<u32>,
    live: usize,
}

/// A borrowed view of one live entry.
#[derive(Debug, Clone, Copy)]
pub struct EntryRef<'a> {
    cache: &'a DetailCache,
    slot: &'a Slot,
}

impl<'a> EntryRef<'a> {
    /// `expiresAt` as read (`None` = null).
    pub fn expires_at(&self) -> Option<Cow<'a, str>> {
        self.slot.expires.text(&self.cache.arena)
    }
    /// `expiresAt`: `None` = null, `Some(None)` = unparseable, `Some(Some(t))` = the instant.
    pub fn expires_time(&self) -> Option<Option<DateTime<Utc>>> {
        (!self.slot.expires.is_absent()).then(|| self.slot.expires.time(&self.cache.arena))
    }
    /// `replacementContentId` (`None` = null).
    pub fn replacement(&self) -> Option<&'a str> {
        self.slot.replacement.opt(&self.cache.arena)
    }
    /// `isGlobal` (`None` = null or absent).
    pub fn is_global(&self) -> Option<bool> {
        match self.slot.is_global {
            0 => None,
            1 => Some(false),
            _ => Some(true),
        }
    }
    /// The zone content ids.
    pub fn zone_ids(&self) -> impl Iterator<Item = &'a str> + 'a {
        let (c, s) = (self.cache, self.slot);
        c.zones[s.zones_start as usize..(s.zones_start + s.zones_len) as usize]
            .iter()
            .map(move |z| z.get(&c.arena))
    }
    /// The last thumbnail probe.
    pub fn thumbnail(&self) -> Option<&'a ThumbnailCheck> {
        self.cache.thumbs.get(self.slot.thumb as usize)
    }
    /// The entry as owned values.
    pub fn to_entry(&self) -> CacheEntry {
        let a = &self.cache.arena;
        CacheEntry {
            updated_at: self.slot.updated.text(a).unwrap_or_default().into_owned(),
            fetched_at: self.slot.fetched.text(a).unwrap_or_default().into_owned(),
            status: self
                .cache
                .statuses
                .get(self.slot.status)
                .unwrap_or("")
                .to_string(),
            expires_at: self.expires_at().map(Cow::into_owned),
            replacement_content_id: self.replacement().map(String::from),
            is_global: self.is_global(),
            zone_content_ids: self.zone_ids().map(String::from).collect(),
            thumbnail: self.thumbnail().cloned(),
        }
    }
}

/// Whether a listed content item needs a detail entry (agents.md 6.2.1): `active`, or a layout that is not
/// `archived`/`expired` (its zones protect content).
pub fn needs_detail(item: &Value) -> bool {
    let status = item.get("status").and_then(Value::as_str).unwrap_or("");
    let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
    status == "active" || (kind == "layout" && status != "archived" && status != "expired")
}

/// The fields of one entry before they become a slot.
struct Parts<'a> {
    updated_at: &'a str,
    fetched_at: &'a str,
    status: &'a str,
    expires_at: Option<&'a str>,
    replacement: Option<&'a str>,
    is_global: Option<bool>,
    zones: Vec<&'a str>,
    thumbnail: Option<ThumbnailCheck>,
}

impl DetailSlots for DetailCache {
    fn slot_of(&self, id: &str) -> Option<u32> {
        DetailCache::slot_of(self, id)
    }
    fn has_thumbnail(&self, slot: u32) -> bool {
        DetailCache::has_thumbnail(self, slot)
    }
}

impl DetailCache {
    /// Number of live entries.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether there is no live entry.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The slot of `id`, if it has a live entry.
    pub fn slot_of(&self, id: &str) -> Option<u32> {
        let slot = *self.index.get(&id_hash(id))?;
        let s = &self.slots[slot as usize];
        (s.alive && s.id.get(&self.arena) == id).then_some(slot)
    }

    /// The live entry in `slot`.
    pub fn at(&self, slot: u32) -> Option<EntryRef<'_>> {
        self.slots
            .get(slot as usize)
            .filter(|s| s.alive)
            .map(|s| EntryRef {
                cache: self,
                slot: s,
            })
    }

    /// Whether the entry in `slot` holds a thumbnail probe.
    pub fn has_thumbnail(&self, slot: u32) -> bool {
        self.at(slot).is_some_and(|e| e.thumbnail().is_some())
    }

    /// The entry of `id` as owned values.
    pub fn get(&self, id: &str) -> Option<CacheEntry> {
        self.slot_of(id)
            .and_then(|s| self.at(s))
            .map(|e| e.to_entry())
    }

    /// Whether `id` has an entry.
    pub fn contains(&self, id: &str) -> bool {
        self.slot_of(id).is_some()
    }

    /// The ids of the live entries, in slot order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.slots
            .iter()
            .filter(|s| s.alive)
            .map(|s| s.id.get(&self.arena))
    }

    /// The entry of row `r` of `table` if it is fresh: linked, live, and the same `updatedAt` as the listed item.
    pub fn fresh(&self, table: &ContentTable, r: u32) -> Option<EntryRef<'_>> {
        let e = self.at(table.entry(r))?;
        Stamp::same(table.updated(r), table.arena(), e.slot.updated, &self.arena).then_some(e)
    }

    fn put(&mut self, id: &str, p: Parts<'_>, keep_thumbnail: bool) -> u32 {
        let h = id_hash(id);
        let existing = self.index.get(&h).copied();
        if let Some(slot) = existing
            && self.slots[slot as usize].id.get(&self.arena) != id
        {
            // A 64-bit hash collision with another id: this entry is left out (its item stays stale).
            return NONE;
        }
        let old_thumb = existing
            .map(|s| self.slots[s as usize])
            .filter(|s| s.alive)
            .map(|s| s.thumb)
            .unwrap_or(NONE);
        let zones_start = u32::try_from(self.zones.len()).expect("zone table over 4G entries");
        for z in p.zones {
            let sp = Span::push(&mut self.arena, z);
            self.zones.push(sp);
        }
        let zones_len = self.zones.len() as u32 - zones_start;
        let thumb = match p.thumbnail {
            Some(t) => {
                self.thumbs.push(t);
                (self.thumbs.len() - 1) as u32
            }
            None if keep_thumbnail => old_thumb,
            None => NONE,
        };
        let slot = Slot {
            id: match existing {
                Some(s) => self.slots[s as usize].id,
                None => Span::push(&mut self.arena, id),
            },
            updated: Stamp::encode(p.updated_at, &mut self.arena),
            fetched: Stamp::encode(p.fetched_at, &mut self.arena),
            expires: p
                .expires_at
                .map(|e| Stamp::encode(e, &mut self.arena))
                .unwrap_or(Stamp::ABSENT),
            replacement: p
                .replacement
                .map(|r| Span::push(&mut self.arena, r))
                .unwrap_or(Span::NONE),
            zones_start,
            zones_len,
            thumb,
            status: self.statuses.intern(p.status),
            is_global: match p.is_global {
                None => 0,
                Some(false) => 1,
                Some(true) => 2,
            },
            alive: true,
        };
        match existing {
            Some(s) => {
                if !self.slots[s as usize].alive {
                    self.live += 1;
                }
                self.slots[s as usize] = slot;
                s
            }
            None => {
                let s = u32::try_from(self.slots.len()).expect("cache over 4G entries");
                self.slots.push(slot);
                self.index.insert(h, s);
                self.live += 1;
                s
            }
        }
    }

    /// Stores an entry, keeping the previous thumbnail result when the new entry has none (it is keyed by URL and
    /// time, not by the detail). Returns the slot ([`NONE`] on an id-hash collision: the entry is left out).
    pub fn store(&mut self, id: &str, entry: CacheEntry) -> u32 {
        self.put(
            id,
            Parts {
                updated_at: &entry.updated_at,
                fetched_at: &entry.fetched_at,
                status: &entry.status,
                expires_at: entry.expires_at.as_deref(),
                replacement: entry.replacement_content_id.as_deref(),
                is_global: entry.is_global,
                zones: entry.zone_content_ids.iter().map(String::as_str).collect(),
                thumbnail: entry.thumbnail.clone(),
            },
            true,
        )
    }

    /// Stores the entry of a `GET /api/v1/content/:id` payload read at `now` without an owned copy (same rules and
    /// errors as [`CacheEntry::from_detail`], thumbnail kept as in [`DetailCache::store`]). Returns the slot.
    pub fn store_detail(
        &mut self,
        id: &str,
        detail: &Value,
        now: DateTime<Utc>,
    ) -> Result<u32, String> {
        let f = DetailFields::parse(detail)?;
        let fetched = ts(now);
        Ok(self.put(
            id,
            Parts {
                updated_at: f.updated_at,
                fetched_at: &fetched,
                status: f.status,
                expires_at: f.expires_at.as_deref(),
                replacement: f.replacement_content_id,
                is_global: f.is_global,
                zones: f.zone_content_ids,
                thumbnail: None,
            },
            true,
        ))
    }

    /// Records a thumbnail probe on the entry of `id` (nothing when it has none).
    pub fn set_thumbnail(&mut self, id: &str, t: ThumbnailCheck) {
        if let Some(s) = self.slot_of(id) {
            self.thumbs.push(t);
            self.slots[s as usize].thumb = (self.thumbs.len() - 1) as u32;
        }
    }

    /// Removes the entry of `id`; returns whether there was one.
    pub fn remove(&mut self, id: &str) -> bool {
        match self.slot_of(id) {
            Some(s) => {
                self.slots[s as usize].alive = false;
                self.live -= 1;
                true
            }
            None => false,
        }
    }

    /// After a complete scan: drops every entry not linked to a row of `table` that is still judged (rows are the
    /// listed items that need a detail, so entries of unlisted ids and of items that no longer need one go). Returns
    /// how many were dropped.
    pub fn retain_listed(&mut self, table: &ContentTable) -> usize {
        let mut keep = vec![false; self.slots.len()];
        for r in table.rows() {
            let e = table.entry(r);
            if let Some(k) = keep.get_mut(e as usize) {
                *k = true;
            }
        }
        let mut dropped = 0;
        for (s, k) in self.slots.iter_mut().zip(keep) {
            if s.alive && !k {
                s.alive = false;
                dropped += 1;
            }
        }
        self.live -= dropped;
        dropped
    }

    /// Writes the document as compact JSON (`{"version":1,"items":{…}}`, entries in slot order).
    pub fn write_to(&self, w: &mut dyn Write) -> io::Result<()> {
        fn js(w: &mut dyn Write, s: &str) -> io::Result<()> {
            serde_json::to_writer(&mut *w, s).map_err(io::Error::other)
        }
        fn opt(w: &mut dyn Write, s: Option<&str>) -> io::Result<()> {
            match s {
                Some(s) => js(w, s),
                None => w.write_all(b"null"),
            }
        }
        write!(w, "{{\"version\":{CACHE_VERSION},\"items\":{{")?;
        let mut first = true;
        for slot in self.slots.iter().filter(|s| s.alive) {
            let e = EntryRef { cache: self, slot };
            if !first {
                w.write_all(b",")?;
            }
            first = false;
            js(w, slot.id.get(&self.arena))?;
            w.write_all(b":{\"updatedAt\":")?;
            opt(w, slot.updated.text(&self.arena).as_deref())?;
            w.write_all(b",\"fetchedAt\":")?;
            opt(w, slot.fetched.text(&self.arena).as_deref())?;
            w.write_all(b",\"status\":")?;
            js(w, self.statuses.get(slot.status).unwrap_or(""))?;
            w.write_all(b",\"expiresAt\":")?;
            opt(w, e.expires_at().as_deref())?;
            w.write_all(b",\"replacementContentId\":")?;
            opt(w, e.replacement())?;
            w.write_all(b",\"isGlobal\":")?;
            w.write_all(match e.is_global() {
                None => b"null",
                Some(true) => b"true",
                Some(false) => b"false",
            })?;
            w.write_all(b",\"zoneContentIds\":[")?;
            for (i, z) in e.zone_ids().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                js(w, z)?;
            }
            w.write_all(b"]")?;
            if let Some(t) = e.thumbnail() {
                w.write_all(b",\"thumbnail\":")?;
                serde_json::to_writer(&mut *w, t).map_err(io::Error::other)?;
            }
            w.write_all(b"}")?;
        }
        w.write_all(b"}}")
    }

    /// The document as bytes ([`DetailCache::write_to`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_to(&mut v).expect("writing to a Vec cannot fail");
        v
    }

    /// Bytes held (approximate).
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.arena.capacity()
            + self.zones.capacity() * 8
            + self.index.capacity() * 17
    }
}

impl PartialEq for DetailCache {
    /// Same ids with the same entries (slot layout and order aside).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.ids().all(|id| self.get(id) == other.get(id))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Streaming parse
// ---------------------------------------------------------------------------------------------------------------

/// Why a top level or `items` value was refused.
enum Shape {
    Ok,
    NotObject,
}

/// The visitor methods of every value that is not an object: each answers [`Shape::NotObject`] (arrays are
/// skipped element by element).
macro_rules! forward_not_object {
    () => {
        fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
            Ok(Shape::NotObject)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
            Ok(Shape::NotObject)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
            Ok(Shape::NotObject)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
            Ok(Shape::NotObject)
        }
        fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
            Ok(Shape::NotObject)
        }
        fn visit_unit<E>(self) -> Result<Shape, E> {
            Ok(Shape::NotObject)
        }
        fn visit_none<E>(self) -> Result<Shape, E> {
            Ok(Shape::NotObject)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Shape::NotObject)
        }
    };
}

/// The top level: `version` (kept as a value) and `items` (streamed into the cache).
struct TopSeed<'c> {
    cache: &'c mut DetailCache,
    dropped: &'c mut usize,
    version: &'c mut Option<Value>,
    items: &'c mut Option<Shape>,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_> {
    type Value = Shape;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Shape, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_> {
    type Value = Shape;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the content cache object")
    }
    forward_not_object!();
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        while let Some(k) = map.next_key::<Cow<'de, str>>()? {
            match &*k {
                "version" => *self.version = Some(map.next_value()?),
                "items" => {
                    *self.items = Some(map.next_value_seed(ItemsSeed {
                        cache: &mut *self.cache,
                        dropped: &mut *self.dropped,
                    })?)
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Shape::Ok)
    }
}

struct ItemsSeed<'c> {
    cache: &'c mut DetailCache,
    dropped: &'c mut usize,
}

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_> {
    type Value = Shape;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Shape, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_> {
    type Value = Shape;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the items object")
    }
    forward_not_object!();
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        // An id that appears twice (a hand-edited or damaged file) is dropped altogether: which copy is right is
        // unknown, and a wrong one could hide a layout's zone references (6.2.4). The item is simply re-read.
        let mut repeated: std::collections::HashSet<String> = std::collections::HashSet::new();
        while let Some(id) = map.next_key::<Cow<'de, str>>()? {
            let entry = map.next_value::<RawEntry>()?;
            if repeated.contains(&*id) {
                *self.dropped += 1;
                continue;
            }
            if self.cache.contains(&id) {
                self.cache.remove(&id);
                repeated.insert(id.to_string());
                *self.dropped += 2;
                continue;
            }
            match entry.into_checked() {
                Some(p) => {
                    self.cache.put(
                        &id,
                        Parts {
                            updated_at: &p.updated_at,
                            fetched_at: &p.fetched_at,
                            status: &p.status,
                            expires_at: p.expires_at.as_deref(),
                            replacement: p.replacement.as_deref(),
                            is_global: p.is_global,
                            zones: p.zones.iter().map(String::as_str).collect(),
                            thumbnail: p.thumbnail,
                        },
                        false,
                    );
                }
                None => *self.dropped += 1,
            }
        }
        Ok(Shape::Ok)
    }
}

/// One entry as read: each known field as a JSON value (checked afterwards, so a malformed entry is dropped without
/// failing the file), `malformed` when the entry is not an object or repeats a field.
#[derive(Default)]
struct RawEntry {
    malformed: bool,
    updated_at: Option<Value>,
    fetched_at: Option<Value>,
    status: Option<Value>,
    expires_at: Option<Value>,
    replacement: Option<Value>,
    is_global: Option<Value>,
    zones: Option<Value>,
    thumbnail: Option<Value>,
}

/// A checked entry (the rules of the serde form of the file: required strings, optional nullable fields).
struct Checked {
    updated_at: String,
    fetched_at: String,
    status: String,
    expires_at: Option<String>,
    replacement: Option<String>,
    is_global: Option<bool>,
    zones: Vec<String>,
    thumbnail: Option<ThumbnailCheck>,
}

impl RawEntry {
    fn into_checked(self) -> Option<Checked> {
        if self.malformed {
            return None;
        }
        let req = |v: Option<Value>| match v {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        let nullable = |v: Option<Value>| match v {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(s)) => Some(Some(s)),
            _ => None,
        };
        Some(Checked {
            updated_at: req(self.updated_at)?,
            fetched_at: req(self.fetched_at)?,
            status: req(self.status)?,
            expires_at: nullable(self.expires_at)?,
            replacement: nullable(self.replacement)?,
            is_global: match self.is_global {
                None | Some(Value::Null) => None,
                Some(Value::Bool(b)) => Some(b),
                _ => return None,
            },
            zones: match self.zones {
                None => Vec::new(),
                Some(v) => serde_json::from_value(v).ok()?,
            },
            thumbnail: match self.thumbnail {
                None | Some(Value::Null) => None,
                Some(v) => Some(serde_json::from_value(v).ok()?),
            },
        })
    }
}

impl<'de> Deserialize<'de> for RawEntry {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<RawEntry, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a cache entry")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEntry, A::Error> {
                let mut e = RawEntry::default();
                while let Some(k) = map.next_key::<Cow<'de, str>>()? {
                    let field = match &*k {
                        "updatedAt" => &mut e.updated_at,
                        "fetchedAt" => &mut e.fetched_at,
                        "status" => &mut e.status,
                        "expiresAt" => &mut e.expires_at,
                        "replacementContentId" => &mut e.replacement,
                        "isGlobal" => &mut e.is_global,
                        "zoneContentIds" => &mut e.zones,
                        "thumbnail" => &mut e.thumbnail,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    let v: Value = map.next_value()?;
                    if field.replace(v).is_some() {
                        e.malformed = true;
                    }
                }
                Ok(e)
            }
            fn visit_bool<E>(self, _: bool) -> Result<RawEntry, E> {
                Ok(RawEntry::malformed())
            }
            fn visit_i64<E>(self, _: i64) -> Result<RawEntry, E> {
                Ok(RawEntry::malformed())
            }
            fn visit_u64<E>(self, _: u64) -> Result<RawEntry, E> {
                Ok(RawEntry::malformed())
            }
            fn visit_f64<E>(self, _: f64) -> Result<RawEntry, E> {
                Ok(RawEntry::malformed())
            }
            fn visit_str<E>(self, _: &str) -> Result<RawEntry, E> {
                Ok(RawEntry::malformed())
            }
            fn visit_unit<E>(self) -> Result<RawEntry, E> {
                Ok(RawEntry::malformed())
            }
            fn visit_none<E>(self) -> Result<RawEntry, E> {
                Ok(RawEntry::malformed())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawEntry, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(RawEntry::malformed())
            }
        }
        d.deserialize_any(V)
    }
}

impl RawEntry {
    fn malformed() -> RawEntry {
        RawEntry {
            malformed: true,
            ..RawEntry::default()
        }
    }
}

const READ_ERROR: &str = "read error: ";

/// Parses a cache document from `reader` (buffered by the caller or not; it is read once, front to back). Errors
/// (→ quarantine) when the JSON is unparseable, the top level is not an object, `version` is not 1 or `items` is
/// missing or not an object. Single malformed entries are dropped (they are simply stale) and counted in the second
/// value.
pub fn parse_cache_reader(reader: impl Read) -> Result<(DetailCache, usize), String> {
    let mut cache = DetailCache::default();
    let mut dropped = 0usize;
    let mut version = None;
    let mut items = None;
    let mut de =
        serde_json::Deserializer::from_reader(io::BufReader::with_capacity(1 << 16, reader));
    let top = TopSeed {
        cache: &mut cache,
        dropped: &mut dropped,
        version: &mut version,
        items: &mut items,
    }
    .deserialize(&mut de)
    .and_then(|t| de.end().map(|()| t))
    .map_err(|e| {
        if e.is_io() {
            format!("{READ_ERROR}{e}")
        } else {
            format!("unparseable JSON: {e}")
        }
    })?;
    if let Shape::NotObject = top {
        return Err("top level is not an object".into());
    }
    match version.as_ref().and_then(Value::as_u64) {
        Some(CACHE_VERSION) => {}
        other => return Err(format!("unsupported version {other:?}")),
    }
    match items {
        Some(Shape::Ok) => Ok((cache, dropped)),
        _ => Err("items is not an object".into()),
    }
}

/// [`parse_cache_reader`] over bytes.
pub fn parse_cache(bytes: &[u8]) -> Result<(DetailCache, usize), String> {
    parse_cache_reader(bytes)
}

/// The detail reads of one run (agents.md 6.2.1): rows of `table` that have no fresh entry in `cache` (every row
/// needs a detail: see [`ContentTable`]), layouts first, then oldest `createdAt` (unparseable last), then id; at most
/// `limit`. The second value is the number of stale or missing entries in total (the rest wait for later runs).
pub fn refresh_plan(table: &ContentTable, cache: &DetailCache, limit: usize) -> (Vec<u32>, usize) {
    let mut stale: Vec<(bool, Option<DateTime<Utc>>, u32)> = table
        .rows()
        .filter(|r| cache.fresh(table, *r).is_none())
        .map(|r| (table.is_layout(r), table.created(r), r))
        .collect();
    let total = stale.len();
    let cmp = |a: &(bool, Option<DateTime<Utc>>, u32), b: &(bool, Option<DateTime<Utc>>, u32)| {
        b.0.cmp(&a.0)
            .then_with(|| match (a.1, b.1) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
            .then_with(|| table.id(a.2).cmp(table.id(b.2)))
    };
    if limit < stale.len() {
        stale.select_nth_unstable_by(limit, cmp);
        stale.truncate(limit);
    }
    stale.sort_unstable_by(cmp);
    (stale.into_iter().map(|(_, _, r)| r).collect(), total)
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

    /// Reads the cache under its lock, parsing straight from the file. Missing → empty. Corrupt → renamed to
    /// `<cache>.corrupt-<pid>-<n>` (unless `dry_run`, where nothing on disk changes) and empty, with an ERROR line. A
    /// lock timeout or unreadable file → empty with an ERROR line (the run then re-reads details; never fatal).
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
        // O_NONBLOCK: opening a FIFO put in the cache's place must not block the run (it is refused below); it has
        // no effect on a regular file.
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return out,
            Err(e) => {
                out.errors.push(format!(
                    "cannot read content cache {}: {e}; continuing without it",
                    self.path.display()
                ));
                return out;
            }
        };
        if let Ok(m) = file.metadata()
            && !m.is_file()
        {
            out.errors.push(format!(
                "cannot read content cache {}: it is {}, not a regular file; continuing without it",
                self.path.display(),
                if m.is_dir() {
                    "a directory"
                } else {
                    "a special file (FIFO, socket or device)"
                }
            ));
            return out;
        }
        match parse_cache_reader(file) {
            Ok((cache, dropped)) => {
                if dropped > 0 {
                    out.warnings.push(format!(
                        "content cache: dropped {dropped} malformed entr{} (re-read as stale)",
                        if dropped == 1 { "y" } else { "ies" }
                    ));
                }
                out.cache = cache;
            }
            Err(reason) if reason.starts_with(READ_ERROR) => {
                out.errors.push(format!(
                    "cannot read content cache {}: {reason}; continuing without it",
                    self.path.display()
                ));
            }
            Err(reason) if dry_run => out.errors.push(format!(
                "content cache {} is corrupt ({reason}); dry run: not quarantined, continuing from an empty cache",
                self.path.display()
            )),
            Err(reason) => match crate::state::lock::quarantine(&self.path) {
                Ok(q) => out.errors.push(format!(
                    "content cache {} is corrupt ({reason}); quarantined as {} and rebuilding",
                    self.path.display(),
                    q.display()
                )),
                Err(e) => out.errors.push(format!(
                    "content cache {} is corrupt ({reason}); quarantine failed ({e}); rebuilding",
                    self.path.display()
                )),
            },
        }
        drop(guard);
        out
    }

    /// Writes the cache atomically (temp file streamed through a buffer, fsync, rename; mode 0644) under its own
    /// lock.
    ///
    /// Errors: lock timeout or write failure (the old file stays; the next run re-reads what is stale).
    pub fn save(&self, cache: &DetailCache) -> Result<(), String> {
        let _guard = FileLock::acquire(&lock_path_for(&self.path), self.lock_timeout)
            .map_err(|e| e.to_string())?;
        atomic_write_with(&self.path, 0o644, &mut |w| cache.write_to(w))
            .map_err(|e| format!("cannot write content cache {}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::content_table::TableOptions;
    use chrono::TimeZone;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 8, 26, 13, 42, 17).unwrap()
    }

    fn item(id: &str, kind: &str, status: &str, created: &str, updated: &str) -> Value {
        json!({"id": id, "type": kind, "status": status, "createdAt": created, "updatedAt": updated})
    }

    fn table(items: &[Value], cache: &DetailCache) -> ContentTable {
        ContentTable::from_items(items, TableOptions::default(), Some(cache))
    }

    fn entry(updated: &str) -> CacheEntry {
        CacheEntry::from_detail(&json!({"updatedAt": updated, "status": "active"}), now()).unwrap()
    }

    #[test]
    fn an_id_repeated_in_the_file_is_dropped_altogether() {
        let e = |zones: &str| {
            format!(
                r#"{{"updatedAt":"2026-08-01T00:00:00.000Z","fetchedAt":"2026-08-02T00:00:00.000Z","status":"active",
                "expiresAt":null,"replacementContentId":null,"isGlobal":false,"zoneContentIds":[{zones}]}}"#
            )
        };
        let doc = format!(
            r#"{{"version":1,"items":{{"lay":{},"ok":{},"lay":{},"lay":{}}}}}"#,
            e(r#""z1""#),
            e(""),
            e(""),
            e(r#""z2""#)
        );
        let (cache, dropped) = parse_cache(doc.as_bytes()).unwrap();
        assert!(!cache.contains("lay"), "which copy is right is unknown");
        assert!(cache.contains("ok"));
        assert_eq!(dropped, 3, "all three copies count as dropped");
    }

    #[test]
    fn detail_projection_keeps_zones_replacement_and_global_flag() {
        let detail = json!({"id":"c1","updatedAt":"2026-08-01T00:00:00.000Z","status":"active",
            "expiresAt":"2026-09-01T00:00:00.000Z","replacementContentId":"c2","isGlobal":true,
            "metadata":{"zones":[{"contentId":"z1"},{"contentId":null},{"x":1},{"contentId":"z2"}]}});
        let e = CacheEntry::from_detail(&detail, now()).unwrap();
        assert_eq!(e.zone_content_ids, vec!["z1", "z2"]);
        assert_eq!(e.replacement_content_id.as_deref(), Some("c2"));
        assert_eq!(e.is_global, Some(true));
        assert_eq!(e.expires_at.as_deref(), Some("2026-09-01T00:00:00.000Z"));
        assert_eq!(e.fetched_at, "2026-08-26T13:42:17.000Z");
        // The compact store keeps exactly the same.
        let mut c = DetailCache::default();
        c.store_detail("c1", &detail, now()).unwrap();
        assert_eq!(c.get("c1").unwrap(), e);
        // A non-string expiresAt is kept as its JSON text.
        let e = CacheEntry::from_detail(
            &json!({"updatedAt":"x","status":"active","expiresAt": 12}),
            now(),
        )
        .unwrap();
        assert_eq!(e.expires_at.as_deref(), Some("12"));
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
            let mut c = DetailCache::default();
            assert!(c.store_detail("a", &bad, now()).is_err(), "{bad}");
            assert!(c.is_empty());
        }
    }

    #[test]
    fn an_entry_is_fresh_only_for_the_same_updated_at() {
        let mut c = DetailCache::default();
        c.store("a", entry("2026-08-01T00:00:00.000Z"));
        c.store("b", entry("u-b"));
        let t = table(
            &[
                item(
                    "a",
                    "image",
                    "active",
                    "2026-01-01T00:00:00.000Z",
                    "2026-08-01T00:00:00.000Z",
                ),
                item(
                    "a",
                    "image",
                    "active",
                    "2026-01-01T00:00:00.000Z",
                    "2026-08-02T00:00:00.000Z",
                ),
                item("b", "image", "active", "x", "u-b"),
                json!({"id": "b", "type": "image", "status": "active"}),
                item("c", "image", "active", "x", "u-b"),
            ],
            &c,
        );
        let fresh: Vec<bool> = t.rows().map(|r| c.fresh(&t, r).is_some()).collect();
        assert_eq!(fresh, vec![true, false, true, false, false]);
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
            item("bad", "image", "active", "yesterday", "u"),
        ];
        let mut cache = DetailCache::default();
        cache.store("fresh", entry("u"));
        let t = table(&content, &cache);
        let (rows, total) = refresh_plan(&t, &cache, 2);
        let ids: Vec<&str> = rows.iter().map(|r| t.id(*r)).collect();
        assert_eq!(ids, vec!["lay", "old"]);
        assert_eq!(total, 4);
        let (rows, _) = refresh_plan(&t, &cache, 10);
        let ids: Vec<&str> = rows.iter().map(|r| t.id(*r)).collect();
        assert_eq!(ids, vec!["lay", "old", "new", "bad"]);
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
        let t = table(&content, &cache);
        assert_eq!(cache.retain_listed(&t), 2);
        assert_eq!(cache.ids().collect::<Vec<_>>(), vec!["keep"]);
        assert_eq!(cache.len(), 1);
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
        assert_eq!(cache.get("a").unwrap().updated_at, "u2");
        assert!(cache.get("a").unwrap().thumbnail.unwrap().ok);
        cache
            .store_detail("a", &json!({"updatedAt": "u3", "status": "active"}), now())
            .unwrap();
        assert!(cache.get("a").unwrap().thumbnail.unwrap().ok);
        // A removed entry does not hand its probe to a later one.
        assert!(cache.remove("a"));
        cache.store("a", entry("u4"));
        assert!(cache.get("a").unwrap().thumbnail.is_none());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn save_then_load_round_trips_and_corrupt_file_is_quarantined_untouched() {
        let d = tempfile::tempdir().unwrap();
        let f = CacheFile::new(d.path().join(CACHE_FILE_NAME), Duration::from_millis(500));
        let mut cache = DetailCache::default();
        cache.store("a", entry("u"));
        let mut b = entry("2026-08-01T00:00:00.000Z");
        b.expires_at = Some("2026-09-01T00:00:00+02:00".into());
        b.replacement_content_id = Some("r \"quoted\"".into());
        b.is_global = Some(false);
        b.zone_content_ids = vec!["z1".into(), "z2".into()];
        b.thumbnail = Some(ThumbnailCheck {
            url: "https://x.test/t.jpg".into(),
            ok: false,
            checked_at: "2026-08-26T00:00:00.000Z".into(),
            detail: Some("HEAD answered 404".into()),
        });
        cache.store("b\u{e9}", b);
        f.save(&cache).unwrap();
        let loaded = f.load(false);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        assert_eq!(loaded.cache, cache);
        assert!(!lock_path_for(f.path()).exists(), "lock released");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(f.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        // The file is the documented format.
        let v: Value = serde_json::from_slice(&std::fs::read(f.path()).unwrap()).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["items"]["b\u{e9}"]["zoneContentIds"], json!(["z1", "z2"]));
        assert_eq!(v["items"]["b\u{e9}"]["thumbnail"]["ok"], false);
        assert_eq!(v["items"]["a"]["expiresAt"], Value::Null);

        std::fs::write(f.path(), b"{not json").unwrap();
        // Dry run: reported, nothing moved.
        let dry = f.load(true);
        assert!(dry.cache.is_empty());
        assert!(f.path().exists());
        let loaded = f.load(false);
        assert!(loaded.cache.is_empty());
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
    fn a_file_in_the_old_pretty_form_loads() {
        let old = serde_json::to_vec_pretty(&json!({"version": 1, "items": {
            "a": {"updatedAt": "u", "fetchedAt": "2026-08-26T13:42:17.000Z", "status": "active",
                  "expiresAt": null, "replacementContentId": null, "isGlobal": null, "zoneContentIds": []},
            "b": {"updatedAt": "2026-08-01T00:00:00.000Z", "fetchedAt": "f", "status": "archived",
                  "expiresAt": "2026-08-02T00:00:00.000Z", "replacementContentId": "r", "isGlobal": true,
                  "zoneContentIds": ["z"], "thumbnail": {"url": "minio://k", "ok": true,
                  "checkedAt": "2026-08-26T13:42:17.000Z"}, "future": {"x": 1}}
        }}))
        .unwrap();
        let (c, dropped) = parse_cache(&old).unwrap();
        assert_eq!(dropped, 0);
        let b = c.get("b").unwrap();
        assert_eq!(b.status, "archived");
        assert_eq!(b.expires_at.as_deref(), Some("2026-08-02T00:00:00.000Z"));
        assert_eq!(b.zone_content_ids, vec!["z"]);
        assert_eq!(b.thumbnail.unwrap().url, "minio://k");
        assert_eq!(c.get("a").unwrap().fetched_at, "2026-08-26T13:42:17.000Z");
        // Written again and re-read: the same entries.
        let (again, _) = parse_cache(&c.to_bytes()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn wrong_version_is_corrupt_and_bad_entries_are_dropped() {
        assert!(parse_cache(br#"{"version":2,"items":{}}"#).is_err());
        assert!(parse_cache(br#"{"items":{}}"#).is_err());
        assert!(parse_cache(br#"{"version":1}"#).is_err());
        assert!(parse_cache(br#"{"version":1,"items":[]}"#).is_err());
        assert!(parse_cache(br#"{"version":1,"items":{}} x"#).is_err());
        assert_eq!(
            parse_cache(br#"[1]"#).unwrap_err(),
            "top level is not an object"
        );
        let (c, dropped) = parse_cache(
            br#"{"items":{"a":{"updatedAt":"u","fetchedAt":"f","status":"active","expiresAt":null,
            "replacementContentId":null,"isGlobal":null,"zoneContentIds":[]},"b":{"status":3},
            "c":[1,{"x":2}],"d":{"updatedAt":"u","fetchedAt":"f","status":"s","zoneContentIds":null},
            "e":{"updatedAt":"u","fetchedAt":"f","status":"s","isGlobal":"no"},
            "f":{"updatedAt":"u","fetchedAt":"f","status":"s","thumbnail":{"url":"x"}},
            "g":{"updatedAt":"u","updatedAt":"v","fetchedAt":"f","status":"s"},
            "h":{"updatedAt":"u","fetchedAt":"f","status":"s"}},"version":1}"#,
        )
        .unwrap();
        assert_eq!(dropped, 6);
        assert!(c.contains("a"));
        assert!(c.contains("h"), "optional fields may be missing");
        assert_eq!(c.len(), 2);
    }
}
