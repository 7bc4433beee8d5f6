//! Shared helpers for the end-to-end tests: a real server on a free port, on a fresh
//! PostgreSQL database or a fresh SQLite file, a small HTTP client around it, and the
//! real services and processes the tests run against.
//!
//! PostgreSQL comes from `TEST_DATABASE_URL` (a server the test command starts). When it
//! is missing or unreachable the PostgreSQL tests fail: they never skip.

mod app;
mod client;
mod database;
mod process;
mod receipts;
mod services;
mod store;

pub use app::{TestApp, TestAppBuilder};
pub use client::{
    consistency, expect_problem, expect_status, expense_body, send_concurrently, upload_receipt,
    Api, User, PASSWORD, TINY_PNG,
};
pub use database::{Backend, TestDatabase};
pub use process::{expensewise, expensewise_bin, Process};
pub use receipts::draw_receipt;
pub use services::{
    free_port, stream_messages, test_tool, wait_for_port, wait_for_stream, LoadBalancer,
    NatsServer, S3Server, SmtpServer,
};
pub use store::{
    assert_read_models_equal_a_rebuild, event_metadata, register_directly, store_v1_registration,
    stored_event_ids,
};

/// Runs each listed scenario once on PostgreSQL and once on SQLite.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario($crate::Backend::Postgres).await
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario($crate::Backend::Sqlite).await
                }
            )*
        }
    };
}
