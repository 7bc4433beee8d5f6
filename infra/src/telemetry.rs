//! Logs and traces set up in one place: JSON lines for machines, readable lines in a
//! terminal; and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans exported over OTLP/HTTP
//! (`OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf`, the default, or `http/json`).
//!
//! One trace follows a write through the system: the HTTP request's span (a child of the
//! caller's `traceparent`, if any) is recorded in the events' metadata, the relay puts it
//! in the NATS headers, and each projection and worker that handles the event opens its
//! span as a child of it.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Whether spans go anywhere: spans made only for export are skipped otherwise.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Flushes the spans not yet exported when the process ends.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("exporting the last traces failed: {e}");
            }
        }
    }
}

/// Installs the global subscriber. `level` is a `tracing` filter such as `info` or
/// `expensewise=debug,sqlx=warn`; `otlp_endpoint` turns on trace export.
pub fn init(level: &str, otlp_endpoint: Option<&str>) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_new(level)
        .map_err(|e| anyhow::anyhow!("LOG_LEVEL: '{level}' is not a valid filter: {e}"))?;
    // Logs go to standard error: standard output is what a command answers (a conversion
    // as JSON, an export, a report), which scripts read; a log line there corrupts it.
    let logs = if std::io::stderr().is_terminal() {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .with_filter(filter)
            .boxed()
    };
    let (traces, provider) = match otlp_endpoint {
        None => (None, None),
        Some(endpoint) => {
            // The exporter reads the endpoint and protocol from the environment itself.
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .build()
                .map_err(|e| {
                    anyhow::anyhow!("OTEL_EXPORTER_OTLP_ENDPOINT: cannot export to {endpoint}: {e}")
                })?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name("expensewise")
                        .build(),
                )
                .build();
            let tracer = provider.tracer("expensewise");
            // Traces are about this product's work, whatever the log level says.
            let layer = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(EnvFilter::new("expensewise=info"));
            EXPORTING.store(true, Ordering::Relaxed);
            (Some(layer), Some(provider))
        }
    };
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))?;
    Ok(Telemetry { provider })
}

/// Whether traces are exported by this process.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The W3C `traceparent` of the current span, when it belongs to an exported trace.
pub fn current_traceparent() -> Option<String> {
    let context = Span::current().context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the span a `traceparent` names (from a request header or an
/// event's metadata), and records the trace id in the span's `trace_id` field, so that
/// every log line written inside it can be matched with its trace, exported or not.
pub fn continue_trace(span: &Span, traceparent: Option<&str>) {
    let mut caller_trace = None;
    if let Some(traceparent) = traceparent {
        let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
        let context = TraceContextPropagator::new().extract(&carrier);
        let caller = context.span().span_context().clone();
        if caller.is_valid() {
            caller_trace = Some(caller.trace_id());
            let _ = span.set_parent(context);
        }
    }
    // When exporting, the span has a trace of its own even without a caller.
    let own = span.context().span().span_context().clone();
    let trace_id = if own.is_valid() {
        Some(own.trace_id())
    } else {
        caller_trace
    };
    if let Some(trace_id) = trace_id {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

/// The trace context an event was written in.
pub fn traceparent(event: &crate::RecordedEvent) -> Option<&str> {
    event.metadata.get("traceparent").and_then(|v| v.as_str())
}
