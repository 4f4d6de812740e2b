//! A compact id → position index: 64-bit hashes of the ids point at positions, and the stored id is compared on
//! lookup, so the ids are not copied into the map (a few dozen MB saved on the benchmark tenant).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a over the id's bytes, then a final avalanche (ids are random enough; no adversary here).
fn h64(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// The map's keys are already hashes: pass them through.
#[derive(Default, Clone, Copy)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Index of ids into a vector of entities.
#[derive(Default, Debug)]
pub(crate) struct IdIndex {
    map: HashMap<u64, u32, BuildHasherDefault<PassThrough>>,
    overflow: HashMap<Box<str>, u32>,
}

impl IdIndex {
    /// Builds the index; `ids` yields the id of each position in order. Duplicate ids keep the first position.
    pub(crate) fn build<'a>(
        ids: impl Iterator<Item = &'a str>,
        id_at: impl Fn(u32) -> &'a str,
    ) -> IdIndex {
        let mut ix = IdIndex::default();
        for (i, id) in ids.enumerate() {
            ix.insert(id, i as u32, &id_at);
        }
        ix
    }

    fn insert<'a>(&mut self, id: &str, pos: u32, id_at: &impl Fn(u32) -> &'a str) {
        let h = h64(id);
        match self.map.get(&h) {
            None => {
                self.map.insert(h, pos);
            }
            Some(&p) if id_at(p) == id => {}
            Some(_) => {
                self.overflow.entry(id.into()).or_insert(pos);
            }
        }
    }

    /// The position of `id`, if any.
    pub(crate) fn get<'a>(&self, id: &str, id_at: impl Fn(u32) -> &'a str) -> Option<u32> {
        match self.map.get(&h64(id)) {
            Some(&p) if id_at(p) == id => Some(p),
            _ => self.overflow.get(id).copied(),
        }
    }
}
