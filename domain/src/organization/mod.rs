//! An organization and its users: who belongs, in which role, and whether they may still
//! sign in. Users are entities of this aggregate because every rule about them (one
//! active admin at least, e-mails unique in the organization) spans all of them.

mod command;
mod error;
mod event;
pub mod sso;
#[cfg(test)]
mod tests;
mod tokens;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use command::{DeadLetterSettlement, NewUser, OrganizationCommand};
pub use error::OrganizationError;
pub use event::*;
pub use sso::SingleSignOn;
pub use tokens::{ApiToken, TokenScope};

use crate::actor::Role;
use crate::money::Currency;
use crate::rejection::FieldError;
use crate::validate;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    pub email: String,
    pub role: Role,
    pub active: bool,
    /// Set once the user is erased (snapshots from before erasure have none).
    #[serde(default)]
    pub erasure: Option<Erasure>,
    /// Whose manager steps of approval chains take this user's expenses.
    #[serde(default)]
    pub manager_id: Option<Uuid>,
    /// Who decides for this user while they are away.
    #[serde(default)]
    pub delegation: Option<Delegation>,
}

/// A user's decisions taken by `delegate_id` from `from` to `until` (both included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    pub delegate_id: Uuid,
    pub from: NaiveDate,
    pub until: NaiveDate,
}

impl Delegation {
    pub fn covers(&self, day: NaiveDate) -> bool {
        self.from <= day && day <= self.until
    }
}

/// How a user was erased, and what of theirs is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Erasure {
    pub erased_by: Option<Uuid>,
    pub erased_at: DateTime<Utc>,
    pub retained: Vec<Retained>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retained {
    pub retention: Retention,
    /// When the sweeper ended it.
    pub ended_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    registered: bool,
    name: String,
    default_currency: Option<Currency>,
    members: BTreeMap<Uuid, Member>,
    /// Personal access tokens by id (snapshots from before tokens have none).
    #[serde(default)]
    tokens: BTreeMap<Uuid, ApiToken>,
    #[serde(default)]
    single_sign_on: Option<SingleSignOn>,
    /// Users by their accounts at issuers (`sso::identity_key`).
    #[serde(default)]
    identities: BTreeMap<String, Uuid>,
    /// The number of events applied: the version clients see as `ETag`.
    version: u64,
}

pub const AGGREGATE_TYPE: &str = "organization";

impl Organization {
    pub fn exists(&self) -> bool {
        self.registered
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn default_currency(&self) -> Option<Currency> {
        self.default_currency
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn member(&self, user_id: Uuid) -> Option<&Member> {
        self.members.get(&user_id)
    }

    pub fn members(&self) -> impl Iterator<Item = (&Uuid, &Member)> {
        self.members.iter()
    }

    pub fn token(&self, token_id: Uuid) -> Option<&ApiToken> {
        self.tokens.get(&token_id)
    }

    pub fn tokens(&self) -> impl Iterator<Item = (&Uuid, &ApiToken)> {
        self.tokens.iter()
    }

    pub fn single_sign_on(&self) -> Option<&SingleSignOn> {
        self.single_sign_on.as_ref()
    }

    /// Whether members may sign in with a password (single sign-on can turn it off).
    pub fn password_sign_in(&self) -> bool {
        self.single_sign_on
            .as_ref()
            .is_none_or(|s| s.password_sign_in)
    }

    /// The user the account `subject` of `issuer` signs in as, once linked.
    pub fn identity(&self, issuer: &str, subject: &str) -> Option<Uuid> {
        self.identities
            .get(&sso::identity_key(issuer, subject))
            .copied()
    }

    /// The organization's issuer, when it is `issuer`.
    fn issuer(&self, issuer: &str) -> Result<&SingleSignOn, OrganizationError> {
        if !self.registered {
            return Err(OrganizationError::NotFound);
        }
        self.single_sign_on
            .as_ref()
            .filter(|s| s.issuer == issuer)
            .ok_or(OrganizationError::NoSingleSignOn)
    }

    /// The member's role if they may act at all: present and active.
    pub fn active_role(&self, user_id: Uuid) -> Option<Role> {
        self.members
            .get(&user_id)
            .filter(|m| m.active)
            .map(|m| m.role)
    }

    /// The active members `delegate` decides for on `day`, with their roles.
    pub fn delegators_of(&self, delegate: Uuid, day: NaiveDate) -> Vec<(Uuid, Role)> {
        self.members
            .iter()
            .filter(|(_, m)| m.active)
            .filter(|(_, m)| {
                m.delegation
                    .as_ref()
                    .is_some_and(|d| d.delegate_id == delegate && d.covers(day))
            })
            .map(|(id, m)| (*id, m.role))
            .collect()
    }

    /// `user_id`'s membership, for an active admin `actor_id` to change.
    fn managed_member(&self, actor_id: Uuid, user_id: Uuid) -> Result<&Member, OrganizationError> {
        self.require_admin(actor_id)?;
        self.members
            .get(&user_id)
            .ok_or(OrganizationError::UserNotFound)
    }

    fn require_admin(&self, actor_id: Uuid) -> Result<(), OrganizationError> {
        if !self.registered {
            return Err(OrganizationError::NotFound);
        }
        match self.active_role(actor_id) {
            Some(Role::Admin) => Ok(()),
            _ => Err(OrganizationError::NotAnAdmin),
        }
    }

    /// The role of `actor_id`, an active member acting for themselves.
    fn acting_member(&self, actor_id: Uuid) -> Result<Role, OrganizationError> {
        if !self.registered {
            return Err(OrganizationError::NotFound);
        }
        self.active_role(actor_id)
            .ok_or(OrganizationError::UserNotFound)
    }

    fn active_admins_without(&self, user_id: Uuid) -> usize {
        self.members
            .iter()
            .filter(|(id, m)| **id != user_id && m.active && m.role == Role::Admin)
            .count()
    }

    fn validate_new_user(&self, user: &NewUser) -> Result<(String, String), OrganizationError> {
        let mut errors = Vec::new();
        let name = validate::required_text("name", &user.name, 200).map_err(|e| errors.push(e));
        let email = validate::email("email", &user.email).map_err(|e| errors.push(e));
        match (name, email) {
            (Ok(name), Ok(email)) if errors.is_empty() => {
                if self.members.values().any(|m| m.email == email) {
                    return Err(OrganizationError::EmailInUse);
                }
                Ok((name, email))
            }
            _ => Err(OrganizationError::Invalid(errors)),
        }
    }
}

impl Aggregate for Organization {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = OrganizationCommand;
    type Event = OrganizationEvent;
    type Error = OrganizationError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            OrganizationCommand::RegisterOrganization {
                name,
                default_currency,
                admin,
                at,
            } => {
                if self.registered {
                    return Err(OrganizationError::AlreadyRegistered);
                }
                let org_name = validate::required_text("organization", &name, 200);
                let admin_fields = self.validate_new_user(&admin);
                let (org_name, (admin_name, admin_email)) = match (org_name, admin_fields) {
                    (Ok(n), Ok(a)) => (n, a),
                    (org, admin) => {
                        let mut errors: Vec<FieldError> = org.err().into_iter().collect();
                        if let Err(OrganizationError::Invalid(more)) = admin {
                            errors.extend(more);
                        }
                        return Err(OrganizationError::Invalid(errors));
                    }
                };
                let event = OrganizationEvent::OrganizationRegistered {
                    name: org_name,
                    default_currency,
                    admin_user_id: admin.user_id,
                    admin_name,
                    admin_email,
                    registered_at: at,
                };
                sink.write(event, self).await;
            }
            OrganizationCommand::AddUser {
                actor_id,
                user,
                role,
                at,
            } => {
                self.require_admin(actor_id)?;
                if self.members.contains_key(&user.user_id) {
                    return Err(OrganizationError::EmailInUse);
                }
                let (name, email) = self.validate_new_user(&user)?;
                let event = OrganizationEvent::UserAdded {
                    user_id: user.user_id,
                    name,
                    email,
                    role,
                    added_at: at,
                };
                sink.write(event, self).await;
            }
            OrganizationCommand::ChangeUserRole {
                actor_id,
                user_id,
                role,
                at,
            } => {
                let member = self.managed_member(actor_id, user_id)?;
                if member.role == role {
                    return Ok(());
                }
                if member.erasure.is_some() {
                    return Err(OrganizationError::Erased);
                }
                if member.role == Role::Admin && self.active_admins_without(user_id) == 0 {
                    return Err(OrganizationError::LastAdmin);
                }
                if actor_id == user_id {
                    return Err(OrganizationError::OwnAccount);
                }
                let event = OrganizationEvent::UserRoleChanged {
                    user_id,
                    role,
                    changed_at: at,
                };
                sink.write(event, self).await;
            }
            OrganizationCommand::DeactivateUser {
                actor_id,
                user_id,
                at,
            } => {
                let member = self.managed_member(actor_id, user_id)?;
                if !member.active {
                    return Ok(());
                }
                if member.role == Role::Admin && self.active_admins_without(user_id) == 0 {
                    return Err(OrganizationError::LastAdmin);
                }
                if actor_id == user_id {
                    return Err(OrganizationError::OwnAccount);
                }
                let event = OrganizationEvent::UserDeactivated {
                    user_id,
                    deactivated_at: at,
                };
                sink.write(event, self).await;
            }
            OrganizationCommand::ReactivateUser {
                actor_id,
                user_id,
                at,
            } => {
                let member = self.managed_member(actor_id, user_id)?;
                if member.active {
                    return Ok(());
                }
                if member.erasure.is_some() {
                    return Err(OrganizationError::Erased);
                }
                let event = OrganizationEvent::UserReactivated {
                    user_id,
                    reactivated_at: at,
                };
                sink.write(event, self).await;
            }
            OrganizationCommand::IssueToken {
                actor_id,
                token_id,
                name,
                scopes,
                expires_at,
                at,
            } => {
                let role = self.acting_member(actor_id)?;
                if self.tokens.contains_key(&token_id) {
                    return Err(OrganizationError::TokenExists);
                }
                let mut errors = Vec::new();
                let name = validate::required_text("name", &name, 100).map_err(|e| errors.push(e));
                if scopes.is_empty() {
                    errors.push(FieldError::new("scopes", "name at least one scope"));
                }
                if scopes.contains(&TokenScope::Admin) && role != Role::Admin {
                    errors.push(FieldError::new(
                        "scopes",
                        "only admins may give a token the admin scope",
                    ));
                }
                if expires_at.is_some_and(|expiry| expiry <= at) {
                    errors.push(FieldError::new("expires_at", "must be in the future"));
                }
                let (Ok(name), true) = (name, errors.is_empty()) else {
                    return Err(OrganizationError::Invalid(errors));
                };
                let event = OrganizationEvent::ApiTokenIssued {
                    token_id,
                    user_id: actor_id,
                    name,
                    scopes,
                    expires_at,
                    issued_at: at,
                };
                sink.write(event, self).await;
            }
            OrganizationCommand::RevokeToken {
                actor_id,
                token_id,
                at,
            } => {
                let role = self.acting_member(actor_id)?;
                let token = self
                    .tokens
                    .get(&token_id)
                    .ok_or(OrganizationError::TokenNotFound)?;
                if token.user_id != actor_id && role != Role::Admin {
                    return Err(OrganizationError::TokenNotFound);
                }
                if token.revoked {
                    return Ok(());
                }
                let event = OrganizationEvent::ApiTokenRevoked {
                    token_id,
                    revoked_at: at,
                };
                sink.write(event, self).await;
            }
            OrganizationCommand::EraseUser {
                actor_id,
                user_id,
                retained,
                at,
            } => {
                match actor_id {
                    Some(actor_id) => self.require_admin(actor_id)?,
                    None if !self.registered => return Err(OrganizationError::NotFound),
                    None => {}
                }
                let member = self
                    .members
                    .get(&user_id)
                    .ok_or(OrganizationError::UserNotFound)?;
                if member.erasure.is_some() {
                    return Ok(());
                }
                if member.active
                    && member.role == Role::Admin
                    && self.active_admins_without(user_id) == 0
                {
                    return Err(OrganizationError::LastAdmin);
                }
                if actor_id == Some(user_id) {
                    return Err(OrganizationError::OwnAccount);
                }
                let event = OrganizationEvent::UserErased {
                    user_id,
                    erased_by: actor_id,
                    retained,
                    erased_at: at,
                };
                sink.write(event, self).await;
            }
            OrganizationCommand::EndRetention {
                user_id,
                aggregate_type,
                aggregate_id,
                at,
            } => {
                let pending = self
                    .members
                    .get(&user_id)
                    .and_then(|m| m.erasure.as_ref())
                    .is_some_and(|e| {
                        e.retained.iter().any(|r| {
                            r.ended_at.is_none()
                                && r.retention.aggregate_type == aggregate_type
                                && r.retention.aggregate_id == aggregate_id
                        })
                    });
                if !pending {
                    return Ok(());
                }
                let event = OrganizationEvent::RetentionEnded {
                    user_id,
                    aggregate_type,
                    aggregate_id,
                    ended_at: at,
                };
                sink.write(event, self).await;
            }
            OrganizationCommand::SetManager {
                actor_id,
                user_id,
                manager_id,
                at,
            } => {
                let member = self.managed_member(actor_id, user_id)?;
                if member.manager_id == manager_id {
                    return Ok(());
                }
                if let Some(manager) = manager_id {
                    let fit = manager != user_id
                        && self
                            .active_role(manager)
                            .is_some_and(|r| r != Role::Auditor);
                    if !fit {
                        return Err(OrganizationError::Invalid(vec![FieldError::new(
                            "manager_id",
                            "must be another active member of the organization, not an auditor",
                        )]));
                    }
                }
                let event = OrganizationEvent::ManagerSet {
                    user_id,
                    manager_id,
                    set_at: at,
                };
                sink.write(event, self).await;
            }
            OrganizationCommand::Delegate {
                actor_id,
                delegation,
                at,
            } => {
                let role = self.acting_member(actor_id)?;
                let Some(delegation) = delegation else {
                    let current = self
                        .members
                        .get(&actor_id)
                        .and_then(|m| m.delegation.as_ref());
                    if current.is_none() {
                        return Ok(());
                    }
                    let event = OrganizationEvent::DelegationEnded {
                        user_id: actor_id,
                        ended_at: at,
                    };
                    sink.write(event, self).await;
                    return Ok(());
                };
                let manages = self
                    .members
                    .values()
                    .any(|m| m.manager_id == Some(actor_id));
                if !role.may_decide() && !manages {
                    return Err(OrganizationError::Invalid(vec![FieldError::new(
                        "delegate_id",
                        "only people who approve (approvers, finance, admins, managers) delegate",
                    )]));
                }
                let mut errors = Vec::new();
                let fit = delegation.delegate_id != actor_id
                    && self
                        .active_role(delegation.delegate_id)
                        .is_some_and(|r| r != Role::Auditor);
                if !fit {
                    errors.push(FieldError::new(
                        "delegate_id",
                        "must be another active member of the organization, not an auditor",
                    ));
                }
                if delegation.until < delegation.from {
                    errors.push(FieldError::new("until", "must not be before `from`"));
                }
                if delegation.until < at.date_naive() {
                    errors.push(FieldError::new("until", "must not be in the past"));
                }
                if !errors.is_empty() {
                    return Err(OrganizationError::Invalid(errors));
                }
                let event = OrganizationEvent::DelegationSet {
                    user_id: actor_id,
                    delegate_id: delegation.delegate_id,
                    from: delegation.from,
                    until: delegation.until,
                    set_at: at,
                };
                sink.write(event, self).await;
            }
            OrganizationCommand::ConfigureSingleSignOn {
                actor_id,
                settings,
                at,
            } => {
                self.require_admin(actor_id)?;
                let settings = settings.validated().map_err(OrganizationError::Invalid)?;
                if self.single_sign_on.as_ref() == Some(&settings) {
                    return Ok(());
                }
                let event = OrganizationEvent::SingleSignOnConfigured {
                    settings,
                    configured_at: at,
                };
                sink.write(event, self).await;
            }
            OrganizationCommand::SettleDeadLetter {
                actor_id,
                worker,
                event_id,
                settlement,
                at,
            } => {
                if let Some(actor_id) = actor_id {
                    self.require_admin(actor_id)?;
                }
                let event = match settlement {
                    DeadLetterSettlement::Retry => OrganizationEvent::DeadLetterRetried {
                        worker,
                        event_id,
                        retried_at: at,
                    },
                    DeadLetterSettlement::Discard { reason } => {
                        OrganizationEvent::DeadLetterDiscarded {
                            worker,
                            event_id,
                            reason,
                            discarded_at: at,
                        }
                    }
                };
                sink.write(event, self).await;
            }
            OrganizationCommand::RemoveSingleSignOn { actor_id, at } => {
                self.require_admin(actor_id)?;
                if self.single_sign_on.is_none() {
                    return Ok(());
                }
                let event = OrganizationEvent::SingleSignOnRemoved { removed_at: at };
                sink.write(event, self).await;
            }
            OrganizationCommand::JoinBySingleSignOn {
                user,
                issuer,
                subject,
                at,
            } => {
                let settings = self.issuer(&issuer)?;
                if let Some(linked) = self.identity(&issuer, &subject) {
                    // A first sign-in that raced another of the same account: one user.
                    return if linked == user.user_id {
                        Ok(())
                    } else {
                        Err(OrganizationError::IdentityTaken)
                    };
                }
                if self.members.contains_key(&user.user_id) {
                    return Err(OrganizationError::EmailInUse);
                }
                let role = settings.default_role;
                let (name, email) = self.validate_new_user(&user)?;
                if !settings.allows(&email) {
                    return Err(OrganizationError::DomainNotAllowed);
                }
                let added = OrganizationEvent::UserAdded {
                    user_id: user.user_id,
                    name,
                    email,
                    role,
                    added_at: at,
                };
                let linked = OrganizationEvent::IdentityLinked {
                    user_id: user.user_id,
                    issuer,
                    subject,
                    linked_at: at,
                };
                sink.write(added, self).await;
                sink.write(linked, self).await;
            }
            OrganizationCommand::LinkIdentity {
                user_id,
                issuer,
                subject,
                at,
            } => {
                let settings = self.issuer(&issuer)?;
                let member = self
                    .members
                    .get(&user_id)
                    .ok_or(OrganizationError::UserNotFound)?;
                if member.erasure.is_some() {
                    return Err(OrganizationError::Erased);
                }
                if !settings.allows(&member.email) {
                    return Err(OrganizationError::DomainNotAllowed);
                }
                match self.identity(&issuer, &subject) {
                    Some(linked) if linked == user_id => return Ok(()),
                    Some(_) => return Err(OrganizationError::IdentityTaken),
                    None => {}
                }
                let prefix = sso::identity_key(&issuer, "");
                let other = self
                    .identities
                    .iter()
                    .any(|(key, id)| *id == user_id && key.starts_with(&prefix));
                if other {
                    return Err(OrganizationError::IdentityTaken);
                }
                let event = OrganizationEvent::IdentityLinked {
                    user_id,
                    issuer,
                    subject,
                    linked_at: at,
                };
                sink.write(event, self).await;
            }
            OrganizationCommand::ChangePassword { actor_id, at } => {
                self.acting_member(actor_id)?;
                let event = OrganizationEvent::PasswordChanged {
                    user_id: actor_id,
                    changed_at: at,
                };
                sink.write(event, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.version += 1;
        match event {
            OrganizationEvent::OrganizationRegistered {
                name,
                default_currency,
                admin_user_id,
                admin_name,
                admin_email,
                ..
            } => {
                self.registered = true;
                self.name = name;
                self.default_currency = Some(default_currency);
                self.members.insert(
                    admin_user_id,
                    Member {
                        name: admin_name,
                        email: admin_email,
                        role: Role::Admin,
                        active: true,
                        erasure: None,
                        manager_id: None,
                        delegation: None,
                    },
                );
            }
            OrganizationEvent::UserAdded {
                user_id,
                name,
                email,
                role,
                ..
            } => {
                self.members.insert(
                    user_id,
                    Member {
                        name,
                        email,
                        role,
                        active: true,
                        erasure: None,
                        manager_id: None,
                        delegation: None,
                    },
                );
            }
            OrganizationEvent::UserRoleChanged { user_id, role, .. } => {
                if let Some(m) = self.members.get_mut(&user_id) {
                    m.role = role;
                }
            }
            OrganizationEvent::UserDeactivated { user_id, .. } => {
                if let Some(m) = self.members.get_mut(&user_id) {
                    m.active = false;
                }
            }
            OrganizationEvent::UserReactivated { user_id, .. } => {
                if let Some(m) = self.members.get_mut(&user_id) {
                    m.active = true;
                }
            }
            OrganizationEvent::PasswordChanged { .. } => {}
            OrganizationEvent::ManagerSet {
                user_id,
                manager_id,
                ..
            } => {
                if let Some(m) = self.members.get_mut(&user_id) {
                    m.manager_id = manager_id;
                }
            }
            OrganizationEvent::DelegationSet {
                user_id,
                delegate_id,
                from,
                until,
                ..
            } => {
                if let Some(m) = self.members.get_mut(&user_id) {
                    m.delegation = Some(Delegation {
                        delegate_id,
                        from,
                        until,
                    });
                }
            }
            OrganizationEvent::DelegationEnded { user_id, .. } => {
                if let Some(m) = self.members.get_mut(&user_id) {
                    m.delegation = None;
                }
            }
            OrganizationEvent::ApiTokenIssued {
                token_id,
                user_id,
                name,
                scopes,
                expires_at,
                issued_at,
            } => {
                self.tokens.insert(
                    token_id,
                    ApiToken {
                        user_id,
                        name,
                        scopes,
                        expires_at,
                        issued_at,
                        revoked: false,
                    },
                );
            }
            OrganizationEvent::ApiTokenRevoked { token_id, .. } => {
                if let Some(token) = self.tokens.get_mut(&token_id) {
                    token.revoked = true;
                }
            }
            OrganizationEvent::UserErased {
                user_id,
                erased_by,
                retained,
                erased_at,
            } => {
                // What the destroyed key sealed reads erased from now on: so does this
                // aggregate, in memory and in the snapshots made of it.
                if let Some(m) = self.members.get_mut(&user_id) {
                    m.active = false;
                    m.name = crate::personal::ERASED.to_string();
                    m.email = crate::personal::ERASED.to_string();
                    m.erasure = Some(Erasure {
                        erased_by,
                        erased_at,
                        retained: retained
                            .into_iter()
                            .map(|retention| Retained {
                                retention,
                                ended_at: None,
                            })
                            .collect(),
                    });
                }
                for token in self.tokens.values_mut().filter(|t| t.user_id == user_id) {
                    token.revoked = true;
                    token.name = crate::personal::ERASED.to_string();
                }
            }
            OrganizationEvent::SingleSignOnConfigured { settings, .. } => {
                self.single_sign_on = Some(settings);
            }
            OrganizationEvent::SingleSignOnRemoved { .. } => {
                self.single_sign_on = None;
            }
            OrganizationEvent::IdentityLinked {
                user_id,
                issuer,
                subject,
                ..
            } => {
                self.identities
                    .insert(sso::identity_key(&issuer, &subject), user_id);
            }
            // Dead letters are kept by the workers' store; the events are their audit trail.
            OrganizationEvent::DeadLetterRetried { .. }
            | OrganizationEvent::DeadLetterDiscarded { .. } => {}
            OrganizationEvent::RetentionEnded {
                user_id,
                aggregate_type,
                aggregate_id,
                ended_at,
            } => {
                let erasure = self
                    .members
                    .get_mut(&user_id)
                    .and_then(|m| m.erasure.as_mut());
                if let Some(erasure) = erasure {
                    for r in erasure.retained.iter_mut().filter(|r| {
                        r.retention.aggregate_type == aggregate_type
                            && r.retention.aggregate_id == aggregate_id
                    }) {
                        r.ended_at = Some(ended_at);
                    }
                }
            }
        }
    }
}
