//! Shared code of Lumen's benchmarks.
//!
//! - [`pool`]: turns the bookstore fleet simulator's output into a pool of pre-encoded OTLP export
//!   requests of a chosen size (protobuf or OTLP/JSON, optionally gzipped), so the load generator's
//!   timed phase only sends bytes.
//! - [`stats`]: medians and the like.
//! - [`procfs`]: resident memory and CPU time of a process, from `/proc`.
//! - [`prom`]: a tiny reader of Prometheus text output (Lumen's `/metrics`).

pub mod pool;
pub mod procfs;
pub mod prom;
pub mod stats;

use std::time::Duration;

/// Parses `30s`, `2m`, `1h30m`, `500ms` or a bare number of seconds: Lumen's one duration grammar
/// ([`lumen_storage::duration::parse_or_seconds`]).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    lumen_storage::duration::parse_or_seconds(text)
}

/// Parses an item count with an optional `k`/`M`/`G` suffix (`10M` = 10,000,000).
pub fn parse_count(text: &str) -> Result<u64, String> {
    let t = text.trim().replace('_', "");
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('m' | 'M') => (&t[..t.len() - 1], 1e6),
        Some('g' | 'G') => (&t[..t.len() - 1], 1e9),
        _ => (t.as_str(), 1.0),
    };
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a count (e.g. 500000, 2M)"))?;
    if !(value.is_finite() && value >= 0.0) {
        return Err(format!("{text:?} is not a count"));
    }
    Ok((value * mult).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_and_counts() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert!(parse_duration("x").is_err());
        assert_eq!(parse_count("10M"), Ok(10_000_000));
        assert_eq!(parse_count("1.5k"), Ok(1_500));
        assert_eq!(parse_count("123"), Ok(123));
        assert!(parse_count("-1").is_err());
    }
}
