//! Rule files: Prometheus's YAML format (`groups:` of alerting and recording rules), plus
//! Lumen's `sql:` rules, loaded and checked the way `promtool check rules` checks them.
//!
//! ```text
//! file or directory ──► load ──► yaml (nodes with line:column) ──► check ──► Vec<RuleGroup>
//!                                                                    │
//!                              every problem, each at its line:column ┘ (Vec<RuleError>)
//! ```
//!
//! Loading parses everything that can be parsed up front: PromQL expressions (with Lumen's
//! PromQL parser), label and annotation templates, durations. SQL is only checked to be a query
//! (it must start with `SELECT` or `WITH`); the evaluator's read-only SQL policy does the rest.
//!
//! ```
//! use std::path::Path;
//! use lumen_alerting::rules::{parse_rule_file, RuleKind};
//!
//! let groups = parse_rule_file(Path::new("example.yml"), r#"
//! groups:
//!   - name: example
//!     rules:
//!       - alert: InstanceDown
//!         expr: up == 0
//!         for: 5m
//!         annotations:
//!           summary: "Instance {{ $labels.instance }} down"
//! "#).unwrap();
//! assert_eq!(groups[0].rules[0].kind, RuleKind::Alerting);
//! ```

mod check;
mod yaml;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::template::Template;

/// A group of rules evaluated together, in order, on one interval.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleGroup {
    /// Unique within its file.
    pub name: String,
    /// The file the group was read from.
    pub file: PathBuf,
    /// How often to evaluate; `None` for the server's default (an `interval` of 0 also means
    /// the default, as in Prometheus).
    pub interval: Option<Duration>,
    /// How far back from the evaluation time queries run; `None` for the server's default.
    pub query_offset: Option<Duration>,
    /// Most alerts (per alerting rule) or series (per recording rule) one evaluation may
    /// produce before the rule fails; 0 for no limit.
    pub limit: usize,
    /// Labels added to every rule's output (a rule's own labels win on conflict).
    pub labels: BTreeMap<String, String>,
    /// The rules, in file order.
    pub rules: Vec<Rule>,
}

/// One alerting or recording rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// The alert name, or the recorded metric name.
    pub name: String,
    /// Alerting or recording.
    pub kind: RuleKind,
    /// What the rule evaluates.
    pub query: RuleQuery,
    /// How long a condition must hold before the alert fires (alerting rules; zero otherwise).
    pub for_duration: Duration,
    /// How long an alert keeps firing after its condition clears (alerting rules).
    pub keep_firing_for: Duration,
    /// Labels added to the output; alerting rules' values are templates, recording rules' are
    /// literal text (`Template::literal`).
    pub labels: BTreeMap<String, Template>,
    /// Annotations of the alerts (alerting rules only).
    pub annotations: BTreeMap<String, Template>,
    /// The line of the rule in its file.
    pub line: usize,
}

/// Whether a rule raises alerts or records series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleKind {
    /// `alert:`.
    Alerting,
    /// `record:`.
    Recording,
}

/// What a rule evaluates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleQuery {
    /// `expr:`, parsed and valid PromQL.
    Promql(String),
    /// `sql:` (Lumen's extension): a read-only SQL query whose rows are the samples, with a
    /// numeric `value` column and string columns as labels.
    Sql(String),
}

impl RuleQuery {
    /// The query text.
    pub fn text(&self) -> &str {
        match self {
            RuleQuery::Promql(text) | RuleQuery::Sql(text) => text,
        }
    }
}

/// A problem in a rule file, at a line and column of it (both 1-based; 0 when the problem is
/// the file as a whole, such as being unreadable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    /// The rule file (or directory) at fault.
    pub file: PathBuf,
    /// 1-based line, 0 for the whole file.
    pub line: usize,
    /// 1-based column in characters, 0 for the whole file.
    pub column: usize,
    /// What is wrong, naming the group and rule.
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

impl std::error::Error for RuleError {}

impl RuleError {
    fn whole_file(file: &Path, message: String) -> RuleError {
        RuleError {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message,
        }
    }
}

/// Parses the text of one rule file, returning every problem found (not just the first).
/// An empty file, or `groups: []`, has no groups.
pub fn parse_rule_file(path: &Path, text: &str) -> Result<Vec<RuleGroup>, Vec<RuleError>> {
    check::check_file(path, text)
}

/// Reads and parses one rule file.
pub fn load_file(path: &Path) -> Result<Vec<RuleGroup>, Vec<RuleError>> {
    let bytes = std::fs::read(path)
        .map_err(|e| vec![RuleError::whole_file(path, format!("cannot read: {e}"))])?;
    let text = String::from_utf8(bytes).map_err(|e| {
        vec![RuleError::whole_file(
            path,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        )]
    })?;
    parse_rule_file(path, &text)
}

/// The rule files `paths` name: each path is a file, or a directory whose `*.yml` and `*.yaml`
/// files are taken in name order (not recursively). Paths that cannot be read are errors.
pub fn rule_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<RuleError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Err(e) => errors.push(RuleError::whole_file(path, format!("cannot read: {e}"))),
            Ok(meta) if meta.is_dir() => match std::fs::read_dir(path) {
                Err(e) => errors.push(RuleError::whole_file(
                    path,
                    format!("cannot read directory: {e}"),
                )),
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .filter_map(|entry| entry.ok().map(|e| e.path()))
                        .filter(|p| {
                            p.extension()
                                .is_some_and(|ext| ext == "yml" || ext == "yaml")
                        })
                        .filter(|p| p.is_file())
                        .collect();
                    found.sort();
                    files.extend(found);
                }
            },
            Ok(_) => files.push(path.clone()),
        }
    }
    (files, errors)
}

/// Loads every rule file `paths` name (see [`rule_files`]), returning all groups in file
/// order, or every problem in every file.
pub fn load(paths: &[PathBuf]) -> Result<Vec<RuleGroup>, Vec<RuleError>> {
    let (files, mut errors) = rule_files(paths);
    let mut groups = Vec::new();
    for file in &files {
        match load_file(file) {
            Ok(found) => groups.extend(found),
            Err(found) => errors.extend(found),
        }
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests;
