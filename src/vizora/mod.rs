//! The Vizora API client (agents.md section 5, against design/vizora-api.md): session (login, one re-login on 401,
//! awaited logout with cookies and CSRF header), envelope unwrap, error classes, page walk with completeness from
//! `meta.total`, the host-wide rate budget, retries for idempotent requests, and the audited mutation helper.
//!
//! The client has no DELETE method. Agents use it through the [`VizoraApi`] trait.

mod api;
pub mod budget;
mod client;
mod error;
mod login;
mod mutate;
mod project;
mod request;
mod session;

pub use api::*;
#[allow(unused_imports)]
pub(crate) use client::*;
pub use error::*;
pub use project::*;
pub use session::*;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn envelope_and_error_bodies_unwrap_as_the_api_sends_them() {
        assert_eq!(
            unwrap_envelope(json!({"success":true,"data":{"a":1}})),
            json!({"a":1})
        );
        assert_eq!(
            unwrap_envelope(json!({"success":true,"message":"x"})),
            json!({"success":true,"message":"x"})
        );
        assert_eq!(
            error_message(r#"{"statusCode":400,"message":["a","b"],"error":"Bad Request"}"#),
            "a; b"
        );
        assert_eq!(error_message("<html>oops</html>"), "<html>oops</html>");
    }

    #[test]
    fn retry_after_takes_the_largest_header_and_at_least_one_second() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "0".parse().unwrap());
        h.insert("retry-after-medium", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "0".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(1)));
    }
}
