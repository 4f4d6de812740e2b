//! The cache file (agents.md 6.2.1, 4.1–4.2): the compact JSON writer, and [`CacheFile`] with its own lock, load
//! (quarantine of a corrupt file, never in a dry run) and atomic save (mode 0644).

use super::parse::{READ_ERROR, parse_cache_reader};
use super::{CACHE_FILE_NAME, CACHE_VERSION, DetailCache, EntryRef};
/// The lock file path of the cache (re-exported for the tests: only this file names the store, design/README.md §3).
pub(super) use crate::state::lock::lock_path_for;
use crate::state::lock::{FileLock, atomic_write_with};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

impl DetailCache {
    /// Writes the document as compact JSON (`{"version":1,"items":{…}}`, entries in slot order).
    pub fn write_to(&self, w: &mut dyn Write) -> io::Result<()> {
        fn js(w: &mut dyn Write, s: &str) -> io::Result<()> {
            serde_json::to_writer(&mut *w, s).map_err(io::Error::other)
        }
        fn opt(w: &mut dyn Write, s: Option<&str>) -> io::Result<()> {
            match s {
                Some(s) => js(w, s),
                None => w.write_all(b"null"),
            }
        }
        write!(w, "{{\"version\":{CACHE_VERSION},\"items\":{{")?;
        let mut first = true;
        for slot in self.slots.iter().filter(|s| s.alive) {
            let e = EntryRef { cache: self, slot };
            if !first {
                w.write_all(b",")?;
            }
            first = false;
            js(w, slot.id.get(&self.arena))?;
            w.write_all(b":{\"updatedAt\":")?;
            opt(w, slot.updated.text(&self.arena).as_deref())?;
            w.write_all(b",\"fetchedAt\":")?;
            opt(w, slot.fetched.text(&self.arena).as_deref())?;
            w.write_all(b",\"status\":")?;
            js(w, self.statuses.get(slot.status).unwrap_or(""))?;
            w.write_all(b",\"expiresAt\":")?;
            opt(w, e.expires_at().as_deref())?;
            w.write_all(b",\"replacementContentId\":")?;
            opt(w, e.replacement())?;
            w.write_all(b",\"isGlobal\":")?;
            w.write_all(match e.is_global() {
                None => b"null",
                Some(true) => b"true",
                Some(false) => b"false",
            })?;
            w.write_all(b",\"zoneContentIds\":[")?;
            for (i, z) in e.zone_ids().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                js(w, z)?;
            }
            w.write_all(b"]")?;
            if let Some(t) = e.thumbnail() {
                w.write_all(b",\"thumbnail\":")?;
                serde_json::to_writer(&mut *w, t).map_err(io::Error::other)?;
            }
            w.write_all(b"}")?;
        }
        w.write_all(b"}}")
    }

    /// The document as bytes ([`DetailCache::write_to`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_to(&mut v).expect("writing to a Vec cannot fail");
        v
    }
}

/// The cache file in the state dir, with its lock deadline.
#[derive(Debug, Clone)]
pub struct CacheFile {
    path: PathBuf,
    lock_timeout: Duration,
}

/// The result of [`CacheFile::load`].
#[derive(Debug, Default)]
pub struct Loaded {
    /// The cache read (empty when missing, corrupt or unreadable).
    pub cache: DetailCache,
    /// WARNING lines for the agent's log (malformed entries dropped).
    pub warnings: Vec<String>,
    /// ERROR lines for the agent's log (quarantine, lock or read failure).
    pub errors: Vec<String>,
}

impl CacheFile {
    /// The cache at `path` (normally `<state dir>/ops-content-cache.json`), locked with `lock_timeout`.
    pub fn new(path: impl Into<PathBuf>, lock_timeout: Duration) -> CacheFile {
        CacheFile {
            path: path.into(),
            lock_timeout,
        }
    }

    /// The cache of a configuration: `<state dir>/ops-content-cache.json`, lock deadline `OPS_LOCK_TIMEOUT_MS`.
    pub fn from_config(cfg: &crate::config::Config) -> CacheFile {
        CacheFile::new(
            cfg.state_dir().join(CACHE_FILE_NAME),
            Duration::from_millis(cfg.lock_timeout_ms),
        )
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the cache under its lock, parsing straight from the file. Missing → empty. Corrupt → renamed to
    /// `<cache>.corrupt-<pid>-<n>` (unless `dry_run`, where nothing on disk changes) and empty, with an ERROR line. A
    /// lock timeout or unreadable file → empty with an ERROR line (the run then re-reads details; never fatal).
    pub fn load(&self, dry_run: bool) -> Loaded {
        let mut out = Loaded::default();
        let guard = if dry_run {
            None
        } else {
            match FileLock::acquire(&lock_path_for(&self.path), self.lock_timeout) {
                Ok(g) => Some(g),
                Err(e) => {
                    out.errors.push(format!(
                        "content cache lock failed ({e}); continuing without the cache"
                    ));
                    return out;
                }
            }
        };
        // O_NONBLOCK: opening a FIFO put in the cache's place must not block the run (it is refused below); it has
        // no effect on a regular file.
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return out,
            Err(e) => {
                out.errors.push(format!(
                    "cannot read content cache {}: {e}; continuing without it",
                    self.path.display()
                ));
                return out;
            }
        };
        if let Ok(m) = file.metadata()
            && !m.is_file()
        {
            out.errors.push(format!(
                "cannot read content cache {}: it is {}, not a regular file; continuing without it",
                self.path.display(),
                if m.is_dir() {
                    "a directory"
                } else {
                    "a special file (FIFO, socket or device)"
                }
            ));
            return out;
        }
        match parse_cache_reader(file) {
            Ok((cache, dropped)) => {
                if dropped > 0 {
                    out.warnings.push(format!(
                        "content cache: dropped {dropped} malformed entr{} (re-read as stale)",
                        if dropped == 1 { "y" } else { "ies" }
                    ));
                }
                out.cache = cache;
            }
            Err(reason) if reason.starts_with(READ_ERROR) => {
                out.errors.push(format!(
                    "cannot read content cache {}: {reason}; continuing without it",
                    self.path.display()
                ));
            }
            Err(reason) if dry_run => out.errors.push(format!(
                "content cache {} is corrupt ({reason}); dry run: not quarantined, continuing from an empty cache",
                self.path.display()
            )),
            Err(reason) => match crate::state::lock::quarantine(&self.path) {
                Ok(q) => out.errors.push(format!(
                    "content cache {} is corrupt ({reason}); quarantined as {} and rebuilding",
                    self.path.display(),
                    q.display()
                )),
                Err(e) => out.errors.push(format!(
                    "content cache {} is corrupt ({reason}); quarantine failed ({e}); rebuilding",
                    self.path.display()
                )),
            },
        }
        drop(guard);
        out
    }

    /// Writes the cache atomically (temp file streamed through a buffer, fsync, rename; mode 0644) under its own
    /// lock.
    ///
    /// Errors: lock timeout or write failure (the old file stays; the next run re-reads what is stale).
    pub fn save(&self, cache: &DetailCache) -> Result<(), String> {
        let _guard = FileLock::acquire(&lock_path_for(&self.path), self.lock_timeout)
            .map_err(|e| e.to_string())?;
        atomic_write_with(&self.path, 0o644, &mut |w| cache.write_to(w))
            .map_err(|e| format!("cannot write content cache {}: {e}", self.path.display()))
    }
}
