//! Parquet segments: how a frozen head becomes sorted, compressed, time-partitioned files.
//!
//! One flush writes, per table, one file per hour of `time` it holds:
//! `segments/<table>/<YYYY-MM-DDTHH>/<segment id, 12 digits>.parquet`. Rows are sorted by the table's
//! sort columns (see [`Table::sort_columns`]). Files carry page-level statistics and a page index for
//! every column, a bloom filter on `trace_id`, delta encoding for timestamps and byte-stream-split
//! encoding for float values — choices measured in DESIGN.md. A file is written under a temporary name,
//! fsync'd and renamed, so a segment either exists whole or not at all. A metrics segment also gets
//! its series index sidecar, `<id>.series` (see [`crate::index`]), written before the manifest
//! names the segment.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array, ArrayRef, TimestampNanosecondArray, UInt32Array};
use arrow::compute::kernels::aggregate::{max, min};
use arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

pub mod reader;

pub use reader::root_projection;

use crate::durable::sync_dir;
use crate::error::{Result, StorageError};
use crate::index::{self, SeriesIndex};
use crate::manifest::SegmentMeta;
use crate::schema::{TIME_COLUMN, Table};

/// Nanoseconds per partition (one hour).
pub const PARTITION_NANOS: i64 = 3_600_000_000_000;
/// Rows per row group (the last of a file holds the rest).
pub const ROW_GROUP_ROWS: usize = 1 << 20;

/// Columns holding timestamps or other slowly changing integers: delta encoding makes them nearly free.
const DELTA_COLUMNS: &[&str] = &[
    "time",
    "end_time",
    "observed_time",
    "start_time",
    "duration_ns",
];
/// Float columns: byte-stream-split lets zstd find the shared exponent bytes.
const FLOAT_COLUMNS: &[&str] = &["value", "sum", "min", "max"];

/// Columns written without compression, per table: their encoded pages are random bits (span and
/// trace ids; timestamps and durations that are random within the hour once sorted by something
/// else, already bit-packed as deltas), so zstd saved nothing on them (10M fleet spans: `time`
/// 22.88 MB compressed vs 22.88 MB not; `span_id` 34.10 vs 34.09; logs' `trace_id` 10.0 vs 10.1)
/// while decompressing them was a fifth of a selective trace search. Metrics timestamps are
/// regular and do compress, so they keep it.
fn uncompressed_columns(table: Table) -> &'static [&'static str] {
    match table {
        Table::Spans => &["time", "end_time", "duration_ns", "span_id"],
        Table::Logs => &["time", "observed_time", "trace_id", "span_id"],
        Table::Metrics => &[],
    }
}

/// Rows per data page of metrics segments.
const METRICS_PAGE_ROWS: usize = 8192;
/// Rows per data page of spans segments: trace by id reads one page of every column, and a page
/// of the attribute maps holding 100k+ rows took 20 ms to decode for the trace's dozen rows.
const SPANS_PAGE_ROWS: usize = 16_384;

pub(crate) fn writer_properties(table: Table, max_wal_seq: u64) -> Result<WriterProperties> {
    let schema = table.schema();
    let zstd = ZstdLevel::try_new(3)?;
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(zstd))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_key_value_metadata(Some(vec![
            KeyValue::new("lumen.table".into(), table.name().to_string()),
            KeyValue::new("lumen.max_wal_seq".into(), max_wal_seq.to_string()),
        ]));
    let mut sorting = Vec::new();
    for name in table.sort_columns() {
        if let Ok(idx) = schema.index_of(name) {
            sorting.push(SortingColumn {
                column_idx: idx as i32,
                descending: false,
                nulls_first: true,
            });
        }
    }
    builder = builder.set_sorting_columns(Some(sorting));
    for name in DELTA_COLUMNS {
        if schema.index_of(name).is_ok() {
            let path = ColumnPath::from(*name);
            builder = builder
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
        }
    }
    for name in uncompressed_columns(table) {
        builder =
            builder.set_column_compression(ColumnPath::from(*name), Compression::UNCOMPRESSED);
    }
    if table == Table::Spans {
        builder = builder.set_data_page_row_count_limit(SPANS_PAGE_ROWS);
    }
    if table == Table::Metrics {
        // Small pages: a selector reads a few series, and every page it touches is decompressed
        // whole (1 MiB pages would mean ~128k rows for a handful).
        builder = builder.set_data_page_row_count_limit(METRICS_PAGE_ROWS);
        for name in FLOAT_COLUMNS {
            let path = ColumnPath::from(*name);
            builder = builder
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, Encoding::BYTE_STREAM_SPLIT);
        }
    }
    if schema.index_of("trace_id").is_ok() {
        let path = ColumnPath::from("trace_id");
        builder = builder
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_bloom_filter_enabled(path.clone(), true)
            .set_column_bloom_filter_fpp(path.clone(), 0.01);
        if table == Table::Spans {
            // Sorted, a trace's spans repeat its id: prefix-delta encoding stores each repeat as
            // two small lengths instead of 16 bytes, so a page decodes from a fraction of the
            // bytes — a search reads the ids of matches scattered over every page of the hour.
            builder = builder.set_column_encoding(path, Encoding::DELTA_BYTE_ARRAY);
        }
    }
    Ok(builder.build())
}

fn time_column(batch: &RecordBatch) -> Result<&TimestampNanosecondArray> {
    batch
        .column_by_name(TIME_COLUMN)
        .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>())
        .ok_or_else(|| StorageError::SchemaMismatch {
            table: "?",
            message: "no nanosecond `time` column".into(),
        })
}

/// Start of the partition holding `time_ns`.
pub fn partition_start(time_ns: i64) -> i64 {
    time_ns.div_euclid(PARTITION_NANOS) * PARTITION_NANOS
}

fn partition_dir_name(start_ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(start_ns)
        .format("%Y-%m-%dT%H")
        .to_string()
}

/// Sorts `batch` by the table's sort columns.
pub fn sort_batch(table: Table, batch: &RecordBatch) -> Result<RecordBatch> {
    let mut columns = Vec::new();
    for name in table.sort_columns() {
        if let Some(col) = batch.column_by_name(name) {
            columns.push(SortColumn {
                values: string_ranks(col).unwrap_or_else(|| col.clone()),
                options: None,
            });
        }
    }
    if columns.is_empty() || batch.num_rows() < 2 {
        return Ok(batch.clone());
    }
    let indices = lexsort_to_indices(&columns, None)?;
    Ok(take_record_batch(batch, &indices)?)
}

/// A string column as the rank of each row's value among the column's distinct values (nulls
/// first), which sorts rows the same way at the cost of comparing integers: sort columns such as
/// metric and service names have few distinct values and many rows. `None` for other columns.
fn string_ranks(col: &ArrayRef) -> Option<ArrayRef> {
    let strings = col.as_any().downcast_ref::<arrow::array::StringArray>()?;
    let mut distinct: Vec<&str> = Vec::new();
    let mut seen: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
    let mut first_rank: Vec<u32> = Vec::with_capacity(strings.len());
    for i in 0..strings.len() {
        if strings.is_null(i) {
            first_rank.push(u32::MAX);
            continue;
        }
        let v = strings.value(i);
        let next = seen.len() as u32;
        let id = *seen.entry(v).or_insert_with(|| {
            distinct.push(v);
            next
        });
        first_rank.push(id);
    }
    // Appearance order → sorted order.
    let mut order: Vec<u32> = (0..distinct.len() as u32).collect();
    order.sort_unstable_by(|a, b| distinct[*a as usize].cmp(distinct[*b as usize]));
    let mut rank_of = vec![0u32; distinct.len()];
    for (rank, id) in order.iter().enumerate() {
        rank_of[*id as usize] = rank as u32 + 1; // 0 is null
    }
    let ranks: Vec<u32> = first_rank
        .iter()
        .map(|id| {
            if *id == u32::MAX {
                0
            } else {
                rank_of[*id as usize]
            }
        })
        .collect();
    Some(Arc::new(arrow::array::UInt32Array::from(ranks)))
}

/// Writes `batches` of `table` as one sorted segment per hour partition under `data_dir`. Segment ids
/// are taken from `ids`. Returns the segments, durable on disk but not yet in the manifest.
pub fn write_segments(
    data_dir: &Path,
    table: Table,
    batches: &[RecordBatch],
    ids: &AtomicU64,
    max_wal_seq: u64,
) -> Result<Vec<SegmentMeta>> {
    let batches: Vec<&RecordBatch> = batches.iter().filter(|b| b.num_rows() > 0).collect();
    if batches.is_empty() {
        return Ok(vec![]);
    }
    let all = concat_batches(&table.schema(), batches.iter().copied())?;
    let times = time_column(&all)?;
    let mut partitions: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    for (row, t) in times.values().iter().enumerate() {
        partitions
            .entry(partition_start(*t))
            .or_default()
            .push(row as u32);
    }
    let props = writer_properties(table, max_wal_seq)?;
    let mut written = Vec::with_capacity(partitions.len());
    for (start, rows) in partitions {
        let indices = UInt32Array::from(rows);
        let part = if indices.len() == all.num_rows() {
            all.clone()
        } else {
            take_record_batch(&all, &indices)?
        };
        let sorted = sort_batch(table, &part)?;
        let id = ids.fetch_add(1, Ordering::AcqRel);
        let dir = partition_dir(data_dir, table, start);
        let written_one = SegmentWriter::create(&dir, id, table, &sorted.schema(), props.clone())
            .and_then(|mut w| {
                w.write(&sorted)?;
                w.finish()
            });
        match written_one {
            Ok(meta) => written.push(meta),
            Err(e) => {
                for meta in &written {
                    let _ = remove_segment_files(meta);
                }
                return Err(e);
            }
        }
    }
    Ok(written)
}

/// The directory of `table`'s partition starting at `start_ns`.
pub fn partition_dir(data_dir: &Path, table: Table, start_ns: i64) -> PathBuf {
    data_dir
        .join("segments")
        .join(table.name())
        .join(partition_dir_name(start_ns))
}

/// Writes one segment file batch by batch, in segment order: under a temporary name, fsync'd and
/// renamed by [`SegmentWriter::finish`]; a metrics segment's series index is built from the same
/// batches and written as its sidecar. Dropped unfinished, it removes its temporary file.
pub(crate) struct SegmentWriter {
    dir: PathBuf,
    id: u64,
    table: Table,
    tmp: PathBuf,
    writer: Option<ArrowWriter<File>>,
    /// The series index being built (metrics only); an error stops it, not the segment.
    index: Option<std::result::Result<index::Builder, String>>,
    min_time: i64,
    max_time: i64,
    rows: u64,
}

impl SegmentWriter {
    /// Starts segment `id` of `table` in `dir`, with rows of `schema`.
    pub(crate) fn create(
        dir: &Path,
        id: u64,
        table: Table,
        schema: &arrow::datatypes::SchemaRef,
        props: WriterProperties,
    ) -> Result<SegmentWriter> {
        fs::create_dir_all(dir)
            .map_err(|e| StorageError::io(format!("creating {}", dir.display()), e))?;
        let tmp = dir.join(format!("{id:012}.parquet.tmp"));
        let file = File::create(&tmp)
            .map_err(|e| StorageError::io(format!("writing {}", tmp.display()), e))?;
        let mut this = SegmentWriter {
            dir: dir.to_path_buf(),
            id,
            table,
            tmp,
            writer: None,
            index: (table == Table::Metrics).then(|| Ok(index::Builder::default())),
            min_time: i64::MAX,
            max_time: i64::MIN,
            rows: 0,
        };
        match ArrowWriter::try_new(file, schema.clone(), Some(props)) {
            Ok(writer) => this.writer = Some(writer),
            Err(e) => {
                let _ = fs::remove_file(&this.tmp);
                return Err(e.into());
            }
        }
        Ok(this)
    }

    /// Appends the next rows of the segment.
    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let times = time_column(batch)?;
        self.min_time = self.min_time.min(min(times).unwrap_or(i64::MAX));
        self.max_time = self.max_time.max(max(times).unwrap_or(i64::MIN));
        self.rows += batch.num_rows() as u64;
        if let Some(Ok(builder)) = &mut self.index
            && let Err(e) = builder.add_batch(batch)
        {
            self.index = Some(Err(e));
        }
        self.writer
            .as_mut()
            .ok_or_else(|| {
                StorageError::io(
                    "writing a segment",
                    std::io::Error::other("already finished"),
                )
            })?
            .write(batch)?;
        Ok(())
    }

    /// Makes the segment durable under its final name and returns it (not yet in the manifest).
    pub(crate) fn finish(mut self) -> Result<SegmentMeta> {
        let tmp = self.tmp.clone();
        let io = |e| StorageError::io(format!("writing {}", tmp.display()), e);
        let writer = self
            .writer
            .take()
            .ok_or_else(|| io(std::io::Error::other("already finished")))?;
        let file = writer.into_inner()?;
        file.sync_all().map_err(io)?;
        let bytes = file.metadata().map_err(io)?.len();
        drop(file);
        let path = self.dir.join(format!("{:012}.parquet", self.id));
        fs::rename(&self.tmp, &path)
            .map_err(|e| StorageError::io(format!("renaming {}", self.tmp.display()), e))?;
        let index = match self.index.take() {
            Some(built) => write_series_index(&path, built.map(|b| b.finish(bytes))),
            None => None,
        };
        sync_dir(&self.dir)?;
        let meta = SegmentMeta {
            id: self.id,
            table: self.table,
            path,
            min_time: if self.rows == 0 { 0 } else { self.min_time },
            max_time: if self.rows == 0 { 0 } else { self.max_time },
            rows: self.rows,
            bytes,
        };
        if let Some(index) = index {
            // Queries of the new segment find its index without reading the sidecar back.
            index::remember(&meta, index);
        }
        Ok(meta)
    }
}

impl Drop for SegmentWriter {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Writes the series index sidecar of a metrics segment (see [`crate::index`]). A failure is logged,
/// not returned: the index is rebuilt from the segment when a query first needs it.
fn write_series_index(
    path: &Path,
    built: std::result::Result<SeriesIndex, String>,
) -> Option<SeriesIndex> {
    let written = built
        .map_err(|e| StorageError::io("building the series index", std::io::Error::other(e)))
        .and_then(|index| index::write_sidecar(path, &index).map(|()| index));
    match written {
        Ok(index) => Some(index),
        Err(e) => {
            metrics::counter!("lumen_series_index_write_errors_total").increment(1);
            tracing::warn!(segment = %path.display(), error = %e, "could not write the series index sidecar; queries will rebuild it");
            None
        }
    }
}

/// Every file belonging to a segment: the Parquet file and its series index sidecar.
pub fn segment_files(meta: &SegmentMeta) -> Vec<PathBuf> {
    let mut files = vec![meta.path.clone()];
    if meta.table == Table::Metrics {
        files.push(index::sidecar_path(&meta.path));
    }
    files
}

/// Removes a segment's files (a failed flush's, or a dropped segment's) and forgets its cached
/// index. Files already gone are not an error.
pub fn remove_segment_files(meta: &SegmentMeta) -> Result<()> {
    index::forget(&meta.path);
    reader::forget(&meta.path);
    for file in segment_files(meta) {
        match fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io(format!("removing {}", file.display()), e)),
        }
    }
    Ok(())
}

/// Checks that a segment's file exists and its footer is readable with the expected row count.
pub fn verify(meta: &SegmentMeta) -> std::result::Result<(), String> {
    let builder = reader::open(meta, reader::Footer::Uncached).map_err(|e| match e {
        reader::OpenError::Missing(_) => "cannot open: the file is missing".to_string(),
        other => format!("unreadable footer: {other}"),
    })?;
    let rows = builder.metadata().file_metadata().num_rows();
    if rows as u64 != meta.rows {
        return Err(format!(
            "holds {rows} rows, the manifest says {}",
            meta.rows
        ));
    }
    Ok(())
}

/// Every file under `segments/` (Parquet files and leftovers of interrupted writes).
pub fn list_files(data_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![data_dir.join("segments")];
    while let Some(dir) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StorageError::io(format!("listing {}", dir.display()), e)),
        };
        for entry in entries {
            let entry =
                entry.map_err(|e| StorageError::io(format!("listing {}", dir.display()), e))?;
            let path = entry.path();
            if path.is_dir() {
                stack.push(path)
            } else {
                out.push(path)
            }
        }
    }
    Ok(out)
}

/// Reads a whole segment back (tests and tools; queries read through the query crate).
pub fn read_all(path: &Path) -> Result<Vec<RecordBatch>> {
    let file =
        File::open(path).map_err(|e| StorageError::io(format!("opening {}", path.display()), e))?;
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?.build()?;
    Ok(reader.collect::<std::result::Result<Vec<_>, _>>()?)
}
