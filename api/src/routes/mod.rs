//! One module per resource. Each handler is documented for OpenAPI where it is defined.

pub mod accounts;
pub mod admin;
pub mod approvals;
pub mod audit;
pub mod consistency;
pub mod expenses;
pub mod receipts;
pub mod service;
pub mod users;

use axum::http::{HeaderName, HeaderValue};
use expensewise_infra::GlobalPosition;

pub const CONSISTENCY_TOKEN: &str = "x-consistency-token";

/// The header that lets a client read its own write from the read models.
pub fn consistency_header(head: Option<GlobalPosition>) -> (HeaderName, HeaderValue) {
    let token = head.unwrap_or_default().to_string();
    (
        HeaderName::from_static(CONSISTENCY_TOKEN),
        HeaderValue::from_str(&token).unwrap_or(HeaderValue::from_static("0.0")),
    )
}

pub fn etag_header(version: u64) -> (HeaderName, HeaderValue) {
    (
        axum::http::header::ETAG,
        HeaderValue::from_str(&format!("\"{version}\""))
            .unwrap_or(HeaderValue::from_static("\"0\"")),
    )
}
