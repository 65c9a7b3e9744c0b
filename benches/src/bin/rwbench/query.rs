//! `lumen-rwbench query`: PromQL `query_range` latency against any Prometheus-compatible API.
//!
//! The queries are over the fleet `write` sent (same `--series`, `--end-ms`): one warm-up, then
//! `--runs` timed runs each, the whole HTTP round trip including reading the JSON answer. The answer's
//! series and point counts are reported so the systems can be checked to agree.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::fleet::{self, SERIES_PER_TARGET};

/// One query of the benchmark.
#[derive(Clone, Debug, Serialize)]
pub struct QuerySpec {
    /// Short name.
    pub name: String,
    /// PromQL.
    pub promql: String,
    /// What it exercises.
    pub about: String,
}

/// The queries over a fleet of `targets` targets; `names` filters them (empty: all).
pub fn queries(targets: usize, names: &[String]) -> Vec<QuerySpec> {
    let t = targets / 2;
    let (instance, job) = (fleet::instance(t), fleet::job(t));
    let series = targets * SERIES_PER_TARGET;
    let all = vec![
        QuerySpec {
            name: "rate_sum_by_job".into(),
            promql: "sum by (job) (rate(http_requests_total[5m]))".into(),
            about: format!("aggregate rate over the {} http_requests_total series", targets * 10),
        },
        QuerySpec { name: "raw_selector".into(), promql: "http_requests_total".into(), about: format!("{} raw series", targets * 10) },
        QuerySpec {
            name: "histogram_p99".into(),
            promql: "histogram_quantile(0.99, sum by (job, le) (rate(http_request_duration_seconds_bucket[5m])))".into(),
            about: format!("p99 latency per job from {} bucket series", targets * 24),
        },
        QuerySpec {
            name: "selective".into(),
            promql: format!("http_requests_total{{job=\"{job}\", instance=\"{instance}\", status=\"500\"}}"),
            about: format!("2 series picked by three matchers out of {series}"),
        },
    ];
    if names.is_empty() {
        all
    } else {
        all.into_iter()
            .filter(|q| names.iter().any(|n| n == &q.name))
            .collect()
    }
}

/// The timing of one query.
#[derive(Debug, Serialize)]
pub struct QueryResult {
    /// The query.
    #[serde(flatten)]
    pub spec: QuerySpec,
    /// Series in the answer.
    pub series: usize,
    /// Points over all series in the answer.
    pub points: usize,
    /// The warm-up run (ms): the first time this process asked this query, so the server's
    /// caches hold nothing of it yet (except what earlier queries of the run left).
    pub first_ms: f64,
    /// Every timed run (ms).
    pub runs_ms: Vec<f64>,
    /// Median (ms).
    pub median_ms: f64,
    /// Fastest (ms).
    pub min_ms: f64,
    /// Slowest (ms).
    pub max_ms: f64,
    /// The first error, if a run failed.
    pub error: Option<String>,
}

/// Percent-encodes a form value (everything but RFC 3986's unreserved characters).
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Runs one `query_range` and returns (series, points).
async fn query_range(
    client: &reqwest::Client,
    base: &str,
    promql: &str,
    start_ms: i64,
    end_ms: i64,
    step: Duration,
) -> anyhow::Result<(usize, usize)> {
    let body = format!(
        "query={}&start={}&end={}&step={}",
        form_encode(promql),
        start_ms as f64 / 1000.0,
        end_ms as f64 / 1000.0,
        step.as_secs_f64()
    );
    let response = client
        .post(format!("{}/api/v1/query_range", base.trim_end_matches('/')))
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    anyhow::ensure!(
        status.is_success(),
        "HTTP {status}: {}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
    );
    let json: serde_json::Value = serde_json::from_slice(&bytes)?;
    anyhow::ensure!(
        json["status"] == "success",
        "answer: {}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
    );
    let result = json["data"]["result"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let points = result
        .iter()
        .map(|s| s["values"].as_array().map_or(0, Vec::len))
        .sum();
    Ok((result.len(), points))
}

/// Times every query: one warm-up, then `runs` runs.
pub async fn run(
    base: &str,
    specs: Vec<QuerySpec>,
    start_ms: i64,
    end_ms: i64,
    step: Duration,
    runs: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<QueryResult>> {
    use lumen_benches::stats::{median, min_max};
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .tcp_nodelay(true)
        .build()?;
    let mut results = Vec::new();
    for spec in specs {
        let mut error = None;
        let (mut series, mut points) = (0, 0);
        let started = Instant::now();
        match query_range(&client, base, &spec.promql, start_ms, end_ms, step).await {
            Ok((s, p)) => (series, points) = (s, p),
            Err(e) => error = Some(format!("{e:#}")),
        }
        let first_ms = started.elapsed().as_secs_f64() * 1000.0;
        let mut times = Vec::with_capacity(runs);
        if error.is_none() {
            for _ in 0..runs.max(1) {
                let started = Instant::now();
                match query_range(&client, base, &spec.promql, start_ms, end_ms, step).await {
                    Ok(_) => times.push(started.elapsed().as_secs_f64() * 1000.0),
                    Err(e) => {
                        error = Some(format!("{e:#}"));
                        break;
                    }
                }
            }
        }
        let (min_ms, max_ms) = min_max(&times).unwrap_or((f64::NAN, f64::NAN));
        let median_ms = median(&times).unwrap_or(f64::NAN);
        eprintln!(
            "lumen-rwbench: {:<16} {series:>6} series {points:>8} points  first {first_ms:>8.1} ms  median {median_ms:>9.1} ms ({min_ms:.1}–{max_ms:.1}){}",
            spec.name,
            error
                .as_deref()
                .map(|e| format!("  error: {e}"))
                .unwrap_or_default()
        );
        results.push(QueryResult {
            spec,
            series,
            points,
            first_ms,
            runs_ms: times,
            median_ms,
            min_ms,
            max_ms,
            error,
        });
    }
    Ok(results)
}

#[cfg(test)]
mod tests;
