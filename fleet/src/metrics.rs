//! Metric instruments and their aggregation, as an OpenTelemetry SDK's periodic reader with cumulative
//! temporality does it: every measurement lands in a series (instrument + attribute set); each
//! collection exports every series as one data point whose start time is the process start.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, exemplar, metric, number_data_point,
};

use crate::otlp::{kv_i64, kv_str, ns};
use crate::topology::{Instances, SCHEMA_URL, ScopeKind, Service};

/// The value of a metric attribute. Only static strings and integers: series keys stay cheap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum AttrValue {
    Str(&'static str),
    Int(i64),
}

/// One metric attribute.
pub(crate) type Attr = (&'static str, AttrValue);

/// A string metric attribute.
pub(crate) const fn s(key: &'static str, value: &'static str) -> Attr {
    (key, AttrValue::Str(value))
}

/// An integer metric attribute.
pub(crate) const fn i(key: &'static str, value: i64) -> Attr {
    (key, AttrValue::Int(value))
}

/// What kind of instrument, and so which OTLP metric type it exports as.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Monotonic cumulative sum.
    Counter,
    /// Non-monotonic cumulative sum; the simulation sets its current value.
    UpDownCounter,
    /// Gauge; the simulation sets its current value.
    Gauge,
    /// Explicit-bucket histogram with these upper bounds.
    Histogram(&'static [f64]),
}

/// Static description of an instrument.
#[derive(Debug)]
struct InstrumentDef {
    name: &'static str,
    description: &'static str,
    unit: &'static str,
    kind: Kind,
    /// Export values as `as_int` rather than `as_double`.
    integer: bool,
    scope: ScopeKind,
}

/// Every instrument any service uses. The order matches [`DEFS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Inst {
    HttpServerDuration,
    HttpClientDuration,
    RpcServerDuration,
    RpcClientDuration,
    DbClientDuration,
    DbConnectionCount,
    MessagingSent,
    MessagingConsumed,
    MessagingProcessDuration,
    ProcessCpuTime,
    ProcessCpuUtilization,
    ProcessMemoryUsage,
    ProcessThreadCount,
    GoMemoryUsed,
    GoGoroutineCount,
    JvmMemoryUsed,
    JvmGcDuration,
    JvmThreadCount,
    JvmCpuRecentUtilization,
    Orders,
    Revenue,
    CartSize,
    PaymentFailures,
    Payments,
    InventoryLevel,
    Shipments,
    BreakerState,
    BreakerCalls,
    BreakerCallDuration,
}

/// Semantic-conventions advice for `http.*.request.duration` and RPC durations (seconds).
const DURATION_BUCKETS: &[f64] = &[
    0.0, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// Semantic-conventions advice for `db.client.operation.duration` and messaging durations.
const DB_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];
/// Semantic-conventions advice for `jvm.gc.duration`.
const GC_BUCKETS: &[f64] = &[0.01, 0.1, 1.0, 10.0];
/// Items per cart.
const CART_BUCKETS: &[f64] = &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0];

const fn def(
    name: &'static str,
    description: &'static str,
    unit: &'static str,
    kind: Kind,
    integer: bool,
    scope: ScopeKind,
) -> InstrumentDef {
    InstrumentDef {
        name,
        description,
        unit,
        kind,
        integer,
        scope,
    }
}

use Kind::{Counter, Gauge as G, Histogram as H, UpDownCounter as UpDown};
use ScopeKind::{App, Db, Http, Messaging, Rpc, Runtime};

static DEFS: [InstrumentDef; INST_COUNT] = [
    def(
        "http.server.request.duration",
        "Duration of HTTP server requests.",
        "s",
        H(DURATION_BUCKETS),
        false,
        Http,
    ),
    def(
        "http.client.request.duration",
        "Duration of HTTP client requests.",
        "s",
        H(DURATION_BUCKETS),
        false,
        Http,
    ),
    def(
        "rpc.server.call.duration",
        "Measures the duration of inbound remote procedure calls.",
        "s",
        H(DURATION_BUCKETS),
        false,
        Rpc,
    ),
    def(
        "rpc.client.call.duration",
        "Measures the duration of outbound remote procedure calls.",
        "s",
        H(DURATION_BUCKETS),
        false,
        Rpc,
    ),
    def(
        "db.client.operation.duration",
        "Duration of database client operations.",
        "s",
        H(DB_BUCKETS),
        false,
        Db,
    ),
    def(
        "db.client.connection.count",
        "The number of connections that are currently in state described by the state attribute.",
        "{connection}",
        UpDown,
        true,
        Db,
    ),
    def(
        "messaging.client.sent.messages",
        "Number of messages producer attempted to send to the broker.",
        "{message}",
        Counter,
        true,
        Messaging,
    ),
    def(
        "messaging.client.consumed.messages",
        "Number of messages that were delivered to the application.",
        "{message}",
        Counter,
        true,
        Messaging,
    ),
    def(
        "messaging.process.duration",
        "Duration of processing operation.",
        "s",
        H(DB_BUCKETS),
        false,
        Messaging,
    ),
    def(
        "process.cpu.time",
        "Total CPU seconds broken down by different CPU modes.",
        "s",
        Counter,
        false,
        Runtime,
    ),
    def(
        "process.cpu.utilization",
        "Difference in process.cpu.time since the last measurement, divided by the elapsed time and number of CPUs available to the process.",
        "1",
        G,
        false,
        Runtime,
    ),
    def(
        "process.memory.usage",
        "The amount of physical memory in use.",
        "By",
        UpDown,
        true,
        Runtime,
    ),
    def(
        "process.thread.count",
        "Process threads count.",
        "{thread}",
        UpDown,
        true,
        Runtime,
    ),
    def(
        "go.memory.used",
        "Memory used by the Go runtime.",
        "By",
        UpDown,
        true,
        Runtime,
    ),
    def(
        "go.goroutine.count",
        "Count of live goroutines.",
        "{goroutine}",
        UpDown,
        true,
        Runtime,
    ),
    def(
        "jvm.memory.used",
        "Measure of memory used.",
        "By",
        UpDown,
        true,
        Runtime,
    ),
    def(
        "jvm.gc.duration",
        "Duration of JVM garbage collection actions.",
        "s",
        H(GC_BUCKETS),
        false,
        Runtime,
    ),
    def(
        "jvm.thread.count",
        "Number of executing platform threads.",
        "{thread}",
        UpDown,
        true,
        Runtime,
    ),
    def(
        "jvm.cpu.recent_utilization",
        "Recent CPU utilization for the process as reported by the JVM.",
        "1",
        G,
        false,
        Runtime,
    ),
    def(
        "bookstore.orders",
        "Checkouts by outcome (order.status) and payment method.",
        "{order}",
        Counter,
        true,
        App,
    ),
    def(
        "bookstore.revenue",
        "Revenue of placed orders.",
        "USD",
        Counter,
        false,
        App,
    ),
    def(
        "bookstore.cart.size",
        "Items per cart at checkout.",
        "{item}",
        H(CART_BUCKETS),
        false,
        App,
    ),
    def(
        "bookstore.payment.failures",
        "Checkouts whose payment failed, by reason.",
        "{payment}",
        Counter,
        true,
        App,
    ),
    def(
        "bookstore.payments",
        "Charges attempted with the payment provider, by outcome.",
        "{payment}",
        Counter,
        true,
        App,
    ),
    def(
        "bookstore.inventory.level",
        "Books in stock, by category and warehouse location.",
        "{book}",
        G,
        true,
        App,
    ),
    def(
        "bookstore.shipments",
        "Shipments scheduled from order events.",
        "{shipment}",
        Counter,
        true,
        App,
    ),
    def(
        "circuit_breaker.state",
        "1 for the breaker's current state (closed, open, half_open), 0 for the others.",
        "1",
        G,
        true,
        App,
    ),
    def(
        "circuit_breaker.calls",
        "Calls through a circuit breaker, by outcome (success, failure, rejected).",
        "{call}",
        Counter,
        true,
        App,
    ),
    def(
        "circuit_breaker.call.duration",
        "Duration of calls permitted through a circuit breaker.",
        "s",
        H(DURATION_BUCKETS),
        false,
        App,
    ),
];

/// How many instruments exist.
const INST_COUNT: usize = 29;

/// The slowest measurement of a collection interval, with the trace it came from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExemplarRef {
    pub at: i64,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
}

#[derive(Clone, Debug)]
struct HistogramState {
    bucket_counts: Vec<u64>,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    exemplar: Option<(f64, ExemplarRef)>,
}

#[derive(Clone, Debug)]
enum Aggregate {
    Value(f64),
    Histogram(HistogramState),
}

/// One service's instruments and their cumulative state.
#[derive(Debug)]
pub(crate) struct Meter {
    series: Vec<BTreeMap<Vec<Attr>, Aggregate>>,
    start_ns: i64,
}

impl Meter {
    /// An empty meter whose cumulative series start at `start_ns`.
    pub(crate) fn new(start_ns: i64) -> Meter {
        Meter {
            series: (0..INST_COUNT).map(|_| BTreeMap::new()).collect(),
            start_ns,
        }
    }

    /// Applies `update` to the series `attrs` of `inst`, creating it on first use.
    fn update(&mut self, inst: Inst, attrs: &[Attr], update: impl FnOnce(&mut Aggregate)) {
        let map = &mut self.series[inst as usize];
        if let Some(slot) = map.get_mut(attrs) {
            update(slot);
            return;
        }
        let mut slot = match DEFS[inst as usize].kind {
            Kind::Histogram(bounds) => Aggregate::Histogram(HistogramState {
                bucket_counts: vec![0; bounds.len() + 1],
                count: 0,
                sum: 0.0,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                exemplar: None,
            }),
            _ => Aggregate::Value(0.0),
        };
        update(&mut slot);
        map.insert(attrs.to_vec(), slot);
    }

    /// Adds to a counter.
    pub(crate) fn add(&mut self, inst: Inst, attrs: &[Attr], delta: f64) {
        self.update(inst, attrs, |agg| {
            if let Aggregate::Value(v) = agg {
                *v += delta;
            }
        });
    }

    /// Sets the current value of a gauge or up-down counter.
    pub(crate) fn set(&mut self, inst: Inst, attrs: &[Attr], value: f64) {
        self.update(inst, attrs, |agg| {
            if let Aggregate::Value(v) = agg {
                *v = value;
            }
        });
    }

    /// Records a histogram measurement, optionally with the span it was measured in.
    pub(crate) fn record(
        &mut self,
        inst: Inst,
        attrs: &[Attr],
        value: f64,
        exemplar: Option<ExemplarRef>,
    ) {
        let Kind::Histogram(bounds) = DEFS[inst as usize].kind else {
            return;
        };
        self.update(inst, attrs, |agg| {
            let Aggregate::Histogram(h) = agg else { return };
            let bucket = bounds.partition_point(|b| *b < value);
            if let Some(c) = h.bucket_counts.get_mut(bucket) {
                *c += 1;
            }
            h.count += 1;
            h.sum += value;
            h.min = h.min.min(value);
            h.max = h.max.max(value);
            if let Some(e) = exemplar
                && h.exemplar.is_none_or(|(v, _)| value > v)
            {
                h.exemplar = Some((value, e));
            }
        });
    }

    /// Exports every series as of `at` and forgets this interval's exemplars. `None` when the
    /// service has recorded nothing yet.
    pub(crate) fn collect(
        &mut self,
        at: i64,
        service: Service,
        instances: &Instances,
    ) -> Option<ResourceMetrics> {
        let mut scopes: Vec<ScopeMetrics> = Vec::new();
        for kind in ScopeKind::ALL {
            let mut metrics = Vec::new();
            for (idx, d) in DEFS.iter().enumerate() {
                if d.scope != kind || self.series[idx].is_empty() {
                    continue;
                }
                metrics.push(export_metric(d, &mut self.series[idx], self.start_ns, at));
            }
            if !metrics.is_empty() {
                scopes.push(ScopeMetrics {
                    scope: Some(instances.scope(service, kind).clone()),
                    metrics,
                    schema_url: SCHEMA_URL.to_string(),
                });
            }
        }
        if scopes.is_empty() {
            return None;
        }
        Some(ResourceMetrics {
            resource: Some(instances.resource(service).clone()),
            scope_metrics: scopes,
            schema_url: SCHEMA_URL.to_string(),
        })
    }
}

fn attributes(attrs: &[Attr]) -> Vec<KeyValue> {
    attrs
        .iter()
        .map(|(k, v)| match v {
            AttrValue::Str(s) => kv_str(k, *s),
            AttrValue::Int(n) => kv_i64(k, *n),
        })
        .collect()
}

fn export_metric(
    d: &InstrumentDef,
    series: &mut BTreeMap<Vec<Attr>, Aggregate>,
    start: i64,
    at: i64,
) -> Metric {
    let cumulative = AggregationTemporality::Cumulative as i32;
    let data = match d.kind {
        Kind::Histogram(bounds) => {
            let data_points = series
                .iter_mut()
                .filter_map(|(attrs, agg)| match agg {
                    Aggregate::Histogram(h) => Some(histogram_point(attrs, h, bounds, start, at)),
                    Aggregate::Value(_) => None,
                })
                .collect();
            metric::Data::Histogram(Histogram {
                data_points,
                aggregation_temporality: cumulative,
            })
        }
        kind => {
            let data_points = series
                .iter()
                .filter_map(|(attrs, agg)| match agg {
                    Aggregate::Value(v) => Some(NumberDataPoint {
                        attributes: attributes(attrs),
                        // Gauges have no start; cumulative sums start when the process did.
                        start_time_unix_nano: if matches!(kind, Kind::Gauge) {
                            0
                        } else {
                            ns(start)
                        },
                        time_unix_nano: ns(at),
                        value: Some(if d.integer {
                            number_data_point::Value::AsInt(v.round() as i64)
                        } else {
                            number_data_point::Value::AsDouble(*v)
                        }),
                        ..Default::default()
                    }),
                    Aggregate::Histogram(_) => None,
                })
                .collect();
            match kind {
                Kind::Gauge => metric::Data::Gauge(Gauge { data_points }),
                _ => metric::Data::Sum(Sum {
                    data_points,
                    aggregation_temporality: cumulative,
                    is_monotonic: matches!(kind, Kind::Counter),
                }),
            }
        }
    };
    Metric {
        name: d.name.to_string(),
        description: d.description.to_string(),
        unit: d.unit.to_string(),
        data: Some(data),
        ..Default::default()
    }
}

fn histogram_point(
    attrs: &[Attr],
    h: &mut HistogramState,
    bounds: &[f64],
    start: i64,
    at: i64,
) -> HistogramDataPoint {
    let exemplars = h
        .exemplar
        .take()
        .map(|(value, e)| Exemplar {
            time_unix_nano: ns(e.at),
            span_id: e.span_id.to_vec(),
            trace_id: e.trace_id.to_vec(),
            value: Some(exemplar::Value::AsDouble(value)),
            ..Default::default()
        })
        .into_iter()
        .collect();
    let seen = h.count > 0;
    HistogramDataPoint {
        attributes: attributes(attrs),
        start_time_unix_nano: ns(start),
        time_unix_nano: ns(at),
        count: h.count,
        sum: Some(h.sum),
        bucket_counts: h.bucket_counts.clone(),
        explicit_bounds: bounds.to_vec(),
        exemplars,
        flags: 0,
        min: seen.then_some(h.min),
        max: seen.then_some(h.max),
    }
}
