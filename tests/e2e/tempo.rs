//! The Tempo API as Grafana's Tempo data source calls it: Save & test, buildinfo, and trace by id
//! in protobuf (what Grafana's trace view decodes) and JSON, from the head and from segments.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, TracesData};
use prost::Message;
use serde_json::{Value, json};

use crate::examples::post_example;
use crate::server::TestServer;

pub(crate) const TRACE_ID: [u8; 16] = [
    0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36,
];
pub(crate) const BASE_NS: u64 = 1_765_000_000_000_000_000;

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(text: &str) -> any_value::Value {
    any_value::Value::StringValue(text.into())
}

/// Attributes of every OTLP value type, including a string that looks like an int.
fn typed_attributes() -> Vec<KeyValue> {
    vec![
        kv("http.route", s("/api/checkout")),
        kv("http.response.status_code", any_value::Value::IntValue(200)),
        kv("looks.like.int", s("200")),
        kv("ratio", any_value::Value::DoubleValue(0.25)),
        kv("whole.double", any_value::Value::DoubleValue(3.0)),
        kv("cache.hit", any_value::Value::BoolValue(false)),
        kv(
            "payload",
            any_value::Value::BytesValue(vec![0, 159, 146, 150]),
        ),
        kv(
            "tags",
            any_value::Value::ArrayValue(ArrayValue {
                values: vec![
                    AnyValue {
                        value: Some(s("a")),
                    },
                    AnyValue {
                        value: Some(any_value::Value::IntValue(7)),
                    },
                    AnyValue {
                        value: Some(any_value::Value::DoubleValue(1.0)),
                    },
                ],
            }),
        ),
        kv(
            "nested",
            any_value::Value::KvlistValue(KeyValueList {
                values: vec![
                    kv("zeta", any_value::Value::BoolValue(true)),
                    kv("alpha", s("x")),
                ],
            }),
        ),
    ]
}

/// A bookstore checkout trace with every span field set.
pub(crate) fn trace() -> TracesData {
    let root = Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
        trace_state: "lumen=1,vendor=x".into(),
        parent_span_id: Vec::new(),
        flags: 0x301,
        name: "POST /api/checkout".into(),
        kind: SpanKind::Server as i32,
        start_time_unix_nano: BASE_NS,
        end_time_unix_nano: BASE_NS + 120_000_000,
        attributes: typed_attributes(),
        dropped_attributes_count: 2,
        events: vec![Event {
            time_unix_nano: BASE_NS + 5_000_000,
            name: "cart.loaded".into(),
            attributes: vec![
                kv("items", any_value::Value::IntValue(3)),
                kv("note", s("ok")),
            ],
            dropped_attributes_count: 1,
        }],
        dropped_events_count: 4,
        links: vec![Link {
            trace_id: vec![9; 16],
            span_id: vec![8; 8],
            trace_state: "linked=yes".into(),
            attributes: vec![kv("link.weight", any_value::Value::DoubleValue(0.5))],
            dropped_attributes_count: 0,
            flags: 1,
        }],
        dropped_links_count: 5,
        status: Some(Status {
            message: "card declined".into(),
            code: StatusCode::Error as i32,
        }),
    };
    let child = Span {
        span_id: vec![2, 2, 2, 2, 2, 2, 2, 2],
        parent_span_id: root.span_id.clone(),
        trace_state: String::new(),
        flags: 0,
        name: "payment.authorize".into(),
        kind: SpanKind::Client as i32,
        start_time_unix_nano: BASE_NS + 10_000_000,
        end_time_unix_nano: BASE_NS + 90_000_000,
        attributes: vec![kv("peer.service", s("payment"))],
        dropped_attributes_count: 0,
        events: Vec::new(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status: Some(Status {
            message: String::new(),
            code: StatusCode::Ok as i32,
        }),
        ..root.clone()
    };
    TracesData {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", s("gateway")),
                    kv("service.instance.id", s("gw-1")),
                    kv("process.pid", any_value::Value::IntValue(4242)),
                ],
                dropped_attributes_count: 1,
                entity_refs: vec![EntityRef {
                    schema_url: String::new(),
                    r#type: "service".into(),
                    id_keys: vec!["service.name".into()],
                    description_keys: vec!["service.instance.id".into()],
                }],
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "bookstore.gateway".into(),
                    version: "2.1.0".into(),
                    attributes: vec![kv("scope.shard", any_value::Value::IntValue(3))],
                    dropped_attributes_count: 0,
                }),
                spans: vec![root, child],
                schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.29.0".into(),
        }],
    }
}

/// Tempo's `TraceByIDResponse`, decoded the way Grafana decodes it.
#[derive(Clone, PartialEq, Message)]
struct TraceByIdResponse {
    #[prost(message, optional, tag = "1")]
    trace: Option<TracesData>,
}

pub(crate) async fn get(server: &TestServer, path: &str, accept: Option<&str>) -> (u16, Vec<u8>) {
    let mut request = reqwest::Client::new().get(format!("{}{path}", server.http));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let resp = request.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_by_id_returns_every_field_as_sent() {
    let server = TestServer::start();
    let sent = trace();
    let request = ExportTraceServiceRequest {
        resource_spans: sent.resource_spans.clone(),
    };
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/traces", server.http))
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    let id = hex::encode(TRACE_ID);
    for phase in ["head", "segments"] {
        if phase == "segments" {
            server.flush().await;
        }
        // v2 with Grafana's Accept header and time window.
        let start = BASE_NS / 1_000_000_000 - 60;
        let path = format!("/api/v2/traces/{id}?start={start}&end={}", start + 3600);
        let (status, body) = get(&server, &path, Some("application/protobuf")).await;
        assert_eq!(status, 200, "{phase}: {}", String::from_utf8_lossy(&body));
        let got = TraceByIdResponse::decode(body.as_slice()).unwrap();
        assert_eq!(got.trace.as_ref(), Some(&sent), "{phase}: v2 protobuf");

        // v1: the bare trace, and upper-case ids work too.
        let path = format!("/api/traces/{}", id.to_uppercase());
        let (status, body) = get(&server, &path, Some("application/protobuf")).await;
        assert_eq!(status, 200, "{phase}");
        assert_eq!(
            TracesData::decode(body.as_slice()).unwrap(),
            sent,
            "{phase}: v1 protobuf"
        );

        // JSON forms decode back to the same trace (OTLP/JSON: hex ids, string int64s).
        let (status, body) = get(&server, &format!("/api/v2/traces/{id}"), None).await;
        assert_eq!(status, 200);
        let json: Value = serde_json::from_slice(&body).unwrap();
        let decoded: TracesData = serde_json::from_value(json["trace"].clone()).unwrap();
        assert_eq!(decoded, sent, "{phase}: v2 JSON");
        assert_eq!(
            json["trace"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"],
            json!(id)
        );
        let (status, body) = get(&server, &format!("/api/traces/{id}"), None).await;
        assert_eq!(status, 200);
        let json: Value = serde_json::from_slice(&body).unwrap();
        let batches: Vec<ResourceSpans> = serde_json::from_value(json["batches"].clone()).unwrap();
        assert_eq!(batches, sent.resource_spans, "{phase}: v1 JSON");

        // A window that holds none of the trace's spans finds nothing.
        let path = format!("/api/v2/traces/{id}?start=1000000000&end=1000003600");
        let (status, _) = get(&server, &path, Some("application/protobuf")).await;
        assert_eq!(status, 404, "{phase}: window before the trace");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_and_test_buildinfo_and_bad_ids() {
    let server = TestServer::start();
    post_example(&server, "trace.json", "/v1/traces").await;

    let (status, body) = get(&server, "/api/echo", None).await;
    assert_eq!((status, body.as_slice()), (200, b"echo".as_slice()));
    let (status, body) = get(&server, "/api/status/buildinfo", None).await;
    assert_eq!(status, 200);
    let info: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        info["version"].as_str().unwrap().starts_with("2."),
        "{info}"
    );

    // The official example's trace, through the JSON v1 route.
    let (status, body) = get(
        &server,
        "/api/traces/5b8efff798038103d269b633813fc60c",
        None,
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let json: Value = serde_json::from_slice(&body).unwrap();
    let span = &json["batches"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["name"], json!("I'm a server span"));
    assert_eq!(span["spanId"], json!("eee19b7ec3c1b174"));
    assert_eq!(span["startTimeUnixNano"], json!("1544712660000000000"));

    for (path, want) in [
        ("/api/v2/traces/00000000000000000000000000000001", 404),
        ("/api/traces/0000000000000000000000000000abcd", 404),
        ("/api/v2/traces/not-hex", 400),
        ("/api/v2/traces/000000000000000000000000000000000", 400),
        ("/api/v2/traces/00000000000000000000000000000000", 400),
        (
            "/api/v2/traces/5b8efff798038103d269b633813fc60c?start=soon",
            400,
        ),
        (
            "/api/v2/traces/5b8efff798038103d269b633813fc60c?start=20&end=10",
            400,
        ),
        (
            "/api/v2/traces/5b8efff798038103d269b633813fc60c?end=999999999999999999",
            400,
        ),
    ] {
        let (status, body) = get(&server, path, Some("application/protobuf")).await;
        assert_eq!(status, want, "{path}: {}", String::from_utf8_lossy(&body));
        assert!(!body.is_empty(), "{path}: an error says why");
    }
    // Still up after the bad requests.
    let (status, _) = get(&server, "/api/echo", None).await;
    assert_eq!(status, 200);
}

// ---------------------------------------------------------------------------------------------
// Search

/// A span of the search fixture: (trace, span, parent, service, name, kind, status, start ms,
/// duration ms, attributes).
type SpanSpec = (
    u8,
    u8,
    Option<u8>,
    &'static str,
    &'static str,
    SpanKind,
    StatusCode,
    u64,
    u64,
    Vec<KeyValue>,
);

pub(crate) fn search_fixture(base_ns: u64) -> ExportTraceServiceRequest {
    use SpanKind::{Client, Internal, Server};
    use StatusCode::{Error, Ok as Fine, Unset};
    let specs: Vec<SpanSpec> = vec![
        // Trace 1: a failed checkout. gateway → payment (error) → postgres insert; audit beside it.
        (
            1,
            1,
            None,
            "gateway",
            "POST /checkout",
            Server,
            Error,
            0,
            300,
            vec![],
        ),
        (
            1,
            2,
            Some(1),
            "payment",
            "charge",
            Client,
            Error,
            10,
            200,
            vec![kv("http.status_code", any_value::Value::IntValue(502))],
        ),
        (
            1,
            3,
            Some(2),
            "payment",
            "INSERT payments",
            Client,
            Unset,
            20,
            50,
            vec![kv("db.system", s("postgresql"))],
        ),
        (
            1,
            4,
            Some(1),
            "account",
            "audit",
            Internal,
            Unset,
            250,
            20,
            vec![],
        ),
        // Trace 2: a slow book listing.
        (
            2,
            1,
            None,
            "gateway",
            "GET /books",
            Server,
            Fine,
            1_000,
            2_000,
            vec![],
        ),
        (
            2,
            2,
            Some(1),
            "warehouse",
            "stock",
            Client,
            Unset,
            1_100,
            1_500,
            vec![kv("http.status_code", any_value::Value::IntValue(200))],
        ),
        // Trace 3: a login, newest.
        (
            3,
            1,
            None,
            "account",
            "login",
            Server,
            Unset,
            5_000,
            40,
            vec![],
        ),
    ];
    let mut resource_spans = Vec::new();
    for (trace, span, parent, service, name, kind, status, start_ms, duration_ms, attributes) in
        specs
    {
        let start = base_ns + start_ms * 1_000_000;
        resource_spans.push(ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", s(service))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: search_trace_id(trace).to_vec(),
                    span_id: vec![trace, span, 0, 0, 0, 0, 0, 1],
                    parent_span_id: parent
                        .map(|p| vec![trace, p, 0, 0, 0, 0, 0, 1])
                        .unwrap_or_default(),
                    name: name.into(),
                    kind: kind as i32,
                    start_time_unix_nano: start,
                    end_time_unix_nano: start + duration_ms * 1_000_000,
                    attributes,
                    status: Some(Status {
                        message: String::new(),
                        code: status as i32,
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            schema_url: String::new(),
        });
    }
    ExportTraceServiceRequest { resource_spans }
}

fn search_trace_id(n: u8) -> [u8; 16] {
    [0xab, n, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, n]
}

pub(crate) fn search_trace_hex(n: u8) -> String {
    hex::encode(search_trace_id(n))
}

/// `k=v&…` with every byte but unreserved ones percent-encoded.
pub(crate) fn query_string(params: &[(&str, &str)]) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn search_json(server: &TestServer, params: &[(&str, &str)]) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/api/search?{}",
            server.http,
            query_string(params)
        ))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceql_search_features_match_and_do_not_match() {
    let server = TestServer::start();
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let base_ns = now_ns - 600 * 1_000_000_000;
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/traces", server.http))
        .header("content-type", "application/x-protobuf")
        .body(search_fixture(base_ns).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let start = (base_ns / 1_000_000_000 - 60).to_string();
    let end = (base_ns / 1_000_000_000 + 600).to_string();
    let (t1, t2, t3) = (
        search_trace_hex(1),
        search_trace_hex(2),
        search_trace_hex(3),
    );

    let cases: Vec<(&str, Vec<&String>)> = vec![
        (
            r#"{ resource.service.name = "payment" && status = error }"#,
            vec![&t1],
        ),
        (
            r#"{ resource.service.name = "payment" && status = ok }"#,
            vec![],
        ),
        ("{ duration > 1s }", vec![&t2]),
        ("{ duration > 10s }", vec![]),
        ("{ span.http.status_code >= 500 }", vec![&t1]),
        ("{ span.http.status_code < 200 }", vec![]),
        (r#"{ name =~ "GET .*" }"#, vec![&t2]),
        (r#"{ name =~ "GET" }"#, vec![]),
        (r#"{ name !~ ".*o.*" && kind = server }"#, vec![]),
        (
            r#"{ .service.name = "account" && kind = server }"#,
            vec![&t3],
        ),
        ("{ kind = internal }", vec![&t1]),
        ("{ kind = consumer }", vec![]),
        (
            r#"{ statusMessage = "" || status = unset } && { name = "login" }"#,
            vec![&t3],
        ),
        (
            r#"{ resource.service.name = "gateway" } > { resource.service.name = "payment" }"#,
            vec![&t1],
        ),
        (
            r#"{ resource.service.name = "gateway" } > { span.db.system = "postgresql" }"#,
            vec![],
        ),
        (
            r#"{ resource.service.name = "gateway" } >> { span.db.system = "postgresql" }"#,
            vec![&t1],
        ),
        (
            r#"{ resource.service.name = "warehouse" } >> { span.db.system = "postgresql" }"#,
            vec![],
        ),
        (
            r#"{ span.db.system = "postgresql" } << { name = "POST /checkout" }"#,
            vec![&t1],
        ),
        (
            r#"{ span.db.system = "postgresql" } < { name = "charge" }"#,
            vec![&t1],
        ),
        (r#"{ name = "charge" } ~ { name = "audit" }"#, vec![&t1]),
        (r#"{ name = "stock" } ~ { name = "audit" }"#, vec![]),
        (r#"{ name = "charge" } && { name = "stock" }"#, vec![]),
        (
            r#"{ name = "charge" } || { name = "stock" }"#,
            vec![&t2, &t1],
        ),
        (
            r#"({ name = "charge" } || { name = "stock" }) && { kind = internal }"#,
            vec![&t1],
        ),
        (r#"{ trace:rootService = "gateway" }"#, vec![&t2, &t1]),
        (r#"{ trace:rootName = "login" }"#, vec![&t3]),
        ("{ trace:duration > 1s }", vec![&t2]),
        ("{ trace:duration > 1s && kind = internal }", vec![]),
        ("{}", vec![&t3, &t2, &t1]),
        ("{} | count() > 3", vec![&t1]),
        ("{} | count() > 4", vec![]),
        ("{} | avg(duration) > 1s", vec![&t2]),
        ("{} | max(duration) < 100ms", vec![&t3]),
        // Grafana Traces Drilldown's "root spans" and its `&& true`.
        ("{ nestedSetParent < 0 && true }", vec![&t3, &t2, &t1]),
        (r#"{ nestedSetParent < 0 && name = "charge" }"#, vec![]),
        (r#"{ nestedSetParent > -1 && name = "charge" }"#, vec![&t1]),
        ("{ false }", vec![]),
        // by() splits a trace's spans per value; the stages after it count per set.
        ("{} | by(resource.service.name) | count() > 1", vec![&t1]),
        ("{} | by(resource.service.name) | count() > 2", vec![]),
        ("{ status = error } | count() > 1", vec![&t1]),
        ("{ status = error } | by(kind) | count() > 1", vec![]),
        // Only payment's two spans survive the count; coalesce() leaves them as one set of two.
        (
            "{} | by(resource.service.name) | count() > 1 | coalesce() | count() > 1",
            vec![&t1],
        ),
        (
            "{} | by(resource.service.name) | count() > 1 | coalesce() | count() > 2",
            vec![],
        ),
    ];
    let trace_id_query = format!(r#"{{ trace:id = "{}" }}"#, t3.to_uppercase());
    let mut cases = cases;
    cases.push((&trace_id_query, vec![&t3]));
    for (q, want) in &cases {
        let (status, json) =
            search_json(&server, &[("q", q), ("start", &start), ("end", &end)]).await;
        assert_eq!(status, 200, "{q}: {json}");
        let got: Vec<&str> = json["traces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["traceID"].as_str().unwrap())
            .collect();
        let want: Vec<&str> = want.iter().map(|s| s.as_str()).collect();
        assert_eq!(got, want, "{q}");
    }

    // One answer in full: Tempo's field names, root service and name, the matched spans.
    let (_, json) = search_json(
        &server,
        &[
            (
                "q",
                "{ span.http.status_code >= 500 } | select(span.http.status_code)",
            ),
            ("start", &start),
            ("end", &end),
        ],
    )
    .await;
    let trace = &json["traces"][0];
    assert_eq!(trace["rootServiceName"], json!("gateway"));
    assert_eq!(trace["rootTraceName"], json!("POST /checkout"));
    assert_eq!(trace["durationMs"], json!(300));
    assert_eq!(trace["startTimeUnixNano"], json!(base_ns.to_string()));
    let span = &trace["spanSets"][0]["spans"][0];
    assert_eq!(trace["spanSets"][0]["matched"], json!(1));
    assert_eq!(
        span["spanID"],
        json!(hex::encode([1u8, 2, 0, 0, 0, 0, 0, 1]))
    );
    assert_eq!(span["durationNanos"], json!("200000000"));
    assert!(
        span["attributes"]
            .as_array()
            .unwrap()
            .contains(&json!({"key": "http.status_code", "value": {"stringValue": "502"}})),
        "{span}"
    );

    // by(): one span set per service, each naming its value as Tempo does; coalesce() merges
    // them back.
    let by_query = format!(r#"{{ trace:id = "{t1}" }} | by(resource.service.name)"#);
    let (status, json) = search_json(
        &server,
        &[("q", &by_query), ("start", &start), ("end", &end)],
    )
    .await;
    assert_eq!(status, 200, "{json}");
    let sets: Vec<(String, u64)> = json["traces"][0]["spanSets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|set| {
            assert_eq!(
                set["attributes"][0]["key"],
                json!("by(resource.service.name)"),
                "{set}"
            );
            (
                set["attributes"][0]["value"]["stringValue"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                set["matched"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sets,
        [
            ("account".to_string(), 1),
            ("gateway".to_string(), 1),
            ("payment".to_string(), 2)
        ]
    );
    let (_, json) = search_json(
        &server,
        &[
            ("q", &format!("{by_query} | coalesce()")),
            ("start", &start),
            ("end", &end),
        ],
    )
    .await;
    let sets = json["traces"][0]["spanSets"].as_array().unwrap();
    assert_eq!(sets.len(), 1, "{json}");
    assert_eq!(sets[0]["matched"], json!(4));
    assert!(sets[0].get("attributes").is_none(), "{json}");

    // spss caps the spans per set, limit the traces (newest first), minDuration filters traces.
    let (_, json) = search_json(
        &server,
        &[
            ("q", "{}"),
            ("spss", "2"),
            ("limit", "2"),
            ("start", &start),
            ("end", &end),
        ],
    )
    .await;
    let traces = json["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 2);
    assert_eq!(
        traces[1]["spanSets"][0]["spans"].as_array().unwrap().len(),
        2
    );
    assert_eq!(traces[1]["spanSets"][0]["matched"], json!(2));
    let (_, json) = search_json(
        &server,
        &[("minDuration", "1.5s"), ("start", &start), ("end", &end)],
    )
    .await;
    assert_eq!(json["traces"].as_array().unwrap().len(), 1, "{json}");
    assert_eq!(json["traces"][0]["traceID"], json!(t2));
    // The legacy logfmt tags.
    let (_, json) = search_json(
        &server,
        &[
            ("tags", "service.name=payment"),
            ("start", &start),
            ("end", &end),
        ],
    )
    .await;
    assert_eq!(json["traces"][0]["traceID"], json!(t1), "{json}");
    assert_eq!(json["traces"].as_array().unwrap().len(), 1);

    // Tags for the TraceQL editor: v2 by scope with the intrinsics, v1 flat.
    let window = [("start", start.as_str()), ("end", end.as_str())];
    let tags = |path: &'static str, extra: Vec<(&'static str, &'static str)>| {
        let mut params: Vec<(&str, &str)> = window.to_vec();
        params.extend(extra);
        let server = &server;
        async move {
            let resp = reqwest::Client::new()
                .get(format!("{}{path}?{}", server.http, query_string(&params)))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            (
                status,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)),
            )
        }
    };
    let (status, json) = tags("/api/v2/search/tags", vec![]).await;
    assert_eq!(status, 200, "{json}");
    let scope = |name: &str| -> Vec<String> {
        json["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == json!(name))
            .map(|s| serde_json::from_value(s["tags"].clone()).unwrap())
            .unwrap_or_default()
    };
    assert_eq!(scope("resource"), ["service.name"]);
    assert_eq!(scope("span"), ["db.system", "http.status_code"]);
    assert!(scope("intrinsic").contains(&"duration".to_string()));
    let (_, json) = tags("/api/v2/search/tags", vec![("scope", "span")]).await;
    assert_eq!(json["scopes"].as_array().unwrap().len(), 1, "{json}");
    let (_, json) = tags("/api/search/tags", vec![]).await;
    assert_eq!(
        json,
        json!({"tagNames": ["db.system", "http.status_code", "service.name"]})
    );

    // Values: typed in v2 (the int attribute as int), narrowed by q; the tag is URL-encoded twice.
    let (status, json) = tags("/api/v2/search/tag/resource.service.name/values", vec![]).await;
    assert_eq!(status, 200, "{json}");
    let services: Vec<&str> = json["tagValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["account", "gateway", "payment", "warehouse"]);
    let (_, json) = tags("/api/v2/search/tag/span.http.status_code/values", vec![]).await;
    assert_eq!(
        json,
        json!({"tagValues": [{"type": "int", "value": "200"}, {"type": "int", "value": "502"}]})
    );
    let (_, json) = tags(
        "/api/v2/search/tag/span.http.status_code/values",
        vec![("q", r#"{ resource.service.name = "payment" }"#)],
    )
    .await;
    assert_eq!(
        json,
        json!({"tagValues": [{"type": "int", "value": "502"}]})
    );
    let (_, json) = tags("/api/v2/search/tag/status/values", vec![]).await;
    let statuses: Vec<&str> = json["tagValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["error", "ok", "unset"]);
    let (status, json) = tags("/api/v2/search/tag/span.db%252Esystem/values", vec![]).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["tagValues"][0]["value"], json!("postgresql"));
    let (_, json) = tags("/api/search/tag/service.name/values", vec![]).await;
    assert_eq!(json["tagValues"].as_array().unwrap().len(), 4, "{json}");
    for path in [
        "/api/v2/search/tag/%7B%7D/values",
        "/api/v2/search/tag/duration/values",
    ] {
        let (status, json) = tags(path, vec![]).await;
        assert_eq!(status, 400, "{path}: {json}");
    }
    let (status, _) = tags("/api/v2/search/tags", vec![("scope", "bogus")]).await;
    assert_eq!(status, 400);

    // Bad input: 400 with a message, and the server stays up.
    for params in [
        vec![("q", "{ foo = 1 }")],
        vec![("q", "{ span.a = ")],
        vec![("q", "{} | rate()")],
        vec![("q", "{ span.a + 1 = 2 }")],
        vec![("q", "{} | by()")],
        vec![("q", "{ nestedSetParent = 3 }")],
        vec![("limit", "100000000")],
        vec![("spss", "-1")],
        vec![("start", "20"), ("end", "10")],
        vec![("start", "1"), ("end", "1700000000")],
        vec![("minDuration", "soon")],
        vec![("tags", "no pairs here")],
    ] {
        let (status, json) = search_json(&server, &params).await;
        assert_eq!(status, 400, "{params:?}: {json}");
        assert!(
            json.as_str().is_some_and(|m| !m.is_empty()),
            "{params:?}: {json}"
        );
    }
    let (status, _) = get(&server, "/api/echo", None).await;
    assert_eq!(status, 200);
}

// ---------------------------------------------------------------------------------------------
// TraceQL metrics

async fn metrics_json(server: &TestServer, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let (status, body) = get(server, &format!("{path}?{}", query_string(params)), None).await;
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    (status, json)
}

/// Series of a query_range answer as label text → (sum of sample values, sample count).
fn series_sums(json: &Value) -> std::collections::BTreeMap<String, (f64, usize)> {
    json["series"]
        .as_array()
        .unwrap_or_else(|| panic!("{json}"))
        .iter()
        .map(|s| {
            let labels: Vec<String> = s["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    format!(
                        "{}={}",
                        l["key"].as_str().unwrap(),
                        l["value"]["stringValue"].as_str().unwrap()
                    )
                })
                .collect();
            let samples = s["samples"].as_array().unwrap();
            for sample in samples {
                assert!(
                    sample["timestampMs"]
                        .as_str()
                        .unwrap()
                        .parse::<i64>()
                        .is_ok(),
                    "{sample}"
                );
            }
            let sum = samples.iter().map(|x| x["value"].as_f64().unwrap()).sum();
            (labels.join(","), (sum, samples.len()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceql_metrics_count_rate_quantiles_and_histograms() {
    let server = TestServer::start();
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let base_ns = now_ns - 600 * 1_000_000_000;
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/traces", server.http))
        .header("content-type", "application/x-protobuf")
        .body(search_fixture(base_ns).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let start = (base_ns / 1_000_000_000 - 60).to_string();
    let end = (base_ns / 1_000_000_000 + 600).to_string();
    let range = |q: &'static str| {
        vec![
            ("q", q),
            ("start", start.as_str()),
            ("end", end.as_str()),
            ("step", "60s"),
        ]
    };

    let (status, json) = metrics_json(
        &server,
        "/api/metrics/query_range",
        &range("{ } | count_over_time()"),
    )
    .await;
    assert_eq!(status, 200, "{json}");
    let sums = series_sums(&json);
    assert_eq!(sums.len(), 1, "{json}");
    let (total, samples) = sums[""];
    assert_eq!(total, 7.0, "every span counted once");
    assert!(
        samples >= 11,
        "a sample per step, zeros included: {samples}"
    );

    let (_, json) = metrics_json(
        &server,
        "/api/metrics/query_range",
        &range(r#"{ resource.service.name = "payment" } | count_over_time() by (name)"#),
    )
    .await;
    let sums = series_sums(&json);
    assert_eq!(
        sums.keys().collect::<Vec<_>>(),
        ["name=INSERT payments", "name=charge"],
        "{json}"
    );
    assert!(sums.values().all(|(n, _)| *n == 1.0));

    // rate() is per second of step: summed over 60 s steps it gives the counts back.
    let (_, json) = metrics_json(
        &server,
        "/api/metrics/query_range",
        &range("{ } | rate() by (resource.service.name)"),
    )
    .await;
    let sums = series_sums(&json);
    let counts: Vec<(String, f64)> = sums
        .iter()
        .map(|(k, (v, _))| (k.clone(), (v * 60.0).round()))
        .collect();
    assert_eq!(
        counts,
        vec![
            ("resource.service.name=account".to_string(), 2.0),
            ("resource.service.name=gateway".to_string(), 2.0),
            ("resource.service.name=payment".to_string(), 2.0),
            ("resource.service.name=warehouse".to_string(), 1.0),
        ]
    );

    // Quantiles within the power-of-two bucket of the 2 s span: (1.07 s, 2.15 s].
    let (_, json) = metrics_json(
        &server,
        "/api/metrics/query_range",
        &range(r#"{ name = "GET /books" } | quantile_over_time(duration, 0.5, 0.99)"#),
    )
    .await;
    let sums = series_sums(&json);
    assert_eq!(
        sums.keys().collect::<Vec<_>>(),
        ["p=0.5", "p=0.99"],
        "{json}"
    );
    for (p, (v, n)) in &sums {
        assert_eq!(*n, 1, "{p}: one step holds the span");
        assert!(*v > 1.07 && *v <= 2.15, "{p}: {v}");
    }
    // Not matching: nothing.
    let (_, json) = metrics_json(
        &server,
        "/api/metrics/query_range",
        &range(r#"{ name = "GET /nothing" } | quantile_over_time(duration, 0.5)"#),
    )
    .await;
    assert_eq!(json["series"], json!([]), "{json}");

    let (_, json) = metrics_json(
        &server,
        "/api/metrics/query_range",
        &range(r#"{ resource.service.name = "gateway" } | histogram_over_time(duration)"#),
    )
    .await;
    let sums = series_sums(&json);
    assert_eq!(
        sums.keys().collect::<Vec<_>>(),
        ["__bucket=0.536870912", "__bucket=2.147483648"],
        "300 ms and 2 s in their power-of-two buckets: {json}"
    );

    let (_, json) = metrics_json(
        &server,
        "/api/metrics/query_range",
        &range("{ } | max_over_time(duration) by (resource.service.name)"),
    )
    .await;
    let sums = series_sums(&json);
    assert_eq!(sums["resource.service.name=gateway"].0, 2.0, "{json}");
    assert_eq!(sums["resource.service.name=warehouse"].0, 1.5, "{json}");

    // Instant: one value per series over the whole range.
    let (status, json) = metrics_json(
        &server,
        "/api/metrics/query",
        &[
            (
                "q",
                "{ status = error } | count_over_time() by (resource.service.name)",
            ),
            ("start", start.as_str()),
            ("end", end.as_str()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{json}");
    let mut values: Vec<(String, f64)> = json["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["labels"][0]["value"]["stringValue"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                s["value"].as_f64().unwrap(),
            )
        })
        .collect();
    values.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        values,
        vec![("gateway".to_string(), 1.0), ("payment".to_string(), 1.0)]
    );

    for (params, want) in [
        (vec![], "q is required"),
        (vec![("q", "{ }")], "metrics function"),
        (vec![("q", "{ } >> { } | rate()")], "span-set operators"),
        (vec![("q", "{ } | rate("), ("start", "1")], "expected"),
        (
            vec![
                ("q", "{ } | rate()"),
                ("start", "0"),
                ("end", "86400"),
                ("step", "1ms"),
            ],
            "step",
        ),
        (
            vec![("q", "{ } | rate()"), ("start", "100"), ("end", "50")],
            "after start",
        ),
    ] {
        let (status, json) = metrics_json(&server, "/api/metrics/query_range", &params).await;
        assert_eq!(status, 400, "{params:?}: {json}");
        assert!(
            json.as_str().unwrap_or_default().contains(want),
            "{params:?}: {json}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// At the terminal

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lumen_traces_lists_and_lumen_trace_draws_the_waterfall() {
    let server = TestServer::start();
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let base_ns = now_ns - 600 * 1_000_000_000;
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/traces", server.http))
        .header("content-type", "application/x-protobuf")
        .body(search_fixture(base_ns).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let lumen = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lumen"))
            .args(args)
            .args(["--server", &server.http])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (code, out, err) = lumen(&["traces", "{ status = error }", "--since", "1h"]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("TRACE ID"), "{out}");
    assert_eq!(lines.len(), 3, "one trace and the count: {out}");
    assert!(lines[1].starts_with(&search_trace_hex(1)), "{out}");
    assert!(
        lines[1].contains("gateway") && lines[1].contains("POST /checkout"),
        "{out}"
    );
    assert!(lines[1].contains("300.0 ms"), "{out}");
    let (code, out, _) = lumen(&["traces", r#"{ name = "nothing" }"#]);
    assert_eq!((code, out.as_str()), (Some(0), "no traces match\n"));
    let (code, _, err) = lumen(&["traces", "{ status = }"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("HTTP 400"), "{err}");

    let (code, out, err) = lumen(&["trace", &search_trace_hex(1)]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("4 spans, 3 services, 300.0 ms"), "{out}");
    assert!(lines[2].starts_with("gateway  POST /checkout"), "{out}");
    assert!(lines[3].starts_with("payment  └─ charge"), "{out}");
    assert!(
        lines[3].contains("+10.0 ms") && lines[3].ends_with("error"),
        "{out}"
    );
    assert!(
        lines[4].starts_with("payment     └─ INSERT payments"),
        "{out}"
    );
    assert!(lines[5].starts_with("account  └─ audit"), "{out}");
    let (code, _, err) = lumen(&["trace", "0000000000000000000000000000beef"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("HTTP 404"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Grafana's requests, replayed as its Tempo and Jaeger data sources send them (grafana/grafana:
// tempo `datasource.ts`, `language_provider.ts`, pkg/tsdb/tempo `trace.go`, `search.go`,
// `traceql_query.go`; jaeger `datasource.ts`), checked for the fields Grafana's decoders need.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_tempo_and_jaeger_data_source_requests_replayed() {
    let server = TestServer::start();
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let base_ns = now_ns - 600 * 1_000_000_000;
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/traces", server.http))
        .header("content-type", "application/x-protobuf")
        .body(search_fixture(base_ns).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (start, end) = (now_ns / 1_000_000_000 - 3600, now_ns / 1_000_000_000 + 60);
    let json = |body: &[u8]| -> Value { serde_json::from_slice(body).unwrap() };

    // Tempo: Save & test, then buildinfo for the feature checks.
    let (status, body) = get(&server, "/api/echo", None).await;
    assert_eq!((status, body.as_slice()), (200, b"echo".as_slice()));
    let (_, body) = get(&server, "/api/status/buildinfo", None).await;
    let version = json(&body)["version"].as_str().unwrap().to_owned();
    assert!(
        version.as_str() >= "2.7.0",
        "metrics need Tempo ≥ 2.7: {version}"
    );

    // The editor's autocomplete: tags v2 (no scope parameter), values double-encoded, with q.
    let (status, body) = get(
        &server,
        &format!("/api/v2/search/tags?limit=5000&start={start}&end={end}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let scopes = json(&body)["scopes"].clone();
    let names: Vec<&str> = scopes
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"resource") && names.contains(&"span") && names.contains(&"intrinsic"));
    let q = query_string(&[("q", r#"{ status = error }"#)]);
    let (status, body) = get(
        &server,
        &format!(
            "/api/v2/search/tag/resource.service.name/values?limit=5000&start={start}&end={end}&{q}"
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        json(&body)["tagValues"],
        json!([{"type": "string", "value": "gateway"}, {"type": "string", "value": "payment"}])
    );

    // Search from the code editor: q, limit, spss, start, end in that order.
    let q = query_string(&[("q", r#"{resource.service.name="payment" && status=error}"#)]);
    let (status, body) = get(
        &server,
        &format!("/api/search?{q}&limit=20&spss=3&start={start}&end={end}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let answer = json(&body);
    let trace = &answer["traces"][0];
    assert_eq!(trace["traceID"], json!(search_trace_hex(1)));
    assert!(trace["startTimeUnixNano"].is_string(), "{trace}");
    assert!(trace["durationMs"].is_number(), "{trace}");
    let span = &trace["spanSets"][0]["spans"][0];
    assert!(
        span["startTimeUnixNano"].is_string() && span["durationNanos"].is_string(),
        "{span}"
    );
    for attribute in span["attributes"].as_array().unwrap() {
        assert!(
            attribute["value"]["stringValue"].is_string(),
            "Grafana's decoder takes string values here: {attribute}"
        );
    }

    // The trace view: v2 with Accept: application/protobuf (and the time range when set).
    let id = search_trace_hex(1);
    let (status, body) = get(
        &server,
        &format!("/api/v2/traces/{id}?start={start}&end={end}"),
        Some("application/protobuf"),
    )
    .await;
    assert_eq!(status, 200);
    let trace = TraceByIdResponse::decode(body.as_slice())
        .unwrap()
        .trace
        .unwrap();
    let spans: usize = trace
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    assert_eq!(spans, 4);
    // An unknown id: 404 on v2, then Grafana's fallback to v1, also 404.
    let missing = "00000000000000000000000000000bad";
    for path in [
        format!("/api/v2/traces/{missing}"),
        format!("/api/traces/{missing}"),
    ] {
        let (status, _) = get(&server, &path, Some("application/protobuf")).await;
        assert_eq!(status, 404, "{path}");
    }

    // TraceQL metrics from Explore: q, start, end (seconds) and step as typed.
    let q = query_string(&[("q", "{ } | rate() by (resource.service.name)")]);
    let (status, body) = get(
        &server,
        &format!("/api/metrics/query_range?{q}&start={start}&end={end}&step=60s"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let answer = json(&body);
    let series = answer["series"].as_array().unwrap();
    assert_eq!(series.len(), 4, "{answer}");
    for s in series {
        assert!(s["labels"][0]["value"]["stringValue"].is_string(), "{s}");
        assert!(s["samples"][0]["timestampMs"].is_string(), "{s}");
        assert!(s["samples"][0]["value"].is_number(), "{s}");
    }

    // Jaeger: Save & test needs a non-empty service list.
    let (status, body) = get(&server, "/jaeger/api/services", None).await;
    assert_eq!(status, 200);
    assert!(!json(&body)["data"].as_array().unwrap().is_empty());
    let (status, body) = get(&server, "/jaeger/api/services/payment/operations", None).await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["data"], json!(["INSERT payments", "charge"]));
    // Search as the form sends it: µs times, tags as a JSON string, lookback=custom.
    let params = query_string(&[
        ("service", "payment"),
        ("tags", r#"{"error":"true"}"#),
        ("limit", "20"),
        ("start", &(start * 1_000_000).to_string()),
        ("end", &(end * 1_000_000).to_string()),
        ("lookback", "custom"),
    ]);
    let (status, body) = get(&server, &format!("/jaeger/api/traces?{params}"), None).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let traces = json(&body)["data"].clone();
    assert_eq!(traces.as_array().unwrap().len(), 1, "{traces}");
    let trace = &traces[0];
    for span in trace["spans"].as_array().unwrap() {
        let process = span["processID"].as_str().unwrap();
        assert!(trace["processes"][process].is_object(), "{trace}");
        assert!(
            span["logs"].is_array() && span["startTime"].is_u64(),
            "{span}"
        );
    }
    // The trace view, with the µs window the browser adds.
    let (status, body) = get(
        &server,
        &format!(
            "/jaeger/api/traces/{id}?start={}&end={}",
            start * 1_000_000,
            end * 1_000_000
        ),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["data"][0]["spans"].as_array().unwrap().len(), 4);
    // The node graph.
    let (status, body) = get(
        &server,
        &format!(
            "/jaeger/api/dependencies?endTs={}&lookback=3600000",
            end * 1_000
        ),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["data"].as_array().unwrap().len(), 3);
}
