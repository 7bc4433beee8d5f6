//! Personal access tokens: what a program acting for a user may do. A token never grants
//! more than its user's role; its scopes narrow that further. The secret is not part of
//! the domain: only the token's id, owner, scopes and expiry are, so that revoking one,
//! its expiry and its owner's deactivation apply on every replica with the organization.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a token may be used for; stored forever in events, never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TokenScope {
    #[serde(rename = "expenses:read")]
    ExpensesRead,
    #[serde(rename = "expenses:write")]
    ExpensesWrite,
    #[serde(rename = "receipts:write")]
    ReceiptsWrite,
    #[serde(rename = "approvals:write")]
    ApprovalsWrite,
    #[serde(rename = "audit:read")]
    AuditRead,
    /// Everything the owner may do, including administration.
    #[serde(rename = "admin")]
    Admin,
}

impl TokenScope {
    pub const ALL: [TokenScope; 6] = [
        TokenScope::ExpensesRead,
        TokenScope::ExpensesWrite,
        TokenScope::ReceiptsWrite,
        TokenScope::ApprovalsWrite,
        TokenScope::AuditRead,
        TokenScope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::ExpensesRead => "expenses:read",
            TokenScope::ExpensesWrite => "expenses:write",
            TokenScope::ReceiptsWrite => "receipts:write",
            TokenScope::ApprovalsWrite => "approvals:write",
            TokenScope::AuditRead => "audit:read",
            TokenScope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<TokenScope> {
        TokenScope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
    }
}

/// A personal access token as the organization knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiToken {
    pub user_id: Uuid,
    pub name: String,
    pub scopes: BTreeSet<TokenScope>,
    pub expires_at: Option<DateTime<Utc>>,
    pub issued_at: DateTime<Utc>,
    pub revoked: bool,
}

impl ApiToken {
    /// Whether the token allows what needs `scope`, at `now`.
    pub fn allows(&self, scope: TokenScope, now: DateTime<Utc>) -> bool {
        self.usable(now)
            && (self.scopes.contains(&scope) || self.scopes.contains(&TokenScope::Admin))
    }

    /// Neither revoked nor expired at `now`.
    pub fn usable(&self, now: DateTime<Utc>) -> bool {
        !self.revoked && self.expires_at.is_none_or(|at| now < at)
    }
}
