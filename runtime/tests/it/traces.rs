//! Causal tracing inside one runtime: the context travels with traced
//! messages, receive spans are children of send spans, and a runtime
//! without a sink passes the context on unchanged.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use erlangen_runtime::{Runtime, SpanKind, SpanRecord, SpanSink};

#[derive(Default)]
struct Kept(Mutex<Vec<SpanRecord>>);

impl SpanSink for Kept {
    fn record(&self, span: SpanRecord) {
        self.0.lock().unwrap().push(span);
    }
}

fn traced_runtime() -> (Runtime, Arc<Kept>) {
    let kept = Arc::new(Kept::default());
    let rt = Runtime::builder()
        .workers(1)
        .span_sink(kept.clone())
        .build()
        .unwrap();
    (rt, kept)
}

#[test]
fn a_traced_request_and_its_answer_make_a_chain_of_spans_with_one_trace_id() {
    let (rt, kept) = traced_runtime();
    let (trace, echo_serial, seen_by_echo) = rt
        .run(|ctx| {
            let me = ctx.pid();
            let echo = ctx.spawn(move |ctx| {
                let n = ctx.receive().downcast::<u64>().unwrap();
                let seen = ctx.trace();
                ctx.send(&me, (n + 1, seen));
            });
            let trace = ctx.start_trace("request");
            ctx.send(&echo, 41u64);
            let (answer, seen) = ctx
                .receive()
                .downcast::<(u64, Option<erlangen_runtime::TraceContext>)>()
                .unwrap();
            assert_eq!(answer, 42);
            ctx.end_trace();
            (trace, echo.serial(), seen)
        })
        .unwrap();
    assert_eq!(seen_by_echo.map(|t| t.trace_id), Some(trace.trace_id));
    let spans = kept.0.lock().unwrap().clone();
    assert!(
        spans.iter().all(|s| s.trace_id == trace.trace_id),
        "{spans:#?}"
    );
    let kinds: Vec<SpanKind> = spans.iter().map(|s| s.kind).collect();
    // Sends are recorded at once; a span that covers work when it ends.
    assert_eq!(
        kinds,
        [
            SpanKind::Send,    // request → echo
            SpanKind::Root,    // ends at the requester's receive
            SpanKind::Send,    // echo → requester
            SpanKind::Receive, // echo's work, ends at its exit
            SpanKind::Receive, // the requester's, ends at end_trace
        ],
        "{spans:#?}"
    );
    let [send, root, answer, echo_work, requester] = &spans[..] else {
        unreachable!()
    };
    assert_eq!(root.parent_span_id, None);
    assert_eq!(root.span_id, trace.span_id);
    assert_eq!(send.parent_span_id, Some(root.span_id));
    assert_eq!(echo_work.parent_span_id, Some(send.span_id));
    assert_eq!(echo_work.agent, echo_serial);
    assert_eq!(answer.parent_span_id, Some(echo_work.span_id));
    assert_eq!(requester.parent_span_id, Some(answer.span_id));
    assert!(spans.iter().all(|s| s.start_unix_ns <= s.end_unix_ns));
    assert!(echo_work.start_unix_ns >= send.start_unix_ns);
}

#[test]
fn after_end_trace_an_agent_sends_untraced_messages_and_records_nothing_more() {
    let (rt, kept) = traced_runtime();
    let (inside, after) = rt
        .run(|ctx| {
            ctx.start_trace("short");
            let inside = ctx.trace().is_some();
            ctx.send(&ctx.pid(), 1u8);
            ctx.receive(); // traced: a new span
            ctx.end_trace();
            ctx.send(&ctx.pid(), 2u8); // sent outside any trace
            ctx.receive();
            (inside, ctx.trace())
        })
        .unwrap();
    assert!(inside);
    assert_eq!(after, None);
    // Root, the send to itself, its receive: nothing for the second message.
    assert_eq!(kept.0.lock().unwrap().len(), 3);
}

#[test]
fn a_runtime_without_a_sink_passes_the_context_on_unchanged() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let (started, relayed) = rt
        .run(|ctx| {
            let me = ctx.pid();
            let relay = ctx.spawn(move |ctx| {
                let message = ctx.receive();
                let context = ctx.trace();
                ctx.send(&me, (message.downcast::<u8>().unwrap(), context));
            });
            let started = ctx.start_trace("passing");
            ctx.send(&relay, 5u8);
            let (_, context) = ctx
                .receive()
                .downcast::<(u8, Option<erlangen_runtime::TraceContext>)>()
                .unwrap();
            (started, context)
        })
        .unwrap();
    // Nothing recorded here, so no new span: the relay saw the root's
    // context itself.
    assert_eq!(relayed, Some(started));
}

#[test]
fn a_selective_receive_sees_through_a_trace_context() {
    let (rt, _kept) = traced_runtime();
    let got = rt
        .run(|ctx| {
            ctx.start_trace("selective");
            ctx.send(&ctx.pid(), "skip me");
            ctx.send(&ctx.pid(), 7u64);
            let wanted = ctx
                .receive_match(|m| m.downcast_ref::<u64>() == Some(&7))
                .downcast::<u64>()
                .unwrap();
            let other = ctx
                .receive_timeout(Duration::from_secs(5))
                .unwrap()
                .downcast::<&str>()
                .unwrap();
            (wanted, other)
        })
        .unwrap();
    assert_eq!(got, (7, "skip me"));
}
