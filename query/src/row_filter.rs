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
//!
//! On a segment the filters run inside the Parquet reader ([`RowFilter::parquet`]): it decodes
//! the columns the filters read first, and then the other projected columns only for the rows
//! that passed, skipping every page that holds none of them — late materialisation, which is
//! what makes a search for a few thousand spans among millions, or a trace among a day's spans,
//! cost the filter columns rather than every column. Head batches are filtered as they are.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, RecordBatch, RecordBatchOptions, new_null_array,
};
use arrow::compute::{and, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema};
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::Operator;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::physical_expr::{PhysicalExpr, create_physical_expr};
use lumen_storage::Table;
use lumen_storage::schema::{TIME_COLUMN, conform_array};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowPredicate, ArrowPredicateFn};
use parquet::schema::types::SchemaDescriptor;

use crate::hexid::sql_schema;
use crate::pruning::{TRACE_ID_COLUMN, TraceId};

/// True when the scan can evaluate `filter` on the rows it reads: every column it reads has the
/// same type in storage as in SQL (no id columns, except where only their absence is tested:
/// `parent_span_id IS NULL` is a root span in either type), and it has no subquery and nothing
/// volatile.
pub fn filterable(table: Table, filter: &Expr) -> bool {
    let sql = sql_schema(table);
    let storage = table.schema();
    if filter.column_refs().is_empty() || filter.is_volatile() {
        return false;
    }
    // The columns read for their values (those only tested for NULL are not).
    let mut columns: Vec<&Column> = Vec::new();
    let _ = filter.apply(|e| match e {
        Expr::IsNull(inner) | Expr::IsNotNull(inner)
            if matches!(inner.as_ref(), Expr::Column(_)) =>
        {
            Ok(TreeNodeRecursion::Jump)
        }
        Expr::Column(c) => {
            columns.push(c);
            Ok(TreeNodeRecursion::Continue)
        }
        _ => Ok(TreeNodeRecursion::Continue),
    });
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
/// other filters, compiled over the columns they read.
#[derive(Debug, Clone)]
pub struct RowFilter {
    /// Sorted, as numbers: a binary search of a few integers beats hashing 16 bytes per row.
    trace_ids: Option<Vec<u128>>,
    /// Every filter in one expression over storage types: for head batches.
    expr: Option<CompiledFilter>,
    /// Each conjunct on its own, over the types a segment is read in ([`RowFilter::read_as`]),
    /// cheapest first: the Parquet reader's predicates.
    conjuncts: Vec<CompiledFilter>,
    /// The text columns segments are read as dictionaries for these filters.
    dictionaries: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct CompiledFilter {
    expr: Arc<dyn PhysicalExpr>,
    /// The columns the expression reads, in the order it binds them: storage types, or a
    /// dictionary for a text column read as one.
    schema: SchemaRef,
}

/// A text column read as a dictionary: a dictionary-encoded Parquet column (low-cardinality text
/// such as `service_name` or `status_code`) then decodes to its keys, and a comparison runs once
/// per distinct value instead of once per row.
fn dictionary_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
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
        let eligible: Vec<Expr> = filters
            .iter()
            .filter(|f| filterable(table, f))
            .filter_map(|f| unqualified(f.clone()))
            .collect();
        let storage = table.schema();
        let expr = conjunction(eligible.clone())
            .and_then(|e| CompiledFilter::new(&storage, &e, &BTreeSet::new()));
        let trace_ids = trace_ids
            .filter(|_| table.id_columns().contains(&TRACE_ID_COLUMN))
            // A BTreeSet iterates in order, and big-endian numbers keep it.
            .map(|ids| {
                ids.iter()
                    .map(|id| u128::from_be_bytes(*id))
                    .collect::<Vec<_>>()
            });
        if expr.is_none() && trace_ids.is_none() {
            return None;
        }

        // The conjuncts, each compiled over dictionaries for its text columns where it only
        // compares them; a text column any conjunct reads otherwise is read as text.
        let parts: Vec<Expr> = eligible
            .iter()
            .flat_map(split_conjunction)
            .cloned()
            .collect();
        let text_columns = |e: &Expr| -> BTreeSet<String> {
            e.column_refs()
                .iter()
                .filter(|c| {
                    storage
                        .field_with_name(&c.name)
                        .is_ok_and(|f| f.data_type() == &DataType::Utf8)
                })
                .map(|c| c.name.clone())
                .collect()
        };
        let mut dictionaries: BTreeSet<String> = BTreeSet::new();
        let mut plain: BTreeSet<String> = BTreeSet::new();
        for part in &parts {
            if compares_only(part) {
                dictionaries.extend(text_columns(part));
            } else {
                plain.extend(text_columns(part));
            }
        }
        dictionaries.retain(|c| !plain.contains(c));
        let mut conjuncts: Vec<(u8, CompiledFilter)> = Vec::new();
        for part in &parts {
            let compiled = CompiledFilter::new(&storage, part, &dictionaries)
                .or_else(|| CompiledFilter::new(&storage, part, &BTreeSet::new()));
            let Some(compiled) = compiled else {
                // Not compiled, so not applied in the scan; the filter above the scan still is.
                continue;
            };
            let columns = part.column_refs();
            // Dictionary columns decode cheapest; `time` mostly passes within the segments the
            // time range already chose, so it goes last.
            let rank = if columns.iter().all(|c| dictionaries.contains(&c.name)) {
                0
            } else if columns.iter().any(|c| c.name != TIME_COLUMN) {
                1
            } else {
                2
            };
            conjuncts.push((rank, compiled));
        }
        conjuncts.sort_by_key(|(rank, _)| *rank);
        Some(RowFilter {
            trace_ids,
            expr,
            conjuncts: conjuncts.into_iter().map(|(_, c)| c).collect(),
            dictionaries,
        })
    }

    /// The rows of `batch` (in storage types, any column order, columns possibly missing in
    /// older segments) that pass.
    pub fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
        let rows = batch.num_rows();
        let mut mask = self.trace_id_mask(batch);
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

    /// The schema to read a segment whose own Arrow schema is `file` in, for these filters: the
    /// text columns they only compare as dictionaries. `None` when there are none.
    pub fn read_as(&self, file: &SchemaRef) -> Option<SchemaRef> {
        let mut changed = false;
        let fields: Vec<Field> = file
            .fields()
            .iter()
            .map(|field| {
                if field.data_type() == &DataType::Utf8 && self.dictionaries.contains(field.name())
                {
                    changed = true;
                    field.as_ref().clone().with_data_type(dictionary_type())
                } else {
                    field.as_ref().clone()
                }
            })
            .collect();
        changed.then(|| Arc::new(Schema::new_with_metadata(fields, file.metadata().clone())))
    }

    /// The same filters as Parquet reader predicates over a segment with `schema` (opened with
    /// [`RowFilter::read_as`]): the trace ids first (one column, and usually the most selective),
    /// then each conjunct, cheapest first, each decoding only its own columns and only for the
    /// rows still selected.
    pub fn parquet(
        self: &Arc<Self>,
        schema: &SchemaDescriptor,
    ) -> parquet::arrow::arrow_reader::RowFilter {
        let roots = schema.root_schema().get_fields();
        let position = |name: &str| roots.iter().position(|field| field.name() == name);
        let mut predicates: Vec<Box<dyn ArrowPredicate>> = Vec::new();
        if let (Some(_), Some(column)) = (&self.trace_ids, position(TRACE_ID_COLUMN)) {
            let filter = Arc::clone(self);
            predicates.push(Box::new(ArrowPredicateFn::new(
                ProjectionMask::roots(schema, [column]),
                move |batch: RecordBatch| {
                    // Unreadable as ids: keep the rows, the filter above the scan decides.
                    Ok(filter
                        .trace_id_mask(&batch)
                        .unwrap_or_else(|| BooleanArray::from(vec![true; batch.num_rows()])))
                },
            )));
        }
        for conjunct in &self.conjuncts {
            let mut columns: Vec<usize> = conjunct
                .schema
                .fields()
                .iter()
                .filter_map(|field| position(field.name()))
                .collect();
            // A segment older than every column the filter reads still has to say how many rows
            // it has (they all read as nulls).
            if columns.is_empty() {
                columns.extend(position(TIME_COLUMN));
            }
            let conjunct = conjunct.clone();
            predicates.push(Box::new(ArrowPredicateFn::new(
                ProjectionMask::roots(schema, columns),
                move |batch: RecordBatch| conjunct.evaluate(&batch),
            )));
        }
        parquet::arrow::arrow_reader::RowFilter::new(predicates)
    }

    /// Which rows hold one of the trace ids; `None` without an id set or a `trace_id` column
    /// (a table without one never gets an id set).
    fn trace_id_mask(&self, batch: &RecordBatch) -> Option<BooleanArray> {
        let ids = self.trace_ids.as_ref()?;
        let column = batch
            .column_by_name(TRACE_ID_COLUMN)
            .and_then(|c| c.as_fixed_size_binary_opt())?;
        Some(
            (0..batch.num_rows())
                .map(|i| {
                    Some(
                        !column.is_null(i)
                            && TraceId::try_from(column.value(i)).is_ok_and(|id| {
                                ids.binary_search(&u128::from_be_bytes(id)).is_ok()
                            }),
                    )
                })
                .collect(),
        )
    }
}

/// True when `expr` only compares columns with literals and combines the results (`=`, `<>`,
/// `<`, `AND`, `IS NULL` …): the expressions Arrow's comparison kernels evaluate on dictionaries
/// as they do on text. Functions (`regexp_like`, `coalesce` …) want text.
fn compares_only(expr: &Expr) -> bool {
    let mut only = true;
    let _ = expr.apply(|e| {
        let fine = match e {
            Expr::Column(_) | Expr::Literal(..) | Expr::Not(_) => true,
            Expr::IsNull(_) | Expr::IsNotNull(_) | Expr::IsTrue(_) | Expr::IsFalse(_) => true,
            Expr::BinaryExpr(binary) => matches!(
                binary.op,
                Operator::Eq
                    | Operator::NotEq
                    | Operator::Lt
                    | Operator::LtEq
                    | Operator::Gt
                    | Operator::GtEq
                    | Operator::And
                    | Operator::Or
            ),
            _ => false,
        };
        if fine {
            Ok(TreeNodeRecursion::Continue)
        } else {
            only = false;
            Ok(TreeNodeRecursion::Stop)
        }
    });
    only
}

impl CompiledFilter {
    /// `expr` compiled over the columns it reads, in storage types but for the `dictionaries`;
    /// `None` when it does not compile (it is then not applied in the scan).
    fn new(
        storage: &SchemaRef,
        expr: &Expr,
        dictionaries: &BTreeSet<String>,
    ) -> Option<CompiledFilter> {
        let names: BTreeSet<String> = expr.column_refs().iter().map(|c| c.name.clone()).collect();
        let fields: Vec<Field> = names
            .iter()
            // Nullable: a column missing from an older segment reads as nulls.
            .map(|n| {
                storage.field_with_name(n).map(|f| {
                    let field = f.clone().with_nullable(true);
                    if dictionaries.contains(n) {
                        field.with_data_type(dictionary_type())
                    } else {
                        field
                    }
                })
            })
            .collect::<Result<_, _>>()
            .ok()?;
        let schema = Arc::new(Schema::new(fields));
        let df_schema = DFSchema::try_from(schema.as_ref().clone()).ok()?;
        let expr = create_physical_expr(
            expr,
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
