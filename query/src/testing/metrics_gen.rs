//! Deterministic `metrics` rows of many series of every kind the PromQL mapping knows, for the
//! series-index tests and the `series_index` bench.
//!
//! Series `s` is, by `s % 6`: an OTLP gauge in bytes, a monotonic cumulative sum, a cumulative
//! histogram in seconds, a summary, a monotonic delta sum (`s % 12 == 4`) or a cumulative
//! exponential histogram in milliseconds (`s % 12 == 10`), or a remote-written gauge.
//! Attributes: `host` = `h<s>`, `http.method`, `code`; every 50th series has colliding keys `a.b`
//! and `a_b`, every 97th lists `dup` twice (in an order that flips every point). Resources:
//! `service.name` = `svc<s % 10>`, a `service.namespace` on every third, `service.instance.id` =
//! `inst<s % 20>`, `deployment.environment` = `env<s % 4>`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, ListBuilder, MapBuilder, RecordBatch,
    StringBuilder, StructBuilder, TimestampNanosecondBuilder, UInt32Builder, UInt64Builder,
    new_null_array,
};
use lumen_storage::Table;
use lumen_storage::schema::quantile_fields;

/// 2025-11-24T16:00Z, an hour boundary.
pub const T0: i64 = 1_764_000_000_000_000_000;
/// Nanoseconds per second.
pub const SECOND: i64 = 1_000_000_000;

const KINDS: [&str; 6] = ["mem", "requests", "latency", "rpc", "delta", "rw"];

fn kind(s: usize) -> &'static str {
    match KINDS[s % 6] {
        "delta" if s % 12 == 10 => "exph",
        other => other,
    }
}

/// The `metric_name` of series `s`.
pub fn metric_name(s: usize) -> String {
    let kind = kind(s);
    if kind == "rw" {
        format!("rw_{}", s % 7)
    } else {
        format!("{kind}.{}", s % 7)
    }
}

/// Rows for series `series` at time `t_ns` (one row per series), in the `metrics` storage schema.
pub fn batch(series: std::ops::Range<usize>, t_ns: i64, point: usize) -> RecordBatch {
    let n = series.len();
    let mut time = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut name = StringBuilder::new();
    let mut unit = StringBuilder::new();
    let mut ty = StringBuilder::new();
    let mut temporality = StringBuilder::new();
    let mut mono = BooleanBuilder::new();
    let mut series_id = UInt64Builder::new();
    let mut flags = UInt32Builder::new();
    let mut attrs = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    let mut resource = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    let mut scope = StringBuilder::new();
    let mut value = Float64Builder::new();
    let mut count = UInt64Builder::new();
    let mut sum = Float64Builder::new();
    let mut counts = ListBuilder::new(UInt64Builder::new());
    let mut bounds = ListBuilder::new(Float64Builder::new());
    let mut quantiles = ListBuilder::new(StructBuilder::from_fields(quantile_fields(), 0));
    let mut scale = Int32Builder::new();
    let mut zero_count = UInt64Builder::new();
    let mut zero_threshold = Float64Builder::new();
    let mut positive_offset = Int32Builder::new();
    let mut positive = ListBuilder::new(UInt64Builder::new());
    let mut negative_offset = Int32Builder::new();
    let mut negative = ListBuilder::new(UInt64Builder::new());
    for s in series {
        let kind = kind(s);
        let v = (s + point) as f64;
        time.append_value(t_ns);
        name.append_value(metric_name(s));
        series_id.append_value((s as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        flags.append_value(u32::from(point == 5 && s % 11 == 0));
        match kind {
            "mem" => unit.append_value("By"),
            "latency" => unit.append_value("s"),
            "exph" => unit.append_value("ms"),
            "requests" => unit.append_value("{request}"),
            _ => unit.append_null(),
        }
        let metric_type = match kind {
            "mem" | "rw" => "gauge",
            "requests" | "delta" => "sum",
            "latency" => "histogram",
            "exph" => "exponential_histogram",
            _ => "summary",
        };
        ty.append_value(metric_type);
        match kind {
            "requests" | "latency" | "exph" => temporality.append_value("cumulative"),
            "delta" => temporality.append_value("delta"),
            _ => temporality.append_null(),
        }
        mono.append_option(matches!(kind, "requests" | "delta").then_some(true));
        let rw = kind == "rw";
        let mut pairs: Vec<(String, String)> = vec![
            ("host".into(), format!("h{s}")),
            (
                if rw { "http_method" } else { "http.method" }.into(),
                ["GET", "POST"][s % 2].into(),
            ),
            ("code".into(), format!("{}", (s % 5) * 100)),
        ];
        if rw {
            pairs.push(("job".into(), "rw".into()));
            pairs.push(("instance".into(), format!("inst{}", s % 20)));
        }
        if s % 50 == 0 {
            pairs.push(("a.b".into(), "x".into()));
            pairs.push(("a_b".into(), "y".into()));
        }
        if s % 97 == 0 {
            pairs.push(("dup".into(), "1".into()));
            pairs.push(("dup".into(), "2".into()));
        }
        // Vary the order between points: it must not split a series.
        if point % 2 == 1 {
            pairs.reverse();
        }
        for (k, val) in &pairs {
            attrs.keys().append_value(k);
            attrs.values().append_value(val);
        }
        attrs.append(true).unwrap();
        if !rw {
            resource.keys().append_value("service.name");
            resource.values().append_value(format!("svc{}", s % 10));
            if s % 3 == 0 {
                resource.keys().append_value("service.namespace");
                resource.values().append_value("ns");
            }
            resource.keys().append_value("service.instance.id");
            resource.values().append_value(format!("inst{}", s % 20));
            resource.keys().append_value("deployment.environment");
            resource.values().append_value(format!("env{}", s % 4));
        }
        resource.append(true).unwrap();
        scope.append_value(if rw {
            "prometheus.remote_write"
        } else {
            "io.example"
        });
        match metric_type {
            "gauge" | "sum" => value.append_value(v),
            _ => value.append_null(),
        }
        match metric_type {
            "histogram" | "summary" | "exponential_histogram" => {
                count.append_value((s + point) as u64 * 3);
                sum.append_value(v * 1.5);
            }
            _ => {
                count.append_null();
                sum.append_null();
            }
        }
        if metric_type == "histogram" {
            for c in [point as u64, 1, 2] {
                counts.values().append_value(c);
            }
            counts.append(true);
            for b in [0.1, 1.0] {
                bounds.values().append_value(b);
            }
            bounds.append(true);
        } else {
            counts.append(false);
            bounds.append(false);
        }
        if metric_type == "exponential_histogram" {
            scale.append_value(2);
            zero_count.append_value(1);
            zero_threshold.append_value(0.001);
            positive_offset.append_value((s % 5) as i32);
            for c in [1, point as u64, 2] {
                positive.values().append_value(c);
            }
            positive.append(true);
            negative_offset.append_value(0);
            negative.values().append_value(1);
            negative.append(true);
        } else {
            scale.append_null();
            zero_count.append_null();
            zero_threshold.append_null();
            positive_offset.append_null();
            positive.append(false);
            negative_offset.append_null();
            negative.append(false);
        }
        if metric_type == "summary" {
            for (q, qv) in [(0.5, v), (0.9, v * 2.0)] {
                let st = quantiles.values();
                st.field_builder::<Float64Builder>(0)
                    .unwrap()
                    .append_value(q);
                st.field_builder::<Float64Builder>(1)
                    .unwrap()
                    .append_value(qv);
                st.append(true);
            }
            quantiles.append(true);
        } else {
            quantiles.append(false);
        }
    }
    let schema = Table::Metrics.schema();
    let mut built: Vec<(&str, ArrayRef)> = vec![
        ("time", Arc::new(time.finish())),
        ("metric_name", Arc::new(name.finish())),
        ("unit", Arc::new(unit.finish())),
        ("metric_type", Arc::new(ty.finish())),
        ("temporality", Arc::new(temporality.finish())),
        ("is_monotonic", Arc::new(mono.finish())),
        ("series_id", Arc::new(series_id.finish())),
        ("flags", Arc::new(flags.finish())),
        ("attributes", Arc::new(attrs.finish())),
        ("resource_attributes", Arc::new(resource.finish())),
        ("scope_name", Arc::new(scope.finish())),
        ("value", Arc::new(value.finish())),
        ("count", Arc::new(count.finish())),
        ("sum", Arc::new(sum.finish())),
        ("bucket_counts", Arc::new(counts.finish())),
        ("explicit_bounds", Arc::new(bounds.finish())),
        ("quantiles", Arc::new(quantiles.finish())),
        ("scale", Arc::new(scale.finish())),
        ("zero_count", Arc::new(zero_count.finish())),
        ("zero_threshold", Arc::new(zero_threshold.finish())),
        ("positive_offset", Arc::new(positive_offset.finish())),
        ("positive_bucket_counts", Arc::new(positive.finish())),
        ("negative_offset", Arc::new(negative_offset.finish())),
        ("negative_bucket_counts", Arc::new(negative.finish())),
    ];
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(
            |f| match built.iter().position(|(name, _)| name == f.name()) {
                Some(i) => built.swap_remove(i).1,
                None if f.is_nullable() => new_null_array(f.data_type(), n),
                None => Arc::new(arrow::array::UInt32Array::from(vec![0u32; n])) as ArrayRef,
            },
        )
        .collect();
    RecordBatch::try_new(schema, columns).unwrap()
}
