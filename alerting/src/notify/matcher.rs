//! Receiver matchers: which alerts a receiver gets.
//!
//! A receiver's `matchers` is either a map of label → exact value
//! (`matchers = { severity = "page" }`) or a list of Prometheus/Alertmanager matcher strings
//! (`matchers = ['severity=~"page|critical"', 'team!="db"']`). An alert goes to the receiver when
//! every matcher matches; a missing label matches as the empty string, and regular expressions are
//! anchored at both ends, as in Prometheus.

use std::fmt;

use regex::Regex;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::alert::LabelSet;

/// How a matcher compares a label value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~` (anchored regular expression)
    Regex,
    /// `!~`
    NotRegex,
}

impl MatchOp {
    fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One label matcher, e.g. `severity=~"page|critical"`.
#[derive(Clone, Debug)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Comparison.
    pub op: MatchOp,
    /// Value or regular expression as written.
    pub value: String,
    regex: Option<Regex>,
}

impl Matcher {
    /// Builds a matcher, compiling the (anchored) regular expression for `=~` and `!~`.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Self, String> {
        if !is_label_name(name) {
            return Err(format!("{name:?} is not a valid label name"));
        }
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                Some(Regex::new(&format!("^(?:{value})$")).map_err(|err| {
                    format!("matcher on {name:?}: invalid regular expression {value:?}: {err}")
                })?)
            }
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    /// Parses `name="value"`, `name!="value"`, `name=~"re"` or `name!~"re"` (the value may also be
    /// unquoted, as Alertmanager accepts).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let name_end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or_else(|| {
                format!("matcher {text:?} has no operator; write e.g. severity=\"page\"")
            })?;
        let name = &text[..name_end];
        let rest = text[name_end..].trim_start();
        let (op, rest) = if let Some(rest) = rest.strip_prefix("=~") {
            (MatchOp::Regex, rest)
        } else if let Some(rest) = rest.strip_prefix("!~") {
            (MatchOp::NotRegex, rest)
        } else if let Some(rest) = rest.strip_prefix("!=") {
            (MatchOp::NotEqual, rest)
        } else if let Some(rest) = rest.strip_prefix('=') {
            (MatchOp::Equal, rest)
        } else {
            return Err(format!(
                "matcher {text:?}: expected one of =, !=, =~, !~ after the label name"
            ));
        };
        let rest = rest.trim();
        let value = if let Some(quoted) = rest.strip_prefix('"') {
            unquote(quoted).ok_or_else(|| {
                format!("matcher {text:?}: unterminated or badly escaped quoted value")
            })?
        } else {
            rest.to_string()
        };
        Matcher::new(name, op, &value).map_err(|err| format!("matcher {text:?}: {err}"))
    }

    /// Whether the label set satisfies this matcher (a missing label is the empty string).
    pub fn matches(&self, labels: &LabelSet) -> bool {
        let value = labels.get(&self.name).map(String::as_str).unwrap_or("");
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(regex)) => regex.is_match(value),
            (MatchOp::NotRegex, Some(regex)) => !regex.is_match(value),
            // Unreachable by construction; refuse rather than match everything.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.name, self.op.as_str(), quote(&self.value))
    }
}

/// Formats matchers as Alertmanager writes a route's key part: `{a="x",b=~"y"}`.
pub fn format_matchers(matchers: &[Matcher]) -> String {
    let parts: Vec<String> = matchers.iter().map(ToString::to_string).collect();
    format!("{{{}}}", parts.join(","))
}

/// Go-style double-quoted string (what Alertmanager prints in group keys).
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Reads the rest of a double-quoted value (after the opening quote) up to its closing quote.
fn unquote(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return chars.as_str().trim().is_empty().then_some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// Prometheus label name syntax: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(super) fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Serde helper: `matchers` as a map of exact values or a list of matcher strings.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Matcher>, D::Error> {
    struct MatchersVisitor;

    impl<'de> Visitor<'de> for MatchersVisitor {
        type Value = Vec<Matcher>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(r#"a map of label = "exact value", or a list of matchers like 'severity=~"page|critical"'"#)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((name, value)) = map.next_entry::<String, String>()? {
                out.push(Matcher::new(&name, MatchOp::Equal, &value).map_err(de::Error::custom)?);
            }
            Ok(out)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(text) = seq.next_element::<String>()? {
                out.push(Matcher::parse(&text).map_err(de::Error::custom)?);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_any(MatchersVisitor)
}

#[cfg(test)]
mod tests;
