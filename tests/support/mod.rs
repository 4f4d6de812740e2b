//! Shared helpers for integration tests: locations of the real services that `scripts/test.sh` starts.
//! A test that needs a service calls the matching function, which panics with a clear message when the
//! service is not configured: tests never skip silently.
#![allow(dead_code)]

/// Reads a required test environment variable or panics naming it and the script that sets it.
pub fn require_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!(
            "{name} is not set: this test needs a real service started by scripts/test.sh \
             (run `bash scripts/test.sh`, or `source .ci-services/env.sh` after starting the services)"
        ),
    }
}

/// PostgreSQL URL, e.g. `postgres://postgres@127.0.0.1:55432/postgres` (`VIZORA_TEST_PG_URL`).
pub fn pg_url() -> String {
    require_env("VIZORA_TEST_PG_URL")
}
/// Redis URL, e.g. `redis://127.0.0.1:6390` (`VIZORA_TEST_REDIS_URL`).
pub fn redis_url() -> String {
    require_env("VIZORA_TEST_REDIS_URL")
}
/// SMTP sink without authentication: (host, port, directory where each message is stored as JSON).
pub fn smtp_sink() -> (String, u16, std::path::PathBuf) {
    (
        require_env("VIZORA_TEST_SMTP_HOST"),
        require_env("VIZORA_TEST_SMTP_PORT")
            .parse()
            .expect("VIZORA_TEST_SMTP_PORT is a port"),
        require_env("VIZORA_TEST_SMTP_DIR").into(),
    )
}
/// SMTP sink that requires AUTH (user `VIZORA_TEST_SMTP_AUTH_USER`, password `VIZORA_TEST_SMTP_AUTH_PASS`):
/// (host, port, message directory).
pub fn smtp_auth_sink() -> (String, u16, std::path::PathBuf) {
    (
        require_env("VIZORA_TEST_SMTP_HOST"),
        require_env("VIZORA_TEST_SMTP_AUTH_PORT")
            .parse()
            .expect("VIZORA_TEST_SMTP_AUTH_PORT is a port"),
        require_env("VIZORA_TEST_SMTP_AUTH_DIR").into(),
    )
}
/// S3-compatible endpoint (moto), any access key/secret accepted, e.g. `http://127.0.0.1:5055`.
pub fn s3_endpoint() -> String {
    require_env("VIZORA_TEST_S3_ENDPOINT")
}
/// Absolute path of the `pm2` executable installed by the test script.
pub fn pm2_bin() -> String {
    require_env("VIZORA_TEST_PM2_BIN")
}
