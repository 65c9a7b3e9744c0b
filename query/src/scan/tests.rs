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

/// Rows per group, counting a part of a segment as its share of the rows.
fn group_rows(groups: &[Vec<SegmentPart>]) -> Vec<u64> {
    groups
        .iter()
        .map(|g| g.iter().map(|p| p.segment.rows / p.parts as u64).sum())
        .collect()
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
    // Small segments (one row group each) are never split.
    assert!(groups.iter().flatten().all(|p| p.parts == 1));
    let rows = group_rows(&groups);
    assert!(rows.contains(&110) && rows.contains(&110), "{rows:?}");
    for group in &groups {
        assert!(
            group
                .windows(2)
                .all(|w| w[0].segment.min_time <= w[1].segment.min_time)
        );
    }
    assert_eq!(group_segments(vec![segment(1, 1, 0)], 8).len(), 1);
    assert!(group_segments(Vec::new(), 8).is_empty());
}

#[test]
fn big_segments_are_split_into_runs_of_row_groups() {
    let million = lumen_storage::segment::ROW_GROUP_ROWS as u64;
    // An hour's segment of four row groups and a half-hour one of two: unsplit, one core would
    // read twice the other's rows.
    let groups = group_segments(
        vec![segment(1, 4 * million, 0), segment(2, 2 * million, 100)],
        2,
    );
    let rows = group_rows(&groups);
    let (low, high) = (rows[0].min(rows[1]), rows[0].max(rows[1]));
    assert!(high - low <= million, "{rows:?}");
    // Every row group of each segment is read by exactly one part.
    for (id, count) in [(1, 4usize), (2, 2)] {
        let parts: Vec<&SegmentPart> = groups
            .iter()
            .flatten()
            .filter(|p| p.segment.id == id)
            .collect();
        for row_group in 0..count {
            let holders = parts.iter().filter(|p| p.holds(row_group, count)).count();
            assert_eq!(holders, 1, "segment {id} row group {row_group}");
        }
        // Also when the file has another number of row groups than its rows suggest.
        for row_group in 0..7 {
            assert_eq!(parts.iter().filter(|p| p.holds(row_group, 7)).count(), 1);
        }
    }
}
