//! `LumenScanExec`: the physical scan of one table snapshot.
//!
//! Partitions: one for the in-memory head (if it has batches) plus up to `target_partitions`
//! groups of segments, balanced by row count. A segment partition runs a blocking task
//! ([`tokio::task::spawn_blocking`]) that reads its segments one after the other with the
//! `parquet` crate — projection mask, row groups and pages chosen by [`crate::pruning`], the
//! scan-side filters ([`crate::row_filter`]) evaluated inside the reader so the other columns are
//! decoded only for the rows that pass — converts every batch to the SQL schema (ids to hex) and
//! sends it through a small bounded channel, so a
//! slow consumer holds back the reader and a dropped query stops it.

use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, new_null_array};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{
    Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use lumen_storage::schema::{TIME_COLUMN, conform_array};
use lumen_storage::segment::{
    self,
    reader::{Footer, OpenError},
};
use lumen_storage::{SegmentMeta, Table};
use parquet::arrow::ProjectionMask;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::SegmentReadError;
use crate::hexid::to_sql_column;
use crate::pruning::{ScanPredicate, plan_parquet_read_of};
use crate::row_filter::RowFilter;

/// Batches buffered between a segment reader and its consumer, per partition.
const CHANNEL_CAPACITY: usize = 2;

/// What a scan reads: the parts of one table snapshot that survived pruning.
#[derive(Debug, Clone)]
pub struct ScanInput {
    /// The table scanned.
    pub table: Table,
    /// The table's full SQL schema (see [`crate::hexid::sql_schema`]).
    pub sql_schema: SchemaRef,
    /// Indices of the output columns in the table schema; empty for `count(*)`-style scans.
    pub projection: Vec<usize>,
    /// Pushed-down pruning predicate.
    pub predicate: ScanPredicate,
    /// Stop after this many rows per partition (DataFusion limits the total above the scan).
    pub limit: Option<usize>,
    /// Filters applied to the rows as they are read, before ids become hex
    /// ([`crate::row_filter`]).
    pub row_filter: Option<RowFilter>,
    /// Head batches, in the storage schema.
    pub head: Vec<RecordBatch>,
    /// Segments to read.
    pub segments: Vec<SegmentMeta>,
    /// How many segment partitions to spread the segments over.
    pub target_partitions: usize,
}

#[derive(Debug, Clone)]
enum PartitionSource {
    Head,
    Segments(Vec<SegmentPart>),
    Empty,
}

/// A segment, or a contiguous share of its row groups: the `part`-th of `parts` equal runs.
/// A big segment is split so that a scan of a few segments still keeps every core busy.
#[derive(Debug, Clone)]
struct SegmentPart {
    segment: SegmentMeta,
    part: usize,
    parts: usize,
}

impl SegmentPart {
    /// Whether row group `index` of `count` is this part's.
    fn holds(&self, index: usize, count: usize) -> bool {
        let parts = self.parts.max(1);
        let start = self.part * count / parts;
        let end = (self.part + 1) * count / parts;
        (start..end).contains(&index)
    }
}

/// Scan of one Lumen table over head batches and Parquet segments.
pub struct LumenScanExec {
    table: Table,
    projector: Projector,
    predicate: Arc<ScanPredicate>,
    limit: Option<usize>,
    head: Arc<Vec<RecordBatch>>,
    partitions: Vec<PartitionSource>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
    counters: ScanCounters,
}

impl LumenScanExec {
    /// Plans the partitions of a scan.
    pub fn try_new(input: ScanInput) -> Result<Self> {
        let projector = Projector::try_new(
            input.table,
            &input.sql_schema,
            &input.projection,
            input.row_filter.map(Arc::new),
        )?;
        let mut partitions = Vec::new();
        if !input.head.is_empty() {
            partitions.push(PartitionSource::Head);
        }
        partitions.extend(
            group_segments(input.segments, input.target_partitions)
                .into_iter()
                .map(PartitionSource::Segments),
        );
        if partitions.is_empty() {
            partitions.push(PartitionSource::Empty);
        }
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&projector.output_schema)),
            Partitioning::UnknownPartitioning(partitions.len()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        let metrics = ExecutionPlanMetricsSet::new();
        let counters = ScanCounters::new(&metrics);
        Ok(LumenScanExec {
            table: input.table,
            projector,
            predicate: Arc::new(input.predicate),
            limit: input.limit,
            head: Arc::new(input.head),
            partitions,
            properties: Arc::new(properties),
            metrics,
            counters,
        })
    }

    fn segment_count(&self) -> usize {
        self.partitions
            .iter()
            .map(|p| match p {
                PartitionSource::Segments(parts) => parts.iter().filter(|p| p.part == 0).count(),
                _ => 0,
            })
            .sum()
    }

    fn head_stream(&self) -> SendableRecordBatchStream {
        let rows = HeadRows {
            head: Arc::clone(&self.head),
            next: 0,
            projector: self.projector.clone(),
            remaining: self.limit,
        };
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.projector.output_schema),
            futures::stream::iter(rows),
        ))
    }

    fn segment_stream(
        &self,
        segments: Vec<SegmentPart>,
        batch_size: usize,
    ) -> SendableRecordBatchStream {
        let task = SegmentReader {
            segments,
            projector: self.projector.clone(),
            predicate: Arc::clone(&self.predicate),
            remaining: self.limit,
            batch_size,
            counters: self.counters.clone(),
        };
        let stream =
            futures::stream::unfold(ReaderState::NotStarted(Box::new(task)), next_from_reader);
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.projector.output_schema),
            stream,
        ))
    }
}

impl fmt::Debug for LumenScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LumenScanExec")
            .field("table", &self.table)
            .field("partitions", &self.partitions.len())
            .field("predicate", &self.predicate)
            .field("limit", &self.limit)
            .finish()
    }
}

impl DisplayAs for LumenScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let columns: Vec<&str> = self
            .projector
            .output_schema
            .fields()
            .iter()
            .map(|field| field.name().as_str())
            .collect();
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                write!(
                    f,
                    "LumenScanExec: table={}, projection=[{}], head_batches={}, segments={}",
                    self.table,
                    columns.join(", "),
                    self.head.len(),
                    self.segment_count()
                )?;
                if self.predicate.time.start.is_some() || self.predicate.time.end.is_some() {
                    write!(
                        f,
                        ", time=[{:?}, {:?}]",
                        self.predicate.time.start, self.predicate.time.end
                    )?;
                }
                if let Some(ids) = &self.predicate.trace_ids {
                    write!(f, ", trace_ids={}", ids.len())?;
                }
                if let Some(limit) = self.limit {
                    write!(f, ", limit={limit}")?;
                }
                Ok(())
            }
            DisplayFormatType::TreeRender => {
                writeln!(f, "table={}", self.table)?;
                write!(f, "segments={}", self.segment_count())
            }
        }
    }
}

impl ExecutionPlan for LumenScanExec {
    fn name(&self) -> &str {
        "LumenScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "LumenScanExec has no children".into(),
            ))
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        match self.partitions.get(partition) {
            Some(PartitionSource::Head) => Ok(self.head_stream()),
            Some(PartitionSource::Segments(segments)) => {
                let batch_size = context.session_config().batch_size().max(1);
                Ok(self.segment_stream(segments.clone(), batch_size))
            }
            Some(PartitionSource::Empty) => Ok(Box::pin(RecordBatchStreamAdapter::new(
                Arc::clone(&self.projector.output_schema),
                futures::stream::empty(),
            ))),
            None => Err(DataFusionError::Internal(format!(
                "LumenScanExec has {} partitions, partition {partition} requested",
                self.partitions.len()
            ))),
        }
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// Spreads segments over at most `target` groups with about equal row counts; each group keeps
/// its segments in time order. A segment holding more than half a group's share is split into
/// runs of its row groups first, so two big segments and a small one do not leave one core with
/// twice the other's rows.
fn group_segments(segments: Vec<SegmentMeta>, target: usize) -> Vec<Vec<SegmentPart>> {
    if segments.is_empty() {
        return Vec::new();
    }
    let total: u64 = segments.iter().map(|s| s.rows).sum();
    let share = (total / target.max(1) as u64).max(1);
    let row_group_rows = lumen_storage::segment::ROW_GROUP_ROWS as u64;
    let mut parts: Vec<(u64, SegmentPart)> = Vec::new();
    for segment in segments {
        let row_groups = segment.rows.div_ceil(row_group_rows).max(1);
        let wanted = (segment.rows * 2).div_ceil(share).max(1);
        let count = wanted.min(row_groups).min(target.max(1) as u64) as usize;
        for part in 0..count {
            parts.push((
                segment.rows / count as u64,
                SegmentPart {
                    segment: segment.clone(),
                    part,
                    parts: count,
                },
            ));
        }
    }
    let groups = target.clamp(1, parts.len());
    parts.sort_by_key(|(rows, _)| std::cmp::Reverse(*rows));
    let mut buckets: Vec<(u64, Vec<SegmentPart>)> = (0..groups).map(|_| (0, Vec::new())).collect();
    for (rows, part) in parts {
        // Largest first into the lightest bucket: a good balance for a greedy pass.
        if let Some(bucket) = buckets.iter_mut().min_by_key(|(rows, _)| *rows) {
            bucket.0 = bucket.0.saturating_add(rows);
            bucket.1.push(part);
        }
    }
    buckets
        .into_iter()
        .map(|(_, mut group)| {
            group.sort_by_key(|p| (p.segment.min_time, p.segment.id, p.part));
            group
        })
        .collect()
}

/// Turns storage batches into output batches: drops the rows the scan-side filters reject, picks
/// the projected columns by name and converts them to their SQL types.
#[derive(Debug, Clone)]
struct Projector {
    /// The projected SQL schema.
    output_schema: SchemaRef,
    /// The table's storage schema.
    storage_schema: SchemaRef,
    /// Filters evaluated before the conversion.
    row_filter: Option<Arc<RowFilter>>,
}

impl Projector {
    fn try_new(
        table: Table,
        sql_schema: &SchemaRef,
        projection: &[usize],
        row_filter: Option<Arc<RowFilter>>,
    ) -> Result<Self> {
        let output_schema = Arc::new(sql_schema.project(projection)?);
        Ok(Projector {
            output_schema,
            storage_schema: table.schema(),
            row_filter,
        })
    }

    /// Column names to read from storage; a column-less scan still reads `time` for row counts.
    fn storage_columns(&self) -> Vec<&str> {
        if self.output_schema.fields().is_empty() {
            vec![TIME_COLUMN]
        } else {
            self.output_schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect()
        }
    }

    /// `batch` in the output schema; the rows the scan-side filters reject are dropped unless
    /// `filtered` says the Parquet reader already applied them.
    fn project(&self, batch: &RecordBatch, filtered: bool) -> Result<RecordBatch, ArrowError> {
        let passed;
        let batch = match &self.row_filter {
            Some(filter) if !filtered => {
                passed = filter.apply(batch)?;
                &passed
            }
            _ => batch,
        };
        let columns = self
            .output_schema
            .fields()
            .iter()
            .map(|field| {
                let Some(column) = batch.column_by_name(field.name()) else {
                    return Ok(new_null_array(field.data_type(), batch.num_rows()));
                };
                match self.storage_schema.field_with_name(field.name()) {
                    // A nested struct of an older schema gets today's fields first; a text column
                    // read as a dictionary for the filters becomes text again.
                    Ok(stored) if stored.data_type() != column.data_type() => {
                        let column = conform_array(column, stored.data_type())?;
                        to_sql_column(&column, field.data_type())
                    }
                    _ => to_sql_column(column, field.data_type()),
                }
            })
            .collect::<Result<Vec<ArrayRef>, ArrowError>>()?;
        RecordBatch::try_new_with_options(
            Arc::clone(&self.output_schema),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )
    }
}

/// The head partition: head batches, projected lazily one at a time.
struct HeadRows {
    head: Arc<Vec<RecordBatch>>,
    next: usize,
    projector: Projector,
    remaining: Option<usize>,
}

impl Iterator for HeadRows {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.remaining == Some(0) {
                return None;
            }
            let batch = self.head.get(self.next)?;
            self.next += 1;
            if batch.num_rows() == 0 {
                continue;
            }
            let batch = match self.remaining {
                Some(remaining) if remaining < batch.num_rows() => batch.slice(0, remaining),
                _ => batch.clone(),
            };
            if let Some(remaining) = self.remaining.as_mut() {
                *remaining -= batch.num_rows();
            }
            return Some(
                self.projector
                    .project(&batch, false)
                    .map_err(|e| DataFusionError::ArrowError(Box::new(e), None)),
            );
        }
    }
}

/// Pruning and I/O counters shown by `EXPLAIN ANALYZE`.
#[derive(Debug, Clone)]
struct ScanCounters {
    segments_read: Count,
    row_groups_read: Count,
    row_groups_pruned_statistics: Count,
    row_groups_pruned_bloom_filter: Count,
    row_groups_pruned_page_index: Count,
    rows_skipped_page_index: Count,
}

impl ScanCounters {
    fn new(metrics: &ExecutionPlanMetricsSet) -> Self {
        let counter = |name: &'static str| MetricBuilder::new(metrics).global_counter(name);
        ScanCounters {
            segments_read: counter("segments_read"),
            row_groups_read: counter("row_groups_read"),
            row_groups_pruned_statistics: counter("row_groups_pruned_statistics"),
            row_groups_pruned_bloom_filter: counter("row_groups_pruned_bloom_filter"),
            row_groups_pruned_page_index: counter("row_groups_pruned_page_index"),
            rows_skipped_page_index: counter("rows_skipped_page_index"),
        }
    }
}

/// Whether a reader should go on after a segment.
enum Flow {
    Continue,
    Stop,
}

/// The blocking half of a segment partition.
struct SegmentReader {
    segments: Vec<SegmentPart>,
    projector: Projector,
    predicate: Arc<ScanPredicate>,
    remaining: Option<usize>,
    batch_size: usize,
    counters: ScanCounters,
}

type BatchSender = mpsc::Sender<Result<RecordBatch>>;

impl SegmentReader {
    fn run(mut self, tx: BatchSender) {
        let segments = std::mem::take(&mut self.segments);
        for segment in &segments {
            if self.remaining == Some(0) || tx.is_closed() {
                return;
            }
            match self.read_segment(segment, &tx) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop) => return,
                Err(err) => {
                    // The receiver may be gone too; then nobody needs the error.
                    let _ = tx.blocking_send(Err(err.into()));
                    return;
                }
            }
        }
    }

    fn read_segment(
        &mut self,
        part: &SegmentPart,
        tx: &BatchSender,
    ) -> Result<Flow, SegmentReadError> {
        let segment = &part.segment;
        let path = &segment.path;
        let unreadable = |message: String| SegmentReadError::Unreadable {
            path: path.clone(),
            message,
        };
        // A selective scan prunes pages, so it wants the page index, which the footer cache
        // keeps parsed between queries; a full scan reads without it and leaves the cache alone.
        let footer = if self.predicate.is_selective() {
            Footer::Cached
        } else {
            Footer::Uncached
        };
        // Text columns the scan-side filters only compare are read as dictionaries (row_filter.rs).
        let filter = self.projector.row_filter.clone();
        let read_as = |file: &SchemaRef| filter.as_ref().and_then(|f| f.read_as(file));
        let builder = segment::reader::open_as(segment, footer, read_as).map_err(|e| match e {
            OpenError::Missing(path) => SegmentReadError::Missing(path),
            other => unreadable(other.to_string()),
        })?;
        if part.part == 0 {
            self.counters.segments_read.add(1);
        }

        let plan = plan_parquet_read_of(
            builder.metadata(),
            &self.predicate,
            |row_group, count| part.holds(row_group, count),
            |row_group, column| builder.get_row_group_column_bloom_filter(row_group, column),
        );
        self.counters.row_groups_read.add(plan.row_groups.len());
        self.counters
            .row_groups_pruned_statistics
            .add(plan.pruned_by_statistics);
        self.counters
            .row_groups_pruned_bloom_filter
            .add(plan.pruned_by_bloom_filter);
        self.counters
            .row_groups_pruned_page_index
            .add(plan.pruned_by_page_index);
        self.counters
            .rows_skipped_page_index
            .add(plan.rows_skipped_by_page_index);
        if plan.row_groups.is_empty() {
            return Ok(Flow::Continue);
        }

        // A column added to the schema after this segment was written is not in the file: it
        // is left out here and reads as nulls (see `Projector::project`).
        let root_fields = builder.parquet_schema().root_schema().get_fields();
        let roots: Vec<usize> = self
            .projector
            .storage_columns()
            .into_iter()
            .filter_map(|name| root_fields.iter().position(|field| field.name() == name))
            .collect();
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        let mut builder = builder
            .with_projection(mask)
            .with_row_groups(plan.row_groups)
            .with_batch_size(self.batch_size);
        if let Some(selection) = plan.selection {
            builder = builder.with_row_selection(selection);
        }
        // The filters run in the reader, which then decodes the other columns only for the rows
        // that passed (row_filter.rs).
        if let Some(filter) = &self.projector.row_filter {
            let filter = filter.parquet(builder.parquet_schema());
            builder = builder.with_row_filter(filter);
        }
        if let Some(remaining) = self.remaining {
            builder = builder.with_limit(remaining);
        }
        let reader = builder.build().map_err(|e| unreadable(e.to_string()))?;

        for batch in reader {
            let mut batch = batch.map_err(|e| unreadable(e.to_string()))?;
            if let Some(remaining) = self.remaining.as_mut() {
                if batch.num_rows() > *remaining {
                    batch = batch.slice(0, *remaining);
                }
                *remaining -= batch.num_rows();
            }
            let batch = self
                .projector
                .project(&batch, true)
                .map_err(|e| unreadable(e.to_string()))?;
            if batch.num_rows() == 0 {
                continue;
            }
            if tx.blocking_send(Ok(batch)).is_err() {
                // The query is gone (finished early, cancelled or timed out).
                return Ok(Flow::Stop);
            }
            if self.remaining == Some(0) {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }
}

/// The async half of a segment partition: starts the reader on first poll, then relays batches.
enum ReaderState {
    NotStarted(Box<SegmentReader>),
    Running {
        rx: mpsc::Receiver<Result<RecordBatch>>,
        task: JoinHandle<()>,
    },
    Done,
}

async fn next_from_reader(mut state: ReaderState) -> Option<(Result<RecordBatch>, ReaderState)> {
    loop {
        match state {
            ReaderState::NotStarted(reader) => {
                let runtime = match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let err = DataFusionError::Internal(format!(
                            "segment scan outside a tokio runtime: {err}"
                        ));
                        return Some((Err(err), ReaderState::Done));
                    }
                };
                let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
                let task = runtime.spawn_blocking(move || reader.run(tx));
                state = ReaderState::Running { rx, task };
            }
            ReaderState::Running { mut rx, task } => {
                if let Some(item) = rx.recv().await {
                    return Some((item, ReaderState::Running { rx, task }));
                }
                // The reader finished; make sure it did not die half-way (a decoder panic would
                // otherwise look like a short, successful read).
                return match task.await {
                    Ok(()) => None,
                    Err(err) => {
                        let err: DataFusionError =
                            SegmentReadError::ReaderDied(err.to_string()).into();
                        Some((Err(err), ReaderState::Done))
                    }
                };
            }
            ReaderState::Done => return None,
        }
    }
}

#[cfg(test)]
mod tests;
