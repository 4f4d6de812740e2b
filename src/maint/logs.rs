//! Log retention for db-maintainer (agents.md 6.6.5 and 4.8): archive-then-trim of the process manager's `*.log`
//! files and size-based rotation of the audit log.
//!
//! What it guarantees (agents.md 9 items 40, 41):
//! * a log is trimmed only after its first S bytes are in a gzip archive that was fsynced and is non-empty;
//! * a log is rewritten **in place** (same inode, so the process manager's `O_APPEND` handle stays valid) as one marker
//!   line plus its last `tail_bytes` (from the first complete line); it is never truncated to zero, deleted or
//!   flushed (`pm2 flush` is never run);
//! * archives are created with `create_new` and never overwritten or deleted;
//! * the audit log is never rewritten: it is renamed into `archive/`, compressed, and only the temporary copy is
//!   removed once its archive is verified.
//!
//! Functions are synchronous (plain file I/O); call them from `spawn_blocking` in async code. Time is injected
//! (`now`), so due rules are testable without waiting.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Name of the archive directory beside rotated files.
pub const ARCHIVE_DIR: &str = "archive";
/// Early margin of the age rule, as the windows of agents.md 1.1 (`OPS_WINDOW_TOLERANCE_S`): 120 s, so a weekly
/// rotation on a daily 03:00 run happens after 7 days, not 8.
pub const AGE_TOLERANCE_S: i64 = 120;
const TS_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// Retention settings (agents.md 8.7). Sizes in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationParams {
    /// `OPS_LOG_ROTATE_DAYS` (7): rotate when the newest archive is at least this old.
    pub rotate_days: u64,
    /// `OPS_LOG_TAIL_BYTES` (1 MiB): logs at or below this size are never rotated; this many bytes are kept.
    pub tail_bytes: u64,
    /// `OPS_LOG_MAX_BYTES` (50 MiB): above this, rotate regardless of age.
    pub max_bytes: u64,
    /// `OPS_AUDIT_MAX_BYTES` (50 MiB): the audit log is rotated above this size.
    pub audit_max_bytes: u64,
}

impl Default for RotationParams {
    fn default() -> Self {
        RotationParams {
            rotate_days: 7,
            tail_bytes: 1_048_576,
            max_bytes: 52_428_800,
            audit_max_bytes: 52_428_800,
        }
    }
}

/// Why a file is due for rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DueReason {
    /// Above `tail_bytes` and no archive of it exists.
    NoArchive,
    /// Above `tail_bytes` and its newest archive is at least `rotate_days` old.
    ArchiveOld,
    /// Above `max_bytes` (or, for the audit log, `audit_max_bytes`).
    TooLarge,
}

/// One planned rotation (a dry run reports these without touching anything).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedRotation {
    /// File name relative to its directory (`api-out.log`, `ops-audit.jsonl`).
    pub file: String,
    /// Full path.
    pub path: PathBuf,
    /// Size when planned, bytes.
    pub size_bytes: u64,
    /// Why it is due.
    pub reason: DueReason,
    /// Whether this is the audit log (rename + compress, never rewritten).
    pub audit: bool,
}

/// One completed rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RotatedFile {
    /// File name (`api-out.log`, `ops-audit.jsonl`).
    pub file: String,
    /// Bytes archived (the size S noted before archiving).
    pub bytes_archived: u64,
    /// Archive path relative to the file's directory (`archive/api-out.log-20260822T030000Z.gz`).
    pub archive: String,
    /// Compressed archive size, bytes (> 0, checked).
    pub archive_bytes: u64,
    /// Bytes of the old content kept after the marker line (0 for the audit log).
    pub kept_bytes: u64,
}

/// Outcome of a retention sweep. `errors` holds `"<file>: <message>"` entries; the sweep continues past them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationReport {
    /// Whether the log directory existed (a missing one is "nothing to rotate", no error).
    pub dir_exists: bool,
    /// `*.log` regular files examined.
    pub files_examined: usize,
    /// Rotations done.
    pub rotated: Vec<RotatedFile>,
    /// Files whose size changed while archiving; the archive is kept and the file left untouched.
    pub skipped_changed: Vec<String>,
    /// Per-file errors, `"<file>: <message>"`.
    pub errors: Vec<String>,
}

/// The marker line written at the top of a trimmed log (6.6.5), without its trailing newline. `archive` is the
/// archive path relative to the log directory (`archive/<file>`); `timestamp` is ISO-8601 UTC with milliseconds.
pub fn marker_line(
    now: DateTime<Utc>,
    bytes_archived: u64,
    archive: &str,
    kept_bytes: u64,
) -> String {
    format!(
        "[log-retention] {} rotated: {bytes_archived} bytes archived to {archive}; kept the last {kept_bytes} bytes. \
         Earlier lines are in the archive — this log was not emptied.",
        crate::model::ts(now)
    )
}

/// The newest archive timestamp of `file` in `archive_dir`, from names `<file>-<yyyymmddTHHMMSSZ>[-<n>].gz`.
pub fn newest_archive(archive_dir: &Path, file: &str) -> io::Result<Option<DateTime<Utc>>> {
    let rd = match fs::read_dir(archive_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let prefix = format!("{file}-");
    let mut newest: Option<DateTime<Utc>> = None;
    for entry in rd {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".gz"))
        else {
            continue;
        };
        let stamp = rest.get(..16).unwrap_or("");
        let tail = rest.get(16..).unwrap_or("");
        if !(tail.is_empty()
            || (tail.starts_with('-')
                && tail[1..].chars().all(|c| c.is_ascii_digit())
                && tail.len() > 1))
        {
            continue;
        }
        if let Ok(t) = NaiveDateTime::parse_from_str(stamp, TS_FORMAT) {
            let t = Utc.from_utc_datetime(&t);
            newest = Some(newest.map_or(t, |n| n.max(t)));
        }
    }
    Ok(newest)
}

/// The due rule of 6.6.5 for a `*.log` file of `size` bytes whose newest archive is `newest_archive`.
pub fn due_reason(
    size: u64,
    newest_archive: Option<DateTime<Utc>>,
    params: &RotationParams,
    now: DateTime<Utc>,
) -> Option<DueReason> {
    if size <= params.tail_bytes {
        return None;
    }
    if size > params.max_bytes {
        return Some(DueReason::TooLarge);
    }
    match newest_archive {
        None => Some(DueReason::NoArchive),
        Some(t) => {
            let age_s = (now - t).num_seconds().max(0);
            let limit = (params.rotate_days as i64).saturating_mul(86_400) - AGE_TOLERANCE_S;
            (age_s >= limit).then_some(DueReason::ArchiveOld)
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// Lists what a sweep would rotate, touching nothing (for dry runs). A missing `dir` yields no `*.log` entries.
/// Errors reading a file's metadata are returned as `"<file>: <message>"` strings.
pub fn plan_rotation(
    dir: &Path,
    audit_file: Option<&Path>,
    params: &RotationParams,
    now: DateTime<Utc>,
) -> (Vec<PlannedRotation>, usize, Vec<String>) {
    let mut plans = Vec::new();
    let mut errors = Vec::new();
    let mut examined = 0;
    match fs::read_dir(dir) {
        Ok(rd) => {
            let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            entries.sort();
            let archive_dir = dir.join(ARCHIVE_DIR);
            for path in entries {
                let name = file_name(&path);
                if !name.ends_with(".log") || name == ".log" {
                    continue;
                }
                // symlink_metadata: only regular files, never a symlink's target.
                let meta = match fs::symlink_metadata(&path) {
                    Ok(m) => m,
                    Err(e) => {
                        errors.push(format!("{name}: {e}"));
                        continue;
                    }
                };
                if !meta.file_type().is_file() {
                    continue;
                }
                examined += 1;
                let newest = match newest_archive(&archive_dir, &name) {
                    Ok(n) => n,
                    Err(e) => {
                        errors.push(format!("{name}: cannot read {ARCHIVE_DIR}/: {e}"));
                        continue;
                    }
                };
                if let Some(reason) = due_reason(meta.len(), newest, params, now) {
                    plans.push(PlannedRotation {
                        file: name,
                        path,
                        size_bytes: meta.len(),
                        reason,
                        audit: false,
                    });
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => errors.push(format!("{}: {e}", dir.display())),
    }
    if let Some(audit) = audit_file {
        match fs::symlink_metadata(audit) {
            Ok(m) if m.file_type().is_file() && m.len() > params.audit_max_bytes => {
                plans.push(PlannedRotation {
                    file: file_name(audit),
                    path: audit.to_path_buf(),
                    size_bytes: m.len(),
                    reason: DueReason::TooLarge,
                    audit: true,
                })
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => errors.push(format!("{}: {e}", file_name(audit))),
        }
    }
    (plans, examined, errors)
}

/// Runs a retention sweep (6.6.5): every due `*.log` regular file in `dir` is archived to
/// `dir/archive/<name>-<yyyymmddTHHMMSSZ>.gz` and rewritten in place as the marker line plus its tail; the audit
/// log (`audit_file`, when given and above `audit_max_bytes`) is archived to
/// `<its dir>/archive/ops-audit-<yyyymmddTHHMMSSZ>.jsonl.gz`. `dir` missing → an empty report without errors.
/// Per-file failures are collected in `errors` and the sweep continues.
pub fn rotate_logs(
    dir: &Path,
    audit_file: Option<&Path>,
    params: &RotationParams,
    now: DateTime<Utc>,
) -> RotationReport {
    let (plans, examined, errors) = plan_rotation(dir, audit_file, params, now);
    let mut report = RotationReport {
        dir_exists: dir.is_dir(),
        files_examined: examined,
        errors,
        ..Default::default()
    };
    for plan in plans {
        let result = if plan.audit {
            rotate_audit(&plan.path, now).map(Some)
        } else {
            rotate_one(&plan.path, params.tail_bytes, now)
        };
        match result {
            Ok(Some(r)) => report.rotated.push(r),
            Ok(None) => report.skipped_changed.push(plan.file),
            Err(e) => report.errors.push(format!("{}: {e}", plan.file)),
        }
    }
    report
}

fn ctx(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn ensure_archive_dir(parent: &Path) -> io::Result<PathBuf> {
    let archive_dir = parent.join(ARCHIVE_DIR);
    fs::create_dir_all(&archive_dir)
        .map_err(|e| ctx(&format!("cannot create {ARCHIVE_DIR}/"), e))?;
    if !archive_dir.is_dir() {
        return Err(io::Error::other(format!(
            "{ARCHIVE_DIR} is not a directory"
        )));
    }
    Ok(archive_dir)
}

/// Creates a new archive file `archive_dir/<stem>-<ts>[-n]<ext>` (permission bits `mode`, at most as open as the
/// source) without ever replacing an existing one.
fn create_archive(
    archive_dir: &Path,
    stem: &str,
    ext: &str,
    now: DateTime<Utc>,
    mode: u32,
) -> io::Result<(PathBuf, File)> {
    let ts = now.format(TS_FORMAT).to_string();
    for n in 0..1000 {
        let name = if n == 0 {
            format!("{stem}-{ts}{ext}")
        } else {
            format!("{stem}-{ts}-{n}{ext}")
        };
        let path = archive_dir.join(&name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(ctx(&format!("cannot create {ARCHIVE_DIR}/{name}"), e)),
        }
    }
    Err(io::Error::other(
        "too many archives with the same timestamp",
    ))
}

/// Compresses the first `len` bytes of `src` into `dst`, fsyncs it and returns the compressed size (checked > 0).
fn gzip_prefix(src: &mut File, len: u64, dst: File, archive_dir: &Path) -> io::Result<u64> {
    src.seek(SeekFrom::Start(0))?;
    let mut enc = GzEncoder::new(io::BufWriter::new(dst), Compression::default());
    let copied = io::copy(&mut src.take(len), &mut enc).map_err(|e| ctx("compressing", e))?;
    if copied != len {
        return Err(io::Error::other(format!(
            "read {copied} of {len} bytes while archiving (file shrank)"
        )));
    }
    let dst = enc.finish()?.into_inner().map_err(|e| e.into_error())?;
    dst.sync_all().map_err(|e| ctx("fsync archive", e))?;
    let size = dst.metadata()?.len();
    if size == 0 {
        return Err(io::Error::other("archive is empty after writing"));
    }
    if let Ok(d) = File::open(archive_dir) {
        let _ = d.sync_all();
    }
    Ok(size)
}

/// Archives and trims one log. `Ok(None)` = size changed while archiving (archive kept, file untouched).
fn rotate_one(path: &Path, tail_bytes: u64, now: DateTime<Utc>) -> io::Result<Option<RotatedFile>> {
    let name = file_name(path);
    let parent = path.parent().unwrap_or(Path::new("."));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| ctx("cannot open", e))?;
    let meta = file.metadata()?;
    let size = meta.len();
    // S is noted here, at open; a file that grew since planning is only more due.
    if size <= tail_bytes {
        return Ok(None);
    }
    let (ino, dev) = (meta.ino(), meta.dev());
    let archive_dir = ensure_archive_dir(parent)?;
    let (archive_path, archive_file) = create_archive(
        &archive_dir,
        &name,
        ".gz",
        now,
        (meta.mode() & 0o666) | 0o600,
    )?;
    let archive_rel = format!("{ARCHIVE_DIR}/{}", file_name(&archive_path));
    let archive_bytes = gzip_prefix(&mut file, size, archive_file, &archive_dir)?;

    // Re-stat by path: a different size or a replaced file means someone else is writing/rotating; skip.
    match fs::metadata(path) {
        Ok(m) if m.len() == size && m.ino() == ino && m.dev() == dev => {}
        Ok(_) => return Ok(None),
        Err(e) => return Err(ctx("re-stat", e)),
    }

    // The last `tail_bytes` of the archived part, from the first complete line.
    let start = size - tail_bytes.min(size);
    let mut tail = Vec::with_capacity(tail_bytes.min(size) as usize);
    file.seek(SeekFrom::Start(start))?;
    (&mut file).take(size - start).read_to_end(&mut tail)?;
    if start > 0
        && let Some(nl) = tail.iter().position(|&b| b == b'\n')
    {
        tail.drain(..=nl);
    }
    let kept = tail.len() as u64;
    let mut content = marker_line(now, size, &archive_rel, kept).into_bytes();
    content.push(b'\n');
    content.extend_from_slice(&tail);
    // Lines appended after S since the re-stat are not in the archive: carry them over.
    let end = file.metadata()?.len();
    if end > size {
        file.seek(SeekFrom::Start(size))?;
        (&mut file).take(end - size).read_to_end(&mut content)?;
    }
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&content)
        .map_err(|e| ctx("rewriting in place", e))?;
    let new_len = content.len() as u64;
    if new_len > 0 {
        file.set_len(new_len).map_err(|e| ctx("trimming", e))?;
    }
    file.sync_all()?;
    Ok(Some(RotatedFile {
        file: name,
        bytes_archived: size,
        archive: archive_rel,
        archive_bytes,
        kept_bytes: kept,
    }))
}

/// Rotates the audit log by size (4.8): rename into `archive/` as a temp file, gzip to
/// `archive/ops-audit-<ts>.jsonl.gz`, fsync, check non-empty, then remove the temp file. On a compression failure
/// the temp file (the only copy of those lines) is left in `archive/` and the error reported.
fn rotate_audit(path: &Path, now: DateTime<Utc>) -> io::Result<RotatedFile> {
    let name = file_name(path);
    let parent = path.parent().unwrap_or(Path::new("."));
    let archive_dir = ensure_archive_dir(parent)?;
    let stem = name.strip_suffix(".jsonl").unwrap_or(&name).to_string();
    let ts = now.format(TS_FORMAT).to_string();
    let tmp = archive_dir.join(format!(".{stem}-{ts}.jsonl.tmp-{}", std::process::id()));
    fs::rename(path, &tmp).map_err(|e| ctx("cannot move aside", e))?;
    if let Ok(d) = File::open(parent) {
        let _ = d.sync_all();
    }
    let mut src = File::open(&tmp)?;
    let size = src.metadata()?.len();
    let (archive_path, archive_file) =
        create_archive(&archive_dir, &stem, ".jsonl.gz", now, 0o600)?;
    let archive_bytes = gzip_prefix(&mut src, size, archive_file, &archive_dir).map_err(|e| {
        ctx(
            &format!(
                "kept the moved-aside copy {ARCHIVE_DIR}/{}",
                file_name(&tmp)
            ),
            e,
        )
    })?;
    drop(src);
    fs::remove_file(&tmp).map_err(|e| ctx("removing the temp file", e))?;
    Ok(RotatedFile {
        file: name,
        bytes_archived: size,
        archive: format!("{ARCHIVE_DIR}/{}", file_name(&archive_path)),
        archive_bytes,
        kept_bytes: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn due_rule_follows_size_and_archive_age() {
        let p = RotationParams {
            rotate_days: 7,
            tail_bytes: 100,
            max_bytes: 1000,
            audit_max_bytes: 1000,
        };
        let now = at("2026-08-22T03:00:00Z");
        assert_eq!(due_reason(100, None, &p, now), None);
        assert_eq!(due_reason(101, None, &p, now), Some(DueReason::NoArchive));
        assert_eq!(
            due_reason(1001, Some(now), &p, now),
            Some(DueReason::TooLarge)
        );
        assert_eq!(
            due_reason(500, Some(at("2026-08-20T03:00:00Z")), &p, now),
            None
        );
        // A daily run a few seconds earlier than the previous week's rotation still rotates.
        assert_eq!(
            due_reason(500, Some(at("2026-08-15T03:00:05Z")), &p, now),
            Some(DueReason::ArchiveOld)
        );
    }

    #[test]
    fn archive_names_are_recognised() {
        let d = tempfile::tempdir().unwrap();
        for n in [
            "a.log-20260801T030000Z.gz",
            "a.log-20260808T030000Z-1.gz",
            "a.log-x.gz",
            "ab.log-20260901T000000Z.gz",
        ] {
            fs::write(d.path().join(n), b"x").unwrap();
        }
        assert_eq!(
            newest_archive(d.path(), "a.log").unwrap(),
            Some(at("2026-08-08T03:00:00Z"))
        );
        assert_eq!(
            newest_archive(&d.path().join("none"), "a.log").unwrap(),
            None
        );
    }
}
