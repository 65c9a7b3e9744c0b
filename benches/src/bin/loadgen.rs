//! `lumen-loadgen`: drives a running Lumen with OTLP made by the bookstore fleet simulator.
//!
//! Every request is generated and encoded before the timed phase (see `lumen_benches::pool`), then
//! `--connections` connections send them as fast as acknowledgements come back (`--rate 0`) or on a
//! fixed schedule of items per second. Each connection has one request in flight, so the number of
//! connections is the number of concurrent writers Lumen's WAL group commit can batch together.
//!
//! A progress line goes to stderr every second; the final report (per signal: accepted items/s,
//! requests/s, MB/s, acknowledgement latency p50/p99/max, partial-success rejections, retried
//! 503 / UNAVAILABLE answers, and Lumen's CPU and resident memory when `--pid` is given) goes to
//! stdout, as text or with `--json` as one JSON document.
//!
//! ```sh
//! lumen-loadgen --signal traces --connections 4 --batch-size 1000 --duration 30s --pid $(pgrep -n lumen)
//! lumen-loadgen --protocol http-json --endpoint http://127.0.0.1:4318 --signal logs --rate 50000 --items 1M
//! lumen-loadgen --signal logs --report-json-size      # only the OTLP/JSON size of the simulated logs
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::{Buf as _, BufMut as _, Bytes};
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use lumen_benches::pool::{EncodedSizes, Pool, PoolSpec, Signal, WireFormat};
use lumen_benches::prom::Scrape;
use lumen_benches::{parse_count, procfs};
use lumen_storage::duration::parse_seconds_or_duration;
use serde::Serialize;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::{Channel, Endpoint};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Protocol {
    /// OTLP/gRPC (protobuf over HTTP/2; one HTTP/2 connection per `--connections`).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (HTTP/1.1).
    HttpProtobuf,
    /// OTLP/HTTP with JSON bodies (HTTP/1.1).
    HttpJson,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SignalArg {
    Traces,
    Logs,
    Metrics,
    /// traces, then logs, then metrics, each for the whole `--duration` / `--items`.
    All,
}

/// Drives a running Lumen with pre-encoded OTLP from the bookstore fleet simulator.
#[derive(Parser, Debug)]
#[command(name = "lumen-loadgen", version)]
struct Args {
    /// Where Lumen listens: its gRPC port for `--protocol grpc`, its HTTP port for the HTTP protocols.
    #[arg(long, default_value = "http://127.0.0.1:4317")]
    endpoint: String,
    /// Wire protocol.
    #[arg(long, value_enum, default_value = "grpc")]
    protocol: Protocol,
    /// Which signal to send.
    #[arg(long, value_enum, default_value = "traces")]
    signal: SignalArg,
    /// Concurrent connections, each with one request in flight.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Items (spans, log records, data points) per export request.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// Items per second to send (0 = as fast as Lumen acknowledges).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// How long to send, per signal (default 30s unless --items is given).
    #[arg(long, value_parser = parse_seconds_or_duration)]
    duration: Option<Duration>,
    /// Stop after this many items per signal (e.g. 10M); with --duration, whichever comes first.
    #[arg(long, value_parser = parse_count)]
    items: Option<u64>,
    /// Seed of the fleet simulation.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Gzip request bodies (HTTP: pre-compressed in the pool; gRPC: compressed by tonic as it sends).
    #[arg(long)]
    gzip: bool,
    /// Print the final report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Lumen's process id: its resident memory (sampled every second, and VmHWM at the end) and CPU
    /// time go into the report.
    #[arg(long)]
    pid: Option<u32>,
    /// Lumen's HTTP base URL, scraped (/metrics) before and after each signal for WAL fsync and flush
    /// figures; empty to skip.
    #[arg(long, default_value = "http://127.0.0.1:4318")]
    lumen_http: String,
    /// Storefront requests per second of the simulated bookstore (default 100 for traces and logs,
    /// 10 for metrics, whose volume comes from collections rather than requests).
    #[arg(long)]
    fleet_rate: Option<f64>,
    /// Simulated time between metric collections, each exporting every series once (default 10s for
    /// traces and logs, 1s for metrics so a pool of points needs less simulated traffic).
    #[arg(long, value_parser = parse_seconds_or_duration)]
    metric_interval: Option<Duration>,
    /// Items to simulate before the pool replays time-shifted cycles with fresh trace ids.
    #[arg(long, default_value = "1M", value_parser = parse_count)]
    base_items: u64,
    /// Memory for the pre-encoded pool per signal, in MB; a run needing more wraps around it.
    #[arg(long, default_value_t = 3000)]
    pool_mb: u64,
    /// Pause before retrying a gRPC UNAVAILABLE / RESOURCE_EXHAUSTED that names no delay (HTTP uses Retry-After).
    #[arg(long, default_value = "250ms", value_parser = parse_seconds_or_duration)]
    retry_backoff: Duration,
    /// Per-request timeout.
    #[arg(long, default_value = "30s", value_parser = parse_seconds_or_duration)]
    timeout: Duration,
    /// Timed runs per signal (the pool is built once; each run continues where the last one stopped
    /// in it). The report gives every run and the median.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Also write the JSON report to this file.
    #[arg(long)]
    json_out: Option<std::path::PathBuf>,
    /// Do not send anything: build the pool(s) and report the protobuf and OTLP/JSON size per item.
    #[arg(long)]
    report_json_size: bool,
}

impl Args {
    fn fleet_rate(&self, signal: Signal) -> f64 {
        self.fleet_rate.unwrap_or(if signal == Signal::Metrics {
            10.0
        } else {
            100.0
        })
    }

    fn metric_interval(&self, signal: Signal) -> Duration {
        self.metric_interval
            .unwrap_or(Duration::from_secs(if signal == Signal::Metrics {
                1
            } else {
                10
            }))
    }

    fn signals(&self) -> Vec<Signal> {
        match self.signal {
            SignalArg::Traces => vec![Signal::Traces],
            SignalArg::Logs => vec![Signal::Logs],
            SignalArg::Metrics => vec![Signal::Metrics],
            SignalArg::All => Signal::ALL.to_vec(),
        }
    }

    fn format(&self) -> WireFormat {
        match self.protocol {
            Protocol::HttpJson => WireFormat::Json,
            Protocol::Grpc | Protocol::HttpProtobuf => WireFormat::Protobuf,
        }
    }

    /// Items the pool for `signal` should hold.
    fn pool_items(&self, signal: Signal) -> u64 {
        let secs = self
            .duration
            .unwrap_or(Duration::from_secs(30))
            .as_secs_f64();
        let by_time = if self.rate > 0.0 {
            (self.rate * secs * 1.02).ceil() as u64
        } else {
            // As fast as possible: enough for 1.5× the targets of docs/benchmarks.md.
            let guess = match signal {
                Signal::Traces => 150_000.0,
                Signal::Logs => 300_000.0,
                Signal::Metrics => 1_500_000.0,
            };
            (guess * secs) as u64
        };
        let per_run = match (self.items, self.duration) {
            (Some(items), None) => items,
            (Some(items), Some(_)) => items.min(by_time),
            (None, _) => by_time,
        };
        per_run.saturating_mul(self.repeat.max(1) as u64)
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The `partial_success` of any `Export*ServiceResponse` (all three share this shape).
#[derive(Clone, PartialEq, prost::Message)]
struct ExportResponse {
    #[prost(message, optional, tag = "1")]
    partial_success: Option<PartialSuccess>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PartialSuccess {
    #[prost(int64, tag = "1")]
    rejected: i64,
    #[prost(string, tag = "2")]
    error_message: String,
}

/// A tonic codec that sends pre-encoded protobuf bytes and decodes the export response.
#[derive(Clone, Copy, Debug, Default)]
struct RawCodec;

#[derive(Clone, Copy, Debug, Default)]
struct RawEncoder;

#[derive(Clone, Copy, Debug, Default)]
struct ResponseDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ExportResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for ResponseDecoder {
    type Item = ExportResponse;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<ExportResponse>, tonic::Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        prost::Message::decode(bytes)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("undecodable response: {e}")))
    }
}

/// One connection to Lumen.
#[derive(Clone)]
enum Conn {
    Grpc(tonic::client::Grpc<Channel>),
    Http {
        client: reqwest::Client,
        url: String,
        content_type: &'static str,
        json: bool,
        gzip: bool,
    },
}

/// What one attempt came to.
enum Attempt {
    /// Acknowledged; how many items the partial success says were rejected.
    Ok { rejected: u64 },
    /// Overloaded: retry after this long.
    Retry(Duration),
    /// Failed for good.
    Failed(String),
}

impl Conn {
    async fn connect(args: &Args, signal: Signal) -> anyhow::Result<Conn> {
        let base = args.endpoint.trim_end_matches('/');
        match args.protocol {
            Protocol::Grpc => {
                let channel = Endpoint::from_shared(base.to_string())?
                    .tcp_nodelay(true)
                    .timeout(args.timeout)
                    .connect_timeout(Duration::from_secs(5))
                    .connect()
                    .await
                    .with_context(|| format!("cannot connect to {base} over gRPC"))?;
                let mut grpc = tonic::client::Grpc::new(channel)
                    .max_decoding_message_size(64 << 20)
                    .max_encoding_message_size(usize::MAX);
                if args.gzip {
                    grpc = grpc.send_compressed(CompressionEncoding::Gzip);
                }
                Ok(Conn::Grpc(grpc))
            }
            Protocol::HttpProtobuf | Protocol::HttpJson => {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .tcp_nodelay(true)
                    .timeout(args.timeout)
                    .connect_timeout(Duration::from_secs(5))
                    .build()?;
                let json = args.protocol == Protocol::HttpJson;
                Ok(Conn::Http {
                    client,
                    url: format!("{base}{}", signal.http_path()),
                    content_type: if json {
                        "application/json"
                    } else {
                        "application/x-protobuf"
                    },
                    json,
                    gzip: args.gzip,
                })
            }
        }
    }

    async fn send(&mut self, signal: Signal, body: &Bytes, backoff: Duration) -> Attempt {
        match self {
            Conn::Grpc(grpc) => {
                if let Err(e) = grpc.ready().await {
                    return Attempt::Failed(format!("gRPC connection not ready: {e}"));
                }
                let path = http::uri::PathAndQuery::from_static(signal.grpc_path());
                match grpc
                    .unary(tonic::Request::new(body.clone()), path, RawCodec)
                    .await
                {
                    Ok(response) => {
                        let rejected = response
                            .into_inner()
                            .partial_success
                            .map_or(0, |p| p.rejected.max(0) as u64);
                        Attempt::Ok { rejected }
                    }
                    Err(status)
                        if matches!(
                            status.code(),
                            tonic::Code::Unavailable | tonic::Code::ResourceExhausted
                        ) =>
                    {
                        let hinted = status
                            .metadata()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<f64>().ok())
                            .map(Duration::from_secs_f64);
                        Attempt::Retry(hinted.unwrap_or(backoff))
                    }
                    Err(status) => {
                        Attempt::Failed(format!("gRPC {:?}: {}", status.code(), status.message()))
                    }
                }
            }
            Conn::Http {
                client,
                url,
                content_type,
                json,
                gzip,
            } => {
                let mut request = client
                    .post(url.as_str())
                    .header(http::header::CONTENT_TYPE, *content_type)
                    .body(body.clone());
                if *gzip {
                    request = request.header(http::header::CONTENT_ENCODING, "gzip");
                }
                let response = match request.send().await {
                    Ok(r) => r,
                    Err(e) => return Attempt::Failed(format!("HTTP request failed: {e}")),
                };
                let status = response.status();
                if status == http::StatusCode::SERVICE_UNAVAILABLE
                    || status == http::StatusCode::TOO_MANY_REQUESTS
                {
                    let after = response
                        .headers()
                        .get(http::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .map_or(backoff, Duration::from_secs_f64);
                    return Attempt::Retry(after);
                }
                let bytes = match response.bytes().await {
                    Ok(b) => b,
                    Err(e) => {
                        return Attempt::Failed(format!("reading the HTTP response failed: {e}"));
                    }
                };
                if !status.is_success() {
                    return Attempt::Failed(format!(
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                    ));
                }
                let rejected = if *json {
                    json_rejected(&bytes)
                } else {
                    <ExportResponse as prost::Message>::decode(bytes)
                        .ok()
                        .and_then(|r| r.partial_success)
                        .map_or(0, |p| p.rejected.max(0) as u64)
                };
                Attempt::Ok { rejected }
            }
        }
    }
}

/// `partialSuccess.rejected*` of a JSON export response (a number or a string, per OTLP/JSON).
fn json_rejected(body: &[u8]) -> u64 {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return 0;
    };
    let Some(partial) = value.get("partialSuccess").and_then(|p| p.as_object()) else {
        return 0;
    };
    partial
        .iter()
        .filter(|(k, _)| k.starts_with("rejected"))
        .filter_map(|(_, v)| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .sum()
}

/// Counters shared by the workers and the progress printer.
struct Shared {
    next: AtomicU64,
    accepted_items: AtomicU64,
    rejected_items: AtomicU64,
    requests: AtomicU64,
    bytes: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
    stop: AtomicBool,
    total: Mutex<Histogram<u64>>,
    interval: Mutex<Histogram<u64>>,
    first_error: Mutex<Option<String>>,
}

fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    // Microseconds, from 1 µs to 10 minutes, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).map_err(|e| anyhow::anyhow!("histogram: {e}"))
}

/// When request `i` is due at `rate` items/s: the prefix sums of the pool's item counts, wrapped.
struct Schedule {
    prefix: Vec<u64>,
    total: u64,
    rate: f64,
}

impl Schedule {
    /// When the request after `items_before` items of the run is due, from the run's start.
    fn due(&self, items_before: u64) -> Option<Duration> {
        (self.rate > 0.0).then(|| Duration::from_secs_f64(items_before as f64 / self.rate))
    }
}

/// What every worker of a phase shares.
struct Phase {
    pool: Arc<Pool>,
    shared: Arc<Shared>,
    schedule: Arc<Schedule>,
    /// The pool index this run starts at.
    first: u64,
    start: Instant,
    deadline: Option<Instant>,
    item_limit: u64,
    backoff: Duration,
}

async fn worker(mut conn: Conn, phase: Arc<Phase>) {
    let Phase {
        pool,
        shared,
        schedule,
        first,
        start,
        deadline,
        item_limit,
        backoff,
    } = &*phase;
    let (start, deadline, item_limit, backoff) = (*start, *deadline, *item_limit, *backoff);
    let items_before_first = schedule.prefix_items(*first);
    let n = pool.requests.len() as u64;
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        // Items sent by requests before i (the pool wraps); stop once the limit is covered.
        let items_before = schedule.prefix_items(i) - items_before_first;
        if items_before >= item_limit {
            break;
        }
        if let Some(due) = schedule.due(items_before) {
            let at = start + due;
            if deadline.is_some_and(|d| at >= d) {
                break;
            }
            tokio::time::sleep_until(at.into()).await;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let request = &pool.requests[(i % n) as usize];
        loop {
            let sent = Instant::now();
            match conn.send(pool.signal, &request.body, backoff).await {
                Attempt::Ok { rejected } => {
                    let micros = sent.elapsed().as_micros().clamp(1, 600_000_000) as u64;
                    let items = u64::from(request.items);
                    shared
                        .accepted_items
                        .fetch_add(items.saturating_sub(rejected), Ordering::Relaxed);
                    shared
                        .rejected_items
                        .fetch_add(rejected.min(items), Ordering::Relaxed);
                    shared.requests.fetch_add(1, Ordering::Relaxed);
                    shared
                        .bytes
                        .fetch_add(request.body.len() as u64, Ordering::Relaxed);
                    if let Ok(mut h) = shared.total.lock() {
                        let _ = h.record(micros);
                    }
                    if let Ok(mut h) = shared.interval.lock() {
                        let _ = h.record(micros);
                    }
                    break;
                }
                Attempt::Retry(after) => {
                    shared.retries.fetch_add(1, Ordering::Relaxed);
                    if deadline.is_some_and(|d| Instant::now() + after >= d)
                        || shared.stop.load(Ordering::Relaxed)
                    {
                        break;
                    }
                    tokio::time::sleep(after).await;
                }
                Attempt::Failed(message) => {
                    shared.failures.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut first) = shared.first_error.lock()
                        && first.is_none()
                    {
                        *first = Some(message);
                    }
                    break;
                }
            }
        }
    }
}

impl Schedule {
    fn prefix_items(&self, i: u64) -> u64 {
        let n = self.prefix.len() as u64;
        (i / n) * self.total + self.prefix[(i % n) as usize]
    }
}

#[derive(Debug, Default, Serialize)]
struct Latency {
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    mean_ms: f64,
}

fn latency(h: &Histogram<u64>) -> Latency {
    let ms = |us: u64| us as f64 / 1000.0;
    Latency {
        p50_ms: ms(h.value_at_quantile(0.50)),
        p90_ms: ms(h.value_at_quantile(0.90)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        max_ms: ms(h.max()),
        mean_ms: h.mean() / 1000.0,
    }
}

#[derive(Debug, Default, Serialize)]
struct LumenFigures {
    /// CPU seconds Lumen used during the phase, divided by its wall time (cores busy).
    cpu_cores: Option<f64>,
    /// Peak RSS sampled once a second during the phase (MiB).
    rss_peak_sampled_mib: Option<f64>,
    /// RSS at the end of the phase (MiB).
    rss_end_mib: Option<f64>,
    /// VmHWM (peak RSS since Lumen started) at the end of the phase (MiB).
    rss_hwm_mib: Option<f64>,
    /// WAL group commits (fsyncs) during the phase.
    wal_fsyncs: Option<f64>,
    /// Mean fsync duration (ms).
    wal_fsync_mean_ms: Option<f64>,
    /// Upper bound of the bucket holding the 99th percentile fsync (ms).
    wal_fsync_p99_bucket_ms: Option<f64>,
    /// Mean WAL bytes per group commit.
    wal_bytes_per_fsync: Option<f64>,
    /// WAL records (batches) per group commit.
    wal_records_per_fsync: Option<f64>,
    /// Head flushes during the phase and their total seconds.
    flushes: Option<f64>,
    flush_seconds: Option<f64>,
    /// Writes Lumen refused because the head was full.
    writes_rejected_head_full: Option<f64>,
    /// Lumen's own account of its in-memory head at the end of the phase (`lumen_head_bytes`, MiB)
    /// and the rows it holds, to set beside the resident memory.
    head_mib_end: Option<f64>,
    head_rows_end: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
struct PoolReport {
    requests: usize,
    items: u64,
    megabytes: f64,
    cycles: u32,
    cycle_seconds: f64,
    base_items: u64,
    simulate_secs: f64,
    encode_secs: f64,
    sizes: EncodedSizes,
}

#[derive(Debug, Serialize)]
struct SignalReport {
    signal: Signal,
    /// Which of the `--repeat` runs (from 1).
    run: usize,
    item_name: &'static str,
    protocol: Protocol,
    gzip: bool,
    connections: usize,
    batch_size: usize,
    target_rate: f64,
    elapsed_secs: f64,
    accepted_items: u64,
    rejected_items: u64,
    requests: u64,
    retries: u64,
    failures: u64,
    first_error: Option<String>,
    items_per_sec: f64,
    requests_per_sec: f64,
    megabytes_per_sec: f64,
    /// Times the runs so far went past the end of the pool (and resent items already sent).
    pool_wraps: u64,
    latency: Latency,
    loadgen_cpu_cores: Option<f64>,
    lumen: LumenFigures,
    pool: PoolReport,
}

/// Medians over the runs of one signal.
#[derive(Debug, Serialize)]
struct Summary {
    signal: Signal,
    item_name: &'static str,
    runs: usize,
    items_per_sec_median: f64,
    items_per_sec_min: f64,
    items_per_sec_max: f64,
    requests_per_sec_median: f64,
    megabytes_per_sec_median: f64,
    ack_p50_ms_median: f64,
    ack_p99_ms_median: f64,
    ack_max_ms: f64,
    retries: u64,
    failures: u64,
    lumen_cpu_cores_median: Option<f64>,
    loadgen_cpu_cores_median: Option<f64>,
    lumen_rss_peak_sampled_mib: Option<f64>,
    wal_fsync_mean_ms_median: Option<f64>,
    wal_kib_per_fsync_median: Option<f64>,
}

fn summarize(signal: Signal, runs: &[&SignalReport]) -> Summary {
    use lumen_benches::stats::{median, min_max};
    let med = |f: &dyn Fn(&SignalReport) -> f64| {
        median(&runs.iter().map(|r| f(r)).collect::<Vec<_>>()).unwrap_or(0.0)
    };
    let med_opt = |f: &dyn Fn(&SignalReport) -> Option<f64>| {
        median(&runs.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
    };
    let rates: Vec<f64> = runs.iter().map(|r| r.items_per_sec).collect();
    let (lo, hi) = min_max(&rates).unwrap_or((0.0, 0.0));
    Summary {
        signal,
        item_name: signal.item_name(),
        runs: runs.len(),
        items_per_sec_median: med(&|r| r.items_per_sec),
        items_per_sec_min: lo,
        items_per_sec_max: hi,
        requests_per_sec_median: med(&|r| r.requests_per_sec),
        megabytes_per_sec_median: med(&|r| r.megabytes_per_sec),
        ack_p50_ms_median: med(&|r| r.latency.p50_ms),
        ack_p99_ms_median: med(&|r| r.latency.p99_ms),
        ack_max_ms: runs.iter().map(|r| r.latency.max_ms).fold(0.0, f64::max),
        retries: runs.iter().map(|r| r.retries).sum(),
        failures: runs.iter().map(|r| r.failures).sum(),
        lumen_cpu_cores_median: med_opt(&|r| r.lumen.cpu_cores),
        loadgen_cpu_cores_median: med_opt(&|r| r.loadgen_cpu_cores),
        lumen_rss_peak_sampled_mib: runs
            .iter()
            .filter_map(|r| r.lumen.rss_peak_sampled_mib)
            .reduce(f64::max),
        wal_fsync_mean_ms_median: med_opt(&|r| r.lumen.wal_fsync_mean_ms),
        wal_kib_per_fsync_median: med_opt(&|r| r.lumen.wal_bytes_per_fsync.map(|b| b / 1024.0)),
    }
}

#[derive(Debug, Serialize)]
struct Report {
    endpoint: String,
    command: String,
    signals: Vec<SignalReport>,
    summary: Vec<Summary>,
    lumen_rss_hwm_mib: Option<f64>,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

async fn scrape(client: &reqwest::Client, base: &str) -> Option<Scrape> {
    if base.is_empty() {
        return None;
    }
    let text = client
        .get(format!("{}/metrics", base.trim_end_matches('/')))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    Some(Scrape::parse(&text))
}

fn lumen_figures(before: &Option<Scrape>, after: &Option<Scrape>) -> LumenFigures {
    let (Some(b), Some(a)) = (before, after) else {
        return LumenFigures::default();
    };
    let fsyncs = a.delta(b, "lumen_wal_fsync_seconds_count");
    let fsync_secs = a.delta(b, "lumen_wal_fsync_seconds_sum");
    let per = |x: f64| if fsyncs > 0.0 { Some(x / fsyncs) } else { None };
    LumenFigures {
        wal_fsyncs: Some(fsyncs),
        wal_fsync_mean_ms: per(fsync_secs * 1000.0),
        wal_fsync_p99_bucket_ms: a
            .quantile_bound(b, "lumen_wal_fsync_seconds", 0.99)
            .map(|s| s * 1000.0),
        wal_bytes_per_fsync: per(a.delta(b, "lumen_wal_bytes_total")),
        wal_records_per_fsync: per(a.delta(b, "lumen_wal_records_total")),
        flushes: Some(a.delta(b, "lumen_flush_duration_seconds_count")),
        flush_seconds: Some(a.delta(b, "lumen_flush_duration_seconds_sum")),
        writes_rejected_head_full: Some(a.delta(b, "lumen_writes_rejected_total")),
        head_mib_end: Some(a.get("lumen_head_bytes") / 1048576.0),
        head_rows_end: Some(a.get("lumen_head_rows")),
        ..LumenFigures::default()
    }
}

async fn run_signal(
    args: &Args,
    signal: Signal,
    scraper: &reqwest::Client,
) -> anyhow::Result<Vec<SignalReport>> {
    let spec = PoolSpec {
        signal,
        seed: args.seed,
        fleet_rate: args.fleet_rate(signal),
        metric_interval: args.metric_interval(signal),
        batch_size: args.batch_size,
        items: args.pool_items(signal).max(1),
        base_items: args.base_items.max(1),
        max_bytes: args.pool_mb.saturating_mul(1_000_000),
        format: args.format(),
        gzip: args.gzip && args.protocol != Protocol::Grpc,
        end_time_ns: now_ns(),
        measure_json: signal == Signal::Logs || args.report_json_size,
    };
    eprintln!(
        "lumen-loadgen: {}: building the request pool",
        signal.name()
    );
    let pool = tokio::task::spawn_blocking(move || {
        Pool::build(&spec, &mut |line| {
            eprintln!("lumen-loadgen: {}: {line}", spec.signal.name())
        })
    })
    .await??;
    let pool_report = PoolReport {
        requests: pool.requests.len(),
        items: pool.items,
        megabytes: pool.bytes as f64 / 1e6,
        cycles: pool.cycles,
        cycle_seconds: pool.cycle_ns as f64 / 1e9,
        base_items: pool.base_items,
        simulate_secs: pool.simulate_secs,
        encode_secs: pool.encode_secs,
        sizes: pool.sizes,
    };
    anyhow::ensure!(
        !pool.requests.is_empty(),
        "the pool for {} is empty",
        signal.name()
    );
    let pool = Arc::new(pool);

    let mut conns = Vec::with_capacity(args.connections);
    for _ in 0..args.connections.max(1) {
        conns.push(Conn::connect(args, signal).await?);
    }
    let mut prefix = Vec::with_capacity(pool.requests.len());
    let mut acc = 0u64;
    for r in &pool.requests {
        prefix.push(acc);
        acc += u64::from(r.items);
    }
    let schedule = Arc::new(Schedule {
        prefix,
        total: acc,
        rate: args.rate,
    });
    let mut reports = Vec::new();
    let mut first = 0u64;
    for run in 0..args.repeat.max(1) {
        let (report, next) = run_phase(
            args,
            signal,
            &pool,
            &conns,
            schedule.clone(),
            first,
            scraper,
            &pool_report,
        )
        .await?;
        eprintln!(
            "lumen-loadgen: {} run {}: {:.0} {}/s accepted, ack p50 {:.1} ms p99 {:.1} ms",
            signal.name(),
            run + 1,
            report.items_per_sec,
            signal.item_name(),
            report.latency.p50_ms,
            report.latency.p99_ms
        );
        first = next;
        reports.push(SignalReport {
            run: run + 1,
            ..report
        });
    }
    Ok(reports)
}

/// One timed run over `pool`, starting at request `first`; returns the report and where the next
/// run starts.
#[allow(clippy::too_many_arguments)]
async fn run_phase(
    args: &Args,
    signal: Signal,
    pool: &Arc<Pool>,
    conns: &[Conn],
    schedule: Arc<Schedule>,
    first: u64,
    scraper: &reqwest::Client,
    pool_report: &PoolReport,
) -> anyhow::Result<(SignalReport, u64)> {
    let shared = Arc::new(Shared {
        next: AtomicU64::new(first),
        accepted_items: AtomicU64::new(0),
        rejected_items: AtomicU64::new(0),
        requests: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        retries: AtomicU64::new(0),
        failures: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        total: Mutex::new(new_histogram()?),
        interval: Mutex::new(new_histogram()?),
        first_error: Mutex::new(None),
    });
    let duration = match (args.duration, args.items) {
        (Some(d), _) => Some(d),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(30)),
    };
    let item_limit = args.items.unwrap_or(u64::MAX);

    let before = scrape(scraper, &args.lumen_http).await;
    let lumen_cpu_before = args.pid.and_then(|p| procfs::cpu_seconds(Some(p)));
    let self_cpu_before = procfs::cpu_seconds(None);
    let start = Instant::now();
    let deadline = duration.map(|d| start + d);
    let mut handles = Vec::new();
    let phase = Arc::new(Phase {
        pool: pool.clone(),
        shared: shared.clone(),
        schedule,
        first,
        start,
        deadline,
        item_limit,
        backoff: args.retry_backoff,
    });
    for conn in conns.iter().cloned() {
        handles.push(tokio::spawn(worker(conn, phase.clone())));
    }
    let all_done = futures_join(handles);
    tokio::pin!(all_done);

    // Progress once a second until every worker is done.
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_items = 0u64;
    let mut last_at = Instant::now();
    let mut rss_peak_kib: Option<u64> = None;
    loop {
        tokio::select! {
            _ = &mut all_done => break,
            _ = tick.tick() => {
                let items = shared.accepted_items.load(Ordering::Relaxed);
                let now = Instant::now();
                let rate = (items - last_items) as f64 / now.duration_since(last_at).as_secs_f64();
                last_items = items;
                last_at = now;
                let (p50, p99) = match shared.interval.lock() {
                    Ok(mut h) => {
                        let v = (h.value_at_quantile(0.5) as f64 / 1000.0, h.value_at_quantile(0.99) as f64 / 1000.0);
                        h.reset();
                        v
                    }
                    Err(_) => (0.0, 0.0),
                };
                let mem = args.pid.and_then(|p| procfs::memory(Some(p)));
                if let Some(m) = mem {
                    rss_peak_kib = Some(rss_peak_kib.unwrap_or(0).max(m.vm_rss_kib));
                }
                eprintln!(
                    "[{:>5.1}s] {}: {:>11} {} accepted, {:>9.0}/s now, ack p50 {:.1} ms p99 {:.1} ms, retries {}, failures {}{}",
                    start.elapsed().as_secs_f64(),
                    signal.name(),
                    items,
                    signal.item_name(),
                    rate,
                    p50,
                    p99,
                    shared.retries.load(Ordering::Relaxed),
                    shared.failures.load(Ordering::Relaxed),
                    mem.map(|m| format!(", lumen rss {:.0} MiB", mib(m.vm_rss_kib))).unwrap_or_default(),
                );
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let lumen_cpu_after = args.pid.and_then(|p| procfs::cpu_seconds(Some(p)));
    let self_cpu_after = procfs::cpu_seconds(None);
    let mem_end = args.pid.and_then(|p| procfs::memory(Some(p)));
    let after = scrape(scraper, &args.lumen_http).await;

    let mut lumen = lumen_figures(&before, &after);
    lumen.cpu_cores = lumen_cpu_before
        .zip(lumen_cpu_after)
        .map(|(b, a)| (a - b) / elapsed);
    if let Some(m) = mem_end {
        rss_peak_kib = Some(rss_peak_kib.unwrap_or(0).max(m.vm_rss_kib));
        lumen.rss_end_mib = Some(mib(m.vm_rss_kib));
        lumen.rss_hwm_mib = Some(mib(m.vm_hwm_kib));
    }
    lumen.rss_peak_sampled_mib = rss_peak_kib.map(mib);

    let accepted = shared.accepted_items.load(Ordering::Relaxed);
    let requests = shared.requests.load(Ordering::Relaxed);
    let bytes = shared.bytes.load(Ordering::Relaxed);
    let next = first + requests + shared.failures.load(Ordering::Relaxed);
    let total = shared.total.lock().map(|h| latency(&h)).unwrap_or_default();
    let first_error = shared.first_error.lock().ok().and_then(|e| e.clone());
    Ok((
        SignalReport {
            signal,
            item_name: signal.item_name(),
            protocol: args.protocol,
            gzip: args.gzip,
            connections: args.connections,
            batch_size: args.batch_size,
            target_rate: args.rate,
            elapsed_secs: elapsed,
            accepted_items: accepted,
            rejected_items: shared.rejected_items.load(Ordering::Relaxed),
            requests,
            retries: shared.retries.load(Ordering::Relaxed),
            failures: shared.failures.load(Ordering::Relaxed),
            first_error,
            items_per_sec: accepted as f64 / elapsed,
            requests_per_sec: requests as f64 / elapsed,
            megabytes_per_sec: bytes as f64 / 1e6 / elapsed,
            pool_wraps: next.saturating_sub(1) / pool.requests.len() as u64,
            latency: total,
            loadgen_cpu_cores: self_cpu_before
                .zip(self_cpu_after)
                .map(|(b, a)| (a - b) / elapsed),
            lumen,
            pool: pool_report.clone(),
            run: 0,
        },
        next,
    ))
}

async fn futures_join(handles: Vec<tokio::task::JoinHandle<()>>) {
    for h in handles {
        let _ = h.await;
    }
}

fn print_text(report: &Report) {
    println!("lumen-loadgen against {}", report.endpoint);
    println!("command: {}", report.command);
    for s in &report.signals {
        println!();
        println!(
            "{} run {} over {:?}{} · {} connections · {} items/request · {} · {:.1} s",
            s.signal.name(),
            s.run,
            s.protocol,
            if s.gzip { "+gzip" } else { "" },
            s.connections,
            s.batch_size,
            if s.target_rate > 0.0 {
                format!("target {:.0} items/s", s.target_rate)
            } else {
                "max rate".to_string()
            },
            s.elapsed_secs
        );
        println!(
            "  accepted       {:>12} {} ({:.0}/s), {} rejected by partial success",
            s.accepted_items, s.item_name, s.items_per_sec, s.rejected_items
        );
        println!(
            "  requests       {:>12} ({:.1}/s, {:.1} MB/s on the wire)",
            s.requests, s.requests_per_sec, s.megabytes_per_sec
        );
        println!(
            "  ack latency    p50 {:.2} ms · p90 {:.2} ms · p99 {:.2} ms · max {:.2} ms",
            s.latency.p50_ms, s.latency.p90_ms, s.latency.p99_ms, s.latency.max_ms
        );
        println!(
            "  retried        {} (503 / UNAVAILABLE), failed {}{}",
            s.retries,
            s.failures,
            s.first_error
                .as_ref()
                .map(|e| format!(" — first: {e}"))
                .unwrap_or_default()
        );
        println!(
            "  pool           {} requests, {} items, {:.0} MB, {} cycle(s) of {:.0} s simulated; {:.0} B/item protobuf{}{}",
            s.pool.requests,
            s.pool.items,
            s.pool.megabytes,
            s.pool.cycles,
            s.pool.cycle_seconds,
            s.pool.sizes.protobuf_bytes_per_item,
            if s.pool.sizes.json_sample_items > 0 {
                format!(
                    ", {:.0} B/item OTLP/JSON ({:.0} with defaults)",
                    s.pool.sizes.json_bytes_per_item, s.pool.sizes.json_full_bytes_per_item
                )
            } else {
                String::new()
            },
            if s.pool_wraps > 0 {
                format!("; WRAPPED {} time(s): items were resent", s.pool_wraps)
            } else {
                String::new()
            }
        );
        let l = &s.lumen;
        let opt =
            |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
        println!(
            "  lumen          cpu {} cores · rss peak {} MiB, end {} MiB, hwm {} MiB · head {} MiB in {} rows at the end · loadgen cpu {} cores",
            opt(l.cpu_cores, 2),
            opt(l.rss_peak_sampled_mib, 0),
            opt(l.rss_end_mib, 0),
            opt(l.rss_hwm_mib, 0),
            opt(l.head_mib_end, 0),
            opt(l.head_rows_end, 0),
            opt(s.loadgen_cpu_cores, 2)
        );
        println!(
            "  lumen wal      {} fsyncs · mean {} ms · p99 ≤ {} ms · {} KiB and {} batches per fsync · flushes {} ({} s) · head-full refusals {}",
            opt(l.wal_fsyncs, 0),
            opt(l.wal_fsync_mean_ms, 2),
            opt(l.wal_fsync_p99_bucket_ms, 1),
            opt(l.wal_bytes_per_fsync.map(|b| b / 1024.0), 0),
            opt(l.wal_records_per_fsync, 1),
            opt(l.flushes, 0),
            opt(l.flush_seconds, 1),
            opt(l.writes_rejected_head_full, 0)
        );
    }
    println!();
    println!(
        "{:<8} {:>4} {:>14} {:>22} {:>9} {:>12} {:>12} {:>9} {:>8} {:>10} {:>9}",
        "signal",
        "runs",
        "items/s median",
        "min..max",
        "req/s",
        "ack p50 ms",
        "ack p99 ms",
        "retries",
        "failed",
        "lumen cpu",
        "rss peak"
    );
    for m in &report.summary {
        println!(
            "{:<8} {:>4} {:>14.0} {:>22} {:>9.1} {:>12.2} {:>12.2} {:>9} {:>8} {:>10} {:>9}",
            m.signal.name(),
            m.runs,
            m.items_per_sec_median,
            format!("{:.0}..{:.0}", m.items_per_sec_min, m.items_per_sec_max),
            m.requests_per_sec_median,
            m.ack_p50_ms_median,
            m.ack_p99_ms_median,
            m.retries,
            m.failures,
            m.lumen_cpu_cores_median
                .map_or("-".to_string(), |c| format!("{c:.2}")),
            m.lumen_rss_peak_sampled_mib
                .map_or("-".to_string(), |r| format!("{r:.0} MiB")),
        );
    }
    if let Some(hwm) = report.lumen_rss_hwm_mib {
        println!();
        println!("lumen peak resident memory (VmHWM): {hwm:.0} MiB");
    }
}

async fn report_sizes(args: &Args) -> anyhow::Result<()> {
    let mut out = Vec::new();
    for signal in args.signals() {
        let spec = PoolSpec {
            signal,
            seed: args.seed,
            fleet_rate: args.fleet_rate(signal),
            metric_interval: args.metric_interval(signal),
            batch_size: args.batch_size,
            items: args.items.unwrap_or(args.base_items).max(1),
            base_items: args.base_items.max(1),
            max_bytes: args.pool_mb.saturating_mul(1_000_000),
            format: WireFormat::Protobuf,
            gzip: false,
            end_time_ns: now_ns(),
            measure_json: true,
        };
        let pool = tokio::task::spawn_blocking(move || {
            Pool::build(&spec, &mut |line| eprintln!("lumen-loadgen: {line}"))
        })
        .await??;
        out.push(serde_json::json!({ "signal": signal, "items": pool.items, "batch_size": args.batch_size, "sizes": pool.sizes }));
        if !args.json {
            println!(
                "{}: {:.1} B/item protobuf · {:.1} B/item OTLP/JSON (default-valued fields omitted) · {:.1} B/item OTLP/JSON as serde writes it · over {} items in requests of {}",
                signal.name(),
                pool.sizes.protobuf_bytes_per_item,
                pool.sizes.json_bytes_per_item,
                pool.sizes.json_full_bytes_per_item,
                pool.sizes.json_sample_items,
                args.batch_size
            );
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.batch_size > 0, "--batch-size must be at least 1");
    anyhow::ensure!(
        args.rate >= 0.0 && args.rate.is_finite(),
        "--rate must be 0 (max) or a positive number of items/s"
    );
    if args.report_json_size {
        return report_sizes(&args).await;
    }
    let scraper = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut signals = Vec::new();
    for signal in args.signals() {
        signals.extend(run_signal(&args, signal, &scraper).await?);
    }
    let summary = args
        .signals()
        .into_iter()
        .map(|signal| {
            summarize(
                signal,
                &signals
                    .iter()
                    .filter(|r| r.signal == signal)
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let report = Report {
        endpoint: args.endpoint.clone(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        signals,
        summary,
        lumen_rss_hwm_mib: args
            .pid
            .and_then(|p| procfs::memory(Some(p)))
            .map(|m| mib(m.vm_hwm_kib)),
    };
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    let failed: u64 = report.signals.iter().map(|s| s.failures).sum();
    if failed > 0 {
        eprintln!("lumen-loadgen: {failed} request(s) failed");
    }
    Ok(())
}
