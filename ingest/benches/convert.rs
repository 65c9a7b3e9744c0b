//! OTLP decode and conversion to Arrow, per signal: the CPU cost of a receiver before the WAL.
//!
//! For each signal (`convert/spans`, `convert/logs`, `convert/metrics`) one iteration handles the same
//! set of fleet-generated export requests of ~1000 items each, and throughput is in items (spans, log
//! records, data points) per second:
//!
//! - `decode`: protobuf bytes to the `opentelemetry-proto` request (prost), as both receivers do;
//! - `convert`: an already decoded request to a record batch (`lumen_ingest::convert::*`: validation,
//!   attribute text forms, Arrow builders);
//! - `decode_convert`: both, the whole per-request CPU path up to `Storage::write`.
//!
//! OTLP/JSON decoding is not benched: the crate's JSON decoder is private to its HTTP receiver.
//!
//! Run: `cargo bench -p lumen-ingest --bench convert`.

#![allow(clippy::expect_used)] // a bench that cannot set up must stop

use lumen_ingest::testing as common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lumen_ingest::{Converted, Limits};
use prost::Message;

/// Requests per signal handled in one iteration.
const REQUESTS: usize = 8;

fn bench_signal<R: Message + Default>(
    c: &mut Criterion,
    signal: &str,
    requests: &[R],
    items: impl Fn(&R) -> usize,
    convert: impl Fn(&R, &Limits, i64) -> Converted,
) {
    let total: usize = requests.iter().map(&items).sum();
    let bodies: Vec<Vec<u8>> = requests.iter().map(Message::encode_to_vec).collect();
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    eprintln!(
        "convert/{signal}: {} requests, {total} items, {:.0} items/request, {:.0} protobuf bytes/item",
        requests.len(),
        total as f64 / requests.len() as f64,
        bytes as f64 / total as f64,
    );
    let limits = Limits::default();
    let now = common::now_ns();
    for request in requests {
        let converted = convert(request, &limits, now);
        assert_eq!(
            (converted.accepted as usize, converted.rejected),
            (items(request), 0),
            "{}",
            converted.message()
        );
    }

    let mut group = c.benchmark_group(format!("convert/{signal}"));
    group.throughput(Throughput::Elements(total as u64));
    group.bench_function("decode", |b| {
        b.iter(|| {
            for body in &bodies {
                black_box(R::decode(black_box(body.as_slice())).expect("decodes"));
            }
        })
    });
    group.bench_function("convert", |b| {
        b.iter(|| {
            for request in requests {
                black_box(convert(black_box(request), &limits, now));
            }
        })
    });
    group.bench_function("decode_convert", |b| {
        b.iter(|| {
            for body in &bodies {
                let request = R::decode(black_box(body.as_slice())).expect("decodes");
                black_box(convert(&request, &limits, now));
            }
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let requests = common::requests(REQUESTS);
    bench_signal(
        c,
        "spans",
        &requests.traces,
        common::span_count,
        |r, l, now| lumen_ingest::convert::spans(r, l, now).expect("converts"),
    );
    bench_signal(
        c,
        "logs",
        &requests.logs,
        common::log_record_count,
        |r, l, now| lumen_ingest::convert::logs(r, l, now).expect("converts"),
    );
    bench_signal(
        c,
        "metrics",
        &requests.metrics,
        common::data_point_count,
        |r, l, now| lumen_ingest::convert::metrics(r, l, now).expect("converts"),
    );
}

criterion_group! {
    name = convert;
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    targets = benches
}
criterion_main!(convert);
