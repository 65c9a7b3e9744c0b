//! Alert templates: the Go `text/template` subset Prometheus expands in rule labels and
//! annotations (`{{ $labels.instance }} is at {{ $value | humanize }}`).
//!
//! A template is parsed once, when its rule file loads, so syntax errors, undefined variables,
//! unknown functions and malformed literal regular expressions are load errors; rendering then
//! walks the tree for each alert. Output matches Prometheus byte for byte: values print as Go
//! prints them (`{{ $value }}` of 1234567 is `1.234567e+06`), the `humanize*` functions use
//! Go's `%.4g`, and a missing label renders as the empty string (Prometheus runs templates with
//! `missingkey=zero`).
//!
//! ```
//! use std::collections::BTreeMap;
//! use lumen_alerting::template::{Template, TemplateData};
//!
//! let template = Template::parse("{{ $labels.job }} at {{ $value | humanizePercentage }}").unwrap();
//! let labels = BTreeMap::from([("job".to_string(), "api".to_string())]);
//! let none = BTreeMap::new();
//! let data = TemplateData { labels: &labels, value: 0.1234, external_labels: &none, external_url: "" };
//! assert_eq!(template.render(&data).unwrap(), "api at 12.34%");
//! ```
//!
//! Supported: text; `{{- -}}` trimming; `{{/* comments */}}`; variables (`$`, `$labels`,
//! `$value`, `$externalLabels`, `$externalURL`, and declared ones); fields (`.Labels.job`,
//! `.Value`); literals; pipelines and parentheses; `if`/`else if`/`else`, `with`/`else with`,
//! `range` (over label maps and integers) with `break`/`continue`; Go's builtins (`and or not len
//! index print printf println html urlquery eq ne lt le gt ge`); and Prometheus's functions
//! (`humanize humanize1024 humanizeDuration humanizePercentage humanizeTimestamp toUpper toLower
//! title match reReplaceAll stripPort stripDomain safeHtml parseDuration externalURL
//! pathPrefix`). Not supported, and rejected at parse time: `query` and the functions that work
//! on its results, `define`/`template`/`block`, `tmpl`.

mod exec;
mod funcs;
mod gofmt;
mod lex;
mod parse;
mod value;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// What a template renders: one alert's labels and value, plus the server's external labels and
/// URL (`.Labels`/`$labels`, `.Value`/`$value`, `.ExternalLabels`, `.ExternalURL`).
#[derive(Clone, Copy, Debug)]
pub struct TemplateData<'a> {
    /// The alert's labels (`$labels`, `.Labels`).
    pub labels: &'a BTreeMap<String, String>,
    /// The alert's value (`$value`, `.Value`).
    pub value: f64,
    /// The server's external labels (`$externalLabels`, `.ExternalLabels`).
    pub external_labels: &'a BTreeMap<String, String>,
    /// The server's external URL (`$externalURL`, `.ExternalURL`, `externalURL`).
    pub external_url: &'a str,
}

/// A template that failed to parse or to render, with where in its text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct TemplateError {
    /// Byte offset in the template text.
    pub offset: usize,
    /// 1-based line in the template text.
    pub line: usize,
    /// 1-based column (in characters) in the template text.
    pub column: usize,
    /// What went wrong, in Go's words where Go has them.
    pub message: String,
}

impl TemplateError {
    fn at(src: &str, offset: usize, message: String) -> TemplateError {
        let offset = offset.min(src.len());
        let before = src.get(..offset).unwrap_or(src);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        TemplateError {
            offset,
            line,
            column,
            message,
        }
    }
}

/// A parse error before it knows its line and column.
#[derive(Debug)]
struct ParseError {
    pos: usize,
    message: String,
}

impl ParseError {
    fn new(pos: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            pos,
            message: message.into(),
        }
    }
}

/// A parsed template, cheap to clone.
#[derive(Clone)]
pub struct Template {
    source: Arc<str>,
    nodes: Arc<[parse::Node]>,
}

impl Template {
    /// Parses template text.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let nodes = lex::lex(text)
            .and_then(|items| parse::parse(text, items))
            .map_err(|e| TemplateError::at(text, e.pos, e.message))?;
        Ok(Template {
            source: text.into(),
            nodes: nodes.into(),
        })
    }

    /// A template that renders `text` as it is, `{{` included (recording rules' labels).
    pub fn literal(text: &str) -> Template {
        let nodes: Vec<parse::Node> = if text.is_empty() {
            Vec::new()
        } else {
            vec![parse::Node::Text(text.to_string())]
        };
        Template {
            source: text.into(),
            nodes: nodes.into(),
        }
    }

    /// Renders the template for one alert.
    pub fn render(&self, data: &TemplateData<'_>) -> Result<String, TemplateError> {
        exec::render(&self.nodes, data)
            .map_err(|e| TemplateError::at(&self.source, e.pos, e.message))
    }

    /// The text the template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template renders its source unchanged (no actions).
    pub fn is_plain_text(&self) -> bool {
        match &*self.nodes {
            [] => true,
            [parse::Node::Text(text)] => **text == *self.source,
            _ => false,
        }
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Template").field(&self.source).finish()
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PartialEq for Template {
    fn eq(&self, other: &Template) -> bool {
        self.source == other.source && self.is_plain_text() == other.is_plain_text()
    }
}

#[cfg(test)]
mod tests;
