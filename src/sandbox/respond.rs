//! The response helpers every sandbox server shares: the response being built (`Resp`), Nest's envelope and error
//! bodies (vizora-api.md "Envelope" and "Errors"), the paginated list response with the list faults of the control API
//! (shape and truncation, design/README.md §4), and the response an injected fault prescribes.

use super::{FaultSpec, ListShape, Shared, lock};
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;
use serde_json::{Value, json};

/// A response being built.
pub(crate) struct Resp {
    pub status: u16,
    pub body: Vec<u8>,
    pub ctype: &'static str,
    pub headers: Vec<(String, String)>,
}

impl Resp {
    pub(crate) fn json<T: Serialize + ?Sized>(status: u16, v: &T) -> Resp {
        Resp {
            status,
            body: serde_json::to_vec(v).unwrap_or_default(),
            ctype: "application/json; charset=utf-8",
            headers: Vec::new(),
        }
    }
    pub(crate) fn with_header(mut self, k: &str, v: impl Into<String>) -> Resp {
        self.headers.push((k.to_string(), v.into()));
        self
    }
    pub(crate) fn into_response(self) -> Response {
        let mut r = Response::new(Body::from(self.body));
        *r.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let h = r.headers_mut();
        if let Ok(v) = HeaderValue::from_str(self.ctype) {
            h.insert(header::CONTENT_TYPE, v);
        }
        for (k, v) in self.headers {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(&v),
            ) {
                h.append(k, v);
            }
        }
        r
    }
}

#[derive(Serialize)]
struct Env<'a, T: Serialize + ?Sized> {
    success: bool,
    data: &'a T,
}

/// `{success: true, data}` with `status`.
pub(crate) fn env<T: Serialize + ?Sized>(status: u16, data: &T) -> Resp {
    Resp::json(
        status,
        &Env {
            success: true,
            data,
        },
    )
}

/// The reason phrase of a status (Nest's `error` field).
pub(crate) fn reason(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

/// `{statusCode, message, error}`.
pub(crate) fn error(status: u16, msg: &str) -> Resp {
    Resp::json(
        status,
        &json!({ "statusCode": status, "message": msg, "error": reason(status) }),
    )
}

/// `{statusCode, message}` (string-only exceptions).
pub(crate) fn error_bare(status: u16, msg: &str) -> Resp {
    Resp::json(status, &json!({ "statusCode": status, "message": msg }))
}

/// 401 `Unauthorized` (the JWT guard).
pub(crate) fn unauthorized() -> Resp {
    error_bare(401, "Unauthorized")
}

/// 400 from the validation pipe: the development form lists `errs`, the production form hides them.
pub(crate) fn bad_request(sh: &Shared, errs: Vec<String>) -> Resp {
    if sh.production() {
        error_bare(400, "Bad Request")
    } else {
        Resp::json(
            400,
            &json!({ "statusCode": 400, "message": errs, "error": "Bad Request" }),
        )
    }
}

/// 500 as Nest answers an uncaught exception.
pub(crate) fn internal() -> Resp {
    error_bare(500, "Internal server error")
}

/// The response a fault prescribes.
pub(crate) fn fault_response(f: &FaultSpec) -> Resp {
    let status = f.status.unwrap_or(500);
    let mut r = if let Some(raw) = &f.raw_body {
        Resp {
            status,
            body: raw.clone().into_bytes(),
            ctype: "application/json; charset=utf-8",
            headers: Vec::new(),
        }
    } else {
        match &f.body {
            Some(Value::String(s)) => Resp {
                status,
                body: s.clone().into_bytes(),
                ctype: "text/plain; charset=utf-8",
                headers: Vec::new(),
            },
            Some(v) => Resp::json(status, v),
            None => Resp::json(
                status,
                &json!({ "statusCode": status, "message": reason(status) }),
            ),
        }
    };
    if let Some(ra) = &f.retry_after {
        let v = match ra {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        r.headers.push(("Retry-After".into(), v));
    }
    r
}

// ---------------------------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    page: u64,
    limit: u64,
    total: u64,
    total_pages: u64,
}

#[derive(Serialize)]
struct PageData<'a, T: Serialize> {
    data: &'a [T],
    meta: Meta,
}

#[derive(Serialize)]
struct PageItems<'a, T: Serialize> {
    items: &'a [T],
    meta: Meta,
}

#[derive(Serialize)]
struct PageUnknown<'a, T: Serialize> {
    results: &'a [T],
    pagination: Meta,
}

/// A paginated list (`page`, `limit` ≤ 100, `total` = every item the list holds) in the shape set for `list_path`.
pub(crate) fn list_resp<T: Serialize>(
    sh: &Shared,
    list_path: &str,
    items: &[T],
    page: u64,
    limit: u64,
    total: u64,
) -> Resp {
    let meta = Meta {
        page,
        limit,
        total,
        total_pages: total.div_ceil(limit.max(1)),
    };
    let shape = lock(&sh.shapes)
        .get(list_path)
        .copied()
        .unwrap_or(ListShape::Normal);
    match shape {
        ListShape::Normal => env(200, &PageData { data: items, meta }),
        ListShape::Items => env(200, &PageItems { items, meta }),
        ListShape::Bare => env(200, items),
        ListShape::Unknown => env(
            200,
            &PageUnknown {
                results: items,
                pagination: meta,
            },
        ),
    }
}

/// The list fault of `POST /__sandbox/list-truncate`: the first `N` entries of `order` when the collection at `path`
/// is cut to `N` (its list then answers those items only, with a consistent `meta.total` = `N`: a lying but
/// self-consistent list), else all of `order`. Detail reads are not affected.
pub(crate) fn cut<'a, T>(sh: &Shared, path: &str, order: &'a [T]) -> &'a [T] {
    match lock(&sh.truncations).get(path) {
        Some(&n) => &order[..n.min(order.len())],
        None => order,
    }
}
