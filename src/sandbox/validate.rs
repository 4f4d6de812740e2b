//! A small imitation of Nest's global `ValidationPipe` (`whitelist`, `forbidNonWhitelisted`, implicit conversion of
//! query strings) producing class-validator's messages (`property X should not exist`, `limit must not be greater
//! than 100`, …). Nested properties are prefixed with their parent path (`target.type must be …`).

use serde_json::{Map, Value};

/// A validated optional field: absent, explicitly `null`, or a value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum F<T> {
    Absent,
    Null,
    Val(T),
}

impl<T> F<T> {
    /// The value, if one was given.
    pub(crate) fn val(self) -> Option<T> {
        match self {
            F::Val(v) => Some(v),
            _ => None,
        }
    }
}

/// Validation of one JSON object (a DTO).
pub(crate) struct V<'a> {
    obj: &'a Map<String, Value>,
    prefix: String,
    pub errs: Vec<String>,
}

fn kind_ok_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                .map(|f| f as i64)
        }),
        _ => None,
    }
}

/// Parses the date forms class-validator's `IsISO8601` accepts (RFC 3339, with or without time or zone).
pub(crate) fn parse_iso_any(s: &str) -> Option<i64> {
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(d.timestamp_millis());
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(d) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(d.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|x| x.and_utc().timestamp_millis());
    }
    None
}

impl<'a> V<'a> {
    /// Validates `obj`; messages are prefixed with `prefix` (e.g. `"target."`).
    pub(crate) fn new(obj: &'a Map<String, Value>, prefix: &str) -> V<'a> {
        V {
            obj,
            prefix: prefix.to_string(),
            errs: Vec::new(),
        }
    }

    fn err(&mut self, msg: String) {
        self.errs.push(format!("{}{}", self.prefix, msg));
    }

    /// The raw value of `k` (not `null`).
    pub(crate) fn obj_get(&self, k: &str) -> Option<&'a Value> {
        self.obj.get(k).filter(|v| !v.is_null())
    }

    /// Adds a message (prefixed like the others).
    pub(crate) fn push_err(&mut self, msg: &str) {
        self.err(msg.to_string());
    }

    /// `forbidNonWhitelisted`: every key outside `allowed` is an error.
    pub(crate) fn whitelist(&mut self, allowed: &[&str]) {
        let bad: Vec<String> = self
            .obj
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in bad {
            self.err(format!("property {k} should not exist"));
        }
    }

    fn raw(&self, k: &str) -> F<&'a Value> {
        match self.obj.get(k) {
            None => F::Absent,
            Some(Value::Null) => F::Null,
            Some(v) => F::Val(v),
        }
    }

    /// An optional string (`IsOptional`, `IsString`), with `IsNotEmpty` and length bounds when asked.
    pub(crate) fn string(
        &mut self,
        k: &str,
        not_empty: bool,
        min_len: Option<usize>,
        max_len: Option<usize>,
    ) -> F<String> {
        match self.raw(k) {
            F::Absent => F::Absent,
            F::Null => F::Null,
            F::Val(Value::String(s)) => {
                let n = s.chars().count();
                let mut ok = true;
                if not_empty && s.is_empty() {
                    self.err(format!("{k} should not be empty"));
                    ok = false;
                }
                if let Some(m) = max_len
                    && n > m
                {
                    self.err(format!(
                        "{k} must be shorter than or equal to {m} characters"
                    ));
                    ok = false;
                }
                if let Some(m) = min_len
                    && n < m
                {
                    self.err(format!(
                        "{k} must be longer than or equal to {m} characters"
                    ));
                    ok = false;
                }
                if ok { F::Val(s.clone()) } else { F::Absent }
            }
            F::Val(_) => {
                if let Some(m) = max_len {
                    self.err(format!(
                        "{k} must be shorter than or equal to {m} characters"
                    ));
                }
                if let Some(m) = min_len {
                    self.err(format!(
                        "{k} must be longer than or equal to {m} characters"
                    ));
                }
                self.err(format!("{k} must be a string"));
                F::Absent
            }
        }
    }

    /// A required string (no `IsOptional`): absent or null is an error.
    pub(crate) fn req_string(&mut self, k: &str, not_empty_msg: Option<&str>) -> Option<String> {
        match self.raw(k) {
            F::Val(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            F::Val(Value::String(_)) => {
                match not_empty_msg {
                    Some(m) => self.errs.push(m.to_string()),
                    None => self.err(format!("{k} should not be empty")),
                }
                None
            }
            _ => {
                match not_empty_msg {
                    Some(m) => self.errs.push(m.to_string()),
                    None => self.err(format!("{k} should not be empty")),
                }
                self.err(format!("{k} must be a string"));
                None
            }
        }
    }

    /// An optional integer with bounds (`IsInt`, `Min`, `Max`).
    pub(crate) fn int(&mut self, k: &str, min: Option<i64>, max: Option<i64>) -> F<i64> {
        match self.raw(k) {
            F::Absent => F::Absent,
            F::Null => F::Null,
            F::Val(v) => {
                let n = kind_ok_int(v);
                let f = v.as_f64();
                let mut ok = n.is_some();
                if let Some(m) = max
                    && f.is_none_or(|f| f > m as f64)
                {
                    self.err(format!("{k} must not be greater than {m}"));
                    ok = false;
                }
                if let Some(m) = min
                    && f.is_none_or(|f| f < m as f64)
                {
                    self.err(format!("{k} must not be less than {m}"));
                    ok = false;
                }
                if n.is_none() {
                    self.err(format!("{k} must be an integer number"));
                }
                if ok {
                    F::Val(n.unwrap_or_default())
                } else {
                    F::Absent
                }
            }
        }
    }

    /// An optional boolean.
    pub(crate) fn boolean(&mut self, k: &str) -> F<bool> {
        match self.raw(k) {
            F::Absent => F::Absent,
            F::Null => F::Null,
            F::Val(Value::Bool(b)) => F::Val(*b),
            F::Val(_) => {
                self.err(format!("{k} must be a boolean value"));
                F::Absent
            }
        }
    }

    /// An optional enum string (`IsEnum`/`IsIn`).
    pub(crate) fn one_of(&mut self, k: &str, vals: &[&str]) -> F<String> {
        match self.raw(k) {
            F::Absent => F::Absent,
            F::Null => F::Null,
            F::Val(Value::String(s)) if vals.contains(&s.as_str()) => F::Val(s.clone()),
            F::Val(_) => {
                self.err(format!(
                    "{k} must be one of the following values: {}",
                    vals.join(", ")
                ));
                F::Absent
            }
        }
    }

    /// A required enum string.
    pub(crate) fn req_one_of(&mut self, k: &str, vals: &[&str]) -> Option<String> {
        match self.one_of(k, vals) {
            F::Val(v) => Some(v),
            F::Absent if self.obj.contains_key(k) => None,
            _ => {
                self.err(format!(
                    "{k} must be one of the following values: {}",
                    vals.join(", ")
                ));
                None
            }
        }
    }

    /// An optional ISO-8601 date string (`IsISO8601`/`IsDateString`), as epoch ms.
    pub(crate) fn iso(&mut self, k: &str) -> F<i64> {
        match self.raw(k) {
            F::Absent => F::Absent,
            F::Null => F::Null,
            F::Val(Value::String(s)) => match parse_iso_any(s) {
                Some(ms) => F::Val(ms),
                None => {
                    self.err(format!("{k} must be a valid ISO 8601 date string"));
                    F::Absent
                }
            },
            F::Val(_) => {
                self.err(format!("{k} must be a valid ISO 8601 date string"));
                F::Absent
            }
        }
    }

    /// An optional plain object (`IsObject`).
    pub(crate) fn object(&mut self, k: &str) -> F<Map<String, Value>> {
        match self.raw(k) {
            F::Absent => F::Absent,
            F::Null => F::Null,
            F::Val(Value::Object(m)) => F::Val(m.clone()),
            F::Val(_) => {
                self.err(format!("{k} must be an object"));
                F::Absent
            }
        }
    }

    /// An optional array of integers within bounds (`IsArray`, `IsInt({each})`, `Min/Max({each})`).
    pub(crate) fn int_array(&mut self, k: &str, min: i64, max: i64) -> F<Vec<i64>> {
        match self.raw(k) {
            F::Absent => F::Absent,
            F::Null => F::Null,
            F::Val(Value::Array(a)) => {
                let mut out = Vec::new();
                let (mut bad_int, mut bad_min, mut bad_max) = (false, false, false);
                for v in a {
                    match kind_ok_int(v) {
                        Some(n) => {
                            bad_min |= n < min;
                            bad_max |= n > max;
                            out.push(n);
                        }
                        None => bad_int = true,
                    }
                }
                if bad_max {
                    self.err(format!("each value in {k} must not be greater than {max}"));
                }
                if bad_min {
                    self.err(format!("each value in {k} must not be less than {min}"));
                }
                if bad_int {
                    self.err(format!("each value in {k} must be an integer number"));
                }
                if bad_int || bad_min || bad_max {
                    F::Absent
                } else {
                    F::Val(out)
                }
            }
            F::Val(_) => {
                self.err(format!("each value in {k} must be an integer number"));
                self.err(format!("{k} must be an array"));
                F::Absent
            }
        }
    }

    /// Nested object validation (`ValidateNested`): runs `f` on the nested object with the prefix `k.`.
    /// `required`: absent or non-object gives `nested property k must be either object or array`.
    pub(crate) fn nested<T>(
        &mut self,
        k: &str,
        required: bool,
        f: impl FnOnce(&mut V) -> T,
    ) -> Option<T> {
        match self.raw(k) {
            F::Val(Value::Object(m)) => {
                let mut inner = V::new(m, &format!("{}{k}.", self.prefix));
                let out = f(&mut inner);
                self.errs.append(&mut inner.errs);
                Some(out)
            }
            F::Absent | F::Null if !required => None,
            _ => {
                self.err(format!(
                    "nested property {k} must be either object or array"
                ));
                None
            }
        }
    }
}

/// The query string as Express's `qs` gives it to the pipe: key → values (repeated keys and `k[]` collect).
pub(crate) struct Query {
    pub pairs: Vec<(String, Vec<String>)>,
}

impl Query {
    /// Parses `a=1&b=2&b=3` (percent-decoded, `+` as space, values trimmed like the sanitize interceptor).
    pub(crate) fn parse(q: &str) -> Query {
        let mut pairs: Vec<(String, Vec<String>)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            let mut key = k.to_string();
            if let Some(i) = key.find('[') {
                key.truncate(i);
            }
            if key.is_empty() {
                continue;
            }
            let v = v.trim().to_string();
            match pairs.iter_mut().find(|(kk, _)| *kk == key) {
                Some((_, vs)) => vs.push(v),
                None => pairs.push((key, vec![v])),
            }
        }
        Query { pairs }
    }

    /// The values of `k`.
    pub(crate) fn get(&self, k: &str) -> Option<&[String]> {
        self.pairs
            .iter()
            .find(|(kk, _)| kk == k)
            .map(|(_, v)| v.as_slice())
    }
}

/// JS `Number(x)` on a query value (`""` is 0, junk is NaN).
fn js_number(s: &str) -> f64 {
    let t = s.trim();
    if t.is_empty() {
        return 0.0;
    }
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return i64::from_str_radix(h, 16)
            .map(|v| v as f64)
            .unwrap_or(f64::NAN);
    }
    match t {
        "Infinity" | "+Infinity" => f64::INFINITY,
        "-Infinity" => f64::NEG_INFINITY,
        _ if t
            .chars()
            .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E') =>
        {
            f64::NAN
        }
        _ => t.parse::<f64>().unwrap_or(f64::NAN),
    }
}

/// `PaginationDto` of the query: `page` (int ≥ 1, default 1), `limit` (int 1…100, default 10); `extra` are the
/// other keys the route's DTO declares. Returns `(page, limit)` and the error messages.
pub(crate) fn pagination(q: &Query, extra: &[&str], errs: &mut Vec<String>) -> (u64, u64) {
    for (k, _) in &q.pairs {
        if k != "page" && k != "limit" && !extra.contains(&k.as_str()) {
            errs.push(format!("property {k} should not exist"));
        }
    }
    let mut num = |k: &str, max: Option<i64>, default: u64| -> u64 {
        let Some(vs) = q.get(k) else { return default };
        let n = if vs.len() == 1 {
            js_number(&vs[0])
        } else {
            f64::NAN
        };
        let mut ok = true;
        if let Some(m) = max
            && (n.is_nan() || n > m as f64)
        {
            errs.push(format!("{k} must not be greater than {m}"));
            ok = false;
        }
        if n.is_nan() || n < 1.0 {
            errs.push(format!("{k} must not be less than 1"));
            ok = false;
        }
        if !(n.is_finite() && n.fract() == 0.0) {
            errs.push(format!("{k} must be an integer number"));
            ok = false;
        }
        if ok { n as u64 } else { default }
    };
    let page = num("page", None, 1);
    let limit = num("limit", Some(100), 10);
    (page, limit)
}

/// A scalar string query value checked against `IsIn`/`MaxLength`.
pub(crate) fn query_string(
    q: &Query,
    k: &str,
    vals: Option<&[&str]>,
    max_len: Option<usize>,
    errs: &mut Vec<String>,
) -> Option<String> {
    let vs = q.get(k)?;
    if vs.len() != 1 {
        if let Some(v) = vals {
            errs.push(format!(
                "{k} must be one of the following values: {}",
                v.join(", ")
            ));
        }
        errs.push(format!("{k} must be a string"));
        return None;
    }
    let s = &vs[0];
    if let Some(v) = vals
        && !v.contains(&s.as_str())
    {
        errs.push(format!(
            "{k} must be one of the following values: {}",
            v.join(", ")
        ));
        return None;
    }
    if let Some(m) = max_len
        && s.chars().count() > m
    {
        errs.push(format!(
            "{k} must be shorter than or equal to {m} characters"
        ));
        return None;
    }
    Some(s.clone())
}

/// The sanitize interceptor on input: strings trimmed; strings with `<`, `>` or `&` lose their tags.
pub(crate) fn sanitize(v: &mut Value) {
    match v {
        Value::String(s) => {
            let t = s.trim();
            if t.contains(['<', '>']) {
                let mut out = String::with_capacity(t.len());
                let mut in_tag = false;
                for c in t.chars() {
                    match c {
                        '<' => in_tag = true,
                        '>' if in_tag => in_tag = false,
                        _ if !in_tag => out.push(c),
                        _ => {}
                    }
                }
                *s = out.trim().to_string();
            } else if t.len() != s.len() {
                *s = t.to_string();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(sanitize),
        Value::Object(m) => m.values_mut().for_each(sanitize),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_rules() {
        let mut e = Vec::new();
        assert_eq!(
            pagination(&Query::parse("page=2&limit=100"), &[], &mut e),
            (2, 100)
        );
        assert!(e.is_empty());
        pagination(&Query::parse("limit=101"), &[], &mut e);
        assert_eq!(e, vec!["limit must not be greater than 100"]);
        e.clear();
        pagination(&Query::parse("page=0&foo=1"), &[], &mut e);
        assert_eq!(
            e,
            vec![
                "property foo should not exist",
                "page must not be less than 1"
            ]
        );
        e.clear();
        pagination(&Query::parse("limit=abc"), &[], &mut e);
        assert_eq!(e.len(), 3);
    }
}
