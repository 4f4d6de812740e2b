//! Time helpers of the sandbox: ISO-8601 UTC parsing and formatting on epoch milliseconds, the rebasing of
//! timestamp strings inside free-form JSON, and the sandbox clock (real time plus a controllable offset).

use serde::{Serialize, Serializer};
use serde_json::Value;
use std::sync::atomic::{AtomicI64, Ordering};

/// Milliseconds since the Unix epoch, real time.
pub(crate) fn real_now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The sandbox clock: real time plus an offset that the control API sets.
#[derive(Debug, Default)]
pub(crate) struct SbClock {
    offset_ms: AtomicI64,
}

impl SbClock {
    /// Sandbox "now", epoch milliseconds.
    pub(crate) fn now_ms(&self) -> i64 {
        real_now_ms() + self.offset_ms.load(Ordering::Relaxed)
    }
    pub(crate) fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }
    pub(crate) fn set_offset_ms(&self, ms: i64) {
        self.offset_ms.store(ms, Ordering::Relaxed);
    }
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff…]Z` into epoch milliseconds; anything else is `None`.
pub(crate) fn parse_iso_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b.len() > 40 || b[b.len() - 1] != b'Z' {
        return None;
    }
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let y = digits(&b[0..4])? as i64;
    let mo = digits(&b[5..7])?;
    let d = digits(&b[8..10])?;
    let h = digits(&b[11..13])?;
    let mi = digits(&b[14..16])?;
    let se = digits(&b[17..19])?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let rest = &b[19..b.len() - 1];
    let mut ms = 0i64;
    if !rest.is_empty() {
        if rest[0] != b'.' || rest.len() < 2 {
            return None;
        }
        let frac = &rest[1..];
        digits(frac)?;
        let mut scale = 100;
        for &c in frac.iter().take(3) {
            ms += (c - b'0') as i64 * scale;
            scale /= 10;
        }
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 24 + h as i64) * 60 + mi as i64) * 60_000 + se as i64 * 1000 + ms)
}

fn fmt_parts(ms: i64) -> (i64, u32, u32, i64, i64, i64, i64) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    (
        y,
        m,
        d,
        rem / 3_600_000,
        (rem / 60_000) % 60,
        (rem / 1000) % 60,
        rem % 1000,
    )
}

/// Formats epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (the API's date format).
pub(crate) fn fmt_ms(ms: i64) -> String {
    let (y, m, d, h, mi, s, milli) = fmt_parts(ms);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// Like [`fmt_ms`] into a stack buffer (no allocation) for years 0…9999.
fn fmt_ms_buf(ms: i64, buf: &mut [u8; 24]) -> Option<&str> {
    let (y, m, d, h, mi, s, milli) = fmt_parts(ms);
    if !(0..=9999).contains(&y) {
        return None;
    }
    let put = |b: &mut [u8], v: i64, n: usize| {
        let mut v = v;
        for i in (0..n).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut buf[0..4], y, 4);
    buf[4] = b'-';
    put(&mut buf[5..7], m as i64, 2);
    buf[7] = b'-';
    put(&mut buf[8..10], d as i64, 2);
    buf[10] = b'T';
    put(&mut buf[11..13], h, 2);
    buf[13] = b':';
    put(&mut buf[14..16], mi, 2);
    buf[16] = b':';
    put(&mut buf[17..19], s, 2);
    buf[19] = b'.';
    put(&mut buf[20..23], milli, 3);
    buf[23] = b'Z';
    std::str::from_utf8(&buf[..]).ok()
}

fn ser_ms<S: Serializer>(ms: i64, s: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 24];
    match fmt_ms_buf(ms, &mut buf) {
        Some(t) => s.serialize_str(t),
        None => s.serialize_str(&fmt_ms(ms)),
    }
}

/// Serializes epoch milliseconds as an ISO string.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ts(pub i64);

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ser_ms(self.0, s)
    }
}

/// Serializes optional epoch milliseconds as an ISO string or `null`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OTs(pub Option<i64>);

impl Serialize for OTs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(ms) => ser_ms(ms, s),
            None => s.serialize_none(),
        }
    }
}

/// Shifts every ISO timestamp string inside `v` by `shift_ms` (numbers are never touched).
pub(crate) fn rebase_value(v: &mut Value, shift_ms: i64) {
    match v {
        Value::String(s) => {
            if let Some(ms) = parse_iso_ms(s) {
                *s = fmt_ms(ms + shift_ms);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rebase_value(x, shift_ms)),
        Value::Object(m) => m.values_mut().for_each(|x| rebase_value(x, shift_ms)),
        _ => {}
    }
}

/// Rebases timestamps inside a compact JSON text; texts without a `Z"` sequence are returned unchanged.
pub(crate) fn rebase_json_text(text: &str, shift_ms: i64) -> Option<String> {
    if !text.contains("Z\"") {
        return None;
    }
    let mut v: Value = serde_json::from_str(text).ok()?;
    rebase_value(&mut v, shift_ms);
    serde_json::to_string(&v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for s in [
            "2026-08-26T13:42:17.000Z",
            "1969-12-31T23:59:59.999Z",
            "2000-02-29T00:00:00.123Z",
        ] {
            let ms = parse_iso_ms(s).unwrap();
            assert_eq!(fmt_ms(ms), s);
            let mut b = [0u8; 24];
            assert_eq!(fmt_ms_buf(ms, &mut b), Some(s));
            assert_eq!(
                ms,
                chrono::DateTime::parse_from_rfc3339(s)
                    .unwrap()
                    .timestamp_millis()
            );
        }
        assert_eq!(
            fmt_ms(parse_iso_ms("2026-08-26T13:42:17Z").unwrap()),
            "2026-08-26T13:42:17.000Z"
        );
        assert!(parse_iso_ms("2026-08-26 13:42:17Z").is_none());
        assert!(parse_iso_ms("hello").is_none());
    }
}
