//! The e-mail digest channel's settings (agents.md 7.3): transport security and recipients. The fields live in
//! [`super::AlertConfig`].

use super::Source;

/// Default of `SMTP_PORT`.
pub const DEFAULT_SMTP_PORT: u64 = 587;
/// Default of `SMTP_FROM`, the digest's sender.
pub const DEFAULT_SMTP_FROM: &str = "vizora-ops@vizora.cloud";

/// `SMTP_SECURE` (agents.md 7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `auto` (the default): implicit TLS on port 465; else STARTTLS, required when `SMTP_USER` is set and used when
    /// offered otherwise (agents.md 7.3).
    Auto,
    /// `tls` (or `true`): implicit TLS from the first byte.
    Tls,
    /// `starttls`: STARTTLS required; a server that does not offer it fails the delivery.
    StartTls,
    /// `none` (or `false`): plain text, for local test servers.
    None,
}

impl SmtpSecurity {
    /// `SMTP_SECURE`, case-insensitive; anything else is recorded as an error and `auto` stands in.
    pub(super) fn parse(src: &Source) -> SmtpSecurity {
        match src
            .get("SMTP_SECURE")
            .map(|s| s.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("auto") => SmtpSecurity::Auto,
            Some("tls") | Some("true") => SmtpSecurity::Tls,
            Some("starttls") => SmtpSecurity::StartTls,
            Some("none") | Some("false") => SmtpSecurity::None,
            Some(o) => {
                src.fail(format!(
                    "SMTP_SECURE: expected auto, tls, starttls or none, got {o:?}"
                ));
                SmtpSecurity::Auto
            }
        }
    }
}

/// `OPS_ALERT_EMAIL`, else `SMTP_TO` (comma lists): the digest's recipients; each must look like an address.
pub(super) fn recipients(src: &Source) -> Vec<String> {
    let recipients = src
        .list("OPS_ALERT_EMAIL")
        .filter(|l| !l.is_empty())
        .or_else(|| src.list("SMTP_TO"))
        .unwrap_or_default();
    for r in &recipients {
        if !r.contains('@') || r.contains(char::is_whitespace) {
            src.fail(format!(
                "OPS_ALERT_EMAIL/SMTP_TO: {r:?} is not an e-mail address"
            ));
        }
    }
    recipients
}

#[cfg(test)]
mod tests {
    use super::super::tests::cfg;
    use super::SmtpSecurity;

    #[test]
    fn smtp_security_is_case_insensitive_and_recipients_fall_back_to_smtp_to() {
        let c = cfg(&[
            ("SMTP_SECURE", "STARTTLS"),
            ("OPS_ALERT_EMAIL", ""),
            ("SMTP_TO", "a@b.test, c@d.test"),
        ])
        .unwrap();
        assert_eq!(c.alert.smtp_secure, SmtpSecurity::StartTls);
        assert_eq!(c.alert.recipients, vec!["a@b.test", "c@d.test"]);
        assert_eq!(c.alert.smtp_port, 587);
        assert_eq!(c.alert.smtp_from, super::DEFAULT_SMTP_FROM);
        let e = cfg(&[("SMTP_SECURE", "ssl"), ("OPS_ALERT_EMAIL", "ops")]).unwrap_err();
        assert_eq!(e.0.len(), 2, "{e}");
        assert!(
            e.0[0].starts_with("SMTP_SECURE:") && e.0[1].starts_with("OPS_ALERT_EMAIL/SMTP_TO:"),
            "{e}"
        );
    }
}
