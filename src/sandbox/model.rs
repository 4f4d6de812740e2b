//! Typed entities of a fixture (`fixtures/README.md`) and the streaming loader.
//!
//! Memory matters for the benchmark tenant (100 000 displays, 500 000 content items): entities are typed structs,
//! enum-like strings are interned (`Sym`), tags are shared in one table, free-form JSON (`metadata`) is kept as
//! compact text, and timestamps are epoch milliseconds. Timestamps are parsed as written and then shifted in one pass
//! once the whole file is read, so that ages are exact at the moment the load finishes.

use super::time::{parse_iso_ms, rebase_json_text, rebase_value};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// An interned, immutable string (statuses, types, organization ids, locations…).
pub(crate) type Sym = Arc<str>;

thread_local! {
    static INTERN: RefCell<HashMap<String, Sym>> = RefCell::new(HashMap::new());
    static TAGS: RefCell<(Vec<Tag>, HashMap<String, u32>)> = RefCell::new((Vec::new(), HashMap::new()));
}

/// Interns `s` in the loader's table.
pub(crate) fn intern(s: &str) -> Sym {
    INTERN.with(|m| {
        let mut m = m.borrow_mut();
        if let Some(v) = m.get(s) {
            return v.clone();
        }
        let v: Sym = Arc::from(s);
        m.insert(s.to_string(), v.clone());
        v
    })
}

fn de_sym<'de, D: Deserializer<'de>>(d: D) -> Result<Sym, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    Ok(intern(s.as_deref().unwrap_or("")))
}

fn de_osym<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Sym>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    Ok(s.map(|s| intern(&s)))
}

fn de_bstr<'de, D: Deserializer<'de>>(d: D) -> Result<Box<str>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    Ok(s.unwrap_or_default().into_boxed_str())
}

fn de_obstr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<str>>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    Ok(s.map(String::into_boxed_str))
}

fn de_ts<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match de_ots(d)? {
        Some(v) => Ok(v),
        None => Ok(0),
    }
}

fn de_ots<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    match s {
        None => Ok(None),
        Some(s) => parse_iso_ms(&s)
            .map(Some)
            .ok_or_else(|| de::Error::custom(format!("not an ISO-8601 UTC timestamp: {s:?}"))),
    }
}

fn de_json<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<str>>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    Ok(Some(v.to_string().into_boxed_str()))
}

fn de_ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Box<str>>, D::Error> {
    let v: Option<Vec<String>> = Option::deserialize(d)?;
    Ok(v.unwrap_or_default()
        .into_iter()
        .map(String::into_boxed_str)
        .collect())
}

/// A tag of the organization (shared by display and content tag links).
#[derive(Debug, Clone, Default)]
pub(crate) struct Tag {
    pub id: Box<str>,
    pub name: String,
    pub color: Option<String>,
    pub organization_id: Sym,
    pub created_at: i64,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawTag {
    id: String,
    name: String,
    color: Option<String>,
    organization_id: Option<String>,
    #[serde(deserialize_with = "de_ts")]
    created_at: i64,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawTagLink {
    id: String,
    tag_id: String,
    #[serde(deserialize_with = "de_ts")]
    created_at: i64,
    tag: Option<RawTag>,
}

/// A `DisplayTag`/`ContentTag` row: its id, the tag (index into the tag table) and its creation time.
#[derive(Debug, Clone)]
pub(crate) struct TagLink {
    pub id: Box<str>,
    pub tag: u32,
    pub created_at: i64,
}

fn de_tags<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<TagLink>, D::Error> {
    let raw: Option<Vec<RawTagLink>> = Option::deserialize(d)?;
    let raw = raw.unwrap_or_default();
    Ok(TAGS.with(|t| {
        let mut t = t.borrow_mut();
        let (table, idx) = &mut *t;
        raw.into_iter()
            .map(|l| {
                let tag_id = if l.tag_id.is_empty() {
                    l.tag.as_ref().map(|t| t.id.clone()).unwrap_or_default()
                } else {
                    l.tag_id.clone()
                };
                let i = match idx.get(&tag_id) {
                    Some(&i) => i,
                    None => {
                        let rt = l.tag.unwrap_or_default();
                        let i = table.len() as u32;
                        table.push(Tag {
                            id: tag_id.clone().into_boxed_str(),
                            name: rt.name,
                            color: rt.color,
                            organization_id: intern(rt.organization_id.as_deref().unwrap_or("")),
                            created_at: rt.created_at,
                        });
                        idx.insert(tag_id, i);
                        i
                    }
                };
                TagLink {
                    id: l.id.into_boxed_str(),
                    tag: i,
                    created_at: l.created_at,
                }
            })
            .collect()
    }))
}

/// Registers a tag in the loader's table (used when a tag is only known by a link).
pub(crate) fn take_tag_table() -> Vec<Tag> {
    TAGS.with(|t| {
        let mut t = t.borrow_mut();
        t.1.clear();
        std::mem::take(&mut t.0)
    })
}

fn reset_thread_tables() {
    INTERN.with(|m| m.borrow_mut().clear());
    TAGS.with(|t| {
        let mut t = t.borrow_mut();
        t.0.clear();
        t.1.clear();
    });
}

fn default_version() -> i64 {
    1
}

/// A content row (detail fields of `GET /content/:id` without `playlistItems`).
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Content {
    #[serde(deserialize_with = "de_bstr")]
    pub id: Box<str>,
    pub name: String,
    pub description: Option<String>,
    #[serde(rename = "type", deserialize_with = "de_sym")]
    pub kind: Sym,
    pub url: Option<String>,
    pub thumbnail: Option<String>,
    pub duration: Option<i64>,
    pub file_size: Option<i64>,
    #[serde(deserialize_with = "de_osym")]
    pub mime_type: Option<Sym>,
    #[serde(deserialize_with = "de_json")]
    pub metadata: Option<Box<str>>,
    #[serde(deserialize_with = "de_sym")]
    pub status: Sym,
    pub is_global: bool,
    #[serde(deserialize_with = "de_osym")]
    pub template_orientation: Option<Sym>,
    #[serde(deserialize_with = "de_ts")]
    pub created_at: i64,
    #[serde(deserialize_with = "de_ts")]
    pub updated_at: i64,
    #[serde(deserialize_with = "de_ots")]
    pub expires_at: Option<i64>,
    #[serde(deserialize_with = "de_obstr")]
    pub replacement_content_id: Option<Box<str>>,
    #[serde(deserialize_with = "de_obstr")]
    pub previous_version_id: Option<Box<str>>,
    #[serde(default = "default_version")]
    pub version_number: i64,
    #[serde(deserialize_with = "de_sym")]
    pub organization_id: Sym,
    #[serde(deserialize_with = "de_obstr")]
    pub folder_id: Option<Box<str>>,
    #[serde(deserialize_with = "de_tags")]
    pub tags: Vec<TagLink>,
}

/// A device row (every column, including the ones only the schedule relation leaks).
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Display {
    #[serde(deserialize_with = "de_bstr")]
    pub id: Box<str>,
    #[serde(deserialize_with = "de_sym")]
    pub organization_id: Sym,
    pub device_identifier: String,
    pub nickname: Option<String>,
    pub description: Option<String>,
    #[serde(deserialize_with = "de_osym")]
    pub location: Option<Sym>,
    #[serde(deserialize_with = "de_sym")]
    pub status: Sym,
    #[serde(deserialize_with = "de_sym")]
    pub orientation: Sym,
    #[serde(deserialize_with = "de_osym")]
    pub resolution: Option<Sym>,
    #[serde(deserialize_with = "de_sym")]
    pub timezone: Sym,
    #[serde(deserialize_with = "de_ots")]
    pub last_heartbeat: Option<i64>,
    pub is_disabled: bool,
    #[serde(deserialize_with = "de_obstr")]
    pub current_playlist_id: Option<Box<str>>,
    #[serde(deserialize_with = "de_ts")]
    pub created_at: i64,
    #[serde(deserialize_with = "de_ts")]
    pub updated_at: i64,
    #[serde(deserialize_with = "de_ots")]
    pub paired_at: Option<i64>,
    #[serde(deserialize_with = "de_ots")]
    pub unpaired_at: Option<i64>,
    #[serde(deserialize_with = "de_tags")]
    pub tags: Vec<TagLink>,
    #[serde(deserialize_with = "de_json")]
    pub metadata: Option<Box<str>>,
    pub last_screenshot: Option<String>,
    #[serde(deserialize_with = "de_ots")]
    pub last_screenshot_at: Option<i64>,
    pub pairing_code: Option<String>,
    #[serde(deserialize_with = "de_ots")]
    pub pairing_code_expires_at: Option<i64>,
    pub jwt_token: Option<String>,
    pub socket_id: Option<String>,
    /// A live screen: its heartbeat is kept fresh (set to "now" when read).
    #[serde(skip)]
    pub live: bool,
    /// Set by the control API: the heartbeat is never refreshed.
    #[serde(skip)]
    pub stay_offline: bool,
}

/// A playlist item as stored (`playlistId` is the owning playlist).
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct PlaylistItem {
    #[serde(deserialize_with = "de_bstr")]
    pub id: Box<str>,
    #[serde(deserialize_with = "de_bstr")]
    pub content_id: Box<str>,
    pub order: i64,
    pub duration: Option<i64>,
}

/// A playlist row with its items.
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Playlist {
    #[serde(deserialize_with = "de_bstr")]
    pub id: Box<str>,
    pub name: String,
    pub description: Option<String>,
    #[serde(rename = "loop")]
    pub loop_: Option<bool>,
    pub is_default: bool,
    #[serde(deserialize_with = "de_sym")]
    pub organization_id: Sym,
    #[serde(deserialize_with = "de_ts")]
    pub created_at: i64,
    #[serde(deserialize_with = "de_ts")]
    pub updated_at: i64,
    pub items: Vec<PlaylistItem>,
}

/// A schedule row (scalars only; relations are derived).
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Schedule {
    #[serde(deserialize_with = "de_bstr")]
    pub id: Box<str>,
    pub name: String,
    pub description: Option<String>,
    #[serde(deserialize_with = "de_ts")]
    pub start_date: i64,
    #[serde(deserialize_with = "de_ots")]
    pub end_date: Option<i64>,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub days_of_week: Vec<i64>,
    pub priority: i64,
    pub is_active: bool,
    #[serde(deserialize_with = "de_ts")]
    pub created_at: i64,
    #[serde(deserialize_with = "de_ts")]
    pub updated_at: i64,
    #[serde(deserialize_with = "de_sym")]
    pub organization_id: Sym,
    #[serde(deserialize_with = "de_bstr")]
    pub playlist_id: Box<str>,
    #[serde(deserialize_with = "de_obstr")]
    pub display_id: Option<Box<str>>,
    #[serde(deserialize_with = "de_obstr")]
    pub display_group_id: Option<Box<str>>,
}

/// A display group with its member display ids.
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Group {
    #[serde(deserialize_with = "de_bstr")]
    pub id: Box<str>,
    pub name: String,
    pub description: Option<String>,
    #[serde(deserialize_with = "de_sym")]
    pub organization_id: Sym,
    #[serde(deserialize_with = "de_ts")]
    pub created_at: i64,
    #[serde(deserialize_with = "de_ts")]
    pub updated_at: i64,
    #[serde(deserialize_with = "de_ids")]
    pub display_ids: Vec<Box<str>>,
}

/// A whole fixture, parsed and rebased.
#[derive(Default)]
pub(crate) struct Fixture {
    /// `capturedAt` after rebasing (= the load instant).
    pub captured_at: i64,
    /// The shift applied to every timestamp, ms.
    pub shift_ms: i64,
    pub organization: Map<String, Value>,
    pub storage: Map<String, Value>,
    pub users: Vec<Map<String, Value>>,
    pub displays: Vec<Display>,
    pub groups: Vec<Group>,
    pub content: Vec<Content>,
    pub playlists: Vec<Playlist>,
    pub schedules: Vec<Schedule>,
    pub services: Map<String, Value>,
    pub tags: Vec<Tag>,
}

struct FixtureVisitor;

impl<'de> Visitor<'de> for FixtureVisitor {
    type Value = Fixture;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Vizora fixture object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fixture, A::Error> {
        let mut fx = Fixture::default();
        let mut captured: Option<i64> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "capturedAt" => {
                    let s: String = map.next_value()?;
                    captured =
                        Some(parse_iso_ms(&s).ok_or_else(|| {
                            de::Error::custom(format!("capturedAt is not ISO: {s}"))
                        })?);
                }
                "organization" => fx.organization = map.next_value()?,
                "storage" => fx.storage = map.next_value()?,
                "users" => fx.users = map.next_value()?,
                "displays" => fx.displays = map.next_value()?,
                "displayGroups" => fx.groups = map.next_value()?,
                "content" => fx.content = map.next_value()?,
                "playlists" => fx.playlists = map.next_value()?,
                "schedules" => fx.schedules = map.next_value()?,
                "services" => fx.services = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        fx.captured_at = captured.ok_or_else(|| de::Error::missing_field("capturedAt"))?;
        Ok(fx)
    }
}

struct FixtureSeed;

impl<'de> DeserializeSeed<'de> for FixtureSeed {
    type Value = Fixture;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Fixture, D::Error> {
        d.deserialize_map(FixtureVisitor)
    }
}

/// Parses a fixture from a reader (streaming; the file is never held in memory as a whole) and rebases it.
pub(crate) fn load_reader<R: std::io::Read>(
    r: R,
    keep_live: bool,
    now_ms: impl Fn() -> i64,
) -> anyhow::Result<Fixture> {
    reset_thread_tables();
    let mut de = serde_json::Deserializer::from_reader(r);
    let res = FixtureSeed
        .deserialize(&mut de)
        .and_then(|fx| de.end().map(|_| fx));
    finish(res, keep_live, now_ms)
}

/// Loads a fixture file. Files in the generator's layout (one key per line, one array element per line) are parsed
/// line by line, which is about twice as fast as a generic streaming parse and never holds the whole file; any other
/// layout falls back to the generic streaming parser.
pub(crate) fn load_file(
    path: &std::path::Path,
    keep_live: bool,
    now_ms: impl Fn() -> i64,
) -> anyhow::Result<Fixture> {
    reset_thread_tables();
    let f = std::fs::File::open(path)?;
    match load_lines(std::io::BufReader::with_capacity(1 << 20, f)) {
        Ok(Some(fx)) => finish(Ok(fx), keep_live, now_ms),
        Ok(None) => {
            let f = std::fs::File::open(path)?;
            load_reader(
                std::io::BufReader::with_capacity(1 << 20, f),
                keep_live,
                now_ms,
            )
        }
        Err(e) => {
            reset_thread_tables();
            Err(e)
        }
    }
}

fn parse_line<T: serde::de::DeserializeOwned>(s: &str, line: usize) -> anyhow::Result<T> {
    serde_json::from_str(s).map_err(|e| anyhow::anyhow!("invalid fixture at line {line}: {e}"))
}

fn push_elems<T: serde::de::DeserializeOwned>(
    v: &mut Vec<T>,
    s: &str,
    line: usize,
) -> anyhow::Result<()> {
    v.push(parse_line(s, line)?);
    Ok(())
}

/// The line-oriented fast path; `Ok(None)` when the file is not in that layout.
fn load_lines<R: std::io::BufRead>(mut r: R) -> anyhow::Result<Option<Fixture>> {
    let mut fx = Fixture::default();
    let mut captured = None;
    let mut buf = String::new();
    let mut line_no = 0usize;
    let mut array: Option<String> = None;
    let mut seen_open = false;
    let mut closed = false;
    loop {
        buf.clear();
        if r.read_line(&mut buf)? == 0 {
            break;
        }
        line_no += 1;
        let l = buf.trim_end_matches(['\n', '\r']).trim();
        if l.is_empty() {
            continue;
        }
        if closed {
            return Ok(None);
        }
        if !seen_open {
            if l != "{" {
                return Ok(None);
            }
            seen_open = true;
            continue;
        }
        if let Some(key) = &array {
            if l == "]" || l == "]," {
                array = None;
                continue;
            }
            let e = l.strip_suffix(',').unwrap_or(l);
            if !e.starts_with('{') {
                return Ok(None);
            }
            match key.as_str() {
                "users" => push_elems(&mut fx.users, e, line_no)?,
                "displays" => push_elems(&mut fx.displays, e, line_no)?,
                "displayGroups" => push_elems(&mut fx.groups, e, line_no)?,
                "content" => push_elems(&mut fx.content, e, line_no)?,
                "playlists" => push_elems(&mut fx.playlists, e, line_no)?,
                "schedules" => push_elems(&mut fx.schedules, e, line_no)?,
                _ => {}
            }
            continue;
        }
        if l == "}" {
            closed = true;
            continue;
        }
        let Some(rest) = l.strip_prefix('"') else {
            return Ok(None);
        };
        let Some(q) = rest.find("\":") else {
            return Ok(None);
        };
        let key = &rest[..q];
        let val = rest[q + 2..].trim();
        if val == "[" {
            array = Some(key.to_string());
            continue;
        }
        let val = val.strip_suffix(',').unwrap_or(val);
        match key {
            "capturedAt" => {
                let s: String = parse_line(val, line_no)?;
                captured = Some(
                    parse_iso_ms(&s)
                        .ok_or_else(|| anyhow::anyhow!("capturedAt is not ISO: {s}"))?,
                );
            }
            "organization" => fx.organization = parse_line(val, line_no)?,
            "storage" => fx.storage = parse_line(val, line_no)?,
            "services" => fx.services = parse_line(val, line_no)?,
            "users" => fx.users = parse_line(val, line_no)?,
            "displays" => fx.displays = parse_line(val, line_no)?,
            "displayGroups" => fx.groups = parse_line(val, line_no)?,
            "content" => fx.content = parse_line(val, line_no)?,
            "playlists" => fx.playlists = parse_line(val, line_no)?,
            "schedules" => fx.schedules = parse_line(val, line_no)?,
            _ => {
                if serde_json::from_str::<IgnoredAny>(val).is_err() {
                    return Ok(None);
                }
            }
        }
    }
    if !closed || array.is_some() {
        return Ok(None);
    }
    fx.captured_at =
        captured.ok_or_else(|| anyhow::anyhow!("invalid fixture: missing capturedAt"))?;
    Ok(Some(fx))
}

/// Parses a fixture from a string and rebases it.
pub(crate) fn load_str(
    s: &str,
    keep_live: bool,
    now_ms: impl Fn() -> i64,
) -> anyhow::Result<Fixture> {
    reset_thread_tables();
    let mut de = serde_json::Deserializer::from_str(s);
    let res = FixtureSeed
        .deserialize(&mut de)
        .and_then(|fx| de.end().map(|_| fx));
    finish(res, keep_live, now_ms)
}

fn finish(
    res: Result<Fixture, serde_json::Error>,
    keep_live: bool,
    now_ms: impl Fn() -> i64,
) -> anyhow::Result<Fixture> {
    let mut fx = match res {
        Ok(fx) => fx,
        Err(e) => {
            reset_thread_tables();
            anyhow::bail!("invalid fixture: {e}");
        }
    };
    fx.tags = take_tag_table();
    INTERN.with(|m| m.borrow_mut().clear());
    let captured = fx.captured_at;
    for d in &mut fx.displays {
        d.live = keep_live
            && d.last_heartbeat
                .is_some_and(|hb| (captured - hb).abs() <= 60_000);
    }
    let shift = now_ms() - captured;
    rebase(&mut fx, shift);
    fx.captured_at = captured + shift;
    fx.shift_ms = shift;
    Ok(fx)
}

fn sh(v: &mut i64, s: i64) {
    *v += s;
}

fn sho(v: &mut Option<i64>, s: i64) {
    if let Some(x) = v {
        *x += s;
    }
}

fn shj(v: &mut Option<Box<str>>, s: i64) {
    if let Some(t) = v
        && let Some(n) = rebase_json_text(t, s)
    {
        *t = n.into_boxed_str();
    }
}

/// Shifts every timestamp of the fixture by `s` milliseconds.
fn rebase(fx: &mut Fixture, s: i64) {
    let mut org = Value::Object(std::mem::take(&mut fx.organization));
    rebase_value(&mut org, s);
    if let Value::Object(m) = org {
        fx.organization = m;
    }
    let mut st = Value::Object(std::mem::take(&mut fx.storage));
    rebase_value(&mut st, s);
    if let Value::Object(m) = st {
        fx.storage = m;
    }
    for u in &mut fx.users {
        for v in u.values_mut() {
            rebase_value(v, s);
        }
    }
    for t in &mut fx.tags {
        sh(&mut t.created_at, s);
    }
    for d in &mut fx.displays {
        sho(&mut d.last_heartbeat, s);
        sh(&mut d.created_at, s);
        sh(&mut d.updated_at, s);
        sho(&mut d.paired_at, s);
        sho(&mut d.unpaired_at, s);
        sho(&mut d.last_screenshot_at, s);
        sho(&mut d.pairing_code_expires_at, s);
        shj(&mut d.metadata, s);
        d.tags.iter_mut().for_each(|t| sh(&mut t.created_at, s));
    }
    for g in &mut fx.groups {
        sh(&mut g.created_at, s);
        sh(&mut g.updated_at, s);
    }
    for c in &mut fx.content {
        sh(&mut c.created_at, s);
        sh(&mut c.updated_at, s);
        sho(&mut c.expires_at, s);
        shj(&mut c.metadata, s);
        c.tags.iter_mut().for_each(|t| sh(&mut t.created_at, s));
    }
    for p in &mut fx.playlists {
        sh(&mut p.created_at, s);
        sh(&mut p.updated_at, s);
    }
    for x in &mut fx.schedules {
        sh(&mut x.start_date, s);
        sho(&mut x.end_date, s);
        sh(&mut x.created_at, s);
        sh(&mut x.updated_at, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_mode_and_generic_parse_agree() {
        let text = super::super::DEMO_FIXTURE;
        let now = || 1_900_000_000_000i64;
        let a = load_str(text, true, now).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        std::fs::write(&p, text).unwrap();
        let b = load_file(&p, true, now).unwrap();
        assert_eq!(a.captured_at, 1_900_000_000_000);
        assert_eq!(a.captured_at, b.captured_at);
        assert_eq!(
            (a.displays.len(), a.content.len(), a.playlists.len()),
            (b.displays.len(), b.content.len(), b.playlists.len())
        );
        assert_eq!(
            (a.schedules.len(), a.groups.len(), a.tags.len()),
            (b.schedules.len(), b.groups.len(), b.tags.len())
        );
        assert_eq!(a.displays[3].last_heartbeat, b.displays[3].last_heartbeat);
        assert_eq!(a.content[7].metadata, b.content[7].metadata);
        assert_eq!(a.organization, b.organization);
        assert!(a.displays.iter().any(|d| d.live));
        // A compact single-line file takes the generic path and gives the same result.
        let compact = serde_json::to_string(&serde_json::from_str::<Value>(text).unwrap()).unwrap();
        std::fs::write(&p, compact).unwrap();
        let c = load_file(&p, true, now).unwrap();
        assert_eq!(c.content.len(), a.content.len());
        assert_eq!(c.content[0].created_at, a.content[0].created_at);
    }
}
