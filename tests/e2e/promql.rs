//! The Prometheus HTTP API as Grafana's Prometheus data source calls it, over remote-written and
//! OTLP-ingested metrics, and the `lumen promql` CLI.

use std::process::Command;

use serde_json::{Value, json};

use crate::remote_write::{WriteRequest, send, series, snappy};
use crate::server::TestServer;

/// 2025-11-24T16:00:00Z, in ms (a multiple of a minute).
const T0: i64 = 1_764_000_000_000;

pub(crate) async fn get(server: &TestServer, path_and_query: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{}{path_and_query}", server.http))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{path_and_query}: not JSON: {text}")),
    )
}

async fn post_form(server: &TestServer, path: &str, form: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", server.http))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (
        status,
        serde_json::from_str(&resp.text().await.unwrap()).unwrap(),
    )
}

fn secs(ms: i64) -> String {
    format!("{}", ms as f64 / 1000.0)
}

/// `x_total{job="api"}` grows 2/s from 0 at T0 (20 s scrapes, 2 minutes); `h_bucket` for jobs
/// a and b grows per second by 1 (le=0.1), 2 (le=0.5), 6 (le=1, +Inf) over 5 minutes.
async fn remote_write_fixture(server: &TestServer) {
    let counter: Vec<(f64, i64)> = (0..=6)
        .map(|i| (40.0 * i as f64, T0 + i * 20_000))
        .collect();
    let mut timeseries = vec![series(&[("__name__", "x_total"), ("job", "api")], &counter)];
    for job in ["a", "b"] {
        for (le, per_second) in [("0.1", 1.0), ("0.5", 2.0), ("1", 6.0), ("+Inf", 6.0)] {
            let samples: Vec<(f64, i64)> = (0..=20)
                .map(|i| (per_second * 15.0 * i as f64, T0 + i * 15_000))
                .collect();
            timeseries.push(series(
                &[("__name__", "h_bucket"), ("job", job), ("le", le)],
                &samples,
            ));
        }
    }
    let (status, body) = send(server, snappy(&WriteRequest { timeseries }), "snappy").await;
    assert_eq!(status, 204, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_api_answers_grafana() {
    let server = TestServer::start();
    remote_write_fixture(&server).await;

    // Grafana's "Save & test".
    let (status, body) = get(&server, "/api/v1/query?query=1%2B1&time=4").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"status": "success", "data": {"resultType": "scalar", "result": [4, "2"]}})
    );
    let (status, body) = get(&server, "/api/v1/status/buildinfo").await;
    assert_eq!(status, 200);
    assert!(
        body["data"]["version"].is_string() && body["data"].get("features").is_none(),
        "{body}"
    );

    // rate over a 1m window at T0+2m: samples at 80, 100, 120 s (+80), extrapolated by 20 s to
    // the window start: 80 * 60/40 / 60 = 2 exactly.
    let t = secs(T0 + 120_000);
    let (status, body) = get(
        &server,
        &format!("/api/v1/query?query=rate(x_total%5B1m%5D)&time={t}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!({"resultType": "vector", "result": [{"metric": {"job": "api"}, "value": [(T0 + 120_000) / 1000, "2"]}]})
    );

    // A range query: matrix shape, integer-second timestamps, string values.
    let (status, body) = get(
        &server,
        &format!(
            "/api/v1/query_range?query=x_total&start={}&end={}&step=30s",
            secs(T0),
            secs(T0 + 60_000)
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let s0 = T0 / 1000;
    assert_eq!(
        body["data"],
        json!({"resultType": "matrix", "result": [{"metric": {"__name__": "x_total", "job": "api"},
            "values": [[s0, "0"], [s0 + 30, "40"], [s0 + 60, "120"]]}]})
    );

    // histogram_quantile over summed bucket rates: rank 0.9 * 12 = 10.8 falls in (0.5, 1]
    // (4 below, 8 in it) → 0.5 + 0.5 * (10.8 - 4) / 8 = 0.925.
    let q = "histogram_quantile(0.9%2C%20sum%20by%20(le)%20(rate(h_bucket%5B5m%5D)))";
    let (status, body) = get(
        &server,
        &format!("/api/v1/query?query={q}&time={}", secs(T0 + 300_000)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let result = body["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{body}");
    assert_eq!(result[0]["metric"], json!({}));
    let value: f64 = result[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!((value - 0.925).abs() < 1e-9, "{body}");

    // The metric browser.
    let (status, body) = get(&server, "/api/v1/labels").await;
    assert_eq!(status, 200);
    assert_eq!(body["data"], json!(["__name__", "job", "le"]));
    let (_, body) = get(&server, "/api/v1/label/__name__/values").await;
    assert_eq!(body["data"], json!(["h_bucket", "x_total"]));
    let (_, body) = get(&server, "/api/v1/label/job/values?match%5B%5D=h_bucket").await;
    assert_eq!(body["data"], json!(["a", "b"]));
    let (_, body) = get(
        &server,
        "/api/v1/series?match%5B%5D=x_total&match%5B%5D=h_bucket%7Bjob%3D%22a%22%2Cle%3D%221%22%7D",
    )
    .await;
    assert_eq!(
        body["data"],
        json!([{"__name__": "h_bucket", "job": "a", "le": "1"}, {"__name__": "x_total", "job": "api"}])
    );
    let (status, _) = get(&server, "/api/v1/series").await;
    assert_eq!(status, 400);
    let (_, body) = get(&server, "/api/v1/metadata").await;
    assert_eq!(
        body["data"]["h"],
        json!([{"type": "histogram", "help": "", "unit": ""}]),
        "{body}"
    );
    assert_eq!(body["data"]["x_total"][0]["type"], json!("counter"));
    let (status, body) = get(
        &server,
        &format!(
            "/api/v1/query_exemplars?query=test&start={}&end={}",
            T0 / 1000,
            T0 / 1000 + 1
        ),
    )
    .await;
    assert_eq!(
        (status, body),
        (200, json!({"status": "success", "data": []}))
    );
    let (_, body) = get(&server, "/api/v1/format_query?query=sum(x_total)by(job)").await;
    assert_eq!(body["data"], json!("sum by (job) (x_total)"));

    // Grafana's POST mode.
    let (status, body) = post_form(
        &server,
        "/api/v1/query",
        &format!("query=sum(x_total)&time={}", secs(T0 + 60_000)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["result"][0]["value"],
        json!([(T0 + 60_000) / 1000, "120"])
    );
    let (status, body) = post_form(
        &server,
        "/api/v1/query_range",
        &format!(
            "query=x_total&start={}&end={}&step=60",
            secs(T0),
            secs(T0 + 60_000)
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["result"][0]["values"],
        json!([[s0, "0"], [s0 + 60, "120"]])
    );

    // Errors.
    let (status, body) = get(&server, "/api/v1/query?query=sum(x_total").await;
    assert_eq!(status, 400);
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorType"], "bad_data");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    let (status, body) = get(&server, "/api/v1/query_range?query=1&start=10&end=5&step=1").await;
    assert_eq!(
        (status, body["errorType"].clone()),
        (400, json!("bad_data"))
    );

    // The CLI.
    let out = Command::new(env!("CARGO_BIN_EXE_lumen"))
        .args([
            "promql",
            "--server",
            &server.http,
            "--time",
            &t,
            "rate(x_total[1m])",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("{job=\"api\"}") && stdout.contains("| 2\n"),
        "{stdout}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_lumen"))
        .args([
            "promql",
            "--server",
            &server.http,
            "--start",
            &secs(T0),
            "--end",
            &secs(T0 + 60_000),
            "--step",
            "1m",
            "x_total",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("x_total{job=\"api\"}") && stdout.contains("| 120\n"),
        "{stdout}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_lumen"))
        .args(["promql", "--server", &server.http, "sum("])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad_data"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_metrics_are_queryable_with_prometheus_names() {
    let server = TestServer::start();
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/otlp-examples/metrics.json"
    ))
    .unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/metrics", server.http))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // The gauge `my.gauge` (unit "1") is `my_gauge_ratio`.
    let (status, body) = get(
        &server,
        "/api/v1/query?query=my_gauge_ratio&time=1544712660.3",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["result"],
        json!([{"metric": {"__name__": "my_gauge_ratio", "job": "my.service", "my_gauge_attr": "some value"},
            "value": [1544712660.3, "10"]}])
    );
    let (_, body) = get(&server, "/api/v1/label/__name__/values").await;
    assert!(
        body["data"]
            .as_array()
            .unwrap()
            .contains(&json!("my_gauge_ratio")),
        "{body}"
    );

    // The example's delta counter and delta histograms read as cumulative series that start at
    // the window; the exponential histogram as classic buckets (zero bucket at le=0, the populated
    // bucket (4, 8] at le=8); the resource as target_info.
    let value_of = |body: &Value, labels: Value| -> Option<String> {
        body["data"]["result"]
            .as_array()?
            .iter()
            .find(|s| s["metric"] == labels)
            .map(|s| s["value"][1].as_str().unwrap().to_string())
    };
    let query = |q: &str| {
        format!(
            "/api/v1/query?query={}&time=1544712660.3",
            q.replace('{', "%7B")
                .replace('}', "%7D")
                .replace('"', "%22")
                .replace('=', "%3D")
        )
    };
    let (_, body) = get(&server, &query("my_counter_total")).await;
    assert_eq!(
        value_of(
            &body,
            json!({"__name__": "my_counter_total", "job": "my.service", "my_counter_attr": "some value"})
        ),
        Some("5".into()),
        "{body}"
    );
    let (_, body) = get(&server, &query("{__name__=~\"my_histogram_.*\"}")).await;
    let attr = "some value";
    for (name, le, want) in [
        ("my_histogram_bucket", Some("1"), "1"),
        ("my_histogram_bucket", Some("+Inf"), "2"),
        ("my_histogram_sum", None, "2"),
        ("my_histogram_count", None, "2"),
    ] {
        let mut labels = json!({"__name__": name, "job": "my.service", "my_histogram_attr": attr});
        if let Some(le) = le {
            labels["le"] = json!(le);
        }
        assert_eq!(
            value_of(&body, labels.clone()),
            Some(want.into()),
            "{labels} in {body}"
        );
    }
    let (_, body) = get(
        &server,
        &query("{__name__=~\"my_exponential_histogram_.*\"}"),
    )
    .await;
    for (name, le, want) in [
        ("my_exponential_histogram_bucket", Some("0"), "1"),
        ("my_exponential_histogram_bucket", Some("8"), "3"),
        ("my_exponential_histogram_bucket", Some("+Inf"), "3"),
        ("my_exponential_histogram_sum", None, "10"),
        ("my_exponential_histogram_count", None, "3"),
    ] {
        let mut labels =
            json!({"__name__": name, "job": "my.service", "my_exponential_histogram_attr": attr});
        if let Some(le) = le {
            labels["le"] = json!(le);
        }
        assert_eq!(
            value_of(&body, labels.clone()),
            Some(want.into()),
            "{labels} in {body}"
        );
    }
    assert_eq!(
        body["data"]["result"].as_array().unwrap().len(),
        5,
        "{body}"
    );
    let (_, body) = get(&server, &query("target_info")).await;
    assert_eq!(
        value_of(
            &body,
            json!({"__name__": "target_info", "job": "my.service"})
        ),
        Some("1".into()),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_sums_add_up_to_a_counter() {
    let server = TestServer::start();
    let t0: u64 = 1_700_000_000_000_000_000;
    let points: Vec<Value> = (0..4u64)
        .map(|i| {
            json!({"asDouble": 5.0, "startTimeUnixNano": (t0 + (i.max(1) - 1) * 15_000_000_000).to_string(),
                   "timeUnixNano": (t0 + i * 15_000_000_000).to_string()})
        })
        .collect();
    let body = json!({"resourceMetrics": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
        "scopeMetrics": [{"metrics": [{"name": "orders", "sum": {"aggregationTemporality": 1, "isMonotonic": true, "dataPoints": points}}]}]}]});
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/metrics", server.http))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let at = (t0 / 1_000_000 + 45_000) as f64 / 1000.0;
    let (_, body) = get(
        &server,
        &format!("/api/v1/query?query=orders_total&time={at}"),
    )
    .await;
    assert_eq!(
        body["data"]["result"][0]["value"][1], "20",
        "the four deltas of 5 add up: {body}"
    );
    let (_, body) = get(
        &server,
        &format!("/api/v1/query?query=increase(orders_total%5B1m%5D)&time={at}"),
    )
    .await;
    let increase: f64 = body["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // 15 between the first and last sample in the window, extrapolated like Prometheus's increase().
    assert!((15.0..=20.0).contains(&increase), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exemplars_link_histogram_buckets_and_counters_to_traces() {
    let server = TestServer::start();
    let t: u64 = 1_700_000_000_000_000_000;
    let exemplar = |value: f64, trace: &str| {
        json!({"timeUnixNano": t.to_string(), "asDouble": value, "traceId": trace, "spanId": "00f067aa0ba902b7",
               "filteredAttributes": [{"key": "user.id", "value": {"stringValue": "u1"}}]})
    };
    let body = json!({"resourceMetrics": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
    "scopeMetrics": [{"metrics": [
        {"name": "lat", "unit": "s", "histogram": {"aggregationTemporality": 2, "dataPoints": [{
            "timeUnixNano": t.to_string(), "count": "3", "sum": 1.9, "bucketCounts": ["1", "2", "0"], "explicitBounds": [0.5, 1.0],
            "exemplars": [exemplar(0.7, "4bf92f3577b34da6a3ce929d0e0e4736")]}]}},
        {"name": "orders", "sum": {"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": [{
            "timeUnixNano": t.to_string(), "asDouble": 3.0, "exemplars": [exemplar(1.0, "5bf92f3577b34da6a3ce929d0e0e4736")]}]}}
    ]}]}]});
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/metrics", server.http))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let secs = (t / 1_000_000_000) as i64;
    let q = "histogram_quantile(0.9,%20rate(lat_seconds_bucket%5B5m%5D))%20or%20orders_total";
    let (status, body) = get(
        &server,
        &format!(
            "/api/v1/query_exemplars?query={q}&start={}&end={}",
            secs - 60,
            secs + 60
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{body}");
    let bucket = data
        .iter()
        .find(|s| s["seriesLabels"]["__name__"] == "lat_seconds_bucket")
        .expect("bucket series");
    assert_eq!(
        bucket["seriesLabels"]["le"], "1",
        "0.7 falls in the le=1 bucket: {body}"
    );
    assert_eq!(
        bucket["exemplars"][0],
        json!({"labels": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7", "user_id": "u1"},
               "value": "0.7", "timestamp": secs})
    );
    let counter = data
        .iter()
        .find(|s| s["seriesLabels"]["__name__"] == "orders_total")
        .expect("counter series");
    assert_eq!(
        counter["exemplars"][0]["labels"]["trace_id"],
        "5bf92f3577b34da6a3ce929d0e0e4736"
    );
    // Outside the window: nothing.
    let (_, body) = get(
        &server,
        &format!(
            "/api/v1/query_exemplars?query=orders_total&start={}&end={}",
            secs + 10,
            secs + 60
        ),
    )
    .await;
    assert_eq!(body["data"], json!([]), "{body}");
    let (status, _) = get(&server, "/api/v1/query_exemplars?query=sum(").await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_comes_from_the_stored_descriptions_and_types() {
    let server = TestServer::start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let body = json!({"resourceMetrics": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
    "scopeMetrics": [{"metrics": [
        {"name": "http.server.request.duration", "unit": "s", "description": "Duration of HTTP server requests.",
         "histogram": {"aggregationTemporality": 2, "dataPoints": [{"timeUnixNano": now.to_string(), "count": "1", "sum": 0.2,
            "bucketCounts": ["1", "0"], "explicitBounds": [0.5]}]}},
        {"name": "orders", "description": "Orders placed.", "sum": {"aggregationTemporality": 2, "isMonotonic": true,
         "dataPoints": [{"timeUnixNano": now.to_string(), "asDouble": 3.0}]}},
        {"name": "queue.depth", "unit": "{message}", "description": "Messages waiting.",
         "gauge": {"dataPoints": [{"timeUnixNano": now.to_string(), "asInt": "4"}]}}
    ]}]}]});
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/metrics", server.http))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (status, body) = get(&server, "/api/v1/metadata").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["http_server_request_duration_seconds"],
        json!([{"type": "histogram", "help": "Duration of HTTP server requests.", "unit": "seconds"}])
    );
    assert_eq!(
        body["data"]["orders_total"],
        json!([{"type": "counter", "help": "Orders placed.", "unit": ""}])
    );
    assert_eq!(
        body["data"]["queue_depth"],
        json!([{"type": "gauge", "help": "Messages waiting.", "unit": ""}])
    );
    let (_, body) = get(&server, "/api/v1/metadata?metric=orders_total").await;
    assert_eq!(body["data"].as_object().unwrap().len(), 1, "{body}");
    server.flush().await;
    let (_, body) = get(&server, "/api/v1/metadata?limit=2").await;
    assert_eq!(
        body["data"].as_object().unwrap().len(),
        2,
        "read back from segments too: {body}"
    );
}
