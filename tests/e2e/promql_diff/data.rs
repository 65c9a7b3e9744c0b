//! The data set: seeded and deterministic relative to a start time near now.

use super::{MINUTE, SECOND};

/// Every generated metric name, for the sample-count check.
pub(super) const METRICS: [&str; 10] = [
    "http_requests_total",
    "temperature_celsius",
    "queue_depth",
    "request_duration_seconds_bucket",
    "request_duration_seconds_sum",
    "request_duration_seconds_count",
    "up",
    "build_info",
    "batch_processed_total",
    "filesystem_free_bytes",
];

/// splitmix64: small, seeded, good enough for test data.
struct Rng(u64);

impl Rng {
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

    /// Uniform in [lo, hi].
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// One generated series: labels (with `__name__`) and samples `(value, ms)` in time order.
pub(super) struct Generated {
    pub(super) labels: Vec<(String, String)>,
    pub(super) samples: Vec<(f64, i64)>,
}

fn labels(name: &str, pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    std::iter::once(("__name__".to_string(), name.to_string()))
        .chain(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

/// Scrape timestamps in `[from, to]` every `interval` ms, each jittered by up to `jitter` ms,
/// none inside `gap`, strictly increasing, and none on a whole or half second.
fn scrape_times(
    rng: &mut Rng,
    from: i64,
    to: i64,
    interval: i64,
    jitter: i64,
    gap: Option<(i64, i64)>,
) -> Vec<i64> {
    let mut out: Vec<i64> = Vec::new();
    let mut t = from + rng.between(0, interval - 1);
    while t <= to {
        let mut ts = t + rng.between(-jitter, jitter);
        if ts.rem_euclid(500) == 0 {
            ts += 1;
        }
        let in_gap = gap.is_some_and(|(a, b)| ts >= a && ts < b);
        if !in_gap && ts >= from && ts <= to && out.last().is_none_or(|last| ts > *last) {
            out.push(ts);
        }
        t += interval;
    }
    out
}

/// Counts `n` exponentially distributed observations (mean `scale` seconds) into cumulative
/// buckets and a sum.
fn observe(rng: &mut Rng, n: i64, scale: f64, counts: &mut [u64; BUCKETS.len()], sum: &mut f64) {
    for _ in 0..n {
        let x = -(1.0 - rng.unit()).ln() * scale;
        *sum += (x * 1000.0).round() / 1000.0;
        for (i, (_, le)) in BUCKETS.iter().enumerate() {
            if x <= *le {
                counts[i] += 1;
            }
        }
    }
}

const INSTANCES: [&str; 2] = ["10.0.0.1:9090", "10.0.0.2:9090"];
const JOBS: [&str; 2] = ["api", "web"];
const BUCKETS: [(&str, f64); 7] = [
    ("0.05", 0.05),
    ("0.1", 0.1),
    ("0.25", 0.25),
    ("0.5", 0.5),
    ("1", 1.0),
    ("2.5", 2.5),
    ("+Inf", f64::INFINITY),
];

/// The whole data set over `[start, end]`: counters with resets and gaps, gauges with negative,
/// fractional and NaN values, classic histograms (one restarting), series that end early (one with
/// a staleness marker) and one that starts late.
pub(super) fn generate(start: i64, end: i64) -> Vec<Generated> {
    let mut rng = Rng(0x5EED_1234_ABCD_0042);
    let mut out = Vec::new();

    // Counters: 16 series, integer increments, rare resets, one with a 7-minute gap. Every counter
    // (histograms too) starts high, as if running before the data starts (see EXCLUDED: rate).
    for job in JOBS {
        for instance in INSTANCES {
            for method in ["GET", "POST"] {
                for status in ["200", "500"] {
                    let gap = (job == "web"
                        && instance == INSTANCES[1]
                        && method == "POST"
                        && status == "500")
                        .then_some((start + 20 * MINUTE, start + 27 * MINUTE));
                    let times = scrape_times(&mut rng, start, end, 15 * SECOND, 4 * SECOND, gap);
                    let per_second = if status == "200" {
                        rng.between(5, 40) as f64 / 4.0
                    } else {
                        rng.unit() * 0.5
                    };
                    let mut v = rng.between(20_000, 50_000) as f64;
                    let mut prev = start;
                    let mut samples = Vec::new();
                    for t in times {
                        v += (per_second * (t - prev) as f64 / 1000.0 * (0.5 + rng.unit())).round();
                        if rng.chance(0.01) {
                            // A reset to a few hundred, not to ~0: a window starting at a near-zero
                            // first sample is where 2.42 and 3.x extrapolate differently (EXCLUDED).
                            v = rng.between(200, 500) as f64;
                        }
                        prev = t;
                        samples.push((v, t));
                    }
                    let l = [
                        ("job", job),
                        ("instance", instance),
                        ("method", method),
                        ("status", status),
                    ];
                    out.push(Generated {
                        labels: labels("http_requests_total", &l),
                        samples,
                    });
                }
            }
        }
    }

    // Gauges: a random walk around -8..25 with two decimals; one gap of 6 minutes; NaN readings for
    // two minutes.
    for (instance, room) in [
        ("s1", Some("lab")),
        ("s1", Some("office")),
        ("s2", Some("lab")),
        ("s2", Some("office")),
        ("s3", None),
    ] {
        let gap = (instance == "s2" && room == Some("office"))
            .then_some((start + 35 * MINUTE, start + 41 * MINUTE));
        let times = scrape_times(&mut rng, start, end, 20 * SECOND, 6 * SECOND, gap);
        let mut v = rng.between(-80, 250) as f64 / 10.0;
        let mut samples = Vec::new();
        for t in times {
            v = ((v + rng.between(-15, 15) as f64 * 0.05) * 100.0).round() / 100.0;
            let nan = room.is_none()
                && (start + 39 * MINUTE + 30 * SECOND..start + 41 * MINUTE + 30 * SECOND)
                    .contains(&t);
            samples.push((if nan { f64::NAN } else { v }, t));
        }
        let mut l = vec![("job", "sensors"), ("instance", instance)];
        if let Some(room) = room {
            l.push(("room", room));
        }
        out.push(Generated {
            labels: labels("temperature_celsius", &l),
            samples,
        });
    }

    // Integer gauges: one ends early silently, one ends with a staleness marker.
    for job in JOBS {
        for instance in INSTANCES {
            let silent_end = job == "api" && instance == INSTANCES[0];
            let marked_end = job == "web" && instance == INSTANCES[1];
            let last = if silent_end {
                start + 30 * MINUTE
            } else if marked_end {
                start + 25 * MINUTE
            } else {
                end
            };
            let times = scrape_times(&mut rng, start, last, 30 * SECOND, 10 * SECOND, None);
            let mut v = rng.between(0, 50);
            let mut samples = Vec::new();
            for t in &times {
                v = (v + rng.between(-6, 6)).clamp(0, 60);
                samples.push((v as f64, *t));
            }
            if marked_end {
                let t = times.last().copied().unwrap_or(start) + 15 * SECOND + 7;
                samples.push((f64::from_bits(0x7ff0_0000_0000_0002), t));
            }
            out.push(Generated {
                labels: labels("queue_depth", &[("job", job), ("instance", instance)]),
                samples,
            });
        }
    }

    // Classic histograms: per job and method, cumulative buckets, _sum and _count scraped together;
    // (web, POST) restarts at 28 minutes.
    for job in JOBS {
        for method in ["GET", "POST"] {
            let restarts = job == "web" && method == "POST";
            let scale = if job == "api" { 0.15 } else { 0.6 };
            let times = scrape_times(&mut rng, start, end, 15 * SECOND, 3 * SECOND, None);
            let mut counts = [0u64; BUCKETS.len()];
            let mut sum = 0.0f64;
            let already_seen = rng.between(2000, 4000);
            observe(&mut rng, already_seen, scale, &mut counts, &mut sum);
            let mut buckets: Vec<Vec<(f64, i64)>> = vec![Vec::new(); BUCKETS.len()];
            let mut sums = Vec::new();
            let mut restarted = false;
            for t in times {
                if restarts && !restarted && t > start + 28 * MINUTE {
                    restarted = true;
                    counts = [0; BUCKETS.len()];
                    sum = 0.0;
                }
                let n = rng.between(0, 12);
                observe(&mut rng, n, scale, &mut counts, &mut sum);
                for (i, b) in buckets.iter_mut().enumerate() {
                    b.push((counts[i] as f64, t));
                }
                sums.push((sum, t));
            }
            let count = buckets[BUCKETS.len() - 1].clone();
            for (i, (le, _)) in BUCKETS.iter().enumerate() {
                let l = [("job", job), ("method", method), ("le", *le)];
                out.push(Generated {
                    labels: labels("request_duration_seconds_bucket", &l),
                    samples: buckets[i].clone(),
                });
            }
            let l = [("job", job), ("method", method)];
            out.push(Generated {
                labels: labels("request_duration_seconds_sum", &l),
                samples: sums,
            });
            out.push(Generated {
                labels: labels("request_duration_seconds_count", &l),
                samples: count,
            });
        }
    }

    // up (mostly 1) and build_info (1, carries `version`) per target.
    for (i, job) in JOBS.iter().enumerate() {
        for (k, instance) in INSTANCES.iter().enumerate() {
            let times = scrape_times(&mut rng, start, end, 15 * SECOND, SECOND, None);
            let samples = times
                .iter()
                .map(|t| (if rng.chance(0.05) { 0.0 } else { 1.0 }, *t))
                .collect();
            out.push(Generated {
                labels: labels("up", &[("job", job), ("instance", instance)]),
                samples,
            });
            let version = if (i + k) % 2 == 0 { "1.2.3" } else { "1.3.0" };
            let times = scrape_times(&mut rng, start, end, MINUTE, 2 * SECOND, None);
            let samples = times.iter().map(|t| (1.0, *t)).collect();
            let l = [("job", *job), ("instance", *instance), ("version", version)];
            out.push(Generated {
                labels: labels("build_info", &l),
                samples,
            });
        }
    }

    // A fractional counter that ends at 22 minutes (b1) and one first scraped at 10 minutes (b2).
    for (instance, from, to, initial) in [
        ("b1", start, start + 22 * MINUTE, 1500.0),
        ("b2", start + 10 * MINUTE, end, 4000.0),
    ] {
        let times = scrape_times(&mut rng, from, to, 10 * SECOND, 2 * SECOND, None);
        let mut v: f64 = initial;
        let samples = times
            .iter()
            .map(|t| {
                v = ((v + rng.unit() * 3.0) * 1000.0).round() / 1000.0;
                (v, *t)
            })
            .collect();
        let l = [("job", "batch"), ("instance", instance)];
        out.push(Generated {
            labels: labels("batch_processed_total", &l),
            samples,
        });
    }

    // Large values, and label values with a slash, a backslash, a quote and non-ASCII letters.
    for (device, mountpoint) in [
        ("sda1", "/"),
        ("sda2", "/home/zoë"),
        ("nvme0", r#"C:\data "main""#),
    ] {
        let times = scrape_times(&mut rng, start, end, MINUTE, 5 * SECOND, None);
        let mut v = rng.between(50, 900) as f64 * 1e9;
        let samples = times
            .iter()
            .map(|t| {
                v -= rng.between(0, 5_000_000) as f64 * 1024.0;
                (v, *t)
            })
            .collect();
        let l = [
            ("job", "node"),
            ("device", device),
            ("mountpoint", mountpoint),
        ];
        out.push(Generated {
            labels: labels("filesystem_free_bytes", &l),
            samples,
        });
    }
    out
}
