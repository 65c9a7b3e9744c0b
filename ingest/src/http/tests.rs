use std::io::Write as _;

use axum::http::HeaderValue;
use flate2::Compression;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::*;
use axum::body::Bytes;

fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(
            name.clone(),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    map
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).expect("write");
    encoder.finish().expect("finish")
}

fn status_of(error: &IngestError) -> u16 {
    error.http_status().as_u16()
}

#[test]
fn content_type_decides_the_encoding() {
    let ct = |v: &str| body_encoding(&headers(&[(header::CONTENT_TYPE, v)]));
    assert_eq!(ct("application/x-protobuf").ok(), Some(Encoding::Protobuf));
    assert_eq!(
        ct("application/json; charset=utf-8").ok(),
        Some(Encoding::Json)
    );
    assert_eq!(ct("Application/JSON").ok(), Some(Encoding::Json));
    for bad in ["text/plain", "application/grpc", ""] {
        let err = ct(bad).unwrap_err();
        assert_eq!(status_of(&err), 415, "{bad}");
    }
    let err = body_encoding(&HeaderMap::new()).unwrap_err();
    assert_eq!(status_of(&err), 415);
}

#[test]
fn content_encoding_gzip_identity_or_415() {
    let ce = |v: &str| is_gzip(&headers(&[(header::CONTENT_ENCODING, v)]));
    assert!(ce("gzip").expect("gzip"));
    assert!(ce("GZIP").expect("gzip"));
    assert!(!ce("identity").expect("identity"));
    assert!(!is_gzip(&HeaderMap::new()).expect("none"));
    assert_eq!(status_of(&ce("br").unwrap_err()), 415);
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let err = read_body(&HeaderMap::new(), Body::from(vec![0u8; 11]), 10)
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 413);
    let declared = headers(&[(header::CONTENT_LENGTH, "1000")]);
    let err = read_body(&declared, Body::from(vec![0u8; 5]), 10)
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 413);
    let ok = read_body(&HeaderMap::new(), Body::from(vec![7u8; 10]), 10)
        .await
        .expect("fits");
    assert_eq!(ok.len(), 10);
}

#[test]
fn gzip_is_capped_and_validated() {
    let data = vec![b'a'; 10_000];
    let compressed = gzip(&data);
    assert_eq!(gunzip(&compressed, 10_000).expect("fits"), data);
    assert_eq!(status_of(&gunzip(&compressed, 9_999).unwrap_err()), 413);
    let truncated = &compressed[..compressed.len() / 2];
    assert_eq!(status_of(&gunzip(truncated, 10_000).unwrap_err()), 400);
    assert_eq!(
        status_of(&gunzip(b"not gzip at all", 10_000).unwrap_err()),
        400
    );
    assert_eq!(status_of(&gunzip(b"", 10_000).unwrap_err()), 400);
}

#[test]
fn undecodable_bodies_are_400_with_a_reason() {
    let garbage = [0x0a, 0xff, 0xff, 0xff];
    let err =
        decode_body::<ExportTraceServiceRequest>(&garbage, false, Encoding::Protobuf, 1 << 20)
            .unwrap_err();
    assert_eq!(status_of(&err), 400);
    assert!(err.to_string().contains("protobuf"), "{err}");

    // resource_spans[0].scope_spans[0].spans[0].name = "\xff" (invalid UTF-8)
    let span = [0x2a, 0x01, 0xff];
    let scope_spans = [&[0x12, span.len() as u8][..], &span].concat();
    let resource_spans = [&[0x12, scope_spans.len() as u8][..], &scope_spans].concat();
    let request = [&[0x0a, resource_spans.len() as u8][..], &resource_spans].concat();
    let err =
        decode_body::<ExportTraceServiceRequest>(&request, false, Encoding::Protobuf, 1 << 20)
            .unwrap_err();
    assert_eq!(status_of(&err), 400);
    assert!(err.to_string().contains("UTF-8"), "{err}");

    let err =
        decode_body::<ExportTraceServiceRequest>(b"{", false, Encoding::Json, 1 << 20).unwrap_err();
    assert_eq!(status_of(&err), 400);

    let body = gzip(br#"{"resourceSpans":[]}"#);
    let ok = decode_body::<ExportTraceServiceRequest>(&body, true, Encoding::Json, 1 << 20);
    assert!(ok.is_ok());
}

#[test]
fn json_success_bodies() {
    let full = Outcome {
        rejected: 0,
        message: String::new(),
    };
    assert_eq!(json_response::<Traces>(full), "{}");
    let partial = Outcome {
        rejected: 2,
        message: "bad \"ids\"".into(),
    };
    let body: serde_json::Value =
        serde_json::from_str(&json_response::<Logs>(partial)).expect("json");
    assert_eq!(body["partialSuccess"]["rejectedLogRecords"], "2");
    assert_eq!(body["partialSuccess"]["errorMessage"], "bad \"ids\"");
}

#[test]
fn protobuf_success_bodies() {
    let response = success_response::<Metrics>(
        Encoding::Protobuf,
        Outcome {
            rejected: 1,
            message: "x".into(),
        },
    );
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], PROTOBUF);
}

// ---------------------------------------------------------------------------------------
// The whole receive path, against a fake storage sink.

use std::time::Duration;

use lumen_storage::{StorageError, Table};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};

use crate::IngestConfig;
use crate::error::RpcStatus;
use crate::export::testing::{FakeSink, exporter};

fn example(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../shared/otlp-examples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).expect("example")
}

async fn post<S: OtlpSignal>(
    sink: &Arc<FakeSink>,
    config: IngestConfig,
    headers: HeaderMap,
    body: Vec<u8>,
) -> (StatusCode, HeaderMap, Bytes) {
    let response = export::<S>(State(exporter(sink, config)), headers, Body::from(body)).await;
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.expect("body");
    (parts.status, parts.headers, body)
}

fn json_headers() -> HeaderMap {
    headers(&[(header::CONTENT_TYPE, "application/json")])
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).expect("JSON body")
}

#[tokio::test]
async fn json_example_is_stored_and_answered_with_an_empty_json_object() {
    let sink = FakeSink::accepting();
    let (status, headers, body) = post::<Traces>(
        &sink,
        IngestConfig::default(),
        json_headers(),
        example("trace.json"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], JSON);
    assert_eq!(&body[..], b"{}");
    assert_eq!(sink.rows(Table::Spans), 1);
}

#[tokio::test]
async fn gzip_protobuf_is_stored_and_answered_in_protobuf() {
    let sink = FakeSink::accepting();
    let request: ExportMetricsServiceRequest =
        json::decode(&example("metrics.json")).expect("json");
    let headers = headers(&[
        (header::CONTENT_TYPE, "application/x-protobuf"),
        (header::CONTENT_ENCODING, "gzip"),
    ]);
    let body = gzip(&request.encode_to_vec());
    let (status, headers, body) =
        post::<Metrics>(&sink, IngestConfig::default(), headers, body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], PROTOBUF);
    let response = ExportMetricsServiceResponse::decode(body).expect("response");
    assert_eq!(response.partial_success, None);
    assert_eq!(sink.rows(Table::Metrics), 4);
}

#[tokio::test]
async fn partly_valid_requests_keep_the_valid_part_and_report_the_rest() {
    let sink = FakeSink::accepting();
    let body = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
        {"body":{"stringValue":"kept"}},
        {"traceId":"abcd","body":{"stringValue":"rejected"}}
    ]}]}]}"#;
    let (status, _, body) = post::<Logs>(
        &sink,
        IngestConfig::default(),
        json_headers(),
        body.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let body = json(&body);
    assert_eq!(body["partialSuccess"]["rejectedLogRecords"], "1");
    let message = body["partialSuccess"]["errorMessage"]
        .as_str()
        .expect("message");
    assert!(
        message.contains("logRecords[1]: trace_id must be empty or 16 bytes"),
        "{message}"
    );
    assert_eq!(sink.rows(Table::Logs), 1);
}

#[tokio::test]
async fn overload_is_503_with_retry_after_and_a_status_body() {
    let sink = FakeSink::failing(|| StorageError::Overloaded {
        reason: "head full".into(),
        retry_after: Duration::from_secs(3),
    });
    let (status, headers, body) = post::<Traces>(
        &sink,
        IngestConfig::default(),
        json_headers(),
        example("trace.json"),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::RETRY_AFTER], "3");
    let body = json(&body);
    assert_eq!(body["code"], 14);
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("retry after 3s")
    );

    let protobuf = headers_pb();
    let (status, _, body) =
        post::<Traces>(&sink, IngestConfig::default(), protobuf, Vec::new()).await;
    // An empty request has nothing to write: it succeeds without touching storage.
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty());

    let sink = FakeSink::failing(|| StorageError::ShuttingDown);
    let request: ExportMetricsServiceRequest =
        json::decode(&example("metrics.json")).expect("json");
    let (status, headers, body) = post::<Metrics>(
        &sink,
        IngestConfig::default(),
        headers_pb(),
        request.encode_to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert_eq!(RpcStatus::decode(body).expect("status").code, 14);
}

fn headers_pb() -> HeaderMap {
    headers(&[(header::CONTENT_TYPE, "application/x-protobuf")])
}

#[tokio::test]
async fn other_storage_failures_are_500() {
    let sink = FakeSink::failing(|| StorageError::io("wal", std::io::Error::other("disk")));
    let (status, headers, _) = post::<Logs>(
        &sink,
        IngestConfig::default(),
        json_headers(),
        example("logs.json"),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn client_errors_have_their_status_and_say_what_failed() {
    let sink = FakeSink::accepting();
    let config = IngestConfig {
        max_body_bytes: 1024,
        ..IngestConfig::default()
    };

    let text = headers(&[(header::CONTENT_TYPE, "text/plain")]);
    let (status, _, body) = post::<Traces>(&sink, config.clone(), text, b"hi".to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        json(&body)["message"]
            .as_str()
            .expect("m")
            .contains("text/plain")
    );

    let (status, _, body) =
        post::<Traces>(&sink, config.clone(), headers_pb(), vec![0; 2048]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let rpc = RpcStatus::decode(body).expect("status");
    assert_eq!((rpc.code, rpc.message.contains("1024 bytes")), (8, true));

    let gz = headers(&[
        (header::CONTENT_TYPE, "application/json"),
        (header::CONTENT_ENCODING, "gzip"),
    ]);
    let bomb = gzip(&vec![b' '; 1 << 19]);
    assert!(bomb.len() < 1024);
    let (status, _, _) = post::<Traces>(&sink, config.clone(), gz.clone(), bomb).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let (status, _, body) = post::<Traces>(&sink, config.clone(), gz, b"\x1f\x8bxx".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(json(&body)["message"].as_str().expect("m").contains("gzip"));

    let (status, _, body) =
        post::<Traces>(&sink, config.clone(), headers_pb(), vec![0x0a, 0xff]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let rpc = RpcStatus::decode(body).expect("status");
    assert_eq!(rpc.code, 3);
    assert!(
        rpc.message.contains("invalid protobuf body"),
        "{}",
        rpc.message
    );

    let (status, _, body) = post::<Traces>(
        &sink,
        config,
        json_headers(),
        br#"{"resourceSpans":7}"#.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        json(&body)["message"]
            .as_str()
            .expect("m")
            .contains("invalid type")
    );
    assert_eq!(sink.rows(Table::Spans), 0);
}
