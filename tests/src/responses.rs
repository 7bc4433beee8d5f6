//! The API's answers as a client reads them: typed, so a test says `expense.status`
//! rather than `body["status"]`, and an answer of the wrong shape fails where it is read.
//!
//! These are written from the documented contract, not taken from the server's own
//! types: a change to the server's wire types that breaks clients breaks these tests.

use reqwest::{Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// Asserts the status (showing the body when it is wrong) and reads the body as `T`.
pub async fn expect_json<T: DeserializeOwned>(response: Response, status: StatusCode) -> T {
    let actual = response.status();
    let text = response.text().await.expect("a response body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not a {} ({e}): {text}", std::any::type_name::<T>()))
}

#[derive(Debug, Clone, Deserialize)]
pub struct Expense {
    pub id: String,
    pub owner_id: String,
    pub amount: String,
    pub currency: String,
    pub merchant: String,
    pub category: String,
    pub spent_on: String,
    pub description: Option<String>,
    pub status: String,
    pub receipt_ids: Vec<String>,
    pub version: u64,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Receipt {
    pub id: String,
    pub status: String,
    pub content_type: String,
    pub size: u64,
    pub duplicate_of: Option<String>,
    pub expense_id: Option<String>,
    pub uploader_id: String,
    pub create_expense: bool,
    pub extracted: Option<Extracted>,
    pub doubts: Vec<String>,
    pub review: Option<Review>,
    pub failure_reason: Option<String>,
}

/// What OCR read of a receipt.
#[derive(Debug, Clone, Deserialize)]
pub struct Extracted {
    pub merchant: Option<String>,
    pub date: Option<String>,
    pub total: Option<Money>,
    pub tax: Option<String>,
    pub text: String,
}

/// What a reviewer settled for a receipt.
#[derive(Debug, Clone, Deserialize)]
pub struct Review {
    pub reviewer_id: String,
    pub merchant: String,
    pub date: String,
    pub total: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Money {
    pub amount: String,
    pub currency: String,
}

/// One page of a list, and the cursor of the next one.
#[derive(Debug, Clone, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// An RFC 9457 problem.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(default)]
    pub errors: Vec<FieldError>,
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl Problem {
    /// The first invalid field named, if any.
    pub fn field(&self) -> Option<&str> {
        self.errors.first().map(|e| e.field.as_str())
    }

    /// Every invalid field named, in order.
    pub fn fields(&self) -> Vec<&str> {
        self.errors.iter().map(|e| e.field.as_str()).collect()
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title, self.detail)?;
        for error in &self.errors {
            write!(f, "; {}: {}", error.field, error.message)?;
        }
        Ok(())
    }
}

/// An amount in a currency, as the API writes it.
pub fn money(amount: &str, currency: &str) -> Money {
    Money {
        amount: amount.to_string(),
        currency: currency.to_string(),
    }
}
