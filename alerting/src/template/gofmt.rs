//! Go's `fmt` as templates reach it: how a value prints (`{{ $value }}` is `fmt.Sprint`), the
//! `%.4g` behind every `humanize*` function, and `printf`.
//!
//! Alert text written for Prometheus must render byte for byte the same here, so float
//! formatting follows `strconv.FormatFloat`: digits come from Rust's correctly rounded
//! formatting (shortest round-trip, or a fixed number of significant digits, both exactly what
//! Go computes) and are laid out with Go's rules (`%v` switches to an exponent below 1e-4 and
//! from 1e21 only in JSON; here it is from 1e6 on, as Go's `%v` does: `1e+06`).

use super::value::Value;

/// The decimal digits of a finite non-negative float: `0.d₁d₂…dₙ × 10^dp`, no trailing zeros;
/// zero has no digits and `dp == 0` (Go's `decimalSlice`).
struct Decimal {
    digits: Vec<u8>,
    dp: i32,
}

impl Decimal {
    /// Parses Rust's `{:e}` output (`1.2345e-7`, `5e0`).
    fn from_exponent_form(text: &str) -> Decimal {
        let (mantissa, exponent) = text.split_once('e').unwrap_or((text, "0"));
        let exponent: i32 = exponent.parse().unwrap_or(0);
        let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
        while digits.last() == Some(&b'0') {
            digits.pop();
        }
        if digits.is_empty() {
            return Decimal { digits, dp: 0 };
        }
        Decimal {
            digits,
            dp: exponent + 1,
        }
    }

    /// The shortest digits that read back as `v`.
    fn shortest(v: f64) -> Decimal {
        Decimal::from_exponent_form(&format!("{:e}", v.abs()))
    }

    /// `v` rounded to `n` (≥ 1) significant digits.
    fn significant(v: f64, n: usize) -> Decimal {
        Decimal::from_exponent_form(&format!("{:.*e}", n.saturating_sub(1), v.abs()))
    }

    fn nd(&self) -> i32 {
        self.digits.len() as i32
    }

    fn digit(&self, i: i32) -> u8 {
        usize::try_from(i)
            .ok()
            .and_then(|i| self.digits.get(i).copied())
            .unwrap_or(b'0')
    }

    /// `%e`: `d.ddddde±dd` with `prec` digits after the point.
    fn fmt_e(&self, out: &mut String, prec: i32, upper: bool) {
        out.push(char::from(self.digit(0)));
        if prec > 0 {
            out.push('.');
            for i in 1..=prec {
                out.push(char::from(self.digit(i)));
            }
        }
        out.push(if upper { 'E' } else { 'e' });
        let exp = if self.digits.is_empty() {
            0
        } else {
            self.dp - 1
        };
        out.push(if exp < 0 { '-' } else { '+' });
        let exp = exp.unsigned_abs();
        if exp < 10 {
            out.push('0');
        }
        out.push_str(&exp.to_string());
    }

    /// `%f`: `ddd.ddd` with `prec` digits after the point.
    fn fmt_f(&self, out: &mut String, prec: i32) {
        if self.dp > 0 {
            for i in 0..self.dp {
                out.push(char::from(self.digit(i)));
            }
        } else {
            out.push('0');
        }
        if prec > 0 {
            out.push('.');
            for i in 1..=prec {
                out.push(char::from(self.digit(self.dp + i - 1)));
            }
        }
    }

    /// `%g`: Go's choice between `%e` and `%f` (`strconv.formatDigits`).
    fn fmt_g(&self, out: &mut String, prec: i32, shortest: bool, upper: bool) {
        let nd = self.nd();
        let mut eprec = prec;
        if eprec > nd && nd >= self.dp {
            eprec = nd;
        }
        // The shortest form decides as if the precision were 6: 1e+06, but 100000.
        if shortest {
            eprec = 6;
        }
        let exp = self.dp - 1;
        if exp < -4 || exp >= eprec {
            self.fmt_e(out, prec.min(nd) - 1, upper);
        } else {
            let prec = if prec > self.dp { nd } else { prec };
            self.fmt_f(out, (prec - self.dp).max(0));
        }
    }
}

/// Formats a float as `strconv.FormatFloat(v, verb, prec, 64)` does: `verb` is one of
/// `e E f F g G`, `prec` `None` for shortest (`g`) or the default of 6 (`e`, `f`).
/// NaN prints as `NaN`, infinities as `+Inf` and `-Inf`.
pub(super) fn format_float(v: f64, verb: char, prec: Option<usize>) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let mut out = String::new();
    if v.is_sign_negative() {
        out.push('-');
    }
    let prec_i32 = |p: usize| i32::try_from(p).unwrap_or(i32::MAX);
    match verb {
        'e' | 'E' => {
            let p = prec.unwrap_or(6);
            Decimal::significant(v, p.saturating_add(1)).fmt_e(&mut out, prec_i32(p), verb == 'E');
        }
        'f' | 'F' => {
            out.push_str(&format!("{:.*}", prec.unwrap_or(6), v.abs()));
        }
        _ => {
            let upper = verb == 'G';
            match prec {
                None => {
                    let d = Decimal::shortest(v);
                    let nd = d.nd();
                    d.fmt_g(&mut out, nd, true, upper);
                }
                Some(p) => {
                    let p = p.max(1);
                    Decimal::significant(v, p).fmt_g(&mut out, prec_i32(p), false, upper);
                }
            }
        }
    }
    out
}

/// Go's `%v` of a float64 (and so `{{ $value }}`): `0.5`, `100000`, `1e+06`, `1e-05`, `+Inf`.
pub(super) fn format_float_v(v: f64) -> String {
    format_float(v, 'g', None)
}

/// `fmt.Sprintf("%.4g", v)`, the core of the `humanize*` functions.
pub(super) fn format_4g(v: f64) -> String {
    format_float(v, 'g', Some(4))
}

/// `strconv.Quote`: a double-quoted Go string literal.
pub(super) fn go_quote(text: &str) -> String {
    quote_with(text, false)
}

/// `strconv.Quote`, or with `ascii_only` `strconv.QuoteToASCII`.
fn quote_with(text: &str, ascii_only: bool) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        push_escaped(&mut out, c, '"', ascii_only);
    }
    out.push('"');
    out
}

/// `strconv.QuoteRune`, or with `ascii_only` `strconv.QuoteRuneToASCII`.
fn go_quote_rune(c: char, ascii_only: bool) -> String {
    let mut out = String::from("'");
    push_escaped(&mut out, c, '\'', ascii_only);
    out.push('\'');
    out
}

/// `strconv.CanBackquote`.
fn can_backquote(text: &str) -> bool {
    !text
        .chars()
        .any(|c| c == '`' || c == '\u{FEFF}' || (c.is_control() && c != '\t'))
}

fn push_escaped(out: &mut String, c: char, quote: char, ascii_only: bool) {
    match c {
        '\\' => out.push_str("\\\\"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if is_go_printable(c) && (c.is_ascii() || !ascii_only) => out.push(c),
        c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// Close to Go's `strconv.IsPrint`: the ASCII space and everything that is neither a control
/// character nor other white space.
fn is_go_printable(c: char) -> bool {
    c == ' ' || !(c.is_control() || c.is_whitespace())
}

/// Go's `%v` of a value, which is also how `{{ pipeline }}` prints it.
pub(super) fn print_value(value: &Value<'_>) -> String {
    match value {
        Value::Nil => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format_float_v(*f),
        Value::Str(s) => s.clone(),
        Value::Map(map) => print_map(map),
        Value::Data(data) => format!(
            "{{{} {} {} {}}}",
            print_map(data.labels),
            print_map(data.external_labels),
            data.external_url,
            format_float_v(data.value)
        ),
    }
}

fn print_map(map: &std::collections::BTreeMap<String, String>) -> String {
    let entries: Vec<String> = map.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("map[{}]", entries.join(" "))
}

/// `fmt.Sprint`: operands printed with `%v`, a space between two operands when neither is a
/// string.
pub(super) fn sprint(args: &[Value<'_>]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        let is_string = matches!(arg, Value::Str(_));
        if i > 0 && !is_string && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        out.push_str(&print_value(arg));
    }
    out
}

/// `fmt.Sprintln`: operands printed with `%v`, always space-separated, newline at the end.
pub(super) fn sprintln(args: &[Value<'_>]) -> String {
    let parts: Vec<String> = args.iter().map(print_value).collect();
    let mut out = parts.join(" ");
    out.push('\n');
    out
}

/// One `%…` directive's flags, width and precision.
#[derive(Default)]
struct Spec {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Go's limit on widths and precisions (`fmt`'s `tooLarge`).
const MAX_WIDTH: usize = 1_000_000;

impl Spec {
    /// Pads `text` to the width with spaces (or zeros, when asked and allowed), honouring `-`.
    fn pad(&self, text: &str, zero_ok: bool) -> String {
        let len = text.chars().count();
        let Some(width) = self.width.filter(|w| *w > len) else {
            return text.to_string();
        };
        let fill = width - len;
        if self.minus {
            return format!("{text}{}", " ".repeat(fill));
        }
        if self.zero && zero_ok {
            // Zeros go after the sign.
            if let Some(rest) = text.strip_prefix(['-', '+', ' ']) {
                return format!("{}{}{rest}", &text[..1], "0".repeat(fill));
            }
            return format!("{}{text}", "0".repeat(fill));
        }
        format!("{}{text}", " ".repeat(fill))
    }

    fn float(&self, v: f64, verb: char) -> String {
        let verb = match verb {
            'v' => 'g',
            'F' => 'f',
            other => other,
        };
        let default_prec = matches!(verb, 'e' | 'E' | 'f').then_some(6);
        let mut num = format_float(v, verb, self.prec.or(default_prec));
        if v.is_nan() {
            if self.plus {
                num.insert(0, '+');
            } else if self.space {
                num.insert(0, ' ');
            }
            return self.pad(&num, false);
        }
        if !num.starts_with(['-', '+']) {
            if self.plus {
                num.insert(0, '+');
            } else if self.space {
                num.insert(0, ' ');
            }
        }
        self.pad(&num, v.is_finite())
    }

    fn int(&self, v: i64, verb: char) -> Option<String> {
        let magnitude = v.unsigned_abs();
        let mut digits = match verb {
            'd' | 'v' => magnitude.to_string(),
            'x' => format!("{magnitude:x}"),
            'X' => format!("{magnitude:X}"),
            'o' | 'O' => format!("{magnitude:o}"),
            'b' => format!("{magnitude:b}"),
            'U' => return Some(self.pad(&format!("U+{:04X}", v as u64), false)),
            'c' => {
                let c = u32::try_from(v)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{FFFD}');
                return Some(self.pad(&c.to_string(), false));
            }
            'q' => {
                let c = u32::try_from(v)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{FFFD}');
                return Some(self.pad(&go_quote_rune(c, self.plus), false));
            }
            _ => return None,
        };
        if let Some(prec) = self.prec {
            if prec == 0 && v == 0 {
                digits.clear();
            } else if digits.len() < prec {
                digits = format!("{}{digits}", "0".repeat(prec - digits.len()));
            }
        }
        let prefix = match verb {
            'x' if self.sharp => "0x",
            'X' if self.sharp => "0X",
            'o' if self.sharp => "0",
            'O' => "0o",
            'b' if self.sharp => "0b",
            _ => "",
        };
        let sign = if v < 0 {
            "-"
        } else if self.plus {
            "+"
        } else if self.space {
            " "
        } else {
            ""
        };
        // An explicit precision turns zero padding off, as in Go.
        let zero_ok = self.prec.is_none();
        Some(self.pad(&format!("{sign}{prefix}{digits}"), zero_ok))
    }

    fn string(&self, text: &str, verb: char) -> Option<String> {
        let truncated: String = match self.prec {
            Some(prec) => text.chars().take(prec).collect(),
            None => text.to_string(),
        };
        Some(match verb {
            's' | 'v' => self.pad(&truncated, true),
            'q' if self.sharp && can_backquote(&truncated) => {
                self.pad(&format!("`{truncated}`"), false)
            }
            'q' => self.pad(&quote_with(&truncated, self.plus), false),
            'x' | 'X' => {
                // Go's fmtSbx: `#` adds 0x, and ` ` puts a space (and 0x) between bytes.
                let prefix = if verb == 'x' { "0x" } else { "0X" };
                let mut hex = String::new();
                for (i, b) in truncated.bytes().enumerate() {
                    if i > 0 && self.space {
                        hex.push(' ');
                    }
                    if self.sharp && (i == 0 || self.space) {
                        hex.push_str(prefix);
                    }
                    let digits = if verb == 'x' {
                        format!("{b:02x}")
                    } else {
                        format!("{b:02X}")
                    };
                    hex.push_str(&digits);
                }
                self.pad(&hex, false)
            }
            _ => return None,
        })
    }
}

/// Go's type name for `%!verb(type=value)` and the like.
fn type_name(value: &Value<'_>) -> &'static str {
    value.type_name()
}

fn bad_verb(verb: char, arg: &Value<'_>) -> String {
    match arg {
        Value::Nil => format!("%!{verb}(<nil>)"),
        other => format!("%!{verb}({}={})", type_name(other), print_value(other)),
    }
}

fn format_arg(spec: &Spec, verb: char, arg: &Value<'_>) -> String {
    let formatted = match arg {
        Value::Float(f) if matches!(verb, 'v' | 'e' | 'E' | 'f' | 'F' | 'g' | 'G') => {
            Some(spec.float(*f, verb))
        }
        Value::Int(i) => spec.int(*i, verb),
        Value::Str(s) => spec.string(s, verb),
        Value::Bool(b) if matches!(verb, 't' | 'v') => Some(spec.pad(&b.to_string(), false)),
        Value::Nil if verb == 'v' => Some(spec.pad("<nil>", false)),
        Value::Map(_) | Value::Data(_) if matches!(verb, 'v' | 's') => {
            Some(spec.pad(&print_value(arg), false))
        }
        _ => None,
    };
    formatted.unwrap_or_else(|| bad_verb(verb, arg))
}

/// Reads a decimal number at `chars[*i..]`; `None` when there is none, `Some(None)` when it is
/// too large.
fn parse_number(chars: &[char], i: &mut usize) -> Option<Option<usize>> {
    let start = *i;
    let mut n: usize = 0;
    let mut too_large = false;
    while let Some(d) = chars.get(*i).and_then(|c| c.to_digit(10)) {
        n = n.saturating_mul(10).saturating_add(d as usize);
        too_large |= n > MAX_WIDTH;
        *i += 1;
    }
    (*i > start).then_some((!too_large).then_some(n))
}

/// `fmt.Sprintf` over template values: flags `+ - # 0 space`, widths and precisions (also
/// `*`), the verbs Go applies to each type, and Go's in-band errors (`%!d(string=x)`,
/// `%!s(MISSING)`, `%!(EXTRA int=1)`).
pub(super) fn sprintf(format: &str, args: &[Value<'_>]) -> String {
    let chars: Vec<char> = format.chars().collect();
    let mut out = String::new();
    let mut next_arg = 0;
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '%' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        i += 1;
        let mut spec = Spec::default();
        while let Some(c) = chars.get(i) {
            match c {
                '+' => spec.plus = true,
                '-' => spec.minus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                _ => break,
            }
            i += 1;
        }
        let mut bad = None;
        if chars.get(i) == Some(&'*') {
            i += 1;
            match args.get(next_arg) {
                Some(Value::Int(w)) => {
                    if *w < 0 {
                        spec.minus = true;
                    }
                    let w = w.unsigned_abs() as usize;
                    if w > MAX_WIDTH {
                        bad = Some("%!(BADWIDTH)");
                    } else {
                        spec.width = Some(w);
                    }
                }
                _ => bad = Some("%!(BADWIDTH)"),
            }
            next_arg += 1;
        } else {
            match parse_number(&chars, &mut i) {
                Some(Some(w)) => spec.width = Some(w),
                Some(None) => bad = Some("%!(BADWIDTH)"),
                None => {}
            }
        }
        if chars.get(i) == Some(&'.') {
            i += 1;
            if chars.get(i) == Some(&'*') {
                i += 1;
                match args.get(next_arg) {
                    Some(Value::Int(p)) if *p >= 0 && (*p as u64) <= MAX_WIDTH as u64 => {
                        spec.prec = Some(*p as usize)
                    }
                    _ => bad = Some("%!(BADPREC)"),
                }
                next_arg += 1;
            } else {
                match parse_number(&chars, &mut i) {
                    Some(Some(p)) => spec.prec = Some(p),
                    Some(None) => bad = Some("%!(BADPREC)"),
                    None => spec.prec = Some(0),
                }
            }
        }
        // '-' wins over '0', as in Go.
        if spec.minus {
            spec.zero = false;
        }
        if let Some(bad) = bad {
            out.push_str(bad);
        }
        let Some(&verb) = chars.get(i) else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += 1;
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(next_arg) {
            None => out.push_str(&format!("%!{verb}(MISSING)")),
            Some(arg) => out.push_str(&format_arg(&spec, verb, arg)),
        }
        next_arg += 1;
    }
    if next_arg < args.len() {
        let extra: Vec<String> = args[next_arg..]
            .iter()
            .map(|arg| match arg {
                Value::Nil => "<nil>".to_string(),
                other => format!("{}={}", type_name(other), print_value(other)),
            })
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}
