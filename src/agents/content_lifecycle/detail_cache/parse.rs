//! The streaming parse of the cache file straight into slots (agents.md 6.2.1): bad JSON or a bad top level is an
//! error (the file is quarantined), one malformed entry is dropped and counted.

use super::store::Parts;
use super::{CACHE_VERSION, DetailCache, ThumbnailCheck};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::io::{self, Read};

// ---------------------------------------------------------------------------------------------------------------
// Streaming parse
// ---------------------------------------------------------------------------------------------------------------

/// Why a top level or `items` value was refused.
pub(super) enum Shape {
    Ok,
    NotObject,
}

/// The visitor methods of every value that is not an object: each answers [`Shape::NotObject`] (arrays are
/// skipped element by element).
macro_rules! forward_not_object {
    () => {
        fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
            Ok(Shape::NotObject)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
            Ok(Shape::NotObject)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
            Ok(Shape::NotObject)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
            Ok(Shape::NotObject)
        }
        fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
            Ok(Shape::NotObject)
        }
        fn visit_unit<E>(self) -> Result<Shape, E> {
            Ok(Shape::NotObject)
        }
        fn visit_none<E>(self) -> Result<Shape, E> {
            Ok(Shape::NotObject)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Shape::NotObject)
        }
    };
}

/// The top level: `version` (kept as a value) and `items` (streamed into the cache).
pub(super) struct TopSeed<'c> {
    cache: &'c mut DetailCache,
    dropped: &'c mut usize,
    version: &'c mut Option<Value>,
    items: &'c mut Option<Shape>,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_> {
    type Value = Shape;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Shape, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_> {
    type Value = Shape;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the content cache object")
    }
    forward_not_object!();
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        while let Some(k) = map.next_key::<Cow<'de, str>>()? {
            match &*k {
                "version" => *self.version = Some(map.next_value()?),
                "items" => {
                    *self.items = Some(map.next_value_seed(ItemsSeed {
                        cache: &mut *self.cache,
                        dropped: &mut *self.dropped,
                    })?)
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Shape::Ok)
    }
}

pub(super) struct ItemsSeed<'c> {
    cache: &'c mut DetailCache,
    dropped: &'c mut usize,
}

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_> {
    type Value = Shape;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Shape, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_> {
    type Value = Shape;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the items object")
    }
    forward_not_object!();
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        // An id that appears twice (a hand-edited or damaged file) is dropped altogether: which copy is right is
        // unknown, and a wrong one could hide a layout's zone references (6.2.4). The item is simply re-read.
        let mut repeated: std::collections::HashSet<String> = std::collections::HashSet::new();
        while let Some(id) = map.next_key::<Cow<'de, str>>()? {
            let entry = map.next_value::<RawEntry>()?;
            if repeated.contains(&*id) {
                *self.dropped += 1;
                continue;
            }
            if self.cache.contains(&id) {
                self.cache.remove(&id);
                repeated.insert(id.to_string());
                *self.dropped += 2;
                continue;
            }
            match entry.into_checked() {
                Some(p) => {
                    self.cache.put(
                        &id,
                        Parts {
                            updated_at: &p.updated_at,
                            fetched_at: &p.fetched_at,
                            status: &p.status,
                            expires_at: p.expires_at.as_deref(),
                            replacement: p.replacement.as_deref(),
                            is_global: p.is_global,
                            zones: p.zones.iter().map(String::as_str).collect(),
                            thumbnail: p.thumbnail,
                        },
                        false,
                    );
                }
                None => *self.dropped += 1,
            }
        }
        Ok(Shape::Ok)
    }
}

/// One entry as read: each known field as a JSON value (checked afterwards, so a malformed entry is dropped without
/// failing the file), `malformed` when the entry is not an object or repeats a field.
#[derive(Default)]
pub(super) struct RawEntry {
    malformed: bool,
    updated_at: Option<Value>,
    fetched_at: Option<Value>,
    status: Option<Value>,
    expires_at: Option<Value>,
    replacement: Option<Value>,
    is_global: Option<Value>,
    zones: Option<Value>,
    thumbnail: Option<Value>,
}

/// A checked entry (the rules of the serde form of the file: required strings, optional nullable fields).
pub(super) struct Checked {
    updated_at: String,
    fetched_at: String,
    status: String,
    expires_at: Option<String>,
    replacement: Option<String>,
    is_global: Option<bool>,
    zones: Vec<String>,
    thumbnail: Option<ThumbnailCheck>,
}

impl RawEntry {
    fn into_checked(self) -> Option<Checked> {
        if self.malformed {
            return None;
        }
        let req = |v: Option<Value>| match v {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        let nullable = |v: Option<Value>| match v {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(s)) => Some(Some(s)),
            _ => None,
        };
        Some(Checked {
            updated_at: req(self.updated_at)?,
            fetched_at: req(self.fetched_at)?,
            status: req(self.status)?,
            expires_at: nullable(self.expires_at)?,
            replacement: nullable(self.replacement)?,
            is_global: match self.is_global {
                None | Some(Value::Null) => None,
                Some(Value::Bool(b)) => Some(b),
                _ => return None,
            },
            zones: match self.zones {
                None => Vec::new(),
                Some(v) => serde_json::from_value(v).ok()?,
            },
            thumbnail: match self.thumbnail {
                None | Some(Value::Null) => None,
                Some(v) => Some(serde_json::from_value(v).ok()?),
            },
        })
    }
}

impl<'de> Deserialize<'de> for RawEntry {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<RawEntry, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a cache entry")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEntry, A::Error> {
                let mut e = RawEntry::default();
                while let Some(k) = map.next_key::<Cow<'de, str>>()? {
                    let field = match &*k {
                        "updatedAt" => &mut e.updated_at,
                        "fetchedAt" => &mut e.fetched_at,
                        "status" => &mut e.status,
                        "expiresAt" => &mut e.expires_at,
                        "replacementContentId" => &mut e.replacement,
                        "isGlobal" => &mut e.is_global,
                        "zoneContentIds" => &mut e.zones,
                        "thumbnail" => &mut e.thumbnail,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    let v: Value = map.next_value()?;
                    if field.replace(v).is_some() {
                        e.malformed = true;
                    }
                }
                Ok(e)
            }
            fn visit_bool<E>(self, _: bool) -> Result<RawEntry, E> {
                Ok(RawEntry::malformed())
            }
            fn visit_i64<E>(self, _: i64) -> Result<RawEntry, E> {
                Ok(RawEntry::malformed())
            }
            fn visit_u64<E>(self, _: u64) -> Result<RawEntry, E> {
                Ok(RawEntry::malformed())
            }
            fn visit_f64<E>(self, _: f64) -> Result<RawEntry, E> {
                Ok(RawEntry::malformed())
            }
            fn visit_str<E>(self, _: &str) -> Result<RawEntry, E> {
                Ok(RawEntry::malformed())
            }
            fn visit_unit<E>(self) -> Result<RawEntry, E> {
                Ok(RawEntry::malformed())
            }
            fn visit_none<E>(self) -> Result<RawEntry, E> {
                Ok(RawEntry::malformed())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawEntry, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(RawEntry::malformed())
            }
        }
        d.deserialize_any(V)
    }
}

impl RawEntry {
    fn malformed() -> RawEntry {
        RawEntry {
            malformed: true,
            ..RawEntry::default()
        }
    }
}

pub(super) const READ_ERROR: &str = "read error: ";

/// Parses a cache document from `reader` (buffered by the caller or not; it is read once, front to back). Errors
/// (→ quarantine) when the JSON is unparseable, the top level is not an object, `version` is not 1 or `items` is
/// missing or not an object. Single malformed entries are dropped (they are simply stale) and counted in the second
/// value.
pub fn parse_cache_reader(reader: impl Read) -> Result<(DetailCache, usize), String> {
    let mut cache = DetailCache::default();
    let mut dropped = 0usize;
    let mut version = None;
    let mut items = None;
    let mut de =
        serde_json::Deserializer::from_reader(io::BufReader::with_capacity(1 << 16, reader));
    let top = TopSeed {
        cache: &mut cache,
        dropped: &mut dropped,
        version: &mut version,
        items: &mut items,
    }
    .deserialize(&mut de)
    .and_then(|t| de.end().map(|()| t))
    .map_err(|e| {
        if e.is_io() {
            format!("{READ_ERROR}{e}")
        } else {
            format!("unparseable JSON: {e}")
        }
    })?;
    if let Shape::NotObject = top {
        return Err("top level is not an object".into());
    }
    match version.as_ref().and_then(Value::as_u64) {
        Some(CACHE_VERSION) => {}
        other => return Err(format!("unsupported version {other:?}")),
    }
    match items {
        Some(Shape::Ok) => Ok((cache, dropped)),
        _ => Err("items is not an object".into()),
    }
}

/// [`parse_cache_reader`] over bytes.
pub fn parse_cache(bytes: &[u8]) -> Result<(DetailCache, usize), String> {
    parse_cache_reader(bytes)
}
