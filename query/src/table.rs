//! `LumenTable`: the DataFusion [`TableProvider`] for `spans`, `logs` and `metrics`.
//!
//! Planning a scan takes a storage snapshot for the time range the pushed-down filters allow and
//! hands it to [`LumenScanExec`]; the snapshot is taken at planning time, so one query sees one
//! consistent state of the table.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use lumen_storage::{Table, TableSnapshot};

use crate::hexid::sql_schema;
use crate::pruning::{ScanPredicate, pushdown_support};
use crate::row_filter::{RowFilter, filterable};
use crate::scan::{LumenScanExec, ScanInput};
use crate::snapshot::SnapshotSource;

/// One of Lumen's tables, as DataFusion sees it.
pub struct LumenTable {
    table: Table,
    schema: SchemaRef,
    source: Arc<dyn SnapshotSource>,
}

impl LumenTable {
    /// A provider for `table` reading from `source`.
    pub fn new(table: Table, source: Arc<dyn SnapshotSource>) -> Self {
        LumenTable {
            table,
            schema: sql_schema(table),
            source,
        }
    }

    fn plan_scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let width = self.schema.fields().len();
        let projection: Vec<usize> = match projection {
            Some(indices) => {
                if let Some(bad) = indices.iter().find(|&&i| i >= width) {
                    return Err(DataFusionError::Internal(format!(
                        "projection index {bad} out of range for {} ({width} columns)",
                        self.table
                    )));
                }
                indices.clone()
            }
            None => (0..width).collect(),
        };
        let predicate = ScanPredicate::from_filters(self.table, filters);
        let snapshot = if predicate.matches_nothing() {
            TableSnapshot::default()
        } else {
            self.source
                .snapshot(self.table, predicate.time.to_time_range())
        };
        // The storage engine already selects by time; checking again costs nothing and keeps a
        // generous snapshot from costing file opens.
        let segments = snapshot
            .segments
            .into_iter()
            .filter(|segment| predicate.time.overlaps(segment.min_time, segment.max_time))
            .collect();
        let row_filter = RowFilter::new(self.table, filters, predicate.trace_ids.as_ref());
        let exec = LumenScanExec::try_new(ScanInput {
            table: self.table,
            sql_schema: Arc::clone(&self.schema),
            projection,
            predicate,
            limit,
            row_filter,
            head: snapshot.head,
            segments,
            target_partitions: state.config().target_partitions(),
        })?;
        Ok(Arc::new(exec))
    }
}

impl fmt::Debug for LumenTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LumenTable")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl TableProvider for LumenTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Pruning filters (time, trace ids) and those the scan applies to its rows
        // (row_filter.rs) are taken, inexactly: DataFusion still filters above the scan.
        Ok(filters
            .iter()
            .map(|filter| match pushdown_support(self.table, filter) {
                TableProviderFilterPushDown::Unsupported if filterable(self.table, filter) => {
                    TableProviderFilterPushDown::Inexact
                }
                support => support,
            })
            .collect())
    }

    // Written out instead of `#[async_trait]` (not a dependency of this crate): planning a scan
    // does no I/O — the snapshot is in memory — so the future is ready at once.
    fn scan<'life0, 'life1, 'life2, 'life3, 'async_trait>(
        &'life0 self,
        state: &'life1 dyn Session,
        projection: Option<&'life2 Vec<usize>>,
        filters: &'life3 [Expr],
        limit: Option<usize>,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<dyn ExecutionPlan>>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        Self: 'async_trait,
    {
        let plan = self.plan_scan(state, projection, filters, limit);
        Box::pin(std::future::ready(plan))
    }
}
