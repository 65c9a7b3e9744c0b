//! Every alert state change, kept on disk as JSON lines and served as the SQL table `alerts`.
//!
//! The file `<dir>/history.jsonl` is appended after each evaluation that changed something. It
//! keeps the most recent [`MAX_ENTRIES`] changes: on open, a longer file is rewritten to that tail.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, MapBuilder, MapFieldNames, StringBuilder, TimestampNanosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{MemTable, TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::alert::LabelSet;

/// Most state changes kept.
pub const MAX_ENTRIES: usize = 100_000;

/// One state change of one alert instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Evaluation time of the change, Unix ms.
    pub time_ms: i64,
    /// The rule group's name.
    pub group: String,
    /// The alerting rule's name.
    pub rule: String,
    /// `pending`, `firing` or `resolved`.
    pub state: String,
    /// The alert's labels (`alertname` included).
    pub labels: LabelSet,
    /// The alert's rendered annotations.
    pub annotations: LabelSet,
    /// The query value that produced the alert at that evaluation.
    pub value: f64,
    /// When the alert became active, Unix ms.
    pub active_at_ms: i64,
}

/// The change log, in memory and on disk.
pub struct History {
    path: PathBuf,
    entries: Mutex<VecDeque<HistoryEntry>>,
    file: Mutex<Option<File>>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl History {
    /// Loads `<dir>/history.jsonl` (unreadable lines, e.g. a torn last line, are skipped).
    pub fn open(dir: &Path) -> std::io::Result<History> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("history.jsonl");
        let mut entries = VecDeque::new();
        let mut lines = 0usize;
        if let Ok(file) = File::open(&path) {
            for line in BufReader::new(file).lines() {
                let Ok(line) = line else { break };
                lines += 1;
                if let Ok(entry) = serde_json::from_str::<HistoryEntry>(&line) {
                    entries.push_back(entry);
                    if entries.len() > MAX_ENTRIES {
                        entries.pop_front();
                    }
                }
            }
        }
        if lines > entries.len() {
            // Rewrite to the kept tail (and without unreadable lines).
            let tmp = dir.join("history.jsonl.tmp");
            let mut out = std::io::BufWriter::new(File::create(&tmp)?);
            for entry in &entries {
                serde_json::to_writer(&mut out, entry)?;
                out.write_all(b"\n")?;
            }
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            std::fs::rename(&tmp, &path)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(History {
            path,
            entries: Mutex::new(entries),
            file: Mutex::new(Some(file)),
        })
    }

    /// Appends changes (to memory at once; to disk with one write and fsync). A failed disk
    /// write is returned but the changes stay visible in memory.
    pub fn append(&self, new: Vec<HistoryEntry>) -> std::io::Result<()> {
        if new.is_empty() {
            return Ok(());
        }
        let mut text = Vec::new();
        for entry in &new {
            serde_json::to_writer(&mut text, entry)?;
            text.push(b'\n');
        }
        {
            let mut entries = self.entries.lock();
            for entry in new {
                entries.push_back(entry);
                if entries.len() > MAX_ENTRIES {
                    entries.pop_front();
                }
            }
        }
        let mut file = self.file.lock();
        match file.as_mut() {
            Some(file) => {
                file.write_all(&text)?;
                file.sync_data()
            }
            None => Ok(()),
        }
    }

    /// The most recent changes, oldest first.
    pub fn entries(&self) -> Vec<HistoryEntry> {
        self.entries.lock().iter().cloned().collect()
    }

    /// The `alerts` table's schema.
    pub fn schema() -> SchemaRef {
        let map = |name: &str| {
            Field::new(
                name,
                DataType::Map(
                    Arc::new(Field::new(
                        "entries",
                        DataType::Struct(Fields::from(vec![
                            Field::new("keys", DataType::Utf8, false),
                            Field::new("values", DataType::Utf8, true),
                        ])),
                        false,
                    )),
                    false,
                ),
                false,
            )
        };
        let ts = |name: &str| {
            Field::new(
                name,
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                false,
            )
        };
        Arc::new(Schema::new(vec![
            ts("time"),
            Field::new("group_name", DataType::Utf8, false),
            Field::new("rule", DataType::Utf8, false),
            Field::new("state", DataType::Utf8, false),
            map("labels"),
            map("annotations"),
            Field::new("value", DataType::Float64, false),
            ts("active_at"),
        ]))
    }

    /// All kept changes as one batch.
    pub fn to_batch(&self) -> Result<RecordBatch, arrow::error::ArrowError> {
        let entries = self.entries.lock();
        let n = entries.len();
        let mut time = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
        let mut group = StringBuilder::new();
        let mut rule = StringBuilder::new();
        let mut state = StringBuilder::new();
        let names = MapFieldNames {
            entry: "entries".into(),
            key: "keys".into(),
            value: "values".into(),
        };
        let mut labels = MapBuilder::new(
            Some(names.clone()),
            StringBuilder::new(),
            StringBuilder::new(),
        );
        let mut annotations =
            MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
        let mut value = Float64Builder::with_capacity(n);
        let mut active_at = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
        for entry in entries.iter() {
            time.append_value(entry.time_ms.saturating_mul(1_000_000));
            group.append_value(&entry.group);
            rule.append_value(&entry.rule);
            state.append_value(&entry.state);
            for (map, set) in [
                (&mut labels, &entry.labels),
                (&mut annotations, &entry.annotations),
            ] {
                for (k, v) in set {
                    map.keys().append_value(k);
                    map.values().append_value(v);
                }
                map.append(true)?;
            }
            value.append_value(entry.value);
            active_at.append_value(entry.active_at_ms.saturating_mul(1_000_000));
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(time.finish()),
            Arc::new(group.finish()),
            Arc::new(rule.finish()),
            Arc::new(state.finish()),
            Arc::new(labels.finish()),
            Arc::new(annotations.finish()),
            Arc::new(value.finish()),
            Arc::new(active_at.finish()),
        ];
        RecordBatch::try_new(Self::schema(), columns)
    }
}

/// The SQL table `alerts`: one row per state change.
#[derive(Debug)]
pub struct AlertsTable {
    history: Arc<History>,
    schema: SchemaRef,
}

impl AlertsTable {
    /// A table over `history`.
    pub fn new(history: Arc<History>) -> Self {
        AlertsTable {
            history,
            schema: History::schema(),
        }
    }
}

#[async_trait]
impl TableProvider for AlertsTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let batch = self.history.to_batch()?;
        let table = MemTable::try_new(Arc::clone(&self.schema), vec![vec![batch]])?;
        table.scan(state, projection, filters, limit).await
    }
}

#[cfg(test)]
mod tests;
