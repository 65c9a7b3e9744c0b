//! A pool of pre-encoded OTLP export requests made from the bookstore fleet simulator's output.
//!
//! How a pool is made (all before any timed phase):
//!
//! 1. **Simulate** the fleet (`lumen_fleet`) until it has produced `base_items` items of the wanted
//!    signal (spans, log records or metric data points); that covers `cycle_ns` of simulated time.
//! 2. **Re-chunk** the output into export requests of about `batch_size` items each, keeping the
//!    resource / scope grouping (a request holds whole resource and scope shells around its items).
//! 3. **Replay in cycles**: cycle `c` is the base shifted `c × cycle_ns` back in time, with a
//!    per-cycle value XORed into the first 8 bytes of every trace id (spans, links, log records,
//!    exemplars), so every cycle holds distinct traces and distinct metric points while keeping the
//!    fleet's shapes (trace trees, series, cardinalities). Cycle 0 ends at `end_time_ns` ("now").
//!    Cycles are encoded until the pool holds `items` items or `max_bytes` bytes; a run that needs
//!    more wraps around the pool (and then sends duplicates, which the report says).
//! 4. **Encode** each request once: protobuf or OTLP/JSON, and gzip for HTTP when asked.
//!
//! The pool is ordered oldest cycle first, so time moves forward while it is sent.

use std::io::Write as _;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lumen_fleet::proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use lumen_fleet::proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use lumen_fleet::proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use lumen_fleet::proto::tonic::logs::v1::ResourceLogs;
use lumen_fleet::proto::tonic::metrics::v1::metric::Data;
use lumen_fleet::proto::tonic::metrics::v1::{Exemplar, Metric, ResourceMetrics};
use lumen_fleet::proto::tonic::trace::v1::ResourceSpans;
use lumen_fleet::{Fleet, FleetConfig, Scenario};
use serde::Serialize;

/// One of the three OTLP signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// Spans (`ExportTraceServiceRequest`).
    Traces,
    /// Log records (`ExportLogsServiceRequest`).
    Logs,
    /// Metric data points of every type (`ExportMetricsServiceRequest`).
    Metrics,
}

impl Signal {
    /// All three, in the order `--signal all` runs them.
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Logs, Signal::Metrics];

    /// `traces`, `logs`, `metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
        }
    }

    /// What one item is called.
    pub fn item_name(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Logs => "log records",
            Signal::Metrics => "data points",
        }
    }

    /// The OTLP/gRPC method path.
    pub fn grpc_path(self) -> &'static str {
        match self {
            Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        }
    }

    /// The OTLP/HTTP path.
    pub fn http_path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Logs => "/v1/logs",
            Signal::Metrics => "/v1/metrics",
        }
    }
}

/// How request bodies are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireFormat {
    /// Protobuf (OTLP/gRPC and OTLP/HTTP protobuf).
    Protobuf,
    /// OTLP/JSON as the `opentelemetry-proto` serde encoding writes it (what the OpenTelemetry Rust
    /// SDK's `http-json` exporter sends).
    Json,
}

/// What pool to make.
#[derive(Clone, Debug)]
pub struct PoolSpec {
    /// Which signal.
    pub signal: Signal,
    /// Seed of the fleet simulation.
    pub seed: u64,
    /// Storefront requests per second of the simulated bookstore (each a trace of 5–30 spans).
    pub fleet_rate: f64,
    /// Simulated time between metric collections.
    pub metric_interval: Duration,
    /// Items per export request.
    pub batch_size: usize,
    /// Items the pool should hold (unique, across cycles).
    pub items: u64,
    /// Items to simulate before replaying shifted cycles.
    pub base_items: u64,
    /// Stop adding cycles past this many encoded bytes.
    pub max_bytes: u64,
    /// Body encoding.
    pub format: WireFormat,
    /// Gzip each body (OTLP/HTTP `Content-Encoding: gzip`).
    pub gzip: bool,
    /// The newest data ends here (ns since the epoch); usually now.
    pub end_time_ns: i64,
    /// Measure the OTLP/JSON size of (a sample of) the first cycle.
    pub measure_json: bool,
}

/// One ready-to-send request body.
#[derive(Clone, Debug)]
pub struct EncodedRequest {
    /// The body, as sent on the wire (gzipped if the pool is).
    pub body: Bytes,
    /// Items (spans, log records, data points) in it.
    pub items: u32,
}

/// Sizes of the items in their OTLP encodings.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct EncodedSizes {
    /// Protobuf bytes per item (whole requests, so resource and scope shells are included).
    pub protobuf_bytes_per_item: f64,
    /// OTLP/JSON bytes per item with default-valued fields omitted (the compact form the OTLP/JSON
    /// spec allows), whole requests.
    pub json_bytes_per_item: f64,
    /// OTLP/JSON bytes per item as `opentelemetry-proto`'s serde encoding writes it (every field).
    pub json_full_bytes_per_item: f64,
    /// Items the JSON figures were measured on.
    pub json_sample_items: u64,
}

/// A pool of pre-encoded requests.
#[derive(Debug)]
pub struct Pool {
    /// The signal.
    pub signal: Signal,
    /// Requests, oldest data first.
    pub requests: Vec<EncodedRequest>,
    /// Items in all requests.
    pub items: u64,
    /// Wire bytes of all requests.
    pub bytes: u64,
    /// Cycles of the base the pool holds (the last may be partial).
    pub cycles: u32,
    /// Simulated time one cycle covers (ns).
    pub cycle_ns: i64,
    /// Items in one cycle.
    pub base_items: u64,
    /// Time of the oldest and newest item (ns), approximately (cycle bounds).
    pub time_range_ns: (i64, i64),
    /// Encoded sizes per item.
    pub sizes: EncodedSizes,
    /// Seconds spent simulating.
    pub simulate_secs: f64,
    /// Seconds spent encoding.
    pub encode_secs: f64,
}

impl Pool {
    /// Makes the pool described by `spec`; `progress` gets one line per stage.
    pub fn build(spec: &PoolSpec, progress: &mut dyn FnMut(&str)) -> anyhow::Result<Pool> {
        anyhow::ensure!(spec.batch_size > 0, "the batch size must be at least 1");
        anyhow::ensure!(spec.fleet_rate > 0.0, "the fleet rate must be above 0");
        let started = Instant::now();
        let base_target = spec.base_items.min(spec.items).max(1);
        let base = simulate(spec, base_target)?;
        let simulate_secs = started.elapsed().as_secs_f64();
        progress(&format!(
            "simulated {} {} over {:.0} s of fleet time in {simulate_secs:.1} s; {} requests of ~{} items",
            base.items,
            spec.signal.item_name(),
            base.cycle_ns as f64 / 1e9,
            base.chunks.len(),
            spec.batch_size
        ));

        let encode_started = Instant::now();
        // Cycle 0 ends at end_time_ns; the fleet's own output ends at base.end_ns.
        let align = spec.end_time_ns - base.end_ns;
        let shift_of = |cycle: u32| align - i64::from(cycle) * base.cycle_ns;
        let cycle0 = encode_cycle(&base, spec, 0, shift_of(0))?;
        let cycle_bytes: u64 = cycle0
            .iter()
            .map(|r| r.body.len() as u64)
            .sum::<u64>()
            .max(1);
        let by_items = spec.items.div_ceil(base.items.max(1));
        let by_bytes = (spec.max_bytes / cycle_bytes).max(1);
        let cycles = u32::try_from(by_items.min(by_bytes).max(1)).unwrap_or(u32::MAX);
        if by_bytes < by_items {
            progress(&format!(
                "pool capped at {cycles} cycles ({:.0} MB) by --pool-mb; the run will wrap around and resend",
                (cycles as u64 * cycle_bytes) as f64 / 1e6
            ));
        }
        let sizes = measure_sizes(&base, spec)?;

        // Encode the other cycles on every core (before the timed phase, so it may use them all).
        let threads = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(cycles as usize)
            .max(1);
        let mut per_cycle: Vec<Option<Vec<EncodedRequest>>> = (0..cycles).map(|_| None).collect();
        per_cycle[0] = Some(cycle0);
        if cycles > 1 {
            let results: Vec<anyhow::Result<EncodedCycles>> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let base = &base;
                        scope.spawn(move || {
                            let mut out = Vec::new();
                            let mut cycle = 1 + t as u32;
                            while cycle < cycles {
                                out.push((
                                    cycle,
                                    encode_cycle(base, spec, cycle, shift_of(cycle))?,
                                ));
                                cycle += threads as u32;
                            }
                            Ok(out)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(anyhow::anyhow!("an encoder thread panicked")))
                    })
                    .collect()
            });
            for result in results {
                for (cycle, requests) in result? {
                    per_cycle[cycle as usize] = Some(requests);
                }
            }
        }
        // Newest first, cut at the wanted item count, then oldest first for sending.
        let mut requests = Vec::new();
        let mut items = 0u64;
        'outer: for cycle in per_cycle.into_iter().flatten() {
            for request in cycle {
                if items >= spec.items {
                    break 'outer;
                }
                items += u64::from(request.items);
                requests.push(request);
            }
        }
        // Within a cycle requests stay in simulation order; reverse cycle order only.
        let requests = reorder_oldest_cycle_first(requests, base.chunks.len());
        let bytes = requests.iter().map(|r| r.body.len() as u64).sum();
        let encode_secs = encode_started.elapsed().as_secs_f64();
        progress(&format!(
            "encoded {} requests, {items} {}, {:.1} MB in {encode_secs:.1} s ({cycles} cycle{})",
            requests.len(),
            spec.signal.item_name(),
            bytes as f64 / 1e6,
            if cycles == 1 { "" } else { "s" }
        ));
        let oldest = shift_of(cycles - 1) + base.start_ns;
        Ok(Pool {
            signal: spec.signal,
            requests,
            items,
            bytes,
            cycles,
            cycle_ns: base.cycle_ns,
            base_items: base.items,
            time_range_ns: (oldest, spec.end_time_ns),
            sizes,
            simulate_secs,
            encode_secs,
        })
    }
}

/// Encoded cycles, each with its number.
type EncodedCycles = Vec<(u32, Vec<EncodedRequest>)>;

/// `requests` hold cycle 0 (newest) first, each cycle `per_cycle` requests (the last possibly
/// partial); returns them with the oldest cycle first.
fn reorder_oldest_cycle_first(
    requests: Vec<EncodedRequest>,
    per_cycle: usize,
) -> Vec<EncodedRequest> {
    if per_cycle == 0 {
        return requests;
    }
    let mut cycles: Vec<Vec<EncodedRequest>> = Vec::new();
    let mut iter = requests.into_iter().peekable();
    while iter.peek().is_some() {
        cycles.push(iter.by_ref().take(per_cycle).collect());
    }
    cycles.into_iter().rev().flatten().collect()
}

/// The fleet's output for one signal, re-chunked into requests.
struct Base {
    chunks: Chunks,
    items: u64,
    start_ns: i64,
    end_ns: i64,
    cycle_ns: i64,
}

enum Chunks {
    Traces(Vec<ExportTraceServiceRequest>),
    Logs(Vec<ExportLogsServiceRequest>),
    Metrics(Vec<ExportMetricsServiceRequest>),
}

impl Chunks {
    fn len(&self) -> usize {
        match self {
            Chunks::Traces(v) => v.len(),
            Chunks::Logs(v) => v.len(),
            Chunks::Metrics(v) => v.len(),
        }
    }
}

/// Runs the fleet until it has produced `target` items of the spec's signal.
fn simulate(spec: &PoolSpec, target: u64) -> anyhow::Result<Base> {
    let start_ns = FleetConfig::default().start_time_ns;
    let metric_interval_ns = i64::try_from(spec.metric_interval.as_nanos()).unwrap_or(i64::MAX);
    let mut fleet = Fleet::new(FleetConfig {
        seed: spec.seed,
        scenario: Scenario::Steady,
        requests_per_second: spec.fleet_rate,
        start_time_ns: start_ns,
        metric_interval_ns,
        environment: "bench".to_string(),
        ..FleetConfig::default()
    });
    // Step in slices of simulated time; metrics come once per collection, so step at least one interval.
    let step_ns = 10_000_000_000i64.max(metric_interval_ns);
    let limit_ns = start_ns + 90 * 86_400_000_000_000; // 90 simulated days: a guard against a fleet that emits nothing
    let mut traces: Vec<ResourceSpans> = Vec::new();
    let mut logs: Vec<ResourceLogs> = Vec::new();
    let mut metrics: Vec<ResourceMetrics> = Vec::new();
    let mut items = 0u64;
    while items < target {
        anyhow::ensure!(
            fleet.now_ns() < limit_ns,
            "the fleet produced only {items} {} in 90 simulated days",
            spec.signal.item_name()
        );
        let batch = fleet.step(fleet.now_ns() + step_ns);
        match spec.signal {
            Signal::Traces => {
                items += batch.span_count() as u64;
                traces.extend(batch.traces.resource_spans);
            }
            Signal::Logs => {
                items += batch.log_record_count() as u64;
                logs.extend(batch.logs.resource_logs);
            }
            Signal::Metrics => {
                items += batch.data_point_count() as u64;
                metrics.extend(batch.metrics.resource_metrics);
            }
        }
    }
    let end_ns = fleet.now_ns();
    let chunks = match spec.signal {
        Signal::Traces => Chunks::Traces(chunk_traces(traces, spec.batch_size)),
        Signal::Logs => Chunks::Logs(chunk_logs(logs, spec.batch_size)),
        Signal::Metrics => Chunks::Metrics(chunk_metrics(metrics, spec.batch_size)),
    };
    Ok(Base {
        chunks,
        items,
        start_ns,
        end_ns,
        cycle_ns: end_ns - start_ns,
    })
}

/// Regroups spans into requests of `batch` spans, keeping each span inside (a copy of) its resource
/// and scope shell.
pub fn chunk_traces(resources: Vec<ResourceSpans>, batch: usize) -> Vec<ExportTraceServiceRequest> {
    let mut out = Vec::new();
    let mut cur = ExportTraceServiceRequest::default();
    let mut n = 0usize;
    for mut rs in resources {
        let scopes = std::mem::take(&mut rs.scope_spans);
        let mut rs_open = false;
        for mut ss in scopes {
            let spans = std::mem::take(&mut ss.spans);
            let mut ss_open = false;
            for span in spans {
                if !rs_open {
                    cur.resource_spans.push(rs.clone());
                    rs_open = true;
                    ss_open = false;
                }
                let Some(last_rs) = cur.resource_spans.last_mut() else {
                    unreachable!("a resource was just pushed")
                };
                if !ss_open {
                    last_rs.scope_spans.push(ss.clone());
                    ss_open = true;
                }
                let Some(last_ss) = last_rs.scope_spans.last_mut() else {
                    unreachable!("a scope was just pushed")
                };
                last_ss.spans.push(span);
                n += 1;
                if n >= batch {
                    out.push(std::mem::take(&mut cur));
                    n = 0;
                    rs_open = false;
                }
            }
        }
    }
    if n > 0 {
        out.push(cur);
    }
    out
}

/// Regroups log records into requests of `batch` records (see [`chunk_traces`]).
pub fn chunk_logs(resources: Vec<ResourceLogs>, batch: usize) -> Vec<ExportLogsServiceRequest> {
    let mut out = Vec::new();
    let mut cur = ExportLogsServiceRequest::default();
    let mut n = 0usize;
    for mut rl in resources {
        let scopes = std::mem::take(&mut rl.scope_logs);
        let mut rl_open = false;
        for mut sl in scopes {
            let records = std::mem::take(&mut sl.log_records);
            let mut sl_open = false;
            for record in records {
                if !rl_open {
                    cur.resource_logs.push(rl.clone());
                    rl_open = true;
                    sl_open = false;
                }
                let Some(last_rl) = cur.resource_logs.last_mut() else {
                    unreachable!("a resource was just pushed")
                };
                if !sl_open {
                    last_rl.scope_logs.push(sl.clone());
                    sl_open = true;
                }
                let Some(last_sl) = last_rl.scope_logs.last_mut() else {
                    unreachable!("a scope was just pushed")
                };
                last_sl.log_records.push(record);
                n += 1;
                if n >= batch {
                    out.push(std::mem::take(&mut cur));
                    n = 0;
                    rl_open = false;
                }
            }
        }
    }
    if n > 0 {
        out.push(cur);
    }
    out
}

/// Data points of a metric, of whatever type.
pub fn point_count(metric: &Metric) -> usize {
    match &metric.data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

/// Splits `metric` after its first `at` points: `metric` keeps them, the rest are returned.
fn split_metric(metric: &mut Metric, at: usize) -> Metric {
    let mut tail = Metric {
        data: None,
        ..metric.clone()
    };
    tail.data = match &mut metric.data {
        Some(Data::Gauge(g)) => {
            let mut t = g.clone();
            t.data_points = g.data_points.split_off(at);
            Some(Data::Gauge(t))
        }
        Some(Data::Sum(s)) => {
            let points = s.data_points.split_off(at);
            let mut t = s.clone();
            t.data_points = points;
            Some(Data::Sum(t))
        }
        Some(Data::Histogram(h)) => {
            let points = h.data_points.split_off(at);
            let mut t = h.clone();
            t.data_points = points;
            Some(Data::Histogram(t))
        }
        Some(Data::ExponentialHistogram(h)) => {
            let points = h.data_points.split_off(at);
            let mut t = h.clone();
            t.data_points = points;
            Some(Data::ExponentialHistogram(t))
        }
        Some(Data::Summary(s)) => {
            let points = s.data_points.split_off(at);
            let mut t = s.clone();
            t.data_points = points;
            Some(Data::Summary(t))
        }
        None => None,
    };
    tail
}

/// Regroups metric data points into requests of `batch` points, splitting a metric's points across
/// requests where needed (see [`chunk_traces`]).
pub fn chunk_metrics(
    resources: Vec<ResourceMetrics>,
    batch: usize,
) -> Vec<ExportMetricsServiceRequest> {
    let mut out = Vec::new();
    let mut cur = ExportMetricsServiceRequest::default();
    let mut n = 0usize;
    for mut rm in resources {
        let scopes = std::mem::take(&mut rm.scope_metrics);
        let mut rm_open = false;
        for mut sm in scopes {
            let metrics = std::mem::take(&mut sm.metrics);
            let mut sm_open = false;
            for mut metric in metrics {
                loop {
                    let points = point_count(&metric);
                    if points == 0 {
                        break;
                    }
                    let room = batch - n;
                    let rest = if points > room {
                        Some(split_metric(&mut metric, room))
                    } else {
                        None
                    };
                    let taken = points.min(room);
                    if !rm_open {
                        cur.resource_metrics.push(rm.clone());
                        rm_open = true;
                        sm_open = false;
                    }
                    let Some(last_rm) = cur.resource_metrics.last_mut() else {
                        unreachable!("a resource was just pushed")
                    };
                    if !sm_open {
                        last_rm.scope_metrics.push(sm.clone());
                        sm_open = true;
                    }
                    let Some(last_sm) = last_rm.scope_metrics.last_mut() else {
                        unreachable!("a scope was just pushed")
                    };
                    last_sm.metrics.push(metric);
                    n += taken;
                    if n >= batch {
                        out.push(std::mem::take(&mut cur));
                        n = 0;
                        rm_open = false;
                    }
                    match rest {
                        Some(rest) => metric = rest,
                        None => break,
                    }
                }
            }
        }
    }
    if n > 0 {
        out.push(cur);
    }
    out
}

/// The value XORed into trace ids in `cycle` (0 leaves them as simulated).
fn cycle_xor(cycle: u32) -> u64 {
    if cycle == 0 {
        return 0;
    }
    let mut z = u64::from(cycle).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn xor_id(id: &mut [u8], x: u64) {
    if x != 0 && id.len() >= 8 {
        for (b, k) in id[..8].iter_mut().zip(x.to_be_bytes()) {
            *b ^= k;
        }
    }
}

/// Ids nested in links and exemplars are sent as bytes too; same treatment.
fn shift(t: &mut u64, by: i64) {
    if *t != 0 {
        *t = (*t as i64).saturating_add(by).max(1) as u64;
    }
}

fn mutate_exemplars(exemplars: &mut [Exemplar], x: u64, by: i64) {
    for e in exemplars {
        shift(&mut e.time_unix_nano, by);
        if e.trace_id.len() == 16 {
            xor_id(&mut e.trace_id, x);
        }
    }
}

fn mutate_traces(req: &mut ExportTraceServiceRequest, x: u64, by: i64) {
    for rs in &mut req.resource_spans {
        for ss in &mut rs.scope_spans {
            for span in &mut ss.spans {
                xor_id(&mut span.trace_id, x);
                shift(&mut span.start_time_unix_nano, by);
                shift(&mut span.end_time_unix_nano, by);
                for event in &mut span.events {
                    shift(&mut event.time_unix_nano, by);
                }
                for link in &mut span.links {
                    xor_id(&mut link.trace_id, x);
                }
            }
        }
    }
}

fn mutate_logs(req: &mut ExportLogsServiceRequest, x: u64, by: i64) {
    for rl in &mut req.resource_logs {
        for sl in &mut rl.scope_logs {
            for record in &mut sl.log_records {
                if record.trace_id.len() == 16 {
                    xor_id(&mut record.trace_id, x);
                }
                shift(&mut record.time_unix_nano, by);
                shift(&mut record.observed_time_unix_nano, by);
            }
        }
    }
}

fn mutate_metrics(req: &mut ExportMetricsServiceRequest, x: u64, by: i64) {
    for rm in &mut req.resource_metrics {
        for sm in &mut rm.scope_metrics {
            for metric in &mut sm.metrics {
                match &mut metric.data {
                    Some(Data::Gauge(g)) => {
                        for p in &mut g.data_points {
                            shift(&mut p.time_unix_nano, by);
                            shift(&mut p.start_time_unix_nano, by);
                            mutate_exemplars(&mut p.exemplars, x, by);
                        }
                    }
                    Some(Data::Sum(s)) => {
                        for p in &mut s.data_points {
                            shift(&mut p.time_unix_nano, by);
                            shift(&mut p.start_time_unix_nano, by);
                            mutate_exemplars(&mut p.exemplars, x, by);
                        }
                    }
                    Some(Data::Histogram(h)) => {
                        for p in &mut h.data_points {
                            shift(&mut p.time_unix_nano, by);
                            shift(&mut p.start_time_unix_nano, by);
                            mutate_exemplars(&mut p.exemplars, x, by);
                        }
                    }
                    Some(Data::ExponentialHistogram(h)) => {
                        for p in &mut h.data_points {
                            shift(&mut p.time_unix_nano, by);
                            shift(&mut p.start_time_unix_nano, by);
                            mutate_exemplars(&mut p.exemplars, x, by);
                        }
                    }
                    Some(Data::Summary(s)) => {
                        for p in &mut s.data_points {
                            shift(&mut p.time_unix_nano, by);
                            shift(&mut p.start_time_unix_nano, by);
                        }
                    }
                    None => {}
                }
            }
        }
    }
}

fn trace_items(req: &ExportTraceServiceRequest) -> usize {
    req.resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum()
}

fn log_items(req: &ExportLogsServiceRequest) -> usize {
    req.resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum()
}

fn metric_items(req: &ExportMetricsServiceRequest) -> usize {
    req.resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(point_count)
        .sum()
}

fn encode_body<M: prost::Message + Serialize>(
    msg: &M,
    format: WireFormat,
    gzip: bool,
) -> anyhow::Result<Bytes> {
    let raw = match format {
        WireFormat::Protobuf => msg.encode_to_vec(),
        WireFormat::Json => serde_json::to_vec(msg)?,
    };
    if !gzip {
        return Ok(Bytes::from(raw));
    }
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(raw.len() / 4),
        flate2::Compression::default(),
    );
    encoder.write_all(&raw)?;
    Ok(Bytes::from(encoder.finish()?))
}

/// Encodes cycle `cycle` of the base: ids XORed, times shifted by `by` ns.
fn encode_cycle(
    base: &Base,
    spec: &PoolSpec,
    cycle: u32,
    by: i64,
) -> anyhow::Result<Vec<EncodedRequest>> {
    let x = cycle_xor(cycle);
    let mut out = Vec::with_capacity(base.chunks.len());
    match &base.chunks {
        Chunks::Traces(chunks) => {
            for chunk in chunks {
                let mut req = chunk.clone();
                mutate_traces(&mut req, x, by);
                out.push(EncodedRequest {
                    body: encode_body(&req, spec.format, spec.gzip)?,
                    items: trace_items(&req) as u32,
                });
            }
        }
        Chunks::Logs(chunks) => {
            for chunk in chunks {
                let mut req = chunk.clone();
                mutate_logs(&mut req, x, by);
                out.push(EncodedRequest {
                    body: encode_body(&req, spec.format, spec.gzip)?,
                    items: log_items(&req) as u32,
                });
            }
        }
        Chunks::Metrics(chunks) => {
            for chunk in chunks {
                let mut req = chunk.clone();
                mutate_metrics(&mut req, x, by);
                out.push(EncodedRequest {
                    body: encode_body(&req, spec.format, spec.gzip)?,
                    items: metric_items(&req) as u32,
                });
            }
        }
    }
    Ok(out)
}

/// Protobuf and OTLP/JSON sizes per item, over the base (JSON over its first ~200k items).
fn measure_sizes(base: &Base, spec: &PoolSpec) -> anyhow::Result<EncodedSizes> {
    const JSON_SAMPLE_ITEMS: usize = 200_000;
    fn measure<M: prost::Message + Serialize>(
        chunks: &[M],
        count: impl Fn(&M) -> usize,
        with_json: bool,
    ) -> anyhow::Result<EncodedSizes> {
        let (mut pb, mut items) = (0usize, 0usize);
        for c in chunks {
            pb += c.encoded_len();
            items += count(c);
        }
        let mut sizes = EncodedSizes {
            protobuf_bytes_per_item: pb as f64 / items.max(1) as f64,
            ..EncodedSizes::default()
        };
        if with_json {
            let (mut full, mut compact, mut sample) = (0usize, 0usize, 0usize);
            for c in chunks {
                if sample >= JSON_SAMPLE_ITEMS {
                    break;
                }
                let mut value = serde_json::to_value(c)?;
                full += serde_json::to_vec(&value)?.len();
                strip_defaults(&mut value);
                compact += serde_json::to_vec(&value)?.len();
                sample += count(c);
            }
            sizes.json_bytes_per_item = compact as f64 / sample.max(1) as f64;
            sizes.json_full_bytes_per_item = full as f64 / sample.max(1) as f64;
            sizes.json_sample_items = sample as u64;
        }
        Ok(sizes)
    }
    match &base.chunks {
        Chunks::Traces(c) => measure(c, trace_items, spec.measure_json),
        Chunks::Logs(c) => measure(c, log_items, spec.measure_json),
        Chunks::Metrics(c) => measure(c, metric_items, spec.measure_json),
    }
}

/// Removes object members holding their type's default (0, "0", "", false, null, [] or {}), as the
/// OTLP/JSON spec allows; the value members of `AnyValue` are kept whatever they hold.
pub fn strip_defaults(value: &mut serde_json::Value) {
    use serde_json::Value;
    const ANY_VALUE_KEYS: &[&str] = &[
        "stringValue",
        "boolValue",
        "intValue",
        "doubleValue",
        "bytesValue",
        "arrayValue",
        "kvlistValue",
    ];
    match value {
        Value::Object(map) => {
            for (_, v) in map.iter_mut() {
                strip_defaults(v);
            }
            map.retain(|key, v| {
                if ANY_VALUE_KEYS.contains(&key.as_str()) {
                    return true;
                }
                match v {
                    Value::Null => false,
                    Value::Bool(b) => *b,
                    Value::Number(n) => n.as_f64() != Some(0.0),
                    Value::String(s) => !(s.is_empty() || s == "0"),
                    Value::Array(a) => !a.is_empty(),
                    Value::Object(o) => !o.is_empty(),
                }
            });
        }
        Value::Array(items) => {
            for v in items {
                strip_defaults(v);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
