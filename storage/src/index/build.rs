//! Building a [`SeriesIndex`] from `metrics` rows: at flush from the sorted batch, and as the
//! fallback from a segment file whose sidecar is missing or corrupt.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, MapArray, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::UInt64Type;

use crate::manifest::SegmentMeta;

use super::{DescriptorIds, Entry, NONE, SeriesIndex};

/// The columns an index is built from.
pub(crate) const IDENTITY_COLUMNS: &[&str] = &[
    "series_id",
    "metric_name",
    "metric_type",
    "unit",
    "temporality",
    "is_monotonic",
    "scope_name",
    "attributes",
    "resource_attributes",
];

/// Typed views of the identity columns of one batch; a missing or mistyped column reads as null.
struct Identity<'a> {
    series_id: &'a UInt64Array,
    name: Option<&'a StringArray>,
    metric_type: Option<&'a StringArray>,
    unit: Option<&'a StringArray>,
    temporality: Option<&'a StringArray>,
    monotonic: Option<&'a BooleanArray>,
    scope: Option<&'a StringArray>,
    attributes: Option<&'a MapArray>,
    resource: Option<&'a MapArray>,
}

impl<'a> Identity<'a> {
    fn of(batch: &'a RecordBatch) -> Result<Self, String> {
        let string = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_string_opt::<i32>())
        };
        let map = |name: &str| batch.column_by_name(name).and_then(|c| c.as_map_opt());
        Ok(Identity {
            series_id: batch
                .column_by_name("series_id")
                .and_then(|c| c.as_primitive_opt::<UInt64Type>())
                .ok_or("no uint64 `series_id` column")?,
            name: string("metric_name"),
            metric_type: string("metric_type"),
            unit: string("unit"),
            temporality: string("temporality"),
            monotonic: batch
                .column_by_name("is_monotonic")
                .and_then(|c| c.as_boolean_opt()),
            scope: string("scope_name"),
            attributes: map("attributes"),
            resource: map("resource_attributes"),
        })
    }

    /// True when rows `a` and `b` have byte-identical identity columns (the common case between
    /// neighbouring rows of one series; a `false` is settled by the slower normalised comparison).
    fn rows_equal(&self, a: usize, b: usize) -> bool {
        let strings = [
            self.name,
            self.metric_type,
            self.unit,
            self.temporality,
            self.scope,
        ];
        strings.iter().all(|s| str_eq(*s, a, b))
            && self.monotonic.is_none_or(|m| {
                m.is_valid(a) == m.is_valid(b) && (!m.is_valid(a) || m.value(a) == m.value(b))
            })
            && map_eq(self.attributes, a, b)
            && map_eq(self.resource, a, b)
    }
}

fn str_at(a: Option<&StringArray>, i: usize) -> Option<&str> {
    a.filter(|a| a.is_valid(i)).map(|a| a.value(i))
}

fn str_eq(a: Option<&StringArray>, i: usize, j: usize) -> bool {
    str_at(a, i) == str_at(a, j)
}

/// The `(key, value)` entries of row `i` of a map column.
fn map_entries(map: Option<&MapArray>, i: usize) -> impl Iterator<Item = (&str, Option<&str>)> {
    let parts = map.filter(|m| m.is_valid(i)).and_then(|m| {
        let keys = m.keys().as_string_opt::<i32>()?;
        let values = m.values().as_string_opt::<i32>()?;
        let offsets = m.value_offsets();
        let start = usize::try_from(*offsets.get(i)?).ok()?;
        let end = usize::try_from(*offsets.get(i + 1)?).ok()?;
        Some((keys, values, start..end))
    });
    parts.into_iter().flat_map(|(keys, values, range)| {
        range.map(move |j| {
            let key = if keys.is_valid(j) { keys.value(j) } else { "" };
            (key, values.is_valid(j).then(|| values.value(j)))
        })
    })
}

fn map_eq(map: Option<&MapArray>, a: usize, b: usize) -> bool {
    map_entries(map, a).eq(map_entries(map, b))
}

/// Accumulates entries row by row; rows must come in segment order.
#[derive(Default)]
pub(crate) struct Builder {
    strings: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32>,
    descriptors: Vec<DescriptorIds>,
    descriptor_ids: HashMap<DescriptorIds, u32>,
    entries: Vec<Entry>,
    pairs: Vec<(u32, u32)>,
    rows: u64,
}

impl Builder {
    fn intern(&mut self, s: Option<&str>) -> Result<u32, String> {
        let Some(s) = s else { return Ok(NONE) };
        if let Some(id) = self.ids.get(s) {
            return Ok(*id);
        }
        let id = u32::try_from(self.strings.len())
            .ok()
            .filter(|id| *id != NONE)
            .ok_or("too many distinct strings")?;
        let s: Arc<str> = Arc::from(s);
        self.strings.push(s.clone());
        self.ids.insert(s, id);
        Ok(id)
    }

    /// Interns row `i`'s map entries into `scratch`, stably sorted by key.
    fn intern_map(
        &mut self,
        map: Option<&MapArray>,
        i: usize,
        out: &mut Vec<(u32, u32)>,
    ) -> Result<(), String> {
        out.clear();
        for (k, v) in map_entries(map, i) {
            let k = self.intern(Some(k))?;
            let v = self.intern(v)?;
            out.push((k, v));
        }
        let strings = &self.strings;
        out.sort_by(|a, b| strings.get(a.0 as usize).cmp(&strings.get(b.0 as usize)));
        Ok(())
    }

    fn descriptor(&mut self, c: &Identity<'_>, i: usize) -> Result<u32, String> {
        let d = DescriptorIds {
            name: self.intern(str_at(c.name, i))?,
            metric_type: self.intern(str_at(c.metric_type, i))?,
            unit: self.intern(str_at(c.unit, i))?,
            temporality: self.intern(str_at(c.temporality, i))?,
            scope: self.intern(str_at(c.scope, i))?,
            monotonic: match c.monotonic.filter(|m| m.is_valid(i)).map(|m| m.value(i)) {
                Some(false) => 0,
                Some(true) => 1,
                None => 2,
            },
        };
        if let Some(id) = self.descriptor_ids.get(&d) {
            return Ok(*id);
        }
        let id = u32::try_from(self.descriptors.len()).map_err(|_| "too many descriptors")?;
        self.descriptors.push(d);
        self.descriptor_ids.insert(d, id);
        Ok(id)
    }

    fn pairs_of(&self, (start, len): (u32, u32)) -> &[(u32, u32)] {
        let start = start as usize;
        self.pairs.get(start..start + len as usize).unwrap_or(&[])
    }

    /// Adds the rows of `batch` (the next rows of the segment).
    pub(crate) fn add_batch(&mut self, batch: &RecordBatch) -> Result<(), String> {
        let c = Identity::of(batch)?;
        let mut attrs = Vec::new();
        let mut resource = Vec::new();
        for i in 0..batch.num_rows() {
            let series_id = c.series_id.value(i);
            let row = self.rows;
            self.rows += 1;
            let continues = self
                .entries
                .last()
                .is_some_and(|e| e.series_id == series_id);
            if continues && i > 0 && c.rows_equal(i - 1, i) {
                if let Some(last) = self.entries.last_mut() {
                    last.rows += 1;
                }
                continue;
            }
            let descriptor = self.descriptor(&c, i)?;
            self.intern_map(c.attributes, i, &mut attrs)?;
            self.intern_map(c.resource, i, &mut resource)?;
            if let Some(last) = self.entries.last()
                && continues
                && last.descriptor == descriptor
                && self.pairs_of(last.attrs) == attrs.as_slice()
                && self.pairs_of(last.resource) == resource.as_slice()
            {
                if let Some(last) = self.entries.last_mut() {
                    last.rows += 1;
                }
                continue;
            }
            if u32::try_from(self.entries.len()).is_err() {
                return Err("too many series for one index".into());
            }
            let attrs_range = self.append_pairs(&attrs)?;
            let resource_range = self.append_pairs(&resource)?;
            self.entries.push(Entry {
                series_id,
                descriptor,
                first_row: row,
                rows: 1,
                attrs: attrs_range,
                resource: resource_range,
            });
        }
        Ok(())
    }

    fn append_pairs(&mut self, pairs: &[(u32, u32)]) -> Result<(u32, u32), String> {
        let start = u32::try_from(self.pairs.len()).map_err(|_| "too many attributes")?;
        let len = u32::try_from(pairs.len()).map_err(|_| "too many attributes")?;
        start.checked_add(len).ok_or("too many attributes")?;
        self.pairs.extend_from_slice(pairs);
        Ok((start, len))
    }

    /// The finished index of a segment file of `segment_bytes` bytes.
    pub(crate) fn finish(self, segment_bytes: u64) -> SeriesIndex {
        SeriesIndex::assemble(
            self.rows,
            segment_bytes,
            self.strings,
            self.descriptors,
            self.entries,
            self.pairs,
        )
    }
}

impl SeriesIndex {
    /// Builds the index of a segment from its rows, in segment order (the sorted flush batch).
    pub fn from_batches<'a>(
        batches: impl IntoIterator<Item = &'a RecordBatch>,
        segment_bytes: u64,
    ) -> Result<SeriesIndex, String> {
        let mut builder = Builder::default();
        for batch in batches {
            builder.add_batch(batch)?;
        }
        Ok(builder.finish(segment_bytes))
    }

    /// Builds the index of a segment by reading its identity columns (the fallback when the sidecar
    /// is missing or unusable).
    pub fn from_segment(meta: &SegmentMeta) -> Result<SeriesIndex, String> {
        let path = &meta.path;
        let builder = crate::segment::reader::open(meta, crate::segment::reader::Footer::Uncached)
            .map_err(|e| e.to_string())?;
        let bytes = std::fs::metadata(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?
            .len();
        let mask = crate::segment::reader::root_projection(builder.parquet_schema(), |name| {
            IDENTITY_COLUMNS.contains(&name)
        });
        let reader = builder
            .with_projection(mask)
            .with_batch_size(65_536)
            .build()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut index = Builder::default();
        for batch in reader {
            let batch = batch.map_err(|e| format!("{}: {e}", path.display()))?;
            index.add_batch(&batch)?;
        }
        Ok(index.finish(bytes))
    }
}
