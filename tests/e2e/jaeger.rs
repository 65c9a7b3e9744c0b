//! The Jaeger query API under `/jaeger`, as Grafana's Jaeger data source calls it: Save & test
//! (`/api/services`), the search form (services, operations, `/api/traces` with tags and
//! durations), the trace view (`/api/traces/<id>`) field by field, and the node graph's
//! `/api/dependencies`.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::{Value, json};

use crate::server::TestServer;
use crate::tempo::{BASE_NS, TRACE_ID, get, query_string, search_fixture, search_trace_hex, trace};

async fn post(server: &TestServer, request: &ExportTraceServiceRequest) {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/traces", server.http))
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

async fn jaeger(server: &TestServer, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let path = if params.is_empty() {
        format!("/jaeger{path}")
    } else {
        format!("/jaeger{path}?{}", query_string(params))
    };
    let (status, body) = get(server, &path, None).await;
    let json: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| panic!("{path}: not JSON: {}", String::from_utf8_lossy(&body)));
    (status, json)
}

/// The `data` of a successful answer, after checking the envelope.
async fn data(server: &TestServer, path: &str, params: &[(&str, &str)]) -> Value {
    let (status, json) = jaeger(server, path, params).await;
    assert_eq!(status, 200, "{path} {params:?}: {json}");
    assert_eq!(json["errors"], Value::Null, "{json}");
    assert_eq!(
        json["total"],
        json!(json["data"].as_array().map_or(0, Vec::len))
    );
    json["data"].clone()
}

/// The trace ids of a search answer, in order.
fn ids(traces: &Value) -> Vec<String> {
    traces
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["traceID"].as_str().unwrap().to_owned())
        .collect()
}

fn tag<'a>(tags: &'a Value, key: &str) -> &'a Value {
    tags.as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == key)
        .unwrap_or_else(|| panic!("no tag {key} in {tags}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaeger_search_trace_view_and_dependencies() {
    let server = TestServer::start();
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let base_ns = now_ns - 600 * 1_000_000_000;
    post(&server, &search_fixture(base_ns)).await;
    post(
        &server,
        &ExportTraceServiceRequest {
            resource_spans: trace().resource_spans,
        },
    )
    .await;

    // Save & test, and the search form's drop-downs.
    assert_eq!(
        data(&server, "/api/services", &[]).await,
        json!(["account", "gateway", "payment", "warehouse"])
    );
    assert_eq!(
        data(&server, "/api/services/payment/operations", &[]).await,
        json!(["INSERT payments", "charge"])
    );
    assert_eq!(
        data(&server, "/api/operations", &[("service", "gateway")]).await,
        json!([
            {"name": "GET /books", "spanKind": "server"},
            {"name": "POST /api/checkout", "spanKind": "server"},
            {"name": "POST /checkout", "spanKind": "server"},
            {"name": "payment.authorize", "spanKind": "client"},
        ])
    );
    assert_eq!(
        data(
            &server,
            "/api/operations",
            &[("service", "gateway"), ("spanKind", "client")]
        )
        .await,
        json!([{"name": "payment.authorize", "spanKind": "client"}])
    );

    // Search: each parameter with a case that matches and one that does not.
    let start = (base_ns / 1_000 - 60_000_000).to_string();
    let end = (now_ns / 1_000 + 60_000_000).to_string();
    let window = [("start", start.as_str()), ("end", end.as_str())];
    let (t1, t2, t3) = (
        search_trace_hex(1),
        search_trace_hex(2),
        search_trace_hex(3),
    );
    type Params<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(Params, Vec<&String>)> = vec![
        (vec![("service", "payment")], vec![&t1]),
        (vec![("service", "account")], vec![&t3, &t1]),
        (vec![("service", "account"), ("limit", "1")], vec![&t3]),
        (
            vec![("service", "account"), ("operation", "login")],
            vec![&t3],
        ),
        (
            vec![("service", "account"), ("operation", "logout")],
            vec![],
        ),
        (
            vec![
                ("service", "payment"),
                ("tags", r#"{"http.status_code":"502"}"#),
            ],
            vec![&t1],
        ),
        (
            vec![
                ("service", "payment"),
                ("tags", r#"{"http.status_code":"500"}"#),
            ],
            vec![],
        ),
        (
            vec![("service", "warehouse"), ("tag", "http.status_code:200")],
            vec![&t2],
        ),
        (
            vec![("service", "gateway"), ("tags", r#"{"error":"true"}"#)],
            vec![&t1],
        ),
        (
            vec![("service", "gateway"), ("tags", r#"{"error":"false"}"#)],
            vec![&t2],
        ),
        (
            vec![
                ("service", "payment"),
                ("tag", "span.kind:client"),
                ("tag", "db.system:postgresql"),
            ],
            vec![&t1],
        ),
        (
            vec![("service", "payment"), ("tag", "span.kind:server")],
            vec![],
        ),
        (
            vec![("service", "gateway"), ("minDuration", "1s")],
            vec![&t2],
        ),
        (
            vec![("service", "gateway"), ("maxDuration", "500ms")],
            vec![&t1],
        ),
        (
            vec![
                ("service", "gateway"),
                ("minDuration", "301ms"),
                ("maxDuration", "1.9s"),
            ],
            vec![],
        ),
    ];
    for (params, want) in cases {
        let mut all = params.clone();
        all.extend(window);
        let traces = data(&server, "/api/traces", &all).await;
        let want: Vec<String> = want.into_iter().cloned().collect();
        assert_eq!(ids(&traces), want, "{params:?}");
    }
    // A found trace comes whole: every span, not only the matching one.
    let traces = data(
        &server,
        "/api/traces",
        &[("service", "payment"), ("start", &start), ("end", &end)],
    )
    .await;
    let spans = traces[0]["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 4, "{}", traces[0]);
    let services: Vec<&str> = traces[0]["processes"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p["serviceName"].as_str().unwrap())
        .collect();
    assert_eq!(services.len(), 3, "{services:?}");
    // Outside the window: nothing.
    let traces = data(
        &server,
        "/api/traces",
        &[
            ("service", "payment"),
            ("start", "1000000"),
            ("end", "2000000"),
        ],
    )
    .await;
    assert_eq!(traces, json!([]));

    // The node graph: calls between services (payment → payment is not a dependency).
    let end_ms = (now_ns / 1_000_000).to_string();
    assert_eq!(
        data(
            &server,
            "/api/dependencies",
            &[("endTs", &end_ms), ("lookback", "3600000")]
        )
        .await,
        json!([
            {"parent": "gateway", "child": "account", "callCount": 1},
            {"parent": "gateway", "child": "payment", "callCount": 1},
            {"parent": "gateway", "child": "warehouse", "callCount": 1},
        ])
    );

    // The trace view, from the head and from segments.
    let id = hex::encode(TRACE_ID);
    for phase in ["head", "segments"] {
        if phase == "segments" {
            server.flush().await;
        }
        let traces = data(&server, &format!("/api/traces/{id}"), &[]).await;
        check_trace_view(&traces[0], &id, phase);
        // Grafana's "time range for trace id queries": µs bounds.
        let from = (BASE_NS / 1_000 - 60_000_000).to_string();
        let to = (BASE_NS / 1_000 + 60_000_000).to_string();
        let traces = data(
            &server,
            &format!("/api/traces/{}", id.to_uppercase()),
            &[("start", &from), ("end", &to)],
        )
        .await;
        assert_eq!(traces.as_array().unwrap().len(), 1, "{phase}");
        // Grafana's backend sends that window in milliseconds.
        let from_ms = (BASE_NS / 1_000_000 - 60_000).to_string();
        let to_ms = (BASE_NS / 1_000_000 + 60_000).to_string();
        let traces = data(
            &server,
            &format!("/api/traces/{id}"),
            &[("start", &from_ms), ("end", &to_ms)],
        )
        .await;
        assert_eq!(traces.as_array().unwrap().len(), 1, "{phase}: ms window");
        let (status, json) = jaeger(
            &server,
            &format!("/api/traces/{id}"),
            &[("start", "1000000"), ("end", "2000000")],
        )
        .await;
        assert_eq!(status, 404, "{phase}: outside the window");
        assert_eq!(json["errors"][0]["msg"], json!("trace not found"));
    }
}

fn check_trace_view(trace: &Value, id: &str, phase: &str) {
    assert_eq!(trace["traceID"], json!(id), "{phase}");
    let process = &trace["processes"]["p1"];
    assert_eq!(process["serviceName"], json!("gateway"), "{phase}");
    assert_eq!(
        process["tags"],
        json!([
            {"key": "service.instance.id", "type": "string", "value": "gw-1"},
            {"key": "process.pid", "type": "int64", "value": 4242},
        ]),
        "{phase}"
    );
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 2, "{phase}");
    let root = &spans[0];
    assert_eq!(root["spanID"], json!("0102030405060708"));
    assert_eq!(root["operationName"], json!("POST /api/checkout"));
    assert_eq!(root["startTime"], json!(BASE_NS / 1_000));
    assert_eq!(root["duration"], json!(120_000));
    assert_eq!(root["processID"], json!("p1"));
    assert_eq!(
        root["references"],
        json!([{
            "refType": "FOLLOWS_FROM",
            "traceID": "09090909090909090909090909090909",
            "spanID": "0808080808080808",
        }])
    );
    let tags = &root["tags"];
    for (key, kind, value) in [
        ("http.route", "string", json!("/api/checkout")),
        ("http.response.status_code", "int64", json!(200)),
        ("looks.like.int", "string", json!("200")),
        ("ratio", "float64", json!(0.25)),
        ("whole.double", "float64", json!(3.0)),
        ("cache.hit", "bool", json!(false)),
        ("payload", "binary", json!("AJ+Slg==")),
        ("tags", "string", json!("[\"a\",7,1.0]")),
        ("nested", "string", json!("{\"alpha\":\"x\",\"zeta\":true}")),
        ("otel.scope.name", "string", json!("bookstore.gateway")),
        ("otel.scope.version", "string", json!("2.1.0")),
        ("span.kind", "string", json!("server")),
        ("otel.status_code", "string", json!("ERROR")),
        ("error", "bool", json!(true)),
        ("otel.status_description", "string", json!("card declined")),
        ("w3c.tracestate", "string", json!("lumen=1,vendor=x")),
    ] {
        assert_eq!(
            tag(tags, key),
            &json!({"key": key, "type": kind, "value": value}),
            "{phase}: {key}"
        );
    }
    assert_eq!(
        root["logs"],
        json!([{
            "timestamp": BASE_NS / 1_000 + 5_000,
            "fields": [
                {"key": "event", "type": "string", "value": "cart.loaded"},
                {"key": "items", "type": "int64", "value": 3},
                {"key": "note", "type": "string", "value": "ok"},
            ],
        }])
    );
    let child = &spans[1];
    assert_eq!(child["operationName"], json!("payment.authorize"));
    assert_eq!(
        child["references"],
        json!([{"refType": "CHILD_OF", "traceID": id, "spanID": "0102030405060708"}])
    );
    assert_eq!(
        tag(&child["tags"], "otel.status_code")["value"],
        json!("OK")
    );
    assert!(
        !child["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "error"),
        "{phase}: an OK span has no error tag"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaeger_bad_input_is_a_400_with_a_message() {
    let server = TestServer::start();
    post(&server, &search_fixture(BASE_NS)).await;
    for (path, params, want) in [
        ("/api/traces", vec![], 400),
        (
            "/api/traces",
            vec![("service", "gateway"), ("tags", "not json")],
            400,
        ),
        (
            "/api/traces",
            vec![("service", "gateway"), ("tag", "nocolon")],
            400,
        ),
        (
            "/api/traces",
            vec![("service", "gateway"), ("limit", "1000000")],
            400,
        ),
        (
            "/api/traces",
            vec![("service", "gateway"), ("minDuration", "fast")],
            400,
        ),
        (
            "/api/traces",
            vec![("service", "gateway"), ("start", "20"), ("end", "10")],
            400,
        ),
        (
            "/api/traces",
            vec![
                ("service", "gateway"),
                ("start", "0"),
                ("end", "9999999999999999"),
            ],
            400,
        ),
        ("/api/operations", vec![], 400),
        (
            "/api/operations",
            vec![("service", "gateway"), ("spanKind", "sideways")],
            400,
        ),
        ("/api/traces/not-hex", vec![], 400),
        ("/api/traces/00000000000000000000000000000000", vec![], 400),
        ("/api/traces/0000000000000000000000000000abcd", vec![], 404),
        ("/api/traces/abcd", vec![("start", "yesterday")], 400),
        ("/api/dependencies", vec![("lookback", "-5")], 400),
        ("/api/dependencies", vec![("endTs", "tomorrow")], 400),
    ] {
        let (status, json) = jaeger(&server, path, &params).await;
        assert_eq!(status, want, "{path} {params:?}: {json}");
        assert_eq!(json["data"], Value::Null, "{path}");
        assert_eq!(json["errors"][0]["code"], json!(want), "{path}");
        assert!(
            !json["errors"][0]["msg"].as_str().unwrap().is_empty(),
            "{path}: an error says why"
        );
    }
    // Still up.
    assert_eq!(
        data(&server, "/api/services", &[]).await,
        json!(["account", "gateway", "payment", "warehouse"])
    );
}
