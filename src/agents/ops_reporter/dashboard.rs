//! The dashboard push (agents.md 6.5.1 step 8, 7.4, 9.49): the size-capped state as this run writes it, to the
//! Vizora API and, when configured, to our ops server; each outcome goes to the outbox `channels` record and becomes
//! an `alert-delivery-failed` incident on the next run. Never fails the run.

use super::OPS_STATUS_PATH;
use crate::agents::{AgentContext, AgentOutcome};
use crate::alert::{Alerter, dashboard, outbox};
use crate::model::OpsState;

/// Pushes the size-capped state (7.4) to the Vizora API (needs API credentials) and, when `OPS_SERVER_URL` is set,
/// to our ops server; records each outcome in the outbox `channels` record. Never fails the run.
pub(super) async fn push_dashboard(
    ctx: &AgentContext,
    alerter: &Alerter,
    state: &OpsState,
    o: &mut AgentOutcome,
) {
    let cfg = &ctx.cfg;
    let payload = dashboard::cap_payload(state, cfg.alert.dashboard_max_bytes);
    let bytes = serde_json::to_vec(&payload).map(|b| b.len()).unwrap_or(0);
    let trimmed = payload
        .get("truncated")
        .map(|t| {
            format!(
                "; reduced to fit: {} incident(s), {} remediation(s) omitted",
                t["incidentsOmitted"].as_u64().unwrap_or(0),
                t["remediationsOmitted"].as_u64().unwrap_or(0)
            )
        })
        .unwrap_or_default();
    let now = ctx.now();
    match &ctx.api {
        None => {
            ctx.warn("dashboard push skipped: no API credentials");
            o.note("dashboard push skipped: no API credentials");
        }
        Some(api) => match api.post_idempotent(OPS_STATUS_PATH, &payload).await {
            Ok(_) => {
                ctx.effects()
                    .record_push(alerter, outbox::CH_DASHBOARD, Ok(()), now);
                o.note(format!(
                    "dashboard push: ops status ({}, {bytes} bytes{trimmed}) sent to POST {OPS_STATUS_PATH}",
                    state.system_status
                ));
            }
            Err(e) => {
                let why = crate::redact::redact_str(&e.to_string());
                ctx.warn(format!("dashboard push to the Vizora API failed: {why}"));
                ctx.effects()
                    .record_push(alerter, outbox::CH_DASHBOARD, Err(&why), now);
                o.note(format!("dashboard push failed: {why}"));
            }
        },
    }
    if let Some(url) = &cfg.alert.ops_server_url {
        let Some(token) = &cfg.alert.ops_api_token else {
            ctx.warn("ops server push skipped: OPS_SERVER_URL is set but OPS_API_TOKEN is not");
            o.note("ops server push skipped: OPS_API_TOKEN unset");
            return;
        };
        match dashboard::push_ops_server(
            alerter.client(),
            url,
            token,
            &payload,
            cfg.api.notify_timeout,
        )
        .await
        {
            Ok(()) => {
                ctx.effects()
                    .record_push(alerter, outbox::CH_OPS_SERVER, Ok(()), now);
                o.note(format!(
                    "ops server push: ops status sent to {}",
                    crate::redact::url_host_only(url)
                ));
            }
            Err(why) => {
                ctx.warn(format!("ops server push failed: {why}"));
                ctx.effects()
                    .record_push(alerter, outbox::CH_OPS_SERVER, Err(&why), now);
                o.note(format!("ops server push failed: {why}"));
            }
        }
    }
}
