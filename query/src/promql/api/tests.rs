use axum::http::HeaderValue;

use super::*;
use crate::promql::PromqlConfig;
use crate::testing::snapshots::FakeSource;

fn api() -> Shared {
    Arc::new(PromqlService::new(
        Arc::new(FakeSource::default()),
        PromqlConfig::default(),
    ))
}

async fn body_json(response: Response) -> (StatusCode, Json) {
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

async fn get_query(uri: &str) -> (StatusCode, Json) {
    let uri: Uri = uri.parse().unwrap();
    body_json(query(State(api()), uri, HeaderMap::new(), Bytes::new()).await).await
}

#[test]
fn timestamps_and_durations_parse_like_prometheus() {
    assert_eq!(parse_time("4"), Ok(4000));
    assert_eq!(parse_time("1435781451.7815"), Ok(1_435_781_451_782));
    assert_eq!(
        parse_time("2015-07-01T20:10:51.781Z"),
        Ok(1_435_781_451_781)
    );
    assert!(parse_time("yesterday").is_err());
    assert!(parse_time("NaN").is_err());
    assert_eq!(parse_duration("15"), Ok(15_000));
    assert_eq!(parse_duration("0.5"), Ok(500));
    assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
    assert_eq!(parse_duration("500ms"), Ok(500));
    assert!(parse_duration("5x").is_err());
    assert!(parse_duration("m").is_err());
    assert!(parse_duration("").is_err());
}

#[test]
fn escaped_label_names_and_form_encoding_decode() {
    assert_eq!(
        unescape_label_name("U__http_2e_status__code"),
        "http.status_code"
    );
    assert_eq!(unescape_label_name("job"), "job");
    assert_eq!(unescape_label_name("U__bad_zz_"), "U__bad_zz_");
    assert_eq!(
        parse_urlencoded("query=sum%28x%29+by&match%5B%5D=a&match[]=b&%"),
        vec![
            ("query".into(), "sum(x) by".into()),
            ("match[]".into(), "a".into()),
            ("match[]".into(), "b".into()),
            ("%".into(), String::new()),
        ]
    );
    assert_eq!(percent_decode("%e2%82%ac%4"), "€%4");
}

/// The `data` of a query answer, `{resultType, result}`, built from JSON values: the reference
/// [`write_result`] is checked against.
fn result_json(value: &Value, time_ms: i64) -> Json {
    match value {
        Value::Scalar(v) => {
            json!({"resultType": "scalar", "result": [ts_json(time_ms), value_string(*v)]})
        }
        Value::String(s) => json!({"resultType": "string", "result": [ts_json(time_ms), s]}),
        Value::Vector(samples) => {
            let result: Vec<Json> = samples
                .iter()
                .map(|s| json!({"metric": labels_json(&s.labels), "value": [ts_json(time_ms), value_string(s.value)]}))
                .collect();
            json!({"resultType": "vector", "result": result})
        }
        Value::Matrix(series) => {
            let result: Vec<Json> = series
                .iter()
                .map(|s| {
                    let values: Vec<Json> = s
                        .samples
                        .iter()
                        .map(|(t, v)| json!([ts_json(*t), value_string(*v)]))
                        .collect();
                    json!({"metric": labels_json(&s.labels), "values": values})
                })
                .collect();
            json!({"resultType": "matrix", "result": result})
        }
    }
}

#[test]
fn values_encode_as_strings_and_timestamps_as_seconds() {
    let v = Value::Vector(vec![super::super::Sample {
        labels: Labels::new(vec![("__name__".into(), "up".into())]),
        value: f64::INFINITY,
    }]);
    assert_eq!(
        result_json(&v, 1_435_781_451_781),
        json!({"resultType": "vector", "result": [{"metric": {"__name__": "up"}, "value": [1435781451.781, "+Inf"]}]})
    );
    assert_eq!(
        result_json(&Value::Scalar(f64::NAN), 4000),
        json!({"resultType": "scalar", "result": [4, "NaN"]})
    );
}

#[test]
fn streamed_answers_are_the_same_json_as_result_json() {
    let labels = |pairs: &[(&str, &str)]| {
        Labels::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    };
    let odd = labels(&[("__name__", "up"), ("path", "/a\"b\\c\n\u{1}é")]);
    let values = [
        Value::Scalar(-0.5),
        Value::String("a \"quoted\" string".into()),
        Value::Vector(vec![
            super::super::Sample {
                labels: odd.clone(),
                value: f64::NAN,
            },
            super::super::Sample {
                labels: labels(&[("a", "1")]),
                value: 1e-300,
            },
        ]),
        Value::Vector(Vec::new()),
        Value::Matrix(vec![
            super::super::Series {
                labels: odd,
                samples: vec![(1_000, 1.0), (1_500, f64::NEG_INFINITY), (-2_250, 3e21)],
            },
            super::super::Series {
                labels: Labels::empty(),
                samples: Vec::new(),
            },
        ]),
    ];
    for (i, value) in values.iter().enumerate() {
        for time in [4_000, 1_435_781_451_781] {
            let mut out = Vec::new();
            write_result(&mut out, value, time);
            let streamed: Json = serde_json::from_slice(&out)
                .unwrap_or_else(|e| panic!("value {i}: {e}: {}", String::from_utf8_lossy(&out)));
            assert_eq!(streamed, result_json(value, time), "value {i}");
        }
    }
}

#[tokio::test]
async fn grafana_save_and_test_query_answers_a_scalar() {
    let (status, body) = get_query("/api/v1/query?query=1%2B1&time=4").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"status": "success", "data": {"resultType": "scalar", "result": [4, "2"]}})
    );
}

#[tokio::test]
async fn bad_queries_and_parameters_are_bad_data() {
    let (status, body) = get_query("/api/v1/query?query=sum(").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorType"], "bad_data");
    assert!(!body["error"].as_str().unwrap().is_empty());
    let (status, _) = get_query("/api/v1/query?query=1&time=abc").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let long = format!("query={}", "1".repeat(MAX_QUERY_LENGTH + 1));
    let uri: Uri = "/api/v1/query".parse().unwrap();
    let (status, body) =
        body_json(query(State(api()), uri, headers, Bytes::from(long)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn range_query_limits_are_checked() {
    let call = |q: &'static str| async move {
        let uri: Uri = q.parse().unwrap();
        body_json(query_range(State(api()), uri, HeaderMap::new(), Bytes::new()).await).await
    };
    let (status, _) = call("/api/v1/query_range?query=1&start=10&end=5&step=1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call("/api/v1/query_range?query=1&start=0&end=5&step=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call("/api/v1/query_range?query=1&start=0&end=11000&step=1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = call("/api/v1/query_range?query=1&start=0&end=2&step=1s").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["data"],
        json!({"resultType": "matrix", "result": [{"metric": {}, "values": [[0, "1"], [1, "1"], [2, "1"]]}]})
    );
}

#[tokio::test]
async fn post_form_bodies_are_read() {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let uri: Uri = "/api/v1/query".parse().unwrap();
    let response = query(
        State(api()),
        uri,
        headers,
        Bytes::from_static(b"query=2*3&time=10"),
    )
    .await;
    let (status, body) = body_json(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["result"], json!([10, "6"]));
}

#[tokio::test]
async fn format_query_and_buildinfo() {
    let uri: Uri = "/api/v1/format_query?query=sum(rate(x%5B5m%5D))by(job)"
        .parse()
        .unwrap();
    let (status, body) = body_json(format_query(uri, HeaderMap::new(), Bytes::new()).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], json!("sum by (job) (rate(x[5m]))"));
    let (_, body) = body_json(buildinfo().await).await;
    assert_eq!(body["data"]["version"], json!(env!("CARGO_PKG_VERSION")));
    assert!(body["data"].get("features").is_none());
}
