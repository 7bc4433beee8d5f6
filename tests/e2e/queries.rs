use expensewise_api::server::Roles;
use expensewise_tests::{
    consistency, expect_json, expect_problem, expect_status, expense_body, on_both_backends,
    Backend, Expense, TestApp, User,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Creates an expense with the given fields; returns (id, consistency token).
async fn expense(app: &TestApp, user: &User, fields: Value) -> (String, String) {
    let mut body = expense_body();
    body.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    let response = app.post("/v1/expenses", Some(&user.token), body).await;
    let token = consistency(&response);
    let created: Expense = expect_json(response, StatusCode::CREATED).await;
    (created.id, token)
}

async fn submit(app: &TestApp, user: &User, id: &str) -> String {
    let response = app
        .post(
            &format!("/v1/expenses/{id}/submit"),
            Some(&user.token),
            Value::Null,
        )
        .await;
    let token = consistency(&response);
    expect_status(response, StatusCode::OK).await;
    token
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

async fn lists_filter_search_and_page_newest_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let eve = app.add_user(&admin, "eve@acme.test", "employee").await;
    let (taxi, _) = expense(
        &app,
        &eve,
        json!({"merchant": "City Taxi", "category": "travel", "spent_on": "2026-01-03"}),
    )
    .await;
    let (hotel, _) = expense(&app, &eve, json!({"merchant": "Hotel Adlon", "category": "travel", "spent_on": "2026-01-10", "description": "Berlin trip"})).await;
    let (lunch, _) = expense(
        &app,
        &admin,
        json!({"merchant": "Café 100%", "category": "meals", "spent_on": "2026-01-07"}),
    )
    .await;
    let last = submit(&app, &eve, &hotel).await;

    let all = expect_status(
        app.get_after("/v1/expenses", &admin.token, &last).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        ids(&all),
        [hotel.clone(), lunch.clone(), taxi.clone()],
        "newest spent_on first"
    );

    let cases = [
        (
            "/v1/expenses?category=travel",
            vec![hotel.clone(), taxi.clone()],
        ),
        ("/v1/expenses?status=submitted", vec![hotel.clone()]),
        (
            &*format!("/v1/expenses?owner_id={}", admin.user_id),
            vec![lunch.clone()],
        ),
        (
            "/v1/expenses?from=2026-01-04&to=2026-01-09",
            vec![lunch.clone()],
        ),
        ("/v1/expenses?q=berlin", vec![hotel.clone()]),
        ("/v1/expenses?q=TAXI", vec![taxi.clone()]),
        ("/v1/expenses?q=100%25", vec![lunch.clone()]),
        ("/v1/expenses?q=_", vec![]),
    ]
    .map(|(p, e)| (p.to_string(), e));
    for (path, expected) in cases {
        let page = expect_status(app.get(&path, &admin.token).await, StatusCode::OK).await;
        assert_eq!(ids(&page), expected, "{path}");
    }

    let mut seen = Vec::new();
    let mut path = "/v1/expenses?limit=2".to_string();
    loop {
        let page = expect_status(app.get(&path, &admin.token).await, StatusCode::OK).await;
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/expenses?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [hotel.clone(), lunch.clone(), taxi.clone()],
        "pages join up"
    );

    let own = expect_status(app.get("/v1/expenses", &eve.token).await, StatusCode::OK).await;
    assert_eq!(
        ids(&own),
        [hotel.clone(), taxi.clone()],
        "employees see their own"
    );
    let other = app
        .get(
            &format!("/v1/expenses?owner_id={}", admin.user_id),
            &eve.token,
        )
        .await;
    expect_problem(other, StatusCode::FORBIDDEN).await;

    for bad in [
        "/v1/expenses?limit=0",
        "/v1/expenses?limit=501",
        "/v1/expenses?cursor=nonsense",
        "/v1/expenses?status=lost",
        "/v1/expenses?from=2026-02-01&to=2026-01-01",
    ] {
        let response = app.get(bad, &admin.token).await;
        assert!(
            response.status().is_client_error(),
            "{bad}: {}",
            response.status()
        );
    }
    app.finish().await;
}

async fn the_approvals_queue_shows_others_submissions_oldest_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let bob = app.add_user(&admin, "bob@acme.test", "approver").await;
    let eve = app.add_user(&admin, "eve@acme.test", "employee").await;
    let (first, _) = expense(&app, &eve, json!({})).await;
    let (second, _) = expense(&app, &eve, json!({})).await;
    let (bobs, _) = expense(&app, &bob, json!({})).await;
    let (draft, _) = expense(&app, &eve, json!({})).await;
    submit(&app, &eve, &first).await;
    submit(&app, &bob, &bobs).await;
    let last = submit(&app, &eve, &second).await;

    let queue = expect_status(
        app.get_after("/v1/approvals", &bob.token, &last).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        ids(&queue),
        [first.clone(), second.clone()],
        "not his own, not drafts"
    );
    let admins = expect_status(
        app.get("/v1/approvals?limit=1", &admin.token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(ids(&admins), [first.as_str()]);
    let cursor = admins["next_cursor"].as_str().unwrap();
    let next = expect_status(
        app.get(
            &format!("/v1/approvals?limit=1&cursor={cursor}"),
            &admin.token,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(ids(&next), [bobs.as_str()]);

    let decided = app
        .post(
            &format!("/v1/expenses/{first}/approve"),
            Some(&bob.token),
            Value::Null,
        )
        .await;
    let token = consistency(&decided);
    expect_status(decided, StatusCode::OK).await;
    let queue = expect_status(
        app.get_after("/v1/approvals", &bob.token, &token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(ids(&queue), [second.as_str()]);
    assert!(!ids(&queue).contains(&draft));
    expect_problem(
        app.get("/v1/approvals", &eve.token).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    app.finish().await;
}

async fn summaries_total_exactly_per_currency(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let eve = app.add_user(&admin, "eve@acme.test", "employee").await;
    expense(
        &app,
        &eve,
        json!({"amount": "0.10", "category": "meals", "spent_on": "2026-01-03"}),
    )
    .await;
    expense(
        &app,
        &eve,
        json!({"amount": "0.20", "category": "meals", "spent_on": "2026-02-03"}),
    )
    .await;
    expense(
        &app,
        &eve,
        json!({"amount": "1000", "currency": "JPY", "category": "meals", "spent_on": "2026-02-04"}),
    )
    .await;
    let (_, last) = expense(
        &app,
        &admin,
        json!({"amount": "99.99", "category": "travel", "spent_on": "2026-02-05"}),
    )
    .await;

    let by_category = app
        .get_after("/v1/reports/summary?group_by=category", &admin.token, &last)
        .await;
    let by_category = expect_status(by_category, StatusCode::OK).await;
    assert_eq!(
        by_category["rows"],
        json!([
            {"key": "meals", "currency": "EUR", "total": "0.30", "count": 2},
            {"key": "meals", "currency": "JPY", "total": "1000", "count": 1},
            {"key": "travel", "currency": "EUR", "total": "99.99", "count": 1},
        ])
    );
    let by_month = expect_status(
        app.get(
            "/v1/reports/summary?group_by=month&from=2026-02-01",
            &admin.token,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        by_month["rows"],
        json!([
            {"key": "2026-02", "currency": "EUR", "total": "100.19", "count": 2},
            {"key": "2026-02", "currency": "JPY", "total": "1000", "count": 1},
        ])
    );
    let own = expect_status(
        app.get("/v1/reports/summary?group_by=user", &eve.token)
            .await,
        StatusCode::OK,
    )
    .await;
    let keys: Vec<&str> = own["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [eve.user_id.as_str(), eve.user_id.as_str()],
        "employees see their own totals"
    );
    app.finish().await;
}

/// A write the read model has not reached makes a query wait, then answer 503 with
/// `Retry-After`; a token beyond every stored write could never be reached and is
/// refused at once.
async fn a_write_the_read_model_has_not_reached_answers_503(backend: Backend) {
    let app = TestApp::builder(backend)
        .roles(Roles {
            projector: false,
            ..Roles::ALL
        })
        .start()
        .await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let created = app
        .post("/v1/expenses", Some(&admin.token), expense_body())
        .await;
    let token = consistency(&created);
    expect_status(created, StatusCode::CREATED).await;
    let waited = app
        .request(Method::GET, "/v1/expenses", Some(&admin.token))
        .header("x-consistency-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(waited.headers()["retry-after"], "1");
    expect_problem(waited, StatusCode::SERVICE_UNAVAILABLE).await;
    let beyond = app
        .request(Method::GET, "/v1/expenses", Some(&admin.token))
        .header("x-consistency-token", "999999999999.999999999999")
        .send()
        .await
        .unwrap();
    let problem = expect_problem(beyond, StatusCode::CONFLICT).await;
    assert!(
        problem.detail.contains("names no write stored here"),
        "{problem:?}"
    );
    let garbage = app
        .request(
            Method::GET,
            "/v1/expenses?consistency_token=yesterday",
            Some(&admin.token),
        )
        .send()
        .await
        .unwrap();
    expect_problem(garbage, StatusCode::BAD_REQUEST).await;
    app.finish().await;
}

on_both_backends!(
    lists_filter_search_and_page_newest_first,
    the_approvals_queue_shows_others_submissions_oldest_first,
    summaries_total_exactly_per_currency,
    a_write_the_read_model_has_not_reached_answers_503,
);
