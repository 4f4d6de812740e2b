//! Fleet commands (vizora-api.md "Fleet commands"): `POST /fleet/commands` to a device, group, organization or tag.

use super::auth::AuthUser;
use super::{Ctx, body_obj};
use crate::sandbox::lock;
use crate::sandbox::respond::{Resp, bad_request, env, error, error_bare};
use crate::sandbox::store::Store;
use crate::sandbox::validate::V;
use serde_json::json;

/// Fleet commands accepted per minute (the controller's own limit).
const FLEET_MAX_PER_MIN: usize = 10;

/// `POST /fleet/commands`: validation, emergency and `update` for admins only, 10 commands a minute, the target
/// resolved in the organization; a `reload` reconnects every k-th merely disconnected player (`reconnectShare`).
pub(super) fn command(ctx: &mut Ctx, user: &AuthUser) -> Result<Resp, Resp> {
    let sh = ctx.sh;
    let now = ctx.now;
    let body = body_obj(ctx)?;
    let mut v = V::new(&body, "");
    v.whitelist(&["command", "target", "payload"]);
    let command = v.req_one_of(
        "command",
        &[
            "reload",
            "restart",
            "reboot",
            "clear_cache",
            "push_content",
            "update",
        ],
    );
    let target = v.nested("target", true, |t| {
        t.whitelist(&["type", "id"]);
        let ty = t.req_one_of("type", &["device", "group", "organization", "tag"]);
        let id = t.req_string("id", Some("target.id must be a non-empty string"));
        (ty, id)
    });
    let payload = v.nested("payload", false, |p| {
        p.whitelist(&["contentId", "duration", "priority", "feedUrl"]);
        let content = p.string("contentId", false, None, None).val();
        if let Some(d) = p.obj_get("duration")
            && !matches!(d.as_i64(), Some(15 | 30 | 60 | 120 | 240))
        {
            p.push_err("duration must be one of the following values: 15, 30, 60, 120, 240");
            if !d.is_number() {
                p.push_err("duration must be a number conforming to the specified constraints");
            }
        }
        let priority = p.one_of("priority", &["normal", "emergency"]).val();
        let _feed = p.string("feedUrl", false, None, None);
        (content, priority)
    });
    if !v.errs.is_empty() {
        return Err(bad_request(sh, v.errs));
    }
    let command = command.unwrap_or_default();
    let (ttype, tid) = match target {
        Some((Some(t), Some(i))) => (t, i),
        _ => return Err(bad_request(sh, vec!["target must be an object".into()])),
    };
    let (content_id, priority) = payload.unwrap_or((None, None));
    if priority.as_deref() == Some("emergency") && user.role != "admin" {
        return Err(error(403, "Emergency override requires admin role"));
    }
    if command == "update" && user.role != "admin" {
        return Err(error(
            403,
            "Insufficient permissions. Required roles: admin",
        ));
    }
    {
        let mut f = lock(&sh.fleet);
        while f.window.front().is_some_and(|&t| t <= now - 60_000) {
            f.window.pop_front();
        }
        if f.window.len() >= FLEET_MAX_PER_MIN {
            return Err(error_bare(
                429,
                "Fleet command rate limit exceeded. Max 10 commands per minute.",
            ));
        }
        f.window.push_back(now);
    }
    let mut st = lock(&sh.store);
    let (targets, name): (Vec<usize>, String) = match ttype.as_str() {
        "device" => {
            let di = st
                .display_pos(&tid)
                .ok_or_else(|| error(404, &format!("Device {tid} not found in organization")))?;
            let d = &st.displays[di];
            (
                vec![di],
                d.nickname
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| d.id.to_string()),
            )
        }
        "group" => {
            let gi = st
                .group_pos(&tid)
                .ok_or_else(|| error(404, &format!("Group {tid} not found in organization")))?;
            let g = &st.groups[gi];
            (
                g.display_ids
                    .iter()
                    .filter_map(|id| st.display_pos(id))
                    .collect(),
                g.name.clone(),
            )
        }
        "organization" => (
            st.display_order.iter().map(|&i| i as usize).collect(),
            "All Devices".to_string(),
        ),
        _ => {
            let ti = st
                .tag_pos(&tid)
                .ok_or_else(|| error(404, &format!("Tag {tid} not found in organization")))?;
            let ds = st
                .display_order
                .iter()
                .map(|&i| i as usize)
                .filter(|&di| st.displays[di].tags.iter().any(|l| l.tag as usize == ti))
                .collect();
            (ds, format!("tag: {}", st.tags[ti].name))
        }
    };
    if command == "push_content" {
        let Some(cid) = content_id else {
            return Err(error(400, "contentId required for push_content"));
        };
        if st.content_pos(&cid).is_none() {
            return Err(error(404, "Content not found"));
        }
    }
    let online = targets
        .iter()
        .filter(|&&di| Store::is_online(&st.displays[di], now))
        .count();
    let mut reconnect = Vec::new();
    if command == "reload" {
        let mut f = lock(&sh.fleet);
        for &di in &targets {
            let d = &st.displays[di];
            // Only a paired, enabled player that is merely disconnected can pick up its queued command.
            if Store::is_online(d, now) || d.stay_offline || d.is_disabled || d.paired_at.is_none()
            {
                continue;
            }
            let k = f.reload_offline_seen;
            f.reload_offline_seen += 1;
            let share = f.reconnect_share;
            if share > 0.0 && ((k + 1) as f64 * share).floor() > (k as f64 * share).floor() {
                reconnect.push(di);
            }
        }
        f.commands += 1;
    } else {
        lock(&sh.fleet).commands += 1;
    }
    for di in reconnect {
        st.reconnect(di, now);
    }
    let n = targets.len();
    Ok(env(
        201,
        &json!({
            "commandId": uuid::Uuid::new_v4().to_string(),
            "command": command,
            "target": { "type": ttype, "id": tid, "name": name },
            "devicesTargeted": n,
            "devicesOnline": online,
            "devicesQueued": n - online,
            "devicesDelivered": online,
            "devicesFailed": 0,
        }),
    ))
}
