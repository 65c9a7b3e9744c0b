//! Aggregation operators (`sum`, `avg`, ..., `topk`, `quantile`, `count_values`, `limitk`)
//! with `by` / `without` grouping.

use promql_parser::parser::{AggregateExpr, LabelModifier};

use super::error::{PromqlError, bad_data, exec_err};
use super::eval::Evaluator;
use super::functions::is_valid_label_name;
use super::range_functions::{avg, quantile, sum};
use super::value::{Labels, LabelsMap, Sample, Value, format_go_float};

/// Most input label sets whose grouping keys one aggregation remembers across steps.
const MAX_REMEMBERED_GROUP_KEYS: usize = 1 << 20;

impl Evaluator<'_> {
    /// Evaluates an aggregation at `t`.
    pub(super) fn eval_aggregate(&self, a: &AggregateExpr, t: i64) -> Result<Value, PromqlError> {
        let ev = self;
        let op = a.op.to_string().to_ascii_lowercase();
        let input = ev.eval_vector(&a.expr, t)?;
        let grouping = |l: &Labels| -> Labels {
            match &a.modifier {
                Some(LabelModifier::Include(names)) => l.keep_only(&names.labels),
                Some(LabelModifier::Exclude(names)) => l.drop_with_name(&names.labels),
                None => Labels::empty(),
            }
        };
        // Groups in order of first appearance. The same series meet this aggregation at every step
        // of a range query, so their keys are remembered (bounded: inputs made afresh per step, such
        // as `count_values` labels, could otherwise pile up).
        let mut order: Vec<Labels> = Vec::new();
        let mut groups: LabelsMap<Vec<Sample>> = LabelsMap::default();
        {
            let mut memo = ev.group_keys.borrow_mut();
            let memo = memo.entry(std::ptr::from_ref(a) as usize).or_default();
            if memo.len() > MAX_REMEMBERED_GROUP_KEYS {
                memo.clear();
            }
            for s in input {
                let key = match memo.get(&s.labels) {
                    Some(k) => k.clone(),
                    None => {
                        let k = grouping(&s.labels);
                        memo.insert(s.labels.clone(), k.clone());
                        k
                    }
                };
                groups
                    .entry(key.clone())
                    .or_insert_with(|| {
                        order.push(key);
                        Vec::new()
                    })
                    .push(s);
            }
        }
        let param = match &a.param {
            Some(p) => Some(ev.eval(p, t)?),
            None => None,
        };
        let scalar_param = |name: &str| -> Result<f64, PromqlError> {
            match &param {
                Some(Value::Scalar(v)) => Ok(*v),
                _ => bad_data(format!("expected scalar parameter for {name}")),
            }
        };

        let mut out = Vec::new();
        match op.as_str() {
            "topk" | "bottomk" | "limitk" => {
                let k = scalar_param(&op)?;
                if k.is_nan() {
                    return exec_err("Parameter value is NaN");
                }
                if k >= 9.223_372_036_854_776e18 {
                    return exec_err(format!(
                        "Scalar value {} overflows int64",
                        format_go_float(k)
                    ));
                }
                if k < 1.0 {
                    return Ok(Value::Vector(Vec::new()));
                }
                let k = k as usize;
                for key in &order {
                    let Some(mut members) = groups.remove(key) else {
                        continue;
                    };
                    match op.as_str() {
                        "topk" => members.sort_by(|x, y| desc_nan_last(x.value, y.value)),
                        "bottomk" => members.sort_by(|x, y| asc_nan_last(x.value, y.value)),
                        _ => {}
                    }
                    members.truncate(k);
                    out.extend(members);
                }
            }
            "count_values" => {
                let label = match &param {
                    Some(Value::String(s)) => s.clone(),
                    _ => return bad_data("expected string parameter for count_values"),
                };
                if !is_valid_label_name(&label) {
                    return exec_err(format!("invalid label name {label:?}"));
                }
                for key in &order {
                    let Some(members) = groups.get(key) else {
                        continue;
                    };
                    let mut counts: Vec<(String, f64)> = Vec::new();
                    for s in members {
                        let v = format_go_float(s.value);
                        match counts.iter_mut().find(|(k, _)| *k == v) {
                            Some(c) => c.1 += 1.0,
                            None => counts.push((v, 1.0)),
                        }
                    }
                    for (v, c) in counts {
                        let mut labels = key.clone();
                        labels.set(&label, &v);
                        out.push(Sample { labels, value: c });
                    }
                }
            }
            _ => {
                let q = if op == "quantile" {
                    let q = scalar_param("quantile")?;
                    if !(0.0..=1.0).contains(&q) {
                        ev.annotations.borrow_mut().warn(format!(
                            "quantile value should be between 0 and 1, got {}",
                            format_go_float(q)
                        ));
                    }
                    q
                } else {
                    0.0
                };
                for key in order {
                    let Some(members) = groups.get(&key) else {
                        continue;
                    };
                    let values: Vec<f64> = members.iter().map(|s| s.value).collect();
                    let value = match op.as_str() {
                        "sum" => sum(&values),
                        "avg" => avg(&values),
                        "min" => fold_nan_aware(&values, |acc, v| v < acc),
                        "max" => fold_nan_aware(&values, |acc, v| v > acc),
                        "count" => values.len() as f64,
                        "group" => 1.0,
                        "stddev" => variance(&values).sqrt(),
                        "stdvar" => variance(&values),
                        "quantile" => quantile(q, values),
                        other => return exec_err(format!("aggregation {other} is not supported")),
                    };
                    out.push(Sample { labels: key, value });
                }
            }
        }
        Ok(Value::Vector(out))
    }
}

/// Descending order with NaN last (topk).
fn desc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal),
    }
}

/// Ascending order with NaN last (bottomk).
fn asc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
    }
}

/// Population variance (Welford), as Prometheus's `stdvar`.
fn variance(values: &[f64]) -> f64 {
    let (mut count, mut mean, mut m2) = (0.0, 0.0, 0.0);
    for &f in values {
        count += 1.0;
        let delta = f - mean;
        mean += delta / count;
        m2 += delta * (f - mean);
    }
    m2 / count
}

/// `min` / `max`: a NaN accumulator is replaced by any value, so NaN only wins if all are NaN.
fn fold_nan_aware(values: &[f64], better: impl Fn(f64, f64) -> bool) -> f64 {
    let mut acc = f64::NAN;
    for &v in values {
        if acc.is_nan() || better(acc, v) {
            acc = v;
        }
    }
    acc
}
