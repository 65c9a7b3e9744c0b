//! TraceQL text to [`Query`]: a lexer and a recursive-descent parser.
//!
//! Precedence, loosest first, as in Tempo's grammar: span sets joined by `||`, then `&&`, then the
//! structural operators `>`, `>>`, `<`, `<<`, `~` (left-associative); inside `{ … }`, conditions
//! joined by `||`, then `&&`. Anything outside the supported subset is an error that names the
//! construct, so the API can answer 400 with it.

use std::fmt;

use super::ast::{
    AggregateFn, AttributeScope, CompareOp, Field, FieldExpr, Intrinsic, KindValue, Literal,
    MetricsFn, MetricsQuery, Pipeline, Query, SpansetExpr, SpansetOp, Stage, StatusValue,
};

/// A query that does not parse, or uses what Lumen does not support.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// What is wrong, for a person.
    pub message: String,
    /// Byte offset in the query where it was found.
    pub offset: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TraceQL parse error at character {}: {}",
            self.offset + 1,
            self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// Parses a TraceQL query.
pub fn parse(text: &str) -> Result<Query, ParseError> {
    let tokens = lex(text)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        end: text.len(),
    };
    let query = parser.query()?;
    match parser.peek() {
        None => Ok(query),
        Some(token) => Err(parser.error_at(
            token.offset,
            format!("unexpected {} after the end of the query", token.kind),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Clone, Debug, PartialEq)]
enum TokenKind {
    OpenBrace,
    CloseBrace,
    OpenParen,
    CloseParen,
    Pipe,
    Comma,
    AndAnd,
    OrOr,
    Op(CompareOp),
    /// `>>`
    Descendant,
    /// `<<`
    Ancestor,
    /// `~`
    Tilde,
    Not,
    /// `+ - * / % ^`: arithmetic, which Lumen does not support.
    Arithmetic(char),
    Str(String),
    Number(Literal),
    /// A keyword, intrinsic or function name.
    Word(String),
    /// `span.x`, `resource.x`, `.x`; `Err` holds an unsupported scope's name.
    Attribute(Result<AttributeScope, String>, String),
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenKind::OpenBrace => f.write_str("`{`"),
            TokenKind::CloseBrace => f.write_str("`}`"),
            TokenKind::OpenParen => f.write_str("`(`"),
            TokenKind::CloseParen => f.write_str("`)`"),
            TokenKind::Pipe => f.write_str("`|`"),
            TokenKind::Comma => f.write_str("`,`"),
            TokenKind::AndAnd => f.write_str("`&&`"),
            TokenKind::OrOr => f.write_str("`||`"),
            TokenKind::Op(op) => write!(f, "`{}`", op.as_str()),
            TokenKind::Descendant => f.write_str("`>>`"),
            TokenKind::Ancestor => f.write_str("`<<`"),
            TokenKind::Tilde => f.write_str("`~`"),
            TokenKind::Not => f.write_str("`!`"),
            TokenKind::Arithmetic(c) => write!(f, "`{c}`"),
            TokenKind::Str(s) => write!(f, "the string {s:?}"),
            TokenKind::Number(_) => f.write_str("a number"),
            TokenKind::Word(w) => write!(f, "`{w}`"),
            TokenKind::Attribute(_, name) => write!(f, "the attribute `{name}`"),
        }
    }
}

#[derive(Clone, Debug)]
struct Token {
    kind: TokenKind,
    offset: usize,
}

/// Characters that end an unquoted attribute name.
fn ends_attribute(c: char) -> bool {
    c.is_whitespace() || "{}()=!<>&|~,\"`".contains(c)
}

fn lex(text: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|(_, c)| *c);
    let offset_of = |i: usize| chars.get(i).map_or(text.len(), |(o, _)| *o);
    let error = |i: usize, message: String| ParseError {
        message,
        offset: offset_of(i),
    };
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(c) = at(i) {
        let start = i;
        let two = |second: char| at(i + 1) == Some(second);
        let (kind, len) = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '{' => (TokenKind::OpenBrace, 1),
            '}' => (TokenKind::CloseBrace, 1),
            '(' => (TokenKind::OpenParen, 1),
            ')' => (TokenKind::CloseParen, 1),
            ',' => (TokenKind::Comma, 1),
            '|' if two('|') => (TokenKind::OrOr, 2),
            '|' => (TokenKind::Pipe, 1),
            '&' if two('&') => (TokenKind::AndAnd, 2),
            '=' if two('~') => (TokenKind::Op(CompareOp::Regex), 2),
            '=' => (TokenKind::Op(CompareOp::Eq), 1),
            '!' if two('=') => (TokenKind::Op(CompareOp::Ne), 2),
            '!' if two('~') => (TokenKind::Op(CompareOp::NotRegex), 2),
            '!' => (TokenKind::Not, 1),
            '>' if two('=') => (TokenKind::Op(CompareOp::Ge), 2),
            '>' if two('>') => (TokenKind::Descendant, 2),
            '>' => (TokenKind::Op(CompareOp::Gt), 1),
            '<' if two('=') => (TokenKind::Op(CompareOp::Le), 2),
            '<' if two('<') => (TokenKind::Ancestor, 2),
            '<' => (TokenKind::Op(CompareOp::Lt), 1),
            '~' => (TokenKind::Tilde, 1),
            '"' | '`' => {
                let (value, len) = lex_string(&chars[i..], c)
                    .ok_or_else(|| error(i, "a string is not closed".into()))?;
                (TokenKind::Str(value), len)
            }
            '-' if at(i + 1).is_some_and(|c| c.is_ascii_digit() || c == '.') => {
                let (literal, len) = lex_number(&chars[i..]).map_err(|m| error(i, m))?;
                (TokenKind::Number(literal), len)
            }
            c if c.is_ascii_digit() => {
                let (literal, len) = lex_number(&chars[i..]).map_err(|m| error(i, m))?;
                (TokenKind::Number(literal), len)
            }
            '.' if at(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                let (literal, len) = lex_number(&chars[i..]).map_err(|m| error(i, m))?;
                (TokenKind::Number(literal), len)
            }
            '.' => {
                let (name, len) =
                    lex_attribute_name(&chars[i + 1..]).map_err(|m| error(i + 1, m))?;
                (TokenKind::Attribute(Ok(AttributeScope::Any), name), len + 1)
            }
            '+' | '-' | '*' | '/' | '%' | '^' => (TokenKind::Arithmetic(c), 1),
            c if c.is_alphabetic() || c == '_' => {
                let mut j = i;
                while at(j).is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    j += 1;
                }
                let word: String = chars[i..j].iter().map(|(_, c)| c).collect();
                if at(j) == Some('.') {
                    let scope = match word.as_str() {
                        "span" => Ok(AttributeScope::Span),
                        "resource" => Ok(AttributeScope::Resource),
                        _ => Err(word.clone()),
                    };
                    let (name, len) =
                        lex_attribute_name(&chars[j + 1..]).map_err(|m| error(j + 1, m))?;
                    (TokenKind::Attribute(scope, name), j + 1 + len - i)
                } else {
                    (TokenKind::Word(word), j - i)
                }
            }
            other => return Err(error(i, format!("unexpected character {other:?}"))),
        };
        tokens.push(Token {
            kind,
            offset: offset_of(start),
        });
        i = start + len;
    }
    Ok(tokens)
}

/// A quoted string starting at `chars[0]` (the quote): its value and length in chars.
/// Backquoted strings are raw; double-quoted ones take `\"`, `\\`, `\n`, `\t`, `\r`.
fn lex_string(chars: &[(usize, char)], quote: char) -> Option<(String, usize)> {
    let mut value = String::new();
    let mut i = 1;
    loop {
        let c = chars.get(i)?.1;
        match c {
            c if c == quote => return Some((value, i + 1)),
            '\\' if quote == '"' => {
                let escaped = chars.get(i + 1)?.1;
                value.push(match escaped {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    other => other,
                });
                i += 2;
            }
            c => {
                value.push(c);
                i += 1;
            }
        }
    }
}

/// An unquoted or quoted attribute name after its scope's dot.
fn lex_attribute_name(chars: &[(usize, char)]) -> Result<(String, usize), String> {
    if let Some((_, '"')) = chars.first() {
        return lex_string(chars, '"').ok_or_else(|| "an attribute name is not closed".into());
    }
    let len = chars
        .iter()
        .take_while(|(_, c)| !ends_attribute(*c))
        .count();
    if len == 0 {
        return Err("an attribute name is missing after `.`".into());
    }
    Ok((chars[..len].iter().map(|(_, c)| c).collect(), len))
}

/// A number, possibly negative, possibly with a duration unit.
fn lex_number(chars: &[(usize, char)]) -> Result<(Literal, usize), String> {
    let text: String = chars.iter().map(|(_, c)| c).collect();
    let mut len = 0;
    let bytes: Vec<char> = text.chars().collect();
    if bytes.first() == Some(&'-') {
        len += 1;
    }
    while bytes
        .get(len)
        .is_some_and(|c| c.is_ascii_digit() || *c == '.')
    {
        len += 1;
    }
    // An exponent: 1e3, 2.5e-3.
    if bytes.get(len).is_some_and(|c| *c == 'e' || *c == 'E')
        && bytes
            .get(len + 1)
            .is_some_and(|c| c.is_ascii_digit() || *c == '-' || *c == '+')
    {
        len += 2;
        while bytes.get(len).is_some_and(|c| c.is_ascii_digit()) {
            len += 1;
        }
    }
    let number: String = bytes[..len].iter().collect();
    let mut unit_len = 0;
    while bytes.get(len + unit_len).is_some_and(|c| c.is_alphabetic()) {
        unit_len += 1;
    }
    let unit: String = bytes[len..len + unit_len].iter().collect();
    if unit.is_empty() {
        let literal = if number.contains(['.', 'e', 'E']) {
            Literal::Float(
                number
                    .parse()
                    .map_err(|_| format!("{number:?} is not a number"))?,
            )
        } else {
            Literal::Int(
                number
                    .parse()
                    .map_err(|_| format!("{number:?} is not a 64-bit integer"))?,
            )
        };
        return Ok((literal, len));
    }
    let scale: f64 = match unit.as_str() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        "d" => 86_400e9,
        other => {
            return Err(format!(
                "unknown unit {other:?} after {number}: durations take ns, us, ms, s, m, h or d"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{number:?} is not a number"))?;
    let nanos = value * scale;
    if !nanos.is_finite() || nanos.abs() > i64::MAX as f64 {
        return Err(format!("the duration {number}{unit} is out of range"));
    }
    Ok((Literal::Duration(nanos.round() as i64), len + unit_len))
}

// ---------------------------------------------------------------------------------------------
// Parser

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn peek_kind(&self) -> Option<&TokenKind> {
        self.peek().map(|t| &t.kind)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn offset(&self) -> usize {
        self.peek().map_or(self.end, |t| t.offset)
    }

    fn error_at(&self, offset: usize, message: String) -> ParseError {
        ParseError { message, offset }
    }

    fn error_here(&self, expected: &str) -> ParseError {
        let found = match self.peek() {
            Some(token) => token.kind.to_string(),
            None => "the end of the query".to_string(),
        };
        self.error_at(self.offset(), format!("expected {expected}, found {found}"))
    }

    fn eat(&mut self, kind: &TokenKind) -> bool {
        if self.peek_kind() == Some(kind) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, kind: &TokenKind, what: &str) -> Result<(), ParseError> {
        if self.eat(kind) {
            Ok(())
        } else {
            Err(self.error_here(what))
        }
    }

    fn query(&mut self) -> Result<Query, ParseError> {
        let spans = self.spanset_or()?;
        let mut stages = Vec::new();
        while self.eat(&TokenKind::Pipe) {
            if let Some(function) = self.metrics_function()? {
                let by = if self.peek_kind() == Some(&TokenKind::Word("by".into())) {
                    self.pos += 1;
                    self.field_list()?
                } else {
                    Vec::new()
                };
                return Ok(Query::Metrics(MetricsQuery {
                    pipeline: Pipeline { spans, stages },
                    function,
                    by,
                }));
            }
            stages.push(self.stage()?);
        }
        Ok(Query::Spans(Pipeline { spans, stages }))
    }

    fn spanset_or(&mut self) -> Result<SpansetExpr, ParseError> {
        let mut left = self.spanset_and()?;
        while self.eat(&TokenKind::OrOr) {
            let right = self.spanset_and()?;
            left = SpansetExpr::Binary(Box::new(left), SpansetOp::Or, Box::new(right));
        }
        Ok(left)
    }

    fn spanset_and(&mut self) -> Result<SpansetExpr, ParseError> {
        let mut left = self.spanset_structural()?;
        while self.eat(&TokenKind::AndAnd) {
            let right = self.spanset_structural()?;
            left = SpansetExpr::Binary(Box::new(left), SpansetOp::And, Box::new(right));
        }
        Ok(left)
    }

    fn spanset_structural(&mut self) -> Result<SpansetExpr, ParseError> {
        let mut left = self.spanset_atom()?;
        loop {
            let op = match self.peek_kind() {
                Some(TokenKind::Op(CompareOp::Gt)) => SpansetOp::Child,
                Some(TokenKind::Descendant) => SpansetOp::Descendant,
                Some(TokenKind::Op(CompareOp::Lt)) => SpansetOp::Parent,
                Some(TokenKind::Ancestor) => SpansetOp::Ancestor,
                Some(TokenKind::Tilde) => SpansetOp::Sibling,
                Some(TokenKind::Not) => {
                    return Err(self.error_at(
                        self.offset(),
                        "negated structural operators (`!>`, `!>>`, `!~` …) are not supported"
                            .into(),
                    ));
                }
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.spanset_atom()?;
            left = SpansetExpr::Binary(Box::new(left), op, Box::new(right));
        }
    }

    fn spanset_atom(&mut self) -> Result<SpansetExpr, ParseError> {
        if self.eat(&TokenKind::OpenParen) {
            let inner = self.spanset_or()?;
            self.expect(&TokenKind::CloseParen, "`)`")?;
            return Ok(inner);
        }
        if !self.eat(&TokenKind::OpenBrace) {
            return Err(self.error_here("a span set `{ … }`"));
        }
        if self.eat(&TokenKind::CloseBrace) {
            return Ok(SpansetExpr::Filter(None));
        }
        let condition = self.field_or()?;
        self.expect(&TokenKind::CloseBrace, "`}` or `&&` / `||`")?;
        Ok(SpansetExpr::Filter(Some(condition)))
    }

    fn field_or(&mut self) -> Result<FieldExpr, ParseError> {
        let mut left = self.field_and()?;
        while self.eat(&TokenKind::OrOr) {
            let right = self.field_and()?;
            left = FieldExpr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn field_and(&mut self) -> Result<FieldExpr, ParseError> {
        let mut left = self.field_condition()?;
        while self.eat(&TokenKind::AndAnd) {
            let right = self.field_condition()?;
            left = FieldExpr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn field_condition(&mut self) -> Result<FieldExpr, ParseError> {
        if self.eat(&TokenKind::OpenParen) {
            let inner = self.field_or()?;
            self.expect(&TokenKind::CloseParen, "`)`")?;
            return Ok(inner);
        }
        if self.peek_kind() == Some(&TokenKind::Not) {
            return Err(self.error_at(
                self.offset(),
                "`!` before a condition is not supported: use `!=` or `!~`".into(),
            ));
        }
        if let Some(TokenKind::Word(word)) = self.peek_kind()
            && (word == "true" || word == "false")
        {
            let value = word == "true";
            self.pos += 1;
            return Ok(FieldExpr::Constant(value));
        }
        let field = self.field()?;
        let op = match self.peek_kind() {
            Some(TokenKind::Op(op)) => *op,
            Some(TokenKind::Arithmetic(c)) => {
                return Err(self.error_at(
                    self.offset(),
                    format!("arithmetic (`{c}`) in conditions is not supported"),
                ));
            }
            _ => return Ok(FieldExpr::Exists(field)),
        };
        self.pos += 1;
        let offset = self.offset();
        let literal = self.literal()?;
        check_comparison(&field, op, &literal).map_err(|m| self.error_at(offset, m))?;
        Ok(FieldExpr::Compare(field, op, literal))
    }

    fn field(&mut self) -> Result<Field, ParseError> {
        let offset = self.offset();
        match self.next().map(|t| t.kind) {
            Some(TokenKind::Attribute(Ok(scope), name)) => Ok(Field::Attribute(scope, name)),
            Some(TokenKind::Attribute(Err(scope), _)) => Err(self.error_at(
                offset,
                format!("`{scope}.` attributes are not supported: use `span.`, `resource.` or `.`"),
            )),
            Some(TokenKind::Word(word)) => match Intrinsic::from_word(&word) {
                Some(intrinsic) => Ok(Field::Intrinsic(intrinsic)),
                None => Err(self.error_at(
                    offset,
                    format!(
                        "unknown field `{word}`: attributes are written `span.{word}`, \
                         `resource.{word}` or `.{word}`"
                    ),
                )),
            },
            Some(TokenKind::Number(_)) | Some(TokenKind::Str(_)) => Err(self.error_at(
                offset,
                "a condition starts with a field (`span.x`, `duration` …), then the value".into(),
            )),
            _ => {
                self.pos -= 1;
                Err(self.error_here("a field such as `span.http.route` or `duration`"))
            }
        }
    }

    fn literal(&mut self) -> Result<Literal, ParseError> {
        let offset = self.offset();
        match self.next().map(|t| t.kind) {
            Some(TokenKind::Str(s)) => Ok(Literal::String(s)),
            Some(TokenKind::Number(n)) => Ok(n),
            Some(TokenKind::Word(word)) => Ok(match word.as_str() {
                "true" => Literal::Bool(true),
                "false" => Literal::Bool(false),
                "error" => Literal::Status(StatusValue::Error),
                "ok" => Literal::Status(StatusValue::Ok),
                "unset" => Literal::Status(StatusValue::Unset),
                "unspecified" => Literal::Kind(KindValue::Unspecified),
                "internal" => Literal::Kind(KindValue::Internal),
                "server" => Literal::Kind(KindValue::Server),
                "client" => Literal::Kind(KindValue::Client),
                "producer" => Literal::Kind(KindValue::Producer),
                "consumer" => Literal::Kind(KindValue::Consumer),
                "nil" => {
                    return Err(self.error_at(offset, "`nil` is not supported".into()));
                }
                other => {
                    return Err(self.error_at(
                        offset,
                        format!("expected a value, found `{other}` (strings are quoted)"),
                    ));
                }
            }),
            Some(TokenKind::Attribute(..)) => Err(self.error_at(
                offset,
                "comparing two fields is not supported: compare a field with a value".into(),
            )),
            _ => {
                self.pos -= 1;
                Err(self.error_here("a value"))
            }
        }
    }

    /// `(field, …)`.
    fn field_list(&mut self) -> Result<Vec<Field>, ParseError> {
        self.expect(&TokenKind::OpenParen, "`(`")?;
        let mut fields = vec![self.field()?];
        while self.eat(&TokenKind::Comma) {
            fields.push(self.field()?);
        }
        self.expect(&TokenKind::CloseParen, "`)`")?;
        Ok(fields)
    }

    fn function_name(&self) -> Option<String> {
        match self.peek_kind() {
            Some(TokenKind::Word(word)) => Some(word.clone()),
            _ => None,
        }
    }

    fn empty_parens(&mut self) -> Result<(), ParseError> {
        self.expect(&TokenKind::OpenParen, "`(`")?;
        self.expect(&TokenKind::CloseParen, "`)`")
    }

    /// A metrics function, when the next stage is one.
    fn metrics_function(&mut self) -> Result<Option<MetricsFn>, ParseError> {
        let Some(name) = self.function_name() else {
            return Ok(None);
        };
        let over_time = match name.as_str() {
            "min_over_time" => Some(AggregateFn::Min),
            "max_over_time" => Some(AggregateFn::Max),
            "avg_over_time" => Some(AggregateFn::Avg),
            "sum_over_time" => Some(AggregateFn::Sum),
            _ => None,
        };
        let function = match name.as_str() {
            "rate" => {
                self.pos += 1;
                self.empty_parens()?;
                MetricsFn::Rate
            }
            "count_over_time" => {
                self.pos += 1;
                self.empty_parens()?;
                MetricsFn::CountOverTime
            }
            "quantile_over_time" => {
                self.pos += 1;
                self.expect(&TokenKind::OpenParen, "`(`")?;
                let field = self.field()?;
                let mut quantiles = Vec::new();
                while self.eat(&TokenKind::Comma) {
                    let offset = self.offset();
                    let q = match self.literal()? {
                        Literal::Float(q) => q,
                        Literal::Int(q) => q as f64,
                        _ => return Err(self.error_at(offset, "a quantile is a number".into())),
                    };
                    if !(0.0..=1.0).contains(&q) {
                        return Err(
                            self.error_at(offset, format!("the quantile {q} is not in [0, 1]"))
                        );
                    }
                    quantiles.push(q);
                }
                if quantiles.is_empty() {
                    return Err(self.error_here("`,` and at least one quantile"));
                }
                self.expect(&TokenKind::CloseParen, "`)`")?;
                MetricsFn::QuantileOverTime(field, quantiles)
            }
            "histogram_over_time" => {
                self.pos += 1;
                self.expect(&TokenKind::OpenParen, "`(`")?;
                let field = self.field()?;
                self.expect(&TokenKind::CloseParen, "`)`")?;
                MetricsFn::HistogramOverTime(field)
            }
            _ => match over_time {
                Some(aggregate) => {
                    self.pos += 1;
                    self.expect(&TokenKind::OpenParen, "`(`")?;
                    let field = self.field()?;
                    self.expect(&TokenKind::CloseParen, "`)`")?;
                    MetricsFn::OverTime(aggregate, field)
                }
                None => return Ok(None),
            },
        };
        if self.peek_kind() == Some(&TokenKind::Pipe) {
            return Err(self.error_at(
                self.offset(),
                "a metrics function must be the last stage of the query".into(),
            ));
        }
        Ok(Some(function))
    }

    fn stage(&mut self) -> Result<Stage, ParseError> {
        let offset = self.offset();
        let Some(name) = self.function_name() else {
            return Err(self.error_here("a pipeline stage such as `select(…)` or `count() > 1`"));
        };
        self.pos += 1;
        let stage = match name.as_str() {
            "select" => Stage::Select(self.field_list()?),
            "by" => Stage::By(self.field_list()?),
            "coalesce" => {
                self.empty_parens()?;
                Stage::Coalesce
            }
            "count" => {
                self.empty_parens()?;
                let op = self.compare_op()?;
                let offset = self.offset();
                let n = match self.literal()? {
                    Literal::Int(n) => n as f64,
                    Literal::Float(n) => n,
                    _ => return Err(self.error_at(offset, "count() compares with a number".into())),
                };
                Stage::Count(op, n)
            }
            "avg" | "min" | "max" | "sum" => {
                let function = match name.as_str() {
                    "avg" => AggregateFn::Avg,
                    "min" => AggregateFn::Min,
                    "max" => AggregateFn::Max,
                    _ => AggregateFn::Sum,
                };
                self.expect(&TokenKind::OpenParen, "`(`")?;
                let field = self.field()?;
                self.expect(&TokenKind::CloseParen, "`)`")?;
                let op = self.compare_op()?;
                let literal = self.literal()?;
                Stage::Aggregate(function, field, op, literal)
            }
            other => {
                return Err(self.error_at(
                    offset,
                    format!(
                        "the pipeline stage `{other}` is not supported (supported: select, \
                         count, avg, min, max, sum, by, coalesce, and the metrics functions \
                         rate, count_over_time, quantile_over_time, histogram_over_time, \
                         min/max/avg/sum_over_time)"
                    ),
                ));
            }
        };
        Ok(stage)
    }

    fn compare_op(&mut self) -> Result<CompareOp, ParseError> {
        match self.peek_kind() {
            Some(TokenKind::Op(op)) if !matches!(op, CompareOp::Regex | CompareOp::NotRegex) => {
                let op = *op;
                self.pos += 1;
                Ok(op)
            }
            _ => Err(self.error_here("a comparison (`=`, `!=`, `>`, `>=`, `<`, `<=`)")),
        }
    }
}

/// Refuses comparisons that can never make sense, naming them.
fn check_comparison(field: &Field, op: CompareOp, literal: &Literal) -> Result<(), String> {
    let regex = matches!(op, CompareOp::Regex | CompareOp::NotRegex);
    if regex && !matches!(literal, Literal::String(_)) {
        return Err(format!(
            "`{}` takes a quoted regular expression",
            op.as_str()
        ));
    }
    if regex && let Literal::String(pattern) = literal {
        regex::Regex::new(pattern)
            .map_err(|e| format!("invalid regular expression {pattern:?}: {e}"))?;
    }
    let ordered = matches!(
        op,
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
    );
    let Field::Intrinsic(intrinsic) = field else {
        return Ok(());
    };
    let fits = match intrinsic {
        Intrinsic::Duration | Intrinsic::TraceDuration => {
            matches!(literal, Literal::Duration(_)) && !regex
        }
        Intrinsic::Status => matches!(literal, Literal::Status(_)) && !ordered && !regex,
        Intrinsic::Kind => matches!(literal, Literal::Kind(_)) && !ordered && !regex,
        Intrinsic::Name
        | Intrinsic::StatusMessage
        | Intrinsic::TraceRootName
        | Intrinsic::TraceRootService
        | Intrinsic::SpanId
        | Intrinsic::ParentId
        | Intrinsic::TraceId => matches!(literal, Literal::String(_)),
        Intrinsic::NestedSetParent => matches!(literal, Literal::Int(n) if *n <= 0) && !regex,
    };
    if fits {
        Ok(())
    } else {
        let takes = match intrinsic {
            Intrinsic::Duration | Intrinsic::TraceDuration => {
                "a duration such as `100ms` (with =, !=, >, >=, <, <=)"
            }
            Intrinsic::Status => "`error`, `ok` or `unset` (with = or !=)",
            Intrinsic::NestedSetParent => {
                "0 or -1 (`nestedSetParent < 0` selects root spans; Lumen keeps no nested-set numbers)"
            }
            Intrinsic::Kind => {
                "`server`, `client`, `producer`, `consumer`, `internal` or `unspecified` (with = or !=)"
            }
            _ => "a quoted string",
        };
        Err(format!(
            "`{} {} …` does not fit: {} takes {takes}",
            intrinsic.as_str(),
            op.as_str(),
            intrinsic.as_str()
        ))
    }
}

#[cfg(test)]
mod tests;
