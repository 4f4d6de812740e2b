//! Playlists (vizora-api.md "Playlists"): list, detail and PATCH (name, description, loop, default, items).

use super::{Ctx, body_obj, check_id, new_cuid, pagination_only};
use crate::sandbox::lock;
use crate::sandbox::model::PlaylistItem;
use crate::sandbox::respond::{Resp, bad_request, cut, env, error, internal, list_resp};
use crate::sandbox::store::{PlaylistMode, PlaylistView, R, Store};
use crate::sandbox::validate::{F, V};
use serde_json::Value;

/// `GET /playlists`.
pub(super) fn list(ctx: &Ctx) -> Result<Resp, Resp> {
    let (sh, now) = (ctx.sh, ctx.now);
    let (page, limit) = pagination_only(ctx)?;
    let st = lock(&sh.store);
    let r = R { s: &st, now };
    let items: Vec<PlaylistView> = Store::page(
        cut(sh, "/api/v1/playlists", &st.playlist_order),
        page,
        limit,
    )
    .iter()
    .map(|&pi| PlaylistView {
        r: Some(r),
        p: &st.playlists[pi as usize],
        pi: pi as usize,
        mode: PlaylistMode::Full,
    })
    .collect();
    Ok(list_resp(
        sh,
        "/api/v1/playlists",
        &items,
        page,
        limit,
        cut(sh, "/api/v1/playlists", &st.playlist_order).len() as u64,
    ))
}

/// `GET /playlists/:id`.
pub(super) fn get(ctx: &Ctx, id: &str) -> Result<Resp, Resp> {
    check_id(id)?;
    let st = lock(&ctx.sh.store);
    let pi = st
        .playlist_pos(id)
        .ok_or_else(|| error(404, "Playlist not found"))?;
    Ok(env(
        200,
        &PlaylistView {
            r: Some(R {
                s: &st,
                now: ctx.now,
            }),
            p: &st.playlists[pi],
            pi,
            mode: PlaylistMode::Full,
        },
    ))
}

/// `{contentId, order?, duration?}` of a playlist PATCH.
type ItemSpec = (String, Option<i64>, Option<i64>);

/// `PATCH /playlists/:id`: items replaced whole; a duplicate `order` is Prisma's unique violation (500).
pub(super) fn patch(ctx: &mut Ctx, id: &str) -> Result<Resp, Resp> {
    check_id(id)?;
    let sh = ctx.sh;
    let body = body_obj(ctx)?;
    let mut v = V::new(&body, "");
    v.whitelist(&["name", "description", "loop", "isDefault", "items"]);
    let name = v.string("name", true, None, None);
    let description = v.string("description", false, None, None);
    let lp = v.boolean("loop");
    let is_default = v.boolean("isDefault");
    let mut items: Option<Vec<ItemSpec>> = None;
    match body.get("items") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            let mut out = Vec::new();
            for (i, it) in a.iter().enumerate() {
                match it {
                    Value::Object(m) => {
                        let mut iv = V::new(m, &format!("items.{i}."));
                        iv.whitelist(&["contentId", "order", "duration"]);
                        let cid = iv.req_string("contentId", None);
                        let order = iv.int("order", Some(0), None).val();
                        let dur = iv.int("duration", Some(1), Some(86_400)).val();
                        v.errs.append(&mut iv.errs);
                        if let Some(cid) = cid {
                            out.push((cid, order, dur));
                        }
                    }
                    _ => v.errs.push(format!(
                        "nested property items.{i} must be either object or array"
                    )),
                }
            }
            items = Some(out);
        }
        Some(_) => {
            v.errs
                .push("nested property items must be either object or array".into());
            v.errs.push("items must be an array".into());
        }
    }
    if !v.errs.is_empty() {
        return Err(bad_request(sh, v.errs));
    }
    let mut st = lock(&sh.store);
    let pi = st
        .playlist_pos(id)
        .ok_or_else(|| error(404, "Playlist not found"))?;
    let mut new_items = None;
    if let Some(items) = items {
        let mut distinct: Vec<&str> = items.iter().map(|(c, _, _)| c.as_str()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let valid = distinct
            .iter()
            .filter(|c| st.content_pos(c).is_some())
            .count();
        if !items.is_empty() && valid != items.len() {
            return Err(error(404, "One or more content items not found"));
        }
        let built: Vec<PlaylistItem> = items
            .into_iter()
            .enumerate()
            .map(|(i, (cid, order, dur))| PlaylistItem {
                id: new_cuid().into_boxed_str(),
                content_id: cid.into_boxed_str(),
                order: order.unwrap_or(i as i64),
                duration: dur,
            })
            .collect();
        let mut orders: Vec<i64> = built.iter().map(|i| i.order).collect();
        orders.sort_unstable();
        if orders.windows(2).any(|w| w[0] == w[1]) {
            // Unique (playlistId, order) violated inside the transaction: Prisma P2002, not caught → 500.
            return Err(internal());
        }
        new_items = Some(built);
    }
    if let Some(items) = new_items {
        st.set_playlist_items(pi, items);
    }
    let p = &mut st.playlists[pi];
    if let F::Val(n) = name {
        p.name = n;
    }
    match description {
        F::Val(d) => p.description = Some(d),
        F::Null => p.description = None,
        F::Absent => {}
    }
    if let F::Val(b) = lp {
        p.loop_ = Some(b);
    }
    if let F::Val(b) = is_default {
        p.is_default = b;
    }
    p.updated_at = ctx.now;
    let st = &*st;
    Ok(env(
        200,
        &PlaylistView {
            r: Some(R {
                s: st,
                now: ctx.now,
            }),
            p: &st.playlists[pi],
            pi,
            mode: PlaylistMode::Full,
        },
    ))
}
