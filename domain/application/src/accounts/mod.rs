//! People and their organizations: registering one, signing in, changing one's password,
//! and the users its admins add, promote and deactivate. Each user's e-mail address is
//! claimed (an aggregate of its own) before the user is added, so no two accounts share
//! one. Password hashes go to the credentials store with the event that creates the user
//! or records the change, never into an event.

pub mod erasure;
pub mod passwords;
pub mod sso;
pub mod subject_access;
pub mod tokens;

use chrono::Utc;
use expensewise_domain::email_claim::{self, ClaimEmail, EmailClaim};
use expensewise_domain::organization::{Delegation, Member, NewUser, OrganizationCommand};
use expensewise_domain::{
    validate, Actor, Currency, EventMetadata, FieldError, Organization, Rejection, Role,
};
use expensewise_infra::credentials::{self, Companion, Credential};
use expensewise_infra::event_store::{Committed, Scope};
use expensewise_infra::EventStore;
use uuid::Uuid;

use crate::{UseCaseError, UseCaseResult};

/// A person's name, e-mail address and password as they typed them.
pub struct Person {
    pub name: String,
    pub email: String,
    pub password: String,
}

/// A new organization with its first user, its admin.
pub struct Registration {
    pub organization: String,
    pub admin: Person,
    /// An ISO 4217 code; EUR when `None`.
    pub default_currency: Option<String>,
}

/// A registered organization, and its admin.
pub struct Registered {
    pub organization_id: Uuid,
    pub admin_id: Uuid,
    pub committed: Committed<Organization>,
}

/// Registers an organization and its admin. `metadata` is the request's; the events
/// carry the new organization and admin in it.
pub async fn register(
    store: &EventStore,
    scope: &Scope,
    metadata: &EventMetadata,
    registration: Registration,
) -> UseCaseResult<Registered> {
    // Every problem is named at once, in the order of the form.
    let mut errors: Vec<FieldError> = Vec::new();
    let email = check_email(&registration.admin.email, &mut errors);
    if let Err(e) = validate::required_text("organization", &registration.organization, 200) {
        errors.push(e);
    }
    check_name_and_password(&registration.admin, &mut errors);
    let currency = match registration.default_currency.as_deref() {
        None => Currency::parse("EUR").ok(),
        Some(code) => Currency::parse(code)
            .map_err(|e| errors.push(FieldError::new("default_currency", e.to_string())))
            .ok(),
    };
    let (Some(email), Some(default_currency), true) = (email, currency, errors.is_empty()) else {
        return Err(UseCaseError::Rejected(Rejection::Invalid(errors)));
    };
    let admin = Person {
        email,
        ..registration.admin
    };
    let organization_id = Uuid::new_v4();
    let (admin, credential) = new_user(store, scope, metadata, organization_id, admin).await?;
    let admin_id = admin.user_id;
    let metadata = on_behalf(metadata, organization_id, admin_id);
    let command = OrganizationCommand::RegisterOrganization {
        name: registration.organization,
        default_currency,
        admin,
        at: Utc::now(),
    };
    let committed = store
        .execute_with::<Organization>(
            scope,
            &organization_id.to_string(),
            command,
            &metadata,
            &Companion::Password(credential),
        )
        .await?;
    Ok(Registered {
        organization_id,
        admin_id,
        committed,
    })
}

/// Only admins manage an organization's users.
pub fn may_manage_users(actor: &Actor) -> UseCaseResult<()> {
    if actor.role == Role::Admin {
        Ok(())
    } else {
        Err(UseCaseError::forbidden("only admins manage users"))
    }
}

/// An admin adds a user with `role` to their organization; the new user's id comes
/// with the outcome.
pub async fn add_user(
    store: &EventStore,
    scope: &Scope,
    actor: Actor,
    metadata: &EventMetadata,
    person: Person,
    role: Role,
) -> UseCaseResult<(Uuid, Committed<Organization>)> {
    may_manage_users(&actor)?;
    let mut errors: Vec<FieldError> = Vec::new();
    let email = check_email(&person.email, &mut errors);
    check_name_and_password(&person, &mut errors);
    let (Some(email), true) = (email, errors.is_empty()) else {
        return Err(UseCaseError::Rejected(Rejection::Invalid(errors)));
    };
    let person = Person { email, ..person };
    let organization_id = actor.organization_id;
    let (user, credential) = new_user(store, scope, metadata, organization_id, person).await?;
    let user_id = user.user_id;
    let command = OrganizationCommand::AddUser {
        actor_id: actor.user_id,
        user,
        role,
        at: Utc::now(),
    };
    let committed = store
        .execute_with::<Organization>(
            scope,
            &organization_id.to_string(),
            command,
            metadata,
            &Companion::Password(credential),
        )
        .await?;
    Ok((user_id, committed))
}

/// What an admin changes about a user; `None` leaves it as it is.
pub struct UserChange {
    pub role: Option<Role>,
    pub active: Option<bool>,
    /// `Some(None)` removes the manager.
    pub manager_id: Option<Option<Uuid>>,
}

/// An admin changes a user's role, or deactivates or reactivates them. `organization`
/// is the actor's, as the request was authorized on; the answer is the user as they are
/// afterwards, with the last append (none when nothing changed).
pub async fn change_user(
    store: &EventStore,
    scope: &Scope,
    actor: Actor,
    organization: Organization,
    metadata: &EventMetadata,
    user_id: Uuid,
    change: UserChange,
) -> UseCaseResult<(Member, Option<Committed<Organization>>)> {
    may_manage_users(&actor)?;
    let missing = || UseCaseError::not_found("no such user in this organization");
    if organization.member(user_id).is_none() {
        return Err(missing());
    }
    let (actor_id, at) = (actor.user_id, Utc::now());
    let mut commands = Vec::new();
    if let Some(role) = change.role {
        commands.push(OrganizationCommand::ChangeUserRole {
            actor_id,
            user_id,
            role,
            at,
        });
    }
    match change.active {
        Some(false) => commands.push(OrganizationCommand::DeactivateUser {
            actor_id,
            user_id,
            at,
        }),
        Some(true) => commands.push(OrganizationCommand::ReactivateUser {
            actor_id,
            user_id,
            at,
        }),
        None => {}
    }
    if let Some(manager_id) = change.manager_id {
        commands.push(OrganizationCommand::SetManager {
            actor_id,
            user_id,
            manager_id,
            at,
        });
    }
    let mut organization = organization;
    let mut last = None;
    for command in commands {
        let committed = store
            .execute::<Organization>(scope, &actor.organization_id.to_string(), command, metadata)
            .await?;
        organization = committed.aggregate.clone();
        last = Some(committed);
    }
    let member = organization.member(user_id).cloned().ok_or_else(missing)?;
    Ok((member, last))
}

/// The actor names who decides for them over a period, or (with `None`) ends it.
pub async fn delegate(
    store: &EventStore,
    scope: &Scope,
    actor: Actor,
    metadata: &EventMetadata,
    delegation: Option<Delegation>,
) -> UseCaseResult<Committed<Organization>> {
    let command = OrganizationCommand::Delegate {
        actor_id: actor.user_id,
        delegation,
        at: Utc::now(),
    };
    Ok(store
        .execute::<Organization>(scope, &actor.organization_id.to_string(), command, metadata)
        .await?)
}

/// Who signed in.
pub struct SignedIn {
    pub user_id: Uuid,
    pub organization_id: Uuid,
    pub role: Role,
}

/// The active user with this e-mail address and password, if there is one. Whether the
/// address is unknown or the password wrong is not told apart, and costs the same time.
/// Where the organization turned password sign-in off, the right password is refused.
pub async fn sign_in(
    store: &EventStore,
    email: &str,
    password: String,
) -> UseCaseResult<Option<SignedIn>> {
    if password.chars().count() > passwords::MAX_PASSWORD_CHARS {
        return Ok(None);
    }
    let account = match validate::email("email", email) {
        Err(_) => None,
        Ok(email) => {
            let (_, claim) = claim_of(store, &email).await?;
            match claim.holder() {
                None => None,
                Some(holder) => {
                    let org: Organization = store.load(&holder.organization_id.to_string()).await?;
                    org.member(holder.user_id)
                        .filter(|m| m.active)
                        .cloned()
                        .map(|m| (holder, m, org.password_sign_in()))
                }
            }
        }
    };
    let hash = match &account {
        Some((holder, _, _)) => credentials::password_hash(store.database(), holder.user_id)
            .await
            .map_err(anyhow::Error::from)?,
        None => None,
    };
    let verified = passwords::verify_password(password, hash).await?;
    if let Some((_, _, false)) = account.as_ref().filter(|_| verified) {
        // Told only to whoever knows the password: guessers learn nothing.
        return Err(UseCaseError::forbidden(
            "the organization signs in with single sign-on only: GET \
             /v1/auth/sso/start?organization=<its id>",
        ));
    }
    Ok(match account {
        Some((holder, member, _)) if verified => Some(SignedIn {
            user_id: holder.user_id,
            organization_id: holder.organization_id,
            role: member.role,
        }),
        _ => None,
    })
}

/// A user sets a new password for themselves, having shown the current one.
pub async fn change_password(
    store: &EventStore,
    scope: &Scope,
    actor: &Actor,
    metadata: &EventMetadata,
    current: String,
    new: String,
) -> UseCaseResult<Committed<Organization>> {
    if let Err(e) = passwords::check_password_policy(&new) {
        return Err(UseCaseError::invalid("new_password", e.message));
    }
    let stored = credentials::password_hash(store.database(), actor.user_id)
        .await
        .map_err(anyhow::Error::from)?;
    if current.chars().count() > passwords::MAX_PASSWORD_CHARS
        || !passwords::verify_password(current, stored).await?
    {
        return Err(UseCaseError::invalid(
            "current_password",
            "is not your current password",
        ));
    }
    let credential = Credential {
        user_id: actor.user_id,
        organization_id: actor.organization_id,
        password_hash: passwords::hash_password(new).await?,
    };
    let command = OrganizationCommand::ChangePassword {
        actor_id: actor.user_id,
        at: Utc::now(),
    };
    Ok(store
        .execute_with::<Organization>(
            scope,
            &actor.organization_id.to_string(),
            command,
            metadata,
            &Companion::Password(credential),
        )
        .await?)
}

/// The address in its normal form, or why it is not one.
fn check_email(email: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    validate::email("email", email)
        .map_err(|e| errors.push(e))
        .ok()
}

fn check_name_and_password(person: &Person, errors: &mut Vec<FieldError>) {
    if let Err(e) = validate::required_text("name", &person.name, 200) {
        errors.push(e);
    }
    if let Err(e) = passwords::check_password_policy(&person.password) {
        errors.push(e);
    }
}

/// A new person of `organization_id`, with the e-mail address claimed, ready to be added
/// to the organization, and their hashed password to store with that.
async fn new_user(
    store: &EventStore,
    scope: &Scope,
    metadata: &EventMetadata,
    organization_id: Uuid,
    person: Person,
) -> UseCaseResult<(NewUser, Credential)> {
    let user_id = Uuid::new_v4();
    let password_hash = passwords::hash_password(person.password).await?;
    claim_email(
        store,
        scope,
        metadata,
        &person.email,
        user_id,
        organization_id,
    )
    .await?;
    let credential = Credential {
        user_id,
        organization_id,
        password_hash,
    };
    let user = NewUser {
        user_id,
        name: person.name,
        email: person.email,
    };
    Ok((user, credential))
}

/// Claims `email` for `user_id` so no other account can take it. A claim whose user
/// never came to be (its registration died half-way) is taken over once it is old.
async fn claim_email(
    store: &EventStore,
    scope: &Scope,
    metadata: &EventMetadata,
    email: &str,
    user_id: Uuid,
    organization_id: Uuid,
) -> UseCaseResult<()> {
    let (claim_id, current) = claim_of(store, email).await?;
    let holder_is_missing = match current.holder() {
        None => false,
        Some(holder) => {
            let org: Organization = store.load(&holder.organization_id.to_string()).await?;
            org.member(holder.user_id).is_none()
        }
    };
    let command = ClaimEmail {
        email: email.to_string(),
        user_id,
        organization_id,
        at: Utc::now(),
        holder_is_missing,
    };
    store
        .execute::<EmailClaim>(
            scope,
            &claim_id,
            command.into(),
            &on_behalf(metadata, organization_id, user_id),
        )
        .await?;
    Ok(())
}

/// The expenses `user_id` owns and the receipts they uploaded in `organization_id`, as
/// their read models have them.
pub(crate) async fn theirs(
    store: &EventStore,
    organization_id: Uuid,
    user_id: Uuid,
) -> UseCaseResult<(
    Vec<expensewise_projections::expenses::ExpenseRow>,
    Vec<(Uuid, expensewise_domain::receipt::ReceiptState)>,
)> {
    use expensewise_projections::{expenses, receipts};
    let db = store.database();
    let owned = expenses::ListFilter {
        owner_id: Some(user_id),
        ..Default::default()
    };
    let uploaded = receipts::ReceiptFilter {
        uploader_id: Some(user_id),
        ..Default::default()
    };
    Ok((
        expenses::list_all(db, organization_id, &owned)
            .await
            .map_err(anyhow::Error::from)?,
        receipts::list_all(db, organization_id, &uploaded).await?,
    ))
}

/// The claim of an address and its stream id: the keyed id (`email_claim::claim_id`),
/// unless the address was claimed before ids were keyed — such a claim stays where it
/// was made, so that an address is never claimed twice. The keyed claim is looked at
/// first: a sign-in of an account made since costs one load.
pub(crate) async fn claim_of(
    store: &EventStore,
    email: &str,
) -> UseCaseResult<(String, EmailClaim)> {
    let id = email_claim::claim_id(store.vault().claim_key(), email).to_string();
    let claim: EmailClaim = store.load(&id).await?;
    if claim.holder().is_some() {
        return Ok((id, claim));
    }
    let legacy_id = email_claim::legacy_claim_id(email).to_string();
    let legacy: EmailClaim = store.load(&legacy_id).await?;
    if legacy.holder().is_some() {
        return Ok((legacy_id, legacy));
    }
    Ok((id, claim))
}

/// The request's metadata for events of `organization_id` caused by `user_id` — a
/// registration's organization and admin exist only once it has made them.
fn on_behalf(metadata: &EventMetadata, organization_id: Uuid, user_id: Uuid) -> EventMetadata {
    EventMetadata {
        organization_id,
        actor_id: Some(user_id),
        ..metadata.clone()
    }
}
