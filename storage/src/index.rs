//! The series index: one sidecar per `metrics` segment listing each series once, so a selector can
//! find the series it matches without reading every row.
//!
//! Metrics segments are sorted by `(metric_name, series_id, time)`, so the rows of one series are one contiguous
//! range. At flush, next to `<id>.parquet` the flusher writes `<id>.series` (see [`format`]): every
//! series' id, its identity (metric name, type, unit, temporality, monotonicity, scope name, point
//! and resource attributes) and its first row and row count. Loaded, a [`SeriesIndex`] also holds
//! roaring bitmaps of series ordinals per metric name, per metric descriptor and per
//! `(attribute key, value)` of the point and of the resource attributes.
//!
//! ```text
//! flush / compaction: rows in segment order ─► SegmentWriter (index Builder beside the Parquet
//!        writer) ─► <id>.series (tmp, fsync, rename) ─► manifest
//! query: load_series_index(&SegmentMeta) ─► cache hit? ─► sidecar ─► (missing / corrupt) rebuild
//!        from the segment's identity columns, log, rewrite the sidecar
//! ```
//!
//! An "entry" is a run of rows with the same `series_id` and the same identity. `series_id` hashes
//! the metric name and the attributes only, so rows of one id may differ in type, unit or scope;
//! such an id gets one entry per run of equal identity, and every entry is uniform — a reader can
//! compute a row's labels from its entry alone. Attributes are kept in their row order, stably sorted
//! by key (rows that list the same pairs in another order are one entry).
//!
//! The sidecar is an accelerator, never the source of truth: a missing or corrupt sidecar never
//! stops start-up or a query; it is rebuilt from the segment on first use.

mod build;
mod cache;
pub mod format;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use roaring::RoaringBitmap;

pub(crate) use build::Builder;
pub use cache::{WarmUp, cached, forget, load_series_index, set_cache_capacity, warm_up};
pub(crate) use cache::{remember, write_sidecar};

/// Marks an absent string (a null column value).
pub(crate) const NONE: u32 = u32::MAX;

/// The sidecar index path of a segment: `<id>.series` next to `<id>.parquet`.
pub fn sidecar_path(segment_path: &Path) -> PathBuf {
    segment_path.with_extension("series")
}

/// The non-attribute identity of a series: what decides its metric name and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct DescriptorIds {
    pub name: u32,
    pub metric_type: u32,
    pub unit: u32,
    pub temporality: u32,
    pub scope: u32,
    /// 0 false, 1 true, 2 null.
    pub monotonic: u8,
}

/// One run of rows of one series (see the module docs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub series_id: u64,
    pub descriptor: u32,
    pub first_row: u64,
    pub rows: u64,
    /// Range of `pairs` holding the point attributes.
    pub attrs: (u32, u32),
    /// Range of `pairs` holding the resource attributes.
    pub resource: (u32, u32),
}

/// The metric name, type, unit, temporality, monotonicity and scope shared by a group of series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetricDescriptor<'a> {
    /// `metric_name`.
    pub metric_name: Option<&'a str>,
    /// `metric_type` (`gauge`, `sum`, `histogram`, `exponential_histogram`, `summary`).
    pub metric_type: Option<&'a str>,
    /// `unit`.
    pub unit: Option<&'a str>,
    /// `temporality` (`delta`, `cumulative`).
    pub temporality: Option<&'a str>,
    /// `is_monotonic`.
    pub is_monotonic: Option<bool>,
    /// `scope_name`.
    pub scope_name: Option<&'a str>,
}

/// Which map column of the `metrics` table an attribute comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeColumn {
    /// `attributes` (data point attributes).
    Point,
    /// `resource_attributes`.
    Resource,
}

type ValueBitmaps = HashMap<u32, Postings>;

/// The series (ordinals) holding one `(key, value)` pair. Many values (host names, instance ids)
/// belong to one series only, so a lone ordinal is kept without a bitmap: at a million series
/// that saves most of an index's memory.
#[derive(Debug, Clone, PartialEq)]
pub enum Postings {
    /// Exactly one series.
    One(u32),
    /// Two or more series.
    Many(RoaringBitmap),
}

impl Postings {
    /// Number of series.
    pub fn len(&self) -> u64 {
        match self {
            Postings::One(_) => 1,
            Postings::Many(b) => b.len(),
        }
    }

    /// Never true (a pair is indexed only for the series holding it); for symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ordinals as a bitmap.
    pub fn to_bitmap(&self) -> RoaringBitmap {
        match self {
            Postings::One(o) => RoaringBitmap::from_iter([*o]),
            Postings::Many(b) => b.clone(),
        }
    }

    /// Adds these ordinals to `out`.
    pub fn union_into(&self, out: &mut RoaringBitmap) {
        match self {
            Postings::One(o) => {
                out.insert(*o);
            }
            Postings::Many(b) => *out |= b,
        }
    }

    /// Whether `ordinal` is one of them.
    pub fn contains(&self, ordinal: u32) -> bool {
        match self {
            Postings::One(o) => *o == ordinal,
            Postings::Many(b) => b.contains(ordinal),
        }
    }

    /// The ordinals in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        let (one, many) = match self {
            Postings::One(o) => (Some(*o), None),
            Postings::Many(b) => (None, Some(b.iter())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }

    fn add(&mut self, ordinal: u32) {
        match self {
            Postings::One(o) if *o == ordinal => {}
            Postings::One(o) => *self = Postings::Many(RoaringBitmap::from_iter([*o, ordinal])),
            Postings::Many(b) => append(b, ordinal),
        }
    }

    fn approx_bytes(&self) -> usize {
        match self {
            Postings::One(_) => 8,
            Postings::Many(b) => b.serialized_size() + 64,
        }
    }
}

/// The series of one `metrics` segment, with bitmaps of series ordinals for label lookups.
///
/// Ordinals number the entries `0..len()` in row order.
#[derive(Debug)]
pub struct SeriesIndex {
    segment_rows: u64,
    segment_bytes: u64,
    strings: Vec<Arc<str>>,
    string_ids: HashMap<Arc<str>, u32>,
    descriptors: Vec<DescriptorIds>,
    entries: Vec<Entry>,
    pairs: Vec<(u32, u32)>,
    by_descriptor: Vec<RoaringBitmap>,
    by_name: HashMap<u32, RoaringBitmap>,
    by_attribute: HashMap<u32, ValueBitmaps>,
    by_resource: HashMap<u32, ValueBitmaps>,
    /// Series with a key twice in `attributes` / `resource_attributes`.
    repeated_keys: [RoaringBitmap; 2],
    approx_bytes: usize,
    /// See [`SeriesIndex::derived`].
    derived: std::sync::OnceLock<Box<dyn std::any::Any + Send + Sync>>,
}

/// One entry of a [`SeriesIndex`]: a series and where its rows are.
#[derive(Debug, Clone, Copy)]
pub struct SeriesEntry<'a> {
    index: &'a SeriesIndex,
    entry: &'a Entry,
}

impl<'a> SeriesEntry<'a> {
    /// The rows' `series_id`.
    pub fn series_id(&self) -> u64 {
        self.entry.series_id
    }

    /// First row of the series in the segment (0-based, across row groups).
    pub fn first_row(&self) -> u64 {
        self.entry.first_row
    }

    /// How many consecutive rows the series has from `first_row`.
    pub fn rows(&self) -> u64 {
        self.entry.rows
    }

    /// Index of the series' descriptor in [`SeriesIndex::descriptors`].
    pub fn descriptor_ordinal(&self) -> usize {
        self.entry.descriptor as usize
    }

    /// Metric name, type, unit, temporality, monotonicity and scope.
    pub fn descriptor(&self) -> MetricDescriptor<'a> {
        self.index.descriptor_at(self.entry.descriptor as usize)
    }

    /// Point attributes `(key, value)`, stably sorted by key; `None` is a key sent without a value.
    pub fn attributes(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        self.index.pairs_in(self.entry.attrs)
    }

    /// Resource attributes, as [`SeriesEntry::attributes`].
    pub fn resource_attributes(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        self.index.pairs_in(self.entry.resource)
    }
}

impl SeriesIndex {
    /// Number of entries (series runs).
    pub fn len(&self) -> u32 {
        self.entries.len() as u32
    }

    /// True when the segment has no rows.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Rows of the segment the index describes.
    pub fn segment_rows(&self) -> u64 {
        self.segment_rows
    }

    /// Every ordinal.
    pub fn all(&self) -> RoaringBitmap {
        let mut all = RoaringBitmap::new();
        all.insert_range(0..self.len());
        all
    }

    /// The entry with ordinal `ordinal`.
    pub fn series(&self, ordinal: u32) -> Option<SeriesEntry<'_>> {
        self.entries
            .get(ordinal as usize)
            .map(|entry| SeriesEntry { index: self, entry })
    }

    /// Every distinct descriptor, with the ordinals of its series.
    pub fn descriptors(&self) -> impl Iterator<Item = (MetricDescriptor<'_>, &RoaringBitmap)> + '_ {
        self.by_descriptor
            .iter()
            .enumerate()
            .map(|(i, bitmap)| (self.descriptor_at(i), bitmap))
    }

    /// Ordinals of the series whose `metric_name` is `name`.
    pub fn series_with_metric_name(&self, name: &str) -> Option<&RoaringBitmap> {
        self.string_ids
            .get(name)
            .and_then(|id| self.by_name.get(id))
    }

    /// Every distinct attribute key of `column`.
    pub fn attribute_keys(&self, column: AttributeColumn) -> impl Iterator<Item = &str> + '_ {
        self.map_of(column)
            .keys()
            .map(|k| self.string(*k).unwrap_or(""))
    }

    /// Every distinct non-null value of attribute `key` of `column`, with the ordinals of the series
    /// holding that pair.
    pub fn attribute_values(
        &self,
        column: AttributeColumn,
        key: &str,
    ) -> impl Iterator<Item = (&str, &Postings)> + '_ {
        self.string_ids
            .get(key)
            .and_then(|k| self.map_of(column).get(k))
            .into_iter()
            .flat_map(move |values| {
                values
                    .iter()
                    .map(move |(v, bitmap)| (self.string(*v).unwrap_or(""), bitmap))
            })
    }

    /// Ordinals of the series whose `column` has `key` = `value`.
    pub fn series_with_attribute(
        &self,
        column: AttributeColumn,
        key: &str,
        value: &str,
    ) -> Option<&Postings> {
        let k = self.string_ids.get(key)?;
        let v = self.string_ids.get(value)?;
        self.map_of(column).get(k)?.get(v)
    }

    /// Ordinals of the series having attribute `key` in `column` with any non-null value.
    pub fn series_with_attribute_key(&self, column: AttributeColumn, key: &str) -> RoaringBitmap {
        let mut out = RoaringBitmap::new();
        for (_, postings) in self.attribute_values(column, key) {
            postings.union_into(&mut out);
        }
        out
    }

    /// Ordinals of the series listing some key of `column` more than once.
    pub fn series_with_repeated_keys(&self, column: AttributeColumn) -> &RoaringBitmap {
        match column {
            AttributeColumn::Point => &self.repeated_keys[0],
            AttributeColumn::Resource => &self.repeated_keys[1],
        }
    }

    /// A value a reader computes once from this index and keeps with it, for as long as the index
    /// is cached (the query layer keeps the Prometheus names of the descriptors here, so a query
    /// does not rebuild them per segment). One type per index: `None` when another type took the
    /// slot first (compute it yourself then).
    pub fn derived<T: std::any::Any + Send + Sync>(
        &self,
        make: impl FnOnce(&SeriesIndex) -> T,
    ) -> Option<&T> {
        self.derived
            .get_or_init(|| Box::new(make(self)))
            .downcast_ref::<T>()
    }

    /// The value [`SeriesIndex::derived`] keeps, if it was made already and is a `T`.
    pub fn derived_if_made<T: std::any::Any + Send + Sync>(&self) -> Option<&T> {
        self.derived.get().and_then(|d| d.downcast_ref::<T>())
    }

    /// Approximate memory held, in bytes (what the cache budgets by; not counting
    /// [`SeriesIndex::derived`]).
    pub fn approx_bytes(&self) -> usize {
        self.approx_bytes
    }

    fn map_of(&self, column: AttributeColumn) -> &HashMap<u32, ValueBitmaps> {
        match column {
            AttributeColumn::Point => &self.by_attribute,
            AttributeColumn::Resource => &self.by_resource,
        }
    }

    fn string(&self, id: u32) -> Option<&str> {
        self.strings.get(id as usize).map(|s| &**s)
    }

    fn descriptor_at(&self, i: usize) -> MetricDescriptor<'_> {
        let Some(d) = self.descriptors.get(i) else {
            return MetricDescriptor {
                metric_name: None,
                metric_type: None,
                unit: None,
                temporality: None,
                is_monotonic: None,
                scope_name: None,
            };
        };
        MetricDescriptor {
            metric_name: self.string(d.name),
            metric_type: self.string(d.metric_type),
            unit: self.string(d.unit),
            temporality: self.string(d.temporality),
            is_monotonic: match d.monotonic {
                0 => Some(false),
                1 => Some(true),
                _ => None,
            },
            scope_name: self.string(d.scope),
        }
    }

    fn pairs_in(
        &self,
        (start, len): (u32, u32),
    ) -> impl Iterator<Item = (&str, Option<&str>)> + '_ {
        let start = start as usize;
        let end = start.saturating_add(len as usize).min(self.pairs.len());
        self.pairs
            .get(start.min(end)..end)
            .unwrap_or(&[])
            .iter()
            .map(|(k, v)| (self.string(*k).unwrap_or(""), self.string(*v)))
    }

    /// Assembles an index from its parts (validated by the caller) and builds the bitmaps.
    pub(crate) fn assemble(
        segment_rows: u64,
        segment_bytes: u64,
        strings: Vec<Arc<str>>,
        descriptors: Vec<DescriptorIds>,
        entries: Vec<Entry>,
        pairs: Vec<(u32, u32)>,
    ) -> SeriesIndex {
        let string_ids: HashMap<Arc<str>, u32> = strings
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
        let mut by_descriptor = vec![RoaringBitmap::new(); descriptors.len()];
        let mut by_name: HashMap<u32, RoaringBitmap> = HashMap::new();
        let mut by_attribute: HashMap<u32, ValueBitmaps> = HashMap::new();
        let mut by_resource: HashMap<u32, ValueBitmaps> = HashMap::new();
        let mut repeated_keys = [RoaringBitmap::new(), RoaringBitmap::new()];
        let mut keys = Vec::new();
        for (ordinal, e) in entries.iter().enumerate() {
            let ordinal = ordinal as u32;
            if let Some(bitmap) = by_descriptor.get_mut(e.descriptor as usize) {
                append(bitmap, ordinal);
            }
            if let Some(d) = descriptors.get(e.descriptor as usize)
                && d.name != NONE
            {
                append(by_name.entry(d.name).or_default(), ordinal);
            }
            for (slot, (range, map)) in
                [(e.attrs, &mut by_attribute), (e.resource, &mut by_resource)]
                    .into_iter()
                    .enumerate()
            {
                let start = range.0 as usize;
                let end = start.saturating_add(range.1 as usize).min(pairs.len());
                let series_pairs = pairs.get(start.min(end)..end).unwrap_or(&[]);
                if series_pairs.len() > 1 {
                    keys.clear();
                    keys.extend(series_pairs.iter().map(|(k, _)| *k));
                    keys.sort_unstable();
                    if keys.windows(2).any(|w| w[0] == w[1]) {
                        append(&mut repeated_keys[slot], ordinal);
                    }
                }
                for (k, v) in series_pairs {
                    if *v != NONE {
                        map.entry(*k)
                            .or_default()
                            .entry(*v)
                            .and_modify(|p| p.add(ordinal))
                            .or_insert(Postings::One(ordinal));
                    }
                }
            }
        }
        let mut approx_bytes = std::mem::size_of::<SeriesIndex>()
            + strings.iter().map(|s| s.len() * 2 + 48).sum::<usize>()
            + descriptors.len() * std::mem::size_of::<DescriptorIds>()
            + entries.len() * std::mem::size_of::<Entry>()
            + pairs.len() * 8;
        approx_bytes += by_descriptor
            .iter()
            .chain(by_name.values())
            .map(|b| b.serialized_size() + 32)
            .sum::<usize>();
        for map in [&by_attribute, &by_resource] {
            approx_bytes += map
                .values()
                .flat_map(|v| v.values())
                .map(|p| p.approx_bytes() + 40)
                .sum::<usize>();
        }
        SeriesIndex {
            segment_rows,
            segment_bytes,
            strings,
            string_ids,
            descriptors,
            entries,
            pairs,
            by_descriptor,
            by_name,
            by_attribute,
            by_resource,
            repeated_keys,
            approx_bytes,
            derived: std::sync::OnceLock::new(),
        }
    }
}

/// Adds `ordinal` to `bitmap`: appended when it is past the maximum (ordinals arrive in order), else
/// inserted (a pair repeated within one series).
fn append(bitmap: &mut RoaringBitmap, ordinal: u32) {
    if bitmap.try_push(ordinal).is_err() {
        bitmap.insert(ordinal);
    }
}
