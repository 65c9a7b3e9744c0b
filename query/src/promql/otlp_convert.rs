//! Conversions from OTLP metric shapes that Prometheus has no direct equivalent for.
//!
//! - **Exponential histograms** become classic cumulative buckets: each populated exponential
//!   bucket contributes one `le` bound (its upper boundary), the zero bucket one at
//!   `zero_threshold`, and `+Inf` the total count. `histogram_quantile` then interpolates linearly
//!   inside a bucket, where Prometheus's native histograms would interpolate exponentially: the
//!   error is bounded by the bucket width, a relative 2^(2^-scale) − 1 (4.4 % at scale 4).
//! - **Delta temporality** (sums and histograms) becomes cumulative per series by adding up the
//!   deltas in time order from the first point read: a delta series reads as a counter that starts
//!   at the beginning of the query's window, so `rate`, `increase` and `irate` are exact while its
//!   raw value is the sum since that start.

/// One exponential histogram data point's buckets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExpHistogram<'a> {
    pub scale: i32,
    pub zero_count: u64,
    pub zero_threshold: f64,
    pub positive_offset: i32,
    pub positive: &'a [u64],
    pub negative_offset: i32,
    pub negative: &'a [u64],
    /// The point's total count (the `+Inf` bucket).
    pub count: u64,
}

/// The upper boundary of exponential bucket `index` at `scale`: base^(index + 1) with
/// base = 2^(2^-scale).
fn upper_bound(scale: i32, index: i64) -> f64 {
    // 2^((index + 1) * 2^-scale), computed in the log domain to stay exact for integer powers.
    let exponent = (index + 1) as f64 * (-(scale as f64)).exp2();
    exponent.exp2()
}

/// Classic cumulative buckets `(le, cumulative count)` in ascending `le` order, ending with
/// `(+Inf, count)`. Empty buckets are skipped (they add no information to a cumulative series).
pub fn exponential_to_classic(h: &ExpHistogram<'_>) -> Vec<(f64, u64)> {
    let scale = h.scale.clamp(-10, 20);
    let mut out = Vec::with_capacity(h.positive.len() + h.negative.len() + 2);
    let mut cumulative = 0u64;
    // Negative buckets: bucket i covers [-base^(i+1), -base^i); most negative (highest index) first.
    for (j, &n) in h.negative.iter().enumerate().rev() {
        if n == 0 {
            continue;
        }
        cumulative = cumulative.saturating_add(n);
        let index = i64::from(h.negative_offset) + j as i64;
        // Upper boundary of the negative bucket: -base^index = -upper_bound(index - 1).
        out.push((-upper_bound(scale, index - 1), cumulative));
    }
    if h.zero_count > 0 || !out.is_empty() {
        cumulative = cumulative.saturating_add(h.zero_count);
        out.push((h.zero_threshold.max(0.0), cumulative));
    }
    for (j, &n) in h.positive.iter().enumerate() {
        if n == 0 {
            continue;
        }
        cumulative = cumulative.saturating_add(n);
        let index = i64::from(h.positive_offset) + j as i64;
        out.push((upper_bound(scale, index), cumulative));
    }
    out.push((f64::INFINITY, h.count.max(cumulative)));
    out
}

/// Turns a delta series' samples (sorted by time) into cumulative ones in place. NaN samples
/// (staleness markers, no recorded value) pass through without adding.
pub fn delta_to_cumulative(samples: &mut [(i64, f64)]) {
    let mut total = 0.0;
    for (_, v) in samples.iter_mut() {
        if v.is_nan() {
            continue;
        }
        total += *v;
        *v = total;
    }
}

/// Resource attributes that `target_info` leaves out because `job` and `instance` carry them.
pub const TARGET_INFO_EXCLUDED: [&str; 3] =
    ["service.name", "service.namespace", "service.instance.id"];

#[cfg(test)]
mod tests;
