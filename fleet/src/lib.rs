//! `lumen-fleet`: a deterministic simulation of an online bookstore run as microservices, emitting
//! OTLP exactly as its instrumented services would.
//!
//! The fleet: `gateway` (the public API, which orchestrates checkout), `account` (users, carts,
//! orders), `warehouse` (catalogue and inventory), `payment` (charges through an external provider)
//! and `security` (logins and sessions), with PostgreSQL and Redis as client spans and an
//! `order-events` Kafka topic produced by `account` and consumed by `warehouse`.
//!
//! How data flows through the crate:
//!
//! 1. [`Fleet::step`] draws request arrivals (a Poisson process, thinned by the [`Scenario`]'s
//!    traffic shape) up to the requested simulated time.
//! 2. Each arrival becomes one trace (`requests`): the gateway's route handler calls services through
//!    the primitives in `calls` — HTTP and gRPC with deadlines, retries and circuit breakers,
//!    database and cache statements, Kafka send/process — which build spans following the
//!    semantic conventions, write correlated log records, and record measurements in each
//!    service's meter (`metrics`). Scenario effects (incidents) bend latencies and failure rates.
//! 3. Every metric interval of simulated time, a periodic-reader collection (`world`) reads the
//!    observable gauges (process, runtime, inventory, breaker states) and exports every cumulative
//!    series.
//! 4. Spans wait until they end and logs until their timestamp passes (`export`), as batch
//!    processors would, then leave grouped by resource and scope as ready-to-send OTLP requests.
//!
//! Everything random comes from one seeded generator (`rng`), so the same [`FleetConfig`] and the
//! same sequence of `step` calls give byte-identical output.
//!
//! ```
//! use lumen_fleet::{Fleet, FleetConfig, Scenario};
//!
//! let mut fleet = Fleet::new(FleetConfig { seed: 7, scenario: Scenario::Steady, requests_per_second: 20.0, ..FleetConfig::default() });
//! let batch = fleet.step(fleet.now_ns() + 30_000_000_000); // 30 simulated seconds
//! assert!(batch.span_count() > 1_000);
//! assert!(batch.log_record_count() > 0 && batch.data_point_count() > 0);
//! ```

#![warn(missing_docs)]

mod breaker;
mod calls;
mod catalog;
mod export;
mod faults;
mod logs;
mod metrics;
mod otlp;
mod process;
mod requests;
mod rng;
mod scenario;
mod topology;
mod traces;
mod world;

/// The generated OTLP types (and tonic clients) the fleet's output is made of.
pub use opentelemetry_proto as proto;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric;
pub use scenario::{IncidentWindow, Scenario};
pub use topology::Service;

use crate::rng::{Rng, splitmix64};
use crate::world::World;

const NS_PER_SEC: i64 = 1_000_000_000;

/// How to run the fleet.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Traffic shape and injected incident.
    pub scenario: Scenario,
    /// Mean storefront requests per second (each one a trace of 5–30 spans). Clamped to 0..=1e6.
    pub requests_per_second: f64,
    /// Simulated time at which the fleet starts (ns since the Unix epoch); also the start time of
    /// every cumulative metric series.
    pub start_time_ns: i64,
    /// Simulated time between metric collections (ns); at least 100 ms.
    pub metric_interval_ns: i64,
    /// When an incident scenario's incident is in force.
    pub incident: IncidentWindow,
    /// `deployment.environment.name` of every service.
    pub environment: String,
}

impl Default for FleetConfig {
    /// Seed 42, steady traffic at 5 requests/s from 2025-01-06T00:00:00Z, metrics every 10 s.
    fn default() -> FleetConfig {
        FleetConfig {
            seed: 42,
            scenario: Scenario::Steady,
            requests_per_second: 5.0,
            start_time_ns: 1_736_121_600 * NS_PER_SEC,
            metric_interval_ns: 10 * NS_PER_SEC,
            incident: IncidentWindow::default(),
            environment: "production".to_string(),
        }
    }
}

/// One step's output: ready-to-send OTLP export requests. Empty requests are valid (and cheap).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Telemetry {
    /// Spans that ended in the step, grouped by service (resource) and instrumentation scope.
    pub traces: ExportTraceServiceRequest,
    /// Log records written in the step.
    pub logs: ExportLogsServiceRequest,
    /// One collection per metric interval that elapsed in the step.
    pub metrics: ExportMetricsServiceRequest,
}

impl Telemetry {
    /// Spans in `traces`.
    pub fn span_count(&self) -> usize {
        self.traces
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum()
    }

    /// Log records in `logs`.
    pub fn log_record_count(&self) -> usize {
        self.logs
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum()
    }

    /// Data points in `metrics`, of every type.
    pub fn data_point_count(&self) -> usize {
        self.metrics
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .map(|m| match &m.data {
                Some(metric::Data::Gauge(g)) => g.data_points.len(),
                Some(metric::Data::Sum(s)) => s.data_points.len(),
                Some(metric::Data::Histogram(h)) => h.data_points.len(),
                Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
                Some(metric::Data::Summary(s)) => s.data_points.len(),
                None => 0,
            })
            .sum()
    }

    /// True when the step produced nothing.
    pub fn is_empty(&self) -> bool {
        self.traces.resource_spans.is_empty()
            && self.logs.resource_logs.is_empty()
            && self.metrics.resource_metrics.is_empty()
    }
}

/// The simulated bookstore. Advance it with [`Fleet::step`].
#[derive(Debug)]
pub struct Fleet {
    config: FleetConfig,
    world: World,
    /// Arrival times have their own stream, so scenarios that change what requests do keep the
    /// same arrivals (comparisons between scenarios stay fair).
    arrivals: Rng,
    /// Mean gap between candidate arrivals at the scenario's peak rate (ns); `None` for no traffic.
    mean_gap_ns: Option<f64>,
    now: i64,
    next_arrival: i64,
    next_collection: i64,
}

impl Fleet {
    /// A fleet at `config.start_time_ns`, nothing emitted yet. Out-of-range settings are clamped.
    pub fn new(mut config: FleetConfig) -> Fleet {
        config.start_time_ns = config.start_time_ns.max(1);
        config.metric_interval_ns = config.metric_interval_ns.max(NS_PER_SEC / 10);
        config.requests_per_second = if config.requests_per_second.is_finite() {
            config.requests_per_second.clamp(0.0, 1e6)
        } else {
            0.0
        };
        let mut seeds = config.seed;
        let world = World::new(
            splitmix64(&mut seeds),
            config.start_time_ns,
            &config.environment,
        );
        let mut arrivals = Rng::new(splitmix64(&mut seeds));
        let peak_rate = config.requests_per_second * config.scenario.peak_traffic();
        let mean_gap_ns = (peak_rate > 0.0).then(|| 1e9 / peak_rate);
        let start = config.start_time_ns;
        let next_arrival = match mean_gap_ns {
            Some(gap) => start.saturating_add(arrivals.exponential(gap) as i64),
            None => i64::MAX,
        };
        Fleet {
            next_collection: start.saturating_add(config.metric_interval_ns),
            config,
            world,
            arrivals,
            mean_gap_ns,
            now: start,
            next_arrival,
        }
    }

    /// The configuration in force (after clamping).
    pub fn config(&self) -> &FleetConfig {
        &self.config
    }

    /// The simulated time up to which the fleet has run (ns since the epoch).
    pub fn now_ns(&self) -> i64 {
        self.now
    }

    /// Runs the fleet from [`Fleet::now_ns`] to `until_ns`: requests arriving before `until_ns` are
    /// simulated, metric collections due at or before it happen, and every span that ended and log
    /// record written by then is returned. A time not after `now_ns` returns nothing.
    pub fn step(&mut self, until_ns: i64) -> Telemetry {
        let mut telemetry = Telemetry::default();
        if until_ns <= self.now {
            return telemetry;
        }
        let start = self.config.start_time_ns;
        let peak = self.config.scenario.peak_traffic();
        loop {
            let arrival_due = self.next_arrival < until_ns;
            let collection_due = self.next_collection <= until_ns;
            if arrival_due && (!collection_due || self.next_arrival < self.next_collection) {
                let t = self.next_arrival;
                self.next_arrival = match self.mean_gap_ns {
                    Some(gap) => t.saturating_add((self.arrivals.exponential(gap) as i64).max(1)),
                    None => i64::MAX,
                };
                let fx = self.config.scenario.effects(t, start, self.config.incident);
                if self.arrivals.chance(fx.traffic / peak) {
                    requests::simulate(&mut self.world, fx, t);
                }
            } else if collection_due {
                let at = self.next_collection;
                telemetry
                    .metrics
                    .resource_metrics
                    .extend(self.world.collect(at, self.config.metric_interval_ns));
                self.next_collection = at.saturating_add(self.config.metric_interval_ns);
            } else {
                break;
            }
        }
        self.now = until_ns;
        let (traces, logs) = self.world.pending.drain(until_ns, &self.world.instances);
        telemetry.traces = traces;
        telemetry.logs = logs;
        telemetry
    }

    /// Spans and log records simulated but not yet returned (they end or happen after `now_ns`).
    pub fn pending(&self) -> usize {
        self.world.pending.len()
    }
}

#[cfg(test)]
mod tests;
