//! Runs a parsed template against an alert's data, the way Go's `text/template` executes with
//! Prometheus's `missingkey=zero` option.

use super::TemplateData;
use super::funcs::{self, CallContext, Func};
use super::gofmt::print_value;
use super::parse::{Command, Node, Operand, Pipeline, Term};
use super::value::Value;

/// Most nodes and commands one rendering may run (nested `range`s multiply).
const MAX_STEPS: usize = 1_000_000;
/// Longest output one rendering may produce.
const MAX_OUTPUT_BYTES: usize = 1 << 20;

/// A rendering failure at a byte offset of the template.
pub(super) struct RenderError {
    pub pos: usize,
    pub message: String,
}

enum Flow {
    Normal,
    Break,
    Continue,
}

/// Renders `nodes` with `data` as `.` and `$`.
pub(super) fn render(nodes: &[Node], data: &TemplateData<'_>) -> Result<String, RenderError> {
    let mut state = State {
        data,
        vars: vec![
            ("$".to_string(), Value::Data(data)),
            ("$labels".to_string(), Value::Map(data.labels)),
            (
                "$externalLabels".to_string(),
                Value::Map(data.external_labels),
            ),
            (
                "$externalURL".to_string(),
                Value::Str(data.external_url.to_string()),
            ),
            ("$value".to_string(), Value::Float(data.value)),
        ],
        out: String::new(),
        steps: 0,
    };
    state.walk(nodes, &Value::Data(data))?;
    Ok(state.out)
}

struct State<'d> {
    data: &'d TemplateData<'d>,
    vars: Vec<(String, Value<'d>)>,
    out: String,
    steps: usize,
}

impl<'d> State<'d> {
    fn step(&mut self, pos: usize) -> Result<(), RenderError> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(RenderError {
                pos,
                message: format!("template ran more than {MAX_STEPS} steps"),
            });
        }
        Ok(())
    }

    fn write(&mut self, text: &str, pos: usize) -> Result<(), RenderError> {
        if self.out.len() + text.len() > MAX_OUTPUT_BYTES {
            return Err(RenderError {
                pos,
                message: format!("template output is longer than {MAX_OUTPUT_BYTES} bytes"),
            });
        }
        self.out.push_str(text);
        Ok(())
    }

    fn walk(&mut self, nodes: &[Node], dot: &Value<'d>) -> Result<Flow, RenderError> {
        for node in nodes {
            let flow = match node {
                Node::Text(text) => {
                    self.write(text, 0)?;
                    Flow::Normal
                }
                Node::Action(pipe) => {
                    let value = self.pipeline(pipe, dot)?;
                    if pipe.decl.is_empty() {
                        let pos = pipe.cmds.first().map_or(0, |c| c.pos);
                        self.write(&print_value(&value), pos)?;
                    }
                    Flow::Normal
                }
                Node::Conditional {
                    with,
                    pipe,
                    then,
                    otherwise,
                } => {
                    let scope = self.vars.len();
                    let value = self.pipeline(pipe, dot)?;
                    let flow = if value.is_true() {
                        let inner = if *with { value } else { dot.clone() };
                        self.walk(then, &inner)?
                    } else {
                        self.walk(otherwise, dot)?
                    };
                    self.vars.truncate(scope);
                    flow
                }
                Node::Range {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let scope = self.vars.len();
                    let flow = self.range(pipe, body, otherwise, dot)?;
                    self.vars.truncate(scope);
                    flow
                }
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if !matches!(flow, Flow::Normal) {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn range(
        &mut self,
        pipe: &Pipeline,
        body: &[Node],
        otherwise: &[Node],
        dot: &Value<'d>,
    ) -> Result<Flow, RenderError> {
        let pos = pipe.cmds.first().map_or(0, |c| c.pos);
        let value = self.commands(pipe, dot)?;
        let scope = self.vars.len();
        let mut ran = false;
        let mut iteration =
            |state: &mut Self, key: Value<'d>, element: Value<'d>| -> Result<bool, RenderError> {
                state.step(pos)?;
                ran = true;
                state.vars.truncate(scope);
                match pipe.decl.as_slice() {
                    [one] => state.declare(pipe, one, element.clone(), pos)?,
                    [k, v] => {
                        state.declare(pipe, k, key, pos)?;
                        state.declare(pipe, v, element.clone(), pos)?;
                    }
                    _ => {}
                }
                Ok(!matches!(state.walk(body, &element)?, Flow::Break))
            };
        match &value {
            Value::Map(map) => {
                for (k, v) in map.iter() {
                    if !iteration(self, Value::Str(k.clone()), Value::Str(v.clone()))? {
                        break;
                    }
                }
            }
            Value::Int(n) => {
                for i in 0..*n {
                    if !iteration(self, Value::Int(i), Value::Int(i))? {
                        break;
                    }
                }
            }
            Value::Nil => {}
            other => {
                return Err(RenderError {
                    pos,
                    message: format!("range can't iterate over {}", print_value(other)),
                });
            }
        }
        self.vars.truncate(scope);
        if !ran {
            return self.walk(otherwise, dot);
        }
        Ok(Flow::Normal)
    }

    fn declare(
        &mut self,
        pipe: &Pipeline,
        name: &str,
        value: Value<'d>,
        pos: usize,
    ) -> Result<(), RenderError> {
        if pipe.assign {
            match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                Some((_, slot)) => *slot = value,
                None => {
                    return Err(RenderError {
                        pos,
                        message: format!("undefined variable: {name}"),
                    });
                }
            }
        } else {
            self.vars.push((name.to_string(), value));
        }
        Ok(())
    }

    /// A pipeline's value, with its declaration applied.
    fn pipeline(&mut self, pipe: &Pipeline, dot: &Value<'d>) -> Result<Value<'d>, RenderError> {
        let value = self.commands(pipe, dot)?;
        if let [name] = pipe.decl.as_slice() {
            let pos = pipe.cmds.first().map_or(0, |c| c.pos);
            self.declare(pipe, name, value.clone(), pos)?;
        }
        Ok(value)
    }

    /// A pipeline's value: each command's result passed as the last argument of the next.
    fn commands(&mut self, pipe: &Pipeline, dot: &Value<'d>) -> Result<Value<'d>, RenderError> {
        let mut value = None;
        for cmd in &pipe.cmds {
            self.step(cmd.pos)?;
            value = Some(self.command(cmd, dot, value.take())?);
        }
        Ok(value.unwrap_or(Value::Nil))
    }

    fn command(
        &mut self,
        cmd: &Command,
        dot: &Value<'d>,
        piped: Option<Value<'d>>,
    ) -> Result<Value<'d>, RenderError> {
        let Some(first) = cmd.args.first() else {
            return Ok(Value::Nil);
        };
        match &first.term {
            Term::Func(func) if first.chain.is_empty() => {
                self.call(cmd, *func, &cmd.args[1..], dot, piped)
            }
            _ => self.operand(cmd, first, dot),
        }
    }

    fn call(
        &mut self,
        cmd: &Command,
        func: Func,
        args: &[Operand],
        dot: &Value<'d>,
        piped: Option<Value<'d>>,
    ) -> Result<Value<'d>, RenderError> {
        if matches!(func, Func::And | Func::Or) {
            // Go evaluates these lazily: the first value that decides the result is returned.
            let mut last = Value::Nil;
            for arg in args {
                let value = self.operand(cmd, arg, dot)?;
                if value.is_true() == (func == Func::Or) {
                    return Ok(value);
                }
                last = value;
            }
            return Ok(piped.unwrap_or(last));
        }
        let mut values = Vec::with_capacity(args.len() + 1);
        for arg in args {
            values.push(self.operand(cmd, arg, dot)?);
        }
        values.extend(piped);
        let ctx = CallContext {
            external_url: self.data.external_url,
            regex: cmd.regex.as_ref(),
        };
        funcs::call(func, values, &ctx).map_err(|message| RenderError {
            pos: cmd.pos,
            message: format!(
                "at <{}>: error calling {}: {message}",
                cmd.text,
                func.name()
            ),
        })
    }

    fn operand(
        &mut self,
        cmd: &Command,
        operand: &Operand,
        dot: &Value<'d>,
    ) -> Result<Value<'d>, RenderError> {
        let fail = |message: String| RenderError {
            pos: operand.pos,
            message: format!("at <{}>: {message}", cmd.text),
        };
        let mut value = match &operand.term {
            Term::Dot => dot.clone(),
            Term::Nil => Value::Nil,
            Term::Bool(b) => Value::Bool(*b),
            Term::Int(i) => Value::Int(*i),
            Term::Float(f) => Value::Float(*f),
            Term::Str(s) => Value::Str(s.clone()),
            Term::Variable(name) => match self.vars.iter().rev().find(|(n, _)| n == name) {
                Some((_, value)) => value.clone(),
                None => return Err(fail(format!("undefined variable: {name}"))),
            },
            // A function named as an argument is called without arguments.
            Term::Func(func) => {
                let ctx = CallContext {
                    external_url: self.data.external_url,
                    regex: None,
                };
                funcs::call(*func, Vec::new(), &ctx)
                    .map_err(|m| fail(format!("error calling {}: {m}", func.name())))?
            }
            Term::Pipe(pipe) => self.pipeline(pipe, dot)?,
        };
        for name in &operand.chain {
            value = field(value, name).map_err(fail)?;
        }
        Ok(value)
    }
}

/// `.Name` of a value: the template data's fields, or a map's key (missing keys are "").
fn field<'d>(value: Value<'d>, name: &str) -> Result<Value<'d>, String> {
    match value {
        Value::Data(data) => match name {
            "Labels" => Ok(Value::Map(data.labels)),
            "ExternalLabels" => Ok(Value::Map(data.external_labels)),
            "ExternalURL" => Ok(Value::Str(data.external_url.to_string())),
            "Value" => Ok(Value::Float(data.value)),
            _ => Err(format!(
                "can't evaluate field {name} in type {}",
                value.type_name()
            )),
        },
        Value::Map(map) => Ok(Value::Str(map.get(name).cloned().unwrap_or_default())),
        Value::Nil => Err(format!("nil pointer evaluating interface {{}}.{name}")),
        other => Err(format!(
            "can't evaluate field {name} in type {}",
            other.type_name()
        )),
    }
}
