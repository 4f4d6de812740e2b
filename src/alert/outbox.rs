//! The alert outbox `ops-outbox.json` (agents.md 7.7): every message is queued (redacted) before its first attempt
//! and removed only when delivered, so nothing counts as sent until a channel accepted it.
//!
//! The file has its own lock (`<outbox>.lock`, the protocol of 4.2 via [`FileLock`]) and is written atomically with
//! mode 0600; a corrupt file is quarantined as `<outbox>.corrupt-<pid>-<n>` and rebuilt. Each locked update applies
//! the queue rules: a newer status entry supersedes an undelivered older one on the same channel (its incident
//! references move over), entries older than 24 h are dropped with an ERROR, at most 50 entries are kept (oldest
//! inline first). `channels` keeps the last outcome per channel (`slack`, `email`, `dashboard`, `opsServer`), from
//! which [`delivery_failed_incidents`] derives `ops-reporter:alert-delivery-failed` (catalogue 3.5).
//!
//! This module never sends anything and knows nothing about de-duplication.

use super::{DeliveryOutcome, IncidentRef};
use crate::model::{AgentName, Incident, Severity, parse_ts, ts};
use crate::state::lock::{FileLock, LockError, atomic_write, lock_path_for};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// File name of the outbox in the state dir (agents.md 4.1).
pub const OUTBOX_FILE: &str = "ops-outbox.json";
/// Maximum number of queued entries (agents.md 7.7).
pub const MAX_ENTRIES: usize = 50;
/// Entries older than this many hours are dropped with an ERROR (agents.md 7.7).
pub const MAX_AGE_HOURS: i64 = 24;
/// `channels` key of the Slack channel.
pub const CH_SLACK: &str = "slack";
/// `channels` key of the e-mail channel.
pub const CH_EMAIL: &str = "email";
/// `channels` key of the dashboard push to the Vizora API (7.4).
pub const CH_DASHBOARD: &str = "dashboard";
/// `channels` key of the push to our own ops server (7.4).
pub const CH_OPS_SERVER: &str = "opsServer";

/// A queued message's channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// The Slack incoming webhook (agents.md 7.2); JSON `"slack"`.
    Slack,
    /// The SMTP e-mail digest (agents.md 7.3); JSON `"email"`.
    Email,
}

impl Channel {
    /// The `channels` record key (`slack`, `email`).
    pub fn key(self) -> &'static str {
        match self {
            Channel::Slack => CH_SLACK,
            Channel::Email => CH_EMAIL,
        }
    }
}

/// A queued message's kind: the reporter's status alert or an agent's inline alert / fix notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// The reporter's status (or recovery) alert or e-mail digest; a newer one supersedes it (7.7). JSON `"status"`.
    Status,
    /// An agent's inline alert or fix notification (7.6), Slack only; never superseded. JSON `"inline"`.
    Inline,
}

/// One queued message (agents.md 7.7). `payload` is the Slack JSON or a serialised
/// [`EmailDigest`](super::email::EmailDigest), redacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEntry {
    /// Entry id (UUID v4); JSON `id`.
    pub id: String,
    /// When the message was queued, ISO-8601 UTC (agents.md 1.1); JSON `createdAt`. Retry order and the 24 h limit.
    pub created_at: String,
    /// Channel to deliver on; JSON `channel`.
    pub channel: Channel,
    /// Status or inline message; JSON `kind`.
    pub kind: EntryKind,
    /// The redacted message: Slack webhook JSON, or a serialised `EmailDigest`; JSON `payload`.
    pub payload: Value,
    /// Incidents to stamp when the message is delivered (absent = none); JSON `incidentRefs`.
    #[serde(default)]
    pub incident_refs: Vec<IncidentRef>,
    /// Failed delivery attempts so far (absent = 0); JSON `attempts`.
    #[serde(default)]
    pub attempts: u32,
    /// Time of the last failed attempt, ISO-8601 UTC; `None` before any; JSON `lastAttemptAt`.
    #[serde(default)]
    pub last_attempt_at: Option<String>,
    /// Redacted reason of the last failed attempt; `None` before any; JSON `lastError`.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Unknown fields from other writers, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl OutboxEntry {
    /// A new entry with a UUID, `createdAt = now`, 0 attempts and the payload redacted (5.9).
    pub fn new(
        channel: Channel,
        kind: EntryKind,
        payload: &Value,
        incident_refs: Vec<IncidentRef>,
        now: DateTime<Utc>,
    ) -> OutboxEntry {
        OutboxEntry {
            id: uuid::Uuid::new_v4().to_string(),
            created_at: ts(now),
            channel,
            kind,
            payload: crate::redact::redact_value(payload),
            incident_refs,
            attempts: 0,
            last_attempt_at: None,
            last_error: None,
            extra: Map::new(),
        }
    }
}

/// Last outcome of one channel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelRecord {
    /// Last successful delivery or push, ISO-8601 UTC; `None` = never; JSON `lastOkAt`.
    #[serde(default)]
    pub last_ok_at: Option<String>,
    /// Last failure (retry or drop), ISO-8601 UTC; `None` = never; JSON `lastErrorAt`.
    #[serde(default)]
    pub last_error_at: Option<String>,
    /// Redacted reason of the last failure; JSON `lastError`.
    #[serde(default)]
    pub last_error: Option<String>,
}

impl ChannelRecord {
    /// Whether the last recorded outcome is a failure (an error newer than the last success, or an error and no
    /// success at all).
    pub fn last_failed(&self) -> bool {
        let err = self.last_error_at.as_deref().and_then(parse_ts);
        let ok = self.last_ok_at.as_deref().and_then(parse_ts);
        match (err, ok) {
            (Some(e), Some(o)) => e > o,
            (Some(_), None) => true,
            (None, _) => self.last_error_at.is_some() && self.last_ok_at.is_none(),
        }
    }
}

/// The `ops-outbox.json` document (agents.md 7.7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxFile {
    /// Format version, always 1 (another value makes the file corrupt).
    pub version: u32,
    /// Queued, undelivered messages (at most [`MAX_ENTRIES`], none older than [`MAX_AGE_HOURS`] after a write).
    pub entries: Vec<OutboxEntry>,
    /// Last outcome per channel key ([`CH_SLACK`], [`CH_EMAIL`], [`CH_DASHBOARD`], [`CH_OPS_SERVER`]).
    pub channels: BTreeMap<String, ChannelRecord>,
}

impl Default for OutboxFile {
    fn default() -> Self {
        OutboxFile {
            version: 1,
            entries: Vec::new(),
            channels: BTreeMap::new(),
        }
    }
}

impl OutboxFile {
    /// Entries in retry order: oldest `createdAt` first (insertion order among equal times).
    pub fn pending(&self) -> Vec<OutboxEntry> {
        let mut v = self.entries.clone();
        v.sort_by_key(|e| parse_ts(&e.created_at));
        v
    }

    /// Queues an entry. A status entry supersedes every undelivered status entry on the same channel: those are
    /// removed and their incident references (ids not already present) move to the new entry. Inline entries stay
    /// individual.
    pub fn enqueue(&mut self, mut entry: OutboxEntry) {
        if entry.kind == EntryKind::Status {
            let (old, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.entries)
                .into_iter()
                .partition(|e| e.kind == EntryKind::Status && e.channel == entry.channel);
            self.entries = keep;
            for o in old {
                for r in o.incident_refs {
                    if !entry.incident_refs.iter().any(|x| x.id == r.id) {
                        entry.incident_refs.push(r);
                    }
                }
            }
        }
        self.entries.push(entry);
    }

    /// Applies a delivery outcome to entry `id` on `channel` (agents.md 7.7): delivered → removed and the channel's
    /// `lastOkAt` set; retry → attempts + 1, `lastAttemptAt`, `lastError`, channel error; drop → removed with an
    /// ERROR line, channel error. A missing entry (superseded or dropped meanwhile) only updates the channel.
    pub fn apply_outcome(
        &mut self,
        id: &str,
        channel: Channel,
        outcome: &DeliveryOutcome,
        now: DateTime<Utc>,
    ) {
        match outcome {
            DeliveryOutcome::Delivered => {
                self.entries.retain(|e| e.id != id);
                self.record_channel(channel.key(), Ok(()), now);
            }
            DeliveryOutcome::Retry(reason) => {
                if let Some(e) = self.entries.iter_mut().find(|e| e.id == id) {
                    e.attempts += 1;
                    e.last_attempt_at = Some(ts(now));
                    e.last_error = Some(crate::redact::redact_str(reason));
                }
                self.record_channel(channel.key(), Err(reason), now);
            }
            DeliveryOutcome::Drop(reason) => {
                if self.entries.iter().any(|e| e.id == id) {
                    crate::logging::error(
                        "alerting",
                        format!(
                            "{} message {id} dropped after a permanent failure: {reason}",
                            channel.key()
                        ),
                    );
                }
                self.entries.retain(|e| e.id != id);
                self.record_channel(channel.key(), Err(reason), now);
            }
        }
    }

    /// Records a channel outcome (`Ok` → `lastOkAt`; `Err` → `lastErrorAt` and the redacted `lastError`).
    pub fn record_channel(&mut self, key: &str, result: Result<(), &str>, now: DateTime<Utc>) {
        let rec = self.channels.entry(key.to_string()).or_default();
        match result {
            Ok(()) => rec.last_ok_at = Some(ts(now)),
            Err(e) => {
                rec.last_error_at = Some(ts(now));
                rec.last_error = Some(crate::redact::redact_str(e));
            }
        }
    }

    /// Queue rules applied on every write: entries older than 24 h (or with an unparseable `createdAt`) are dropped
    /// with an ERROR; above 50 entries the oldest inline entries go first, then the oldest others. Returns the
    /// number of dropped entries.
    pub fn enforce_limits(&mut self, now: DateTime<Utc>) -> usize {
        let before = self.entries.len();
        let cutoff = now - ChronoDuration::hours(MAX_AGE_HOURS);
        self.entries.retain(|e| match parse_ts(&e.created_at) {
            Some(t) if t >= cutoff => true,
            _ => {
                crate::logging::error(
                    "alerting",
                    format!(
                        "dropping undelivered {} {} message {} created {}: older than {MAX_AGE_HOURS} h (last error: {})",
                        e.channel.key(),
                        kind_word(e.kind),
                        e.id,
                        e.created_at,
                        e.last_error.as_deref().unwrap_or("none")
                    ),
                );
                false
            }
        });
        while self.entries.len() > MAX_ENTRIES {
            let victim = oldest_index(&self.entries, Some(EntryKind::Inline))
                .or_else(|| oldest_index(&self.entries, None))
                .expect("non-empty");
            let e = self.entries.remove(victim);
            crate::logging::error(
                "alerting",
                format!(
                    "outbox full ({MAX_ENTRIES} entries): dropping undelivered {} {} message {} created {}",
                    e.channel.key(),
                    kind_word(e.kind),
                    e.id,
                    e.created_at
                ),
            );
        }
        before - self.entries.len()
    }
}

fn kind_word(k: EntryKind) -> &'static str {
    match k {
        EntryKind::Status => "status",
        EntryKind::Inline => "inline",
    }
}

fn oldest_index(entries: &[OutboxEntry], kind: Option<EntryKind>) -> Option<usize> {
    entries
        .iter()
        .enumerate()
        .filter(|(_, e)| kind.is_none_or(|k| e.kind == k))
        .min_by_key(|(i, e)| (parse_ts(&e.created_at), *i))
        .map(|(i, _)| i)
}

/// Outbox failures. Each leaves the file as it was.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// `<outbox>.lock` could not be taken within the lock timeout, or could not be created.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The outbox exists but could not be read (a missing file reads as empty; a corrupt one is quarantined).
    #[error("cannot read outbox {path}: {source}")]
    Read {
        /// The outbox path.
        path: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The updated outbox could not be serialised or written atomically.
    #[error("cannot write outbox {path}: {source}")]
    Write {
        /// The outbox path.
        path: String,
        /// The underlying I/O error (a serialisation failure is wrapped as `ErrorKind::Other`).
        source: std::io::Error,
    },
}

/// Parses outbox bytes; the error says why the file is corrupt (unparseable JSON, non-object top level, a
/// `version` other than 1, or a known field of the wrong type). Individual entries that do not parse are dropped
/// with an ERROR.
pub fn parse_outbox(bytes: &[u8]) -> Result<OutboxFile, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(mut m) = v else {
        return Err("top level is not a JSON object".into());
    };
    match m.get("version") {
        None => {}
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        Some(other) => return Err(format!("unsupported version {other}")),
    }
    let mut f = OutboxFile::default();
    match m.remove("entries") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for raw in a {
                match serde_json::from_value::<OutboxEntry>(raw) {
                    Ok(e) => f.entries.push(e),
                    Err(e) => crate::logging::error(
                        "alerting",
                        format!("dropping an unreadable outbox entry: {e}"),
                    ),
                }
            }
        }
        Some(_) => return Err("field entries has the wrong type".into()),
    }
    match m.remove("channels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            for (k, raw) in o {
                let rec = serde_json::from_value::<ChannelRecord>(raw).unwrap_or_default();
                f.channels.insert(k, rec);
            }
        }
        Some(_) => return Err("field channels has the wrong type".into()),
    }
    Ok(f)
}

/// The file-backed outbox.
#[derive(Debug, Clone)]
pub struct Outbox {
    path: PathBuf,
    lock_timeout: Duration,
    dry_run: bool,
}

impl Outbox {
    /// An outbox at `path` (normally `<state dir>/ops-outbox.json`). With `dry_run` every update is computed but
    /// nothing is written (agents.md 1.5).
    pub fn new(path: impl Into<PathBuf>, lock_timeout: Duration, dry_run: bool) -> Outbox {
        Outbox {
            path: path.into(),
            lock_timeout,
            dry_run,
        }
    }

    /// `<state dir>/ops-outbox.json` for a state file path.
    pub fn path_for_state_file(state_file: &Path) -> PathBuf {
        state_file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join(OUTBOX_FILE)
    }

    /// The outbox path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lock-free read: missing → empty; unreadable or corrupt → empty with an ERROR line (nothing moved).
    pub fn read(&self) -> OutboxFile {
        match std::fs::read(&self.path) {
            Ok(b) => parse_outbox(&b).unwrap_or_else(|e| {
                crate::logging::error(
                    "alerting",
                    format!(
                        "outbox {} is corrupt ({e}); reading it as empty",
                        self.path.display()
                    ),
                );
                OutboxFile::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => OutboxFile::default(),
            Err(e) => {
                crate::logging::error(
                    "alerting",
                    format!(
                        "cannot read outbox {}: {e}; reading it as empty",
                        self.path.display()
                    ),
                );
                OutboxFile::default()
            }
        }
    }

    /// Locked read-modify-write: acquire `<outbox>.lock`, read (a corrupt file is quarantined to
    /// `<outbox>.corrupt-<pid>-<n>` and rebuilt from empty), apply `f` (local work only), enforce the queue limits,
    /// write atomically with mode 0600, release. In dry run nothing is locked or written; `f` runs on a lock-free
    /// read.
    ///
    /// Errors: lock timeout, unreadable file, failed write; the file is unchanged in each case.
    pub fn update<R>(
        &self,
        now: DateTime<Utc>,
        f: impl FnOnce(&mut OutboxFile) -> R,
    ) -> Result<R, OutboxError> {
        if self.dry_run {
            let mut file = self.read();
            let r = f(&mut file);
            file.enforce_limits(now);
            return Ok(r);
        }
        let _guard = FileLock::acquire(&lock_path_for(&self.path), self.lock_timeout)?;
        let mut file = self.read_locked()?;
        let r = f(&mut file);
        file.enforce_limits(now);
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| OutboxError::Write {
            path: self.path.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        atomic_write(&self.path, &bytes, 0o600).map_err(|e| OutboxError::Write {
            path: self.path.display().to_string(),
            source: e,
        })?;
        // A file created earlier with wider permissions is narrowed too.
        set_mode_0600(&self.path);
        Ok(r)
    }

    fn read_locked(&self) -> Result<OutboxFile, OutboxError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(OutboxFile::default()),
            Err(e) => {
                return Err(OutboxError::Read {
                    path: self.path.display().to_string(),
                    source: e,
                });
            }
        };
        match parse_outbox(&bytes) {
            Ok(f) => Ok(f),
            Err(reason) => {
                match crate::state::lock::quarantine(&self.path) {
                    Ok(q) => crate::logging::error(
                        "alerting",
                        format!(
                            "outbox {} is corrupt ({reason}); quarantined as {} and rebuilt empty",
                            self.path.display(),
                            q.display()
                        ),
                    ),
                    Err(e) => crate::logging::error(
                        "alerting",
                        format!(
                            "outbox {} is corrupt ({reason}); quarantine failed ({e}); rebuilding it empty",
                            self.path.display()
                        ),
                    ),
                }
                Ok(OutboxFile::default())
            }
        }
    }

    /// Queues one entry (with the supersede rule of [`OutboxFile::enqueue`]).
    pub fn enqueue(&self, entry: OutboxEntry, now: DateTime<Utc>) -> Result<(), OutboxError> {
        self.update(now, |f| f.enqueue(entry))
    }

    /// Applies a delivery outcome (see [`OutboxFile::apply_outcome`]).
    pub fn record_outcome(
        &self,
        id: &str,
        channel: Channel,
        outcome: &DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> Result<(), OutboxError> {
        self.update(now, |f| f.apply_outcome(id, channel, outcome, now))
    }

    /// Records the outcome of a channel without queued messages (dashboard pushes: `dashboard`, `opsServer`).
    pub fn record_channel(
        &self,
        key: &str,
        result: Result<(), &str>,
        now: DateTime<Utc>,
    ) -> Result<(), OutboxError> {
        self.update(now, |f| f.record_channel(key, result, now))
    }
}

fn set_mode_0600(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path)
        && m.permissions().mode() & 0o777 != 0o600
    {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}

/// The `alert-delivery-failed` incidents derived from the outbox (agents.md 7.7, catalogue 3.5): for `slack` and
/// `email` (warning) when the channel's last attempt failed and a message of it is still queued; for `dashboard` and
/// `opsServer` (info, target id `ops-server`) when the last push failed. Target `alerting`, target id the channel.
/// Channels not returned are healthy, so the sweep resolves their incidents (the type is always covered).
pub fn delivery_failed_incidents(file: &OutboxFile, now: DateTime<Utc>) -> Vec<Incident> {
    let mut out = Vec::new();
    let specs: [(&str, &str, Severity, &str, &str); 4] = [
        (
            CH_SLACK,
            "slack",
            Severity::Warning,
            "Slack",
            "check SLACK_WEBHOOK_URL and that Slack is reachable from this host; queued messages are retried by every ops-reporter run",
        ),
        (
            CH_EMAIL,
            "email",
            Severity::Warning,
            "E-mail",
            "check SMTP_HOST/SMTP_PORT/SMTP_SECURE and the SMTP credentials; queued digests are retried by every ops-reporter run",
        ),
        (
            CH_DASHBOARD,
            "dashboard",
            Severity::Info,
            "Dashboard push",
            "check the Vizora API and the ops user's credentials (POST /api/v1/health/ops-status)",
        ),
        (
            CH_OPS_SERVER,
            "ops-server",
            Severity::Info,
            "Ops server push",
            "check OPS_SERVER_URL and OPS_API_TOKEN and that the ops server is running",
        ),
    ];
    for (key, target_id, sev, label, remediation) in specs {
        let Some(rec) = file.channels.get(key) else {
            continue;
        };
        if !rec.last_failed() {
            continue;
        }
        let queued = match key {
            CH_SLACK => file
                .entries
                .iter()
                .filter(|e| e.channel == Channel::Slack)
                .count(),
            CH_EMAIL => file
                .entries
                .iter()
                .filter(|e| e.channel == Channel::Email)
                .count(),
            _ => 0,
        };
        let is_push = key == CH_DASHBOARD || key == CH_OPS_SERVER;
        if !is_push && queued == 0 {
            continue;
        }
        let mut message = format!(
            "{label} delivery failing since {}: {}",
            rec.last_error_at.as_deref().unwrap_or("unknown"),
            rec.last_error.as_deref().unwrap_or("unknown error")
        );
        if !is_push {
            message.push_str(&format!("; {queued} message(s) queued"));
        }
        out.push(Incident::new(
            AgentName::OpsReporter,
            "alert-delivery-failed",
            sev,
            "alerting",
            target_id,
            crate::redact::redact_str(&message),
            remediation,
            now,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::IncidentStatus;
    use serde_json::json;

    fn r(id: &str) -> IncidentRef {
        IncidentRef {
            id: id.into(),
            severity: Severity::Warning,
            status: IncidentStatus::Open,
        }
    }

    #[test]
    fn newer_status_supersedes_older_on_same_channel_and_refs_move_over() {
        let now = Utc::now();
        let mut f = OutboxFile::default();
        f.enqueue(OutboxEntry::new(
            Channel::Slack,
            EntryKind::Status,
            &json!({"a":1}),
            vec![r("x"), r("y")],
            now,
        ));
        f.enqueue(OutboxEntry::new(
            Channel::Email,
            EntryKind::Status,
            &json!({"e":1}),
            vec![r("x")],
            now,
        ));
        f.enqueue(OutboxEntry::new(
            Channel::Slack,
            EntryKind::Inline,
            &json!({"i":1}),
            vec![r("z")],
            now,
        ));
        f.enqueue(OutboxEntry::new(
            Channel::Slack,
            EntryKind::Status,
            &json!({"a":2}),
            vec![r("y"), r("w")],
            now,
        ));
        assert_eq!(f.entries.len(), 3);
        let s = f
            .entries
            .iter()
            .find(|e| e.kind == EntryKind::Status && e.channel == Channel::Slack)
            .unwrap();
        assert_eq!(s.payload, json!({"a":2}));
        let ids: Vec<&str> = s.incident_refs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, vec!["y", "w", "x"]);
    }

    #[test]
    fn old_entries_expire_and_cap_drops_oldest_inline_first() {
        let now = Utc::now();
        let mut f = OutboxFile::default();
        f.entries.push(OutboxEntry::new(
            Channel::Slack,
            EntryKind::Inline,
            &json!({}),
            vec![],
            now - ChronoDuration::hours(25),
        ));
        f.entries.push(OutboxEntry::new(
            Channel::Email,
            EntryKind::Status,
            &json!({}),
            vec![],
            now - ChronoDuration::hours(23),
        ));
        for n in 0..55 {
            f.entries.push(OutboxEntry::new(
                Channel::Slack,
                EntryKind::Inline,
                &json!({"n": n}),
                vec![],
                now - ChronoDuration::minutes(100 - n),
            ));
        }
        f.enforce_limits(now);
        assert_eq!(f.entries.len(), MAX_ENTRIES);
        assert!(
            f.entries.iter().any(|e| e.kind == EntryKind::Status),
            "status kept"
        );
        let first_inline = f
            .entries
            .iter()
            .find(|e| e.kind == EntryKind::Inline)
            .unwrap();
        assert_eq!(first_inline.payload, json!({"n": 6}));
    }

    #[test]
    fn delivery_failed_needs_a_queued_message_for_messaging_channels() {
        let now = Utc::now();
        let mut f = OutboxFile::default();
        f.record_channel(CH_SLACK, Err("HTTP 500"), now);
        f.record_channel(CH_EMAIL, Err("refused"), now);
        f.record_channel(CH_DASHBOARD, Err("HTTP 413"), now);
        f.record_channel(CH_OPS_SERVER, Ok(()), now);
        f.enqueue(OutboxEntry::new(
            Channel::Slack,
            EntryKind::Inline,
            &json!({}),
            vec![],
            now,
        ));
        let inc = delivery_failed_incidents(&f, now);
        let ids: Vec<&str> = inc.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(
            ids,
            vec![
                "ops-reporter:alert-delivery-failed:slack",
                "ops-reporter:alert-delivery-failed:dashboard"
            ]
        );
        assert_eq!(inc[0].severity, Severity::Warning);
        assert_eq!(inc[1].severity, Severity::Info);
        f.record_channel(CH_SLACK, Ok(()), now + ChronoDuration::seconds(1));
        assert_eq!(delivery_failed_incidents(&f, now).len(), 1);
    }

    #[test]
    fn corrupt_outbox_is_quarantined_and_rebuilt_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(OUTBOX_FILE);
        std::fs::write(&p, b"{not json").unwrap();
        let ob = Outbox::new(&p, Duration::from_secs(2), false);
        let now = Utc::now();
        ob.enqueue(
            OutboxEntry::new(
                Channel::Slack,
                EntryKind::Inline,
                &json!({"k":1}),
                vec![],
                now,
            ),
            now,
        )
        .unwrap();
        let names: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let q = names
            .iter()
            .find(|n| n.contains(".corrupt-"))
            .expect("quarantined");
        assert_eq!(std::fs::read(d.path().join(q)).unwrap(), b"{not json");
        assert_eq!(ob.read().entries.len(), 1);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let raw: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(raw["version"], 1);
        assert!(raw["entries"][0]["lastError"].is_null());
        assert!(!lock_path_for(&p).exists());
    }

    #[test]
    fn dry_run_writes_nothing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(OUTBOX_FILE);
        let ob = Outbox::new(&p, Duration::from_secs(2), true);
        let now = Utc::now();
        ob.enqueue(
            OutboxEntry::new(Channel::Slack, EntryKind::Inline, &json!({}), vec![], now),
            now,
        )
        .unwrap();
        assert!(!p.exists());
        assert!(!lock_path_for(&p).exists());
    }
}
