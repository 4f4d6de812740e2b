//! content-lifecycle's compact, typed view of the walked content list (agents.md 6.2, 6.2.1; design/README.md §7).
//!
//! Each item of `GET /api/v1/content` becomes a [`ContentRow`] the moment its page arrives (`ContentSink`, an
//! `ItemSink` of the page walk): no `serde_json::Value` is kept. Only items that need a detail entry are kept as rows
//! — listed `active` items and layouts that are not `archived`/`expired` (6.2.1); every other item matters only for
//! the sweep of prior incidents and for the organization-id fallback, and both are settled while it streams past.
//! Playlists become a set of 64-bit hashes of their `items[].contentId` (`PlaylistSink`); no playlist is kept.
//!
//! Storage: every string of a row lives in one arena `String` addressed by [`Span`]s (`u32` offset and length);
//! `updatedAt`/`createdAt` are [`Stamp`]s (the canonical form `YYYY-MM-DDTHH:MM:SS.mmmZ` packed as milliseconds,
//! anything else kept as text, so string equality stays exact); `type` values are interned. A row is 64 bytes plus
//! its id and label text.
//!
//! Distinctions the rules need are explicit: a missing or non-string `updatedAt` never makes an entry fresh; a
//! `fileSize` that is null/missing, a byte count, or something else ([`SizeState`]); a `thumbnail` that is missing,
//! blank, not a string, or a URL ([`ThumbState`]); an item without a string `id` is not kept but counted (it makes
//! the reference harvest incomplete, 6.2.4).
//!
//! Hashes: ids are hashed with one per-process [`RandomState`](std::collections::hash_map::RandomState) ([`id_hash`](super::compact::id_hash)). Every use of a hash fails safe on a
//! collision: a colliding reference makes content look referenced (never archived), a colliding cache id leaves an
//! item without a fresh entry (not examined).

use super::compact::{Interner, NONE, Span, Stamp};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// What the table reads of the detail cache (content_cache's `DetailCache` implements it): a trait here so that the
/// table does not import the cache, which builds on the table's types (one direction, design/README.md §3).
pub trait DetailSlots: Sync {
    /// The slot of `id`'s live cache entry, if any.
    fn slot_of(&self, id: &str) -> Option<u32>;
    /// Whether the entry in `slot` holds a thumbnail probe result.
    fn has_thumbnail(&self, slot: u32) -> bool;
}

/// The listed `fileSize` (agents.md 6.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeState {
    /// Missing or null (no file).
    Null,
    /// A non-negative integer, bytes.
    Bytes(u64),
    /// Present but not a non-negative integer.
    Unparseable,
}

/// The listed `thumbnail` of an active image or video (agents.md 6.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThumbState {
    /// Not an active image/video (no thumbnail check).
    NoCheck,
    /// Missing, null or blank.
    Missing,
    /// Present but not a string.
    NotString,
    /// The trimmed URL, kept in the arena.
    Url(Span),
    /// A `minio://` URL not kept: S3 is not configured and the cache held no probe result for the item.
    MinioNotKept,
    /// A URL of another form, not kept (no probe result cached for the item).
    OtherNotKept,
}

const F_ACTIVE: u8 = 1;
const F_GONE: u8 = 2;
const F_ARCHIVED: u8 = 4;

/// One kept content item (64 bytes; its strings live in the table's arena).
#[derive(Debug, Clone, Copy)]
pub struct ContentRow {
    id: Span,
    label: Span,
    updated: Stamp,
    created: Stamp,
    file_size: u64,
    thumb: Span,
    kind: u32,
    entry: u32,
    flags: u8,
    size_state: u8,
    thumb_state: u8,
}

/// What the walk saw of the target of a prior per-content incident (for the sweep suffix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriorSeen {
    /// Listed and `active`.
    Active,
    /// Listed, not active: its `status` (`?` when not a string).
    Inactive(String),
}

/// Whether `url` starts with `http://` or `https://` (ASCII case-insensitive).
pub fn is_http_url(url: &str) -> bool {
    let b = url.as_bytes();
    b.get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"http://"))
        || b.get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"https://"))
}

/// Options of the content walk.
#[derive(Debug, Clone, Default)]
pub struct TableOptions {
    /// S3 is configured (`minio://` thumbnails can be probed, so their keys are kept).
    pub s3_configured: bool,
    /// Target ids of prior incidents whose listing status the sweep needs (agents.md 2.5).
    pub prior_targets: HashSet<String>,
}

/// The compact content list (see the module docs). Row indexes (`u32`) are stable for the run.
#[derive(Debug, Clone)]
pub struct ContentTable {
    arena: String,
    rows: Vec<ContentRow>,
    kinds: Interner,
    layout: u32,
    image: u32,
    video: u32,
    opts: TableOptions,
    /// Items seen (kept or not).
    listed: usize,
    idless_layouts: usize,
    idless_active: usize,
    organization_id: Option<String>,
    prior_seen: HashMap<String, PriorSeen>,
}

impl Default for ContentTable {
    fn default() -> Self {
        ContentTable::new(TableOptions::default())
    }
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

impl ContentTable {
    /// An empty table.
    pub fn new(opts: TableOptions) -> ContentTable {
        let mut kinds = Interner::default();
        let (layout, image, video) = (
            kinds.intern("layout"),
            kinds.intern("image"),
            kinds.intern("video"),
        );
        ContentTable {
            arena: String::new(),
            rows: Vec::new(),
            kinds,
            layout,
            image,
            video,
            opts,
            listed: 0,
            idless_layouts: 0,
            idless_active: 0,
            organization_id: None,
            prior_seen: HashMap::new(),
        }
    }

    /// A table of `items` (tests and tools; the agent streams through [`ContentSink`](super::ContentSink)), linked to `cache`.
    pub fn from_items(
        items: &[Value],
        opts: TableOptions,
        cache: Option<&dyn DetailSlots>,
    ) -> ContentTable {
        let mut t = ContentTable::new(opts);
        for it in items {
            t.push(it, cache);
        }
        t
    }

    /// Forgets every item (the walk starts over).
    pub fn clear(&mut self) {
        let opts = std::mem::take(&mut self.opts);
        *self = ContentTable::new(opts);
    }

    /// Takes one listed item: settles the sweep observation and the organization fallback, keeps a row when the
    /// item needs a detail entry (agents.md 6.2.1) and links it to its `cache` entry by id.
    pub fn push(&mut self, item: &Value, cache: Option<&dyn DetailSlots>) {
        self.listed += 1;
        if self.organization_id.is_none()
            && let Some(o) = s(item, "organizationId")
        {
            self.organization_id = Some(o.to_string());
        }
        let status = s(item, "status");
        let kind = s(item, "type");
        let active = status == Some("active");
        let id = s(item, "id");
        if let Some(id) = id
            && self.opts.prior_targets.contains(id)
        {
            let seen = if active {
                PriorSeen::Active
            } else {
                PriorSeen::Inactive(status.unwrap_or("?").to_string())
            };
            self.prior_seen.insert(id.to_string(), seen);
        }
        let st = status.unwrap_or("");
        let live_layout = kind == Some("layout") && st != "archived" && st != "expired";
        if !active && !live_layout {
            return;
        }
        let Some(id) = id else {
            if live_layout {
                self.idless_layouts += 1;
            } else {
                self.idless_active += 1;
            }
            return;
        };
        let entry = cache.and_then(|c| c.slot_of(id));
        let id_span = Span::push(&mut self.arena, id);
        let label = s(item, "name")
            .or_else(|| s(item, "title"))
            .filter(|n| !n.trim().is_empty());
        let label = match label {
            // Capped as read (agents.md 2.2): the label enters incidents, actions, the audit and summaries.
            Some(l) => Span::push(&mut self.arena, &crate::model::label(l)),
            None => id_span,
        };
        let updated = Stamp::of_field(item.get("updatedAt"), &mut self.arena);
        let created = Stamp::of_field(item.get("createdAt"), &mut self.arena);
        let (size_state, file_size) = match item.get("fileSize") {
            None | Some(Value::Null) => (0u8, 0u64),
            Some(v) => match v.as_u64() {
                Some(b) => (1, b),
                None => (2, 0),
            },
        };
        let kind_ix = kind.map(|k| self.kinds.intern(k)).unwrap_or(NONE);
        let (thumb_state, thumb) = if active && (kind_ix == self.image || kind_ix == self.video) {
            self.thumb_of(
                item,
                entry.is_some_and(|e| cache.is_some_and(|c| c.has_thumbnail(e))),
            )
        } else {
            (0, Span::NONE)
        };
        self.rows.push(ContentRow {
            id: id_span,
            label,
            updated,
            created,
            file_size,
            thumb,
            kind: kind_ix,
            entry: entry.unwrap_or(NONE),
            flags: if active { F_ACTIVE } else { 0 },
            size_state,
            thumb_state,
        });
    }

    fn thumb_of(&mut self, item: &Value, cached_probe: bool) -> (u8, Span) {
        match item.get("thumbnail") {
            None | Some(Value::Null) => (1, Span::NONE),
            Some(Value::String(u)) if u.trim().is_empty() => (1, Span::NONE),
            Some(Value::String(u)) => {
                let url = u.trim();
                let lower_http = is_http_url(url);
                let minio = url.starts_with("minio://");
                if lower_http || cached_probe || (minio && self.opts.s3_configured) {
                    (3, Span::push(&mut self.arena, url))
                } else if minio {
                    (4, Span::NONE)
                } else {
                    (5, Span::NONE)
                }
            }
            Some(_) => (2, Span::NONE),
        }
    }

    /// Number of kept rows (including rows marked gone or archived).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row is kept.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Items the walk handed over (kept or not).
    pub fn listed(&self) -> usize {
        self.listed
    }

    /// Items without a string id that would need a detail: (live layouts, other active items).
    pub fn idless(&self) -> (usize, usize) {
        (self.idless_layouts, self.idless_active)
    }

    /// The first listed `organizationId` (fallback of the storage incident's target).
    pub fn organization_id(&self) -> Option<&str> {
        self.organization_id.as_deref()
    }

    /// What the walk saw of a prior incident's target (`None` = not listed).
    pub fn prior_seen(&self, id: &str) -> Option<&PriorSeen> {
        self.prior_seen.get(id)
    }

    /// Row indexes of rows still to judge (not gone), in list order.
    pub fn rows(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.rows.len() as u32).filter(|r| self.rows[*r as usize].flags & F_GONE == 0)
    }

    fn row(&self, r: u32) -> &ContentRow {
        &self.rows[r as usize]
    }

    /// The id of row `r`.
    pub fn id(&self, r: u32) -> &str {
        self.row(r).id.get(&self.arena)
    }

    /// The label (`name`, else `title`, else the id) of row `r`.
    pub fn label(&self, r: u32) -> &str {
        self.row(r).label.get(&self.arena)
    }

    /// The `type` of row `r` (`None` when missing or not a string).
    pub fn kind(&self, r: u32) -> Option<&str> {
        self.kinds.get(self.row(r).kind)
    }

    /// Row `r` is a layout.
    pub fn is_layout(&self, r: u32) -> bool {
        self.row(r).kind == self.layout
    }

    /// Row `r` is listed `active` (else it is a live layout).
    pub fn is_active(&self, r: u32) -> bool {
        self.row(r).flags & F_ACTIVE != 0
    }

    /// Row `r` is gone (its detail answered 404 this run).
    pub fn is_gone(&self, r: u32) -> bool {
        self.row(r).flags & F_GONE != 0
    }

    /// Row `r` was archived this run (skipped by the thumbnail and size checks).
    pub fn is_archived(&self, r: u32) -> bool {
        self.row(r).flags & F_ARCHIVED != 0
    }

    /// Marks row `r` archived this run.
    pub fn mark_archived(&mut self, r: u32) {
        self.rows[r as usize].flags |= F_ARCHIVED;
    }

    /// Marks row `r` gone (its detail answered 404): no longer judged, and not listed for the sweep.
    pub fn mark_gone(&mut self, r: u32) {
        self.rows[r as usize].flags |= F_GONE;
        self.rows[r as usize].entry = NONE;
        let id = self.id(r).to_string();
        self.prior_seen.remove(&id);
    }

    /// The listed `updatedAt` stamp of row `r`.
    pub fn updated(&self, r: u32) -> Stamp {
        self.row(r).updated
    }

    /// The listed `updatedAt` text of row `r` (`""` when missing or not a string).
    pub fn updated_text(&self, r: u32) -> Cow<'_, str> {
        self.row(r)
            .updated
            .text(&self.arena)
            .unwrap_or(Cow::Borrowed(""))
    }

    /// The listed `createdAt` of row `r` (`None` when missing or unparseable).
    pub fn created(&self, r: u32) -> Option<DateTime<Utc>> {
        self.row(r).created.time(&self.arena)
    }

    /// The listed `fileSize` of row `r`.
    pub fn size(&self, r: u32) -> SizeState {
        let row = self.row(r);
        match row.size_state {
            0 => SizeState::Null,
            1 => SizeState::Bytes(row.file_size),
            _ => SizeState::Unparseable,
        }
    }

    /// `fileSize` in bytes, 0 when null or unparseable.
    pub fn file_size(&self, r: u32) -> u64 {
        match self.size(r) {
            SizeState::Bytes(b) => b,
            _ => 0,
        }
    }

    /// The listed thumbnail of row `r`.
    pub fn thumb(&self, r: u32) -> ThumbState {
        let row = self.row(r);
        match row.thumb_state {
            0 => ThumbState::NoCheck,
            1 => ThumbState::Missing,
            2 => ThumbState::NotString,
            3 => ThumbState::Url(row.thumb),
            4 => ThumbState::MinioNotKept,
            _ => ThumbState::OtherNotKept,
        }
    }

    /// The text of a span of this table.
    pub fn text(&self, s: Span) -> &str {
        s.get(&self.arena)
    }

    /// The arena (for [`Stamp`] comparisons).
    pub fn arena(&self) -> &str {
        &self.arena
    }

    /// The cache slot linked to row `r` ([`NONE`] when none).
    pub fn entry(&self, r: u32) -> u32 {
        self.row(r).entry
    }

    /// Links row `r` to cache slot `slot` (after a detail read).
    pub fn set_entry(&mut self, r: u32, slot: u32) {
        self.rows[r as usize].entry = slot;
    }

    /// Bytes reserved by the rows and the arena (capacity, not length).
    pub fn heap_bytes(&self) -> usize {
        self.rows.capacity() * std::mem::size_of::<ContentRow>() + self.arena.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_keep_active_items_and_live_layouts_with_explicit_field_states() {
        let items = vec![
            json!({"id": "a", "name": "  ", "title": "T", "type": "image", "status": "active",
                "fileSize": null, "thumbnail": " https://x.test/t.jpg ", "updatedAt": "u1", "organizationId": "org"}),
            json!({"id": "b", "title": "Bee", "type": "video", "status": "active", "fileSize": "big",
                "thumbnail": 5}),
            json!({"id": "c", "type": "layout", "status": "draft", "fileSize": 7}),
            json!({"id": "d", "type": "layout", "status": "archived"}),
            json!({"id": "e", "type": "image", "status": "archived"}),
            json!({"id": 5, "type": "image", "status": "active"}),
            json!({"type": "layout"}),
            json!({"id": "f", "type": "image", "status": "active", "thumbnail": "minio://k"}),
        ];
        let t = ContentTable::from_items(&items, TableOptions::default(), None);
        let ids: Vec<&str> = t.rows().map(|r| t.id(r)).collect();
        assert_eq!(ids, vec!["a", "b", "c", "f"]);
        assert_eq!(t.listed(), 8);
        assert_eq!(t.idless(), (1, 1));
        assert_eq!(t.organization_id(), Some("org"));
        // A blank name is not replaced by the title (the rule of `label`): the id is the label.
        assert_eq!(t.label(0), "a");
        assert_eq!(t.label(1), "Bee");
        assert_eq!(t.size(0), SizeState::Null);
        assert_eq!(t.size(1), SizeState::Unparseable);
        assert_eq!(t.size(2), SizeState::Bytes(7));
        assert!(matches!(t.thumb(0), ThumbState::Url(s) if t.text(s) == "https://x.test/t.jpg"));
        assert_eq!(t.thumb(1), ThumbState::NotString);
        assert_eq!(t.thumb(2), ThumbState::NoCheck);
        assert_eq!(t.thumb(3), ThumbState::MinioNotKept);
        assert!(t.updated(1).is_absent());
        assert!(t.is_layout(2) && !t.is_active(2));
    }

    #[test]
    fn prior_targets_record_what_the_walk_saw() {
        let opts = TableOptions {
            s3_configured: false,
            prior_targets: ["a", "b", "z"].iter().map(|s| s.to_string()).collect(),
        };
        let items = vec![
            json!({"id": "a", "status": "active"}),
            json!({"id": "b", "status": "archived"}),
        ];
        let t = ContentTable::from_items(&items, opts, None);
        assert_eq!(t.prior_seen("a"), Some(&PriorSeen::Active));
        assert_eq!(
            t.prior_seen("b"),
            Some(&PriorSeen::Inactive("archived".into()))
        );
        assert_eq!(t.prior_seen("z"), None);
    }

    #[test]
    fn a_gone_row_is_no_longer_judged_nor_listed_for_the_sweep() {
        let opts = TableOptions {
            s3_configured: false,
            prior_targets: ["a".to_string()].into(),
        };
        let items = vec![
            json!({"id": "a", "status": "active", "type": "image"}),
            json!({"id": "b", "status": "active", "type": "image"}),
        ];
        let mut t = ContentTable::from_items(&items, opts, None);
        t.mark_gone(0);
        assert!(t.is_gone(0));
        assert_eq!(t.rows().collect::<Vec<_>>(), vec![1]);
        assert_eq!(t.prior_seen("a"), None);
    }
}
