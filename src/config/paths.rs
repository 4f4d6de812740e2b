//! Where the process keeps its files (agents.md 8.2, 4.1, 4.8) and the state file's limits (agents.md 4.2, 4.7).
//! The fields live flat in [`super::Config`].

use super::Source;
use std::path::{Path, PathBuf};

/// Default of `OPS_LOG_DIR`, relative to the root directory.
pub const DEFAULT_LOG_DIR: &str = "logs";
/// Default file name of `OPS_STATE_FILE`, in the log directory.
pub const DEFAULT_STATE_FILE: &str = "ops-state.json";
/// Default file name of `OPS_AUDIT_FILE`, in the state directory.
pub const DEFAULT_AUDIT_FILE: &str = "ops-audit.jsonl";
/// Default of `OPS_LOCK_TIMEOUT_MS`, in milliseconds.
pub const DEFAULT_LOCK_TIMEOUT_MS: u64 = 5_000;
/// Default of `OPS_MAX_INCIDENTS`.
pub const DEFAULT_MAX_INCIDENTS: u64 = 200;
/// Default of `OPS_MAX_REMEDIATIONS`.
pub const DEFAULT_MAX_REMEDIATIONS: u64 = 100;
/// Default of `OPS_RESOLVED_RETENTION_HOURS`, in hours.
pub const DEFAULT_RESOLVED_RETENTION_HOURS: u64 = 24;

/// The root, log directory, state file and audit file.
pub(super) struct Paths {
    /// `OPS_ROOT_DIR`, else the caller's default root.
    pub(super) root: PathBuf,
    /// `OPS_LOG_DIR`, else `<root>/`[`DEFAULT_LOG_DIR`].
    pub(super) log_dir: PathBuf,
    /// `OPS_STATE_FILE`, else `<log dir>/`[`DEFAULT_STATE_FILE`].
    pub(super) state_file: PathBuf,
    /// `OPS_AUDIT_FILE`, else `<state dir>/`[`DEFAULT_AUDIT_FILE`].
    pub(super) audit_file: PathBuf,
}

impl Paths {
    /// Reads and validates the paths and `OPS_STATE_BACKEND`; every invalid value is recorded in `src`.
    pub(super) fn parse(src: &Source, default_root: &Path) -> Paths {
        let root = src
            .get("OPS_ROOT_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| default_root.to_path_buf());
        let log_dir = src
            .get("OPS_LOG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(DEFAULT_LOG_DIR));
        let state_file = src
            .get("OPS_STATE_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| log_dir.join(DEFAULT_STATE_FILE));
        let audit_file = src
            .get("OPS_AUDIT_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| dir_of(&state_file).join(DEFAULT_AUDIT_FILE));
        // A directory here would only fail at the state write, after the run's mutations (agents.md 1.3: invalid
        // configuration stops before any I/O).
        for key in ["OPS_STATE_FILE", "OPS_AUDIT_FILE"] {
            if let Some(v) = src.get(key) {
                let p = Path::new(&v);
                if v.ends_with('/')
                    || p.file_name().is_none()
                    || p.file_name().is_some_and(|n| n == "." || n == "..")
                {
                    src.fail(format!(
                        "{key}: must name a file, not a directory (got {v:?})"
                    ));
                }
            }
        }
        match src.get("OPS_STATE_BACKEND").as_deref() {
            None | Some("file") => {}
            Some("redis") => src.fail(
                "OPS_STATE_BACKEND: the redis state backend is not available in this version; use file",
            ),
            Some(o) => src.fail(format!(
                "OPS_STATE_BACKEND: expected file or redis, got {o:?}"
            )),
        }
        Paths {
            root,
            log_dir,
            state_file,
            audit_file,
        }
    }
}

/// The directory of a file path (`.` for a bare name): the state dir is the state file's directory.
pub(super) fn dir_of(file: &Path) -> PathBuf {
    file.parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The state file's lock deadline and caps.
pub(super) struct StateLimits {
    /// `OPS_LOCK_TIMEOUT_MS`.
    pub(super) lock_timeout_ms: u64,
    /// `OPS_MAX_INCIDENTS`.
    pub(super) max_incidents: usize,
    /// `OPS_MAX_REMEDIATIONS`.
    pub(super) max_remediations: usize,
    /// `OPS_RESOLVED_RETENTION_HOURS`.
    pub(super) resolved_retention_hours: u64,
}

impl StateLimits {
    /// Reads and validates them; every invalid value is recorded in `src` and replaced by its default.
    pub(super) fn parse(src: &Source) -> StateLimits {
        StateLimits {
            lock_timeout_ms: src.u64("OPS_LOCK_TIMEOUT_MS", DEFAULT_LOCK_TIMEOUT_MS, 1, 600_000),
            max_incidents: src.u64("OPS_MAX_INCIDENTS", DEFAULT_MAX_INCIDENTS, 1, 1_000_000)
                as usize,
            max_remediations: src.u64(
                "OPS_MAX_REMEDIATIONS",
                DEFAULT_MAX_REMEDIATIONS,
                1,
                1_000_000,
            ) as usize,
            resolved_retention_hours: src.u64(
                "OPS_RESOLVED_RETENTION_HOURS",
                DEFAULT_RESOLVED_RETENTION_HOURS,
                0,
                1_000_000,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::cfg;
    use std::path::PathBuf;

    #[test]
    fn the_audit_file_defaults_beside_the_state_file_and_both_must_name_files() {
        let c = cfg(&[("OPS_STATE_FILE", "/srv/ops/state.json")]).unwrap();
        assert_eq!(c.audit_file, PathBuf::from("/srv/ops/ops-audit.jsonl"));
        assert_eq!(c.state_dir(), PathBuf::from("/srv/ops"));
        assert_eq!(c.log_dir, PathBuf::from("/tmp/ops-root/logs"));
        let e = cfg(&[
            ("OPS_STATE_FILE", "/srv/ops/"),
            ("OPS_AUDIT_FILE", "/srv/.."),
        ])
        .unwrap_err();
        assert_eq!(e.0.len(), 2, "{e}");
        assert!(
            e.0[0].starts_with("OPS_STATE_FILE: must name a file"),
            "{e}"
        );
        assert!(
            e.0[1].starts_with("OPS_AUDIT_FILE: must name a file"),
            "{e}"
        );
        let e = cfg(&[("OPS_STATE_BACKEND", "redis")]).unwrap_err();
        assert!(e.0[0].contains("not available in this version"), "{e}");
    }
}
