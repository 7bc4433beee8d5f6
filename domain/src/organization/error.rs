use crate::rejection::{FieldError, IntoRejection, Rejection};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OrganizationError {
    #[error("the organization already exists")]
    AlreadyRegistered,
    #[error("no such organization")]
    NotFound,
    #[error("no such user in this organization")]
    UserNotFound,
    #[error("only an active admin of the organization may do this")]
    NotAnAdmin,
    #[error("a user with this e-mail address already belongs to the organization")]
    EmailInUse,
    #[error("the organization needs at least one active admin")]
    LastAdmin,
    #[error("an admin does not demote, deactivate or erase themselves: another admin does")]
    OwnAccount,
    #[error("no such token")]
    TokenNotFound,
    #[error("a token with this id exists")]
    TokenExists,
    #[error("the user was erased: their account cannot be opened again")]
    Erased,
    #[error("single sign-on with this issuer is not set up for the organization")]
    NoSingleSignOn,
    #[error("the address's domain is not one the organization lets sign in")]
    DomainNotAllowed,
    #[error("the user is linked to another account of the issuer")]
    IdentityTaken,
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
}

impl IntoRejection for OrganizationError {
    fn rejection(&self) -> Rejection {
        match self {
            Self::AlreadyRegistered
            | Self::EmailInUse
            | Self::LastAdmin
            | Self::TokenExists
            | Self::Erased
            | Self::IdentityTaken => Rejection::Conflict(self.to_string()),
            Self::NotFound | Self::UserNotFound | Self::TokenNotFound => {
                Rejection::NotFound(self.to_string())
            }
            Self::NotAnAdmin | Self::OwnAccount | Self::NoSingleSignOn | Self::DomainNotAllowed => {
                Rejection::Forbidden(self.to_string())
            }
            Self::Invalid(fields) => Rejection::Invalid(fields.clone()),
        }
    }
}
