use super::ExpenseStatus;
use crate::policy::Violation;
use crate::rejection::{FieldError, IntoRejection, Rejection};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExpenseError {
    #[error("the expense already exists")]
    AlreadyExists,
    #[error("no such expense")]
    NotFound,
    #[error("auditors cannot record expenses")]
    AuditorsCannotRecord,
    #[error("only the owner of the expense may do this")]
    NotOwner,
    #[error("only approvers and admins decide on expenses")]
    NotAnApprover,
    #[error("nobody may decide on their own expense")]
    OwnExpense,
    #[error("this step of the approval chain awaits {0}")]
    NotYourStep(String),
    #[error("nobody approves twice in one approval chain")]
    DecidedBefore,
    #[error("only admins reimburse expenses")]
    NotAnAdmin,
    #[error("only admins and finance export expenses")]
    NotFinance,
    #[error("the expense was exported in batch {0}; export it again deliberately")]
    AlreadyExported(uuid::Uuid),
    #[error("the expense is {0}")]
    WrongStatus(ExpenseStatus),
    #[error("the expense is at version {current}")]
    StaleVersion { current: u64 },
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("the expense breaks the organization's policy")]
    Blocked(Vec<Violation>),
    #[error("the expense breaks rules of the organization's policy that need a justification")]
    Unjustified(Vec<Violation>),
}

impl IntoRejection for ExpenseError {
    fn rejection(&self) -> Rejection {
        match self {
            Self::AlreadyExists | Self::WrongStatus(_) | Self::AlreadyExported(_) => {
                Rejection::Conflict(self.to_string())
            }
            Self::NotFound => Rejection::NotFound(self.to_string()),
            Self::AuditorsCannotRecord
            | Self::NotOwner
            | Self::NotAnApprover
            | Self::OwnExpense
            | Self::NotYourStep(_)
            | Self::DecidedBefore
            | Self::NotAnAdmin
            | Self::NotFinance => Rejection::Forbidden(self.to_string()),
            Self::StaleVersion { current } => Rejection::StaleVersion { current: *current },
            Self::Invalid(fields) => Rejection::Invalid(fields.clone()),
            Self::Blocked(violations) => Rejection::Blocked(violations.clone()),
            Self::Unjustified(violations) => Rejection::Unjustified(violations.clone()),
        }
    }
}
