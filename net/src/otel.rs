//! The bridge from a node's spans to OpenTelemetry (feature `otel`, on by
//! default through `otlp`): [`OtelSpans`] is a [`SpanSink`] that turns
//! each finished span into the SDK's `SpanData` and hands it to a batch
//! span processor, which exports it with any OpenTelemetry span exporter
//! on a thread of its own — OTLP over HTTP ([`OtelSpans::otlp_http`],
//! feature `otlp`, the kernel's `--otlp-endpoint`), or one of the SDK's.
//!
//! The only module that imports the `opentelemetry` crates.

use std::borrow::Cow;
use std::time::{Duration, UNIX_EPOCH};

use erlangen_runtime::{SpanKind, SpanRecord, SpanSink};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind as OtelKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, SpanData, SpanEvents, SpanExporter, SpanLinks, SpanProcessor,
};
use opentelemetry_sdk::Resource;

/// Exports a runtime's spans through an OpenTelemetry span exporter.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use erlangen_net::OtelSpans;
/// use opentelemetry_sdk::error::OTelSdkResult;
/// use opentelemetry_sdk::trace::{SpanData, SpanExporter};
///
/// // Any exporter: this one keeps what it gets.
/// #[derive(Debug, Clone, Default)]
/// struct Keep(Arc<Mutex<Vec<SpanData>>>);
/// impl SpanExporter for Keep {
///     async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
///         self.0.lock().unwrap().extend(batch);
///         Ok(())
///     }
/// }
///
/// let kept = Keep::default();
/// let spans = Arc::new(OtelSpans::new(kept.clone(), "localhost/doc"));
/// let rt = erlangen_runtime::Runtime::builder().workers(1).span_sink(spans.clone()).build().unwrap();
/// rt.run(|ctx| { ctx.start_trace("hello"); }).unwrap();
/// spans.flush().unwrap();
/// assert_eq!(kept.0.lock().unwrap()[0].name, "hello");
/// ```
#[derive(Debug)]
pub struct OtelSpans {
    processor: BatchSpanProcessor,
    scope: InstrumentationScope,
}

impl OtelSpans {
    /// Spans of `service` (a node's name: the resource's `service.name`)
    /// exported by `exporter`, in batches, from a thread of the SDK's.
    pub fn new<E: SpanExporter + 'static>(exporter: E, service: &str) -> OtelSpans {
        let mut processor = BatchSpanProcessor::builder(exporter).build();
        processor.set_resource(
            &Resource::builder_empty()
                .with_service_name(service.to_owned())
                .build(),
        );
        OtelSpans {
            processor,
            scope: InstrumentationScope::builder("erlangen")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        }
    }

    /// Spans of `service` sent to an OTLP collector over HTTP with
    /// protobuf bodies (`endpoint`: the collector's traces URL, such as
    /// `http://localhost:4318/v1/traces`).
    #[cfg(feature = "otlp")]
    pub fn otlp_http(endpoint: &str, service: &str) -> Result<OtelSpans, String> {
        use opentelemetry_otlp::WithExportConfig;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(OtelSpans::new(exporter, service))
    }

    /// Exports every span recorded so far, waiting for the exporter.
    pub fn flush(&self) -> Result<(), String> {
        self.processor.force_flush().map_err(|e| e.to_string())
    }
}

impl SpanSink for OtelSpans {
    fn record(&self, span: SpanRecord) {
        self.processor.on_end(span_data(&self.scope, span));
    }
}

impl Drop for OtelSpans {
    fn drop(&mut self) {
        // Exports what is left; an unreachable collector loses it.
        let _ = self.processor.shutdown_with_timeout(SHUTDOWN_TIMEOUT);
    }
}

/// Longest a dropped `OtelSpans` waits for its last export.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// One finished span in the SDK's terms.
fn span_data(scope: &InstrumentationScope, span: SpanRecord) -> SpanData {
    let context = SpanContext::new(
        TraceId::from(span.trace_id),
        SpanId::from(span.span_id),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    );
    let span_kind = match span.kind {
        SpanKind::Root => OtelKind::Internal,
        SpanKind::Send => OtelKind::Producer,
        SpanKind::Receive => OtelKind::Consumer,
    };
    SpanData {
        span_context: context,
        parent_span_id: span.parent_span_id.map_or(SpanId::INVALID, SpanId::from),
        // A receive's parent is a send, often on another node.
        parent_span_is_remote: span.kind == SpanKind::Receive,
        span_kind,
        name: Cow::Owned(span.name),
        start_time: UNIX_EPOCH + Duration::from_nanos(span.start_unix_ns),
        end_time: UNIX_EPOCH + Duration::from_nanos(span.end_unix_ns),
        attributes: vec![KeyValue::new(
            "erlangen.agent",
            i64::try_from(span.agent).unwrap_or(i64::MAX),
        )],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: scope.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_keeps_its_ids_parent_kind_times_and_agent() {
        let scope = InstrumentationScope::builder("erlangen").build();
        let data = span_data(
            &scope,
            SpanRecord {
                trace_id: 0x1234,
                span_id: 0x56,
                parent_span_id: Some(0x78),
                kind: SpanKind::Receive,
                name: "receive u64".to_owned(),
                agent: 9,
                start_unix_ns: 1_000,
                end_unix_ns: 3_000,
            },
        );
        assert_eq!(data.span_context.trace_id(), TraceId::from(0x1234u128));
        assert_eq!(data.span_context.span_id(), SpanId::from(0x56u64));
        assert!(data.span_context.is_sampled());
        assert_eq!(data.parent_span_id, SpanId::from(0x78u64));
        assert!(data.parent_span_is_remote);
        assert_eq!(data.span_kind, OtelKind::Consumer);
        assert_eq!(
            data.end_time.duration_since(data.start_time).unwrap(),
            Duration::from_nanos(2_000)
        );
        assert_eq!(data.attributes, [KeyValue::new("erlangen.agent", 9i64)]);
        let root = span_data(
            &scope,
            SpanRecord {
                trace_id: 1,
                span_id: 2,
                parent_span_id: None,
                kind: SpanKind::Root,
                name: String::new(),
                agent: 0,
                start_unix_ns: 0,
                end_unix_ns: 0,
            },
        );
        assert_eq!(root.parent_span_id, SpanId::INVALID);
        assert_eq!(root.span_kind, OtelKind::Internal);
    }
}
