//! Filters applied inside the scan, before the rows leave it.
//!
//! A selective query (`WHERE service_name = 'payment' AND status_code = 'error'`) reads a few
//! rows out of millions; without this, the scan would turn every row it decodes into the SQL
//! schema — the ids into hex text, the costliest step — only for DataFusion's filter above it to
//! drop nearly all of them. The scan is offered every filter that reads no id column (and no
//! column whose SQL type differs from its storage type), and evaluates them on each batch as it is
//! read, so only the rows that pass are converted and sent on. The filters stay in the plan above
//! the scan too (they are pushed down as *inexact*), so this is purely a saving: a filter the scan
//! cannot compile is simply not applied there. The one id filter taken is the trace-id set the
//! scan predicate already derives for bloom pruning (`trace_id = '…'`, `IN (…)`), compared as bytes.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, RecordBatch, RecordBatchOptions, new_null_array,
};
use arrow::compute::{and, filter_record_batch};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema};
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::utils::conjunction;
use datafusion::physical_expr::{PhysicalExpr, create_physical_expr};
use lumen_storage::Table;
use lumen_storage::schema::conform_array;

use crate::hexid::sql_schema;
use crate::pruning::{TRACE_ID_COLUMN, TraceId};

/// True when the scan can evaluate `filter` on the rows it reads: every column it reads has the
/// same type in storage as in SQL (no id columns), and it has no subquery and nothing volatile.
pub fn filterable(table: Table, filter: &Expr) -> bool {
    let sql = sql_schema(table);
    let storage = table.schema();
    let columns = filter.column_refs();
    if columns.is_empty() || filter.is_volatile() {
        return false;
    }
    let same_type = columns.iter().all(|c| {
        match (
            sql.field_with_name(&c.name),
            storage.field_with_name(&c.name),
        ) {
            (Ok(a), Ok(b)) => a.data_type() == b.data_type(),
            _ => false,
        }
    });
    let mut subquery = false;
    let _ = filter.apply(|e| {
        if matches!(
            e,
            Expr::Exists(_)
                | Expr::InSubquery(_)
                | Expr::ScalarSubquery(_)
                | Expr::OuterReferenceColumn(..)
                | Expr::Placeholder(_)
        ) {
            subquery = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    same_type && !subquery
}

/// The scan-side filters of one scan: the trace ids the filters allow, compared as bytes, and the
/// conjunction of the other filters, compiled over the columns they read.
#[derive(Debug, Clone)]
pub struct RowFilter {
    trace_ids: Option<HashSet<TraceId>>,
    expr: Option<CompiledFilter>,
}

#[derive(Debug, Clone)]
struct CompiledFilter {
    expr: Arc<dyn PhysicalExpr>,
    /// The columns the expression reads, in storage types, in the order it binds them.
    schema: SchemaRef,
}

impl RowFilter {
    /// The filters of `filters` the scan can apply, with the trace ids the scan predicate found
    /// in them (every row passing the filters has one of those ids); `None` when there is
    /// nothing to apply.
    pub fn new(
        table: Table,
        filters: &[Expr],
        trace_ids: Option<&BTreeSet<TraceId>>,
    ) -> Option<RowFilter> {
        let expr = CompiledFilter::new(table, filters);
        let trace_ids = trace_ids
            .filter(|_| table.id_columns().contains(&TRACE_ID_COLUMN))
            .map(|ids| ids.iter().copied().collect::<HashSet<_>>());
        (expr.is_some() || trace_ids.is_some()).then_some(RowFilter { trace_ids, expr })
    }

    /// The rows of `batch` (in storage types, any column order, columns possibly missing in
    /// older segments) that pass.
    pub fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
        let rows = batch.num_rows();
        let mut mask: Option<BooleanArray> = None;
        if let Some(ids) = &self.trace_ids {
            let column = batch
                .column_by_name(TRACE_ID_COLUMN)
                .and_then(|c| c.as_fixed_size_binary_opt());
            if let Some(column) = column {
                mask = Some(
                    (0..rows)
                        .map(|i| {
                            Some(
                                !column.is_null(i)
                                    && TraceId::try_from(column.value(i))
                                        .is_ok_and(|id| ids.contains(&id)),
                            )
                        })
                        .collect(),
                );
            }
        }
        if let Some(expr) = &self.expr {
            let passed = expr.evaluate(batch)?;
            mask = Some(match mask {
                Some(ids) => and(&ids, &passed)?,
                None => passed,
            });
        }
        match mask {
            Some(mask) if mask.true_count() < rows => filter_record_batch(batch, &mask),
            _ => Ok(batch.clone()),
        }
    }
}

impl CompiledFilter {
    fn new(table: Table, filters: &[Expr]) -> Option<CompiledFilter> {
        let storage = table.schema();
        let eligible: Vec<Expr> = filters
            .iter()
            .filter(|f| filterable(table, f))
            .filter_map(|f| unqualified(f.clone()))
            .collect();
        let expr = conjunction(eligible)?;
        let names: BTreeSet<String> = expr.column_refs().iter().map(|c| c.name.clone()).collect();
        let fields: Vec<Field> = names
            .iter()
            // Nullable: a column missing from an older segment reads as nulls.
            .map(|n| {
                storage
                    .field_with_name(n)
                    .map(|f| f.clone().with_nullable(true))
            })
            .collect::<Result<_, _>>()
            .ok()?;
        let schema = Arc::new(Schema::new(fields));
        let df_schema = DFSchema::try_from(schema.as_ref().clone()).ok()?;
        let expr = create_physical_expr(
            &expr,
            &df_schema,
            &ExecutionProps::new(),
            &PhysicalPlanningContext::default(),
        )
        .ok()?;
        Some(CompiledFilter { expr, schema })
    }

    /// Which rows of `batch` pass (nulls do not).
    fn evaluate(&self, batch: &RecordBatch) -> Result<BooleanArray, ArrowError> {
        let rows = batch.num_rows();
        let columns = self
            .schema
            .fields()
            .iter()
            .map(|field| match batch.column_by_name(field.name()) {
                Some(column) if column.data_type() == field.data_type() => Ok(column.clone()),
                Some(column) => conform_array(column, field.data_type()),
                None => Ok(new_null_array(field.data_type(), rows)),
            })
            .collect::<Result<Vec<ArrayRef>, ArrowError>>()?;
        let input = RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )?;
        let external =
            |e: datafusion::error::DataFusionError| ArrowError::ExternalError(Box::new(e));
        let mask = self
            .expr
            .evaluate(&input)
            .and_then(|v| v.into_array(rows))
            .map_err(external)?;
        mask.as_boolean_opt().cloned().ok_or_else(|| {
            ArrowError::InvalidArgumentError("a scan filter did not evaluate to booleans".into())
        })
    }
}

/// `expr` with its columns' table qualifiers dropped (the scan's batches have bare names).
fn unqualified(expr: Expr) -> Option<Expr> {
    expr.transform(|e| match e {
        Expr::Column(c) if c.relation.is_some() => Ok(Transformed::yes(Expr::Column(
            Column::new_unqualified(c.name),
        ))),
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
    .ok()
}

#[cfg(test)]
mod tests;
