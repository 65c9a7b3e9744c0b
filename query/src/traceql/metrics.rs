//! TraceQL metrics: `{ … } | rate() by (…)` and the other metrics functions, as series over time
//! (`/api/metrics/query_range`) or one value per series (`/api/metrics/query`).
//!
//! One aggregate SQL scan over the time range does the work: the spans matching the filter,
//! grouped by step (`(time - start) / step`) and by the `by (…)` fields, counted (`rate`,
//! `count_over_time`) or aggregated (`min/max/avg/sum_over_time`). `quantile_over_time` and
//! `histogram_over_time` group by a power-of-two bucket of the value as Tempo does (durations in
//! nanoseconds, reported in seconds), and quantiles are interpolated within the bucket that holds
//! them. Durations are reported in seconds.
//!
//! Only a single span-set filter is taken before the function (no structural operators or
//! stages yet): anything else is refused naming what is missing.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type};

use super::ast::{AggregateFn, Field, Intrinsic, MetricsFn, MetricsQuery, SpansetExpr};
use super::sql::{condition, field_sql, normalise_ids, uses_trace_summary};
use crate::error::QueryError;
use crate::sql::session::QueryEngine;

/// The most steps one query may return per series (Prometheus's bound).
pub const MAX_STEPS: i64 = 11_000;

/// The time range and step of a metrics query, in Unix nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsRange {
    /// First step's start (aligned to the step).
    pub start_ns: i64,
    /// End of the range (exclusive).
    pub end_ns: i64,
    /// Step length.
    pub step_ns: i64,
}

/// One output series.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsSeries {
    /// Label name → value, in the order of `by (…)` and then `p` or `__bucket`.
    pub labels: Vec<(String, String)>,
    /// (step start in ms, value), in time order.
    pub samples: Vec<(i64, f64)>,
}

/// The text a field is written as in labels (`resource.service.name`, `span.http.route`,
/// `name` …), as Tempo labels its series.
fn label_name(field: &Field) -> String {
    field.to_string()
}

/// Runs a metrics query over `range`.
pub async fn query_range(
    engine: &QueryEngine,
    query: &MetricsQuery,
    range: MetricsRange,
) -> Result<Vec<MetricsSeries>, QueryError> {
    let filter = match &query.pipeline.spans {
        SpansetExpr::Filter(filter) if query.pipeline.stages.is_empty() => filter.clone(),
        SpansetExpr::Filter(_) => {
            return Err(QueryError::BadQuery(
                "TraceQL metrics over pipeline stages (`| select`, `| count()` …) are not supported yet: \
                 put the conditions in one { … }"
                    .into(),
            ));
        }
        SpansetExpr::Binary(..) => {
            return Err(QueryError::BadQuery(
                "TraceQL metrics over span-set operators (&&, ||, >, >>, ~ between { … }) are not \
                 supported yet: put the conditions in one { … }"
                    .into(),
            ));
        }
    };
    let mut filter = filter;
    if let Some(filter) = filter.as_mut() {
        normalise_ids(filter);
    }
    if filter.as_ref().is_some_and(uses_trace_summary)
        || query
            .by
            .iter()
            .any(|f| matches!(f, Field::Intrinsic(i) if i.is_trace_level()))
    {
        return Err(QueryError::BadQuery(
            "TraceQL metrics over trace-level intrinsics (trace:duration, trace:rootName, \
             trace:rootService) are not supported yet"
                .into(),
        ));
    }
    let steps = (range.end_ns - range.start_ns + range.step_ns - 1) / range.step_ns;
    let mut select = vec![format!(
        "(arrow_cast(s.time, 'Int64') - {}) / {} AS step",
        range.start_ns, range.step_ns
    )];
    let mut group = vec!["step".to_string()];
    for (i, field) in query.by.iter().enumerate() {
        select.push(format!("arrow_cast({}, 'Utf8') AS b{i}", field_sql(field)));
        group.push(format!("b{i}"));
    }
    let value = |field: &Field| match field {
        Field::Intrinsic(Intrinsic::Duration) => "arrow_cast(s.duration_ns, 'Float64')".to_string(),
        other => format!("try_cast({} AS DOUBLE)", field_sql(other)),
    };
    let mut not_null = None;
    match &query.function {
        MetricsFn::Rate | MetricsFn::CountOverTime => {
            select.push("arrow_cast(count(*), 'Float64') AS v".into());
        }
        MetricsFn::OverTime(aggregate, field) => {
            let function = match aggregate {
                AggregateFn::Min => "min",
                AggregateFn::Max => "max",
                AggregateFn::Avg => "avg",
                AggregateFn::Sum => "sum",
            };
            select.push(format!(
                "arrow_cast({function}({}), 'Float64') AS v",
                value(field)
            ));
            not_null = Some(value(field));
        }
        MetricsFn::QuantileOverTime(field, _) | MetricsFn::HistogramOverTime(field) => {
            let v = value(field);
            select.push(format!(
                "CASE WHEN {v} <= 1 THEN 0 ELSE arrow_cast(ceil(log2({v})), 'Int64') END AS lb"
            ));
            group.push("lb".into());
            select.push("arrow_cast(count(*), 'Float64') AS v".into());
            not_null = Some(v);
        }
    }
    let mut sql = format!(
        "SELECT {} FROM spans s WHERE s.time >= to_timestamp_nanos({}) AND s.time < to_timestamp_nanos({}) \
         AND coalesce({}, FALSE)",
        select.join(", "),
        range.start_ns,
        range.end_ns,
        condition(filter.as_ref()),
    );
    if let Some(v) = not_null {
        sql.push_str(&format!(" AND {v} IS NOT NULL"));
    }
    sql.push_str(&format!(" GROUP BY {}", group.join(", ")));
    let output = engine.sql(&sql).await?;

    // (by values) → step → value, or → step → log2 bucket → count.
    let mut values = Values::new();
    let mut buckets = Buckets::new();
    for batch in &output.batches {
        read(batch, query.by.len(), &mut values, &mut buckets)?;
    }
    let step_s = range.step_ns as f64 / 1e9;
    let time_ms = |step: i64| (range.start_ns + step * range.step_ns) / 1_000_000;
    let by_labels = |by: &[Option<String>]| -> Vec<(String, String)> {
        query
            .by
            .iter()
            .zip(by)
            .filter_map(|(field, value)| value.clone().map(|v| (label_name(field), v)))
            .collect()
    };
    // Durations are stored in ns and reported in seconds (a division: exact for whole ns).
    let unit = |field: &Field| -> fn(f64) -> f64 {
        if matches!(field, Field::Intrinsic(Intrinsic::Duration)) {
            |v| v / 1e9
        } else {
            |v| v
        }
    };
    let mut series = Vec::new();
    match &query.function {
        MetricsFn::Rate | MetricsFn::CountOverTime => {
            let rate = matches!(query.function, MetricsFn::Rate);
            for (by, per_step) in values {
                // Every step, zeros included, as Tempo answers counts.
                let samples = (0..steps)
                    .map(|step| {
                        let n = per_step.get(&step).copied().unwrap_or(0.0);
                        (time_ms(step), if rate { n / step_s } else { n })
                    })
                    .collect();
                series.push(MetricsSeries {
                    labels: by_labels(&by),
                    samples,
                });
            }
        }
        MetricsFn::OverTime(_, field) => {
            let scale = unit(field);
            for (by, per_step) in values {
                series.push(MetricsSeries {
                    labels: by_labels(&by),
                    samples: per_step
                        .into_iter()
                        .map(|(step, v)| (time_ms(step), scale(v)))
                        .collect(),
                });
            }
        }
        MetricsFn::HistogramOverTime(field) => {
            let scale = unit(field);
            for (by, per_step) in buckets {
                let mut per_bucket: BTreeMap<i64, Vec<(i64, f64)>> = BTreeMap::new();
                for (step, counts) in per_step {
                    for (bucket, n) in counts {
                        per_bucket
                            .entry(bucket)
                            .or_default()
                            .push((time_ms(step), n));
                    }
                }
                for (bucket, samples) in per_bucket {
                    let mut labels = by_labels(&by);
                    labels.push((
                        "__bucket".into(),
                        format_number(scale(2f64.powi(bucket as i32))),
                    ));
                    series.push(MetricsSeries { labels, samples });
                }
            }
        }
        MetricsFn::QuantileOverTime(field, quantiles) => {
            let scale = unit(field);
            for (by, per_step) in buckets {
                for q in quantiles {
                    let samples = per_step
                        .iter()
                        .map(|(step, counts)| (time_ms(*step), scale(quantile(counts, *q))))
                        .collect();
                    let mut labels = by_labels(&by);
                    labels.push(("p".into(), format_number(*q)));
                    series.push(MetricsSeries { labels, samples });
                }
            }
        }
    }
    Ok(series)
}

/// Shortest text of a number (`0.9`, `1`, `0.000001024`).
fn format_number(v: f64) -> String {
    let text = format!("{v}");
    text.strip_suffix(".0").map(str::to_owned).unwrap_or(text)
}

/// The `q` quantile of values counted in power-of-two buckets (`k` holds values in
/// (2^(k-1), 2^k]; 0 holds values up to 1), interpolated linearly within its bucket.
pub fn quantile(counts: &BTreeMap<i64, f64>, q: f64) -> f64 {
    let total: f64 = counts.values().sum();
    if total <= 0.0 {
        return 0.0;
    }
    let rank = q * total;
    let mut seen = 0.0;
    for (bucket, n) in counts {
        if seen + n >= rank {
            let upper = 2f64.powi(*bucket as i32);
            let lower = if *bucket <= 0 { 0.0 } else { upper / 2.0 };
            let within = if *n > 0.0 { (rank - seen) / n } else { 1.0 };
            return lower + (upper - lower) * within;
        }
        seen += n;
    }
    counts
        .keys()
        .next_back()
        .map_or(0.0, |b| 2f64.powi(*b as i32))
}

/// (by values) → step → value.
type Values = BTreeMap<Vec<Option<String>>, BTreeMap<i64, f64>>;
/// (by values) → step → power-of-two bucket → count.
type Buckets = BTreeMap<Vec<Option<String>>, BTreeMap<i64, BTreeMap<i64, f64>>>;

fn read(
    batch: &RecordBatch,
    by: usize,
    values: &mut Values,
    buckets: &mut Buckets,
) -> Result<(), QueryError> {
    let missing = |name: &str| QueryError::Internal(format!("metrics rows have no column {name}"));
    let step = batch
        .column_by_name("step")
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .ok_or_else(|| missing("step"))?;
    let v = batch
        .column_by_name("v")
        .and_then(|c| c.as_primitive_opt::<Float64Type>())
        .ok_or_else(|| missing("v"))?;
    let by_columns = (0..by)
        .map(|i| {
            batch
                .column_by_name(&format!("b{i}"))
                .and_then(|c| c.as_string_opt::<i32>())
                .ok_or_else(|| missing(&format!("b{i}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let lb = batch
        .column_by_name("lb")
        .and_then(|c| c.as_primitive_opt::<Int64Type>());
    for row in 0..batch.num_rows() {
        if v.is_null(row) || step.is_null(row) {
            continue;
        }
        let key: Vec<Option<String>> = by_columns
            .iter()
            .map(|c| (!c.is_null(row)).then(|| c.value(row).to_owned()))
            .collect();
        match lb {
            Some(lb) => {
                *buckets
                    .entry(key)
                    .or_default()
                    .entry(step.value(row))
                    .or_default()
                    .entry(lb.value(row))
                    .or_default() += v.value(row);
            }
            None => {
                values
                    .entry(key)
                    .or_default()
                    .insert(step.value(row), v.value(row));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
