//! The sandbox's data: the fixture's entities with id indexes, list orders and reverse relations, the projections
//! the API serves (written straight to JSON through `Serialize` wrappers, no intermediate values) and the server-side
//! jobs (content expiry, marking displays offline). The projections are in `project` (one module per collection),
//! the fixture-format dump in `raw`, the content-list filter in `filter`.

mod filter;
mod project;
mod raw;

pub(crate) use filter::ContentFilter;
pub(crate) use project::*;
pub(crate) use raw::raw_entity;

use super::index::IdIndex;
use super::model::{Content, Display, Fixture, Group, Playlist, PlaylistItem, Schedule, Sym, Tag};
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
