//! Schedules (vizora-api.md "Schedules"): list (priority order), detail and PATCH.

use super::{Ctx, body_obj, check_id, pagination_only};
use crate::sandbox::lock;
use crate::sandbox::respond::{Resp, bad_request, cut, env, error, list_resp};
use crate::sandbox::store::{R, ScheduleMode, ScheduleView, Store};
use crate::sandbox::validate::{F, V};

/// `GET /schedules`.
pub(super) fn list(ctx: &Ctx) -> Result<Resp, Resp> {
    let (sh, now) = (ctx.sh, ctx.now);
    let (page, limit) = pagination_only(ctx)?;
    let st = lock(&sh.store);
    let r = R { s: &st, now };
    let items: Vec<ScheduleView> = Store::page(
        cut(sh, "/api/v1/schedules", &st.schedule_order),
        page,
        limit,
    )
    .iter()
    .map(|&si| ScheduleView {
        r,
        si: si as usize,
        mode: ScheduleMode::Full,
    })
    .collect();
    Ok(list_resp(
        sh,
        "/api/v1/schedules",
        &items,
        page,
        limit,
        cut(sh, "/api/v1/schedules", &st.schedule_order).len() as u64,
    ))
}

/// `GET /schedules/:id`.
pub(super) fn get(ctx: &Ctx, id: &str) -> Result<Resp, Resp> {
    check_id(id)?;
    let st = lock(&ctx.sh.store);
    let si = st
        .schedule_pos(id)
        .ok_or_else(|| error(404, "Schedule not found"))?;
    Ok(env(
        200,
        &ScheduleView {
            r: R {
                s: &st,
                now: ctx.now,
            },
            si,
            mode: ScheduleMode::Full,
        },
    ))
}

/// `PATCH /schedules/:id`: known playlist, display or group; a display and a group together is 400.
pub(super) fn patch(ctx: &mut Ctx, id: &str) -> Result<Resp, Resp> {
    check_id(id)?;
    let sh = ctx.sh;
    let body = body_obj(ctx)?;
    let mut v = V::new(&body, "");
    v.whitelist(&[
        "name",
        "description",
        "startDate",
        "endDate",
        "startTime",
        "endTime",
        "daysOfWeek",
        "priority",
        "isActive",
        "playlistId",
        "displayId",
        "displayGroupId",
    ]);
    let name = v.string("name", false, None, None);
    let description = v.string("description", false, None, None);
    let start_date = v.iso("startDate");
    let end_date = v.iso("endDate");
    let start_time = v.int("startTime", Some(0), Some(1439));
    let end_time = v.int("endTime", Some(0), Some(1439));
    let days = v.int_array("daysOfWeek", 0, 6);
    let priority = v.int("priority", None, None);
    let active = v.boolean("isActive");
    let playlist = v.string("playlistId", false, None, None);
    let display = v.string("displayId", false, None, None);
    let group = v.string("displayGroupId", false, None, None);
    if !v.errs.is_empty() {
        return Err(bad_request(sh, v.errs));
    }
    let mut st = lock(&sh.store);
    let si = st
        .schedule_pos(id)
        .ok_or_else(|| error(404, "Schedule not found"))?;
    if matches!(display, F::Val(_)) && matches!(group, F::Val(_)) {
        return Err(error(
            400,
            "Cannot specify both displayId and displayGroupId",
        ));
    }
    if let F::Val(p) = &playlist
        && st.playlist_pos(p).is_none()
    {
        return Err(error(404, "Playlist not found"));
    }
    if let F::Val(d) = &display
        && st.display_pos(d).is_none()
    {
        return Err(error(404, "Display not found"));
    }
    if let F::Val(g) = &group
        && st.group_pos(g).is_none()
    {
        return Err(error(404, "Display group not found"));
    }
    let old_playlist = st.schedules[si].playlist_id.clone();
    let old_display = st.schedules[si].display_id.clone();
    let old_priority = st.schedules[si].priority;
    let x = &mut st.schedules[si];
    if let F::Val(n) = name {
        x.name = n;
    }
    match description {
        F::Val(d) => x.description = Some(d),
        F::Null => x.description = None,
        F::Absent => {}
    }
    if let F::Val(d) = start_date {
        x.start_date = d;
    }
    if let F::Val(d) = end_date {
        x.end_date = Some(d);
    }
    match start_time {
        F::Val(t) => x.start_time = Some(t),
        F::Null => x.start_time = None,
        F::Absent => {}
    }
    match end_time {
        F::Val(t) => x.end_time = Some(t),
        F::Null => x.end_time = None,
        F::Absent => {}
    }
    if let F::Val(d) = days {
        x.days_of_week = d;
    }
    if let F::Val(p) = priority {
        x.priority = p;
    }
    if let F::Val(a) = active {
        x.is_active = a;
    }
    if let F::Val(p) = playlist {
        x.playlist_id = p.into_boxed_str();
    }
    if let F::Val(d) = display {
        x.display_id = Some(d.into_boxed_str());
        x.display_group_id = None;
    } else if let F::Val(g) = group {
        x.display_group_id = Some(g.into_boxed_str());
        x.display_id = None;
    }
    x.updated_at = ctx.now;
    let new_priority = x.priority;
    st.relink_schedule(si, &old_playlist, old_display.as_deref());
    if new_priority != old_priority {
        st.sort_schedules();
    }
    Ok(env(
        200,
        &ScheduleView {
            r: R {
                s: &st,
                now: ctx.now,
            },
            si,
            mode: ScheduleMode::Full,
        },
    ))
}
