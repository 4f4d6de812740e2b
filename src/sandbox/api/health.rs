//! Health and ops status (vizora-api.md "Health"): `/health`, `/health/ready`, `/health/live`, `/ready` (public) and
//! `GET/POST /health/ops-status` (authenticated; what ops-reporter publishes, kept for an hour).

use super::Ctx;
use crate::sandbox::respond::{Resp, env};
use crate::sandbox::time::fmt_ms;
use crate::sandbox::validate;
use crate::sandbox::{Service, ServiceState, Shared, lock};
use serde_json::{Map, Value, json};

/// How long a published ops status is served, ms.
const OPS_STATUS_TTL_MS: i64 = 3_600_000;

/// `GET /health`.
pub(super) fn health(sh: &Shared) -> Resp {
    let up = lock(&sh.services)[0].started.elapsed().as_secs_f64();
    env(
        200,
        &json!({ "status": "ok", "timestamp": fmt_ms(sh.now()), "uptime": (up * 100.0).round() / 100.0, "database": "connected" }),
    )
}

/// `GET /health/ready`: 503 while the API is unhealthy.
pub(super) fn ready(sh: &Shared) -> Resp {
    let up = lock(&sh.services)[0].started.elapsed().as_secs();
    let st = sh.state(Service::Api);
    let status = match st {
        ServiceState::Degraded => "degraded",
        ServiceState::Unhealthy => "unhealthy",
        _ => "ok",
    };
    let body = json!({ "status": status, "timestamp": fmt_ms(sh.now()), "uptime": up, "version": "1.0.0", "self_test": "passed" });
    if st == ServiceState::Unhealthy {
        Resp::json(503, &body)
    } else {
        env(200, &body)
    }
}

/// `GET /health/live`.
pub(super) fn live(ctx: &Ctx) -> Resp {
    env(
        200,
        &json!({ "status": "ok", "timestamp": fmt_ms(ctx.now) }),
    )
}

/// `GET /ready` (the app's readiness flag).
pub(super) fn app_ready(sh: &Shared) -> Resp {
    env(
        200,
        &json!({ "ready": sh.state(Service::Api) != ServiceState::Unhealthy }),
    )
}

/// `POST /health/ops-status`: keeps the (sanitized) body for an hour.
pub(super) fn ops_post(ctx: &mut Ctx) -> Resp {
    let mut body = ctx.body.take().unwrap_or_else(|| Value::Object(Map::new()));
    validate::sanitize(&mut body);
    *lock(&ctx.sh.ops_status) = Some((body, ctx.now + OPS_STATUS_TTL_MS));
    env(201, &json!({ "status": "ok" }))
}

/// `GET /health/ops-status`: the last published status while fresh, else `unknown`.
pub(super) fn ops_get(ctx: &Ctx) -> Resp {
    let g = lock(&ctx.sh.ops_status);
    match g.as_ref().filter(|(_, exp)| *exp > ctx.now) {
        Some((v, _)) => env(200, v),
        None => env(
            200,
            &json!({ "systemStatus": "unknown", "message": "No ops data available" }),
        ),
    }
}
