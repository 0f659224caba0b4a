//! `Ctx`'s half of causal tracing (the crate's trace.rs has the protocol):
//! the agent's current span, started by `start_trace` or by taking a traced
//! message, and the wrapping of what it sends while it has one.

use std::cell::RefCell;

use crate::message::Message;
use crate::trace::{fresh_id, fresh_trace_id, now_unix_ns, SpanKind, SpanRecord, TraceContext};

use super::{Ctx, HINT_TRACING};

/// The span an agent is in.
#[derive(Debug)]
pub(super) struct Current {
    /// What its messages carry: the trace, this span's id (or, on a
    /// runtime that does not record, the context that came in), sampled.
    context: TraceContext,
    /// Whether this runtime records it (step 4).
    recording: bool,
    parent: Option<u64>,
    kind: SpanKind,
    name: String,
    start_unix_ns: u64,
}

/// The agent's place in a trace; `HINT_TRACING` in `Ctx::hints` mirrors
/// `current.is_some()`, so that the send and receive paths leave their
/// fast path on the flag test they make anyway (`Ctx::charge_fast`).
#[derive(Debug, Default)]
pub(super) struct TraceState {
    current: RefCell<Option<Current>>,
}

impl Ctx {
    /// Starts a new trace with a root span named `name` (step 1), sampled:
    /// what this agent sends until its next receive carries it, and every
    /// agent that takes such a message continues it. Ends the span the
    /// agent was in, if any.
    ///
    /// # Example
    ///
    /// ```
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let (started, seen) = rt.run(|ctx| {
    ///     let started = ctx.start_trace("request");
    ///     ctx.send(&ctx.pid(), 1u8);
    ///     ctx.receive(); // a traced message: the agent stays in the trace
    ///     (started, ctx.trace())
    /// }).unwrap();
    /// assert_eq!(seen.unwrap().trace_id, started.trace_id);
    /// ```
    pub fn start_trace(&self, name: &str) -> TraceContext {
        self.end_span();
        let recording = self.shared().config.span_sink.is_some();
        let context = TraceContext {
            trace_id: fresh_trace_id(),
            span_id: fresh_id(),
            sampled: true,
        };
        self.enter_span(Current {
            context,
            recording,
            parent: None,
            kind: SpanKind::Root,
            name: name.to_owned(),
            start_unix_ns: now_unix_ns(),
        });
        context
    }

    /// The trace context of the agent's current span, if it is in a trace.
    ///
    /// ```
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// assert_eq!(rt.run(|ctx| ctx.trace()).unwrap(), None);
    /// ```
    pub fn trace(&self) -> Option<TraceContext> {
        self.trace
            .current
            .borrow()
            .as_ref()
            .map(|current| current.context)
    }

    /// Ends the agent's current span and leaves the trace: what it sends
    /// next carries no context.
    pub fn end_trace(&self) {
        self.end_span();
    }

    /// Step 2, on a send's slow path (an agent in a trace always takes it:
    /// `HINT_TRACING` fails `Ctx::charge_fast`): `message` as it goes out.
    #[inline(always)]
    pub(super) fn outgoing(&self, message: Message) -> Message {
        if self.in_trace() {
            return self.traced_outgoing(message);
        }
        message
    }

    #[cold]
    #[inline(never)]
    fn traced_outgoing(&self, message: Message) -> Message {
        let Some((context, recording)) = self
            .trace
            .current
            .borrow()
            .as_ref()
            .map(|current| (current.context, current.recording))
        else {
            return message;
        };
        if !(recording && context.sampled) {
            return Message::traced(context, message);
        }
        let send = TraceContext {
            span_id: fresh_id(),
            ..context
        };
        let now = now_unix_ns();
        self.record(SpanRecord {
            trace_id: context.trace_id,
            span_id: send.span_id,
            parent_span_id: Some(context.span_id),
            kind: SpanKind::Send,
            name: format!("send {}", message.untraced().value_type_name()),
            agent: self.pid.serial(),
            start_unix_ns: now,
            end_unix_ns: now,
        });
        Message::traced(send, message)
    }

    /// Step 3, at a receive's start, on its slow path (as above): the
    /// agent's work on its last message is done.
    #[inline(always)]
    pub(super) fn before_receive(&self) {
        if self.in_trace() {
            self.end_span();
        }
    }

    /// An operator asked to trace this agent (the control signal of
    /// `RuntimeHandle::trace_next`): a root span begins, which covers the
    /// wait and the work on the message the agent takes next.
    #[cold]
    #[inline(never)]
    pub(super) fn start_requested_trace(&self) {
        self.end_span();
        let recording = self.shared().config.span_sink.is_some();
        self.enter_span(Current {
            context: TraceContext {
                trace_id: fresh_trace_id(),
                span_id: fresh_id(),
                sampled: true,
            },
            recording,
            parent: None,
            kind: SpanKind::Root,
            name: "traced on request".to_owned(),
            start_unix_ns: now_unix_ns(),
        });
    }

    /// Step 3, at a receive's end (the fast path of `receive` tests
    /// `is_traced` itself, so that the message moves as before): the
    /// message the agent gets.
    #[inline(always)]
    pub(super) fn taken(&self, message: Message) -> Message {
        if message.is_traced() {
            return self.traced_taken(message);
        }
        message
    }

    /// A traced message is taken: a receive span begins (an operator's
    /// root span, if one was begun, gives way to the incoming trace).
    #[cold]
    #[inline(never)]
    pub(super) fn traced_taken(&self, message: Message) -> Message {
        self.end_span();
        let (context, message) = message.split_trace();
        let Some(incoming) = context else {
            return message;
        };
        let recording = incoming.sampled && self.shared().config.span_sink.is_some();
        let current = if recording {
            Current {
                context: TraceContext {
                    span_id: fresh_id(),
                    ..incoming
                },
                recording,
                parent: Some(incoming.span_id),
                kind: SpanKind::Receive,
                name: format!("receive {}", message.value_type_name()),
                start_unix_ns: now_unix_ns(),
            }
        } else {
            // Not recorded here: the context passes on unchanged.
            Current {
                context: incoming,
                recording,
                parent: None,
                kind: SpanKind::Receive,
                name: String::new(),
                start_unix_ns: 0,
            }
        };
        self.enter_span(current);
        message
    }

    fn enter_span(&self, current: Current) {
        *self.trace.current.borrow_mut() = Some(current);
        self.set_hint(HINT_TRACING, true);
    }

    /// Whether the agent is in a trace.
    #[inline(always)]
    fn in_trace(&self) -> bool {
        self.hints.get() & HINT_TRACING != 0
    }

    /// Ends the current span, recording it (step 4), and leaves the trace.
    #[cold]
    #[inline(never)]
    pub(super) fn end_span(&self) {
        if !self.in_trace() {
            return;
        }
        self.set_hint(HINT_TRACING, false);
        let Some(current) = self.trace.current.borrow_mut().take() else {
            return;
        };
        if current.recording && current.context.sampled {
            self.record(SpanRecord {
                trace_id: current.context.trace_id,
                span_id: current.context.span_id,
                parent_span_id: current.parent,
                kind: current.kind,
                name: current.name,
                agent: self.pid.serial(),
                start_unix_ns: current.start_unix_ns,
                end_unix_ns: now_unix_ns(),
            });
        }
    }

    fn record(&self, span: SpanRecord) {
        if let Some(sink) = &self.shared().config.span_sink {
            sink.0.record(span);
        }
    }
}
