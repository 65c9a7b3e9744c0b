use axum::http::StatusCode;
use serde_json::{Value, json};

use super::*;
use crate::snapshot::SnapshotSource;
use crate::sql::session::QueryConfig;
use crate::testing::snapshots::{FakeSource, populated_source};

fn engine(source: Arc<FakeSource>) -> Arc<QueryEngine> {
    Arc::new(
        QueryEngine::with_source(source as Arc<dyn SnapshotSource>, QueryConfig::default())
            .unwrap(),
    )
}

async fn call(
    engine: &Arc<QueryEngine>,
    uri: &str,
    content_type: Option<&str>,
    body: &str,
) -> (StatusCode, HeaderMap, String) {
    let mut headers = HeaderMap::new();
    if let Some(content_type) = content_type {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
    }
    let response = sql_handler(
        State(Arc::clone(engine)),
        uri.parse().unwrap(),
        headers,
        Bytes::from(body.to_string()),
    )
    .await;
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await;
    let body = body
        .map(|b| String::from_utf8(b.to_vec()).unwrap())
        .unwrap_or_else(|e| format!("<body error: {e}>"));
    (status, headers, body)
}

fn error_type(body: &str) -> String {
    let value: Value = serde_json::from_str(body).unwrap();
    assert!(
        value["error"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    value["error_type"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn json_body_and_raw_sql_give_the_json_shape() {
    let engine = engine(Arc::new(FakeSource::default()));
    let expected = json!({"columns": [{"name": "a", "type": "int64"}, {"name": "b", "type": "utf8"}], "rows": [[1, "x"]]});
    let (status, headers, body) = call(
        &engine,
        "/api/v1/sql",
        Some("application/json; charset=utf-8"),
        r#"{"query": "SELECT 1 AS a, 'x' AS b"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), expected);

    for content_type in [
        Some("text/plain"),
        None,
        Some("application/x-www-form-urlencoded"),
    ] {
        let (status, _, body) = call(
            &engine,
            "/api/v1/sql?format=json",
            content_type,
            "SELECT 1 AS a, 'x' AS b",
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), expected);
    }
}

#[tokio::test]
async fn csv_and_ndjson_stream_rows() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(populated_source(dir.path()));
    let sql = "SELECT name, trace_id FROM spans WHERE name IN ('s2', 'head-a') ORDER BY name";
    let (status, headers, body) =
        call(&engine, "/api/v1/sql?format=csv", Some("text/plain"), sql).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert_eq!(
        body,
        "name,trace_id\nhead-a,5b000000000000000000000000000009\ns2,5b000000000000000000000000000002\n"
    );

    let (status, headers, body) = call(&engine, "/api/v1/sql?format=ndjson", None, sql).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/x-ndjson");
    assert_eq!(
        body,
        "{\"name\":\"head-a\",\"trace_id\":\"5b000000000000000000000000000009\"}\n\
         {\"name\":\"s2\",\"trace_id\":\"5b000000000000000000000000000002\"}\n"
    );

    // No rows: CSV still has its header, NDJSON is empty.
    let (_, _, body) = call(
        &engine,
        "/api/v1/sql?format=csv",
        None,
        "SELECT name FROM spans WHERE false",
    )
    .await;
    assert_eq!(body, "name\n");
    let (_, _, body) = call(
        &engine,
        "/api/v1/sql?format=ndjson",
        None,
        "SELECT name FROM spans WHERE false",
    )
    .await;
    assert_eq!(body, "");
}

#[tokio::test]
async fn errors_have_status_and_type() {
    let dir = tempfile::tempdir().unwrap();
    let source = populated_source(dir.path());
    let gone = source.segments.lock().unwrap()[0].path.clone();
    let engine = engine(source);

    let cases: [(&str, Option<&str>, &str, StatusCode, &str); 8] = [
        (
            "/api/v1/sql",
            None,
            "",
            StatusCode::BAD_REQUEST,
            "bad_query",
        ),
        (
            "/api/v1/sql",
            None,
            "SELEC 1",
            StatusCode::BAD_REQUEST,
            "bad_query",
        ),
        (
            "/api/v1/sql",
            None,
            "DROP TABLE spans",
            StatusCode::BAD_REQUEST,
            "read_only",
        ),
        (
            "/api/v1/sql?format=csv",
            None,
            "COPY spans TO '/tmp/x.csv'",
            StatusCode::BAD_REQUEST,
            "read_only",
        ),
        (
            "/api/v1/sql?format=xml",
            None,
            "SELECT 1",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "/api/v1/sql",
            Some("application/json"),
            "{\"sql\": \"SELECT 1\"}",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "/api/v1/sql",
            Some("application/json"),
            "not json",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "/api/v1/sql?format=ndjson",
            None,
            "SELECT nope FROM spans",
            StatusCode::BAD_REQUEST,
            "bad_query",
        ),
    ];
    for (uri, content_type, body, status, kind) in cases {
        let (got, headers, text) = call(&engine, uri, content_type, body).await;
        assert_eq!(got, status, "{uri} {body}: {text}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(error_type(&text), kind, "{uri} {body}: {text}");
    }

    std::fs::remove_file(&gone).unwrap();
    for uri in ["/api/v1/sql", "/api/v1/sql?format=csv"] {
        let (status, headers, text) = call(&engine, uri, None, "SELECT count(*) FROM spans").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
        assert_eq!(headers[header::RETRY_AFTER], "1");
        assert_eq!(error_type(&text), "unavailable");
    }
}

#[tokio::test]
async fn router_serves_the_endpoint() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let engine = engine(Arc::new(FakeSource::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, http_router(engine)).await });

    let body = "SELECT 41 + 1 AS answer";
    let request = format!(
        "POST /api/v1/sql?format=csv HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.contains("answer\n42\n"), "{response}");
    server.abort();
}
