//! A small HTTP client around an Expense-Wise API, and assertions on its answers.

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

use crate::responses::{expect_json, Expense, Problem};
use crate::TestApp;

/// A client of an Expense-Wise HTTP API: the in-process server of a [`TestApp`], or an
/// `expensewise` process a test started.
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

impl Api {
    pub fn new(base: String) -> Api {
        Api {
            base,
            client: reqwest::Client::new(),
        }
    }

    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let builder = self.client.request(method, format!("{}{path}", self.base));
        match token {
            Some(t) => builder.bearer_auth(t),
            None => builder,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, Some(token))
            .send()
            .await
            .expect("GET")
    }

    /// A GET that waits until the read models include the write `consistency` came from.
    pub async fn get_after(&self, path: &str, token: &str, consistency: &str) -> Response {
        self.request(Method::GET, path, Some(token))
            .header("x-consistency-token", consistency)
            .send()
            .await
            .expect("GET")
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.request(Method::POST, path, token)
            .json(&body)
            .send()
            .await
            .expect("POST")
    }

    /// Sends `body` as `user`; the answer must be a success. Returns its JSON body
    /// (`null` when there is none).
    pub async fn send_ok(&self, method: Method, path: &str, user: &User, body: Value) -> Value {
        let response = self
            .request(method, path, Some(&user.token))
            .json(&body)
            .send()
            .await
            .expect("send the request");
        let status = response.status();
        assert!(status.is_success(), "{path}: {status}");
        response.json().await.unwrap_or(Value::Null)
    }

    /// What the product shows about people and these expenses, as one text: the users
    /// list (to `admin`), and the audit log, each expense and its history (to `reader`).
    pub async fn shown(&self, admin: &User, reader: &User, expenses: &[&str]) -> String {
        let mut shown = vec![
            expect_status(self.get("/v1/users", &admin.token).await, StatusCode::OK).await,
            expect_status(
                self.get("/v1/audit/events?limit=500", &reader.token).await,
                StatusCode::OK,
            )
            .await,
        ];
        for id in expenses {
            for path in [
                format!("/v1/expenses/{id}"),
                format!("/v1/expenses/{id}/history"),
            ] {
                shown.push(
                    expect_status(self.get(&path, &reader.token).await, StatusCode::OK).await,
                );
            }
        }
        Value::Array(shown).to_string()
    }

    /// Registers a new organization; returns its admin.
    pub async fn register(&self, organization: &str, email: &str) -> User {
        let response = self
            .post(
                "/v1/auth/register",
                None,
                json!({"organization": organization, "name": "Admin", "email": email, "password": PASSWORD}),
            )
            .await;
        let body = expect_status(response, StatusCode::CREATED).await;
        User::signed_in(&body)
    }

    /// Adds a user with `role` to the admin's organization and signs them in.
    pub async fn add_user(&self, admin: &User, email: &str, role: &str) -> User {
        let response = self
            .post(
                "/v1/users",
                Some(&admin.token),
                json!({"name": role, "email": email, "password": PASSWORD, "role": role}),
            )
            .await;
        expect_status(response, StatusCode::CREATED).await;
        self.login(email).await
    }

    pub async fn login(&self, email: &str) -> User {
        let response = self
            .post(
                "/v1/auth/login",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        let body = expect_status(response, StatusCode::OK).await;
        User::signed_in(&body)
    }

    /// Creates a draft expense of 42.50 EUR.
    pub async fn create_expense(&self, user: &User) -> Expense {
        let response = self
            .post("/v1/expenses", Some(&user.token), expense_body())
            .await;
        expect_json(response, StatusCode::CREATED).await
    }
}

/// The consistency token of a command's response.
pub fn consistency(response: &Response) -> String {
    response.headers()["x-consistency-token"]
        .to_str()
        .expect("a textual consistency token")
        .to_string()
}

pub const PASSWORD: &str = "correct horse battery";

pub fn expense_body() -> Value {
    json!({
        "amount": "42.50",
        "currency": "EUR",
        "merchant": "Café Central",
        "category": "meals",
        "spent_on": "2026-01-15",
        "description": "Team lunch"
    })
}

#[derive(Debug, Clone)]
pub struct User {
    pub token: String,
    pub user_id: String,
    pub organization_id: String,
}

impl User {
    /// The user a registration or login response describes.
    fn signed_in(body: &Value) -> User {
        let text = |key: &str| {
            body[key]
                .as_str()
                .unwrap_or_else(|| panic!("{key} in {body}"))
                .to_string()
        };
        User {
            token: text("token"),
            user_id: text("user_id"),
            organization_id: text("organization_id"),
        }
    }
}

/// Asserts the status (showing the body when it is wrong) and returns the JSON body
/// (`null` when there is none).
pub async fn expect_status(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let text = response.text().await.expect("a response body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}

/// Asserts an RFC 9457 problem response with `status`; returns the problem.
pub async fn expect_problem(response: Response, status: StatusCode) -> Problem {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let problem: Problem = expect_json(response, status).await;
    assert_eq!(
        content_type, "application/problem+json",
        "problem: {problem:?}"
    );
    assert_eq!(problem.status, status.as_u16(), "problem: {problem:?}");
    problem
}

/// Sends all requests at once and returns their statuses, in the order given.
pub async fn send_concurrently(requests: impl Iterator<Item = RequestBuilder>) -> Vec<StatusCode> {
    let handles: Vec<_> = requests.map(|r| tokio::spawn(r.send())).collect();
    let mut statuses = Vec::new();
    for handle in handles {
        statuses.push(
            handle
                .await
                .expect("a request task")
                .expect("a response")
                .status(),
        );
    }
    statuses
}

/// Uploads `bytes` as a receipt file named `name`, with extra form fields.
pub async fn upload_receipt(
    app: &TestApp,
    user: &User,
    name: &str,
    bytes: Vec<u8>,
    fields: &[(&str, &str)],
) -> Response {
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
    );
    for (key, value) in fields {
        form = form.text(key.to_string(), value.to_string());
    }
    app.request(Method::POST, "/v1/receipts", Some(&user.token))
        .multipart(form)
        .send()
        .await
        .expect("POST /v1/receipts")
}

/// A valid 1×1 PNG image.
pub const TINY_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3a, 0x7e, 0x9b,
    0x55, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0x0f, 0x00, 0x01,
    0x01, 0x01, 0x00, 0xb1, 0x38, 0xf6, 0x14, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];
