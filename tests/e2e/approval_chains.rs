//! Approval chains (issue 19): chains of one, two and three steps chosen by amount, a
//! rejection mid-chain, an edit that starts the chain again, a delegate deciding for an
//! absent manager (both recorded), reminders mailed once per step and period, and the
//! segregation of duties as a matrix of who may take which step.

use std::time::Duration;

use expensewise_tests::{
    consistency, expect_status, on_both_backends, Backend, SmtpServer, TestApp, User,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// An organization with a chain per amount: up to 500 one approver, over 500 the
/// submitter's manager then finance, over 10,000 also an admin.
struct Org {
    admin: User,
    manager: User,
    approver: User,
    finance: User,
    finance2: User,
    auditor: User,
    employee: User,
}

async fn organization(app: &TestApp) -> Org {
    let admin = app.register("Acme", "ada@acme.test").await;
    let org = Org {
        manager: app.add_user(&admin, "mia@acme.test", "approver").await,
        approver: app.add_user(&admin, "quinn@acme.test", "approver").await,
        finance: app.add_user(&admin, "fin@acme.test", "finance").await,
        finance2: app.add_user(&admin, "fran@acme.test", "finance").await,
        auditor: app.add_user(&admin, "aud@acme.test", "auditor").await,
        employee: app.add_user(&admin, "eve@acme.test", "employee").await,
        admin,
    };
    set_manager(app, &org.admin, &org.employee, &org.manager).await;
    app.send_ok(
        Method::PUT,
        "/v1/policy",
        &org.admin,
        json!({"rules": [], "approval_chains": [
            {"id": "over-500", "over": "500", "steps": ["manager", "finance"]},
            {"id": "over-10000", "over": "10000", "steps": ["manager", "finance", "admin"]},
        ]}),
    )
    .await;
    org
}

async fn set_manager(app: &TestApp, admin: &User, user: &User, manager: &User) {
    let set = app
        .send_ok(
            Method::PATCH,
            &format!("/v1/users/{}", user.user_id),
            admin,
            json!({"manager_id": manager.user_id}),
        )
        .await;
    assert_eq!(set["manager_id"], manager.user_id.as_str());
}

/// A submitted expense of `amount` EUR; its id.
async fn submitted(app: &TestApp, owner: &User, amount: &str) -> String {
    submitted_with_token(app, owner, amount).await.0
}

/// The same, with the submission's consistency token (for other users' queries).
async fn submitted_with_token(app: &TestApp, owner: &User, amount: &str) -> (String, String) {
    let body = json!({"amount": amount, "currency": "EUR", "merchant": "Hotel Adler",
                      "category": "travel", "spent_on": "2026-06-05"});
    let created = app.send_ok(Method::POST, "/v1/expenses", owner, body).await;
    let id = created["id"].as_str().unwrap().to_string();
    let response = app
        .post(
            &format!("/v1/expenses/{id}/submit"),
            Some(&owner.token),
            Value::Null,
        )
        .await;
    let token = consistency(&response);
    let submitted = expect_status(response, StatusCode::OK).await;
    assert_eq!(submitted["status"], "submitted");
    (id, token)
}

async fn decide(app: &TestApp, user: &User, id: &str, verb: &str) -> (StatusCode, Value) {
    let body = match verb {
        "reject" => json!({"reason": "not this one"}),
        _ => Value::Null,
    };
    let response = app
        .post(
            &format!("/v1/expenses/{id}/{verb}"),
            Some(&user.token),
            body,
        )
        .await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn approve(app: &TestApp, user: &User, id: &str) -> Value {
    let (status, body) = decide(app, user, id, "approve").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn steps(expense: &Value) -> Vec<String> {
    expense["approval_steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["approver"].as_str().unwrap().to_string())
        .collect()
}

async fn history(app: &TestApp, user: &User, id: &str) -> Vec<Value> {
    let events = expect_status(
        app.get(&format!("/v1/expenses/{id}/history"), &user.token)
            .await,
        StatusCode::OK,
    )
    .await;
    events.as_array().unwrap().clone()
}

async fn chains_of_one_two_and_three_steps(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = organization(&app).await;

    // Up to 500: one approver.
    let small = submitted(&app, &org.employee, "500.00").await;
    let approved = approve(&app, &org.approver, &small).await;
    assert_eq!(approved["status"], "approved");
    assert_eq!(steps(&approved), ["approver"]);

    // Over 500: the manager, then finance; each step an event.
    let middle = submitted(&app, &org.employee, "600.00").await;
    let (status, refused) = decide(&app, &org.finance, &middle, "approve").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "finance waits for the manager: {refused}"
    );
    let first = approve(&app, &org.manager, &middle).await;
    assert_eq!(first["status"], "submitted");
    assert_eq!(first["awaiting_step"], 2);
    assert_eq!(steps(&first), ["manager", "finance"]);
    assert_eq!(
        first["approval_steps"][0]["user_id"],
        org.manager.user_id.as_str()
    );
    assert_eq!(
        first["approval_steps"][0]["approved_by"],
        org.manager.user_id.as_str()
    );
    let done = approve(&app, &org.finance, &middle).await;
    assert_eq!(done["status"], "approved");
    let kinds: Vec<String> = history(&app, &org.admin, &middle)
        .await
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "ExpenseCreated",
            "ExpenseSubmitted",
            "ExpenseStepApproved",
            "ExpenseApproved"
        ]
    );

    // Over 10,000: manager, finance, admin.
    let big = submitted(&app, &org.employee, "12000.00").await;
    approve(&app, &org.manager, &big).await;
    approve(&app, &org.finance, &big).await;
    let (status, _) = decide(&app, &org.finance2, &big, "approve").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the last step is an admin's");
    let done = approve(&app, &org.admin, &big).await;
    assert_eq!(done["status"], "approved");
    assert_eq!(steps(&done), ["manager", "finance", "admin"]);

    // A rejection mid-chain ends it.
    let rejected = submitted(&app, &org.employee, "700.00").await;
    approve(&app, &org.manager, &rejected).await;
    let (status, body) = decide(&app, &org.finance, &rejected, "reject").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "rejected");
    assert_eq!(body["awaiting_step"], Value::Null);
    let (status, _) = decide(&app, &org.finance2, &rejected, "approve").await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "nothing is awaited after a rejection"
    );

    // An edit after a partial approval withdraws the expense; resubmitted, its chain
    // starts again from the manager.
    let edited = submitted(&app, &org.employee, "800.00").await;
    approve(&app, &org.manager, &edited).await;
    let path = format!("/v1/expenses/{edited}");
    let withdrawn = app
        .send_ok(
            Method::PATCH,
            &path,
            &org.employee,
            json!({"amount": "850.00"}),
        )
        .await;
    assert_eq!(withdrawn["status"], "draft");
    assert_eq!(withdrawn["approval_steps"], json!([]));
    let (status, _) = decide(&app, &org.finance, &edited, "approve").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let again = app
        .send_ok(
            Method::POST,
            &format!("{path}/submit"),
            &org.employee,
            Value::Null,
        )
        .await;
    assert_eq!(again["awaiting_step"], 1);
    assert_eq!(again["approval_steps"][0]["approved_by"], Value::Null);
    let (status, _) = decide(&app, &org.finance, &edited, "approve").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the manager decides first again"
    );
    approve(&app, &org.manager, &edited).await;
    assert_eq!(
        approve(&app, &org.finance, &edited).await["status"],
        "approved"
    );

    // A delegate decides for the absent manager; both are recorded. The delegate's
    // queue shows what awaits the manager.
    let today = chrono::Utc::now().date_naive();
    let response = app
        .post(
            "/v1/me/delegation",
            Some(&org.manager.token),
            json!({"delegate_id": org.approver.user_id, "from": today,
                   "until": today + chrono::Duration::days(3)}),
        )
        .await;
    expect_status(response, StatusCode::OK).await;
    let (away, written) = submitted_with_token(&app, &org.employee, "900.00").await;
    let queue = expect_status(
        app.get_after("/v1/approvals?limit=500", &org.approver.token, &written)
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(
        queue["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == away.as_str()),
        "{queue}"
    );
    let finance_queue = expect_status(
        app.get_after("/v1/approvals?limit=500", &org.finance.token, &written)
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(
        !finance_queue["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == away.as_str()),
        "finance's step is not awaited yet"
    );
    let first = approve(&app, &org.approver, &away).await;
    assert_eq!(
        first["approval_steps"][0]["approved_by"],
        org.approver.user_id.as_str()
    );
    assert_eq!(
        first["approval_steps"][0]["on_behalf_of"],
        org.manager.user_id.as_str()
    );
    let step = history(&app, &org.admin, &away)
        .await
        .into_iter()
        .find(|e| e["event_type"] == "ExpenseStepApproved")
        .unwrap();
    assert_eq!(
        step["payload"]["approver_id"],
        org.approver.user_id.as_str()
    );
    assert_eq!(
        step["payload"]["on_behalf_of"],
        org.manager.user_id.as_str()
    );
    assert_eq!(
        approve(&app, &org.finance, &away).await["status"],
        "approved"
    );

    // No manager, no chain that starts with one.
    let orphan = app.add_user(&org.admin, "otto@acme.test", "employee").await;
    let body = json!({"amount": "999.00", "currency": "EUR", "merchant": "Hotel",
                      "category": "travel", "spent_on": "2026-06-05"});
    let created = app
        .send_ok(Method::POST, "/v1/expenses", &orphan, body)
        .await;
    let response = app
        .post(
            &format!("/v1/expenses/{}/submit", created["id"].as_str().unwrap()),
            Some(&orphan.token),
            Value::Null,
        )
        .await;
    let refused = expect_status(response, StatusCode::CONFLICT).await;
    assert_eq!(refused["violations"][0]["rule"], "over-500", "{refused}");
    app.finish().await;
}

/// Who may take a step, as a matrix: each row an actor and the step awaited, with the
/// answer the API must give.
async fn segregation_of_duties(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = organization(&app).await;
    // The approver's manager is the employee's manager too; finance manages a second
    // employee, so that one person holds a manager's and finance's step of one chain.
    set_manager(&app, &org.admin, &org.approver, &org.manager).await;
    let second = app.add_user(&org.admin, "sam@acme.test", "employee").await;
    set_manager(&app, &org.admin, &second, &org.finance).await;

    let small = submitted(&app, &org.employee, "100.00").await;
    let own_small = submitted(&app, &org.approver, "100.00").await;
    let chained = submitted(&app, &org.employee, "600.00").await;
    let of_finance = submitted(&app, &second, "600.00").await;
    approve(&app, &org.finance, &of_finance).await;
    let cases: [(&str, &User, &str, StatusCode); 10] = [
        (
            "an employee approves",
            &second,
            small.as_str(),
            StatusCode::FORBIDDEN,
        ),
        (
            "an auditor approves",
            &org.auditor,
            small.as_str(),
            StatusCode::FORBIDDEN,
        ),
        (
            "finance takes an approver's step",
            &org.finance,
            small.as_str(),
            StatusCode::FORBIDDEN,
        ),
        (
            "an approver approves their own",
            &org.approver,
            own_small.as_str(),
            StatusCode::FORBIDDEN,
        ),
        (
            "another approver takes an approver's own",
            &org.manager,
            own_small.as_str(),
            StatusCode::OK,
        ),
        (
            "finance takes the manager's step",
            &org.finance,
            chained.as_str(),
            StatusCode::FORBIDDEN,
        ),
        (
            "an admin takes the manager's step",
            &org.admin,
            chained.as_str(),
            StatusCode::FORBIDDEN,
        ),
        (
            "the manager who took step 1 takes finance's",
            &org.finance,
            of_finance.as_str(),
            StatusCode::FORBIDDEN,
        ),
        (
            "another finance takes step 2",
            &org.finance2,
            of_finance.as_str(),
            StatusCode::OK,
        ),
        (
            "an admin takes an approver's step",
            &org.admin,
            small.as_str(),
            StatusCode::OK,
        ),
    ];
    let mut wrong = Vec::new();
    for (what, actor, id, expected) in cases {
        let (status, body) = decide(&app, actor, id, "approve").await;
        if status != expected {
            wrong.push(format!("{what}: {status} (wanted {expected}) {body}"));
        }
    }
    assert_eq!(wrong, Vec::<String>::new());

    // A delegate is held to the same rules for both people: not on their own expense,
    // and not two steps of one chain.
    let today = chrono::Utc::now().date_naive();
    let until = today + chrono::Duration::days(1);
    for (delegator, delegate) in [(&org.manager, &org.approver), (&org.finance, &org.finance2)] {
        let response = app
            .post(
                "/v1/me/delegation",
                Some(&delegator.token),
                json!({"delegate_id": delegate.user_id, "from": today, "until": until}),
            )
            .await;
        expect_status(response, StatusCode::OK).await;
    }
    let own_chained = submitted(&app, &org.approver, "600.00").await;
    let (status, body) = decide(&app, &org.approver, &own_chained, "approve").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "as their manager's delegate: {body}"
    );
    let delegated = submitted(&app, &second, "650.00").await;
    let first = approve(&app, &org.finance2, &delegated).await;
    assert_eq!(
        first["approval_steps"][0]["on_behalf_of"],
        org.finance.user_id.as_str()
    );
    let (status, body) = decide(&app, &org.finance2, &delegated, "approve").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the delegate took step 1: {body}"
    );
    let (status, body) = decide(&app, &org.finance, &delegated, "approve").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "step 1 was taken for them: {body}"
    );
    // Chains only name each kind of approver once.
    let response = app
        .request(Method::PUT, "/v1/policy", Some(&org.admin.token))
        .json(&json!({"rules": [], "approval_chains": [
            {"id": "twice", "steps": ["finance", "finance"]}]}))
        .send()
        .await
        .unwrap();
    let refused = expect_status(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(refused["errors"][0]["field"], "approval_chains[0] (twice)");
    app.finish().await;
}

async fn a_waiting_step_is_reminded_once_per_period(backend: Backend) {
    let smtp = SmtpServer::start();
    let mut env = smtp.environment();
    env.push(("APPROVAL_REMIND_AFTER", "4s".to_string()));
    let app = TestApp::builder(backend).env(env).start().await;
    let org = organization(&app).await;
    let id = submitted(&app, &org.employee, "600.00").await;
    let response = app
        .post(
            &format!("/v1/expenses/{id}/approve"),
            Some(&org.manager.token),
            Value::Null,
        )
        .await;
    let written = consistency(&response);
    expect_status(response, StatusCode::OK).await;
    assert!(!written.is_empty());
    let reminders = || -> Vec<String> {
        smtp.mails()
            .into_iter()
            .filter(|m| m.contains("Subject: Reminder: expense to approve"))
            .collect()
    };
    // The finance step began now: after 4 s each finance member gets one reminder (the
    // manager, who decided, none), and no second one until 8 s have passed.
    let started = std::time::Instant::now();
    while reminders().len() < 2 && started.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let first = started.elapsed();
    assert!(first >= Duration::from_secs(3), "reminded after {first:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sent = reminders();
    let to = |user: &str| sent.iter().filter(|m| m.contains(user)).count();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(to("fin@acme.test"), 1);
    assert_eq!(to("fran@acme.test"), 1);
    assert_eq!(to("mia@acme.test"), 0);
    app.finish().await;
}

on_both_backends!(
    chains_of_one_two_and_three_steps,
    segregation_of_duties,
    a_waiting_step_is_reminded_once_per_period
);
