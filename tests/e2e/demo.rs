//! `lumen demo`: the bookstore fleet feeds the real server over OTLP/gRPC, and what it sends is
//! queryable — five services, logs joined to their spans, semantic-convention histograms.

use std::time::{Duration, Instant};

use crate::server::TestServer;

/// Polls a single-count query until it reaches `want` or `timeout` passes; returns the last count.
async fn wait_for(server: &TestServer, query: &str, want: i64, timeout: Duration) -> i64 {
    let deadline = Instant::now() + timeout;
    loop {
        let got = server.sql(query).await["rows"][0][0].as_i64().unwrap_or(-1);
        if got >= want || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_feeds_lumen_with_a_bookstore_fleet() {
    let mut server = TestServer::start_command("demo", &["--rate", "20", "--seed", "7"]);

    let services = wait_for(
        &server,
        "SELECT count(DISTINCT service_name) FROM spans",
        5,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        services, 5,
        "gateway, account, warehouse, payment and security all report spans"
    );

    let joined = "SELECT count(*) FROM logs l JOIN spans s ON l.trace_id = s.trace_id AND l.span_id = s.span_id";
    assert!(
        wait_for(&server, joined, 1, Duration::from_secs(20)).await > 0,
        "logs carry the trace and span ids of existing spans"
    );
    let correlated = server
        .sql("SELECT count(*) FROM logs WHERE trace_id IS NOT NULL")
        .await["rows"][0][0]
        .as_i64()
        .unwrap_or(0);
    assert!(correlated > 0);

    // The first periodic collection happens 10 s of simulated (= wall) time after the start.
    let histograms = "SELECT count(*) FROM metrics WHERE metric_name = 'http.server.request.duration' \
                      AND metric_type = 'histogram' AND temporality = 'cumulative' AND unit = 's'";
    assert!(
        wait_for(&server, histograms, 1, Duration::from_secs(40)).await > 0,
        "http.server.request.duration histograms arrive"
    );
    let rows = server
        .sql_rows(
            "SELECT service_name, count, array_length(bucket_counts) AS buckets, array_length(explicit_bounds) AS bounds FROM metrics \
             WHERE metric_name = 'http.server.request.duration' AND attributes['http.route'] IS NOT NULL",
        )
        .await;
    assert!(!rows.is_empty());
    for row in &rows {
        assert_eq!(
            row["buckets"].as_i64(),
            row["bounds"].as_i64().map(|b| b + 1),
            "{row:?}"
        );
    }
    let business = server
        .sql("SELECT count(DISTINCT metric_name) FROM metrics WHERE metric_name LIKE 'bookstore.%'")
        .await;
    assert!(
        business["rows"][0][0].as_i64().unwrap_or(0) >= 3,
        "business metrics arrive: {business}"
    );

    // Every complete trace has exactly one root.
    let multi_root = server
        .sql("SELECT count(*) FROM (SELECT trace_id, sum(CASE WHEN parent_span_id IS NULL THEN 1 ELSE 0 END) AS roots FROM spans GROUP BY trace_id) WHERE roots > 1")
        .await;
    assert_eq!(multi_root["rows"][0][0].as_i64(), Some(0));

    assert!(server.terminate(), "the demo stops cleanly on SIGTERM");
}

/// The shipped example rules with short `for` and intervals, so the incidents fire in seconds.
fn fast_example_rules(dir: &std::path::Path) -> String {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/rules/bookstore.rules.yml"
    ))
    .unwrap();
    let fast = shipped
        .replace("interval: 15s", "interval: 1s")
        .replace("for: 1m", "for: 2s")
        .replace("for: 2m", "for: 2s");
    assert_ne!(fast, shipped);
    let path = dir.join("bookstore.rules.yml");
    std::fs::write(&path, fast).unwrap();
    path.display().to_string()
}

/// Waits until `alertname` is firing; returns its labels.
async fn wait_for_firing(
    server: &TestServer,
    alertname: &str,
    timeout: Duration,
) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    loop {
        let alerts: serde_json::Value = reqwest::get(format!("{}/api/v1/alerts", server.http))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(alert) = alerts["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["labels"]["alertname"] == alertname && a["state"] == "firing")
        {
            return alert.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{alertname} did not fire within {timeout:?}: {alerts}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_incidents_fire_the_example_technical_and_business_rules() {
    let dir = tempfile::tempdir().unwrap();
    let rules = fast_example_rules(dir.path());
    // Six minutes of history, the incident in the last three.
    let args = |scenario: &'static str| {
        [
            "--scenario",
            scenario,
            "--backfill",
            "6m",
            "--incident-after",
            "3m",
            "--rules",
            rules.as_str(),
        ]
    };

    let server = TestServer::start_command("demo", &args("payment-latency"));
    let alert = wait_for_firing(&server, "PaymentLatencyHigh", Duration::from_secs(60)).await;
    assert_eq!(alert["labels"]["job"], "bookstore/payment");
    assert!(
        alert["annotations"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("Payment p99 latency is "),
        "{alert}"
    );
    let orders = reqwest::get(format!("{}/api/v1/alerts", server.http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !orders.contains("OrdersPerMinuteLow"),
        "orders keep flowing during a latency spike: {orders}"
    );
    drop(server);

    let server = TestServer::start_command("demo", &args("orders-drop"));
    let alert = wait_for_firing(&server, "OrdersPerMinuteLow", Duration::from_secs(60)).await;
    assert_eq!(alert["labels"]["service"], "payment");
    assert_eq!(alert["labels"]["severity"], "ticket");
    let technical = reqwest::get(format!("{}/api/v1/alerts", server.http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !technical.contains("PaymentLatencyHigh"),
        "orders drop while latency looks healthy: {technical}"
    );
    // The SQL recording rule wrote orders per minute back as a series.
    let recorded: serde_json::Value = reqwest::get(format!(
        "{}/api/v1/query?query=bookstore:orders_per_minute",
        server.http
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        recorded["data"]["result"][0]["metric"]["service"], "payment",
        "{recorded}"
    );
}
