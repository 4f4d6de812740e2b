//! The in-memory detail cache ([`DetailCache`]): compact slots, the id index, fresh lookups for table rows, storing
//! details and thumbnail probes as they arrive, and dropping entries no longer needed (agents.md 6.2.1).

use super::{CacheEntry, DetailFields, ThumbnailCheck};
use crate::agents::content_lifecycle::compact::{HashMap64, Interner, NONE, Span, Stamp, id_hash};
use crate::agents::content_lifecycle::table::{ContentTable, DetailSlots};
use crate::model::ts;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::borrow::Cow;

/// One compact entry (see the module docs).
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub(super) id: Span,
    pub(super) updated: Stamp,
    pub(super) fetched: Stamp,
    /// [`Stamp::ABSENT`] = null.
    pub(super) expires: Stamp,
    pub(super) replacement: Span,
    pub(super) zones_start: u32,
    pub(super) zones_len: u32,
    pub(super) thumb: u32,
    pub(super) status: u32,
    /// 0 = null, 1 = false, 2 = true.
    pub(super) is_global: u8,
    pub(super) alive: bool,
}

/// The cache document, compact (see the module docs). Slot numbers (`u32`) stay valid for the run; a removed entry
/// leaves a dead slot.
#[derive(Debug, Clone, Default)]
pub struct DetailCache {
    pub(super) arena: String,
    pub(super) slots: Vec<Slot>,
    pub(super) zones: Vec<Span>,
    pub(super) thumbs: Vec<ThumbnailCheck>,
    pub(super) statuses: Interner,
    pub(super) index: HashMap64<u32>,
    pub(super) live: usize,
}

/// A borrowed view of one live entry.
#[derive(Debug, Clone, Copy)]
pub struct EntryRef<'a> {
    pub(super) cache: &'a DetailCache,
    pub(super) slot: &'a Slot,
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

/// The fields of one entry before they become a slot.
pub(super) struct Parts<'a> {
    pub(super) updated_at: &'a str,
    pub(super) fetched_at: &'a str,
    pub(super) status: &'a str,
    pub(super) expires_at: Option<&'a str>,
    pub(super) replacement: Option<&'a str>,
    pub(super) is_global: Option<bool>,
    pub(super) zones: Vec<&'a str>,
    pub(super) thumbnail: Option<ThumbnailCheck>,
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

    pub(super) fn put(&mut self, id: &str, p: Parts<'_>, keep_thumbnail: bool) -> u32 {
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
