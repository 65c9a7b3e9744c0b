//! `histogram_quantile` over classic (`le`-labelled) bucket series.

use std::collections::HashMap;

use super::eval::Evaluator;
use super::value::{Labels, Sample, format_go_float};

/// Bucket counts closer than this (relative) are treated as equal when enforcing monotonicity.
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

struct Bucket {
    upper: f64,
    count: f64,
}

/// Groups classic bucket samples by their labels without `le` (in order of first appearance);
/// samples with a missing or malformed `le` are skipped with a warning.
fn bucket_groups(ev: &Evaluator<'_>, input: Vec<Sample>) -> Vec<(Labels, Vec<Bucket>)> {
    let mut order: Vec<Labels> = Vec::new();
    let mut groups: HashMap<Labels, Vec<Bucket>> = HashMap::new();
    for s in input {
        let le = s.labels.get("le").unwrap_or("");
        let Ok(upper) = le.trim().parse::<f64>() else {
            ev.annotations.borrow_mut().warn(format!(
                "bucket label \"le\" is missing or has a malformed value of {le:?} for metric name {:?}",
                s.labels.metric_name().unwrap_or("")
            ));
            continue;
        };
        let mut key = s.labels.clone();
        key.remove("le");
        groups
            .entry(key.clone())
            .or_insert_with(|| {
                order.push(key);
                Vec::new()
            })
            .push(Bucket {
                upper,
                count: s.value,
            });
    }
    order
        .into_iter()
        .filter_map(|k| groups.remove(&k).map(|b| (k, b)))
        .collect()
}

/// `histogram_quantile(q, buckets)` for classic histograms: one result per bucket group (the
/// input labels without `le`), the metric name dropped.
pub(crate) fn histogram_quantile(ev: &Evaluator<'_>, q: f64, input: Vec<Sample>) -> Vec<Sample> {
    if !(0.0..=1.0).contains(&q) {
        ev.annotations.borrow_mut().warn(format!(
            "quantile value should be between 0 and 1, got {}",
            format_go_float(q)
        ));
    }
    let mut out = Vec::new();
    for (key, buckets) in bucket_groups(ev, input) {
        let (value, forced) = bucket_quantile(q, buckets);
        if forced {
            ev.annotations.borrow_mut().info(format!(
                "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {:?}",
                key.metric_name().unwrap_or("")
            ));
        }
        out.push(Sample {
            labels: key.without_metric_name(),
            value,
        });
    }
    out
}

/// `histogram_fraction(lower, upper, buckets)` for classic histograms.
pub(crate) fn histogram_fraction(
    ev: &Evaluator<'_>,
    lower: f64,
    upper: f64,
    input: Vec<Sample>,
) -> Vec<Sample> {
    bucket_groups(ev, input)
        .into_iter()
        .map(|(key, buckets)| Sample {
            labels: key.without_metric_name(),
            value: bucket_fraction(lower, upper, buckets),
        })
        .collect()
}

/// The fraction of observations between `lower` and `upper`, interpolating linearly inside
/// finite buckets; the first bucket starts at 0 if its upper bound is positive, and
/// observations in an infinitely wide bucket sit at its finite boundary.
fn bucket_fraction(lower: f64, upper: f64, buckets: Vec<Bucket>) -> f64 {
    let Some(buckets) = sorted_coalesced(buckets) else {
        return f64::NAN;
    };
    let count = buckets[buckets.len() - 1].count;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for (i, b) in buckets.iter().enumerate() {
        let lb = if i > 0 {
            buckets[i - 1].upper
        } else if b.upper > 0.0 {
            0.0
        } else {
            f64::NEG_INFINITY
        };
        let ub = b.upper;
        let at = |v: f64| -> f64 {
            if lb == f64::NEG_INFINITY {
                b.count
            } else if ub == f64::INFINITY {
                rank
            } else {
                rank + (b.count - rank) * (v - lb) / (ub - lb)
            }
        };
        if !lower_set && lb >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lb >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if !lower_set && lb < lower && ub > lower {
            lower_rank = at(lower);
            lower_set = true;
        }
        if !upper_set && lb < upper && ub > upper {
            upper_rank = at(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = b.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

/// Sorts buckets by upper bound and merges equal bounds; `None` without a `+Inf` bucket.
fn sorted_coalesced(mut buckets: Vec<Bucket>) -> Option<Vec<Bucket>> {
    buckets.sort_by(|a, b| {
        a.upper
            .partial_cmp(&b.upper)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if buckets.last().is_none_or(|b| b.upper != f64::INFINITY) {
        return None;
    }
    let mut merged: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets {
        match merged.last_mut() {
            Some(last) if last.upper == b.upper => last.count += b.count,
            _ => merged.push(b),
        }
    }
    Some(merged)
}

/// Prometheus's `BucketQuantile`: `(value, forced_monotonic)`.
fn bucket_quantile(q: f64, buckets: Vec<Bucket>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    let Some(mut buckets) = sorted_coalesced(buckets) else {
        return (f64::NAN, false);
    };
    let forced = ensure_monotonic(&mut buckets);
    if buckets.len() < 2 {
        return (f64::NAN, forced);
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let n = buckets.len();
    let b = buckets[..n - 1].partition_point(|x| x.count < rank);
    if b == n - 1 {
        return (buckets[n - 2].upper, forced);
    }
    if b == 0 && buckets[0].upper <= 0.0 {
        return (buckets[0].upper, forced);
    }
    let (mut start, end, mut count) = (0.0, buckets[b].upper, buckets[b].count);
    if b > 0 {
        start = buckets[b - 1].upper;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    (start + (end - start) * (rank / count), forced)
}

/// Makes cumulative counts non-decreasing; returns whether a real decrease had to be fixed.
fn ensure_monotonic(buckets: &mut [Bucket]) -> bool {
    let Some(first) = buckets.first() else {
        return false;
    };
    let mut prev = first.count;
    let mut forced = false;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.count;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, SMALL_DELTA_TOLERANCE) {
            b.count = prev;
            continue;
        }
        if curr < prev {
            b.count = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    forced
}

/// Relative float comparison (Prometheus's `almost.Equal`).
pub fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}
