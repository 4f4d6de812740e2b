//! The lock-file protocol shared with the TypeScript agents (agents.md 4.2) and the atomic write of 4.5.
//!
//! A lock is `<file>.lock`, created with `O_CREAT|O_EXCL|O_WRONLY` and holding the owner token
//! `<pid>:<counter>:<monotonic ns>`. A lock older than 30 000 ms is stale and reclaimed only if its mtime and token are
//! unchanged on a second look. Release unlinks only a lock that still holds our token; it runs on drop, so every path
//! (errors and panics included) releases. Nothing in here does network or subprocess I/O.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Age in milliseconds after which a lock file is stale (agents.md 4.2).
pub const STALE_AFTER_MS: u64 = 30_000;

static COUNTER: AtomicU64 = AtomicU64::new(0);
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);
static QUARANTINE_N: AtomicU64 = AtomicU64::new(1);

/// Moves a corrupt data file aside as `<file>.corrupt-<pid>-<n>` (`n` per process from 1, skipping names that
/// exist; agents.md 4.4) and returns the new path. The quarantined bytes are never modified or deleted.
pub fn quarantine(path: &Path) -> std::io::Result<PathBuf> {
    loop {
        let mut q = path.as_os_str().to_owned();
        q.push(format!(
            ".corrupt-{}-{}",
            std::process::id(),
            QUARANTINE_N.fetch_add(1, Ordering::SeqCst)
        ));
        let q = PathBuf::from(q);
        if q.exists() {
            continue;
        }
        fs::rename(path, &q)?;
        return Ok(q);
    }
}

/// Lock failures.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The deadline passed while another process held the lock.
    #[error("ops-state lock timeout after {waited_ms}ms (lock file: {path})")]
    Timeout {
        /// Time spent trying, in milliseconds (≥ the caller's timeout, `OPS_LOCK_TIMEOUT_MS` for the state).
        waited_ms: u64,
        /// The lock file's path.
        path: String,
    },
    /// The lock file could not be created for another reason (permissions, missing directory, …).
    #[error("cannot create lock file {path}: {source}")]
    Io {
        /// The lock file's path.
        path: String,
        /// The underlying I/O error (create or token write).
        source: std::io::Error,
    },
}

/// A held lock; released (if still ours) when dropped.
#[derive(Debug)]
pub struct FileLock {
    path: PathBuf,
    token: String,
    released: bool,
}

fn monotonic_ns() -> u128 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos()
}

fn read_token(path: &Path) -> Option<String> {
    let mut s = String::new();
    File::open(path).ok()?.read_to_string(&mut s).ok()?;
    Some(s)
}

/// What a non-regular file is, for error messages.
fn describe(m: &fs::Metadata) -> &'static str {
    let ft = m.file_type();
    if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else {
        "a special file (FIFO, socket or device)"
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).ok()?.modified().ok()
}

impl FileLock {
    /// Acquires `lock_path` within `timeout`. Creates the parent directory when missing.
    ///
    /// Errors: [`LockError::Timeout`] after the deadline (the caller must not proceed unlocked), [`LockError::Io`] on
    /// any other creation failure.
    pub fn acquire(lock_path: &Path, timeout: Duration) -> Result<FileLock, LockError> {
        let start = Instant::now();
        if let Some(dir) = lock_path.parent()
            && !dir.as_os_str().is_empty()
        {
            let _ = fs::create_dir_all(dir);
        }
        let pid = std::process::id();
        let token = format!(
            "{}:{}:{}",
            pid,
            COUNTER.fetch_add(1, Ordering::SeqCst),
            monotonic_ns()
        );
        loop {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(lock_path)
            {
                Ok(mut f) => {
                    f.write_all(token.as_bytes()).map_err(|e| LockError::Io {
                        path: lock_path.display().to_string(),
                        source: e,
                    })?;
                    let _ = f.sync_all();
                    return Ok(FileLock {
                        path: lock_path.to_path_buf(),
                        token,
                        released: false,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // Only a regular file is a lock another writer holds. A directory, symlink, FIFO or device at the
                    // path never goes away by waiting, and retrying on it spun forever (agents.md 4.2): fail now.
                    match fs::symlink_metadata(lock_path) {
                        Ok(m) if !m.file_type().is_file() => {
                            return Err(LockError::Io {
                                path: lock_path.display().to_string(),
                                source: std::io::Error::other(format!(
                                    "{} is in the place of the lock file; remove it by hand",
                                    describe(&m)
                                )),
                            });
                        }
                        _ => {}
                    }
                    // Stale check: mtime older than 30 s; re-stat and unlink only if nothing changed.
                    if let Some(m) = mtime(lock_path) {
                        let age = SystemTime::now().duration_since(m).unwrap_or_default();
                        if age.as_millis() as u64 > STALE_AFTER_MS {
                            let tok = read_token(lock_path);
                            if mtime(lock_path) == Some(m) && read_token(lock_path) == tok {
                                // The token is foreign text: quoted so it can neither split nor forge a log line.
                                // Rate-limited: a lock re-created stale by a broken peer must not flood the log.
                                crate::logging::warn_every(
                                    "ops-state",
                                    &format!("reclaim:{}", lock_path.display()),
                                    format!(
                                        "reclaiming stale lock {} ({} ms old, token {:?})",
                                        lock_path.display(),
                                        age.as_millis(),
                                        tok.unwrap_or_default()
                                    ),
                                );
                                match fs::remove_file(lock_path) {
                                    Ok(()) => continue,
                                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                                    // A stale lock we cannot remove (read-only dir, EPERM) would be retried
                                    // forever in a tight loop: it is a lock failure (agents.md 4.2).
                                    Err(e) => {
                                        return Err(LockError::Io {
                                            path: lock_path.display().to_string(),
                                            source: std::io::Error::new(
                                                e.kind(),
                                                format!("cannot remove the stale lock: {e}"),
                                            ),
                                        });
                                    }
                                }
                            }
                        }
                    }
                    let waited = start.elapsed();
                    if waited >= timeout {
                        return Err(LockError::Timeout {
                            waited_ms: waited.as_millis() as u64,
                            path: lock_path.display().to_string(),
                        });
                    }
                    let sleep = Duration::from_millis(50 + (pid as u64 % 25));
                    std::thread::sleep(
                        sleep.min(timeout.saturating_sub(waited).max(Duration::from_millis(1))),
                    );
                }
                Err(e) => {
                    return Err(LockError::Io {
                        path: lock_path.display().to_string(),
                        source: e,
                    });
                }
            }
        }
    }

    /// The owner token written in the lock file.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Releases now (also done on drop): unlinks only if the file still holds our token.
    pub fn release(mut self) {
        self.release_inner();
    }

    fn release_inner(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        match read_token(&self.path) {
            Some(t) if t == self.token => {
                let _ = fs::remove_file(&self.path);
            }
            Some(other) => crate::logging::warn(
                "ops-state",
                format!(
                    "lock {} was reclaimed by another process (token {other:?}); leaving it",
                    self.path.display()
                ),
            ),
            None => {}
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        self.release_inner();
    }
}

/// The lock path of a data file: `<file>.lock`.
pub fn lock_path_for(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// Atomic write (agents.md 4.5): `<file>.tmp-<pid>`, fsync, rename over the file, fsync the directory. On failure the
/// old file stays and the temp file is removed; a symlinked `path` is refused ([`refuse_symlink`]). `mode` sets the
/// permission bits of a new file (e.g. 0o600).
pub fn atomic_write(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    atomic_write_with(path, mode, &mut |w| w.write_all(bytes))
}

/// Age after which a temp file of a dead writer is removed: far longer than any write takes.
const STALE_TEMP_AGE: Duration = Duration::from_secs(600);

/// Removes the temp files `<file>.tmp-<pid>[-<n>]` beside `path` that a writer killed mid-write left behind (a 86 MB
/// content cache at 500 000 items): only when no process with that pid runs on this host and the file is older than
/// 10 minutes, so a live writer (also one on another host sharing the directory) is never raced. Errors are ignored;
/// returns how many were removed.
pub fn remove_stale_temps(path: &Path) -> usize {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return 0;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{name}.tmp-");
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let Ok(pid) = rest.split('-').next().unwrap_or("").parse::<i32>() else {
            continue;
        };
        // kill(pid, 0): 0 = running (ours or not), ESRCH = no such process.
        // SAFETY: signal 0 sends nothing; it only checks that the pid exists.
        let alive = pid <= 0
            || unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
        let old = e
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_TEMP_AGE);
        if !alive && old && fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Fails when `path` is a symbolic link (a dangling one too): the rename of 4.5 would replace the link with a regular
/// file and split the data in two (the link's target keeps the old copy for every reader that goes through it), so
/// vizora-ops refuses symlinked data files instead (agents.md 4.1). A missing path is fine.
pub fn refuse_symlink(path: &Path) -> std::io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(std::io::Error::other(format!(
            "{} is a symbolic link; vizora-ops refuses symlinked state, audit and lock files (point the setting at \
             the real file instead)",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Atomic write like [`atomic_write`], with the content streamed by `write` into the temp file through a 64 KiB
/// buffer (no in-memory copy of the whole document). On any error (from `write` too) the old file stays and the
/// temp file is removed.
pub fn atomic_write_with(
    path: &Path,
    mode: u32,
    write: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    refuse_symlink(path)?;
    remove_stale_temps(path);
    let mut tmp = path.as_os_str().to_owned();
    let n = TEMP_COUNTER.fetch_add(1, Ordering::SeqCst);
    if n == 0 {
        tmp.push(format!(".tmp-{}", std::process::id()));
    } else {
        tmp.push(format!(".tmp-{}-{n}", std::process::id()));
    }
    let tmp = PathBuf::from(tmp);
    let res = (|| {
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
        write(&mut w)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temps_of_dead_writers_older_than_ten_minutes_are_removed_others_kept() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("ops-content-cache.json");
        // A pid that is not running: the highest pid the kernel allows plus one is never used.
        let max: i32 = fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(4_194_304);
        let dead = max + 1;
        let me = std::process::id();
        let old = SystemTime::now() - Duration::from_secs(3600);
        let mk = |name: String, mtime: Option<SystemTime>| {
            let p = d.path().join(name);
            let f = File::create(&p).unwrap();
            if let Some(t) = mtime {
                f.set_modified(t).unwrap();
            }
            p
        };
        let stale = mk(format!("ops-content-cache.json.tmp-{dead}"), Some(old));
        let stale_n = mk(format!("ops-content-cache.json.tmp-{dead}-3"), Some(old));
        let fresh_dead = mk(format!("ops-content-cache.json.tmp-{dead}-4"), None);
        let live = mk(format!("ops-content-cache.json.tmp-{me}-9"), Some(old));
        let other_file = mk(format!("ops-state.json.tmp-{dead}"), Some(old));
        atomic_write(&target, b"{}", 0o644).unwrap();
        assert!(
            !stale.exists() && !stale_n.exists(),
            "old temps of a dead pid go"
        );
        assert!(
            fresh_dead.exists(),
            "a young temp is kept (a writer on another host)"
        );
        assert!(live.exists(), "a running pid's temp is kept");
        assert!(other_file.exists(), "only this file's temps are touched");
        assert_eq!(fs::read(&target).unwrap(), b"{}");
    }

    #[test]
    fn second_acquirer_times_out_with_the_documented_message() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.json.lock");
        let a = FileLock::acquire(&p, Duration::from_millis(100)).unwrap();
        let e = FileLock::acquire(&p, Duration::from_millis(150))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("ops-state lock timeout after"), "{e}");
        assert!(e.contains("s.json.lock"));
        drop(a);
        assert!(!p.exists(), "release removes our lock");
        FileLock::acquire(&p, Duration::from_millis(100)).unwrap();
    }

    #[test]
    fn stale_lock_is_reclaimed_and_foreign_lock_is_left_alone_on_release() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.json.lock");
        fs::write(&p, "99999:0:1").unwrap();
        let old = SystemTime::now() - Duration::from_secs(60);
        File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let l = FileLock::acquire(&p, Duration::from_millis(200)).unwrap();
        // Someone reclaims our lock: our release must not remove their file.
        fs::write(&p, "1:2:3").unwrap();
        drop(l);
        assert_eq!(fs::read_to_string(&p).unwrap(), "1:2:3");
    }

    #[test]
    fn streamed_atomic_write_replaces_content_or_keeps_the_old_file_on_error() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.json");
        atomic_write_with(&p, 0o644, &mut |w| w.write_all(b"one")).unwrap();
        atomic_write_with(&p, 0o644, &mut |w| {
            w.write_all(b"tw")?;
            w.write_all(b"o")
        })
        .unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
        let e = atomic_write_with(&p, 0o644, &mut |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("boom"))
        });
        assert!(e.is_err());
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.json");
        atomic_write(&p, b"one", 0o600).unwrap();
        atomic_write(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
