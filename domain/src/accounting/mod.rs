//! An organization's bookkeeping settings for exports to accounting systems (issue 20):
//! the DATEV numbers and which account each expense category is booked to. An
//! event-sourced aggregate whose id is the organization's; admins replace it whole.

pub mod datev;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::actor::{Actor, Role};
use crate::rejection::{FieldError, IntoRejection, Rejection};

pub const AGGREGATE_TYPE: &str = "accounting";
pub const SETTINGS_CHANGED: &str = "AccountingSettingsChanged";

/// What DATEV's import needs to know, and the accounts expenses are booked to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatevSettings {
    /// The tax consultant's number (Beraternummer), 1001 to 9999999.
    pub consultant_number: u32,
    /// The client's number at the consultant (Mandantennummer), 1 to 99999.
    pub client_number: u32,
    /// The month the fiscal year begins with, 1 to 12.
    pub fiscal_year_start: u32,
    /// Digits of a general ledger account (Sachkontenlänge), 4 to 8.
    pub account_length: u32,
    /// The chart of accounts, e.g. `03` (SKR03) or `04` (SKR04).
    pub chart: String,
    /// The account of an expense whose category has none of its own.
    pub expense_account: String,
    /// What the expenses are owed to: the employees' account (a ledger account, or a
    /// personal account one digit longer).
    pub counter_account: String,
    /// Category → account.
    pub category_accounts: BTreeMap<String, String>,
}

impl DatevSettings {
    /// The account an expense of `category` is booked to.
    pub fn account_of(&self, category: &str) -> &str {
        self.category_accounts
            .get(category)
            .map_or(&self.expense_account, String::as_str)
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut check = |ok: bool, field: &str, message: &str| {
            if !ok {
                errors.push(FieldError::new(format!("datev.{field}"), message));
            }
        };
        check(
            (1001..=9_999_999).contains(&self.consultant_number),
            "consultant_number",
            "must be between 1001 and 9999999",
        );
        check(
            (1..=99_999).contains(&self.client_number),
            "client_number",
            "must be between 1 and 99999",
        );
        check(
            (1..=12).contains(&self.fiscal_year_start),
            "fiscal_year_start",
            "must be a month, 1 to 12",
        );
        check(
            (4..=8).contains(&self.account_length),
            "account_length",
            "must be between 4 and 8",
        );
        check(
            self.chart.len() == 2 && self.chart.bytes().all(|b| b.is_ascii_digit()),
            "chart",
            "must be two digits, e.g. 03 for SKR03",
        );
        let length = self.account_length as usize;
        let ledger =
            |account: &str| account.len() == length && account.bytes().all(|b| b.is_ascii_digit());
        check(
            ledger(&self.expense_account),
            "expense_account",
            &format!("must be {length} digits"),
        );
        check(
            ledger(&self.counter_account)
                || (self.counter_account.len() == length + 1
                    && self.counter_account.bytes().all(|b| b.is_ascii_digit())),
            "counter_account",
            &format!(
                "must be {length} digits, or {} for a personal account",
                length + 1
            ),
        );
        for (category, account) in &self.category_accounts {
            check(
                !category.trim().is_empty() && category.chars().count() <= 50,
                &format!("category_accounts.{category}"),
                "a category is 1 to 50 characters",
            );
            check(
                ledger(account),
                &format!("category_accounts.{category}"),
                &format!("must be {length} digits"),
            );
        }
        errors
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Accounting {
    pub organization_id: Option<Uuid>,
    pub datev: Option<DatevSettings>,
    /// The number of changes: 0 for an organization that never set them.
    pub version: u64,
    pub changed_at: Option<DateTime<Utc>>,
    pub changed_by: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AccountingCommand {
    /// Replaces the settings; `expected_version` is the client's `If-Match`.
    SetSettings {
        actor: Actor,
        at: DateTime<Utc>,
        expected_version: Option<u64>,
        datev: DatevSettings,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum AccountingEvent {
    /// The settings after the change; the ones before are the previous event's.
    AccountingSettingsChanged {
        organization_id: Uuid,
        version: u64,
        datev: DatevSettings,
        changed_by: Uuid,
        changed_at: DateTime<Utc>,
    },
}

impl DomainEvent for AccountingEvent {
    fn event_type(&self) -> String {
        SETTINGS_CHANGED.to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccountingError {
    #[error("only admins change the accounting settings")]
    NotAnAdmin,
    #[error("no such settings")]
    NotFound,
    #[error("the settings are at version {current}")]
    StaleVersion { current: u64 },
    #[error("invalid accounting settings")]
    Invalid(Vec<FieldError>),
}

impl IntoRejection for AccountingError {
    fn rejection(&self) -> Rejection {
        match self {
            Self::NotAnAdmin => Rejection::Forbidden(self.to_string()),
            Self::NotFound => Rejection::NotFound(self.to_string()),
            Self::StaleVersion { current } => Rejection::StaleVersion { current: *current },
            Self::Invalid(errors) => Rejection::Invalid(errors.clone()),
        }
    }
}

impl Aggregate for Accounting {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = AccountingCommand;
    type Event = AccountingEvent;
    type Error = AccountingError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let AccountingCommand::SetSettings {
            actor,
            at,
            expected_version,
            datev,
        } = command;
        if self
            .organization_id
            .is_some_and(|o| o != actor.organization_id)
        {
            return Err(AccountingError::NotFound);
        }
        if actor.role != Role::Admin {
            return Err(AccountingError::NotAnAdmin);
        }
        if expected_version.is_some_and(|v| v != self.version) {
            return Err(AccountingError::StaleVersion {
                current: self.version,
            });
        }
        let errors = datev.validate();
        if !errors.is_empty() {
            return Err(AccountingError::Invalid(errors));
        }
        if self.datev.as_ref() == Some(&datev) {
            return Ok(());
        }
        let event = AccountingEvent::AccountingSettingsChanged {
            organization_id: actor.organization_id,
            version: self.version + 1,
            datev,
            changed_by: actor.user_id,
            changed_at: at,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let AccountingEvent::AccountingSettingsChanged {
            organization_id,
            version,
            datev,
            changed_by,
            changed_at,
        } = event;
        self.organization_id = Some(organization_id);
        self.version = version;
        self.datev = Some(datev);
        self.changed_by = Some(changed_by);
        self.changed_at = Some(changed_at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn settings() -> DatevSettings {
        DatevSettings {
            consultant_number: 29098,
            client_number: 55003,
            fiscal_year_start: 1,
            account_length: 4,
            chart: "03".into(),
            expense_account: "4900".into(),
            counter_account: "1755".into(),
            category_accounts: BTreeMap::from([
                ("travel".to_string(), "4670".to_string()),
                ("meals".to_string(), "4650".to_string()),
            ]),
        }
    }

    #[test]
    fn settings_name_what_is_wrong() {
        assert!(settings().validate().is_empty());
        let mut bad = settings();
        bad.consultant_number = 12;
        bad.account_length = 5;
        bad.category_accounts.insert("hotel".into(), "48A0".into());
        let fields: Vec<String> = bad.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "datev.consultant_number",
                "datev.expense_account",
                "datev.counter_account",
                "datev.category_accounts.hotel",
                "datev.category_accounts.meals",
                "datev.category_accounts.travel",
            ]
        );
        assert_eq!(settings().account_of("travel"), "4670");
        assert_eq!(settings().account_of("office"), "4900");
    }
}
