//! The receipt workers: OCR of every uploaded (or rescan-requested) receipt, and the
//! process manager that turns a settled receipt uploaded with `create_expense=true` into a
//! draft expense (the use case itself is `expensewise_application::receipts`).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use expensewise_application::receipts::draft_from_receipt;
use expensewise_domain::receipt::{
    ReceiptCommand, ReceiptState, ScanStatus, AGGREGATE_TYPE, RECEIPT_RESCAN_REQUESTED,
    RECEIPT_REVIEWED, RECEIPT_SCANNED, RECEIPT_UPLOADED,
};
use expensewise_domain::{Currency, EventMetadata, Receipt};
use expensewise_infra::consumer::Handler;
use expensewise_infra::event_store::Scope;
use expensewise_infra::object_store::ObjectStore;
use expensewise_infra::{nats, EventStore, RecordedEvent};
use uuid::Uuid;

use crate::extract::{doubts, extract};
use crate::ocr::ReceiptReader;

/// The currency of organizations that never chose one.
const FALLBACK_CURRENCY: &str = "EUR";

/// Metadata for what a worker does because of `event`: same organization and
/// correlation, caused by that event, done by no user.
fn caused_by(event: &RecordedEvent, organization_id: Uuid) -> EventMetadata {
    let correlation = event
        .metadata
        .get("correlation_id")
        .and_then(|v| v.as_str())
        .and_then(|v| Uuid::parse_str(v).ok());
    let event_id = nats::event_id(&event.aggregate_type, &event.aggregate_id, event.sequence);
    EventMetadata {
        organization_id,
        actor_id: None,
        occurred_at: Utc::now(),
        correlation_id: correlation.unwrap_or(event_id),
        causation_id: event_id,
        request_id: None,
        traceparent: event
            .metadata
            .get("traceparent")
            .and_then(|v| v.as_str())
            .map(str::to_string),
    }
}

async fn load_receipt(store: &EventStore, id: &str) -> anyhow::Result<Option<ReceiptState>> {
    let receipt: Receipt = store.load(id).await?;
    Ok(receipt.state)
}

/// Reads each uploaded receipt and records what it found, or why it found nothing.
pub struct OcrWorker {
    pub store: Arc<EventStore>,
    pub objects: ObjectStore,
    pub reader: ReceiptReader,
}

#[async_trait]
impl Handler for OcrWorker {
    fn name(&self) -> &'static str {
        "ocr"
    }

    fn handles(&self) -> &'static [(&'static str, &'static str)] {
        &[
            (AGGREGATE_TYPE, RECEIPT_UPLOADED),
            (AGGREGATE_TYPE, RECEIPT_RESCAN_REQUESTED),
        ]
    }

    async fn handle(&self, event: &RecordedEvent) -> anyhow::Result<()> {
        let Some(receipt) = load_receipt(&self.store, &event.aggregate_id).await? else {
            anyhow::bail!("receipt {} is not in the store", event.aggregate_id);
        };
        if receipt.status != ScanStatus::Pending {
            // Read before (a redelivery): nothing to do.
            return Ok(());
        }
        let bytes = self.objects.get(&receipt.storage_key).await?;
        let organization = self
            .store
            .load_organization(&receipt.organization_id.to_string())
            .await?;
        let currency = organization
            .default_currency()
            .map_or_else(|| Currency::parse(FALLBACK_CURRENCY), Ok)?;
        let started = std::time::Instant::now();
        let outcome = self.reader.read(&bytes, &receipt.content_type).await;
        let source = outcome.as_ref().map_or("", |r| r.source);
        let command = match outcome {
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => ReceiptCommand::RecordScanFailure {
                reason: e.to_string(),
                at: Utc::now(),
            },
            Ok(reading) => {
                let extraction = extract(&reading.text, currency, receipt.uploaded_at.date_naive());
                let doubts = doubts(&extraction);
                if doubts.is_empty() {
                    ReceiptCommand::RecordScan {
                        extraction,
                        at: Utc::now(),
                    }
                } else {
                    ReceiptCommand::SendToReview {
                        extraction,
                        doubts,
                        at: Utc::now(),
                    }
                }
            }
        };
        let outcome = match command {
            ReceiptCommand::RecordScan { .. } => "scanned",
            ReceiptCommand::SendToReview { .. } => "needs_review",
            _ => "failed",
        };
        metrics::histogram!("expensewise_ocr_duration_seconds", "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("expensewise_ocr_receipts_total", "outcome" => outcome).increment(1);
        tracing::info!(
            receipt = %event.aggregate_id,
            source,
            elapsed_ms = started.elapsed().as_millis() as u64,
            outcome,
            "receipt read"
        );
        self.store
            .execute::<Receipt>(
                &Scope::none(),
                &event.aggregate_id,
                command,
                &caused_by(event, receipt.organization_id),
            )
            .await?;
        Ok(())
    }
}

/// Turns receipts uploaded with `create_expense=true` into draft expenses once their
/// fields are settled: read with confidence, or reviewed by a person.
pub struct ReceiptExpenses {
    pub store: Arc<EventStore>,
}

#[async_trait]
impl Handler for ReceiptExpenses {
    fn name(&self) -> &'static str {
        "receipt-expenses"
    }

    fn handles(&self) -> &'static [(&'static str, &'static str)] {
        &[
            (AGGREGATE_TYPE, RECEIPT_SCANNED),
            (AGGREGATE_TYPE, RECEIPT_REVIEWED),
        ]
    }

    async fn handle(&self, event: &RecordedEvent) -> anyhow::Result<()> {
        let receipt_id = Uuid::parse_str(&event.aggregate_id)?;
        // The use case loads the receipt; the event says whose it is.
        let organization_id = event
            .metadata
            .get(expensewise_domain::metadata::ORGANIZATION_ID)
            .and_then(|v| v.as_str())
            .and_then(|v| Uuid::parse_str(v).ok())
            .ok_or_else(|| {
                anyhow::anyhow!("event of receipt {receipt_id} names no organization")
            })?;
        let metadata = caused_by(event, organization_id);
        draft_from_receipt(&self.store, receipt_id, &metadata)
            .await
            .map_err(|e| anyhow::anyhow!("making the draft expense: {e}"))?;
        Ok(())
    }
}
