//! Durations as Prometheus writes them in rule files and as Lumen writes them in `lumen.toml`:
//! one or more `<number><unit>` terms, largest unit first (`1h30m`, `5m`, `90s`, `500ms`, `1d`).

use std::time::Duration;

use serde::{Deserialize, Deserializer};

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
pub fn parse_duration(text: &str) -> Result<Duration, String> {
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
        // "ms" must be tried before "m".
        let (rank, unit_ms, len) = UNITS
            .iter()
            .enumerate()
            .filter(|(_, (name, _))| rest.starts_with(name))
            .map(|(rank, (name, ms))| (rank, *ms, name.len()))
            .next()
            .ok_or_else(|| {
                format!("{text:?} is not a duration: unknown or missing unit (use ms, s, m, h, d, w or y)")
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

/// Formats a duration the way Prometheus prints one (`1h30m`, `5m`, `0s`).
pub fn format_duration(duration: Duration) -> String {
    let mut ms = duration.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (name, unit_ms) in UNITS.iter().rev() {
        // Prometheus prints weeks and years only when they divide evenly; keep days as the top unit otherwise.
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

/// Serde helper: a duration written as a string such as `"30s"`.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

/// Serde helper for optional durations.
pub fn deserialize_opt<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    match Option::<String>::deserialize(deserializer)? {
        None => Ok(None),
        Some(text) => parse_duration(&text)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m500ms"), Ok(Duration::from_millis(60_500)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86_400)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("30m1h").is_err());
        assert!(parse_duration("1m1m").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-5m").is_err());
    }

    #[test]
    fn formats_like_prometheus() {
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(60)), "1m");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
    }
}
