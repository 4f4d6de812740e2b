//! Secret settings (agents.md 5.9): which variables are secrets, and masking userinfo in the values shown.

const SECRET_SUFFIXES: [&str; 3] = ["_PASSWORD", "_PASS", "_TOKEN"];

/// Whether a variable name is a secret setting (agents.md 5.9).
pub fn is_secret_var(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    SECRET_SUFFIXES.iter().any(|s| n.ends_with(s))
        || n.contains("SECRET")
        || n.ends_with("_KEY")
        || n == "DATABASE_URL"
        || n == "SLACK_WEBHOOK_URL"
        || n.starts_with("OPS_HEARTBEAT_URL_")
        || n == "HEALTHCHECKS_HEALTH_GUARDIAN_URL"
        || n.ends_with("REDIS_URL")
}

static URL_USERINFO: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"([A-Za-z][A-Za-z0-9+.\-]*://)[^/@\s,]+@").expect("regex")
});
static BARE_USERINFO: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(^|[\s,=])[^\s,/@:]*:[^\s,/@]*@").expect("regex")
});

/// Masks the userinfo of every URL-ish part of a value, `scheme://user:pass@host` and schemeless `user:pass@host`
/// alike, as `***@host` (agents.md 5.9); plain e-mail addresses (`ops@example.com`, no `:`) are left alone.
pub fn mask_userinfo(v: &str) -> String {
    let v = URL_USERINFO.replace_all(v, "${1}***@");
    BARE_USERINFO.replace_all(&v, "${1}***@").into_owned()
}

#[cfg(test)]
mod tests {
    use super::mask_userinfo;

    #[test]
    fn userinfo_is_masked_with_or_without_a_scheme_but_e_mail_addresses_are_not() {
        assert_eq!(mask_userinfo("user:pass@minio.local"), "***@minio.local");
        assert_eq!(
            mask_userinfo("s3://key:secret@bucket/x"),
            "s3://***@bucket/x"
        );
        assert_eq!(mask_userinfo("https://tok@h/p@q"), "https://***@h/p@q");
        assert_eq!(mask_userinfo("a@b.test,c@d.test"), "a@b.test,c@d.test");
        assert_eq!(mask_userinfo("web@1.service"), "web@1.service");
    }
}
