//! Binary operators: arithmetic, comparison (filtering or `bool`), and the set operators
//! `and` / `or` / `unless`, with Prometheus's vector matching (`on`, `ignoring`, `group_left`,
//! `group_right`).

use std::collections::{HashMap, HashSet};

use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::error::{PromqlError, bad_data, exec_err};
use super::eval::{Evaluator, check_unique};
use super::value::{Labels, Sample, Value};

/// The operators PromQL knows, by their token text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl Op {
    fn parse(token: &str) -> Option<Op> {
        Some(match token.to_ascii_lowercase().as_str() {
            "+" => Op::Add,
            "-" => Op::Sub,
            "*" => Op::Mul,
            "/" => Op::Div,
            "%" => Op::Mod,
            "^" => Op::Pow,
            "atan2" => Op::Atan2,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            ">" => Op::Gt,
            "<" => Op::Lt,
            ">=" => Op::Ge,
            "<=" => Op::Le,
            "and" => Op::And,
            "or" => Op::Or,
            "unless" => Op::Unless,
            _ => return None,
        })
    }

    fn is_comparison(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Gt | Op::Lt | Op::Ge | Op::Le)
    }

    fn is_set(self) -> bool {
        matches!(self, Op::And | Op::Or | Op::Unless)
    }
}

/// Applies an arithmetic or comparison operator to two floats: `(value, keep)`. Comparisons
/// return the left value and whether the comparison held.
fn apply(op: Op, l: f64, r: f64) -> (f64, bool) {
    match op {
        Op::Add => (l + r, true),
        Op::Sub => (l - r, true),
        Op::Mul => (l * r, true),
        Op::Div => (l / r, true),
        Op::Mod => (l % r, true),
        Op::Pow => (l.powf(r), true),
        Op::Atan2 => (l.atan2(r), true),
        Op::Eq => (l, l == r),
        Op::Ne => (l, l != r),
        Op::Gt => (l, l > r),
        Op::Lt => (l, l < r),
        Op::Ge => (l, l >= r),
        Op::Le => (l, l <= r),
        Op::And | Op::Or | Op::Unless => (f64::NAN, false),
    }
}

impl Evaluator<'_> {
    /// Evaluates a binary expression at `t`.
    pub(super) fn eval_binary(&self, b: &BinaryExpr, t: i64) -> Result<Value, PromqlError> {
        let ev = self;
        let op_text = b.op.to_string();
        let Some(op) = Op::parse(&op_text) else {
            return bad_data(format!("unknown binary operator {op_text:?}"));
        };
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let lhs = ev.eval(&b.lhs, t)?;
        let rhs = ev.eval(&b.rhs, t)?;
        match (lhs, rhs) {
            (Value::Scalar(l), Value::Scalar(r)) => {
                let (v, keep) = apply(op, l, r);
                if op.is_comparison() {
                    if !return_bool {
                        return bad_data("comparisons between scalars must use BOOL modifier");
                    }
                    return Ok(Value::Scalar(if keep { 1.0 } else { 0.0 }));
                }
                Ok(Value::Scalar(v))
            }
            (Value::Vector(l), Value::Scalar(r)) => vector_scalar(op, l, r, false, return_bool),
            (Value::Scalar(l), Value::Vector(r)) => vector_scalar(op, r, l, true, return_bool),
            (Value::Vector(l), Value::Vector(r)) => {
                let out = if op.is_set() {
                    set_op(op, b, l, r)
                } else {
                    vector_vector(op, b, l, r, return_bool)?
                };
                check_unique(&out)?;
                Ok(Value::Vector(out))
            }
            (l, r) => bad_data(format!(
                "binary expression must contain only scalar and instant vector types, got {} and {}",
                l.type_name(),
                r.type_name()
            )),
        }
    }
}

fn vector_scalar(
    op: Op,
    vector: Vec<Sample>,
    scalar: f64,
    scalar_on_left: bool,
    return_bool: bool,
) -> Result<Value, PromqlError> {
    if op.is_set() {
        return bad_data("set operator not allowed in binary scalar expression");
    }
    let drop_name = !op.is_comparison() || return_bool;
    let mut out = Vec::with_capacity(vector.len());
    for s in vector {
        let (l, r) = if scalar_on_left {
            (scalar, s.value)
        } else {
            (s.value, scalar)
        };
        let (mut value, keep) = apply(op, l, r);
        if op.is_comparison() && scalar_on_left {
            value = s.value;
        }
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        let labels = if drop_name {
            s.labels.without_metric_name()
        } else {
            s.labels
        };
        out.push(Sample { labels, value });
    }
    check_unique(&out)?;
    Ok(Value::Vector(out))
}

/// How series of the two sides are matched.
struct Matching<'a> {
    on: bool,
    labels: &'a [String],
}

impl Matching<'_> {
    fn of(b: &BinaryExpr) -> Matching<'_> {
        match b.modifier.as_ref().and_then(|m| m.matching.as_ref()) {
            Some(LabelModifier::Include(l)) => Matching {
                on: true,
                labels: &l.labels,
            },
            Some(LabelModifier::Exclude(l)) => Matching {
                on: false,
                labels: &l.labels,
            },
            None => Matching {
                on: false,
                labels: &[],
            },
        }
    }

    fn signature(&self, l: &Labels) -> Labels {
        if self.on {
            l.keep_only(self.labels)
        } else {
            l.drop_with_name(self.labels)
        }
    }
}

fn set_op(op: Op, b: &BinaryExpr, lhs: Vec<Sample>, rhs: Vec<Sample>) -> Vec<Sample> {
    let m = Matching::of(b);
    match op {
        Op::And => {
            let right: HashSet<Labels> = rhs.iter().map(|s| m.signature(&s.labels)).collect();
            lhs.into_iter()
                .filter(|s| right.contains(&m.signature(&s.labels)))
                .collect()
        }
        Op::Unless => {
            let right: HashSet<Labels> = rhs.iter().map(|s| m.signature(&s.labels)).collect();
            lhs.into_iter()
                .filter(|s| !right.contains(&m.signature(&s.labels)))
                .collect()
        }
        _ => {
            let left: HashSet<Labels> = lhs.iter().map(|s| m.signature(&s.labels)).collect();
            let mut out = lhs;
            out.extend(
                rhs.into_iter()
                    .filter(|s| !left.contains(&m.signature(&s.labels))),
            );
            out
        }
    }
}

fn vector_vector(
    op: Op,
    b: &BinaryExpr,
    lhs: Vec<Sample>,
    rhs: Vec<Sample>,
    return_bool: bool,
) -> Result<Vec<Sample>, PromqlError> {
    if lhs.is_empty() || rhs.is_empty() {
        return Ok(Vec::new());
    }
    let m = Matching::of(b);
    let card = b.modifier.as_ref().map(|m| &m.card);
    let (include, swapped, one_to_one): (&[String], bool, bool) = match card {
        Some(VectorMatchCardinality::ManyToOne(l)) => (&l.labels, false, false),
        Some(VectorMatchCardinality::OneToMany(l)) => (&l.labels, true, false),
        _ => (&[], false, true),
    };
    let (many, one) = if swapped { (rhs, lhs) } else { (lhs, rhs) };

    let mut one_by_sig: HashMap<Labels, &Sample> = HashMap::with_capacity(one.len());
    for s in &one {
        let sig = m.signature(&s.labels);
        if let Some(dup) = one_by_sig.get(&sig) {
            let side = if swapped { "left" } else { "right" };
            let group = if m.on {
                s.labels.keep_only(m.labels)
            } else {
                s.labels.drop_with_name(m.labels)
            };
            return exec_err(format!(
                "found duplicate series for the match group {group} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                dup.labels, s.labels
            ));
        }
        one_by_sig.insert(sig, s);
    }

    let drop_name = !op.is_comparison() || return_bool;
    let mut matched: HashMap<Labels, HashSet<Labels>> = HashMap::new();
    let mut out = Vec::new();
    for s in &many {
        let sig = m.signature(&s.labels);
        let Some(o) = one_by_sig.get(&sig) else {
            continue;
        };
        if one_to_one {
            // Checked before filtering: a comparison must not hide ambiguous matching.
            let seen = matched.entry(sig.clone()).or_default();
            if !seen.is_empty() {
                return exec_err(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                );
            }
            seen.insert(Labels::empty());
        }
        let (l, r) = if swapped {
            (o.value, s.value)
        } else {
            (s.value, o.value)
        };
        let (mut value, keep) = apply(op, l, r);
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        let mut labels = s.labels.clone();
        if drop_name {
            labels = labels.without_metric_name();
        }
        if one_to_one {
            labels = if m.on {
                labels.keep_only(m.labels)
            } else {
                drop_listed(&labels, m.labels)
            };
        }
        for name in include {
            match o.labels.get(name) {
                Some(v) => {
                    let v = v.to_string();
                    labels.set(name, &v);
                }
                None => labels.remove(name),
            }
        }
        if !one_to_one && !matched.entry(sig).or_default().insert(labels.clone()) {
            return exec_err(
                "multiple matches for labels: grouping labels must ensure unique matches",
            );
        }
        out.push(Sample { labels, value });
    }
    Ok(out)
}

/// `labels` without the names listed (the metric name is handled separately).
fn drop_listed(labels: &Labels, names: &[String]) -> Labels {
    let mut out = labels.clone();
    for n in names {
        out.remove(n);
    }
    out
}
