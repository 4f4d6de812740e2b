//! The pure detection rules of schedule-doctor (agents.md 6.4) under one public path, re-exported from the module
//! of each check: fallback resolution (6.4.1), the first-match checks of active schedules (6.4.2), playlist item
//! counts and equal-priority overlaps (6.4.3) and the coverage verdicts of displays (6.4.4). No I/O and no clock:
//! `now` is always passed in (the run's start).
//!
//! Entities are referred to by their position in the walked lists (`u32`/`usize` indexes), so detection allocates
//! strings only for findings. Time model (agents.md 6.0): weekly minute intervals from
//! [`crate::agents::common::weekly_intervals`] in the display's IANA time zone, intersected under week shifts
//! −1/0/+1 by [`crate::agents::common::first_intersection`].

pub use super::active::{
    ActiveChecks, ActiveFault, ActiveVerdict, MissingTarget, check_active, check_schedules,
};
pub use super::coverage_gaps::{
    Coverage, CoverageVerdicts, DisplayCoverage, coverage, coverage_verdicts,
};
pub use super::empty_playlists::{EmptyPlaylists, empty_playlists, playlist_item_count};
pub use super::fallback::{Fallback, FallbackSource, resolve_fallback};
pub use super::overlap_window::{OverlapSchedule, clip_to_days, local_weekdays, pair_overlap};
pub use super::overlaps::{OverlapPair, OverlapResult, find_overlaps, overlaps, pair_key};
pub use super::targeting::{EntitySets, TargetIndex, list_omissions};
/// Whether an id may be put in a request path as is (the shared check of every agent,
/// [`crate::agents::common::path_safe_id`]).
pub use crate::agents::common::path_safe_id;
