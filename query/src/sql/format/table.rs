//! An aligned text table for terminals, over the JSON response shape (what `lumen sql` prints).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One column of a result: name and friendly type name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Friendly type name (see the module docs).
    #[serde(rename = "type")]
    pub data_type: String,
}

impl Column {
    /// A column with a name and a type name.
    pub fn new(name: impl Into<String>, data_type: impl Into<String>) -> Self {
        Column {
            name: name.into(),
            data_type: data_type.into(),
        }
    }
}

/// How [`render_table_with`] lays a table out.
#[derive(Debug, Clone, Default)]
pub struct TableOptions {
    /// Cut cells longer than this many characters, marking the cut with `…`.
    pub max_cell_width: Option<usize>,
}

/// Renders columns and rows as an aligned table:
///
/// ```
/// use lumen_query::sql::format::{render_table, Column};
/// use serde_json::json;
///
/// let columns = vec![Column::new("service_name", "utf8"), Column::new("spans", "int64")];
/// let rows = vec![vec![json!("checkout"), json!(1200)], vec![json!(null), json!(7)]];
/// assert_eq!(
///     render_table(&columns, &rows),
///     "+--------------+-------+\n\
///      | service_name | spans |\n\
///      +--------------+-------+\n\
///      | checkout     |  1200 |\n\
///      | NULL         |     7 |\n\
///      +--------------+-------+\n"
/// );
/// ```
pub fn render_table(columns: &[Column], rows: &[Vec<Value>]) -> String {
    render_table_with(columns, rows, &TableOptions::default())
}

/// [`render_table`] with options.
pub fn render_table_with(
    columns: &[Column],
    rows: &[Vec<Value>],
    options: &TableOptions,
) -> String {
    if columns.is_empty() {
        return String::new();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            (0..columns.len())
                .map(|i| {
                    row.get(i)
                        .map(|v| cell_text(v, options))
                        .unwrap_or_default()
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            cells
                .iter()
                .map(|row| char_len(&row[i]))
                .chain([char_len(&column.name)])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let numeric: Vec<bool> = columns.iter().map(|c| is_numeric(&c.data_type)).collect();

    let mut out = String::new();
    let border = |out: &mut String| {
        out.push('+');
        for width in &widths {
            out.push_str(&"-".repeat(width + 2));
            out.push('+');
        }
        out.push('\n');
    };
    border(&mut out);
    let names: Vec<String> = columns.iter().map(|c| escape(&c.name)).collect();
    push_line(&mut out, &names, &widths, &vec![false; columns.len()]);
    border(&mut out);
    for row in &cells {
        push_line(&mut out, row, &widths, &numeric);
    }
    if !cells.is_empty() {
        border(&mut out);
    }
    out
}

fn push_line(out: &mut String, cells: &[String], widths: &[usize], right_align: &[bool]) {
    out.push('|');
    for ((cell, width), right) in cells.iter().zip(widths).zip(right_align) {
        let pad = " ".repeat(width.saturating_sub(char_len(cell)));
        out.push(' ');
        if *right {
            out.push_str(&pad);
            out.push_str(cell);
        } else {
            out.push_str(cell);
            out.push_str(&pad);
        }
        out.push_str(" |");
    }
    out.push('\n');
}

fn cell_text(value: &Value, options: &TableOptions) -> String {
    let text = match value {
        Value::Null => "NULL".to_string(),
        Value::String(s) => escape(s),
        other => other.to_string(),
    };
    match options.max_cell_width {
        Some(max) if char_len(&text) > max => {
            let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
            cut.push('…');
            cut
        }
        _ => text,
    }
}

/// Keeps one row on one line.
fn escape(text: &str) -> String {
    if !text.contains(['\n', '\r', '\t']) {
        return text.to_string();
    }
    text.replace('\n', "\\n")
        .replace('\r', "\\r")
        .replace('\t', "\\t")
}

fn char_len(text: &str) -> usize {
    text.chars().count()
}

fn is_numeric(type_name: &str) -> bool {
    ["int", "uint", "float", "decimal"]
        .iter()
        .any(|prefix| type_name.starts_with(prefix))
}
