//! The read-only policy: which SQL statements Lumen runs at all.
//!
//! Two independent checks, so one mistake cannot open the door:
//! 1. before planning, the parsed statement must be a query, `EXPLAIN` of an allowed statement,
//!    `DESCRIBE` or `SHOW` — anything else is refused with the statement's name;
//! 2. after planning, DataFusion's [`SQLOptions`] verifier rejects any DDL, DML (incl. `COPY`)
//!    or session statement hidden anywhere in the plan, subqueries included.
//!
//! Together with a session that has no table factories, no file formats, no URL tables and no
//! local object store (see [`super::session`]), no query can read or write server files.

use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;

use crate::error::QueryError;

/// DataFusion's plan verifier, configured read-only.
pub fn sql_options() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Refuses statements that are not read-only queries.
pub fn check_statement(statement: &DfStatement) -> Result<(), QueryError> {
    match statement {
        DfStatement::Statement(inner) => check_sql_statement(inner),
        DfStatement::Explain(explain) => check_statement(&explain.statement),
        DfStatement::CreateExternalTable(_) => Err(refuse("CREATE EXTERNAL TABLE")),
        DfStatement::CopyTo(_) => Err(refuse("COPY")),
        DfStatement::Reset(_) => Err(refuse("RESET")),
    }
}

fn check_sql_statement(statement: &Statement) -> Result<(), QueryError> {
    match statement {
        Statement::Query(_)
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowFunctions { .. }
        | Statement::ShowVariable { .. }
        | Statement::ShowCreate { .. }
        | Statement::ExplainTable { .. } => Ok(()),
        Statement::Explain { statement, .. } => check_sql_statement(statement),
        other => Err(refuse(&statement_kind(&other.to_string()))),
    }
}

/// Checks a planned statement with DataFusion's verifier (catches what the parse-level check
/// might miss, e.g. DML inside a CTE).
pub fn check_plan(plan: &LogicalPlan) -> Result<(), QueryError> {
    sql_options()
        .verify_plan(plan)
        .map_err(|err: DataFusionError| {
            let detail = err.strip_backtrace();
            let detail = detail
                .strip_prefix("Error during planning: ")
                .unwrap_or(&detail);
            QueryError::ReadOnly(format!("Lumen's SQL is read-only: {detail}"))
        })
}

fn refuse(kind: &str) -> QueryError {
    QueryError::ReadOnly(format!(
        "Lumen's SQL is read-only: {kind} is not allowed (only SELECT, WITH, EXPLAIN, DESCRIBE and SHOW are)"
    ))
}

/// Words that name the kind of object a CREATE/DROP/ALTER acts on.
const OBJECT_KINDS: &[&str] = &[
    "TABLE",
    "VIEW",
    "INDEX",
    "SCHEMA",
    "DATABASE",
    "FUNCTION",
    "CATALOG",
    "SEQUENCE",
    "TYPE",
    "ROLE",
    "USER",
    "EXTENSION",
    "TRIGGER",
    "PROCEDURE",
    "MACRO",
    "SECRET",
    "STAGE",
    "POLICY",
];

/// Words that may sit between CREATE/DROP and the object kind.
const MODIFIERS: &[&str] = &[
    "OR",
    "REPLACE",
    "TEMPORARY",
    "TEMP",
    "EXTERNAL",
    "MATERIALIZED",
    "UNLOGGED",
    "GLOBAL",
    "LOCAL",
    "TRANSIENT",
    "VOLATILE",
    "UNIQUE",
    "IF",
    "NOT",
    "EXISTS",
    "RECURSIVE",
    "SECURE",
];

/// A short name for a statement from its normalized SQL text: `INSERT`, `CREATE TABLE`,
/// `CREATE EXTERNAL TABLE`, `DROP VIEW`, `SET`, ...
fn statement_kind(sql: &str) -> String {
    let words: Vec<String> = sql
        .split_whitespace()
        .take(8)
        .map(str::to_ascii_uppercase)
        .collect();
    let Some(first) = words.first() else {
        return "this statement".to_string();
    };
    match first.as_str() {
        "CREATE" | "DROP" | "ALTER" => {
            let mut kind = vec![first.as_str()];
            for word in &words[1..] {
                if word == "EXTERNAL" || word == "MATERIALIZED" {
                    kind.push(word);
                } else if OBJECT_KINDS.contains(&word.as_str()) {
                    kind.push(word);
                    break;
                } else if !MODIFIERS.contains(&word.as_str()) {
                    break;
                }
            }
            kind.join(" ")
        }
        "START" | "BEGIN" | "COMMIT" | "ROLLBACK" | "SAVEPOINT" | "RELEASE" => {
            "a transaction statement".into()
        }
        word if word.chars().all(|c| c.is_ascii_alphabetic() || c == '_') => word.to_string(),
        _ => "this statement".to_string(),
    }
}

#[cfg(test)]
mod tests;
