//! Metrics: point types, validation and series ids.

use super::*;

fn metric_request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("shop"),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn int_point(time: u64, attributes: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        time_unix_nano: time,
        attributes,
        value: Some(number_data_point::Value::AsInt(42)),
        ..Default::default()
    }
}

fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.to_owned(),
        data: Some(Data::Gauge(Gauge {
            data_points: points,
        })),
        ..Default::default()
    }
}

#[test]
fn int_points_set_value_and_value_int_and_exemplars_keep_hex_ids() {
    let mut point = int_point(1_700_000_000_000_000_000, vec![string_kv("host", "a")]);
    point.flags = 1;
    point.exemplars = vec![Exemplar {
        time_unix_nano: 1_699_999_999_000_000_000,
        trace_id: vec![0x5b; 16],
        span_id: vec![0xee; 8],
        filtered_attributes: vec![string_kv("user", "u1")],
        value: Some(exemplar::Value::AsInt(9)),
    }];
    let mut metric = gauge("queue.depth", vec![point]);
    metric.metadata = vec![string_kv("source", "sdk")];
    let converted = metrics(&metric_request(vec![metric]), &limits(), NOW).expect("converts");
    assert_schema(&converted, Table::Metrics);
    let b = batch(&converted);
    assert_eq!(f64_at(b, "value", 0), Some(42.0));
    assert_eq!(i64_at(b, "value_int", 0), Some(42));
    assert_eq!(u32_at(b, "flags", 0), 1);
    assert_eq!(string(b, "description", 0), None);
    assert_eq!(map_at(b, "metric_metadata", 0), pairs(&[("source", "sdk")]));
    let exemplars = b
        .column_by_name("exemplars")
        .expect("column")
        .as_list::<i32>()
        .value(0);
    let exemplars = exemplars.as_struct();
    let text = |c: &str| {
        exemplars
            .column_by_name(c)
            .expect(c)
            .as_string::<i32>()
            .value(0)
            .to_owned()
    };
    assert_eq!(text("trace_id"), "5b".repeat(16));
    assert_eq!(text("span_id"), "ee".repeat(8));
    assert_eq!(
        exemplars
            .column_by_name("value_int")
            .expect("v")
            .as_primitive::<Int64Type>()
            .value(0),
        9
    );
    assert_eq!(
        exemplars
            .column_by_name("value")
            .expect("v")
            .as_primitive::<Float64Type>()
            .value(0),
        9.0
    );
    assert_eq!(
        map_entries(
            exemplars
                .column_by_name("filtered_attributes")
                .expect("f")
                .as_ref(),
            0
        ),
        pairs(&[("user", "u1")])
    );
}

#[test]
fn summary_points_keep_quantiles() {
    let point = SummaryDataPoint {
        time_unix_nano: 1_700_000_000_000_000_000,
        start_time_unix_nano: 1_699_000_000_000_000_000,
        count: 10,
        sum: 55.5,
        quantile_values: vec![
            summary_data_point::ValueAtQuantile {
                quantile: 0.5,
                value: 4.0,
            },
            summary_data_point::ValueAtQuantile {
                quantile: 0.99,
                value: 9.5,
            },
        ],
        ..Default::default()
    };
    let metric = Metric {
        name: "rpc.latency".to_owned(),
        unit: "ms".to_owned(),
        data: Some(Data::Summary(Summary {
            data_points: vec![point],
        })),
        ..Default::default()
    };
    let converted = metrics(&metric_request(vec![metric]), &limits(), NOW).expect("converts");
    assert_schema(&converted, Table::Metrics);
    let b = batch(&converted);
    assert_eq!(string(b, "metric_type", 0).as_deref(), Some("summary"));
    assert_eq!(string(b, "temporality", 0), None);
    assert_eq!(u64_at(b, "count", 0), Some(10));
    assert_eq!(f64_at(b, "sum", 0), Some(55.5));
    assert_eq!(f64_at(b, "value", 0), None);
    assert_eq!(time_at(b, "start_time", 0), Some(1_699_000_000_000_000_000));
    let quantiles = b
        .column_by_name("quantiles")
        .expect("column")
        .as_list::<i32>()
        .value(0);
    let quantiles = quantiles.as_struct();
    let q = quantiles
        .column_by_name("quantile")
        .expect("q")
        .as_primitive::<Float64Type>();
    let v = quantiles
        .column_by_name("value")
        .expect("v")
        .as_primitive::<Float64Type>();
    assert_eq!(q.values().to_vec(), vec![0.5, 0.99]);
    assert_eq!(v.values().to_vec(), vec![4.0, 9.5]);
    assert!(b.column_by_name("exemplars").expect("column").is_null(0));
}

#[test]
fn invalid_points_are_rejected_and_series_ids_ignore_attribute_order() {
    let t = 1_700_000_000_000_000_000;
    let far_future = (NOW + 2 * 3_600_000_000_000) as u64;
    let a = string_kv("a", "1");
    let z = string_kv("z", "2");
    let mut bad_exemplar = int_point(t, vec![]);
    bad_exemplar.exemplars.push(Exemplar {
        time_unix_nano: u64::MAX,
        ..Default::default()
    });
    let metric = gauge(
        "m",
        vec![
            int_point(t, vec![a.clone(), z.clone()]),
            int_point(0, vec![]),
            int_point(far_future, vec![]),
            NumberDataPoint {
                start_time_unix_nano: u64::MAX,
                ..int_point(t, vec![])
            },
            bad_exemplar,
            int_point(t + 1, vec![z, a]),
        ],
    );
    let nameless = gauge("", vec![int_point(t, vec![])]);
    let no_data = Metric {
        name: "empty".to_owned(),
        ..Default::default()
    };
    let converted = metrics(
        &metric_request(vec![metric, nameless, no_data]),
        &limits(),
        NOW,
    )
    .expect("converts");
    assert_eq!((converted.accepted, converted.rejected), (2, 5));
    let b = batch(&converted);
    assert_eq!(u64_at(b, "series_id", 0), u64_at(b, "series_id", 1));
    assert_eq!(
        u64_at(b, "series_id", 0),
        Some(series_id(
            "m",
            &[("service.name", Some("shop"))],
            &[("z", Some("2")), ("a", Some("1"))]
        ))
    );
    let message = converted.message();
    assert!(
        message.contains(r#"resourceMetrics[0].scopeMetrics[0].metrics[0].dataPoints[1] "m": time_unix_nano is 0"#),
        "{message}"
    );
    assert!(message.contains("exemplars[0].time_unix_nano"), "{message}");
    assert!(
        message.contains("metrics[1].dataPoints[0]: metric name is empty"),
        "{message}"
    );
    assert!(
        message.contains(r#"metrics[2] "empty": metric has no data points"#),
        "{message}"
    );
}

#[test]
fn series_id_separates_fields_unambiguously() {
    let none: &[(&str, Option<&str>)] = &[];
    assert_ne!(
        series_id("ab", none, none),
        series_id("a", &[("b", None)], none)
    );
    assert_ne!(
        series_id("m", &[("k", Some(""))], none),
        series_id("m", &[("k", None)], none)
    );
    assert_ne!(
        series_id("m", &[("k", Some("v"))], none),
        series_id("m", none, &[("k", Some("v"))])
    );
    assert_ne!(
        series_id("m", none, &[("a", Some("bc"))]),
        series_id("m", none, &[("ab", Some("c"))])
    );
}
