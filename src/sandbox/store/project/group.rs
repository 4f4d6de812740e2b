//! Display-group projections.

use super::*;
use crate::sandbox::time::Ts;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// Which display-group projection to write.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupMode {
    /// The row only.
    Row,
    /// `GET /display-groups` item: `displays: [{displayId}]`, `_count.displays`.
    List,
    /// `GET /display-groups/:id`: members with their display summary.
    Detail,
}

/// A display group in one of the [`GroupMode`] projections.
pub(crate) struct GroupView<'a> {
    pub r: R<'a>,
    pub gi: usize,
    pub mode: GroupMode,
}

impl Serialize for GroupView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let st = self.r.s;
        let g = &st.groups[self.gi];
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &*g.id)?;
        m.serialize_entry("name", &g.name)?;
        m.serialize_entry("description", &g.description)?;
        m.serialize_entry("createdAt", &Ts(g.created_at))?;
        m.serialize_entry("updatedAt", &Ts(g.updated_at))?;
        m.serialize_entry("organizationId", &*g.organization_id)?;
        let members: Vec<usize> = g
            .display_ids
            .iter()
            .filter_map(|id| st.display_pos(id))
            .collect();
        match self.mode {
            GroupMode::Row => {}
            GroupMode::List => {
                let ids: Vec<MemberId> = members
                    .iter()
                    .map(|&di| MemberId {
                        display_id: &st.displays[di].id,
                    })
                    .collect();
                m.serialize_entry("displays", &ids)?;
                m.serialize_entry(
                    "_count",
                    &CountDisplays {
                        displays: members.len(),
                    },
                )?;
            }
            GroupMode::Detail => {
                let rows: Vec<GroupMember> = members
                    .iter()
                    .map(|&di| GroupMember {
                        r: self.r,
                        gi: self.gi,
                        di,
                        with_display: true,
                    })
                    .collect();
                m.serialize_entry("displays", &rows)?;
                m.serialize_entry(
                    "_count",
                    &CountDisplays {
                        displays: members.len(),
                    },
                )?;
            }
        }
        m.end()
    }
}
