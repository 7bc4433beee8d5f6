//! Subject access: a person (or an admin) gets everything the product holds about them,
//! with the events it came from, and nothing about anyone else.

use expensewise_tests::{
    expect_problem, expect_status, on_both_backends, upload_receipt, Backend, TestApp, TINY_PNG,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn a_person_sees_everything_held_about_them_and_nothing_of_others(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let bob = app.add_user(&admin, "bob@acme.test", "approver").await;
    let eve = app.add_user(&admin, "eve@acme.test", "employee").await;
    let sam = app.add_user(&admin, "sam@acme.test", "employee").await;
    let mine = app.create_expense(&eve).await;
    let others = app.create_expense(&sam).await;
    let submit = format!("/v1/expenses/{}/submit", mine.id);
    expect_status(
        app.post(&submit, Some(&eve.token), Value::Null).await,
        StatusCode::OK,
    )
    .await;
    let approve = format!("/v1/expenses/{}/approve", mine.id);
    let approved = app
        .post(&approve, Some(&bob.token), json!({"comment": "fine"}))
        .await;
    expect_status(approved, StatusCode::OK).await;
    let issued = expect_status(
        app.post(
            "/v1/tokens",
            Some(&eve.token),
            json!({"name": "sync", "scopes": ["expenses:read"]}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;

    let uploaded = upload_receipt(&app, &eve, "lunch.png", TINY_PNG.to_vec(), &[]).await;
    let token = expensewise_tests::consistency(&uploaded);
    let receipt = expect_status(uploaded, StatusCode::ACCEPTED).await;

    let path = format!("/v1/users/{}/personal-data", eve.user_id);
    let data = expect_status(
        app.get_after(&path, &eve.token, &token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(data["user"]["email"], "eve@acme.test");
    assert_eq!(data["receipts"][0]["id"], receipt["id"]);
    assert_eq!(data["receipts"].as_array().map(Vec::len), Some(1));
    assert_eq!(data["password"]["set"], true);
    assert!(data["password"]["set_at"].is_string());
    assert_eq!(data["tokens"][0]["id"], issued["id"]);
    let expenses: Vec<&str> = data["expenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(expenses, [mine.id.as_str()]);
    let events: Vec<(String, String)> = data["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event_type"].as_str().unwrap().to_string(),
                e["aggregate_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    for expected in [
        "UserAdded",
        "EmailClaimed",
        "ExpenseCreated",
        "ExpenseSubmitted",
        "ExpenseApproved",
        "ApiTokenIssued",
        "ReceiptUploaded",
    ] {
        assert!(
            types.contains(&expected),
            "{expected} missing from {types:?}"
        );
    }
    assert!(
        events.iter().all(|(_, aggregate)| *aggregate != others.id),
        "nothing of another person's expense"
    );
    let text = data.to_string();
    assert!(
        !text.contains("sam@acme.test"),
        "nothing about another person"
    );
    assert!(
        !text.contains("$argon2") && !text.contains("ewt_"),
        "no secret"
    );

    // An admin may ask for it; another employee may not; nobody is not found.
    let by_admin = expect_status(app.get(&path, &admin.token).await, StatusCode::OK).await;
    assert_eq!(by_admin["user"], data["user"]);
    expect_problem(app.get(&path, &sam.token).await, StatusCode::FORBIDDEN).await;
    let nobody = format!("/v1/users/{}/personal-data", uuid::Uuid::new_v4());
    expect_problem(app.get(&nobody, &admin.token).await, StatusCode::NOT_FOUND).await;
    let unauthenticated = app.request(Method::GET, &path, None).send().await.unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    app.finish().await;
}

on_both_backends!(a_person_sees_everything_held_about_them_and_nothing_of_others);
