//! Organizations (vizora-api.md "Organizations"): the caller's own organization, by `current` or by id, and its
//! storage accounting; another organization's id is 403 (organization scoping).

use super::auth::AuthUser;
use super::{Ctx, check_uuid};
use crate::sandbox::lock;
use crate::sandbox::respond::{Resp, env, error};

/// `GET /organizations/current`.
pub(super) fn current(ctx: &Ctx, user: &AuthUser) -> Result<Resp, Resp> {
    let st = lock(&ctx.sh.store);
    if st.org_id != user.org {
        return Err(error(404, "Organization not found"));
    }
    Ok(env(200, &st.org))
}

/// `GET /organizations/storage`.
pub(super) fn storage(ctx: &Ctx) -> Resp {
    let st = lock(&ctx.sh.store);
    env(200, &st.storage)
}

/// `GET /organizations/:id`: only the caller's own.
pub(super) fn by_id(ctx: &Ctx, user: &AuthUser, id: &str) -> Result<Resp, Resp> {
    check_uuid(id)?;
    if id != user.org {
        return Err(error(403, "You can only access your own organization"));
    }
    let st = lock(&ctx.sh.store);
    if st.org_id != id {
        return Err(error(404, "Organization not found"));
    }
    Ok(env(200, &st.org))
}
