//! Function calls: dispatch, the instant-vector functions (math, time, labels, sorting,
//! `absent`, `scalar`, `vector`) and the glue to the range-vector functions.

use chrono::{DateTime, Datelike, Timelike};
use promql_parser::label::MatchOp;
use promql_parser::parser::{Call, Expr};

use super::error::{PromqlError, bad_data, exec_err};
use super::eval::{BatchKind, Evaluator, check_unique};
use super::histogram;
use super::range_functions as rf;
use super::value::{Labels, METRIC_NAME, Sample, Value, format_go_float};

impl Evaluator<'_> {
    /// Evaluates a function call at `t`.
    pub(super) fn eval_call(&self, call: &Call, t: i64) -> Result<Value, PromqlError> {
        let ev = self;
        let name = call.func.name;
        let args: Vec<&Expr> = call.args.args.iter().map(|a| a.as_ref()).collect();
        let arg = |i: usize| -> Result<&Expr, PromqlError> {
            args.get(i).copied().ok_or_else(|| {
                PromqlError::BadData(format!("missing argument {} of {name}", i + 1))
            })
        };
        let out = match name {
            "time" => return Ok(Value::Scalar(t as f64 / 1000.0)),
            "pi" => return Ok(Value::Scalar(std::f64::consts::PI)),
            "scalar" => {
                let v = ev.eval_vector(arg(0)?, t)?;
                return Ok(Value::Scalar(if v.len() == 1 {
                    v[0].value
                } else {
                    f64::NAN
                }));
            }
            "min_of" | "max_of" => {
                let (a, b) = (ev.eval_scalar(arg(0)?, t)?, ev.eval_scalar(arg(1)?, t)?);
                let v = if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else if name == "min_of" {
                    a.min(b)
                } else {
                    a.max(b)
                };
                return Ok(Value::Scalar(v));
            }
            "start" => return Ok(Value::Scalar(ev.query_start as f64 / 1000.0)),
            "end" => return Ok(Value::Scalar(ev.query_end as f64 / 1000.0)),
            "range" => {
                return Ok(Value::Scalar(
                    (ev.query_end as f64 - ev.query_start as f64) / 1000.0,
                ));
            }
            "step" => return Ok(Value::Scalar(ev.query_step as f64 / 1000.0)),
            "vector" => {
                let v = ev.eval_scalar(arg(0)?, t)?;
                return Ok(Value::Vector(vec![Sample {
                    labels: Labels::empty(),
                    value: v,
                }]));
            }
            "abs" => map(ev, arg(0)?, t, f64::abs)?,
            "ceil" => map(ev, arg(0)?, t, f64::ceil)?,
            "floor" => map(ev, arg(0)?, t, f64::floor)?,
            "exp" => map(ev, arg(0)?, t, f64::exp)?,
            "ln" => map(ev, arg(0)?, t, f64::ln)?,
            "log2" => map(ev, arg(0)?, t, f64::log2)?,
            "log10" => map(ev, arg(0)?, t, f64::log10)?,
            "sqrt" => map(ev, arg(0)?, t, f64::sqrt)?,
            "sgn" => map(ev, arg(0)?, t, |v| {
                if v > 0.0 {
                    1.0
                } else if v < 0.0 {
                    -1.0
                } else {
                    v
                }
            })?,
            "sin" => map(ev, arg(0)?, t, f64::sin)?,
            "cos" => map(ev, arg(0)?, t, f64::cos)?,
            "tan" => map(ev, arg(0)?, t, f64::tan)?,
            "asin" => map(ev, arg(0)?, t, f64::asin)?,
            "acos" => map(ev, arg(0)?, t, f64::acos)?,
            "atan" => map(ev, arg(0)?, t, f64::atan)?,
            "sinh" => map(ev, arg(0)?, t, f64::sinh)?,
            "cosh" => map(ev, arg(0)?, t, f64::cosh)?,
            "tanh" => map(ev, arg(0)?, t, f64::tanh)?,
            "asinh" => map(ev, arg(0)?, t, f64::asinh)?,
            "acosh" => map(ev, arg(0)?, t, f64::acosh)?,
            "atanh" => map(ev, arg(0)?, t, f64::atanh)?,
            "deg" => map(ev, arg(0)?, t, f64::to_degrees)?,
            "rad" => map(ev, arg(0)?, t, f64::to_radians)?,
            "round" => {
                let to_nearest = match args.get(1) {
                    Some(e) => ev.eval_scalar(e, t)?,
                    None => 1.0,
                };
                let inv = 1.0 / to_nearest;
                map(ev, arg(0)?, t, |v| (v * inv + 0.5).floor() / inv)?
            }
            "clamp" => {
                let (lo, hi) = (ev.eval_scalar(arg(1)?, t)?, ev.eval_scalar(arg(2)?, t)?);
                if hi < lo {
                    return Ok(Value::Vector(Vec::new()));
                }
                map(ev, arg(0)?, t, |v| go_max(lo, go_min(hi, v)))?
            }
            "clamp_min" => {
                let lo = ev.eval_scalar(arg(1)?, t)?;
                map(ev, arg(0)?, t, |v| go_max(lo, v))?
            }
            "clamp_max" => {
                let hi = ev.eval_scalar(arg(1)?, t)?;
                map(ev, arg(0)?, t, |v| go_min(hi, v))?
            }
            "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour"
            | "minute" | "month" | "year" => date_function(ev, name, args.first().copied(), t)?,
            "timestamp" => timestamp(ev, arg(0)?, t)?,
            "absent" => {
                let v = ev.eval_vector(arg(0)?, t)?;
                if !v.is_empty() {
                    return Ok(Value::Vector(Vec::new()));
                }
                vec![Sample {
                    labels: absent_labels(arg(0)?),
                    value: 1.0,
                }]
            }
            "label_replace" => label_replace(ev, &args, t)?,
            "label_join" => label_join(ev, &args, t)?,
            "sort" | "sort_desc" => {
                let mut v = ev.eval_vector(arg(0)?, t)?;
                let desc = name == "sort_desc";
                v.sort_by(|a, b| match (a.value.is_nan(), b.value.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    _ if desc => b
                        .value
                        .partial_cmp(&a.value)
                        .unwrap_or(std::cmp::Ordering::Equal),
                    _ => a
                        .value
                        .partial_cmp(&b.value)
                        .unwrap_or(std::cmp::Ordering::Equal),
                });
                sort_warning(ev);
                return Ok(Value::Vector(v));
            }
            "sort_by_label" | "sort_by_label_desc" => {
                let mut v = ev.eval_vector(arg(0)?, t)?;
                let mut names = Vec::new();
                for e in args.iter().skip(1) {
                    names.push(ev.eval_string(e, t)?);
                }
                v.sort_by(|a, b| {
                    let mut ord = std::cmp::Ordering::Equal;
                    for n in &names {
                        ord = natural_cmp(
                            a.labels.get(n).unwrap_or(""),
                            b.labels.get(n).unwrap_or(""),
                        );
                        if ord != std::cmp::Ordering::Equal {
                            break;
                        }
                    }
                    if ord == std::cmp::Ordering::Equal {
                        ord = a.labels.cmp(&b.labels);
                    }
                    if name == "sort_by_label_desc" {
                        ord.reverse()
                    } else {
                        ord
                    }
                });
                sort_warning(ev);
                return Ok(Value::Vector(v));
            }
            "histogram_quantile" => {
                let q = ev.eval_scalar(arg(0)?, t)?;
                let v = ev.eval_vector(arg(1)?, t)?;
                histogram::histogram_quantile(ev, q, v)
            }
            "histogram_quantiles" => {
                let v = ev.eval_vector(arg(0)?, t)?;
                let label = ev.eval_string(arg(1)?, t)?;
                if !is_valid_label_name(&label) {
                    return exec_err(format!("invalid quantile label name {label:?}"));
                }
                let mut out = Vec::new();
                for e in args.iter().skip(2) {
                    let q = ev.eval_scalar(e, t)?;
                    for mut s in histogram::histogram_quantile(ev, q, v.clone()) {
                        // Quantile labels always show a fraction ("0.0", "0.25", "1.0").
                        let q_text = if q.is_finite() {
                            format!("{q:?}")
                        } else {
                            format_go_float(q)
                        };
                        s.labels.set(&label, &q_text);
                        out.push(s);
                    }
                }
                out
            }
            // Native-histogram functions: float samples are ignored, and native histograms are not
            // stored yet, so the result is always empty.
            "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
            | "histogram_stdvar" => {
                ev.eval_vector(arg(0)?, t)?;
                Vec::new()
            }
            "histogram_fraction" => {
                let (lo, hi) = (ev.eval_scalar(arg(0)?, t)?, ev.eval_scalar(arg(1)?, t)?);
                let v = ev.eval_vector(arg(2)?, t)?;
                histogram::histogram_fraction(ev, lo, hi, v)
            }
            _ => return range_call(ev, name, &args, t),
        };
        check_unique(&out)?;
        Ok(Value::Vector(out))
    }
}

/// Natural order: digit runs compare by numeric value (`a2 < a10`), the rest byte-wise.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    while !x.is_empty() && !y.is_empty() {
        if x[0].is_ascii_digit() && y[0].is_ascii_digit() {
            let xl = x.iter().take_while(|c| c.is_ascii_digit()).count();
            let yl = y.iter().take_while(|c| c.is_ascii_digit()).count();
            let (xd, yd) = (&x[..xl], &y[..yl]);
            let xt = &xd[xd.iter().take_while(|c| **c == b'0').count()..];
            let yt = &yd[yd.iter().take_while(|c| **c == b'0').count()..];
            let ord = xt
                .len()
                .cmp(&yt.len())
                .then_with(|| xt.cmp(yt))
                .then_with(|| xl.cmp(&yl));
            if ord != Ordering::Equal {
                return ord;
            }
            (x, y) = (&x[xl..], &y[yl..]);
        } else {
            if x[0] != y[0] {
                return x[0].cmp(&y[0]);
            }
            (x, y) = (&x[1..], &y[1..]);
        }
    }
    x.len().cmp(&y.len())
}

fn sort_warning(ev: &Evaluator<'_>) {
    if ev.is_range_query {
        ev.annotations.borrow_mut().warn(
            "sort is ineffective for range queries since results are always ordered by labels"
                .into(),
        );
    }
}

/// Applies `f` to every value of an instant vector, dropping the metric name.
fn map(
    ev: &Evaluator<'_>,
    e: &Expr,
    t: i64,
    f: impl Fn(f64) -> f64,
) -> Result<Vec<Sample>, PromqlError> {
    Ok(ev
        .eval_vector(e, t)?
        .into_iter()
        .map(|s| Sample {
            labels: s.labels.without_metric_name(),
            value: f(s.value),
        })
        .collect())
}

fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

/// `timestamp(v)`: the sample timestamps for a plain selector, the evaluation time otherwise.
fn timestamp(ev: &Evaluator<'_>, e: &Expr, t: i64) -> Result<Vec<Sample>, PromqlError> {
    if let Expr::VectorSelector(vs) = unwrap_parens(e) {
        return Ok(ev
            .vector_selector_with_times(vs, t)?
            .into_iter()
            .map(|(s, ts)| Sample {
                labels: s.labels.without_metric_name(),
                value: ts as f64 / 1000.0,
            })
            .collect());
    }
    map(ev, e, t, |_| t as f64 / 1000.0)
}

fn date_function(
    ev: &Evaluator<'_>,
    name: &str,
    e: Option<&Expr>,
    t: i64,
) -> Result<Vec<Sample>, PromqlError> {
    let input = match e {
        Some(e) => ev.eval_vector(e, t)?,
        None => vec![Sample {
            labels: Labels::empty(),
            value: t as f64 / 1000.0,
        }],
    };
    let mut out = Vec::with_capacity(input.len());
    for s in input {
        if s.value.is_nan() || s.value.is_infinite() {
            continue;
        }
        let Some(dt) = DateTime::from_timestamp(s.value as i64, 0) else {
            continue;
        };
        let value = match name {
            "day_of_month" => dt.day(),
            "day_of_week" => dt.weekday().num_days_from_sunday(),
            "day_of_year" => dt.ordinal(),
            "days_in_month" => days_in_month(dt.year(), dt.month()),
            "hour" => dt.hour(),
            "minute" => dt.minute(),
            "month" => dt.month(),
            _ => {
                out.push(Sample {
                    labels: s.labels.without_metric_name(),
                    value: f64::from(dt.year()),
                });
                continue;
            }
        };
        out.push(Sample {
            labels: s.labels.without_metric_name(),
            value: f64::from(value),
        });
    }
    Ok(out)
}

/// Go's `math.Max`, which the clamp functions use: NaN wins over everything but +Inf (Rust's
/// `f64::max` ignores NaN instead), and +0 wins over -0.
fn go_max(a: f64, b: f64) -> f64 {
    if a == f64::INFINITY || b == f64::INFINITY {
        f64::INFINITY
    } else if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { b } else { a }
    } else if a > b {
        a
    } else {
        b
    }
}

/// Go's `math.Min`: NaN wins over everything but -Inf, and -0 wins over +0.
fn go_min(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY || b == f64::NEG_INFINITY {
        f64::NEG_INFINITY
    } else if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { a } else { b }
    } else if a < b {
        a
    } else {
        b
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Labels of `absent(...)`'s output: the selector's equality matchers (a name matched twice is
/// left out).
pub(crate) fn absent_labels(e: &Expr) -> Labels {
    let vs = match e {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::empty(),
    };
    let mut labels = Labels::empty();
    let mut seen: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, MatchOp::Equal) && !seen.contains(&m.name.as_str()) {
            labels.set(&m.name, &m.value);
            seen.push(&m.name);
        } else {
            labels.remove(&m.name);
        }
    }
    labels
}

/// Prometheus 3 accepts any non-empty UTF-8 label name.
pub(crate) fn is_valid_label_name(name: &str) -> bool {
    !name.is_empty()
}

fn label_replace(ev: &Evaluator<'_>, args: &[&Expr], t: i64) -> Result<Vec<Sample>, PromqlError> {
    if args.len() != 5 {
        return bad_data("label_replace needs 5 arguments");
    }
    let v = ev.eval_vector(args[0], t)?;
    let dst = ev.eval_string(args[1], t)?;
    let repl = ev.eval_string(args[2], t)?;
    let src = ev.eval_string(args[3], t)?;
    let re_src = ev.eval_string(args[4], t)?;
    let re = regex::Regex::new(&format!("^(?s:{re_src})$")).or_else(|_| {
        exec_err(format!(
            "invalid regular expression in label_replace(): {re_src}"
        ))
    })?;
    if !is_valid_label_name(&dst) {
        return exec_err(format!(
            "invalid destination label name in label_replace(): {dst}"
        ));
    }
    let mut out = Vec::with_capacity(v.len());
    for mut s in v {
        let value = s.labels.get(&src).unwrap_or("").to_string();
        if let Some(caps) = re.captures(&value) {
            let mut res = String::new();
            caps.expand(&repl, &mut res);
            s.labels.set(&dst, &res);
        }
        out.push(s);
    }
    Ok(out)
}

fn label_join(ev: &Evaluator<'_>, args: &[&Expr], t: i64) -> Result<Vec<Sample>, PromqlError> {
    if args.len() < 3 {
        return bad_data("label_join needs at least 3 arguments");
    }
    let v = ev.eval_vector(args[0], t)?;
    let dst = ev.eval_string(args[1], t)?;
    let sep = ev.eval_string(args[2], t)?;
    let mut srcs = Vec::new();
    for e in &args[3..] {
        let s = ev.eval_string(e, t)?;
        if !is_valid_label_name(&s) {
            return exec_err(format!("invalid source label name in label_join(): {s}"));
        }
        srcs.push(s);
    }
    if !is_valid_label_name(&dst) {
        return exec_err(format!(
            "invalid destination label name in label_join(): {dst}"
        ));
    }
    Ok(v.into_iter()
        .map(|mut s| {
            let joined: Vec<&str> = srcs.iter().map(|n| s.labels.get(n).unwrap_or("")).collect();
            let joined = joined.join(&sep);
            s.labels.set(&dst, &joined);
            s
        })
        .collect())
}

/// Functions over a range vector.
fn range_call(
    ev: &Evaluator<'_>,
    name: &str,
    args: &[&Expr],
    t: i64,
) -> Result<Value, PromqlError> {
    let matrix_pos = match name {
        "quantile_over_time" => 1,
        _ => 0,
    };
    let Some(matrix_expr) = args.get(matrix_pos).copied() else {
        return bad_data(format!("function {name} is not supported"));
    };
    let known = matches!(
        name,
        "rate"
            | "increase"
            | "delta"
            | "irate"
            | "idelta"
            | "deriv"
            | "predict_linear"
            | "changes"
            | "resets"
            | "avg_over_time"
            | "sum_over_time"
            | "count_over_time"
            | "min_over_time"
            | "max_over_time"
            | "stddev_over_time"
            | "stdvar_over_time"
            | "last_over_time"
            | "first_over_time"
            | "present_over_time"
            | "mad_over_time"
            | "quantile_over_time"
            | "absent_over_time"
            | "double_exponential_smoothing"
            | "ts_of_min_over_time"
            | "ts_of_max_over_time"
            | "ts_of_first_over_time"
            | "ts_of_last_over_time"
    );
    if !known {
        return exec_err(format!("function {name} is not supported"));
    }
    let keep_name = matches!(name, "last_over_time" | "first_over_time");
    // Over a plain matrix selector with constant parameters, a range query computes every step
    // at once, series by series.
    if name != "absent_over_time"
        && let Expr::MatrixSelector(ms) = unwrap_parens(matrix_expr)
        && args
            .iter()
            .enumerate()
            .all(|(i, a)| i == matrix_pos || matches!(unwrap_parens(a), Expr::NumberLiteral(_)))
    {
        let key = (
            BatchKind::RangeCall,
            std::ptr::from_ref(matrix_expr) as usize,
        );
        let batched = ev.batched(key, t, || {
            let (p1, p2) = range_params(ev, name, args, t)?;
            let f = RangeFn::of(name);
            let counter_check = matches!(f, RangeFn::Rate | RangeFn::Increase);
            ev.batch_range_call(
                ms,
                keep_name,
                &mut |labels| {
                    if counter_check {
                        counter_info(ev, labels, matrix_expr);
                    }
                },
                &mut |samples, start, end, t| series_value(f, samples, start, end, p1, p2, t),
            )
        })?;
        if let Some(v) = batched {
            return Ok(Value::Vector(v));
        }
    }
    let input = ev.range_input(matrix_expr, t)?;
    if name == "absent_over_time" {
        if input.series.is_empty() {
            let labels = absent_labels(unwrap_parens(matrix_expr));
            return Ok(Value::Vector(vec![Sample { labels, value: 1.0 }]));
        }
        return Ok(Value::Vector(Vec::new()));
    }
    let (p1, p2) = range_params(ev, name, args, t)?;
    let f = RangeFn::of(name);
    let mut out = Vec::with_capacity(input.series.len());
    for s in &input.series {
        if matches!(f, RangeFn::Rate | RangeFn::Increase) {
            counter_info(ev, &s.labels, matrix_expr);
        }
        let value = series_value(
            f,
            s.samples(),
            input.range_start,
            input.range_end,
            p1,
            p2,
            t,
        );
        if let Some(value) = value {
            let labels = if keep_name {
                s.labels.clone()
            } else {
                s.labels_without_name()
            };
            out.push(Sample { labels, value });
        }
    }
    check_unique(&out)?;
    Ok(Value::Vector(out))
}

/// The scalar parameters of a range function at `t` (checked as Prometheus does).
fn range_params(
    ev: &Evaluator<'_>,
    name: &str,
    args: &[&Expr],
    t: i64,
) -> Result<(f64, f64), PromqlError> {
    let scalar_arg = |i: usize| -> Result<f64, PromqlError> {
        match args.get(i) {
            Some(e) => ev.eval_scalar(e, t),
            None => bad_data(format!("missing argument {} of {name}", i + 1)),
        }
    };
    Ok(match name {
        "quantile_over_time" => {
            let q = scalar_arg(0)?;
            if !(0.0..=1.0).contains(&q) {
                ev.annotations.borrow_mut().warn(format!(
                    "quantile value should be between 0 and 1, got {}",
                    format_go_float(q)
                ));
            }
            (q, 0.0)
        }
        "predict_linear" => (scalar_arg(1)?, 0.0),
        "double_exponential_smoothing" => {
            let (sf, tf) = (scalar_arg(1)?, scalar_arg(2)?);
            if !(sf > 0.0 && sf < 1.0) {
                return exec_err(format!(
                    "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf}"
                ));
            }
            if !(tf > 0.0 && tf < 1.0) {
                return exec_err(format!(
                    "invalid trend factor. Expected: 0 < tf < 1, got: {tf}"
                ));
            }
            (sf, tf)
        }
        _ => (0.0, 0.0),
    })
}

/// A range function, resolved from its name once per call.
#[derive(Clone, Copy)]
enum RangeFn {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Deriv,
    PredictLinear,
    TimestampOf(&'static str),
    Changes,
    Resets,
    Quantile,
    Smoothing,
    OverTime(&'static str),
}

impl RangeFn {
    fn of(name: &str) -> RangeFn {
        match name {
            "rate" => RangeFn::Rate,
            "increase" => RangeFn::Increase,
            "delta" => RangeFn::Delta,
            "irate" => RangeFn::Irate,
            "idelta" => RangeFn::Idelta,
            "deriv" => RangeFn::Deriv,
            "predict_linear" => RangeFn::PredictLinear,
            "ts_of_min_over_time" => RangeFn::TimestampOf("ts_of_min_over_time"),
            "ts_of_max_over_time" => RangeFn::TimestampOf("ts_of_max_over_time"),
            "ts_of_first_over_time" => RangeFn::TimestampOf("ts_of_first_over_time"),
            "ts_of_last_over_time" => RangeFn::TimestampOf("ts_of_last_over_time"),
            "changes" => RangeFn::Changes,
            "resets" => RangeFn::Resets,
            "quantile_over_time" => RangeFn::Quantile,
            "double_exponential_smoothing" => RangeFn::Smoothing,
            "avg_over_time" => RangeFn::OverTime("avg_over_time"),
            "sum_over_time" => RangeFn::OverTime("sum_over_time"),
            "count_over_time" => RangeFn::OverTime("count_over_time"),
            "min_over_time" => RangeFn::OverTime("min_over_time"),
            "max_over_time" => RangeFn::OverTime("max_over_time"),
            "stddev_over_time" => RangeFn::OverTime("stddev_over_time"),
            "stdvar_over_time" => RangeFn::OverTime("stdvar_over_time"),
            "last_over_time" => RangeFn::OverTime("last_over_time"),
            "first_over_time" => RangeFn::OverTime("first_over_time"),
            "present_over_time" => RangeFn::OverTime("present_over_time"),
            "mad_over_time" => RangeFn::OverTime("mad_over_time"),
            _ => RangeFn::OverTime("absent_over_time"),
        }
    }
}

/// One series' value of a range function over the window `(start, end]` holding `samples`.
fn series_value(
    f: RangeFn,
    samples: &[(i64, f64)],
    start: i64,
    end: i64,
    p1: f64,
    p2: f64,
    t: i64,
) -> Option<f64> {
    let values = || samples.iter().map(|(_, v)| *v).collect::<Vec<f64>>();
    match f {
        RangeFn::Rate => rf::extrapolated_rate(samples, start, end, true, true),
        RangeFn::Increase => rf::extrapolated_rate(samples, start, end, true, false),
        RangeFn::Delta => rf::extrapolated_rate(samples, start, end, false, false),
        RangeFn::Irate => rf::instant_value(samples, true),
        RangeFn::Idelta => rf::instant_value(samples, false),
        RangeFn::Deriv => {
            (samples.len() >= 2).then(|| rf::linear_regression(samples, samples[0].0).0)
        }
        RangeFn::PredictLinear => (samples.len() >= 2).then(|| {
            let (slope, intercept) = rf::linear_regression(samples, t);
            slope * p1 + intercept
        }),
        RangeFn::TimestampOf(name) => rf::timestamp_of(name, samples),
        RangeFn::Changes => Some(rf::changes(samples)),
        RangeFn::Resets => Some(rf::resets(samples)),
        RangeFn::Quantile => Some(rf::quantile(p1, values())),
        RangeFn::Smoothing => rf::double_exponential_smoothing(&values(), p1, p2),
        RangeFn::OverTime(name) => rf::over_time(name, &values()),
    }
}

/// Prometheus's info annotation for `rate`/`increase` over a metric whose name does not look
/// like a counter.
fn counter_info(ev: &Evaluator<'_>, labels: &Labels, e: &Expr) {
    if !matches!(unwrap_parens(e), Expr::MatrixSelector(_)) {
        return;
    }
    if let Some(n) = labels.metric_name()
        && !["_total", "_sum", "_count", "_bucket"]
            .iter()
            .any(|suf| n.ends_with(suf))
    {
        ev.annotations.borrow_mut().info(format!(
            "metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {n:?}"
        ));
    }
}
