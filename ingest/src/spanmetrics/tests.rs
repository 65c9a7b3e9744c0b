use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, HistogramDataPoint, Metric, NumberDataPoint, exemplar, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use super::{EDGE_WAIT, LATENCY_BUCKETS, SpanMetrics};
use crate::convert::Limits;

fn limits() -> Limits {
    Limits::default()
}

const T0: i64 = 1_700_000_000_000_000_000;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// A span of trace 1: (id, parent, kind, status code, duration ms, attributes).
fn span(id: u8, parent: Option<u8>, kind: i32, status: i32, ms: u64, attrs: Vec<KeyValue>) -> Span {
    let start = T0 as u64;
    Span {
        trace_id: vec![1; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: format!("op{id}"),
        kind,
        start_time_unix_nano: start,
        end_time_unix_nano: start + ms * 1_000_000,
        attributes: attrs,
        status: Some(Status {
            message: String::new(),
            code: status,
        }),
        ..Default::default()
    }
}

fn request(groups: Vec<(&str, Vec<Span>)>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: groups
            .into_iter()
            .map(|(service, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", service)],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                schema_url: String::new(),
            })
            .collect(),
    }
}

fn metric<'a>(out: &'a ExportMetricsServiceRequest, name: &str) -> Option<&'a Metric> {
    out.resource_metrics[0].scope_metrics[0]
        .metrics
        .iter()
        .find(|m| m.name == name)
}

fn labels(attributes: &[KeyValue]) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                other => panic!("label {} is not a string: {other:?}", kv.key),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

/// The delta counter's points as (labels, value), sorted.
fn counts(out: &ExportMetricsServiceRequest, name: &str) -> Vec<(Vec<(String, String)>, i64)> {
    let Some(metric) = metric(out, name) else {
        return Vec::new();
    };
    let Some(metric::Data::Sum(sum)) = &metric.data else {
        panic!("{name} is not a sum");
    };
    assert!(sum.is_monotonic);
    assert_eq!(
        sum.aggregation_temporality,
        AggregationTemporality::Delta as i32
    );
    let mut points: Vec<_> = sum
        .data_points
        .iter()
        .map(|p: &NumberDataPoint| {
            let Some(number_data_point::Value::AsInt(v)) = p.value else {
                panic!("{name}: not an int");
            };
            (labels(&p.attributes), v)
        })
        .collect();
    points.sort();
    points
}

fn histograms<'a>(out: &'a ExportMetricsServiceRequest, name: &str) -> Vec<&'a HistogramDataPoint> {
    let Some(metric::Data::Histogram(h)) = &metric(out, name).expect(name).data else {
        panic!("{name} is not a histogram");
    };
    h.data_points.iter().collect()
}

fn edge(client: &str, server: &str, connection: &str) -> Vec<(String, String)> {
    vec![
        ("client".into(), client.into()),
        ("server".into(), server.into()),
        ("connection_type".into(), connection.into()),
    ]
}

#[test]
fn red_metrics_per_operation_with_tempo_labels() {
    let metrics = SpanMetrics::new();
    let out = metrics
        .derive(
            &request(vec![(
                "gateway",
                vec![
                    span(1, None, 2, 2, 3, vec![]),
                    span(2, Some(1), 1, 0, 300, vec![]),
                ],
            )]),
            &limits(),
            T0,
        )
        .unwrap();
    let s = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_eq!(
        counts(&out, "traces_spanmetrics_calls_total"),
        vec![
            (
                vec![
                    s("service", "gateway"),
                    s("span_name", "op1"),
                    s("span_kind", "SPAN_KIND_SERVER"),
                    s("status_code", "STATUS_CODE_ERROR"),
                ],
                1
            ),
            (
                vec![
                    s("service", "gateway"),
                    s("span_name", "op2"),
                    s("span_kind", "SPAN_KIND_INTERNAL"),
                    s("status_code", "STATUS_CODE_UNSET"),
                ],
                1
            ),
        ]
    );
    let latency = histograms(&out, "traces_spanmetrics_latency");
    let slow = latency
        .iter()
        .find(|p| labels(&p.attributes)[1].1 == "op2")
        .unwrap();
    assert_eq!(slow.explicit_bounds, LATENCY_BUCKETS.to_vec());
    assert_eq!(slow.count, 1);
    assert!((slow.sum.unwrap() - 0.3).abs() < 1e-9);
    // 0.3 s falls in the (0.256, 0.512] bucket.
    let bucket = LATENCY_BUCKETS.iter().position(|b| *b == 0.512).unwrap();
    assert_eq!(slow.bucket_counts[bucket], 1);
    assert_eq!(slow.bucket_counts.iter().sum::<u64>(), 1);
    // The exemplar is the span, with its ids.
    assert_eq!(slow.exemplars.len(), 1);
    assert_eq!(slow.exemplars[0].trace_id, vec![1; 16]);
    assert_eq!(slow.exemplars[0].span_id, vec![2; 8]);
    assert_eq!(
        slow.exemplars[0].value,
        Some(exemplar::Value::AsDouble(0.3))
    );
    // No client/server pair: no service graph.
    assert!(metric(&out, "traces_service_graph_request_total").is_none());
}

#[test]
fn service_graph_edges_pair_across_requests_and_kinds() {
    let metrics = SpanMetrics::new();
    // The gateway's request: its server span, a client call to payment, a producer message,
    // and a call to a database.
    let first = metrics
        .derive(
            &request(vec![(
                "gateway",
                vec![
                    span(1, None, 2, 0, 10, vec![]),
                    span(2, Some(1), 3, 0, 8, vec![]),
                    span(3, Some(1), 4, 0, 1, vec![]),
                    span(
                        4,
                        Some(1),
                        3,
                        0,
                        2,
                        vec![kv("db.system", "postgresql"), kv("db.name", "orders")],
                    ),
                ],
            )]),
            &limits(),
            T0,
        )
        .unwrap();
    assert_eq!(
        counts(&first, "traces_service_graph_request_total"),
        vec![(edge("gateway", "orders", "database"), 1)]
    );
    assert_eq!(
        metrics.pending_edges(),
        2,
        "client and producer halves wait"
    );

    // Payment's server span (failed) and warehouse's consumer span arrive later.
    let second = metrics
        .derive(
            &request(vec![
                ("payment", vec![span(5, Some(2), 2, 2, 6, vec![])]),
                ("warehouse", vec![span(6, Some(3), 5, 0, 4, vec![])]),
            ]),
            &limits(),
            T0 + 1_000_000_000,
        )
        .unwrap();
    assert_eq!(
        counts(&second, "traces_service_graph_request_total"),
        vec![
            (edge("gateway", "payment", ""), 1),
            (edge("gateway", "warehouse", "messaging_system"), 1),
        ]
    );
    assert_eq!(
        counts(&second, "traces_service_graph_request_failed_total"),
        vec![(edge("gateway", "payment", ""), 1)]
    );
    let server = histograms(&second, "traces_service_graph_request_server_seconds");
    let client = histograms(&second, "traces_service_graph_request_client_seconds");
    let payment = |points: &[&HistogramDataPoint]| {
        points
            .iter()
            .find(|p| labels(&p.attributes) == edge("gateway", "payment", ""))
            .map(|p| p.sum.unwrap())
            .unwrap()
    };
    assert!((payment(&server) - 0.006).abs() < 1e-9);
    assert!((payment(&client) - 0.008).abs() < 1e-9);
    assert_eq!(metrics.pending_edges(), 0);
    // Points of the second request come after the first's.
    let time = |out: &ExportMetricsServiceRequest| {
        let Some(metric::Data::Sum(sum)) =
            &metric(out, "traces_spanmetrics_calls_total").unwrap().data
        else {
            panic!()
        };
        sum.data_points[0].time_unix_nano
    };
    assert!(time(&second) > time(&first));
}

#[test]
fn unpaired_halves_expire_and_points_never_share_a_time() {
    let metrics = SpanMetrics::new();
    let call = request(vec![("gateway", vec![span(2, Some(1), 3, 0, 8, vec![])])]);
    let a = metrics.derive(&call, &limits(), T0).unwrap();
    assert_eq!(metrics.pending_edges(), 1);
    // Same clock reading: the next request's points still come later.
    let b = metrics
        .derive(
            &request(vec![("gateway", vec![span(9, None, 1, 0, 1, vec![])])]),
            &limits(),
            T0,
        )
        .unwrap();
    let time = |out: &ExportMetricsServiceRequest| {
        let Some(metric::Data::Sum(sum)) =
            &metric(out, "traces_spanmetrics_calls_total").unwrap().data
        else {
            panic!()
        };
        sum.data_points[0].time_unix_nano
    };
    assert_eq!(time(&b), time(&a) + 1);
    // Past the wait, the half is dropped; the server span arriving then pairs with nothing.
    let late = T0 + EDGE_WAIT.as_nanos() as i64 + 1;
    let c = metrics
        .derive(
            &request(vec![("payment", vec![span(7, Some(6), 1, 0, 1, vec![])])]),
            &limits(),
            late,
        )
        .unwrap();
    assert_eq!(metrics.pending_edges(), 0);
    let d = metrics
        .derive(
            &request(vec![("payment", vec![span(5, Some(2), 2, 0, 6, vec![])])]),
            &limits(),
            late,
        )
        .unwrap();
    assert!(metric(&c, "traces_service_graph_request_total").is_none());
    assert!(metric(&d, "traces_service_graph_request_total").is_none());
    assert_eq!(metrics.pending_edges(), 1, "the late server half now waits");
}

#[test]
fn requests_without_valid_spans_derive_nothing() {
    let metrics = SpanMetrics::new();
    assert!(metrics.derive(&request(vec![]), &limits(), T0).is_none());
    let mut bad = span(1, None, 2, 0, 1, vec![]);
    bad.trace_id = vec![1; 3];
    assert!(
        metrics
            .derive(&request(vec![("gateway", vec![bad])]), &limits(), T0)
            .is_none()
    );
    // Spans the conversion rejects (here: no start time) are not counted either.
    let mut unset = span(1, None, 2, 0, 1, vec![]);
    unset.start_time_unix_nano = 0;
    assert!(
        metrics
            .derive(&request(vec![("gateway", vec![unset])]), &limits(), T0)
            .is_none()
    );
}
