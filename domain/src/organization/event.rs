use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{SingleSignOn, TokenScope};
use crate::actor::Role;
use crate::money::Currency;

/// Event type names are stored with every event forever: never rename one.
pub const ORGANIZATION_REGISTERED: &str = "OrganizationRegistered";
pub const USER_ADDED: &str = "UserAdded";
pub const USER_ROLE_CHANGED: &str = "UserRoleChanged";
pub const USER_DEACTIVATED: &str = "UserDeactivated";
pub const USER_REACTIVATED: &str = "UserReactivated";
pub const PASSWORD_CHANGED: &str = "PasswordChanged";
pub const API_TOKEN_ISSUED: &str = "ApiTokenIssued";
pub const API_TOKEN_REVOKED: &str = "ApiTokenRevoked";
pub const USER_ERASED: &str = "UserErased";
pub const RETENTION_ENDED: &str = "RetentionEnded";
pub const MANAGER_SET: &str = "ManagerSet";
pub const DELEGATION_SET: &str = "DelegationSet";
pub const DELEGATION_ENDED: &str = "DelegationEnded";
pub const SINGLE_SIGN_ON_CONFIGURED: &str = "SingleSignOnConfigured";
pub const SINGLE_SIGN_ON_REMOVED: &str = "SingleSignOnRemoved";
pub const IDENTITY_LINKED: &str = "IdentityLinked";
pub const DEAD_LETTER_RETRIED: &str = "DeadLetterRetried";
pub const DEAD_LETTER_DISCARDED: &str = "DeadLetterDiscarded";

/// Why booking vouchers are kept after their person is erased.
pub const VOUCHER_RETENTION_BASIS: &str =
    "booking voucher: §147 AO, §257 HGB (kept for the retention years after the year it was last changed)";

/// Something of an erased person that the law requires keeping, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// `expense` or `receipt`.
    pub aggregate_type: String,
    pub aggregate_id: Uuid,
    pub basis: String,
    pub until: DateTime<Utc>,
}

/// Version 2 added `default_currency`; version 3 dropped `admin_password_hash` (passwords
/// live in the credentials store). Older payloads are upcast (see `crate::upcast`).
pub const ORGANIZATION_REGISTERED_VERSION: &str = "3.0";
/// Version 2 dropped `password_hash`.
pub const USER_ADDED_VERSION: &str = "2.0";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum OrganizationEvent {
    OrganizationRegistered {
        name: String,
        default_currency: Currency,
        admin_user_id: Uuid,
        admin_name: String,
        admin_email: String,
        registered_at: DateTime<Utc>,
    },
    UserAdded {
        user_id: Uuid,
        name: String,
        email: String,
        role: Role,
        added_at: DateTime<Utc>,
    },
    UserRoleChanged {
        user_id: Uuid,
        role: Role,
        changed_at: DateTime<Utc>,
    },
    UserDeactivated {
        user_id: Uuid,
        deactivated_at: DateTime<Utc>,
    },
    UserReactivated {
        user_id: Uuid,
        reactivated_at: DateTime<Utc>,
    },
    /// The user's password was changed (the new hash is in the credentials store).
    PasswordChanged {
        user_id: Uuid,
        changed_at: DateTime<Utc>,
    },
    /// A personal access token of `user_id` (its secret's hash is kept beside the log).
    ApiTokenIssued {
        token_id: Uuid,
        user_id: Uuid,
        name: String,
        scopes: BTreeSet<TokenScope>,
        expires_at: Option<DateTime<Utc>>,
        issued_at: DateTime<Utc>,
    },
    ApiTokenRevoked {
        token_id: Uuid,
        revoked_at: DateTime<Utc>,
    },
    /// An admin erased the user (GDPR art. 17): their account is closed for good, their
    /// key destroyed, and what is listed in `retained` kept until its date, when the
    /// sweeper ends its retention.
    UserErased {
        user_id: Uuid,
        /// No one: an operator's command line.
        erased_by: Option<Uuid>,
        retained: Vec<Retention>,
        erased_at: DateTime<Utc>,
    },
    /// An admin named the manager whose approval chains' manager steps take the user's
    /// expenses (`None`: no manager any more).
    ManagerSet {
        user_id: Uuid,
        manager_id: Option<Uuid>,
        set_at: DateTime<Utc>,
    },
    /// `user_id` named `delegate_id` to decide for them from `from` to `until` (days,
    /// both included); it replaces an earlier delegation.
    DelegationSet {
        user_id: Uuid,
        delegate_id: Uuid,
        from: NaiveDate,
        until: NaiveDate,
        set_at: DateTime<Utc>,
    },
    DelegationEnded {
        user_id: Uuid,
        ended_at: DateTime<Utc>,
    },
    /// An admin set the OpenID provider the organization's people sign in with (it
    /// replaces earlier settings).
    SingleSignOnConfigured {
        settings: SingleSignOn,
        configured_at: DateTime<Utc>,
    },
    /// An admin turned single sign-on off: passwords are the way in again.
    SingleSignOnRemoved { removed_at: DateTime<Utc> },
    /// The account `subject` of `issuer` signs in as `user_id` from now on.
    IdentityLinked {
        user_id: Uuid,
        issuer: String,
        subject: String,
        linked_at: DateTime<Utc>,
    },
    /// An admin (no actor: an operator's command line) asked `worker` to try an event it
    /// gave up on once more. `event_id` is the event's id in the stream (its aggregate,
    /// id and sequence).
    DeadLetterRetried {
        worker: String,
        event_id: Uuid,
        retried_at: DateTime<Utc>,
    },
    /// An admin (or an operator) set aside for good an event `worker` gave up on.
    DeadLetterDiscarded {
        worker: String,
        event_id: Uuid,
        reason: String,
        discarded_at: DateTime<Utc>,
    },
    /// The retention of something an erased user left ended: it is erased too.
    RetentionEnded {
        user_id: Uuid,
        aggregate_type: String,
        aggregate_id: Uuid,
        ended_at: DateTime<Utc>,
    },
}

impl DomainEvent for OrganizationEvent {
    fn event_type(&self) -> String {
        match self {
            Self::OrganizationRegistered { .. } => ORGANIZATION_REGISTERED,
            Self::UserAdded { .. } => USER_ADDED,
            Self::UserRoleChanged { .. } => USER_ROLE_CHANGED,
            Self::UserDeactivated { .. } => USER_DEACTIVATED,
            Self::UserReactivated { .. } => USER_REACTIVATED,
            Self::PasswordChanged { .. } => PASSWORD_CHANGED,
            Self::ApiTokenIssued { .. } => API_TOKEN_ISSUED,
            Self::ApiTokenRevoked { .. } => API_TOKEN_REVOKED,
            Self::UserErased { .. } => USER_ERASED,
            Self::RetentionEnded { .. } => RETENTION_ENDED,
            Self::ManagerSet { .. } => MANAGER_SET,
            Self::DelegationSet { .. } => DELEGATION_SET,
            Self::DelegationEnded { .. } => DELEGATION_ENDED,
            Self::SingleSignOnConfigured { .. } => SINGLE_SIGN_ON_CONFIGURED,
            Self::SingleSignOnRemoved { .. } => SINGLE_SIGN_ON_REMOVED,
            Self::IdentityLinked { .. } => IDENTITY_LINKED,
            Self::DeadLetterRetried { .. } => DEAD_LETTER_RETRIED,
            Self::DeadLetterDiscarded { .. } => DEAD_LETTER_DISCARDED,
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        match self {
            Self::OrganizationRegistered { .. } => ORGANIZATION_REGISTERED_VERSION,
            Self::UserAdded { .. } => USER_ADDED_VERSION,
            _ => "1.0",
        }
        .to_string()
    }
}
