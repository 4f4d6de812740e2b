//! The projections the API serves, written straight to JSON through `Serialize` wrappers (no intermediate values):
//! the shared pieces here (render context, tags, counts, summaries), one module per collection.

mod content;
mod display;
mod group;
mod playlist;
mod schedule;

pub(crate) use content::*;
pub(crate) use display::*;
pub(crate) use group::*;
pub(crate) use playlist::*;
pub(crate) use schedule::*;

use super::Store;
use crate::sandbox::model::{Content, Sym, Tag, TagLink};
use crate::sandbox::time::Ts;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;

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
pub(crate) struct JsonText<'a>(Option<&'a str>);

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

pub(crate) struct TagRow<'a>(&'a Tag);

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

pub(crate) struct Tags<'a> {
    pub(crate) r: R<'a>,
    pub(crate) links: &'a [TagLink],
    pub(crate) owner_key: &'static str,
    pub(crate) owner_id: &'a str,
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

pub(crate) struct TagLinkRow<'a> {
    pub(crate) l: &'a TagLink,
    pub(crate) tags: &'a [Tag],
    pub(crate) owner_key: &'static str,
    pub(crate) owner_id: &'a str,
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

pub(crate) fn ostr(v: &Option<Box<str>>) -> Option<&str> {
    v.as_deref()
}

pub(crate) fn osym(v: &Option<Sym>) -> Option<&str> {
    v.as_deref()
}

pub(crate) struct ContentSummary<'a>(&'a Content);

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

pub(crate) fn member_id(group: &str, display: &str) -> String {
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

#[derive(Serialize)]
pub(crate) struct CountItems {
    pub(crate) items: usize,
}

#[derive(Serialize)]
pub(crate) struct CountSchedules {
    pub(crate) schedules: u32,
}

#[derive(Serialize)]
pub(crate) struct CountDisplays {
    pub(crate) displays: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MemberId<'a> {
    pub(crate) display_id: &'a str,
}
