//! The Expense-Wise domain: aggregates, their commands and events, and the value types
//! they are made of. Everything here is pure — no I/O, no clock, no randomness — so every
//! decision can be tested as given/when/then. Time and identity arrive inside commands.

pub mod accounting;
pub mod actor;
pub mod audit_log;
pub mod canonical;
pub mod email_claim;
pub mod exchange;
pub mod expense;
pub mod merkle;
pub mod metadata;
pub mod money;
pub mod organization;
pub mod personal;
pub mod policy;
pub mod receipt;
pub mod rejection;
pub mod signed_note;
pub mod upcast;
pub mod validate;
pub mod webhook;

pub use actor::{Actor, Role};
pub use email_claim::EmailClaim;
pub use expense::Expense;
pub use metadata::EventMetadata;
pub use money::{Currency, Money, MoneyError};
pub use organization::Organization;
pub use receipt::Receipt;
pub use rejection::{FieldError, IntoRejection, Rejection};
