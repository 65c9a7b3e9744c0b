//! Crash safety: `kill -9` while clients are sending; after restart every acknowledged item is
//! present exactly once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use crate::server::TestServer;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A logs request of `n` records whose bodies are `item-<first>` .. `item-<first + n - 1>`.
pub fn logs_request(first: u64, n: u64) -> Vec<u8> {
    let records = (first..first + n)
        .map(|i| LogRecord {
            time_unix_nano: now_ns(),
            severity_number: 9,
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!("item-{i}"))),
            }),
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("crash-test".into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// Sends batches from `writers` concurrent clients until the server stops answering; returns the
/// items whose batch was acknowledged with 200.
async fn send_until_killed(
    server: &mut TestServer,
    kill_after: Duration,
    first_item: u64,
) -> HashSet<u64> {
    const BATCH: u64 = 50;
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let url = format!("{}/v1/logs", server.http);
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let acked = acked.clone();
        let url = url.clone();
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for b in 0..10_000u64 {
                let first = first_item + (w * 10_000 + b) * BATCH;
                let resp = client
                    .post(&url)
                    .header("content-type", "application/x-protobuf")
                    .body(logs_request(first, BATCH))
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status().as_u16() == 200 => {
                        acked.lock().unwrap().extend(first..first + BATCH);
                    }
                    Ok(r) if r.status().as_u16() == 503 => continue,
                    _ => break,
                }
            }
        }));
    }
    tokio::time::sleep(kill_after).await;
    server.kill9();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        !acked.is_empty(),
        "nothing was acknowledged before the kill"
    );
    acked
}

async fn assert_exactly_once(server: &TestServer, acked: &HashSet<u64>) {
    let dupes = server
        .sql("SELECT body, count(*) AS n FROM logs GROUP BY body HAVING count(*) > 1 LIMIT 5")
        .await;
    assert_eq!(
        dupes["rows"].as_array().unwrap().len(),
        0,
        "duplicates after recovery: {dupes}"
    );
    let rows = server.sql("SELECT body FROM logs").await;
    let present: HashSet<u64> = rows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r[0].as_str()
                .unwrap()
                .strip_prefix("item-")
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    let missing: Vec<_> = acked.difference(&present).take(5).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged items lost, e.g. {missing:?}",
        acked.difference(&present).count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_before_any_flush_loses_nothing_acknowledged() {
    let mut server = TestServer::start();
    let acked = send_until_killed(&mut server, Duration::from_millis(1500), 0).await;
    server.restart();
    assert_exactly_once(&server, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_after_flushes_loses_nothing_and_duplicates_nothing() {
    // Flush every second while writing, so the kill lands between or during flushes.
    let mut server = TestServer::start_with(&["--flush-interval", "1s"]);
    let mut acked = send_until_killed(&mut server, Duration::from_millis(500), 0).await;
    server.restart();
    server.flush().await;
    acked.extend(send_until_killed(&mut server, Duration::from_millis(2500), 1_000_000_000).await);
    server.restart();
    assert_exactly_once(&server, &acked).await;
    // Recovery is repeatable: a second restart changes nothing.
    server.restart();
    assert_exactly_once(&server, &acked).await;
    let segments = std::fs::read_dir(server.data_dir().join("segments/logs"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(
        segments > 0,
        "the second phase should have flushed segments"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_segment_is_quarantined_and_the_server_keeps_serving() {
    let mut server = TestServer::start();
    let ok = reqwest::Client::new()
        .post(format!("{}/v1/logs", server.http))
        .header("content-type", "application/x-protobuf")
        .body(logs_request(0, 10))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    server.flush().await;
    let ok = reqwest::Client::new()
        .post(format!("{}/v1/logs", server.http))
        .header("content-type", "application/x-protobuf")
        .body(logs_request(100, 5))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    server.kill9();
    // Damage the flushed segment; the 5 later records are only in the WAL.
    let segment = walk(&server.data_dir().join("segments"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    std::fs::write(&segment, b"PAR1 not really").unwrap();
    // And tear the WAL tail as a crash mid-write would.
    let wal = walk(&server.data_dir().join("wal"))
        .into_iter()
        .max()
        .unwrap();
    let mut f = std::fs::OpenOptions::new().append(true).open(&wal).unwrap();
    std::io::Write::write_all(&mut f, &[0x55, 0x01, 0x00]).unwrap();
    drop(f);
    server.restart();
    let v = server.sql("SELECT count(*) FROM logs").await;
    assert_eq!(
        v["rows"][0][0],
        serde_json::json!(5),
        "the WAL records survive; the corrupt segment is set aside"
    );
    let metrics = reqwest::get(format!("{}/metrics", server.http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("lumen_segments_quarantined_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lumen_wal_truncations_total 1"),
        "{metrics}"
    );
    assert_eq!(
        std::fs::read_dir(server.data_dir().join("quarantine"))
            .unwrap()
            .count(),
        1
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path))
        } else {
            out.push(path)
        }
    }
    out
}
