//! The sidecar file format (`<id>.series`), version 1.
//!
//! Integers are LEB128 varints unless said otherwise; a string id `s` is written as `s + 1` where
//! it may be null (0 = null).
//!
//! ```text
//! magic         8 bytes "LUMENSIX"
//! version       u32 LE  1
//! segment_rows  varint  rows of the segment the index describes
//! segment_bytes varint  size of the segment file (a sidecar of another file is rejected)
//! strings       n, then n × (len, UTF-8 bytes)                 every distinct string, once
//! descriptors   n, then n × (name, type, unit, temporality, scope: nullable string ids;
//!                            monotonic: 1 byte, 0 false / 1 true / 2 null)
//! entries       n, then n × (series_id u64 LE, descriptor, rows, n_attrs, n_resource,
//!                            (key id, nullable value id) × (n_attrs + n_resource))
//! crc32         u32 LE  of every byte before it
//! ```
//!
//! Entries tile the segment in row order: the first starts at row 0 and each where the previous
//! ended, so first rows are not stored; the rows must add up to `segment_rows`. Anything else — a
//! short file, a bad checksum, an id out of range — makes [`decode`] fail, and the caller rebuilds.

use std::sync::Arc;

use super::{DescriptorIds, Entry, NONE, SeriesIndex};

const MAGIC: &[u8; 8] = b"LUMENSIX";
const VERSION: u32 = 1;

/// Serialises `index`; fails only for an index too large for the format.
pub fn encode(index: &SeriesIndex) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(
        64 + index.strings.iter().map(|s| s.len() + 2).sum::<usize>()
            + index.entries.len() * 16
            + index.pairs.len() * 4,
    );
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    put(&mut out, index.segment_rows);
    put(&mut out, index.segment_bytes);
    put(&mut out, index.strings.len() as u64);
    for s in &index.strings {
        put(&mut out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }
    put(&mut out, index.descriptors.len() as u64);
    for d in &index.descriptors {
        for id in [d.name, d.metric_type, d.unit, d.temporality, d.scope] {
            put(&mut out, nullable(id));
        }
        out.push(d.monotonic);
    }
    put(&mut out, index.entries.len() as u64);
    let mut next_row = 0u64;
    for e in &index.entries {
        if e.first_row != next_row {
            return Err("entries do not tile the segment".into());
        }
        next_row = e.first_row.saturating_add(e.rows);
        out.extend_from_slice(&e.series_id.to_le_bytes());
        put(&mut out, u64::from(e.descriptor));
        put(&mut out, e.rows);
        put(&mut out, u64::from(e.attrs.1));
        put(&mut out, u64::from(e.resource.1));
        for range in [e.attrs, e.resource] {
            for (k, v) in index.pairs_slice(range) {
                put(&mut out, u64::from(*k));
                put(&mut out, nullable(*v));
            }
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// A string id as written where it may be null.
fn nullable(id: u32) -> u64 {
    if id == NONE { 0 } else { u64::from(id) + 1 }
}

/// Parses a sidecar, checking its checksum and every id and row range.
pub fn decode(bytes: &[u8]) -> Result<SeriesIndex, String> {
    let body_len = bytes.len().checked_sub(4).ok_or("file too short")?;
    let (body, crc) = bytes.split_at(body_len);
    let crc = u32::from_le_bytes(crc.try_into().map_err(|_| "file too short")?);
    if crc32fast::hash(body) != crc {
        return Err("checksum mismatch".into());
    }
    let mut r = Reader {
        bytes: body,
        pos: 0,
    };
    if r.take(8)? != MAGIC {
        return Err("not a series index (bad magic)".into());
    }
    let version = u32::from_le_bytes(r.fixed::<4>()?);
    if version != VERSION {
        return Err(format!(
            "format version {version} is not supported (this build reads {VERSION})"
        ));
    }
    let segment_rows = r.varint()?;
    let segment_bytes = r.varint()?;

    let n_strings = r.count(1)?;
    let mut strings: Vec<Arc<str>> = Vec::with_capacity(n_strings);
    for _ in 0..n_strings {
        let len = r.count(1)?;
        let s = std::str::from_utf8(r.take(len)?).map_err(|_| "a string is not UTF-8")?;
        strings.push(Arc::from(s));
    }
    let string = |id: u64| -> Result<u32, String> {
        match usize::try_from(id) {
            Ok(i) if i < n_strings => Ok(i as u32),
            _ => Err("a string id is out of range".into()),
        }
    };
    let nullable_string =
        |id: u64| -> Result<u32, String> { if id == 0 { Ok(NONE) } else { string(id - 1) } };

    let n_descriptors = r.count(6)?;
    let mut descriptors = Vec::with_capacity(n_descriptors);
    for _ in 0..n_descriptors {
        let d = DescriptorIds {
            name: nullable_string(r.varint()?)?,
            metric_type: nullable_string(r.varint()?)?,
            unit: nullable_string(r.varint()?)?,
            temporality: nullable_string(r.varint()?)?,
            scope: nullable_string(r.varint()?)?,
            monotonic: r.fixed::<1>()?[0],
        };
        if d.monotonic > 2 {
            return Err("a descriptor is out of range".into());
        }
        descriptors.push(d);
    }

    let n_entries = r.count(12)?;
    let mut entries = Vec::with_capacity(n_entries);
    let mut pairs = Vec::new();
    let mut next_row = 0u64;
    for _ in 0..n_entries {
        let series_id = u64::from_le_bytes(r.fixed::<8>()?);
        let descriptor = u32::try_from(r.varint()?)
            .ok()
            .filter(|d| (*d as usize) < n_descriptors)
            .ok_or("an entry is out of range")?;
        let rows = r.varint()?;
        let first_row = next_row;
        next_row = first_row
            .checked_add(rows)
            .filter(|end| rows > 0 && *end <= segment_rows)
            .ok_or("an entry is out of range")?;
        let n_attrs = r.count(2)?;
        let n_resource = r.count(2)?;
        let mut ranges = [(0u32, 0u32); 2];
        for (slot, n) in ranges.iter_mut().zip([n_attrs, n_resource]) {
            r.check(n, 2)?;
            let start = u32::try_from(pairs.len()).map_err(|_| "too many attributes")?;
            for _ in 0..n {
                let k = string(r.varint()?)?;
                let v = nullable_string(r.varint()?)?;
                pairs.push((k, v));
            }
            *slot = (start, u32::try_from(n).map_err(|_| "too many attributes")?);
        }
        entries.push(Entry {
            series_id,
            descriptor,
            first_row,
            rows,
            attrs: ranges[0],
            resource: ranges[1],
        });
    }
    if next_row != segment_rows {
        return Err(format!("entries cover {next_row} of {segment_rows} rows"));
    }
    if r.pos != body.len() {
        return Err("trailing bytes".into());
    }
    Ok(SeriesIndex::assemble(
        segment_rows,
        segment_bytes,
        strings,
        descriptors,
        entries,
        pairs,
    ))
}

impl SeriesIndex {
    fn pairs_slice(&self, (start, len): (u32, u32)) -> &[(u32, u32)] {
        let start = start as usize;
        self.pairs
            .get(start..start.saturating_add(len as usize))
            .unwrap_or(&[])
    }

    /// Size of the segment file the index was built from.
    pub fn segment_bytes(&self) -> u64 {
        self.segment_bytes
    }
}

/// Appends `v` as an LEB128 varint.
fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or("file too short")?;
        let out = self.bytes.get(self.pos..end).ok_or("file too short")?;
        self.pos = end;
        Ok(out)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let [b] = self.fixed::<1>()?;
            v |= u64::from(b & 0x7f).checked_shl(shift).ok_or("bad varint")?;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("bad varint".into())
    }

    /// Fails unless `n` items of at least `size` bytes each can still follow (so a corrupt count
    /// cannot make the decoder reserve absurd amounts of memory).
    fn check(&self, n: usize, size: usize) -> Result<(), String> {
        match n.checked_mul(size) {
            Some(needed) if needed <= self.bytes.len() - self.pos => Ok(()),
            _ => Err("a count exceeds the file size".into()),
        }
    }

    /// A count of items of at least `size` bytes each.
    fn count(&mut self, size: usize) -> Result<usize, String> {
        let n = usize::try_from(self.varint()?).map_err(|_| "a count exceeds the file size")?;
        self.check(n, size)?;
        Ok(n)
    }
}
