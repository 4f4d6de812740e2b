//! The content references of agents.md 6.2.4 and whether they are all known: playlist `items[].contentId` (hashed
//! as the playlist walk streams, [`PlaylistRefs`]), layout zones and replacement pointers from fresh detail entries
//! ([`harvest_references`]). Orphan and storage archiving need a complete [`Harvest`].

use super::compact::{HashSet64, id_hash};
use super::detail_cache::DetailCache;
use super::fields::s;
use super::table::ContentTable;
use crate::vizora::ItemSink;
use serde_json::Value;

/// What the playlist walk leaves (agents.md 6.2.4): the hashed `items[].contentId` references and how many playlists
/// were listed without an `items` array.
#[derive(Debug, Clone, Default)]
pub struct PlaylistRefs {
    /// [`id_hash`] of every string `items[].contentId`.
    pub refs: HashSet64,
    /// Playlists listed without an `items` array (the harvest is then incomplete).
    pub without_items: usize,
    /// Playlists seen.
    pub listed: usize,
}

impl PlaylistRefs {
    /// Takes one listed playlist.
    pub fn push(&mut self, p: &Value) {
        self.listed += 1;
        match p.get("items").and_then(Value::as_array) {
            Some(items) => self
                .refs
                .extend(items.iter().filter_map(|i| s(i, "contentId")).map(id_hash)),
            None => self.without_items += 1,
        }
    }

    /// The references of `playlists` (tests and tools).
    pub fn from_items(playlists: &[Value]) -> PlaylistRefs {
        let mut r = PlaylistRefs::default();
        for p in playlists {
            r.push(p);
        }
        r
    }
}

/// The [`ItemSink`] of the playlist walk (no playlist is kept).
pub struct PlaylistSink<'a>(pub &'a mut PlaylistRefs);

impl ItemSink for PlaylistSink<'_> {
    fn item(&mut self, item: Value) {
        self.0.push(&item);
    }
    fn restart(&mut self) {
        *self.0 = PlaylistRefs::default();
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn playlist_refs_hash_content_ids_and_count_missing_item_arrays() {
        let r = PlaylistRefs::from_items(&[
            json!({"items": [{"contentId": "a"}, {"contentId": null}, {"x": 1}]}),
            json!({"itemCount": 2}),
        ]);
        assert!(r.refs.contains(&id_hash("a")));
        assert_eq!(r.refs.len(), 1);
        assert_eq!((r.without_items, r.listed), (1, 2));
    }
}
