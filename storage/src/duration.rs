//! The one grammar for durations in Lumen: command-line flags, `lumen.toml`, rule files and HTTP
//! parameters all parse with it.
//!
//! It is Prometheus's: one or more `<integer><unit>` terms, units from largest to smallest, each at
//! most once — `1y2w3d4h5m6s7ms`, `1h30m`, `90s`, `500ms` — or `0` alone ([`parse`]). Where
//! Prometheus also takes a bare number of seconds (its HTTP API's `timeout`, `step`, …), and for
//! Lumen's flags, [`parse_or_seconds`] takes `30` or `1.5` as seconds too.

use std::time::Duration;

/// The units, smallest first, in milliseconds.
const UNITS: [(&str, u64); 7] = [
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
    ("w", 7 * 86_400_000),
    ("y", 365 * 86_400_000),
];

/// Parses a Prometheus duration (`0`, `30s`, `1h30m`, `500ms`, `2d`, `1w`, `1y`).
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration; write e.g. 30s, 5m or 1h30m".into());
    }
    let mut rest = text;
    let mut total_ms: u64 = 0;
    let mut last_unit_rank = usize::MAX;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "{text:?} is not a duration; write e.g. 30s, 5m or 1h30m"
            ));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{text:?} is not a duration: number too large"))?;
        rest = &rest[digits..];
        // "ms" must be tried before "m": UNITS lists it first.
        let (rank, unit_ms, len) = UNITS
            .iter()
            .enumerate()
            .filter(|(_, (name, _))| rest.starts_with(name))
            .map(|(rank, (name, ms))| (rank, *ms, name.len()))
            .next()
            .ok_or_else(|| {
                format!(
                    "{text:?} is not a duration: unknown or missing unit (use ms, s, m, h, d, w or y)"
                )
            })?;
        if last_unit_rank != usize::MAX && rank >= last_unit_rank {
            return Err(format!(
                "{text:?} is not a duration: units must go from largest to smallest, each once"
            ));
        }
        last_unit_rank = rank;
        rest = &rest[len..];
        total_ms = number
            .checked_mul(unit_ms)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| format!("{text:?} is too long a duration"))?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// [`parse`], or a bare non-negative number of seconds (`30`, `1.5`).
pub fn parse_or_seconds(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && let Ok(seconds) = trimmed.parse::<f64>()
    {
        return Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("{trimmed:?} is not a valid duration"));
    }
    parse(text).map_err(|e| format!("{e}, or a number of seconds"))
}

/// Formats a duration the way Prometheus prints one (`1h30m`, `5m`, `0s`); milliseconds and below
/// a millisecond are cut.
pub fn format(duration: Duration) -> String {
    let mut ms = duration.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (name, unit_ms) in UNITS.iter().rev() {
        // Prometheus prints weeks and years only when they divide evenly; days stay the top unit
        // otherwise.
        if (*name == "y" || *name == "w") && !ms.is_multiple_of(*unit_ms) {
            continue;
        }
        if ms >= *unit_ms {
            out.push_str(&format!("{}{}", ms / unit_ms, name));
            ms %= unit_ms;
        }
    }
    out
}

#[cfg(test)]
mod tests;
