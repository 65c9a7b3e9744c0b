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
mod tests {
    use super::*;

    #[test]
    fn exponential_buckets_become_cumulative_classic_buckets() {
        // scale 0: base 2; positive offset 0 → buckets (1,2], (2,4], (4,8].
        let h = ExpHistogram {
            scale: 0,
            zero_count: 1,
            zero_threshold: 0.0,
            positive_offset: 0,
            positive: &[2, 0, 3],
            negative_offset: 0,
            negative: &[],
            count: 6,
        };
        assert_eq!(
            exponential_to_classic(&h),
            vec![(0.0, 1), (2.0, 3), (8.0, 6), (f64::INFINITY, 6)]
        );
    }

    #[test]
    fn negative_buckets_come_first_in_ascending_order() {
        // scale 1: base √2; negative offset -1 → buckets [-1,-1/√2) (index -1) and [-√2,-1) (index 0).
        let h = ExpHistogram {
            scale: 1,
            zero_count: 0,
            zero_threshold: 0.001,
            positive_offset: 1,
            positive: &[4],
            negative_offset: -1,
            negative: &[1, 2],
            count: 7,
        };
        let out = exponential_to_classic(&h);
        assert_eq!(out.len(), 5);
        assert!((out[0].0 - -1.0).abs() < 1e-12 && out[0].1 == 2, "{out:?}");
        assert!(
            (out[1].0 - -std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-12 && out[1].1 == 3,
            "{out:?}"
        );
        assert_eq!(out[2], (0.001, 3));
        assert!((out[3].0 - 2.0).abs() < 1e-12 && out[3].1 == 7, "{out:?}");
        assert_eq!(out[4], (f64::INFINITY, 7));
    }

    #[test]
    fn deltas_add_up_and_skip_nan() {
        let mut s = vec![(1, 2.0), (2, 3.0), (3, f64::NAN), (4, 5.0)];
        delta_to_cumulative(&mut s);
        assert_eq!(s[0].1, 2.0);
        assert_eq!(s[1].1, 5.0);
        assert!(s[2].1.is_nan());
        assert_eq!(s[3].1, 10.0);
    }
}
