//! Causal tracing across node processes: a traced chain A → B → C → A
//! exported as spans with one trace id and correct parent links; a trace
//! that crosses a kernel without tracing continues after it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use erlangen_net::{JsonLinesSpans, Node, NodeName, WirePid};
use erlangen_runtime::{Runtime, SpawnOptions};

use crate::membership::{eventually, kernel_with};
use crate::support::{port_mapper, types, unique, COOKIE, HANG_GUARD};

/// One span as the JSON-lines exporter writes it.
#[derive(Clone, Debug)]
struct Span {
    trace: String,
    id: String,
    parent: Option<String>,
    name: String,
    service: String,
    start: u64,
    end: u64,
}

fn spans_in(path: &Path) -> Vec<Span> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            Span {
                trace: v["traceId"].as_str().unwrap().to_owned(),
                id: v["spanId"].as_str().unwrap().to_owned(),
                parent: v["parentSpanId"].as_str().map(str::to_owned),
                name: v["name"].as_str().unwrap().to_owned(),
                service: v["service"].as_str().unwrap().to_owned(),
                start: v["startTimeUnixNano"].as_u64().unwrap(),
                end: v["endTimeUnixNano"].as_u64().unwrap(),
            }
        })
        .collect()
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{}.jsonl", unique(name)))
}

/// Runs the chain from an agent of `node`: start a trace, send 2 to
/// `first` (a ring hop that passes 1 on, whose next passes 0 back to the
/// agent), take the 0, end. Returns the trace id, in hex.
fn chain(rt: &Runtime, node: &Arc<Node>, hops: [&NodeName; 2]) -> String {
    let (node, second, first) = (node.clone(), hops[1].clone(), hops[0].clone());
    rt.run(move |ctx| {
        let me = WirePid(ctx.pid());
        let last = node
            .spawn(ctx, &second, "ring-hop", me, SpawnOptions::new())
            .unwrap();
        let hop = node
            .spawn(ctx, &first, "ring-hop", WirePid(last), SpawnOptions::new())
            .unwrap();
        let trace = ctx.start_trace("chain");
        ctx.send(&hop, 2u64);
        let back = ctx
            .receive_timeout(HANG_GUARD)
            .expect("the chain comes back")
            .downcast::<u64>()
            .unwrap();
        assert_eq!(back, 0);
        assert_eq!(ctx.trace().map(|t| t.trace_id), Some(trace.trace_id));
        ctx.end_trace();
        format!("{:032x}", trace.trace_id)
    })
    .unwrap()
}

/// Follows parent links from `leaf` to the root; every parent must exist.
fn path_to_root<'a>(by_id: &HashMap<&str, &'a Span>, leaf: &'a Span) -> Vec<&'a Span> {
    let mut path = vec![leaf];
    let mut at = leaf;
    while let Some(parent) = &at.parent {
        let parent = by_id
            .get(parent.as_str())
            .unwrap_or_else(|| panic!("{at:?} has no recorded parent"));
        // A child starts within or after its parent's start, and every span
        // ends no earlier than it starts.
        assert!(parent.start <= at.start, "{parent:?} → {at:?}");
        assert!(at.start <= at.end && parent.start <= parent.end);
        path.push(parent);
        at = parent;
    }
    path
}

#[test]
fn a_traced_chain_across_three_node_processes_is_one_trace_with_correct_parents() {
    let mapper = port_mapper();
    let (b_name, c_name, d_name) = (unique("trace-b"), unique("trace-c"), unique("trace-d"));
    let (b_spans, c_spans, a_spans) = (temp("spans-b"), temp("spans-c"), temp("spans-a"));
    let _b = kernel_with(
        &mapper,
        &b_name,
        None,
        &["--trace-spans", b_spans.to_str().unwrap()],
    );
    let _c = kernel_with(
        &mapper,
        &c_name,
        None,
        &["--trace-spans", c_spans.to_str().unwrap()],
    );
    // D records nothing.
    let _d = kernel_with(&mapper, &d_name, None, &[]);
    let a_name = unique("trace-a");
    let rt = Runtime::builder()
        .workers(1)
        .span_sink(Arc::new(
            JsonLinesSpans::create(&a_spans, &format!("localhost/{a_name}")).unwrap(),
        ))
        .build()
        .unwrap();
    let node = Arc::new(
        Node::builder(&a_name)
            .cookie(COOKIE)
            .port_mapper(mapper.local_addr())
            .types(types())
            .start(&rt)
            .unwrap(),
    );
    let name = |n: &str| -> NodeName { format!("localhost/{n}").parse().unwrap() };
    let (b, c, d) = (name(&b_name), name(&c_name), name(&d_name));

    // A → B → C → A, every node recording.
    let trace = chain(&rt, &node, [&b, &c]);
    let all = || {
        [&a_spans, &b_spans, &c_spans]
            .iter()
            .flat_map(|path| spans_in(path))
            .filter(|span| span.trace == trace)
            .collect::<Vec<_>>()
    };
    // The root, A's send, B's receive and send, C's receive and send, A's
    // receive: seven spans (the kernels write theirs when their hops end).
    eventually("seven spans of the chain", || all().len() == 7);
    let spans = all();
    let by_id: HashMap<&str, &Span> = spans.iter().map(|s| (s.id.as_str(), s)).collect();
    let last = spans
        .iter()
        .find(|s| s.name == "receive u64" && s.service.ends_with(&a_name))
        .expect("A's receive of the answer");
    let path = path_to_root(&by_id, last);
    let services: Vec<&str> = path
        .iter()
        .rev()
        .map(|s| s.service.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        services,
        [&a_name, &a_name, &b_name, &b_name, &c_name, &c_name, &a_name].map(String::as_str),
        "{path:#?}"
    );
    let names: Vec<&str> = path.iter().rev().map(|s| s.name.as_str()).collect();
    assert_eq!(names[0], "chain");
    assert_eq!(names[1], "send u64", "{names:?}");
    assert_eq!(names[2], "receive u64");

    // A → D → C → A: D records nothing, and the trace goes on after it:
    // C's receive is the child of A's send.
    let trace = chain(&rt, &node, [&d, &c]);
    let all = || {
        [&a_spans, &b_spans, &c_spans]
            .iter()
            .flat_map(|path| spans_in(path))
            .filter(|span| span.trace == trace)
            .collect::<Vec<_>>()
    };
    eventually("five spans of the second chain", || all().len() == 5);
    let spans = all();
    let by_id: HashMap<&str, &Span> = spans.iter().map(|s| (s.id.as_str(), s)).collect();
    let last = spans
        .iter()
        .find(|s| s.name == "receive u64" && s.service.ends_with(&a_name))
        .expect("A's receive of the answer");
    let path = path_to_root(&by_id, last);
    let services: Vec<&str> = path
        .iter()
        .rev()
        .map(|s| s.service.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        services,
        [&a_name, &a_name, &c_name, &c_name, &a_name].map(String::as_str),
        "{path:#?}"
    );
    for path in [a_spans, b_spans, c_spans] {
        let _ = std::fs::remove_file(path);
    }
    drop(node);
}

/// Reads one HTTP request (headers and a body of `content-length` bytes)
/// from `stream`, answers 200, and returns the request.
fn one_request(stream: &mut std::net::TcpStream) -> Vec<u8> {
    use std::io::{Read, Write};
    stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let mut request = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).expect("the exporter's request");
        assert!(n > 0, "the exporter closed early");
        request.extend_from_slice(&chunk[..n]);
        let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .map_or(0, |n| n.trim().parse().unwrap());
        if request.len() >= end + 4 + length {
            break;
        }
    }
    stream
        .write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
        )
        .unwrap();
    request
}

#[test]
fn spans_reach_an_otlp_collector_over_http_with_the_nodes_name_as_service() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    let collector = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        one_request(&mut stream)
    });
    let spans =
        Arc::new(erlangen_net::OtelSpans::otlp_http(&endpoint, "localhost/otlp-test").unwrap());
    let rt = Runtime::builder()
        .workers(1)
        .span_sink(spans.clone())
        .build()
        .unwrap();
    rt.run(|ctx| {
        ctx.start_trace("otlp-root");
        ctx.send(&ctx.pid(), 1u8);
        ctx.receive();
        ctx.end_trace();
    })
    .unwrap();
    spans.flush().unwrap();
    let request = collector.join().unwrap();
    let head = String::from_utf8_lossy(&request).to_ascii_lowercase();
    assert!(head.starts_with("post /v1/traces http/1.1"), "{head}");
    assert!(
        head.contains("content-type: application/x-protobuf"),
        "{head}"
    );
    // Protobuf keeps strings as they are: the span names and the service.
    let has = |text: &[u8]| request.windows(text.len()).any(|w| w == text);
    assert!(has(b"otlp-root") && has(b"receive u8") && has(b"localhost/otlp-test"));
}
