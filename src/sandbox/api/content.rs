//! Content (vizora-api.md "Content"): the filtered list, detail, archive/restore (never a delete), PATCH and the
//! expiration PATCH.

use super::{Ctx, body_obj, check_id, opt_box};
use crate::sandbox::lock;
use crate::sandbox::respond::{Resp, bad_request, cut, env, error, list_resp};
use crate::sandbox::store::{ContentFilter, ContentListItem, ContentMode, ContentRow, R, Store};
use crate::sandbox::validate::{self, F, V};
use serde_json::Value;
use std::sync::Arc;

/// The `type` filter values.
const CONTENT_TYPES: &[&str] = &[
    "image", "video", "url", "html", "pdf", "template", "layout", "widget",
];
/// The `status` filter values.
const CONTENT_STATUSES: &[&str] = &[
    "active",
    "archived",
    "draft",
    "flagged",
    "rejected",
    "pending_approval",
    "expired",
    "ready",
    "processing",
    "error",
];

/// `GET /content` with its filters (type, status, templateOrientation, search, dateRange, tagNames, tagIds).
pub(super) fn list(ctx: &Ctx) -> Result<Resp, Resp> {
    let sh = ctx.sh;
    let q = &ctx.query;
    let mut errs = Vec::new();
    let extras = [
        "type",
        "status",
        "templateOrientation",
        "search",
        "dateRange",
        "tagNames",
        "tagIds",
    ];
    let (page, limit) = validate::pagination(q, &extras, &mut errs);
    let mut f = ContentFilter {
        kind: validate::query_string(q, "type", Some(CONTENT_TYPES), None, &mut errs),
        status: validate::query_string(q, "status", Some(CONTENT_STATUSES), None, &mut errs),
        template_orientation: validate::query_string(
            q,
            "templateOrientation",
            Some(&["landscape", "portrait", "both"]),
            None,
            &mut errs,
        ),
        search: validate::query_string(q, "search", None, Some(120), &mut errs),
        ..ContentFilter::default()
    };
    if let Some(d) = validate::query_string(
        q,
        "dateRange",
        Some(&["7days", "30days", "90days"]),
        None,
        &mut errs,
    ) {
        let days: i64 = d.trim_end_matches("days").parse().unwrap_or(0);
        f.created_after = Some(ctx.now - days * 86_400_000);
    }
    if let Some(vs) = q.get("tagNames") {
        let names: Vec<String> = vs
            .iter()
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if names.len() > 20 {
            errs.push("tagNames must contain no more than 20 elements".into());
        }
        f.tag_names = names;
    }
    if let Some(vs) = q.get("tagIds") {
        if vs.len() > 20 {
            errs.push("tagIds must contain no more than 20 elements".into());
        }
        f.tag_ids = vs.to_vec();
    }
    if !errs.is_empty() {
        return Err(bad_request(sh, errs));
    }
    let st = lock(&sh.store);
    let r = R {
        s: &st,
        now: ctx.now,
    };
    if f.is_empty() {
        let items: Vec<ContentListItem> =
            Store::page(cut(sh, "/api/v1/content", &st.content_order), page, limit)
                .iter()
                .map(|&ci| ContentListItem {
                    r,
                    c: &st.content[ci as usize],
                })
                .collect();
        return Ok(list_resp(
            sh,
            "/api/v1/content",
            &items,
            page,
            limit,
            cut(sh, "/api/v1/content", &st.content_order).len() as u64,
        ));
    }
    let hits: Vec<u32> = st
        .content_order
        .iter()
        .copied()
        .filter(|&ci| f.matches(&st, &st.content[ci as usize]))
        .collect();
    let hits = cut(sh, "/api/v1/content", &hits);
    let items: Vec<ContentListItem> = Store::page(hits, page, limit)
        .iter()
        .map(|&ci| ContentListItem {
            r,
            c: &st.content[ci as usize],
        })
        .collect();
    Ok(list_resp(
        sh,
        "/api/v1/content",
        &items,
        page,
        limit,
        hits.len() as u64,
    ))
}

/// `GET /content/:id`.
pub(super) fn get(ctx: &Ctx, id: &str) -> Result<Resp, Resp> {
    check_id(id)?;
    let st = lock(&ctx.sh.store);
    let ci = st
        .content_pos(id)
        .ok_or_else(|| error(404, "Content not found"))?;
    Ok(env(
        200,
        &ContentRow {
            r: R {
                s: &st,
                now: ctx.now,
            },
            ci,
            mode: ContentMode::Detail,
        },
    ))
}

/// `POST /content/:id/archive` and `/restore`: sets `status`, answers the raw row with `code`.
pub(super) fn set_status(ctx: &Ctx, id: &str, status: &str, code: u16) -> Result<Resp, Resp> {
    check_id(id)?;
    let mut st = lock(&ctx.sh.store);
    let ci = st
        .content_pos(id)
        .ok_or_else(|| error(404, "Content not found"))?;
    let c = &mut st.content[ci];
    if &*c.status != status {
        c.status = Arc::from(status);
    }
    c.updated_at = ctx.now;
    Ok(env(
        code,
        &ContentRow {
            r: R {
                s: &st,
                now: ctx.now,
            },
            ci,
            mode: ContentMode::Raw,
        },
    ))
}

/// `PATCH /content/:id`.
pub(super) fn patch(ctx: &mut Ctx, id: &str) -> Result<Resp, Resp> {
    check_id(id)?;
    let sh = ctx.sh;
    let body = body_obj(ctx)?;
    let mut v = V::new(&body, "");
    v.whitelist(&[
        "name",
        "description",
        "type",
        "url",
        "thumbnail",
        "duration",
        "fileSize",
        "mimeType",
        "fileHash",
        "metadata",
        "expiresAt",
        "replacementContentId",
        "templateOrientation",
    ]);
    let name = v.string("name", true, None, None);
    let description = v.string("description", false, None, None);
    let kind = v.one_of(
        "type",
        &["image", "video", "url", "html", "pdf", "template"],
    );
    let url = v.string("url", false, None, None);
    if let F::Val(u) = &url
        && !(u.starts_with("http://") || u.starts_with("https://") || u.starts_with("minio://"))
    {
        v.errs
            .push("url must match /^(https?:\\/\\/|minio:\\/\\/)/ regular expression".into());
    }
    let thumbnail = v.string("thumbnail", false, None, None);
    let duration = v.int("duration", Some(1), None);
    let file_size = v.int("fileSize", Some(0), None);
    let mime = v.string("mimeType", false, None, None);
    let _hash = v.string("fileHash", false, None, None);
    let metadata = v.object("metadata");
    let expires = v.iso("expiresAt");
    let repl = v.string("replacementContentId", false, None, None);
    let orient = v.one_of("templateOrientation", &["landscape", "portrait", "both"]);
    if !v.errs.is_empty() {
        return Err(bad_request(sh, v.errs));
    }
    let mut st = lock(&sh.store);
    let ci = st
        .content_pos(id)
        .ok_or_else(|| error(404, "Content not found"))?;
    if let F::Val(u) = &url
        && let Some(rest) = u.strip_prefix("minio://")
        && !rest.starts_with(&format!("{}/", st.org_id))
    {
        return Err(error(
            403,
            "Access denied: storage object belongs to another organization",
        ));
    }
    let c = &mut st.content[ci];
    if let F::Val(n) = name {
        c.name = n;
    }
    match description {
        F::Val(d) => c.description = Some(d),
        F::Null => c.description = None,
        F::Absent => {}
    }
    if let F::Val(k) = kind {
        c.kind = Arc::from(k.as_str());
    }
    match url {
        F::Val(u) => c.url = Some(u),
        F::Null => c.url = None,
        F::Absent => {}
    }
    match thumbnail {
        F::Val(u) => c.thumbnail = Some(u),
        F::Null => c.thumbnail = None,
        F::Absent => {}
    }
    if let F::Val(d) = duration {
        c.duration = Some(d);
    }
    match file_size {
        F::Val(d) => c.file_size = Some(d),
        F::Null => c.file_size = None,
        F::Absent => {}
    }
    match mime {
        F::Val(m) => c.mime_type = Some(Arc::from(m.as_str())),
        F::Null => c.mime_type = None,
        F::Absent => {}
    }
    match metadata {
        F::Val(m) => c.metadata = Some(Value::Object(m).to_string().into_boxed_str()),
        F::Null => c.metadata = None,
        F::Absent => {}
    }
    match expires {
        F::Val(e) => c.expires_at = Some(e),
        F::Null => c.expires_at = None,
        F::Absent => {}
    }
    if let Some(r) = opt_box(repl) {
        c.replacement_content_id = r;
    }
    match orient {
        F::Val(o) => c.template_orientation = Some(Arc::from(o.as_str())),
        F::Null => c.template_orientation = None,
        F::Absent => {}
    }
    c.updated_at = ctx.now;
    Ok(env(
        200,
        &ContentRow {
            r: R {
                s: &st,
                now: ctx.now,
            },
            ci,
            mode: ContentMode::Mapped,
        },
    ))
}

/// `PATCH /content/:id/expiration`: a future `expiresAt` and an existing replacement only.
pub(super) fn expiration(ctx: &mut Ctx, id: &str) -> Result<Resp, Resp> {
    check_id(id)?;
    let sh = ctx.sh;
    let body = body_obj(ctx)?;
    let mut v = V::new(&body, "");
    v.whitelist(&["expiresAt", "replacementContentId"]);
    let expires = match v.iso("expiresAt") {
        F::Val(e) => Some(e),
        F::Absent if body.contains_key("expiresAt") => None,
        _ => {
            v.errs
                .push("expiresAt must be a valid ISO 8601 date string".into());
            None
        }
    };
    let repl = v.string("replacementContentId", false, None, None);
    if !v.errs.is_empty() {
        return Err(bad_request(sh, v.errs));
    }
    let expires = expires.unwrap_or_default();
    let mut st = lock(&sh.store);
    let ci = st
        .content_pos(id)
        .ok_or_else(|| error(404, "Content not found"))?;
    if expires <= ctx.now {
        return Err(error(400, "expiresAt must be in the future"));
    }
    if let F::Val(r) = &repl
        && st.content_pos(r).is_none()
    {
        return Err(error(400, "Replacement content not found"));
    }
    let c = &mut st.content[ci];
    c.expires_at = Some(expires);
    if let Some(r) = opt_box(repl) {
        c.replacement_content_id = r;
    }
    c.updated_at = ctx.now;
    Ok(env(
        200,
        &ContentRow {
            r: R {
                s: &st,
                now: ctx.now,
            },
            ci,
            mode: ContentMode::Mapped,
        },
    ))
}
