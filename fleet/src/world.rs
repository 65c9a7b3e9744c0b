//! The fleet's mutable state between requests — random stream, meters, breakers, stock, process
//! models, held spans and logs — and the periodic metric collection over it.

use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;

use crate::breaker::{BreakerState, CircuitBreaker, Downstream};
use crate::catalog::{CATEGORIES, Catalog, LOCATIONS};
use crate::export::Pending;
use crate::metrics::{Inst, Meter, s};
use crate::process::ProcessModel;
use crate::rng::{Rng, splitmix64};
use crate::topology::{Instances, Service};

/// Everything a request can change.
#[derive(Debug)]
pub(crate) struct World {
    pub rng: Rng,
    pub instances: Instances,
    pub meters: Vec<Meter>,
    pub breakers: Vec<CircuitBreaker>,
    pub catalog: Catalog,
    pub pending: Pending,
    pub processes: Vec<ProcessModel>,
    /// Last order number handed out.
    pub order_seq: u64,
    /// Next offset on the order-events partition.
    pub kafka_offset: i64,
}

impl World {
    /// A world whose every random choice follows from `seed`.
    pub(crate) fn new(seed: u64, start_ns: i64, environment: &str) -> World {
        // Separate streams for identities and catalogue, so they do not shift when request
        // behaviour changes.
        let mut seeds = seed;
        let mut identity = Rng::new(splitmix64(&mut seeds));
        let mut stock = Rng::new(splitmix64(&mut seeds));
        let rng = Rng::new(splitmix64(&mut seeds));
        let instances = Instances::new(&mut identity, environment);
        let processes = Service::ALL
            .iter()
            .map(|s| ProcessModel::new(*s, &mut identity))
            .collect();
        World {
            rng,
            instances,
            meters: Service::ALL.iter().map(|_| Meter::new(start_ns)).collect(),
            breakers: vec![CircuitBreaker::default(); Downstream::ALL.len()],
            catalog: Catalog::new(&mut stock),
            pending: Pending::new(),
            processes,
            order_seq: 100_000 + identity.below(800_000),
            kafka_offset: identity.below(5_000_000) as i64,
        }
    }

    /// The meter of a service.
    pub(crate) fn meter(&mut self, service: Service) -> &mut Meter {
        &mut self.meters[service.index()]
    }

    /// The breaker protecting a dependency.
    pub(crate) fn breaker(&mut self, downstream: Downstream) -> &mut CircuitBreaker {
        &mut self.breakers[downstream as usize]
    }

    /// A periodic reader's collection at `at`: observable gauges are read, then every service's
    /// cumulative series exported.
    pub(crate) fn collect(&mut self, at: i64, interval_ns: i64) -> Vec<ResourceMetrics> {
        self.catalog.restock(&mut self.rng);
        let levels = self.catalog.levels();
        let warehouse = &mut self.meters[Service::Warehouse.index()];
        for (c, category) in CATEGORIES.iter().enumerate() {
            for (l, location) in LOCATIONS.iter().enumerate() {
                warehouse.set(
                    Inst::InventoryLevel,
                    &[
                        s("book.category", category),
                        s("warehouse.location", location),
                    ],
                    levels[c][l] as f64,
                );
            }
        }
        for (d, downstream) in Downstream::ALL.iter().enumerate() {
            let state = self.breakers[d].state(at);
            let meter = &mut self.meters[downstream.owner().index()];
            for candidate in BreakerState::ALL {
                let attrs = [
                    s("peer.service", downstream.peer()),
                    s("circuit_breaker.state", candidate.name()),
                ];
                meter.set(
                    Inst::BreakerState,
                    &attrs,
                    if candidate == state { 1.0 } else { 0.0 },
                );
            }
        }
        for service in Service::ALL {
            self.processes[service.index()].collect(
                &mut self.rng,
                &mut self.meters[service.index()],
                interval_ns,
            );
        }
        let mut out = Vec::with_capacity(Service::ALL.len());
        for service in Service::ALL {
            if let Some(rm) = self.meters[service.index()].collect(at, service, &self.instances) {
                out.push(rm);
            }
        }
        out
    }
}
