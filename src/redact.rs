//! Redaction of secrets (agents.md 5.9), applied to logs, incident text, audit lines, alerts, the outbox and the
//! dashboard payload. Pure functions over strings and JSON values.

use regex::Regex;
use serde_json::Value;
use std::sync::{LazyLock, RwLock};

static SECRET_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)password|passwd|secret|token|apikey|api_key|authorization|cookie|credential|signature")
        .expect("regex")
});
static BEARER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(?-u:\b)Bearer\s+[A-Za-z0-9._~+/=\-]+").expect("regex"));
static JWT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u:\b)eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}")
        .expect("regex")
});
static USERINFO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"([A-Za-z][A-Za-z0-9+.\-]*://)([^:/@\s]*):([^@/\s]+)@").expect("regex")
});
static QUERY_SECRET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)([?&](?:password|token|secret|key|sig|signature|X-Amz-Signature|X-Amz-Credential)=)[^&\s#]*")
        .expect("regex")
});
/// `password=…`, `passwd: …`, `secret=…`, `token=…`, `api_key=…` in free text (a name or message quoting a credential).
static TEXT_SECRET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b((?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)\s*[=:]\s*)[^\s&#"',;]+"#)
        .expect("regex")
});
static DISPLAY_RAW: [&str; 4] = [
    "jwtToken",
    "pairingCode",
    "pairingCodeExpiresAt",
    "socketId",
];

/// Verbatim secret values registered at configuration load (`*_PASSWORD`, `*_PASS`, `*SECRET*`, `*_TOKEN`, `*_KEY`,
/// webhook URLs); each occurrence in any redacted text becomes `***`.
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers a secret value to be masked wherever it appears. Values shorter than 4 characters are ignored (they
/// would mask ordinary text).
pub fn register_secret(value: &str) {
    let v = value.trim();
    if v.len() < 4 {
        return;
    }
    let mut g = SECRETS.write().expect("secrets lock");
    if !g.iter().any(|s| s == v) {
        g.push(v.to_string());
        g.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Whether a JSON key names a secret (`password`, `token`, `cookie`, …; case-insensitive).
pub fn is_secret_key(key: &str) -> bool {
    SECRET_KEY.is_match(key)
}

/// Redacts a free text: bearer tokens, JWT-shaped strings, URL userinfo passwords, secret query parameters,
/// `password=…`-style pairs and registered secret values.
pub fn redact_str(s: &str) -> String {
    let mut out = s.to_string();
    {
        let g = SECRETS.read().expect("secrets lock");
        for sec in g.iter() {
            if out.contains(sec.as_str()) {
                out = out.replace(sec.as_str(), "***");
            }
        }
    }
    let out = BEARER.replace_all(&out, "Bearer [REDACTED]");
    let out = JWT.replace_all(&out, "[REDACTED-JWT]");
    let out = USERINFO.replace_all(&out, "${1}${2}:***@");
    let out = QUERY_SECRET.replace_all(&out, "${1}***");
    let out = TEXT_SECRET.replace_all(&out, "${1}***");
    out.into_owned()
}

/// Redacts a JSON value: secret keys → `"[REDACTED]"`, display raw columns (`jwtToken`, `pairingCode`,
/// `pairingCodeExpiresAt`, `socketId`) removed, every string through [`redact_str`].
pub fn redact_value(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut o = serde_json::Map::new();
            for (k, val) in m {
                if DISPLAY_RAW.contains(&k.as_str()) {
                    continue;
                }
                if is_secret_key(k) && !val.is_null() && !val.is_boolean() {
                    o.insert(k.clone(), Value::String("[REDACTED]".into()));
                } else {
                    o.insert(k.clone(), redact_value(val));
                }
            }
            Value::Object(o)
        }
        Value::Array(a) => Value::Array(a.iter().map(redact_value).collect()),
        Value::String(s) => Value::String(redact_str(s)),
        other => other.clone(),
    }
}

/// The host of a URL only (webhook and heartbeat URLs are never printed whole; agents.md 5.9).
pub fn url_host_only(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(p) => format!("{}://{}", p.scheme(), p.host_str().unwrap_or("?")),
        Err(_) => "<invalid url>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_in_text_urls_and_json_are_masked() {
        assert_eq!(
            redact_str("Authorization: Bearer abc.def"),
            "Authorization: Bearer [REDACTED]"
        );
        assert_eq!(
            redact_str("postgres://ops:hunter2@db:5432/x?sslmode=require&password=p"),
            "postgres://ops:***@db:5432/x?sslmode=require&password=***"
        );
        assert_eq!(redact_str("redis://:pw@h"), "redis://:***@h");
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlLXZhbHVl";
        assert_eq!(
            redact_str(&format!("tok {jwt} end")),
            "tok [REDACTED-JWT] end"
        );
        let v = redact_value(
            &json!({"password":"x","nested":{"accessToken":"y","ok":"fine"},
            "display":{"jwtToken":"h","socketId":"s","nickname":"n"}}),
        );
        assert_eq!(
            v,
            json!({"password":"[REDACTED]","nested":{"accessToken":"[REDACTED]","ok":"fine"},
            "display":{"nickname":"n"}})
        );
    }

    #[test]
    fn registered_secret_values_are_masked_anywhere() {
        register_secret("s3cr3t-webhook-path");
        assert_eq!(
            redact_str("posting to https://hooks/s3cr3t-webhook-path failed"),
            "posting to https://hooks/*** failed"
        );
    }
}
