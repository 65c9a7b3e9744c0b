//! `lumen-querybench`: the query benchmark against a running, loaded Lumen.
//!
//! Queries an on-call engineer or a dashboard runs, each timed end to end over
//! `POST /api/v1/sql` (planning, reading, and encoding the JSON answer) — one untimed warm-up, then
//! `--runs` timed runs; the median, min and max are reported:
//!
//! 1. `trace_by_id` — every span of one trace;
//! 2. `service_errors_15m` — one service's error spans in the last 15 minutes (newest 1000);
//! 3. `p99_by_operation_5m` — p99 latency by operation in 5-minute buckets over the last hour;
//! 4. `log_search` — the newest 100 log records whose body contains a token;
//! 5. `error_rate_by_service` — services by error rate over every stored span;
//! 6. `metrics_agg_1m` — an aggregation by metric name over the newest ~1,000,000 data points;
//!
//! and through the trace APIs Grafana calls (GET, timed the same way):
//!
//! 7. `tempo_trace_by_id` — `/api/v2/traces/<id>` as Grafana's trace view asks (protobuf);
//! 8. `jaeger_trace_by_id` — `/jaeger/api/traces/<id>` (Jaeger JSON);
//! 9. `traceql_payment_errors_1h` — `{ resource.service.name = "payment" && status = error }` over
//!    the last hour (`/api/search`, 20 traces): the selective search of the traces issue's target;
//! 10. `traceql_service_errors_1h` — the same for the service with the most errors (gateway in
//!     the fleet: about ten times as many matching spans);
//! 11. `traceql_slow_1h` — `{ duration > 1s }` over the last hour.
//!
//! "Now" is the newest span's time, so the same query text means the same thing later and in the
//! DuckDB peer (`benches/peers/duckdb_queries.py`), which reads the parameters this program picks
//! (trace id, service, token, time bounds) from its `--json` output.
//!
//! With `--data-dir` it also reports bytes on disk per row, from the manifest's segment list
//! (flush first: `POST /api/v1/admin/flush`), and with `--loadgen-report` the logs' OTLP/JSON size
//! per record, for the on-disk ratio.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use clap::Parser;
use lumen_benches::stats::{median, min_max};
use serde::Serialize;
use serde_json::Value;

/// Runs the query benchmark against a running Lumen.
#[derive(Parser, Debug)]
#[command(name = "lumen-querybench", version)]
struct Args {
    /// Lumen's HTTP base URL.
    #[arg(long, default_value = "http://127.0.0.1:4318")]
    server: String,
    /// Timed runs per query (after one untimed warm-up).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Lumen's data directory: report bytes on disk per span, log record and data point.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// `lumen-loadgen --json` output(s) (or `--report-json-size --json`) holding the logs' OTLP/JSON
    /// size per record.
    #[arg(long)]
    loadgen_report: Vec<PathBuf>,
    /// The log-search token (default: an ISBN taken from the stored logs).
    #[arg(long)]
    token: Option<String>,
    /// Print the results as JSON on stdout (the DuckDB peer reads this).
    #[arg(long)]
    json: bool,
    /// Also write the JSON results to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Per-query timeout.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
}

struct Client {
    http: reqwest::Client,
    url: String,
    /// The server's base URL, for the trace APIs.
    base: String,
}

struct Answer {
    rows: Vec<Vec<Value>>,
}

impl Client {
    async fn sql(&self, query: &str) -> anyhow::Result<Answer> {
        let response = self
            .http
            .post(&self.url)
            .json(&serde_json::json!({ "query": query }))
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.url))?;
        let status = response.status();
        let body = response.bytes().await?;
        if !status.is_success() {
            bail!(
                "HTTP {status} for {query}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let mut value: Value = serde_json::from_slice(&body).context("the answer is not JSON")?;
        let rows = match value.get_mut("rows").map(Value::take) {
            Some(Value::Array(rows)) => rows
                .into_iter()
                .map(|r| {
                    if let Value::Array(cells) = r {
                        cells
                    } else {
                        vec![r]
                    }
                })
                .collect(),
            _ => bail!("the answer has no rows"),
        };
        Ok(Answer { rows })
    }

    /// GETs a trace-API path; the answer's "rows" are the traces (or spans) it holds.
    async fn get(&self, path: &str, accept: Option<&str>) -> anyhow::Result<Answer> {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = response.status();
        let body = response.bytes().await?;
        if !status.is_success() {
            bail!(
                "HTTP {status} for {path}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let rows = match serde_json::from_slice::<Value>(&body) {
            Ok(value) => {
                let items = value
                    .get("traces")
                    .or_else(|| value.get("data"))
                    .and_then(Value::as_array)
                    .map_or(1, Vec::len);
                vec![Vec::new(); items]
            }
            // Protobuf: one trace.
            Err(_) => vec![Vec::new()],
        };
        Ok(Answer { rows })
    }

    async fn run(&self, q: &QuerySpec) -> anyhow::Result<Answer> {
        match &q.get {
            Some((path, accept)) => self.get(path, *accept).await,
            None => self.sql(&q.sql).await,
        }
    }

    async fn one(&self, query: &str) -> anyhow::Result<Vec<Value>> {
        self.sql(query)
            .await?
            .rows
            .into_iter()
            .next()
            .with_context(|| format!("no rows from {query}"))
    }
}

fn as_u64(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_f64().map(|f| f as u64))
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

fn as_time(v: &Value) -> anyhow::Result<DateTime<Utc>> {
    let text = v
        .as_str()
        .with_context(|| format!("{v} is not a timestamp"))?;
    Ok(DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("{text} is not RFC 3339"))?
        .with_timezone(&Utc))
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// What the queries are about, derived from the stored data.
#[derive(Debug, Serialize, Clone)]
struct Params {
    spans: u64,
    logs: u64,
    metric_points: u64,
    /// Oldest and newest span time; the newest is "now".
    t_min: String,
    t_max: String,
    t_minus_15m: String,
    t_minus_1h: String,
    trace_id: String,
    trace_spans: u64,
    /// The newest span's time, Unix seconds (the trace APIs' windows end there).
    t_max_unix: i64,
    service: String,
    token: String,
    /// Metric points at or after this time are aggregated by `metrics_agg_1m`.
    metrics_cutoff: String,
    metrics_points_in_window: u64,
}

/// One query of the benchmark, in Lumen's SQL or as a GET of a trace API.
struct QuerySpec {
    name: &'static str,
    what: &'static str,
    /// The SQL, or the path of a GET.
    sql: String,
    /// A trace-API GET instead of SQL: the path and the Accept header.
    get: Option<(String, Option<&'static str>)>,
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn trace_api(
    name: &'static str,
    what: &'static str,
    path: String,
    accept: Option<&'static str>,
) -> QuerySpec {
    QuerySpec {
        name,
        what,
        sql: format!("GET {path}"),
        get: Some((path, accept)),
    }
}

fn queries(p: &Params) -> Vec<QuerySpec> {
    vec![
        QuerySpec { name: "trace_by_id", what: "every span of one trace", sql: format!("SELECT * FROM spans WHERE trace_id = '{}' ORDER BY time", p.trace_id), get: None },
        QuerySpec {
            name: "service_errors_15m",
            what: "one service's error spans in the last 15 minutes (newest 1000)",
            sql: format!(
                "SELECT time, trace_id, span_id, name, duration_ns, status_message FROM spans WHERE service_name = '{}' AND status_code = 'error' AND time >= '{}' AND time <= '{}' ORDER BY time DESC LIMIT 1000",
                p.service, p.t_minus_15m, p.t_max
            ),
            get: None,
        },
        QuerySpec {
            name: "p99_by_operation_5m",
            what: "p99 latency by operation in 5-minute buckets over the last hour",
            sql: format!(
                "SELECT date_bin(INTERVAL '5 minutes', time) AS bucket, service_name, name, approx_percentile_cont(duration_ns, 0.99) AS p99_ns, count(*) AS spans FROM spans WHERE time >= '{}' AND time <= '{}' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
                p.t_minus_1h, p.t_max
            ),
            get: None,
        },
        QuerySpec {
            name: "log_search",
            what: "the newest 100 log records whose body contains a token",
            sql: format!("SELECT time, service_name, severity_text, body, trace_id FROM logs WHERE body LIKE '%{}%' ORDER BY time DESC LIMIT 100", p.token),
            get: None,
        },
        QuerySpec {
            name: "error_rate_by_service",
            what: "services by error rate over every stored span",
            sql: "SELECT service_name, count(*) AS spans, sum(CASE WHEN status_code = 'error' THEN 1 ELSE 0 END) AS errors, avg(CASE WHEN status_code = 'error' THEN 1.0 ELSE 0.0 END) AS error_rate FROM spans GROUP BY service_name ORDER BY error_rate DESC LIMIT 10".to_string(),
            get: None,
        },
        QuerySpec {
            name: "metrics_agg_1m",
            what: "count, avg, min, max of values and sum of counts by metric over the newest ~1M points",
            sql: format!(
                "SELECT metric_name, count(*) AS points, avg(value) AS avg_value, min(value) AS min_value, max(value) AS max_value, sum(\"count\") AS observations FROM metrics WHERE time >= '{}' GROUP BY metric_name ORDER BY metric_name",
                p.metrics_cutoff
            ),
            get: None,
        },
        trace_api(
            "tempo_trace_by_id",
            "one trace through Tempo's /api/v2/traces, protobuf, as Grafana's trace view asks",
            format!("/api/v2/traces/{}", p.trace_id),
            Some("application/protobuf"),
        ),
        trace_api(
            "jaeger_trace_by_id",
            "one trace through the Jaeger API, Jaeger JSON",
            format!("/jaeger/api/traces/{}", p.trace_id),
            None,
        ),
        trace_api(
            "traceql_payment_errors_1h",
            "TraceQL: the payment service's error spans over the last hour (20 traces)",
            format!(
                "/api/search?q={}&start={}&end={}&limit=20",
                encode("{ resource.service.name = \"payment\" && status = error }"),
                p.t_max_unix - 3_600,
                p.t_max_unix + 1
            ),
            None,
        ),
        trace_api(
            "traceql_service_errors_1h",
            "TraceQL: the most failing service's error spans over the last hour (20 traces)",
            format!(
                "/api/search?q={}&start={}&end={}&limit=20",
                encode(&format!("{{ resource.service.name = \"{}\" && status = error }}", p.service)),
                p.t_max_unix - 3_600,
                p.t_max_unix + 1
            ),
            None,
        ),
        trace_api(
            "traceql_slow_1h",
            "TraceQL: spans over one second in the last hour (20 traces)",
            format!(
                "/api/search?q={}&start={}&end={}&limit=20",
                encode("{ duration > 1s }"),
                p.t_max_unix - 3_600,
                p.t_max_unix + 1
            ),
            None,
        ),
    ]
}

async fn derive_params(client: &Client, token: Option<String>) -> anyhow::Result<Params> {
    let row = client
        .one("SELECT count(*), min(time), max(time) FROM spans")
        .await?;
    let spans = as_u64(&row[0]);
    anyhow::ensure!(
        spans > 0,
        "the spans table is empty: load data first (lumen-loadgen)"
    );
    let (t_min, t_max) = (as_time(&row[1])?, as_time(&row[2])?);
    let t15 = t_max - chrono::Duration::minutes(15);
    let t60 = t_max - chrono::Duration::hours(1);

    // A root span from the middle of the stored time range.
    let mid = t_min + (t_max - t_min) / 2;
    let mut trace_id = None;
    for window_secs in [10, 600, 86_400 * 365] {
        let q = format!(
            "SELECT trace_id FROM spans WHERE parent_span_id IS NULL AND time >= '{}' AND time < '{}' LIMIT 1",
            ts(mid),
            ts(mid + chrono::Duration::seconds(window_secs))
        );
        if let Some(row) = client.sql(&q).await?.rows.into_iter().next() {
            trace_id = row[0].as_str().map(str::to_string);
            break;
        }
    }
    let trace_id = match trace_id {
        Some(t) => t,
        None => client.one("SELECT trace_id FROM spans LIMIT 1").await?[0]
            .as_str()
            .context("no trace id")?
            .to_string(),
    };
    let trace_spans = as_u64(
        &client
            .one(&format!(
                "SELECT count(*) FROM spans WHERE trace_id = '{trace_id}'"
            ))
            .await?[0],
    );

    let q = format!(
        "SELECT service_name, count(*) AS n FROM spans WHERE status_code = 'error' AND time >= '{}' GROUP BY service_name ORDER BY n DESC, service_name LIMIT 1",
        ts(t15)
    );
    let service = match client.sql(&q).await?.rows.into_iter().next() {
        Some(row) => row[0].as_str().unwrap_or("gateway").to_string(),
        None => "gateway".to_string(),
    };

    let logs = as_u64(&client.one("SELECT count(*) FROM logs").await?[0]);
    let token = match token {
        Some(t) => t,
        None => {
            // "book <isbn> (<title>) loaded from the database": an ISBN is a needle a person searches for.
            let rows = client.sql("SELECT body FROM logs WHERE body LIKE 'book % loaded from the database' LIMIT 1").await?.rows;
            match rows
                .first()
                .and_then(|r| r[0].as_str())
                .and_then(|b| b.split_whitespace().nth(1))
            {
                Some(isbn) => isbn.to_string(),
                None => "credentials".to_string(),
            }
        }
    };

    let row = client
        .one("SELECT count(*), min(time) FROM metrics")
        .await?;
    let metric_points = as_u64(&row[0]);
    let (metrics_cutoff, metrics_points_in_window) = if metric_points > 1_000_000 {
        let cut = client
            .one("SELECT time FROM metrics ORDER BY time DESC LIMIT 1 OFFSET 999999")
            .await?;
        let cutoff = as_time(&cut[0])?;
        let n = as_u64(
            &client
                .one(&format!(
                    "SELECT count(*) FROM metrics WHERE time >= '{}'",
                    ts(cutoff)
                ))
                .await?[0],
        );
        (ts(cutoff), n)
    } else if metric_points > 0 {
        (ts(as_time(&row[1])?), metric_points)
    } else {
        (ts(t_min), 0)
    };

    Ok(Params {
        spans,
        logs,
        metric_points,
        t_min: ts(t_min),
        t_max: ts(t_max),
        t_minus_15m: ts(t15),
        t_minus_1h: ts(t60),
        trace_id,
        trace_spans,
        t_max_unix: t_max.timestamp(),
        service,
        token,
        metrics_cutoff,
        metrics_points_in_window,
    })
}

#[derive(Debug, Serialize)]
struct QueryResult {
    name: &'static str,
    what: &'static str,
    sql: String,
    rows: usize,
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
    runs_ms: Vec<f64>,
}

#[derive(Debug, Serialize, Default)]
struct TableDisk {
    segments: u64,
    rows: u64,
    bytes: u64,
    bytes_per_row: f64,
}

#[derive(Debug, Serialize, Default)]
struct Disk {
    spans: TableDisk,
    logs: TableDisk,
    metrics: TableDisk,
    /// Bytes still in the WAL directory (0 right after a flush).
    wal_bytes: u64,
    /// OTLP/JSON bytes per log record (compact: default-valued fields omitted), from the loadgen report.
    logs_otlp_json_bytes_per_record: Option<f64>,
    /// Stored bytes per log record ÷ OTLP/JSON bytes per log record (target ≤ 0.125).
    logs_disk_to_json_ratio: Option<f64>,
    /// Protobuf bytes per span, from the loadgen report.
    spans_otlp_protobuf_bytes_per_span: Option<f64>,
}

fn disk_figures(data_dir: &std::path::Path) -> anyhow::Result<Disk> {
    let manifest_path = data_dir.join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let manifest: Value = serde_json::from_str(&text)?;
    let mut disk = Disk::default();
    for seg in manifest
        .get("segments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let table = match seg.get("table").and_then(Value::as_str) {
            Some("spans") => &mut disk.spans,
            Some("logs") => &mut disk.logs,
            Some("metrics") => &mut disk.metrics,
            _ => continue,
        };
        table.segments += 1;
        table.rows += seg.get("rows").map_or(0, as_u64);
        table.bytes += seg.get("bytes").map_or(0, as_u64);
    }
    for t in [&mut disk.spans, &mut disk.logs, &mut disk.metrics] {
        t.bytes_per_row = if t.rows > 0 {
            t.bytes as f64 / t.rows as f64
        } else {
            0.0
        };
    }
    if let Ok(entries) = std::fs::read_dir(data_dir.join("wal")) {
        disk.wal_bytes = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
    }
    Ok(disk)
}

/// Finds `<signal>`'s sizes object in a loadgen report (either shape).
fn find_sizes(value: &Value, signal: &str, out: &mut Option<Value>) {
    match value {
        Value::Object(map) => {
            if map.get("signal").and_then(Value::as_str) == Some(signal) {
                let sizes = map
                    .get("sizes")
                    .or_else(|| map.get("pool").and_then(|p| p.get("sizes")));
                if let Some(s) = sizes
                    && s.get("json_sample_items")
                        .and_then(Value::as_u64)
                        .unwrap_or(0)
                        > 0
                {
                    *out = Some(s.clone());
                    return;
                }
                if out.is_none()
                    && let Some(s) = sizes
                {
                    *out = Some(s.clone());
                }
            }
            for v in map.values() {
                find_sizes(v, signal, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| find_sizes(v, signal, out)),
        _ => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.runs >= 1, "--runs must be at least 1");
    let client = Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(args.timeout_secs))
            .build()?,
        url: format!("{}/api/v1/sql", args.server.trim_end_matches('/')),
        base: args.server.trim_end_matches('/').to_string(),
    };
    let params = derive_params(&client, args.token.clone()).await?;
    eprintln!(
        "lumen-querybench: {} spans, {} log records, {} metric points; trace {} ({} spans), service {}, token {:?}, now = {}",
        params.spans,
        params.logs,
        params.metric_points,
        params.trace_id,
        params.trace_spans,
        params.service,
        params.token,
        params.t_max
    );

    let mut results = Vec::new();
    for q in queries(&params) {
        let warm = client
            .run(&q)
            .await
            .with_context(|| format!("query {} failed", q.name))?;
        let mut runs = Vec::with_capacity(args.runs);
        let mut rows = warm.rows.len();
        for _ in 0..args.runs {
            let started = Instant::now();
            let answer = client.run(&q).await?;
            runs.push(started.elapsed().as_secs_f64() * 1000.0);
            rows = answer.rows.len();
        }
        let (min_ms, max_ms) = min_max(&runs).unwrap_or((0.0, 0.0));
        let median_ms = median(&runs).unwrap_or(0.0);
        eprintln!(
            "lumen-querybench: {:<22} median {:>9.1} ms ({} rows)",
            q.name, median_ms, rows
        );
        results.push(QueryResult {
            name: q.name,
            what: q.what,
            sql: q.sql,
            rows,
            median_ms,
            min_ms,
            max_ms,
            runs_ms: runs,
        });
    }

    let mut disk = match &args.data_dir {
        Some(dir) => Some(disk_figures(dir)?),
        None => None,
    };
    if let Some(disk) = &mut disk {
        for path in &args.loadgen_report {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let value: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            let mut logs = None;
            find_sizes(&value, "logs", &mut logs);
            if let Some(per) = logs
                .as_ref()
                .and_then(|s| s.get("json_bytes_per_item"))
                .and_then(Value::as_f64)
                .filter(|v| *v > 0.0)
            {
                disk.logs_otlp_json_bytes_per_record = Some(per);
            }
            let mut spans = None;
            find_sizes(&value, "traces", &mut spans);
            if let Some(per) = spans
                .as_ref()
                .and_then(|s| s.get("protobuf_bytes_per_item"))
                .and_then(Value::as_f64)
            {
                disk.spans_otlp_protobuf_bytes_per_span = Some(per);
            }
        }
        if let Some(json) = disk.logs_otlp_json_bytes_per_record
            && disk.logs.rows > 0
        {
            disk.logs_disk_to_json_ratio = Some(disk.logs.bytes_per_row / json);
        }
    }

    let out = serde_json::json!({ "engine": "lumen", "server": args.server, "runs": args.runs, "params": params, "queries": results, "disk": disk });
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_string_pretty(&out)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "lumen-querybench against {} — {} timed runs per query after one warm-up",
        args.server, args.runs
    );
    println!(
        "{} spans, {} log records, {} metric points; now = {}",
        params.spans, params.logs, params.metric_points, params.t_max
    );
    println!();
    println!(
        "{:<24} {:>10} {:>10} {:>10} {:>8}",
        "query", "median ms", "min ms", "max ms", "rows"
    );
    for r in &results {
        println!(
            "{:<24} {:>10.1} {:>10.1} {:>10.1} {:>8}",
            r.name, r.median_ms, r.min_ms, r.max_ms, r.rows
        );
    }
    if let Some(d) = &disk {
        println!();
        println!(
            "{:<10} {:>9} {:>14} {:>14} {:>12}",
            "table", "segments", "rows", "bytes", "bytes/row"
        );
        for (name, t) in [
            ("spans", &d.spans),
            ("logs", &d.logs),
            ("metrics", &d.metrics),
        ] {
            println!(
                "{:<10} {:>9} {:>14} {:>14} {:>12.2}",
                name, t.segments, t.rows, t.bytes, t.bytes_per_row
            );
        }
        println!("WAL bytes left: {}", d.wal_bytes);
        if let (Some(json), Some(ratio)) =
            (d.logs_otlp_json_bytes_per_record, d.logs_disk_to_json_ratio)
        {
            println!(
                "logs: {:.1} B/record on disk vs {json:.1} B/record as OTLP/JSON = 1/{:.1} (target ≤ 1/8)",
                d.logs.bytes_per_row,
                1.0 / ratio
            );
        }
    }
    Ok(())
}
