//! The demo's capture stage (`capture_only`): messages are recorded instead of sent, in memory and as JSON lines in
//! `ops-captured-alerts.jsonl`, and count as delivered.

use super::{Alerter, COMPONENT};
use crate::logging;

/// A message recorded instead of sent when `capture_only` is set (the demo prints these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedMessage {
    /// `slack` or `email`.
    pub channel: String,
    /// `inline`, `fixed`, `status`, `recovery` or `digest`.
    pub kind: String,
    /// Slack attachment title or e-mail subject.
    pub title: String,
    /// Summary / first attachment text, or the digest's plain-text part.
    pub text: String,
}

impl Alerter {
    pub(super) fn capture(&self, m: CapturedMessage) {
        if let Some(path) = &self.capture_file {
            append_captured(path, &m);
        }
        if let Ok(mut g) = self.captured.lock() {
            g.push(m);
        }
    }
}

/// Appends one captured message as a redacted JSON line with a single `O_APPEND` write (runs of several agents append
/// to the same file). Failures are logged.
fn append_captured(path: &std::path::Path, m: &CapturedMessage) {
    use std::io::Write;
    let line = crate::redact::redact_value(&serde_json::json!({
        "channel": m.channel,
        "kind": m.kind,
        "title": m.title,
        "text": m.text,
    }));
    let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
    bytes.push(b'\n');
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let r = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(&bytes));
    if let Err(e) = r {
        logging::error(
            COMPONENT,
            format!(
                "cannot append the captured message to {}: {e}",
                path.display()
            ),
        );
    }
}
