//! Expense requests that must not go wrong: stale versions, racing writers, bad money
//! and malformed bodies, retried and lost requests.

use expensewise_tests::{
    consistency, expect_json, expect_problem, expect_status, expense_body, on_both_backends,
    send_concurrently, Backend, Expense, TestApp,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn id(expense: &Value) -> String {
    expense["id"].as_str().expect("an expense id").to_string()
}

async fn a_stale_if_match_is_a_failed_precondition(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let path = format!("/v1/expenses/{}", app.create_expense(&admin).await.id);
    let fresh = app
        .request(Method::PATCH, &path, Some(&admin.token))
        .header("if-match", "\"1\"")
        .json(&json!({"merchant": "Café Zentral"}))
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.headers()["etag"], "\"2\"");
    let written = consistency(&fresh);
    expect_status(fresh, StatusCode::OK).await;
    let stale = app
        .request(Method::PATCH, &path, Some(&admin.token))
        .header("if-match", "\"1\"")
        .json(&json!({"merchant": "Café Other"}))
        .send()
        .await
        .unwrap();
    expect_problem(stale, StatusCode::PRECONDITION_FAILED).await;
    let unchanged = app.get_after(&path, &admin.token, &written).await;
    let unchanged: Expense = expect_json(unchanged, StatusCode::OK).await;
    assert_eq!(unchanged.merchant, "Café Zentral");
    // An entity tag is quoted: a bare version is not guessed at.
    for garbage in ["yesterday", "2", "\"\"", "W/2"] {
        let refused = app
            .request(Method::POST, &format!("{path}/submit"), Some(&admin.token))
            .header("if-match", garbage)
            .send()
            .await
            .unwrap();
        expect_problem(refused, StatusCode::BAD_REQUEST).await;
    }
    app.finish().await;
}

/// Of writers racing on one version, exactly one won; the others lost the race (409) or
/// came with a version already stale (412).
fn assert_one_won(statuses: &[StatusCode]) {
    let winners = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(winners, 1, "statuses: {statuses:?}");
    assert!(
        statuses.iter().all(|s| [
            StatusCode::OK,
            StatusCode::CONFLICT,
            StatusCode::PRECONDITION_FAILED
        ]
        .contains(s)),
        "losers get 409 (lost race) or 412 (stale version): {statuses:?}"
    );
}

async fn concurrent_writers_on_one_version_let_exactly_one_win(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let path = format!("/v1/expenses/{}", app.create_expense(&admin).await.id);
    let edits = (0..8).map(|i| {
        app.request(Method::PATCH, &path, Some(&admin.token))
            .header("if-match", "\"1\"")
            .json(&json!({"merchant": format!("Writer {i}")}))
    });
    let statuses = send_concurrently(edits).await;
    assert_one_won(&statuses);
    let history = app.get(&format!("{path}/history"), &admin.token).await;
    let history = expect_status(history, StatusCode::OK).await;
    assert_eq!(
        history.as_array().unwrap().len(),
        2,
        "one creation and one winning edit"
    );
    app.finish().await;
}

/// Appends of commands made at once are written together (group commit), each with its
/// own expectations: losers of a race lose alone, and everyone else's command holds.
async fn writers_at_once_win_or_lose_each_on_their_own(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let contested = format!("/v1/expenses/{}", app.create_expense(&admin).await.id);
    let mut alone = Vec::new();
    for _ in 0..6 {
        alone.push(format!(
            "/v1/expenses/{}",
            app.create_expense(&admin).await.id
        ));
    }
    let edit = |path: &str, merchant: String| {
        app.request(Method::PATCH, path, Some(&admin.token))
            .header("if-match", "\"1\"")
            .json(&json!({ "merchant": merchant }))
    };
    let races = (0..8).map(|i| edit(&contested, format!("Writer {i}")));
    let edits = alone.iter().map(|path| edit(path, "Alone".to_string()));
    let creates = (0..16).map(|_| {
        app.request(Method::POST, "/v1/expenses", Some(&admin.token))
            .json(&expense_body())
    });
    let statuses = send_concurrently(races.chain(edits).chain(creates)).await;
    let (races, rest) = statuses.split_at(8);
    let (edits, creates) = rest.split_at(alone.len());
    assert_one_won(races);
    assert!(edits.iter().all(|s| *s == StatusCode::OK), "{edits:?}");
    assert!(
        creates.iter().all(|s| *s == StatusCode::CREATED),
        "{creates:?}"
    );
    for path in alone.iter().chain([&contested]) {
        let history = app.get(&format!("{path}/history"), &admin.token).await;
        let history = expect_status(history, StatusCode::OK).await;
        assert_eq!(history.as_array().unwrap().len(), 2, "{path}: {history}");
    }
    app.finish().await;
}

async fn invalid_money_is_refused_with_the_field_named(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    for (amount, currency, field) in [
        ("12.345", "EUR", "amount"),
        ("5.5", "JPY", "amount"),
        ("0", "EUR", "amount"),
        ("-3.00", "EUR", "amount"),
        ("1e3", "EUR", "amount"),
        ("10", "EURO", "currency"),
    ] {
        let mut body = expense_body();
        body["amount"] = json!(amount);
        body["currency"] = json!(currency);
        let response = app.post("/v1/expenses", Some(&admin.token), body).await;
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(
            problem.field(),
            Some(field),
            "{amount} {currency}: {problem}"
        );
    }
    let mut yen = expense_body();
    yen["amount"] = json!("500");
    yen["currency"] = json!("JPY");
    let created: Expense = expect_json(
        app.post("/v1/expenses", Some(&admin.token), yen).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(created.amount, "500");
    app.finish().await;
}

async fn malformed_bodies_are_refused_and_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let cases = [
        (json!({"amount": 12.5}), "amount"),
        (json!({"spent_on": "2026-02-30"}), "spent_on"),
        (json!({"spent_on": "2999-01-01"}), "spent_on"),
        (json!({"merchant": ""}), "merchant"),
        (json!({"surprise": true}), "surprise"),
    ];
    for (patch, field) in cases {
        let mut body = expense_body();
        body.as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        let response = app
            .post("/v1/expenses", Some(&admin.token), body.clone())
            .await;
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem.field(), Some(field), "{body}: {problem}");
    }
    let mut missing = expense_body();
    missing.as_object_mut().unwrap().remove("merchant");
    let problem = expect_problem(
        app.post("/v1/expenses", Some(&admin.token), missing).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(problem.detail.contains("merchant"), "{problem}");

    // Every body is a JSON object: serde would read a struct from an array of its fields
    // in order, and the user's PATCH answered 200 to `[null, null]`.
    let in_order: Vec<Value> = expense_body()
        .as_object()
        .unwrap()
        .values()
        .cloned()
        .collect();
    for body in [Value::Array(in_order), json!("text"), json!(42)] {
        let response = app
            .post("/v1/expenses", Some(&admin.token), body.clone())
            .await;
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem.field(), Some("body"), "{body}: {problem}");
    }
    let response = app
        .request(
            Method::PATCH,
            &format!("/v1/users/{}", admin.user_id),
            Some(&admin.token),
        )
        .json(&json!([null, null]))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem.field(), Some("body"), "{problem}");

    let broken = app
        .request(Method::POST, "/v1/expenses", Some(&admin.token))
        .header("content-type", "application/json")
        .body("{\"amount\": ")
        .send()
        .await
        .unwrap();
    expect_problem(broken, StatusCode::BAD_REQUEST).await;
    let not_json = app
        .request(Method::POST, "/v1/expenses", Some(&admin.token))
        .header("content-type", "text/plain")
        .body("amount=12")
        .send()
        .await
        .unwrap();
    expect_problem(not_json, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let huge = format!("{{\"merchant\": \"{}\"}}", "x".repeat(5 * 1024 * 1024));
    let too_large = app
        .request(Method::POST, "/v1/expenses", Some(&admin.token))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    expect_problem(too_large, StatusCode::PAYLOAD_TOO_LARGE).await;

    let db = app.database.connect().await;
    let expenses = expensewise_infra::on_database!(&db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM events WHERE aggregate_type = 'expense'")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(expenses, 0, "none of the invalid bodies appended anything");
    app.finish().await;
}

async fn a_retried_post_with_one_idempotency_key_appends_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let send = |body: Value| {
        app.request(Method::POST, "/v1/expenses", Some(&admin.token))
            .header("idempotency-key", "c0ffee-1")
            .json(&body)
            .send()
    };
    let first = send(expense_body()).await.unwrap();
    let first_token = first.headers()["x-consistency-token"].clone();
    let first = expect_status(first, StatusCode::CREATED).await;
    let second = send(expense_body()).await.unwrap();
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(second.headers()["x-consistency-token"], first_token);
    let second = expect_status(second, StatusCode::CREATED).await;
    assert_eq!(first, second);

    let mut other = expense_body();
    other["amount"] = json!("99.00");
    let reused = send(other).await.unwrap();
    expect_problem(reused, StatusCode::UNPROCESSABLE_ENTITY).await;

    let submit = |key: &'static str| {
        app.request(
            Method::POST,
            &format!("/v1/expenses/{}/submit", id(&first)),
            Some(&admin.token),
        )
        .header("idempotency-key", key)
        .send()
    };
    expect_status(submit("submit-1").await.unwrap(), StatusCode::OK).await;
    let retried = submit("submit-1").await.unwrap();
    assert_eq!(retried.headers()["idempotent-replayed"], "true");
    expect_status(retried, StatusCode::OK).await;

    let db = app.database.connect().await;
    let events = expensewise_infra::on_database!(&db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM events WHERE aggregate_type = 'expense'")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(events, 2, "one ExpenseCreated and one ExpenseSubmitted");
    app.finish().await;
}

async fn a_create_whose_response_was_lost_is_answered_from_the_same_expense(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let first = app
        .request(Method::POST, "/v1/expenses", Some(&admin.token))
        .header("idempotency-key", "lost-response")
        .json(&expense_body())
        .send()
        .await
        .unwrap();
    let first = expect_status(first, StatusCode::CREATED).await;
    // Simulate a crash after the append but before the ledger kept the response.
    let db = app.database.connect().await;
    expensewise_infra::on_writer!(&db, |pool| {
        sqlx::query("DELETE FROM idempotency_keys")
            .execute(pool)
            .await
            .unwrap();
    });
    let retry = app
        .request(Method::POST, "/v1/expenses", Some(&admin.token))
        .header("idempotency-key", "lost-response")
        .json(&expense_body())
        .send()
        .await
        .unwrap();
    let retry: Expense = expect_json(retry, StatusCode::CREATED).await;
    assert_eq!(retry.id, id(&first));
    let history = expect_status(
        app.get(
            &format!("/v1/expenses/{}/history", id(&first)),
            &admin.token,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(history.as_array().unwrap().len(), 1);
    app.finish().await;
}

on_both_backends!(
    a_stale_if_match_is_a_failed_precondition,
    concurrent_writers_on_one_version_let_exactly_one_win,
    writers_at_once_win_or_lose_each_on_their_own,
    invalid_money_is_refused_with_the_field_named,
    malformed_bodies_are_refused_and_change_nothing,
    a_retried_post_with_one_idempotency_key_appends_once,
    a_create_whose_response_was_lost_is_answered_from_the_same_expense,
);
