//! Loading series indexes for queries: a process-wide cache keyed by segment path, the sidecar, and
//! the rebuild fallback.
//!
//! The cache is bounded by the indexes' approximate memory ([`set_cache_capacity`], 256 MiB by
//! default) and evicts the least recently used. An entry is only reused for a segment with the same
//! id, row count and file size, so a path reused by another store in the same process (tests) or
//! after a crash never serves a stale index; the engine also [`forget`]s the paths it removes.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use super::{SeriesIndex, format, sidecar_path};
use crate::cache::{Eviction, SegmentKey, SizedCache};
use crate::durable::sync_dir;
use crate::error::{Result, StorageError};
use crate::manifest::SegmentMeta;
use crate::schema::Table;

const DEFAULT_CAPACITY: usize = 256 << 20;

static CACHE: LazyLock<SizedCache<SegmentKey, Arc<SeriesIndex>>> = LazyLock::new(|| {
    SizedCache::new(DEFAULT_CAPACITY, Eviction::ToCapacity)
        .with_gauge("lumen_series_index_cache_bytes")
});

fn insert(meta: &SegmentMeta, index: Arc<SeriesIndex>) {
    // Another segment that took this path (a store reopened in the same process) goes first.
    CACHE.remove_where(|k| k.path == meta.path);
    let bytes = index.approx_bytes();
    CACHE.insert(SegmentKey::of(meta), index, bytes);
}

/// Sets how much memory (approximately, in bytes) cached series indexes may hold.
pub fn set_cache_capacity(bytes: usize) {
    CACHE.set_capacity(bytes);
}

/// Caches `index` as the index of the segment `meta` (built at flush, so the first query of a
/// new segment does not read the sidecar back).
pub(crate) fn remember(meta: &SegmentMeta, index: SeriesIndex) {
    insert(meta, Arc::new(index));
}

/// Drops the cached index of the segment at `segment_path` (the segment was removed).
pub fn forget(segment_path: &Path) {
    CACHE.remove_where(|k| k.path == segment_path);
}

/// The index of `meta` if it is in the cache (never reads the disk).
pub fn cached(meta: &SegmentMeta) -> Option<Arc<SeriesIndex>> {
    CACHE.get(&SegmentKey::of(meta))
}

/// The series index of a `metrics` segment: from the cache, else its sidecar, else rebuilt from the
/// segment's identity columns (logged and counted in `lumen_series_index_rebuilds_total`, and the
/// sidecar rewritten so the next start finds it).
pub fn load_series_index(meta: &SegmentMeta) -> Result<Arc<SeriesIndex>> {
    if meta.table != Table::Metrics {
        return Err(StorageError::SchemaMismatch {
            table: meta.table.name(),
            message: "series indexes exist for metrics segments only".into(),
        });
    }
    if let Some(hit) = CACHE.get(&SegmentKey::of(meta)) {
        return Ok(hit);
    }
    let index = Arc::new(read_or_rebuild(meta)?);
    insert(meta, index.clone());
    Ok(index)
}

/// The index of `meta` from its sidecar, else rebuilt from the segment (and the sidecar rewritten).
fn read_or_rebuild(meta: &SegmentMeta) -> Result<SeriesIndex> {
    let sidecar = sidecar_path(&meta.path);
    let index = match read_sidecar(&sidecar, meta) {
        Ok(index) => index,
        Err(why) => {
            let reason = if why.missing { "missing" } else { "corrupt" };
            if why.missing {
                tracing::info!(segment = %meta.path.display(), "no series index sidecar; building it from the segment");
            } else {
                tracing::warn!(segment = %meta.path.display(), "series index sidecar unusable ({}); rebuilding it from the segment", why.message);
            }
            metrics::counter!("lumen_series_index_rebuilds_total", "reason" => reason).increment(1);
            let index = SeriesIndex::from_segment(meta).map_err(|e| {
                StorageError::io(
                    format!("building the series index of {}", meta.path.display()),
                    std::io::Error::other(e),
                )
            })?;
            if let Err(e) = write_sidecar_synced(&meta.path, &index) {
                tracing::warn!(segment = %meta.path.display(), error = %e, "could not rewrite the series index sidecar");
            }
            index
        }
    };
    Ok(index)
}

/// What [`warm_up`] loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WarmUp {
    /// Indexes read (or rebuilt) into the cache.
    pub loaded: usize,
    /// Their approximate memory (bytes).
    pub bytes: usize,
    /// Indexes that were already cached.
    pub cached: usize,
}

/// Loads the indexes of `segments`, in the given order (newest first is what queries want), into
/// the cache while they fit: it stops before an index that would evict another, when
/// `keep_going` says so. A missing or unusable sidecar is rebuilt, as a query would do; a segment
/// whose index cannot be had at all (removed meanwhile, unreadable) is logged and skipped. Runs at start-up, so the first queries
/// after a restart find their indexes in memory.
pub fn warm_up(segments: &[SegmentMeta], keep_going: &dyn Fn() -> bool) -> WarmUp {
    let mut done = WarmUp::default();
    let mut fitting: Vec<(&SegmentMeta, Arc<SeriesIndex>)> = Vec::new();
    for meta in segments.iter().filter(|m| m.table == Table::Metrics) {
        if !keep_going() {
            break;
        }
        if CACHE.get(&SegmentKey::of(meta)).is_some() {
            done.cached += 1;
            continue;
        }
        let index = match read_or_rebuild(meta) {
            Ok(index) => index,
            Err(e) => {
                tracing::warn!(segment = %meta.path.display(), error = %e, "series index warm-up skipped the segment");
                continue;
            }
        };
        let bytes = index.approx_bytes();
        if CACHE.with_totals(|held, capacity| held + done.bytes + bytes > capacity) {
            break;
        }
        done.loaded += 1;
        done.bytes += bytes;
        fitting.push((meta, Arc::new(index)));
    }
    // Oldest first, so the newest indexes are the most recently used and the last to be evicted.
    for (meta, index) in fitting.into_iter().rev() {
        insert(meta, index);
    }
    done
}

struct Unusable {
    missing: bool,
    message: String,
}

fn read_sidecar(path: &Path, meta: &SegmentMeta) -> std::result::Result<SeriesIndex, Unusable> {
    let bytes = fs::read(path).map_err(|e| Unusable {
        missing: e.kind() == std::io::ErrorKind::NotFound,
        message: e.to_string(),
    })?;
    let index = format::decode(&bytes).map_err(|message| Unusable {
        missing: false,
        message,
    })?;
    if index.segment_rows() != meta.rows || index.segment_bytes() != meta.bytes {
        return Err(Unusable {
            missing: false,
            message: format!(
                "it describes {} rows in {} bytes, the segment has {} rows in {} bytes",
                index.segment_rows(),
                index.segment_bytes(),
                meta.rows,
                meta.bytes
            ),
        });
    }
    Ok(index)
}

/// Writes `index` as the sidecar of `segment_path`: temporary name, fsync, rename. The caller syncs
/// the directory (a flush does it once for the segment and its sidecar).
pub(crate) fn write_sidecar(segment_path: &Path, index: &SeriesIndex) -> Result<()> {
    static TMP: AtomicU64 = AtomicU64::new(0);
    let path = sidecar_path(segment_path);
    let bytes = format::encode(index).map_err(|e| {
        StorageError::io(
            format!("encoding {}", path.display()),
            std::io::Error::other(e),
        )
    })?;
    // Unique temporary names: two queries may rebuild the same missing sidecar at once.
    let n = TMP.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("series.{}-{n}.tmp", std::process::id()));
    let io = |e| StorageError::io(format!("writing {}", tmp.display()), e);
    let mut file = File::create(&tmp).map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    if let Err(e) = fs::rename(&tmp, &path) {
        let _ = fs::remove_file(&tmp);
        return Err(StorageError::io(format!("renaming {}", tmp.display()), e));
    }
    Ok(())
}

/// Writes the sidecar and syncs its directory (the rebuild path, outside a flush).
pub(crate) fn write_sidecar_synced(segment_path: &Path, index: &SeriesIndex) -> Result<()> {
    write_sidecar(segment_path, index)?;
    match segment_path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}
