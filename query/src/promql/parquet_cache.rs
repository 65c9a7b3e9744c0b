//! Parsed footers of segment files (schema, row groups, page indexes), kept between queries.
//!
//! A selective query reads a few pages of a few segments; parsing each segment's footer and page
//! index again on every query would cost more than reading those pages. Segment files never
//! change once written, and a file is recognised by its path, length and modification time, so a
//! cached footer is never applied to other bytes. The cache holds at most [`CAPACITY_BYTES`] of
//! decoded metadata and drops the least recently used footers beyond that.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::SystemTime;

use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::file::metadata::PageIndexPolicy;

use super::error::PromqlError;

/// Most bytes of decoded footers kept.
const CAPACITY_BYTES: usize = 128 << 20;

type Key = (PathBuf, u64, Option<SystemTime>);

#[derive(Default)]
struct Cache {
    entries: HashMap<Key, (ArrowReaderMetadata, usize, u64)>,
    bytes: usize,
    clock: u64,
}

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(|| Mutex::new(Cache::default()));

/// A reader of the segment file at `path`, its footer parsed once and then shared.
pub(super) fn reader_builder(
    path: &Path,
) -> Result<ParquetRecordBatchReaderBuilder<File>, PromqlError> {
    reader_builder_if(path, false)
}

/// [`reader_builder`]; with `cached_only`, a footer not cached yet is not read but answered with
/// a `timeout` error (for queries that may only use what is in memory).
pub(super) fn reader_builder_if(
    path: &Path,
    cached_only: bool,
) -> Result<ParquetRecordBatchReaderBuilder<File>, PromqlError> {
    let file = File::open(path).map_err(|e| {
        PromqlError::Source(format!(
            "segment {} unavailable, retry the query: {e}",
            path.display()
        ))
    })?;
    let stat = file
        .metadata()
        .map_err(|e| PromqlError::Source(format!("segment {}: {e}", path.display())))?;
    let key: Key = (path.to_path_buf(), stat.len(), stat.modified().ok());
    let cached = CACHE.lock().ok().and_then(|mut c| {
        c.clock += 1;
        let now = c.clock;
        c.entries.get_mut(&key).map(|(meta, _, used)| {
            *used = now;
            meta.clone()
        })
    });
    let meta = match cached {
        Some(meta) => meta,
        None if cached_only => {
            return Err(PromqlError::Timeout(format!(
                "the footer of {} is not in memory",
                path.display()
            )));
        }
        None => {
            let options =
                ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
            let meta = ArrowReaderMetadata::load(&file, options)
                .map_err(|e| PromqlError::Source(format!("segment {}: {e}", path.display())))?;
            insert(key, meta.clone());
            meta
        }
    };
    Ok(ParquetRecordBatchReaderBuilder::new_with_metadata(
        file, meta,
    ))
}

fn insert(key: Key, meta: ArrowReaderMetadata) {
    let size = meta.metadata().memory_size();
    if size > CAPACITY_BYTES / 4 {
        return;
    }
    let Ok(mut c) = CACHE.lock() else { return };
    c.clock += 1;
    let now = c.clock;
    // Other files at the same path (a segment replaced) go first.
    let stale: Vec<Key> = c.entries.keys().filter(|k| k.0 == key.0).cloned().collect();
    for k in stale {
        if let Some((_, bytes, _)) = c.entries.remove(&k) {
            c.bytes -= bytes;
        }
    }
    while c.bytes + size > CAPACITY_BYTES {
        let Some(oldest) = c
            .entries
            .iter()
            .min_by_key(|(_, (_, _, used))| *used)
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        if let Some((_, bytes, _)) = c.entries.remove(&oldest) {
            c.bytes -= bytes;
        }
    }
    c.bytes += size;
    c.entries.insert(key, (meta, size, now));
}
