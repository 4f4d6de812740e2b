//! The Redis memory and keyspace report (agents.md 6.6.4): `redis-unobservable`, `redis-memory-high`,
//! `redis-fragmentation-high`. Read only: nothing is deleted.

use super::ENABLE_REDIS;
use super::report::{Part, human_bytes, past_deadline, remaining};
use crate::agents::AgentContext;
use crate::maint::MaintError;
use crate::model::Severity;
use crate::redact::redact_str;
use serde_json::{Value, json};
use std::time::Duration;

/// Used memory above which a high fragmentation ratio is reported (6.6.4): 64 MiB.
pub const FRAGMENTATION_MIN_USED_BYTES: u64 = 64 * 1_048_576;
/// Fragmentation ratio above which `redis-fragmentation-high` is raised (6.6.4).
pub const FRAGMENTATION_RATIO_LIMIT: f64 = 1.5;
/// Bound of the Redis key scan (6.6.4): 30 s.
pub const REDIS_SCAN_MAX: Duration = Duration::from_secs(30);

/// `host:port` of a Redis URL (the URL itself is a registered secret).
pub(super) fn redis_display(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(p) => format!(
            "{}:{}",
            p.host_str().unwrap_or("?"),
            p.port().unwrap_or(6379)
        ),
        Err(_) => "<invalid REDIS_URL>".into(),
    }
}
/// The Redis task (6.6.4).
pub(super) async fn task(ctx: &AgentContext) -> Part {
    let mut p = Part::default();
    let db = &ctx.cfg.db;
    let shown = redis_display(&db.redis_url);
    if ctx.cfg.demo {
        p.note(format!(
            "Redis: not contacted in the demo — set {ENABLE_REDIS} in a real run for the memory and keyspace report"
        ));
        p.not_configured("redis", ENABLE_REDIS);
        p.stat("redis", Value::Null);
        return p;
    }
    if past_deadline(ctx) {
        p.note("Redis: deferred — the run deadline was reached");
        p.stat("redis", Value::Null);
        return p;
    }
    let scan_bound = REDIS_SCAN_MAX.min(remaining(ctx));
    let fut = crate::maint::redis::redis_report(&db.redis_url, db.redis_scan_max_keys, scan_bound);
    // The scan is bounded; the outer bound covers the fixed reads around it.
    let result = match tokio::time::timeout(scan_bound + Duration::from_secs(60), fut).await {
        Ok(r) => r,
        Err(_) => Err(MaintError::Timeout {
            what: "Redis report".into(),
            after_ms: (scan_bound + Duration::from_secs(60)).as_millis() as u64,
        }),
    };
    p.covered.push("redis-unobservable");
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            let err = redact_str(&e.to_string());
            p.note(format!("Redis {shown}: not observable — {err}"));
            let mut inc = ctx.incident(
                "redis-unobservable",
                Severity::Info,
                "redis",
                "redis",
                format!("Redis at {shown} could not be observed: {err}"),
                format!(
                    "check that Redis runs and that REDIS_URL is right ({ENABLE_REDIS}); memory figures are \
                     unknown until then"
                ),
            );
            inc.error = Some(err.clone());
            p.incidents.push(inc);
            p.stat("redis", json!({"target": shown, "error": err}));
            return p;
        }
    };
    p.covered.push("redis-memory-high");
    p.covered.push("redis-fragmentation-high");
    let pct = r.memory_used_pct();
    let limit = if r.maxmemory > 0 {
        format!(
            "maxmemory {} ({:.1} % used)",
            human_bytes(r.maxmemory),
            pct.unwrap_or(0.0)
        )
    } else {
        "no maxmemory set (unlimited: the memory share is not checked)".to_string()
    };
    let peak = r
        .used_memory_peak
        .map(|v| format!(" (peak {})", human_bytes(v)))
        .unwrap_or_default();
    let frag = r
        .fragmentation_ratio
        .map(|f| format!(", fragmentation {f:.2}"))
        .unwrap_or_default();
    let scan = format!(
        "{} key(s) scanned{}",
        r.keys_scanned,
        r.scan_stopped
            .as_deref()
            .map(|s| format!(" (stopped: {s})"))
            .unwrap_or_default()
    );
    p.note(format!(
        "Redis {shown}: used {}{peak}, {limit}{frag}; keys {} → {}, {scan}, {} expired during the scan",
        human_bytes(r.used_memory),
        r.dbsize_before,
        r.dbsize_after
            .map(|v| v.to_string())
            .unwrap_or_else(|| "?".into()),
        r.expired_keys_delta()
            .map(|v| v.to_string())
            .unwrap_or_else(|| "?".into()),
    ));
    if let Some(pct) = pct
        && pct > db.redis_memory_warn_pct
    {
        p.incidents.push(ctx.incident(
            "redis-memory-high",
            Severity::Warning,
            "redis",
            "redis",
            format!(
                "Redis {shown}: used_memory {} is {pct:.1} % of maxmemory {} (> OPS_REDIS_MEMORY_WARN_PCT {} %)",
                human_bytes(r.used_memory),
                human_bytes(r.maxmemory),
                db.redis_memory_warn_pct
            ),
            "check key TTLs and the largest key families, and the maxmemory-policy; raise maxmemory if the working \
             set grew (nothing is deleted automatically)",
        ));
    }
    if let Some(f) = r.fragmentation_ratio
        && f > FRAGMENTATION_RATIO_LIMIT
        && r.used_memory > FRAGMENTATION_MIN_USED_BYTES
    {
        p.incidents.push(ctx.incident(
            "redis-fragmentation-high",
            Severity::Info,
            "redis",
            "redis",
            format!(
                "Redis {shown}: mem_fragmentation_ratio {f:.2} with used_memory {} (> {FRAGMENTATION_RATIO_LIMIT} \
                 and > 64 MiB)",
                human_bytes(r.used_memory)
            ),
            "consider `activedefrag yes` (jemalloc builds) or a restart in a quiet period",
        ));
    }
    let mut v = serde_json::to_value(&r).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("target".into(), Value::String(shown));
        m.insert("memoryUsedPct".into(), json!(pct));
        m.insert("expiredKeysDelta".into(), json!(r.expired_keys_delta()));
    }
    p.stat("redis", v);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_display_never_shows_the_password() {
        assert_eq!(
            redis_display("redis://:sekret99@cache:6390/0"),
            "cache:6390"
        );
        assert_eq!(redis_display("redis://localhost"), "localhost:6379");
    }
}
