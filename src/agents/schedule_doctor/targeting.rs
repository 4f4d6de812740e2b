//! Targeting and membership (agents.md 6.0 "targets a display"): the id indexes of a complete scan, which schedules
//! reach which display, and the lists that omit ids schedules embed (6.4.2: such a list is not trusted for absence).

use super::{DISPLAYS, GROUPS, PLAYLISTS};
use crate::agents::AgentContext;
use crate::agents::common::{DisplayIds, Membership};
use crate::agents::entities::{Display, DisplayGroup, FastMap, PlaylistSummary, Schedule};
use std::collections::HashSet;

/// The id indexes of a complete scan: playlists, the **unfiltered** displays (a disabled display is a target,
/// agents.md 9.30) and groups by id (positions in their lists), and the group membership (6.0). The existence checks
/// of 6.4.2 accept only ids that were JSON strings. Built once per run: one hash of each id and membership.
#[derive(Debug)]
pub struct EntitySets<'a> {
    /// Playlist id → position (the last one when an id repeats).
    pub playlists: FastMap<&'a str, u32>,
    /// Display id → position.
    pub displays: DisplayIds<'a>,
    /// Group id → position (the last one when an id repeats).
    pub groups: FastMap<&'a str, u32>,
    /// Group id → member display positions, or unknown.
    pub membership: Membership<'a>,
    playlist_list: &'a [PlaylistSummary],
    display_list: &'a [Display],
    group_list: &'a [DisplayGroup],
}

impl<'a> EntitySets<'a> {
    /// Indexes the three lists.
    pub fn new(
        playlists: &'a [PlaylistSummary],
        displays: &'a [Display],
        groups: &'a [DisplayGroup],
    ) -> Self {
        let display_ids = DisplayIds::build(displays.iter().map(|d| &*d.id));
        let index = |ids: &mut dyn Iterator<Item = &'a str>, n: usize| {
            let mut m: FastMap<&'a str, u32> = FastMap::default();
            m.reserve(n);
            for (i, id) in ids.enumerate() {
                m.insert(id, i as u32);
            }
            m
        };
        EntitySets {
            playlists: index(&mut playlists.iter().map(|p| &*p.id), playlists.len()),
            groups: index(&mut groups.iter().map(|g| &*g.id), groups.len()),
            membership: Membership::build(groups, &display_ids),
            displays: display_ids,
            playlist_list: playlists,
            display_list: displays,
            group_list: groups,
        }
    }

    /// The walked playlist with this id.
    pub fn playlist(&self, id: &str) -> Option<&'a PlaylistSummary> {
        self.playlists
            .get(id)
            .map(|&i| &self.playlist_list[i as usize])
    }

    /// A playlist with this (string) id exists.
    pub fn has_playlist(&self, id: &str) -> bool {
        self.playlist(id).is_some_and(|p| p.string_id)
    }

    /// A display with this (string) id exists, enabled or not.
    pub fn has_display(&self, id: &str) -> bool {
        self.displays
            .get(id)
            .is_some_and(|i| self.display_list[i as usize].string_id)
    }

    /// A group with this (string) id exists.
    pub fn has_group(&self, id: &str) -> bool {
        self.groups
            .get(id)
            .is_some_and(|&i| self.group_list[i as usize].string_id)
    }

    /// Number of displays indexed (the unfiltered list).
    pub fn display_count(&self) -> usize {
        self.display_list.len()
    }
}

/// Which schedules reach which display (agents.md 6.0 "targets a display"), built in one pass over the schedules
/// (O(schedules + memberships), plus one sort) instead of testing every pair. Displays are positions in the display
/// list; the schedules of one display are ascending positions in the schedule list.
#[derive(Debug, Default)]
pub struct TargetIndex {
    /// `targets[offsets[d]..offsets[d + 1]]` are the schedules reaching display `d`.
    offsets: Vec<u32>,
    targets: Vec<u32>,
    /// Positions of schedules whose group has unknown membership (no `displays` array): they may reach any display.
    pub unknown_membership: Vec<usize>,
}

impl TargetIndex {
    /// Indexes the schedules `idx` (positions in `schedules`) against the displays and membership of `sets`:
    /// `displayId` (non-empty, a listed display) and the members of `displayGroupId` (non-empty). Groups that do not
    /// exist reach nobody.
    pub fn build(
        schedules: &[Schedule],
        idx: impl IntoIterator<Item = usize>,
        sets: &EntitySets<'_>,
    ) -> TargetIndex {
        let mut t = TargetIndex::default();
        // (display << 32 | schedule): one sort groups by display, schedules ascending, duplicates adjacent.
        let mut pairs: Vec<u64> = Vec::new();
        for i in idx {
            let sch = &schedules[i];
            if matches!(sch.malformed_ref, Some("displayId" | "displayGroupId")) {
                // What it targets is unknown: it may reach any display.
                t.unknown_membership.push(i);
                continue;
            }
            if let Some(d) = sch.display_target()
                && let Some(di) = sets.displays.get(d)
            {
                pairs.push((di as u64) << 32 | i as u64);
            }
            if let Some(g) = sch.group_target() {
                match sets.membership.get(g) {
                    Some(Some(m)) => pairs.extend(m.iter().map(|&di| (di as u64) << 32 | i as u64)),
                    Some(None) => t.unknown_membership.push(i),
                    None => {}
                }
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        let n = sets.display_count();
        t.offsets = vec![0u32; n + 1];
        for &p in &pairs {
            t.offsets[(p >> 32) as usize + 1] += 1;
        }
        for d in 0..n {
            t.offsets[d + 1] += t.offsets[d];
        }
        t.targets = pairs.iter().map(|&p| p as u32).collect();
        t
    }

    /// Schedules (positions) reaching display `d` (empty when none).
    pub fn for_display(&self, d: u32) -> &[u32] {
        let d = d as usize;
        if d + 1 >= self.offsets.len() {
            return &[];
        }
        &self.targets[self.offsets[d] as usize..self.offsets[d + 1] as usize]
    }

    /// Whether any indexed schedule reaches display `d`.
    pub fn reaches(&self, d: u32) -> bool {
        !self.for_display(d).is_empty()
    }
}

/// Ids that schedules embed (so they exist) but their lists omit, counted over all schedules: playlists, displays,
/// groups, each with up to 3 examples. Non-zero means a list is untrustworthy (cut short with a consistent total);
/// the run warns once per list (agents.md 6.4.2).
pub fn list_omissions(schedules: &[Schedule], sets: &EntitySets<'_>) -> [(usize, Vec<String>); 3] {
    let mut out: [(usize, Vec<String>); 3] = Default::default();
    let mut seen: [HashSet<&str>; 3] = Default::default();
    let mut add = |k: usize, id: &str, seen_k: bool| {
        if seen_k {
            out[k].0 += 1;
            if out[k].1.len() < 3 {
                out[k].1.push(id.to_string());
            }
        }
    };
    for sch in schedules {
        if let Some(p) = sch.playlist_id.as_deref()
            && sch.embeds_playlist
            && !sets.has_playlist(p)
        {
            add(0, p, seen[0].insert(p));
        }
        if let Some(d) = sch.display_id.as_deref()
            && sch.embeds_display
            && !sets.has_display(d)
        {
            add(1, d, seen[1].insert(d));
        }
        if let Some(g) = sch.group_id.as_deref()
            && sch.embeds_group
            && !sets.has_group(g)
        {
            add(2, g, seen[2].insert(g));
        }
    }
    out
}

/// Warns once per list per run when a list omits ids that schedules embed although its total says complete
/// (agents.md 6.4.2): that list is not trusted for absence, and such references count as existing.
pub(super) fn warn_omissions(ctx: &AgentContext, schedules: &[Schedule], sets: &EntitySets<'_>) {
    let om = list_omissions(schedules, sets);
    for ((n, examples), list) in om.iter().zip([PLAYLISTS, DISPLAYS, GROUPS]) {
        if *n > 0 {
            ctx.warn(format!(
                "{list} omits {n} id(s) that schedules embed (e.g. {}) although its total says complete: \
                 the list is not trusted for absence; such references count as existing",
                examples.join(", ")
            ));
        }
    }
}
