//! The receipt workers: OCR of every uploaded receipt, and the process manager that turns
//! a scanned receipt uploaded with `create_expense=true` into a draft expense.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{Duration as Days, Utc};
use expensewise_domain::expense::{Context, ExpenseCommand, ExpenseDetails, ExpenseError};
use expensewise_domain::receipt::{
    ReceiptCommand, ReceiptState, ScanStatus, AGGREGATE_TYPE, RECEIPT_SCANNED, RECEIPT_UPLOADED,
};
use expensewise_domain::{Actor, Currency, EventMetadata, Expense, Receipt};
use expensewise_infra::consumer::Handler;
use expensewise_infra::event_store::CommandError;
use expensewise_infra::object_store::ObjectStore;
use expensewise_infra::{nats, EventStore, RecordedEvent};
use uuid::Uuid;

use crate::extract::extract;
use crate::ocr::ReceiptReader;

/// The currency of organizations that never chose one.
const FALLBACK_CURRENCY: &str = "EUR";
/// The category of expenses made from receipts, for their owner to change.
pub const RECEIPT_CATEGORY: &str = "uncategorized";

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
        &[(AGGREGATE_TYPE, RECEIPT_UPLOADED)]
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
            Ok(reading) => ReceiptCommand::RecordScan {
                extraction: extract(&reading.text, currency),
                at: Utc::now(),
            },
        };
        let outcome = if matches!(command, ReceiptCommand::RecordScan { .. }) {
            "scanned"
        } else {
            "failed"
        };
        metrics::histogram!("expensewise_ocr_duration_seconds", "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("expensewise_ocr_receipts_total", "outcome" => outcome).increment(1);
        tracing::info!(
            receipt = %event.aggregate_id,
            source,
            elapsed_ms = started.elapsed().as_millis() as u64,
            scanned = matches!(command, ReceiptCommand::RecordScan { .. }),
            "receipt read"
        );
        self.store
            .execute::<Receipt>(
                &event.aggregate_id,
                command,
                &caused_by(event, receipt.organization_id),
            )
            .await?;
        Ok(())
    }
}

/// The id of the expense made from a receipt: one receipt, one expense, however often
/// the scan event is delivered.
pub fn expense_from_receipt(receipt_id: Uuid) -> Uuid {
    const NAMESPACE: Uuid = Uuid::from_u128(0x2b7f_91c4_0d3e_4a58_a6e2_58f1_c93d_047b);
    Uuid::new_v5(&NAMESPACE, receipt_id.as_bytes())
}

/// Turns scanned receipts uploaded with `create_expense=true` into draft expenses.
pub struct ReceiptExpenses {
    pub store: Arc<EventStore>,
}

#[async_trait]
impl Handler for ReceiptExpenses {
    fn name(&self) -> &'static str {
        "receipt-expenses"
    }

    fn handles(&self) -> &'static [(&'static str, &'static str)] {
        &[(AGGREGATE_TYPE, RECEIPT_SCANNED)]
    }

    async fn handle(&self, event: &RecordedEvent) -> anyhow::Result<()> {
        let receipt_id = Uuid::parse_str(&event.aggregate_id)?;
        let Some(receipt) = load_receipt(&self.store, &event.aggregate_id).await? else {
            anyhow::bail!("receipt {receipt_id} is not in the store");
        };
        if !receipt.create_expense {
            return Ok(());
        }
        let Some(extraction) = receipt.extraction.as_ref() else {
            return Ok(());
        };
        let Some(money) = extraction.total else {
            // An expense needs an amount; the receipt shows what was read instead.
            tracing::info!(receipt = %receipt_id, "no total on the receipt: no expense made");
            return Ok(());
        };
        let organization = self
            .store
            .load_organization(&receipt.organization_id.to_string())
            .await?;
        let Some(member) = organization
            .member(receipt.uploader_id)
            .filter(|m| m.active)
        else {
            tracing::info!(receipt = %receipt_id, "the uploader is no longer active: no expense made");
            return Ok(());
        };
        let actor = Actor {
            user_id: receipt.uploader_id,
            organization_id: receipt.organization_id,
            role: member.role,
        };
        // Receipts may be dated by a time zone ahead of ours, or misread into the future.
        let today = (Utc::now() + Days::hours(14)).date_naive();
        let spent_on = extraction
            .date
            .filter(|d| *d <= today)
            .unwrap_or_else(|| receipt.uploaded_at.date_naive());
        let command = ExpenseCommand::CreateExpense {
            ctx: Context {
                actor,
                at: Utc::now(),
                expected_version: None,
            },
            details: ExpenseDetails {
                money,
                merchant: extraction
                    .merchant
                    .clone()
                    .unwrap_or_else(|| "Unknown merchant".to_string()),
                category: RECEIPT_CATEGORY.to_string(),
                spent_on,
                description: Some("Pre-filled from a scanned receipt".to_string()),
            },
            receipt_id: Some(receipt_id),
            today,
        };
        let expense_id = expense_from_receipt(receipt_id);
        let metadata = caused_by(event, receipt.organization_id);
        match self
            .store
            .execute::<Expense>(&expense_id.to_string(), command, &metadata)
            .await
        {
            Ok(_) | Err(CommandError::Rejected(ExpenseError::AlreadyExists)) => {}
            Err(e) => return Err(anyhow::anyhow!("creating the expense: {e}")),
        }
        self.store
            .execute::<Receipt>(
                &event.aggregate_id,
                ReceiptCommand::AttachToExpense {
                    actor,
                    expense_id,
                    at: Utc::now(),
                },
                &metadata,
            )
            .await
            .map_err(|e| anyhow::anyhow!("attaching the receipt: {e}"))?;
        Ok(())
    }
}
