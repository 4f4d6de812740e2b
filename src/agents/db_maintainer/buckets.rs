//! S3/MinIO bucket usage (agents.md 6.6.6): `bucket-size-high`, `s3-unobservable`. Listing only.

use super::ENABLE_S3;
use super::report::{Part, human_bytes, id_of, past_deadline, remaining};
use crate::agents::AgentContext;
use crate::maint::MaintError;
use crate::maint::s3::{self, S3Settings, UsageLimits};
use crate::model::{Incident, Severity};
use crate::redact::redact_str;
use serde_json::{Value, json};

/// The bucket usage task (6.6.6).
pub(super) async fn task(ctx: &AgentContext) -> Part {
    let mut p = Part::default();
    let db = &ctx.cfg.db;
    let Some(settings) = S3Settings::for_usage(db) else {
        p.note(format!("bucket usage: not configured — set {ENABLE_S3}"));
        p.not_configured("s3", ENABLE_S3);
        p.stat("buckets", Value::Null);
        return p;
    };
    let host = settings.endpoint_host();
    if ctx.cfg.demo {
        p.note(format!(
            "bucket usage: S3 endpoint {host} configured but not contacted in the demo"
        ));
        p.stat("buckets", Value::Null);
        return p;
    }
    if past_deadline(ctx) {
        p.note("bucket usage: deferred — the run deadline was reached");
        p.stat("buckets", Value::Null);
        return p;
    }
    p.covered.push("s3-unobservable");
    let buckets = match &db.s3_buckets {
        Some(b) => b.clone(),
        None => {
            let listed =
                match tokio::time::timeout(remaining(ctx), s3::list_buckets(&settings)).await {
                    Ok(r) => r,
                    Err(_) => Err(MaintError::Timeout {
                        what: "ListBuckets".into(),
                        after_ms: remaining(ctx).as_millis() as u64,
                    }),
                };
            match listed {
                Ok(b) => b,
                Err(e) => {
                    let err = redact_str(&e.to_string());
                    p.note(format!("bucket usage: S3 endpoint {host} — {err}"));
                    p.incidents
                        .push(s3_incident(ctx, &host, std::slice::from_ref(&err)));
                    p.stat("buckets", json!({"endpoint": host, "error": err}));
                    return p;
                }
            }
        }
    };
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for b in &buckets {
        if past_deadline(ctx) {
            p.unexamined.push(id_of("bucket-size-high", b));
            p.note(format!(
                "bucket \"{b}\": deferred — the run deadline was reached"
            ));
            continue;
        }
        let limits = UsageLimits {
            max_duration: UsageLimits::default().max_duration.min(remaining(ctx)),
            ..UsageLimits::default()
        };
        match s3::bucket_usage(&settings, b, limits).await {
            Ok(u) => {
                let top: Vec<String> = u
                    .top_prefixes
                    .iter()
                    .map(|t| format!("{} {}", t.prefix, human_bytes(t.bytes)))
                    .collect();
                p.note(format!(
                    "bucket \"{b}\": {} object(s), {}{}{}",
                    u.objects,
                    human_bytes(u.bytes),
                    if u.partial {
                        " (partial: listing bound reached)"
                    } else {
                        ""
                    },
                    if top.is_empty() {
                        String::new()
                    } else {
                        format!("; largest prefixes {}", top.join(", "))
                    }
                ));
                if let Some(warn) = db.s3_warn_bytes {
                    if u.bytes > warn {
                        p.incidents.push(ctx.incident(
                            "bucket-size-high",
                            Severity::Warning,
                            "storage",
                            b,
                            format!(
                                "bucket \"{b}\" holds {} object(s), {} ({} bytes){} > OPS_S3_WARN_BYTES {} ({warn} \
                                 bytes); largest prefixes: {}",
                                u.objects,
                                human_bytes(u.bytes),
                                u.bytes,
                                if u.partial { ", at least" } else { "" },
                                human_bytes(warn),
                                if top.is_empty() { "none".to_string() } else { top.join(", ") }
                            ),
                            "review the largest prefixes; archive unused content through Vizora (content-lifecycle) \
                             or add a bucket lifecycle rule; raise OPS_S3_WARN_BYTES if the growth is expected",
                        ));
                    } else if u.partial {
                        // A partial sum below the limit proves nothing (6.6.6).
                        p.unexamined.push(id_of("bucket-size-high", b));
                    }
                }
                rows.push(serde_json::to_value(&u).unwrap_or(Value::Null));
            }
            Err(e) => {
                let err = redact_str(&e.to_string());
                p.note(format!("bucket \"{b}\": not observable — {err}"));
                p.unexamined.push(id_of("bucket-size-high", b));
                rows.push(json!({"bucket": b, "error": err}));
                failures.push(err);
            }
        }
    }
    p.covered.push("bucket-size-high");
    if !failures.is_empty() {
        p.incidents.push(s3_incident(ctx, &host, &failures));
    }
    p.stat(
        "buckets",
        json!({"endpoint": host, "warnBytes": db.s3_warn_bytes, "items": rows}),
    );
    p
}

fn s3_incident(ctx: &AgentContext, host: &str, errors: &[String]) -> Incident {
    let mut inc = ctx.incident(
        "s3-unobservable",
        Severity::Info,
        "storage",
        host,
        format!(
            "S3 endpoint {host} configured but listing failed: {}",
            errors.join("; ")
        ),
        "check OPS_S3_ENDPOINT (or MINIO_ENDPOINT), the access keys and OPS_S3_BUCKETS; bucket sizes are unknown \
         until then",
    );
    inc.error = errors.first().cloned();
    inc
}
