//! Process and runtime metrics: CPU time driven by the work the service did, memory that wanders
//! (and, on the JVM, a heap sawtooth with garbage collections), threads, goroutines and
//! database-pool connections.

use crate::metrics::{Inst, Meter, s};
use crate::rng::Rng;
use crate::topology::{Runtime, Service};

/// CPUs available to each pod.
const CPUS: f64 = 2.0;

/// The simulated state of one service's process.
#[derive(Clone, Debug)]
pub(crate) struct ProcessModel {
    service: Service,
    /// Server-side work done since the last collection (ns); request flows add to it.
    pub busy_ns: i64,
    /// Requests served since the last collection.
    pub requests: u64,
    cpu_user: f64,
    cpu_system: f64,
    resident: f64,
    young: f64,
    old: f64,
}

impl ProcessModel {
    /// A freshly started process.
    pub(crate) fn new(service: Service, rng: &mut Rng) -> ProcessModel {
        let base = match service.runtime() {
            Runtime::Go => 48e6,
            Runtime::Jvm => 420e6,
        };
        ProcessModel {
            service,
            busy_ns: 0,
            requests: 0,
            cpu_user: 0.0,
            cpu_system: 0.0,
            resident: base * (0.9 + 0.2 * rng.f64()),
            young: 40e6,
            old: 160e6 + 40e6 * rng.f64(),
        }
    }

    /// Sets this interval's process and runtime series on `meter`.
    pub(crate) fn collect(&mut self, rng: &mut Rng, meter: &mut Meter, interval_ns: i64) {
        let interval_s = (interval_ns as f64 / 1e9).max(1e-3);
        let busy_s = self.busy_ns as f64 / 1e9;
        let rate = self.requests as f64 / interval_s;
        let cpu = interval_s * (0.006 + 0.004 * rng.f64()) + busy_s * 0.3;
        self.cpu_user += cpu * 0.8;
        self.cpu_system += cpu * 0.2;
        let utilization = (cpu / interval_s / CPUS).min(1.0);
        meter.set(
            Inst::ProcessCpuTime,
            &[s("cpu.mode", "user")],
            self.cpu_user,
        );
        meter.set(
            Inst::ProcessCpuTime,
            &[s("cpu.mode", "system")],
            self.cpu_system,
        );
        meter.set(Inst::ProcessCpuUtilization, &[], utilization);
        self.resident =
            (self.resident * (1.0 + 0.01 * rng.normal()) + rate * 2e4).clamp(30e6, 1.8e9);
        let threads = match self.service.runtime() {
            Runtime::Go => 12 + rng.below(4) as i64,
            Runtime::Jvm => 48 + (rate * 0.4) as i64 + rng.below(6) as i64,
        };
        meter.set(Inst::ProcessThreadCount, &[], threads as f64);

        match self.service.runtime() {
            Runtime::Go => {
                let goroutines = 38.0 + rate * 0.6 + rng.below(8) as f64;
                meter.set(Inst::GoGoroutineCount, &[], goroutines);
                meter.set(
                    Inst::GoMemoryUsed,
                    &[s("go.memory.type", "stack")],
                    goroutines * 8192.0,
                );
                meter.set(
                    Inst::GoMemoryUsed,
                    &[s("go.memory.type", "other")],
                    self.resident * 0.7,
                );
                meter.set(Inst::ProcessMemoryUsage, &[], self.resident);
            }
            Runtime::Jvm => {
                // Allocation follows work; the young generation fills and is collected.
                self.young += 6e6 * interval_s + busy_s * 4e8;
                let young_gcs = (self.young / 150e6) as u64;
                for _ in 0..young_gcs {
                    let pause = rng.lognormal(0.008, 0.5);
                    meter.record(
                        Inst::JvmGcDuration,
                        &[
                            s("jvm.gc.name", "G1 Young Generation"),
                            s("jvm.gc.action", "end of minor GC"),
                        ],
                        pause,
                        None,
                    );
                    self.old += 2e6 * rng.f64();
                }
                self.young -= young_gcs as f64 * 150e6;
                if self.old > 600e6 {
                    meter.record(
                        Inst::JvmGcDuration,
                        &[
                            s("jvm.gc.name", "G1 Concurrent GC"),
                            s("jvm.gc.action", "end of major GC"),
                        ],
                        rng.lognormal(0.12, 0.4),
                        None,
                    );
                    self.old = 180e6 + 40e6 * rng.f64();
                }
                let heap = |pool: &'static str| {
                    [
                        s("jvm.memory.type", "heap"),
                        s("jvm.memory.pool.name", pool),
                    ]
                };
                meter.set(
                    Inst::JvmMemoryUsed,
                    &heap("G1 Eden Space"),
                    self.young.max(0.0),
                );
                meter.set(Inst::JvmMemoryUsed, &heap("G1 Old Gen"), self.old);
                meter.set(
                    Inst::JvmMemoryUsed,
                    &[
                        s("jvm.memory.type", "non_heap"),
                        s("jvm.memory.pool.name", "Metaspace"),
                    ],
                    96e6,
                );
                meter.set(
                    Inst::JvmThreadCount,
                    &[s("jvm.thread.daemon", "true")],
                    (threads - 9) as f64,
                );
                meter.set(
                    Inst::JvmThreadCount,
                    &[s("jvm.thread.daemon", "false")],
                    9.0,
                );
                meter.set(Inst::JvmCpuRecentUtilization, &[], utilization);
                meter.set(
                    Inst::ProcessMemoryUsage,
                    &[],
                    self.resident + self.old + self.young.max(0.0),
                );
            }
        }

        if self.service != Service::Gateway {
            // Connections in use ≈ concurrent database work (Little's law), out of a pool of 10.
            let used = ((busy_s / interval_s) * 0.6 + rng.f64())
                .round()
                .clamp(0.0, 10.0);
            let pool = match self.service.runtime() {
                Runtime::Jvm => "HikariPool-1",
                Runtime::Go => "pgxpool",
            };
            let state = |st: &'static str| {
                [
                    s("db.client.connection.pool.name", pool),
                    s("db.client.connection.state", st),
                ]
            };
            meter.set(Inst::DbConnectionCount, &state("used"), used);
            meter.set(Inst::DbConnectionCount, &state("idle"), 10.0 - used);
        }
        self.busy_ns = 0;
        self.requests = 0;
    }
}
