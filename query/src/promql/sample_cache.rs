//! Decoded samples of plain series in segments, kept between queries.
//!
//! Dashboards and alert rules ask for the same series again and again (every refresh, every
//! evaluation). A plain series' samples in a segment never change, so once read they are kept
//! here — `(time ms, value)` with staleness markers as their NaN — and later queries take them
//! from memory instead of decompressing pages again. Keyed by the segment (path, id, rows, bytes)
//! and the series' first row; bounded by [`set_capacity`] (256 MiB by default), dropping the
//! least recently used quarter when full. `lumen_sample_cache_bytes` in `/metrics` is what it holds.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use lumen_storage::SegmentMeta;

/// A plain series' samples in one segment, in row order.
pub(super) type Samples = Arc<[(i64, f64)]>;

type Key = (PathBuf, u64, u64, u64, u64);

/// Bytes a cached sample and an entry are counted as.
const SAMPLE_BYTES: usize = 16;
const ENTRY_BYTES: usize = 96;

static CAPACITY: AtomicUsize = AtomicUsize::new(256 << 20);

#[derive(Default)]
struct Cache {
    entries: HashMap<Key, (Samples, u64)>,
    bytes: usize,
    tick: u64,
}

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(|| Mutex::new(Cache::default()));

/// Sets how many bytes of samples are kept (0 turns the cache off).
pub fn set_capacity(bytes: usize) {
    CAPACITY.store(bytes, Ordering::Relaxed);
    if let Ok(mut c) = CACHE.lock() {
        shrink(&mut c, bytes);
        metrics::gauge!("lumen_sample_cache_bytes").set(c.bytes as f64);
    }
}

fn key(segment: &SegmentMeta, first_row: u64) -> Key {
    (
        segment.path.clone(),
        segment.id,
        segment.rows,
        segment.bytes,
        first_row,
    )
}

/// The cached samples of the series starting at each of `first_rows` in `segment`.
pub(super) fn get_many(segment: &SegmentMeta, first_rows: &[Option<u64>]) -> Vec<Option<Samples>> {
    if CAPACITY.load(Ordering::Relaxed) == 0 || first_rows.iter().all(Option::is_none) {
        return vec![None; first_rows.len()];
    }
    let Ok(mut c) = CACHE.lock() else {
        return vec![None; first_rows.len()];
    };
    c.tick += 1;
    let tick = c.tick;
    let mut k = key(segment, 0);
    first_rows
        .iter()
        .map(|row| {
            let row = (*row)?;
            k.4 = row;
            c.entries.get_mut(&k).map(|(samples, used)| {
                *used = tick;
                Arc::clone(samples)
            })
        })
        .collect()
}

/// Keeps the samples of the series starting at `first_row` of `segment`.
pub(super) fn insert_many(segment: &SegmentMeta, series: Vec<(u64, Vec<(i64, f64)>)>) {
    let capacity = CAPACITY.load(Ordering::Relaxed);
    if capacity == 0 || series.is_empty() {
        return;
    }
    let Ok(mut c) = CACHE.lock() else { return };
    c.tick += 1;
    let tick = c.tick;
    for (first_row, samples) in series {
        let size = ENTRY_BYTES + samples.len() * SAMPLE_BYTES;
        if let Some((old, _)) = c
            .entries
            .insert(key(segment, first_row), (Arc::from(samples), tick))
        {
            c.bytes -= ENTRY_BYTES + old.len() * SAMPLE_BYTES;
        }
        c.bytes += size;
    }
    if c.bytes > capacity {
        shrink(&mut c, capacity / 4 * 3);
    }
    metrics::gauge!("lumen_sample_cache_bytes").set(c.bytes as f64);
}

/// Drops least recently used entries until at most `target` bytes are held.
fn shrink(c: &mut Cache, target: usize) {
    if c.bytes <= target {
        return;
    }
    let mut by_age: Vec<(u64, Key)> = c
        .entries
        .iter()
        .map(|(k, (_, used))| (*used, k.clone()))
        .collect();
    by_age.sort_unstable_by_key(|(used, _)| *used);
    for (_, k) in by_age {
        if c.bytes <= target {
            break;
        }
        if let Some((samples, _)) = c.entries.remove(&k) {
            c.bytes -= ENTRY_BYTES + samples.len() * SAMPLE_BYTES;
        }
    }
}
