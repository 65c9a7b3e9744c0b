//! Request parameters of the Prometheus API: URL query string plus form body, timestamps,
//! durations, `U__`-escaped label names.

use axum::http::{HeaderMap, Uri, header};

use std::time::Duration;

use super::error::ApiError;
use crate::promql::service::QueryOptions;

/// Longest query text accepted (bytes).
pub const MAX_QUERY_LENGTH: usize = 64 * 1024;

/// Request parameters: the URL query string plus, for form POSTs, the body (repeats kept).
#[derive(Debug, Default)]
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub(super) fn from_request(
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Self, ApiError> {
        let mut pairs = parse_urlencoded(uri.query().unwrap_or(""));
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if is_form && !body.is_empty() {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_data("the form body is not valid UTF-8"))?;
            pairs.extend(parse_urlencoded(text));
        }
        Ok(Params(pairs))
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        // Like Go's `FormValue`: a form body's value wins over the URL's (body pairs come last).
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub(super) fn query(&self) -> Result<&str, ApiError> {
        let q = self.get("query").unwrap_or("");
        if q.is_empty() {
            return Err(ApiError::bad_data(
                "invalid parameter \"query\": query must not be empty",
            ));
        }
        if q.len() > MAX_QUERY_LENGTH {
            return Err(ApiError::bad_data(format!(
                "invalid parameter \"query\": query is longer than {MAX_QUERY_LENGTH} bytes"
            )));
        }
        Ok(q)
    }

    pub(super) fn time(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(v) => parse_time(v)
                .map_err(|e| ApiError::bad_data(format!("invalid parameter \"{name}\": {e}"))),
        }
    }

    pub(super) fn duration(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => parse_duration(v)
                .map(Some)
                .map_err(|e| ApiError::bad_data(format!("invalid parameter \"{name}\": {e}"))),
        }
    }

    /// The request's `timeout` (ignored unless positive).
    pub(super) fn timeout(&self) -> Result<Option<Duration>, ApiError> {
        Ok(self
            .duration("timeout")?
            .filter(|ms| *ms > 0)
            .map(|ms| Duration::from_millis(ms as u64)))
    }

    /// What the request changes of the service's defaults: `timeout`, `lookback_delta`.
    pub(super) fn options(&self) -> Result<QueryOptions, ApiError> {
        let lookback_delta_ms = self.duration("lookback_delta")?;
        if lookback_delta_ms.is_some_and(|ms| ms < 0) {
            return Err(ApiError::bad_data(
                "invalid parameter \"lookback_delta\": must be positive",
            ));
        }
        Ok(QueryOptions {
            timeout: self.timeout()?,
            lookback_delta_ms,
        })
    }

    pub(super) fn limit(&self) -> Result<Option<usize>, ApiError> {
        match self.get("limit") {
            None | Some("") | Some("0") => Ok(None),
            Some(v) => v.parse::<usize>().map(Some).map_err(|_| {
                ApiError::bad_data(format!(
                    "invalid parameter \"limit\": cannot parse {v:?} to a valid limit"
                ))
            }),
        }
    }
}

/// Decodes `a=1&b=%20x+y` into pairs (`+` is a space).
pub fn parse_urlencoded(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub(super) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Earliest and latest timestamps used when `start`/`end` are absent (all data).
pub(super) const MIN_TIME_MS: i64 = -9_223_372_036_854; // i64::MIN nanoseconds, in ms
pub(super) const MAX_TIME_MS: i64 = 9_223_372_036_854;

/// A timestamp as float Unix seconds (rounded to ms) or RFC 3339; returns milliseconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() {
            return Err(format!("cannot parse {s:?} to a valid timestamp"));
        }
        let ms = (secs * 1000.0).round();
        return Ok(ms.clamp(MIN_TIME_MS as f64, MAX_TIME_MS as f64) as i64);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| format!("cannot parse {s:?} to a valid timestamp"))
}

/// A duration as float seconds (as Prometheus takes them: `15`, `0.5`, `1e3`, `-5`, the last
/// refused later where a duration must be positive) or in Lumen's one duration grammar
/// ([`lumen_storage::duration::parse`]: `1h30m`, `500ms`); returns milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("cannot parse {s:?} to a valid duration");
    if let Ok(secs) = s.parse::<f64>() {
        let ms = (secs * 1000.0).round();
        if !ms.is_finite() || ms.abs() >= i64::MAX as f64 {
            return Err(bad());
        }
        return Ok(ms as i64);
    }
    if s.trim() != s {
        return Err(bad());
    }
    let d = lumen_storage::duration::parse(s).map_err(|_| bad())?;
    i64::try_from(d.as_millis()).map_err(|_| bad())
}

/// Undoes Prometheus's `U__` label-name escaping (`U__http_2e_status` → `http.status`, `__` → `_`);
/// names that are not validly escaped are returned unchanged.
pub fn unescape_label_name(name: &str) -> String {
    let Some(rest) = name.strip_prefix("U__") else {
        return name.to_string();
    };
    let mut out = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'_') {
            chars.next();
            out.push('_');
            continue;
        }
        let mut hex = String::new();
        loop {
            match chars.next() {
                Some('_') => break,
                Some(h) if h.is_ascii_hexdigit() => hex.push(h),
                _ => return name.to_string(),
            }
        }
        match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
            Some(decoded) => out.push(decoded),
            None => return name.to_string(),
        }
    }
    out
}
