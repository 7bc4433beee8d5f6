//! Rate limits: per user, per address without a token, and the stricter one on sign-in
//! and registration.

use expensewise_tests::{expect_problem, Backend, TestApp};
use reqwest::StatusCode;
use serde_json::json;

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn the_request_after_the_maximum_gets_429_until_the_window_ends() {
    let app = TestApp::builder(Backend::Sqlite)
        .env(vec![
            ("RATE_LIMIT_MAX", "1000".to_string()),
            ("RATE_LIMIT_WINDOW", "3600000".to_string()),
        ])
        .start()
        .await;
    let ada = app.register("Acme", "ada@acme.test").await;
    let eve = app.add_user(&ada, "eve@acme.test", "employee").await;
    // Adding Eve was Ada's first request in the window; 999 reads make 1,000.
    for i in 1..=999u32 {
        let response = app.get("/v1/me", &ada.token).await;
        assert_eq!(response.status(), StatusCode::OK, "request {i}");
        assert_eq!(header(&response, "ratelimit-limit"), "1000");
        let remaining: u32 = header(&response, "ratelimit-remaining").parse().unwrap();
        assert_eq!(remaining, 1000 - 1 - i, "request {i}");
    }
    // Ada has made 1,000 requests (one adding Eve, 999 reading): the 1,001st is refused.
    let refused = app.get("/v1/me", &ada.token).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = header(&refused, "retry-after").parse().unwrap();
    assert!((3500..=3600).contains(&retry_after), "{retry_after}");
    assert_eq!(header(&refused, "ratelimit-remaining"), "0");
    let problem = expect_problem(refused, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(problem.status, 429);
    // Refused requests do not do anything: no expense was created by this one.
    let refused = app
        .post(
            "/v1/expenses",
            Some(&ada.token),
            expensewise_tests::expense_body(),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    // Others have their own allowance; probes are never limited.
    assert_eq!(app.get("/v1/me", &eve.token).await.status(), StatusCode::OK);
    let expenses = app.get("/v1/expenses", &eve.token).await;
    let page: serde_json::Value = expenses.json().await.unwrap();
    assert_eq!(page["items"], json!([]));
    let health = app
        .request(reqwest::Method::GET, "/health", None)
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    app.finish().await;
}

#[tokio::test]
async fn password_guessing_is_stopped_early() {
    let app = TestApp::builder(Backend::Sqlite)
        .env(vec![("AUTH_RATE_LIMIT_MAX", "5".to_string())])
        .start()
        .await;
    app.register("Acme", "ada@acme.test").await;
    // The registration was the first attempt from this address; four wrong guesses follow.
    for _ in 0..4 {
        let guess = app
            .post(
                "/v1/auth/login",
                None,
                json!({"email": "ada@acme.test", "password": "guess-guess-guess"}),
            )
            .await;
        assert_eq!(guess.status(), StatusCode::UNAUTHORIZED);
    }
    // Now even the right password waits for the window to end.
    let right = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "ada@acme.test", "password": expensewise_tests::PASSWORD}),
        )
        .await;
    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = header(&right, "retry-after").parse().unwrap();
    assert!((800..=900).contains(&retry_after), "{retry_after}");
    app.finish().await;
}
