//! Throughput of the bookstore fleet simulator (`lumen-fleet`): how many spans, log records and
//! data points one core generates per second, so the load generator's pool build time and
//! `lumen demo`'s cost are figures. Run: `cargo bench -p lumen-benches --bench fleet`.

use std::time::Instant;

use lumen_fleet::{Fleet, FleetConfig, IncidentWindow, Scenario};

const SEC: i64 = 1_000_000_000;

fn main() {
    // 30 simulated seconds of a steady fleet at 2,000 storefront requests per second.
    let mut fleet = Fleet::new(FleetConfig {
        seed: 11,
        scenario: Scenario::Steady,
        requests_per_second: 2_000.0,
        incident: IncidentWindow::ALWAYS,
        ..FleetConfig::default()
    });
    let start = fleet.now_ns();
    let began = Instant::now();
    let (mut spans, mut logs, mut points) = (0, 0, 0);
    for s in 1..=30 {
        let t = fleet.step(start + s * SEC);
        spans += t.span_count();
        logs += t.log_record_count();
        points += t.data_point_count();
    }
    let secs = began.elapsed().as_secs_f64();
    println!(
        "{spans} spans, {logs} logs, {points} points in {secs:.2} s: {:.0} spans/s, {:.0} logs/s, {:.0} points/s",
        spans as f64 / secs,
        logs as f64 / secs,
        points as f64 / secs,
    );
}
