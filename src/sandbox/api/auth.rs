//! Authentication (vizora-api.md "Auth"): login with cookies and a CSRF token, JWT, refresh, logout, and the guards
//! the pipeline runs before a handler (JWT, subscription).

use super::pipeline::bearer;
use super::{AUTH_COOKIE, CSRF_COOKIE, Ctx, REFRESH_COOKIE, REFRESH_TTL_S, TOKEN_TTL_S};
use crate::sandbox::respond::{Resp, bad_request, env, error, unauthorized};
use crate::sandbox::time::{fmt_ms, parse_iso_ms};
use crate::sandbox::validate::V;
use crate::sandbox::{RefreshRec, Shared, lock, random_hex};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// The subscription guard: writes need an active (or past-due, publish-locked, free, unexpired trial) subscription.
pub(super) fn subscription_ok(sh: &Shared, now: i64) -> bool {
    let st = lock(&sh.store);
    let s = |k: &str| {
        st.org
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let status = s("subscriptionStatus");
    match status.as_str() {
        "active" | "past_due" | "publish_locked" => true,
        _ if s("subscriptionTier") == "free" => true,
        "trial" => parse_iso_ms(&s("trialEndsAt")).is_some_and(|t| t > now),
        _ => false,
    }
}

#[derive(Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Claims {
    sub: String,
    email: String,
    organization_id: String,
    role: String,
    is_super_admin: bool,
    #[serde(rename = "type")]
    typ: String,
    jti: String,
    iat: i64,
    exp: i64,
}

/// The caller the JWT guard let through.
pub(super) struct AuthUser {
    pub role: String,
    pub org: String,
    pub jti: String,
}

fn decode_jwt(secret: &str, token: &str) -> Option<Claims> {
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.validate_exp = false;
    v.required_spec_claims = Default::default();
    jsonwebtoken::decode::<Claims>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &v,
    )
    .ok()
    .map(|d| d.claims)
}

/// The JWT guard: the auth cookie or bearer token, unexpired, not revoked, of an active user.
pub(super) fn authenticate(ctx: &Ctx) -> Result<AuthUser, Resp> {
    let sh = ctx.sh;
    let token = ctx
        .cookies
        .get(AUTH_COOKIE)
        .cloned()
        .or_else(|| bearer(ctx.headers))
        .ok_or_else(unauthorized)?;
    let c = decode_jwt(&sh.jwt_secret, &token).ok_or_else(unauthorized)?;
    if c.exp * 1000 <= ctx.now || c.typ != "user" {
        return Err(unauthorized());
    }
    if lock(&sh.auth).revoked.contains(&c.jti) {
        return Err(error(401, "Token has been revoked"));
    }
    let st = lock(&sh.store);
    let u = st
        .users
        .iter()
        .find(|u| u.get("id").and_then(Value::as_str) == Some(c.sub.as_str()))
        .ok_or_else(unauthorized)?;
    if u.get("isActive").and_then(Value::as_bool) == Some(false) {
        return Err(unauthorized());
    }
    let role = u
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or("viewer")
        .to_string();
    let org = u
        .get("organizationId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok(AuthUser {
        role,
        org,
        jti: c.jti,
    })
}

fn issue_token(sh: &Shared, user: &Map<String, Value>, now: i64) -> (String, String) {
    let g = |k: &str| {
        user.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let jti = uuid::Uuid::new_v4().to_string();
    let claims = Claims {
        sub: g("id"),
        email: g("email"),
        organization_id: g("organizationId"),
        role: g("role"),
        is_super_admin: user
            .get("isSuperAdmin")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        typ: "user".into(),
        jti: jti.clone(),
        iat: now / 1000,
        exp: now / 1000 + TOKEN_TTL_S,
    };
    let tok = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(sh.jwt_secret.as_bytes()),
    )
    .unwrap_or_default();
    (tok, jti)
}

fn is_email(s: &str) -> bool {
    let Some((l, d)) = s.split_once('@') else {
        return false;
    };
    !l.is_empty()
        && !d.is_empty()
        && d.contains('.')
        && !d.starts_with('.')
        && !d.ends_with('.')
        && !s.chars().any(char::is_whitespace)
        && !d.contains('@')
}

/// `POST /auth/login`: validation, the 10-failures lockout, MFA answers, then the token, refresh and CSRF cookies.
pub(super) fn login(ctx: &mut Ctx) -> Resp {
    let sh = ctx.sh;
    let body = match ctx.body.take() {
        None => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return bad_request(
                sh,
                vec!["an unknown value was passed to the validate function".into()],
            );
        }
    };
    let mut v = V::new(&body, "");
    v.whitelist(&["email", "password"]);
    let email = match body.get("email") {
        Some(Value::String(s)) if is_email(s.trim()) => Some(s.trim().to_lowercase()),
        _ => {
            v.errs.push("email must be an email".into());
            None
        }
    };
    let password = match body.get("password") {
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= 128 => Some(s.clone()),
        Some(Value::String(s)) if s.is_empty() => {
            v.errs.push("password should not be empty".into());
            None
        }
        Some(Value::String(_)) => {
            v.errs
                .push("password must be shorter than or equal to 128 characters".into());
            None
        }
        _ => {
            v.errs
                .push("password must be shorter than or equal to 128 characters".into());
            v.errs.push("password should not be empty".into());
            v.errs.push("password must be a string".into());
            None
        }
    };
    if !v.errs.is_empty() {
        return bad_request(sh, v.errs);
    }
    let (email, password) = (email.unwrap_or_default(), password.unwrap_or_default());
    let now = ctx.now;
    {
        let mut a = lock(&sh.auth);
        let f = a.failures.entry(email.clone()).or_default();
        while f.front().is_some_and(|&t| t < now - 15 * 60_000) {
            f.pop_front();
        }
        if f.len() >= 10 {
            return Resp::json(
                429,
                &json!({ "statusCode": 429, "message": "Account temporarily locked due to too many failed login attempts. Try again in 15 minutes." }),
            );
        }
    }
    let mut st = lock(&sh.store);
    let pos = st.users.iter().position(|u| {
        u.get("email")
            .and_then(Value::as_str)
            .map(|e| e.trim().to_lowercase())
            == Some(email.clone())
            && u.get("password").and_then(Value::as_str) == Some(password.as_str())
    });
    let Some(pos) = pos else {
        drop(st);
        let mut a = lock(&sh.auth);
        a.failures.entry(email).or_default().push_back(now);
        a.stats.failed_logins += 1;
        return error(401, "Invalid email or password");
    };
    if st.users[pos].get("isActive").and_then(Value::as_bool) == Some(false) {
        drop(st);
        lock(&sh.auth).stats.failed_logins += 1;
        return error(403, "Account is inactive. Contact support.");
    }
    if st.users[pos].get("mfaEnabled").and_then(Value::as_bool) == Some(true) {
        return env(
            201,
            &json!({ "mfaRequired": true, "challengeToken": random_hex(24) }),
        );
    }
    if st.org.get("mfaRequired").and_then(Value::as_bool) == Some(true) {
        return env(
            201,
            &json!({ "mfaEnrollmentRequired": true, "enrollmentToken": random_hex(24) }),
        );
    }
    st.users[pos].insert("lastLoginAt".into(), Value::String(fmt_ms(now)));
    let user = st.users[pos].clone();
    let org = json!({
        "name": st.org.get("name").cloned().unwrap_or(Value::Null),
        "subscriptionTier": st.org.get("subscriptionTier").cloned().unwrap_or(Value::Null),
    });
    drop(st);
    let (token, _jti) = issue_token(sh, &user, now);
    let refresh = random_hex(32);
    {
        let mut a = lock(&sh.auth);
        a.failures.remove(&email);
        a.refresh.insert(
            refresh.clone(),
            RefreshRec {
                revoked: false,
                user_id: user
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            },
        );
        a.stats.logins += 1;
        a.stats.refresh_outstanding += 1;
    }
    let mut pub_user = user;
    for k in ["password", "passwordHash", "mfaSecret"] {
        pub_user.remove(k);
    }
    pub_user.insert("organization".into(), org);
    let csrf = ctx.csrf.clone();
    Resp::json(
        201,
        &json!({ "success": true, "data": { "access_token": token, "user": pub_user, "expiresIn": TOKEN_TTL_S } }),
    )
    .with_header("Set-Cookie", format!("{AUTH_COOKIE}={token}; Max-Age={REFRESH_TTL_S}; Path=/; HttpOnly; SameSite=Lax"))
    .with_header("Set-Cookie", format!("{REFRESH_COOKIE}={refresh}; Max-Age={REFRESH_TTL_S}; Path=/; HttpOnly; SameSite=Lax"))
    .with_header("Set-Cookie", format!("{CSRF_COOKIE}={csrf}; Max-Age={TOKEN_TTL_S}; Path=/; SameSite=Lax"))
}

/// `POST /auth/logout`: revokes the token and the refresh token, clears the cookies.
pub(super) fn logout(ctx: &Ctx, user: &AuthUser) -> Resp {
    let sh = ctx.sh;
    let mut a = lock(&sh.auth);
    a.revoked.insert(user.jti.clone());
    a.stats.logouts += 1;
    if let Some(rt) = ctx.cookies.get(REFRESH_COOKIE)
        && let Some(rec) = a.refresh.get_mut(rt)
        && !rec.revoked
    {
        rec.revoked = true;
        a.stats.refresh_revoked += 1;
        a.stats.refresh_outstanding = a.stats.refresh_outstanding.saturating_sub(1);
    }
    Resp::json(
        201,
        &json!({ "success": true, "message": "Logged out successfully" }),
    )
    .with_header(
        "Set-Cookie",
        format!("{AUTH_COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"),
    )
    .with_header(
        "Set-Cookie",
        format!("{REFRESH_COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"),
    )
}

/// `POST /auth/refresh`: rotates the refresh token and issues a new access token.
pub(super) fn refresh(ctx: &Ctx) -> Resp {
    let sh = ctx.sh;
    let Some(rt) = ctx.cookies.get(REFRESH_COOKIE).cloned() else {
        return error(401, "No refresh token");
    };
    let user_id = {
        let mut a = lock(&sh.auth);
        match a.refresh.get_mut(&rt) {
            Some(rec) if !rec.revoked => {
                rec.revoked = true;
                rec.user_id.clone()
            }
            _ => return error(401, "Invalid refresh token"),
        }
    };
    if let Some(tok) = ctx
        .cookies
        .get(AUTH_COOKIE)
        .cloned()
        .or_else(|| bearer(ctx.headers))
        && let Some(c) = decode_jwt(&sh.jwt_secret, &tok)
    {
        lock(&sh.auth).revoked.insert(c.jti);
    }
    let user = {
        let st = lock(&sh.store);
        st.users
            .iter()
            .find(|u| u.get("id").and_then(Value::as_str) == Some(user_id.as_str()))
            .cloned()
    };
    let Some(user) = user else {
        return error(401, "Invalid refresh token");
    };
    let (token, _) = issue_token(sh, &user, ctx.now);
    let newr = random_hex(32);
    lock(&sh.auth).refresh.insert(
        newr.clone(),
        RefreshRec {
            revoked: false,
            user_id,
        },
    );
    Resp::json(
        201,
        &json!({ "success": true, "data": { "expiresIn": TOKEN_TTL_S } }),
    )
    .with_header(
        "Set-Cookie",
        format!("{AUTH_COOKIE}={token}; Max-Age={REFRESH_TTL_S}; Path=/; HttpOnly; SameSite=Lax"),
    )
    .with_header(
        "Set-Cookie",
        format!("{REFRESH_COOKIE}={newr}; Max-Age={REFRESH_TTL_S}; Path=/; HttpOnly; SameSite=Lax"),
    )
}
