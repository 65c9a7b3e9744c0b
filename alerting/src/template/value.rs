//! The values a template computes with: the few Go types that alert templates can reach.

use std::collections::BTreeMap;

use super::TemplateData;

/// A template value, named after the Go type it stands for.
#[derive(Clone, Debug)]
pub(super) enum Value<'d> {
    /// `nil`.
    Nil,
    /// `bool`.
    Bool(bool),
    /// `int`: integer literals, `len`.
    Int(i64),
    /// `float64`: `$value`, float literals.
    Float(f64),
    /// `string`.
    Str(String),
    /// `map[string]string`: `$labels`, `$externalLabels`.
    Map(&'d BTreeMap<String, String>),
    /// The data the template runs on (`.`, `$`).
    Data(&'d TemplateData<'d>),
}

impl Value<'_> {
    /// Go's type name, for error messages and `%!v(type=value)`.
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Map(_) => "map[string]string",
            Value::Data(_) => {
                "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value float64 }"
            }
        }
    }

    /// Go's truth: false, 0, nil and empty strings and maps are false.
    pub(super) fn is_true(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Data(_) => true,
        }
    }
}
