//! Which process names, units and ids may enter a process-manager argv (agents.md 1.6, 6.1.3, 8.4). Here, in
//! `config`, because `config check` reports a bad `OPS_PM2_APP_*`/`OPS_SYSTEMD_UNIT_*` with the same reason, and
//! `config` imports nothing but `model`, `redact` and `logging` (design/README.md §3); `procman::validate_name`
//! applies it before every command.

/// Why `name` can never be a process name, unit or id in a command, or `None` when it can: it must be non-empty, only
/// `[A-Za-z0-9._@:-]` (one argv element, never shell text), must not start with `-` (it would be read as an option)
/// and must not be `all` in any case (pm2 reads it as every process).
pub fn process_name_problem(name: &str) -> Option<&'static str> {
    // The reason, not just the alphabet: `-` is allowed inside a name, so "only [A-Za-z0-9._@:-]" alone would not
    // explain why `--help` is refused, nor why `all` is.
    if name.is_empty() {
        Some("it is empty")
    } else if name.starts_with('-') {
        Some("it starts with '-', so pm2/systemctl would read it as an option, not a name")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b':' | b'-'))
    {
        Some(
            "it has characters outside [A-Za-z0-9._@:-] (a name is one argv element, never shell text)",
        )
    } else if name.eq_ignore_ascii_case("all") {
        Some(
            "pm2 reads \"all\" as every process, so a command for this one service would act on every app on the \
             host (the ops agents included)",
        )
    } else {
        None
    }
}

/// `name` as a rejection shows it: quoted (control characters escaped) and shortened to 64 characters with `…`.
pub fn shown_process_name(name: &str) -> String {
    let shown: String = name.chars().take(64).collect();
    let more = if name.chars().count() > 64 { "…" } else { "" };
    format!("{shown:?}{more}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_in_any_case_is_a_problem_with_its_reason() {
        for name in ["all", "ALL", "All", "aLl"] {
            let why = process_name_problem(name).expect(name);
            assert!(why.contains("every process"), "{name}: {why}");
        }
        for ok in ["allow", "all-apps", "vizora-web", "x@1.service"] {
            assert_eq!(process_name_problem(ok), None, "{ok}");
        }
    }

    #[test]
    fn shown_name_is_quoted_and_capped() {
        assert_eq!(shown_process_name("a b"), "\"a b\"");
        let long = "x".repeat(70);
        assert_eq!(
            shown_process_name(&long),
            format!("\"{}\"…", "x".repeat(64))
        );
    }
}
