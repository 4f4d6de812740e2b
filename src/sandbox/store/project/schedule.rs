//! Schedule projections.

use super::*;
use crate::sandbox::time::{OTs, Ts};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// Which schedule projection to write.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScheduleMode {
    /// The list/detail/PATCH projection: scalars plus `playlist` (+`_count.items`), `display` (full row),
    /// `displayGroup`.
    Full,
    /// Scalars plus the playlist summary (the `schedules[]` of a display detail).
    WithPlaylistSummary,
}

/// A schedule in one of the [`ScheduleMode`] projections.
pub(crate) struct ScheduleView<'a> {
    pub r: R<'a>,
    pub si: usize,
    pub mode: ScheduleMode,
}

impl Serialize for ScheduleView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let st = self.r.s;
        let x = &st.schedules[self.si];
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &*x.id)?;
        m.serialize_entry("name", &x.name)?;
        m.serialize_entry("description", &x.description)?;
        m.serialize_entry("startDate", &Ts(x.start_date))?;
        m.serialize_entry("endDate", &OTs(x.end_date))?;
        m.serialize_entry("startTime", &x.start_time)?;
        m.serialize_entry("endTime", &x.end_time)?;
        m.serialize_entry("daysOfWeek", &x.days_of_week)?;
        m.serialize_entry("priority", &x.priority)?;
        m.serialize_entry("isActive", &x.is_active)?;
        m.serialize_entry("createdAt", &Ts(x.created_at))?;
        m.serialize_entry("updatedAt", &Ts(x.updated_at))?;
        m.serialize_entry("organizationId", &*x.organization_id)?;
        m.serialize_entry("playlistId", &*x.playlist_id)?;
        m.serialize_entry("displayId", &ostr(&x.display_id))?;
        m.serialize_entry("displayGroupId", &ostr(&x.display_group_id))?;
        let pl = st.playlist_pos(&x.playlist_id);
        match self.mode {
            ScheduleMode::WithPlaylistSummary => {
                let v = pl.map(|pi| PlaylistView {
                    r: None,
                    p: &st.playlists[pi],
                    pi,
                    mode: PlaylistMode::Scalars,
                });
                m.serialize_entry("playlist", &v)?;
            }
            ScheduleMode::Full => {
                let v = pl.map(|pi| PlaylistView {
                    r: None,
                    p: &st.playlists[pi],
                    pi,
                    mode: PlaylistMode::WithItemCount,
                });
                m.serialize_entry("playlist", &v)?;
                let d = x
                    .display_id
                    .as_deref()
                    .and_then(|id| st.display_pos(id))
                    .map(|di| DisplayView {
                        r: self.r,
                        di,
                        mode: DisplayMode::FullRow,
                    });
                m.serialize_entry("display", &d)?;
                let g = x
                    .display_group_id
                    .as_deref()
                    .and_then(|id| st.group_pos(id))
                    .map(|gi| GroupView {
                        r: self.r,
                        gi,
                        mode: GroupMode::Row,
                    });
                m.serialize_entry("displayGroup", &g)?;
            }
        }
        m.end()
    }
}
