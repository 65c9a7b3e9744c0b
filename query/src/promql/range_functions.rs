//! Functions over range vectors: `rate`, `increase`, `delta` (with Prometheus's extrapolation),
//! `irate`, `idelta`, `deriv`, `predict_linear`, `changes`, `resets` and the `*_over_time` family.

/// Kahan-Neumaier summation step: adds `inc` to `sum` with compensation `c`.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Kahan-Neumaier compensated sum, as Prometheus's `sum`.
pub(crate) fn sum(values: &[f64]) -> f64 {
    let (mut s, mut c) = (0.0, 0.0);
    for &v in values {
        (s, c) = kahan_inc(v, s, c);
    }
    s + c
}

/// Prometheus's `avg`: a compensated direct mean, switching to an incremental mean when the
/// running sum would overflow.
pub(crate) fn avg(values: &[f64]) -> f64 {
    let Some(&first) = values.first() else {
        return f64::NAN;
    };
    let (mut sum, mut c, mut mean) = (first, 0.0, 0.0);
    let mut incremental = false;
    for (i, &f) in values.iter().enumerate().skip(1) {
        let count = (i + 1) as f64;
        if !incremental {
            let (ns, nc) = kahan_inc(f, sum, c);
            if !ns.is_infinite() {
                (sum, c) = (ns, nc);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        if mean.is_infinite() {
            if f.is_infinite() && (mean > 0.0) == (f > 0.0) {
                continue;
            }
            if !f.is_infinite() && !f.is_nan() {
                continue;
            }
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(f / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        (sum + c) / values.len() as f64
    }
}

/// The φ-quantile of `values` with linear interpolation (Prometheus's `quantile`).
pub(crate) fn quantile(q: f64, mut values: Vec<f64>) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // Go's sort.Float64s order: NaN first.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    let lo = values[lower as usize];
    let hi = values[upper as usize];
    lo * (1.0 - weight) + hi * weight
}

/// `rate`, `increase` and `delta`: the change over the window, extrapolated towards the
/// window's edges exactly as Prometheus's `extrapolatedRate`.
pub(crate) fn extrapolated_rate(
    samples: &[(i64, f64)],
    range_start: i64,
    range_end: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let (first_t, first_v) = samples[0];
    let (last_t, last_v) = samples[samples.len() - 1];
    let mut result = last_v - first_v;
    if is_counter {
        let mut prev = 0.0;
        for &(_, v) in samples {
            if v < prev {
                result += prev;
            }
            prev = v;
        }
    }
    let mut to_start = (first_t - range_start) as f64 / 1000.0;
    let mut to_end = (range_end - last_t) as f64 / 1000.0;
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let avg_between = sampled / (samples.len() - 1) as f64;
    let threshold = avg_between * 1.1;
    if to_start >= threshold {
        to_start = avg_between / 2.0;
    }
    if is_counter && result > 0.0 && first_v >= 0.0 {
        let to_zero = sampled * (first_v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg_between / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= (range_end - range_start) as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate` and `idelta`: from the last two samples.
pub(crate) fn instant_value(samples: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    let n = samples.len();
    if n < 2 {
        return None;
    }
    let (pt, pv) = samples[n - 2];
    let (lt, lv) = samples[n - 1];
    let mut v = if is_rate && lv < pv { lv } else { lv - pv };
    let interval = lt - pt;
    if interval == 0 {
        return None;
    }
    if is_rate {
        v /= interval as f64 / 1000.0;
    }
    Some(v)
}

/// Least-squares fit of the samples against time (seconds relative to `intercept_t`):
/// `(slope, intercept)`.
pub(crate) fn linear_regression(samples: &[(i64, f64)], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = samples.first().map_or(f64::NAN, |s| s.1);
    let mut const_y = true;
    for (i, &(t, v)) in samples.iter().enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_t) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(v, sy, cy);
        (sxy, cxy) = kahan_inc(x * v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

/// `ts_of_{min,max,first,last}_over_time`: the time (seconds) of the selected sample; for
/// min/max the last sample holding the extreme value.
pub(crate) fn timestamp_of(name: &str, samples: &[(i64, f64)]) -> Option<f64> {
    let (&first, &last) = (samples.first()?, samples.last()?);
    let pick = match name {
        "ts_of_first_over_time" => first,
        "ts_of_last_over_time" => last,
        _ => {
            let max = name == "ts_of_max_over_time";
            let mut best = first;
            for &(t, v) in &samples[1..] {
                let better = if max { v >= best.1 } else { v <= best.1 };
                if better || best.1.is_nan() {
                    best = (t, v);
                }
            }
            best
        }
    };
    Some(pick.0 as f64 / 1000.0)
}

/// Number of value changes (NaN to NaN is no change).
pub(crate) fn changes(samples: &[(i64, f64)]) -> f64 {
    let mut count = 0.0;
    for w in samples.windows(2) {
        let (a, b) = (w[0].1, w[1].1);
        if a != b && !(a.is_nan() && b.is_nan()) {
            count += 1.0;
        }
    }
    count
}

/// Number of counter resets (decreases).
pub(crate) fn resets(samples: &[(i64, f64)]) -> f64 {
    samples.windows(2).filter(|w| w[1].1 < w[0].1).count() as f64
}

/// The `*_over_time` aggregations that need nothing but the values.
pub(crate) fn over_time(name: &str, values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(match name {
        "avg_over_time" => avg(values),
        "sum_over_time" => sum(values),
        "count_over_time" => values.len() as f64,
        "min_over_time" => {
            let mut acc = values[0];
            for &v in &values[1..] {
                if v < acc || acc.is_nan() {
                    acc = v;
                }
            }
            acc
        }
        "max_over_time" => {
            let mut acc = values[0];
            for &v in &values[1..] {
                if v > acc || acc.is_nan() {
                    acc = v;
                }
            }
            acc
        }
        "stddev_over_time" => variance_over_time(values).sqrt(),
        "stdvar_over_time" => variance_over_time(values),
        "last_over_time" => values[values.len() - 1],
        "first_over_time" => values[0],
        "present_over_time" => 1.0,
        "mad_over_time" if values.iter().any(|v| v.is_nan()) => f64::NAN,
        "mad_over_time" => {
            let median = quantile(0.5, values.to_vec());
            quantile(0.5, values.iter().map(|v| (v - median).abs()).collect())
        }
        _ => return None,
    })
}

/// Variance with compensated Welford updates (Prometheus's `stdvar_over_time`).
fn variance_over_time(values: &[f64]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &f in values {
        count += 1.0;
        let delta = f - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (f - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// `double_exponential_smoothing(v, sf, tf)` (Holt's linear trend); `None` for fewer than two
/// samples.
pub(crate) fn double_exponential_smoothing(values: &[f64], sf: f64, tf: f64) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let (mut s0, mut s1) = (0.0, values[0]);
    let mut b = values[1] - values[0];
    for (i, &v) in values.iter().enumerate().skip(1) {
        let x = sf * v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        (s0, s1) = (s1, x + y);
    }
    Some(s1)
}
