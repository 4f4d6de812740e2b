//! Local probes of health-guardian (agents.md 6.1.1): the middleware and realtime readiness, the web page with its
//! first two static assets, each failure confirmed once after `OPS_PROBE_CONFIRM_S`; a readiness 503 with JSON whose
//! liveness passes is `service-unready`.

use super::{AGENT, PROBE_TYPES};
use crate::agents::probes::{self, LiveService, ProbeVerdict};
use crate::agents::{AgentContext, AgentOutcome};
use crate::config::HealthConfig;
use crate::model::{Severity, incident_id};
use crate::vizora::budget::{Admission, RateBudget};
use futures::future::join_all;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// A probed service (agents.md 6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Svc {
    Middleware,
    Realtime,
    Web,
}

impl Svc {
    pub(super) const ALL: [Svc; 3] = [Svc::Middleware, Svc::Realtime, Svc::Web];

    pub(super) fn key(self) -> &'static str {
        match self {
            Svc::Middleware => "middleware",
            Svc::Realtime => "realtime",
            Svc::Web => "web",
        }
    }

    pub(super) fn probe_url(self, h: &HealthConfig) -> &str {
        match self {
            Svc::Middleware => &h.middleware_probe_url,
            Svc::Realtime => &h.realtime_probe_url,
            Svc::Web => &h.web_probe_url,
        }
    }

    fn live(self) -> Option<LiveService> {
        match self {
            Svc::Middleware => Some(LiveService::Middleware),
            Svc::Realtime => Some(LiveService::Realtime),
            Svc::Web => None,
        }
    }
}

/// A judged probe (agents.md 6.1.1).
#[derive(Debug, Clone)]
pub(super) enum Health {
    Healthy {
        degraded: bool,
    },
    /// Readiness 503 with JSON while liveness passes: a dependency is down.
    Unready {
        detail: String,
    },
    Down {
        detail: String,
    },
    /// Not probed (budget or deadline): not examined.
    NotProbed {
        reason: String,
    },
}

impl Health {
    pub(super) fn is_healthy(&self) -> bool {
        matches!(self, Health::Healthy { .. })
    }

    pub(super) fn word(&self) -> &'static str {
        match self {
            Health::Healthy { degraded: false } => "healthy",
            Health::Healthy { degraded: true } => "degraded",
            Health::Unready { .. } => "unready",
            Health::Down { .. } => "down",
            Health::NotProbed { .. } => "not probed",
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Health::Healthy { degraded: false } => "healthy".into(),
            Health::Healthy { degraded: true } => "healthy (readiness reports degraded)".into(),
            Health::Unready { detail } => format!("unready ({detail}); liveness passes"),
            Health::Down { detail } => format!("down ({detail})"),
            Health::NotProbed { reason } => format!("not probed ({reason})"),
        }
    }
}

/// Probes the local services within the run's deadline; middleware requests count against the host-wide budget (5.5).
pub(super) struct Prober<'a> {
    pub(super) ctx: &'a AgentContext,
    pub(super) client: reqwest::Client,
    pub(super) budget: Arc<RateBudget>,
}

impl Prober<'_> {
    /// One request-level probe; `Err` = not probed (budget or deadline).
    async fn once(&self, svc: Svc) -> Result<ProbeVerdict, String> {
        let h = &self.ctx.cfg.health;
        let t = self.ctx.cfg.api.probe_timeout;
        if Instant::now() >= self.ctx.deadline {
            return Err("run deadline reached".into());
        }
        let url = svc.probe_url(h);
        Ok(match svc {
            Svc::Middleware => {
                self.budget
                    .acquire(Admission::Request, self.ctx.deadline)
                    .await
                    .map_err(|e| e.to_string())?;
                probes::probe_middleware(&self.client, url, t).await
            }
            Svc::Realtime => probes::probe_realtime(&self.client, url, t).await,
            Svc::Web => probes::probe_web(&self.client, url, t).await,
        })
    }

    /// Judges the (second) result: a readiness 503 with JSON asks liveness (agents.md 6.1.1).
    async fn judge(&self, svc: Svc, v: Result<ProbeVerdict, String>) -> Health {
        let v = match v {
            Ok(v) => v,
            Err(reason) => return Health::NotProbed { reason },
        };
        match v {
            ProbeVerdict::Healthy { degraded } => Health::Healthy { degraded },
            ProbeVerdict::Unhealthy {
                detail,
                readiness_503_json: true,
            } if svc.live().is_some() => {
                let live_url = probes::live_url_for(
                    svc.probe_url(&self.ctx.cfg.health),
                    svc.live().expect("checked"),
                );
                if svc == Svc::Middleware
                    && let Err(e) = self
                        .budget
                        .acquire(Admission::Request, self.ctx.deadline)
                        .await
                {
                    return Health::NotProbed {
                        reason: format!("liveness not probed: {e}"),
                    };
                }
                if probes::probe_live(&self.client, &live_url, self.ctx.cfg.api.probe_timeout).await
                {
                    Health::Unready { detail }
                } else {
                    Health::Down {
                        detail: format!(
                            "{detail}; liveness {} failed",
                            crate::redact::redact_str(&live_url)
                        ),
                    }
                }
            }
            ProbeVerdict::Unhealthy { detail, .. } => Health::Down { detail },
        }
    }

    /// Probes `svcs` concurrently; with `confirm`, failed ones are probed again after `OPS_PROBE_CONFIRM_S` and the
    /// second result is judged. Returns each service's health and whether a confirmation probe ran.
    pub(super) async fn probe(&self, svcs: &[Svc], confirm: bool) -> Vec<(Svc, Health, bool)> {
        let first = join_all(svcs.iter().map(|&s| async move { (s, self.once(s).await) })).await;
        let failing: Vec<Svc> = first
            .iter()
            .filter(|(_, r)| matches!(r, Ok(v) if !v.is_healthy()))
            .map(|(s, _)| *s)
            .collect();
        let mut results: Vec<(Svc, Result<ProbeVerdict, String>, bool)> =
            first.into_iter().map(|(s, r)| (s, r, false)).collect();
        if confirm && !failing.is_empty() {
            let secs = self.ctx.cfg.health.probe_confirm_s;
            self.ctx.info(format!(
                "probe failed for {}; confirming in {secs} s",
                failing
                    .iter()
                    .map(|s| s.key())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            self.ctx.wait_s(secs).await;
            let second = join_all(
                failing
                    .iter()
                    .map(|&s| async move { (s, self.once(s).await) }),
            )
            .await;
            for (s, r) in second {
                if let Some(slot) = results.iter_mut().find(|(x, _, _)| *x == s) {
                    slot.1 = r;
                    slot.2 = true;
                }
            }
        }
        join_all(
            results
                .into_iter()
                .map(|(s, r, c)| async move { (s, self.judge(s, r).await, c) }),
        )
        .await
    }
}

/// Step 1 of the run (6.1.1): probes every service with confirmation, notes each verdict, marks unprobed services
/// unexamined and raises `service-degraded` (info) and `service-unready` (critical, alert-only). Returns each
/// service's health.
pub(super) async fn detect(prober: &Prober<'_>, o: &mut AgentOutcome) -> BTreeMap<Svc, Health> {
    let ctx = prober.ctx;
    let h = &ctx.cfg.health;
    let detected = prober.probe(&Svc::ALL, true).await;
    let mut health: BTreeMap<Svc, Health> = BTreeMap::new();
    for (svc, hl, confirmed) in detected {
        let how = if confirmed && !hl.is_healthy() {
            format!(
                " (confirmed by a second probe after {} s)",
                h.probe_confirm_s
            )
        } else if confirmed {
            " (first probe failed, confirmation probe passed)".to_string()
        } else {
            String::new()
        };
        o.note(format!("probe {}: {}{how}", svc.key(), hl.describe()));
        health.insert(svc, hl);
    }
    for t in PROBE_TYPES {
        o.cover(t);
    }
    for (svc, hl) in &health {
        if let Health::NotProbed { reason } = hl {
            ctx.warn(format!("{} not probed: {reason}", svc.key()));
            for t in PROBE_TYPES {
                o.unexamined.insert(incident_id(AGENT, t, svc.key()));
            }
        }
        match hl {
            Health::Healthy { degraded: true } => {
                o.raise(ctx.incident(
                    "service-degraded",
                    Severity::Info,
                    "service",
                    svc.key(),
                    format!(
                        "{} readiness answered 2xx with status \"degraded\" ({})",
                        svc.key(),
                        crate::redact::redact_str(svc.probe_url(h))
                    ),
                    "informational: a non-critical dependency is degraded; nothing restarted",
                ));
            }
            Health::Unready { detail } => {
                o.raise(ctx.incident(
                    "service-unready",
                    Severity::Critical,
                    "service",
                    svc.key(),
                    format!(
                        "{} readiness failed twice ({detail}) while its liveness probe passes: the process is alive \
                         and a dependency (database, object storage, Redis, …) is down",
                        svc.key()
                    ),
                    "fix the failing dependency; a restart cannot fix it, so none is made",
                ));
            }
            _ => {}
        }
    }
    health
}
