//! Bad input from outside: each gets its status code and a message, the server stays up, and the
//! valid items of a partly valid request are kept.

use std::io::Write;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::json;

use crate::server::TestServer;

const NOW: u64 = 1_764_000_000_000_000_000;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn span(trace: u8, span: u8, name: &str) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![span; 8],
        name: name.into(),
        start_time_unix_nano: NOW,
        end_time_unix_nano: NOW + 1000,
        ..Default::default()
    }
}

fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "bad-input")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn post(
    server: &TestServer,
    path: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", server.http))
        .header("content-type", content_type)
        .body(body);
    if let Some(enc) = encoding {
        req = req.header("content-encoding", enc);
    }
    let resp = req.send().await.expect("server reachable");
    let status = resp.status().as_u16();
    (status, resp.bytes().await.unwrap().to_vec())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

async fn assert_alive(server: &TestServer) {
    let resp = reqwest::get(format!("{}/health", server.http))
        .await
        .expect("server still up");
    assert_eq!(resp.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_bodies_get_400_415_413() {
    let server = TestServer::start_with(&["--max-body-size", "64KiB"]);
    let proto = "application/x-protobuf";

    let (status, _) = post(
        &server,
        "/v1/traces",
        proto,
        None,
        vec![0xff, 0xff, 0xff, 0x01, 0x02],
    )
    .await;
    assert_eq!(status, 400, "garbage protobuf");

    let (status, body) = post(
        &server,
        "/v1/traces",
        "application/json",
        None,
        b"{\"resourceSpans\": [".to_vec(),
    )
    .await;
    assert_eq!(status, 400, "truncated JSON");
    let msg: serde_json::Value =
        serde_json::from_slice(&body).expect("JSON error body for a JSON request");
    assert!(
        msg["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{msg}"
    );

    let good = request(vec![span(1, 1, "ok")]).encode_to_vec();
    let mut truncated = gzip(&good);
    truncated.truncate(truncated.len() / 2);
    let (status, _) = post(&server, "/v1/traces", proto, Some("gzip"), truncated).await;
    assert_eq!(status, 400, "truncated gzip");

    let (status, _) = post(&server, "/v1/traces", "text/plain", None, good.clone()).await;
    assert_eq!(status, 415, "wrong content type");

    let (status, _) = post(&server, "/v1/traces", proto, Some("br"), good.clone()).await;
    assert!(
        status == 415 || status == 400,
        "unsupported content encoding: {status}"
    );

    let (status, _) = post(&server, "/v1/logs", proto, None, vec![0u8; 200 * 1024]).await;
    assert_eq!(status, 413, "oversized body");

    // A small gzip body that inflates past the limit.
    let (status, _) = post(
        &server,
        "/v1/logs",
        proto,
        Some("gzip"),
        gzip(&vec![0u8; 1 << 20]),
    )
    .await;
    assert_eq!(status, 413, "gzip bomb");

    // Invalid UTF-8 in a protobuf string field.
    let mut bad_utf8 = request(vec![span(2, 2, "XXXXXXXX")]).encode_to_vec();
    let at = bad_utf8.windows(8).position(|w| w == b"XXXXXXXX").unwrap();
    bad_utf8[at..at + 8].copy_from_slice(&[0xff, 0xfe, 0xfd, 0xfc, 0xc0, 0x80, 0xff, 0xff]);
    let (status, _) = post(&server, "/v1/traces", proto, None, bad_utf8).await;
    assert_eq!(status, 400, "invalid UTF-8 in protobuf");

    let mut json_bad_utf8 = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"XX","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#.to_vec();
    let at = json_bad_utf8.windows(2).position(|w| w == b"XX").unwrap();
    json_bad_utf8[at] = 0xff;
    let (status, _) = post(
        &server,
        "/v1/traces",
        "application/json",
        None,
        json_bad_utf8,
    )
    .await;
    assert_eq!(status, 400, "invalid UTF-8 in JSON");

    assert_alive(&server).await;
    // Nothing from the refused requests was stored.
    let count = server.sql("SELECT count(*) FROM spans").await;
    assert_eq!(count["rows"][0][0], json!(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partly_valid_requests_keep_the_valid_items() {
    let server = TestServer::start();
    let mut short_trace = span(3, 3, "short-trace-id");
    short_trace.trace_id = vec![3; 5];
    let zero_span = span(4, 0, "zero-span-id");
    let mut far_future = span(5, 5, "far-future");
    far_future.start_time_unix_nano = u64::MAX - 10;
    far_future.end_time_unix_nano = u64::MAX - 5;
    let mut many_attrs = span(6, 6, "many-attributes");
    many_attrs.attributes = (0..5000).map(|i| kv(&format!("k{i}"), "v")).collect();
    let spans = vec![
        span(7, 7, "valid-1"),
        short_trace,
        zero_span,
        far_future,
        many_attrs,
        span(8, 8, "valid-2"),
    ];
    let body = request(spans).encode_to_vec();
    let (status, resp) = post(&server, "/v1/traces", "application/x-protobuf", None, body).await;
    assert_eq!(status, 200);
    let resp = ExportTraceServiceResponse::decode(resp.as_slice()).expect("protobuf response");
    let partial = resp.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 3);
    assert!(!partial.error_message.is_empty());

    let rows = server.sql_rows("SELECT name, dropped_attributes_count, cardinality(map_keys(attributes)) AS kept FROM spans ORDER BY name").await;
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["many-attributes", "valid-1", "valid-2"]);
    assert_eq!(rows[0]["kept"], json!(128));
    assert_eq!(rows[0]["dropped_attributes_count"], json!(5000 - 128));

    // The same over gRPC: partial success in the response, valid items kept.
    let mut client = TraceServiceClient::connect(server.grpc.clone())
        .await
        .expect("gRPC connect");
    let mut bad = span(9, 9, "grpc-bad");
    bad.span_id = vec![1, 2, 3];
    let resp = client
        .export(request(vec![bad, span(10, 10, "grpc-valid")]))
        .await
        .expect("gRPC export")
        .into_inner();
    assert_eq!(
        resp.partial_success
            .expect("partial success")
            .rejected_spans,
        1
    );
    let rows = server
        .sql_rows("SELECT name FROM spans WHERE name LIKE 'grpc-%'")
        .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], json!("grpc-valid"));
    assert_alive(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_retryable_not_fatal() {
    // A head limit far below one request: every write is refused with 503 + Retry-After.
    let server = TestServer::start_with(&["--max-head-size", "1KiB"]);
    let body = request(vec![span(11, 11, "too-much")]).encode_to_vec();
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/traces", server.http))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert!(
        resp.headers().get("retry-after").is_some(),
        "Retry-After header"
    );
    let mut client = TraceServiceClient::connect(server.grpc.clone())
        .await
        .expect("gRPC connect");
    let err = client
        .export(request(vec![span(12, 12, "too-much")]))
        .await
        .expect_err("refused");
    assert!(
        matches!(
            err.code(),
            tonic::Code::Unavailable | tonic::Code::ResourceExhausted
        ),
        "{err:?}"
    );
    assert_alive(&server).await;
}
