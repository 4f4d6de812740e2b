//! Content projections (vizora-api.md §3.1).

use super::*;
use crate::sandbox::model::Content;
use crate::sandbox::time::{OTs, Ts};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// `GET /content` item: the narrow projection of vizora-api.md §3.1.
pub(crate) struct ContentListItem<'a> {
    pub r: R<'a>,
    pub c: &'a Content,
}

impl Serialize for ContentListItem<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.c;
        let mut m = s.serialize_map(Some(14))?;
        m.serialize_entry("id", &*c.id)?;
        m.serialize_entry("organizationId", &*c.organization_id)?;
        m.serialize_entry("name", &c.name)?;
        m.serialize_entry("type", &*c.kind)?;
        m.serialize_entry("thumbnail", &c.thumbnail)?;
        m.serialize_entry("duration", &c.duration)?;
        m.serialize_entry("fileSize", &c.file_size)?;
        m.serialize_entry("status", &*c.status)?;
        m.serialize_entry("folderId", &ostr(&c.folder_id))?;
        m.serialize_entry("createdAt", &Ts(c.created_at))?;
        m.serialize_entry("updatedAt", &Ts(c.updated_at))?;
        m.serialize_entry(
            "tags",
            &Tags {
                r: self.r,
                links: &c.tags,
                owner_key: "contentId",
                owner_id: &c.id,
            },
        )?;
        m.serialize_entry("title", &c.name)?;
        m.serialize_entry("thumbnailUrl", &c.thumbnail)?;
        m.end()
    }
}

/// Which content row projection to write.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentMode {
    /// The raw row (archive/restore responses): no tags, no aliases.
    Raw,
    /// The mapped row (PATCH response): tags and the `title`/`thumbnailUrl` aliases.
    Mapped,
    /// The detail (`GET /content/:id`): tags, `playlistItems` with `playlist`, aliases.
    Detail,
}

/// A content row in one of the [`ContentMode`] projections.
pub(crate) struct ContentRow<'a> {
    pub r: R<'a>,
    pub ci: usize,
    pub mode: ContentMode,
}

impl Serialize for ContentRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let st = self.r.s;
        let c = &st.content[self.ci];
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &*c.id)?;
        m.serialize_entry("name", &c.name)?;
        m.serialize_entry("description", &c.description)?;
        m.serialize_entry("type", &*c.kind)?;
        m.serialize_entry("url", &c.url)?;
        m.serialize_entry("thumbnail", &c.thumbnail)?;
        m.serialize_entry("duration", &c.duration)?;
        m.serialize_entry("fileSize", &c.file_size)?;
        m.serialize_entry("mimeType", &osym(&c.mime_type))?;
        m.serialize_entry("metadata", &JsonText(c.metadata.as_deref()))?;
        m.serialize_entry("status", &*c.status)?;
        m.serialize_entry("isGlobal", &c.is_global)?;
        m.serialize_entry("templateOrientation", &osym(&c.template_orientation))?;
        m.serialize_entry("createdAt", &Ts(c.created_at))?;
        m.serialize_entry("updatedAt", &Ts(c.updated_at))?;
        m.serialize_entry("expiresAt", &OTs(c.expires_at))?;
        m.serialize_entry("replacementContentId", &ostr(&c.replacement_content_id))?;
        m.serialize_entry("previousVersionId", &ostr(&c.previous_version_id))?;
        m.serialize_entry("versionNumber", &c.version_number)?;
        m.serialize_entry("organizationId", &*c.organization_id)?;
        m.serialize_entry("folderId", &ostr(&c.folder_id))?;
        if self.mode != ContentMode::Raw {
            m.serialize_entry(
                "tags",
                &Tags {
                    r: self.r,
                    links: &c.tags,
                    owner_key: "contentId",
                    owner_id: &c.id,
                },
            )?;
        }
        if self.mode == ContentMode::Detail {
            m.serialize_entry(
                "playlistItems",
                &PlaylistItemsOf {
                    r: self.r,
                    ci: self.ci,
                },
            )?;
        }
        if self.mode != ContentMode::Raw {
            m.serialize_entry("title", &c.name)?;
            m.serialize_entry("thumbnailUrl", &c.thumbnail)?;
        }
        m.end()
    }
}
