//! What a personal access token needs for each operation. This one table decides it, and
//! the OpenAPI document is written from it (`openapi::document_common_answers`), so what
//! is documented is what is enforced; a test checks every operation against the
//! document. An operation missing here is for signed-in users only: new routes are
//! closed to tokens until they are given a scope.

use axum::http::Method;
use expensewise_domain::organization::TokenScope;

/// What a personal access token needs for an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A token with this scope (or `admin`).
    Scope(TokenScope),
    /// Any token of the user.
    AnyToken,
    /// No token: only a user who signed in (managing tokens and one's password).
    SignedInOnly,
}

/// The access `method` on the route `path` (as routed, e.g. `/v1/expenses/{id}`) needs.
pub fn required(method: &Method, path: &str) -> Access {
    use TokenScope::*;
    let scope = match (method.as_str(), path) {
        ("GET", "/v1/me") => return Access::AnyToken,
        ("GET", "/v1/expenses" | "/v1/expenses/{id}" | "/v1/expenses/{id}/history")
        | ("GET", "/v1/reports/summary" | "/v1/policy" | "/v1/policy/history")
        | ("GET", "/v1/receipts" | "/v1/receipts/{id}" | "/v1/receipts/{id}/file") => ExpensesRead,
        ("POST", "/v1/expenses" | "/v1/expenses/{id}/submit")
        | ("PATCH" | "DELETE", "/v1/expenses/{id}") => ExpensesWrite,
        ("POST", "/v1/receipts" | "/v1/receipts/{id}/review" | "/v1/receipts/{id}/rescan") => {
            ReceiptsWrite
        }
        ("GET", "/v1/approvals")
        | (
            "POST",
            "/v1/expenses/{id}/approve"
            | "/v1/expenses/{id}/reject"
            | "/v1/expenses/{id}/reimburse",
        ) => ApprovalsWrite,
        (
            "GET",
            "/v1/audit/events"
            | "/v1/audit/checkpoint"
            | "/v1/audit/events/{id}/proof"
            | "/v1/audit/consistency"
            | "/v1/audit/export"
            | "/v1/users/{id}/erasure",
        ) => AuditRead,
        ("GET" | "POST", "/v1/users")
        | ("PATCH", "/v1/users/{id}")
        | ("GET", "/v1/users/{id}/personal-data")
        | ("POST", "/v1/users/{id}/erasure")
        | ("POST", "/v1/receipts/{id}/legal-hold" | "/v1/receipts/email")
        | ("PUT", "/v1/policy")
        | ("GET", "/v1/admin/projections")
        | ("POST", "/v1/admin/projections/{name}/rebuild")
        | ("GET", "/v1/admin/dead-letters" | "/v1/admin/dead-letters/{worker}/{event_id}")
        | (
            "POST",
            "/v1/admin/dead-letters/{worker}/{event_id}/retry"
            | "/v1/admin/dead-letters/{worker}/{event_id}/discard",
        )
        | ("GET" | "PUT", "/v1/accounting")
        | ("GET" | "POST", "/v1/exports")
        | ("GET", "/v1/exports/{id}")
        | ("GET" | "POST", "/v1/webhooks")
        | ("GET" | "PATCH" | "DELETE", "/v1/webhooks/{id}")
        | ("GET", "/v1/webhooks/event-types")
        | ("GET", "/v1/webhooks/{id}/deliveries" | "/v1/webhooks/{id}/deliveries/{delivery_id}")
        | (
            "POST",
            "/v1/webhooks/{id}/rotate-secret"
            | "/v1/webhooks/{id}/test"
            | "/v1/webhooks/{id}/deliveries/{delivery_id}/resend",
        ) => Admin,
        _ => return Access::SignedInOnly,
    };
    Access::Scope(scope)
}
