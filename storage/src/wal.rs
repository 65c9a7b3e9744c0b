//! The write-ahead log: checksummed records in numbered files, replay with torn-tail repair.
//!
//! Layout: `wal/<first-seq, 20 digits>.wal`. A file starts with the 8-byte magic [`FILE_MAGIC`] and
//! holds records:
//!
//! ```text
//! [payload length: u32 LE][crc32 of payload: u32 LE][payload: seq u64 LE | table code u8 | Arrow IPC stream]
//! ```
//!
//! Sequence numbers increase by one per record across files; a file's name is the seq of its first
//! record, so `trim` can tell from names alone which files hold only flushed records. A record is durable
//! once [`WalFile::sync`] returned after it was appended; everything after the last good record of a file
//! (a torn write, a bad checksum) is cut off at replay.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;

use crate::durable::sync_dir;
use crate::error::{Result, StorageError};
use crate::schema::Table;

/// First bytes of every WAL file (the last two are the format version).
pub const FILE_MAGIC: &[u8; 8] = b"LUMWAL01";
const RECORD_HEADER: usize = 8;
/// Refuse to believe a record length above this (a corrupt length field must not allocate gigabytes).
const MAX_RECORD_BYTES: u32 = 1 << 30;

/// Encodes a batch as a WAL payload body (Arrow IPC stream). Done by the writer's caller so the CPU
/// work runs in parallel outside the single WAL thread.
pub fn encode_batch(batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(batch.get_array_memory_size() / 2 + 1024);
    let mut writer = StreamWriter::try_new(&mut buf, &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    Ok(buf)
}

fn decode_batch(ipc: &[u8]) -> Result<RecordBatch> {
    let mut reader = StreamReader::try_new(ipc, None)?;
    match reader.next() {
        Some(batch) => Ok(batch?),
        None => Err(StorageError::Arrow(arrow::error::ArrowError::IpcError(
            "WAL record holds no batch".into(),
        ))),
    }
}

fn file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.wal")
}

fn parse_file_name(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_suffix(".wal")?.parse().ok()
}

/// WAL files in `dir`, sorted by their first seq.
pub fn list_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(StorageError::io(format!("listing {}", dir.display()), e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(format!("listing {}", dir.display()), e))?;
        let path = entry.path();
        if let Some(seq) = parse_file_name(&path) {
            files.push((seq, path));
        }
    }
    files.sort();
    Ok(files)
}

/// The open WAL file records are appended to.
pub struct WalFile {
    dir: PathBuf,
    writer: BufWriter<File>,
    next_seq: u64,
    bytes_since_sync: u64,
}

impl WalFile {
    /// Creates a new WAL file in `dir` whose first record will get `next_seq`.
    pub fn create(dir: &Path, next_seq: u64) -> Result<WalFile> {
        fs::create_dir_all(dir)
            .map_err(|e| StorageError::io(format!("creating {}", dir.display()), e))?;
        let path = dir.join(file_name(next_seq));
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| StorageError::io(format!("creating {}", path.display()), e))?;
        file.write_all(FILE_MAGIC)
            .and_then(|()| file.sync_all())
            .map_err(|e| StorageError::io(format!("writing {}", path.display()), e))?;
        sync_dir(dir)?;
        Ok(WalFile {
            dir: dir.to_path_buf(),
            writer: BufWriter::with_capacity(1 << 20, file),
            next_seq,
            bytes_since_sync: 0,
        })
    }

    /// The seq the next appended record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Appends one record (buffered; not durable until [`WalFile::sync`]). Returns its seq.
    pub fn append(&mut self, table: Table, ipc: &[u8]) -> Result<u64> {
        let seq = self.next_seq;
        let payload_len = 8 + 1 + ipc.len();
        let len = u32::try_from(payload_len)
            .ok()
            .filter(|len| *len <= MAX_RECORD_BYTES)
            .ok_or_else(|| {
                StorageError::io(
                    "appending to WAL",
                    std::io::Error::other("record over 1 GiB"),
                )
            })?;
        let mut hasher = crc32fast::Hasher::new();
        let seq_bytes = seq.to_le_bytes();
        hasher.update(&seq_bytes);
        hasher.update(&[table.code()]);
        hasher.update(ipc);
        let crc = hasher.finalize();
        let io = |e| StorageError::io("appending to WAL", e);
        self.writer.write_all(&len.to_le_bytes()).map_err(io)?;
        self.writer.write_all(&crc.to_le_bytes()).map_err(io)?;
        self.writer.write_all(&seq_bytes).map_err(io)?;
        self.writer.write_all(&[table.code()]).map_err(io)?;
        self.writer.write_all(ipc).map_err(io)?;
        self.next_seq += 1;
        self.bytes_since_sync += (RECORD_HEADER + payload_len) as u64;
        Ok(seq)
    }

    /// Writes buffered records and fsyncs them. Returns the bytes made durable.
    pub fn sync(&mut self) -> Result<u64> {
        self.writer
            .flush()
            .map_err(|e| StorageError::io("writing WAL", e))?;
        self.writer
            .get_ref()
            .sync_data()
            .map_err(|e| StorageError::io("fsync of WAL", e))?;
        Ok(std::mem::take(&mut self.bytes_since_sync))
    }

    /// Closes this file and starts a new one at the current seq.
    pub fn rotate(&mut self) -> Result<()> {
        self.sync()?;
        *self = WalFile::create(&self.dir, self.next_seq)?;
        Ok(())
    }
}

/// One record read back at replay.
#[derive(Debug)]
pub struct WalRecord {
    /// The record's sequence number.
    pub seq: u64,
    /// The table the batch belongs to.
    pub table: Table,
    /// The batch, in the table's storage schema.
    pub batch: RecordBatch,
}

/// What replay found besides the records.
#[derive(Debug, Default, Clone)]
pub struct ReplayReport {
    /// Records read (including those skipped as already flushed).
    pub records: u64,
    /// Records skipped because the manifest already covers them.
    pub skipped: u64,
    /// Files cut short because their tail was torn or corrupt.
    pub truncated_files: u64,
    /// Bytes cut off those files.
    pub truncated_bytes: u64,
    /// The seq the next record should get.
    pub next_seq: u64,
}

/// Reads every WAL file in `dir`, calls `apply` with each record whose seq is above `flushed_seq`,
/// and cuts torn or corrupt tails off (logging them). Files with no valid record are removed.
pub fn replay(
    dir: &Path,
    flushed_seq: u64,
    mut apply: impl FnMut(WalRecord) -> Result<()>,
) -> Result<ReplayReport> {
    let mut report = ReplayReport {
        next_seq: flushed_seq + 1,
        ..Default::default()
    };
    let files = list_files(dir)?;
    let total = files.len();
    for (n, (first_seq, path)) in files.into_iter().enumerate() {
        let file_report = replay_file(&path, first_seq, flushed_seq, &mut apply)?;
        // Replaying a large WAL takes a while: say how far along it is.
        tracing::info!(file = %path.display(), records = file_report.records, "replayed WAL file {} of {total}", n + 1);
        report.records += file_report.records;
        report.skipped += file_report.skipped;
        if file_report.truncated_bytes > 0 {
            report.truncated_files += 1;
            report.truncated_bytes += file_report.truncated_bytes;
        }
        report.next_seq = report.next_seq.max(file_report.next_seq);
        if file_report.records == 0 {
            fs::remove_file(&path)
                .map_err(|e| StorageError::io(format!("removing empty {}", path.display()), e))?;
        }
    }
    Ok(report)
}

fn replay_file(
    path: &Path,
    first_seq: u64,
    flushed_seq: u64,
    apply: &mut impl FnMut(WalRecord) -> Result<()>,
) -> Result<ReplayReport> {
    let io = |e| StorageError::io(format!("reading {}", path.display()), e);
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(io)?;
    let mut report = ReplayReport {
        next_seq: first_seq,
        ..Default::default()
    };
    let mut offset = FILE_MAGIC.len();
    let mut problem: Option<String> = None;
    if data.len() < FILE_MAGIC.len() || &data[..FILE_MAGIC.len()] != FILE_MAGIC {
        problem = Some("missing or wrong file magic".into());
        offset = 0;
    }
    let mut expected_seq = first_seq;
    while problem.is_none() && offset < data.len() {
        match parse_record(&data[offset..], expected_seq) {
            Ok((len, seq, table, ipc)) => {
                report.records += 1;
                if seq > flushed_seq {
                    let batch = match decode_batch(ipc) {
                        Ok(batch) => batch,
                        Err(e) => {
                            problem = Some(format!(
                                "record {seq} has a valid checksum but does not decode: {e}"
                            ));
                            break;
                        }
                    };
                    apply(WalRecord { seq, table, batch })?;
                } else {
                    report.skipped += 1;
                }
                offset += len;
                expected_seq = seq + 1;
                report.next_seq = seq + 1;
            }
            Err(why) => problem = Some(why),
        }
    }
    if let Some(why) = problem {
        let cut = (data.len() - offset) as u64;
        tracing::warn!(file = %path.display(), offset, cut_bytes = cut, "WAL tail is torn or corrupt ({why}); truncating it");
        metrics::counter!("lumen_wal_truncated_bytes_total").increment(cut);
        metrics::counter!("lumen_wal_truncations_total").increment(1);
        let file = OpenOptions::new().write(true).open(path).map_err(io)?;
        file.set_len(offset as u64).map_err(io)?;
        file.sync_all().map_err(io)?;
        report.truncated_bytes = cut;
    }
    Ok(report)
}

/// Parses the record at the start of `data`: (total length, seq, table, ipc bytes), or why it is bad.
fn parse_record(
    data: &[u8],
    expected_seq: u64,
) -> std::result::Result<(usize, u64, Table, &[u8]), String> {
    if data.len() < RECORD_HEADER {
        return Err(format!(
            "{} stray bytes where a record header should be",
            data.len()
        ));
    }
    let len = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    let crc = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
    if !(9..=MAX_RECORD_BYTES).contains(&len) {
        return Err(format!("impossible record length {len}"));
    }
    let end = RECORD_HEADER + len as usize;
    if data.len() < end {
        return Err(format!(
            "record of {len} bytes cut short at {} bytes",
            data.len() - RECORD_HEADER
        ));
    }
    let payload = &data[RECORD_HEADER..end];
    if crc32fast::hash(payload) != crc {
        return Err("checksum mismatch".into());
    }
    let mut seq_bytes = [0u8; 8];
    seq_bytes.copy_from_slice(&payload[..8]);
    let seq = u64::from_le_bytes(seq_bytes);
    if seq != expected_seq {
        return Err(format!(
            "sequence gap: expected {expected_seq}, found {seq}"
        ));
    }
    let table =
        Table::from_code(payload[8]).ok_or_else(|| format!("unknown table code {}", payload[8]))?;
    Ok((end, seq, table, &payload[9..]))
}

/// Deletes WAL files whose records all have seq ≤ `flushed_seq` (never the newest file).
pub fn trim(dir: &Path, flushed_seq: u64) -> Result<usize> {
    let files = list_files(dir)?;
    let mut removed = 0;
    for pair in files.windows(2) {
        let (_, path) = &pair[0];
        let (next_first, _) = pair[1];
        if next_first <= flushed_seq + 1 {
            fs::remove_file(path)
                .map_err(|e| StorageError::io(format!("removing {}", path.display()), e))?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// Size of a WAL file on disk (for tests and diagnostics).
pub fn file_len(path: &Path) -> Result<u64> {
    let mut f =
        File::open(path).map_err(|e| StorageError::io(format!("opening {}", path.display()), e))?;
    f.seek(SeekFrom::End(0))
        .map_err(|e| StorageError::io(format!("seeking {}", path.display()), e))
}

#[cfg(test)]
mod tests;
