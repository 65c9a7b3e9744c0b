//! Turns a rule file's YAML into rule groups, collecting every problem with the line and
//! column of the value at fault: what `promtool check rules` rejects, plus Lumen's `sql:` rules.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use lumen_query::promql::Engine;

use super::yaml::{self, Kind, Node};
use super::{Rule, RuleError, RuleGroup, RuleKind, RuleQuery};
use crate::template::Template;

const FILE_KEYS: &[&str] = &["groups"];
const GROUP_KEYS: &[&str] = &[
    "name",
    "interval",
    "query_offset",
    "limit",
    "labels",
    "rules",
];
const RULE_KEYS: &[&str] = &[
    "alert",
    "record",
    "expr",
    "sql",
    "for",
    "keep_firing_for",
    "labels",
    "annotations",
];

/// Parses and checks one file's text.
pub(super) fn check_file(path: &Path, text: &str) -> Result<Vec<RuleGroup>, Vec<RuleError>> {
    let mut checker = Checker {
        file: path,
        text,
        errors: Vec::new(),
    };
    let groups = match yaml::parse(text) {
        Err(e) => {
            checker.error_at(e.line, e.column, e.message);
            Vec::new()
        }
        Ok(Some(root)) if !root.is_null() => checker.file(&root),
        Ok(_) => Vec::new(),
    };
    if checker.errors.is_empty() {
        Ok(groups)
    } else {
        Err(checker.errors)
    }
}

/// A mapping's entries by name.
struct Fields<'n> {
    entries: Vec<(&'n str, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    /// The key and value nodes of `name`.
    fn get(&self, name: &str) -> Option<(&'n Node, &'n Node)> {
        self.entries
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, k, v)| (*k, *v))
    }

    /// The value of `name`, unless absent or null.
    fn value(&self, name: &str) -> Option<&'n Node> {
        self.get(name).map(|(_, v)| v).filter(|v| !v.is_null())
    }
}

struct Checker<'a> {
    file: &'a Path,
    text: &'a str,
    errors: Vec<RuleError>,
}

impl Checker<'_> {
    fn error_at(&mut self, line: usize, column: usize, message: String) {
        self.errors.push(RuleError {
            file: self.file.to_path_buf(),
            line,
            column,
            message,
        });
    }

    fn error(&mut self, node: &Node, message: String) {
        self.error_at(node.mark.line, node.mark.column, message);
    }

    /// A mapping's entries, reporting keys outside `allowed`.
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        allowed: &[&str],
        context: &str,
    ) -> Option<Fields<'n>> {
        let Kind::Map(map) = &node.kind else {
            self.error(
                node,
                format!("{context}: expected a mapping, found {}", node.describe()),
            );
            return None;
        };
        let mut entries = Vec::with_capacity(map.len());
        for (key, value) in map {
            let Some(name) = key.as_str() else {
                self.error(
                    key,
                    format!("{context}: keys must be strings, found {}", key.describe()),
                );
                continue;
            };
            if !allowed.contains(&name) {
                let hint = match closest(name, allowed) {
                    Some(near) => format!("did you mean {near:?}?"),
                    None => format!("expected one of: {}", allowed.join(", ")),
                };
                self.error(key, format!("{context}: unknown field {name:?}; {hint}"));
                continue;
            }
            entries.push((name, key, value));
        }
        Some(Fields { entries })
    }

    /// A scalar's text ("" for null), or an error for lists and mappings.
    fn string(&mut self, node: &Node, field: &str, context: &str) -> Option<String> {
        if node.is_null() {
            return Some(String::new());
        }
        match node.as_str() {
            Some(text) => Some(text.to_string()),
            None => {
                self.error(
                    node,
                    format!(
                        "{context}: {field} must be a string, found {}",
                        node.describe()
                    ),
                );
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, field: &str, context: &str) -> Option<Duration> {
        let text = self.string(node, field, context)?;
        match lumen_storage::duration::parse(&text) {
            Ok(duration) => Some(duration),
            Err(e) => {
                self.error(node, format!("{context}: {field}: {e}"));
                None
            }
        }
    }

    fn file(&mut self, root: &Node) -> Vec<RuleGroup> {
        let Some(fields) = self.fields(root, FILE_KEYS, "rule file") else {
            return Vec::new();
        };
        let Some(groups) = fields.value("groups") else {
            return Vec::new();
        };
        let Kind::List(items) = &groups.kind else {
            self.error(
                groups,
                format!("groups must be a list, found {}", groups.describe()),
            );
            return Vec::new();
        };
        let mut seen: Vec<(String, usize)> = Vec::new();
        let mut out = Vec::new();
        for (index, item) in items.iter().enumerate() {
            if let Some(group) = self.group(item, index, &mut seen) {
                out.push(group);
            }
        }
        out
    }

    fn group(
        &mut self,
        node: &Node,
        index: usize,
        seen: &mut Vec<(String, usize)>,
    ) -> Option<RuleGroup> {
        let fields = self.fields(node, GROUP_KEYS, &format!("group {}", index + 1))?;
        let name = match fields.get("name") {
            None => {
                self.error(node, format!("group {}: name is missing", index + 1));
                String::new()
            }
            Some((_, value)) => {
                let name = self
                    .string(value, "name", &format!("group {}", index + 1))
                    .unwrap_or_default();
                if name.is_empty() {
                    self.error(
                        value,
                        format!("group {}: name must not be empty", index + 1),
                    );
                } else if let Some((_, line)) = seen.iter().find(|(n, _)| *n == name) {
                    self.error(
                        value,
                        format!(
                            "group name {name:?} is repeated in this file (first at line {line})"
                        ),
                    );
                } else {
                    seen.push((name.clone(), value.mark.line));
                }
                name
            }
        };
        let context = if name.is_empty() {
            format!("group {}", index + 1)
        } else {
            format!("group {name:?}")
        };
        let errors_before = self.errors.len();

        let interval = fields
            .value("interval")
            .and_then(|v| self.duration(v, "interval", &context));
        let query_offset = fields
            .value("query_offset")
            .and_then(|v| self.duration(v, "query_offset", &context));
        let limit = match fields.value("limit") {
            None => 0,
            Some(node) => {
                let text = self.string(node, "limit", &context).unwrap_or_default();
                match text.trim().parse::<usize>() {
                    Ok(limit) => limit,
                    Err(_) => {
                        self.error(
                            node,
                            format!("{context}: limit must be a non-negative whole number, found {text:?}"),
                        );
                        0
                    }
                }
            }
        };
        let mut labels = BTreeMap::new();
        if let Some(node) = fields.value("labels") {
            for (label, value, _) in self.label_map(node, "labels", &context) {
                labels.insert(label, value);
            }
        }
        let mut rules = Vec::new();
        if let Some(node) = fields.value("rules") {
            match &node.kind {
                Kind::List(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(rule) = self.rule(item, &format!("{context}, rule {}", i + 1)) {
                            rules.push(rule);
                        }
                    }
                }
                _ => self.error(
                    node,
                    format!("{context}: rules must be a list, found {}", node.describe()),
                ),
            }
        }
        if self.errors.len() > errors_before || name.is_empty() {
            return None;
        }
        Some(RuleGroup {
            name,
            file: self.file.to_path_buf(),
            // Prometheus reads an interval of 0 as "use the default".
            interval: interval.filter(|i| !i.is_zero()),
            query_offset,
            limit,
            labels,
            rules,
        })
    }

    fn rule(&mut self, node: &Node, context: &str) -> Option<Rule> {
        let fields = self.fields(node, RULE_KEYS, context)?;
        let errors_before = self.errors.len();
        let alert = fields
            .get("alert")
            .and_then(|(_, v)| self.string(v, "alert", context))
            .unwrap_or_default();
        let record = fields
            .get("record")
            .and_then(|(_, v)| self.string(v, "record", context))
            .unwrap_or_default();
        let (kind, name) = match (alert.is_empty(), record.is_empty()) {
            (false, true) => (RuleKind::Alerting, alert),
            (true, false) => (RuleKind::Recording, record),
            (false, false) => {
                self.error(
                    node,
                    format!("{context}: only one of alert and record may be set"),
                );
                return None;
            }
            (true, true) => {
                self.error(
                    node,
                    format!("{context}: one of alert or record must be set"),
                );
                return None;
            }
        };
        let context = &format!("{context} ({name:?})");
        if kind == RuleKind::Recording && !is_valid_metric_name(&name) {
            let at = fields.value("record").unwrap_or(node);
            self.error(at, format!("{context}: invalid recording rule name {name:?}: must match [a-zA-Z_:][a-zA-Z0-9_:]*"));
        }

        let query = self.query(node, &fields, context);

        let mut for_duration = Duration::ZERO;
        let mut keep_firing_for = Duration::ZERO;
        for field in ["for", "keep_firing_for"] {
            let Some((key, value)) = fields.get(field) else {
                continue;
            };
            if kind == RuleKind::Recording {
                self.error(
                    key,
                    format!("{context}: {field} is not allowed in a recording rule"),
                );
                continue;
            }
            if value.is_null() {
                continue;
            }
            let duration = self.duration(value, field, context).unwrap_or_default();
            if field == "for" {
                for_duration = duration;
            } else {
                keep_firing_for = duration;
            }
        }

        let mut labels = BTreeMap::new();
        if let Some(node) = fields.value("labels") {
            for (label, text, value_node) in self.label_map(node, "labels", context) {
                let template = match kind {
                    // Recording rules' label values are taken literally, as in Prometheus.
                    RuleKind::Recording => Some(Template::literal(&text)),
                    RuleKind::Alerting => {
                        self.template(&text, value_node, &format!("{context}: label {label:?}"))
                    }
                };
                if let Some(template) = template {
                    labels.insert(label, template);
                }
            }
        }
        let mut annotations = BTreeMap::new();
        if let Some((key, value)) = fields.get("annotations") {
            if kind == RuleKind::Recording {
                self.error(
                    key,
                    format!("{context}: annotations are not allowed in a recording rule"),
                );
            } else if !value.is_null() {
                for (name, text, value_node) in self.label_map(value, "annotations", context) {
                    if let Some(template) = self.template(
                        &text,
                        value_node,
                        &format!("{context}: annotation {name:?}"),
                    ) {
                        annotations.insert(name, template);
                    }
                }
            }
        }

        if self.errors.len() > errors_before {
            return None;
        }
        Some(Rule {
            name,
            kind,
            query: query?,
            for_duration,
            keep_firing_for,
            labels,
            annotations,
            line: node.mark.line,
        })
    }

    /// The rule's `expr` or `sql`, checked.
    fn query(&mut self, rule: &Node, fields: &Fields<'_>, context: &str) -> Option<RuleQuery> {
        match (fields.get("expr"), fields.get("sql")) {
            (Some(_), Some((sql_key, _))) => {
                self.error(
                    sql_key,
                    format!("{context}: only one of expr and sql may be set"),
                );
                None
            }
            (None, None) => {
                self.error(
                    rule,
                    format!("{context}: one of expr (PromQL) or sql must be set"),
                );
                None
            }
            (Some((_, node)), None) => {
                let text = self.string(node, "expr", context)?;
                if text.trim().is_empty() {
                    self.error(node, format!("{context}: expr must not be empty"));
                    return None;
                }
                match Engine::parse(&text) {
                    Ok(_) => Some(RuleQuery::Promql(text)),
                    Err(e) => {
                        self.error(node, format!("{context}: expr: invalid PromQL: {e}"));
                        None
                    }
                }
            }
            (None, Some((_, node))) => {
                let text = self.string(node, "sql", context)?;
                match sql_problem(&text) {
                    None => Some(RuleQuery::Sql(text)),
                    Some(problem) => {
                        self.error(node, format!("{context}: sql: {problem}"));
                        None
                    }
                }
            }
        }
    }

    /// A `labels` or `annotations` mapping: (name, value, value node) for each valid entry.
    fn label_map<'n>(
        &mut self,
        node: &'n Node,
        field: &str,
        context: &str,
    ) -> Vec<(String, String, &'n Node)> {
        let Kind::Map(map) = &node.kind else {
            self.error(
                node,
                format!(
                    "{context}: {field} must be a mapping, found {}",
                    node.describe()
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::with_capacity(map.len());
        for (key, value) in map {
            let Some(name) = key.as_str() else {
                self.error(
                    key,
                    format!(
                        "{context}: {field} names must be strings, found {}",
                        key.describe()
                    ),
                );
                continue;
            };
            let what = if field == "labels" {
                "label"
            } else {
                "annotation"
            };
            if !is_valid_label_name(name) || (field == "labels" && name == "__name__") {
                self.error(
                    key,
                    format!(
                        "{context}: invalid {what} name {name:?}: must match [a-zA-Z_][a-zA-Z0-9_]*"
                    ),
                );
                continue;
            }
            let Some(text) = self.string(value, &format!("{what} {name:?}"), context) else {
                continue;
            };
            out.push((name.to_string(), text, value));
        }
        out
    }

    fn template(&mut self, text: &str, node: &Node, context: &str) -> Option<Template> {
        match Template::parse(text) {
            Ok(template) => Some(template),
            Err(e) => {
                let (line, column) = node.position_of(self.text, e.offset);
                self.error_at(
                    line,
                    column,
                    format!(
                        "{context}: invalid template: {} (template {}:{})",
                        e.message, e.line, e.column
                    ),
                );
                None
            }
        }
    }
}

/// Prometheus's (legacy) metric-name rule: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub(crate) fn is_valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Prometheus's label-name rule: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(crate) fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Why `sql` is obviously not a query, if it is not: after white space, comments and opening
/// parentheses it must start with `SELECT` or `WITH`. Everything else is checked when the rule
/// runs, by the same read-only policy as every SQL query Lumen serves.
fn sql_problem(sql: &str) -> Option<String> {
    let mut rest = sql;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
        if let Some(comment) = rest.strip_prefix("--") {
            rest = comment.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(comment) = rest.strip_prefix("/*") {
            rest = comment.split_once("*/").map_or("", |(_, after)| after);
        } else {
            break;
        }
    }
    if rest.is_empty() {
        return Some("must not be empty".into());
    }
    let word: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if word.eq_ignore_ascii_case("select") || word.eq_ignore_ascii_case("with") {
        return sql_syntax_problem(sql);
    }
    let found: String = if word.is_empty() {
        rest.chars().take(10).collect()
    } else {
        word
    };
    Some(format!(
        "must be a read-only query starting with SELECT or WITH, found {found:?}"
    ))
}

/// A syntax error in the query, as DataFusion's SQL parser reports it (with the line and column
/// within the query); `$__eval_time` stands for a timestamp.
fn sql_syntax_problem(sql: &str) -> Option<String> {
    let text = sql.replace(crate::group::EVAL_TIME_TOKEN, "now()");
    match datafusion::sql::parser::DFParser::parse_sql(&text) {
        Ok(statements) if statements.len() == 1 => None,
        Ok(statements) => Some(format!(
            "must be exactly one statement, found {}",
            statements.len()
        )),
        Err(err) => Some(format!("invalid SQL: {err}")),
    }
}

/// The allowed name within edit distance 2 of `name`, if any (for "did you mean").
fn closest<'a>(name: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|candidate| (edit_distance(name, candidate), *candidate))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}
