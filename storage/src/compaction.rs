//! Compaction: merging the segments of one table and hour partition into one.
//!
//! Every flush writes one segment per table and partition, so a partition collects one segment per
//! flush: up to 6 an hour at the default flush interval, many more under heavy ingest. Each costs
//! queries a footer, a series index and a page index to consult, and files compress better big.
//! Compaction merges them; all work is done beside the live segments and swapped in through the
//! manifest, so queries always see either the inputs or the output, never both or neither.
//!
//! Policy ([`plan`]), per table and partition, over segments smaller than `max_rows`:
//! - a partition still being written merges only segments of similar size (the smallest and every
//!   one up to 4× its rows) once there are `fan_in` of them — size-tiered, so each row is
//!   rewritten a logarithmic number of times however many flushes the hour gets (also while old
//!   hours are backfilled);
//! - a settled partition — its hour ended `settle_after` ago and no flush has written into it for
//!   as long — merges every segment it has into one, except that a segment more than 4× the rows of
//!   all smaller ones together waits until they have grown (late data trickling into an old hour
//!   is merged among itself, not rewritten into the hour's big segment every time);
//! - a forced compaction (`POST /api/v1/admin/compact`) treats every partition as sealed.
//!
//! The merge ([`merge`]) streams: segments are sorted by the table's sort columns, so a k-way
//! merge of their rows (compared in arrow's row format) reads each input batch by batch and writes
//! the output row group by row group, in bounded memory whatever the segments' sizes. The output
//! is a normal segment with its own series index sidecar; inputs leave the manifest in the same
//! update that adds it, and their files are deleted only after a grace period, so a query that
//! took its snapshot before the swap still finds them.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use arrow::array::{ArrayData, MutableArrayData, make_array};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, Rows, SortField};
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;

use crate::error::{Result, StorageError};
use crate::manifest::SegmentMeta;
use crate::schema::{self, Table};
use crate::segment::{self, SegmentWriter};

/// When and how much to compact.
#[derive(Debug, Clone)]
pub struct CompactionConfig {
    /// Run compaction in the background.
    pub enabled: bool,
    /// Segments with at least this many rows are left alone, and no merge makes a bigger one.
    pub max_rows: u64,
    /// Segments of similar size a partition still being written needs before they are merged.
    pub fan_in: usize,
    /// A partition is merged whole once its hour has ended and no flush has written into it for
    /// this long.
    pub settle_after: Duration,
    /// Merged segments' files are deleted this long after they leave the manifest, so queries
    /// that listed them before finish reading them. At least the longest query timeout.
    pub retire_grace: Duration,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        CompactionConfig {
            enabled: true,
            max_rows: 64 << 20,
            fan_in: 4,
            settle_after: Duration::from_secs(15 * 60),
            retire_grace: Duration::from_secs(5 * 60),
        }
    }
}

/// Segments of one table and partition to merge into one, oldest (lowest id) first.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Their table.
    pub table: Table,
    /// Start of their partition (ns).
    pub partition: i64,
    /// The segments to merge (two or more).
    pub inputs: Vec<SegmentMeta>,
}

impl Plan {
    /// Rows the merged segment will hold.
    pub fn rows(&self) -> u64 {
        self.inputs.iter().map(|s| s.rows).sum()
    }
}

/// Which partitions a compaction pass may treat as settled, and which segments it must leave alone.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    /// Wall-clock time (ns).
    pub now_ns: i64,
    /// Treat every partition as settled (a forced compaction).
    pub force: bool,
    /// `(table, partition start)` flushed into less than `settle_after` ago.
    pub busy: HashSet<(Table, i64)>,
    /// Segments not to merge (their merge failed before).
    pub skip: HashSet<u64>,
}

/// The merges `segments` call for, at most one per table and partition.
pub fn plan(segments: &[SegmentMeta], config: &CompactionConfig, when: &Conditions) -> Vec<Plan> {
    let mut partitions: BTreeMap<(&'static str, i64), Vec<&SegmentMeta>> = BTreeMap::new();
    for s in segments {
        if s.rows < config.max_rows && !when.skip.contains(&s.id) {
            partitions
                .entry((s.table.name(), segment::partition_start(s.min_time)))
                .or_default()
                .push(s);
        }
    }
    let mut plans = Vec::new();
    for ((_, partition), mut candidates) in partitions {
        let table = candidates[0].table;
        let settled_at = partition
            .saturating_add(segment::PARTITION_NANOS)
            .saturating_add(config.settle_after.as_nanos() as i64);
        let sealed =
            when.force || (when.now_ns >= settled_at && !when.busy.contains(&(table, partition)));
        candidates.sort_by_key(|s| (s.rows, s.id));
        let chosen: Vec<&SegmentMeta> = if when.force {
            take_within(&candidates, config.max_rows, usize::MAX)
        } else if sealed {
            take_within(&candidates, config.max_rows, 4)
        } else {
            // Size tiers: from the smallest up, the first run of segments within 4× of its first.
            let mut chosen = Vec::new();
            for (i, first) in candidates.iter().enumerate() {
                let tier: Vec<&SegmentMeta> = candidates[i..]
                    .iter()
                    .copied()
                    .take_while(|s| s.rows <= first.rows.saturating_mul(4).max(1))
                    .collect();
                if tier.len() >= config.fan_in.max(2) {
                    chosen = take_within(&tier, config.max_rows, usize::MAX);
                    break;
                }
            }
            chosen
        };
        if chosen.len() >= 2 {
            let mut inputs: Vec<SegmentMeta> = chosen.into_iter().cloned().collect();
            inputs.sort_by_key(|s| s.id);
            plans.push(Plan {
                table,
                partition,
                inputs,
            });
        }
    }
    plans
}

/// The smallest segments of `sorted` (ascending by rows) whose rows add up to at most `max_rows`,
/// at most [`MAX_INPUTS`], stopping before one with more than `ratio` × the rows taken so far.
fn take_within<'a>(
    sorted: &[&'a SegmentMeta],
    max_rows: u64,
    ratio: usize,
) -> Vec<&'a SegmentMeta> {
    let mut total = 0u64;
    let mut taken = Vec::new();
    for s in sorted.iter().copied().take(MAX_INPUTS) {
        let too_big = total > 0 && s.rows > total.saturating_mul(ratio as u64);
        if total.saturating_add(s.rows) > max_rows || too_big {
            break;
        }
        total += s.rows;
        taken.push(s);
    }
    taken
}

/// Most segments one merge reads at once (each holds a batch in memory and a file open); a
/// partition with more is merged in several passes.
const MAX_INPUTS: usize = 16;

/// Rows per batch read from an input and written to the output.
const BATCH_ROWS: usize = 8192;
const OUTPUT_ROWS: usize = 65_536;

/// One input segment being read, positioned at its next row. Cursors stay in input order (oldest
/// segment first), and rows with equal sort keys are taken from the older segment first.
struct Cursor {
    reader: ParquetRecordBatchReader,
    /// Index of the current batch in the merge's `sources`.
    source: usize,
    batch_rows: usize,
    keys: Rows,
    pos: usize,
}

/// Merges `plan`'s segments into segment `id`, written beside them in their partition. Calls
/// `keep_going` between output batches and stops (removing what it wrote) when it says no.
/// Returns the new segment, durable but not yet in the manifest.
pub fn merge(plan: &Plan, id: u64, keep_going: &dyn Fn() -> bool) -> Result<SegmentMeta> {
    merge_in_batches(plan, id, keep_going, BATCH_ROWS, OUTPUT_ROWS)
}

fn merge_in_batches(
    plan: &Plan,
    id: u64,
    keep_going: &dyn Fn() -> bool,
    batch_rows: usize,
    output_rows: usize,
) -> Result<SegmentMeta> {
    let table = plan.table;
    let first = plan
        .inputs
        .first()
        .ok_or_else(|| invalid("nothing to merge"))?;
    let dir = first
        .path
        .parent()
        .ok_or_else(|| invalid("a segment path without a directory"))?
        .to_path_buf();
    // Inputs written by an older Lumen are read in today's schema (their missing columns as
    // nulls), so the merged segment is in today's schema too.
    let schema = table.schema();
    let mut max_wal_seq = 0u64;
    let mut readers = Vec::with_capacity(plan.inputs.len());
    for input in &plan.inputs {
        let (reader, seq) = open_input(input, batch_rows)?;
        max_wal_seq = max_wal_seq.max(seq);
        readers.push(reader);
    }
    let key_columns: Vec<usize> = table
        .sort_columns()
        .iter()
        .filter_map(|name| schema.index_of(name).ok())
        .collect();
    let converter = RowConverter::new(
        key_columns
            .iter()
            .map(|i| SortField::new(schema.field(*i).data_type().clone()))
            .collect(),
    )?;
    let keys_of = |batch: &RecordBatch| -> Result<Rows> {
        let columns: Vec<_> = key_columns
            .iter()
            .map(|i| batch.column(*i).clone())
            .collect();
        Ok(converter.convert_columns(&columns)?)
    };

    let mut sources: Vec<RecordBatch> = Vec::new();
    let mut cursors: Vec<Cursor> = Vec::with_capacity(readers.len());
    for mut reader in readers {
        if let Some(batch) = next_batch(&mut reader, &schema, &dir)? {
            let keys = keys_of(&batch)?;
            cursors.push(Cursor {
                reader,
                source: sources.len(),
                batch_rows: batch.num_rows(),
                keys,
                pos: 0,
            });
            sources.push(batch);
        }
    }

    if cursors.is_empty() {
        return Err(invalid("the segments to merge hold no rows"));
    }
    let props = segment::writer_properties(table, max_wal_seq)?;
    let mut writer = SegmentWriter::create(&dir, id, table, &schema, props)?;
    // Runs of consecutive rows of one source batch, in output order: (source, start, len).
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    let mut pending = 0usize;
    while !cursors.is_empty() {
        // The cursor with the smallest next row (the oldest on a tie), and the smallest next
        // (row, cursor) of all the others: the first emits every row before that in one run.
        let mut best = 0;
        for i in 1..cursors.len() {
            if cursors[i].keys.row(cursors[i].pos) < cursors[best].keys.row(cursors[best].pos) {
                best = i;
            }
        }
        let bound = (0..cursors.len())
            .filter(|i| *i != best)
            .map(|i| (cursors[i].keys.row(cursors[i].pos), i))
            .min();
        let cursor = &cursors[best];
        let start = cursor.pos;
        let mut end = start + 1;
        while end < cursor.batch_rows && bound.is_none_or(|b| (cursor.keys.row(end), best) < b) {
            end += 1;
        }
        runs.push((cursor.source, start, end - start));
        pending += end - start;
        let cursor = &mut cursors[best];
        cursor.pos = end;
        if cursor.pos == cursor.batch_rows {
            match next_batch(&mut cursor.reader, &schema, &dir)? {
                Some(batch) => {
                    cursor.keys = keys_of(&batch)?;
                    cursor.batch_rows = batch.num_rows();
                    cursor.pos = 0;
                    cursor.source = sources.len();
                    sources.push(batch);
                }
                None => {
                    // (Not swap_remove: the cursors' order settles ties.)
                    cursors.remove(best);
                }
            }
        }
        if pending >= output_rows || cursors.is_empty() {
            if !keep_going() {
                return Err(StorageError::ShuttingDown);
            }
            writer.write(&assemble(&schema, &sources, &runs, pending)?)?;
            runs.clear();
            pending = 0;
            // Only the cursors' current batches are still needed.
            let mut kept = Vec::with_capacity(cursors.len());
            for cursor in &mut cursors {
                kept.push(sources[cursor.source].clone());
                cursor.source = kept.len() - 1;
            }
            sources = kept;
        }
    }
    writer.finish()
}

fn invalid(message: &str) -> StorageError {
    StorageError::io(
        "compacting",
        std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_string()),
    )
}

/// A reader of a whole segment and the WAL seq recorded in it.
fn open_input(input: &SegmentMeta, batch_rows: usize) -> Result<(ParquetRecordBatchReader, u64)> {
    let builder = segment::reader::open(input, segment::reader::Footer::Uncached)?;
    let seq = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == "lumen.max_wal_seq"))
        .and_then(|k| k.value.as_deref()?.parse().ok())
        .unwrap_or(0);
    Ok((builder.with_batch_size(batch_rows).build()?, seq))
}

/// The next non-empty batch of a segment, in `schema`.
fn next_batch(
    reader: &mut ParquetRecordBatchReader,
    schema: &SchemaRef,
    dir: &Path,
) -> Result<Option<RecordBatch>> {
    for batch in reader.by_ref() {
        let batch = batch.map_err(|e| {
            StorageError::io(
                format!("reading a segment in {}", dir.display()),
                std::io::Error::other(e),
            )
        })?;
        if batch.num_rows() > 0 {
            return Ok(Some(schema::conform_batch(&batch, schema)?));
        }
    }
    Ok(None)
}

/// The output batch made of `runs` of `sources`' rows.
fn assemble(
    schema: &SchemaRef,
    sources: &[RecordBatch],
    runs: &[(usize, usize, usize)],
    rows: usize,
) -> Result<RecordBatch> {
    let mut columns = Vec::with_capacity(schema.fields().len());
    for c in 0..schema.fields().len() {
        let data: Vec<ArrayData> = sources.iter().map(|b| b.column(c).to_data()).collect();
        let mut out = MutableArrayData::new(data.iter().collect(), false, rows);
        for (source, start, len) in runs {
            // Offsets overflow when a string column passes 2 GiB in one batch: an error, not a panic.
            out.try_extend(*source, *start, start + len)?;
        }
        columns.push(make_array(out.freeze()));
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

#[cfg(test)]
mod tests;
