//! S3/MinIO bucket usage for db-maintainer (agents.md 6.6.6, settings 8.8) and the S3 listing used by backup
//! verification (6.6.7).
//!
//! Uses `object_store`'s `AmazonS3` (path-style addressing, `allow_http` for an `http://` endpoint, static keys) for
//! `ListObjectsV2`. `object_store` has no `ListBuckets`, so [`list_buckets`] signs a `GET /` itself with
//! `object_store`'s public SigV4 signer ([`object_store::aws::AwsAuthorizer`]) and sends it with reqwest. Read-only:
//! nothing is written or deleted. Requests use a 5 s connect timeout, a 60 s request timeout and at most 2 retries
//! within 20 s, so an unreachable endpoint fails in seconds rather than minutes.
//!
//! Limitation: `object_store` rejects keys that are not valid object paths (empty segments as in `a//b`, `.` or `..`
//! segments); such a key makes the listing fail with an "invalid path" error rather than being skipped.

use super::{MaintError, S3ErrorKind};
use crate::redact::redact_str;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AwsAuthorizer, AwsCredential};
use object_store::path::Path as ObjPath;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use regex::Regex;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// TCP connect timeout of every S3 request: 5 s.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout of one S3 request (one listing page): 60 s.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Where and how to reach an S3-compatible service. `Debug` hides the secret key.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// Endpoint URL (`http://minio:9000`); `None` = AWS default for the region.
    pub endpoint: Option<String>,
    /// Access key id (`OPS_S3_ACCESS_KEY` / `AWS_ACCESS_KEY_ID`); with no keys requests are unsigned.
    pub access_key: Option<String>,
    /// Secret key (`OPS_S3_SECRET_KEY` / `AWS_SECRET_ACCESS_KEY`).
    pub secret_key: Option<String>,
    /// Region (`us-east-1` by default; MinIO ignores it but SigV4 needs one).
    pub region: String,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint.as_deref().map(redact_str))
            .field("access_key", &self.access_key)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "***"))
            .field("region", &self.region)
            .finish()
    }
}

impl S3Settings {
    /// Settings of the bucket-usage task (8.8); `None` when `OPS_S3_ENDPOINT`/`MINIO_ENDPOINT` is unset (S3 features
    /// off).
    pub fn for_usage(db: &crate::config::DbConfig) -> Option<S3Settings> {
        db.s3_endpoint.as_ref().map(|e| S3Settings {
            endpoint: Some(e.clone()),
            access_key: db.s3_access_key.clone(),
            secret_key: db.s3_secret_key.clone(),
            region: db.s3_region.clone(),
        })
    }
    /// Settings of backup verification (8.7): `OPS_BACKUP_S3_ENDPOINT` or the AWS default, `AWS_*` credentials.
    pub fn for_backups(db: &crate::config::DbConfig) -> S3Settings {
        S3Settings {
            endpoint: db.backup_s3_endpoint.clone(),
            access_key: db.aws_access_key.clone(),
            secret_key: db.aws_secret_key.clone(),
            region: db.aws_region.clone(),
        }
    }
    /// The endpoint's scheme and host only, for incident targets (`s3-unobservable` / endpoint host).
    pub fn endpoint_host(&self) -> String {
        match &self.endpoint {
            Some(e) => url::Url::parse(e)
                .ok()
                .and_then(|u| {
                    u.host_str().map(|h| match u.port() {
                        Some(p) => format!("{h}:{p}"),
                        None => h.to_string(),
                    })
                })
                .unwrap_or_else(|| "<invalid endpoint>".into()),
            None => format!("s3.{}.amazonaws.com", self.region),
        }
    }
    fn base_url(&self) -> String {
        match &self.endpoint {
            Some(e) => e.trim_end_matches('/').to_string(),
            None => format!("https://s3.{}.amazonaws.com", self.region),
        }
    }
}

/// Bounds of one bucket listing (6.6.6): 1 000 000 objects or 10 minutes by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageLimits {
    /// Objects counted at most; more makes the result `partial`.
    pub max_objects: u64,
    /// Wall-clock bound of the listing.
    pub max_duration: Duration,
}

impl Default for UsageLimits {
    fn default() -> Self {
        UsageLimits {
            max_objects: 1_000_000,
            max_duration: Duration::from_secs(600),
        }
    }
}

/// Bytes and objects under one first path segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrefixUsage {
    /// First path segment with its slash (`uploads/`), or the key itself for an object at the bucket root.
    pub prefix: String,
    /// Summed object sizes, bytes.
    pub bytes: u64,
    /// Objects counted.
    pub objects: u64,
}

/// Usage of one bucket (6.6.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketUsage {
    /// Bucket name.
    pub bucket: String,
    /// Objects counted.
    pub objects: u64,
    /// Summed object sizes, bytes.
    pub bytes: u64,
    /// The 5 largest first path segments by bytes, largest first (ties by name).
    pub top_prefixes: Vec<PrefixUsage>,
    /// True when stopped by the object or time bound: the sums are lower bounds.
    pub partial: bool,
    /// Listing duration, ms.
    pub duration_ms: u64,
}

fn store_for(settings: &S3Settings, bucket: &str) -> Result<AmazonS3, MaintError> {
    let mut b = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(&settings.region)
        .with_virtual_hosted_style_request(false)
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(CONNECT_TIMEOUT)
                .with_timeout(REQUEST_TIMEOUT)
                .with_allow_http(
                    settings
                        .endpoint
                        .as_deref()
                        .is_some_and(|e| e.starts_with("http://")),
                ),
        )
        .with_retry(RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(20),
            backoff: Default::default(),
        });
    if let Some(e) = &settings.endpoint {
        b = b.with_endpoint(e);
    }
    match (&settings.access_key, &settings.secret_key) {
        (Some(k), Some(s)) => b = b.with_access_key_id(k).with_secret_access_key(s),
        _ => b = b.with_skip_signature(true),
    }
    b.build().map_err(|e| MaintError::S3 {
        operation: "configure".into(),
        bucket: Some(bucket.to_string()),
        kind: S3ErrorKind::Other,
        message: redact_str(&e.to_string()),
    })
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = c.source();
    }
    s
}

static XML_MESSAGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<Message>([^<]*)</Message>").expect("regex"));
static HTTP_STATUS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"status code: (\d{3})|HTTP status (\d{3})").expect("regex"));

fn is_transport_error(e: &object_store::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = src {
        if let Some(h) = c.downcast_ref::<object_store::client::HttpError>() {
            use object_store::client::HttpErrorKind as K;
            if matches!(
                h.kind(),
                K::Connect | K::Timeout | K::Request | K::Interrupted
            ) {
                return true;
            }
        }
        src = c.source();
    }
    false
}

fn list_error(settings: &S3Settings, bucket: &str, e: &object_store::Error) -> MaintError {
    let text = redact_str(&chain(e));
    let code = XML_CODE.captures(&text).map(|c| c[1].to_string());
    let status: Option<u16> = HTTP_STATUS
        .captures(&text)
        .and_then(|c| c.get(1).or(c.get(2)))
        .and_then(|m| m.as_str().parse().ok());
    let server = match (&code, status) {
        (Some(code), Some(st)) => {
            let msg = XML_MESSAGE
                .captures(&text)
                .map(|c| format!(": {}", &c[1]))
                .unwrap_or_default();
            Some(format!("HTTP {st} {code}{msg}"))
        }
        (None, Some(st)) => Some(format!("HTTP {st}")),
        (Some(code), None) => Some(code.clone()),
        (None, None) => None,
    };
    let kind = match e {
        _ if code.as_deref() == Some("NoSuchBucket") => S3ErrorKind::BucketNotFound,
        object_store::Error::NotFound { .. } => S3ErrorKind::BucketNotFound,
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => S3ErrorKind::AccessDenied,
        _ if matches!(status, Some(401 | 403))
            || matches!(
                code.as_deref(),
                Some("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch")
            ) =>
        {
            S3ErrorKind::AccessDenied
        }
        _ if status.is_none() && is_transport_error(e) => S3ErrorKind::Unreachable,
        _ => S3ErrorKind::Other,
    };
    let detail = server.unwrap_or_else(|| text.chars().take(600).collect());
    let message = match kind {
        S3ErrorKind::BucketNotFound => format!("bucket {bucket} does not exist ({detail})"),
        S3ErrorKind::AccessDenied => format!("access denied to bucket {bucket} ({detail})"),
        S3ErrorKind::Unreachable => format!(
            "endpoint {} unreachable ({detail})",
            settings.endpoint_host()
        ),
        S3ErrorKind::Other => detail,
    };
    MaintError::S3 {
        operation: "ListObjectsV2".into(),
        bucket: Some(bucket.to_string()),
        kind,
        message,
    }
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Object {
    /// Full key.
    pub key: String,
    /// Size, bytes.
    pub size: u64,
    /// `LastModified`.
    pub last_modified: DateTime<Utc>,
}

/// Lists `bucket` (under `prefix`, as a directory: `backups` lists `backups/…`) with `ListObjectsV2` pages, calling
/// `visit` for each object until the listing ends or a bound in `limits` is hit. Returns `(objects visited, partial)`.
///
/// # Errors
/// [`MaintError::S3`] with [`S3ErrorKind::BucketNotFound`], [`S3ErrorKind::AccessDenied`],
/// [`S3ErrorKind::Unreachable`] or [`S3ErrorKind::Other`].
pub async fn list_objects(
    settings: &S3Settings,
    bucket: &str,
    prefix: Option<&str>,
    limits: UsageLimits,
    mut visit: impl FnMut(&S3Object),
) -> Result<(u64, bool), MaintError> {
    let store = store_for(settings, bucket)?;
    let prefix_path: Option<ObjPath> = prefix
        .map(|p| ObjPath::from_iter(p.split('/').filter(|s| !s.is_empty())))
        .filter(|p| !p.as_ref().is_empty());
    let mut stream = store.list(prefix_path.as_ref());
    let deadline = tokio::time::Instant::now() + limits.max_duration;
    let mut count = 0u64;
    loop {
        let next = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => return Ok((count, true)),
            Ok(n) => n,
        };
        match next {
            None => return Ok((count, false)),
            Some(Err(e)) => return Err(list_error(settings, bucket, &e)),
            Some(Ok(meta)) => {
                if count >= limits.max_objects {
                    return Ok((count, true));
                }
                count += 1;
                visit(&S3Object {
                    key: meta.location.to_string(),
                    size: meta.size,
                    last_modified: meta.last_modified,
                });
            }
        }
    }
}

/// First path segment of a key: `uploads/a/b.png` → `uploads/`; a root object → its key.
pub fn first_segment(key: &str) -> String {
    match key.split_once('/') {
        Some((first, _)) => format!("{first}/"),
        None => key.to_string(),
    }
}

/// Sums objects and bytes of `bucket` (6.6.6), with the 5 largest first path segments, stopping at
/// `limits.max_objects` objects or `limits.max_duration` (`partial`).
///
/// # Errors
/// As [`list_objects`] (a nonexistent bucket is [`S3ErrorKind::BucketNotFound`], a refused endpoint
/// [`S3ErrorKind::Unreachable`]).
pub async fn bucket_usage(
    settings: &S3Settings,
    bucket: &str,
    limits: UsageLimits,
) -> Result<BucketUsage, MaintError> {
    let started = Instant::now();
    let mut bytes = 0u64;
    let mut per: HashMap<String, (u64, u64)> = HashMap::new();
    let (objects, partial) = list_objects(settings, bucket, None, limits, |o| {
        bytes = bytes.saturating_add(o.size);
        let e = per.entry(first_segment(&o.key)).or_default();
        e.0 = e.0.saturating_add(o.size);
        e.1 += 1;
    })
    .await?;
    let mut top: Vec<PrefixUsage> = per
        .into_iter()
        .map(|(prefix, (bytes, objects))| PrefixUsage {
            prefix,
            bytes,
            objects,
        })
        .collect();
    top.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.prefix.cmp(&b.prefix)));
    top.truncate(5);
    Ok(BucketUsage {
        bucket: bucket.to_string(),
        objects,
        bytes,
        top_prefixes: top,
        partial,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

static BUCKET_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<Bucket>\s*(?:<[^>]+>[^<]*</[^>]+>\s*)*?<Name>([^<]+)</Name>").expect("regex")
});
static XML_CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<Code>([^<]+)</Code>").expect("regex"));

/// Parses the bucket names of a `ListAllMyBucketsResult` document.
pub fn parse_list_buckets(xml: &str) -> Vec<String> {
    BUCKET_NAME
        .captures_iter(xml)
        .map(|c| c[1].trim().to_string())
        .collect()
}

/// `ListBuckets` (a SigV4-signed `GET /` on the endpoint), used when `OPS_S3_BUCKETS` is unset (6.6.6).
///
/// # Errors
/// [`MaintError::S3`] with operation `ListBuckets`: [`S3ErrorKind::Unreachable`] (connect/timeout),
/// [`S3ErrorKind::AccessDenied`] (401/403), [`S3ErrorKind::Other`] (other status, unparseable reply).
pub async fn list_buckets(settings: &S3Settings) -> Result<Vec<String>, MaintError> {
    let mk = |kind, message: String| MaintError::S3 {
        operation: "ListBuckets".into(),
        bucket: None,
        kind,
        message: redact_str(&message),
    };
    let url = format!("{}/", settings.base_url());
    let mut req =
        object_store::client::HttpRequest::new(object_store::client::HttpRequestBody::empty());
    *req.uri_mut() = url
        .parse()
        .map_err(|e| mk(S3ErrorKind::Other, format!("invalid endpoint URL: {e}")))?;
    if let (Some(k), Some(s)) = (&settings.access_key, &settings.secret_key) {
        let cred = AwsCredential {
            key_id: k.clone(),
            secret_key: s.clone(),
            token: None,
        };
        AwsAuthorizer::new(&cred, "s3", &settings.region)
            .try_authorize(&mut req, None)
            .map_err(|e| mk(S3ErrorKind::Other, format!("signing: {e}")))?;
    }
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| mk(S3ErrorKind::Other, chain(&e)))?;
    let mut rb = client.get(&url);
    for (name, value) in req.headers() {
        if let Ok(v) = value.to_str() {
            rb = rb.header(name.as_str(), v);
        }
    }
    let resp = rb.send().await.map_err(|e| {
        mk(
            S3ErrorKind::Unreachable,
            format!(
                "endpoint {} unreachable — {}",
                settings.endpoint_host(),
                chain(&e)
            ),
        )
    })?;
    let status = resp.status();
    let body = resp
        .text()
        .await
        .map_err(|e| mk(S3ErrorKind::Unreachable, chain(&e)))?;
    if !status.is_success() {
        let code = XML_CODE
            .captures(&body)
            .map(|c| c[1].to_string())
            .unwrap_or_default();
        let kind = if status.as_u16() == 401 || status.as_u16() == 403 {
            S3ErrorKind::AccessDenied
        } else {
            S3ErrorKind::Other
        };
        return Err(mk(kind, format!("HTTP {status} {code}")));
    }
    if !body.contains("ListAllMyBucketsResult") {
        return Err(mk(
            S3ErrorKind::Other,
            "reply is not a ListAllMyBucketsResult document".into(),
        ));
    }
    Ok(parse_list_buckets(&body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_and_segments() {
        let xml = "<ListAllMyBucketsResult><Buckets><Bucket><Name>a</Name><CreationDate>x</CreationDate></Bucket>\
                   <Bucket><CreationDate>y</CreationDate><Name>b.c</Name></Bucket></Buckets></ListAllMyBucketsResult>";
        assert_eq!(parse_list_buckets(xml), vec!["a", "b.c"]);
        assert_eq!(first_segment("uploads/x/y.png"), "uploads/");
        assert_eq!(first_segment("root.bin"), "root.bin");
    }

    #[test]
    fn debug_hides_the_secret_key() {
        let s = S3Settings {
            endpoint: Some("http://127.0.0.1:9000".into()),
            access_key: Some("AKIA".into()),
            secret_key: Some("very-secret-value".into()),
            region: "us-east-1".into(),
        };
        assert!(!format!("{s:?}").contains("very-secret-value"));
        assert_eq!(s.endpoint_host(), "127.0.0.1:9000");
    }
}
