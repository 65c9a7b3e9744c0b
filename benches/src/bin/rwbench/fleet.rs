//! A fleet of scrape targets, each exposing the same 100 series the way a node exporter plus an
//! instrumented HTTP service would: request counters by method and status, a latency histogram,
//! per-CPU time counters, memory and filesystem gauges, a Go GC summary, network byte counters,
//! load averages and the scrape's own `up` / `scrape_*` series.
//!
//! Every target is scraped every `interval` at its own fixed offset inside the interval (as
//! Prometheus spreads targets), so a target's series share timestamps. Counters only increase (at
//! a per-series rate with noise, integer or with the precision the exporters print: 0.01 s of CPU,
//! 0.001 s of disk time), gauges wander (random walks in whole bytes / pages, load averages to two
//! decimals) or are noisy floats (scrape durations, GC quantiles), histogram buckets are cumulative
//! over `le` and over time. Everything is a pure function of the seed and the target index, so every
//! system under test receives exactly the same samples.

use crate::prompb::{self, Label, MetricMetadata};

/// Series every target exposes.
pub const SERIES_PER_TARGET: usize = 100;

/// The `job` label: target `t` belongs to `JOBS[t % JOBS.len()]`.
pub const JOBS: [&str; 10] = [
    "api-gateway",
    "checkout",
    "catalog",
    "payments",
    "inventory",
    "search",
    "auth",
    "shipping",
    "node",
    "postgres",
];

/// Upper bounds of the latency histogram's buckets (the last is `+Inf`).
const LES: [&str; 12] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];
/// Share of requests at or under each bound, before a histogram's own skew.
const LE_CDF: [f64; 12] = [
    0.02, 0.08, 0.25, 0.5, 0.72, 0.9, 0.96, 0.985, 0.995, 0.998, 0.999, 1.0,
];

/// The `instance` label of target `t`.
pub fn instance(t: usize) -> String {
    format!("10.{}.{}.{}:9100", (t >> 16) & 255, (t >> 8) & 255, t & 255)
}

/// The `job` label of target `t`.
pub fn job(t: usize) -> &'static str {
    JOBS[t % JOBS.len()]
}

/// splitmix64: small, fast and good enough for synthetic values.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.next_u64();
        r
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal, mean 0, standard deviation ~1 (sum of four uniforms).
    fn noise(&mut self) -> f64 {
        (self.unit() + self.unit() + self.unit() + self.unit() - 2.0) * 1.73
    }

    /// Log-uniform in [lo, hi).
    fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + self.unit() * (hi.ln() - lo.ln())).exp()
    }
}

/// How a series' value evolves from one scrape to the next.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Increases by about `per_sec × interval`, rounded to `quantum` (1 for integer counters, 0 for
    /// full float precision).
    Counter { per_sec: f64, quantum: f64 },
    /// A mean-reverting random walk between `lo` and `hi`, steps of about `step`, rounded to `quantum`.
    Walk {
        lo: f64,
        hi: f64,
        step: f64,
        quantum: f64,
    },
    /// A fresh value around `mid` (±30 %) at every scrape, full precision.
    Noisy { mid: f64 },
    /// Never changes.
    Const(f64),
    /// Cumulative bucket `le` of histogram `h`.
    Bucket { h: usize, le: usize },
    /// `_sum` of histogram `h`.
    HistSum { h: usize },
    /// `_count` of histogram `h`.
    HistCount { h: usize },
}

/// One series of the per-target template.
#[derive(Clone, Debug)]
struct SeriesDef {
    name: &'static str,
    labels: Vec<(&'static str, String)>,
    kind: Kind,
}

fn def(name: &'static str, labels: &[(&'static str, &str)], kind: Kind) -> SeriesDef {
    SeriesDef {
        name,
        labels: labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect(),
        kind,
    }
}

/// The 100 series of one target, before per-target scaling.
fn template() -> Vec<SeriesDef> {
    let mut t = Vec::with_capacity(SERIES_PER_TARGET);
    for method in ["GET", "POST"] {
        for (status, per_sec) in [
            ("200", 20.0),
            ("201", 3.0),
            ("400", 0.5),
            ("404", 0.8),
            ("500", 0.1),
        ] {
            let per_sec = if method == "POST" {
                per_sec / 4.0
            } else {
                per_sec
            };
            t.push(def(
                "http_requests_total",
                &[("method", method), ("status", status)],
                Kind::Counter {
                    per_sec,
                    quantum: 1.0,
                },
            ));
        }
    }
    for (h, method) in ["GET", "POST"].into_iter().enumerate() {
        for (le, bound) in LES.iter().enumerate() {
            t.push(def(
                "http_request_duration_seconds_bucket",
                &[("le", bound), ("method", method)],
                Kind::Bucket { h, le },
            ));
        }
        t.push(def(
            "http_request_duration_seconds_sum",
            &[("method", method)],
            Kind::HistSum { h },
        ));
        t.push(def(
            "http_request_duration_seconds_count",
            &[("method", method)],
            Kind::HistCount { h },
        ));
    }
    let modes = [
        ("idle", 0.7),
        ("iowait", 0.01),
        ("irq", 0.0005),
        ("nice", 0.001),
        ("softirq", 0.005),
        ("steal", 0.002),
        ("system", 0.08),
        ("user", 0.2),
    ];
    for cpu in ["0", "1", "2", "3"] {
        for (mode, share) in modes {
            t.push(def(
                "node_cpu_seconds_total",
                &[("cpu", cpu), ("mode", mode)],
                Kind::Counter {
                    per_sec: share,
                    quantum: 0.01,
                },
            ));
        }
    }
    let gib = 1024.0 * 1024.0 * 1024.0;
    for (name, lo, hi) in [
        ("node_memory_MemAvailable_bytes", 2.0 * gib, 12.0 * gib),
        ("node_memory_MemFree_bytes", 0.5 * gib, 4.0 * gib),
        ("node_memory_Cached_bytes", 1.0 * gib, 8.0 * gib),
        ("node_memory_Buffers_bytes", 0.05 * gib, 0.5 * gib),
    ] {
        t.push(def(
            name,
            &[],
            Kind::Walk {
                lo,
                hi,
                step: 2.0e6,
                quantum: 4096.0,
            },
        ));
    }
    t.push(def(
        "process_resident_memory_bytes",
        &[],
        Kind::Walk {
            lo: 50.0e6,
            hi: 900.0e6,
            step: 1.0e6,
            quantum: 4096.0,
        },
    ));
    t.push(def(
        "process_cpu_seconds_total",
        &[],
        Kind::Counter {
            per_sec: 0.3,
            quantum: 0.01,
        },
    ));
    t.push(def(
        "process_open_fds",
        &[],
        Kind::Walk {
            lo: 20.0,
            hi: 400.0,
            step: 2.0,
            quantum: 1.0,
        },
    ));
    t.push(def(
        "go_goroutines",
        &[],
        Kind::Walk {
            lo: 30.0,
            hi: 2000.0,
            step: 5.0,
            quantum: 1.0,
        },
    ));
    for (q, mid) in [
        ("0", 1.5e-5),
        ("0.25", 3.0e-5),
        ("0.5", 5.0e-5),
        ("0.75", 9.0e-5),
        ("1", 6.0e-4),
    ] {
        t.push(def(
            "go_gc_duration_seconds",
            &[("quantile", q)],
            Kind::Noisy { mid },
        ));
    }
    t.push(def(
        "go_gc_duration_seconds_sum",
        &[],
        Kind::Counter {
            per_sec: 2.0e-4,
            quantum: 0.0,
        },
    ));
    t.push(def(
        "go_gc_duration_seconds_count",
        &[],
        Kind::Counter {
            per_sec: 0.3,
            quantum: 1.0,
        },
    ));
    for dir in ["receive", "transmit"] {
        for (device, per_sec) in [("eth0", 2.0e6), ("lo", 1.0e5)] {
            let name = if dir == "receive" {
                "node_network_receive_bytes_total"
            } else {
                "node_network_transmit_bytes_total"
            };
            t.push(def(
                name,
                &[("device", device)],
                Kind::Counter {
                    per_sec,
                    quantum: 1.0,
                },
            ));
        }
    }
    for (device, mountpoint) in [
        ("/dev/vda1", "/"),
        ("/dev/vda2", "/var"),
        ("/dev/vdb1", "/home"),
    ] {
        t.push(def(
            "node_filesystem_avail_bytes",
            &[
                ("device", device),
                ("fstype", "ext4"),
                ("mountpoint", mountpoint),
            ],
            Kind::Walk {
                lo: 5.0 * gib,
                hi: 200.0 * gib,
                step: 1.0e6,
                quantum: 4096.0,
            },
        ));
    }
    t.push(def("up", &[], Kind::Const(1.0)));
    t.push(def(
        "scrape_duration_seconds",
        &[],
        Kind::Noisy { mid: 0.012 },
    ));
    t.push(def(
        "scrape_samples_scraped",
        &[],
        Kind::Const(SERIES_PER_TARGET as f64),
    ));
    for name in ["node_load1", "node_load5", "node_load15"] {
        t.push(def(
            name,
            &[],
            Kind::Walk {
                lo: 0.0,
                hi: 8.0,
                step: 0.05,
                quantum: 0.01,
            },
        ));
    }
    for device in ["vda", "vdb"] {
        t.push(def(
            "node_disk_io_time_seconds_total",
            &[("device", device)],
            Kind::Counter {
                per_sec: 0.05,
                quantum: 0.001,
            },
        ));
    }
    debug_assert_eq!(t.len(), SERIES_PER_TARGET);
    t
}

/// The families' metadata (type and help), as Prometheus sends it.
pub fn metadata() -> Vec<MetricMetadata> {
    let families: [(&str, i32, &str); 19] = [
        (
            "http_requests_total",
            prompb::COUNTER,
            "HTTP requests by method and status.",
        ),
        (
            "http_request_duration_seconds",
            prompb::HISTOGRAM,
            "HTTP request latency.",
        ),
        (
            "node_cpu_seconds_total",
            prompb::COUNTER,
            "Seconds the CPUs spent in each mode.",
        ),
        (
            "node_memory_MemAvailable_bytes",
            prompb::GAUGE,
            "Memory information field MemAvailable_bytes.",
        ),
        (
            "node_memory_MemFree_bytes",
            prompb::GAUGE,
            "Memory information field MemFree_bytes.",
        ),
        (
            "node_memory_Cached_bytes",
            prompb::GAUGE,
            "Memory information field Cached_bytes.",
        ),
        (
            "node_memory_Buffers_bytes",
            prompb::GAUGE,
            "Memory information field Buffers_bytes.",
        ),
        (
            "process_resident_memory_bytes",
            prompb::GAUGE,
            "Resident memory size in bytes.",
        ),
        (
            "process_cpu_seconds_total",
            prompb::COUNTER,
            "Total user and system CPU time spent in seconds.",
        ),
        (
            "process_open_fds",
            prompb::GAUGE,
            "Number of open file descriptors.",
        ),
        (
            "go_goroutines",
            prompb::GAUGE,
            "Number of goroutines that currently exist.",
        ),
        (
            "go_gc_duration_seconds",
            prompb::SUMMARY,
            "A summary of the pause duration of garbage collection cycles.",
        ),
        (
            "node_network_receive_bytes_total",
            prompb::COUNTER,
            "Network device statistic receive_bytes.",
        ),
        (
            "node_network_transmit_bytes_total",
            prompb::COUNTER,
            "Network device statistic transmit_bytes.",
        ),
        (
            "node_filesystem_avail_bytes",
            prompb::GAUGE,
            "Filesystem space available to non-root users in bytes.",
        ),
        ("up", prompb::GAUGE, "Whether the last scrape succeeded."),
        (
            "scrape_duration_seconds",
            prompb::GAUGE,
            "Duration of the scrape.",
        ),
        (
            "scrape_samples_scraped",
            prompb::GAUGE,
            "Samples the target exposed.",
        ),
        (
            "node_disk_io_time_seconds_total",
            prompb::COUNTER,
            "Total seconds spent doing I/Os.",
        ),
    ];
    let mut out: Vec<MetricMetadata> = families
        .iter()
        .map(|(name, ty, help)| MetricMetadata {
            r#type: *ty,
            metric_family_name: (*name).to_string(),
            help: (*help).to_string(),
            unit: String::new(),
        })
        .collect();
    for name in ["node_load1", "node_load5", "node_load15"] {
        out.push(MetricMetadata {
            r#type: prompb::GAUGE,
            metric_family_name: name.to_string(),
            help: "Load average.".to_string(),
            unit: String::new(),
        });
    }
    out
}

/// The shape of the data: which targets, which scrapes.
#[derive(Clone, Debug)]
pub struct FleetSpec {
    /// Scrape targets (series = targets × 100).
    pub targets: usize,
    /// Milliseconds between scrapes of a target.
    pub interval_ms: i64,
    /// Scrapes per target.
    pub scrapes: usize,
    /// Every timestamp is in `[end_ms - scrapes × interval_ms, end_ms)`.
    pub end_ms: i64,
    /// Random ± milliseconds added to each scrape's timestamp (0: perfectly regular).
    pub jitter_ms: i64,
    /// Share of series (and histograms) that do not change during the window: idle counters and
    /// flat gauges, as most of a real exporter's series are (0: every series changes every scrape).
    pub idle_share: f64,
    /// Seed of every value.
    pub seed: u64,
}

impl FleetSpec {
    /// The first possible timestamp.
    pub fn start_ms(&self) -> i64 {
        self.end_ms - self.scrapes as i64 * self.interval_ms
    }

    /// Total samples.
    pub fn samples(&self) -> u64 {
        (self.targets * SERIES_PER_TARGET * self.scrapes) as u64
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Histogram {
    observations: f64,
    sum: f64,
    per_sec: f64,
    skew: f64,
}

/// One target's series and their current values.
#[derive(Debug)]
pub struct Target {
    index: usize,
    offset_ms: i64,
    rng: Rng,
    kinds: Vec<Kind>,
    values: Vec<f64>,
    histograms: [Histogram; 2],
    /// Sorted label sets, `__name__` first.
    labels: Vec<Vec<Label>>,
}

/// Generates the targets of a fleet.
#[derive(Debug)]
pub struct Fleet {
    spec: FleetSpec,
    template: Vec<SeriesDef>,
}

impl Fleet {
    /// A fleet of `spec`.
    pub fn new(spec: FleetSpec) -> Fleet {
        Fleet {
            spec,
            template: template(),
        }
    }

    /// Target `t` before its first scrape: per-series rates and starting values drawn from the seed.
    pub fn target(&self, t: usize) -> Target {
        let mut rng = Rng::new(self.spec.seed, t as u64);
        let interval = self.spec.interval_ms.max(1);
        let offset_ms = (rng.next_u64() % interval as u64) as i64;
        // How busy this target is: scales its request rates and network traffic.
        let load = rng.log_uniform(0.2, 5.0);
        let uptime_s = rng.log_uniform(3600.0, 90.0 * 86400.0);
        // A separate stream, so the other values do not depend on --idle-share.
        let mut idle_rng = Rng::new(self.spec.seed ^ 0x1D1E, t as u64);
        let mut idle = |share: f64| share > 0.0 && idle_rng.unit() < share;
        let mut kinds = Vec::with_capacity(self.template.len());
        let mut values = Vec::with_capacity(self.template.len());
        for s in &self.template {
            let kind = match s.kind {
                Kind::Counter { per_sec, quantum } => {
                    let scaled =
                        if s.name.starts_with("http_") || s.name.starts_with("node_network") {
                            per_sec * load
                        } else {
                            per_sec
                        };
                    Kind::Counter {
                        per_sec: scaled * rng.log_uniform(0.5, 2.0),
                        quantum,
                    }
                }
                other => other,
            };
            let start = match kind {
                Kind::Counter { per_sec, quantum } => {
                    round_to(per_sec * uptime_s * (0.8 + 0.4 * rng.unit()), quantum)
                }
                Kind::Walk {
                    lo, hi, quantum, ..
                } => round_to(lo + (hi - lo) * rng.unit(), quantum),
                Kind::Noisy { mid } => mid,
                Kind::Const(v) => v,
                Kind::Bucket { .. } | Kind::HistSum { .. } | Kind::HistCount { .. } => 0.0,
            };
            let kind = match kind {
                Kind::Counter { .. } | Kind::Walk { .. } | Kind::Noisy { .. }
                    if idle(self.spec.idle_share) =>
                {
                    Kind::Const(start)
                }
                other => other,
            };
            kinds.push(kind);
            values.push(start);
        }
        let mut histograms = [Histogram::default(); 2];
        for (h, hist) in histograms.iter_mut().enumerate() {
            let per_sec = if h == 0 { 20.0 } else { 5.0 } * load * rng.log_uniform(0.5, 2.0);
            hist.per_sec = per_sec;
            hist.skew = rng.log_uniform(0.5, 2.0);
            hist.observations = (per_sec * uptime_s).round();
            hist.sum = hist.observations * 0.05 * hist.skew;
        }
        for hist in &mut histograms {
            if idle(self.spec.idle_share) {
                hist.per_sec = 0.0;
            }
        }
        let (inst, job) = (instance(t), job(t));
        let labels = self
            .template
            .iter()
            .map(|s| {
                let mut l: Vec<Label> = Vec::with_capacity(s.labels.len() + 3);
                l.push(Label {
                    name: "__name__".to_string(),
                    value: s.name.to_string(),
                });
                l.extend(s.labels.iter().map(|(k, v)| Label {
                    name: (*k).to_string(),
                    value: v.clone(),
                }));
                l.push(Label {
                    name: "instance".to_string(),
                    value: inst.clone(),
                });
                l.push(Label {
                    name: "job".to_string(),
                    value: job.to_string(),
                });
                l.sort_by(|a, b| a.name.cmp(&b.name));
                l
            })
            .collect();
        let mut target = Target {
            index: t,
            offset_ms,
            rng,
            kinds,
            values,
            histograms,
            labels,
        };
        target.refresh_histograms();
        target
    }
}

fn round_to(v: f64, quantum: f64) -> f64 {
    if quantum > 0.0 {
        (v / quantum).round() * quantum
    } else {
        v
    }
}

impl Target {
    /// The target's index in the fleet.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Series labels, in template order.
    pub fn labels(&self) -> &[Vec<Label>] {
        &self.labels
    }

    /// Current values, in template order.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The timestamp of scrape `scrape` (from 0) of this target.
    pub fn timestamp(&mut self, spec: &FleetSpec, scrape: usize) -> i64 {
        let mut ts = spec.start_ms() + scrape as i64 * spec.interval_ms + self.offset_ms;
        if spec.jitter_ms > 0 {
            ts += (self.rng.next_u64() % (2 * spec.jitter_ms as u64 + 1)) as i64 - spec.jitter_ms;
        }
        ts
    }

    /// Advances every series by one scrape interval.
    pub fn advance(&mut self, interval_s: f64) {
        for hist in &mut self.histograms {
            let new = (hist.per_sec * interval_s * (1.0 + 0.3 * self.rng.noise()))
                .round()
                .max(0.0);
            hist.observations += new;
            hist.sum += new * 0.05 * hist.skew * (1.0 + 0.2 * self.rng.noise()).max(0.1);
        }
        for i in 0..self.kinds.len() {
            let v = self.values[i];
            self.values[i] = match self.kinds[i] {
                Kind::Counter { per_sec, quantum } => {
                    let inc = (per_sec * interval_s * (1.0 + 0.3 * self.rng.noise())).max(0.0);
                    v + round_to(inc, quantum)
                }
                Kind::Walk {
                    lo,
                    hi,
                    step,
                    quantum,
                } => {
                    let mid = (lo + hi) / 2.0;
                    let pull = (mid - v) / (hi - lo).max(f64::MIN_POSITIVE) * step;
                    round_to((v + step * self.rng.noise() + pull).clamp(lo, hi), quantum)
                }
                Kind::Noisy { mid } => mid * (1.0 + 0.3 * self.rng.noise()).max(0.05),
                Kind::Const(c) => c,
                Kind::Bucket { .. } | Kind::HistSum { .. } | Kind::HistCount { .. } => v,
            };
        }
        self.refresh_histograms();
    }

    fn refresh_histograms(&mut self) {
        for i in 0..self.kinds.len() {
            match self.kinds[i] {
                Kind::Bucket { h, le } => {
                    let hist = self.histograms[h];
                    // Cumulative over le (the CDF is increasing) and over time (observations only grow).
                    self.values[i] = if le + 1 == LES.len() {
                        hist.observations
                    } else {
                        (hist.observations * LE_CDF[le].powf(hist.skew)).floor()
                    };
                }
                Kind::HistSum { h } => self.values[i] = self.histograms[h].sum,
                Kind::HistCount { h } => self.values[i] = self.histograms[h].observations,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
