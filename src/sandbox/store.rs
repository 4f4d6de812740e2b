//! The sandbox's data: the fixture's entities with id indexes, list orders and reverse relations, the projections
//! the API serves (written straight to JSON through `Serialize` wrappers, no intermediate values) and the server-side
//! jobs (content expiry, marking displays offline).

use super::index::IdIndex;
use super::model::{
    Content, Display, Fixture, Group, Playlist, PlaylistItem, Schedule, Sym, Tag, TagLink,
};
use super::time::{OTs, Ts};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Display online threshold used by fleet commands (heartbeat younger than this), ms.
pub(crate) const ONLINE_WINDOW_MS: i64 = 120_000;

/// All entities of the served organization.
pub(crate) struct Store {
    pub captured_at: i64,
    pub shift_ms: i64,
    pub org: Map<String, Value>,
    pub org_id: String,
    pub storage: Map<String, Value>,
    pub users: Vec<Map<String, Value>>,
    pub tags: Vec<Tag>,
    pub content: Vec<Content>,
    pub displays: Vec<Display>,
    pub playlists: Vec<Playlist>,
    pub schedules: Vec<Schedule>,
    pub groups: Vec<Group>,
    pub services_initial: Map<String, Value>,
    content_ix: IdIndex,
    display_ix: IdIndex,
    playlist_ix: IdIndex,
    schedule_ix: IdIndex,
    group_ix: IdIndex,
    pub content_order: Vec<u32>,
    pub display_order: Vec<u32>,
    pub playlist_order: Vec<u32>,
    pub schedule_order: Vec<u32>,
    pub group_order: Vec<u32>,
    /// content position → playlist positions (one entry per playlist item).
    content_refs: HashMap<u32, Vec<u32>>,
    /// playlist position → number of schedules naming it.
    playlist_sched: Vec<u32>,
    /// display position → group positions.
    display_groups: HashMap<u32, Vec<u32>>,
    /// display position → schedule positions with that `displayId`.
    display_scheds: HashMap<u32, Vec<u32>>,
    tag_ix: HashMap<Box<str>, u32>,
}

fn sort_created_desc<T>(order: &mut [u32], v: &[T], key: impl Fn(&T) -> i64) {
    order.sort_by(|&a, &b| key(&v[b as usize]).cmp(&key(&v[a as usize])));
}

impl Store {
    /// Builds the store (indexes, orders, relations) from a loaded fixture.
    pub(crate) fn new(fx: Fixture) -> Store {
        let org_id = fx
            .organization
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let content_ix = IdIndex::build(fx.content.iter().map(|c| &*c.id), |i| {
            &fx.content[i as usize].id
        });
        let display_ix = IdIndex::build(fx.displays.iter().map(|c| &*c.id), |i| {
            &fx.displays[i as usize].id
        });
        let playlist_ix = IdIndex::build(fx.playlists.iter().map(|c| &*c.id), |i| {
            &fx.playlists[i as usize].id
        });
        let schedule_ix = IdIndex::build(fx.schedules.iter().map(|c| &*c.id), |i| {
            &fx.schedules[i as usize].id
        });
        let group_ix = IdIndex::build(fx.groups.iter().map(|c| &*c.id), |i| {
            &fx.groups[i as usize].id
        });
        let tag_ix = fx
            .tags
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i as u32))
            .collect();
        let mut s = Store {
            captured_at: fx.captured_at,
            shift_ms: fx.shift_ms,
            org: fx.organization,
            org_id,
            storage: fx.storage,
            users: fx.users,
            tags: fx.tags,
            content: fx.content,
            displays: fx.displays,
            playlists: fx.playlists,
            schedules: fx.schedules,
            groups: fx.groups,
            services_initial: fx.services,
            content_ix,
            display_ix,
            playlist_ix,
            schedule_ix,
            group_ix,
            content_order: Vec::new(),
            display_order: Vec::new(),
            playlist_order: Vec::new(),
            schedule_order: Vec::new(),
            group_order: Vec::new(),
            content_refs: HashMap::new(),
            playlist_sched: Vec::new(),
            display_groups: HashMap::new(),
            display_scheds: HashMap::new(),
            tag_ix,
        };
        s.build_orders();
        s.build_relations();
        s
    }

    fn mine(&self, org: &str) -> bool {
        org == self.org_id
    }

    fn build_orders(&mut self) {
        let org = self.org_id.clone();
        let own = |o: &Sym| **o == *org;
        self.content_order = (0..self.content.len() as u32)
            .filter(|&i| own(&self.content[i as usize].organization_id))
            .collect();
        sort_created_desc(&mut self.content_order, &self.content, |c| c.created_at);
        self.display_order = (0..self.displays.len() as u32)
            .filter(|&i| own(&self.displays[i as usize].organization_id))
            .collect();
        sort_created_desc(&mut self.display_order, &self.displays, |c| c.created_at);
        self.playlist_order = (0..self.playlists.len() as u32)
            .filter(|&i| own(&self.playlists[i as usize].organization_id))
            .collect();
        sort_created_desc(&mut self.playlist_order, &self.playlists, |c| c.created_at);
        self.group_order = (0..self.groups.len() as u32)
            .filter(|&i| own(&self.groups[i as usize].organization_id))
            .collect();
        sort_created_desc(&mut self.group_order, &self.groups, |c| c.created_at);
        self.schedule_order = (0..self.schedules.len() as u32)
            .filter(|&i| own(&self.schedules[i as usize].organization_id))
            .collect();
        self.sort_schedules();
    }

    /// Re-sorts the schedule list order (`priority desc, createdAt desc`).
    pub(crate) fn sort_schedules(&mut self) {
        let v = &self.schedules;
        self.schedule_order.sort_by(|&a, &b| {
            let (a, b) = (&v[a as usize], &v[b as usize]);
            b.priority
                .cmp(&a.priority)
                .then(b.created_at.cmp(&a.created_at))
        });
    }

    fn build_relations(&mut self) {
        let mut refs: HashMap<u32, Vec<u32>> = HashMap::new();
        for (pi, p) in self.playlists.iter().enumerate() {
            for it in &p.items {
                if let Some(ci) = self.content_pos_any(&it.content_id) {
                    refs.entry(ci as u32).or_default().push(pi as u32);
                }
            }
        }
        self.content_refs = refs;
        self.playlist_sched = vec![0; self.playlists.len()];
        let mut ds: HashMap<u32, Vec<u32>> = HashMap::new();
        for (si, x) in self.schedules.iter().enumerate() {
            if let Some(pi) = self.playlist_pos_any(&x.playlist_id) {
                self.playlist_sched[pi] += 1;
            }
            if let Some(d) = &x.display_id
                && let Some(di) = self.display_pos_any(d)
            {
                ds.entry(di as u32).or_default().push(si as u32);
            }
        }
        self.display_scheds = ds;
        let mut dg: HashMap<u32, Vec<u32>> = HashMap::new();
        for (gi, g) in self.groups.iter().enumerate() {
            for d in &g.display_ids {
                if let Some(di) = self.display_pos_any(d) {
                    dg.entry(di as u32).or_default().push(gi as u32);
                }
            }
        }
        self.display_groups = dg;
    }

    fn content_pos_any(&self, id: &str) -> Option<usize> {
        self.content_ix
            .get(id, |i| &self.content[i as usize].id)
            .map(|i| i as usize)
    }
    fn display_pos_any(&self, id: &str) -> Option<usize> {
        self.display_ix
            .get(id, |i| &self.displays[i as usize].id)
            .map(|i| i as usize)
    }
    fn playlist_pos_any(&self, id: &str) -> Option<usize> {
        self.playlist_ix
            .get(id, |i| &self.playlists[i as usize].id)
            .map(|i| i as usize)
    }

    /// Position of an own-organization content item.
    pub(crate) fn content_pos(&self, id: &str) -> Option<usize> {
        self.content_pos_any(id)
            .filter(|&i| self.mine(&self.content[i].organization_id))
    }
    /// Position of an own-organization display.
    pub(crate) fn display_pos(&self, id: &str) -> Option<usize> {
        self.display_pos_any(id)
            .filter(|&i| self.mine(&self.displays[i].organization_id))
    }
    /// Position of an own-organization playlist.
    pub(crate) fn playlist_pos(&self, id: &str) -> Option<usize> {
        self.playlist_pos_any(id)
            .filter(|&i| self.mine(&self.playlists[i].organization_id))
    }
    /// Position of an own-organization schedule.
    pub(crate) fn schedule_pos(&self, id: &str) -> Option<usize> {
        self.schedule_ix
            .get(id, |i| &self.schedules[i as usize].id)
            .map(|i| i as usize)
            .filter(|&i| self.mine(&self.schedules[i].organization_id))
    }
    /// Position of an own-organization display group.
    pub(crate) fn group_pos(&self, id: &str) -> Option<usize> {
        self.group_ix
            .get(id, |i| &self.groups[i as usize].id)
            .map(|i| i as usize)
            .filter(|&i| self.mine(&self.groups[i].organization_id))
    }
    /// Position of a tag of the organization.
    pub(crate) fn tag_pos(&self, id: &str) -> Option<usize> {
        self.tag_ix
            .get(id)
            .map(|&i| i as usize)
            .filter(|&i| self.mine(&self.tags[i].organization_id))
    }

    /// The heartbeat as the API shows it: live screens are "now" unless told to stay offline.
    pub(crate) fn heartbeat(d: &Display, now: i64) -> Option<i64> {
        if d.live && !d.stay_offline {
            Some(now.max(d.last_heartbeat.unwrap_or(i64::MIN)))
        } else {
            d.last_heartbeat
        }
    }

    /// Whether a display has a live socket (heartbeat younger than two minutes).
    pub(crate) fn is_online(d: &Display, now: i64) -> bool {
        Self::heartbeat(d, now).is_some_and(|hb| now - hb < ONLINE_WINDOW_MS)
    }

    /// Freezes the effective heartbeat into the row (before a live flag changes).
    pub(crate) fn materialize_heartbeat(&mut self, di: usize, now: i64) {
        let hb = Self::heartbeat(&self.displays[di], now);
        self.displays[di].last_heartbeat = hb;
    }

    /// Reconnects display `di` at `now`: fresh heartbeat, `online`, live from then on (the control API's reconnect and
    /// a fleet `reload` that reaches a merely disconnected player).
    pub(crate) fn reconnect(&mut self, di: usize, now: i64) {
        let d = &mut self.displays[di];
        d.last_heartbeat = Some(now);
        d.status = Arc::from("online");
        d.live = true;
        d.stay_offline = false;
        d.updated_at = now;
    }

    /// Replaces a playlist's items and keeps the content → playlist relation in step.
    pub(crate) fn set_playlist_items(&mut self, pi: usize, items: Vec<PlaylistItem>) {
        let old = std::mem::take(&mut self.playlists[pi].items);
        for it in &old {
            if let Some(ci) = self.content_pos_any(&it.content_id)
                && let Some(v) = self.content_refs.get_mut(&(ci as u32))
                && let Some(k) = v.iter().position(|&p| p as usize == pi)
            {
                v.swap_remove(k);
            }
        }
        for it in &items {
            if let Some(ci) = self.content_pos_any(&it.content_id) {
                self.content_refs
                    .entry(ci as u32)
                    .or_default()
                    .push(pi as u32);
            }
        }
        self.playlists[pi].items = items;
    }

    /// Applies a schedule change of playlist or display and keeps the relations in step.
    pub(crate) fn relink_schedule(
        &mut self,
        si: usize,
        old_playlist: &str,
        old_display: Option<&str>,
    ) {
        if let Some(pi) = self.playlist_pos_any(old_playlist) {
            self.playlist_sched[pi] = self.playlist_sched[pi].saturating_sub(1);
        }
        let newp = self.schedules[si].playlist_id.clone();
        if let Some(pi) = self.playlist_pos_any(&newp) {
            self.playlist_sched[pi] += 1;
        }
        if let Some(od) = old_display
            && let Some(di) = self.display_pos_any(od)
            && let Some(v) = self.display_scheds.get_mut(&(di as u32))
        {
            v.retain(|&x| x as usize != si);
        }
        if let Some(nd) = self.schedules[si].display_id.clone()
            && let Some(di) = self.display_pos_any(&nd)
        {
            self.display_scheds
                .entry(di as u32)
                .or_default()
                .push(si as u32);
        }
    }

    /// The page `page` (1-based) of `order` with `limit` items, and the total.
    pub(crate) fn page(order: &[u32], page: u64, limit: u64) -> &[u32] {
        let start = (page.saturating_sub(1)).saturating_mul(limit);
        if start >= order.len() as u64 {
            return &[];
        }
        let end = (start + limit).min(order.len() as u64);
        &order[start as usize..end as usize]
    }

    /// Runs Vizora's content-expiry job once: active items past `expiresAt` become `expired`; their playlist items
    /// are repointed to a deliverable same-org replacement, or removed. Returns `(expired, repointed, removed)`.
    pub(crate) fn expire_content(&mut self, now: i64) -> (usize, usize, usize) {
        let due: Vec<usize> = self
            .content_order
            .iter()
            .map(|&i| i as usize)
            .filter(|&i| {
                let c = &self.content[i];
                &*c.status == "active" && c.expires_at.is_some_and(|e| e <= now)
            })
            .collect();
        let (mut repointed, mut removed) = (0, 0);
        let expired: Sym = Arc::from("expired");
        for &ci in &due {
            let repl = self.content[ci]
                .replacement_content_id
                .clone()
                .and_then(|r| self.content_pos(&r))
                .filter(|&ri| {
                    let r = &self.content[ri];
                    ri != ci && &*r.status == "active" && r.expires_at.is_none_or(|e| e > now)
                });
            let mut pls = self
                .content_refs
                .get(&(ci as u32))
                .cloned()
                .unwrap_or_default();
            pls.sort_unstable();
            pls.dedup();
            for pi in pls {
                let pi = pi as usize;
                let cid = self.content[ci].id.clone();
                let mut items = self.playlists[pi].items.clone();
                match repl {
                    Some(ri) => {
                        let rid = self.content[ri].id.clone();
                        for it in items.iter_mut().filter(|it| it.content_id == cid) {
                            it.content_id = rid.clone();
                            repointed += 1;
                        }
                    }
                    None => {
                        let before = items.len();
                        items.retain(|it| it.content_id != cid);
                        removed += before - items.len();
                        for (k, it) in items.iter_mut().enumerate() {
                            it.order = k as i64;
                        }
                    }
                }
                self.set_playlist_items(pi, items);
                self.playlists[pi].updated_at = now;
            }
            let c = &mut self.content[ci];
            c.status = expired.clone();
            c.updated_at = now;
        }
        (due.len(), repointed, removed)
    }

    /// Runs Vizora's "mark offline" job once: `online` displays whose heartbeat is older than 120 s become
    /// `offline`. Returns how many changed.
    pub(crate) fn mark_offline(&mut self, now: i64) -> usize {
        let offline: Sym = Arc::from("offline");
        let mut n = 0;
        for &di in &self.display_order {
            let d = &mut self.displays[di as usize];
            if &*d.status == "online"
                && Self::heartbeat(d, now).is_some_and(|hb| hb < now - ONLINE_WINDOW_MS)
            {
                d.status = offline.clone();
                d.updated_at = now;
                n += 1;
            }
        }
        n
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Projections
// ---------------------------------------------------------------------------------------------------------------

/// Render context: the store and the sandbox "now".
#[derive(Clone, Copy)]
pub(crate) struct R<'a> {
    pub s: &'a Store,
    pub now: i64,
}

/// Compact JSON text written back as JSON (or `null`).
struct JsonText<'a>(Option<&'a str>);

impl Serialize for JsonText<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            None => s.serialize_none(),
            Some(t) => match serde_json::from_str::<Value>(t) {
                Ok(v) => v.serialize(s),
                Err(_) => s.serialize_none(),
            },
        }
    }
}

struct TagRow<'a>(&'a Tag);

impl Serialize for TagRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("id", &*t.id)?;
        m.serialize_entry("name", &t.name)?;
        m.serialize_entry("color", &t.color)?;
        m.serialize_entry("organizationId", &*t.organization_id)?;
        m.serialize_entry("createdAt", &Ts(t.created_at))?;
        m.end()
    }
}

struct Tags<'a> {
    r: R<'a>,
    links: &'a [TagLink],
    owner_key: &'static str,
    owner_id: &'a str,
}

impl Serialize for Tags<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut q = s.serialize_seq(Some(self.links.len()))?;
        for l in self.links {
            q.serialize_element(&TagLinkRow {
                l,
                tags: &self.r.s.tags,
                owner_key: self.owner_key,
                owner_id: self.owner_id,
            })?;
        }
        q.end()
    }
}

struct TagLinkRow<'a> {
    l: &'a TagLink,
    tags: &'a [Tag],
    owner_key: &'static str,
    owner_id: &'a str,
}

impl Serialize for TagLinkRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = &self.tags[self.l.tag as usize];
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("id", &*self.l.id)?;
        m.serialize_entry(self.owner_key, self.owner_id)?;
        m.serialize_entry("tagId", &*t.id)?;
        m.serialize_entry("createdAt", &Ts(self.l.created_at))?;
        m.serialize_entry("tag", &TagRow(t))?;
        m.end()
    }
}

fn ostr(v: &Option<Box<str>>) -> Option<&str> {
    v.as_deref()
}

fn osym(v: &Option<Sym>) -> Option<&str> {
    v.as_deref()
}

/// `GET /content` item: the narrow projection of vizora-api.md §3.1.
pub(crate) struct ContentListItem<'a> {
    pub r: R<'a>,
    pub c: &'a Content,
}

impl Serialize for ContentListItem<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.c;
        let mut m = s.serialize_map(Some(14))?;
        m.serialize_entry("id", &*c.id)?;
        m.serialize_entry("organizationId", &*c.organization_id)?;
        m.serialize_entry("name", &c.name)?;
        m.serialize_entry("type", &*c.kind)?;
        m.serialize_entry("thumbnail", &c.thumbnail)?;
        m.serialize_entry("duration", &c.duration)?;
        m.serialize_entry("fileSize", &c.file_size)?;
        m.serialize_entry("status", &*c.status)?;
        m.serialize_entry("folderId", &ostr(&c.folder_id))?;
        m.serialize_entry("createdAt", &Ts(c.created_at))?;
        m.serialize_entry("updatedAt", &Ts(c.updated_at))?;
        m.serialize_entry(
            "tags",
            &Tags {
                r: self.r,
                links: &c.tags,
                owner_key: "contentId",
                owner_id: &c.id,
            },
        )?;
        m.serialize_entry("title", &c.name)?;
        m.serialize_entry("thumbnailUrl", &c.thumbnail)?;
        m.end()
    }
}

/// Which content row projection to write.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentMode {
    /// The raw row (archive/restore responses): no tags, no aliases.
    Raw,
    /// The mapped row (PATCH response): tags and the `title`/`thumbnailUrl` aliases.
    Mapped,
    /// The detail (`GET /content/:id`): tags, `playlistItems` with `playlist`, aliases.
    Detail,
}

/// A content row in one of the [`ContentMode`] projections.
pub(crate) struct ContentRow<'a> {
    pub r: R<'a>,
    pub ci: usize,
    pub mode: ContentMode,
}

impl Serialize for ContentRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let st = self.r.s;
        let c = &st.content[self.ci];
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &*c.id)?;
        m.serialize_entry("name", &c.name)?;
        m.serialize_entry("description", &c.description)?;
        m.serialize_entry("type", &*c.kind)?;
        m.serialize_entry("url", &c.url)?;
        m.serialize_entry("thumbnail", &c.thumbnail)?;
        m.serialize_entry("duration", &c.duration)?;
        m.serialize_entry("fileSize", &c.file_size)?;
        m.serialize_entry("mimeType", &osym(&c.mime_type))?;
        m.serialize_entry("metadata", &JsonText(c.metadata.as_deref()))?;
        m.serialize_entry("status", &*c.status)?;
        m.serialize_entry("isGlobal", &c.is_global)?;
        m.serialize_entry("templateOrientation", &osym(&c.template_orientation))?;
        m.serialize_entry("createdAt", &Ts(c.created_at))?;
        m.serialize_entry("updatedAt", &Ts(c.updated_at))?;
        m.serialize_entry("expiresAt", &OTs(c.expires_at))?;
        m.serialize_entry("replacementContentId", &ostr(&c.replacement_content_id))?;
        m.serialize_entry("previousVersionId", &ostr(&c.previous_version_id))?;
        m.serialize_entry("versionNumber", &c.version_number)?;
        m.serialize_entry("organizationId", &*c.organization_id)?;
        m.serialize_entry("folderId", &ostr(&c.folder_id))?;
        if self.mode != ContentMode::Raw {
            m.serialize_entry(
                "tags",
                &Tags {
                    r: self.r,
                    links: &c.tags,
                    owner_key: "contentId",
                    owner_id: &c.id,
                },
            )?;
        }
        if self.mode == ContentMode::Detail {
            m.serialize_entry(
                "playlistItems",
                &PlaylistItemsOf {
                    r: self.r,
                    ci: self.ci,
                },
            )?;
        }
        if self.mode != ContentMode::Raw {
            m.serialize_entry("title", &c.name)?;
            m.serialize_entry("thumbnailUrl", &c.thumbnail)?;
        }
        m.end()
    }
}

struct PlaylistItemsOf<'a> {
    r: R<'a>,
    ci: usize,
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

struct ItemWithPlaylist<'a> {
    p: &'a Playlist,
    it: &'a PlaylistItem,
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

struct ItemsWithContent<'a> {
    st: &'a Store,
    p: &'a Playlist,
    items: &'a [&'a PlaylistItem],
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

struct ItemWithContent<'a> {
    st: &'a Store,
    p: &'a Playlist,
    it: &'a PlaylistItem,
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

struct ContentSummary<'a>(&'a Content);

impl Serialize for ContentSummary<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut m = s.serialize_map(Some(9))?;
        m.serialize_entry("id", &*c.id)?;
        m.serialize_entry("name", &c.name)?;
        m.serialize_entry("type", &*c.kind)?;
        m.serialize_entry("thumbnail", &c.thumbnail)?;
        m.serialize_entry("duration", &c.duration)?;
        m.serialize_entry("fileSize", &c.file_size)?;
        m.serialize_entry("status", &*c.status)?;
        m.serialize_entry("title", &c.name)?;
        m.serialize_entry("thumbnailUrl", &c.thumbnail)?;
        m.end()
    }
}

/// Which display projection to write.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum DisplayMode {
    /// The embedded select (group members): list fields without tags.
    Embedded,
    /// `GET /displays` item.
    List,
    /// `GET /displays/:id`: list fields plus metadata, screenshots, `groups[]`, active `schedules[]`.
    Detail,
    /// The full device row (schedule relation), including `jwtToken`, `pairingCode`, `socketId`.
    FullRow,
}

/// A display in one of the [`DisplayMode`] projections.
pub(crate) struct DisplayView<'a> {
    pub r: R<'a>,
    pub di: usize,
    pub mode: DisplayMode,
}

impl Serialize for DisplayView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let st = self.r.s;
        let d = &st.displays[self.di];
        let hb = OTs(Store::heartbeat(d, self.r.now));
        let mut m = s.serialize_map(None)?;
        if self.mode == DisplayMode::FullRow {
            m.serialize_entry("id", &*d.id)?;
            m.serialize_entry("organizationId", &*d.organization_id)?;
            m.serialize_entry("deviceIdentifier", &d.device_identifier)?;
            m.serialize_entry("nickname", &d.nickname)?;
            m.serialize_entry("description", &d.description)?;
            m.serialize_entry("location", &osym(&d.location))?;
            m.serialize_entry("pairingCode", &d.pairing_code)?;
            m.serialize_entry("pairingCodeExpiresAt", &OTs(d.pairing_code_expires_at))?;
            m.serialize_entry("jwtToken", &d.jwt_token)?;
            m.serialize_entry("socketId", &d.socket_id)?;
            m.serialize_entry("status", &*d.status)?;
            m.serialize_entry("orientation", &*d.orientation)?;
            m.serialize_entry("resolution", &osym(&d.resolution))?;
            m.serialize_entry("lastHeartbeat", &hb)?;
            m.serialize_entry("metadata", &JsonText(d.metadata.as_deref()))?;
            m.serialize_entry("timezone", &*d.timezone)?;
            m.serialize_entry("lastScreenshot", &d.last_screenshot)?;
            m.serialize_entry("lastScreenshotAt", &OTs(d.last_screenshot_at))?;
            m.serialize_entry("isDisabled", &d.is_disabled)?;
            m.serialize_entry("currentPlaylistId", &ostr(&d.current_playlist_id))?;
            m.serialize_entry("createdAt", &Ts(d.created_at))?;
            m.serialize_entry("updatedAt", &Ts(d.updated_at))?;
            m.serialize_entry("pairedAt", &OTs(d.paired_at))?;
            m.serialize_entry("unpairedAt", &OTs(d.unpaired_at))?;
            return m.end();
        }
        m.serialize_entry("id", &*d.id)?;
        m.serialize_entry("organizationId", &*d.organization_id)?;
        m.serialize_entry("deviceIdentifier", &d.device_identifier)?;
        m.serialize_entry("nickname", &d.nickname)?;
        m.serialize_entry("description", &d.description)?;
        m.serialize_entry("location", &osym(&d.location))?;
        m.serialize_entry("status", &*d.status)?;
        m.serialize_entry("orientation", &*d.orientation)?;
        m.serialize_entry("resolution", &osym(&d.resolution))?;
        m.serialize_entry("timezone", &*d.timezone)?;
        m.serialize_entry("lastHeartbeat", &hb)?;
        m.serialize_entry("isDisabled", &d.is_disabled)?;
        m.serialize_entry("currentPlaylistId", &ostr(&d.current_playlist_id))?;
        m.serialize_entry("createdAt", &Ts(d.created_at))?;
        m.serialize_entry("updatedAt", &Ts(d.updated_at))?;
        m.serialize_entry("pairedAt", &OTs(d.paired_at))?;
        m.serialize_entry("unpairedAt", &OTs(d.unpaired_at))?;
        if self.mode == DisplayMode::Embedded {
            return m.end();
        }
        m.serialize_entry(
            "tags",
            &Tags {
                r: self.r,
                links: &d.tags,
                owner_key: "displayId",
                owner_id: &d.id,
            },
        )?;
        if self.mode == DisplayMode::Detail {
            m.serialize_entry("metadata", &JsonText(d.metadata.as_deref()))?;
            m.serialize_entry("lastScreenshot", &d.last_screenshot)?;
            m.serialize_entry("lastScreenshotAt", &OTs(d.last_screenshot_at))?;
            let groups: Vec<GroupMember> = st
                .display_groups
                .get(&(self.di as u32))
                .map(|v| {
                    v.iter()
                        .map(|&gi| GroupMember {
                            r: self.r,
                            gi: gi as usize,
                            di: self.di,
                            with_display: false,
                        })
                        .collect()
                })
                .unwrap_or_default();
            m.serialize_entry("groups", &groups)?;
            let scheds: Vec<ScheduleView> = st
                .display_scheds
                .get(&(self.di as u32))
                .map(|v| {
                    v.iter()
                        .map(|&si| si as usize)
                        .filter(|&si| st.schedules[si].is_active)
                        .map(|si| ScheduleView {
                            r: self.r,
                            si,
                            mode: ScheduleMode::WithPlaylistSummary,
                        })
                        .collect()
                })
                .unwrap_or_default();
            m.serialize_entry("schedules", &scheds)?;
        }
        m.end()
    }
}

fn member_id(group: &str, display: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (group, display).hash(&mut h);
    let mut x = h.finish();
    let mut h2 = std::collections::hash_map::DefaultHasher::new();
    (display, group, 7u8).hash(&mut h2);
    let mut y = h2.finish();
    let alphabet = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = String::from("cm");
    for k in 0..23 {
        let v = if k < 12 { &mut x } else { &mut y };
        out.push(alphabet[(*v % 36) as usize] as char);
        *v /= 36;
    }
    out
}

/// A `DisplayGroupMember` row with either its `displayGroup` or its `display`.
pub(crate) struct GroupMember<'a> {
    pub r: R<'a>,
    pub gi: usize,
    pub di: usize,
    pub with_display: bool,
}

impl Serialize for GroupMember<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let st = self.r.s;
        let g = &st.groups[self.gi];
        let d = &st.displays[self.di];
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("id", &member_id(&g.id, &d.id))?;
        m.serialize_entry("displayId", &*d.id)?;
        m.serialize_entry("displayGroupId", &*g.id)?;
        m.serialize_entry("createdAt", &Ts(g.created_at.max(d.created_at)))?;
        if self.with_display {
            m.serialize_entry(
                "display",
                &DisplayView {
                    r: self.r,
                    di: self.di,
                    mode: DisplayMode::Embedded,
                },
            )?;
        } else {
            m.serialize_entry(
                "displayGroup",
                &GroupView {
                    r: self.r,
                    gi: self.gi,
                    mode: GroupMode::Row,
                },
            )?;
        }
        m.end()
    }
}

/// Which display-group projection to write.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupMode {
    /// The row only.
    Row,
    /// `GET /display-groups` item: `displays: [{displayId}]`, `_count.displays`.
    List,
    /// `GET /display-groups/:id`: members with their display summary.
    Detail,
}

/// A display group in one of the [`GroupMode`] projections.
pub(crate) struct GroupView<'a> {
    pub r: R<'a>,
    pub gi: usize,
    pub mode: GroupMode,
}

impl Serialize for GroupView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let st = self.r.s;
        let g = &st.groups[self.gi];
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &*g.id)?;
        m.serialize_entry("name", &g.name)?;
        m.serialize_entry("description", &g.description)?;
        m.serialize_entry("createdAt", &Ts(g.created_at))?;
        m.serialize_entry("updatedAt", &Ts(g.updated_at))?;
        m.serialize_entry("organizationId", &*g.organization_id)?;
        let members: Vec<usize> = g
            .display_ids
            .iter()
            .filter_map(|id| st.display_pos(id))
            .collect();
        match self.mode {
            GroupMode::Row => {}
            GroupMode::List => {
                let ids: Vec<MemberId> = members
                    .iter()
                    .map(|&di| MemberId {
                        display_id: &st.displays[di].id,
                    })
                    .collect();
                m.serialize_entry("displays", &ids)?;
                m.serialize_entry(
                    "_count",
                    &CountDisplays {
                        displays: members.len(),
                    },
                )?;
            }
            GroupMode::Detail => {
                let rows: Vec<GroupMember> = members
                    .iter()
                    .map(|&di| GroupMember {
                        r: self.r,
                        gi: self.gi,
                        di,
                        with_display: true,
                    })
                    .collect();
                m.serialize_entry("displays", &rows)?;
                m.serialize_entry(
                    "_count",
                    &CountDisplays {
                        displays: members.len(),
                    },
                )?;
            }
        }
        m.end()
    }
}

#[derive(Serialize)]
struct CountItems {
    items: usize,
}

#[derive(Serialize)]
struct CountSchedules {
    schedules: u32,
}

#[derive(Serialize)]
struct CountDisplays {
    displays: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MemberId<'a> {
    display_id: &'a str,
}

/// Which schedule projection to write.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScheduleMode {
    /// The list/detail/PATCH projection: scalars plus `playlist` (+`_count.items`), `display` (full row),
    /// `displayGroup`.
    Full,
    /// Scalars plus the playlist summary (the `schedules[]` of a display detail).
    WithPlaylistSummary,
}

/// A schedule in one of the [`ScheduleMode`] projections.
pub(crate) struct ScheduleView<'a> {
    pub r: R<'a>,
    pub si: usize,
    pub mode: ScheduleMode,
}

impl Serialize for ScheduleView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let st = self.r.s;
        let x = &st.schedules[self.si];
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &*x.id)?;
        m.serialize_entry("name", &x.name)?;
        m.serialize_entry("description", &x.description)?;
        m.serialize_entry("startDate", &Ts(x.start_date))?;
        m.serialize_entry("endDate", &OTs(x.end_date))?;
        m.serialize_entry("startTime", &x.start_time)?;
        m.serialize_entry("endTime", &x.end_time)?;
        m.serialize_entry("daysOfWeek", &x.days_of_week)?;
        m.serialize_entry("priority", &x.priority)?;
        m.serialize_entry("isActive", &x.is_active)?;
        m.serialize_entry("createdAt", &Ts(x.created_at))?;
        m.serialize_entry("updatedAt", &Ts(x.updated_at))?;
        m.serialize_entry("organizationId", &*x.organization_id)?;
        m.serialize_entry("playlistId", &*x.playlist_id)?;
        m.serialize_entry("displayId", &ostr(&x.display_id))?;
        m.serialize_entry("displayGroupId", &ostr(&x.display_group_id))?;
        let pl = st.playlist_pos(&x.playlist_id);
        match self.mode {
            ScheduleMode::WithPlaylistSummary => {
                let v = pl.map(|pi| PlaylistView {
                    r: None,
                    p: &st.playlists[pi],
                    pi,
                    mode: PlaylistMode::Scalars,
                });
                m.serialize_entry("playlist", &v)?;
            }
            ScheduleMode::Full => {
                let v = pl.map(|pi| PlaylistView {
                    r: None,
                    p: &st.playlists[pi],
                    pi,
                    mode: PlaylistMode::WithItemCount,
                });
                m.serialize_entry("playlist", &v)?;
                let d = x
                    .display_id
                    .as_deref()
                    .and_then(|id| st.display_pos(id))
                    .map(|di| DisplayView {
                        r: self.r,
                        di,
                        mode: DisplayMode::FullRow,
                    });
                m.serialize_entry("display", &d)?;
                let g = x
                    .display_group_id
                    .as_deref()
                    .and_then(|id| st.group_pos(id))
                    .map(|gi| GroupView {
                        r: self.r,
                        gi,
                        mode: GroupMode::Row,
                    });
                m.serialize_entry("displayGroup", &g)?;
            }
        }
        m.end()
    }
}

/// The fixture-format object of a stored entity (for `GET /__sandbox/entities/...`).
pub(crate) fn raw_entity(r: R, collection: &str, id: &str) -> Option<Value> {
    let st = r.s;
    let v = match collection {
        "content" => {
            let ci = st.content_pos(id)?;
            let mut v = serde_json::to_value(ContentRow {
                r,
                ci,
                mode: ContentMode::Mapped,
            })
            .ok()?;
            if let Some(m) = v.as_object_mut() {
                m.insert(
                    "playlistRefs".into(),
                    serde_json::to_value(PlaylistItemsOf { r, ci }).ok()?,
                );
            }
            v
        }
        "displays" => {
            let di = st.display_pos(id)?;
            let mut v = serde_json::to_value(DisplayView {
                r,
                di,
                mode: DisplayMode::FullRow,
            })
            .ok()?;
            let d = &st.displays[di];
            if let Some(m) = v.as_object_mut() {
                m.insert(
                    "tags".into(),
                    serde_json::to_value(Tags {
                        r,
                        links: &d.tags,
                        owner_key: "displayId",
                        owner_id: &d.id,
                    })
                    .ok()?,
                );
                m.insert("_sandbox".into(), serde_json::json!({ "live": d.live, "stayOffline": d.stay_offline, "online": Store::is_online(d, r.now) }));
            }
            v
        }
        "playlists" => {
            let pi = st.playlist_pos(id)?;
            serde_json::to_value(PlaylistView {
                r: Some(r),
                p: &st.playlists[pi],
                pi,
                mode: PlaylistMode::Full,
            })
            .ok()?
        }
        "schedules" => {
            let si = st.schedule_pos(id)?;
            serde_json::to_value(ScheduleView {
                r,
                si,
                mode: ScheduleMode::Full,
            })
            .ok()?
        }
        "display-groups" | "displayGroups" | "groups" => {
            let gi = st.group_pos(id)?;
            let mut v = serde_json::to_value(GroupView {
                r,
                gi,
                mode: GroupMode::Row,
            })
            .ok()?;
            if let Some(m) = v.as_object_mut() {
                m.insert(
                    "displayIds".into(),
                    serde_json::json!(
                        st.groups[gi]
                            .display_ids
                            .iter()
                            .map(|s| &**s)
                            .collect::<Vec<_>>()
                    ),
                );
            }
            v
        }
        "organization" | "organizations" => {
            if id != st.org_id && id != "current" {
                return None;
            }
            Value::Object(st.org.clone())
        }
        "users" => {
            let u = st
                .users
                .iter()
                .find(|u| u.get("id").and_then(Value::as_str) == Some(id))?;
            let mut u = u.clone();
            u.remove("password");
            Value::Object(u)
        }
        _ => return None,
    };
    Some(v)
}

/// A content-list filter (the declared `ContentQueryDto` keys).
#[derive(Default, Debug)]
pub(crate) struct ContentFilter {
    pub kind: Option<String>,
    pub status: Option<String>,
    pub template_orientation: Option<String>,
    pub search: Option<String>,
    pub created_after: Option<i64>,
    pub tag_names: Vec<String>,
    pub tag_ids: Vec<String>,
}

impl ContentFilter {
    /// Whether no filter is set.
    pub(crate) fn is_empty(&self) -> bool {
        self.kind.is_none()
            && self.status.is_none()
            && self.template_orientation.is_none()
            && self.search.is_none()
            && self.created_after.is_none()
            && self.tag_names.is_empty()
            && self.tag_ids.is_empty()
    }

    /// Whether `c` passes.
    pub(crate) fn matches(&self, st: &Store, c: &Content) -> bool {
        if self.kind.as_deref().is_some_and(|k| k != &*c.kind) {
            return false;
        }
        if self.status.as_deref().is_some_and(|k| k != &*c.status) {
            return false;
        }
        if self
            .template_orientation
            .as_deref()
            .is_some_and(|k| Some(k) != c.template_orientation.as_deref())
        {
            return false;
        }
        if let Some(q) = &self.search {
            let q = q.to_lowercase();
            let hit = c.name.to_lowercase().contains(&q)
                || c.description
                    .as_deref()
                    .is_some_and(|d| d.to_lowercase().contains(&q));
            if !hit {
                return false;
            }
        }
        if self.created_after.is_some_and(|t| c.created_at < t) {
            return false;
        }
        if !self.tag_names.is_empty()
            && !c.tags.iter().any(|l| {
                self.tag_names
                    .iter()
                    .any(|n| *n == st.tags[l.tag as usize].name)
            })
        {
            return false;
        }
        if !self.tag_ids.is_empty()
            && !c.tags.iter().any(|l| {
                self.tag_ids
                    .iter()
                    .any(|n| **n == *st.tags[l.tag as usize].id)
            })
        {
            return false;
        }
        true
    }
}
