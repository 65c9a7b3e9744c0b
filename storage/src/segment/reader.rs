//! The one way segment files are opened for reading — SQL scans, PromQL, the series-index rebuild,
//! compaction — with their parsed footers (schema, row groups, page index) kept between reads.
//!
//! A selective query reads a few pages of a few segments; parsing each segment's footer and page
//! index again on every query would cost more than reading those pages. Segment files never
//! change once written; the cache is keyed by [`SegmentKey`] (path, id, rows and the file's size),
//! so a cached footer is never applied to other bytes. It holds at most [`FOOTER_CACHE_BYTES`] of
//! decoded metadata, least recently used out first.

use std::fmt;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::file::metadata::PageIndexPolicy;

use crate::cache::{Eviction, SegmentKey, SizedCache};
use crate::manifest::SegmentMeta;

/// Most bytes of decoded footers kept.
pub const FOOTER_CACHE_BYTES: usize = 128 << 20;

static FOOTERS: LazyLock<SizedCache<SegmentKey, Arc<ArrowReaderMetadata>>> = LazyLock::new(|| {
    SizedCache::new(FOOTER_CACHE_BYTES, Eviction::ToCapacity).with_max_entry(FOOTER_CACHE_BYTES / 4)
});

/// Where a segment's footer may come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Footer {
    /// From the cache, else read (with its page index) and cached: queries.
    Cached,
    /// From the cache only; a footer not in memory is [`OpenError::NotCached`]: queries that may
    /// only use what is already in memory.
    CachedOnly,
    /// Read without the page index and not cached: whole-file reads (compaction, index rebuilds)
    /// that would only push queries' footers out.
    Uncached,
}

/// Why a segment could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// The file is gone (compaction or retention removed it after the snapshot was taken).
    Missing(PathBuf),
    /// [`Footer::CachedOnly`] and the footer is not in memory.
    NotCached(PathBuf),
    /// The file could not be opened or its footer parsed.
    Unreadable {
        /// The segment file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Missing(path) => write!(f, "segment {} is gone", path.display()),
            OpenError::NotCached(path) => {
                write!(f, "the footer of {} is not in memory", path.display())
            }
            OpenError::Unreadable { path, message } => {
                write!(f, "segment {}: {message}", path.display())
            }
        }
    }
}

impl std::error::Error for OpenError {}

impl From<OpenError> for crate::StorageError {
    fn from(e: OpenError) -> Self {
        let kind = match e {
            OpenError::Missing(_) => std::io::ErrorKind::NotFound,
            _ => std::io::ErrorKind::InvalidData,
        };
        crate::StorageError::io(
            "reading a segment",
            std::io::Error::new(kind, e.to_string()),
        )
    }
}

/// A Parquet reader of the segment `meta` describes, its footer taken as `footer` says.
pub fn open(
    meta: &SegmentMeta,
    footer: Footer,
) -> Result<ParquetRecordBatchReaderBuilder<File>, OpenError> {
    open_as(meta, footer, |_| None)
}

/// [`open`], reading the columns in the types `read_as` gives: called with the file's own Arrow
/// schema, it returns the schema to read it as (the same columns; a text column may become a
/// `Dictionary(Int32, Utf8)`, which keeps a dictionary-encoded column's values unexpanded), or
/// `None` to read the file as written.
pub fn open_as(
    meta: &SegmentMeta,
    footer: Footer,
    read_as: impl FnOnce(&SchemaRef) -> Option<SchemaRef>,
) -> Result<ParquetRecordBatchReaderBuilder<File>, OpenError> {
    let path = &meta.path;
    let unreadable = |message: String| OpenError::Unreadable {
        path: path.clone(),
        message,
    };
    let file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => OpenError::Missing(path.clone()),
        _ => unreadable(e.to_string()),
    })?;
    let metadata = if footer == Footer::Uncached {
        Arc::new(
            ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
                .map_err(|e| unreadable(e.to_string()))?,
        )
    } else {
        let len = file
            .metadata()
            .map_err(|e| unreadable(e.to_string()))?
            .len();
        let key = SegmentKey {
            bytes: len,
            ..SegmentKey::of(meta)
        };
        match FOOTERS.get(&key) {
            Some(metadata) => metadata,
            None if footer == Footer::CachedOnly => {
                return Err(OpenError::NotCached(path.clone()));
            }
            None => {
                let options =
                    ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
                let metadata = Arc::new(
                    ArrowReaderMetadata::load(&file, options)
                        .map_err(|e| unreadable(e.to_string()))?,
                );
                let bytes = metadata.metadata().memory_size();
                FOOTERS.insert(key, metadata.clone(), bytes);
                metadata
            }
        }
    };
    let metadata = match read_as(metadata.schema()) {
        // Only the Arrow view of the footer is rebuilt; the parsed Parquet metadata is shared.
        Some(schema) => ArrowReaderMetadata::try_new(
            Arc::clone(metadata.metadata()),
            ArrowReaderOptions::new().with_schema(schema),
        )
        .map_err(|e| unreadable(e.to_string()))?,
        None => ArrowReaderMetadata::clone(&metadata),
    };
    Ok(ParquetRecordBatchReaderBuilder::new_with_metadata(
        file, metadata,
    ))
}

/// Drops the cached footer of the segment at `path` (the segment was removed).
pub fn forget(path: &std::path::Path) {
    FOOTERS.remove_where(|k| k.path == path);
}

/// The projection of a file with `schema` onto its top-level columns whose names `keep` accepts.
pub fn root_projection(
    schema: &parquet::schema::types::SchemaDescriptor,
    keep: impl Fn(&str) -> bool,
) -> parquet::arrow::ProjectionMask {
    let roots = schema
        .root_schema()
        .get_fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| keep(f.name()))
        .map(|(i, _)| i);
    parquet::arrow::ProjectionMask::roots(schema, roots)
}
