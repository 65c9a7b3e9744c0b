use serde_json::json;

use super::{render_traces, render_waterfall, utc};

#[test]
fn utc_times_are_civil_dates() {
    assert_eq!(utc(0), "1970-01-01 00:00:00.000");
    assert_eq!(utc(1_544_712_660_123_000_000), "2018-12-13 14:51:00.123");
    assert_eq!(utc(1_709_164_800_000_000_000), "2024-02-29 00:00:00.000");
}

#[test]
fn the_waterfall_indents_children_under_their_parents() {
    let span = |id: &str, parent: &str, name: &str, start: i64, end: i64, code: i64| {
        json!({"traceId": "ab", "spanId": id, "parentSpanId": parent, "name": name,
               "startTimeUnixNano": start.to_string(), "endTimeUnixNano": end.to_string(),
               "status": {"code": code}})
    };
    let resource = |service: &str, spans: Vec<serde_json::Value>| {
        json!({"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
               "scopeSpans": [{"spans": spans}]})
    };
    let trace = json!({"resourceSpans": [
        resource("payment", vec![span("02", "01", "charge", 10_000_000, 60_000_000, 2)]),
        resource("gateway", vec![
            span("01", "", "POST /checkout", 0, 100_000_000, 0),
            span("03", "01", "audit", 70_000_000, 80_000_000, 1),
        ]),
        resource("payment", vec![span("04", "02", "INSERT payments", 20_000_000, 30_000_000, 0)]),
    ]});
    let out = render_waterfall(&trace, 10);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("trace ab: 4 spans, 2 services, 100.0 ms"),
        "{out}"
    );
    assert!(lines[2].starts_with("gateway  POST /checkout"), "{out}");
    assert!(
        lines[2].contains("+0.0 ms") && lines[2].contains("|██████████|"),
        "{out}"
    );
    assert!(lines[3].starts_with("payment  └─ charge"), "{out}");
    assert!(
        lines[3].contains("+10.0 ms") && lines[3].contains("50.0 ms"),
        "{out}"
    );
    assert!(
        lines[3].contains("| █████    |") && lines[3].ends_with("error"),
        "{out}"
    );
    assert!(
        lines[4].starts_with("payment     └─ INSERT payments"),
        "{out}"
    );
    assert!(lines[5].starts_with("gateway  └─ audit"), "{out}");
    assert!(lines[5].ends_with("ok"), "{out}");
}

#[test]
fn search_answers_print_as_a_table() {
    let answer = json!({"traces": [
        {"traceID": "abc", "rootServiceName": "gateway", "rootTraceName": "GET /books",
         "startTimeUnixNano": "1544712660000000000", "durationMs": 1500,
         "spanSets": [{"spans": [], "matched": 2}]},
        {"traceID": "def", "rootServiceName": "", "rootTraceName": "",
         "startTimeUnixNano": "1544712600000000000", "durationMs": 12,
         "spanSets": [{"spans": [], "matched": 1}]},
    ]});
    let out = render_traces(&answer);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("TRACE ID  START (UTC)"), "{out}");
    assert!(
        lines[1].starts_with("abc       2018-12-13 14:51:00.000  1.50 s    gateway"),
        "{out}"
    );
    assert!(lines[1].ends_with("GET /books  2"), "{out}");
    assert!(lines[2].contains("<root not yet received>"), "{out}");
    assert_eq!(lines[3], "2 traces");
    assert_eq!(render_traces(&json!({"traces": []})), "no traces match\n");
}
