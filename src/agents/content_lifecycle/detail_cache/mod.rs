//! content-lifecycle's detail cache `ops-content-cache.json` (agents.md 6.2.1, 4.1).
//!
//! The content list of the Vizora API lacks `expiresAt`, `replacementContentId`, `isGlobal` and `metadata`
//! (vizora-api.md §3.1), so the agent keeps what it learnt from `GET /api/v1/content/:id` here:
//!
//! ```json
//! {"version":1,"items":{"<id>":{"updatedAt","fetchedAt","status","expiresAt","replacementContentId","isGlobal",
//!   "zoneContentIds":[…],"thumbnail":{"url","ok","checkedAt"}}}}
//! ```
//!
//! * An entry is **fresh** when its `updatedAt` equals the list item's `updatedAt` (string equality).
//! * [`refresh_plan`](super::refresh_plan) picks the stale or missing entries of listed `active` items and of listed layouts that are not
//!   `archived`/`expired`: layouts first, then oldest `createdAt`, at most `limit` of them.
//! * The file has its own lock (`<cache>.lock`, the protocol of agents.md 4.2 via [`FileLock`](crate::state::lock::FileLock)) and is written with
//!   [`atomic_write_with`](crate::state::lock::atomic_write_with) (mode 0644), streamed as compact JSON. A corrupt file is quarantined to
//!   `<cache>.corrupt-<pid>-<n>` (never modified) and the cache is rebuilt from empty; in a dry run nothing is renamed
//!   or written. Files in the old pretty-printed form load the same.
//!
//! In memory ([`DetailCache`]) entries are compact slots (about 64 bytes plus the id): strings in one arena,
//! timestamps as [`Stamp`](super::compact::Stamp)s, `status` interned, an id index keyed by [`id_hash`](super::compact::id_hash) (a colliding id is left out: its item
//! has no fresh entry and is not examined, the safe direction). The file is parsed straight from a buffered reader
//! into slots (one malformed entry is dropped and counted; bad JSON or a bad top level quarantines the file).
//!
//! Everything but [`CacheFile::load`] and [`CacheFile::save`] is pure.

mod entry;
mod file;
mod parse;
mod store;
#[cfg(test)]
mod tests;

pub use entry::{CacheEntry, DetailFields, ThumbnailCheck, needs_detail};
pub use file::{CacheFile, Loaded};
pub use parse::{parse_cache, parse_cache_reader};
pub use store::{DetailCache, EntryRef};

/// File name of the cache in the state dir (agents.md 4.1).
pub const CACHE_FILE_NAME: &str = "ops-content-cache.json";
/// Format version written and accepted.
pub const CACHE_VERSION: u64 = 1;
