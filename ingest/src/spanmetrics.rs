//! Span-derived metrics: RED metrics per operation and the service graph, computed at ingest with
//! the names and labels of Tempo's metrics generator, so Grafana's service graph and APM table
//! (which query the linked Prometheus data source) work unchanged against Lumen's PromQL API.
//!
//! | series | labels |
//! |---|---|
//! | `traces_spanmetrics_calls_total` | `service`, `span_name`, `span_kind`, `status_code` |
//! | `traces_spanmetrics_latency_bucket` / `_sum` / `_count` (seconds) | the same, plus `le` |
//! | `traces_service_graph_request_total` | `client`, `server`, `connection_type` |
//! | `traces_service_graph_request_failed_total` | the same |
//! | `traces_service_graph_request_server_seconds_bucket` / `_sum` / `_count` | the same, plus `le` |
//! | `traces_service_graph_request_client_seconds_bucket` / `_sum` / `_count` | the same, plus `le` |
//!
//! `span_kind` and `status_code` take the OTLP enum names (`SPAN_KIND_SERVER`,
//! `STATUS_CODE_ERROR`), as Tempo writes them and as Grafana's queries match them.
//!
//! **How.** Each export request of spans yields one OTLP metrics request of *delta* sums and
//! histograms, one point per series touched, which goes through the ordinary metrics conversion
//! and is written to the `metrics` table before the spans' request is acknowledged. Being rows
//! like any others, the metrics survive restarts, compaction and retention with the rest; PromQL
//! turns the deltas into counters (`rate`, `increase`, `histogram_quantile` work as on Tempo's).
//! Points carry strictly increasing timestamps (the ingest clock), so two requests never write
//! the same series at the same instant. Each latency point carries one exemplar, the slowest span
//! of its group, with its trace and span ids, so a latency panel links to a trace.
//!
//! **Service graph edges** are matched by ids: a client (or producer) span and the server (or
//! consumer) span whose parent it is. The two halves usually arrive in different requests (each
//! service exports its own spans), so an unmatched half waits in memory for up to
//! [`EDGE_WAIT`] — at most [`MAX_PENDING_EDGES`] of them; what expires is counted in
//! `lumen_spanmetrics_unpaired_edges_total` and dropped, as Tempo drops it. Producer/consumer
//! pairs are `connection_type="messaging_system"` edges; a client span with `db.system.name` (or
//! the older `db.system`) is a `database` edge at once, to a node named by `db.namespace`, else
//! `db.name`, else the system. Pending halves do not
//! survive a restart (an edge whose halves straddle one is not counted); emitted edges do.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, exemplar, metric, number_data_point,
};
use opentelemetry_proto::tonic::trace::v1::Span;

use crate::convert::{Limits, accepted_spans};

/// The instrumentation scope of the derived metrics.
pub const SCOPE_NAME: &str = lumen_storage::schema::SPAN_METRICS_SCOPE;
/// Latency buckets of `traces_spanmetrics_latency` (seconds; Tempo's defaults).
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.02, 2.05, 4.10,
];
/// Latency buckets of the service graph histograms (seconds; Tempo's defaults).
pub const GRAPH_BUCKETS: [f64; 8] = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8];
/// A client span with one of these attributes calls a database (current and older semantic
/// conventions).
const DB_SYSTEM: [&str; 2] = ["db.system.name", "db.system"];
/// The attributes naming a database node, first found wins.
const DB_NODE: [&str; 4] = ["db.namespace", "db.name", "db.system.name", "db.system"];
/// How long half an edge waits for its other half.
pub const EDGE_WAIT: Duration = Duration::from_secs(30);
/// Half edges kept waiting at most; beyond, the oldest are dropped.
pub const MAX_PENDING_EDGES: usize = 100_000;

/// What one span contributes: its service and duration, whether it failed, and its ids for the
/// exemplar.
#[derive(Clone, Debug)]
struct Side {
    service: String,
    seconds: f64,
    failed: bool,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
}

/// Half an edge (or both halves, for an instant) keyed by trace id and the client span's id.
#[derive(Debug, Default)]
struct PendingEdge {
    client: Option<Side>,
    server: Option<Side>,
    messaging: bool,
    expires_ns: i64,
}

type EdgeKey = (Vec<u8>, Vec<u8>);

#[derive(Debug, Default)]
struct Pending {
    edges: HashMap<EdgeKey, PendingEdge>,
    /// Keys in the order they were added, with their expiry (stale entries are skipped).
    order: VecDeque<(i64, EdgeKey)>,
}

/// The span-metrics state of one server: the half edges waiting for their other half, and the
/// clock of the derived points. Shared by the HTTP and gRPC receivers.
#[derive(Debug, Default)]
pub struct SpanMetrics {
    pending: Mutex<Pending>,
    last_point_ns: AtomicI64,
}

/// A histogram being filled.
#[derive(Clone, Debug)]
struct Hist {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
    /// The slowest observation: (seconds, trace id, span id).
    slowest: Option<(f64, Vec<u8>, Vec<u8>)>,
}

impl Hist {
    fn new(bounds: &[f64]) -> Self {
        Hist {
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
            slowest: None,
        }
    }

    fn observe(&mut self, bounds: &[f64], side: &Side) {
        self.observe_span(bounds, side.seconds, &side.trace_id, &side.span_id);
    }

    /// One observation; the ids are copied only when it is the slowest so far.
    fn observe_span(&mut self, bounds: &[f64], seconds: f64, trace_id: &[u8], span_id: &[u8]) {
        let bucket = bounds
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(bounds.len());
        self.counts[bucket] += 1;
        self.sum += seconds;
        self.count += 1;
        if self.slowest.as_ref().is_none_or(|(s, _, _)| seconds > *s) {
            self.slowest = Some((seconds, trace_id.to_vec(), span_id.to_vec()));
        }
    }
}

/// The RED aggregate of one (service, span name, kind, status).
struct Calls {
    latency: Hist,
}

/// The aggregate of one service-graph edge.
struct Edge {
    requests: u64,
    failed: u64,
    server: Hist,
    client: Hist,
}

impl Edge {
    fn new() -> Self {
        Edge {
            requests: 0,
            failed: 0,
            server: Hist::new(&GRAPH_BUCKETS),
            client: Hist::new(&GRAPH_BUCKETS),
        }
    }

    fn add(&mut self, client: &Side, server: &Side) {
        self.requests += 1;
        if client.failed || server.failed {
            self.failed += 1;
        }
        self.client.observe(&GRAPH_BUCKETS, client);
        self.server.observe(&GRAPH_BUCKETS, server);
    }
}

/// `(client, server, connection_type)`.
type EdgeLabels = (String, String, &'static str);

fn kind_label(kind: i32) -> &'static str {
    match kind {
        1 => "SPAN_KIND_INTERNAL",
        2 => "SPAN_KIND_SERVER",
        3 => "SPAN_KIND_CLIENT",
        4 => "SPAN_KIND_PRODUCER",
        5 => "SPAN_KIND_CONSUMER",
        _ => "SPAN_KIND_UNSPECIFIED",
    }
}

fn status_label(span: &Span) -> &'static str {
    match span.status.as_ref().map_or(0, |s| s.code) {
        1 => "STATUS_CODE_OK",
        2 => "STATUS_CODE_ERROR",
        _ => "STATUS_CODE_UNSET",
    }
}

fn string_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(any_value::Value::StringValue(s)) if !s.is_empty() => Some(s.as_str()),
            _ => None,
        })
}

impl SpanMetrics {
    /// No edges waiting yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Half edges waiting for their other half.
    pub fn pending_edges(&self) -> usize {
        self.pending.lock().map_or(0, |p| p.edges.len())
    }

    /// The derived metrics of one export request of spans, counting the spans the conversion
    /// accepts (`None` when it accepts none), with points at `now_ns` or just after the previous
    /// request's.
    pub fn derive(
        &self,
        request: &ExportTraceServiceRequest,
        limits: &Limits,
        now_ns: i64,
    ) -> Option<ExportMetricsServiceRequest> {
        let mut calls: HashMap<(&str, &str, &'static str, &'static str), Calls> = HashMap::new();
        let mut edges: HashMap<EdgeLabels, Edge> = HashMap::new();
        let mut halves: Vec<(EdgeKey, Side, bool, bool)> = Vec::new();
        for (resource_spans, span) in accepted_spans(request, limits, now_ns) {
            let attributes = resource_spans
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or_default();
            let service = string_attribute(attributes, "service.name").unwrap_or("unknown_service");
            let seconds = span
                .end_time_unix_nano
                .saturating_sub(span.start_time_unix_nano) as f64
                / 1e9;
            // Owned copies only for the spans that take part in an edge (most do not).
            let side = || Side {
                service: service.to_owned(),
                seconds,
                failed: status_label(span) == "STATUS_CODE_ERROR",
                trace_id: span.trace_id.clone(),
                span_id: span.span_id.clone(),
            };
            calls
                .entry((
                    service,
                    span.name.as_str(),
                    kind_label(span.kind),
                    status_label(span),
                ))
                .or_insert_with(|| Calls {
                    latency: Hist::new(&LATENCY_BUCKETS),
                })
                .latency
                .observe_span(&LATENCY_BUCKETS, seconds, &span.trace_id, &span.span_id);
            match span.kind {
                // A call to a database has no server span: an edge at once.
                3 if DB_SYSTEM
                    .iter()
                    .any(|k| string_attribute(&span.attributes, k).is_some()) =>
                {
                    let server = DB_NODE
                        .iter()
                        .find_map(|k| string_attribute(&span.attributes, k))
                        .unwrap_or_default();
                    let client = side();
                    let server_side = Side {
                        service: server.to_owned(),
                        ..client.clone()
                    };
                    edges
                        .entry((service.to_owned(), server.to_owned(), "database"))
                        .or_insert_with(Edge::new)
                        .add(&client, &server_side);
                }
                3 | 4 => {
                    let key = (span.trace_id.clone(), span.span_id.clone());
                    halves.push((key, side(), true, span.kind == 4));
                }
                2 | 5 if span.parent_span_id.len() == 8 => {
                    let key = (span.trace_id.clone(), span.parent_span_id.clone());
                    halves.push((key, side(), false, span.kind == 5));
                }
                _ => {}
            }
        }
        if calls.is_empty() {
            return None;
        }
        self.pair(halves, now_ns, &mut edges);
        let time = self.point_time(now_ns);
        Some(request_of(calls, edges, time))
    }

    /// Matches half edges with those waiting, adds the pairs to `edges`, keeps the rest waiting
    /// and drops the expired ones.
    fn pair(
        &self,
        halves: Vec<(EdgeKey, Side, bool, bool)>,
        now_ns: i64,
        edges: &mut HashMap<EdgeLabels, Edge>,
    ) {
        let Ok(mut guard) = self.pending.lock() else {
            return;
        };
        let pending: &mut Pending = &mut guard;
        let expires_ns = now_ns.saturating_add(EDGE_WAIT.as_nanos() as i64);
        for (key, side, is_client, messaging) in halves {
            let entry = pending.edges.entry(key.clone()).or_default();
            if entry.client.is_none() && entry.server.is_none() {
                entry.expires_ns = expires_ns;
                pending.order.push_back((expires_ns, key.clone()));
            }
            entry.messaging |= messaging;
            if is_client {
                entry.client = Some(side);
            } else {
                entry.server = Some(side);
            }
            if entry.client.is_none() || entry.server.is_none() {
                continue;
            }
            if let Some(PendingEdge {
                client: Some(client),
                server: Some(server),
                messaging,
                ..
            }) = pending.edges.remove(&key)
            {
                let connection = if messaging { "messaging_system" } else { "" };
                edges
                    .entry((client.service.clone(), server.service.clone(), connection))
                    .or_insert_with(Edge::new)
                    .add(&client, &server);
            }
        }
        // Expired, or over the bound: dropped, oldest first.
        let mut unpaired = 0u64;
        while let Some((expiry, key)) = pending.order.front().cloned() {
            let live = pending
                .edges
                .get(&key)
                .is_some_and(|e| e.expires_ns == expiry);
            if live && expiry > now_ns && pending.edges.len() <= MAX_PENDING_EDGES {
                break;
            }
            pending.order.pop_front();
            if live {
                pending.edges.remove(&key);
                unpaired += 1;
            }
        }
        drop(guard);
        if unpaired > 0 {
            crate::telemetry::record_unpaired_edges(unpaired);
        }
    }

    /// `now_ns`, or 1 ns after the last point written when that is not earlier.
    fn point_time(&self, now_ns: i64) -> i64 {
        let mut last = self.last_point_ns.load(Ordering::Relaxed);
        loop {
            let next = now_ns.max(last.saturating_add(1));
            match self.last_point_ns.compare_exchange_weak(
                last,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(actual) => last = actual,
            }
        }
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn delta_sum(name: &str, description: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        description: description.into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: AggregationTemporality::Delta as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

fn delta_histogram(name: &str, description: &str, points: Vec<HistogramDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        description: description.into(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: points,
            aggregation_temporality: AggregationTemporality::Delta as i32,
        })),
        ..Default::default()
    }
}

fn count_point(attributes: Vec<KeyValue>, value: u64, time: i64) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: time as u64,
        time_unix_nano: time as u64,
        value: Some(number_data_point::Value::AsInt(
            i64::try_from(value).unwrap_or(i64::MAX),
        )),
        ..Default::default()
    }
}

fn histogram_point(
    attributes: Vec<KeyValue>,
    bounds: &[f64],
    hist: Hist,
    time: i64,
) -> HistogramDataPoint {
    let exemplars = hist
        .slowest
        .map(|(seconds, trace_id, span_id)| Exemplar {
            time_unix_nano: time as u64,
            value: Some(exemplar::Value::AsDouble(seconds)),
            span_id,
            trace_id,
            ..Default::default()
        })
        .into_iter()
        .collect();
    HistogramDataPoint {
        attributes,
        start_time_unix_nano: time as u64,
        time_unix_nano: time as u64,
        count: hist.count,
        sum: Some(hist.sum),
        bucket_counts: hist.counts,
        explicit_bounds: bounds.to_vec(),
        exemplars,
        ..Default::default()
    }
}

fn request_of(
    calls: HashMap<(&str, &str, &'static str, &'static str), Calls>,
    edges: HashMap<EdgeLabels, Edge>,
    time: i64,
) -> ExportMetricsServiceRequest {
    let mut call_points = Vec::with_capacity(calls.len());
    let mut latency_points = Vec::with_capacity(calls.len());
    for ((service, name, kind, status), aggregate) in calls {
        let labels = vec![
            kv("service", service),
            kv("span_name", name),
            kv("span_kind", kind),
            kv("status_code", status),
        ];
        call_points.push(count_point(labels.clone(), aggregate.latency.count, time));
        latency_points.push(histogram_point(
            labels,
            &LATENCY_BUCKETS,
            aggregate.latency,
            time,
        ));
    }
    let mut metrics = vec![
        delta_sum(
            "traces_spanmetrics_calls_total",
            "Spans received, by service, span name, kind and status (derived by Lumen).",
            call_points,
        ),
        delta_histogram(
            "traces_spanmetrics_latency",
            "Span durations in seconds, by service, span name, kind and status (derived by Lumen).",
            latency_points,
        ),
    ];
    if !edges.is_empty() {
        let mut requests = Vec::new();
        let mut failed = Vec::new();
        let mut server = Vec::new();
        let mut client = Vec::new();
        for ((from, to, connection), edge) in edges {
            let labels = vec![
                kv("client", &from),
                kv("server", &to),
                kv("connection_type", connection),
            ];
            requests.push(count_point(labels.clone(), edge.requests, time));
            if edge.failed > 0 {
                failed.push(count_point(labels.clone(), edge.failed, time));
            }
            server.push(histogram_point(
                labels.clone(),
                &GRAPH_BUCKETS,
                edge.server,
                time,
            ));
            client.push(histogram_point(labels, &GRAPH_BUCKETS, edge.client, time));
        }
        metrics.push(delta_sum(
            "traces_service_graph_request_total",
            "Requests between two services (derived by Lumen from client and server spans).",
            requests,
        ));
        if !failed.is_empty() {
            metrics.push(delta_sum(
                "traces_service_graph_request_failed_total",
                "Failed requests between two services (derived by Lumen).",
                failed,
            ));
        }
        metrics.push(delta_histogram(
            "traces_service_graph_request_server_seconds",
            "Server-side durations of requests between two services, in seconds.",
            server,
        ));
        metrics.push(delta_histogram(
            "traces_service_graph_request_client_seconds",
            "Client-side durations of requests between two services, in seconds.",
            client,
        ));
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: None,
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: SCOPE_NAME.into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

#[cfg(test)]
mod tests;
