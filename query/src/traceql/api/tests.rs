use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderValue, header};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, TracesData};
use prost::Message;

use super::{trace_by_id_response, wants_protobuf, window};

#[test]
fn protobuf_is_chosen_from_the_accept_header() {
    let mut headers = HeaderMap::new();
    assert!(!wants_protobuf(&headers));
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    assert!(!wants_protobuf(&headers));
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("text/html, application/protobuf;q=0.9"),
    );
    assert!(wants_protobuf(&headers));
}

/// Tempo's `TraceByIDResponse`, as Grafana decodes it: the trace is field 1.
#[derive(Clone, PartialEq, Message)]
struct TraceByIdResponse {
    #[prost(message, optional, tag = "1")]
    trace: Option<TracesData>,
}

#[test]
fn v2_protobuf_wraps_the_trace_as_field_one() {
    let trace = TracesData {
        resource_spans: vec![ResourceSpans {
            schema_url: "https://example.com/schema".into(),
            ..Default::default()
        }],
    };
    let decoded = TraceByIdResponse::decode(trace_by_id_response(&trace).as_slice()).unwrap();
    assert_eq!(decoded.trace, Some(trace));
}

#[test]
fn windows_take_unix_seconds_and_refuse_nonsense() {
    let params = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let w = window(&params(&[("start", "1700000000"), ("end", "1700003600")])).unwrap();
    assert_eq!(w.start_ns, Some(1_700_000_000_000_000_000));
    assert_eq!(w.end_ns, Some(1_700_003_600_000_000_000));
    assert_eq!(
        window(&params(&[("start", "0"), ("end", "0")])).unwrap(),
        Default::default()
    );
    assert!(
        window(&params(&[("start", "soon")]))
            .unwrap_err()
            .contains("Unix seconds")
    );
    assert!(window(&params(&[("start", "20"), ("end", "10")])).is_err());
    assert!(
        window(&params(&[("end", "99999999999999")]))
            .unwrap_err()
            .contains("out of range")
    );
}

#[test]
fn legacy_tags_become_one_span_set() {
    use super::tags_pipeline;
    use crate::traceql::ast::{AttributeScope, CompareOp, Field, FieldExpr, Literal, SpansetExpr};
    let pipeline = tags_pipeline(r#"service.name=payment http.route="/cart page""#).unwrap();
    let compare = |k: &str, v: &str| {
        FieldExpr::Compare(
            Field::Attribute(AttributeScope::Any, k.into()),
            CompareOp::Eq,
            Literal::String(v.into()),
        )
    };
    assert_eq!(
        pipeline.spans,
        SpansetExpr::Filter(Some(FieldExpr::And(
            Box::new(compare("service.name", "payment")),
            Box::new(compare("http.route", "/cart page")),
        )))
    );
    assert!(tags_pipeline("no pairs").is_err());
    assert!(tags_pipeline(r#"a="open"#).is_err());
    assert!(
        tags_pipeline("status=error")
            .unwrap_err()
            .contains("TraceQL")
    );
}

#[test]
fn tags_are_decoded_a_second_time() {
    use super::{percent_decode, scoped_tag};
    use crate::traceql::ast::{AttributeScope, Field, Intrinsic};
    assert_eq!(percent_decode("span.db%2Esystem%20x%"), "span.db.system x%");
    assert_eq!(percent_decode("caf%C3%A9"), "café");
    assert_eq!(
        scoped_tag("resource.service.name"),
        Ok(Field::Attribute(
            AttributeScope::Resource,
            "service.name".into()
        ))
    );
    assert_eq!(
        scoped_tag("status"),
        Ok(Field::Intrinsic(Intrinsic::Status))
    );
    assert!(scoped_tag("{}").is_err());
}

#[test]
fn metrics_ranges_take_seconds_or_nanoseconds_and_align_steps() {
    use super::metrics_range;
    let p = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let range = metrics_range(
        &p(&[("start", "1000"), ("end", "1600"), ("step", "60s")]),
        0,
        false,
    )
    .unwrap();
    assert_eq!(
        (range.start_ns, range.end_ns, range.step_ns),
        (960_000_000_000, 1_600_000_000_000, 60_000_000_000)
    );
    let ns = metrics_range(
        &p(&[
            ("start", "1000000000000000000"),
            ("end", "1000000600000000000"),
            ("step", "30"),
        ]),
        0,
        false,
    )
    .unwrap();
    assert_eq!(ns.step_ns, 30_000_000_000);
    assert_eq!(
        ns.start_ns,
        1_000_000_000_000_000_000 - 1_000_000_000_000_000_000 % 30_000_000_000
    );
    let instant = metrics_range(&p(&[("start", "1000"), ("end", "1600")]), 0, true).unwrap();
    assert_eq!(instant.step_ns, 600_000_000_000);
    // Defaults: the last hour, about 100 steps.
    let now = 10_000_000_000_000;
    let default = metrics_range(&p(&[]), now, false).unwrap();
    assert_eq!(default.end_ns, now);
    assert_eq!(default.step_ns, 36_000_000_000);
    for bad in [
        vec![("start", "1600"), ("end", "1000")],
        vec![("start", "soon")],
        vec![("start", "1000"), ("end", "1600"), ("step", "0")],
        vec![("start", "1000"), ("end", "1600"), ("step", "fast")],
        vec![("start", "0"), ("end", "86400"), ("step", "1ms")],
        vec![("start", "0"), ("end", "99999999")],
    ] {
        assert!(metrics_range(&p(&bad), now, false).is_err(), "{bad:?}");
    }
}
