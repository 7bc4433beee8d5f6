use expensewise_tests::{
    consistency, expect_problem, expect_status, expense_body, on_both_backends, send_concurrently,
    Backend, TestApp,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn id(expense: &Value) -> String {
    expense["id"].as_str().expect("an expense id").to_string()
}

async fn the_approval_flow_runs_end_to_end_and_survives_a_restart(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let approver = app.add_user(&admin, "bob@acme.test", "approver").await;
    let employee = app.add_user(&admin, "eve@acme.test", "employee").await;

    let created = app.create_expense(&employee).await;
    assert_eq!(created["status"], "draft");
    assert_eq!(created["amount"], "42.50");
    assert_eq!(created["version"], 1);
    let path = format!("/v1/expenses/{}", id(&created));

    let submitted = app
        .post(
            &format!("{path}/submit"),
            Some(&employee.token),
            Value::Null,
        )
        .await;
    assert!(submitted.headers().contains_key("x-consistency-token"));
    assert_eq!(submitted.headers()["etag"], "\"2\"");
    assert_eq!(
        expect_status(submitted, StatusCode::OK).await["status"],
        "submitted"
    );

    let approved = app
        .post(
            &format!("{path}/approve"),
            Some(&approver.token),
            json!({"comment": "fine"}),
        )
        .await;
    let approved = expect_status(approved, StatusCode::OK).await;
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["decided_by"], approver.user_id.as_str());
    assert_eq!(approved["decision_reason"], "fine");

    let reimbursed = app
        .post(
            &format!("{path}/reimburse"),
            Some(&admin.token),
            Value::Null,
        )
        .await;
    let last_write = consistency(&reimbursed);
    assert_eq!(
        expect_status(reimbursed, StatusCode::OK).await["status"],
        "reimbursed"
    );

    let app = app.restart().await;
    let after = app.get_after(&path, &employee.token, &last_write).await;
    let after = expect_status(after, StatusCode::OK).await;
    assert_eq!(after["status"], "reimbursed");
    assert_eq!(after["version"], 4);
    app.login("eve@acme.test").await;

    let history = expect_status(
        app.get(&format!("{path}/history"), &admin.token).await,
        StatusCode::OK,
    )
    .await;
    let types: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "ExpenseCreated",
            "ExpenseSubmitted",
            "ExpenseApproved",
            "ExpenseReimbursed"
        ]
    );
    let first = &history[0];
    assert_eq!(first["sequence"], 1);
    assert_eq!(first["actor_id"], employee.user_id.as_str());
    assert_eq!(
        first["payload"]["money"],
        json!({"amount": "42.50", "currency": "EUR"})
    );
    assert!(first["correlation_id"].is_string() && first["causation_id"].is_string());
    let positions: Vec<i64> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "positions grow: {positions:?}"
    );
    app.finish().await;
}

async fn a_rejected_expense_is_edited_and_resubmitted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let employee = app.add_user(&admin, "eve@acme.test", "employee").await;
    let path = format!("/v1/expenses/{}", id(&app.create_expense(&employee).await));
    expect_status(
        app.post(
            &format!("{path}/submit"),
            Some(&employee.token),
            Value::Null,
        )
        .await,
        StatusCode::OK,
    )
    .await;

    let no_reason = app
        .post(
            &format!("{path}/reject"),
            Some(&admin.token),
            json!({"reason": " "}),
        )
        .await;
    let problem = expect_problem(no_reason, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["errors"][0]["field"], "reason");

    let rejected = app
        .post(
            &format!("{path}/reject"),
            Some(&admin.token),
            json!({"reason": "No receipt"}),
        )
        .await;
    let rejected = expect_status(rejected, StatusCode::OK).await;
    assert_eq!(
        (
            rejected["status"].as_str(),
            rejected["decision_reason"].as_str()
        ),
        (Some("rejected"), Some("No receipt"))
    );

    let edited = app
        .request(Method::PATCH, &path, Some(&employee.token))
        .json(&json!({"amount": "40", "description": null}))
        .send()
        .await
        .unwrap();
    let edited = expect_status(edited, StatusCode::OK).await;
    assert_eq!(
        (edited["amount"].as_str(), edited["description"].clone()),
        (Some("40.00"), Value::Null)
    );

    let resubmitted = app
        .post(
            &format!("{path}/submit"),
            Some(&employee.token),
            Value::Null,
        )
        .await;
    let resubmitted = expect_status(resubmitted, StatusCode::OK).await;
    assert_eq!(resubmitted["status"], "submitted");
    assert_eq!(resubmitted["decision_reason"], Value::Null);
    app.finish().await;
}

async fn commands_the_status_does_not_allow_are_conflicts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let employee = app.add_user(&admin, "eve@acme.test", "employee").await;
    let path = format!("/v1/expenses/{}", id(&app.create_expense(&employee).await));
    let approve_draft = app
        .post(&format!("{path}/approve"), Some(&admin.token), Value::Null)
        .await;
    let problem = expect_problem(approve_draft, StatusCode::CONFLICT).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("draft"),
        "{problem}"
    );

    expect_status(
        app.post(
            &format!("{path}/submit"),
            Some(&employee.token),
            Value::Null,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    expect_status(
        app.post(&format!("{path}/approve"), Some(&admin.token), Value::Null)
            .await,
        StatusCode::OK,
    )
    .await;
    let edit_approved = app
        .request(Method::PATCH, &path, Some(&employee.token))
        .json(&json!({"merchant": "Other"}))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(edit_approved, StatusCode::CONFLICT).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("approved"),
        "{problem}"
    );
    app.finish().await;
}

async fn only_drafts_are_deleted_and_then_gone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let path = format!("/v1/expenses/{}", id(&app.create_expense(&admin).await));
    let deleted = app
        .request(Method::DELETE, &path, Some(&admin.token))
        .send()
        .await
        .unwrap();
    let written = consistency(&deleted);
    expect_status(deleted, StatusCode::NO_CONTENT).await;
    let gone = app.get_after(&path, &admin.token, &written).await;
    expect_problem(gone, StatusCode::NOT_FOUND).await;
    let history = expect_status(
        app.get(&format!("{path}/history"), &admin.token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        history.as_array().unwrap().last().unwrap()["event_type"],
        "ExpenseDeleted"
    );
    app.finish().await;
}

async fn another_organizations_expense_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let acme = app.register("Acme", "ada@acme.test").await;
    let globex = app.register("Globex", "hank@globex.test").await;
    let path = format!("/v1/expenses/{}", id(&app.create_expense(&acme).await));
    expect_problem(app.get(&path, &globex.token).await, StatusCode::NOT_FOUND).await;
    expect_problem(
        app.get(&format!("{path}/history"), &globex.token).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    for action in ["submit", "approve", "reimburse"] {
        let response = app
            .post(
                &format!("{path}/{action}"),
                Some(&globex.token),
                Value::Null,
            )
            .await;
        expect_problem(response, StatusCode::NOT_FOUND).await;
    }
    let delete = app
        .request(Method::DELETE, &path, Some(&globex.token))
        .send()
        .await
        .unwrap();
    expect_problem(delete, StatusCode::NOT_FOUND).await;
    let missing = format!("/v1/expenses/{}", uuid::Uuid::new_v4());
    expect_problem(app.get(&missing, &acme.token).await, StatusCode::NOT_FOUND).await;
    app.finish().await;
}

async fn roles_decide_who_may_act(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let approver = app.add_user(&admin, "bob@acme.test", "approver").await;
    let employee = app.add_user(&admin, "eve@acme.test", "employee").await;
    let colleague = app.add_user(&admin, "mal@acme.test", "employee").await;
    let auditor = app.add_user(&admin, "aud@acme.test", "auditor").await;

    let own = format!("/v1/expenses/{}", id(&app.create_expense(&approver).await));
    expect_status(
        app.post(&format!("{own}/submit"), Some(&approver.token), Value::Null)
            .await,
        StatusCode::OK,
    )
    .await;
    let self_approval = app
        .post(
            &format!("{own}/approve"),
            Some(&approver.token),
            Value::Null,
        )
        .await;
    expect_problem(self_approval, StatusCode::FORBIDDEN).await;
    let self_rejection = app
        .post(
            &format!("{own}/reject"),
            Some(&approver.token),
            json!({"reason": "x"}),
        )
        .await;
    expect_problem(self_rejection, StatusCode::FORBIDDEN).await;

    let path = format!("/v1/expenses/{}", id(&app.create_expense(&employee).await));
    let submitted = app
        .post(
            &format!("{path}/submit"),
            Some(&employee.token),
            Value::Null,
        )
        .await;
    let written = consistency(&submitted);
    expect_status(submitted, StatusCode::OK).await;
    let by_employee = app
        .post(
            &format!("{path}/approve"),
            Some(&colleague.token),
            Value::Null,
        )
        .await;
    expect_problem(by_employee, StatusCode::FORBIDDEN).await;
    let by_auditor = app
        .post(
            &format!("{path}/approve"),
            Some(&auditor.token),
            Value::Null,
        )
        .await;
    expect_problem(by_auditor, StatusCode::FORBIDDEN).await;
    expect_problem(
        app.get_after(&path, &colleague.token, &written).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    expect_status(
        app.get_after(&path, &auditor.token, &written).await,
        StatusCode::OK,
    )
    .await;
    expect_status(
        app.get(&format!("{path}/history"), &auditor.token).await,
        StatusCode::OK,
    )
    .await;

    let auditor_creates = app
        .post("/v1/expenses", Some(&auditor.token), expense_body())
        .await;
    expect_problem(auditor_creates, StatusCode::FORBIDDEN).await;
    let edit_by_other = app
        .request(Method::PATCH, &path, Some(&admin.token))
        .json(&json!({"merchant": "x"}))
        .send()
        .await
        .unwrap();
    expect_problem(edit_by_other, StatusCode::FORBIDDEN).await;

    expect_status(
        app.post(
            &format!("{path}/approve"),
            Some(&approver.token),
            Value::Null,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let reimburse_by_approver = app
        .post(
            &format!("{path}/reimburse"),
            Some(&approver.token),
            Value::Null,
        )
        .await;
    expect_problem(reimburse_by_approver, StatusCode::FORBIDDEN).await;
    app.finish().await;
}

async fn a_stale_if_match_is_a_failed_precondition(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let path = format!("/v1/expenses/{}", id(&app.create_expense(&admin).await));
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
    let unchanged = expect_status(unchanged, StatusCode::OK).await;
    assert_eq!(unchanged["merchant"], "Café Zentral");
    let garbage = app
        .request(Method::POST, &format!("{path}/submit"), Some(&admin.token))
        .header("if-match", "yesterday")
        .send()
        .await
        .unwrap();
    expect_problem(garbage, StatusCode::BAD_REQUEST).await;
    app.finish().await;
}

async fn concurrent_writers_on_one_version_let_exactly_one_win(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let path = format!("/v1/expenses/{}", id(&app.create_expense(&admin).await));
    let edits = (0..8).map(|i| {
        app.request(Method::PATCH, &path, Some(&admin.token))
            .header("if-match", "\"1\"")
            .json(&json!({"merchant": format!("Writer {i}")}))
    });
    let statuses = send_concurrently(edits).await;
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
    let history = app.get(&format!("{path}/history"), &admin.token).await;
    let history = expect_status(history, StatusCode::OK).await;
    assert_eq!(
        history.as_array().unwrap().len(),
        2,
        "one creation and one winning edit"
    );
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
            problem["errors"][0]["field"], field,
            "{amount} {currency}: {problem}"
        );
    }
    let mut yen = expense_body();
    yen["amount"] = json!("500");
    yen["currency"] = json!("JPY");
    let created = expect_status(
        app.post("/v1/expenses", Some(&admin.token), yen).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(created["amount"], "500");
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
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }
    let mut missing = expense_body();
    missing.as_object_mut().unwrap().remove("merchant");
    let problem = expect_problem(
        app.post("/v1/expenses", Some(&admin.token), missing).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("merchant"),
        "{problem}"
    );

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
    expensewise_infra::on_database!(&db, |pool| {
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
    let retry = expect_status(retry, StatusCode::CREATED).await;
    assert_eq!(retry["id"], first["id"]);
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
    the_approval_flow_runs_end_to_end_and_survives_a_restart,
    a_rejected_expense_is_edited_and_resubmitted,
    commands_the_status_does_not_allow_are_conflicts,
    only_drafts_are_deleted_and_then_gone,
    another_organizations_expense_is_not_found,
    roles_decide_who_may_act,
    a_stale_if_match_is_a_failed_precondition,
    concurrent_writers_on_one_version_let_exactly_one_win,
    invalid_money_is_refused_with_the_field_named,
    malformed_bodies_are_refused_and_change_nothing,
    a_retried_post_with_one_idempotency_key_appends_once,
    a_create_whose_response_was_lost_is_answered_from_the_same_expense,
);
