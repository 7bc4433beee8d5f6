//! Single sign-on: the OpenID provider an organization's people sign in with, which
//! e-mail domains it vouches for, and which of its accounts (`sub`) is which user.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::actor::Role;
use crate::rejection::FieldError;

/// An organization's OpenID Connect settings. The client secret is not among them: it
/// is kept beside the log (`secret_id` names it), like passwords.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SingleSignOn {
    /// The issuer's identifier, exactly as its ID tokens' `iss` says it.
    pub issuer: String,
    pub client_id: String,
    /// `None`: a public client, which proves itself with PKCE alone.
    pub secret_id: Option<Uuid>,
    /// Lower case; a first sign-in must come with a verified address in one of them.
    pub allowed_domains: Vec<String>,
    /// The role of users created by their first sign-in.
    pub default_role: Role,
    /// Whether members may still sign in with a password.
    pub password_sign_in: bool,
}

impl SingleSignOn {
    /// The settings with domains in their normal form, or every problem with them.
    pub fn validated(self) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        if !(self.issuer.starts_with("https://") || self.issuer.starts_with("http://"))
            || self.issuer.len() > 500
            || url::Url::parse(&self.issuer).is_err()
        {
            errors.push(FieldError::new(
                "issuer",
                "must be the issuer's URL (at most 500 characters)",
            ));
        }
        let client_id = self.client_id.trim();
        if client_id.is_empty() || client_id.len() > 200 {
            errors.push(FieldError::new("client_id", "must be 1 to 200 characters"));
        }
        let mut domains: Vec<String> = Vec::new();
        for domain in &self.allowed_domains {
            let domain = domain.trim().trim_start_matches('@').to_ascii_lowercase();
            if !is_domain(&domain) {
                errors.push(FieldError::new(
                    "allowed_domains",
                    format!("'{domain}' is not a domain name"),
                ));
            } else if !domains.contains(&domain) {
                domains.push(domain);
            }
        }
        if self.allowed_domains.is_empty() || self.allowed_domains.len() > 50 {
            errors.push(FieldError::new(
                "allowed_domains",
                "name 1 to 50 domains whose addresses may sign in",
            ));
        }
        if self.default_role == Role::Admin {
            errors.push(FieldError::new(
                "default_role",
                "a first sign-in never makes an admin: choose another role",
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            client_id: client_id.to_string(),
            allowed_domains: domains,
            ..self
        })
    }

    /// Whether a (lower-case) address is of an allowed domain.
    pub fn allows(&self, email: &str) -> bool {
        email
            .rsplit_once('@')
            .is_some_and(|(_, domain)| self.allowed_domains.iter().any(|d| d == domain))
    }
}

fn is_domain(text: &str) -> bool {
    text.len() <= 253
        && text.contains('.')
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The key of an account at an issuer, in the aggregate's map of identities.
pub(super) fn identity_key(issuer: &str, subject: &str) -> String {
    format!("{issuer}\u{0}{subject}")
}

/// The user a first sign-in creates: the same for the same account however often it
/// races itself, so two first sign-ins make one user.
pub fn user_id_for(organization_id: Uuid, issuer: &str, subject: &str) -> Uuid {
    const NAMESPACE: Uuid = Uuid::from_u128(0x2b9e_51c7_0d3a_4e8f_b6a1_93c5_7e20_d4f8);
    Uuid::new_v5(
        &NAMESPACE,
        format!("{organization_id}\u{0}{issuer}\u{0}{subject}").as_bytes(),
    )
}
