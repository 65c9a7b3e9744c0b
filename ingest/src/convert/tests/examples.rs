//! The example requests published with the OTLP protocol, end to end.

use super::*;

#[test]
fn trace_example_lands_in_every_column() {
    let request: ExportTraceServiceRequest = decode_json("trace.json");
    let converted = spans(&request, &limits(), NOW).expect("converts");
    assert_schema(&converted, Table::Spans);
    assert_eq!((converted.accepted, converted.rejected), (1, 0));
    assert!(converted.messages.is_empty(), "{:?}", converted.messages);
    let b = batch(&converted);
    assert_eq!(time_at(b, "time", 0), Some(EXAMPLE_TIME));
    assert_eq!(
        time_at(b, "end_time", 0),
        Some(EXAMPLE_TIME + 1_000_000_000)
    );
    assert_eq!(i64_at(b, "duration_ns", 0), Some(1_000_000_000));
    assert_eq!(
        id(b, "trace_id", 0).as_deref(),
        Some("5b8efff798038103d269b633813fc60c")
    );
    assert_eq!(id(b, "span_id", 0).as_deref(), Some("eee19b7ec3c1b174"));
    assert_eq!(
        id(b, "parent_span_id", 0).as_deref(),
        Some("eee19b7ec3c1b173")
    );
    assert_eq!(string(b, "trace_state", 0), None);
    assert_eq!(u32_at(b, "flags", 0), 0);
    assert_eq!(string(b, "name", 0).as_deref(), Some("I'm a server span"));
    assert_eq!(string(b, "kind", 0).as_deref(), Some("server"));
    assert_eq!(string(b, "status_code", 0).as_deref(), Some("unset"));
    assert_eq!(string(b, "status_message", 0), None);
    assert_eq!(
        map_at(b, "attributes", 0),
        pairs(&[("my.span.attr", "some value")])
    );
    assert_eq!(u32_at(b, "dropped_attributes_count", 0), 0);
    let events = b.column_by_name("events").expect("events").as_list::<i32>();
    assert_eq!(events.value(0).len(), 0);
    let links = b.column_by_name("links").expect("links").as_list::<i32>();
    assert_eq!(links.value(0).len(), 0);
    assert_resource_and_scope(b, 0);
}

fn assert_resource_and_scope(b: &RecordBatch, row: usize) {
    assert_eq!(
        string(b, "service_name", row).as_deref(),
        Some("my.service")
    );
    assert_eq!(
        map_at(b, "resource_attributes", row),
        pairs(&[("service.name", "my.service")])
    );
    assert_eq!(u32_at(b, "resource_dropped_attributes_count", row), 0);
    assert_eq!(string(b, "resource_schema_url", row), None);
    assert_eq!(string(b, "scope_name", row).as_deref(), Some("my.library"));
    assert_eq!(string(b, "scope_version", row).as_deref(), Some("1.0.0"));
    assert_eq!(
        map_at(b, "scope_attributes", row),
        pairs(&[("my.scope.attribute", "some scope attribute")])
    );
    assert_eq!(u32_at(b, "scope_dropped_attributes_count", row), 0);
    assert_eq!(string(b, "scope_schema_url", row), None);
}

#[test]
fn logs_example_lands_with_attribute_text_forms() {
    let request: ExportLogsServiceRequest = decode_json("logs.json");
    let converted = logs(&request, &limits(), NOW).expect("converts");
    assert_schema(&converted, Table::Logs);
    assert_eq!((converted.accepted, converted.rejected), (1, 0));
    let b = batch(&converted);
    assert_eq!(time_at(b, "time", 0), Some(1_544_712_660_300_000_000));
    assert_eq!(
        time_at(b, "observed_time", 0),
        Some(1_544_712_660_300_000_000)
    );
    assert_eq!(i32_at(b, "severity_number", 0), Some(10));
    assert_eq!(
        string(b, "severity_text", 0).as_deref(),
        Some("Information")
    );
    assert_eq!(string(b, "body", 0).as_deref(), Some("Example log record"));
    assert_eq!(string(b, "body_type", 0).as_deref(), Some("string"));
    assert_eq!(string(b, "event_name", 0), None);
    assert_eq!(
        id(b, "trace_id", 0).as_deref(),
        Some("5b8efff798038103d269b633813fc60c")
    );
    assert_eq!(id(b, "span_id", 0).as_deref(), Some("eee19b7ec3c1b174"));
    assert_eq!(u32_at(b, "flags", 0), 0);
    assert_eq!(
        map_at(b, "attributes", 0),
        pairs(&[
            ("string.attribute", "some string"),
            ("boolean.attribute", "true"),
            ("int.attribute", "10"),
            ("double.attribute", "637.704"),
            ("array.attribute", r#"["many","values"]"#),
            ("map.attribute", r#"{"some.map.key":"some value"}"#),
        ])
    );
    assert_eq!(u32_at(b, "dropped_attributes_count", 0), 0);
    assert_resource_and_scope(b, 0);
}

#[test]
fn events_example_keeps_event_name_and_kvlist_body() {
    let request: ExportLogsServiceRequest = decode_json("events.json");
    let converted = logs(&request, &limits(), NOW).expect("converts");
    assert_schema(&converted, Table::Logs);
    let b = batch(&converted);
    assert_eq!(
        string(b, "event_name", 0).as_deref(),
        Some("browser.page_view")
    );
    assert_eq!(i32_at(b, "severity_number", 0), Some(9));
    assert_eq!(
        string(b, "severity_text", 0).as_deref(),
        Some("test severity text")
    );
    assert_eq!(string(b, "body_type", 0).as_deref(), Some("kvlist"));
    assert_eq!(
        string(b, "body", 0).as_deref(),
        Some(
            r#"{"type":0,"url":"https://www.guidgenerator.com/online-guid-generator.aspx","referrer":"https://wwww.google.com","title":"Free Online GUID Generator"}"#
        )
    );
    assert_eq!(id(b, "trace_id", 0), None);
    assert_eq!(id(b, "span_id", 0), None);
    assert_eq!(
        map_at(b, "attributes", 0),
        pairs(&[("event.attribute", "some event attribute")])
    );
    assert_resource_and_scope(b, 0);
}

#[test]
fn metrics_example_gives_one_row_per_point_of_every_type() {
    let request: ExportMetricsServiceRequest = decode_json("metrics.json");
    let converted = metrics(&request, &limits(), NOW).expect("converts");
    assert_schema(&converted, Table::Metrics);
    assert_eq!((converted.accepted, converted.rejected), (4, 0));
    let b = batch(&converted);
    let t = Some(1_544_712_660_300_000_000);
    for row in 0..4 {
        assert_eq!(time_at(b, "time", row), t);
        assert_eq!(string(b, "unit", row).as_deref(), Some("1"));
        assert_eq!(u32_at(b, "flags", row), 0);
        assert!(map_at(b, "metric_metadata", row).is_empty());
        assert_resource_and_scope(b, row);
    }

    // Sum
    assert_eq!(string(b, "metric_name", 0).as_deref(), Some("my.counter"));
    assert_eq!(
        string(b, "description", 0).as_deref(),
        Some("I am a Counter")
    );
    assert_eq!(string(b, "metric_type", 0).as_deref(), Some("sum"));
    assert_eq!(string(b, "temporality", 0).as_deref(), Some("delta"));
    let monotonic = b
        .column_by_name("is_monotonic")
        .expect("column")
        .as_boolean();
    assert!(monotonic.is_valid(0) && monotonic.value(0));
    assert_eq!(time_at(b, "start_time", 0), t);
    assert_eq!(f64_at(b, "value", 0), Some(5.0));
    assert_eq!(i64_at(b, "value_int", 0), None);
    assert_eq!(
        map_at(b, "attributes", 0),
        pairs(&[("my.counter.attr", "some value")])
    );
    let expected_series = series_id(
        "my.counter",
        &[("service.name", Some("my.service"))],
        &[("my.counter.attr", Some("some value"))],
    );
    assert_eq!(u64_at(b, "series_id", 0), Some(expected_series));
    let exemplars = b
        .column_by_name("exemplars")
        .expect("column")
        .as_list::<i32>();
    assert!(exemplars.is_valid(0) && exemplars.value(0).is_empty());

    // Gauge
    assert_eq!(string(b, "metric_type", 1).as_deref(), Some("gauge"));
    assert_eq!(string(b, "temporality", 1), None);
    assert!(monotonic.is_null(1));
    assert_eq!(time_at(b, "start_time", 1), None);
    assert_eq!(f64_at(b, "value", 1), Some(10.0));
    assert_ne!(u64_at(b, "series_id", 1), u64_at(b, "series_id", 0));

    // Histogram
    assert_eq!(string(b, "metric_type", 2).as_deref(), Some("histogram"));
    assert_eq!(string(b, "temporality", 2).as_deref(), Some("delta"));
    assert_eq!(f64_at(b, "value", 2), None);
    assert_eq!(u64_at(b, "count", 2), Some(2));
    assert_eq!(f64_at(b, "sum", 2), Some(2.0));
    assert_eq!(f64_at(b, "min", 2), Some(0.0));
    assert_eq!(f64_at(b, "max", 2), Some(2.0));
    assert_eq!(u64_list(b, "bucket_counts", 2), Some(vec![1, 1]));
    let bounds = b
        .column_by_name("explicit_bounds")
        .expect("column")
        .as_list::<i32>();
    assert_eq!(
        bounds
            .value(2)
            .as_primitive::<Float64Type>()
            .values()
            .to_vec(),
        vec![1.0]
    );
    assert_eq!(i32_at(b, "scale", 2), None);

    // Exponential histogram
    assert_eq!(
        string(b, "metric_type", 3).as_deref(),
        Some("exponential_histogram")
    );
    assert_eq!(
        string(b, "description", 3).as_deref(),
        Some("I am an Exponential Histogram")
    );
    assert_eq!(u64_at(b, "count", 3), Some(3));
    assert_eq!(f64_at(b, "sum", 3), Some(10.0));
    assert_eq!(f64_at(b, "min", 3), Some(0.0));
    assert_eq!(f64_at(b, "max", 3), Some(5.0));
    assert_eq!(i32_at(b, "scale", 3), Some(0));
    assert_eq!(u64_at(b, "zero_count", 3), Some(1));
    assert_eq!(f64_at(b, "zero_threshold", 3), Some(0.0));
    assert_eq!(i32_at(b, "positive_offset", 3), Some(1));
    assert_eq!(u64_list(b, "positive_bucket_counts", 3), Some(vec![0, 2]));
    assert_eq!(i32_at(b, "negative_offset", 3), None);
    assert_eq!(u64_list(b, "negative_bucket_counts", 3), None);
    assert_eq!(u64_list(b, "bucket_counts", 3), None);
    assert_eq!(
        map_at(b, "attributes", 3),
        pairs(&[("my.exponential.histogram.attr", "some value")])
    );
}

#[test]
fn protobuf_and_json_encodings_of_the_examples_convert_identically() {
    let request: ExportTraceServiceRequest = decode_json("trace.json");
    let again = ExportTraceServiceRequest::decode(request.encode_to_vec().as_slice()).expect("pb");
    let (a, b) = (
        spans(&request, &limits(), NOW),
        spans(&again, &limits(), NOW),
    );
    assert_eq!(a.expect("a").batch, b.expect("b").batch);

    let request: ExportMetricsServiceRequest = decode_json("metrics.json");
    let again =
        ExportMetricsServiceRequest::decode(request.encode_to_vec().as_slice()).expect("pb");
    let (a, b) = (
        metrics(&request, &limits(), NOW),
        metrics(&again, &limits(), NOW),
    );
    assert_eq!(a.expect("a").batch, b.expect("b").batch);

    for name in ["logs.json", "events.json"] {
        let request: ExportLogsServiceRequest = decode_json(name);
        let again =
            ExportLogsServiceRequest::decode(request.encode_to_vec().as_slice()).expect("pb");
        let (a, b) = (logs(&request, &limits(), NOW), logs(&again, &limits(), NOW));
        assert_eq!(a.expect("a").batch, b.expect("b").batch);
    }
}
