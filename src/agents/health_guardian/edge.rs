//! Edge watch of health-guardian (agents.md 6.1.4): the public `WEB_URL` probed from the host itself, each path only
//! when its backing service is locally healthy.

use super::AGENT;
use super::probes::{Health, Prober, Svc};
use crate::agents::probes;
use crate::agents::{AgentContext, AgentOutcome};
use crate::model::{Severity, incident_id};
use crate::vizora::budget::Admission;
use std::collections::BTreeMap;
use std::time::Duration;

/// Edge paths and the local service backing each (6.1.4).
const EDGE_PATHS: [(&str, Svc); 2] = [("/", Svc::Web), ("/api/v1/health/ready", Svc::Middleware)];

/// GET `url` through `client` (which follows no redirect), following at most 5 same-origin redirects, each request
/// with its body within `timeout`. `Ok(status)` of the final answer, `Err` = no answer or a refused redirect.
async fn edge_fetch(
    client: &reqwest::Client,
    url: url::Url,
    timeout: Duration,
) -> Result<u16, String> {
    let origin = url.origin();
    let mut cur = url;
    for _ in 0..=probes::MAX_REDIRECTS {
        let req = async {
            let r = client.get(cur.clone()).send().await?;
            let status = r.status();
            let loc = r
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let _ = r.bytes().await?;
            Ok::<_, reqwest::Error>((status, loc))
        };
        let (status, loc) = match tokio::time::timeout(timeout, req).await {
            Err(_) => return Err(format!("timed out after {} ms", timeout.as_millis())),
            Ok(Err(e)) => return Err(format!("no answer ({})", e.without_url())),
            Ok(Ok(x)) => x,
        };
        if !status.is_redirection() || status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(status.as_u16());
        }
        let next = loc
            .and_then(|l| cur.join(&l).ok())
            .ok_or_else(|| format!("HTTP {} without a usable Location", status.as_u16()))?;
        if next.origin() != origin {
            return Err("redirect to another origin refused".into());
        }
        cur = next;
    }
    Err(format!("more than {} redirects", probes::MAX_REDIRECTS))
}

/// Step 6 of the run (6.1.4): `WEB_URL` when non-loopback, `/` and `/api/v1/health/ready` each only when its
/// backing service is locally healthy (`local`, after verification); alert-only `edge-unreachable`. Partial evidence
/// gives no verdict and resolves nothing.
pub(super) async fn edge_watch(
    ctx: &AgentContext,
    prober: &Prober<'_>,
    local: &BTreeMap<Svc, Health>,
    o: &mut AgentOutcome,
) {
    let h = &ctx.cfg.health;
    let Some(edge) = h.edge_url.as_deref() else {
        let why = h
            .edge_off_reason
            .clone()
            .unwrap_or_else(|| "WEB_URL is not a public http(s) URL".into());
        ctx.info(format!("edge watch off: {why}"));
        o.cover("edge-unreachable");
        for p in ctx.priors().values() {
            if p.kind == "edge-unreachable" && p.is_active() {
                o.resolve_suffix.insert(
                    p.id.clone(),
                    " — edge watch disabled by configuration; closing stale incident".into(),
                );
            }
        }
        return;
    };
    let Ok(base) = url::Url::parse(edge) else {
        ctx.warn("edge watch: WEB_URL does not parse; no verdict");
        return;
    };
    let host = base.host_str().unwrap_or("edge").to_string();
    let id = incident_id(AGENT, "edge-unreachable", &host);
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    let mut probed = 0usize;
    for (path, svc) in EDGE_PATHS {
        if !local.get(&svc).is_some_and(Health::is_healthy) {
            skipped.push(format!(
                "(skipped: {path} — local {} not healthy)",
                svc.key()
            ));
            continue;
        }
        let Ok(u) = base.join(path) else {
            continue;
        };
        if path.starts_with("/api/")
            && let Err(e) = prober
                .budget
                .acquire(Admission::Request, ctx.deadline)
                .await
        {
            skipped.push(format!("(skipped: {path} — {e})"));
            continue;
        }
        probed += 1;
        match edge_fetch(&ctx.http, u, ctx.cfg.api.probe_timeout).await {
            Ok(s) if (200..300).contains(&s) => {}
            Ok(s) => failures.push(format!("{path} (backed by {}): HTTP {s}", svc.key())),
            Err(e) => failures.push(format!("{path} (backed by {}): {e}", svc.key())),
        }
    }
    if !failures.is_empty() {
        let mut err = failures.join("; ");
        if !skipped.is_empty() {
            err.push(' ');
            err.push_str(&skipped.join(" "));
        }
        let mut inc = ctx.incident(
            "edge-unreachable",
            Severity::Critical,
            "edge",
            &host,
            format!(
                "public edge {host} failed while the backing service answers locally; this is a probe from the \
                 host itself, not proof of external DNS/firewall reachability"
            ),
            "check the reverse proxy (`nginx -t`, proxy status and logs, TLS certificates); do not restart the \
             Node services — they are healthy locally",
        );
        inc.error = Some(crate::redact::redact_str(&err));
        o.note(format!(
            "edge {host}: unreachable — {}",
            inc.error.as_deref().unwrap_or("")
        ));
        o.raise(inc);
        o.cover("edge-unreachable");
    } else if probed > 0 && skipped.is_empty() {
        o.note(format!("edge {host}: all paths healthy"));
        o.cover("edge-unreachable");
    } else {
        // Nothing probed, or partial evidence: no verdict, nothing resolves (9 #24).
        o.note(format!("edge {host}: no verdict {}", skipped.join(" ")));
        o.unexamined.insert(id);
    }
}
