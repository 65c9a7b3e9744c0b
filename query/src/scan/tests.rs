use std::path::PathBuf;

use super::*;

fn segment(id: u64, rows: u64, min_time: i64) -> SegmentMeta {
    SegmentMeta {
        id,
        table: Table::Spans,
        path: PathBuf::from(format!("/nonexistent/{id}.parquet")),
        min_time,
        max_time: min_time + 10,
        rows,
        bytes: 0,
    }
}

#[test]
fn segments_are_balanced_by_rows_and_kept_in_time_order() {
    let segments = vec![
        segment(1, 100, 30),
        segment(2, 10, 10),
        segment(3, 60, 20),
        segment(4, 50, 0),
    ];
    let groups = group_segments(segments, 2);
    assert_eq!(groups.len(), 2);
    let rows: Vec<u64> = groups
        .iter()
        .map(|g| g.iter().map(|s| s.rows).sum())
        .collect();
    assert!(rows.contains(&110) && rows.contains(&110), "{rows:?}");
    for group in &groups {
        assert!(group.windows(2).all(|w| w[0].min_time <= w[1].min_time));
    }
    assert_eq!(group_segments(vec![segment(1, 1, 0)], 8).len(), 1);
    assert!(group_segments(Vec::new(), 8).is_empty());
}
