//! The two thumbnail probes of agents.md 6.2.3: `HEAD` of an http(s) URL with a redirect cap
//! ([`probe_http_thumbnail`]) and S3 `HeadObject` of a `minio://` key in `MINIO_BUCKET` (the client is built once per
//! run, only when needed). Both have a deadline (`OPS_PROBE_TIMEOUT_MS`); errors are redacted.

use super::{Run, THUMBNAIL_MAX_REDIRECTS};
use std::sync::Arc;
use std::time::Duration;

impl Run<'_> {
    /// `HeadObject` of `key` in `MINIO_BUCKET`: `Ok(Ok)` exists, `Ok(Err)` missing (a finding), `Err` the probe could
    /// not run (not examined).
    pub(super) async fn s3_head(&mut self, key: &str) -> Result<Result<(), String>, String> {
        use object_store::ObjectStoreExt;
        if self.s3.is_none() {
            self.s3 = Some(build_s3(&self.ctx.cfg).map(Arc::new));
        }
        let store = match self.s3.as_ref().expect("set above") {
            Ok(s) => s.clone(),
            Err(e) => return Err(e.clone()),
        };
        let path = object_store::path::Path::from(key);
        match tokio::time::timeout(self.ctx.cfg.api.probe_timeout, store.head(&path)).await {
            Err(_) => Err("HeadObject timed out".into()),
            Ok(Ok(_)) => Ok(Ok(())),
            Ok(Err(object_store::Error::NotFound { .. })) => Ok(Err(format!(
                "object {key} not found in bucket {}",
                self.ctx.cfg.entity.minio_bucket
            ))),
            Ok(Err(e)) => Err(crate::redact::redact_str(&e.to_string())),
        }
    }
}

fn build_s3(cfg: &crate::config::Config) -> Result<object_store::aws::AmazonS3, String> {
    let ep = cfg
        .db
        .s3_endpoint
        .as_ref()
        .ok_or_else(|| "S3 is not configured".to_string())?;
    let mut b = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(ep)
        .with_bucket_name(&cfg.entity.minio_bucket)
        .with_region(&cfg.db.s3_region)
        .with_allow_http(ep.starts_with("http://"))
        .with_virtual_hosted_style_request(false)
        .with_retry(object_store::RetryConfig {
            max_retries: 0,
            ..Default::default()
        });
    match (&cfg.db.s3_access_key, &cfg.db.s3_secret_key) {
        (Some(k), Some(s)) => {
            b = b.with_access_key_id(k).with_secret_access_key(s);
        }
        _ => b = b.with_skip_signature(true),
    }
    b.build()
        .map_err(|e| crate::redact::redact_str(&e.to_string()))
}

/// `HEAD url` following at most [`THUMBNAIL_MAX_REDIRECTS`] redirects (any http(s) origin); `Ok` on a final 2xx.
/// Each request is bounded by `timeout`. Errors say why (status, transport error, too many redirects), redacted.
pub async fn probe_http_thumbnail(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<(), String> {
    let mut cur = url::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
    for _ in 0..=THUMBNAIL_MAX_REDIRECTS {
        if !matches!(cur.scheme(), "http" | "https") {
            return Err(format!("redirect to a non-http URL ({})", cur.scheme()));
        }
        let r = http
            .head(cur.clone())
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| {
                crate::redact::redact_str(&if e.is_timeout() {
                    format!("HEAD timed out after {} ms", timeout.as_millis())
                } else {
                    format!("HEAD failed: {}", e.without_url())
                })
            })?;
        let st = r.status();
        if st.is_success() {
            return Ok(());
        }
        if st.is_redirection() {
            let loc = r
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| format!("HEAD answered {st} without a Location"))?;
            cur = cur
                .join(loc)
                .map_err(|e| format!("bad redirect Location: {e}"))?;
            continue;
        }
        return Err(format!("HEAD answered {}", st.as_u16()));
    }
    Err(format!("more than {THUMBNAIL_MAX_REDIRECTS} redirects"))
}
