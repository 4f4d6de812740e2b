//! The list walks of one run (agents.md 6.2 inputs, 5.4): `GET /api/v1/content` and `GET /api/v1/playlists`
//! concurrently, each item turned into its compact form as its page arrives ([`ContentSink`] into the table,
//! `PlaylistSink` into the references), and the `scan-truncated` finding of an incomplete walk.

use super::detail_cache::DetailCache;
use super::references::{PlaylistRefs, PlaylistSink};
use super::table::{ContentTable, DetailSlots, TableOptions};
use super::{CONTENT_LIST, PLAYLIST_LIST};
use crate::vizora::{ItemSink, ListResult, VizoraApi};
use serde_json::Value;

/// The [`ItemSink`] of the content walk: each item becomes a row of the table as its page arrives.
pub struct ContentSink<'a> {
    /// The table being filled.
    pub table: &'a mut ContentTable,
    /// The detail cache (loaded before the walk) rows are linked to.
    pub cache: Option<&'a dyn DetailSlots>,
}

impl ItemSink for ContentSink<'_> {
    fn item(&mut self, item: Value) {
        self.table.push(&item, self.cache);
    }
    fn restart(&mut self) {
        self.table.clear();
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------------------------

/// What the list walks of one run leave (agents.md 6.2 inputs): the compact content table, the playlist references,
/// and the two walks' results (their `items` are empty: every item went to a sink; `collected` is the count).
#[derive(Debug)]
pub struct Observation {
    /// One compact row per listed content item (`GET /api/v1/content`).
    pub table: ContentTable,
    /// The content references harvested from the listed playlists (`GET /api/v1/playlists`).
    pub playlists: PlaylistRefs,
    /// The content walk's result (`complete`, `total`, `collected`, `reason`, `pages`).
    pub content_list: ListResult,
    /// The playlist walk's result.
    pub playlist_list: ListResult,
}

impl Observation {
    /// Both walks are complete (`scanComplete`).
    pub fn scan_complete(&self) -> bool {
        self.content_list.complete && self.playlist_list.complete
    }
}

/// The list walks of agents.md 6.2 (`GET /api/v1/content` and `GET /api/v1/playlists`, concurrently, 5.4), each item
/// turned into its compact form as its page arrives ([`ContentSink`] linked to `cache`, [`PlaylistSink`]).
///
/// Errors: a page-1 failure, a fatal API error or an unknown list shape of either walk →
/// `required list failed: <path>: <error>[; …]` (the run then ends with exit 2 and no state write).
pub async fn observe(
    api: &dyn VizoraApi,
    cache: &DetailCache,
    opts: TableOptions,
) -> Result<Observation, String> {
    let mut table = ContentTable::new(opts);
    let mut playlists = PlaylistRefs::default();
    let (c, p) = {
        let mut cs = ContentSink {
            table: &mut table,
            cache: Some(cache),
        };
        let mut ps = PlaylistSink(&mut playlists);
        tokio::join!(
            api.walk_into(CONTENT_LIST, &mut cs),
            api.walk_into(PLAYLIST_LIST, &mut ps)
        )
    };
    match (c, p) {
        (Ok(content_list), Ok(playlist_list)) => Ok(Observation {
            table,
            playlists,
            content_list,
            playlist_list,
        }),
        (c, p) => {
            let mut why = Vec::new();
            if let Err(e) = &c {
                why.push(format!("{CONTENT_LIST}: {e}"));
            }
            if let Err(e) = &p {
                why.push(format!("{PLAYLIST_LIST}: {e}"));
            }
            Err(format!("required list failed: {}", why.join("; ")))
        }
    }
}
