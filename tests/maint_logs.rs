//! db-maintainer log retention on real files (agents.md 6.6.5, 4.8, 9 items 40, 41): archive then trim in place to a
//! marked tail; never empty, delete or replace a log; the audit log is moved aside and compressed.

use chrono::{DateTime, Duration, Utc};
use flate2::read::GzDecoder;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use vizora_ops::maint::logs::{DueReason, RotationParams, plan_rotation, rotate_logs};

const KIB: u64 = 1024;

fn params() -> RotationParams {
    RotationParams {
        rotate_days: 7,
        tail_bytes: 64 * KIB,
        max_bytes: 1024 * KIB,
        audit_max_bytes: 256 * KIB,
    }
}

fn now() -> DateTime<Utc> {
    "2026-08-22T03:00:00.250Z".parse().unwrap()
}

/// A log of numbered lines of about `bytes` bytes.
fn write_log(path: &Path, bytes: u64) -> Vec<u8> {
    let mut data = Vec::new();
    let mut i = 0u64;
    while (data.len() as u64) < bytes {
        data.extend_from_slice(
            format!("2026-08-21T10:00:00Z app line {i:08} some payload text here\n").as_bytes(),
        );
        i += 1;
    }
    fs::write(path, &data).unwrap();
    data
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn old_big_log_is_archived_and_trimmed_in_place_with_a_marker() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("vizora-api-out.log");
    let original = write_log(&log, 300 * KIB);
    let ino = fs::metadata(&log).unwrap().ino();
    // The process manager's append handle, opened before rotation, must stay valid.
    let mut appender = fs::OpenOptions::new().append(true).open(&log).unwrap();
    write_log(&d.path().join("small.log"), 10 * KIB);
    write_log(&d.path().join("notes.txt"), 300 * KIB);
    fs::create_dir(d.path().join("dir.log")).unwrap();
    std::os::unix::fs::symlink(&log, d.path().join("link.log")).unwrap();

    let (plans, _, _) = plan_rotation(d.path(), None, &params(), now());
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].reason, DueReason::NoArchive);

    let r = rotate_logs(d.path(), None, &params(), now());
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(r.skipped_changed.is_empty());
    assert_eq!(r.files_examined, 2, "only regular *.log files");
    assert_eq!(r.rotated.len(), 1);
    let rot = &r.rotated[0];
    assert_eq!(rot.file, "vizora-api-out.log");
    assert_eq!(rot.bytes_archived, original.len() as u64);
    assert_eq!(
        rot.archive,
        "archive/vizora-api-out.log-20260822T030000Z.gz"
    );
    assert!(rot.archive_bytes > 0);

    // The archive holds exactly the original bytes.
    assert_eq!(gunzip(&d.path().join(&rot.archive)), original);

    // Same inode, marker line, then the original tail starting at a line boundary.
    let meta = fs::metadata(&log).unwrap();
    assert_eq!(meta.ino(), ino);
    let now_content = fs::read(&log).unwrap();
    let text = String::from_utf8(now_content.clone()).unwrap();
    let (marker, rest) = text.split_once('\n').unwrap();
    assert_eq!(
        marker,
        format!(
            "[log-retention] 2026-08-22T03:00:00.250Z rotated: {} bytes archived to {}; kept the last {} bytes. \
             Earlier lines are in the archive — this log was not emptied.",
            original.len(),
            rot.archive,
            rot.kept_bytes
        )
    );
    assert_eq!(rest.len() as u64, rot.kept_bytes);
    assert!(rot.kept_bytes > 0 && rot.kept_bytes <= 64 * KIB);
    assert!(original.ends_with(rest.as_bytes()));
    assert!(
        rest.starts_with("2026-08-21T10:00:00Z app line "),
        "tail starts at a full line"
    );

    // The old handle appends after the new content (no hole, no lost write).
    appender.write_all(b"after rotation\n").unwrap();
    let after = fs::read(&log).unwrap();
    assert!(after.starts_with(&now_content) && after.ends_with(b"after rotation\n"));
    assert_eq!(after.len(), now_content.len() + 15);

    // Other files untouched.
    assert!(fs::metadata(d.path().join("small.log")).unwrap().len() >= 10 * KIB);
    assert!(fs::metadata(d.path().join("notes.txt")).unwrap().len() >= 300 * KIB);
}

#[test]
fn due_rule_respects_archive_age_and_max_size() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("worker.log");
    write_log(&log, 300 * KIB);
    let r = rotate_logs(d.path(), None, &params(), now());
    assert_eq!(r.rotated.len(), 1);

    // It grows again; a day later the recent archive means "not due".
    write_log(&log, 300 * KIB);
    let r = rotate_logs(d.path(), None, &params(), now() + Duration::days(1));
    assert!(r.rotated.is_empty(), "{r:?}");

    // Seven days later (a daily run can start a little earlier than the previous one) it is due again.
    let r = rotate_logs(
        d.path(),
        None,
        &params(),
        now() + Duration::days(7) - Duration::seconds(30),
    );
    assert_eq!(r.rotated.len(), 1, "{r:?}");
    let archives: Vec<_> = fs::read_dir(d.path().join("archive")).unwrap().collect();
    assert_eq!(archives.len(), 2, "archives are never deleted");

    // Above max_bytes it is due regardless of the archive age (here: 0 s old).
    let same_time = now() + Duration::days(7) - Duration::seconds(30);
    write_log(&log, 1100 * KIB);
    let (plans, _, _) = plan_rotation(d.path(), None, &params(), same_time);
    assert_eq!(plans[0].reason, DueReason::TooLarge);
    let r = rotate_logs(d.path(), None, &params(), same_time);
    assert_eq!(r.rotated.len(), 1);
    // Same second as the previous archive: a new name, the old archive is not overwritten.
    assert_eq!(
        r.rotated[0].archive,
        "archive/worker.log-20260829T025930Z-1.gz"
    );
    assert_eq!(fs::read_dir(d.path().join("archive")).unwrap().count(), 3);
}

#[test]
fn log_without_newline_in_its_tail_keeps_the_raw_tail() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("binaryish.log");
    let data = vec![b'z'; 200 * KIB as usize];
    fs::write(&log, &data).unwrap();
    let r = rotate_logs(d.path(), None, &params(), now());
    assert_eq!(r.rotated.len(), 1);
    assert_eq!(r.rotated[0].kept_bytes, 64 * KIB);
    let content = fs::read(&log).unwrap();
    assert!(content.len() as u64 > 64 * KIB, "never emptied");
    assert_eq!(gunzip(&d.path().join(&r.rotated[0].archive)), data);
}

#[test]
fn audit_log_is_moved_aside_and_compressed_by_size() {
    let state = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let audit = state.path().join("ops-audit.jsonl");
    let mut data = Vec::new();
    for i in 0..4000 {
        data.extend_from_slice(
            format!("{{\"kind\":\"mutation\",\"id\":\"{i}\",\"agent\":\"db-maintainer\"}}\n")
                .as_bytes(),
        );
    }
    data.extend_from_slice(&data.clone());
    data.extend_from_slice(&data.clone());
    assert!(data.len() as u64 > 256 * KIB);
    fs::write(&audit, &data).unwrap();

    // Below the limit: untouched.
    let big = RotationParams {
        audit_max_bytes: 100 * 1024 * KIB,
        ..params()
    };
    assert!(
        rotate_logs(logs.path(), Some(&audit), &big, now())
            .rotated
            .is_empty()
    );

    let r = rotate_logs(logs.path(), Some(&audit), &params(), now());
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.rotated.len(), 1);
    let rot = &r.rotated[0];
    assert_eq!(rot.file, "ops-audit.jsonl");
    assert_eq!(rot.archive, "archive/ops-audit-20260822T030000Z.jsonl.gz");
    assert_eq!(rot.bytes_archived, data.len() as u64);
    assert_eq!(rot.kept_bytes, 0);
    // Never rewritten in place: moved away, the next append creates a new file.
    assert!(!audit.exists());
    assert_eq!(gunzip(&state.path().join(&rot.archive)), data);
    let mode = fs::metadata(state.path().join(&rot.archive))
        .unwrap()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "audit archives are private like the audit log");
    let names: Vec<String> = fs::read_dir(state.path().join("archive"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["ops-audit-20260822T030000Z.jsonl.gz".to_string()],
        "temp file removed"
    );
}

#[test]
fn unwritable_archive_location_is_reported_and_the_log_left_intact() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("api-error.log");
    let original = write_log(&log, 200 * KIB);
    // A regular file where the archive directory should be: nothing can be archived (works as root too).
    fs::write(d.path().join("archive"), b"not a directory").unwrap();
    let r = rotate_logs(d.path(), None, &params(), now());
    assert!(r.rotated.is_empty());
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert!(r.errors[0].starts_with("api-error.log: "), "{:?}", r.errors);
    assert_eq!(
        fs::read(&log).unwrap(),
        original,
        "no trim without an archive"
    );
}

#[test]
fn missing_log_dir_is_nothing_to_rotate() {
    let d = tempfile::tempdir().unwrap();
    let r = rotate_logs(&d.path().join("no-such-dir"), None, &params(), now());
    assert!(!r.dir_exists);
    assert!(r.rotated.is_empty() && r.errors.is_empty() && r.skipped_changed.is_empty());
    assert_eq!(r.files_examined, 0);
}
