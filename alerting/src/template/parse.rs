//! Builds the tree of a template from its tokens, checking what Go checks when it parses
//! (defined variables, known functions, well-formed `if`/`with`/`range`) plus what Lumen can
//! know early: how many arguments each function takes and whether literal regular expressions
//! compile.

use super::ParseError;
use super::funcs::{Func, compile_regex};
use super::lex::{Item, Tok};

/// How deeply actions and parentheses may nest; evaluation recurses, so depth is bounded.
const MAX_DEPTH: usize = 100;

/// The variables every alert template starts with (Prometheus declares them in a prefix).
pub(super) const PREDEFINED_VARIABLES: [&str; 5] =
    ["$", "$labels", "$externalLabels", "$externalURL", "$value"];

/// A node of the template tree.
#[derive(Clone, Debug)]
pub(super) enum Node {
    Text(String),
    /// `{{ pipeline }}`: prints the value unless the pipeline declares a variable.
    Action(Pipeline),
    /// `{{ if }}` and `{{ with }}` (which also sets `.`); `else if`/`else with` nest in `otherwise`.
    Conditional {
        with: bool,
        pipe: Pipeline,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Range {
        pipe: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Break,
    Continue,
}

/// `$x := cmd | cmd | …`.
#[derive(Clone, Debug)]
pub(super) struct Pipeline {
    /// Declared (or, with `assign`, assigned) variables.
    pub decl: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Command>,
}

/// One stage of a pipeline: a function and its arguments, or a single value.
#[derive(Clone, Debug)]
pub(super) struct Command {
    pub pos: usize,
    /// The command's source text, for error messages (`at <humanize "x">`).
    pub text: String,
    pub args: Vec<Operand>,
    /// The regular expression of `match`/`reReplaceAll`, when written as a literal.
    pub regex: Option<regex::Regex>,
}

/// A value in a command, with the fields that follow it (`$labels.instance`).
#[derive(Clone, Debug)]
pub(super) struct Operand {
    pub pos: usize,
    pub term: Term,
    pub chain: Vec<String>,
}

#[derive(Clone, Debug)]
pub(super) enum Term {
    Dot,
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Variable(String),
    Func(Func),
    Pipe(Box<Pipeline>),
}

/// Parses the tokens of `src`.
pub(super) fn parse(src: &str, items: Vec<Item>) -> Result<Vec<Node>, ParseError> {
    let mut parser = Parser {
        src,
        items,
        at: 0,
        vars: PREDEFINED_VARIABLES.iter().map(|v| v.to_string()).collect(),
        depth: 0,
        range_depth: 0,
    };
    let (nodes, end) = parser.list()?;
    match end {
        Terminator::Eof => Ok(nodes),
        Terminator::End(pos) => Err(ParseError::new(pos, "unexpected {{end}}")),
        Terminator::Else(pos) => Err(ParseError::new(pos, "unexpected {{else}}")),
    }
}

/// What ended a list of nodes.
enum Terminator {
    Eof,
    /// `{{end}}`, consumed with its `}}`.
    End(usize),
    /// `{{else`, consumed without what follows.
    Else(usize),
}

struct Parser<'s> {
    src: &'s str,
    items: Vec<Item>,
    at: usize,
    /// Variables in scope.
    vars: Vec<String>,
    depth: usize,
    range_depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Item {
        let last = self.items.len().saturating_sub(1);
        &self.items[self.at.min(last)]
    }

    fn next(&mut self) -> Item {
        let item = self.peek().clone();
        if self.at < self.items.len() {
            self.at += 1;
        }
        item
    }

    fn skip_space(&mut self) {
        while self.peek().tok == Tok::Space {
            self.at += 1;
        }
    }

    fn next_non_space(&mut self) -> Item {
        self.skip_space();
        self.next()
    }

    fn expect_close(&mut self, context: &str) -> Result<(), ParseError> {
        let item = self.next_non_space();
        match item.tok {
            Tok::Close => Ok(()),
            _ => Err(self.unexpected(&item, context)),
        }
    }

    fn unexpected(&self, item: &Item, context: &str) -> ParseError {
        let what = match &item.tok {
            Tok::Eof => "EOF".to_string(),
            Tok::Close => "\"}}\"".to_string(),
            _ => format!("{:?}", self.token_text(item)),
        };
        ParseError::new(item.pos, format!("unexpected {what} in {context}"))
    }

    /// The source text of a token, roughly (up to the next token).
    fn token_text(&self, item: &Item) -> String {
        let end = self
            .items
            .iter()
            .map(|i| i.pos)
            .find(|p| *p > item.pos)
            .unwrap_or(self.src.len());
        self.src.get(item.pos..end).unwrap_or("").trim().to_string()
    }

    fn enter(&mut self, pos: usize) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError::new(
                pos,
                format!("template nested more than {MAX_DEPTH} levels deep"),
            ));
        }
        Ok(())
    }

    /// Nodes up to `{{end}}`, `{{else` or the end of the text.
    fn list(&mut self) -> Result<(Vec<Node>, Terminator), ParseError> {
        let mut nodes = Vec::new();
        loop {
            let item = self.next();
            match item.tok {
                Tok::Eof => return Ok((nodes, Terminator::Eof)),
                Tok::Text(text) => nodes.push(Node::Text(text)),
                Tok::Open => {
                    self.skip_space();
                    let keyword = match self.peek().tok {
                        Tok::Keyword(k) => Some(k),
                        _ => None,
                    };
                    match keyword {
                        Some("end") => {
                            self.next();
                            self.expect_close("end")?;
                            return Ok((nodes, Terminator::End(item.pos)));
                        }
                        Some("else") => {
                            self.next();
                            return Ok((nodes, Terminator::Else(item.pos)));
                        }
                        Some("if") => {
                            self.next();
                            nodes.push(self.conditional(item.pos, false)?);
                        }
                        Some("with") => {
                            self.next();
                            nodes.push(self.conditional(item.pos, true)?);
                        }
                        Some("range") => {
                            self.next();
                            nodes.push(self.range(item.pos)?);
                        }
                        Some(k @ ("break" | "continue")) => {
                            self.next();
                            if self.range_depth == 0 {
                                return Err(ParseError::new(
                                    item.pos,
                                    format!("{{{{{k}}}}} outside {{{{range}}}}"),
                                ));
                            }
                            self.expect_close(k)?;
                            nodes.push(if k == "break" {
                                Node::Break
                            } else {
                                Node::Continue
                            });
                        }
                        Some(k @ ("define" | "template" | "block")) => {
                            return Err(ParseError::new(
                                item.pos,
                                format!("{{{{{k}}}}} is not supported in Lumen templates"),
                            ));
                        }
                        _ => {
                            let pipe = self.pipeline("command", false)?;
                            self.expect_close("command")?;
                            nodes.push(Node::Action(pipe));
                        }
                    }
                }
                _ => return Err(self.unexpected(&item, "input")),
            }
        }
    }

    /// `if`/`with` after its keyword, through its `{{end}}`.
    fn conditional(&mut self, pos: usize, with: bool) -> Result<Node, ParseError> {
        self.enter(pos)?;
        let scope = self.vars.len();
        let context = if with { "with" } else { "if" };
        let pipe = self.pipeline(context, false)?;
        self.expect_close(context)?;
        let (then, end) = self.list()?;
        let otherwise = match end {
            Terminator::Eof => {
                return Err(ParseError::new(
                    self.src.len(),
                    format!("unexpected EOF: {{{{{context}}}}} has no {{{{end}}}}"),
                ));
            }
            Terminator::End(_) => Vec::new(),
            Terminator::Else(else_pos) => {
                self.skip_space();
                let chained = matches!(self.peek().tok, Tok::Keyword(k) if k == context);
                if chained {
                    // `{{else if …}}` is `{{else}}{{if …}}…{{end}}` sharing the outer `{{end}}`.
                    self.next();
                    vec![self.conditional(else_pos, with)?]
                } else {
                    self.expect_close("else")?;
                    let (otherwise, end) = self.list()?;
                    match end {
                        Terminator::End(_) => otherwise,
                        Terminator::Else(p) => {
                            return Err(ParseError::new(p, "expected end; found {{else}}"));
                        }
                        Terminator::Eof => {
                            return Err(ParseError::new(
                                self.src.len(),
                                format!("unexpected EOF: {{{{{context}}}}} has no {{{{end}}}}"),
                            ));
                        }
                    }
                }
            }
        };
        self.vars.truncate(scope);
        self.depth -= 1;
        Ok(Node::Conditional {
            with,
            pipe,
            then,
            otherwise,
        })
    }

    /// `range` after its keyword, through its `{{end}}`.
    fn range(&mut self, pos: usize) -> Result<Node, ParseError> {
        self.enter(pos)?;
        let scope = self.vars.len();
        let pipe = self.pipeline("range", true)?;
        self.expect_close("range")?;
        self.range_depth += 1;
        let (body, end) = self.list()?;
        self.range_depth -= 1;
        let otherwise = match end {
            Terminator::Eof => {
                return Err(ParseError::new(
                    self.src.len(),
                    "unexpected EOF: {{range}} has no {{end}}",
                ));
            }
            Terminator::End(_) => Vec::new(),
            Terminator::Else(_) => {
                self.expect_close("else")?;
                let (otherwise, end) = self.list()?;
                match end {
                    Terminator::End(_) => otherwise,
                    Terminator::Else(p) => {
                        return Err(ParseError::new(p, "expected end; found {{else}}"));
                    }
                    Terminator::Eof => {
                        return Err(ParseError::new(
                            self.src.len(),
                            "unexpected EOF: {{range}} has no {{end}}",
                        ));
                    }
                }
            }
        };
        self.vars.truncate(scope);
        self.depth -= 1;
        Ok(Node::Range {
            pipe,
            body,
            otherwise,
        })
    }

    /// A pipeline up to (not including) `}}` or `)`.
    fn pipeline(&mut self, context: &str, in_range: bool) -> Result<Pipeline, ParseError> {
        self.skip_space();
        let start = self.at;
        let (decl, assign) = self.declaration(in_range)?;
        if decl.is_empty() {
            self.at = start;
        }
        let mut cmds: Vec<Command> = Vec::new();
        loop {
            self.skip_space();
            match self.peek().tok {
                Tok::Close | Tok::RParen | Tok::Eof => break,
                _ => {}
            }
            let stage = cmds.len();
            let cmd = self.command(stage)?;
            cmds.push(cmd);
            self.skip_space();
            if self.peek().tok == Tok::Pipe {
                let pipe = self.next();
                self.skip_space();
                if matches!(self.peek().tok, Tok::Close | Tok::RParen | Tok::Eof) {
                    return Err(ParseError::new(pipe.pos, "missing command after |"));
                }
            }
        }
        if cmds.is_empty() {
            let pos = self.peek().pos;
            return Err(ParseError::new(pos, format!("missing value for {context}")));
        }
        // Declared variables come into scope after the pipeline.
        if !assign {
            self.vars.extend(decl.iter().cloned());
        }
        Ok(Pipeline { decl, assign, cmds })
    }

    /// `$x :=`, `$x =` or, in `range`, `$k, $v :=`; nothing (and nothing consumed) otherwise.
    fn declaration(&mut self, in_range: bool) -> Result<(Vec<String>, bool), ParseError> {
        let Tok::Variable(first) = self.peek().tok.clone() else {
            return Ok((Vec::new(), false));
        };
        let first_pos = self.peek().pos;
        self.next();
        self.skip_space();
        let mut names = vec![first];
        if in_range && self.peek().tok == Tok::Comma {
            self.next();
            self.skip_space();
            let item = self.next();
            match item.tok {
                Tok::Variable(second) => names.push(second),
                _ => {
                    return Err(ParseError::new(
                        item.pos,
                        "range can only initialize variables",
                    ));
                }
            }
            self.skip_space();
            if !matches!(self.peek().tok, Tok::Declare | Tok::Assign) {
                let item = self.peek().clone();
                return Err(self.unexpected(&item, "range"));
            }
        }
        let assign = match self.peek().tok {
            Tok::Declare => false,
            Tok::Assign => true,
            _ => return Ok((Vec::new(), false)),
        };
        self.next();
        for name in &names {
            if name == "$" {
                return Err(ParseError::new(first_pos, "cannot declare or assign $"));
            }
            if assign && !self.vars.contains(name) {
                return Err(ParseError::new(
                    first_pos,
                    format!("undefined variable {name:?}"),
                ));
            }
        }
        Ok((names, assign))
    }

    /// One command: operands separated by spaces, up to `|`, `}}` or `)`.
    fn command(&mut self, stage: usize) -> Result<Command, ParseError> {
        let pos = self.peek().pos;
        let mut args = Vec::new();
        loop {
            self.skip_space();
            if matches!(
                self.peek().tok,
                Tok::Pipe | Tok::Close | Tok::RParen | Tok::Eof
            ) {
                break;
            }
            let operand = self.operand()?;
            args.push(operand);
            match self.peek().tok {
                Tok::Space | Tok::Pipe | Tok::Close | Tok::RParen => {}
                _ => {
                    let item = self.peek().clone();
                    return Err(self.unexpected(&item, "operand"));
                }
            }
        }
        let end = self.peek().pos;
        let text = self.src.get(pos..end).unwrap_or("").trim().to_string();
        let Some(first) = args.first() else {
            return Err(ParseError::new(pos, "empty command"));
        };
        for arg in &args[1..] {
            if let Term::Func(func) = &arg.term {
                func.check_arity(0)
                    .map_err(|msg| ParseError::new(arg.pos, msg))?;
            }
        }
        let mut regex = None;
        match &first.term {
            Term::Func(func) => {
                let given = args.len() - 1 + usize::from(stage > 0);
                func.check_arity(given)
                    .map_err(|msg| ParseError::new(pos, msg))?;
                if let (
                    Func::Match | Func::ReReplaceAll,
                    Some(Operand {
                        term: Term::Str(pattern),
                        chain,
                        pos,
                    }),
                ) = (func, args.get(1))
                    && chain.is_empty()
                {
                    regex = Some(compile_regex(pattern).map_err(|msg| ParseError::new(*pos, msg))?);
                }
            }
            Term::Nil => return Err(ParseError::new(pos, "nil is not a command")),
            term => {
                if stage > 0 {
                    let literal = matches!(
                        term,
                        Term::Bool(_) | Term::Int(_) | Term::Float(_) | Term::Str(_)
                    ) || (matches!(term, Term::Dot) && first.chain.is_empty());
                    if literal {
                        return Err(ParseError::new(
                            pos,
                            format!("non executable command in pipeline stage {}", stage + 1),
                        ));
                    }
                }
                if args.len() > 1 || stage > 0 {
                    return Err(ParseError::new(
                        pos,
                        format!("can't give argument to non-function {text}"),
                    ));
                }
            }
        }
        Ok(Command {
            pos,
            text,
            args,
            regex,
        })
    }

    /// A term and the fields chained to it without spaces.
    fn operand(&mut self) -> Result<Operand, ParseError> {
        let item = self.next();
        let pos = item.pos;
        let mut chain = Vec::new();
        let term = match item.tok {
            Tok::Ident(name) => {
                Term::Func(Func::lookup(&name).map_err(|msg| ParseError::new(pos, msg))?)
            }
            Tok::Dot => Term::Dot,
            Tok::Keyword("nil") => Term::Nil,
            Tok::Variable(name) => {
                if !self.vars.contains(&name) {
                    return Err(ParseError::new(pos, format!("undefined variable {name:?}")));
                }
                Term::Variable(name)
            }
            Tok::Field(name) => {
                chain.push(name);
                Term::Dot
            }
            Tok::Bool(b) => Term::Bool(b),
            Tok::Char(c) => Term::Int(i64::from(u32::from(c))),
            Tok::Number(text) => number(&text).map_err(|msg| ParseError::new(pos, msg))?,
            Tok::Str(s) => Term::Str(s),
            Tok::LParen => {
                self.enter(pos)?;
                let pipe = self.pipeline("parenthesized pipeline", false)?;
                self.skip_space();
                let close = self.next();
                if close.tok != Tok::RParen {
                    return Err(self.unexpected(&close, "parenthesized pipeline"));
                }
                self.depth -= 1;
                Term::Pipe(Box::new(pipe))
            }
            _ => return Err(self.unexpected(&item, "operand")),
        };
        while let Tok::Field(name) = &self.peek().tok {
            if matches!(
                term,
                Term::Bool(_)
                    | Term::Int(_)
                    | Term::Float(_)
                    | Term::Str(_)
                    | Term::Nil
                    | Term::Func(_)
            ) {
                let item = self.peek().clone();
                return Err(self.unexpected(&item, "operand"));
            }
            chain.push(name.clone());
            self.next();
        }
        Ok(Operand { pos, term, chain })
    }
}

/// A number literal's value, typed as Go types constants: integers are `int`, anything with a
/// fraction or exponent is `float64`.
fn number(text: &str) -> Result<Term, String> {
    let bad = || format!("bad number syntax: {text:?}");
    if text.ends_with('i') {
        return Err(format!("complex number {text} is not supported"));
    }
    let clean = text.replace('_', "");
    let (negative, unsigned) = match clean.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let lower = unsigned.to_ascii_lowercase();
    let radix_digits = [("0x", 16), ("0o", 8), ("0b", 2)]
        .iter()
        .find_map(|(prefix, radix)| lower.strip_prefix(prefix).map(|d| (*radix, d.to_string())));
    if let Some((radix, digits)) = radix_digits {
        if radix == 16 && digits.contains(['.', 'p']) {
            return Err(format!("hexadecimal float {text} is not supported"));
        }
        let magnitude = i64::from_str_radix(&digits, radix).map_err(|_| bad())?;
        return Ok(Term::Int(if negative { -magnitude } else { magnitude }));
    }
    if unsigned.contains(['.', 'e', 'E']) {
        let value: f64 = clean.parse().map_err(|_| bad())?;
        return Ok(Term::Float(value));
    }
    // A leading 0 means octal in Go ("010" is 8).
    let (radix, digits) = if unsigned.len() > 1 && unsigned.starts_with('0') {
        (8, &unsigned[1..])
    } else {
        (10, unsigned)
    };
    match i64::from_str_radix(digits, radix) {
        Ok(magnitude) => Ok(Term::Int(if negative { -magnitude } else { magnitude })),
        Err(_) if digits.bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("number {text} overflows int"))
        }
        Err(_) => Err(bad()),
    }
}
