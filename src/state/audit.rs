//! The append-only audit log `ops-audit.jsonl` (agents.md 4.8): one redacted JSON object per `\n`-terminated line,
//! appended with `O_APPEND` and a single `write`, the file opened by path for each line and created 0600. The current
//! file is never rewritten, trimmed or truncated here (db-maintainer rotates it by size, 6.6.5).

use crate::model::ts;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Values of `before`, `after` or `request` larger than this many bytes become `{"truncated":true,"bytes":n}`.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;

/// A mutation line (agents.md 4.8): written as soon as the mutation returns, or where it would have run in a dry run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MutationLine {
    /// Always `"mutation"`.
    pub kind: &'static str,
    /// The line's UUID v4; verification lines refer to it as `mutationId`.
    pub id: String,
    /// Start of the mutation (ISO).
    pub timestamp: String,
    /// JSON `runId`: the run's UUID.
    pub run_id: String,
    /// The acting agent's verbatim name (agents.md 1.1).
    pub agent: String,
    /// Human description, as in `RemediationAction.action`.
    pub action: String,
    /// HTTP verb, `pm2 restart`, `SQL`, `FILE`, …
    pub method: String,
    /// Entity kind acted on.
    pub target: String,
    /// JSON `targetId`: id of the entity acted on.
    pub target_id: String,
    /// Fresh pre-write read (`null` for SQL).
    pub before: Value,
    /// Whether the mutation succeeded; always `true` on dry-run lines.
    pub success: bool,
    /// JSON `dryRun`: the mutation was only listed, not run (agents.md 1.5).
    pub dry_run: bool,
    /// API mutations: the path including `/api/v1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// API mutations: the request body (over 16 KiB → `{"truncated":true,"bytes":n}` on append).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
    /// API mutations: JSON `httpStatus`, the response's HTTP status code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Process-manager argv.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// SQL mutations: the statement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// File path relative to the log dir.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// On success: the unwrapped response or post-state; never on dry-run lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// On failure: the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Real runs: JSON `durationMs`, the mutation's duration in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

impl MutationLine {
    /// A new mutation line with a fresh UUID; optional fields empty.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        run_id: &str,
        agent: &str,
        action: &str,
        method: &str,
        target: &str,
        target_id: &str,
        started: DateTime<Utc>,
        before: Value,
        dry_run: bool,
    ) -> MutationLine {
        MutationLine {
            kind: "mutation",
            id: uuid::Uuid::new_v4().to_string(),
            timestamp: ts(started),
            run_id: run_id.to_string(),
            agent: agent.to_string(),
            action: action.to_string(),
            method: method.to_string(),
            target: target.to_string(),
            target_id: target_id.to_string(),
            before,
            success: true,
            dry_run,
            endpoint: None,
            request: None,
            http_status: None,
            command: None,
            statement: None,
            path: None,
            after: None,
            error: None,
            duration_ms: None,
        }
    }
}

/// A verification line (agents.md 4.8).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationLine {
    /// Always `"verification"`.
    pub kind: &'static str,
    /// The line's UUID v4.
    pub id: String,
    /// Time of the verification (ISO timestamp).
    pub timestamp: String,
    /// JSON `runId`: the run's UUID.
    pub run_id: String,
    /// The verifying agent's verbatim name (agents.md 1.1).
    pub agent: String,
    /// JSON `mutationId`: the `id` of the mutation line being verified.
    pub mutation_id: String,
    /// Entity kind checked.
    pub target: String,
    /// JSON `targetId`: id of the entity checked.
    pub target_id: String,
    /// Whether the fix was confirmed.
    pub verified: bool,
    /// e.g. `status=archived`.
    pub detail: String,
}

impl VerificationLine {
    /// A verification line for the mutation `mutation_id`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        run_id: &str,
        agent: &str,
        mutation_id: &str,
        target: &str,
        target_id: &str,
        verified: bool,
        detail: impl Into<String>,
        now: DateTime<Utc>,
    ) -> VerificationLine {
        VerificationLine {
            kind: "verification",
            id: uuid::Uuid::new_v4().to_string(),
            timestamp: ts(now),
            run_id: run_id.to_string(),
            agent: agent.to_string(),
            mutation_id: mutation_id.to_string(),
            target: target.to_string(),
            target_id: target_id.to_string(),
            verified,
            detail: detail.into(),
        }
    }
}

/// Handle on the audit log file.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
}

fn cap_value(v: &Value) -> Value {
    let bytes = serde_json::to_vec(v).map(|b| b.len()).unwrap_or(0);
    if bytes > MAX_VALUE_BYTES {
        json!({"truncated": true, "bytes": bytes})
    } else {
        v.clone()
    }
}

impl AuditLog {
    /// An audit log at `path` (created on first append).
    pub fn new(path: impl Into<PathBuf>) -> AuditLog {
        AuditLog { path: path.into() }
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks the log opens for append (agents.md 4.8: a run that cannot audit mutates nothing), with the checks of
    /// [`AuditLog::append`] (no symlink, a regular file, mode 0600).
    pub fn check_writable(&self) -> std::io::Result<()> {
        self.open().map(|_| ())
    }

    /// Opens the log for one append (agents.md 4.8): the directory is created when missing; `O_NOFOLLOW` refuses a
    /// symlink at the path (the audit trail must not be redirected to another file); `O_NONBLOCK` makes a FIFO
    /// without reader fail instead of blocking, and anything but a regular file is refused; an existing file with a
    /// mode wider than 0600 is narrowed to 0600 with a WARNING.
    ///
    /// Errors: I/O errors of the open or `fchmod`; a symlink (`ELOOP`) or non-regular file with a message saying so.
    fn open(&self) -> std::io::Result<std::fs::File> {
        if let Some(d) = self.path.parent()
            && !d.as_os_str().is_empty()
        {
            std::fs::create_dir_all(d)?;
        }
        let f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&self.path)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) {
                    std::io::Error::other(format!(
                        "{} is a symbolic link; the audit log must be a regular file (agents.md 4.8)",
                        self.path.display()
                    ))
                } else {
                    e
                }
            })?;
        let m = f.metadata()?;
        if !m.is_file() {
            return Err(std::io::Error::other(format!(
                "{} is not a regular file",
                self.path.display()
            )));
        }
        let mode = m.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            // fchmod on the open descriptor: no race with a rename of the path.
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            // One line per narrowing: after it the mode is 0600, so this repeats only if someone widens it again.
            crate::logging::warn(
                "ops-state",
                format!(
                    "audit log {} had mode {mode:o}; narrowed to 600 (it holds the before/after of every mutation)",
                    self.path.display()
                ),
            );
        }
        Ok(f)
    }

    /// Appends one line: redacted, large `before`/`after`/`request` replaced by `{"truncated":true,"bytes":n}`.
    /// Errors are I/O errors of the open or the single write.
    pub fn append<T: Serialize>(&self, line: &T) -> std::io::Result<()> {
        let mut v = serde_json::to_value(line).map_err(std::io::Error::other)?;
        if let Value::Object(m) = &mut v {
            for k in ["before", "after", "request"] {
                if let Some(x) = m.get(k) {
                    let c = cap_value(x);
                    m.insert(k.to_string(), c);
                }
            }
        }
        let v = crate::redact::redact_value(&v);
        let mut bytes = serde_json::to_vec(&v).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        let mut f = self.open()?;
        f.write_all(&bytes)
    }

    /// Reads every parseable line (tests, `status`); unparseable lines are skipped.
    pub fn read_all(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_appended_redacted_capped_and_the_file_is_0600() {
        let d = tempfile::tempdir().unwrap();
        let log = AuditLog::new(d.path().join("ops-audit.jsonl"));
        let mut l = MutationLine::new(
            "r1",
            "content-lifecycle",
            "Archive",
            "POST",
            "content",
            "c1",
            Utc::now(),
            json!({"accessToken":"abc"}),
            false,
        );
        l.request = Some(json!({"big": "x".repeat(20_000)}));
        log.append(&l).unwrap();
        log.append(&l).unwrap();
        let lines = log.read_all();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["before"]["accessToken"], "[REDACTED]");
        assert_eq!(lines[0]["request"]["truncated"], true);
        let mode = std::fs::metadata(log.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
