//! Single sign-on with OpenID Connect (docs/single-sign-on.md): an admin names the
//! organization's issuer; people sign in there, and come back with a code this side
//! trades for an ID token it checks. A first sign-in makes a user (or, when the issuer
//! vouches for the address of an existing member, links that member); later ones find the
//! user by the issuer's `sub`.

use chrono::Utc;
use expensewise_domain::organization::sso::user_id_for;
use expensewise_domain::organization::{NewUser, OrganizationCommand, SingleSignOn};
use expensewise_domain::{validate, Actor, EventMetadata, Organization, Rejection, Role};
use expensewise_infra::event_store::{Committed, Scope};
use expensewise_infra::sso::{
    self as stored, Client, Identity, PendingLogin, RelyingParty, SsoError,
};
use expensewise_infra::EventStore;
use uuid::Uuid;

use super::{claim_email, claim_of, may_manage_users, on_behalf, SignedIn};
use crate::{UseCaseError, UseCaseResult};

/// An organization's settings as an admin sends them.
pub struct Settings {
    pub issuer: String,
    pub client_id: String,
    /// `None` keeps the stored secret while the issuer and client stay the same, and
    /// otherwise makes a public client (PKCE alone).
    pub client_secret: Option<String>,
    pub allowed_domains: Vec<String>,
    pub default_role: Role,
    pub password_sign_in: bool,
}

/// The organization's settings (admins).
pub async fn settings(store: &EventStore, actor: &Actor) -> UseCaseResult<Option<SingleSignOn>> {
    may_manage_users(actor)?;
    let organization: Organization = store.load(&actor.organization_id.to_string()).await?;
    Ok(organization.single_sign_on().cloned())
}

/// An admin sets the organization's issuer. It is asked for its discovery document
/// first: settings that cannot work are refused, and nothing changes.
pub async fn configure(
    store: &EventStore,
    scope: &Scope,
    party: &RelyingParty,
    actor: &Actor,
    metadata: &EventMetadata,
    settings: Settings,
) -> UseCaseResult<Committed<Organization>> {
    may_manage_users(actor)?;
    let organization: Organization = store.load(&actor.organization_id.to_string()).await?;
    let current = organization.single_sign_on();
    let mut wanted = SingleSignOn {
        issuer: settings.issuer,
        client_id: settings.client_id,
        secret_id: None,
        allowed_domains: settings.allowed_domains,
        default_role: settings.default_role,
        password_sign_in: settings.password_sign_in,
    }
    .validated()
    .map_err(|errors| UseCaseError::Rejected(Rejection::Invalid(errors)))?;
    if let Some(secret) = &settings.client_secret {
        if secret.is_empty() || secret.len() > 500 {
            return Err(UseCaseError::invalid(
                "client_secret",
                "must be 1 to 500 characters",
            ));
        }
    }
    party
        .discover(&wanted.issuer)
        .await
        .map_err(|e| UseCaseError::invalid("issuer", e.to_string()))?;
    wanted.secret_id = match settings.client_secret {
        Some(secret) => {
            let id = Uuid::new_v4();
            stored::store_secret(store.database(), id, actor.organization_id, &secret)
                .await
                .map_err(anyhow::Error::from)?;
            Some(id)
        }
        None => current
            .filter(|c| c.issuer == wanted.issuer && c.client_id == wanted.client_id)
            .and_then(|c| c.secret_id),
    };
    let command = OrganizationCommand::ConfigureSingleSignOn {
        actor_id: actor.user_id,
        settings: wanted,
        at: Utc::now(),
    };
    Ok(store
        .execute::<Organization>(scope, &actor.organization_id.to_string(), command, metadata)
        .await?)
}

/// An admin turns single sign-on off.
pub async fn remove(
    store: &EventStore,
    scope: &Scope,
    actor: &Actor,
    metadata: &EventMetadata,
) -> UseCaseResult<Committed<Organization>> {
    may_manage_users(actor)?;
    let command = OrganizationCommand::RemoveSingleSignOn {
        actor_id: actor.user_id,
        at: Utc::now(),
    };
    Ok(store
        .execute::<Organization>(scope, &actor.organization_id.to_string(), command, metadata)
        .await?)
}

/// Where to send someone who signs in to `organization_id`: its issuer's authorization
/// endpoint, with a new sign-in's state, nonce and PKCE challenge.
pub async fn start(
    store: &EventStore,
    party: &RelyingParty,
    organization_id: Uuid,
    redirect_uri: &str,
) -> UseCaseResult<Result<String, SsoError>> {
    let organization: Organization = store.load(&organization_id.to_string()).await?;
    let settings = organization
        .single_sign_on()
        .ok_or_else(|| UseCaseError::not_found("the organization has no single sign-on"))?;
    let login = PendingLogin::new(organization_id, &settings.issuer);
    let url = match party
        .discover(&settings.issuer)
        .await
        .and_then(|discovery| {
            party.authorization_url(&discovery, &settings.client_id, redirect_uri, &login)
        }) {
        Ok(url) => url,
        Err(e) => return Ok(Err(e)),
    };
    stored::begin(store.database(), &login)
        .await
        .map_err(anyhow::Error::from)?;
    Ok(Ok(url))
}

/// How a sign-in that came back ended.
pub enum Finished {
    SignedIn(SignedIn),
    /// Not signed in, and why (the answer is 401).
    Refused(String),
    /// The issuer could not be asked, or answered nonsense (the answer is 502).
    IssuerFailed(String),
}

/// A person back from the issuer with `code` for the sign-in `state` names: signed in
/// if the issuer's ID token proves who they are, and they are (or may become) a user.
pub async fn finish(
    store: &EventStore,
    party: &RelyingParty,
    metadata: &EventMetadata,
    state: &str,
    code: &str,
    redirect_uri: &str,
) -> UseCaseResult<Finished> {
    let Some(login) = stored::take(store.database(), state)
        .await
        .map_err(anyhow::Error::from)?
    else {
        return Ok(Finished::Refused(
            "no sign-in is waiting for this answer: it was used already, took too long, or \
             was never started here"
                .into(),
        ));
    };
    let organization_id = login.organization_id;
    let organization: Organization = store.load(&organization_id.to_string()).await?;
    let Some(settings) = organization
        .single_sign_on()
        .filter(|s| s.issuer == login.issuer)
    else {
        return Ok(Finished::Refused(
            "the organization's single sign-on changed during the sign-in".into(),
        ));
    };
    let secret = match settings.secret_id {
        Some(id) => Some(
            stored::secret(store.database(), id)
                .await
                .map_err(anyhow::Error::from)?
                .ok_or_else(|| anyhow::anyhow!("the client secret {id} is not stored"))?,
        ),
        None => None,
    };
    let client = Client {
        id: &settings.client_id,
        secret: secret.as_deref(),
        redirect_uri,
    };
    let finished = match party.discover(&settings.issuer).await {
        Ok(discovery) => party.finish(&discovery, &client, &login, code).await,
        Err(e) => Err(e),
    };
    let identity = match finished {
        Ok(identity) => identity,
        Err(SsoError::Refused(why)) => return Ok(Finished::Refused(why)),
        Err(SsoError::Issuer(why)) => return Ok(Finished::IssuerFailed(why)),
    };
    let settings = settings.clone();
    // Two first sign-ins of one account race for one user: the loser finds it made.
    let mut organization = organization;
    for _ in 0..3 {
        if let Some(user_id) = organization.identity(&settings.issuer, &identity.subject) {
            return Ok(match organization.member(user_id).filter(|m| m.active) {
                Some(member) => Finished::SignedIn(SignedIn {
                    user_id,
                    organization_id,
                    role: member.role,
                }),
                None => Finished::Refused("the user is deactivated".into()),
            });
        }
        match first_sign_in(
            store,
            metadata,
            &organization,
            organization_id,
            &settings,
            &identity,
        )
        .await
        {
            Ok(()) => {}
            Err(UseCaseError::LostRace) => {}
            Err(UseCaseError::Rejected(rejection)) => {
                return Ok(Finished::Refused(refusal(rejection)))
            }
            Err(other) => return Err(other),
        }
        organization = store.load(&organization_id.to_string()).await?;
    }
    Err(UseCaseError::LostRace)
}

/// Links the member whose address the issuer vouched for, or makes a user in the
/// default role: only with a verified address of an allowed domain.
async fn first_sign_in(
    store: &EventStore,
    metadata: &EventMetadata,
    organization: &Organization,
    organization_id: Uuid,
    settings: &SingleSignOn,
    identity: &Identity,
) -> UseCaseResult<()> {
    let Some(email) = identity
        .email
        .as_deref()
        .filter(|_| identity.email_verified)
        .and_then(|e| validate::email("email", e).ok())
    else {
        return Err(UseCaseError::forbidden(
            "the issuer vouched for no verified e-mail address",
        ));
    };
    if !settings.allows(&email) {
        return Err(UseCaseError::forbidden(format!(
            "{email} is not of a domain the organization lets sign in"
        )));
    }
    let scope = Scope::none();
    let (_, claim) = claim_of(store, &email).await?;
    let member = claim.holder().filter(|holder| {
        holder.organization_id == organization_id && organization.member(holder.user_id).is_some()
    });
    let (user_id, command) = match member {
        Some(holder) => (
            holder.user_id,
            OrganizationCommand::LinkIdentity {
                user_id: holder.user_id,
                issuer: settings.issuer.clone(),
                subject: identity.subject.clone(),
                at: Utc::now(),
            },
        ),
        None => {
            let user_id = user_id_for(organization_id, &settings.issuer, &identity.subject);
            let name = identity
                .name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_string());
            let metadata = on_behalf(metadata, organization_id, user_id);
            claim_email(store, &scope, &metadata, &email, user_id, organization_id).await?;
            let command = OrganizationCommand::JoinBySingleSignOn {
                user: NewUser {
                    user_id,
                    name: name.chars().take(200).collect(),
                    email,
                },
                issuer: settings.issuer.clone(),
                subject: identity.subject.clone(),
                at: Utc::now(),
            };
            (user_id, command)
        }
    };
    store
        .execute::<Organization>(
            &scope,
            &organization_id.to_string(),
            command,
            &on_behalf(metadata, organization_id, user_id),
        )
        .await?;
    Ok(())
}

fn refusal(rejection: Rejection) -> String {
    match rejection {
        Rejection::Forbidden(why) | Rejection::Conflict(why) | Rejection::NotFound(why) => why,
        Rejection::Invalid(fields) => fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => format!("{other:?}"),
    }
}
