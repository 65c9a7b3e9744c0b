//! Durations, written one way everywhere: flags, `lumen.toml`, rule files and HTTP parameters.
//!
//! The grammar is Prometheus's `model.Duration`: one or more `<integer><unit>` terms with units
//! `y`, `w`, `d`, `h`, `m`, `s`, `ms`, largest first and each at most once (`1h30m`, `5m`, `90s`,
//! `500ms`, `1y2w3d4h5m6s7ms`), or `0` alone. A year is 365 days, a week 7 days.
//!
//! [`parse_seconds_or_duration`] also takes a plain number of seconds (`90`, `0.25`), as
//! Prometheus's HTTP API does for `step` and `timeout` and as Lumen's flags always have; rule files
//! and `lumen.toml` use [`parse`] alone, so what Lumen accepts there Prometheus accepts too.
//!
//! ```
//! use std::time::Duration;
//! use lumen_storage::duration;
//!
//! assert_eq!(duration::parse("1h30m"), Ok(Duration::from_secs(5400)));
//! assert_eq!(duration::format(Duration::from_secs(5400)), "1h30m");
//! assert_eq!(duration::parse_seconds_or_duration("0.5"), Ok(Duration::from_millis(500)));
//! ```

use std::time::Duration;

/// Units from largest to smallest, with their length in milliseconds.
const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// What is accepted, for error messages.
const ACCEPTED: &str = "write integers with units y, w, d, h, m, s, ms, largest first \
                        (e.g. 30s, 5m, 1h30m, 500ms), or 0";

/// A text that is not a duration; the message says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DurationError(String);

impl DurationError {
    fn new(text: &str, problem: &str) -> Self {
        DurationError(format!(
            "{text:?} is not a duration ({problem}); {ACCEPTED}"
        ))
    }
}

/// Parses a Prometheus duration (`0`, `30s`, `1h30m`, `500ms`, `2d`, `1w`, `1y`).
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(DurationError::new(text, "empty"));
    }
    let mut rest = text;
    let mut total_ms: u64 = 0;
    // Index into UNITS of the previous term's unit; the next one must be smaller.
    let mut previous: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(DurationError::new(text, "expected a number"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::new(text, "number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let Some(rank) = UNITS.iter().position(|(name, _)| *name == unit) else {
            let problem = if unit.is_empty() {
                "missing unit".to_string()
            } else {
                format!("unknown unit {unit:?}")
            };
            return Err(DurationError::new(text, &problem));
        };
        if previous.is_some_and(|previous| rank <= previous) {
            return Err(DurationError::new(text, "units out of order or repeated"));
        }
        previous = Some(rank);
        rest = &rest[unit_len..];
        total_ms = number
            .checked_mul(UNITS[rank].1)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| DurationError::new(text, "too long"))?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Parses a plain number of seconds (`90`, `0.25`) or, failing that, a duration as [`parse`] does.
pub fn parse_seconds_or_duration(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    // Only digits and one dot: `inf`, `1e3` and `-5` are not a number of seconds here.
    let plain = !trimmed.is_empty()
        && trimmed.chars().all(|c| c.is_ascii_digit() || c == '.')
        && trimmed.chars().filter(|c| *c == '.').count() <= 1;
    if plain {
        let seconds: f64 = trimmed.parse().map_err(|_| {
            DurationError(format!(
                "{trimmed:?} is not a number of seconds; write e.g. 30 or 0.5, or a duration: {ACCEPTED}"
            ))
        })?;
        return Duration::try_from_secs_f64(seconds)
            .map_err(|_| DurationError::new(trimmed, "too long"));
    }
    parse(text).map_err(|_| {
        DurationError(format!(
            "{trimmed:?} is not a duration; write a number of seconds (e.g. 30 or 0.5) or {ACCEPTED}"
        ))
    })
}

/// Formats a duration the way Prometheus prints one (`1h30m`, `5m`, `1s500ms`, `0s`); sub-millisecond
/// parts are dropped.
pub fn format(duration: Duration) -> String {
    let mut ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (name, unit_ms) in UNITS {
        // Prometheus prints years and weeks only when they divide evenly (90d reads better than 12w6d).
        if (name == "y" || name == "w") && !ms.is_multiple_of(unit_ms) {
            continue;
        }
        if ms >= unit_ms {
            out.push_str(&std::format!("{}{}", ms / unit_ms, name));
            ms %= unit_ms;
        }
    }
    out
}

/// Serde `deserialize_with` for a duration written as a string such as `"30s"`.
pub fn deserialize<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(deserializer)?;
    parse(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests;
