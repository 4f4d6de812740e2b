//! Verification by heartbeat (agents.md 6.3.3, 6.3.4, 9.28): after the wait, re-read each display; only a
//! fresh heartbeat resolves `display_offline`, a status other than `error` resolves `display_error`.

use super::{
    DISPLAY_ERROR, DISPLAY_OFFLINE, DISPLAYS_PATH, FleetRun, FleetWork, MAX_DETAIL_VERIFICATIONS,
    Pending, id_for,
};
use crate::agents::common::{self};
use crate::agents::entities::id_text;
use crate::agents::{AgentContext, InlineAlert, InlineKind};
use crate::clock::age_s;
use crate::model::{AgentName, Incident, parse_ts, ts};
use crate::state::audit::VerificationLine;
use crate::vizora::{ApiError, ItemSink};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

impl FleetRun<'_> {
    /// Verification (6.3.3, 6.3.4): `OPS_RECONNECT_VERIFY_S` after the last command, re-read each display; a fresh
    /// heartbeat later than the `before` read resolves `display_offline` (fixed), a status other than `error`
    /// resolves `display_error` (fixed). Every verdict gets an audit verification line.
    pub(super) async fn verify(&mut self, work: &FleetWork) {
        if work.pending.is_empty() {
            return;
        }
        self.wait_for_reconnect(work).await;
        let reads = read_back(self.ctx, &work.pending).await;
        let mut fixed = Fixed::default();
        for p in &work.pending {
            let read = reads.get(&p.display_id);
            let vnow = self.ctx.now();
            if let Some(audit_id) = &p.reload_audit {
                self.judge_reload(p, audit_id, read, vnow, &mut fixed);
            }
            if let Some(audit_id) = &p.patch_audit {
                self.judge_reset(p, audit_id, read, vnow, &mut fixed);
            }
        }
        self.alert_fixed(fixed).await;
    }

    /// The rest of `OPS_RECONNECT_VERIFY_S` after the last command, announced (issue 9: a long wait never looks
    /// like a hang).
    async fn wait_for_reconnect(&self, work: &FleetWork) {
        let ctx = self.ctx;
        if let Some(t) = work.last_command {
            let rest = ctx
                .cfg
                .entity
                .reconnect_verify_s
                .saturating_sub(t.elapsed().as_secs());
            if rest > 0 {
                // Says what for and until when (issue 9: a long wait never looks like a hang).
                let until = ctx.now() + chrono::Duration::seconds(rest as i64);
                ctx.info(format!(
                "waiting {rest} s, until {}, for {} display(s) to reconnect after the reload command(s) \
                 (OPS_RECONNECT_VERIFY_S), then verifying",
                until.format("%H:%M:%S UTC"),
                work.pending.len()
            ));
                ctx.wait_s(rest).await;
            }
        }
    }

    /// 6.3.3: a sent reload is verified by a heartbeat fresher than the `before` read; resolves `display_offline`.
    fn judge_reload(
        &mut self,
        p: &Pending,
        audit_id: &str,
        read: Option<&Read>,
        vnow: DateTime<Utc>,
        fixed: &mut Fixed,
    ) {
        let ctx = self.ctx;
        let (ok, detail) = match read {
            Some(Ok(Some(after))) => {
                let hb = common::s(after, "lastHeartbeat").and_then(parse_ts);
                let fresh = hb.is_some_and(|h| {
                    p.before_heartbeat.is_none_or(|b| h > b) && age_s(vnow, h) < self.th.offline_s
                });
                // Every sent reload is judged (offline or error reset alike), so that sent =
                // reconnected + not reconnected (README "What the counts mean").
                self.counts.verified += 1;
                self.counts.reconnected += u64::from(fresh);
                let show = |t: Option<DateTime<Utc>>| t.map(ts).unwrap_or_else(|| "none".into());
                (
                    fresh,
                    format!(
                        "lastHeartbeat before={} after={}",
                        show(p.before_heartbeat),
                        show(hb)
                    ),
                )
            }
            other => (false, read_failure(other)),
        };
        audit_verification(ctx, audit_id, &p.display_id, ok, &detail);
        if let Some(ix) = p.reload_action {
            self.o.remediations[ix].verified = Some(ok);
        }
        let off_id = id_for(DISPLAY_OFFLINE, &p.display_id);
        match self.raised.get_mut(&off_id) {
            Some(inc) if p.offline && ok => {
                inc.remediation =
                    "reload command sent; reconnection observed (fresh heartbeat)".into();
                let r = crate::agents::resolved(inc.clone(), vnow);
                fixed.refs.push(r.clone());
                self.raised.put(r);
                self.o.fixed += 1;
                fixed
                    .items
                    .push(format!("\"{}\" reconnected after a reload", p.label));
                self.o
                    .note(format!("verified: \"{}\" reconnected ({detail})", p.label));
            }
            Some(inc) if p.offline => {
                inc.error = Some(format!(
                    "no reconnection observed after the reload ({detail})"
                ));
                self.o.note(format!(
                    "not reconnected: \"{}\", incident stays open ({detail})",
                    p.label
                ));
            }
            _ => self.o.note(format!(
                "reload of \"{}\": {} ({detail})",
                p.label,
                // A fresh heartbeat, not `status` (which the error reset sets to offline; 6.0).
                if ok {
                    "reconnected (fresh heartbeat)"
                } else {
                    "not reconnected (no fresh heartbeat)"
                }
            )),
        }
    }

    /// 6.3.4: a status reset is verified by a status other than `error` on re-read; resolves `display_error`.
    fn judge_reset(
        &mut self,
        p: &Pending,
        audit_id: &str,
        read: Option<&Read>,
        vnow: DateTime<Utc>,
        fixed: &mut Fixed,
    ) {
        let ctx = self.ctx;
        let (ok, detail) = match read {
            Some(Ok(Some(after))) => {
                let st = common::s(after, "status").unwrap_or("");
                (st != "error", format!("status={st}"))
            }
            other => (false, read_failure(other)),
        };
        audit_verification(ctx, audit_id, &p.display_id, ok, &detail);
        if let Some(ix) = p.patch_action {
            self.o.remediations[ix].verified = Some(ok);
        }
        let err_id = id_for(DISPLAY_ERROR, &p.display_id);
        if let Some(inc) = self.raised.get_mut(&err_id) {
            if ok {
                let r = crate::agents::resolved(inc.clone(), vnow);
                fixed.refs.push(r.clone());
                self.raised.put(r);
                self.o.fixed += 1;
                fixed
                    .items
                    .push(format!("\"{}\" no longer in error ({detail})", p.label));
                self.o.note(format!(
                    "verified: \"{}\" left the error state ({detail}, set by the reset; \
                     connectivity is judged by heartbeat)",
                    p.label
                ));
            } else {
                inc.error = Some(format!("error state not cleared ({detail})"));
                self.o.note(format!(
                    "not fixed: \"{}\" still in error ({detail})",
                    p.label
                ));
            }
        }
    }

    /// One fix notification for the run's verified fixes (7.6).
    async fn alert_fixed(&self, fixed: Fixed) {
        let ctx = self.ctx;
        if !fixed.items.is_empty() {
            // A fix notification (7.6): Slack only, never stamped.
            // The same numbers as the run's summary (README "What the counts mean"): fixed = verified
            // remediations, closed = the incidents they closed.
            let summary = format!(
                "{} verified fix(es) closed {} display incident(s)",
                crate::model::verified_fix_count(&self.o.remediations),
                fixed.items.len()
            );
            let _ = ctx
                .effects()
                .alert(InlineAlert {
                    agent: AgentName::FleetManager,
                    kind: InlineKind::Fixed,
                    summary,
                    items: fixed.items,
                    refs: fixed.refs,
                })
                .await;
        }
    }
}

/// One verification read: `Ok(Some(row))`, `Ok(None)` = gone, `Err` = unknown.
type Read = Result<Option<Value>, String>;

/// The incidents this run's verification closed, for the fix notification.
#[derive(Default)]
struct Fixed {
    items: Vec<String>,
    refs: Vec<Incident>,
}

/// Why a verification could not judge a display.
fn read_failure(read: Option<&Read>) -> String {
    match read {
        Some(Ok(None)) => "display no longer exists".to_string(),
        Some(Err(e)) => format!("verification read failed: {e}"),
        _ => "verification read not made".to_string(),
    }
}

pub(super) fn audit_verification(
    ctx: &AgentContext,
    audit_id: &str,
    display_id: &str,
    ok: bool,
    detail: &str,
) {
    let line = VerificationLine::new(
        &ctx.run_id,
        ctx.agent.as_str(),
        audit_id,
        "display",
        display_id,
        ok,
        detail,
        ctx.now(),
    );
    if let Err(e) = ctx.audit.append(&line) {
        ctx.error(format!("audit append failed for a verification: {e}"));
    }
}

/// Keeps, of a display walk, only the whole rows of the displays being verified (their ids in `wanted`).
pub(super) struct PendingRows {
    wanted: HashSet<String>,
    rows: HashMap<String, Value>,
}

impl ItemSink for PendingRows {
    fn item(&mut self, item: Value) {
        let (id, _) = id_text(&item);
        if self.wanted.contains(&*id) {
            self.rows.entry(id.into()).or_insert(item);
        }
    }
    fn restart(&mut self) {
        self.rows.clear();
    }
}

/// The verification reads: `GET /displays/:id` each, or one fresh `/displays` walk when more than
/// [`MAX_DETAIL_VERIFICATIONS`] are pending. Per display: `Ok(Some(row))`, `Ok(None)` = gone, `Err` = unknown.
pub(super) async fn read_back(
    ctx: &AgentContext,
    pending: &[Pending],
) -> HashMap<String, Result<Option<Value>, String>> {
    let api = ctx.api();
    let mut out = HashMap::new();
    let ids: Vec<&str> = pending.iter().map(|p| p.display_id.as_str()).collect();
    if ids.len() > MAX_DETAIL_VERIFICATIONS {
        let mut keep = PendingRows {
            wanted: ids.iter().copied().map(String::from).collect(),
            rows: HashMap::new(),
        };
        match api.walk_into(DISPLAYS_PATH, &mut keep).await {
            Ok(l) => {
                for id in ids {
                    let r = match keep.rows.remove(id) {
                        Some(d) => Ok(Some(d)),
                        None if l.complete => Ok(None),
                        None => Err(format!(
                            "not in the incomplete verification walk ({})",
                            l.reason.as_deref().unwrap_or("incomplete")
                        )),
                    };
                    out.insert(id.to_string(), r);
                }
            }
            Err(e) => {
                for id in ids {
                    out.insert(id.to_string(), Err(e.to_string()));
                }
            }
        }
    } else {
        for id in ids {
            let r = match api.get(&format!("{DISPLAYS_PATH}/{id}")).await {
                Ok(v) => Ok(Some(v)),
                Err(ApiError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e.to_string()),
            };
            out.insert(id.to_string(), r);
        }
    }
    out
}
