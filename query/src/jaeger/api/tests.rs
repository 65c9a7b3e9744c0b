use std::collections::HashMap;

use super::{DEFAULT_LIMIT, dependencies_window, search_request, tag_condition};
use crate::traceql::ast::{AttributeScope, CompareOp, Field, FieldExpr, Intrinsic, Literal};
use crate::traceql::sql::condition;

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_search_needs_a_service_and_takes_jaeger_parameters() {
    let now_us = 10_000_000_000;
    assert!(
        search_request(&params(&[]), now_us)
            .unwrap_err()
            .contains("service")
    );
    let request = search_request(&params(&[("service", "payment")]), now_us).unwrap();
    assert_eq!(request.limit, DEFAULT_LIMIT);
    assert_eq!(
        (request.start_us, request.end_us),
        (now_us - 3_600_000_000, now_us)
    );
    assert_eq!(
        condition(Some(&request.condition)),
        "(s.service_name = 'payment')"
    );

    let request = search_request(
        &params(&[
            ("service", "payment"),
            ("operation", "charge"),
            ("tags", r#"{"error":"true","http.status_code":502}"#),
            ("tag", "db.system:postgresql"),
            ("minDuration", "1.5ms"),
            ("maxDuration", "2s"),
            ("start", "100"),
            ("end", "200"),
            ("limit", "5"),
        ]),
        now_us,
    )
    .unwrap();
    assert_eq!(
        (request.start_us, request.end_us, request.limit),
        (100, 200, 5)
    );
    let sql = condition(Some(&request.condition));
    for part in [
        "s.service_name = 'payment'",
        "s.name = 'charge'",
        "s.status_code = 'error'",
        "s.attributes['http.status_code'] = '502'",
        "s.resource_attributes['db.system'] = 'postgresql'",
        "s.duration_ns >= 1500000",
        "s.duration_ns <= 2000000000",
    ] {
        assert!(sql.contains(part), "{part} in {sql}");
    }
}

#[test]
fn bad_search_parameters_say_what_is_wrong() {
    for (pairs, want) in [
        (
            vec![("service", "a"), ("tags", "error=true")],
            "JSON object",
        ),
        (vec![("service", "a"), ("tag", "novalue")], "key:value"),
        (vec![("service", "a"), ("limit", "99999")], "most allowed"),
        (vec![("service", "a"), ("limit", "many")], "whole number"),
        (
            vec![("service", "a"), ("start", "20"), ("end", "10")],
            "before start",
        ),
        (
            vec![("service", "a"), ("start", "0"), ("end", "99999999999999")],
            "shorter range",
        ),
        (vec![("service", "a"), ("minDuration", "5")], "minDuration"),
        (vec![("service", "a"), ("end", "yesterday")], "microseconds"),
        (
            vec![("service", "a"), ("tags", r#"{"error":"maybe"}"#)],
            "true or false",
        ),
    ] {
        let err = search_request(&params(&pairs), 1_000_000).unwrap_err();
        assert!(err.contains(want), "{pairs:?}: {err}");
    }
}

#[test]
fn derived_tags_match_status_and_kind() {
    assert_eq!(
        tag_condition("span.kind", "SERVER").unwrap(),
        FieldExpr::Compare(
            Field::Intrinsic(Intrinsic::Kind),
            CompareOp::Eq,
            Literal::String("server".into())
        )
    );
    assert_eq!(
        tag_condition("otel.status_code", "ERROR").unwrap(),
        FieldExpr::Compare(
            Field::Intrinsic(Intrinsic::Status),
            CompareOp::Eq,
            Literal::String("error".into())
        )
    );
    assert_eq!(
        tag_condition("peer.service", "db").unwrap(),
        FieldExpr::Compare(
            Field::Attribute(AttributeScope::Any, "peer.service".into()),
            CompareOp::Eq,
            Literal::String("db".into())
        )
    );
}

#[test]
fn the_dependency_window_is_in_milliseconds() {
    let p = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        dependencies_window(&p(&[]), 100_000_000),
        Ok((100_000_000 - 86_400_000, 100_000_000))
    );
    assert_eq!(
        dependencies_window(&p(&[("endTs", "5000"), ("lookback", "1000")]), 0),
        Ok((4000, 5000))
    );
    for bad in [
        vec![("lookback", "-1")],
        vec![("endTs", "soon")],
        vec![("lookback", "99999999999999")],
    ] {
        assert!(dependencies_window(&p(&bad), 0).is_err(), "{bad:?}");
    }
}
