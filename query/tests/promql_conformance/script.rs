//! Parser for Prometheus's promqltest script language (see `shared/promql-tests/FORMAT.md`).

use lumen_query::promql::{Labels, stale_nan};

/// One point of a `load` or expected-result line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Point {
    /// No sample at this step (`_`).
    Missing,
    /// A float sample (`stale` is the staleness-marker NaN).
    Float(f64),
    /// A native histogram (`{{...}}`), not supported yet.
    Histogram,
}

/// A series line: labels and expanded points.
#[derive(Clone, Debug)]
pub struct SeriesLine {
    pub labels: Labels,
    pub points: Vec<Point>,
}

/// How a message expectation is matched.
#[derive(Clone, Debug)]
pub enum MsgMatch {
    Any,
    Exact(String),
    Regex(String),
}

/// The query of an eval command.
#[derive(Clone, Debug)]
pub enum EvalKind {
    Instant { at: i64 },
    Range { start: i64, end: i64, step: i64 },
}

/// An `eval` command with its expectations.
#[derive(Clone, Debug, Default)]
pub struct Eval {
    pub line: usize,
    pub query: String,
    pub kind: Option<EvalKind>,
    pub fail: Option<MsgMatch>,
    pub warns: Vec<MsgMatch>,
    pub infos: Vec<MsgMatch>,
    pub no_warn: bool,
    pub no_info: bool,
    pub ordered: bool,
    pub string: Option<String>,
    pub range_vector: Option<(i64, i64, i64)>,
    /// An expected scalar (a bare number line).
    pub scalar: Option<f64>,
    pub series: Vec<SeriesLine>,
    /// Whether expected results use native-histogram notation.
    pub native: bool,
}

/// A script command.
#[derive(Clone, Debug)]
pub enum Command {
    Load {
        interval: i64,
        series: Vec<SeriesLine>,
        with_nhcb: bool,
    },
    Clear,
    Eval(Box<Eval>),
}

/// Parses a whole script into commands.
pub fn parse_script(text: &str) -> Result<Vec<Command>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let raw = lines[i];
        let line = raw.trim();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // Body lines: indented lines up to the next blank line or command.
        let mut body = Vec::new();
        while i < lines.len() {
            let l = lines[i];
            if l.trim().is_empty() || !(l.starts_with(' ') || l.starts_with('\t')) {
                break;
            }
            if !l.trim().starts_with('#') {
                body.push(l.trim());
            }
            i += 1;
        }
        let lineno = i - body.len();
        if line == "clear" {
            cmds.push(Command::Clear);
        } else if let Some(rest) = line.strip_prefix("load") {
            let (with_nhcb, rest) = match rest.strip_prefix("_with_nhcb") {
                Some(r) => (true, r),
                None => (false, rest),
            };
            let interval = parse_duration(rest.trim())?;
            let mut series = Vec::new();
            for b in body {
                series.push(parse_series_line(b)?);
            }
            cmds.push(Command::Load {
                interval,
                series,
                with_nhcb,
            });
        } else if line.starts_with("eval") {
            cmds.push(Command::Eval(Box::new(parse_eval(line, &body, lineno)?)));
        } else {
            return Err(format!("line {lineno}: unknown command {line:?}"));
        }
    }
    Ok(cmds)
}

fn parse_eval(header: &str, body: &[&str], line: usize) -> Result<Eval, String> {
    let mut ev = Eval {
        line,
        ..Eval::default()
    };
    let (cmd, rest) = header.split_once(' ').ok_or("eval without query")?;
    match cmd {
        "eval" => {}
        "eval_fail" => ev.fail = Some(MsgMatch::Any),
        "eval_ordered" => ev.ordered = true,
        "eval_warn" => ev.warns.push(MsgMatch::Any),
        "eval_info" => ev.infos.push(MsgMatch::Any),
        other => return Err(format!("unknown eval variant {other}")),
    }
    let words: Vec<&str> = rest.splitn(3, ' ').collect();
    if let ["instant", "at", tail] = words.as_slice() {
        let (t, q) = tail.split_once(' ').ok_or("instant eval without query")?;
        ev.kind = Some(EvalKind::Instant {
            at: parse_duration(t)?,
        });
        ev.query = q.trim().to_string();
    } else if words.first() == Some(&"range") {
        let w: Vec<&str> = rest.splitn(8, ' ').collect();
        if w.len() < 8 || w[1] != "from" || w[3] != "to" || w[5] != "step" {
            return Err(format!("bad range eval {header:?}"));
        }
        ev.kind = Some(EvalKind::Range {
            start: parse_duration(w[2])?,
            end: parse_duration(w[4])?,
            step: parse_duration(w[6])?,
        });
        ev.query = w[7].trim().to_string();
    } else {
        return Err(format!("bad eval {header:?}"));
    }
    for b in body {
        if let Some(exp) = b.strip_prefix("expect ") {
            parse_expect(&mut ev, exp.trim())?;
            continue;
        }
        if b.contains("{{") {
            ev.native = true;
        }
        if let Some(v) = parse_number(b) {
            ev.scalar = Some(v);
            continue;
        }
        ev.series.push(parse_series_line(b)?);
    }
    Ok(ev)
}

fn parse_msg(rest: &str) -> Result<MsgMatch, String> {
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok(MsgMatch::Any);
    }
    if let Some(m) = rest.strip_prefix("msg:") {
        return Ok(MsgMatch::Exact(m.trim().to_string()));
    }
    if let Some(m) = rest.strip_prefix("regex:") {
        return Ok(MsgMatch::Regex(m.trim().to_string()));
    }
    Err(format!("bad expectation {rest:?}"))
}

fn parse_expect(ev: &mut Eval, exp: &str) -> Result<(), String> {
    let (kind, rest) = exp.split_once(' ').unwrap_or((exp, ""));
    match kind {
        "fail" => ev.fail = Some(parse_msg(rest)?),
        "warn" => ev.warns.push(parse_msg(rest)?),
        "info" => ev.infos.push(parse_msg(rest)?),
        "no_warn" => ev.no_warn = true,
        "no_info" => ev.no_info = true,
        "ordered" => ev.ordered = true,
        "string" => {
            let s = rest.trim();
            if s.len() < 2 {
                return Err(format!("bad expect string {s:?}"));
            }
            ev.string = Some(unquote(s)?);
        }
        "range" => {
            let w: Vec<&str> = rest.split_whitespace().collect();
            if w.len() != 7 || w[0] != "vector" || w[1] != "from" || w[3] != "to" || w[5] != "step"
            {
                return Err(format!("bad expect range {rest:?}"));
            }
            ev.range_vector = Some((
                parse_duration(w[2])?,
                parse_duration(w[4])?,
                parse_duration(w[6])?,
            ));
        }
        other => return Err(format!("unknown expectation {other:?}")),
    }
    Ok(())
}

/// Parses a Prometheus duration (`1h30m`, `10s53ms`, `0`, Lumen's one grammar:
/// `lumen_storage::duration`), negative with a leading `-`, or bare seconds, into milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let ms = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse::<i64>()
            .ok()
            .and_then(|secs| secs.checked_mul(1000))
            .ok_or_else(|| format!("bad duration {s:?}"))?
    } else {
        let d = lumen_storage::duration::parse(s).map_err(|e| e.to_string())?;
        i64::try_from(d.as_millis()).map_err(|_| "duration overflow".to_string())?
    };
    Ok(if neg { -ms } else { ms })
}

/// Parses a float as Go's `strconv.ParseFloat` would for test values.
pub fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" => return Some(f64::INFINITY),
        "-inf" => return Some(f64::NEG_INFINITY),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    if s.chars()
        .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
    {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Splits `metric{labels} values` into the label set and the values text.
fn parse_series_line(line: &str) -> Result<SeriesLine, String> {
    let (labels, rest) = parse_series_desc(line)?;
    Ok(SeriesLine {
        labels,
        points: parse_values(rest)?,
    })
}

fn parse_series_desc(line: &str) -> Result<(Labels, &str), String> {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    let start = i;
    while i < chars.len() && ident(chars[i].1) {
        i += 1;
    }
    let byte_at = |i: usize| chars.get(i).map_or(line.len(), |c| c.0);
    if i > start {
        pairs.push((
            "__name__".into(),
            line[byte_at(start)..byte_at(i)].to_string(),
        ));
    }
    if i < chars.len() && chars[i].1 == '{' && !line[byte_at(i)..].starts_with("{{") {
        i += 1;
        loop {
            while i < chars.len() && (chars[i].1.is_whitespace() || chars[i].1 == ',') {
                i += 1;
            }
            if i >= chars.len() {
                return Err(format!("unterminated label set in {line:?}"));
            }
            if chars[i].1 == '}' {
                i += 1;
                break;
            }
            let name = if chars[i].1 == '"' {
                let (s, next) = read_quoted(line, &chars, i)?;
                i = next;
                s
            } else {
                let st = i;
                while i < chars.len() && ident(chars[i].1) {
                    i += 1;
                }
                line[byte_at(st)..byte_at(i)].to_string()
            };
            while i < chars.len() && chars[i].1.is_whitespace() {
                i += 1;
            }
            if i < chars.len() && chars[i].1 == '=' {
                i += 1;
                while i < chars.len() && chars[i].1.is_whitespace() {
                    i += 1;
                }
                let (v, next) = read_quoted(line, &chars, i)?;
                i = next;
                pairs.push((name, v));
            } else {
                pairs.push(("__name__".into(), name));
            }
        }
    }
    Ok((Labels::new(pairs), &line[byte_at(i)..]))
}

fn read_quoted(line: &str, chars: &[(usize, char)], i: usize) -> Result<(String, usize), String> {
    let q = chars.get(i).map(|c| c.1).ok_or("expected quote")?;
    if q != '"' && q != '\'' && q != '`' {
        return Err(format!("expected quoted string in {line:?}"));
    }
    let mut j = i + 1;
    while j < chars.len() && chars[j].1 != q {
        if chars[j].1 == '\\' && q != '`' {
            j += 1;
        }
        j += 1;
    }
    if j >= chars.len() {
        return Err(format!("unterminated string in {line:?}"));
    }
    let end = chars[j].0 + q.len_utf8();
    Ok((unquote(&line[chars[i].0..end])?, j + 1))
}

/// Go-style unquoting of "...", '...' or `...`.
pub fn unquote(s: &str) -> Result<String, String> {
    let q = s.chars().next().ok_or("empty string")?;
    let inner = s
        .get(1..s.len().saturating_sub(1))
        .ok_or("bad quoted string")?;
    if q == '`' {
        return Ok(inner.to_string());
    }
    let mut out: Vec<u8> = Vec::new();
    let mut it = inner.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let e = it.next().ok_or("dangling escape")?;
        let hex =
            |it: &mut std::iter::Peekable<std::str::Chars<'_>>, n: usize| -> Result<u32, String> {
                let h: String = it.by_ref().take(n).collect();
                u32::from_str_radix(&h, 16).map_err(|_| format!("bad escape {h:?}"))
            };
        match e {
            'n' => out.push(b'\n'),
            't' => out.push(b'\t'),
            'r' => out.push(b'\r'),
            'a' => out.push(7),
            'b' => out.push(8),
            'f' => out.push(12),
            'v' => out.push(11),
            'x' => out.push(hex(&mut it, 2)? as u8),
            'u' | 'U' => {
                let cp = hex(&mut it, if e == 'u' { 4 } else { 8 })?;
                let ch = char::from_u32(cp).ok_or("bad code point")?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            other => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Expands a values list (`1 2+3x4 _ stale _x2 {{...}}`).
fn parse_values(s: &str) -> Result<Vec<Point>, String> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        if rest.starts_with("{{") {
            let mut end = rest.find("}}").ok_or("unterminated histogram")? + 2;
            // `{{..}}+{{..}}xN`: the increment is a histogram too.
            while rest[end..].starts_with("+{{") || rest[end..].starts_with("-{{") {
                end += rest[end..].find("}}").ok_or("unterminated histogram")? + 2;
            }
            let after = &rest[end..];
            let tok_end = after.find(char::is_whitespace).unwrap_or(after.len());
            let suffix = &after[..tok_end];
            let n = expansion_count(suffix);
            out.extend(std::iter::repeat_n(Point::Histogram, n));
            rest = after[tok_end..].trim_start();
            continue;
        }
        let tok_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        expand_token(&rest[..tok_end], &mut out)?;
        rest = rest[tok_end..].trim_start();
    }
    Ok(out)
}

/// How many points a histogram token's `xN` / `+{{..}}xN` suffix expands to.
fn expansion_count(suffix: &str) -> usize {
    suffix
        .rsplit_once('x')
        .and_then(|(_, n)| n.parse::<usize>().ok())
        .map_or(1, |n| n + 1)
}

fn expand_token(tok: &str, out: &mut Vec<Point>) -> Result<(), String> {
    if tok == "_" {
        out.push(Point::Missing);
        return Ok(());
    }
    if tok == "stale" {
        out.push(Point::Float(stale_nan()));
        return Ok(());
    }
    if let Some(n) = tok.strip_prefix("_x") {
        let n: usize = n.parse().map_err(|_| format!("bad token {tok:?}"))?;
        out.extend(std::iter::repeat_n(Point::Missing, n));
        return Ok(());
    }
    if let Some(v) = parse_number(tok) {
        out.push(Point::Float(v));
        return Ok(());
    }
    let (base, times) = tok
        .rsplit_once('x')
        .ok_or_else(|| format!("bad token {tok:?}"))?;
    let times: usize = times.parse().map_err(|_| format!("bad token {tok:?}"))?;
    let bytes = base.as_bytes();
    let split = (1..bytes.len())
        .find(|&i| (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E'));
    let (start, delta) = match split {
        Some(i) => (
            parse_number(&base[..i]).ok_or_else(|| format!("bad token {tok:?}"))?,
            parse_number(&base[i..]).ok_or_else(|| format!("bad token {tok:?}"))?,
        ),
        None => (
            parse_number(base).ok_or_else(|| format!("bad token {tok:?}"))?,
            0.0,
        ),
    };
    let mut v = start;
    for _ in 0..=times {
        out.push(Point::Float(v));
        v += delta;
    }
    Ok(())
}
