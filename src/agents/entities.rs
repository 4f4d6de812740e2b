//! Small typed records of the API list items that schedule-doctor and fleet-manager judge (agents.md 6.0, 6.3, 6.4),
//! built from each item as its page arrives ([`Records`] is a [`crate::vizora::ItemSink`]), so that a 100 000-display
//! tenant is held as a few dozen bytes per item instead of kilobytes of `serde_json::Value`.
//!
//! Every distinction the rules make is kept explicit: a missing or null field versus a malformed one (an unparseable
//! time is "not examined", agents.md 9.18), a group without a `displays` array (membership unknown, 6.0), a
//! `priority` that is not an integer. Strings are kept as `Box<str>` (16 bytes plus the text) and only where a message
//! or a string-equality rule needs them; timestamps are parsed once. Pure conversions, no I/O.

use crate::model::parse_ts;
use crate::vizora::ItemSink;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A compact immutable string (16 bytes plus the text on the heap).
pub type Text = Box<str>;

/// A fast, non-cryptographic hasher for in-process id maps (the "Fx" multiply-rotate hash). Keys are still compared
/// by equality, so a collision only costs a probe, never a wrong answer.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.hash = (self.hash.rotate_left(5) ^ w).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A `HashMap` with [`FxHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A string field of an API object (`None` when missing, null or not a string).
pub fn text(v: &Value, key: &str) -> Option<Text> {
    v.get(key).and_then(Value::as_str).map(Into::into)
}

/// A label field (`name`, `nickname`, `location`) when a string, capped by [`crate::model::label`] as it is read,
/// so no API name longer than 200 characters reaches incidents, actions, the audit or summaries (agents.md 2.2).
pub fn label_text(v: &Value, key: &str) -> Option<Text> {
    v.get(key)
        .and_then(Value::as_str)
        .map(|s| crate::model::label(s).as_ref().into())
}

/// The entity id as `common::id_of` reads it: the `id` string, another JSON value as its text, or empty when
/// missing. The bool says whether it was a string (the existence sets of 6.4.2 only hold string ids).
pub fn id_text(v: &Value) -> (Text, bool) {
    match v.get("id") {
        Some(Value::String(s)) => (s.as_str().into(), true),
        Some(other) => (other.to_string().into(), false),
        None => ("".into(), false),
    }
}

/// A timestamp field, parsed once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsField {
    /// Missing or null.
    Null,
    /// An RFC 3339 instant.
    At(DateTime<Utc>),
    /// Present but not an RFC 3339 string (not examined, agents.md 9.18).
    Unparseable,
}

impl TsField {
    /// Reads `key` of `v`.
    pub fn of(v: &Value, key: &str) -> TsField {
        match v.get(key) {
            None | Some(Value::Null) => TsField::Null,
            Some(Value::String(t)) => parse_ts(t).map_or(TsField::Unparseable, TsField::At),
            Some(_) => TsField::Unparseable,
        }
    }

    /// True when missing or null.
    pub fn is_null(self) -> bool {
        self == TsField::Null
    }

    /// The instant, when parsed.
    pub fn at(self) -> Option<DateTime<Utc>> {
        match self {
            TsField::At(t) => Some(t),
            _ => None,
        }
    }
}

/// A collector of typed records from a page walk: each item is converted by `T::from_item` as it arrives and the
/// JSON dropped. `restart` (the walk starts over, agents.md 5.4) forgets everything received.
#[derive(Debug)]
pub struct Records<T> {
    /// The records in list order (unique ids, as the walk de-duplicates them).
    pub items: Vec<T>,
}

impl<T> Default for Records<T> {
    fn default() -> Self {
        Records { items: Vec::new() }
    }
}

/// Conversion of one API list item into a typed record (never fails: malformed fields become explicit states).
pub trait FromItem: Sized + Send {
    /// Builds the record from one item.
    fn from_item(v: &Value) -> Self;
}

impl<T: FromItem> ItemSink for Records<T> {
    fn item(&mut self, item: Value) {
        self.items.push(T::from_item(&item));
    }
    fn restart(&mut self) {
        self.items.clear();
    }
}

impl<T: FromItem> Records<T> {
    /// Converts already collected items (tests, fakes).
    pub fn from_values<'a>(values: impl IntoIterator<Item = &'a Value>) -> Vec<T> {
        values.into_iter().map(T::from_item).collect()
    }
}

// ─── displays ───────────────────────────────────────────────────────────────────────────────────────────────────────

/// `currentPlaylistId` of a display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurrentPlaylist {
    /// Missing or null.
    Null,
    /// Present but not a non-blank string (an empty string, a number, …): not null, yet no usable playlist id.
    Unusable,
    /// A non-blank playlist id.
    Set,
}

/// A display as schedule-doctor and fleet-manager judge it (agents.md 6.0): id, label, enabled, time zone and
/// whether it has a current playlist. About 60 bytes plus the id and nickname text.
#[derive(Debug, Clone, PartialEq)]
pub struct Display {
    /// `id` (see [`id_text`]).
    pub id: Text,
    /// Whether `id` was a JSON string.
    pub string_id: bool,
    /// `nickname` when it is a non-blank string.
    pub nickname: Option<Text>,
    /// `isDisabled !== true`.
    pub enabled: bool,
    /// The IANA `timezone`; `None` when missing or invalid (judged in UTC, noted).
    pub tz: Option<Tz>,
    /// `currentPlaylistId`.
    pub current_playlist: CurrentPlaylist,
}

impl FromItem for Display {
    fn from_item(v: &Value) -> Display {
        let (id, string_id) = id_text(v);
        Display {
            id,
            string_id,
            nickname: label_text(v, "nickname").filter(|n| !n.trim().is_empty()),
            enabled: v.get("isDisabled").and_then(Value::as_bool) != Some(true),
            tz: v
                .get("timezone")
                .and_then(Value::as_str)
                .and_then(|t| t.parse::<Tz>().ok()),
            current_playlist: match v.get("currentPlaylistId") {
                None | Some(Value::Null) => CurrentPlaylist::Null,
                Some(Value::String(p)) if !p.trim().is_empty() => CurrentPlaylist::Set,
                Some(_) => CurrentPlaylist::Unusable,
            },
        }
    }
}

impl Display {
    /// Label (agents.md 6.0): `nickname`, else the id.
    pub fn label(&self) -> &str {
        self.nickname.as_deref().unwrap_or(&self.id)
    }

    /// The time zone and whether it fell back to UTC (missing or invalid `timezone`).
    pub fn tz(&self) -> (Tz, bool) {
        match self.tz {
            Some(tz) => (tz, false),
            None => (chrono_tz::UTC, true),
        }
    }
}

// ─── schedules ──────────────────────────────────────────────────────────────────────────────────────────────────────

/// The weekly fields of a schedule (agents.md 6.0 time model), validated: `days` is a bit set of weekdays
/// (bit 0 = Sunday … bit 6 = Saturday); `start`/`end` are minutes from local midnight in `[0, 1440)`, `None` = null.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Week {
    /// `daysOfWeek` as a bit set: bit 0 = Sunday … bit 6 = Saturday (0 = no weekday, never plays).
    pub days: u8,
    /// `startTime` in minutes from local midnight (0–1439); `None` when null (null or equal times = whole day).
    pub start: Option<u16>,
    /// `endTime` in minutes from local midnight (0–1439); `None` when null (null or equal times = whole day).
    pub end: Option<u16>,
}

impl Week {
    /// Reads `daysOfWeek`, `startTime`, `endTime`; `None` when a field is malformed (a weekday outside 0–6 or not
    /// an integer, `daysOfWeek` not an array, a time not an integer minute of the day). Missing or null
    /// `daysOfWeek` = no weekday (never plays).
    pub fn of(sch: &Value) -> Option<Week> {
        let mut days = 0u8;
        match sch.get("daysOfWeek") {
            Some(Value::Array(a)) => {
                for d in a {
                    let d = d.as_i64().filter(|d| (0..=6).contains(d))?;
                    days |= 1 << d;
                }
            }
            None | Some(Value::Null) => {}
            _ => return None,
        }
        let minute = |k: &str| -> Result<Option<u16>, ()> {
            match sch.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_i64()
                    .filter(|m| (0..1440).contains(m))
                    .map(|m| Some(m as u16))
                    .ok_or(()),
            }
        };
        Some(Week {
            days,
            start: minute("startTime").ok()?,
            end: minute("endTime").ok()?,
        })
    }
}

/// A schedule as schedule-doctor and fleet-manager judge it (agents.md 6.0, 6.4.2–6.4.4).
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// `id` (see [`id_text`]).
    pub id: Text,
    /// `name` when a string.
    pub name: Option<Text>,
    /// `isActive === true`.
    pub active: bool,
    /// `startDate`; `None` when missing, null or unparseable (the schedule cannot be judged in time).
    pub start: Option<DateTime<Utc>>,
    /// `endDate` (null = open-ended).
    pub end: TsField,
    /// `endDate` as written, when a string (messages).
    pub end_text: Option<Text>,
    /// `priority`: missing or null = the API default 0; `None` = not an integer (overlaps not examined).
    pub priority: Option<i64>,
    /// The weekly fields; `None` = malformed (not examined).
    pub week: Option<Week>,
    /// `playlistId` when a string.
    pub playlist_id: Option<Text>,
    /// `displayId` when a string.
    pub display_id: Option<Text>,
    /// `displayGroupId` when a string.
    pub group_id: Option<Text>,
    /// The first of `playlistId`, `displayId`, `displayGroupId` that is present but neither null nor a string
    /// (agents.md 9 item 18: unparseable → not examined): what it points at is unknown, so no relational check
    /// (6.4.2 checks 2–3) judges the schedule and its targeting counts as unknown.
    pub malformed_ref: Option<&'static str>,
    /// The embedded `playlist._count.items`, when present (6.4.3 fallback for the item count).
    pub embedded_item_count: Option<u64>,
    /// The same answer embeds the `playlist` relation (an object whose `id` is `playlistId`): the playlist exists,
    /// whatever the playlists list says (agents.md 6.4.2 check 2).
    pub embeds_playlist: bool,
    /// The same answer embeds the `display` relation with `id` = `displayId`: the display exists (6.4.2 check 3).
    pub embeds_display: bool,
    /// The same answer embeds the `displayGroup` relation with `id` = `displayGroupId`: the group exists.
    pub embeds_group: bool,
}

/// Whether `v[rel]` is an object whose `id` equals the string `v[key]` (an embedded relation proving existence).
fn embeds(v: &Value, rel: &str, key: &str) -> bool {
    match (
        v.get(rel).and_then(|r| r.get("id")).and_then(Value::as_str),
        v.get(key).and_then(Value::as_str),
    ) {
        (Some(a), Some(b)) => !b.is_empty() && a == b,
        _ => false,
    }
}

impl FromItem for Schedule {
    fn from_item(v: &Value) -> Schedule {
        Schedule {
            id: id_text(v).0,
            name: label_text(v, "name"),
            active: v.get("isActive").and_then(Value::as_bool) == Some(true),
            start: TsField::of(v, "startDate").at(),
            end: TsField::of(v, "endDate"),
            end_text: text(v, "endDate"),
            priority: match v.get("priority") {
                None | Some(Value::Null) => Some(0),
                Some(p) => p.as_i64(),
            },
            week: Week::of(v),
            playlist_id: text(v, "playlistId"),
            display_id: text(v, "displayId"),
            group_id: text(v, "displayGroupId"),
            malformed_ref: ["playlistId", "displayId", "displayGroupId"]
                .into_iter()
                .find(|k| v.get(*k).is_some_and(|x| !x.is_null() && !x.is_string())),
            embedded_item_count: v
                .get("playlist")
                .and_then(|p| p.get("_count"))
                .and_then(|c| c.get("items"))
                .and_then(Value::as_u64),
            embeds_playlist: embeds(v, "playlist", "playlistId"),
            embeds_display: embeds(v, "display", "displayId"),
            embeds_group: embeds(v, "displayGroup", "displayGroupId"),
        }
    }
}

impl Schedule {
    /// `name`, else the id (messages).
    pub fn name_or_id(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }

    /// `displayId` when non-empty.
    pub fn display_target(&self) -> Option<&str> {
        self.display_id.as_deref().filter(|d| !d.is_empty())
    }

    /// `displayGroupId` when non-empty.
    pub fn group_target(&self) -> Option<&str> {
        self.group_id.as_deref().filter(|g| !g.is_empty())
    }
}

// ─── playlists ──────────────────────────────────────────────────────────────────────────────────────────────────────

/// What the fallback resolution (6.4.1) reads of a playlist marked `isDefault: true`.
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultMark {
    /// `organizationId` when a string.
    pub organization_id: Option<Text>,
    /// `updatedAt`, when parseable (`None` sorts first).
    pub updated_at: Option<DateTime<Utc>>,
}

/// A playlist of the walk without its embedded items (agents.md 6.4.1, 6.4.3): id, name and `itemCount`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaylistSummary {
    /// `id` (see [`id_text`]).
    pub id: Text,
    /// Whether `id` was a JSON string.
    pub string_id: bool,
    /// `name` when a string.
    pub name: Option<Text>,
    /// `itemCount` when a non-negative integer; `None` = unknown.
    pub item_count: Option<u64>,
    /// Set only for playlists with `isDefault: true`.
    pub default: Option<Box<DefaultMark>>,
}

impl FromItem for PlaylistSummary {
    fn from_item(v: &Value) -> PlaylistSummary {
        let (id, string_id) = id_text(v);
        PlaylistSummary {
            id,
            string_id,
            name: label_text(v, "name"),
            item_count: v.get("itemCount").and_then(Value::as_u64),
            default: (v.get("isDefault").and_then(Value::as_bool) == Some(true)).then(|| {
                Box::new(DefaultMark {
                    organization_id: text(v, "organizationId"),
                    updated_at: v
                        .get("updatedAt")
                        .and_then(Value::as_str)
                        .and_then(parse_ts),
                })
            }),
        }
    }
}

// ─── display groups ─────────────────────────────────────────────────────────────────────────────────────────────────

/// A display group (agents.md 6.0 "targets a display").
#[derive(Debug, Clone, PartialEq)]
pub struct DisplayGroup {
    /// `id` (see [`id_text`]).
    pub id: Text,
    /// Whether `id` was a JSON string.
    pub string_id: bool,
    /// Member display ids (`displays[].displayId`, else `displays[].id`); `None` when the group has no `displays`
    /// array or an entry without a string id: membership unknown.
    pub members: Option<Box<[Text]>>,
}

impl FromItem for DisplayGroup {
    fn from_item(v: &Value) -> DisplayGroup {
        let (id, string_id) = id_text(v);
        DisplayGroup {
            id,
            string_id,
            // A member entry without a string `displayId` (or `id`) makes the whole membership unknown, like a
            // missing `displays` array (agents.md 6.0, 9 item 18): dropping it could hide a covering schedule.
            members: v.get("displays").and_then(Value::as_array).and_then(|a| {
                a.iter()
                    .map(|m| {
                        m.get("displayId")
                            .and_then(Value::as_str)
                            .or_else(|| m.get("id").and_then(Value::as_str))
                            .map(Into::into)
                    })
                    .collect::<Option<Box<[Text]>>>()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn display_keeps_null_unusable_and_set_playlists_apart() {
        let d = |p: Value| {
            Display::from_item(&json!({"id":"d","currentPlaylistId":p})).current_playlist
        };
        assert_eq!(d(Value::Null), CurrentPlaylist::Null);
        assert_eq!(d(json!("  ")), CurrentPlaylist::Unusable);
        assert_eq!(d(json!(7)), CurrentPlaylist::Unusable);
        assert_eq!(d(json!("p1")), CurrentPlaylist::Set);
        let d = Display::from_item(
            &json!({"id":"d1","nickname":" ","timezone":"Not/AZone","isDisabled":true}),
        );
        assert_eq!(d.label(), "d1");
        assert_eq!(d.tz(), (chrono_tz::UTC, true));
        assert!(!d.enabled);
        let d = Display::from_item(&json!({"id":5,"nickname":"Lobby","timezone":"Europe/London"}));
        assert_eq!((&*d.id, d.string_id, d.label()), ("5", false, "Lobby"));
        assert_eq!(d.tz(), (chrono_tz::Europe::London, false));
        assert!(d.enabled);
    }

    #[test]
    fn schedule_fields_distinguish_null_missing_and_malformed() {
        let s = Schedule::from_item(
            &json!({"id":"s","isActive":true,"startDate":"2026-01-01T00:00:00Z",
            "endDate":"soon","priority":"high","daysOfWeek":[1,1,3],"startTime":60,"endTime":null}),
        );
        assert!(s.active);
        assert!(s.start.is_some());
        assert_eq!(s.end, TsField::Unparseable);
        assert_eq!(s.end_text.as_deref(), Some("soon"));
        assert_eq!(s.priority, None);
        assert_eq!(
            s.week,
            Some(Week {
                days: 0b1010,
                start: Some(60),
                end: None
            })
        );
        let s = Schedule::from_item(&json!({"id":"s","isActive":"true","daysOfWeek":[7]}));
        assert!(!s.active, "only the boolean true is active");
        assert_eq!(s.start, None, "a missing startDate cannot be judged");
        assert_eq!(s.end, TsField::Null);
        assert_eq!(s.priority, Some(0));
        assert_eq!(s.week, None);
        assert_eq!(Week::of(&json!({"startTime": 1440})), None);
        assert_eq!(Week::of(&json!({"daysOfWeek": "1"})), None);
        assert_eq!(
            Week::of(&json!({})),
            Some(Week {
                days: 0,
                start: None,
                end: None
            })
        );
    }

    #[test]
    fn group_without_displays_array_has_unknown_membership() {
        let g = DisplayGroup::from_item(&json!({"id":"g"}));
        assert_eq!(g.members, None);
        let g =
            DisplayGroup::from_item(&json!({"id":"g","displays":[{"displayId":"d1"},{"id":"d2"}]}));
        let m: Vec<&str> = g.members.as_deref().unwrap().iter().map(|t| &**t).collect();
        assert_eq!(m, ["d1", "d2"]);
        // An entry without a string id makes the membership unknown rather than silently smaller.
        let g = DisplayGroup::from_item(
            &json!({"id":"g","displays":[{"displayId":"d1"},{"id":"d2"},{"x":1}]}),
        );
        assert_eq!(g.members, None);
    }

    #[test]
    fn playlist_keeps_default_details_only_for_defaults() {
        let p = PlaylistSummary::from_item(
            &json!({"id":"p","name":"P","itemCount":3,"items":[{"content":{}}]}),
        );
        assert_eq!((p.item_count, p.default.is_none()), (Some(3), true));
        let p = PlaylistSummary::from_item(
            &json!({"id":"p","isDefault":true,"organizationId":"o","updatedAt":"2026-01-01T00:00:00Z"}),
        );
        let d = p.default.unwrap();
        assert_eq!(d.organization_id.as_deref(), Some("o"));
        assert!(d.updated_at.is_some());
        assert_eq!(p.item_count, None);
    }

    #[test]
    fn records_sink_converts_and_restarts() {
        let mut r: Records<Display> = Records::default();
        r.item(json!({"id":"a"}));
        r.restart();
        r.item(json!({"id":"b"}));
        assert_eq!(r.items.len(), 1);
        assert_eq!(&*r.items[0].id, "b");
    }

    #[test]
    fn fx_map_finds_string_keys() {
        let mut m: FastMap<&str, u32> = FastMap::default();
        for (i, k) in ["a", "abcdefgh", "abcdefghi", ""].iter().enumerate() {
            m.insert(k, i as u32);
        }
        assert_eq!(m.get("abcdefghi"), Some(&2));
        assert_eq!(m.get(""), Some(&3));
        assert_eq!(m.get("abcdefg"), None);
    }
}
