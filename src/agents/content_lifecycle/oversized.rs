//! Oversized files (agents.md 6.2.3): the listed `fileSize` against `OPS_MAX_FILE_SIZE_MB` ([`size_verdict`]) and
//! the `oversized_file` incident of one row.

use super::table::{ContentTable, SizeState};

/// The size check of a listed active item (agents.md 6.2.3).
#[derive(Debug, Clone, PartialEq)]
pub enum SizeVerdict {
    /// Within the limit, or no file (`fileSize` null).
    Ok,
    /// `fileSize` > limit (bytes).
    Oversized(u64),
    /// `fileSize` present but not a non-negative integer: not examined.
    Unparseable,
}

/// The listed `fileSize` of row `r` against `max_bytes` (strictly greater is oversized).
pub fn size_verdict(table: &ContentTable, r: u32, max_bytes: u64) -> SizeVerdict {
    match table.size(r) {
        SizeState::Null => SizeVerdict::Ok,
        SizeState::Bytes(b) if b > max_bytes => SizeVerdict::Oversized(b),
        SizeState::Bytes(_) => SizeVerdict::Ok,
        SizeState::Unparseable => SizeVerdict::Unparseable,
    }
}
