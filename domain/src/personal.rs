//! Which fields of the events are personal data, and whose (docs/personal-data.md).
//!
//! The event log is kept forever; a person's right to erasure is honoured by encrypting
//! these fields with a key of the person they are about (the data subject) and
//! destroying that key. What is here is the one list every adapter works from: the
//! event store seals these fields on the way in and opens them on the way out, and an
//! erased person's fields then read as [`ERASED`].

use uuid::Uuid;

use crate::email_claim::EMAIL_CLAIMED;
use crate::expense::{
    Expense, EXPENSE_APPROVED, EXPENSE_CREATED, EXPENSE_REJECTED, EXPENSE_STEP_APPROVED,
    EXPENSE_SUBMITTED, EXPENSE_UPDATED,
};
use crate::organization::{API_TOKEN_ISSUED, IDENTITY_LINKED, ORGANIZATION_REGISTERED, USER_ADDED};
use crate::receipt::{
    Receipt, RECEIPT_LEGAL_HOLD_SET, RECEIPT_SCANNED, RECEIPT_SENT_TO_REVIEW, RECEIPT_UPLOADED,
};

/// What a personal field reads as once its subject's key is destroyed.
pub const ERASED: &str = "[erased]";

/// Whose personal data an event's fields are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The person named by this field of the event (a user id).
    Field(&'static str),
    /// The person the event's aggregate belongs to (see [`DataSubject`]).
    Aggregate,
}

/// The personal fields of one event type: paths into the event's body, with `.`
/// between nested names. Each holds a string, or null where the field is optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersonalFields {
    pub subject: Subject,
    pub fields: &'static [&'static str],
}

/// The personal fields of events of `event_type`; `None` for events that hold none.
/// Names, e-mail addresses and free text a person wrote or that was read from their
/// receipts are personal; amounts, dates, merchants, categories and ids are not.
pub fn personal_fields(event_type: &str) -> Option<PersonalFields> {
    let (subject, fields): (Subject, &'static [&'static str]) = match event_type {
        ORGANIZATION_REGISTERED => (
            Subject::Field("admin_user_id"),
            &["admin_name", "admin_email"],
        ),
        USER_ADDED => (Subject::Field("user_id"), &["name", "email"]),
        API_TOKEN_ISSUED => (Subject::Field("user_id"), &["name"]),
        // The issuer's id of the person: an online identifier, as personal as an address.
        IDENTITY_LINKED => (Subject::Field("user_id"), &["subject"]),
        EMAIL_CLAIMED => (Subject::Field("user_id"), &["email"]),
        EXPENSE_CREATED | EXPENSE_UPDATED => (Subject::Aggregate, &["description"]),
        EXPENSE_SUBMITTED => (Subject::Aggregate, &["justification"]),
        EXPENSE_APPROVED | EXPENSE_STEP_APPROVED => (Subject::Aggregate, &["comment"]),
        EXPENSE_REJECTED => (Subject::Aggregate, &["reason"]),
        RECEIPT_SCANNED | RECEIPT_SENT_TO_REVIEW => (Subject::Aggregate, &["extraction.text"]),
        RECEIPT_LEGAL_HOLD_SET => (Subject::Aggregate, &["reason"]),
        RECEIPT_UPLOADED => (Subject::Aggregate, &["note"]),
        _ => return None,
    };
    Some(PersonalFields { subject, fields })
}

/// The person an aggregate's personal data belongs to, once it exists.
pub trait DataSubject {
    fn data_subject(&self) -> Option<Uuid>;
}

impl DataSubject for Expense {
    fn data_subject(&self) -> Option<Uuid> {
        self.state.as_ref().map(|s| s.owner_id)
    }
}

impl DataSubject for Receipt {
    fn data_subject(&self) -> Option<Uuid> {
        self.state.as_ref().map(|s| s.uploader_id)
    }
}

/// A policy is the organization's, no person's.
impl DataSubject for crate::policy::Policy {
    fn data_subject(&self) -> Option<Uuid> {
        None
    }
}

/// Bookkeeping settings are the organization's, no person's.
impl DataSubject for crate::accounting::Accounting {
    fn data_subject(&self) -> Option<Uuid> {
        None
    }
}

/// Webhook endpoints are the organization's, no person's.
impl DataSubject for crate::webhook::Webhooks {
    fn data_subject(&self) -> Option<Uuid> {
        None
    }
}

/// Organizations and e-mail claims name the person in each event.
impl DataSubject for crate::Organization {
    fn data_subject(&self) -> Option<Uuid> {
        None
    }
}

impl DataSubject for crate::EmailClaim {
    fn data_subject(&self) -> Option<Uuid> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_naming_their_subject_name_a_field_of_their_own() {
        for event_type in [
            ORGANIZATION_REGISTERED,
            USER_ADDED,
            API_TOKEN_ISSUED,
            IDENTITY_LINKED,
            EMAIL_CLAIMED,
        ] {
            let personal = personal_fields(event_type).expect("personal fields");
            assert!(
                matches!(personal.subject, Subject::Field(_)),
                "{event_type}"
            );
        }
    }

    #[test]
    fn events_without_free_text_hold_no_personal_fields() {
        for event_type in ["ExpenseReimbursed", "PolicyChanged", "UserDeactivated"] {
            assert_eq!(personal_fields(event_type), None, "{event_type}");
        }
    }
}
