//! PromQL value types: label sets, series, samples and the four result types.

use std::fmt;
use std::sync::Arc;

use promql_parser::label::{Matcher, Matchers};

/// The reserved label holding a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// Bit pattern of Prometheus's staleness marker, a NaN that ends a series.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Whether `v` is Prometheus's staleness marker (not just any NaN).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// The staleness marker value.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// A set of labels, kept sorted by name with unique names and no empty values.
///
/// Shared and immutable: a clone is a reference count, and the hash of the pairs is computed
/// once when the set is built, so the evaluator can copy label sets into every step's samples and
/// key hash maps by them without re-hashing strings ([`LabelsMap`]).
#[derive(Clone)]
pub struct Labels(Arc<LabelsInner>);

struct LabelsInner {
    hash: u64,
    pairs: Vec<(String, String)>,
}

impl Labels {
    /// Builds a label set from pairs in any order; later duplicates win, empty values are dropped.
    pub fn new(mut pairs: Vec<(String, String)>) -> Self {
        pairs.reverse();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|later, earlier| later.0 == earlier.0);
        pairs.retain(|(_, v)| !v.is_empty());
        Labels::from_sorted(pairs)
    }

    /// Wraps pairs that are already sorted, unique and non-empty.
    fn from_sorted(pairs: Vec<(String, String)>) -> Self {
        Labels(Arc::new(LabelsInner {
            hash: hash_pairs(&pairs),
            pairs,
        }))
    }

    /// The empty label set.
    pub fn empty() -> Self {
        static EMPTY: std::sync::LazyLock<Labels> =
            std::sync::LazyLock::new(|| Labels::from_sorted(Vec::new()));
        EMPTY.clone()
    }

    /// Applies `edit` to a copy of the pairs (or to the pairs, if not shared).
    fn edit(&mut self, edit: impl FnOnce(&mut Vec<(String, String)>)) {
        let inner = Arc::make_mut(&mut self.0);
        edit(&mut inner.pairs);
        inner.hash = hash_pairs(&inner.pairs);
    }

    /// Whether both are the very same shared set (a cheap, conservative equality test).
    pub fn same_set(&self, other: &Labels) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .pairs
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.0.pairs[i].1.as_str())
    }

    /// Sets `name` to `value`; an empty value removes the label.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.pairs.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) if value.is_empty() => self.edit(|p| {
                p.remove(i);
            }),
            Ok(i) if self.0.pairs[i].1 == value => {}
            Ok(i) => self.edit(|p| p[i].1 = value.to_string()),
            Err(_) if value.is_empty() => {}
            Err(i) => self.edit(|p| p.insert(i, (name.to_string(), value.to_string()))),
        }
    }

    /// Removes `name` if set.
    pub fn remove(&mut self, name: &str) {
        if let Ok(i) = self.0.pairs.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            self.edit(|p| {
                p.remove(i);
            });
        }
    }

    /// The metric name (`__name__`), if set.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// A copy without the metric name.
    pub fn without_metric_name(&self) -> Labels {
        let mut out = self.clone();
        out.remove(METRIC_NAME);
        out
    }

    /// Only the labels named in `names` (`on (...)`, `by (...)`).
    pub fn keep_only(&self, names: &[String]) -> Labels {
        Labels::from_sorted(
            self.0
                .pairs
                .iter()
                .filter(|(n, _)| names.contains(n))
                .cloned()
                .collect(),
        )
    }

    /// All labels except those in `names` and the metric name (`ignoring (...)`, `without (...)`).
    pub fn drop_with_name(&self, names: &[String]) -> Labels {
        Labels::from_sorted(
            self.0
                .pairs
                .iter()
                .filter(|(n, _)| n != METRIC_NAME && !names.contains(n))
                .cloned()
                .collect(),
        )
    }

    /// Iterates over `(name, value)` pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.pairs.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.pairs.is_empty()
    }

    /// Whether the label set satisfies every matcher (an unset label matches as "").
    pub fn matches_all(&self, matchers: &[Matcher]) -> bool {
        matchers
            .iter()
            .all(|m| m.is_match(self.get(&m.name).unwrap_or("")))
    }

    /// Whether the label set satisfies a selector's matchers, including `or` alternatives.
    pub fn matches(&self, matchers: &Matchers) -> bool {
        self.matches_all(&matchers.matchers)
            && (matchers.or_matchers.is_empty()
                || matchers
                    .or_matchers
                    .iter()
                    .any(|group| self.matches_all(group)))
    }
}

/// The hash of a label set's pairs (xxh3 over names and values, each followed by a separator
/// that cannot occur in label names).
fn hash_pairs(pairs: &[(String, String)]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3Default::new();
    for (n, v) in pairs {
        h.update(n.as_bytes());
        h.update(&[0xff]);
        h.update(v.as_bytes());
        h.update(&[0xfe]);
    }
    h.digest()
}

impl Clone for LabelsInner {
    fn clone(&self) -> Self {
        LabelsInner {
            hash: self.hash,
            pairs: self.pairs.clone(),
        }
    }
}

impl Default for Labels {
    fn default() -> Self {
        Labels::empty()
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.hash == other.0.hash && self.0.pairs == other.0.pairs)
    }
}

impl Eq for Labels {}

impl std::hash::Hash for Labels {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Labels {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return std::cmp::Ordering::Equal;
        }
        self.0.pairs.cmp(&other.0.pairs)
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Labels").field(&self.0.pairs).finish()
    }
}

/// A hasher for maps keyed by [`Labels`]: the label set already carries its hash, which is
/// passed through instead of being hashed again.
#[derive(Clone, Copy, Default)]
pub struct LabelsHasher(u64);

impl std::hash::Hasher for LabelsHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by `Labels`; fold any other input in so the hasher stays correct.
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
}

/// A hash map keyed by label sets, using their precomputed hashes.
pub type LabelsMap<V> =
    std::collections::HashMap<Labels, V, std::hash::BuildHasherDefault<LabelsHasher>>;

impl From<Vec<(String, String)>> for Labels {
    fn from(pairs: Vec<(String, String)>) -> Self {
        Labels::new(pairs)
    }
}

impl fmt::Display for Labels {
    /// Prometheus's `labels.String()` form: `{__name__="up", job="node"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (n, v)) in self.0.pairs.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}={v:?}")?;
        }
        f.write_str("}")
    }
}

/// One series: a label set and its float samples `(timestamp_ms, value)` in time order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// The series' labels, `__name__` included.
    pub labels: Labels,
    /// Samples in ascending timestamp order; stale markers are NaN with [`STALE_NAN_BITS`].
    pub samples: Vec<(i64, f64)>,
}

/// One element of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The element's labels.
    pub labels: Labels,
    /// The element's value.
    pub value: f64,
}

/// A PromQL value: what an expression evaluates to at one instant, or what a query returns.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A single float.
    Scalar(f64),
    /// A string literal.
    String(String),
    /// An instant vector (one sample per series).
    Vector(Vec<Sample>),
    /// A range vector, or the result of a range query.
    Matrix(Vec<Series>),
}

impl Value {
    /// The PromQL type name used in error messages (`scalar`, `instant vector`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::String(_) => "string",
            Value::Vector(_) => "instant vector",
            Value::Matrix(_) => "range vector",
        }
    }
}

/// Annotations (warnings and infos) collected while evaluating a query.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Annotations {
    /// `PromQL warning: ...` messages: the result may be wrong.
    pub warnings: Vec<String>,
    /// `PromQL info: ...` messages: the result is right but the query looks suspicious.
    pub infos: Vec<String>,
}

impl Annotations {
    /// Records a warning once.
    pub fn warn(&mut self, msg: String) {
        let msg = format!("PromQL warning: {msg}");
        if !self.warnings.contains(&msg) {
            self.warnings.push(msg);
        }
    }

    /// Records an info once.
    pub fn info(&mut self, msg: String) {
        let msg = format!("PromQL info: {msg}");
        if !self.infos.contains(&msg) {
            self.infos.push(msg);
        }
    }
}

/// Appends `v` formatted as [`format_go_float`] does, without allocating: integers (the values
/// of most counters) directly, other floats from their shortest round-trip digits (ryu) laid out
/// without an exponent.
pub fn write_go_float(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v == f64::INFINITY {
        out.extend_from_slice(b"+Inf");
    } else if v == f64::NEG_INFINITY {
        out.extend_from_slice(b"-Inf");
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        if v == 0.0 && v.is_sign_negative() {
            out.push(b'-');
        }
        out.extend_from_slice(itoa::Buffer::new().format(v as i64).as_bytes());
    } else {
        let mut buf = ryu::Buffer::new();
        let text = buf.format_finite(v).as_bytes();
        let (negative, text) = match text.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, text),
        };
        // Split into significant digits and the position of the decimal point among them.
        let (mantissa, exponent) = match text.iter().position(|&c| c == b'e' || c == b'E') {
            Some(e) => (
                &text[..e],
                std::str::from_utf8(&text[e + 1..])
                    .ok()
                    .and_then(|x| x.parse::<i32>().ok())
                    .unwrap_or(0),
            ),
            None => (text, 0),
        };
        let mut digits: Vec<u8> = Vec::with_capacity(mantissa.len());
        let mut point = mantissa.len() as i32;
        for (i, &c) in mantissa.iter().enumerate() {
            if c == b'.' {
                point = i as i32;
            } else {
                digits.push(c);
            }
        }
        point += exponent;
        // Leading zeros (ryu writes "0.001") move the point; trailing zeros are not significant.
        let lead = digits.iter().take_while(|&&c| c == b'0').count();
        digits.drain(..lead);
        point -= lead as i32;
        while digits.last() == Some(&b'0') {
            digits.pop();
        }
        if negative {
            out.push(b'-');
        }
        if digits.is_empty() {
            out.push(b'0');
        } else if point <= 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-point) as usize));
            out.extend_from_slice(&digits);
        } else if point as usize >= digits.len() {
            out.extend_from_slice(&digits);
            out.extend(std::iter::repeat_n(b'0', point as usize - digits.len()));
        } else {
            out.extend_from_slice(&digits[..point as usize]);
            out.push(b'.');
            out.extend_from_slice(&digits[point as usize..]);
        }
    }
}

/// Formats a float the way Go's `strconv.FormatFloat(f, 'f', -1, 64)` does (used by
/// `count_values` and label values produced from numbers).
pub fn format_go_float(v: f64) -> String {
    let mut out = Vec::with_capacity(24);
    write_go_float(&mut out, v);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests;
