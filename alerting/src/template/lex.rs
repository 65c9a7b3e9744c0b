//! Splits template text into text runs and the tokens of `{{ actions }}`, as Go's
//! `text/template/parse` lexer does: `{{-`/`-}}` trim the white space beside them, `{{/* */}}`
//! is a comment, and every token keeps its byte offset for error messages.

use super::ParseError;

/// A token.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    /// Text outside actions, already trimmed.
    Text(String),
    /// `{{`.
    Open,
    /// `}}`.
    Close,
    /// White space inside an action (it separates operands and ends field chains).
    Space,
    Pipe,
    LParen,
    RParen,
    /// `:=`.
    Declare,
    /// `=`.
    Assign,
    Comma,
    Bool(bool),
    /// A number literal as written.
    Number(String),
    /// A character constant: Go treats `'a'` as the integer 97.
    Char(char),
    /// A string literal, unquoted.
    Str(String),
    /// `.` alone.
    Dot,
    /// `.Name`, without the dot.
    Field(String),
    /// `$name` or `$`, with the dollar.
    Variable(String),
    /// A function name.
    Ident(String),
    /// `if`, `else`, `end`, `with`, `range`, `break`, `continue`, `nil`, `define`, `template`,
    /// `block`.
    Keyword(&'static str),
    Eof,
}

/// A token and its byte offset in the template text.
#[derive(Clone, Debug)]
pub(super) struct Item {
    pub tok: Tok,
    pub pos: usize,
}

const KEYWORDS: [&str; 11] = [
    "block", "break", "continue", "define", "else", "end", "if", "nil", "range", "template", "with",
];

/// Go's `isSpace`: the white space allowed inside actions and trimmed by `{{-`/`-}}`.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Tokenises `src`.
pub(super) fn lex(src: &str) -> Result<Vec<Item>, ParseError> {
    let mut items = Vec::new();
    let mut pos = 0;
    let mut trim_next_text = false;
    loop {
        let open = src[pos..].find("{{").map(|i| pos + i);
        let text_end = open.unwrap_or(src.len());
        let mut text = &src[pos..text_end];
        if trim_next_text {
            text = text.trim_start_matches(is_space);
        }
        let trim_before = open.is_some_and(|o| has_left_trim(&src[o + 2..]));
        if trim_before {
            text = text.trim_end_matches(is_space);
        }
        if !text.is_empty() {
            items.push(Item {
                tok: Tok::Text(text.to_string()),
                pos,
            });
        }
        let Some(open) = open else { break };
        let mut inside = open + 2;
        if trim_before {
            inside += 2;
        }
        if src[inside..].starts_with("/*") {
            let (end, trim) = lex_comment(src, open, inside)?;
            pos = end;
            trim_next_text = trim;
            continue;
        }
        items.push(Item {
            tok: Tok::Open,
            pos: open,
        });
        let (end, trim) = lex_action(src, open, inside, &mut items)?;
        pos = end;
        trim_next_text = trim;
    }
    items.push(Item {
        tok: Tok::Eof,
        pos: src.len(),
    });
    Ok(items)
}

/// `{{-` followed by white space.
fn has_left_trim(after_open: &str) -> bool {
    let mut chars = after_open.chars();
    chars.next() == Some('-') && chars.next().is_some_and(is_space)
}

/// White space followed by `-}}`, at `rest`; returns the length of the whole marker.
fn right_trim_len(rest: &str) -> Option<usize> {
    let first = rest.chars().next().filter(|c| is_space(*c))?;
    let after = &rest[first.len_utf8()..];
    after.starts_with("-}}").then(|| first.len_utf8() + 3)
}

/// A `{{/* … */}}` comment starting at `inside`; returns where the text after it starts and
/// whether that text is trimmed.
fn lex_comment(src: &str, open: usize, inside: usize) -> Result<(usize, bool), ParseError> {
    let Some(close) = src[inside + 2..].find("*/").map(|i| inside + 2 + i + 2) else {
        return Err(ParseError::new(open, "unclosed comment"));
    };
    let rest = &src[close..];
    if rest.starts_with("}}") {
        return Ok((close + 2, false));
    }
    if let Some(len) = right_trim_len(rest) {
        return Ok((close + len, true));
    }
    Err(ParseError::new(
        close,
        "comment ends before closing delimiter",
    ))
}

/// The tokens of one action, from just after `{{` (and its trim marker) to `}}`; returns where
/// the text after it starts and whether that text is trimmed.
fn lex_action(
    src: &str,
    open: usize,
    mut pos: usize,
    items: &mut Vec<Item>,
) -> Result<(usize, bool), ParseError> {
    let mut paren_depth: usize = 0;
    loop {
        let rest = &src[pos..];
        if let Some(len) = right_trim_len(rest) {
            if paren_depth > 0 {
                return Err(ParseError::new(pos, "unclosed left paren"));
            }
            items.push(Item {
                tok: Tok::Close,
                pos,
            });
            return Ok((pos + len, true));
        }
        if rest.starts_with("}}") {
            if paren_depth > 0 {
                return Err(ParseError::new(pos, "unclosed left paren"));
            }
            items.push(Item {
                tok: Tok::Close,
                pos,
            });
            return Ok((pos + 2, false));
        }
        let Some(c) = rest.chars().next() else {
            return Err(ParseError::new(open, "unclosed action"));
        };
        let start = pos;
        let push = |items: &mut Vec<Item>, tok: Tok| items.push(Item { tok, pos: start });
        match c {
            c if is_space(c) => {
                // Stops before a space that starts " -}}": the loop's top handles that one.
                let mut len = 0;
                for (i, ch) in rest.char_indices() {
                    if !is_space(ch) || right_trim_len(&rest[i..]).is_some() {
                        break;
                    }
                    len = i + ch.len_utf8();
                }
                push(items, Tok::Space);
                pos += len.max(1);
            }
            '|' => {
                push(items, Tok::Pipe);
                pos += 1;
            }
            '(' => {
                push(items, Tok::LParen);
                paren_depth += 1;
                pos += 1;
            }
            ')' => {
                if paren_depth == 0 {
                    return Err(ParseError::new(pos, "unexpected right paren"));
                }
                paren_depth -= 1;
                push(items, Tok::RParen);
                pos += 1;
            }
            ':' => {
                if !rest.starts_with(":=") {
                    return Err(ParseError::new(pos, "expected :="));
                }
                push(items, Tok::Declare);
                pos += 2;
            }
            '=' => {
                push(items, Tok::Assign);
                pos += 1;
            }
            ',' => {
                push(items, Tok::Comma);
                pos += 1;
            }
            '"' => {
                let (value, len) =
                    lex_quoted(rest).map_err(|(offset, msg)| ParseError::new(pos + offset, msg))?;
                push(items, Tok::Str(value));
                pos += len;
            }
            '`' => {
                let Some(end) = rest[1..].find('`') else {
                    return Err(ParseError::new(pos, "unterminated raw quoted string"));
                };
                push(items, Tok::Str(rest[1..1 + end].to_string()));
                pos += end + 2;
            }
            '\'' => {
                let (value, len) = lex_char(rest).map_err(|msg| ParseError::new(pos, msg))?;
                push(items, Tok::Char(value));
                pos += len;
            }
            '$' => {
                let len = 1 + rest[1..]
                    .find(|c: char| !is_alphanumeric(c))
                    .unwrap_or(rest.len() - 1);
                push(items, Tok::Variable(rest[..len].to_string()));
                pos += len;
            }
            '.' => {
                let next = rest[1..].chars().next();
                if next.is_some_and(|c| c.is_ascii_digit()) {
                    pos += lex_number(src, pos, items)?;
                } else if next.is_some_and(is_alphanumeric) {
                    let len = 1 + rest[1..]
                        .find(|c: char| !is_alphanumeric(c))
                        .unwrap_or(rest.len() - 1);
                    push(items, Tok::Field(rest[1..len].to_string()));
                    pos += len;
                } else {
                    push(items, Tok::Dot);
                    pos += 1;
                }
            }
            '+' | '-' | '0'..='9' => {
                pos += lex_number(src, pos, items)?;
            }
            c if is_alphanumeric(c) => {
                let len = rest
                    .find(|c: char| !is_alphanumeric(c))
                    .unwrap_or(rest.len());
                let word = &rest[..len];
                let tok = match word {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    _ => match KEYWORDS.iter().find(|k| **k == word) {
                        Some(k) => Tok::Keyword(k),
                        None => Tok::Ident(word.to_string()),
                    },
                };
                push(items, tok);
                pos += len;
            }
            c => {
                return Err(ParseError::new(
                    pos,
                    format!("unrecognized character in action: U+{:04X}", c as u32),
                ));
            }
        }
    }
}

/// A number starting at `pos` (sign, base prefix, digits, fraction, exponent, as Go scans
/// them); returns its length.
fn lex_number(src: &str, pos: usize, items: &mut Vec<Item>) -> Result<usize, ParseError> {
    let rest = &src[pos..];
    let bytes = rest.as_bytes();
    let mut i = 0;
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let mut digits: &[u8] = b"0123456789_";
    let mut exponent: &[u8] = b"eE";
    if bytes.get(i) == Some(&b'0') {
        match bytes.get(i + 1) {
            Some(b'x' | b'X') => {
                i += 2;
                digits = b"0123456789abcdefABCDEF_";
                exponent = b"pP";
            }
            Some(b'o' | b'O') => {
                i += 2;
                digits = b"01234567_";
                exponent = b"";
            }
            Some(b'b' | b'B') => {
                i += 2;
                digits = b"01_";
                exponent = b"";
            }
            _ => {}
        }
    }
    let scan = |i: &mut usize, set: &[u8]| {
        while bytes.get(*i).is_some_and(|b| set.contains(b)) {
            *i += 1;
        }
    };
    scan(&mut i, digits);
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        scan(&mut i, digits);
    }
    if bytes.get(i).is_some_and(|b| exponent.contains(b)) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        scan(&mut i, b"0123456789_");
    }
    if bytes.get(i) == Some(&b'i') {
        i += 1;
    }
    if rest[i..].chars().next().is_some_and(is_alphanumeric)
        || i == 0
        || (i == 1 && !bytes[0].is_ascii_digit())
    {
        let end = i + rest[i..]
            .find(|c: char| !is_alphanumeric(c))
            .unwrap_or(rest.len() - i);
        return Err(ParseError::new(
            pos,
            format!("bad number syntax: {:?}", &rest[..end.max(1)]),
        ));
    }
    items.push(Item {
        tok: Tok::Number(rest[..i].to_string()),
        pos,
    });
    Ok(i)
}

/// A double-quoted string at the start of `rest`; returns its value and length, or the offset
/// and text of the error.
fn lex_quoted(rest: &str) -> Result<(String, usize), (usize, String)> {
    let mut value = String::new();
    let mut chars = rest.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, i + 1)),
            '\n' => return Err((0, "unterminated quoted string".into())),
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                match e {
                    'a' => value.push('\x07'),
                    'b' => value.push('\x08'),
                    'f' => value.push('\x0c'),
                    'n' => value.push('\n'),
                    'r' => value.push('\r'),
                    't' => value.push('\t'),
                    'v' => value.push('\x0b'),
                    '\\' | '"' => value.push(e),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = chars.by_ref().take(n).map(|(_, c)| c).collect();
                        let code = u32::from_str_radix(&hex, 16)
                            .ok()
                            .filter(|_| hex.len() == n);
                        match code.and_then(char::from_u32) {
                            Some(c) => value.push(c),
                            None => {
                                return Err((i, format!("invalid escape \\{e}{hex} in string")));
                            }
                        }
                    }
                    '0'..='7' => {
                        let mut code = e.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            match chars.next().and_then(|(_, c)| c.to_digit(8)) {
                                Some(d) => code = code * 8 + d,
                                None => return Err((i, "invalid octal escape in string".into())),
                            }
                        }
                        match char::from_u32(code).filter(|_| code < 256) {
                            Some(c) => value.push(c),
                            None => return Err((i, "invalid octal escape in string".into())),
                        }
                    }
                    other => {
                        return Err((i, format!("unknown escape sequence \\{other} in string")));
                    }
                }
            }
            c => value.push(c),
        }
    }
    Err((0, "unterminated quoted string".into()))
}

/// A character constant at the start of `rest` (`'a'`, `'\n'`); returns it and its length.
fn lex_char(rest: &str) -> Result<(char, usize), String> {
    let body_end = {
        let mut escaped = false;
        let mut end = None;
        for (i, c) in rest.char_indices().skip(1) {
            match c {
                '\n' => break,
                '\\' if !escaped => escaped = true,
                '\'' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        end.ok_or_else(|| "unterminated character constant".to_string())?
    };
    let body = &rest[1..body_end];
    // Reuse the string unescaping: a character constant is a one-character string.
    let escaped = body.replace("\\'", "'").replace('"', "\\\"");
    let (value, _) = lex_quoted(&format!("\"{escaped}\""))
        .map_err(|(_, msg)| msg.replace("string", "character constant"))?;
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok((c, body_end + 1)),
        _ => Err(format!("malformed character constant: '{body}'")),
    }
}
