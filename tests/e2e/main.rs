//! End-to-end tests: the real server over HTTP, on PostgreSQL and on SQLite.

// Scenarios are plain async functions run by generated #[tokio::test]s; in them a panic
// is how a failure is reported.
#![allow(clippy::unwrap_used)]

mod accounts;
mod approval_chains;
mod audit;
mod audit_log;
mod console;
mod contract;
mod crashes;
mod credentials;
mod currencies;
mod dead_letters;
mod duplicates;
mod email;
mod email_receipts;
mod erasure;
mod event_flow;
mod event_schemas;
mod expense_requests;
mod expenses;
mod exports;
mod harness;
mod limits;
mod metrics;
mod mileage;
mod ocr;
mod operations;
mod optimistic;
mod own_writes;
mod personal_data;
mod policies;
mod queries;
mod receipt_review;
mod receipts;
mod replay;
mod replicas;
mod retention;
mod rollout;
mod shredding;
mod shutdown;
mod sqlite_log;
mod sso;
mod tokens;
mod tracing;
mod webhooks;
mod workers;
