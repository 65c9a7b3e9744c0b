//! Reading only the series a selector can match, through a segment's series index
//! ([`lumen_storage::index`]).
//!
//! For one `metrics` segment:
//!
//! 1. **Names.** Every distinct metric descriptor of the segment (name, type, unit, temporality,
//!    monotonicity, scope) maps to the Prometheus names the OTLP mapping gives it
//!    ([`SeriesShape`]: `_total`, unit suffixes, `_bucket`/`_sum`/`_count`…). Descriptors with no
//!    name the `__name__` matchers accept drop out with all their series (one bitmap each).
//! 2. **Bitmaps.** A label matcher that does not match the empty string needs its label set: its
//!    candidates are the series holding an attribute whose key is the label (or sanitises to it)
//!    with a value the matcher accepts — in the point attributes (sample labels) or the resource
//!    attributes (`target_info` labels), plus for `job` and `instance` the resource attributes they
//!    come from. Series where two keys sanitise to one label (their values are joined) are kept as
//!    candidates. `le` and `quantile` are made per point and never narrow the set here.
//! 3. **Labels.** Each remaining candidate's label sets are computed once from the index (no rows
//!    read) and checked against every matcher, `le`/`quantile` counting as "any value".
//! 4. **Rows.** Only the row ranges of the surviving series are read (a parquet `RowSelection`
//!    over the row groups that hold them, pages skipped through the page index), and only the
//!    value columns; the identity columns are rebuilt from the index, so the rows go through the
//!    very same mapping as a full scan ([`super::naming`]) and give identical series.
//!
//! Steps 1–3 only ever drop series that cannot match, so the final filter by the matchers (in the
//! caller) sees a subset of the full scan's rows that contains every matching one.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, MapBuilder, RecordBatch, StringArray, StringBuilder, UInt32Array,
};
use arrow::compute::take;
use lumen_storage::segment::reader::Footer;
use lumen_storage::{
    AttributeColumn, Postings, RoaringBitmap, SegmentMeta, SeriesEntry, SeriesIndex,
};
use parquet::arrow::arrow_reader::{RowSelection, RowSelector};
use promql_parser::label::{MatchOp, Matcher, Matchers};

use super::error::PromqlError;
use super::naming::{SeriesShape, TARGET_INFO, sanitize_label_name};
use super::value::METRIC_NAME;

/// Identity columns: rebuilt from the index instead of read.
const IDENTITY_COLUMNS: &[&str] = &[
    "metric_name",
    "unit",
    "metric_type",
    "temporality",
    "is_monotonic",
    "attributes",
    "resource_attributes",
    "scope_name",
];

/// What one indexed read selected (for tests and logs).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct IndexedRead {
    /// Series (index entries) whose rows were read.
    pub series: u64,
    /// Rows read.
    pub rows: u64,
}

/// Whether a label set about which only some labels are known can satisfy `matchers`.
/// `value_of(name)` is `Some(value)` (`""` when unset) for a known label, `None` for one that may
/// take any value.
pub(super) fn could_match<'a>(
    matchers: &Matchers,
    value_of: &dyn Fn(&str) -> Option<&'a str>,
) -> bool {
    let group = |ms: &[Matcher]| {
        ms.iter()
            .all(|m| value_of(&m.name).is_none_or(|v| m.is_match(v)))
    };
    group(&matchers.matchers)
        && (matchers.or_matchers.is_empty() || matchers.or_matchers.iter().any(|g| group(g)))
}

/// Whether some name of `shape` can satisfy the `__name__` matchers.
pub(super) fn name_could_match(shape: &SeriesShape, matchers: &Matchers) -> bool {
    shape.names().iter().any(|n| {
        could_match(matchers, &|label| {
            (label == METRIC_NAME).then_some(n.as_str())
        })
    })
}

/// The attributes of an index entry as the mapping takes them: pairs with a value.
pub(super) fn pairs(
    it: impl Iterator<Item = (impl AsRef<str>, Option<impl AsRef<str>>)>,
) -> Vec<(String, String)> {
    it.filter_map(|(k, v)| v.map(|v| (k.as_ref().to_string(), v.as_ref().to_string())))
        .collect()
}

/// Receives the rows an indexed read selects.
pub(super) trait IndexedRows {
    /// The columns to read for rows of `entries` (the selected series, in row order), and which
    /// entries' rows to read at all. Identity columns are never read: [`identity_batch`] and
    /// [`with_identity`] rebuild them on demand.
    fn plan(&mut self, entries: &[SeriesEntry<'_>]) -> (Vec<&'static str>, Vec<bool>);

    /// A batch of the columns asked for; `owners[i]` is the index in `entries` of row `i`'s series.
    fn rows(
        &mut self,
        batch: &RecordBatch,
        owners: &UInt32Array,
        entries: &[SeriesEntry<'_>],
    ) -> Result<(), PromqlError>;

    /// Whether the read must stop now (past its deadline: a `timeout` error).
    fn check(&self) -> Result<(), PromqlError> {
        Ok(())
    }

    /// Whether the read may only use what is in memory (a segment footer not cached stops it
    /// with a `timeout` error, see `MetricsTableSource::within_budget`).
    fn in_memory_only(&self) -> bool {
        false
    }
}

/// Candidates tested between two deadline checks in [`select_series`].
const CHECK_EVERY: u64 = 1024;

/// Reads the rows of `segment` that may belong to a series `matchers` selects into `sink`.
pub(super) fn read_indexed(
    index: &SeriesIndex,
    segment: &SegmentMeta,
    matchers: &Matchers,
    sink: &mut dyn IndexedRows,
) -> Result<IndexedRead, PromqlError> {
    let selected = select_series(index, matchers, &|| sink.check())?;
    if selected.is_empty() {
        return Ok(IndexedRead::default());
    }
    let entries: Vec<SeriesEntry<'_>> = selected.iter().filter_map(|o| index.series(o)).collect();
    let (columns, read_entry) = sink.plan(&entries);
    sink.check()?;
    let to_read: Vec<u32> = (0..entries.len() as u32)
        .filter(|&j| read_entry.get(j as usize).copied().unwrap_or(true))
        .collect();
    if to_read.is_empty() {
        return Ok(IndexedRead {
            series: entries.len() as u64,
            rows: 0,
        });
    }
    let err = |e: &dyn std::fmt::Display| {
        PromqlError::Source(format!("segment {}: {e}", segment.path.display()))
    };
    let footer = if sink.in_memory_only() {
        Footer::CachedOnly
    } else {
        Footer::Cached
    };
    let builder = lumen_storage::segment::reader::open(segment, footer)?;
    let group_rows: Vec<u64> = builder
        .metadata()
        .row_groups()
        .iter()
        .map(|g| u64::try_from(g.num_rows()).unwrap_or(0))
        .collect();
    let ranges: Vec<(u64, u64)> = merge_ranges(
        to_read
            .iter()
            .map(|&j| (entries[j as usize].first_row(), entries[j as usize].rows())),
    );
    let (row_groups, selectors) = row_selection(&group_rows, &ranges);
    let mask = lumen_storage::segment::root_projection(builder.parquet_schema(), |name| {
        columns.contains(&name) && !IDENTITY_COLUMNS.contains(&name)
    });
    let reader = builder
        .with_projection(mask)
        .with_row_groups(row_groups)
        .with_row_selection(RowSelection::from(selectors))
        .with_batch_size(ROWS_PER_BATCH)
        .build()
        .map_err(|e| err(&e))?;

    // Rows arrive in the order of the selected entries; `cursor` says whose rows come next.
    let mut cursor = to_read.iter().map(|&j| (j, entries[j as usize].rows()));
    let mut current: Option<(u32, u64)> = cursor.next();
    let mut read = IndexedRead {
        series: entries.len() as u64,
        rows: 0,
    };
    for batch in reader {
        let batch = batch.map_err(|e| err(&e))?;
        let mut owners = Vec::with_capacity(batch.num_rows());
        while owners.len() < batch.num_rows() {
            let Some((j, left)) = current.as_mut() else {
                break; // More rows than the index describes: ignore them rather than misattribute.
            };
            let take_n = (*left).min((batch.num_rows() - owners.len()) as u64);
            owners.extend(std::iter::repeat_n(*j, take_n as usize));
            *left -= take_n;
            if *left == 0 {
                current = cursor.next();
            }
        }
        let batch = batch.slice(0, owners.len());
        read.rows += batch.num_rows() as u64;
        sink.rows(&batch, &UInt32Array::from(owners), &entries)?;
    }
    Ok(read)
}

/// Rows decoded per batch of an indexed read (larger than the reader's default: the columns read
/// are narrow, and every batch has a fixed cost).
const ROWS_PER_BATCH: usize = 65_536;

/// An [`IndexedRows`] handing every row, with its identity columns, to a closure: the rows as a
/// full scan would see them.
#[cfg(test)]
pub(super) struct MappedRows<'a> {
    pub columns: Vec<&'static str>,
    pub each: &'a mut dyn FnMut(&RecordBatch),
    identity: Option<RecordBatch>,
}

#[cfg(test)]
impl<'a> MappedRows<'a> {
    pub(super) fn new(columns: Vec<&'static str>, each: &'a mut dyn FnMut(&RecordBatch)) -> Self {
        MappedRows {
            columns,
            each,
            identity: None,
        }
    }
}

#[cfg(test)]
impl IndexedRows for MappedRows<'_> {
    fn plan(&mut self, entries: &[SeriesEntry<'_>]) -> (Vec<&'static str>, Vec<bool>) {
        self.identity = None;
        (self.columns.clone(), vec![true; entries.len()])
    }

    fn rows(
        &mut self,
        batch: &RecordBatch,
        owners: &UInt32Array,
        entries: &[SeriesEntry<'_>],
    ) -> Result<(), PromqlError> {
        if self.identity.is_none() {
            self.identity = Some(identity_batch(entries)?);
        }
        if let Some(identity) = &self.identity {
            (self.each)(&with_identity(batch, identity, owners)?);
        }
        Ok(())
    }
}

/// What PromQL derives from a loaded series index, made once and kept with it
/// ([`SeriesIndex::derived`]): without it every query would rebuild, in every segment, the names
/// of every descriptor and the label name of every attribute key.
#[derive(Clone)]
pub(super) struct IndexExtras {
    /// The shapes of the descriptors, by descriptor ordinal.
    pub(super) shapes: Vec<SeriesShape>,
    /// Per attribute column (point, resource): label name → the attribute keys that make it (a
    /// key as it is, for remote-written series, and sanitised, for OTLP ones).
    keys_by_label: [HashMap<String, Vec<String>>; 2],
}

impl IndexExtras {
    fn of(index: &SeriesIndex) -> IndexExtras {
        let keys = |column| {
            let mut by_label: HashMap<String, Vec<String>> = HashMap::new();
            for key in index.attribute_keys(column) {
                let sanitized = sanitize_label_name(key);
                if sanitized != key {
                    by_label.entry(sanitized).or_default().push(key.to_string());
                }
                by_label
                    .entry(key.to_string())
                    .or_default()
                    .push(key.to_string());
            }
            by_label
        };
        IndexExtras {
            shapes: index
                .descriptors()
                .map(|(d, _)| SeriesShape::of(&d))
                .collect(),
            keys_by_label: [
                keys(AttributeColumn::Point),
                keys(AttributeColumn::Resource),
            ],
        }
    }

    /// The attribute keys of `column` that make label `name`.
    fn keys_for(&self, column: AttributeColumn, name: &str) -> &[String] {
        let map = match column {
            AttributeColumn::Point => &self.keys_by_label[0],
            AttributeColumn::Resource => &self.keys_by_label[1],
        };
        map.get(name).map_or(&[], Vec::as_slice)
    }
}

/// Whether the [`IndexExtras`] of `index` are made already (so [`extras`] returns at once).
pub(super) fn extras_made(index: &SeriesIndex) -> bool {
    index.derived_if_made::<IndexExtras>().is_some()
}

/// The [`IndexExtras`] of `index`.
pub(super) fn extras(index: &SeriesIndex) -> std::borrow::Cow<'_, IndexExtras> {
    match index.derived(IndexExtras::of) {
        Some(extras) => std::borrow::Cow::Borrowed(extras),
        None => std::borrow::Cow::Owned(IndexExtras::of(index)),
    }
}

/// The ordinals of the series of `index` that may satisfy `matchers` (steps 1–3 of the module docs).
///
/// `check` is called every [`CHECK_EVERY`] candidates; its error stops the selection.
pub(super) fn select_series(
    index: &SeriesIndex,
    matchers: &Matchers,
    check: &dyn Fn() -> Result<(), PromqlError>,
) -> Result<RoaringBitmap, PromqlError> {
    let extras = extras(index);
    let all_shapes = &extras.shapes;
    let mut shapes: Vec<Option<&SeriesShape>> = Vec::with_capacity(all_shapes.len());
    let mut named: Vec<&RoaringBitmap> = Vec::new();
    for ((_, series), shape) in index.descriptors().zip(all_shapes.iter()) {
        if name_could_match(shape, matchers) {
            named.push(series);
            shapes.push(Some(shape));
        } else {
            shapes.push(None);
        }
    }
    if named.iter().all(|b| b.is_empty()) {
        return Ok(RoaringBitmap::new());
    }
    check()?;
    // The label matchers usually narrow far more than the names: start from them, and let the
    // per-series check below drop series of other metrics.
    let candidates = match label_candidates(index, &extras, matchers) {
        Some(narrowed) => narrowed,
        None => {
            let mut all = RoaringBitmap::new();
            for series in named {
                all |= series;
            }
            all
        }
    };
    let with_target_info = could_match(matchers, &|label| {
        (label == METRIC_NAME).then_some(TARGET_INFO)
    });
    check()?;
    let mut selected = RoaringBitmap::new();
    for (n, ordinal) in candidates.iter().enumerate() {
        if n as u64 % CHECK_EVERY == CHECK_EVERY - 1 {
            check()?;
        }
        let Some(entry) = index.series(ordinal) else {
            continue;
        };
        let Some(Some(shape)) = shapes.get(entry.descriptor_ordinal()) else {
            continue;
        };
        let label_sets = shape.label_sets(
            pairs(entry.attributes()),
            pairs(entry.resource_attributes()),
            with_target_info,
        );
        let matches = label_sets.iter().any(|(labels, any_value)| {
            could_match(matchers, &|name| {
                if Some(name) == *any_value {
                    None
                } else {
                    Some(labels.get(name).unwrap_or(""))
                }
            })
        });
        if matches {
            selected.insert(ordinal);
        }
    }
    Ok(selected)
}

/// A set of series as the union of parts of the index, not materialised until needed: an
/// intersection only materialises its smallest operand and tests the others' members.
#[derive(Default)]
struct Union<'a> {
    postings: Vec<&'a Postings>,
    bitmaps: Vec<&'a RoaringBitmap>,
    owned: Vec<RoaringBitmap>,
}

impl Union<'_> {
    /// At least as many series as the union holds.
    fn size_bound(&self) -> u64 {
        self.postings.iter().map(|p| p.len()).sum::<u64>()
            + self.bitmaps.iter().map(|b| b.len()).sum::<u64>()
            + self.owned.iter().map(RoaringBitmap::len).sum::<u64>()
    }

    fn contains(&self, ordinal: u32) -> bool {
        self.postings.iter().any(|p| p.contains(ordinal))
            || self.bitmaps.iter().any(|b| b.contains(ordinal))
            || self.owned.iter().any(|b| b.contains(ordinal))
    }

    fn to_bitmap(&self) -> RoaringBitmap {
        let mut out = RoaringBitmap::new();
        for p in &self.postings {
            p.union_into(&mut out);
        }
        for b in &self.bitmaps {
            out |= *b;
        }
        for b in &self.owned {
            out |= b;
        }
        out
    }
}

/// The series the label matchers allow, from the bitmaps; `None` when they do not narrow anything.
fn label_candidates(
    index: &SeriesIndex,
    extras: &IndexExtras,
    matchers: &Matchers,
) -> Option<RoaringBitmap> {
    let conjunction = |ms: &[Matcher]| -> Option<RoaringBitmap> {
        let mut sets: Vec<Union<'_>> = ms
            .iter()
            .filter_map(|m| matcher_candidates(index, extras, m))
            .collect();
        if sets.is_empty() {
            return None;
        }
        sets.sort_by_key(Union::size_bound);
        let rest = sets.split_off(1);
        let smallest = sets.pop()?.to_bitmap();
        if rest.is_empty() {
            return Some(smallest);
        }
        Some(
            RoaringBitmap::from_sorted_iter(
                smallest
                    .iter()
                    .filter(|o| rest.iter().all(|u| u.contains(*o))),
            )
            .unwrap_or_default(),
        )
    };
    let mut acc = conjunction(&matchers.matchers);
    if !matchers.or_matchers.is_empty() {
        let mut any = RoaringBitmap::new();
        for group in &matchers.or_matchers {
            match conjunction(group) {
                Some(s) => any |= s,
                None => return acc, // One alternative does not narrow: the union does not either.
            }
        }
        acc = Some(match acc {
            Some(a) => a & any,
            None => any,
        });
    }
    acc
}

/// A superset of the series whose label `m.name` satisfies `m`, or `None` when `m` accepts a
/// missing label (or the label is made per point).
fn matcher_candidates<'a>(
    index: &'a SeriesIndex,
    extras: &IndexExtras,
    m: &Matcher,
) -> Option<Union<'a>> {
    if m.name == METRIC_NAME || m.name == "le" || m.name == "quantile" || m.is_match("") {
        return None;
    }
    let mut out = Union::default();
    // Point attributes make the labels of samples; resource attributes those of `target_info`.
    for column in [AttributeColumn::Point, AttributeColumn::Resource] {
        add_attribute_label(index, extras.keys_for(column, &m.name), column, m, &mut out);
    }
    match m.name.as_str() {
        "job" => {
            // `service.name`, or `service.namespace/service.name` with a non-empty namespace.
            add_matching(
                index,
                AttributeColumn::Resource,
                "service.name",
                m,
                &mut out,
            );
            if let MatchOp::Equal = m.op {
                for (slash, _) in m.value.match_indices('/') {
                    let (ns, name) = (&m.value[..slash], &m.value[slash + 1..]);
                    let pick = |key, value| {
                        index.series_with_attribute(AttributeColumn::Resource, key, value)
                    };
                    if let (Some(a), Some(b)) =
                        (pick("service.namespace", ns), pick("service.name", name))
                    {
                        out.owned.push(a.to_bitmap() & b.to_bitmap());
                    }
                }
            } else {
                out.owned.push(
                    index.series_with_attribute_key(AttributeColumn::Resource, "service.namespace"),
                );
            }
            add_bitmap(
                &mut out,
                index.series_with_repeated_keys(AttributeColumn::Resource),
            );
        }
        "instance" => {
            add_matching(
                index,
                AttributeColumn::Resource,
                "service.instance.id",
                m,
                &mut out,
            );
            add_bitmap(
                &mut out,
                index.series_with_repeated_keys(AttributeColumn::Resource),
            );
        }
        _ => {}
    }
    Some(out)
}

fn add_bitmap<'a>(out: &mut Union<'a>, bitmap: &'a RoaringBitmap) {
    if !bitmap.is_empty() {
        out.bitmaps.push(bitmap);
    }
}

/// Adds the series whose label `m.name`, made from attributes of `column`, may satisfy `m`.
/// `keys` are the attribute keys that make that label ([`IndexExtras::keys_for`]): remote-written
/// series use keys as they are, OTLP series sanitise them.
fn add_attribute_label<'a>(
    index: &'a SeriesIndex,
    keys: &[String],
    column: AttributeColumn,
    m: &Matcher,
    out: &mut Union<'a>,
) {
    for key in keys {
        add_matching(index, column, key, m, out);
    }
    // Values of keys that sanitise to the same label are joined with `;`: keep such series.
    if keys.len() > 1 {
        let holders: Vec<RoaringBitmap> = keys
            .iter()
            .map(|k| index.series_with_attribute_key(column, k))
            .collect();
        for (i, a) in holders.iter().enumerate() {
            for b in &holders[i + 1..] {
                out.owned.push(a & b);
            }
        }
    }
    if !keys.is_empty() {
        add_bitmap(out, index.series_with_repeated_keys(column));
    }
}

/// Adds the series whose attribute `key` of `column` has a value `m` accepts.
fn add_matching<'a>(
    index: &'a SeriesIndex,
    column: AttributeColumn,
    key: &str,
    m: &Matcher,
    out: &mut Union<'a>,
) {
    if let MatchOp::Equal = m.op {
        if let Some(series) = index.series_with_attribute(column, key, &m.value) {
            out.postings.push(series);
        }
        return;
    }
    for (value, series) in index.attribute_values(column, key) {
        if m.is_match(value) {
            out.postings.push(series);
        }
    }
}

/// `(first row, rows)` ranges in row order with touching ranges joined.
fn merge_ranges(ranges: impl Iterator<Item = (u64, u64)>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (start, len) in ranges {
        match out.last_mut() {
            Some((s, l)) if *s + *l == start => *l += len,
            _ => out.push((start, len)),
        }
    }
    out
}

/// The row groups holding `ranges` (sorted, disjoint, in file rows) and the selection over just
/// those groups.
fn row_selection(group_rows: &[u64], ranges: &[(u64, u64)]) -> (Vec<usize>, Vec<RowSelector>) {
    let mut groups = Vec::new();
    let mut selectors = Vec::new();
    let mut r = 0;
    let mut group_start = 0u64;
    for (g, rows) in group_rows.iter().enumerate() {
        let group_end = group_start + rows;
        let mut pos = group_start;
        let mut local = Vec::new();
        while let Some(&(start, len)) = ranges.get(r) {
            let end = start + len;
            if start >= group_end {
                break;
            }
            let (s, e) = (start.max(group_start), end.min(group_end));
            if s < e {
                if s > pos {
                    local.push(RowSelector::skip((s - pos) as usize));
                }
                local.push(RowSelector::select((e - s) as usize));
                pos = e;
            }
            if end <= group_end {
                r += 1;
            } else {
                break;
            }
        }
        if !local.is_empty() {
            if pos < group_end {
                local.push(RowSelector::skip((group_end - pos) as usize));
            }
            groups.push(g);
            selectors.extend(local);
        }
        group_start = group_end;
    }
    (groups, selectors)
}

/// One row per selected entry with its identity columns.
pub(super) fn identity_batch(entries: &[SeriesEntry<'_>]) -> Result<RecordBatch, PromqlError> {
    let strings = |f: &dyn Fn(&SeriesEntry<'_>) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(entries.iter().map(f).collect::<Vec<_>>()))
    };
    let map = |resource: bool| -> Result<ArrayRef, PromqlError> {
        let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for e in entries {
            let it: Box<dyn Iterator<Item = (&str, Option<&str>)>> = if resource {
                Box::new(e.resource_attributes())
            } else {
                Box::new(e.attributes())
            };
            for (k, v) in it {
                b.keys().append_value(k);
                b.values().append_option(v);
            }
            b.append(true)
                .map_err(|e| PromqlError::Source(format!("series index: {e}")))?;
        }
        Ok(Arc::new(b.finish()))
    };
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "metric_name",
            strings(&|e| e.descriptor().metric_name.map(str::to_string)),
        ),
        (
            "unit",
            strings(&|e| e.descriptor().unit.map(str::to_string)),
        ),
        (
            "metric_type",
            strings(&|e| e.descriptor().metric_type.map(str::to_string)),
        ),
        (
            "temporality",
            strings(&|e| e.descriptor().temporality.map(str::to_string)),
        ),
        (
            "is_monotonic",
            Arc::new(BooleanArray::from(
                entries
                    .iter()
                    .map(|e| e.descriptor().is_monotonic)
                    .collect::<Vec<_>>(),
            )),
        ),
        ("attributes", map(false)?),
        ("resource_attributes", map(true)?),
        (
            "scope_name",
            strings(&|e| e.descriptor().scope_name.map(str::to_string)),
        ),
    ];
    RecordBatch::try_from_iter(columns)
        .map_err(|e| PromqlError::Source(format!("series index: {e}")))
}

/// `batch` (value columns) plus the identity columns of each row's owner.
pub(super) fn with_identity(
    batch: &RecordBatch,
    identity: &RecordBatch,
    owners: &UInt32Array,
) -> Result<RecordBatch, PromqlError> {
    let err = |e: arrow::error::ArrowError| PromqlError::Source(format!("series index: {e}"));
    let mut columns: Vec<(String, ArrayRef)> = batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| (f.name().clone(), c.clone()))
        .collect();
    for (f, c) in identity.schema().fields().iter().zip(identity.columns()) {
        columns.push((
            f.name().clone(),
            take(c.as_ref(), owners, None).map_err(err)?,
        ));
    }
    RecordBatch::try_from_iter(columns).map_err(err)
}

#[cfg(test)]
mod tests;
