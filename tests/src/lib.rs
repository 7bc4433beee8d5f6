//! Shared helpers for the end-to-end tests: a real server on a free port, on a fresh
//! PostgreSQL database or a fresh SQLite file, a small HTTP client around it, and the
//! real services and processes the tests run against.
//!
//! PostgreSQL comes from `TEST_DATABASE_URL` (a server the test command starts). When it
//! is missing or unreachable the PostgreSQL tests fail: they never skip.

mod app;
mod client;
pub mod oidc;
mod postgres;
mod process;
mod receipts;
mod responses;
mod services;

pub use app::{TestApp, TestAppBuilder};
pub use client::{
    consistency, expect_problem, expect_status, expense_body, send_concurrently, upload_receipt,
    Api, User, PASSWORD, TINY_PNG,
};
pub use expensewise_infra::on_both_backends;
pub use expensewise_infra::testing::{
    acting_now, draft_expense, event_metadata, new_employee, register_directly,
    store_pre_credentials_organization, store_v1_registration, stored_event_ids, stored_events,
    Backend, TestDatabase,
};
pub use expensewise_projections::testing::{assert_read_models_equal_a_rebuild, rebuild_all};
pub use postgres::Replication;
pub use process::{expensewise, expensewise_bin, Process, Stack};
pub use receipts::draw_receipt;
pub use responses::{
    expect_json, money, Expense, Extracted, FieldError, Money, Page, Problem, Receipt, Review,
};
pub use services::{
    free_port, stream_messages, support_script, test_tool, wait_for_port, wait_for_stream,
    LoadBalancer, NatsServer, S3Server, SmtpServer, WebhookReceiver,
};
