//! The content-list filter (the declared `ContentQueryDto` keys).

use super::*;
use crate::sandbox::model::Content;

/// A content-list filter (the declared `ContentQueryDto` keys).
#[derive(Default, Debug)]
pub(crate) struct ContentFilter {
    pub kind: Option<String>,
    pub status: Option<String>,
    pub template_orientation: Option<String>,
    pub search: Option<String>,
    pub created_after: Option<i64>,
    pub tag_names: Vec<String>,
    pub tag_ids: Vec<String>,
}

impl ContentFilter {
    /// Whether no filter is set.
    pub(crate) fn is_empty(&self) -> bool {
        self.kind.is_none()
            && self.status.is_none()
            && self.template_orientation.is_none()
            && self.search.is_none()
            && self.created_after.is_none()
            && self.tag_names.is_empty()
            && self.tag_ids.is_empty()
    }

    /// Whether `c` passes.
    pub(crate) fn matches(&self, st: &Store, c: &Content) -> bool {
        if self.kind.as_deref().is_some_and(|k| k != &*c.kind) {
            return false;
        }
        if self.status.as_deref().is_some_and(|k| k != &*c.status) {
            return false;
        }
        if self
            .template_orientation
            .as_deref()
            .is_some_and(|k| Some(k) != c.template_orientation.as_deref())
        {
            return false;
        }
        if let Some(q) = &self.search {
            let q = q.to_lowercase();
            let hit = c.name.to_lowercase().contains(&q)
                || c.description
                    .as_deref()
                    .is_some_and(|d| d.to_lowercase().contains(&q));
            if !hit {
                return false;
            }
        }
        if self.created_after.is_some_and(|t| c.created_at < t) {
            return false;
        }
        if !self.tag_names.is_empty()
            && !c.tags.iter().any(|l| {
                self.tag_names
                    .iter()
                    .any(|n| *n == st.tags[l.tag as usize].name)
            })
        {
            return false;
        }
        if !self.tag_ids.is_empty()
            && !c.tags.iter().any(|l| {
                self.tag_ids
                    .iter()
                    .any(|n| **n == *st.tags[l.tag as usize].id)
            })
        {
            return false;
        }
        true
    }
}
