//! Where configuration values come from (agents.md 8.1): the process environment > `<root>/.env` > the optional TOML
//! file, merged into one [`Source`] that remembers what was read and every error met.

use super::{ConfigError, is_secret_var};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The merged key/value sources, with provenance for `config check`; it remembers which variables the configuration
/// read, so that `config check` can name set variables nobody reads (typos such as `OPS_EMIAL`).
///
/// The typed getters ([`Source::bool`], [`Source::u64`], [`Source::f64`], [`Source::url`]) never stop at a malformed
/// value: they record the error (naming the variable) and return the default, so that validation goes on and
/// [`Config::from_source`](super::Config::from_source) fails with every error at once (agents.md 8.1); a malformed value is never used.
#[derive(Debug, Clone, Default)]
pub struct Source {
    pub(super) vals: HashMap<String, (String, &'static str)>,
    pub(super) read: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    errors: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// Prefixes of the variables this program owns (agents.md 8); a set variable with one of them that the configuration
/// never reads is reported by [`Source::unread`].
pub const OWN_PREFIXES: [&str; 6] = [
    "OPS_",
    "VALIDATOR_",
    "SMTP_",
    "MINIO_",
    "BACKUP_",
    "HEALTHCHECKS_",
];

impl Source {
    /// Builds the source from explicit maps (highest precedence first): process env, `.env`, file.
    pub fn layered(
        env: HashMap<String, String>,
        dotenv: HashMap<String, String>,
        file: HashMap<String, String>,
    ) -> Source {
        let mut vals = HashMap::new();
        for (k, v) in file {
            vals.insert(k.to_ascii_uppercase(), (v, "file"));
        }
        for (k, v) in dotenv {
            vals.insert(k, (v, ".env"));
        }
        for (k, v) in env {
            vals.insert(k, (v, "env"));
        }
        Source {
            vals,
            read: Default::default(),
            errors: Default::default(),
        }
    }

    /// A source from the given pairs only (tests, the demo).
    pub fn from_pairs<I: IntoIterator<Item = (K, V)>, K: Into<String>, V: Into<String>>(
        pairs: I,
    ) -> Source {
        Source {
            vals: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), (v.into(), "env")))
                .collect(),
            read: Default::default(),
            errors: Default::default(),
        }
    }

    /// The raw value of a variable, if set (even empty). Marks the variable as read.
    pub fn raw(&self, key: &str) -> Option<&str> {
        if let Ok(mut r) = self.read.lock() {
            r.insert(key.to_string());
        }
        self.peek(key)
    }

    /// The raw value without marking it read (listing and redaction).
    pub(super) fn peek(&self, key: &str) -> Option<&str> {
        self.vals.get(key).map(|(v, _)| v.as_str())
    }

    /// Set variables with one of [`OWN_PREFIXES`] that the configuration never read, sorted, with where each came from
    /// (`env`, `.env`, `file`): most likely misspelt.
    pub fn unread(&self) -> Vec<(String, &'static str)> {
        let read = self.read.lock().map(|r| r.clone()).unwrap_or_default();
        let mut out: Vec<(String, &'static str)> = self
            .vals
            .iter()
            .filter(|(k, _)| OWN_PREFIXES.iter().any(|p| k.starts_with(p)) && !read.contains(*k))
            .map(|(k, (_, from))| (k.clone(), *from))
            .collect();
        out.sort();
        out
    }

    /// The value if set and non-empty after trimming.
    pub fn get(&self, key: &str) -> Option<String> {
        self.raw(key)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &String> {
        self.vals.keys()
    }

    /// Records a configuration error (the message names the variable, never a secret value).
    pub fn fail(&self, msg: impl Into<String>) {
        if let Ok(mut e) = self.errors.lock() {
            e.push(msg.into());
        }
    }

    /// Takes the errors recorded so far.
    pub(super) fn take_errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }

    /// Parses a boolean (`true|1|yes` / `false|0|no|`), default when unset; anything else is recorded as an error
    /// (the default is returned so that validation goes on).
    pub fn bool(&self, key: &str, default: bool) -> bool {
        match self.raw(key) {
            None => default,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" | "" => false,
                _ => {
                    self.fail(format!("{key}: expected true/false/1/0/yes/no, got {v:?}"));
                    default
                }
            },
        }
    }

    /// Parses a whole number in `[min, max]`, default when unset or empty; a malformed or out-of-range value is
    /// recorded as an error (the default is returned so that validation goes on).
    pub fn u64(&self, key: &str, default: u64, min: u64, max: u64) -> u64 {
        match self.get(key) {
            None => default,
            Some(v) => match v.parse::<u64>() {
                Err(_) => {
                    self.fail(format!(
                        "{key}: expected a whole number between {min} and {max}, got {v:?}"
                    ));
                    default
                }
                Ok(n) if n < min || n > max => {
                    self.fail(format!("{key}: {n} is out of range {min}..={max}"));
                    default
                }
                Ok(n) => n,
            },
        }
    }

    /// Parses a finite number in `[min, max]`, default when unset or empty; a malformed or out-of-range value is
    /// recorded as an error (the default is returned so that validation goes on).
    pub fn f64(&self, key: &str, default: f64, min: f64, max: f64) -> f64 {
        match self.get(key) {
            None => default,
            Some(v) => match v.parse::<f64>().ok().filter(|n| n.is_finite()) {
                None => {
                    self.fail(format!("{key}: expected a number, got {v:?}"));
                    default
                }
                Some(n) if n < min || n > max => {
                    self.fail(format!("{key}: {n} is out of range {min}..={max}"));
                    default
                }
                Some(n) => n,
            },
        }
    }

    /// Parses a URL (http/https unless `schemes` says otherwise), `default` when unset; an invalid one is recorded
    /// as an error (the message never quotes the value: URLs carry credentials) and `default` is returned.
    pub fn url(&self, key: &str, default: Option<&str>, schemes: &[&str]) -> Option<String> {
        let v = match self.get(key) {
            Some(v) => v,
            None => return default.map(String::from),
        };
        let problem = match url::Url::parse(&v) {
            Err(e) => Some(format!("{key}: not a valid URL ({e})")),
            Ok(p) if !schemes.contains(&p.scheme()) => Some(format!(
                "{key}: scheme {:?} not allowed (expected {})",
                p.scheme(),
                schemes.join(" or ")
            )),
            Ok(p) if p.host_str().is_none() => Some(format!("{key}: URL has no host")),
            Ok(_) => None,
        };
        match problem {
            Some(m) => {
                self.fail(m);
                default.map(String::from)
            }
            None => Some(v),
        }
    }

    /// A comma-separated list (empty items dropped), `None` when unset.
    pub fn list(&self, key: &str) -> Option<Vec<String>> {
        self.raw(key).map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
    }
}

/// Parses `.env` text: `KEY=VALUE`, optional `export `, `#` comments, single or double quotes (double allow `\n`).
pub fn parse_dotenv(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let l = l.strip_prefix("export ").unwrap_or(l);
        let Some((k, v)) = l.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let v = v.trim();
        let val = if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
            v[1..v.len() - 1].replace("\\n", "\n").replace("\\\"", "\"")
        } else if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
            v[1..v.len() - 1].to_string()
        } else {
            // Unquoted: strip an inline comment introduced by " #".
            match v.find(" #") {
                Some(i) => v[..i].trim().to_string(),
                None => v.to_string(),
            }
        };
        out.insert(k.to_string(), val);
    }
    out
}

/// Parses a TOML configuration file whose keys are environment variable names (lower case allowed).
pub fn parse_toml_file(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let text = read_config_text(path, "config file", false)
        .map_err(ConfigError::one)?
        .unwrap_or_default();
    // The parser's own message quotes the offending line, which may hold a password: report only where and why.
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let at = e
            .span()
            .map(|sp| {
                let before = &text[..sp.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!(" at line {line}, column {col}")
            })
            .unwrap_or_default();
        ConfigError::one(format!(
            "config file {}: invalid TOML{at}: {}",
            path.display(),
            e.message().trim()
        ))
    })?;
    let mut out = HashMap::new();
    for (k, v) in table {
        let s = match v {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(a) => a
                .iter()
                .map(|x| match x {
                    toml::Value::String(s) => s.clone(),
                    o => o.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
            other => {
                // Name the kind only: the value itself may be a secret.
                return Err(ConfigError::one(format!(
                    "config file {}: key {k} has an unsupported value (a {}; expected a string, number, boolean or \
                     array)",
                    path.display(),
                    other.type_str()
                )));
            }
        };
        out.insert(k.to_ascii_uppercase(), s);
    }
    Ok(out)
}

/// Reads a configuration file as UTF-8 text (agents.md 8.1). `Ok(None)` when it does not exist and `optional`.
/// Anything else that keeps its values from being read in full (not a regular file, unreadable, not valid UTF-8) is an
/// error naming the file and, for bad bytes, the byte offset of the first invalid byte: silently dropping a file
/// could lose `OPS_DRY_RUN=yes` and let a planned dry run change production.
pub(super) fn read_config_text(
    path: &Path,
    what: &str,
    optional: bool,
) -> Result<Option<String>, String> {
    let shown = path.display();
    // Checked before reading: a FIFO or device in place of the file would block the read (never hang, agents.md 1.6).
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && optional => return Ok(None),
        Err(e) => return Err(format!("{what} {shown}: cannot read it ({e})")),
        Ok(m) if !m.is_file() => {
            return Err(format!("{what} {shown}: not a regular file"));
        }
        Ok(_) => {}
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{what} {shown}: cannot read it ({e})"))?;
    match String::from_utf8(bytes) {
        Ok(t) => Ok(Some(t)),
        Err(e) => {
            let off = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..off].iter().filter(|&&b| b == b'\n').count() + 1;
            Err(format!(
                "{what} {shown}: not valid UTF-8: invalid byte at offset {off} (line {line}); none of its values \
                 were used; save the file as UTF-8"
            ))
        }
    }
}

/// The process environment, `<root>/.env` and the TOML file as one source, with the root directory and the errors
/// met reading them (agents.md 8.1).
pub(super) fn gather(config_file: Option<&Path>) -> (Source, PathBuf, Vec<String>) {
    let mut errors = Vec::new();
    // `std::env::vars` panics on a non-UTF-8 variable: take them raw, and fail only on one this program reads.
    let mut env: HashMap<String, String> = HashMap::new();
    for (k, v) in std::env::vars_os() {
        match (k.into_string(), v.into_string()) {
            (Ok(k), Ok(v)) => {
                env.insert(k, v);
            }
            (Ok(k), Err(_))
                if OWN_PREFIXES.iter().any(|p| k.starts_with(p)) || is_secret_var(&k) =>
            {
                errors.push(format!("{k} (environment): not valid UTF-8"));
            }
            _ => {}
        }
    }
    let root = env
        .get("OPS_ROOT_DIR")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")));
    let dotenv = match read_config_text(&root.join(".env"), ".env file", true) {
        Ok(Some(t)) => parse_dotenv(&t),
        Ok(None) => HashMap::new(),
        Err(e) => {
            errors.push(e);
            HashMap::new()
        }
    };
    let file_path = config_file.map(PathBuf::from).or_else(|| {
        env.get("OPS_CONFIG_FILE")
            .or_else(|| dotenv.get("OPS_CONFIG_FILE"))
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    });
    let file = match file_path {
        Some(p) => parse_toml_file(&p).unwrap_or_else(|e| {
            errors.extend(e.0);
            HashMap::new()
        }),
        None => HashMap::new(),
    };
    let src = Source::layered(env, dotenv, file);
    src.raw("OPS_CONFIG_FILE"); // read above, before the source existed
    (src, root, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_never_overrides_the_environment_and_file_is_lowest() {
        let env = HashMap::from([("OPS_EMAIL".to_string(), String::new())]);
        let dotenv = parse_dotenv(
            "# c\nexport OPS_EMAIL=dot@x.test\nOPS_PASSWORD=\"a\\nb\"\nOPS_AGENTS='fleet-manager'\n",
        );
        let file = HashMap::from([
            ("ops_agents".to_string(), "schedule-doctor".to_string()),
            ("OPS_MAX_INCIDENTS".to_string(), "7".to_string()),
        ]);
        let s = Source::layered(env, dotenv, file);
        assert_eq!(s.raw("OPS_EMAIL"), Some(""), "env wins even when empty");
        assert_eq!(s.raw("OPS_PASSWORD"), Some("a\nb"));
        assert_eq!(s.raw("OPS_AGENTS"), Some("fleet-manager"));
        assert_eq!(s.raw("OPS_MAX_INCIDENTS"), Some("7"));
    }
}
