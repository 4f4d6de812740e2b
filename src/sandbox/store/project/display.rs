//! Display projections and display-group member rows.

use super::*;
use crate::sandbox::store::Store;
use crate::sandbox::time::{OTs, Ts};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// Which display projection to write.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum DisplayMode {
    /// The embedded select (group members): list fields without tags.
    Embedded,
    /// `GET /displays` item.
    List,
    /// `GET /displays/:id`: list fields plus metadata, screenshots, `groups[]`, active `schedules[]`.
    Detail,
    /// The full device row (schedule relation), including `jwtToken`, `pairingCode`, `socketId`.
    FullRow,
}

/// A display in one of the [`DisplayMode`] projections.
pub(crate) struct DisplayView<'a> {
    pub r: R<'a>,
    pub di: usize,
    pub mode: DisplayMode,
}

impl Serialize for DisplayView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let st = self.r.s;
        let d = &st.displays[self.di];
        let hb = OTs(Store::heartbeat(d, self.r.now));
        let mut m = s.serialize_map(None)?;
        if self.mode == DisplayMode::FullRow {
            m.serialize_entry("id", &*d.id)?;
            m.serialize_entry("organizationId", &*d.organization_id)?;
            m.serialize_entry("deviceIdentifier", &d.device_identifier)?;
            m.serialize_entry("nickname", &d.nickname)?;
            m.serialize_entry("description", &d.description)?;
            m.serialize_entry("location", &osym(&d.location))?;
            m.serialize_entry("pairingCode", &d.pairing_code)?;
            m.serialize_entry("pairingCodeExpiresAt", &OTs(d.pairing_code_expires_at))?;
            m.serialize_entry("jwtToken", &d.jwt_token)?;
            m.serialize_entry("socketId", &d.socket_id)?;
            m.serialize_entry("status", &*d.status)?;
            m.serialize_entry("orientation", &*d.orientation)?;
            m.serialize_entry("resolution", &osym(&d.resolution))?;
            m.serialize_entry("lastHeartbeat", &hb)?;
            m.serialize_entry("metadata", &JsonText(d.metadata.as_deref()))?;
            m.serialize_entry("timezone", &*d.timezone)?;
            m.serialize_entry("lastScreenshot", &d.last_screenshot)?;
            m.serialize_entry("lastScreenshotAt", &OTs(d.last_screenshot_at))?;
            m.serialize_entry("isDisabled", &d.is_disabled)?;
            m.serialize_entry("currentPlaylistId", &ostr(&d.current_playlist_id))?;
            m.serialize_entry("createdAt", &Ts(d.created_at))?;
            m.serialize_entry("updatedAt", &Ts(d.updated_at))?;
            m.serialize_entry("pairedAt", &OTs(d.paired_at))?;
            m.serialize_entry("unpairedAt", &OTs(d.unpaired_at))?;
            return m.end();
        }
        m.serialize_entry("id", &*d.id)?;
        m.serialize_entry("organizationId", &*d.organization_id)?;
        m.serialize_entry("deviceIdentifier", &d.device_identifier)?;
        m.serialize_entry("nickname", &d.nickname)?;
        m.serialize_entry("description", &d.description)?;
        m.serialize_entry("location", &osym(&d.location))?;
        m.serialize_entry("status", &*d.status)?;
        m.serialize_entry("orientation", &*d.orientation)?;
        m.serialize_entry("resolution", &osym(&d.resolution))?;
        m.serialize_entry("timezone", &*d.timezone)?;
        m.serialize_entry("lastHeartbeat", &hb)?;
        m.serialize_entry("isDisabled", &d.is_disabled)?;
        m.serialize_entry("currentPlaylistId", &ostr(&d.current_playlist_id))?;
        m.serialize_entry("createdAt", &Ts(d.created_at))?;
        m.serialize_entry("updatedAt", &Ts(d.updated_at))?;
        m.serialize_entry("pairedAt", &OTs(d.paired_at))?;
        m.serialize_entry("unpairedAt", &OTs(d.unpaired_at))?;
        if self.mode == DisplayMode::Embedded {
            return m.end();
        }
        m.serialize_entry(
            "tags",
            &Tags {
                r: self.r,
                links: &d.tags,
                owner_key: "displayId",
                owner_id: &d.id,
            },
        )?;
        if self.mode == DisplayMode::Detail {
            m.serialize_entry("metadata", &JsonText(d.metadata.as_deref()))?;
            m.serialize_entry("lastScreenshot", &d.last_screenshot)?;
            m.serialize_entry("lastScreenshotAt", &OTs(d.last_screenshot_at))?;
            let groups: Vec<GroupMember> = st
                .display_groups
                .get(&(self.di as u32))
                .map(|v| {
                    v.iter()
                        .map(|&gi| GroupMember {
                            r: self.r,
                            gi: gi as usize,
                            di: self.di,
                            with_display: false,
                        })
                        .collect()
                })
                .unwrap_or_default();
            m.serialize_entry("groups", &groups)?;
            let scheds: Vec<ScheduleView> = st
                .display_scheds
                .get(&(self.di as u32))
                .map(|v| {
                    v.iter()
                        .map(|&si| si as usize)
                        .filter(|&si| st.schedules[si].is_active)
                        .map(|si| ScheduleView {
                            r: self.r,
                            si,
                            mode: ScheduleMode::WithPlaylistSummary,
                        })
                        .collect()
                })
                .unwrap_or_default();
            m.serialize_entry("schedules", &scheds)?;
        }
        m.end()
    }
}

/// A `DisplayGroupMember` row with either its `displayGroup` or its `display`.
pub(crate) struct GroupMember<'a> {
    pub r: R<'a>,
    pub gi: usize,
    pub di: usize,
    pub with_display: bool,
}

impl Serialize for GroupMember<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let st = self.r.s;
        let g = &st.groups[self.gi];
        let d = &st.displays[self.di];
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("id", &member_id(&g.id, &d.id))?;
        m.serialize_entry("displayId", &*d.id)?;
        m.serialize_entry("displayGroupId", &*g.id)?;
        m.serialize_entry("createdAt", &Ts(g.created_at.max(d.created_at)))?;
        if self.with_display {
            m.serialize_entry(
                "display",
                &DisplayView {
                    r: self.r,
                    di: self.di,
                    mode: DisplayMode::Embedded,
                },
            )?;
        } else {
            m.serialize_entry(
                "displayGroup",
                &GroupView {
                    r: self.r,
                    gi: self.gi,
                    mode: GroupMode::Row,
                },
            )?;
        }
        m.end()
    }
}
