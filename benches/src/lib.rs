//! Shared code of Lumen's benchmarks.
//!
//! - [`pool`]: turns the bookstore fleet simulator's output into a pool of pre-encoded OTLP export
//!   requests of a chosen size (protobuf or OTLP/JSON, optionally gzipped), so the load generator's
//!   timed phase only sends bytes.
//! - [`stats`]: medians and the like.
//! - [`procfs`]: resident memory and CPU time of a process, from `/proc`.
//! - [`prom`]: a tiny reader of Prometheus text output (Lumen's `/metrics`).

#![warn(missing_docs)]

pub mod pool;
pub mod procfs;
pub mod prom;
pub mod stats;

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
mod tests;
