//! Pruning: from the filters DataFusion pushes into a scan, decide what need not be read.
//!
//! Two predicates are understood, everything else is left to DataFusion's own `Filter`:
//!
//! - **time**: comparisons (`>`, `>=`, `<`, `<=`, `=`, `BETWEEN`) of the `time` column with
//!   timestamp literals, dates, or casts of string literals, combined with `AND`/`OR`. They become
//!   a [`TimeBounds`] that selects the storage snapshot (segments), row groups (`time` statistics)
//!   and pages (page index);
//! - **trace id**: `trace_id = '<hex>'`, `trace_id IN (...)` and `OR`s of those. They skip row
//!   groups whose `trace_id` min/max or bloom filter excludes every wanted id, and pages whose
//!   min/max does (segments are sorted by trace id, so one trace usually lives in one page).
//!
//! Pruning is always conservative: the filters are declared `Inexact`, so DataFusion re-applies
//! them to whatever survives, and anything not understood here simply prunes nothing.

use std::collections::BTreeSet;
use std::ops::Range;

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::{
    Between, BinaryExpr, Cast, Expr, Operator, TableProviderFilterPushDown, TryCast,
};
use lumen_storage::schema::TIME_COLUMN;
use lumen_storage::{Table, TimeRange};
use parquet::arrow::arrow_reader::{RowSelection, RowSelector};
use parquet::bloom_filter::Sbbf;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, RowGroupMetaData};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::page_index::offset_index::PageLocation;
use parquet::file::statistics::Statistics;

use crate::hexid::parse_hex_id;

/// The column trace-id pruning applies to.
pub const TRACE_ID_COLUMN: &str = "trace_id";

/// A raw 16-byte trace id.
pub type TraceId = [u8; 16];

/// Inclusive bounds on `time` in nanoseconds since the epoch; `None` is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeBounds {
    /// Earliest time that may match.
    pub start: Option<i64>,
    /// Latest time that may match.
    pub end: Option<i64>,
}

impl TimeBounds {
    /// Bounds that exclude nothing.
    pub const ALL: TimeBounds = TimeBounds {
        start: None,
        end: None,
    };

    fn at_least(t: i64) -> Self {
        TimeBounds {
            start: Some(t),
            end: None,
        }
    }

    fn at_most(t: i64) -> Self {
        TimeBounds {
            start: None,
            end: Some(t),
        }
    }

    /// Both bounds must hold (`AND`).
    pub fn intersect(self, other: TimeBounds) -> TimeBounds {
        TimeBounds {
            start: max_opt(self.start, other.start),
            end: min_opt(self.end, other.end),
        }
    }

    /// Either bound may hold (`OR`): the smallest single range covering both.
    pub fn hull(self, other: TimeBounds) -> TimeBounds {
        match (self.is_empty(), other.is_empty()) {
            (true, _) => other,
            (_, true) => self,
            _ => TimeBounds {
                start: self.start.zip(other.start).map(|(a, b)| a.min(b)),
                end: self.end.zip(other.end).map(|(a, b)| a.max(b)),
            },
        }
    }

    /// True when no time satisfies the bounds.
    pub fn is_empty(&self) -> bool {
        matches!((self.start, self.end), (Some(s), Some(e)) if s > e)
    }

    /// True when some time in `[min, max]` satisfies the bounds.
    pub fn overlaps(&self, min: i64, max: i64) -> bool {
        !self.is_empty()
            && self.start.is_none_or(|start| max >= start)
            && self.end.is_none_or(|end| min <= end)
    }

    /// The storage engine's form of the bounds.
    pub fn to_time_range(self) -> TimeRange {
        TimeRange {
            start: self.start,
            end: self.end,
        }
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Everything a scan knows about the rows it may skip.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanPredicate {
    /// Bounds on `time`.
    pub time: TimeBounds,
    /// The only trace ids that can match, or `None` when trace ids are unconstrained.
    pub trace_ids: Option<BTreeSet<TraceId>>,
}

impl ScanPredicate {
    /// Combines the filters DataFusion pushed into a scan of `table` (they are `AND`ed).
    pub fn from_filters(table: Table, filters: &[Expr]) -> ScanPredicate {
        let mut predicate = ScanPredicate::default();
        for filter in filters {
            if let Some(bounds) = time_bounds(filter) {
                predicate.time = predicate.time.intersect(bounds);
            }
            if has_trace_ids(table)
                && let Some(ids) = trace_ids(filter)
            {
                predicate.trace_ids = Some(match predicate.trace_ids.take() {
                    Some(previous) => previous.intersection(&ids).copied().collect(),
                    None => ids,
                });
            }
        }
        predicate
    }

    /// True when no row can match (empty time range, or no possible trace id).
    pub fn matches_nothing(&self) -> bool {
        self.time.is_empty() || self.trace_ids.as_ref().is_some_and(BTreeSet::is_empty)
    }

    /// True when the predicate constrains anything at all.
    pub fn is_selective(&self) -> bool {
        self.time != TimeBounds::ALL || self.trace_ids.is_some()
    }
}

/// Whether a filter helps the scan (`Inexact`: DataFusion still re-applies it) or not.
pub fn pushdown_support(table: Table, filter: &Expr) -> TableProviderFilterPushDown {
    let useful =
        time_bounds(filter).is_some() || (has_trace_ids(table) && trace_ids(filter).is_some());
    if useful {
        TableProviderFilterPushDown::Inexact
    } else {
        TableProviderFilterPushDown::Unsupported
    }
}

fn has_trace_ids(table: Table) -> bool {
    table.id_columns().contains(&TRACE_ID_COLUMN)
}

/// The bounds on `time` implied by `expr`, or `None` when it implies none.
pub fn time_bounds(expr: &Expr) -> Option<TimeBounds> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And => match (time_bounds(left), time_bounds(right)) {
                (Some(a), Some(b)) => Some(a.intersect(b)),
                (one, other) => one.or(other),
            },
            Operator::Or => Some(time_bounds(left)?.hull(time_bounds(right)?)),
            Operator::Eq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq => {
                if is_time_column(left) {
                    comparison_bounds(*op, timestamp_literal(right)?)
                } else if is_time_column(right) {
                    comparison_bounds(op.swap()?, timestamp_literal(left)?)
                } else {
                    None
                }
            }
            _ => None,
        },
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) if is_time_column(expr) => {
            let bounds = TimeBounds {
                start: timestamp_literal(low),
                end: timestamp_literal(high),
            };
            (bounds != TimeBounds::ALL).then_some(bounds)
        }
        _ => None,
    }
}

/// Bounds for `time <op> value`.
fn comparison_bounds(op: Operator, value: i64) -> Option<TimeBounds> {
    match op {
        Operator::Eq => Some(TimeBounds {
            start: Some(value),
            end: Some(value),
        }),
        Operator::Gt => Some(TimeBounds::at_least(value.saturating_add(1))),
        Operator::GtEq => Some(TimeBounds::at_least(value)),
        Operator::Lt => Some(TimeBounds::at_most(value.saturating_sub(1))),
        Operator::LtEq => Some(TimeBounds::at_most(value)),
        _ => None,
    }
}

/// `time`, or a cast of it that keeps its nanosecond value (e.g. only the time zone changes).
fn is_time_column(expr: &Expr) -> bool {
    match expr {
        Expr::Column(column) => column.name == TIME_COLUMN,
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) => {
            matches!(
                field.data_type(),
                DataType::Timestamp(TimeUnit::Nanosecond, _)
            ) && is_time_column(expr)
        }
        _ => false,
    }
}

/// The nanosecond value of a constant timestamp expression, if it is one.
fn timestamp_literal(expr: &Expr) -> Option<i64> {
    match expr {
        Expr::Literal(value, _) => scalar_to_nanos(value),
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) => {
            let Expr::Literal(value, _) = expr.as_ref() else {
                return None;
            };
            scalar_to_nanos(&value.cast_to(field.data_type()).ok()?)
        }
        _ => None,
    }
}

fn scalar_to_nanos(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampMicrosecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000_000),
        ScalarValue::Date32(Some(days)) => i64::from(*days).checked_mul(86_400_000_000_000),
        ScalarValue::Date64(Some(ms)) => ms.checked_mul(1_000_000),
        ScalarValue::Utf8(Some(_))
        | ScalarValue::LargeUtf8(Some(_))
        | ScalarValue::Utf8View(Some(_)) => {
            let ts = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
            match value.cast_to(&ts).ok()? {
                ScalarValue::TimestampNanosecond(Some(v), _) => Some(v),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The trace ids `expr` restricts `trace_id` to, or `None` when it does not restrict it.
/// A literal that is not 32 lowercase hex digits cannot equal any id and contributes nothing.
pub fn trace_ids(expr: &Expr) -> Option<BTreeSet<TraceId>> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And => match (trace_ids(left), trace_ids(right)) {
                (Some(a), Some(b)) => Some(a.intersection(&b).copied().collect()),
                (one, other) => one.or(other),
            },
            Operator::Or => {
                let mut ids = trace_ids(left)?;
                ids.extend(trace_ids(right)?);
                Some(ids)
            }
            Operator::Eq => {
                let literal = if is_trace_column(left) {
                    string_literal(right)?
                } else if is_trace_column(right) {
                    string_literal(left)?
                } else {
                    return None;
                };
                Some(literal.and_then(parse_hex_id::<16>).into_iter().collect())
            }
            _ => None,
        },
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) if is_trace_column(expr) => {
            let mut ids = BTreeSet::new();
            for item in list {
                if let Some(id) = string_literal(item)?.and_then(parse_hex_id::<16>) {
                    ids.insert(id);
                }
            }
            Some(ids)
        }
        _ => None,
    }
}

fn is_trace_column(expr: &Expr) -> bool {
    match expr {
        Expr::Column(column) => column.name == TRACE_ID_COLUMN,
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) => {
            matches!(
                field.data_type(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            ) && is_trace_column(expr)
        }
        _ => false,
    }
}

/// `Some(Some(text))` for a string literal, `Some(None)` for a NULL string literal, `None` for
/// anything that is not a string literal.
fn string_literal(expr: &Expr) -> Option<Option<&str>> {
    match expr {
        Expr::Literal(
            ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s),
            _,
        ) => Some(s.as_deref()),
        Expr::Cast(Cast { expr, .. }) | Expr::TryCast(TryCast { expr, .. }) => string_literal(expr),
        _ => None,
    }
}

/// What to read of one Parquet segment.
#[derive(Debug, Clone, Default)]
pub struct ParquetReadPlan {
    /// Row groups to read, ascending.
    pub row_groups: Vec<usize>,
    /// Rows to read within those row groups (`None`: all of them).
    pub selection: Option<RowSelection>,
    /// Row groups in the file.
    pub row_groups_total: usize,
    /// Row groups skipped by `time`/`trace_id` row-group statistics.
    pub pruned_by_statistics: usize,
    /// Row groups skipped by the `trace_id` bloom filter.
    pub pruned_by_bloom_filter: usize,
    /// Row groups skipped because no page of them can match (page index).
    pub pruned_by_page_index: usize,
    /// Rows of read row groups skipped by the page index.
    pub rows_skipped_by_page_index: usize,
}

/// Decides which row groups and pages of a segment may hold matching rows.
///
/// `bloom_filter(row_group, column)` loads a column chunk's bloom filter; a filter that cannot be
/// loaded prunes nothing. The page index is used when `metadata` carries it.
pub fn plan_parquet_read(
    metadata: &ParquetMetaData,
    predicate: &ScanPredicate,
    bloom_filter: impl FnMut(usize, usize) -> Result<Option<Sbbf>, ParquetError>,
) -> ParquetReadPlan {
    plan_parquet_read_of(metadata, predicate, |_, _| true, bloom_filter)
}

/// [`plan_parquet_read`] over the row groups `considered` accepts (called with a row group's
/// index and the file's row-group count): a scan reading a share of a big file.
pub fn plan_parquet_read_of(
    metadata: &ParquetMetaData,
    predicate: &ScanPredicate,
    considered: impl Fn(usize, usize) -> bool,
    mut bloom_filter: impl FnMut(usize, usize) -> Result<Option<Sbbf>, ParquetError>,
) -> ParquetReadPlan {
    let row_groups = metadata.row_groups();
    let mut plan = ParquetReadPlan {
        row_groups_total: row_groups.len(),
        ..Default::default()
    };
    let time_col = leaf_column(metadata, TIME_COLUMN);
    let trace_col =
        leaf_column(metadata, TRACE_ID_COLUMN).filter(|_| predicate.trace_ids.is_some());
    let mut selectors: Vec<RowSelector> = Vec::new();
    let mut partial = false;

    for (rg_index, rg) in row_groups.iter().enumerate() {
        if !considered(rg_index, row_groups.len()) {
            continue;
        }
        let rows = usize::try_from(rg.num_rows()).unwrap_or(0);
        if let Some((min, max)) = time_col.and_then(|c| row_group_time_range(rg, c))
            && !predicate.time.overlaps(min, max)
        {
            plan.pruned_by_statistics += 1;
            continue;
        }
        // The ids this row group may hold, narrowed by statistics then by the bloom filter.
        let mut candidates: Option<Vec<&TraceId>> = None;
        if let (Some(col), Some(ids)) = (trace_col, predicate.trace_ids.as_ref()) {
            let mut ids: Vec<&TraceId> = ids.iter().collect();
            if let Some((min, max)) = row_group_byte_range(rg, col) {
                ids.retain(|id| min <= &id[..] && &id[..] <= max);
            }
            if ids.is_empty() {
                plan.pruned_by_statistics += 1;
                continue;
            }
            match bloom_filter(rg_index, col) {
                Ok(Some(sbbf)) => ids.retain(|id| sbbf.check(&id[..])),
                Ok(None) => {}
                Err(err) => {
                    tracing::debug!(%err, "cannot read a trace_id bloom filter; not pruning")
                }
            }
            if ids.is_empty() {
                plan.pruned_by_bloom_filter += 1;
                continue;
            }
            candidates = Some(ids);
        }

        let kept = page_ranges(
            metadata,
            rg_index,
            rows,
            time_col,
            trace_col,
            predicate,
            candidates.as_deref(),
        );
        match kept {
            None => selectors.push(RowSelector::select(rows)),
            Some(ranges) if ranges.is_empty() => {
                plan.pruned_by_page_index += 1;
                continue;
            }
            Some(ranges) => {
                let mut cursor = 0;
                for range in ranges {
                    if range.start > cursor {
                        selectors.push(RowSelector::skip(range.start - cursor));
                        plan.rows_skipped_by_page_index += range.start - cursor;
                        partial = true;
                    }
                    selectors.push(RowSelector::select(range.end - range.start));
                    cursor = range.end;
                }
                if cursor < rows {
                    selectors.push(RowSelector::skip(rows - cursor));
                    plan.rows_skipped_by_page_index += rows - cursor;
                    partial = true;
                }
            }
        }
        plan.row_groups.push(rg_index);
    }
    if partial {
        plan.selection = Some(RowSelection::from(selectors));
    }
    plan
}

/// The leaf index of a top-level primitive column.
fn leaf_column(metadata: &ParquetMetaData, name: &str) -> Option<usize> {
    metadata
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|column| matches!(column.path().parts(), [only] if only == name))
}

fn row_group_time_range(rg: &RowGroupMetaData, column: usize) -> Option<(i64, i64)> {
    match rg.columns().get(column)?.statistics()? {
        Statistics::Int64(stats) => Some((*stats.min_opt()?, *stats.max_opt()?)),
        _ => None,
    }
}

fn row_group_byte_range(rg: &RowGroupMetaData, column: usize) -> Option<(&[u8], &[u8])> {
    match rg.columns().get(column)?.statistics()? {
        Statistics::FixedLenByteArray(stats) => {
            Some((stats.min_bytes_opt()?, stats.max_bytes_opt()?))
        }
        _ => None,
    }
}

/// Row ranges of one row group whose pages may match, or `None` when the page index cannot tell
/// (absent, or nothing selective). An empty list means no page can match.
fn page_ranges(
    metadata: &ParquetMetaData,
    rg: usize,
    rows: usize,
    time_col: Option<usize>,
    trace_col: Option<usize>,
    predicate: &ScanPredicate,
    trace_candidates: Option<&[&TraceId]>,
) -> Option<Vec<Range<usize>>> {
    let column_index = metadata.column_index()?.get(rg)?;
    let offset_index = metadata.offset_index()?.get(rg)?;
    let mut result: Option<Vec<Range<usize>>> = None;

    if let Some(col) = time_col.filter(|_| predicate.time != TimeBounds::ALL)
        && let (Some(ColumnIndexMetaData::INT64(index)), Some(offsets)) =
            (column_index.get(col), offset_index.get(col))
    {
        let keep = index
            .min_values_iter()
            .zip(index.max_values_iter())
            .map(|(min, max)| match (min, max) {
                (Some(min), Some(max)) => predicate.time.overlaps(*min, *max),
                _ => true,
            });
        if let Some(ranges) = kept_ranges(keep, index.num_pages(), offsets.page_locations(), rows) {
            result = Some(intersect(result, ranges));
        }
    }

    if let (Some(col), Some(candidates)) = (trace_col, trace_candidates)
        && let (Some(ColumnIndexMetaData::FIXED_LEN_BYTE_ARRAY(index)), Some(offsets)) =
            (column_index.get(col), offset_index.get(col))
    {
        let keep = index
            .min_values_iter()
            .zip(index.max_values_iter())
            .map(|(min, max)| {
                match (min, max) {
                    (Some(min), Some(max)) => {
                        candidates.iter().any(|id| min <= &id[..] && &id[..] <= max)
                    }
                    // A page of nulls never equals an id.
                    _ => false,
                }
            });
        if let Some(ranges) = kept_ranges(keep, index.num_pages(), offsets.page_locations(), rows) {
            result = Some(intersect(result, ranges));
        }
    }
    result
}

/// Merged row ranges of the kept pages; `None` when the page locations are inconsistent.
fn kept_ranges(
    keep: impl Iterator<Item = bool>,
    num_pages: u64,
    locations: &[PageLocation],
    rows: usize,
) -> Option<Vec<Range<usize>>> {
    if usize::try_from(num_pages).ok()? != locations.len() || locations.is_empty() {
        return None;
    }
    let mut ranges: Vec<Range<usize>> = Vec::new();
    for (i, keep) in keep.enumerate() {
        let start = usize::try_from(locations.get(i)?.first_row_index).ok()?;
        let end = match locations.get(i + 1) {
            Some(next) => usize::try_from(next.first_row_index).ok()?,
            None => rows,
        };
        if start > end || end > rows {
            return None;
        }
        if !keep || start == end {
            continue;
        }
        match ranges.last_mut() {
            Some(last) if last.end == start => last.end = end,
            _ => ranges.push(start..end),
        }
    }
    Some(ranges)
}

/// Intersection of two sorted, disjoint range lists (`None` is "everything").
fn intersect(a: Option<Vec<Range<usize>>>, b: Vec<Range<usize>>) -> Vec<Range<usize>> {
    let Some(a) = a else {
        return b;
    };
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
        let start = x.start.max(y.start);
        let end = x.end.min(y.end);
        if start < end {
            out.push(start..end);
        }
        if x.end < y.end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests;
