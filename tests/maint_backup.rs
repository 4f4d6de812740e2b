//! db-maintainer backup verification (agents.md 6.6.7, 9 items 40, 43): local directories with set modification
//! times, and an S3 prefix on moto.

mod support;

use chrono::{DateTime, Utc};
use object_store::ObjectStoreExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;
use std::fs::{self, File};
use std::path::Path;
use std::time::{Duration, SystemTime};
use vizora_ops::maint::backup::{
    BackupLocation, BackupVerdict, judge, newest_backup, parse_location,
};
use vizora_ops::maint::s3::S3Settings;
use vizora_ops::maint::{MaintError, S3ErrorKind};

fn s3() -> S3Settings {
    S3Settings {
        endpoint: Some(support::s3_endpoint()),
        access_key: Some("testing".into()),
        secret_key: Some("testing-secret".into()),
        region: "us-east-1".into(),
    }
}

/// Writes `bytes` bytes to `dir/rel` and sets its modification time `age` in the past.
fn backup_file(dir: &Path, rel: &str, bytes: usize, age: Duration) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, vec![b'b'; bytes]).unwrap();
    File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(SystemTime::now() - age)
        .unwrap();
}

const H: u64 = 3600;

fn dir_location(d: &Path) -> BackupLocation {
    parse_location(d.to_str().unwrap()).expect("absolute directory")
}

#[tokio::test]
async fn newest_file_within_two_levels_decides_freshness() {
    let d = tempfile::tempdir().unwrap();
    backup_file(
        d.path(),
        "vizora-2026-08-20.sql.gz",
        100,
        Duration::from_secs(30 * H),
    );
    backup_file(
        d.path(),
        "daily/vizora-2026-08-21.sql.gz",
        200,
        Duration::from_secs(2 * H),
    );
    backup_file(
        d.path(),
        "daily/deeper/vizora-newest.sql.gz",
        300,
        Duration::from_secs(60),
    ); // 3 levels: ignored
    backup_file(d.path(), "notes.txt", 5, Duration::from_secs(10));
    let loc = dir_location(d.path());

    let scan = newest_backup(&loc, Some("*.sql.gz"), &s3()).await.unwrap();
    let newest = scan.newest.clone().expect("a backup");
    assert!(
        newest
            .path_or_key
            .ends_with("daily/vizora-2026-08-21.sql.gz"),
        "{newest:?}"
    );
    assert_eq!(newest.size, 200);
    assert_eq!(scan.candidates, 2);
    match judge(scan.newest.as_ref(), Utc::now(), 24) {
        BackupVerdict::Fresh { age_h } => assert!((1.9..2.2).contains(&age_h), "{age_h}"),
        other => panic!("{other:?}"),
    }
    // Without a pattern the newest file of any name wins.
    let scan = newest_backup(&loc, None, &s3()).await.unwrap();
    assert!(scan.newest.unwrap().path_or_key.ends_with("notes.txt"));
}

#[tokio::test]
async fn stale_empty_and_missing_backups() {
    let d = tempfile::tempdir().unwrap();
    let loc = dir_location(d.path());
    let now: DateTime<Utc> = Utc::now();

    // Missing: an empty directory.
    let scan = newest_backup(&loc, None, &s3()).await.unwrap();
    assert_eq!(judge(scan.newest.as_ref(), now, 24), BackupVerdict::Missing);

    // Stale: the only backup is 30 h old.
    backup_file(d.path(), "db.dump", 1000, Duration::from_secs(30 * H));
    let scan = newest_backup(&loc, None, &s3()).await.unwrap();
    match judge(scan.newest.as_ref(), Utc::now(), 24) {
        BackupVerdict::Stale { age_h } => assert!((29.9..30.2).contains(&age_h), "{age_h}"),
        other => panic!("{other:?}"),
    }
    // A larger max age makes it fresh.
    assert!(matches!(
        judge(scan.newest.as_ref(), Utc::now(), 48),
        BackupVerdict::Fresh { .. }
    ));

    // Empty: the newest backup has size 0 (an interrupted dump), even though an older good one exists.
    backup_file(d.path(), "sub/db-new.dump", 0, Duration::from_secs(60));
    let scan = newest_backup(&loc, None, &s3()).await.unwrap();
    assert_eq!(
        judge(scan.newest.as_ref(), Utc::now(), 24),
        BackupVerdict::Empty
    );
}

#[tokio::test]
async fn unreadable_or_malformed_locations_are_failures_not_unset() {
    // Missing directory: a listing failure (backup-unverifiable), not "no backup".
    let e = newest_backup(
        &BackupLocation::Dir("/nonexistent/vizora-backups".into()),
        None,
        &s3(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, MaintError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("/nonexistent/vizora-backups"));

    for bad in [
        "relative/dir",
        "s3://bad bucket/x",
        "s3://",
        "ftp://host/x",
        "s3://user:pw-secret-9@b/x",
    ] {
        let e = parse_location(bad).unwrap_err();
        assert!(e.contains("malformed") || e.contains("empty"), "{bad}: {e}");
        assert!(!e.contains("pw-secret-9"), "{e}");
    }
    // An invalid glob is a configuration error.
    let d = tempfile::tempdir().unwrap();
    let e = newest_backup(&dir_location(d.path()), Some("[unclosed"), &s3())
        .await
        .unwrap_err();
    assert!(matches!(e, MaintError::Config { .. }), "{e:?}");
}

#[tokio::test]
async fn s3_prefix_newest_object_and_missing_bucket() {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let bucket = format!(
        "vz-backup-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000_000
    );
    let resp = reqwest::Client::new()
        .put(format!(
            "{}/{bucket}",
            support::s3_endpoint().trim_end_matches('/')
        ))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let store = AmazonS3Builder::new()
        .with_endpoint(support::s3_endpoint())
        .with_allow_http(true)
        .with_bucket_name(&bucket)
        .with_region("us-east-1")
        .with_access_key_id("testing")
        .with_secret_access_key("testing-secret")
        .build()
        .unwrap();
    store
        .put(&ObjPath::from("db/2026-08-20.sql.gz"), vec![1u8; 64].into())
        .await
        .unwrap();
    store
        .put(&ObjPath::from("other/huge.sql.gz"), vec![1u8; 10].into())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await; // LastModified has second resolution
    store
        .put(
            &ObjPath::from("db/2026-08-21.sql.gz"),
            vec![1u8; 128].into(),
        )
        .await
        .unwrap();
    store
        .put(&ObjPath::from("db/README.txt"), vec![1u8; 3].into())
        .await
        .unwrap();

    let loc = parse_location(&format!("s3://{bucket}/db/")).unwrap();
    assert_eq!(loc.to_string(), format!("s3://{bucket}/db"));
    let scan = newest_backup(&loc, Some("*.sql.gz"), &s3()).await.unwrap();
    assert_eq!(scan.candidates, 2);
    let newest = scan.newest.clone().unwrap();
    assert_eq!(newest.path_or_key, "db/2026-08-21.sql.gz");
    assert_eq!(newest.size, 128);
    assert!(matches!(
        judge(scan.newest.as_ref(), Utc::now(), 24),
        BackupVerdict::Fresh { .. }
    ));
    // An injected clock two days ahead makes the same backup stale.
    let later = Utc::now() + chrono::Duration::hours(48);
    assert!(matches!(
        judge(scan.newest.as_ref(), later, 24),
        BackupVerdict::Stale { .. }
    ));

    // An empty prefix: missing.
    let scan = newest_backup(
        &parse_location(&format!("s3://{bucket}/nothing-here")).unwrap(),
        None,
        &s3(),
    )
    .await
    .unwrap();
    assert_eq!(
        judge(scan.newest.as_ref(), Utc::now(), 24),
        BackupVerdict::Missing
    );

    // A bucket that does not exist: unverifiable.
    let gone = parse_location(&format!("s3://{bucket}-gone/db")).unwrap();
    let e = newest_backup(&gone, None, &s3()).await.unwrap_err();
    assert!(
        matches!(
            e,
            MaintError::S3 {
                kind: S3ErrorKind::BucketNotFound,
                ..
            }
        ),
        "{e:?}"
    );
}
