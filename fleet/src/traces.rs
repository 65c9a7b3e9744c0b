//! Building one trace: an arena of OTLP spans with valid ids, parent links, W3C flags, status and
//! exception events.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::{Span, Status, status};

use crate::otlp::{kv_str, ns};
use crate::rng::Rng;
use crate::topology::{ScopeKind, Service};

/// W3C trace flag "sampled".
const SAMPLED: u32 = 0x01;
/// OTLP: whether the parent is remote is known.
const HAS_IS_REMOTE: u32 = 0x100;
/// OTLP: the parent is remote (it came over the wire).
const IS_REMOTE: u32 = 0x200;

/// Index of a span within its [`TraceBuilder`].
pub(crate) type SpanRef = usize;

/// A finished span and which service and library reported it.
#[derive(Clone, Debug)]
pub(crate) struct BuiltSpan {
    pub service: Service,
    pub scope: ScopeKind,
    pub span: Span,
}

/// The spans of one trace, as its services' instrumentation would report them.
#[derive(Debug)]
pub(crate) struct TraceBuilder {
    trace_id: [u8; 16],
    spans: Vec<BuiltSpan>,
}

impl TraceBuilder {
    /// An empty trace with a fresh trace id.
    pub(crate) fn new(rng: &mut Rng) -> TraceBuilder {
        TraceBuilder {
            trace_id: rng.id_bytes(),
            spans: Vec::with_capacity(32),
        }
    }

    /// The trace id.
    pub(crate) fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// Starts a span at `start` (ns). Server and consumer spans whose parent lives in another
    /// service are marked as having a remote parent.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        &mut self,
        rng: &mut Rng,
        parent: Option<SpanRef>,
        service: Service,
        scope: ScopeKind,
        kind: SpanKind,
        name: impl Into<String>,
        start: i64,
    ) -> SpanRef {
        let (parent_span_id, remote) = match parent.and_then(|p| self.spans.get(p)) {
            Some(p) => (p.span.span_id.clone(), p.service != service),
            None => (Vec::new(), false),
        };
        let span_id: [u8; 8] = rng.id_bytes();
        let flags = SAMPLED | HAS_IS_REMOTE | if remote { IS_REMOTE } else { 0 };
        self.spans.push(BuiltSpan {
            service,
            scope,
            span: Span {
                trace_id: self.trace_id.to_vec(),
                span_id: span_id.to_vec(),
                parent_span_id,
                flags,
                name: name.into(),
                kind: kind as i32,
                start_time_unix_nano: ns(start),
                end_time_unix_nano: ns(start),
                attributes: Vec::with_capacity(12),
                ..Default::default()
            },
        });
        self.spans.len() - 1
    }

    fn get(&mut self, span: SpanRef) -> Option<&mut Span> {
        self.spans.get_mut(span).map(|s| &mut s.span)
    }

    /// Ends a span at `end` (never before its start).
    pub(crate) fn end(&mut self, span: SpanRef, end: i64) {
        if let Some(s) = self.get(span) {
            s.end_time_unix_nano = ns(end).max(s.start_time_unix_nano);
        }
    }

    /// Adds one attribute.
    pub(crate) fn attr(&mut self, span: SpanRef, kv: KeyValue) {
        if let Some(s) = self.get(span) {
            s.attributes.push(kv);
        }
    }

    /// Adds attributes.
    pub(crate) fn attrs(&mut self, span: SpanRef, kvs: impl IntoIterator<Item = KeyValue>) {
        if let Some(s) = self.get(span) {
            s.attributes.extend(kvs);
        }
    }

    /// Marks the span failed (status ERROR) with a description.
    pub(crate) fn set_error(&mut self, span: SpanRef, message: impl Into<String>) {
        if let Some(s) = self.get(span) {
            s.status = Some(Status {
                code: status::StatusCode::Error as i32,
                message: message.into(),
            });
        }
    }

    /// Records an exception event (semantic conventions: `exception.type`, `.message`, `.stacktrace`).
    pub(crate) fn exception(
        &mut self,
        span: SpanRef,
        at: i64,
        exception_type: &str,
        message: &str,
        stacktrace: &str,
    ) {
        if let Some(s) = self.get(span) {
            s.events.push(Event {
                time_unix_nano: ns(at),
                name: "exception".to_string(),
                attributes: vec![
                    kv_str("exception.type", exception_type),
                    kv_str("exception.message", message),
                    kv_str("exception.stacktrace", stacktrace),
                ],
                dropped_attributes_count: 0,
            });
        }
    }

    /// Links `span` to the context of `to` (as a message consumer links to its producer).
    pub(crate) fn link(&mut self, span: SpanRef, to: SpanRef, attributes: Vec<KeyValue>) {
        let Some(target) = self
            .spans
            .get(to)
            .map(|t| (t.span.span_id.clone(), t.span.flags & 0xff))
        else {
            return;
        };
        let trace_id = self.trace_id.to_vec();
        if let Some(s) = self.get(span) {
            s.links.push(Link {
                trace_id,
                span_id: target.0,
                flags: target.1 | HAS_IS_REMOTE | IS_REMOTE,
                attributes,
                ..Default::default()
            });
        }
    }

    /// The 8-byte id of a span.
    pub(crate) fn span_id(&self, span: SpanRef) -> [u8; 8] {
        let mut out = [0u8; 8];
        if let Some(s) = self.spans.get(span)
            && s.span.span_id.len() == 8
        {
            out.copy_from_slice(&s.span.span_id);
        }
        out
    }

    /// The start time of a span (ns).
    pub(crate) fn start_of(&self, span: SpanRef) -> i64 {
        self.spans
            .get(span)
            .map_or(0, |s| s.span.start_time_unix_nano as i64)
    }

    /// The finished spans.
    pub(crate) fn into_spans(self) -> Vec<BuiltSpan> {
        self.spans
    }
}
