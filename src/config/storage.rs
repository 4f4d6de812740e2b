//! S3-compatible storage settings (agents.md 8.8, 6.6.6): the endpoint (`OPS_S3_*`, else MinIO's variables), its
//! credentials, the buckets to measure and the size warning. The fields live in [`super::DbConfig`].

use super::Source;

/// Default of `MINIO_PORT`, used only to build the endpoint from `MINIO_ENDPOINT`.
pub const DEFAULT_MINIO_PORT: u64 = 9000;
/// Default of `OPS_S3_REGION`.
pub const DEFAULT_S3_REGION: &str = "us-east-1";

/// `OPS_S3_ENDPOINT` (http(s)), else `http(s)://<MINIO_ENDPOINT>:<MINIO_PORT>` (`MINIO_USE_SSL`); `None` → S3
/// features off.
pub(super) fn endpoint(src: &Source) -> Option<String> {
    if let Some(e) = src.get("OPS_S3_ENDPOINT") {
        return src.url("OPS_S3_ENDPOINT", Some(&e), &["http", "https"]);
    }
    let h = src.get("MINIO_ENDPOINT")?;
    let ssl = src.bool("MINIO_USE_SSL", false);
    let port = src.u64("MINIO_PORT", DEFAULT_MINIO_PORT, 1, 65_535);
    let host = h
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .to_string();
    Some(format!(
        "{}://{}:{}",
        if ssl { "https" } else { "http" },
        host,
        port
    ))
}

/// The S3 settings besides the endpoint, in the order [`super::DbConfig`] lists them.
pub(super) struct S3Settings {
    /// `OPS_S3_ACCESS_KEY`, else `MINIO_ACCESS_KEY`, else `AWS_ACCESS_KEY_ID`.
    pub(super) access_key: Option<String>,
    /// `OPS_S3_SECRET_KEY`, else `MINIO_SECRET_KEY`, else `AWS_SECRET_ACCESS_KEY`.
    pub(super) secret_key: Option<String>,
    /// `OPS_S3_REGION`.
    pub(super) region: String,
    /// `OPS_S3_BUCKETS`, `None` when unset or empty.
    pub(super) buckets: Option<Vec<String>>,
    /// `OPS_S3_WARN_BYTES`.
    pub(super) warn_bytes: Option<u64>,
}

impl S3Settings {
    /// Reads and validates them; every invalid value is recorded in `src` and replaced by its default.
    pub(super) fn parse(src: &Source) -> S3Settings {
        S3Settings {
            access_key: src
                .get("OPS_S3_ACCESS_KEY")
                .or_else(|| src.get("MINIO_ACCESS_KEY"))
                .or_else(|| src.get("AWS_ACCESS_KEY_ID")),
            secret_key: src
                .get("OPS_S3_SECRET_KEY")
                .or_else(|| src.get("MINIO_SECRET_KEY"))
                .or_else(|| src.get("AWS_SECRET_ACCESS_KEY")),
            region: src
                .get("OPS_S3_REGION")
                .unwrap_or_else(|| DEFAULT_S3_REGION.into()),
            buckets: src.list("OPS_S3_BUCKETS").filter(|l| !l.is_empty()),
            warn_bytes: src
                .get("OPS_S3_WARN_BYTES")
                .map(|_| src.u64("OPS_S3_WARN_BYTES", 0, 0, u64::MAX / 2)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::cfg;

    #[test]
    fn minio_variables_build_the_endpoint_and_ops_s3_ones_win() {
        let c = cfg(&[
            ("MINIO_ENDPOINT", "https://minio.internal"),
            ("MINIO_USE_SSL", "yes"),
            ("MINIO_ACCESS_KEY", "mk"),
            ("AWS_ACCESS_KEY_ID", "ak"),
            ("OPS_S3_BUCKETS", ""),
        ])
        .unwrap();
        assert_eq!(
            c.db.s3_endpoint.as_deref(),
            Some("https://minio.internal:9000")
        );
        assert_eq!(c.db.s3_access_key.as_deref(), Some("mk"));
        assert_eq!(c.db.s3_buckets, None);
        assert_eq!(c.db.s3_region, super::DEFAULT_S3_REGION);
        let c = cfg(&[
            ("OPS_S3_ENDPOINT", "http://s3.local:9100"),
            ("MINIO_ENDPOINT", "minio.internal"),
        ])
        .unwrap();
        assert_eq!(c.db.s3_endpoint.as_deref(), Some("http://s3.local:9100"));
    }
}
