//! db-maintainer bucket usage against a real S3-compatible server (moto; agents.md 6.6.6). Each test uses its own
//! bucket.

mod support;

use object_store::ObjectStoreExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;
use std::time::{Duration, Instant};
use vizora_ops::maint::s3::{S3Settings, UsageLimits, bucket_usage, list_buckets};
use vizora_ops::maint::{MaintError, S3ErrorKind};

fn settings() -> S3Settings {
    S3Settings {
        endpoint: Some(support::s3_endpoint()),
        access_key: Some("testing".into()),
        secret_key: Some("testing-secret".into()),
        region: "us-east-1".into(),
    }
}

fn unique_bucket() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "vz-maint-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

/// Creates a bucket (moto accepts an unsigned `PUT /<bucket>`) and uploads `objects` with object_store.
async fn bucket_with(objects: &[(&str, usize)]) -> String {
    let bucket = unique_bucket();
    let resp = reqwest::Client::new()
        .put(format!(
            "{}/{bucket}",
            support::s3_endpoint().trim_end_matches('/')
        ))
        .send()
        .await
        .expect("S3 test endpoint reachable");
    assert!(
        resp.status().is_success(),
        "create bucket: {}",
        resp.status()
    );
    let store = AmazonS3Builder::new()
        .with_endpoint(support::s3_endpoint())
        .with_allow_http(true)
        .with_bucket_name(&bucket)
        .with_region("us-east-1")
        .with_access_key_id("testing")
        .with_secret_access_key("testing-secret")
        .build()
        .unwrap();
    for (key, size) in objects {
        store
            .put(&ObjPath::from(*key), vec![b'x'; *size].into())
            .await
            .expect("put object");
    }
    bucket
}

#[tokio::test]
async fn usage_sums_objects_and_bytes_with_the_largest_prefixes() {
    let bucket = bucket_with(&[
        ("uploads/org1/a.png", 1000),
        ("uploads/org2/b.mp4", 2000),
        ("thumbnails/a.jpg", 500),
        ("big/video.mp4", 5000),
        ("logs/x.txt", 100),
        ("logs/y.txt", 150),
        ("tmp/z", 20),
        ("root.bin", 10),
    ])
    .await;
    let u = bucket_usage(&settings(), &bucket, UsageLimits::default())
        .await
        .expect("usage");
    assert_eq!(u.bucket, bucket);
    assert_eq!(u.objects, 8);
    assert_eq!(u.bytes, 1000 + 2000 + 500 + 5000 + 100 + 150 + 20 + 10);
    assert!(!u.partial);
    let top: Vec<(&str, u64)> = u
        .top_prefixes
        .iter()
        .map(|p| (p.prefix.as_str(), p.bytes))
        .collect();
    assert_eq!(
        top,
        vec![
            ("big/", 5000),
            ("uploads/", 3000),
            ("thumbnails/", 500),
            ("logs/", 250),
            ("tmp/", 20)
        ]
    );
    assert_eq!(u.top_prefixes[1].objects, 2);

    // The object bound makes the result partial (a lower bound).
    let limits = UsageLimits {
        max_objects: 3,
        max_duration: Duration::from_secs(60),
    };
    let p = bucket_usage(&settings(), &bucket, limits).await.unwrap();
    assert!(p.partial);
    assert_eq!(p.objects, 3);

    // ListBuckets (signed GET /) sees it.
    let all = list_buckets(&settings()).await.expect("ListBuckets");
    assert!(all.contains(&bucket), "{all:?}");
}

#[tokio::test]
async fn empty_bucket_has_zero_usage() {
    let bucket = bucket_with(&[]).await;
    let u = bucket_usage(&settings(), &bucket, UsageLimits::default())
        .await
        .unwrap();
    assert_eq!((u.objects, u.bytes, u.partial), (0, 0, false));
    assert!(u.top_prefixes.is_empty());
}

#[tokio::test]
async fn nonexistent_bucket_is_a_clear_error() {
    let name = format!("{}-missing", unique_bucket());
    let e = bucket_usage(&settings(), &name, UsageLimits::default())
        .await
        .unwrap_err();
    match &e {
        MaintError::S3 { kind, bucket, .. } => {
            assert_eq!(*kind, S3ErrorKind::BucketNotFound, "{e}");
            assert_eq!(bucket.as_deref(), Some(name.as_str()));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(e.to_string().contains("does not exist"), "{e}");
    assert!(!e.to_string().contains("testing-secret"));
}

#[tokio::test]
async fn refused_endpoint_is_a_clear_error_quickly() {
    let s = S3Settings {
        endpoint: Some("http://127.0.0.1:1".into()),
        ..settings()
    };
    let started = Instant::now();
    let e = bucket_usage(&s, "anything", UsageLimits::default())
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    match &e {
        MaintError::S3 { kind, .. } => assert_eq!(*kind, S3ErrorKind::Unreachable, "{e}"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
    assert!(!e.to_string().contains("testing-secret"));

    let e = list_buckets(&s).await.unwrap_err();
    assert!(
        matches!(
            e,
            MaintError::S3 {
                kind: S3ErrorKind::Unreachable,
                ..
            }
        ),
        "{e:?}"
    );
}
