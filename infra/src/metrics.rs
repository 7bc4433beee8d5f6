//! Prometheus metrics: one recorder per process, rendered in the text format at
//! `/metrics` by every role (the API's router, and the small probe server of relay,
//! projector and worker processes).
//!
//! The product's own series (names here so that dashboards and alerts have one list):
//! - `http_requests_total`, `http_request_duration_seconds` — method, route template,
//!   status code (the API);
//! - `expensewise_events_appended_total` — aggregate type;
//! - `expensewise_relay_published_total`, `expensewise_relay_lag_seconds` — age of the
//!   newest event the relay has just published (0 when it has nothing to do);
//! - `expensewise_projection_lag_seconds`, `expensewise_projection_events_total` — per
//!   projection, measured the same way;
//! - `expensewise_consumer_redeliveries_total`, `expensewise_dead_letters_total` — worker;
//! - `expensewise_ocr_duration_seconds`, `expensewise_ocr_receipts_total` — outcome;
//! - `expensewise_emails_sent_total`, `expensewise_emails_failed_total` — reason;
//! - `expensewise_requests_run_again_total` — commands decided on stale state and run
//!   again (see `event_store::Scope`).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets, in seconds, from a fast read to a slow command.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// OCR takes from a fraction of a second to the time limit.
const OCR_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0];

struct Exporter {
    handle: PrometheusHandle,
    process: metrics_process::Collector,
}

static EXPORTER: OnceLock<Exporter> = OnceLock::new();

fn exporter() -> &'static Exporter {
    EXPORTER.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("http_request_duration_seconds".into()),
                LATENCY_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("expensewise_ocr_duration_seconds".into()),
                    OCR_BUCKETS,
                )
            })
            .map(PrometheusBuilder::install_recorder);
        let handle = match handle {
            Ok(Ok(handle)) => handle,
            // Only possible if something else installed a recorder first: then this
            // process renders an empty page rather than failing to start.
            Ok(Err(e)) | Err(e) => {
                tracing::error!(error = %e, "metrics recorder not installed");
                PrometheusBuilder::new().build_recorder().handle()
            }
        };
        let process = metrics_process::Collector::default();
        process.describe();
        Exporter { handle, process }
    })
}

/// Installs the recorder (once per process); call before anything records.
pub fn install() {
    exporter();
}

/// The Prometheus text page: process metrics taken now, and everything recorded.
pub fn render() -> String {
    let exporter = exporter();
    exporter.process.collect();
    exporter.handle.render()
}
