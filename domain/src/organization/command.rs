use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::PasswordHash;
use crate::actor::Role;
use crate::money::Currency;

/// A person to add to an organization. The password arrives already hashed: hashing is
/// slow, salted and random, which a pure decision must not be.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUser {
    pub user_id: Uuid,
    pub name: String,
    pub email: String,
    pub password_hash: PasswordHash,
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
}
