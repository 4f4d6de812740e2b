//! Display groups (vizora-api.md "Display groups"): list and detail (read-only here).

use super::{Ctx, check_id, pagination_only};
use crate::sandbox::lock;
use crate::sandbox::respond::{Resp, cut, env, error, list_resp};
use crate::sandbox::store::{GroupMode, GroupView, R, Store};

/// `GET /display-groups`.
pub(super) fn list(ctx: &Ctx) -> Result<Resp, Resp> {
    let (sh, now) = (ctx.sh, ctx.now);
    let (page, limit) = pagination_only(ctx)?;
    let st = lock(&sh.store);
    let r = R { s: &st, now };
    let items: Vec<GroupView> = Store::page(
        cut(sh, "/api/v1/display-groups", &st.group_order),
        page,
        limit,
    )
    .iter()
    .map(|&gi| GroupView {
        r,
        gi: gi as usize,
        mode: GroupMode::List,
    })
    .collect();
    Ok(list_resp(
        sh,
        "/api/v1/display-groups",
        &items,
        page,
        limit,
        cut(sh, "/api/v1/display-groups", &st.group_order).len() as u64,
    ))
}

/// `GET /display-groups/:id`.
pub(super) fn get(ctx: &Ctx, id: &str) -> Result<Resp, Resp> {
    check_id(id)?;
    let st = lock(&ctx.sh.store);
    let gi = st
        .group_pos(id)
        .ok_or_else(|| error(404, "Display group not found"))?;
    Ok(env(
        200,
        &GroupView {
            r: R {
                s: &st,
                now: ctx.now,
            },
            gi,
            mode: GroupMode::Detail,
        },
    ))
}
