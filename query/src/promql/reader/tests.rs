//! Tests of the `metrics` table → PromQL series mapping.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, ListBuilder, MapBuilder, StringBuilder,
    TimestampNanosecondBuilder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use super::*;
use crate::promql::{Engine, Value};
use crate::testing::snapshots::FakeSource;

/// One row of a test `metrics` batch (only the columns the mapping reads).
struct Row {
    time_s: i64,
    name: &'static str,
    unit: &'static str,
    metric_type: &'static str,
    monotonic: Option<bool>,
    scope: &'static str,
    attrs: &'static [(&'static str, &'static str)],
    resource: &'static [(&'static str, &'static str)],
    value: Option<f64>,
    count: Option<u64>,
    sum: Option<f64>,
    buckets: Option<(&'static [u64], &'static [f64])>,
}

fn batch(rows: &[Row]) -> RecordBatch {
    let mut time = TimestampNanosecondBuilder::new().with_timezone("UTC");
    let (mut name, mut unit, mut ty, mut temporality, mut scope) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let mut mono = BooleanBuilder::new();
    let mut attrs = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    let mut resource = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    let (mut value, mut sum) = (Float64Builder::new(), Float64Builder::new());
    let mut count = UInt64Builder::new();
    let mut counts = ListBuilder::new(UInt64Builder::new());
    let mut bounds = ListBuilder::new(Float64Builder::new());
    for r in rows {
        time.append_value(r.time_s * 1_000_000_000);
        name.append_value(r.name);
        unit.append_value(r.unit);
        ty.append_value(r.metric_type);
        temporality.append_option((r.metric_type != "gauge").then_some("cumulative"));
        scope.append_value(r.scope);
        mono.append_option(r.monotonic);
        for (m, kv) in [(&mut attrs, r.attrs), (&mut resource, r.resource)] {
            for (k, v) in kv {
                m.keys().append_value(k);
                m.values().append_value(v);
            }
            m.append(true).unwrap();
        }
        value.append_option(r.value);
        sum.append_option(r.sum);
        count.append_option(r.count);
        match r.buckets {
            Some((c, b)) => {
                c.iter().for_each(|v| counts.values().append_value(*v));
                counts.append(true);
                b.iter().for_each(|v| bounds.values().append_value(*v));
                bounds.append(true);
            }
            None => {
                counts.append(false);
                bounds.append(false);
            }
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(time.finish()),
        Arc::new(name.finish()),
        Arc::new(unit.finish()),
        Arc::new(ty.finish()),
        Arc::new(temporality.finish()),
        Arc::new(mono.finish()),
        Arc::new(attrs.finish()),
        Arc::new(resource.finish()),
        Arc::new(scope.finish()),
        Arc::new(value.finish()),
        Arc::new(count.finish()),
        Arc::new(sum.finish()),
        Arc::new(counts.finish()),
        Arc::new(bounds.finish()),
    ];
    let names = [
        "time",
        "metric_name",
        "unit",
        "metric_type",
        "temporality",
        "is_monotonic",
        "attributes",
        "resource_attributes",
        "scope_name",
        "value",
        "count",
        "sum",
        "bucket_counts",
        "explicit_bounds",
    ];
    let fields: Vec<Field> = names
        .iter()
        .zip(&columns)
        .map(|(n, c)| Field::new(*n, c.data_type().clone(), true))
        .collect();
    assert!(matches!(
        fields[0].data_type(),
        DataType::Timestamp(TimeUnit::Nanosecond, _)
    ));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

fn row(name: &'static str, metric_type: &'static str) -> Row {
    Row {
        time_s: 10,
        name,
        unit: "",
        metric_type,
        monotonic: None,
        scope: "otel",
        attrs: &[],
        resource: &[],
        value: None,
        count: None,
        sum: None,
        buckets: None,
    }
}

#[test]
fn remote_write_and_otlp_rows_become_prometheus_series() {
    let fake = FakeSource::default();
    let rows = [
        Row {
            scope: REMOTE_WRITE_SCOPE,
            attrs: &[("job", "node")],
            value: Some(1.0),
            ..row("up", "gauge")
        },
        Row {
            monotonic: Some(true),
            attrs: &[("http.method", "GET")],
            resource: &[("service.name", "cart")],
            value: Some(5.0),
            ..row("requests", "sum")
        },
        Row {
            unit: "s",
            count: Some(6),
            sum: Some(2.5),
            buckets: Some((&[1, 2, 3], &[0.1, 1.0])),
            ..row("latency", "histogram")
        },
    ];
    fake.head
        .lock()
        .unwrap()
        .insert(Table::Metrics, vec![batch(&rows)]);
    let source = MetricsTableSource::new(Arc::new(fake));
    let engine = Engine::default();
    let at = 20_000;
    let one = |q: &str| match engine.instant(q, at, &source).unwrap().value {
        Value::Vector(v) => v
            .into_iter()
            .map(|s| (s.labels.to_string(), s.value))
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        one("up"),
        vec![(r#"{__name__="up", job="node"}"#.to_string(), 1.0)]
    );
    assert_eq!(
        one("requests_total"),
        vec![(
            r#"{__name__="requests_total", http_method="GET", job="cart"}"#.to_string(),
            5.0
        )]
    );
    assert_eq!(
        one("latency_seconds_count"),
        vec![(r#"{__name__="latency_seconds_count"}"#.to_string(), 6.0)]
    );
    assert_eq!(
        one("latency_seconds_bucket"),
        vec![
            (
                r#"{__name__="latency_seconds_bucket", le="+Inf"}"#.to_string(),
                6.0
            ),
            (
                r#"{__name__="latency_seconds_bucket", le="0.1"}"#.to_string(),
                1.0
            ),
            (
                r#"{__name__="latency_seconds_bucket", le="1"}"#.to_string(),
                3.0
            ),
        ]
    );
    let q = one("histogram_quantile(0.5, latency_seconds_bucket)");
    assert!((q[0].1 - 1.0).abs() < 1e-9, "{q:?}");
}
