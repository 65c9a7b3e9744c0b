//! Tests of index-driven selection: row ranges and selections, and what a flushed segment's index
//! lets a selector skip.

use super::*;

use crate::testing::metrics_gen;

fn selector(text: &str) -> Matchers {
    match promql_parser::parser::parse(text) {
        Ok(promql_parser::parser::Expr::VectorSelector(vs)) => {
            let mut m = vs.matchers.clone();
            if let Some(name) = vs.name {
                m.matchers
                    .push(Matcher::new(MatchOp::Equal, METRIC_NAME, &name));
            }
            m
        }
        other => panic!("not a selector: {other:?}"),
    }
}

/// A flushed store of 600 series × 3 points (one segment) and its index.
async fn segment() -> (tempfile::TempDir, SegmentMeta, Arc<SeriesIndex>) {
    let dir = tempfile::tempdir().unwrap();
    let storage =
        lumen_storage::Storage::open(lumen_storage::StorageConfig::new(dir.path())).unwrap();
    for point in 0..3 {
        let t = metrics_gen::T0 + point as i64 * 60 * metrics_gen::SECOND;
        let batch = metrics_gen::batch(0..600, t, point);
        storage
            .write(lumen_storage::Table::Metrics, batch)
            .await
            .unwrap();
    }
    storage.flush().await.unwrap();
    let snapshot = storage.snapshot(lumen_storage::Table::Metrics, Default::default());
    storage.shutdown().await.unwrap();
    let meta = snapshot.segments[0].clone();
    let index = lumen_storage::load_series_index(&meta).unwrap();
    (dir, meta, index)
}

#[tokio::test]
async fn reads_only_the_rows_of_the_matching_series() {
    let (_dir, meta, index) = segment().await;
    let columns = ["time", "flags", "value", "metric_name", "attributes"];
    // (selector, index entries read, rows read). Series `s` is described in `metrics_gen`;
    // 600 series, 3 points each.
    let cases = [
        (r#"mem_6_bytes{host="h6"}"#, 1, 3),
        (r#"{host="h6"}"#, 1, 3),
        (r#"{host="h6", __name__="other"}"#, 0, 0),
        // s ≡ 6 (mod 42): 15 series, minus h6.
        (r#"mem_6_bytes{host!="h6"}"#, 14, 42),
        // s ≡ 6 (mod 30): `service.namespace` "ns", `service.name` "svc6".
        (r#"{job="ns/svc6"}"#, 20, 60),
        // s ≡ 6 (mod 10) without a namespace: s ≡ 16 or 26 (mod 30).
        (r#"{job="svc6"}"#, 40, 120),
        // s ≡ 0 (mod 50): 12 series; series 0 also lists `dup` twice in an order that flips
        // every point, so its 3 rows are 3 entries.
        (r#"{a_b="x;y"}"#, 14, 36),
        // From the resource: s ≡ 1 (mod 4), not remote-written (s ≡ 5 mod 12): 100 series,
        // series 97 with `dup` (3 entries).
        (r#"target_info{deployment_environment="env1"}"#, 102, 300),
        (r#"{deployment_environment="env1"}"#, 102, 300),
        (r#"target_info{job="rw"}"#, 0, 0),
    ];
    for (text, entries, expected_rows) in cases {
        let mut rows = 0u64;
        let mut each = |b: &RecordBatch| {
            rows += b.num_rows() as u64;
            assert!(b.column_by_name("attributes").is_some());
            assert!(b.column_by_name("resource_attributes").is_some());
        };
        let mut sink = MappedRows::new(columns.to_vec(), &mut each);
        let read = read_indexed(&index, &meta, &selector(text), &mut sink).unwrap();
        assert_eq!((read.series, read.rows), (entries, expected_rows), "{text}");
        assert_eq!(rows, expected_rows, "{text}");
    }
}

#[test]
fn selection_covers_only_the_row_groups_holding_the_ranges() {
    // Three row groups of 10 rows; ranges in group 0 and spanning groups 1–2.
    let (groups, selectors) = row_selection(&[10, 10, 10], &[(2, 3), (18, 4)]);
    assert_eq!(groups, vec![0, 1, 2]);
    let expected = vec![
        RowSelector::skip(2),
        RowSelector::select(3),
        RowSelector::skip(5),
        RowSelector::skip(8),
        RowSelector::select(2),
        RowSelector::select(2),
        RowSelector::skip(8),
    ];
    assert_eq!(selectors, expected);
    let (groups, selectors) = row_selection(&[10, 10, 10], &[(21, 1)]);
    assert_eq!(groups, vec![2]);
    assert_eq!(
        selectors,
        vec![
            RowSelector::skip(1),
            RowSelector::select(1),
            RowSelector::skip(8)
        ]
    );
    assert_eq!(row_selection(&[10], &[]).0, Vec::<usize>::new());
}

#[test]
fn touching_ranges_merge() {
    assert_eq!(
        merge_ranges([(0, 2), (2, 3), (7, 1), (8, 1)].into_iter()),
        vec![(0, 5), (7, 2)]
    );
}
