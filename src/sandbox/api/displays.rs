//! Displays (vizora-api.md "Displays"): list, detail (UUID ids) and PATCH. Fleet commands are in `fleet`.

use super::{Ctx, body_obj, check_uuid, opt_box, pagination_only};
use crate::sandbox::lock;
use crate::sandbox::respond::{Resp, bad_request, cut, env, error, list_resp};
use crate::sandbox::store::{DisplayMode, DisplayView, R, Store};
use crate::sandbox::validate::{F, V};
use serde_json::Value;
use std::sync::Arc;

/// `GET /displays`.
pub(super) fn list(ctx: &Ctx) -> Result<Resp, Resp> {
    let (sh, now) = (ctx.sh, ctx.now);
    let (page, limit) = pagination_only(ctx)?;
    let st = lock(&sh.store);
    let r = R { s: &st, now };
    let items: Vec<DisplayView> =
        Store::page(cut(sh, "/api/v1/displays", &st.display_order), page, limit)
            .iter()
            .map(|&di| DisplayView {
                r,
                di: di as usize,
                mode: DisplayMode::List,
            })
            .collect();
    Ok(list_resp(
        sh,
        "/api/v1/displays",
        &items,
        page,
        limit,
        cut(sh, "/api/v1/displays", &st.display_order).len() as u64,
    ))
}

/// `GET /displays/:id`.
pub(super) fn get(ctx: &Ctx, id: &str) -> Result<Resp, Resp> {
    check_uuid(id)?;
    let st = lock(&ctx.sh.store);
    let di = st
        .display_pos(id)
        .ok_or_else(|| error(404, "Display not found"))?;
    Ok(env(
        200,
        &DisplayView {
            r: R {
                s: &st,
                now: ctx.now,
            },
            di,
            mode: DisplayMode::Detail,
        },
    ))
}

/// `PATCH /displays/:id`: a known playlist only, a device id not used by another display.
pub(super) fn patch(ctx: &mut Ctx, id: &str) -> Result<Resp, Resp> {
    check_uuid(id)?;
    let sh = ctx.sh;
    let body = body_obj(ctx)?;
    let mut v = V::new(&body, "");
    v.whitelist(&[
        "name",
        "description",
        "location",
        "deviceId",
        "status",
        "orientation",
        "resolution",
        "metadata",
        "currentPlaylistId",
    ]);
    let name = v.string("name", false, Some(1), Some(100));
    let description = v.string("description", false, None, None);
    let location = v.string("location", false, None, None);
    let device_id = v.string("deviceId", false, None, None);
    let status = v.one_of("status", &["online", "offline", "error"]);
    let orientation = v.one_of(
        "orientation",
        &[
            "landscape",
            "portrait",
            "landscape_flipped",
            "portrait_flipped",
        ],
    );
    let resolution = v.string("resolution", false, None, None);
    let metadata = v.object("metadata");
    let playlist = v.string("currentPlaylistId", false, None, None);
    if !v.errs.is_empty() {
        return Err(bad_request(sh, v.errs));
    }
    let mut st = lock(&sh.store);
    let di = st
        .display_pos(id)
        .ok_or_else(|| error(404, "Display not found"))?;
    if let F::Val(p) = &playlist
        && st.playlist_pos(p).is_none()
    {
        return Err(error(
            404,
            "Playlist not found or does not belong to your organization",
        ));
    }
    if let F::Val(dev) = &device_id
        && st
            .displays
            .iter()
            .enumerate()
            .any(|(i, d)| i != di && d.device_identifier == *dev)
    {
        return Err(error(409, "Device ID already in use"));
    }
    let d = &mut st.displays[di];
    if let F::Val(n) = name {
        d.nickname = Some(n);
    }
    match description {
        F::Val(x) => d.description = Some(x),
        F::Null => d.description = None,
        F::Absent => {}
    }
    match location {
        F::Val(x) => d.location = Some(Arc::from(x.as_str())),
        F::Null => d.location = None,
        F::Absent => {}
    }
    if let F::Val(x) = device_id {
        d.device_identifier = x;
    }
    if let F::Val(x) = status {
        d.status = Arc::from(x.as_str());
    }
    if let F::Val(x) = orientation {
        d.orientation = Arc::from(x.as_str());
    }
    match resolution {
        F::Val(x) => d.resolution = Some(Arc::from(x.as_str())),
        F::Null => d.resolution = None,
        F::Absent => {}
    }
    match metadata {
        F::Val(m) => d.metadata = Some(Value::Object(m).to_string().into_boxed_str()),
        F::Null => d.metadata = None,
        F::Absent => {}
    }
    if let Some(p) = opt_box(playlist) {
        d.current_playlist_id = p;
    }
    d.updated_at = ctx.now;
    Ok(env(
        200,
        &DisplayView {
            r: R {
                s: &st,
                now: ctx.now,
            },
            di,
            mode: DisplayMode::Detail,
        },
    ))
}
