//! `lumen-rwbench`: Prometheus remote write ingest and PromQL query latency, against Lumen or any
//! system with a remote write receiver and the Prometheus HTTP API (Prometheus, VictoriaMetrics).
//!
//! `write` generates a fleet of regularly scraped targets (100 series each: counters, gauges,
//! histogram buckets, a summary; see `fleet.rs`) over a time window ending at `--end-ms`, encodes
//! every request (snappy-compressed protobuf `WriteRequest`, remote write v1) before the timed phase,
//! and sends them with `--connections` connections, one request in flight each. It reports accepted
//! samples/s, acknowledgement latency and the receiver's CPU and resident memory (`--pid`).
//!
//! `query` times `query_range` over the same fleet (same `--series`, `--end-ms`, `--seed`).
//!
//! ```sh
//! END=$(( $(date +%s) / 15 * 15000 ))
//! lumen-rwbench write --url http://127.0.0.1:4318/api/v1/write --series 10000 --window 1h --end-ms $END --pid $(pgrep -n lumen)
//! lumen-rwbench query --url http://127.0.0.1:4318 --series 10000 --end-ms $END --runs 5
//! ```

mod fleet;
mod prompb;
mod query;
mod write;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use lumen_benches::parse_count;
use lumen_storage::duration::parse_seconds_or_duration;
use serde::Serialize;

use crate::fleet::{FleetSpec, SERIES_PER_TARGET};

/// Prometheus remote write load and PromQL query latency.
#[derive(Parser, Debug)]
#[command(name = "lumen-rwbench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Send the fleet's samples with remote write and report the ingest rate.
    Write(WriteArgs),
    /// Time PromQL range queries over the fleet.
    Query(QueryArgs),
}

/// Which samples: the same flags give the same samples, byte for byte.
#[derive(Args, Debug, Clone)]
struct FleetArgs {
    /// Series (a multiple of 100: each target exposes 100).
    #[arg(long, default_value = "10000", value_parser = parse_count)]
    series: u64,
    /// Scrape interval.
    #[arg(long, default_value = "15s", value_parser = parse_seconds_or_duration)]
    interval: Duration,
    /// The samples' time range, ending at --end-ms.
    #[arg(long, default_value = "1h", value_parser = parse_seconds_or_duration)]
    window: Duration,
    /// End of the window, ms since the epoch (default: now, rounded down to the interval). Give every
    /// system under test the same value so they get the same samples.
    #[arg(long)]
    end_ms: Option<i64>,
    /// Random ± ms on each scrape's timestamp (0: targets scraped exactly every interval).
    #[arg(long, default_value_t = 0)]
    jitter_ms: i64,
    /// Share of series that stay constant over the window (idle counters, flat gauges); 0: every
    /// series changes at every scrape.
    #[arg(long, default_value_t = 0.0)]
    idle_share: f64,
    /// Seed of the values.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

impl FleetArgs {
    fn spec(&self) -> FleetSpec {
        let interval_ms = i64::try_from(self.interval.as_millis())
            .unwrap_or(15_000)
            .max(1);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        FleetSpec {
            targets: (self.series as usize).div_ceil(SERIES_PER_TARGET).max(1),
            interval_ms,
            scrapes: ((self.window.as_millis() as i64 / interval_ms).max(1)) as usize,
            end_ms: self.end_ms.unwrap_or(now_ms / interval_ms * interval_ms),
            jitter_ms: self.jitter_ms.max(0),
            idle_share: self.idle_share.clamp(0.0, 1.0),
            seed: self.seed,
        }
    }
}

#[derive(Args, Debug)]
struct WriteArgs {
    /// Remote write URL (Lumen and VictoriaMetrics: /api/v1/write on the HTTP port; Prometheus:
    /// /api/v1/write with --web.enable-remote-write-receiver).
    #[arg(long, default_value = "http://127.0.0.1:4318/api/v1/write")]
    url: String,
    #[command(flatten)]
    fleet: FleetArgs,
    /// Concurrent connections, each with one request in flight; targets are split between them.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Samples per request, at most (current Prometheus's max_samples_per_send default is 2000).
    #[arg(long, default_value_t = 2000)]
    samples_per_request: usize,
    /// Consecutive samples of one series per request (Prometheus sends 1).
    #[arg(long, default_value_t = 1)]
    samples_per_series: usize,
    /// The receiver's process id: CPU and resident memory go into the report.
    #[arg(long)]
    pid: Option<u32>,
    /// Lumen's HTTP base URL: its /metrics is scraped before and after for WAL and flush figures.
    #[arg(long, default_value = "")]
    lumen_http: String,
    /// A name for the system under test, copied into the report.
    #[arg(long, default_value = "")]
    label: String,
    /// Per-request timeout.
    #[arg(long, default_value = "60s", value_parser = parse_seconds_or_duration)]
    timeout: Duration,
    /// Pause before retrying a 429 / 5xx answer that names no Retry-After.
    #[arg(long, default_value = "250ms", value_parser = parse_seconds_or_duration)]
    retry_backoff: Duration,
    /// Write the JSON report here too.
    #[arg(long)]
    json_out: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct QueryArgs {
    /// Base URL of the Prometheus HTTP API (Lumen's HTTP port, Prometheus's or VictoriaMetrics's).
    #[arg(long, default_value = "http://127.0.0.1:4318")]
    url: String,
    #[command(flatten)]
    fleet: FleetArgs,
    /// Range of each query, ending at the window's end.
    #[arg(long, default_value = "1h", value_parser = parse_seconds_or_duration)]
    range: Duration,
    /// Resolution step.
    #[arg(long, default_value = "15s", value_parser = parse_seconds_or_duration)]
    step: Duration,
    /// Timed runs per query (after one warm-up).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Only these queries (rate_sum_by_job, raw_selector, histogram_p99, selective); repeat or comma-separate.
    #[arg(long = "only", value_delimiter = ',')]
    only: Vec<String>,
    /// Per-query timeout.
    #[arg(long, default_value = "120s", value_parser = parse_seconds_or_duration)]
    timeout: Duration,
    /// A name for the system under test, copied into the report.
    #[arg(long, default_value = "")]
    label: String,
    /// Write the JSON report here too.
    #[arg(long)]
    json_out: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct WriteReport {
    label: String,
    url: String,
    command: String,
    series: usize,
    targets: usize,
    interval_secs: f64,
    scrapes_per_series: usize,
    start_ms: i64,
    end_ms: i64,
    jitter_ms: i64,
    idle_share: f64,
    seed: u64,
    connections: usize,
    samples_per_request: usize,
    samples_per_series: usize,
    pool_samples: u64,
    pool_requests: u64,
    /// Snappy-compressed bytes per sample on the wire.
    wire_bytes_per_sample: f64,
    /// Protobuf bytes per sample before compression.
    protobuf_bytes_per_sample: f64,
    encode_secs: f64,
    #[serde(flatten)]
    result: write::Report,
}

#[derive(Debug, Serialize)]
struct QueryReport {
    label: String,
    url: String,
    command: String,
    series: usize,
    start_ms: i64,
    end_ms: i64,
    step_secs: f64,
    runs: usize,
    queries: Vec<query::QueryResult>,
}

fn write_json<T: Serialize>(value: &T, path: Option<&PathBuf>) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    if let Some(path) = path {
        std::fs::write(path, &text)?;
    }
    Ok(())
}

fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

async fn write_command(args: WriteArgs) -> anyhow::Result<()> {
    let spec = args.fleet.spec();
    let batching = write::Batching {
        connections: args.connections.max(1),
        samples_per_request: args.samples_per_request,
        samples_per_series: args.samples_per_series,
    };
    eprintln!(
        "lumen-rwbench: encoding {} series × {} scrapes = {} samples ({} … {} ms)",
        spec.targets * SERIES_PER_TARGET,
        spec.scrapes,
        spec.samples(),
        spec.start_ms(),
        spec.end_ms
    );
    let pool_spec = spec.clone();
    let pool = tokio::task::spawn_blocking(move || {
        write::build_pool(&pool_spec, batching, &mut |line| {
            eprintln!("lumen-rwbench: {line}")
        })
    })
    .await?;
    eprintln!(
        "lumen-rwbench: {} requests, {:.1} MB snappy ({:.2} B/sample; protobuf {:.1} B/sample), encoded in {:.1} s; sending to {}",
        pool.requests,
        pool.wire_bytes as f64 / 1e6,
        pool.wire_bytes as f64 / pool.samples.max(1) as f64,
        pool.protobuf_bytes as f64 / pool.samples.max(1) as f64,
        pool.encode_secs,
        args.url
    );
    let pool = Arc::new(pool);
    let config = write::SendConfig {
        url: args.url.clone(),
        timeout: args.timeout,
        backoff: args.retry_backoff,
        pid: args.pid,
        lumen_http: args.lumen_http.clone(),
    };
    let result = write::send(pool.clone(), config).await?;
    let report = WriteReport {
        label: args.label.clone(),
        url: args.url.clone(),
        command: command_line(),
        series: spec.targets * SERIES_PER_TARGET,
        targets: spec.targets,
        interval_secs: spec.interval_ms as f64 / 1000.0,
        scrapes_per_series: spec.scrapes,
        start_ms: spec.start_ms(),
        end_ms: spec.end_ms,
        jitter_ms: spec.jitter_ms,
        idle_share: spec.idle_share,
        seed: spec.seed,
        connections: batching.connections,
        samples_per_request: batching.samples_per_request,
        samples_per_series: batching.samples_per_series,
        pool_samples: pool.samples,
        pool_requests: pool.requests,
        wire_bytes_per_sample: pool.wire_bytes as f64 / pool.samples.max(1) as f64,
        protobuf_bytes_per_sample: pool.protobuf_bytes as f64 / pool.samples.max(1) as f64,
        encode_secs: pool.encode_secs,
        result,
    };
    let r = &report.result;
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    println!(
        "{} {}: {} samples accepted in {:.2} s = {:.0} samples/s ({:.1} req/s, {:.1} MB/s) · ack p50 {:.2} ms p99 {:.2} ms max {:.2} ms · retried {} · failed {} ({} samples) · receiver cpu {} cores, rss peak {} MiB, hwm {} MiB · loadgen cpu {} cores",
        if report.label.is_empty() {
            "remote write"
        } else {
            report.label.as_str()
        },
        report.url,
        r.accepted_samples,
        r.elapsed_secs,
        r.samples_per_sec,
        r.requests_per_sec,
        r.wire_mb_per_sec,
        r.latency.p50_ms,
        r.latency.p99_ms,
        r.latency.max_ms,
        r.retries,
        r.failures,
        r.rejected_samples,
        opt(r.receiver.cpu_cores, 2),
        opt(r.receiver.rss_peak_sampled_mib, 0),
        opt(r.receiver.rss_hwm_mib, 0),
        opt(r.loadgen_cpu_cores, 2),
    );
    if let Some(e) = &r.first_error {
        println!("first error: {e}");
    }
    if let Some(l) = &r.lumen {
        println!(
            "lumen: {:.0} WAL fsyncs ({:.1} s, {:.0} MB), {:.0} flushes ({:.1} s), {:.0} head-full refusals, head {:.0} MiB / {:.0} rows at the end",
            l.wal_fsyncs,
            l.wal_fsync_seconds,
            l.wal_bytes / 1e6,
            l.flushes,
            l.flush_seconds,
            l.writes_rejected_head_full,
            l.head_mib_end,
            l.head_rows_end
        );
    }
    write_json(&report, args.json_out.as_ref())
}

async fn query_command(args: QueryArgs) -> anyhow::Result<()> {
    let spec = args.fleet.spec();
    let range_ms = i64::try_from(args.range.as_millis()).unwrap_or(3_600_000);
    let (start_ms, end_ms) = (spec.end_ms - range_ms, spec.end_ms);
    let specs = query::queries(spec.targets, &args.only);
    anyhow::ensure!(!specs.is_empty(), "no query matches --only {:?}", args.only);
    let queries = query::run(
        &args.url,
        specs,
        start_ms,
        end_ms,
        args.step,
        args.runs,
        args.timeout,
    )
    .await?;
    let report = QueryReport {
        label: args.label.clone(),
        url: args.url.clone(),
        command: command_line(),
        series: spec.targets * SERIES_PER_TARGET,
        start_ms,
        end_ms,
        step_secs: args.step.as_secs_f64(),
        runs: args.runs,
        queries,
    };
    for q in &report.queries {
        println!(
            "{:<16} {:>6} series {:>8} points  first {:>8.1} ms  median {:>9.1} ms  ({:.1}–{:.1})  {}{}",
            q.spec.name,
            q.series,
            q.points,
            q.first_ms,
            q.median_ms,
            q.min_ms,
            q.max_ms,
            q.spec.promql,
            q.error
                .as_deref()
                .map(|e| format!("  ERROR {e}"))
                .unwrap_or_default()
        );
    }
    write_json(&report, args.json_out.as_ref())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // One thread sends everything: the requests are pre-encoded, and the receiver gets the cores.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Write(args) => runtime.block_on(write_command(args)),
        Command::Query(args) => runtime.block_on(query_command(args)),
    }
}
