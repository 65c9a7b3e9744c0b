use super::*;

fn seg(id: u64, rows: u64, min_time: i64) -> SegmentMeta {
    SegmentMeta {
        id,
        table: Table::Metrics,
        path: format!("/x/{id}.parquet").into(),
        min_time,
        max_time: min_time,
        rows,
        bytes: rows,
    }
}

const HOUR: i64 = segment::PARTITION_NANOS;

#[test]
fn an_open_partition_merges_only_segments_of_similar_size_once_there_are_enough() {
    let config = CompactionConfig::default();
    let now = 10 * HOUR + 60_000_000_000;
    let at = 10 * HOUR + 1;
    let ids = |plans: &[Plan]| {
        plans
            .iter()
            .map(|p| p.inputs.iter().map(|s| s.id).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    };
    // Three of a size: not yet.
    let when = Conditions {
        now_ns: now,
        ..Conditions::default()
    };
    let three = [seg(1, 1000, at), seg(2, 1200, at), seg(3, 900, at)];
    assert!(plan(&three, &config, &when).is_empty());
    // A fourth: the four merge; a big one already merged stays out.
    let five = [
        seg(1, 1000, at),
        seg(2, 1200, at),
        seg(3, 900, at),
        seg(4, 1100, at),
        seg(5, 1_000_000, at),
    ];
    assert_eq!(ids(&plan(&five, &config, &when)), vec![vec![1, 2, 3, 4]]);
    // Segments that failed before are left out.
    assert!(
        plan(
            &five,
            &config,
            &Conditions {
                skip: HashSet::from([2]),
                ..when.clone()
            }
        )
        .is_empty()
    );
    // Forced: everything in the partition.
    assert_eq!(
        ids(&plan(
            &five,
            &config,
            &Conditions {
                force: true,
                ..when.clone()
            }
        )),
        vec![vec![1, 2, 3, 4, 5]]
    );
}

#[test]
fn a_settled_partition_merges_everything_up_to_the_size_cap_and_partitions_stay_apart() {
    let config = CompactionConfig {
        max_rows: 10_000,
        ..CompactionConfig::default()
    };
    let now = 12 * HOUR;
    let old = 10 * HOUR + 5;
    let current = 12 * HOUR - 1;
    // The hour that ended 0 ns ago is not settled: two segments there are not a tier of four.
    let segments = [
        seg(1, 6000, old),
        seg(2, 3000, old),
        seg(3, 2000, old),
        seg(4, 20_000, old),
        seg(5, 10, current),
        seg(6, 10, current),
    ];
    let when = Conditions {
        now_ns: now,
        ..Conditions::default()
    };
    let plans = plan(&segments, &config, &when);
    assert_eq!(plans.len(), 1, "{plans:?}");
    assert_eq!(plans[0].partition, 10 * HOUR);
    // Smallest first while the total stays under the cap: 2000 + 3000 (+ 6000 would pass it).
    assert_eq!(
        plans[0].inputs.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![2, 3]
    );
    // An ended hour still being flushed into (a backfill) waits for a tier too.
    let busy = Conditions {
        busy: HashSet::from([(Table::Metrics, 10 * HOUR)]),
        ..when.clone()
    };
    assert!(plan(&segments, &config, &busy).is_empty());
    // Late data into a settled hour merges among itself, not into the hour's big segment...
    let late = [seg(1, 1_000_000, old), seg(7, 10, old), seg(8, 20, old)];
    let plans = plan(&late, &CompactionConfig::default(), &when);
    assert_eq!(
        plans
            .iter()
            .map(|p| p.inputs.iter().map(|s| s.id).collect::<Vec<_>>())
            .collect::<Vec<_>>(),
        vec![vec![7, 8]]
    );
    assert!(plan(&late[..2], &CompactionConfig::default(), &when).is_empty());
    // ...unless asked to.
    assert_eq!(
        plan(
            &late,
            &CompactionConfig::default(),
            &Conditions {
                force: true,
                ..when
            }
        )
        .len(),
        1
    );
}

#[test]
fn a_merge_streams_inputs_in_sort_order_with_ties_oldest_first_and_indexes_the_result() {
    use std::sync::atomic::AtomicU64;
    let dir = tempfile::tempdir().unwrap();
    let ids = AtomicU64::new(1);
    let schema = Table::Metrics.schema();
    let (time_col, value_col) = (
        schema.index_of("time").unwrap(),
        schema.index_of("value").unwrap(),
    );
    // Three inputs of random rows over 5 series and 6 instants (many equal sort keys); the
    // first holds one early series only, so it runs out first and the other two tie for long.
    // Each row's value names its input and position, so the output order is checked exactly.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut inputs = Vec::new();
    for input in 0..3u64 {
        let rows: Vec<crate::index::tests::Row> = (0..40 + input * 7)
            .map(|_| {
                let id = if input == 0 { 2 } else { 1 + next(5) };
                crate::index::tests::Row {
                    series_id: id,
                    name: if id % 2 == 0 { "even" } else { "odd" },
                    metric_type: "gauge",
                    unit: None,
                    monotonic: None,
                    scope: None,
                    attrs: vec![("n", Some(["1", "2", "3", "4", "5"][id as usize - 1]))],
                    resource: vec![],
                }
            })
            .collect();
        let batch = crate::index::tests::metrics_batch(&rows);
        let mut columns = batch.columns().to_vec();
        columns[time_col] = std::sync::Arc::new(
            arrow::array::TimestampNanosecondArray::from(
                (0..rows.len()).map(|_| next(6) as i64).collect::<Vec<_>>(),
            )
            .with_timezone("UTC"),
        );
        columns[value_col] = std::sync::Arc::new(arrow::array::Float64Array::from(
            (0..rows.len())
                .map(|i| (input * 1000 + i as u64) as f64)
                .collect::<Vec<_>>(),
        ));
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        inputs.extend(
            segment::write_segments(dir.path(), Table::Metrics, &[batch], &ids, 1).unwrap(),
        );
    }
    assert_eq!(inputs.len(), 3);
    // What a merge must give: every input's rows in file order, oldest input first, stably
    // sorted by (metric_name, series_id, time).
    let key_and_value = |path: &Path| -> Vec<((String, u64, i64), f64)> {
        let mut out = Vec::new();
        for b in segment::read_all(path).unwrap() {
            let names = b
                .column(schema.index_of("metric_name").unwrap())
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .unwrap();
            let sids = b
                .column(schema.index_of("series_id").unwrap())
                .as_any()
                .downcast_ref::<arrow::array::UInt64Array>()
                .unwrap();
            let times = b
                .column(time_col)
                .as_any()
                .downcast_ref::<arrow::array::TimestampNanosecondArray>()
                .unwrap();
            let values = b
                .column(value_col)
                .as_any()
                .downcast_ref::<arrow::array::Float64Array>()
                .unwrap();
            for i in 0..b.num_rows() {
                out.push((
                    (names.value(i).to_string(), sids.value(i), times.value(i)),
                    values.value(i),
                ));
            }
        }
        out
    };
    let mut expected: Vec<_> = inputs.iter().flat_map(|s| key_and_value(&s.path)).collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));

    let plan = Plan {
        table: Table::Metrics,
        partition: 0,
        inputs,
    };
    // Batches of 3 rows in, 5 out: every refill and every trim of the batches held is exercised.
    let merged = merge_in_batches(&plan, 99, &|| true, 3, 5).unwrap();
    assert_eq!(merged.rows, plan.rows());
    assert_eq!(key_and_value(&merged.path), expected);
    // Its series index is the one a rebuild from the file gives.
    let sidecar = crate::index::load_series_index(&merged).unwrap();
    let rebuilt = crate::index::SeriesIndex::from_segment(&merged).unwrap();
    let entries = |index: &crate::index::SeriesIndex| {
        (0..index.len())
            .map(|o| {
                index
                    .series(o)
                    .map(|e| (e.series_id(), e.first_row(), e.rows()))
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(entries(&sidecar), entries(&rebuilt));
    assert_eq!(sidecar.len(), 5);
}
