//! Causal tracing: a trace context that messages carry while their sender
//! is in a trace, and the spans a runtime records for it ([`SpanSink`]).
//!
//! # Protocol
//!
//! 1. An agent starts a trace ([`Ctx::start_trace`](crate::Ctx::start_trace)):
//!    a new trace id and a root span, the agent's current span.
//! 2. While an agent has a current span, every message it sends is wrapped
//!    ([`Traced`]) with a context: the trace id, the id of a send span
//!    (recorded as an instant child of the current span) and the sampled
//!    flag. An agent outside any trace sends its messages as they are:
//!    tracing off costs one flag test per send.
//! 3. When an agent calls a receive, its current span ends and it leaves
//!    the trace; when it takes a traced message, a receive span begins, a
//!    child of the message's send span, and the agent sees the message
//!    unwrapped. So a receive span covers an agent's work on one message,
//!    up to its next receive (or its exit, its hibernation, or
//!    [`Ctx::end_trace`](crate::Ctx::end_trace)). Waiting for a call's
//!    reply is part of the work: it ends no span, and only a traced reply
//!    starts one.
//! 4. A span is recorded when it ends, if the runtime has a sink
//!    ([`Builder::span_sink`](crate::Builder::span_sink)) and the trace is
//!    sampled. A runtime without a sink records nothing and makes no spans:
//!    it passes each context on unchanged, so a trace that crosses it
//!    continues after it, its spans parented to the last recorded one.
//! 5. Across nodes the context travels inside the message's wire form (the
//!    nodes layer), and only for traced messages.
//! 6. An operator can put an agent in a new trace from outside
//!    (`RuntimeHandle::trace_next`): a control signal that the agent takes
//!    at a receive, ahead of its messages; a root span then covers its wait
//!    and its work on the next message it takes.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::message::Message;

/// Where a message stands in a trace: its trace, the span it was sent
/// from, and whether the trace is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// The trace (W3C trace context: 16 bytes, never 0).
    pub trace_id: u128,
    /// The span the message was sent from, or the agent's current span
    /// (8 bytes, never 0).
    pub span_id: u64,
    /// Whether spans of this trace are recorded.
    pub sampled: bool,
}

/// What a span stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpanKind {
    /// The start of a trace (`Ctx::start_trace`), until the agent's next
    /// receive.
    Root,
    /// A send of a traced message (an instant).
    Send,
    /// An agent's work on a traced message it took: from taking it to the
    /// agent's next receive (or its exit).
    Receive,
}

impl SpanKind {
    /// Its lower-case name (`"receive"`).
    pub fn name(self) -> &'static str {
        match self {
            SpanKind::Root => "root",
            SpanKind::Send => "send",
            SpanKind::Receive => "receive",
        }
    }
}

/// One finished span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanRecord {
    /// Its trace.
    pub trace_id: u128,
    /// Its id.
    pub span_id: u64,
    /// Its parent's id (`None` for a root).
    pub parent_span_id: Option<u64>,
    /// What it stands for.
    pub kind: SpanKind,
    /// A name for people: `receive u64`, `send u64`, or the name the trace
    /// was started with.
    pub name: String,
    /// The serial number of the agent it happened in.
    pub agent: u64,
    /// When it began, ns since the Unix epoch.
    pub start_unix_ns: u64,
    /// When it ended, ns since the Unix epoch.
    pub end_unix_ns: u64,
}

/// Where a runtime records finished spans (step 4). Called on the worker
/// that ran the agent, once per span: keep it short (hand the span to a
/// queue or a buffered writer).
pub trait SpanSink: Send + Sync + 'static {
    /// Records one finished span.
    fn record(&self, span: SpanRecord);
}

/// A runtime's sink, as its configuration holds it.
#[derive(Clone)]
pub(crate) struct SinkRef(pub(crate) Arc<dyn SpanSink>);

impl std::fmt::Debug for SinkRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpanSink")
    }
}

/// A message with its trace context (step 2). Agents never see one: a
/// receive unwraps it, and [`Message::is`] and
/// [`Message::downcast_ref`] look through it.
#[derive(Debug)]
pub struct Traced {
    /// Its place in a trace.
    pub context: TraceContext,
    /// The message.
    pub message: Message,
}

/// A fresh id: never 0, unpredictable enough for trace ids: a per-thread
/// xorshift64* generator seeded from std's random hasher keys (no shared
/// counter: two workers making spans touch no common cache line). Called
/// within one runtime call, never across a suspend, so an agent that moves
/// between threads cannot observe the thread-local change.
pub(crate) fn fresh_id() -> u64 {
    thread_local! {
        static STATE: std::cell::Cell<u64> = std::cell::Cell::new(
            std::hash::RandomState::new().build_hasher().finish() | 1,
        );
    }
    STATE.with(|state| loop {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        let id = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        if id != 0 {
            return id;
        }
    })
}

/// A fresh trace id (never 0).
pub(crate) fn fresh_trace_id() -> u128 {
    (u128::from(fresh_id()) << 64) | u128::from(fresh_id())
}

/// Now, ns since the Unix epoch.
pub(crate) fn now_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
