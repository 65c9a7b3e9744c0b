use std::fs::File;
use std::sync::Arc;

use arrow::array::{ArrayRef, FixedSizeBinaryArray, RecordBatch, TimestampNanosecondArray};
use arrow::datatypes::{Field, Schema};
use datafusion::logical_expr::{cast, col, lit};
use datafusion::prelude::in_list;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::file::metadata::PageIndexPolicy;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::*;

fn ts(ns: i64) -> Expr {
    lit(ScalarValue::TimestampNanosecond(
        Some(ns),
        Some("UTC".into()),
    ))
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

fn bounds(start: Option<i64>, end: Option<i64>) -> Option<TimeBounds> {
    Some(TimeBounds { start, end })
}

#[test]
fn comparisons_on_time_become_bounds() {
    assert_eq!(
        time_bounds(&col("time").gt(ts(100))),
        bounds(Some(101), None)
    );
    assert_eq!(
        time_bounds(&col("time").gt_eq(ts(100))),
        bounds(Some(100), None)
    );
    assert_eq!(
        time_bounds(&col("time").lt(ts(100))),
        bounds(None, Some(99))
    );
    assert_eq!(
        time_bounds(&col("time").lt_eq(ts(100))),
        bounds(None, Some(100))
    );
    assert_eq!(
        time_bounds(&col("time").eq(ts(100))),
        bounds(Some(100), Some(100))
    );
    // Literal on the left: the operator flips.
    assert_eq!(
        time_bounds(&ts(100).lt(col("time"))),
        bounds(Some(101), None)
    );
    assert_eq!(
        time_bounds(&col("time").between(ts(10), ts(20))),
        bounds(Some(10), Some(20))
    );
    assert_eq!(time_bounds(&col("time").not_between(ts(10), ts(20))), None);
    // Other columns and operators say nothing.
    assert_eq!(time_bounds(&col("end_time").gt(ts(100))), None);
    assert_eq!(time_bounds(&col("time").not_eq(ts(100))), None);
}

#[test]
fn string_casts_dates_and_other_units_are_understood() {
    let day = 1_704_067_200_000_000_000; // 2024-01-01T00:00:00Z
    let from_string = col("time").gt_eq(cast(lit("2024-01-01T00:00:00Z"), ts_type()));
    assert_eq!(time_bounds(&from_string), bounds(Some(day), None));
    let bare_string = col("time").lt(lit("2024-01-01T00:00:00Z"));
    assert_eq!(time_bounds(&bare_string), bounds(None, Some(day - 1)));
    let date = col("time").gt_eq(lit(ScalarValue::Date32(Some(19_723))));
    assert_eq!(time_bounds(&date), bounds(Some(day), None));
    let seconds = col("time").lt_eq(lit(ScalarValue::TimestampSecond(Some(1_704_067_200), None)));
    assert_eq!(time_bounds(&seconds), bounds(None, Some(day)));
    // A cast of the column that keeps nanoseconds (time zone change) is still the column.
    let recast = cast(col("time"), DataType::Timestamp(TimeUnit::Nanosecond, None)).gt(ts(5));
    assert_eq!(time_bounds(&recast), bounds(Some(6), None));
    // A cast to seconds is not.
    let truncated = cast(col("time"), DataType::Timestamp(TimeUnit::Second, None)).gt(ts(5));
    assert_eq!(time_bounds(&truncated), None);
    // Garbage strings prune nothing rather than erroring.
    assert_eq!(time_bounds(&col("time").gt(lit("yesterday-ish"))), None);
}

#[test]
fn and_intersects_or_takes_the_hull() {
    let and = col("time")
        .gt_eq(ts(10))
        .and(col("time").lt(ts(20)))
        .and(col("name").eq(lit("x")));
    assert_eq!(time_bounds(&and), bounds(Some(10), Some(19)));
    let or = col("time")
        .between(ts(10), ts(20))
        .or(col("time").between(ts(50), ts(60)));
    assert_eq!(time_bounds(&or), bounds(Some(10), Some(60)));
    let half_or = col("time").gt(ts(10)).or(col("name").eq(lit("x")));
    assert_eq!(time_bounds(&half_or), None);
    let contradiction = col("time").gt(ts(20)).and(col("time").lt(ts(10)));
    assert!(time_bounds(&contradiction).unwrap().is_empty());
}

const ID_A: &str = "5b8efff798038103d269b633813fc60c";
const ID_B: &str = "00000000000000000000000000000001";

#[test]
fn trace_id_filters_become_id_sets() {
    let a = parse_hex_id::<16>(ID_A).unwrap();
    let b = parse_hex_id::<16>(ID_B).unwrap();
    assert_eq!(
        trace_ids(&col("trace_id").eq(lit(ID_A))),
        Some(BTreeSet::from([a]))
    );
    assert_eq!(
        trace_ids(&lit(ID_A).eq(col("trace_id"))),
        Some(BTreeSet::from([a]))
    );
    assert_eq!(
        trace_ids(&in_list(col("trace_id"), vec![lit(ID_A), lit(ID_B)], false)),
        Some(BTreeSet::from([a, b]))
    );
    assert_eq!(
        trace_ids(&in_list(col("trace_id"), vec![lit(ID_A)], true)),
        None
    );
    assert_eq!(
        trace_ids(
            &col("trace_id")
                .eq(lit(ID_A))
                .or(col("trace_id").eq(lit(ID_B)))
        ),
        Some(BTreeSet::from([a, b]))
    );
    // Upper case or malformed ids can match nothing (SQL shows lowercase hex).
    assert_eq!(
        trace_ids(&col("trace_id").eq(lit(ID_A.to_uppercase()))),
        Some(BTreeSet::new())
    );
    assert_eq!(trace_ids(&col("span_id").eq(lit(ID_A))), None);
    assert_eq!(trace_ids(&col("trace_id").like(lit("5b8e%"))), None);
}

#[test]
fn scan_predicates_combine_filters_per_table() {
    let filters = vec![
        col("time").gt_eq(ts(10)),
        col("trace_id").eq(lit(ID_A)),
        col("time").lt(ts(100)),
    ];
    let spans = ScanPredicate::from_filters(Table::Spans, &filters);
    assert_eq!(
        spans.time,
        TimeBounds {
            start: Some(10),
            end: Some(99)
        }
    );
    assert_eq!(spans.trace_ids.as_ref().map(BTreeSet::len), Some(1));
    assert!(spans.is_selective() && !spans.matches_nothing());

    let metrics = ScanPredicate::from_filters(Table::Metrics, &filters);
    assert_eq!(metrics.trace_ids, None);

    let disjoint = vec![col("trace_id").eq(lit(ID_A)), col("trace_id").eq(lit(ID_B))];
    assert!(ScanPredicate::from_filters(Table::Logs, &disjoint).matches_nothing());

    assert_eq!(
        pushdown_support(Table::Spans, &col("trace_id").eq(lit(ID_A))),
        TableProviderFilterPushDown::Inexact
    );
    assert_eq!(
        pushdown_support(Table::Metrics, &col("trace_id").eq(lit(ID_A))),
        TableProviderFilterPushDown::Unsupported
    );
    assert_eq!(
        pushdown_support(Table::Metrics, &col("time").gt(ts(1))),
        TableProviderFilterPushDown::Inexact
    );
    assert_eq!(
        pushdown_support(Table::Spans, &col("name").eq(lit("x"))),
        TableProviderFilterPushDown::Unsupported
    );
    assert!(!ScanPredicate::default().is_selective());
}

fn id(n: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[8..].copy_from_slice(&n.to_be_bytes());
    out
}

/// 4 row groups of 100 rows, sorted by trace id (one id per 10 rows), pages of 10 rows;
/// times: row group g holds [g*1000, g*1000+99].
fn write_segment(path: &std::path::Path) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("time", ts_type(), false),
        Field::new("trace_id", DataType::FixedSizeBinary(16), false),
    ]));
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(100))
        .set_data_page_row_count_limit(10)
        .set_write_batch_size(10)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_column_bloom_filter_enabled(ColumnPath::from("trace_id"), true)
        .build();
    let file = File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).unwrap();
    for g in 0..4i64 {
        let times: Vec<i64> = (0..100).map(|i| g * 1000 + i).collect();
        let ids: Vec<[u8; 16]> = (0..100u64)
            .map(|i| id(g as u64 * 100 + i / 10 * 10))
            .collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(TimestampNanosecondArray::from(times).with_timezone("UTC")) as ArrayRef,
                Arc::new(FixedSizeBinaryArray::try_from_iter(ids.iter()).unwrap()) as ArrayRef,
            ],
        )
        .unwrap();
        writer.write(&batch).unwrap();
    }
    writer.close().unwrap();
}

fn plan_for(path: &std::path::Path, predicate: &ScanPredicate) -> ParquetReadPlan {
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
    let builder =
        ParquetRecordBatchReaderBuilder::try_new_with_options(File::open(path).unwrap(), options)
            .unwrap();
    plan_parquet_read(builder.metadata(), predicate, |rg, col| {
        builder.get_row_group_column_bloom_filter(rg, col)
    })
}

#[test]
fn row_groups_and_pages_are_pruned_by_time_and_trace_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("segment.parquet");
    write_segment(&path);

    let everything = plan_for(&path, &ScanPredicate::default());
    assert_eq!(everything.row_groups, vec![0, 1, 2, 3]);
    assert!(everything.selection.is_none());

    // Time: row groups 1 and 2 overlap [1050, 2005]; pages narrow it further.
    let by_time = ScanPredicate {
        time: TimeBounds {
            start: Some(1050),
            end: Some(2005),
        },
        trace_ids: None,
    };
    let plan = plan_for(&path, &by_time);
    assert_eq!(plan.row_groups, vec![1, 2]);
    assert_eq!(plan.pruned_by_statistics, 2);
    let selection = plan.selection.expect("page selection");
    assert_eq!(selection.row_count(), 50 + 10);

    // One trace id: statistics keep one row group, the bloom filter agrees, one page is read.
    let wanted = ScanPredicate {
        time: TimeBounds::ALL,
        trace_ids: Some(BTreeSet::from([id(230)])),
    };
    let plan = plan_for(&path, &wanted);
    assert_eq!(plan.row_groups, vec![2]);
    assert_eq!(plan.pruned_by_statistics, 3);
    assert_eq!(plan.selection.expect("page selection").row_count(), 10);

    // An id inside a row group's min/max range that no row has: the bloom filter (or, failing
    // that, the page index) drops the row group.
    let absent = ScanPredicate {
        time: TimeBounds::ALL,
        trace_ids: Some(BTreeSet::from([id(231)])),
    };
    let plan = plan_for(&path, &absent);
    assert!(plan.row_groups.is_empty(), "{plan:?}");
    assert_eq!(plan.pruned_by_bloom_filter + plan.pruned_by_page_index, 1);

    // Reading with the selection returns exactly the trace's rows.
    let plan = plan_for(&path, &wanted);
    let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(
        File::open(&path).unwrap(),
        ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional),
    )
    .unwrap()
    .with_row_groups(plan.row_groups)
    .with_row_selection(plan.selection.unwrap())
    .build()
    .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 10);
}

#[test]
#[allow(clippy::single_range_in_vec_init)]
fn range_intersection() {
    assert_eq!(intersect(None, vec![0..5]), vec![0..5]);
    assert_eq!(
        intersect(Some(vec![0..10, 20..30]), vec![5..25]),
        vec![5..10, 20..25]
    );
    assert_eq!(
        intersect(Some(vec![0..10]), vec![10..20]),
        Vec::<Range<usize>>::new()
    );
}
