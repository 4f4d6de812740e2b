//! Pure detection rules of schedule-doctor (agents.md 6.4), over the typed records of [`crate::agents::entities`]:
//! fallback playlist resolution (6.4.1), the first-match checks of active schedules (6.4.2), playlist item counts and
//! equal-priority overlaps (6.4.3) and the coverage verdicts of displays (6.4.4). No I/O and no clock: `now` is always
//! passed in (the run's start).
//!
//! Entities are referred to by their position in the walked lists (`u32`/`usize` indexes), so detection allocates
//! strings only for findings. Time model (agents.md 6.0): weekly minute intervals from [`common::weekly_intervals`]
//! in the display's IANA time zone, intersected under week shifts −1/0/+1 by [`common::first_intersection`].

use crate::agents::common::{self, DisplayIds, Intervals, Membership};
use crate::agents::entities::{
    CurrentPlaylist, Display, DisplayGroup, FastMap, PlaylistSummary, Schedule, TsField, Week,
};
use chrono::{DateTime, Datelike, Duration, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

/// Minutes in a day.
const DAY_MINUTES: i64 = 1440;

// ─── 6.4.1 Fallback playlist ────────────────────────────────────────────────────────────────────────────────────────

/// Where the fallback playlist id came from (agents.md 6.4.1, in precedence order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackSource {
    /// The organisation's `settings.opsFallbackPlaylistId`.
    OrgSettings,
    /// The organisation's playlist with `isDefault: true`.
    DefaultPlaylist,
    /// `OPS_FALLBACK_PLAYLIST_ID`.
    Env,
}

impl FallbackSource {
    /// Human name of the source, used in messages.
    pub fn describe(self) -> &'static str {
        match self {
            FallbackSource::OrgSettings => "organization settings.opsFallbackPlaylistId",
            FallbackSource::DefaultPlaylist => "the organization's isDefault playlist",
            FallbackSource::Env => "OPS_FALLBACK_PLAYLIST_ID",
        }
    }
}

/// The fallback playlist verdict of a run (agents.md 6.4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// Nothing configured anywhere.
    Unconfigured,
    /// Cannot be decided (organisation read failed, or the playlist's item count is unknown): assignments and the
    /// `fallback_playlist_invalid` verdict are not examined. The string says why.
    Unknown(String),
    /// Configured, but missing from the playlist set or empty: `fallback_playlist_invalid`, no assignment.
    Invalid {
        /// The configured playlist id (a non-string setting: its JSON text).
        id: String,
        /// Where the id was configured.
        source: FallbackSource,
        /// Why it is unusable (not a string, not in the organisation's playlists, 0 items).
        reason: String,
    },
    /// Usable: in the playlist set with `itemCount` > 0.
    Valid {
        /// The playlist id.
        id: String,
        /// The playlist's `name` (the id when it has none).
        name: String,
        /// Where the id was configured.
        source: FallbackSource,
    },
}

/// Resolves the fallback playlist (agents.md 6.4.1), first match: `org.settings.opsFallbackPlaylistId` (`org` is
/// `None` when the organisation read failed → [`Fallback::Unknown`]); the playlist with `isDefault: true` (several →
/// latest `updatedAt`, reported in the returned warnings); `env_id` (`OPS_FALLBACK_PLAYLIST_ID`). The chosen id must
/// name a playlist of `playlists` (a complete walk) with `itemCount` > 0. A non-string setting is invalid, an empty
/// string is unset.
pub fn resolve_fallback(
    org: Option<&Value>,
    playlists: &[PlaylistSummary],
    env_id: Option<&str>,
) -> (Fallback, Vec<String>) {
    let mut warnings = Vec::new();
    let Some(org) = org else {
        return (
            Fallback::Unknown("the organization could not be read".into()),
            warnings,
        );
    };
    let chosen: Option<(String, FallbackSource)> = match org
        .get("settings")
        .and_then(|st| st.get("opsFallbackPlaylistId"))
    {
        Some(Value::String(id)) if !id.trim().is_empty() => {
            Some((id.trim().to_string(), FallbackSource::OrgSettings))
        }
        None | Some(Value::Null) | Some(Value::String(_)) => None,
        Some(other) => {
            return (
                Fallback::Invalid {
                    id: other.to_string(),
                    source: FallbackSource::OrgSettings,
                    reason: format!("settings.opsFallbackPlaylistId is not a string ({other})"),
                },
                warnings,
            );
        }
    };
    let chosen = chosen.or_else(|| {
        let org_id = common::s(org, "id");
        let mut defaults: Vec<(&PlaylistSummary, Option<DateTime<Utc>>)> = playlists
            .iter()
            .filter_map(|p| p.default.as_deref().map(|d| (p, d)))
            .filter(|(_, d)| match (org_id, d.organization_id.as_deref()) {
                (Some(o), Some(po)) => o == po,
                _ => true,
            })
            .map(|(p, d)| (p, d.updated_at))
            .collect();
        if defaults.len() > 1 {
            warnings.push(format!(
                "{} playlists are marked isDefault; using the most recently updated one",
                defaults.len()
            ));
        }
        defaults.sort_by_key(|(_, updated)| *updated);
        defaults
            .last()
            .map(|(p, _)| (p.id.to_string(), FallbackSource::DefaultPlaylist))
    });
    let chosen = chosen.or_else(|| {
        env_id
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| (e.to_string(), FallbackSource::Env))
    });
    let Some((id, source)) = chosen else {
        return (Fallback::Unconfigured, warnings);
    };
    let Some(p) = playlists.iter().find(|p| *p.id == *id) else {
        return (
            Fallback::Invalid {
                reason: format!("playlist {id} does not exist in the organization"),
                id,
                source,
            },
            warnings,
        );
    };
    let name = p.name.as_deref().unwrap_or(&id).to_string();
    match p.item_count {
        Some(0) => (
            Fallback::Invalid {
                reason: format!("playlist \"{name}\" ({id}) has 0 items"),
                id,
                source,
            },
            warnings,
        ),
        Some(_) => (Fallback::Valid { id, name, source }, warnings),
        None => (
            Fallback::Unknown(format!(
                "the item count of fallback playlist \"{name}\" ({id}) is unknown"
            )),
            warnings,
        ),
    }
}

// ─── Entity sets and targeting ──────────────────────────────────────────────────────────────────────────────────────

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

// ─── 6.4.2 Active schedules ─────────────────────────────────────────────────────────────────────────────────────────

/// The first matching fault of an active schedule (agents.md 6.4.2): each ends in one deactivation and one incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActiveFault {
    /// Check 1: `endDate` < now (the end date as written).
    PastEnd {
        /// `endDate` as written (an ISO timestamp).
        end: String,
    },
    /// Check 2: `playlistId` not in the playlist set (`None` = no playlist id at all).
    DeletedPlaylist {
        /// The schedule's `playlistId`; `None` when missing or empty.
        playlist_id: Option<String>,
    },
    /// Check 3: no target, or the named display/group does not exist (`reason` says which).
    NoTarget {
        /// E.g. `its display <id> does not exist`, `it has neither a displayId nor a displayGroupId`.
        reason: String,
        /// The target missing from its list (`None` when the schedule names no target): its absence is confirmed by
        /// a direct read answering 404 before the deactivation (agents.md 6.0, 6.4.2).
        missing: Option<MissingTarget>,
    },
}

/// A schedule's target that is absent from the display or group list (agents.md 6.4.2 check 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissingTarget {
    /// `displayId` (confirmed with `GET /api/v1/displays/:id` → 404).
    Display(String),
    /// `displayGroupId` (confirmed with `GET /api/v1/display-groups/:id` → 404).
    Group(String),
}

impl ActiveFault {
    /// The incident type.
    pub fn kind(&self) -> &'static str {
        match self {
            ActiveFault::PastEnd { .. } => "past_end_schedule",
            ActiveFault::DeletedPlaylist { .. } => "deleted_playlist_schedule",
            ActiveFault::NoTarget { .. } => "no_target_schedule",
        }
    }

    /// Short reason for the fix notification and messages.
    pub fn reason(&self) -> String {
        match self {
            ActiveFault::PastEnd { end } => format!("ended {end}"),
            ActiveFault::DeletedPlaylist {
                playlist_id: Some(p),
            } => format!("its playlist {p} no longer exists"),
            ActiveFault::DeletedPlaylist { playlist_id: None } => "it has no playlist".into(),
            ActiveFault::NoTarget { reason, .. } => reason.clone(),
        }
    }
}

/// Verdict of 6.4.2 on one schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActiveVerdict {
    /// `isActive !== true`: nothing to judge (its incidents resolve with evidence).
    Inactive,
    /// One of the three checks matched.
    Fault(ActiveFault),
    /// Active and none of the checks matched (so not ended, if the end is known). `end_known` is false when
    /// `endDate` is unparseable: check 1 was not examined.
    Healthy {
        /// False when `endDate` is unparseable (check 1 and 6.4.3 not examined).
        end_known: bool,
    },
    /// Active, not past its end, but a reference field is malformed (the field's name): checks 2–3 not examined.
    RefsUnknown(&'static str),
}

/// Checks 1–3 of agents.md 6.4.2 in order, first match decides. `sets` is `None` when the scan is incomplete: then
/// only check 1 runs (relational checks need complete lists, 6.0). An unparseable `endDate` skips check 1 only.
pub fn check_active(
    sch: &Schedule,
    now: DateTime<Utc>,
    sets: Option<&EntitySets<'_>>,
) -> ActiveVerdict {
    if !sch.active {
        return ActiveVerdict::Inactive;
    }
    if let TsField::At(e) = sch.end
        && e < now
    {
        return ActiveVerdict::Fault(ActiveFault::PastEnd {
            end: sch.end_text.as_deref().unwrap_or_default().to_string(),
        });
    }
    let end_known = sch.end != TsField::Unparseable;
    if let Some(field) = sch.malformed_ref {
        return ActiveVerdict::RefsUnknown(field);
    }
    let Some(sets) = sets else {
        return ActiveVerdict::Healthy { end_known };
    };
    // An embedded relation in the same answer proves existence: absence from another list alone never decides
    // (a list can be cut short with a consistent total; agents.md 6.4.2).
    let playlist = sch.playlist_id.as_deref().filter(|p| !p.is_empty());
    if !playlist.is_some_and(|p| sets.has_playlist(p) || sch.embeds_playlist) {
        return ActiveVerdict::Fault(ActiveFault::DeletedPlaylist {
            playlist_id: playlist.map(String::from),
        });
    }
    let fault = match (sch.display_target(), sch.group_target()) {
        (None, None) => Some((
            "it has neither a displayId nor a displayGroupId".to_string(),
            None,
        )),
        (Some(d), _) if !sets.has_display(d) && !sch.embeds_display => Some((
            format!("its display {d} does not exist"),
            Some(MissingTarget::Display(d.to_string())),
        )),
        (_, Some(g)) if !sets.has_group(g) && !sch.embeds_group => Some((
            format!("its display group {g} does not exist"),
            Some(MissingTarget::Group(g.to_string())),
        )),
        _ => None,
    };
    match fault {
        Some((reason, missing)) => ActiveVerdict::Fault(ActiveFault::NoTarget { reason, missing }),
        None => ActiveVerdict::Healthy { end_known },
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

/// 6.4.2 over every schedule (positions in the schedule list).
#[derive(Debug, Default)]
pub struct ActiveChecks {
    /// Active schedules with their first fault, in list order.
    pub faults: Vec<(usize, ActiveFault)>,
    /// Active schedules without a fault, in list order.
    pub remaining: Vec<usize>,
    /// Those of `remaining` whose `endDate` is unparseable (check 1 and 6.4.3 not examined).
    pub end_unknown: Vec<usize>,
    /// Active schedules with a malformed reference field (the field): checks 2–3, 6.4.3 and overlaps not examined;
    /// not in `remaining`.
    pub refs_unknown: Vec<(usize, &'static str)>,
    /// Active schedules (`faults` + `remaining`).
    pub active: usize,
}

/// Runs [`check_active`] over all schedules (one pass).
pub fn check_schedules(
    schedules: &[Schedule],
    now: DateTime<Utc>,
    sets: Option<&EntitySets<'_>>,
) -> ActiveChecks {
    let mut c = ActiveChecks::default();
    for (i, sch) in schedules.iter().enumerate() {
        match check_active(sch, now, sets) {
            ActiveVerdict::Inactive => {}
            ActiveVerdict::Fault(f) => {
                c.active += 1;
                c.faults.push((i, f));
            }
            ActiveVerdict::Healthy { end_known } => {
                c.active += 1;
                if !end_known {
                    c.end_unknown.push(i);
                }
                c.remaining.push(i);
            }
            ActiveVerdict::RefsUnknown(field) => {
                c.active += 1;
                c.refs_unknown.push((i, field));
            }
        }
    }
    c
}

// ─── 6.4.3 Empty playlists ──────────────────────────────────────────────────────────────────────────────────────────

/// The item count of a schedule's playlist (agents.md 6.4.3, 9.18): the walk's `itemCount`, else the schedule's
/// embedded `playlist._count.items`, else `None` (not examined).
pub fn playlist_item_count(walk_playlist: Option<&PlaylistSummary>, sch: &Schedule) -> Option<u64> {
    walk_playlist
        .and_then(|p| p.item_count)
        .or(sch.embedded_item_count)
}

/// 6.4.3 empty playlists over the remaining active schedules with a known end.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EmptyPlaylists {
    /// Schedules (positions) whose playlist has 0 items.
    pub findings: Vec<usize>,
    /// Schedules whose item count is unknown (not examined).
    pub unknown: Vec<usize>,
}

/// Finds the remaining active, not-ended schedules on playlists with 0 items (schedules with an unparseable end
/// are skipped: not examined).
pub fn empty_playlists(
    schedules: &[Schedule],
    remaining: &[usize],
    sets: &EntitySets<'_>,
) -> EmptyPlaylists {
    let mut e = EmptyPlaylists::default();
    for &i in remaining {
        let sch = &schedules[i];
        if sch.end == TsField::Unparseable {
            continue;
        }
        let pl = sets.playlist(sch.playlist_id.as_deref().unwrap_or_default());
        match playlist_item_count(pl, sch) {
            None => e.unknown.push(i),
            Some(0) => e.findings.push(i),
            Some(_) => {}
        }
    }
    e
}

// ─── 6.4.3 Overlaps ─────────────────────────────────────────────────────────────────────────────────────────────────

/// The fields of a schedule the overlap check reads, parsed and validated (24–40 bytes, `Copy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverlapSchedule {
    /// Position in the schedule list.
    pub ix: u32,
    /// `priority` (missing or null = 0).
    pub priority: i64,
    /// `startDate`.
    pub start: DateTime<Utc>,
    /// `endDate`; `None` = open-ended.
    pub end: Option<DateTime<Utc>>,
    /// The validated weekly fields.
    pub week: Week,
}

impl OverlapSchedule {
    /// The overlap view of schedule `ix`; `None` when `startDate`, `endDate`, `priority` or the time fields are
    /// malformed (its overlap verdicts are then not examined).
    pub fn parse(ix: usize, sch: &Schedule) -> Option<OverlapSchedule> {
        Some(OverlapSchedule {
            ix: ix as u32,
            priority: sch.priority?,
            start: sch.start?,
            end: match sch.end {
                TsField::Null => None,
                TsField::At(t) => Some(t),
                TsField::Unparseable => return None,
            },
            week: sch.week?,
        })
    }

    /// Its weekly intervals (sorted, local minutes of the week).
    pub fn intervals(&self) -> Intervals {
        common::weekly_intervals(&self.week)
    }
}

/// The local weekdays (bit 0 = Sunday … bit 6 = Saturday) of the dates from `lo` to `hi` in `tz`, when that span is
/// shorter than 7 days; `None` when it spans 7 days or more (every weekday counts).
pub fn local_weekdays(lo: DateTime<Utc>, hi: DateTime<Utc>, tz: Tz) -> Option<u8> {
    if hi - lo >= Duration::days(7) {
        return None;
    }
    let mut d = lo.with_timezone(&tz).date_naive();
    let last = hi.with_timezone(&tz).date_naive();
    let mut out = 0u8;
    let mut n = 0;
    while d <= last && n < 7 {
        out |= 1 << d.weekday().num_days_from_sunday();
        n += 1;
        d = d.succ_opt()?;
    }
    Some(out)
}

/// Clips weekly intervals to the weekdays of the bit set `days` at day granularity: each interval is cut at local
/// midnights and the pieces on other weekdays are dropped (a Saturday 22:00–Sunday 02:00 window keeps only its
/// Sunday part when only Sunday is inside the dates). Adjacent pieces are merged again; the result stays sorted.
pub fn clip_to_days(intervals: &[(i64, i64)], days: u8) -> Intervals {
    let mut out = Intervals::EMPTY;
    for &(a, b) in intervals {
        let mut k = a.div_euclid(DAY_MINUTES);
        while k * DAY_MINUTES < b {
            let lo = a.max(k * DAY_MINUTES);
            let hi = b.min((k + 1) * DAY_MINUTES);
            if lo < hi && days & (1 << k.rem_euclid(7)) != 0 {
                match out.last_mut() {
                    Some(last) if last.1 == lo => last.1 = hi,
                    _ => out.push((lo, hi)),
                }
            }
            k += 1;
        }
    }
    out
}

/// The first overlapping weekly window `(start, end)` (week minutes, local) of two schedules on a display in `tz`,
/// or `None` (agents.md 6.4.3): their date ranges must intersect; when that intersection spans < 7 days only its
/// local weekdays count; the weekly intervals are intersected by a linear merge under week shifts −1/0/+1.
pub fn pair_overlap(a: &OverlapSchedule, b: &OverlapSchedule, tz: Tz) -> Option<(i64, i64)> {
    let lo = a.start.max(b.start);
    let hi = match (a.end, b.end) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
    if hi.is_some_and(|h| h < lo) {
        return None;
    }
    let (ia, ib) = (a.intervals(), b.intervals());
    if ia.is_empty() || ib.is_empty() {
        return None;
    }
    match hi.and_then(|h| local_weekdays(lo, h, tz)) {
        Some(days) => {
            common::first_intersection(&clip_to_days(&ia, days), &clip_to_days(&ib, days))
        }
        None => common::first_intersection(&ia, &ib),
    }
}

/// One overlapping pair, reported once across displays (agents.md 6.4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlapPair {
    /// `<idA>+<idB>`, ids in ascending byte order.
    pub key: String,
    /// (id, name) of the first schedule in key order.
    pub a: (String, String),
    /// (id, name) of the second schedule.
    pub b: (String, String),
    /// The shared priority.
    pub priority: i64,
    /// Labels of the first 5 enabled displays where they overlap.
    pub displays: Vec<String>,
    /// How many enabled displays they overlap on.
    pub display_count: usize,
    /// First overlapping window on the first display, e.g. `Sat 09:00–18:00 (Europe/London, on Lobby)`.
    pub window: String,
}

impl OverlapPair {
    /// The incident message: both schedules (name, id), the priority, ≤ 5 displays and the first window.
    pub fn message(&self) -> String {
        let more = self.display_count.saturating_sub(self.displays.len());
        format!(
            "Schedules \"{}\" ({}) and \"{}\" ({}) have the same priority {} and overlap on {} enabled display(s): \
             {}{}; first overlapping window {}",
            self.a.1,
            self.a.0,
            self.b.1,
            self.b.0,
            self.priority,
            self.display_count,
            self.displays.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            },
            self.window
        )
    }
}

/// The result of the overlap sweep over all enabled displays.
#[derive(Debug, Default)]
pub struct OverlapResult {
    /// Pairs by key (sorted).
    pub pairs: BTreeMap<String, OverlapPair>,
    /// Comparisons made (date-overlapping pairs whose weekly windows were intersected).
    pub comparisons: u64,
    /// Displays (ids) where a schedule hit `OPS_OVERLAP_MAX_COMPARISONS`.
    pub capped_displays: Vec<String>,
    /// Ids of the schedules of capped displays: their prior overlap incidents are not examined.
    pub capped_schedules: HashSet<String>,
}

/// Builds a pair key: the two ids in ascending byte order joined by `+`.
pub fn pair_key(a: &str, b: &str) -> String {
    if a.as_bytes() <= b.as_bytes() {
        format!("{a}+{b}")
    } else {
        format!("{b}+{a}")
    }
}

/// A pair found during the sweep (schedule positions in key order), before its strings are built.
struct PairAcc {
    a: u32,
    b: u32,
    priority: i64,
    displays: Vec<u32>,
    display_count: usize,
    /// First display, its window and zone.
    first: (u32, i64, i64, Tz),
}

/// The overlap sweep of agents.md 6.4.3 over the `enabled` displays (positions in `displays`): per display and
/// priority, the reaching schedules (from `index`, parsed in `parsed` by schedule position; `None` entries are
/// skipped, their verdicts being unexamined) sorted by start date; a sweep keeps those whose end (open = never) is ≥
/// the current start, so only date-overlapping pairs are compared; at most `cap` comparisons per schedule and display
/// (further ones are skipped and the display is capped). O(n log n) per display plus the compared pairs; strings are
/// built only for the pairs found.
pub fn find_overlaps(
    schedules: &[Schedule],
    displays: &[Display],
    enabled: &[u32],
    index: &TargetIndex,
    parsed: &[Option<OverlapSchedule>],
    cap: usize,
) -> OverlapResult {
    let mut r = OverlapResult::default();
    let mut found: FastMap<(u32, u32), PairAcc> = FastMap::default();
    let mut list: Vec<&OverlapSchedule> = Vec::new();
    let mut active: Vec<usize> = Vec::new();
    let mut counts: Vec<usize> = Vec::new();
    let id = |ix: u32| schedules[ix as usize].id.as_bytes();
    for &di in enabled {
        let reach = index.for_display(di);
        if reach.len() < 2 {
            continue;
        }
        let d = &displays[di as usize];
        let (tz, _) = d.tz();
        list.clear();
        list.extend(
            reach
                .iter()
                .filter_map(|&i| parsed.get(i as usize)?.as_ref()),
        );
        list.sort_by(|x, y| (x.priority, x.start, id(x.ix)).cmp(&(y.priority, y.start, id(y.ix))));
        counts.clear();
        counts.resize(list.len(), 0);
        let mut capped = false;
        let mut g0 = 0;
        while g0 < list.len() {
            let prio = list[g0].priority;
            let mut g1 = g0;
            while g1 < list.len() && list[g1].priority == prio {
                g1 += 1;
            }
            active.clear();
            for c in g0..g1 {
                let cur = list[c];
                active.retain(|&t| list[t].end.is_none_or(|e| e >= cur.start));
                for &t in &active {
                    if counts[c] >= cap || counts[t] >= cap {
                        capped = true;
                        continue;
                    }
                    counts[c] += 1;
                    counts[t] += 1;
                    r.comparisons += 1;
                    let other = list[t];
                    let Some((ws, we)) = pair_overlap(cur, other, tz) else {
                        continue;
                    };
                    let (a, b) = if id(cur.ix) <= id(other.ix) {
                        (cur.ix, other.ix)
                    } else {
                        (other.ix, cur.ix)
                    };
                    let p = found.entry((a, b)).or_insert_with(|| PairAcc {
                        a,
                        b,
                        priority: prio,
                        displays: Vec::new(),
                        display_count: 0,
                        first: (di, ws, we, tz),
                    });
                    p.display_count += 1;
                    if p.displays.len() < 5 {
                        p.displays.push(di);
                    }
                }
                active.push(c);
            }
            g0 = g1;
        }
        if capped {
            r.capped_displays.push(d.id.to_string());
            for &i in reach {
                if let Some(Some(p)) = parsed.get(i as usize) {
                    r.capped_schedules
                        .insert(schedules[p.ix as usize].id.to_string());
                }
            }
        }
    }
    for (_, p) in found {
        let (sa, sb) = (&schedules[p.a as usize], &schedules[p.b as usize]);
        let named = |s: &Schedule| {
            (
                s.id.to_string(),
                s.name.as_deref().unwrap_or_default().to_string(),
            )
        };
        let (fd, ws, we, tz) = p.first;
        let pair = OverlapPair {
            key: pair_key(&sa.id, &sb.id),
            a: named(sa),
            b: named(sb),
            priority: p.priority,
            displays: p
                .displays
                .iter()
                .map(|&d| displays[d as usize].label().to_string())
                .collect(),
            display_count: p.display_count,
            window: format!(
                "{} ({}{}, on {})",
                common::describe_window(ws, we),
                tz.name(),
                if displays[fd as usize].tz().1 {
                    " as a fallback: the display's time zone is missing or invalid"
                } else {
                    ""
                },
                displays[fd as usize].label()
            ),
        };
        r.pairs.insert(pair.key.clone(), pair);
    }
    r
}

/// The overlap check of 6.4.3 over the remaining active schedules (positions): parses them (those with an
/// unparseable end or malformed fields are skipped), indexes their targets and sweeps the enabled displays. Returns
/// the result and the positions of schedules whose overlap verdicts are not examined (unparseable fields, a group
/// with unknown membership); the ids of capped schedules are in the result.
pub fn overlaps(
    schedules: &[Schedule],
    displays: &[Display],
    enabled: &[u32],
    remaining: &[usize],
    sets: &EntitySets<'_>,
    cap: usize,
) -> (OverlapResult, Vec<usize>) {
    let index = TargetIndex::build(schedules, remaining.iter().copied(), sets);
    let mut parsed: Vec<Option<OverlapSchedule>> = vec![None; schedules.len()];
    let mut blind = Vec::new();
    for &i in remaining {
        let sch = &schedules[i];
        let p = if sch.end == TsField::Unparseable {
            None
        } else {
            OverlapSchedule::parse(i, sch)
        };
        if p.is_none() {
            blind.push(i);
        }
        parsed[i] = p;
    }
    blind.extend(index.unknown_membership.iter().copied());
    let r = find_overlaps(schedules, displays, enabled, &index, &parsed, cap);
    (r, blind)
}

// ─── 6.4.4 Coverage ─────────────────────────────────────────────────────────────────────────────────────────────────

/// Coverage verdict of a display (agents.md 6.4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// A schedule is active now for it.
    Covered,
    /// No schedule active now.
    Gap,
    /// Cannot be decided (unknown group membership or unparseable fields of a schedule that might apply).
    Unknown,
}

/// Whether a display without `currentPlaylistId` has no schedule active now (agents.md 6.0 "active now for a
/// display", in the display's time zone). `reaching` are the schedules that target it and are still active after
/// this run's deactivations; `maybe_reaching` those of groups with unknown membership. A direct hit decides
/// `Covered` even when membership elsewhere is unknown.
pub fn coverage<'s>(
    display: &Display,
    reaching: impl IntoIterator<Item = &'s Schedule>,
    maybe_reaching: &[&Schedule],
    now: DateTime<Utc>,
) -> Coverage {
    let (tz, _) = display.tz();
    let minute = std::cell::OnceCell::new();
    let m = || *minute.get_or_init(|| common::week_minute(now, tz));
    let mut unknown = false;
    for sch in reaching {
        match common::schedule_active_at_minute(sch, now, m) {
            Some(true) => return Coverage::Covered,
            Some(false) => {}
            None => unknown = true,
        }
    }
    for sch in maybe_reaching {
        if common::schedule_active_at_minute(sch, now, m) != Some(false) {
            unknown = true;
        }
    }
    if unknown {
        Coverage::Unknown
    } else {
        Coverage::Gap
    }
}

/// The coverage verdict of one enabled display without `currentPlaylistId` that needs attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisplayCoverage {
    /// Position in the display list.
    pub display: u32,
    /// Covered now, a gap, or undecidable.
    pub verdict: Coverage,
    /// A deleted-playlist schedule deactivated this run targeted it: it gets the fallback whatever the verdict.
    pub follow_up: bool,
    /// Active schedules (after this run's deactivations) that target it.
    pub reaching: usize,
}

/// 6.4.4 over the enabled displays.
#[derive(Debug, Default)]
pub struct CoverageVerdicts {
    /// Displays without `currentPlaylistId` whose verdict is a gap or unknown, or that are follow-ups, in list order.
    pub displays: Vec<DisplayCoverage>,
    /// Displays without `currentPlaylistId` judged in UTC because their time zone is missing or invalid.
    pub tz_fallbacks: usize,
    /// Displays without `currentPlaylistId` that a schedule covers now (and that are not follow-ups).
    pub covered: usize,
}

/// Coverage of every enabled display without `currentPlaylistId` (agents.md 6.4.4) after this run's deactivations:
/// `inactive_now[i]` says schedule `i` was deactivated (or planned, or found inactive) this run; `follow_up` are the
/// positions of schedules whose deleted-playlist deactivation succeeded (or is planned): the displays they targeted
/// get the fallback too.
pub fn coverage_verdicts(
    schedules: &[Schedule],
    displays: &[Display],
    enabled: &[u32],
    sets: &EntitySets<'_>,
    inactive_now: &[bool],
    follow_up: &[usize],
    now: DateTime<Utc>,
) -> CoverageVerdicts {
    let still_active = (0..schedules.len())
        .filter(|&i| !inactive_now.get(i).copied().unwrap_or(false) && schedules[i].active);
    let cov_index = TargetIndex::build(schedules, still_active, sets);
    let maybe: Vec<&Schedule> = cov_index
        .unknown_membership
        .iter()
        .map(|&i| &schedules[i])
        .collect();
    let follow_index = TargetIndex::build(schedules, follow_up.iter().copied(), sets);
    let mut out = CoverageVerdicts::default();
    for &di in enabled {
        let d = &displays[di as usize];
        if d.current_playlist == CurrentPlaylist::Set {
            continue;
        }
        let reach = cov_index.for_display(di);
        let verdict = coverage(
            d,
            reach.iter().map(|&i| &schedules[i as usize]),
            &maybe,
            now,
        );
        if d.tz.is_none() {
            out.tz_fallbacks += 1;
        }
        let is_follow_up = follow_index.reaches(di);
        if verdict == Coverage::Covered && !is_follow_up {
            out.covered += 1;
            continue;
        }
        out.displays.push(DisplayCoverage {
            display: di,
            verdict,
            follow_up: is_follow_up,
            reaching: reach.len(),
        });
    }
    out
}

/// Whether an id may be put in a request path as is (the shared check of every agent, [`common::path_safe_id`]).
pub use crate::agents::common::path_safe_id;
#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::entities::{FromItem, Records};
    use crate::model::parse_ts;
    use chrono::TimeZone;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        parse_ts(s).unwrap()
    }

    fn sched(
        id: &str,
        prio: i64,
        start: &str,
        end: Option<&str>,
        days: &[i64],
        st: Option<i64>,
        et: Option<i64>,
    ) -> Value {
        json!({"id": id, "name": format!("S {id}"), "priority": prio, "isActive": true, "startDate": start,
               "endDate": end, "daysOfWeek": days, "startTime": st, "endTime": et, "playlistId": "p1",
               "displayId": "d1", "displayGroupId": null})
    }

    fn parsed(v: &Value) -> OverlapSchedule {
        OverlapSchedule::parse(0, &Schedule::from_item(v)).unwrap()
    }

    fn records<T: FromItem>(v: &[Value]) -> Vec<T> {
        Records::from_values(v)
    }

    fn fb(org: Option<&Value>, pl: &[Value], env: Option<&str>) -> (Fallback, Vec<String>) {
        resolve_fallback(org, &records::<PlaylistSummary>(pl), env)
    }

    fn chk(v: &Value, now: DateTime<Utc>, sets: Option<&EntitySets>) -> ActiveVerdict {
        check_active(&Schedule::from_item(v), now, sets)
    }

    fn cov(d: &Value, reaching: &[&Value], maybe: &[&Value], now: DateTime<Utc>) -> Coverage {
        let r: Vec<Schedule> = reaching.iter().map(|v| Schedule::from_item(v)).collect();
        let m: Vec<Schedule> = maybe.iter().map(|v| Schedule::from_item(v)).collect();
        let m: Vec<&Schedule> = m.iter().collect();
        coverage(&Display::from_item(d), &r, &m, now)
    }

    const ALL: &[i64] = &[0, 1, 2, 3, 4, 5, 6];

    // ── fallback ──

    fn playlists() -> Vec<Value> {
        vec![
            json!({"id":"pA","name":"Evergreen","itemCount":4,"isDefault":false,"updatedAt":"2026-08-01T00:00:00Z"}),
            json!({"id":"pE","name":"Empty","itemCount":0,"isDefault":false}),
            json!({"id":"pD1","name":"Old default","itemCount":2,"isDefault":true,"updatedAt":"2026-01-01T00:00:00Z"}),
            json!({"id":"pD2","name":"New default","itemCount":2,"isDefault":true,"updatedAt":"2026-06-01T00:00:00Z"}),
            json!({"id":"pN","name":"No count"}),
        ]
    }

    #[test]
    fn fallback_prefers_org_setting_then_latest_default_then_env() {
        let pl = playlists();
        let org = json!({"id":"o","settings":{"opsFallbackPlaylistId":"pA"}});
        let (f, w) = fb(Some(&org), &pl, Some("pE"));
        assert_eq!(
            f,
            Fallback::Valid {
                id: "pA".into(),
                name: "Evergreen".into(),
                source: FallbackSource::OrgSettings
            }
        );
        assert!(w.is_empty());
        let org = json!({"id":"o","settings":{}});
        let (f, w) = fb(Some(&org), &pl, Some("pA"));
        assert!(
            matches!(f, Fallback::Valid{ref id, source: FallbackSource::DefaultPlaylist, ..} if id == "pD2")
        );
        assert_eq!(w.len(), 1, "several defaults warn");
        let no_defaults: Vec<Value> = pl
            .iter()
            .filter(|p| p["isDefault"] != true)
            .cloned()
            .collect();
        let (f, _) = fb(Some(&json!({"settings":null})), &no_defaults, Some("pA"));
        assert!(matches!(
            f,
            Fallback::Valid {
                source: FallbackSource::Env,
                ..
            }
        ));
        let (f, _) = fb(Some(&json!({})), &no_defaults, None);
        assert_eq!(f, Fallback::Unconfigured);
    }

    #[test]
    fn fallback_missing_empty_malformed_or_unreadable_is_invalid_or_unknown() {
        let pl = playlists();
        let missing = json!({"settings":{"opsFallbackPlaylistId":"gone"}});
        assert!(
            matches!(fb(Some(&missing), &pl, None).0, Fallback::Invalid{ref id, ..} if id == "gone")
        );
        let empty = json!({"settings":{"opsFallbackPlaylistId":"pE"}});
        assert!(
            matches!(fb(Some(&empty), &pl, Some("pA")).0, Fallback::Invalid{ref reason, ..} if reason.contains("0 items"))
        );
        let bad = json!({"settings":{"opsFallbackPlaylistId":17}});
        assert!(matches!(
            fb(Some(&bad), &pl, None).0,
            Fallback::Invalid { .. }
        ));
        let nocount = json!({"settings":{"opsFallbackPlaylistId":"pN"}});
        assert!(matches!(
            fb(Some(&nocount), &pl, None).0,
            Fallback::Unknown(_)
        ));
        assert!(matches!(fb(None, &pl, Some("pA")).0, Fallback::Unknown(_)));
    }

    // ── 6.4.2 ──

    #[test]
    fn first_matching_check_decides_and_disabled_display_is_a_target() {
        let pl = records(&[json!({"id":"p1"})]);
        let ds = records(&[json!({"id":"d1","isDisabled":true})]);
        let gs = records(&[json!({"id":"g1","displays":[]})]);
        let sets = EntitySets::new(&pl, &ds, &gs);
        let now = at("2026-08-26T12:00:00Z");
        let mut s1 = sched(
            "a",
            0,
            "2026-01-01T00:00:00Z",
            Some("2026-08-01T00:00:00Z"),
            ALL,
            None,
            None,
        );
        s1["playlistId"] = json!("gone");
        s1["displayId"] = json!("nope");
        assert_eq!(chk(&s1, now, Some(&sets)).kind_str(), "past_end_schedule");
        s1["endDate"] = Value::Null;
        assert_eq!(
            chk(&s1, now, Some(&sets)).kind_str(),
            "deleted_playlist_schedule"
        );
        s1["playlistId"] = json!("p1");
        assert_eq!(chk(&s1, now, Some(&sets)).kind_str(), "no_target_schedule");
        s1["displayId"] = json!("d1");
        assert_eq!(
            chk(&s1, now, Some(&sets)),
            ActiveVerdict::Healthy { end_known: true },
            "a disabled but existing display is a target"
        );
        s1["displayId"] = Value::Null;
        s1["displayGroupId"] = json!("g1");
        assert_eq!(
            chk(&s1, now, Some(&sets)),
            ActiveVerdict::Healthy { end_known: true }
        );
        s1["displayGroupId"] = json!("g-missing");
        assert_eq!(chk(&s1, now, Some(&sets)).kind_str(), "no_target_schedule");
        s1["displayGroupId"] = Value::Null;
        assert_eq!(chk(&s1, now, Some(&sets)).kind_str(), "no_target_schedule");
        s1["isActive"] = json!(false);
        assert_eq!(chk(&s1, now, Some(&sets)), ActiveVerdict::Inactive);
    }

    #[test]
    fn incomplete_scan_runs_only_check_one_and_unparseable_end_is_unknown() {
        let now = at("2026-08-26T12:00:00Z");
        let mut s1 = sched(
            "a",
            0,
            "2026-01-01T00:00:00Z",
            Some("2026-08-26T11:59:59Z"),
            ALL,
            None,
            None,
        );
        s1["playlistId"] = json!("gone");
        assert_eq!(chk(&s1, now, None).kind_str(), "past_end_schedule");
        s1["endDate"] = json!("2026-08-26T12:00:00Z");
        assert_eq!(
            chk(&s1, now, None),
            ActiveVerdict::Healthy { end_known: true },
            "end == now is not past"
        );
        s1["endDate"] = json!("next tuesday");
        assert_eq!(
            chk(&s1, now, None),
            ActiveVerdict::Healthy { end_known: false }
        );
    }

    impl ActiveVerdict {
        fn kind_str(&self) -> &'static str {
            match self {
                ActiveVerdict::Fault(f) => f.kind(),
                ActiveVerdict::Inactive => "inactive",
                ActiveVerdict::Healthy { .. } => "healthy",
                ActiveVerdict::RefsUnknown(_) => "refs unknown",
            }
        }
    }

    #[test]
    fn item_count_comes_from_the_walk_then_the_embedded_count_else_unknown() {
        let pl = |v: Value| PlaylistSummary::from_item(&v);
        let sc = |v: &Value| Schedule::from_item(v);
        let sch = json!({"playlist":{"_count":{"items":3}}});
        assert_eq!(
            playlist_item_count(Some(&pl(json!({"itemCount":0}))), &sc(&sch)),
            Some(0)
        );
        assert_eq!(
            playlist_item_count(Some(&pl(json!({"items":[]}))), &sc(&sch)),
            Some(3)
        );
        assert_eq!(
            playlist_item_count(None, &sc(&json!({"playlist":{"_count":{"schedules":1}}}))),
            None
        );
    }

    // ── overlaps ──

    #[test]
    fn wrap_around_night_window_overlaps_the_early_morning_slot() {
        let night = parsed(&sched(
            "n",
            40,
            "2026-07-12T00:00:00Z",
            None,
            ALL,
            Some(1260),
            Some(360),
        ));
        let early = parsed(&sched(
            "e",
            40,
            "2026-08-12T00:00:00Z",
            None,
            &[1, 2, 3, 4, 5],
            Some(330),
            Some(480),
        ));
        let w = pair_overlap(&night, &early, chrono_tz::UTC).unwrap();
        assert_eq!(w, (1440 + 330, 1440 + 360), "Monday 05:30–06:00");
        let late = parsed(&sched(
            "l",
            40,
            "2026-08-12T00:00:00Z",
            None,
            &[1],
            Some(360),
            Some(480),
        ));
        assert_eq!(
            pair_overlap(&night, &late, chrono_tz::UTC),
            None,
            "end is exclusive"
        );
    }

    #[test]
    fn saturday_night_window_meets_sunday_morning_through_the_week_shift() {
        let sat = parsed(&sched(
            "a",
            1,
            "2026-01-01T00:00:00Z",
            None,
            &[6],
            Some(1380),
            Some(120),
        ));
        let sun = parsed(&sched(
            "b",
            1,
            "2026-01-01T00:00:00Z",
            None,
            &[0],
            Some(60),
            Some(90),
        ));
        assert_eq!(pair_overlap(&sat, &sun, chrono_tz::UTC), Some((60, 90)));
        let mon = parsed(&sched(
            "c",
            1,
            "2026-01-01T00:00:00Z",
            None,
            &[1],
            Some(60),
            Some(90),
        ));
        assert_eq!(pair_overlap(&sat, &mon, chrono_tz::UTC), None);
    }

    #[test]
    fn adjacent_windows_and_disjoint_dates_do_not_overlap() {
        let a = parsed(&sched(
            "a",
            1,
            "2026-09-01T00:00:00Z",
            Some("2026-10-01T23:59:00Z"),
            ALL,
            None,
            None,
        ));
        let b = parsed(&sched(
            "b",
            1,
            "2026-10-05T00:00:00Z",
            Some("2026-10-19T23:59:00Z"),
            ALL,
            None,
            None,
        ));
        assert_eq!(pair_overlap(&a, &b, chrono_tz::UTC), None);
        let x = parsed(&sched(
            "x",
            1,
            "2026-01-01T00:00:00Z",
            None,
            ALL,
            Some(420),
            Some(630),
        ));
        let y = parsed(&sched(
            "y",
            1,
            "2026-01-01T00:00:00Z",
            None,
            ALL,
            Some(630),
            Some(900),
        ));
        assert_eq!(pair_overlap(&x, &y, chrono_tz::UTC), None);
        let z = parsed(&sched(
            "z",
            1,
            "2026-01-01T00:00:00Z",
            None,
            &[],
            None,
            None,
        ));
        assert_eq!(
            pair_overlap(&x, &z, chrono_tz::UTC),
            None,
            "empty daysOfWeek never plays"
        );
    }

    #[test]
    fn short_date_intersection_counts_only_its_local_weekdays() {
        // Dates intersect Thu 2026-08-27 .. Fri 2026-08-28 only; both run whole days but on different weekdays sets.
        let a = parsed(&sched(
            "a",
            1,
            "2026-08-27T00:00:00Z",
            Some("2026-08-28T23:59:00Z"),
            ALL,
            None,
            None,
        ));
        let sat = parsed(&sched(
            "b",
            1,
            "2026-08-01T00:00:00Z",
            None,
            &[6],
            None,
            None,
        ));
        assert_eq!(
            pair_overlap(&a, &sat, chrono_tz::UTC),
            None,
            "no Saturday inside Thu–Fri"
        );
        let fri = parsed(&sched(
            "c",
            1,
            "2026-08-01T00:00:00Z",
            None,
            &[5],
            Some(600),
            Some(660),
        ));
        assert_eq!(
            pair_overlap(&a, &fri, chrono_tz::UTC),
            Some((5 * 1440 + 600, 5 * 1440 + 660))
        );
        // A week or longer: every weekday counts.
        let long = parsed(&sched(
            "d",
            1,
            "2026-08-27T00:00:00Z",
            Some("2026-09-03T00:00:00Z"),
            ALL,
            None,
            None,
        ));
        assert!(pair_overlap(&long, &sat, chrono_tz::UTC).is_some());
    }

    #[test]
    fn short_date_intersection_uses_the_display_time_zone() {
        // 2026-08-29T23:30Z is Saturday 23:30 in UTC but Sunday 00:30 in London (BST); the range ends Sunday.
        let a = parsed(&sched(
            "a",
            1,
            "2026-08-29T23:30:00Z",
            Some("2026-08-30T20:00:00Z"),
            ALL,
            None,
            None,
        ));
        let sat = parsed(&sched(
            "b",
            1,
            "2026-08-01T00:00:00Z",
            None,
            &[6],
            None,
            None,
        ));
        assert!(
            pair_overlap(&a, &sat, chrono_tz::UTC).is_some(),
            "UTC dates include Saturday"
        );
        assert_eq!(
            pair_overlap(&a, &sat, chrono_tz::Europe::London),
            None,
            "London dates are Sunday only"
        );
    }

    #[test]
    fn clip_keeps_the_in_range_part_of_a_window_crossing_midnight() {
        let iv = vec![(6 * 1440 + 1320, 7 * 1440 + 120)]; // Sat 22:00 – Sun 02:00
        let sun = 1u8;
        assert_eq!(clip_to_days(&iv, sun), vec![(7 * 1440, 7 * 1440 + 120)]);
        let both = 1u8 | 1 << 6;
        assert_eq!(clip_to_days(&iv, both), iv);
        let mon_tue = vec![(1440 + 600, 1440 + 700), (2 * 1440 + 600, 2 * 1440 + 700)];
        assert_eq!(
            clip_to_days(&mon_tue, 1 << 2),
            vec![(2 * 1440 + 600, 2 * 1440 + 700)],
            "other weekdays are dropped"
        );
    }

    fn display(id: &str, tz: &str, disabled: bool) -> Value {
        json!({"id": id, "nickname": format!("Screen {id}"), "timezone": tz, "isDisabled": disabled,
               "currentPlaylistId": null})
    }

    fn run_overlaps(
        scheds: &[Value],
        displays: &[Value],
        groups: &[Value],
        cap: usize,
    ) -> OverlapResult {
        let scheds: Vec<Schedule> = records(scheds);
        let displays: Vec<Display> = records(displays);
        let groups: Vec<DisplayGroup> = records(groups);
        let sets = EntitySets::new(&[], &displays, &groups);
        let idx = TargetIndex::build(&scheds, 0..scheds.len(), &sets);
        let parsed: Vec<Option<OverlapSchedule>> = scheds
            .iter()
            .enumerate()
            .map(|(i, s)| OverlapSchedule::parse(i, s))
            .collect();
        let enabled: Vec<u32> = (0..displays.len() as u32)
            .filter(|&i| displays[i as usize].enabled)
            .collect();
        find_overlaps(&scheds, &displays, &enabled, &idx, &parsed, cap)
    }

    #[test]
    fn equal_priority_overlaps_are_reported_once_across_displays_and_different_priorities_never() {
        let mut g1 = sched(
            "zz",
            20,
            "2026-08-01T00:00:00Z",
            None,
            ALL,
            Some(480),
            Some(1200),
        );
        g1["displayId"] = Value::Null;
        g1["displayGroupId"] = json!("g");
        let mut g2 = sched(
            "aa",
            20,
            "2026-08-10T00:00:00Z",
            Some("2026-09-20T00:00:00Z"),
            &[6],
            Some(540),
            Some(1080),
        );
        g2["displayId"] = Value::Null;
        g2["displayGroupId"] = json!("g");
        let other_prio = sched("mm", 21, "2026-08-01T00:00:00Z", None, ALL, None, None);
        let groups = vec![
            json!({"id":"g","displays":[{"displayId":"d1"},{"displayId":"d2"},{"displayId":"d3"}]}),
        ];
        let displays = vec![
            display("d1", "UTC", false),
            display("d2", "Europe/London", false),
            display("d3", "UTC", true),
        ];
        let (c1, c2) = (g1.clone(), g2.clone());
        let r = run_overlaps(&[g1, g2, other_prio], &displays, &groups, 50);
        assert_eq!(r.pairs.len(), 1);
        let p = r.pairs.get("aa+zz").expect("key in ascending byte order");
        assert_eq!(p.display_count, 2, "the disabled display is excluded");
        assert_eq!(p.priority, 20);
        let m = p.message();
        assert!(
            m.contains("\"S aa\" (aa)") && m.contains("\"S zz\" (zz)") && m.contains("priority 20"),
            "{m}"
        );
        assert!(m.contains("Sat 09:00–18:00"), "{m}");
        assert!(m.contains("Screen d1") && !m.contains("Screen d3"), "{m}");
        assert!(
            m.contains("(UTC, on Screen d1)"),
            "a real UTC zone is not a fallback: {m}"
        );
        // A display without a valid time zone is judged in UTC, and the message says so.
        let displays = vec![display("d1", "Not/AZone", false)];
        let r = run_overlaps(&[c1, c2], &displays, &groups, 50);
        let m = r.pairs.get("aa+zz").expect("pair").message();
        assert!(
            m.contains(
                "(UTC as a fallback: the display's time zone is missing or invalid, on Screen d1)"
            ),
            "{m}"
        );
    }

    #[test]
    fn overlap_cap_marks_the_display_and_its_schedules() {
        let scheds: Vec<Value> = (0..5)
            .map(|i| {
                sched(
                    &format!("s{i}"),
                    1,
                    "2026-08-01T00:00:00Z",
                    None,
                    ALL,
                    None,
                    None,
                )
            })
            .collect();
        let displays = vec![display("d1", "UTC", false)];
        let full = run_overlaps(&scheds, &displays, &[], 50);
        assert_eq!(full.pairs.len(), 10);
        assert!(full.capped_displays.is_empty());
        let capped = run_overlaps(&scheds, &displays, &[], 2);
        assert!(capped.pairs.len() < 10);
        assert_eq!(capped.capped_displays, vec!["d1".to_string()]);
        assert_eq!(capped.capped_schedules.len(), 5);
        assert!(capped.comparisons <= 5);
    }

    #[test]
    fn sweep_only_compares_date_overlapping_schedules() {
        let scheds: Vec<Value> = (0..20)
            .map(|i| {
                let start =
                    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(10 * i);
                let end = start + Duration::days(5);
                sched(
                    &format!("s{i:02}"),
                    1,
                    &crate::model::ts(start),
                    Some(&crate::model::ts(end)),
                    ALL,
                    None,
                    None,
                )
            })
            .collect();
        let r = run_overlaps(&scheds, &[display("d1", "UTC", false)], &[], 50);
        assert_eq!(r.comparisons, 0);
        assert!(r.pairs.is_empty());
    }

    #[test]
    fn unknown_group_membership_is_kept_apart() {
        let mut g = sched("g1s", 1, "2026-01-01T00:00:00Z", None, ALL, None, None);
        g["displayId"] = Value::Null;
        g["displayGroupId"] = json!("gx");
        let direct = sched("d1s", 1, "2026-01-01T00:00:00Z", None, ALL, None, None);
        let scheds = vec![g, direct];
        let recs: Vec<Schedule> = records(&scheds);
        let groups: Vec<DisplayGroup> = records(&[json!({"id":"gx","name":"no members array"})]);
        let d = display("d1", "UTC", false);
        let displays: Vec<Display> = records(std::slice::from_ref(&d));
        let sets = EntitySets::new(&[], &displays, &groups);
        let idx = TargetIndex::build(&recs, 0..2, &sets);
        assert_eq!(idx.unknown_membership, vec![0]);
        assert_eq!(idx.for_display(0), &[1]);
        let now = at("2026-08-26T12:00:00Z");
        assert_eq!(
            cov(&d, &[], &[&scheds[0]], now),
            Coverage::Unknown,
            "not examined"
        );
        assert_eq!(
            cov(&d, &[&scheds[1]], &[&scheds[0]], now),
            Coverage::Covered,
            "direct coverage decides"
        );
    }

    // ── coverage ──

    #[test]
    fn coverage_is_judged_in_the_display_time_zone() {
        // 2026-08-26T23:30Z: Wednesday 23:30 UTC, Thursday 00:30 in London.
        let now = at("2026-08-26T23:30:00Z");
        let thu = sched("t", 0, "2026-01-01T00:00:00Z", None, &[4], None, None);
        assert_eq!(
            cov(&display("d1", "Europe/London", false), &[&thu], &[], now),
            Coverage::Covered
        );
        assert_eq!(
            cov(&display("d1", "UTC", false), &[&thu], &[], now),
            Coverage::Gap
        );
        assert_eq!(
            cov(&display("d1", "Not/AZone", false), &[&thu], &[], now),
            Coverage::Gap,
            "an invalid zone falls back to UTC"
        );
        let mut ended = sched(
            "e",
            0,
            "2026-01-01T00:00:00Z",
            Some("2026-08-01T00:00:00Z"),
            ALL,
            None,
            None,
        );
        assert_eq!(
            cov(&display("d1", "UTC", false), &[&ended], &[], now),
            Coverage::Gap
        );
        ended["endDate"] = json!("garbage");
        assert_eq!(
            cov(&display("d1", "UTC", false), &[&ended], &[], now),
            Coverage::Unknown
        );
    }

    #[test]
    fn overnight_schedule_covers_early_morning_of_the_next_day() {
        // Monday 02:00 UTC; the window is Sunday 22:00 → Monday 06:00.
        let now = at("2026-08-24T02:00:00Z");
        let night = sched(
            "n",
            0,
            "2026-01-01T00:00:00Z",
            None,
            &[0],
            Some(1320),
            Some(360),
        );
        assert_eq!(
            cov(&display("d1", "UTC", false), &[&night], &[], now),
            Coverage::Covered
        );
        let night_sat = sched(
            "n",
            0,
            "2026-01-01T00:00:00Z",
            None,
            &[6],
            Some(1320),
            Some(360),
        );
        // Sunday 03:00 UTC: Saturday's overnight window wraps into Sunday (week shift).
        assert_eq!(
            cov(
                &display("d1", "UTC", false),
                &[&night_sat],
                &[],
                at("2026-08-23T03:00:00Z")
            ),
            Coverage::Covered
        );
    }

    #[test]
    fn check_schedules_partitions_faults_healthy_and_unknown_ends() {
        let now = at("2026-08-26T12:00:00Z");
        let mut past = sched(
            "a",
            0,
            "2026-01-01T00:00:00Z",
            Some("2026-08-01T00:00:00Z"),
            ALL,
            None,
            None,
        );
        past["playlistId"] = json!("gone");
        let ok = sched("b", 0, "2026-01-01T00:00:00Z", None, ALL, None, None);
        let odd_end = sched(
            "c",
            0,
            "2026-01-01T00:00:00Z",
            Some("someday"),
            ALL,
            None,
            None,
        );
        let mut inactive = sched(
            "d",
            0,
            "2026-01-01T00:00:00Z",
            Some("2026-08-01T00:00:00Z"),
            ALL,
            None,
            None,
        );
        inactive["isActive"] = json!(false);
        let mut orphan = sched("e", 0, "2026-01-01T00:00:00Z", None, ALL, None, None);
        orphan["playlistId"] = json!("gone");
        let scheds: Vec<Schedule> = records(&[past, ok, odd_end, inactive, orphan]);
        let pl: Vec<PlaylistSummary> = records(&[json!({"id":"p1","itemCount":1})]);
        let ds: Vec<Display> = records(&[display("d1", "UTC", false)]);
        let sets = EntitySets::new(&pl, &ds, &[]);
        let c = check_schedules(&scheds, now, Some(&sets));
        let kinds: Vec<(usize, &str)> = c.faults.iter().map(|(i, f)| (*i, f.kind())).collect();
        assert_eq!(
            kinds,
            vec![(0, "past_end_schedule"), (4, "deleted_playlist_schedule")]
        );
        assert_eq!(c.remaining, vec![1, 2]);
        assert_eq!(c.end_unknown, vec![2]);
        assert_eq!(c.active, 4);
        let partial = check_schedules(&scheds, now, None);
        assert_eq!(
            partial.faults.len(),
            1,
            "an incomplete scan runs check 1 only"
        );
    }

    #[test]
    fn coverage_verdicts_follow_this_runs_deactivations_and_flag_follow_ups() {
        let now = at("2026-08-26T12:00:00Z");
        let mut covering = sched("s1", 0, "2026-01-01T00:00:00Z", None, ALL, None, None);
        covering["displayId"] = json!("d1");
        let mut deleted = sched("s2", 0, "2026-01-01T00:00:00Z", None, ALL, None, None);
        deleted["displayId"] = json!("d2");
        let mut unknown = sched("s3", 0, "2026-01-01T00:00:00Z", None, ALL, None, None);
        unknown["displayId"] = Value::Null;
        unknown["displayGroupId"] = json!("gx");
        let scheds: Vec<Schedule> = records(&[covering, deleted, unknown]);
        let mut with_playlist = display("d4", "UTC", false);
        with_playlist["currentPlaylistId"] = json!("p1");
        let ds: Vec<Display> = records(&[
            display("d1", "UTC", false),
            display("d2", "UTC", false),
            display("d3", "Not/AZone", false),
            with_playlist,
        ]);
        let gs: Vec<DisplayGroup> = records(&[json!({"id":"gx"})]);
        let sets = EntitySets::new(&[], &ds, &gs);
        let enabled = [0u32, 1, 2, 3];
        // Nothing deactivated: the unknown-membership group may reach every display.
        let v = coverage_verdicts(&scheds, &ds, &enabled, &sets, &[false; 3], &[], now);
        assert_eq!(v.covered, 2, "d1 and d2 are covered directly");
        assert_eq!(
            v.displays,
            vec![DisplayCoverage {
                display: 2,
                verdict: Coverage::Unknown,
                follow_up: false,
                reaching: 0
            }]
        );
        assert_eq!(v.tz_fallbacks, 1);
        // s2 (deleted playlist) and s3 deactivated this run: d2 is a gap and a follow-up, d3 a gap.
        let v = coverage_verdicts(
            &scheds,
            &ds,
            &enabled,
            &sets,
            &[false, true, true],
            &[1],
            now,
        );
        let got: Vec<(u32, Coverage, bool)> = v
            .displays
            .iter()
            .map(|d| (d.display, d.verdict, d.follow_up))
            .collect();
        assert_eq!(
            got,
            vec![(1, Coverage::Gap, true), (2, Coverage::Gap, false)],
            "a display with a current playlist is never judged"
        );
        assert_eq!(v.covered, 1);
    }

    #[test]
    fn path_ids_are_restricted_to_id_characters() {
        assert!(path_safe_id("cmt4zn6gwa6tjfh7kssxmv3bn"));
        assert!(path_safe_id("26f7c3c8-a5b3-4893-a4bd-39c4d4e1127e"));
        assert!(!path_safe_id("../admin"));
        assert!(!path_safe_id("a?b=1"));
        assert!(!path_safe_id(""));
    }
}
