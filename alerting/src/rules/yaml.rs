//! A YAML document as a tree whose every node knows its line and column, built from
//! `saphyr-parser`'s events, so that rule-file errors can point at the offending value.
//!
//! Everything a scalar holds is kept as text: rule files are read the way Prometheus's
//! `yaml.v3` decoding into string fields reads them (`severity: 1` is the label value `"1"`).
//! Anchors, aliases and `<<` merge keys work; duplicate keys, a second document, nesting deeper
//! than any rule file needs, and alias expansions that blow up are errors.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Deepest nesting of lists and mappings accepted (a rule file needs 5).
const MAX_DEPTH: usize = 64;
/// Most nodes that aliases may copy in one file.
const MAX_ALIAS_NODES: usize = 100_000;

/// Where a node starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Mark {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
}

impl Mark {
    fn of(span: &Span) -> Mark {
        Mark {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

/// A node of the document.
#[derive(Clone, Debug)]
pub(super) struct Node {
    pub mark: Mark,
    pub kind: Kind,
}

#[derive(Clone, Debug)]
pub(super) enum Kind {
    Scalar { value: String, style: ScalarStyle },
    List(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// A syntax error.
#[derive(Debug)]
pub(super) struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Node {
    /// A plain `~`, `null` or nothing at all.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { value, style: ScalarStyle::Plain }
            if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// The scalar's text.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// What the node is, for error messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            _ if self.is_null() => "nothing",
            Kind::Scalar { .. } => "a string",
            Kind::List(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    fn size(&self) -> usize {
        match &self.kind {
            Kind::Scalar { .. } => 1,
            Kind::List(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            Kind::Map(entries) => {
                1 + entries
                    .iter()
                    .map(|(k, v)| k.size() + v.size())
                    .sum::<usize>()
            }
        }
    }

    /// The line and column in `file_text` of byte `offset` in this scalar's value, when the
    /// value reads exactly as written there (plain or quoted on one line, or a `|` block); the
    /// scalar's own start otherwise.
    pub fn position_of(&self, file_text: &str, offset: usize) -> (usize, usize) {
        let fallback = (self.mark.line, self.mark.column);
        let Kind::Scalar { value, style } = &self.kind else {
            return fallback;
        };
        let Some(before) = value.get(..offset) else {
            return fallback;
        };
        let value_line = before.matches('\n').count();
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column_in_line = before[line_start..].chars().count();
        let value_line_text = value[line_start..].split('\n').next().unwrap_or("");
        let (file_line, first_column) = match (style, value_line) {
            (ScalarStyle::Plain, 0) => (self.mark.line, self.mark.column),
            (ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted, 0) => {
                (self.mark.line, self.mark.column + 1)
            }
            (ScalarStyle::Literal, n) => (self.mark.line + n, self.mark.column),
            _ => return fallback,
        };
        // Only trust the mapping if the file really has the value's text there.
        let Some(line_text) = file_text.lines().nth(file_line - 1) else {
            return fallback;
        };
        let written: String = line_text.chars().skip(first_column - 1).collect();
        if !written.starts_with(value_line_text) {
            return fallback;
        }
        (file_line, first_column + column_in_line)
    }
}

enum Frame {
    List {
        mark: Mark,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        mark: Mark,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

/// Parses a document; `None` for a file without one (empty, or only comments).
pub(super) fn parse(text: &str) -> Result<Option<Node>, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut documents = 0;
    let mut alias_nodes = 0;
    let error = |mark: Mark, message: String| YamlError {
        line: mark.line,
        column: mark.column,
        message,
    };
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| YamlError {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: format!("YAML syntax error: {}", e.info()),
        })?;
        let mark = Mark::of(&span);
        let node = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(error(
                        mark,
                        "a rule file holds one YAML document; this is a second one".into(),
                    ));
                }
                continue;
            }
            Event::Alias(id) => {
                let Some(node) = anchors.get(&id) else {
                    return Err(error(mark, "alias to an unknown anchor".into()));
                };
                alias_nodes += node.size();
                if alias_nodes > MAX_ALIAS_NODES {
                    return Err(error(
                        mark,
                        format!("aliases expand to more than {MAX_ALIAS_NODES} nodes"),
                    ));
                }
                let mut node = node.clone();
                node.mark = mark;
                node
            }
            Event::Scalar(value, style, anchor, _) => {
                let node = Node {
                    mark,
                    kind: Kind::Scalar {
                        value: value.into_owned(),
                        style,
                    },
                };
                remember(&mut anchors, anchor, &node);
                node
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(error(
                        mark,
                        format!("nested more than {MAX_DEPTH} levels deep"),
                    ));
                }
                stack.push(match event {
                    Event::SequenceStart(..) => Frame::List {
                        mark,
                        anchor,
                        items: Vec::new(),
                    },
                    _ => Frame::Map {
                        mark,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                    },
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::List {
                    mark,
                    anchor,
                    items,
                }) => {
                    let node = Node {
                        mark,
                        kind: Kind::List(items),
                    };
                    remember(&mut anchors, anchor, &node);
                    node
                }
                Some(Frame::Map {
                    mark,
                    anchor,
                    entries,
                    ..
                }) => {
                    let node = Node {
                        mark,
                        kind: Kind::Map(merge_keys(entries)?),
                    };
                    remember(&mut anchors, anchor, &node);
                    node
                }
                None => continue,
            },
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => continue,
        };
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::List { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }
    Ok(root)
}

fn remember(anchors: &mut HashMap<usize, Node>, anchor: usize, node: &Node) {
    if anchor != 0 {
        anchors.insert(anchor, node.clone());
    }
}

/// Applies `<<` merge keys (explicit keys win, then earlier merged mappings) and rejects
/// duplicate keys.
fn merge_keys(entries: Vec<(Node, Node)>) -> Result<Vec<(Node, Node)>, YamlError> {
    let mut explicit: Vec<(Node, Node)> = Vec::with_capacity(entries.len());
    let mut merged: Vec<(Node, Node)> = Vec::new();
    for (key, value) in entries {
        let is_merge =
            matches!(&key.kind, Kind::Scalar { value, style: ScalarStyle::Plain } if value == "<<");
        if is_merge {
            let sources = match value.kind {
                Kind::Map(map) => vec![map],
                Kind::List(items) => {
                    let mut maps = Vec::new();
                    for item in items {
                        match item.kind {
                            Kind::Map(map) => maps.push(map),
                            _ => return Err(merge_error(&item)),
                        }
                    }
                    maps
                }
                _ => return Err(merge_error(&value)),
            };
            merged.extend(sources.into_iter().flatten());
            continue;
        }
        if let Some(name) = key.as_str()
            && let Some((first, _)) = explicit.iter().find(|(k, _)| k.as_str() == Some(name))
        {
            return Err(YamlError {
                line: key.mark.line,
                column: key.mark.column,
                message: format!(
                    "key {name:?} is repeated (first at line {})",
                    first.mark.line
                ),
            });
        }
        explicit.push((key, value));
    }
    for (key, value) in merged {
        let present = key
            .as_str()
            .is_some_and(|name| explicit.iter().any(|(k, _)| k.as_str() == Some(name)));
        if !present {
            explicit.push((key, value));
        }
    }
    Ok(explicit)
}

fn merge_error(node: &Node) -> YamlError {
    YamlError {
        line: node.mark.line,
        column: node.mark.column,
        message: "a << merge key takes a mapping or a list of mappings".into(),
    }
}
