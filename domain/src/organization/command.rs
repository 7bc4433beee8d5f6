use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{SingleSignOn, TokenScope};
use crate::actor::Role;
use crate::money::Currency;

/// A person to add to an organization. Their password is not part of it: it is hashed
/// and kept in the credentials store, beside the events and never in them.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUser {
    pub user_id: Uuid,
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OrganizationCommand {
    /// Creates the organization with `admin` as its first user, in role admin.
    RegisterOrganization {
        name: String,
        default_currency: Currency,
        admin: NewUser,
        at: DateTime<Utc>,
    },
    AddUser {
        actor_id: Uuid,
        user: NewUser,
        role: Role,
        at: DateTime<Utc>,
    },
    ChangeUserRole {
        actor_id: Uuid,
        user_id: Uuid,
        role: Role,
        at: DateTime<Utc>,
    },
    DeactivateUser {
        actor_id: Uuid,
        user_id: Uuid,
        at: DateTime<Utc>,
    },
    ReactivateUser {
        actor_id: Uuid,
        user_id: Uuid,
        at: DateTime<Utc>,
    },
    /// A user sets a new password for themselves (the caller has checked the current
    /// one); the event says only that it changed.
    ChangePassword {
        actor_id: Uuid,
        at: DateTime<Utc>,
    },
    /// A user gives a program a personal access token of their own (its secret is made
    /// and kept outside the domain).
    IssueToken {
        actor_id: Uuid,
        token_id: Uuid,
        name: String,
        scopes: BTreeSet<TokenScope>,
        expires_at: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    },
    /// An admin (or, with no actor, an operator's command line) erases a user, keeping
    /// `retained` as the law requires.
    EraseUser {
        actor_id: Option<Uuid>,
        user_id: Uuid,
        retained: Vec<super::Retention>,
        at: DateTime<Utc>,
    },
    /// The sweeper ends the retention of something an erased user left.
    EndRetention {
        user_id: Uuid,
        aggregate_type: String,
        aggregate_id: Uuid,
        at: DateTime<Utc>,
    },
    /// An admin names (or, with `None`, removes) the manager of `user_id`.
    SetManager {
        actor_id: Uuid,
        user_id: Uuid,
        manager_id: Option<Uuid>,
        at: DateTime<Utc>,
    },
    /// Someone who approves names who decides for them over a period (`None` ends it).
    Delegate {
        actor_id: Uuid,
        delegation: Option<super::Delegation>,
        at: DateTime<Utc>,
    },
    /// The token's owner, or an admin, revokes it.
    RevokeToken {
        actor_id: Uuid,
        token_id: Uuid,
        at: DateTime<Utc>,
    },
    /// An admin sets the organization's single sign-on (its secret, if any, is kept
    /// outside the domain).
    ConfigureSingleSignOn {
        actor_id: Uuid,
        settings: SingleSignOn,
        at: DateTime<Utc>,
    },
    RemoveSingleSignOn {
        actor_id: Uuid,
        at: DateTime<Utc>,
    },
    /// Someone the organization's issuer vouched for signs in for the first time: they
    /// become a user in the default role, linked to their account there. `user.user_id`
    /// is `sso::user_id_for` the account.
    JoinBySingleSignOn {
        user: NewUser,
        issuer: String,
        subject: String,
        at: DateTime<Utc>,
    },
    /// A member signs in through the issuer for the first time (the issuer vouched for
    /// their address): their account there is theirs from now on.
    LinkIdentity {
        user_id: Uuid,
        issuer: String,
        subject: String,
        at: DateTime<Utc>,
    },
    /// An admin (with no actor, an operator's command line) settles an event a worker
    /// gave up on: try it again, or set it aside.
    SettleDeadLetter {
        actor_id: Option<Uuid>,
        worker: String,
        event_id: Uuid,
        settlement: DeadLetterSettlement,
        at: DateTime<Utc>,
    },
}

/// What becomes of a dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterSettlement {
    Retry,
    Discard { reason: String },
}
