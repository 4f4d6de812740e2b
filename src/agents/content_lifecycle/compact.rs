//! The compact encodings of the content table and the detail cache (agents.md 6.2.1; design/README.md §7): strings
//! in one arena addressed by [`Span`]s, timestamps as [`Stamp`]s (the canonical form packed as milliseconds, anything
//! else kept as text, so string equality stays exact), interned values ([`Interner`]) and ids hashed with one
//! per-process random key ([`id_hash`]; every use of a hash fails safe on a collision).

use crate::model::{parse_ts, ts};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::OnceLock;

/// "No index" marker for `u32` indexes (no cache entry, no interned value).
pub const NONE: u32 = u32::MAX;

/// A string in an arena: byte offset and length (both `u32`; an arena is at most 4 GiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    off: u32,
    len: u32,
}

impl Span {
    /// The marker of "no string" (e.g. a null `replacementContentId`).
    pub const NONE: Span = Span { off: NONE, len: 0 };

    /// Appends `s` to `arena` and returns its span. Panics only if the arena would exceed 4 GiB (far beyond the
    /// memory a run has).
    pub fn push(arena: &mut String, s: &str) -> Span {
        let off = u32::try_from(arena.len()).expect("arena over 4 GiB");
        let len = u32::try_from(s.len()).expect("string over 4 GiB");
        arena.push_str(s);
        Span { off, len }
    }

    /// Whether this is [`Span::NONE`].
    pub fn is_none(self) -> bool {
        self.off == NONE
    }

    /// The text of the span in `arena` (`""` for [`Span::NONE`]).
    pub fn get(self, arena: &str) -> &str {
        if self.is_none() {
            return "";
        }
        &arena[self.off as usize..self.off as usize + self.len as usize]
    }

    /// The text, `None` for [`Span::NONE`].
    pub fn opt(self, arena: &str) -> Option<&str> {
        (!self.is_none()).then(|| self.get(arena))
    }
}

const TEXT_BIT: u64 = 1 << 63;
/// Milliseconds from 0000-01-01T00:00:00Z to the Unix epoch (so every year 0000–9999 packs as a non-negative value).
const YEAR0_MS: i64 = 62_167_219_200_000;

/// A timestamp field as read, packed in 8 bytes: the canonical form `YYYY-MM-DDTHH:MM:SS.mmmZ` (what the API and
/// [`ts`] write) as milliseconds, any other string as a [`Span`] of its text, or [`Stamp::ABSENT`] (missing, null or
/// not a string). The original string is always recoverable ([`Stamp::text`]), so equality of two stamps is equality
/// of the strings they were read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(u64);

/// Milliseconds since the Unix epoch of a string in exactly the canonical form, `None` otherwise (including invalid
/// dates such as month 13 or second 60).
pub fn canonical_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |v, c| {
            c.is_ascii_digit().then(|| v * 10 + u32::from(c - b'0'))
        })
    };
    let date = NaiveDate::from_ymd_opt(num(0, 4)? as i32, num(5, 7)?, num(8, 10)?)?;
    let t = date.and_hms_milli_opt(num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?)?;
    Some(t.and_utc().timestamp_millis())
}

impl Stamp {
    /// Missing, null or not a string.
    pub const ABSENT: Stamp = Stamp(u64::MAX);

    /// Packs `s`: canonical → milliseconds, anything else → its text appended to `arena`.
    pub fn encode(s: &str, arena: &mut String) -> Stamp {
        match canonical_ms(s) {
            Some(ms) => Stamp((ms + YEAR0_MS) as u64),
            None => {
                let sp = Span::push(arena, s);
                Stamp(TEXT_BIT | (u64::from(sp.len & 0x7fff_ffff) << 32) | u64::from(sp.off))
            }
        }
    }

    /// Packs a JSON field: a string → [`Stamp::encode`]; anything else → [`Stamp::ABSENT`].
    pub fn of_field(v: Option<&Value>, arena: &mut String) -> Stamp {
        match v {
            Some(Value::String(s)) => Stamp::encode(s, arena),
            _ => Stamp::ABSENT,
        }
    }

    /// Whether the field was missing, null or not a string.
    pub fn is_absent(self) -> bool {
        self == Stamp::ABSENT
    }

    fn canonical(self) -> Option<i64> {
        (self.0 & TEXT_BIT == 0).then(|| self.0 as i64 - YEAR0_MS)
    }

    fn span(self) -> Option<Span> {
        (self.0 & TEXT_BIT != 0 && !self.is_absent()).then_some(Span {
            off: self.0 as u32,
            len: ((self.0 >> 32) & 0x7fff_ffff) as u32,
        })
    }

    /// The string it was read from (`None` when absent).
    pub fn text(self, arena: &str) -> Option<Cow<'_, str>> {
        if let Some(ms) = self.canonical() {
            return DateTime::from_timestamp_millis(ms).map(|t| Cow::Owned(ts(t)));
        }
        self.span().map(|s| Cow::Borrowed(s.get(arena)))
    }

    /// The instant (`None` when absent or unparseable; text is parsed as RFC 3339 like [`parse_ts`]).
    pub fn time(self, arena: &str) -> Option<DateTime<Utc>> {
        if let Some(ms) = self.canonical() {
            return DateTime::from_timestamp_millis(ms);
        }
        self.span().and_then(|s| parse_ts(s.get(arena)))
    }

    /// Whether two present stamps were read from equal strings (absent never equals anything).
    pub fn same(a: Stamp, a_arena: &str, b: Stamp, b_arena: &str) -> bool {
        if a.is_absent() || b.is_absent() {
            return false;
        }
        match (a.canonical(), b.canonical()) {
            (Some(x), Some(y)) => x == y,
            (None, None) => a.span().map(|s| s.get(a_arena)) == b.span().map(|s| s.get(b_arena)),
            // A canonical string never equals a non-canonical one.
            _ => false,
        }
    }
}

/// Small-set string interning (`type` and `status` values): index by string, string by index.
#[derive(Debug, Clone, Default)]
pub struct Interner {
    names: Vec<Box<str>>,
    index: HashMap<Box<str>, u32>,
}

impl Interner {
    /// The index of `s`, adding it when new.
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(i) = self.index.get(s) {
            return *i;
        }
        let i = u32::try_from(self.names.len()).expect("interner overflow");
        self.names.push(s.into());
        self.index.insert(s.into(), i);
        i
    }

    /// The string of index `i` (`None` for [`NONE`] or an unknown index).
    pub fn get(&self, i: u32) -> Option<&str> {
        self.names.get(i as usize).map(|s| &**s)
    }
}

/// A 64-bit hash of a content id (one per-process random key; see the module docs for collision handling).
pub fn id_hash(s: &str) -> u64 {
    static H: OnceLock<RandomState> = OnceLock::new();
    H.get_or_init(RandomState::new).hash_one(s)
}

/// A hasher for keys that already are [`id_hash`] values (passes the `u64` through).
#[derive(Debug, Default, Clone, Copy)]
pub struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A set of [`id_hash`] values.
pub type HashSet64 = HashSet<u64, BuildHasherDefault<PreHashed>>;
/// A map keyed by [`id_hash`] values.
pub type HashMap64<V> = HashMap<u64, V, BuildHasherDefault<PreHashed>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_stamps_round_trip_and_other_text_is_kept_verbatim() {
        let mut arena = String::new();
        for t in [
            "2026-08-26T13:42:17.000Z",
            "0001-01-01T00:00:00.000Z",
            "9999-12-31T23:59:59.999Z",
            "2024-02-29T00:00:00.123Z",
        ] {
            let st = Stamp::encode(t, &mut arena);
            assert!(st.canonical().is_some(), "{t}");
            assert_eq!(st.text(&arena).unwrap(), t);
            assert_eq!(st.time(&arena), parse_ts(t));
        }
        assert!(arena.is_empty(), "canonical stamps use no arena");
        for t in [
            "2026-08-26T13:42:17Z",
            "2026-08-26T13:42:17.000+02:00",
            "2023-02-29T00:00:00.000Z",
            "2026-08-26T13:42:60.000Z",
            "u-a",
            "",
        ] {
            let st = Stamp::encode(t, &mut arena);
            assert!(st.canonical().is_none(), "{t}");
            assert_eq!(st.text(&arena).unwrap(), t);
            assert_eq!(st.time(&arena), parse_ts(t), "{t}");
        }
        let mut other = String::new();
        let a = Stamp::encode("2026-08-26T13:42:17.000Z", &mut arena);
        let b = Stamp::encode("2026-08-26T13:42:17.000Z", &mut other);
        let c = Stamp::encode("u-a", &mut other);
        let d = Stamp::encode("u-a", &mut arena);
        assert!(Stamp::same(a, &arena, b, &other));
        assert!(Stamp::same(c, &other, d, &arena));
        assert!(!Stamp::same(a, &arena, c, &other));
        assert!(!Stamp::same(Stamp::ABSENT, &arena, Stamp::ABSENT, &arena));
    }
}
