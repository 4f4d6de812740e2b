//! Playlist projections and their items.

use super::*;
use crate::sandbox::model::{Playlist, PlaylistItem};
use crate::sandbox::store::Store;
use crate::sandbox::time::Ts;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

pub(crate) struct PlaylistItemsOf<'a> {
    pub(crate) r: R<'a>,
    pub(crate) ci: usize,
}

impl Serialize for PlaylistItemsOf<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let st = self.r.s;
        let cid = &st.content[self.ci].id;
        let mut pls: Vec<u32> = st
            .content_refs
            .get(&(self.ci as u32))
            .cloned()
            .unwrap_or_default();
        pls.sort_unstable();
        pls.dedup();
        let mut q = s.serialize_seq(None)?;
        for pi in pls {
            let p = &st.playlists[pi as usize];
            for it in p.items.iter().filter(|it| it.content_id == *cid) {
                q.serialize_element(&ItemWithPlaylist { p, it })?;
            }
        }
        q.end()
    }
}

pub(crate) struct ItemWithPlaylist<'a> {
    pub(crate) p: &'a Playlist,
    pub(crate) it: &'a PlaylistItem,
}

impl Serialize for ItemWithPlaylist<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(6))?;
        m.serialize_entry("id", &*self.it.id)?;
        m.serialize_entry("playlistId", &*self.p.id)?;
        m.serialize_entry("contentId", &*self.it.content_id)?;
        m.serialize_entry("order", &self.it.order)?;
        m.serialize_entry("duration", &self.it.duration)?;
        m.serialize_entry(
            "playlist",
            &PlaylistView {
                r: None,
                p: self.p,
                pi: 0,
                mode: PlaylistMode::Scalars,
            },
        )?;
        m.end()
    }
}

/// Which playlist projection to write.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlaylistMode {
    /// Scalars only.
    Scalars,
    /// Scalars plus `_count: {items}` (the schedule relation).
    WithItemCount,
    /// The list/detail projection: items with content, `_count.schedules`, `itemCount`, `totalDuration`, `totalSize`.
    Full,
}

/// A playlist in one of the [`PlaylistMode`] projections (`r` is needed for `Full`).
pub(crate) struct PlaylistView<'a> {
    pub r: Option<R<'a>>,
    pub p: &'a Playlist,
    pub pi: usize,
    pub mode: PlaylistMode,
}

impl Serialize for PlaylistView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let p = self.p;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &*p.id)?;
        m.serialize_entry("name", &p.name)?;
        m.serialize_entry("description", &p.description)?;
        m.serialize_entry("loop", &p.loop_.unwrap_or(true))?;
        m.serialize_entry("isDefault", &p.is_default)?;
        m.serialize_entry("createdAt", &Ts(p.created_at))?;
        m.serialize_entry("updatedAt", &Ts(p.updated_at))?;
        m.serialize_entry("organizationId", &*p.organization_id)?;
        match (self.mode, self.r) {
            (PlaylistMode::WithItemCount, _) => {
                m.serialize_entry(
                    "_count",
                    &CountItems {
                        items: p.items.len(),
                    },
                )?;
            }
            (PlaylistMode::Full, Some(r)) => {
                let st = r.s;
                let mut items: Vec<&PlaylistItem> = p.items.iter().collect();
                items.sort_by_key(|it| it.order);
                let mut total_duration = 0i64;
                let mut total_size = 0i64;
                for it in &items {
                    let c = st.content_pos(&it.content_id).map(|ci| &st.content[ci]);
                    total_duration += it.duration.or(c.and_then(|c| c.duration)).unwrap_or(10);
                    total_size += c.and_then(|c| c.file_size).unwrap_or(0);
                }
                m.serialize_entry(
                    "items",
                    &ItemsWithContent {
                        st,
                        p,
                        items: &items,
                    },
                )?;
                m.serialize_entry(
                    "_count",
                    &CountSchedules {
                        schedules: st.playlist_sched.get(self.pi).copied().unwrap_or(0),
                    },
                )?;
                m.serialize_entry("itemCount", &items.len())?;
                m.serialize_entry("totalDuration", &total_duration)?;
                m.serialize_entry("totalSize", &total_size)?;
            }
            _ => {}
        }
        m.end()
    }
}

pub(crate) struct ItemsWithContent<'a> {
    pub(crate) st: &'a Store,
    pub(crate) p: &'a Playlist,
    pub(crate) items: &'a [&'a PlaylistItem],
}

impl Serialize for ItemsWithContent<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut q = s.serialize_seq(Some(self.items.len()))?;
        for it in self.items {
            q.serialize_element(&ItemWithContent {
                st: self.st,
                p: self.p,
                it,
            })?;
        }
        q.end()
    }
}

pub(crate) struct ItemWithContent<'a> {
    pub(crate) st: &'a Store,
    pub(crate) p: &'a Playlist,
    pub(crate) it: &'a PlaylistItem,
}

impl Serialize for ItemWithContent<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(6))?;
        m.serialize_entry("id", &*self.it.id)?;
        m.serialize_entry("playlistId", &*self.p.id)?;
        m.serialize_entry("contentId", &*self.it.content_id)?;
        m.serialize_entry("order", &self.it.order)?;
        m.serialize_entry("duration", &self.it.duration)?;
        let c = self
            .st
            .content_pos(&self.it.content_id)
            .map(|ci| ContentSummary(&self.st.content[ci]));
        m.serialize_entry("content", &c)?;
        m.end()
    }
}
