//! Pure detection rules of schedule-doctor (agents.md 6.4), over API JSON: fallback playlist resolution (6.4.1), the
//! first-match checks of active schedules (6.4.2), playlist item counts and equal-priority overlaps (6.4.3) and the
//! coverage verdict of a display (6.4.4). No I/O and no clock: `now` is always passed in (the run's start).
//!
//! Time model (agents.md 6.0): weekly minute intervals from [`common::weekly_intervals`] in the display's IANA time
//! zone, intersected under week shifts −1/0/+1 by [`common::first_intersection`].

use crate::agents::common::{self, display_label, display_tz, id_of, s};
use crate::model::parse_ts;
use chrono::{DateTime, Datelike, Duration, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

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
        id: String,
        source: FallbackSource,
        reason: String,
    },
    /// Usable: in the playlist set with `itemCount` > 0.
    Valid {
        id: String,
        name: String,
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
    playlists: &[Value],
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
        let org_id = s(org, "id");
        let mut defaults: Vec<&Value> = playlists
            .iter()
            .filter(|p| p.get("isDefault").and_then(Value::as_bool) == Some(true))
            .filter(|p| match (org_id, s(p, "organizationId")) {
                (Some(o), Some(po)) => o == po,
                _ => true,
            })
            .collect();
        if defaults.len() > 1 {
            warnings.push(format!(
                "{} playlists are marked isDefault; using the most recently updated one",
                defaults.len()
            ));
        }
        defaults.sort_by_key(|p| s(p, "updatedAt").and_then(parse_ts));
        defaults
            .last()
            .map(|p| (id_of(p), FallbackSource::DefaultPlaylist))
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
    let Some(p) = playlists.iter().find(|p| id_of(p) == id) else {
        return (
            Fallback::Invalid {
                reason: format!("playlist {id} does not exist in the organization"),
                id,
                source,
            },
            warnings,
        );
    };
    let name = s(p, "name").unwrap_or(&id).to_string();
    match p.get("itemCount").and_then(Value::as_u64) {
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

// ─── 6.4.2 Active schedules ─────────────────────────────────────────────────────────────────────────────────────────

/// The entity sets the existence checks read: the playlist set, the **unfiltered** display set (a disabled display is
/// a target, agents.md 9.30) and the group set.
#[derive(Debug, Default)]
pub struct EntitySets<'a> {
    pub playlists: HashSet<&'a str>,
    pub displays: HashSet<&'a str>,
    pub groups: HashSet<&'a str>,
}

impl<'a> EntitySets<'a> {
    /// Ids of the three lists (items without a string `id` are skipped).
    pub fn new(playlists: &'a [Value], displays: &'a [Value], groups: &'a [Value]) -> Self {
        let ids = |v: &'a [Value]| {
            v.iter()
                .filter_map(|x| x.get("id").and_then(Value::as_str))
                .collect()
        };
        EntitySets {
            playlists: ids(playlists),
            displays: ids(displays),
            groups: ids(groups),
        }
    }
}

/// The first matching fault of an active schedule (agents.md 6.4.2): each ends in one deactivation and one incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActiveFault {
    /// Check 1: `endDate` < now (the end date as written).
    PastEnd { end: String },
    /// Check 2: `playlistId` not in the playlist set (`None` = no playlist id at all).
    DeletedPlaylist { playlist_id: Option<String> },
    /// Check 3: no target, or the named display/group does not exist (`reason` says which).
    NoTarget { reason: String },
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
            ActiveFault::NoTarget { reason } => reason.clone(),
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
    Healthy { end_known: bool },
}

/// The `endDate` of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndDate {
    /// Null or missing: open-ended.
    Open,
    /// A parsed instant.
    At(DateTime<Utc>),
    /// Present but not an RFC 3339 string: unknown (agents.md 9.18).
    Unparseable,
}

impl EndDate {
    /// `Some(Some(t))` for an instant, `Some(None)` when open-ended, `None` when unparseable.
    pub fn known(self) -> Option<Option<DateTime<Utc>>> {
        match self {
            EndDate::Open => Some(None),
            EndDate::At(t) => Some(Some(t)),
            EndDate::Unparseable => None,
        }
    }
}

/// Reads the `endDate` of a schedule.
pub fn end_date(sch: &Value) -> EndDate {
    match sch.get("endDate") {
        None | Some(Value::Null) => EndDate::Open,
        Some(Value::String(e)) => parse_ts(e).map_or(EndDate::Unparseable, EndDate::At),
        Some(_) => EndDate::Unparseable,
    }
}

/// Checks 1–3 of agents.md 6.4.2 in order, first match decides. `sets` is `None` when the scan is incomplete: then
/// only check 1 runs (relational checks need complete lists, 6.0). An unparseable `endDate` skips check 1 only.
pub fn check_active(sch: &Value, now: DateTime<Utc>, sets: Option<&EntitySets>) -> ActiveVerdict {
    if sch.get("isActive").and_then(Value::as_bool) != Some(true) {
        return ActiveVerdict::Inactive;
    }
    let end = end_date(sch);
    if let EndDate::At(e) = end
        && e < now
    {
        return ActiveVerdict::Fault(ActiveFault::PastEnd {
            end: s(sch, "endDate").unwrap_or_default().to_string(),
        });
    }
    let end_known = end != EndDate::Unparseable;
    let Some(sets) = sets else {
        return ActiveVerdict::Healthy { end_known };
    };
    let playlist = s(sch, "playlistId").filter(|p| !p.is_empty());
    if !playlist.is_some_and(|p| sets.playlists.contains(p)) {
        return ActiveVerdict::Fault(ActiveFault::DeletedPlaylist {
            playlist_id: playlist.map(String::from),
        });
    }
    let display = s(sch, "displayId").filter(|p| !p.is_empty());
    let group = s(sch, "displayGroupId").filter(|p| !p.is_empty());
    let reason = match (display, group) {
        (None, None) => Some("it has neither a displayId nor a displayGroupId".to_string()),
        (Some(d), _) if !sets.displays.contains(d) => {
            Some(format!("its display {d} does not exist"))
        }
        (_, Some(g)) if !sets.groups.contains(g) => {
            Some(format!("its display group {g} does not exist"))
        }
        _ => None,
    };
    match reason {
        Some(reason) => ActiveVerdict::Fault(ActiveFault::NoTarget { reason }),
        None => ActiveVerdict::Healthy { end_known },
    }
}

// ─── 6.4.3 Empty playlists ──────────────────────────────────────────────────────────────────────────────────────────

/// The item count of a schedule's playlist (agents.md 6.4.3, 9.18): the walk's `itemCount`, else the schedule's
/// embedded `playlist._count.items`, else `None` (not examined).
pub fn playlist_item_count(walk_playlist: Option<&Value>, sch: &Value) -> Option<u64> {
    walk_playlist
        .and_then(|p| p.get("itemCount"))
        .and_then(Value::as_u64)
        .or_else(|| {
            sch.get("playlist")
                .and_then(|p| p.get("_count"))
                .and_then(|c| c.get("items"))
                .and_then(Value::as_u64)
        })
}

// ─── Targeting ──────────────────────────────────────────────────────────────────────────────────────────────────────

/// Which schedules reach which display (agents.md 6.0 "targets a display"), built in one pass over the schedules
/// (O(schedules + memberships)) instead of testing every pair.
#[derive(Debug, Default)]
pub struct TargetIndex {
    /// display id → indices of the schedules reaching it (directly or through a group with known members).
    pub by_display: HashMap<String, Vec<usize>>,
    /// Indices of schedules whose group has unknown membership (no `displays` array): they may reach any display.
    pub unknown_membership: Vec<usize>,
}

impl TargetIndex {
    /// Indexes the schedules `idx` of `schedules` against `members` ([`common::group_members`]). Groups missing from
    /// `members` reach nobody.
    pub fn build(
        schedules: &[Value],
        idx: impl IntoIterator<Item = usize>,
        members: &HashMap<String, Option<HashSet<String>>>,
    ) -> TargetIndex {
        let mut t = TargetIndex::default();
        for i in idx {
            let sch = &schedules[i];
            let mut reached: Vec<&str> = Vec::new();
            if let Some(d) = s(sch, "displayId").filter(|d| !d.is_empty()) {
                reached.push(d);
            }
            if let Some(g) = s(sch, "displayGroupId").filter(|g| !g.is_empty()) {
                match members.get(g) {
                    Some(Some(m)) => reached.extend(m.iter().map(String::as_str)),
                    Some(None) => t.unknown_membership.push(i),
                    None => {}
                }
            }
            reached.sort_unstable();
            reached.dedup();
            for d in reached {
                t.by_display.entry(d.to_string()).or_default().push(i);
            }
        }
        t
    }

    /// Schedules reaching `display_id` (empty when none).
    pub fn for_display(&self, display_id: &str) -> &[usize] {
        self.by_display
            .get(display_id)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

// ─── 6.4.3 Overlaps ─────────────────────────────────────────────────────────────────────────────────────────────────

/// The fields of a schedule the overlap check reads, parsed once.
#[derive(Debug, Clone)]
pub struct OverlapSchedule {
    pub id: String,
    pub name: String,
    pub priority: i64,
    pub start: DateTime<Utc>,
    /// `None` = open-ended.
    pub end: Option<DateTime<Utc>>,
    /// Weekly intervals (sorted, local minutes of the week).
    pub intervals: Vec<(i64, i64)>,
}

impl OverlapSchedule {
    /// Parses a schedule; `None` when `startDate`, `endDate`, `priority` or the time fields are malformed (its
    /// overlap verdicts are then not examined). A missing or null `priority` is the API default 0.
    pub fn parse(sch: &Value) -> Option<OverlapSchedule> {
        let priority = match sch.get("priority") {
            None | Some(Value::Null) => 0,
            Some(p) => p.as_i64()?,
        };
        Some(OverlapSchedule {
            id: id_of(sch),
            name: s(sch, "name").unwrap_or_default().to_string(),
            priority,
            start: parse_ts(s(sch, "startDate")?)?,
            end: end_date(sch).known()?,
            intervals: common::weekly_intervals(sch)?,
        })
    }
}

/// The local weekdays (0 = Sunday) of the dates from `lo` to `hi` in `tz`, when that span is shorter than 7 days;
/// `None` when it spans 7 days or more (every weekday counts).
pub fn local_weekdays(lo: DateTime<Utc>, hi: DateTime<Utc>, tz: Tz) -> Option<HashSet<i64>> {
    if hi - lo >= Duration::days(7) {
        return None;
    }
    let mut d = lo.with_timezone(&tz).date_naive();
    let last = hi.with_timezone(&tz).date_naive();
    let mut out = HashSet::new();
    while d <= last && out.len() < 7 {
        out.insert(d.weekday().num_days_from_sunday() as i64);
        d = d.succ_opt()?;
    }
    Some(out)
}

/// Clips weekly intervals to the given weekdays at day granularity: each interval is cut at local midnights and
/// the pieces on other weekdays are dropped (a Saturday 22:00–Sunday 02:00 window keeps only its Sunday part when
/// only Sunday is inside the dates). Adjacent pieces are merged again; the result stays sorted.
pub fn clip_to_days(intervals: &[(i64, i64)], days: &HashSet<i64>) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for &(a, b) in intervals {
        let mut k = a.div_euclid(DAY_MINUTES);
        while k * DAY_MINUTES < b {
            let lo = a.max(k * DAY_MINUTES);
            let hi = b.min((k + 1) * DAY_MINUTES);
            if lo < hi && days.contains(&k.rem_euclid(7)) {
                match out.last_mut() {
                    Some(last) if last.1 == lo => last.1 = hi,
                    _ => out.push((lo, hi)),
                }
            }
            k += 1;
        }
    }
    out.sort_unstable();
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
    match hi.and_then(|h| local_weekdays(lo, h, tz)) {
        Some(days) => common::first_intersection(
            &clip_to_days(&a.intervals, &days),
            &clip_to_days(&b.intervals, &days),
        ),
        None => common::first_intersection(&a.intervals, &b.intervals),
    }
}

/// One overlapping pair, reported once across displays (agents.md 6.4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlapPair {
    /// `<idA>+<idB>`, ids in ascending byte order.
    pub key: String,
    /// (id, name) of the two schedules in key order.
    pub a: (String, String),
    pub b: (String, String),
    pub priority: i64,
    /// Labels of the first 5 enabled displays where they overlap.
    pub displays: Vec<String>,
    /// How many enabled displays they overlap on.
    pub display_count: usize,
    /// First overlapping window on the first display, e.g. `Sat 09:00–18:00 (Europe/London)`.
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
    /// Displays where a schedule hit `OPS_OVERLAP_MAX_COMPARISONS`.
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

/// The overlap sweep of agents.md 6.4.3 over `enabled` displays: per display and priority, the reaching schedules
/// (from `index`, parsed in `parsed`; `None` entries are skipped, their verdicts being unexamined) sorted by start
/// date; a sweep keeps those whose end (open = never) is ≥ the current start, so only date-overlapping pairs are
/// compared; at most `cap` comparisons per schedule and display (further ones are skipped and the display is
/// capped). O(n log n) per display plus the compared pairs.
pub fn find_overlaps(
    enabled: &[&Value],
    index: &TargetIndex,
    parsed: &[Option<OverlapSchedule>],
    cap: usize,
) -> OverlapResult {
    let mut r = OverlapResult::default();
    for d in enabled {
        let did = id_of(d);
        let reach = index.for_display(&did);
        if reach.len() < 2 {
            continue;
        }
        let (tz, _) = display_tz(d);
        let label = display_label(d);
        let mut list: Vec<&OverlapSchedule> = reach
            .iter()
            .filter_map(|&i| parsed.get(i)?.as_ref())
            .collect();
        list.sort_by(|x, y| {
            (x.priority, x.start, x.id.as_bytes()).cmp(&(y.priority, y.start, y.id.as_bytes()))
        });
        let mut capped = false;
        for group in list.chunk_by(|x, y| x.priority == y.priority) {
            let mut active: Vec<&OverlapSchedule> = Vec::new();
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for &cur in group {
                active.retain(|t| t.end.is_none_or(|e| e >= cur.start));
                for &t in &active {
                    let (nc, nt) = (
                        counts.get(cur.id.as_str()).copied().unwrap_or(0),
                        counts.get(t.id.as_str()).copied().unwrap_or(0),
                    );
                    if nc >= cap || nt >= cap {
                        capped = true;
                        continue;
                    }
                    counts.insert(cur.id.as_str(), nc + 1);
                    counts.insert(t.id.as_str(), nt + 1);
                    r.comparisons += 1;
                    let Some((ws, we)) = pair_overlap(cur, t, tz) else {
                        continue;
                    };
                    let key = pair_key(&cur.id, &t.id);
                    let p = r.pairs.entry(key.clone()).or_insert_with(|| {
                        let (a, b) = if cur.id.as_bytes() <= t.id.as_bytes() {
                            (cur, t)
                        } else {
                            (t, cur)
                        };
                        OverlapPair {
                            key,
                            a: (a.id.clone(), a.name.clone()),
                            b: (b.id.clone(), b.name.clone()),
                            priority: cur.priority,
                            displays: Vec::new(),
                            display_count: 0,
                            window: format!(
                                "{} ({}, on {label})",
                                common::describe_window(ws, we),
                                tz.name()
                            ),
                        }
                    });
                    p.display_count += 1;
                    if p.displays.len() < 5 {
                        p.displays.push(label.clone());
                    }
                }
                active.push(cur);
            }
        }
        if capped {
            r.capped_displays.push(did.clone());
            for &i in reach {
                if let Some(Some(p)) = parsed.get(i) {
                    r.capped_schedules.insert(p.id.clone());
                }
            }
        }
    }
    r
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
pub fn coverage(
    display: &Value,
    reaching: &[&Value],
    maybe_reaching: &[&Value],
    now: DateTime<Utc>,
) -> Coverage {
    let (tz, _) = display_tz(display);
    let mut unknown = false;
    for sch in reaching {
        match common::schedule_active_at(sch, now, tz) {
            Some(true) => return Coverage::Covered,
            Some(false) => {}
            None => unknown = true,
        }
    }
    for sch in maybe_reaching {
        if common::schedule_active_at(sch, now, tz) != Some(false) {
            unknown = true;
        }
    }
    if unknown {
        Coverage::Unknown
    } else {
        Coverage::Gap
    }
}

/// `currentPlaylistId` of a display, `None` when null, missing or empty.
pub fn current_playlist(display: &Value) -> Option<&str> {
    s(display, "currentPlaylistId").filter(|p| !p.trim().is_empty())
}

/// Whether an id may be put in a request path as is (cuid/uuid characters only).
pub fn path_safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
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
        OverlapSchedule::parse(v).unwrap()
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
        let (f, w) = resolve_fallback(Some(&org), &pl, Some("pE"));
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
        let (f, w) = resolve_fallback(Some(&org), &pl, Some("pA"));
        assert!(
            matches!(f, Fallback::Valid{ref id, source: FallbackSource::DefaultPlaylist, ..} if id == "pD2")
        );
        assert_eq!(w.len(), 1, "several defaults warn");
        let no_defaults: Vec<Value> = pl
            .iter()
            .filter(|p| p["isDefault"] != true)
            .cloned()
            .collect();
        let (f, _) = resolve_fallback(Some(&json!({"settings":null})), &no_defaults, Some("pA"));
        assert!(matches!(
            f,
            Fallback::Valid {
                source: FallbackSource::Env,
                ..
            }
        ));
        let (f, _) = resolve_fallback(Some(&json!({})), &no_defaults, None);
        assert_eq!(f, Fallback::Unconfigured);
    }

    #[test]
    fn fallback_missing_empty_malformed_or_unreadable_is_invalid_or_unknown() {
        let pl = playlists();
        let missing = json!({"settings":{"opsFallbackPlaylistId":"gone"}});
        assert!(
            matches!(resolve_fallback(Some(&missing), &pl, None).0, Fallback::Invalid{ref id, ..} if id == "gone")
        );
        let empty = json!({"settings":{"opsFallbackPlaylistId":"pE"}});
        assert!(
            matches!(resolve_fallback(Some(&empty), &pl, Some("pA")).0, Fallback::Invalid{ref reason, ..} if reason.contains("0 items"))
        );
        let bad = json!({"settings":{"opsFallbackPlaylistId":17}});
        assert!(matches!(
            resolve_fallback(Some(&bad), &pl, None).0,
            Fallback::Invalid { .. }
        ));
        let nocount = json!({"settings":{"opsFallbackPlaylistId":"pN"}});
        assert!(matches!(
            resolve_fallback(Some(&nocount), &pl, None).0,
            Fallback::Unknown(_)
        ));
        assert!(matches!(
            resolve_fallback(None, &pl, Some("pA")).0,
            Fallback::Unknown(_)
        ));
    }

    // ── 6.4.2 ──

    #[test]
    fn first_matching_check_decides_and_disabled_display_is_a_target() {
        let pl = vec![json!({"id":"p1"})];
        let ds = vec![json!({"id":"d1","isDisabled":true})];
        let gs = vec![json!({"id":"g1","displays":[]})];
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
        assert_eq!(
            check_active(&s1, now, Some(&sets)).kind_str(),
            "past_end_schedule"
        );
        s1["endDate"] = Value::Null;
        assert_eq!(
            check_active(&s1, now, Some(&sets)).kind_str(),
            "deleted_playlist_schedule"
        );
        s1["playlistId"] = json!("p1");
        assert_eq!(
            check_active(&s1, now, Some(&sets)).kind_str(),
            "no_target_schedule"
        );
        s1["displayId"] = json!("d1");
        assert_eq!(
            check_active(&s1, now, Some(&sets)),
            ActiveVerdict::Healthy { end_known: true },
            "a disabled but existing display is a target"
        );
        s1["displayId"] = Value::Null;
        s1["displayGroupId"] = json!("g1");
        assert_eq!(
            check_active(&s1, now, Some(&sets)),
            ActiveVerdict::Healthy { end_known: true }
        );
        s1["displayGroupId"] = json!("g-missing");
        assert_eq!(
            check_active(&s1, now, Some(&sets)).kind_str(),
            "no_target_schedule"
        );
        s1["displayGroupId"] = Value::Null;
        assert_eq!(
            check_active(&s1, now, Some(&sets)).kind_str(),
            "no_target_schedule"
        );
        s1["isActive"] = json!(false);
        assert_eq!(check_active(&s1, now, Some(&sets)), ActiveVerdict::Inactive);
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
        assert_eq!(check_active(&s1, now, None).kind_str(), "past_end_schedule");
        s1["endDate"] = json!("2026-08-26T12:00:00Z");
        assert_eq!(
            check_active(&s1, now, None),
            ActiveVerdict::Healthy { end_known: true },
            "end == now is not past"
        );
        s1["endDate"] = json!("next tuesday");
        assert_eq!(
            check_active(&s1, now, None),
            ActiveVerdict::Healthy { end_known: false }
        );
    }

    impl ActiveVerdict {
        fn kind_str(&self) -> &'static str {
            match self {
                ActiveVerdict::Fault(f) => f.kind(),
                ActiveVerdict::Inactive => "inactive",
                ActiveVerdict::Healthy { .. } => "healthy",
            }
        }
    }

    #[test]
    fn item_count_comes_from_the_walk_then_the_embedded_count_else_unknown() {
        let sch = json!({"playlist":{"_count":{"items":3}}});
        assert_eq!(
            playlist_item_count(Some(&json!({"itemCount":0})), &sch),
            Some(0)
        );
        assert_eq!(
            playlist_item_count(Some(&json!({"items":[]})), &sch),
            Some(3)
        );
        assert_eq!(
            playlist_item_count(None, &json!({"playlist":{"_count":{"schedules":1}}})),
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
        let sun: HashSet<i64> = [0].into();
        assert_eq!(clip_to_days(&iv, &sun), vec![(7 * 1440, 7 * 1440 + 120)]);
        let both: HashSet<i64> = [0, 6].into();
        assert_eq!(clip_to_days(&iv, &both), iv);
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
        let members = common::group_members(groups);
        let idx = TargetIndex::build(scheds, 0..scheds.len(), &members);
        let parsed: Vec<Option<OverlapSchedule>> =
            scheds.iter().map(OverlapSchedule::parse).collect();
        let enabled: Vec<&Value> = displays
            .iter()
            .filter(|d| common::is_enabled_display(d))
            .collect();
        find_overlaps(&enabled, &idx, &parsed, cap)
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
        let members = common::group_members(&[json!({"id":"gx","name":"no members array"})]);
        let idx = TargetIndex::build(&scheds, 0..2, &members);
        assert_eq!(idx.unknown_membership, vec![0]);
        assert_eq!(idx.for_display("d1"), &[1]);
        let d = display("d1", "UTC", false);
        let now = at("2026-08-26T12:00:00Z");
        assert_eq!(
            coverage(&d, &[], &[&scheds[0]], now),
            Coverage::Unknown,
            "not examined"
        );
        assert_eq!(
            coverage(&d, &[&scheds[1]], &[&scheds[0]], now),
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
            coverage(&display("d1", "Europe/London", false), &[&thu], &[], now),
            Coverage::Covered
        );
        assert_eq!(
            coverage(&display("d1", "UTC", false), &[&thu], &[], now),
            Coverage::Gap
        );
        assert_eq!(
            coverage(&display("d1", "Not/AZone", false), &[&thu], &[], now),
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
            coverage(&display("d1", "UTC", false), &[&ended], &[], now),
            Coverage::Gap
        );
        ended["endDate"] = json!("garbage");
        assert_eq!(
            coverage(&display("d1", "UTC", false), &[&ended], &[], now),
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
            coverage(&display("d1", "UTC", false), &[&night], &[], now),
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
            coverage(
                &display("d1", "UTC", false),
                &[&night_sat],
                &[],
                at("2026-08-23T03:00:00Z")
            ),
            Coverage::Covered
        );
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
