//! Where a node's runtime sends its finished spans (the runtime's trace.rs):
//! [`JsonLinesSpans`], one JSON object per line in a file, in the field
//! names of OpenTelemetry's JSON encoding of a span (ids in lower-case hex,
//! times in ns since the Unix epoch), with the node's name as the service.
//!
//! It is a [`SpanSink`]: `Runtime::builder().span_sink(...)`, or the
//! kernel's `--trace-spans FILE`. Each span is written and flushed when it
//! ends, on the worker that ended it, under one lock: tracing is for the
//! traced messages only, and a span on disk survives a killed process.

use std::fs::File;
use std::io::{LineWriter, Write};
use std::path::Path;
use std::sync::Mutex;

use erlangen_runtime::{SpanKind, SpanRecord, SpanSink};

/// Writes finished spans to a file, one JSON object per line.
///
/// ```
/// use erlangen_net::JsonLinesSpans;
/// use erlangen_runtime::{Runtime, SpanSink};
/// let path = std::env::temp_dir().join(format!("spans-doc-{}.jsonl", std::process::id()));
/// let spans = std::sync::Arc::new(JsonLinesSpans::create(&path, "localhost/doc").unwrap());
/// let rt = Runtime::builder().workers(1).span_sink(spans).build().unwrap();
/// rt.run(|ctx| { ctx.start_trace("hello"); }).unwrap();
/// let line = std::fs::read_to_string(&path).unwrap();
/// assert!(line.contains("\"name\":\"hello\""));
/// # std::fs::remove_file(path).unwrap();
/// ```
#[derive(Debug)]
pub struct JsonLinesSpans {
    service: String,
    out: Mutex<LineWriter<File>>,
}

impl JsonLinesSpans {
    /// Spans of `service` (a node's name) appended to the file at `path`
    /// (created if needed).
    pub fn create(path: &Path, service: &str) -> std::io::Result<JsonLinesSpans> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(JsonLinesSpans {
            service: service.to_owned(),
            out: Mutex::new(LineWriter::new(file)),
        })
    }
}

impl SpanSink for JsonLinesSpans {
    fn record(&self, span: SpanRecord) {
        let line = json_line(&self.service, &span);
        // A full disk loses spans, never the node.
        let _ = writeln!(crate::sync::lock(&self.out), "{line}");
    }
}

/// One span as a JSON object (no newline).
fn json_line(service: &str, span: &SpanRecord) -> String {
    let parent = span
        .parent_span_id
        .map_or("null".to_owned(), |id| format!("\"{id:016x}\""));
    let kind = match span.kind {
        SpanKind::Root => "SPAN_KIND_INTERNAL",
        SpanKind::Send => "SPAN_KIND_PRODUCER",
        SpanKind::Receive => "SPAN_KIND_CONSUMER",
    };
    format!(
        "{{\"traceId\":\"{:032x}\",\"spanId\":\"{:016x}\",\"parentSpanId\":{parent},\"name\":{},\"kind\":\"{kind}\",\"startTimeUnixNano\":{},\"endTimeUnixNano\":{},\"service\":{},\"agent\":{}}}",
        span.trace_id,
        span.span_id,
        json_string(&span.name),
        span.start_unix_ns,
        span.end_unix_ns,
        json_string(service),
        span.agent,
    )
}

/// `text` as a JSON string.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_becomes_one_line_of_json_with_hex_ids() {
        let span = SpanRecord {
            trace_id: 0xab,
            span_id: 0xcd,
            parent_span_id: None,
            kind: SpanKind::Receive,
            name: "receive \"x\"\n".to_owned(),
            agent: 7,
            start_unix_ns: 1,
            end_unix_ns: 2,
        };
        let line = json_line("h/n", &span);
        assert_eq!(
            line,
            "{\"traceId\":\"000000000000000000000000000000ab\",\"spanId\":\"00000000000000cd\",\"parentSpanId\":null,\"name\":\"receive \\\"x\\\"\\u000a\",\"kind\":\"SPAN_KIND_CONSUMER\",\"startTimeUnixNano\":1,\"endTimeUnixNano\":2,\"service\":\"h/n\",\"agent\":7}"
        );
    }
}
