//! The fixture-format object of a stored entity (`GET /__sandbox/entities/...`).

use super::*;
use serde_json::Value;

/// The fixture-format object of a stored entity (for `GET /__sandbox/entities/...`).
pub(crate) fn raw_entity(r: R, collection: &str, id: &str) -> Option<Value> {
    let st = r.s;
    let v = match collection {
        "content" => {
            let ci = st.content_pos(id)?;
            let mut v = serde_json::to_value(ContentRow {
                r,
                ci,
                mode: ContentMode::Mapped,
            })
            .ok()?;
            if let Some(m) = v.as_object_mut() {
                m.insert(
                    "playlistRefs".into(),
                    serde_json::to_value(PlaylistItemsOf { r, ci }).ok()?,
                );
            }
            v
        }
        "displays" => {
            let di = st.display_pos(id)?;
            let mut v = serde_json::to_value(DisplayView {
                r,
                di,
                mode: DisplayMode::FullRow,
            })
            .ok()?;
            let d = &st.displays[di];
            if let Some(m) = v.as_object_mut() {
                m.insert(
                    "tags".into(),
                    serde_json::to_value(Tags {
                        r,
                        links: &d.tags,
                        owner_key: "displayId",
                        owner_id: &d.id,
                    })
                    .ok()?,
                );
                m.insert("_sandbox".into(), serde_json::json!({ "live": d.live, "stayOffline": d.stay_offline, "online": Store::is_online(d, r.now) }));
            }
            v
        }
        "playlists" => {
            let pi = st.playlist_pos(id)?;
            serde_json::to_value(PlaylistView {
                r: Some(r),
                p: &st.playlists[pi],
                pi,
                mode: PlaylistMode::Full,
            })
            .ok()?
        }
        "schedules" => {
            let si = st.schedule_pos(id)?;
            serde_json::to_value(ScheduleView {
                r,
                si,
                mode: ScheduleMode::Full,
            })
            .ok()?
        }
        "display-groups" | "displayGroups" | "groups" => {
            let gi = st.group_pos(id)?;
            let mut v = serde_json::to_value(GroupView {
                r,
                gi,
                mode: GroupMode::Row,
            })
            .ok()?;
            if let Some(m) = v.as_object_mut() {
                m.insert(
                    "displayIds".into(),
                    serde_json::json!(
                        st.groups[gi]
                            .display_ids
                            .iter()
                            .map(|s| &**s)
                            .collect::<Vec<_>>()
                    ),
                );
            }
            v
        }
        "organization" | "organizations" => {
            if id != st.org_id && id != "current" {
                return None;
            }
            Value::Object(st.org.clone())
        }
        "users" => {
            let u = st
                .users
                .iter()
                .find(|u| u.get("id").and_then(Value::as_str) == Some(id))?;
            let mut u = u.clone();
            u.remove("password");
            Value::Object(u)
        }
        _ => return None,
    };
    Some(v)
}
