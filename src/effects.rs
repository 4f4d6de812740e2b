//! The effects gate (issue 10): every side effect an agent causes outside the Vizora API passes through one
//! [`Effects`] value, so that dry run, the audit line of a mutation and the run deadline are decided in one place
//! and agents never test the dry-run flag themselves (agents.md 1.5, 4.8, 1.2).
//!
//! * Process-manager commands, maintenance statements and file changes are [`Effects::mutate`] calls: the gate
//!   takes the intended mutation's audit line *before* anything happens (where the blast-radius breaker of issue 11
//!   will count it), and in a dry run appends it with `dryRun: true` and never polls the operation; past the run
//!   deadline it runs nothing; otherwise it runs the operation, lets the caller complete the line from the result and
//!   appends it.
//! * Alert deliveries ([`Effects::alert`], [`Effects::deliver_status`], [`Effects::retry_queued`],
//!   [`Effects::record_push`], [`Effects::run`]) get the run's dry-run flag here; in a dry run they are printed,
//!   never sent, and (as before) not audited.
//! * Vizora API mutations keep their gate inside the client (`crate::vizora`, `mutate`), which the runtime builds
//!   with the same flag: one rule, two transports.
//!
//! The agent's side of a gated call is the [`Gated`] result it branches on: `Simulated` is the dry-run wording,
//! `Deferred` the deadline's, `Applied` the real outcome.

use crate::alert::{AlertSink, Alerter, InlineAlert, StatusDelivery, StatusRequest};
use crate::clock::Clock;
use crate::logging;
use crate::state::audit::{AuditLog, MutationLine};
use chrono::{DateTime, Utc};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// What became of one gated side effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gated<T> {
    /// The operation ran; its result. The audit line (completed from it) is appended.
    Applied(T),
    /// Dry run: nothing ran; the audit line was appended with `dryRun: true` (agents.md 1.5).
    Simulated,
    /// The run deadline had passed (agents.md 1.2): nothing ran and nothing was audited.
    Deferred,
}

impl<T> Gated<T> {
    /// The same verdict with the applied result mapped.
    pub fn map_applied<U>(self, f: impl FnOnce(T) -> U) -> Gated<U> {
        match self {
            Gated::Applied(t) => Gated::Applied(f(t)),
            Gated::Simulated => Gated::Simulated,
            Gated::Deferred => Gated::Deferred,
        }
    }
}

/// The gate of one agent run: the run's identity, its dry-run flag, its audit log, its deadline and its alert sink.
/// Built by [`crate::agents::AgentContext::effects`]; cheap (it borrows the context).
pub struct Effects<'a> {
    /// The agent's verbatim name (log lines).
    pub agent: &'a str,
    /// Dry run (agents.md 1.5): read only here.
    dry_run: bool,
    audit: &'a AuditLog,
    deadline: Instant,
    alerts: &'a Arc<dyn AlertSink>,
    clock: &'a Arc<dyn Clock>,
}

impl<'a> Effects<'a> {
    /// A gate over these ports.
    pub fn new(
        agent: &'a str,
        dry_run: bool,
        audit: &'a AuditLog,
        deadline: Instant,
        alerts: &'a Arc<dyn AlertSink>,
        clock: &'a Arc<dyn Clock>,
    ) -> Effects<'a> {
        Effects {
            agent,
            dry_run,
            audit,
            deadline,
            alerts,
            clock,
        }
    }

    /// Whether this run only lists what it would change. For wording and run statistics (`"dryRun": true` in
    /// `agentResults`); a side effect never asks this: it goes through the gate.
    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    fn append(&self, line: &MutationLine) {
        if let Err(e) = self.audit.append(line) {
            logging::error(self.agent, format!("audit append failed: {e}"));
        }
    }

    /// One non-API mutation (a process-manager command, a maintenance statement, a file change), described by its
    /// audit `line` (agents.md 4.8; built with `dry_run: false`). Dry run: the line is appended with `dryRun: true`
    /// and `op` is never called → [`Gated::Simulated`]. Past the deadline: nothing → [`Gated::Deferred`]. Otherwise
    /// `op` runs (its wall time goes to `durationMs`), `finish` completes the line from its result (success, `after`,
    /// error) and says whether anything happened: the line is appended unless `finish` returned `false` (an operation
    /// that refused to start, e.g. a rejected process name, is not a mutation) → [`Gated::Applied`] with the result
    /// and the completed line.
    pub async fn mutate<T, F>(
        &self,
        mut line: MutationLine,
        op: impl FnOnce() -> F,
        finish: impl FnOnce(&T, &mut MutationLine) -> bool,
    ) -> Gated<(T, MutationLine)>
    where
        F: Future<Output = T>,
    {
        if self.dry_run {
            line.dry_run = true;
            line.success = true;
            self.append(&line);
            return Gated::Simulated;
        }
        if Instant::now() >= self.deadline {
            return Gated::Deferred;
        }
        let t0 = Instant::now();
        let out = op().await;
        line.duration_ms = Some(t0.elapsed().as_millis() as u64);
        if finish(&out, &mut line) {
            self.append(&line);
        }
        Gated::Applied((out, line))
    }

    /// A side effect that is not one audit line: a batch whose lines the caller writes from the result (log
    /// rotation), or one that is never audited (a dashboard push, a heartbeat ping, a cache write). Dry run → not
    /// run ([`Gated::Simulated`]); past the deadline → not run ([`Gated::Deferred`]); else run.
    pub async fn run<T, F>(&self, op: impl FnOnce() -> F) -> Gated<T>
    where
        F: Future<Output = T>,
    {
        if self.dry_run {
            return Gated::Simulated;
        }
        if Instant::now() >= self.deadline {
            return Gated::Deferred;
        }
        Gated::Applied(op().await)
    }

    /// An inline alert or fix notification (agents.md 7.6) through the run's sink; in a dry run the sink prints it
    /// and delivers nothing. Returns the ids of the incidents whose alert was delivered (stamped in this run's write).
    pub async fn alert(&self, alert: InlineAlert) -> Vec<String> {
        self.alerts
            .inline(alert, self.clock.now(), self.dry_run)
            .await
    }

    /// The reporter's status delivery pass (6.5.1 steps 4–5) with this run's dry-run flag.
    pub async fn deliver_status(
        &self,
        alerter: &Alerter,
        mut req: StatusRequest<'_>,
    ) -> StatusDelivery {
        req.dry_run = self.dry_run;
        alerter.deliver_status(&req).await
    }

    /// Retries the queued alerts (6.5.1 step 4, 7.7); in a dry run they are only counted.
    pub async fn retry_queued(&self, alerter: &Alerter, now: DateTime<Utc>) -> StatusDelivery {
        alerter.retry_queued(now, self.dry_run).await
    }

    /// Records a dashboard push outcome in the outbox (6.5.1 step 8); nothing is written in a dry run.
    pub fn record_push(
        &self,
        alerter: &Alerter,
        key: &str,
        result: Result<(), &str>,
        now: DateTime<Utc>,
    ) {
        alerter.record_push(key, result, now, self.dry_run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::LogAlertSink;
    use crate::clock::SystemClock;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn line() -> MutationLine {
        MutationLine::new(
            "run-1",
            "db-maintainer",
            "VACUUM (ANALYZE) \"t\"",
            "SQL",
            "database",
            "t",
            Utc::now(),
            serde_json::Value::Null,
            false,
        )
    }

    async fn gate(
        dry_run: bool,
        deadline: Instant,
    ) -> (tempfile::TempDir, u32, Gated<u32>, String) {
        let dir = tempfile::tempdir().unwrap();
        let audit = AuditLog::new(dir.path().join("audit.jsonl"));
        let alerts: Arc<dyn AlertSink> = Arc::new(LogAlertSink);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let ran = AtomicU32::new(0);
        let g = Effects::new("db-maintainer", dry_run, &audit, deadline, &alerts, &clock);
        let out = g
            .mutate(
                line(),
                || async {
                    ran.fetch_add(1, Ordering::SeqCst);
                    7u32
                },
                |r, l| {
                    l.success = *r == 7;
                    l.after = Some(serde_json::json!({"result": r}));
                    true
                },
            )
            .await
            .map_applied(|(r, _)| r);
        let text = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap_or_default();
        (dir, ran.load(Ordering::SeqCst), out, text)
    }

    #[tokio::test]
    async fn dry_run_audits_the_intended_mutation_and_never_runs_it() {
        let later = Instant::now() + std::time::Duration::from_secs(60);
        let (_d, ran, out, text) = gate(true, later).await;
        assert_eq!((ran, out), (0, Gated::Simulated));
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["dryRun"], true);
        assert!(v.get("after").is_none(), "{v}");
    }

    #[tokio::test]
    async fn a_real_run_runs_once_and_audits_the_completed_line() {
        let later = Instant::now() + std::time::Duration::from_secs(60);
        let (_d, ran, out, text) = gate(false, later).await;
        assert_eq!((ran, out), (1, Gated::Applied(7)));
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(
            (v["dryRun"].clone(), v["success"].clone()),
            (false.into(), true.into())
        );
        assert_eq!(v["after"]["result"], 7);
    }

    #[tokio::test]
    async fn past_the_deadline_nothing_runs_and_nothing_is_audited() {
        let (_d, ran, out, text) = gate(false, Instant::now()).await;
        assert_eq!((ran, out), (0, Gated::Deferred));
        assert!(text.is_empty(), "{text}");
    }
}
