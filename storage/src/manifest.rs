//! The manifest: which segments exist and up to which WAL seq their data reaches.
//!
//! Stored as `manifest.json` in the data directory and replaced atomically (write to a temporary file,
//! fsync, rename, fsync the directory), so after a crash it is either the old or the new version.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::durable::sync_dir;
use crate::error::{Result, StorageError};
use crate::schema::Table;

const FILE_NAME: &str = "manifest.json";
const FORMAT_VERSION: u32 = 1;

/// One durable Parquet segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentMeta {
    /// Unique, increasing segment id.
    pub id: u64,
    /// The table it belongs to.
    pub table: Table,
    /// Absolute path of the Parquet file.
    pub path: PathBuf,
    /// Smallest `time` in the segment (ns).
    pub min_time: i64,
    /// Largest `time` in the segment (ns).
    pub max_time: i64,
    /// Row count.
    pub rows: u64,
    /// File size in bytes.
    pub bytes: u64,
}

#[derive(Serialize, Deserialize)]
struct ManifestFile {
    version: u32,
    flushed_wal_seq: u64,
    next_segment_id: u64,
    segments: Vec<SegmentEntry>,
}

#[derive(Serialize, Deserialize)]
struct SegmentEntry {
    id: u64,
    table: String,
    /// Relative to the data directory.
    path: String,
    min_time: i64,
    max_time: i64,
    rows: u64,
    bytes: u64,
}

/// The in-memory manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    data_dir: PathBuf,
    /// Every WAL record with seq ≤ this is in a segment listed here.
    pub flushed_wal_seq: u64,
    /// The id the next segment gets.
    pub next_segment_id: u64,
    /// Live segments.
    pub segments: Vec<SegmentMeta>,
}

impl Manifest {
    /// Loads `manifest.json` from `data_dir`, or an empty manifest when there is none yet.
    pub fn load(data_dir: &Path) -> Result<Manifest> {
        let path = data_dir.join(FILE_NAME);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Manifest {
                    data_dir: data_dir.to_path_buf(),
                    flushed_wal_seq: 0,
                    next_segment_id: 1,
                    segments: vec![],
                });
            }
            Err(e) => return Err(StorageError::io(format!("reading {}", path.display()), e)),
        };
        let bad = |message: String| StorageError::Manifest {
            path: path.display().to_string(),
            message,
        };
        let file: ManifestFile = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if file.version != FORMAT_VERSION {
            return Err(bad(format!(
                "format version {} is not supported (this build reads {FORMAT_VERSION})",
                file.version
            )));
        }
        let mut segments = Vec::with_capacity(file.segments.len());
        for s in file.segments {
            let table = Table::from_name(&s.table)
                .ok_or_else(|| bad(format!("unknown table {:?}", s.table)))?;
            segments.push(SegmentMeta {
                id: s.id,
                table,
                path: data_dir.join(&s.path),
                min_time: s.min_time,
                max_time: s.max_time,
                rows: s.rows,
                bytes: s.bytes,
            });
        }
        Ok(Manifest {
            data_dir: data_dir.to_path_buf(),
            flushed_wal_seq: file.flushed_wal_seq,
            next_segment_id: file.next_segment_id,
            segments,
        })
    }

    /// Writes the manifest atomically.
    pub fn persist(&self) -> Result<()> {
        let segments = self
            .segments
            .iter()
            .map(|s| SegmentEntry {
                id: s.id,
                table: s.table.name().to_string(),
                path: s
                    .path
                    .strip_prefix(&self.data_dir)
                    .unwrap_or(&s.path)
                    .to_string_lossy()
                    .into_owned(),
                min_time: s.min_time,
                max_time: s.max_time,
                rows: s.rows,
                bytes: s.bytes,
            })
            .collect();
        let file = ManifestFile {
            version: FORMAT_VERSION,
            flushed_wal_seq: self.flushed_wal_seq,
            next_segment_id: self.next_segment_id,
            segments,
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| StorageError::Manifest {
            path: FILE_NAME.into(),
            message: e.to_string(),
        })?;
        let path = self.data_dir.join(FILE_NAME);
        let tmp = self.data_dir.join(format!("{FILE_NAME}.tmp"));
        let io = |e| StorageError::io(format!("writing {}", tmp.display()), e);
        let mut f = fs::File::create(&tmp).map_err(io)?;
        f.write_all(&json).map_err(io)?;
        f.sync_all().map_err(io)?;
        fs::rename(&tmp, &path).map_err(|e| {
            StorageError::io(
                format!("renaming {} to {}", tmp.display(), path.display()),
                e,
            )
        })?;
        sync_dir(&self.data_dir)
    }

    /// Segments of `table`.
    pub fn table_segments(&self, table: Table) -> impl Iterator<Item = &SegmentMeta> {
        self.segments.iter().filter(move |s| s.table == table)
    }
}

#[cfg(test)]
mod tests;
