//! The functions templates can call: Go's builtins and Prometheus's alert-template functions,
//! with Go's argument rules and Prometheus's exact output.

use std::net::IpAddr;

use super::gofmt::{format_4g, format_float_v, go_quote, sprint, sprintf, sprintln};
use super::value::Value;

/// A function a template calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Func {
    And,
    Or,
    Not,
    Len,
    Index,
    Print,
    Printf,
    Println,
    Html,
    Urlquery,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Humanize,
    Humanize1024,
    HumanizeDuration,
    HumanizePercentage,
    HumanizeTimestamp,
    ToUpper,
    ToLower,
    Title,
    Match,
    ReReplaceAll,
    StripPort,
    StripDomain,
    SafeHtml,
    ParseDuration,
    ExternalUrl,
    PathPrefix,
    Slice,
}

const FUNCS: [(&str, Func); 33] = [
    ("and", Func::And),
    ("or", Func::Or),
    ("not", Func::Not),
    ("len", Func::Len),
    ("index", Func::Index),
    ("print", Func::Print),
    ("printf", Func::Printf),
    ("println", Func::Println),
    ("html", Func::Html),
    ("urlquery", Func::Urlquery),
    ("eq", Func::Eq),
    ("ne", Func::Ne),
    ("lt", Func::Lt),
    ("le", Func::Le),
    ("gt", Func::Gt),
    ("ge", Func::Ge),
    ("humanize", Func::Humanize),
    ("humanize1024", Func::Humanize1024),
    ("humanizeDuration", Func::HumanizeDuration),
    ("humanizePercentage", Func::HumanizePercentage),
    ("humanizeTimestamp", Func::HumanizeTimestamp),
    ("toUpper", Func::ToUpper),
    ("toLower", Func::ToLower),
    ("title", Func::Title),
    ("match", Func::Match),
    ("reReplaceAll", Func::ReReplaceAll),
    ("stripPort", Func::StripPort),
    ("stripDomain", Func::StripDomain),
    ("safeHtml", Func::SafeHtml),
    ("parseDuration", Func::ParseDuration),
    ("externalURL", Func::ExternalUrl),
    ("pathPrefix", Func::PathPrefix),
    ("slice", Func::Slice),
];

/// Functions Prometheus (or Go) has that Lumen's alert templates do not: the query functions
/// need a query engine at render time, the rest make no sense without them or outside HTML.
const UNSUPPORTED: [&str; 15] = [
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "sortByLabel",
    "args",
    "tmpl",
    "graphLink",
    "tableLink",
    "toTime",
    "toDuration",
    "now",
    "js",
    "call",
];

/// Largest compiled regular expression `match`/`reReplaceAll` accept.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl Func {
    /// The function called `name`, or the parse error for it.
    pub(super) fn lookup(name: &str) -> Result<Func, String> {
        if let Some((_, func)) = FUNCS.iter().find(|(n, _)| *n == name) {
            return Ok(*func);
        }
        if UNSUPPORTED.contains(&name) {
            return Err(format!(
                "function {name:?} is not supported in Lumen templates"
            ));
        }
        Err(format!("function {name:?} not defined"))
    }

    /// The name templates call it by.
    pub(super) fn name(self) -> &'static str {
        FUNCS
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// Checks the number of arguments (the piped value included).
    pub(super) fn check_arity(self, given: usize) -> Result<(), String> {
        let (min, max) = match self {
            Func::And | Func::Or => (1, None),
            Func::Not | Func::Len => (1, Some(1)),
            Func::Index | Func::Printf => (1, None),
            Func::Print | Func::Println | Func::Html | Func::Urlquery => (0, None),
            Func::Eq => (2, None),
            Func::Ne | Func::Lt | Func::Le | Func::Gt | Func::Ge => (2, Some(2)),
            Func::Match => (2, Some(2)),
            Func::ReReplaceAll => (3, Some(3)),
            Func::ExternalUrl | Func::PathPrefix => (0, Some(0)),
            Func::Slice => (1, Some(3)),
            _ => (1, Some(1)),
        };
        let ok = given >= min && max.is_none_or(|max| given <= max);
        if ok {
            return Ok(());
        }
        let want = match max {
            Some(max) if max == min => format!("{min}"),
            Some(max) => format!("{min} to {max}"),
            None => format!("at least {min}"),
        };
        Err(format!(
            "wrong number of args for {}: want {want} got {given}",
            self.name()
        ))
    }
}

/// What functions may read besides their arguments.
pub(super) struct CallContext<'a> {
    pub external_url: &'a str,
    /// The compiled literal pattern of `match`/`reReplaceAll`, if the template had one.
    pub regex: Option<&'a regex::Regex>,
}

/// Compiles a `match`/`reReplaceAll` pattern (Go's RE2 syntax, which Rust's `regex` shares).
pub(super) fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("regexp: Compile({}): {e}", go_quote(pattern)))
}

fn string_arg<'v>(value: &'v Value<'_>) -> Result<&'v str, String> {
    match value {
        Value::Str(s) => Ok(s),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
    }
}

/// Calls `func` on evaluated arguments (`and`/`or`, which evaluate lazily, are the evaluator's).
pub(super) fn call<'d>(
    func: Func,
    args: Vec<Value<'d>>,
    ctx: &CallContext<'_>,
) -> Result<Value<'d>, String> {
    let nil = Value::Nil;
    let arg = |i: usize| args.get(i).unwrap_or(&nil);
    Ok(match func {
        Func::And => args
            .iter()
            .find(|v| !v.is_true())
            .unwrap_or_else(|| arg(args.len().saturating_sub(1)))
            .clone(),
        Func::Or => args
            .iter()
            .find(|v| v.is_true())
            .unwrap_or_else(|| arg(args.len().saturating_sub(1)))
            .clone(),
        Func::Not => Value::Bool(!arg(0).is_true()),
        Func::Len => length(arg(0))?,
        Func::Index => index(arg(0).clone(), &args[1.min(args.len())..])?,
        Func::Print => Value::Str(sprint(&args)),
        Func::Println => Value::Str(sprintln(&args)),
        Func::Printf => {
            let format = string_arg(arg(0))?.to_string();
            Value::Str(sprintf(&format, args.get(1..).unwrap_or(&[])))
        }
        Func::Html => Value::Str(html_escape(&eval_args(&args))),
        Func::Urlquery => Value::Str(query_escape(&eval_args(&args))),
        Func::Eq => {
            let first = arg(0);
            let mut equal = false;
            for other in args.get(1..).unwrap_or(&[]) {
                equal |= compare(first, other)? == Some(std::cmp::Ordering::Equal);
            }
            Value::Bool(equal)
        }
        Func::Ne => Value::Bool(compare(arg(0), arg(1))? != Some(std::cmp::Ordering::Equal)),
        Func::Lt | Func::Le | Func::Gt | Func::Ge => {
            let (a, b) = (arg(0), arg(1));
            if matches!(a, Value::Bool(_)) || matches!(b, Value::Bool(_)) {
                return Err("invalid type for comparison".into());
            }
            let ordering = compare(a, b)?;
            use std::cmp::Ordering::{Equal, Greater, Less};
            Value::Bool(match func {
                Func::Lt => ordering == Some(Less),
                Func::Le => matches!(ordering, Some(Less | Equal)),
                Func::Gt => ordering == Some(Greater),
                _ => matches!(ordering, Some(Greater | Equal)),
            })
        }
        Func::Humanize => Value::Str(humanize(to_float(arg(0))?)),
        Func::Humanize1024 => Value::Str(humanize_1024(to_float(arg(0))?)),
        Func::HumanizeDuration => Value::Str(humanize_duration(to_float(arg(0))?)),
        Func::HumanizePercentage => {
            Value::Str(format!("{}%", format_4g(to_float(arg(0))? * 100.0)))
        }
        Func::HumanizeTimestamp => Value::Str(humanize_timestamp(to_float(arg(0))?)?),
        Func::ToUpper => Value::Str(simple_case(string_arg(arg(0))?, true)),
        Func::ToLower => Value::Str(simple_case(string_arg(arg(0))?, false)),
        Func::Title => Value::Str(title(string_arg(arg(0))?)),
        Func::Match => {
            let pattern = string_arg(arg(0))?;
            let text = string_arg(arg(1))?;
            let compiled;
            let regex = match ctx.regex {
                Some(regex) => regex,
                None => {
                    compiled = compile_regex(pattern)?;
                    &compiled
                }
            };
            Value::Bool(regex.is_match(text))
        }
        Func::ReReplaceAll => {
            let pattern = string_arg(arg(0))?;
            let replacement = string_arg(arg(1))?;
            let text = string_arg(arg(2))?;
            let compiled;
            let regex = match ctx.regex {
                Some(regex) => regex,
                None => {
                    compiled = compile_regex(pattern)?;
                    &compiled
                }
            };
            Value::Str(regex.replace_all(text, replacement).into_owned())
        }
        Func::StripPort => {
            let host_port = string_arg(arg(0))?;
            Value::Str(
                split_host_port(host_port)
                    .map(|(host, _)| host.to_string())
                    .unwrap_or_else(|| host_port.to_string()),
            )
        }
        Func::StripDomain => Value::Str(strip_domain(string_arg(arg(0))?)),
        Func::SafeHtml => Value::Str(string_arg(arg(0))?.to_string()),
        Func::ParseDuration => {
            let text = string_arg(arg(0))?;
            let duration = lumen_storage::duration::parse(text)
                .map_err(|_| format!("not a valid duration string: {}", go_quote(text)))?;
            Value::Float(duration.as_secs_f64())
        }
        Func::ExternalUrl => Value::Str(ctx.external_url.to_string()),
        Func::PathPrefix => Value::Str(path_of(ctx.external_url).to_string()),
        Func::Slice => slice(arg(0), args.get(1..).unwrap_or(&[]))?,
    })
}

/// Go's `evalArgs`: a lone string as is, anything else as `fmt.Sprint` prints it.
fn eval_args(args: &[Value<'_>]) -> String {
    match args {
        [Value::Str(s)] => s.clone(),
        _ => sprint(args),
    }
}

fn length(value: &Value<'_>) -> Result<Value<'static>, String> {
    match value {
        Value::Str(s) => Ok(Value::Int(s.len() as i64)),
        Value::Map(m) => Ok(Value::Int(m.len() as i64)),
        Value::Nil => Err("len of nil pointer".into()),
        other => Err(format!("len of type {}", other.type_name())),
    }
}

fn index<'d>(mut item: Value<'d>, keys: &[Value<'d>]) -> Result<Value<'d>, String> {
    for key in keys {
        item = match (&item, key) {
            // Prometheus renders with missingkey=zero: a missing label is "".
            (Value::Map(map), Value::Str(k)) => Value::Str(map.get(k).cloned().unwrap_or_default()),
            (Value::Map(_), other) => {
                return Err(format!(
                    "value has type {}; should be string",
                    other.type_name()
                ));
            }
            (Value::Str(s), Value::Int(i)) => {
                match usize::try_from(*i).ok().and_then(|i| s.as_bytes().get(i)) {
                    Some(b) => Value::Int(i64::from(*b)),
                    None => return Err(format!("index out of range: {i}")),
                }
            }
            (Value::Str(_), other) => {
                return Err(format!(
                    "cannot index slice/array with type {}",
                    other.type_name()
                ));
            }
            (Value::Nil, _) => return Err("index of untyped nil".into()),
            (other, _) => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

/// Go's `slice` of a string: `slice s`, `slice s i`, `slice s i j` (byte offsets).
fn slice<'d>(item: &Value<'d>, indices: &[Value<'d>]) -> Result<Value<'d>, String> {
    let Value::Str(text) = item else {
        return Err(format!("can't slice item of type {}", item.type_name()));
    };
    let mut bounds = Vec::with_capacity(2);
    for index in indices {
        match index {
            Value::Int(i) => {
                bounds.push(usize::try_from(*i).map_err(|_| format!("index out of range: {i}"))?)
            }
            other => {
                return Err(format!(
                    "cannot index slice/array with type {}",
                    other.type_name()
                ));
            }
        }
    }
    let start = bounds.first().copied().unwrap_or(0);
    let end = bounds.get(1).copied().unwrap_or(text.len());
    if start > end {
        return Err(format!("invalid slice index: {start} > {end}"));
    }
    if end > text.len() {
        return Err(format!("index out of range: {end}"));
    }
    match text.get(start..end) {
        Some(part) => Ok(Value::Str(part.to_string())),
        None => Err(format!("slice [{start}:{end}] splits a UTF-8 character")),
    }
}

/// Go's `eq`/`lt` on basic kinds. Lumen compares an integer with a float by value where Go
/// reports "incompatible types for comparison" (`gt $value 80` works here).
fn compare(a: &Value<'_>, b: &Value<'_>) -> Result<Option<std::cmp::Ordering>, String> {
    Ok(match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        (Value::Int(x), Value::Float(y)) => (*x as f64).partial_cmp(y),
        (Value::Float(x), Value::Int(y)) => x.partial_cmp(&(*y as f64)),
        (Value::Str(x), Value::Str(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Value::Nil | Value::Map(_) | Value::Data(_), _)
        | (_, Value::Nil | Value::Map(_) | Value::Data(_)) => {
            return Err("invalid type for comparison".into());
        }
        _ => return Err("incompatible types for comparison".into()),
    })
}

/// Prometheus's `convertToFloat`: floats, integers, and strings that parse as floats.
fn to_float(value: &Value<'_>) -> Result<f64, String> {
    match value {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => parse_go_float(s),
        other => Err(format!("can't convert {} to float", other.type_name())),
    }
}

/// `strconv.ParseFloat(s, 64)`, with its error text.
fn parse_go_float(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_infinite() && !text.to_ascii_lowercase().contains("inf") => Err(format!(
            "strconv.ParseFloat: parsing {}: value out of range",
            go_quote(text)
        )),
        Ok(v) => Ok(v),
        Err(_) => Err(format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            go_quote(text)
        )),
    }
}

const BIG_PREFIXES: [&str; 8] = ["k", "M", "G", "T", "P", "E", "Z", "Y"];
const SMALL_PREFIXES: [&str; 8] = ["m", "u", "n", "p", "f", "a", "z", "y"];

/// Scales `v` (|v| < 1, non-zero) up by thousands: the value and its SI prefix.
fn scale_small(mut v: f64) -> (f64, &'static str) {
    let mut prefix = "";
    for p in SMALL_PREFIXES {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    (v, prefix)
}

/// `humanize`: four significant digits with an SI prefix (`1.235M`, `1.234m`).
pub(super) fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format_4g(v);
    }
    if v.abs() >= 1.0 {
        let mut prefix = "";
        for p in BIG_PREFIXES {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
        return format!("{}{prefix}", format_4g(v));
    }
    let (v, prefix) = scale_small(v);
    format!("{}{prefix}", format_4g(v))
}

/// `humanize1024`: four significant digits with a binary prefix (`1Mi`, `1.5ki`).
pub(super) fn humanize_1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return format_4g(v);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", format_4g(v))
}

/// `humanizeDuration`: seconds as `1d 1h 1m 1s`, `12.35s` or `500ms`.
pub(super) fn humanize_duration(v: f64) -> String {
    if !v.is_finite() {
        return format_4g(v);
    }
    if v == 0.0 {
        return format!("{}s", format_4g(v));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let v = v.abs();
        // Go on amd64 turns a float too large for int64 into math.MinInt64; Prometheus prints that.
        let whole = if v < 9_223_372_036_854_775_807.0 {
            v as i64
        } else {
            i64::MIN
        };
        let (seconds, minutes, hours, days) = (
            whole % 60,
            (whole / 60) % 60,
            (whole / 3600) % 24,
            whole / 86_400,
        );
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", format_4g(v));
    }
    let (v, prefix) = scale_small(v);
    format!("{}{prefix}s", format_4g(v))
}

/// `humanizeTimestamp`: Unix seconds as Go prints a UTC `time.Time`, to the millisecond
/// (`2015-06-23 13:19:44.128 +0000 UTC`).
pub(super) fn humanize_timestamp(v: f64) -> Result<String, String> {
    if !v.is_finite() {
        return Ok(format_4g(v));
    }
    let nanos = v * 1e9;
    if nanos >= i64::MAX as f64 || nanos < i64::MIN as f64 {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            format_float_v(v)
        ));
    }
    // Prometheus goes through model.Time, which truncates to milliseconds.
    let ms = (nanos as i64) / 1_000_000;
    let Some(time) = chrono::DateTime::from_timestamp_millis(ms) else {
        return Err(format!(
            "{} is out of range for a timestamp",
            format_float_v(v)
        ));
    };
    let mut out = time.format("%Y-%m-%d %H:%M:%S").to_string();
    let millis = ms.rem_euclid(1000);
    if millis != 0 {
        let fraction = format!(".{millis:03}");
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
    Ok(out)
}

/// Go's `strings.ToUpper`/`ToLower`: simple one-to-one case mapping (`ß` stays `ß`).
fn simple_case(text: &str, upper: bool) -> String {
    text.chars()
        .map(|c| {
            let mut mapped = if upper {
                c.to_uppercase().collect::<Vec<_>>()
            } else {
                c.to_lowercase().collect()
            };
            if mapped.len() == 1 {
                mapped.pop().unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

/// Go's `strings.Title`: upper-cases the first letter of each word.
fn title(text: &str) -> String {
    let is_separator = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else if c.is_alphanumeric() {
            false
        } else {
            c.is_whitespace()
        }
    };
    let mut out = String::with_capacity(text.len());
    let mut previous = ' ';
    for c in text.chars() {
        if is_separator(previous) {
            out.push_str(&simple_case(&c.to_string(), true));
        } else {
            out.push(c);
        }
        previous = c;
    }
    out
}

/// Go's `net.SplitHostPort`; `None` where Go returns an error.
fn split_host_port(host_port: &str) -> Option<(&str, &str)> {
    if let Some(rest) = host_port.strip_prefix('[') {
        let close = rest.find(']')?;
        let host = &rest[..close];
        let port = rest[close + 1..].strip_prefix(':')?;
        if port.contains([':', '[', ']']) {
            return None;
        }
        return Some((host, port));
    }
    let colon = host_port.rfind(':')?;
    let (host, port) = (&host_port[..colon], &host_port[colon + 1..]);
    if host.contains([':', '[', ']']) || port.contains(['[', ']']) {
        return None;
    }
    Some((host, port))
}

/// Prometheus's `stripDomain`: the first label of a host name, port kept; IPs unchanged.
fn strip_domain(host_port: &str) -> String {
    let (host, port) = split_host_port(host_port).unwrap_or((host_port, ""));
    if host.parse::<IpAddr>().is_ok() {
        return host_port.to_string();
    }
    let host = host.split('.').next().unwrap_or(host);
    if port.is_empty() {
        return host.to_string();
    }
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The path of a URL (`http://host:9090/prefix?x` → `/prefix`).
fn path_of(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let Some(slash) = after_scheme.find('/') else {
        return "";
    };
    let path = &after_scheme[slash..];
    path.split(['?', '#']).next().unwrap_or(path)
}

/// Go's `template.HTMLEscapeString`.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
