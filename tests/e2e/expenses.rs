use expensewise_tests::{
    consistency, expect_json, expect_problem, expect_status, expense_body, on_both_backends,
    Backend, Expense, TestApp,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn the_approval_flow_runs_end_to_end_and_survives_a_restart(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let approver = app.add_user(&admin, "bob@acme.test", "approver").await;
    let employee = app.add_user(&admin, "eve@acme.test", "employee").await;

    let created = app.create_expense(&employee).await;
    assert_eq!(created.status, "draft");
    assert_eq!(created.amount, "42.50");
    assert_eq!(created.version, 1);
    let path = format!("/v1/expenses/{}", created.id);

    let submitted = app
        .post(
            &format!("{path}/submit"),
            Some(&employee.token),
            Value::Null,
        )
        .await;
    assert!(submitted.headers().contains_key("x-consistency-token"));
    assert_eq!(submitted.headers()["etag"], "\"2\"");
    let submitted: Expense = expect_json(submitted, StatusCode::OK).await;
    assert_eq!(submitted.status, "submitted");

    let approved = app
        .post(
            &format!("{path}/approve"),
            Some(&approver.token),
            json!({"comment": "fine"}),
        )
        .await;
    let approved: Expense = expect_json(approved, StatusCode::OK).await;
    assert_eq!(approved.status, "approved");
    assert_eq!(
        approved.decided_by.as_deref(),
        Some(approver.user_id.as_str())
    );
    assert_eq!(approved.decision_reason.as_deref(), Some("fine"));

    let reimbursed = app
        .post(
            &format!("{path}/reimburse"),
            Some(&admin.token),
            Value::Null,
        )
        .await;
    let last_write = consistency(&reimbursed);
    let reimbursed: Expense = expect_json(reimbursed, StatusCode::OK).await;
    assert_eq!(reimbursed.status, "reimbursed");

    let app = app.restart().await;
    let after = app.get_after(&path, &employee.token, &last_write).await;
    let after: Expense = expect_json(after, StatusCode::OK).await;
    assert_eq!(after.status, "reimbursed");
    assert_eq!(after.version, 4);
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
    let path = format!("/v1/expenses/{}", app.create_expense(&employee).await.id);
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
    assert_eq!(problem.field(), Some("reason"));

    let rejected = app
        .post(
            &format!("{path}/reject"),
            Some(&admin.token),
            json!({"reason": "No receipt"}),
        )
        .await;
    let rejected: Expense = expect_json(rejected, StatusCode::OK).await;
    assert_eq!(
        (
            rejected.status.as_str(),
            rejected.decision_reason.as_deref()
        ),
        ("rejected", Some("No receipt"))
    );

    let edited = app
        .request(Method::PATCH, &path, Some(&employee.token))
        .json(&json!({"amount": "40", "description": null}))
        .send()
        .await
        .unwrap();
    let edited: Expense = expect_json(edited, StatusCode::OK).await;
    assert_eq!(
        (edited.amount.as_str(), edited.description),
        ("40.00", None)
    );

    let resubmitted = app
        .post(
            &format!("{path}/submit"),
            Some(&employee.token),
            Value::Null,
        )
        .await;
    let resubmitted: Expense = expect_json(resubmitted, StatusCode::OK).await;
    assert_eq!(resubmitted.status, "submitted");
    assert_eq!(resubmitted.decision_reason, None);
    app.finish().await;
}

async fn commands_the_status_does_not_allow_are_conflicts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let employee = app.add_user(&admin, "eve@acme.test", "employee").await;
    let path = format!("/v1/expenses/{}", app.create_expense(&employee).await.id);
    let approve_draft = app
        .post(&format!("{path}/approve"), Some(&admin.token), Value::Null)
        .await;
    let problem = expect_problem(approve_draft, StatusCode::CONFLICT).await;
    assert!(problem.detail.contains("draft"), "{problem}");

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
    assert!(problem.detail.contains("approved"), "{problem}");
    app.finish().await;
}

async fn only_drafts_are_deleted_and_then_gone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let path = format!("/v1/expenses/{}", app.create_expense(&admin).await.id);
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
    let path = format!("/v1/expenses/{}", app.create_expense(&acme).await.id);
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

    let own = format!("/v1/expenses/{}", app.create_expense(&approver).await.id);
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

    let path = format!("/v1/expenses/{}", app.create_expense(&employee).await.id);
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

on_both_backends!(
    the_approval_flow_runs_end_to_end_and_survives_a_restart,
    a_rejected_expense_is_edited_and_resubmitted,
    commands_the_status_does_not_allow_are_conflicts,
    only_drafts_are_deleted_and_then_gone,
    another_organizations_expense_is_not_found,
    roles_decide_who_may_act,
);
