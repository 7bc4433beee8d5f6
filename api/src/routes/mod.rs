//! One module per resource. Each handler is documented for OpenAPI where it is defined.

pub mod accounts;
pub mod admin;
pub mod approvals;
pub mod audit;
pub mod consistency;
pub mod dead_letters;
pub mod events;
pub mod expenses;
pub mod exports;
pub mod policy;
pub mod receipts;
pub mod service;
pub mod sso;
pub mod tokens;
pub mod users;
pub mod webhooks;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use expensewise_infra::GlobalPosition;
use uuid::Uuid;

pub const CONSISTENCY_TOKEN: &str = "x-consistency-token";

/// The header that lets a client read its own write from the read models.
pub fn consistency_header(head: Option<GlobalPosition>) -> (HeaderName, HeaderValue) {
    let token = head.unwrap_or_default().to_string();
    (
        HeaderName::from_static(CONSISTENCY_TOKEN),
        HeaderValue::from_str(&token).unwrap_or(HeaderValue::from_static("0.0")),
    )
}

/// The id a create names: derived from the user and their `Idempotency-Key` when there
/// is one, so a retry lands on what the first attempt made even when that attempt's
/// response was lost; random otherwise. `namespace` keeps the kinds of thing apart.
pub fn id_for_request(namespace: Uuid, user_id: Uuid, headers: &HeaderMap) -> Uuid {
    match headers.get("idempotency-key").map(|k| k.as_bytes()) {
        Some(key) => {
            let mut name = user_id.as_bytes().to_vec();
            name.extend_from_slice(key);
            Uuid::new_v5(&namespace, &name)
        }
        None => Uuid::new_v4(),
    }
}

pub fn etag_header(version: u64) -> (HeaderName, HeaderValue) {
    (
        axum::http::header::ETAG,
        HeaderValue::from_str(&format!("\"{version}\""))
            .unwrap_or(HeaderValue::from_static("\"0\"")),
    )
}
