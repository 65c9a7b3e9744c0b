//! Prometheus remote write: hand-built requests for the status codes, and the real Prometheus binary
//! (Debian package `prometheus`, installed by .ci/run) remote-writing its own scrape into Lumen.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prost::Message;
use serde_json::json;

use crate::server::TestServer;

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub(crate) timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Label {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Sample {
    #[prost(double, tag = "1")]
    value: f64,
    #[prost(int64, tag = "2")]
    timestamp: i64,
}

pub(crate) fn series(labels: &[(&str, &str)], samples: &[(f64, i64)]) -> TimeSeries {
    TimeSeries {
        labels: labels
            .iter()
            .map(|(n, v)| Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        samples: samples
            .iter()
            .map(|(value, timestamp)| Sample {
                value: *value,
                timestamp: *timestamp,
            })
            .collect(),
    }
}

pub(crate) async fn send(server: &TestServer, body: Vec<u8>, encoding: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/write", server.http))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", encoding)
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

pub(crate) fn snappy(request: &WriteRequest) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_requests_land_in_the_metrics_table() {
    let server = TestServer::start();
    let t0 = 1_764_000_000_000i64;
    let request = WriteRequest {
        timeseries: vec![
            series(
                &[
                    ("__name__", "bookstore_orders_total"),
                    ("job", "payment"),
                    ("status", "ok"),
                ],
                &[(3.0, t0), (5.0, t0 + 15_000)],
            ),
            series(
                &[("__name__", "inventory_level"), ("job", "warehouse")],
                &[(42.5, t0)],
            ),
        ],
    };
    let (status, body) = send(&server, snappy(&request), "snappy").await;
    assert_eq!(status, 204, "{body}");
    let rows = server
        .sql_rows("SELECT metric_name, attributes, value, time, scope_name FROM metrics ORDER BY metric_name, time")
        .await;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["metric_name"], json!("bookstore_orders_total"));
    assert_eq!(
        rows[0]["attributes"],
        json!({"job": "payment", "status": "ok"})
    );
    assert_eq!(rows[0]["value"], json!(3.0));
    assert_eq!(rows[0]["time"], json!("2025-11-24T16:00:00.000000000Z"));
    assert_eq!(rows[1]["value"], json!(5.0));
    assert_eq!(rows[2]["metric_name"], json!("inventory_level"));
    assert_eq!(rows[2]["scope_name"], json!("prometheus.remote_write"));

    // Bad bodies: 400 (not retried by Prometheus), unknown encodings 415.
    let (status, _) = send(&server, b"not snappy at all".to_vec(), "snappy").await;
    assert_eq!(status, 400);
    let (status, _) = send(&server, request.encode_to_vec(), "gzip").await;
    assert_eq!(status, 415);
    // A series without __name__ is refused; the valid one in the same request is kept.
    let mixed = WriteRequest {
        timeseries: vec![
            series(&[("job", "x")], &[(1.0, t0)]),
            series(&[("__name__", "kept_metric")], &[(7.0, t0)]),
        ],
    };
    let (status, body) = send(&server, snappy(&mixed), "snappy").await;
    assert_eq!(status, 400);
    assert!(body.contains("__name__"), "{body}");
    let kept = server
        .sql("SELECT value FROM metrics WHERE metric_name = 'kept_metric'")
        .await;
    assert_eq!(kept["rows"], json!([[7.0]]));
}

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_remote_writes_its_scrapes() {
    let binary = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let binary = binary.expect(
        "the prometheus binary is needed: apt-get install prometheus (.ci/run installs it)",
    );
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: prom\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n\
         remote_write:\n  - url: {}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n",
        server.http
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let _prometheus = Prometheus(
        Command::new(binary)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let rows = loop {
        let rows = server
            .sql_rows("SELECT attributes['job'] AS job, attributes['instance'] AS instance, value FROM metrics WHERE metric_name = 'up'")
            .await;
        if !rows.is_empty() || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        !rows.is_empty(),
        "Prometheus never remote-wrote `up` to Lumen"
    );
    assert_eq!(rows[0]["job"], json!("prom"));
    assert_eq!(rows[0]["instance"], json!(format!("127.0.0.1:{port}")));
    assert_eq!(rows[0]["value"], json!(1.0));
    // Prometheus sends its metadata too: its own counters arrive typed as monotonic sums.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = server
            .sql("SELECT count(*) FROM metrics WHERE metric_name LIKE 'prometheus_%' ")
            .await;
        if v["rows"][0][0].as_i64().unwrap_or(0) > 10 || Instant::now() > deadline {
            assert!(
                v["rows"][0][0].as_i64().unwrap_or(0) > 10,
                "too few Prometheus self-metrics: {v}"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
