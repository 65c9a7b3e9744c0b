//! Decoded samples of plain series in segments, kept between queries.
//!
//! Dashboards and alert rules ask for the same series again and again (every refresh, every
//! evaluation). A plain series' samples in a segment never change, so once read they are kept
//! here — `(time ms, value)` with staleness markers as their NaN — and later queries take them
//! from memory instead of decompressing pages again. A [`SizedCache`] keyed by the segment
//! ([`SegmentKey`]: path, id, rows, bytes) and the series' first row; bounded by [`set_capacity`]
//! (256 MiB by default), dropping the least recently used quarter when full.
//! `lumen_sample_cache_bytes` in `/metrics` is what it holds.

use std::sync::{Arc, LazyLock};

use lumen_storage::SegmentMeta;
use lumen_storage::cache::{Eviction, SegmentKey, SizedCache};

/// A plain series' samples in one segment, in row order.
pub(super) type Samples = Arc<[(i64, f64)]>;

/// The segment, and the first row of the series in it.
type Key = (Arc<SegmentKey>, u64);

/// Bytes a cached sample and an entry are counted as.
const SAMPLE_BYTES: usize = 16;
const ENTRY_BYTES: usize = 96;

/// Bytes of samples kept unless [`set_capacity`] says otherwise.
pub const DEFAULT_CAPACITY: usize = 256 << 20;

static CACHE: LazyLock<SizedCache<Key, Samples>> = LazyLock::new(|| {
    SizedCache::new(DEFAULT_CAPACITY, Eviction::ToThreeQuarters)
        .with_gauge("lumen_sample_cache_bytes")
});

/// Sets how many bytes of samples are kept (0 turns the cache off).
pub fn set_capacity(bytes: usize) {
    CACHE.set_capacity(bytes);
}

/// The cached samples of the series starting at each of `first_rows` in `segment`.
pub(super) fn get_many(segment: &SegmentMeta, first_rows: &[Option<u64>]) -> Vec<Option<Samples>> {
    if CACHE.capacity() == 0 || first_rows.iter().all(Option::is_none) {
        return vec![None; first_rows.len()];
    }
    let segment = Arc::new(SegmentKey::of(segment));
    let keys: Vec<Option<Key>> = first_rows
        .iter()
        .map(|row| row.map(|row| (Arc::clone(&segment), row)))
        .collect();
    CACHE.get_many(keys.iter().map(Option::as_ref))
}

/// Keeps the samples of the series starting at `first_row` of `segment`.
pub(super) fn insert_many(segment: &SegmentMeta, series: Vec<(u64, Vec<(i64, f64)>)>) {
    if series.is_empty() || CACHE.capacity() == 0 {
        return;
    }
    let segment = Arc::new(SegmentKey::of(segment));
    CACHE.insert_many(series.into_iter().map(|(first_row, samples)| {
        let bytes = ENTRY_BYTES + samples.len() * SAMPLE_BYTES;
        ((Arc::clone(&segment), first_row), Arc::from(samples), bytes)
    }));
}
