use super::*;
use prost::Message as _;

fn spec(signal: Signal, items: u64, base_items: u64) -> PoolSpec {
    PoolSpec {
        signal,
        seed: 1,
        fleet_rate: 5.0,
        metric_interval: Duration::from_secs(10),
        batch_size: 100,
        items,
        base_items,
        max_bytes: u64::MAX,
        format: WireFormat::Protobuf,
        gzip: false,
        end_time_ns: 1_800_000_000_000_000_000,
        measure_json: true,
    }
}

#[test]
fn pools_hold_the_wanted_items_in_requests_of_the_batch_size() {
    for signal in Signal::ALL {
        let pool = Pool::build(&spec(signal, 5_000, 2_000), &mut |_| {}).expect("pool");
        assert!(
            pool.items >= 5_000 && pool.items < 5_000 + 100,
            "{signal:?}: {}",
            pool.items
        );
        assert!(pool.cycles >= 2, "{signal:?}");
        let total: u64 = pool.requests.iter().map(|r| u64::from(r.items)).sum();
        assert_eq!(total, pool.items);
        assert!(
            pool.requests
                .iter()
                .all(|r| r.items as usize <= 100 && r.items > 0)
        );
        assert!(pool.sizes.protobuf_bytes_per_item > 10.0);
        assert!(pool.sizes.json_bytes_per_item > pool.sizes.protobuf_bytes_per_item);
        assert!(pool.sizes.json_full_bytes_per_item >= pool.sizes.json_bytes_per_item);
    }
}

#[test]
fn cycles_have_distinct_trace_ids_and_earlier_times() {
    let pool = Pool::build(&spec(Signal::Traces, 4_000, 2_000), &mut |_| {}).expect("pool");
    let decode =
        |r: &EncodedRequest| ExportTraceServiceRequest::decode(r.body.clone()).expect("decodes");
    let first = decode(&pool.requests[0]);
    let last = decode(pool.requests.last().expect("requests"));
    let span = |r: &ExportTraceServiceRequest| r.resource_spans[0].scope_spans[0].spans[0].clone();
    let (old, new) = (span(&first), span(&last));
    assert!(old.start_time_unix_nano < new.start_time_unix_nano);
    assert!(new.end_time_unix_nano <= 1_800_000_000_000_000_000 + 60_000_000_000);
    let ids = |r: &ExportTraceServiceRequest| -> std::collections::BTreeSet<Vec<u8>> {
        r.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .map(|s| s.trace_id.clone())
            .collect()
    };
    assert!(ids(&first).is_disjoint(&ids(&last)));
}

#[test]
fn metric_chunks_split_metrics_without_losing_points() {
    let s = spec(Signal::Metrics, 3_000, 3_000);
    let base = simulate(&s, 3_000).expect("simulates");
    let Chunks::Metrics(chunks) = &base.chunks else {
        panic!("metrics")
    };
    let total: usize = chunks.iter().map(metric_items).sum();
    assert_eq!(total as u64, base.items);
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| metric_items(c) == 100)
    );
}

#[test]
fn strip_defaults_keeps_any_values() {
    let mut v = serde_json::json!({"a": 0, "b": "", "c": {"intValue": "0"}, "d": [], "e": {"x": null}, "f": "x", "g": "0"});
    strip_defaults(&mut v);
    assert_eq!(v, serde_json::json!({"c": {"intValue": "0"}, "f": "x"}));
}
