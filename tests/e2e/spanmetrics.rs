//! Span-derived metrics through the real binary: the bookstore fleet's traces sent over OTLP,
//! then Tempo's metrics-generator series read back through the Prometheus API, checked against
//! what SQL counts in the `spans` table — the RED metrics per operation, the service graph
//! (client/server, messaging and database edges), exemplars linking to stored traces — and the
//! same answers after a restart.

use std::collections::BTreeMap;

use lumen_fleet::{Fleet, FleetConfig};
use prost::Message;
use serde_json::Value;

use crate::promql::get;
use crate::server::TestServer;

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// Two minutes of the bookstore at 20 requests/s, ending now, sent in 12 requests (so some client
/// and server halves of an edge arrive in different requests).
async fn send_fleet(server: &TestServer) -> usize {
    let end = now_ns();
    let start = end - 120_000_000_000;
    let mut fleet = Fleet::new(FleetConfig {
        seed: 11,
        requests_per_second: 20.0,
        start_time_ns: start,
        ..FleetConfig::default()
    });
    let mut spans = 0;
    for step in 1..=12 {
        let telemetry = fleet.step(start + step * 10_000_000_000);
        spans += telemetry.span_count();
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/traces", server.http))
            .header("content-type", "application/x-protobuf")
            .body(telemetry.traces.encode_to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }
    spans
}

/// An instant PromQL query's series as (sorted label pairs without `__name__`) → value.
async fn instant(server: &TestServer, query: &str) -> BTreeMap<Vec<(String, String)>, f64> {
    let time = now_ns() as f64 / 1e9 + 1.0;
    let (status, body) = get(
        server,
        &format!("/api/v1/query?query={}&time={time}", urlencode(query)),
    )
    .await;
    assert_eq!(status, 200, "{query}: {body}");
    body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|series| {
            let labels = series["metric"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| *k != "__name__")
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            let value: f64 = series["value"][1].as_str().unwrap().parse().unwrap();
            (labels, value)
        })
        .collect()
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A SQL answer's rows as (label pairs from `columns`, in that order, sorted) → the `n` column.
async fn sql_counts(
    server: &TestServer,
    query: &str,
    columns: &[(&str, &str)],
) -> BTreeMap<Vec<(String, String)>, f64> {
    server
        .sql_rows(query)
        .await
        .iter()
        .map(|row| {
            let mut labels: Vec<(String, String)> = columns
                .iter()
                .map(|(column, label)| {
                    (
                        label.to_string(),
                        row[*column].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            labels.sort();
            (labels, row["n"].as_f64().unwrap())
        })
        .collect()
}

/// Every derived series (`{__name__=~"traces_.+"}`).
const SERIES: &str = "/api/v1/series?match[]=%7B__name__%3D~%22traces_.%2B%22%7D";

const CALLS_SQL: &str = "SELECT service_name, name, \
     'SPAN_KIND_' || upper(kind) AS span_kind, 'STATUS_CODE_' || upper(status_code) AS status_code, \
     count(*) AS n FROM spans GROUP BY 1, 2, 3, 4";

const EDGES_SQL: &str = "SELECT c.service_name AS client, s.service_name AS server, \
     CASE WHEN c.kind = 'producer' OR s.kind = 'consumer' THEN 'messaging_system' ELSE '' END AS connection_type, \
     count(*) AS n \
     FROM spans c JOIN spans s ON s.trace_id = c.trace_id AND s.parent_span_id = c.span_id \
     WHERE ((c.kind = 'client' AND c.attributes['db.system.name'] IS NULL) OR c.kind = 'producer') \
       AND s.kind IN ('server', 'consumer') \
     GROUP BY 1, 2, 3";

const DATABASE_SQL: &str = "SELECT service_name AS client, \
     coalesce(attributes['db.namespace'], attributes['db.system.name']) AS server, \
     'database' AS connection_type, count(*) AS n \
     FROM spans WHERE kind = 'client' AND attributes['db.system.name'] IS NOT NULL GROUP BY 1, 2, 3";

async fn check_against_sql(server: &TestServer, phase: &str) {
    let calls = instant(server, "traces_spanmetrics_calls_total").await;
    let want = sql_counts(
        server,
        CALLS_SQL,
        &[
            ("service_name", "service"),
            ("name", "span_name"),
            ("span_kind", "span_kind"),
            ("status_code", "status_code"),
        ],
    )
    .await;
    assert!(want.len() > 20, "{phase}: the fleet has many operations");
    assert_eq!(calls, want, "{phase}: one call per stored span");
    let services: std::collections::BTreeSet<&str> = calls
        .keys()
        .flat_map(|labels| labels.iter().filter(|(k, _)| k == "service"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        services.into_iter().collect::<Vec<_>>(),
        ["account", "gateway", "payment", "security", "warehouse"],
        "{phase}"
    );

    // Latency histograms: counts equal the calls, and quantiles are answerable.
    let counts = instant(server, "traces_spanmetrics_latency_count").await;
    assert_eq!(counts, calls, "{phase}: latency counts equal the calls");
    let p99 = instant(
        server,
        "histogram_quantile(0.99, sum by (le, service) (traces_spanmetrics_latency_bucket{span_kind=\"SPAN_KIND_SERVER\"}))",
    )
    .await;
    let serving: std::collections::BTreeSet<Vec<(String, String)>> = calls
        .keys()
        .filter(|labels| labels.contains(&("span_kind".into(), "SPAN_KIND_SERVER".into())))
        .map(|labels| {
            labels
                .iter()
                .filter(|(k, _)| k == "service")
                .cloned()
                .collect()
        })
        .collect();
    assert!(serving.len() >= 4, "{phase}: {serving:?}");
    assert_eq!(
        p99.keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        serving,
        "{phase}: a p99 per service that serves requests"
    );
    // At most the highest finite bound (where Prometheus puts a quantile in the +Inf bucket).
    assert!(
        p99.values().all(|v| *v > 0.0 && *v <= 4.10),
        "{phase}: {p99:?}"
    );

    // The service graph: every client/server and producer/consumer pair, and database calls.
    let edges = instant(
        server,
        "sum by (client, server, connection_type) (traces_service_graph_request_total)",
    )
    .await;
    let columns = [
        ("client", "client"),
        ("server", "server"),
        ("connection_type", "connection_type"),
    ];
    let mut want = sql_counts(server, EDGES_SQL, &columns).await;
    want.extend(sql_counts(server, DATABASE_SQL, &columns).await);
    assert!(
        want.keys()
            .any(|l| l.contains(&("connection_type".into(), "messaging_system".into()))),
        "{phase}: the fleet has a message queue: {want:?}"
    );
    assert!(
        want.keys()
            .any(|l| l.contains(&("connection_type".into(), "database".into()))),
        "{phase}: and databases"
    );
    // PromQL drops the empty connection_type label of plain calls.
    let want: BTreeMap<_, _> = want
        .into_iter()
        .map(|(labels, n)| {
            (
                labels
                    .into_iter()
                    .filter(|(_, v)| !v.is_empty())
                    .collect::<Vec<_>>(),
                n,
            )
        })
        .collect();
    assert_eq!(edges, want, "{phase}: service graph edges");
    let server_seconds = instant(
        server,
        "sum by (client, server, connection_type) (traces_service_graph_request_server_seconds_count)",
    )
    .await;
    assert_eq!(
        server_seconds, edges,
        "{phase}: one server duration per edge call"
    );
}

/// The instant queries Grafana's Tempo data source sends to its linked Prometheus data source for
/// the service graph and the APM table (grafana/grafana, tempo `datasource.ts`,
/// `graphTransform.ts`), with `$__range` = 1h.
async fn grafana_service_graph_and_apm_queries(server: &TestServer) {
    let rates = instant(
        server,
        "sum by (client, server) (rate(traces_service_graph_request_total[3600s]))",
    )
    .await;
    assert!(rates.len() >= 4, "{rates:?}");
    assert!(rates.values().all(|v| *v > 0.0), "{rates:?}");
    let failed = instant(
        server,
        "sum by (client, server) (rate(traces_service_graph_request_failed_total[3600s]))",
    )
    .await;
    assert!(failed.keys().all(|k| rates.contains_key(k)), "{failed:?}");
    let durations = instant(
        server,
        "sum by (client, server) (rate(traces_service_graph_request_server_seconds_sum[3600s]))",
    )
    .await;
    assert_eq!(
        durations.keys().collect::<Vec<_>>(),
        rates.keys().collect::<Vec<_>>()
    );
    let buckets = instant(
        server,
        "sum by (client, server) (rate(traces_service_graph_request_server_seconds_bucket[3600s]))",
    )
    .await;
    assert_eq!(buckets.len(), rates.len());
    let groups = instant(
        server,
        "group by (client, connection_type, server) (traces_service_graph_request_total)",
    )
    .await;
    let types: std::collections::BTreeSet<&str> = groups
        .keys()
        .flat_map(|l| l.iter().filter(|(k, _)| k == "connection_type"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        types.into_iter().collect::<Vec<_>>(),
        ["database", "messaging_system"],
        "{groups:?}"
    );

    let top = instant(
        server,
        r#"topk(5, sum(rate(traces_spanmetrics_calls_total{span_kind="SPAN_KIND_SERVER"}[3600s])) by (span_name))"#,
    )
    .await;
    assert_eq!(top.len(), 5, "{top:?}");
    assert!(top.values().all(|v| *v > 0.0), "{top:?}");
    let names: Vec<String> = top.keys().map(|l| l[0].1.replace('.', "\\\\.")).collect();
    let errors = instant(
        server,
        &format!(
            r#"topk(5, sum(rate(traces_spanmetrics_calls_total{{status_code="STATUS_CODE_ERROR",span_name=~"{}"}}[3600s])) by (span_name))"#,
            names.join("|")
        ),
    )
    .await;
    assert!(errors.keys().all(|k| top.contains_key(k)), "{errors:?}");
    let (name, _) = top.iter().next().unwrap();
    let p90 = instant(
        server,
        &format!(
            r#"histogram_quantile(.9, sum(rate(traces_spanmetrics_latency_bucket{{span_name=~"{}"}}[3600s])) by (le))"#,
            name[0].1.replace('.', "\\\\.")
        ),
    )
    .await;
    assert_eq!(p90.len(), 1, "{p90:?}");
    assert!(p90.values().all(|v| *v > 0.0 && *v <= 4.10), "{p90:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn span_metrics_and_the_service_graph_match_the_stored_spans() {
    let mut server = TestServer::start();
    let spans = send_fleet(&server).await;
    assert!(spans > 1_000, "{spans} spans");
    check_against_sql(&server, "head").await;
    let (status, body) = get(&server, SERIES).await;
    assert_eq!(status, 200, "{body}");
    let names: std::collections::BTreeSet<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["__name__"].as_str().unwrap())
        .collect();
    for name in [
        "traces_spanmetrics_calls_total",
        "traces_spanmetrics_latency_bucket",
        "traces_service_graph_request_total",
        "traces_service_graph_request_failed_total",
        "traces_service_graph_request_client_seconds_bucket",
    ] {
        assert!(names.contains(name), "{name} in {names:?}");
    }

    grafana_service_graph_and_apm_queries(&server).await;

    // Jaeger's dependency graph comes from the same paired calls (databases are not services).
    let end_ms = now_ns() / 1_000_000 + 1_000;
    let (status, body) = get(
        &server,
        &format!("/jaeger/api/dependencies?endTs={end_ms}&lookback=3600000"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let got: BTreeMap<(String, String), f64> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                (
                    d["parent"].as_str().unwrap().to_owned(),
                    d["child"].as_str().unwrap().to_owned(),
                ),
                d["callCount"].as_f64().unwrap(),
            )
        })
        .collect();
    let mut want: BTreeMap<(String, String), f64> = BTreeMap::new();
    for row in server.sql_rows(EDGES_SQL).await {
        let (client, target) = (
            row["client"].as_str().unwrap().to_owned(),
            row["server"].as_str().unwrap().to_owned(),
        );
        if client != target {
            *want.entry((client, target)).or_default() += row["n"].as_f64().unwrap();
        }
    }
    assert!(!want.is_empty());
    assert_eq!(got, want, "Jaeger dependencies = the paired calls");

    // Exemplars on the latency buckets name stored traces.
    let now = now_ns() / 1_000_000_000;
    let (status, body) = get(
        &server,
        &format!(
            "/api/v1/query_exemplars?query={}&start={}&end={}",
            urlencode("traces_spanmetrics_latency_bucket{service=\"payment\"}"),
            now - 600,
            now + 60
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let trace_ids: Vec<String> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["exemplars"].as_array().unwrap().clone())
        .map(|e| e["labels"]["trace_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!trace_ids.is_empty(), "{body}");
    for id in trace_ids.iter().take(3) {
        let resp = reqwest::Client::new()
            .get(format!("{}/api/traces/{id}", server.http))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "exemplar trace {id} is stored");
    }

    // Derived at ingest and stored: the same answers from segments and after a restart.
    server.flush().await;
    check_against_sql(&server, "segments").await;
    server.restart();
    check_against_sql(&server, "after restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn span_metrics_can_be_turned_off() {
    let server = TestServer::start_with(&["--span-metrics", "false"]);
    send_fleet(&server).await;
    let stored = server.sql("SELECT count(*) FROM spans").await["rows"][0][0]
        .as_i64()
        .unwrap();
    assert!(stored > 1_000);
    let (status, body) = get(&server, SERIES).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], Value::Array(vec![]), "no derived series");
}
