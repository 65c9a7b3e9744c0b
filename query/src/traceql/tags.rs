//! Tag names and values for Grafana's TraceQL editor: the attribute keys of spans and resources in
//! a time range, and the distinct values of one tag with their types.

use arrow::array::{Array, AsArray};

use super::ast::{AttributeScope, Field, Intrinsic, SpansetExpr};
use super::sql::{condition, filters, quote};
use crate::error::QueryError;
use crate::sql::session::QueryEngine;

/// The time range and cap of a tags request.
#[derive(Clone, Copy, Debug)]
pub struct TagsRequest {
    /// Spans starting at or after this time (Unix ns).
    pub start_ns: i64,
    /// Spans starting before this time (Unix ns).
    pub end_ns: i64,
    /// Names or values returned at most.
    pub limit: usize,
}

/// The attribute scopes a tag belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagScope {
    /// The spans' own attributes.
    Span,
    /// Their resources' attributes.
    Resource,
}

impl TagScope {
    fn map_column(self) -> &'static str {
        match self {
            TagScope::Span => "attributes",
            TagScope::Resource => "resource_attributes",
        }
    }

    /// The scope's name in the tags API.
    pub fn as_str(self) -> &'static str {
        match self {
            TagScope::Span => "span",
            TagScope::Resource => "resource",
        }
    }
}

fn time(request: &TagsRequest) -> String {
    format!(
        "time >= to_timestamp_nanos({}) AND time < to_timestamp_nanos({})",
        request.start_ns, request.end_ns
    )
}

/// The SQL condition of `q` narrowing a tags request (`TRUE` without one).
fn narrowing(spans: Option<&SpansetExpr>) -> String {
    match spans {
        None => "TRUE".into(),
        Some(spans) => {
            let parts: Vec<String> = filters(spans)
                .into_iter()
                .map(|f| format!("coalesce({}, FALSE)", condition(f)))
                .collect();
            format!("({})", parts.join(" OR "))
        }
    }
}

/// The distinct attribute keys of `scope` in the range, sorted.
pub async fn tag_names(
    engine: &QueryEngine,
    scope: TagScope,
    request: &TagsRequest,
) -> Result<Vec<String>, QueryError> {
    let sql = format!(
        "SELECT DISTINCT k FROM (SELECT unnest(map_keys({map})) AS k FROM spans s WHERE {time}) \
         ORDER BY k LIMIT {limit}",
        map = scope.map_column(),
        time = time(request),
        limit = request.limit,
    );
    let output = engine.sql(&sql).await?;
    let mut names = Vec::new();
    for batch in &output.batches {
        let keys = batch
            .column(0)
            .as_string_opt::<i32>()
            .ok_or_else(|| QueryError::Internal("tag names are not text".into()))?;
        names.extend(
            (0..keys.len())
                .filter(|i| !keys.is_null(*i))
                .map(|i| keys.value(i).to_owned()),
        );
    }
    Ok(names)
}

/// One distinct value of a tag, with its TraceQL type (`string`, `int`, `double`, `bool`,
/// `duration`, `status`, `kind`, …).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TagValue {
    /// The type name, as Tempo's v2 tag values give it.
    pub kind: String,
    /// The value as text.
    pub value: String,
}

/// The distinct values of `field` in the range (among spans matching `spans`, when given).
pub async fn tag_values(
    engine: &QueryEngine,
    field: &Field,
    spans: Option<&SpansetExpr>,
    request: &TagsRequest,
) -> Result<Vec<TagValue>, QueryError> {
    let (value_sql, kind_sql) = match field {
        Field::Intrinsic(intrinsic) => {
            let (column, kind) = match intrinsic {
                Intrinsic::Name => ("s.name", "string"),
                Intrinsic::Status => ("s.status_code", "keyword"),
                Intrinsic::StatusMessage => ("s.status_message", "string"),
                Intrinsic::Kind => ("s.kind", "keyword"),
                _ => {
                    return Err(QueryError::BadRequest(format!(
                        "{} has no list of values: name, status, statusMessage and kind have",
                        intrinsic.as_str()
                    )));
                }
            };
            (column.to_string(), quote(kind))
        }
        Field::Attribute(AttributeScope::Resource, name) if name == "service.name" => {
            ("s.service_name".to_string(), quote("string"))
        }
        Field::Attribute(scope, name) => {
            let map = match scope {
                AttributeScope::Resource => "resource_attributes",
                AttributeScope::Span | AttributeScope::Any => "attributes",
            };
            let key = quote(name);
            // The value's type letter sits at the key's position in the `<map>_types` text.
            let letter = format!(
                "nullif(substr(s.{map}_types, \
                 arrow_cast(array_position(map_keys(s.{map}), {key}), 'Int64'), 1), '')"
            );
            let kind = format!(
                "CASE coalesce({letter}, 's') WHEN 'i' THEN 'int' WHEN 'd' THEN 'double' \
                 WHEN 'b' THEN 'bool' ELSE 'string' END"
            );
            (format!("s.{map}[{key}]"), kind)
        }
    };
    let sql = format!(
        "SELECT DISTINCT {value_sql} AS value, {kind_sql} AS kind FROM spans s \
         WHERE {time} AND {value_sql} IS NOT NULL AND {narrow} ORDER BY value LIMIT {limit}",
        time = time(request),
        narrow = narrowing(spans),
        limit = request.limit,
    );
    let output = engine.sql(&sql).await?;
    let mut values = Vec::new();
    for batch in &output.batches {
        let value = batch
            .column_by_name("value")
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| QueryError::Internal("tag values are not text".into()))?;
        let kind = batch
            .column_by_name("kind")
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| QueryError::Internal("tag value types are not text".into()))?;
        for i in 0..batch.num_rows() {
            values.push(TagValue {
                kind: kind.value(i).to_owned(),
                value: value.value(i).to_owned(),
            });
        }
    }
    Ok(values)
}
