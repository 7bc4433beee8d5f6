use expensewise_infra::event_store::Scope;
use expensewise_tests::{
    consistency, expect_problem, expect_status, on_both_backends, send_concurrently, Backend,
    TestApp, PASSWORD,
};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn a_new_organization_signs_in_its_admin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let me = expect_status(app.get("/v1/me", &admin.token).await, StatusCode::OK).await;
    assert_eq!(me["role"], "admin");
    assert_eq!(me["email"], "ada@acme.test");
    assert_eq!(me["organization_id"], admin.organization_id.as_str());

    let login = app.login("ADA@acme.test").await;
    assert_eq!(login.user_id, admin.user_id);
    app.finish().await;
}

async fn an_email_is_registered_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("Acme", "ada@acme.test").await;
    let again = app
        .post(
            "/v1/auth/register",
            None,
            json!({"organization": "Other", "name": "Ada", "email": "Ada@Acme.test", "password": PASSWORD}),
        )
        .await;
    expect_problem(again, StatusCode::CONFLICT).await;
    app.finish().await;
}

async fn concurrent_registrations_of_one_email_create_one_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let attempts = (0..8).map(|i| {
        app.request(Method::POST, "/v1/auth/register", None).json(
            &json!({"organization": format!("Org {i}"), "name": "Ada", "email": "race@acme.test", "password": PASSWORD}),
        )
    });
    let statuses = send_concurrently(attempts).await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "statuses: {statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "statuses: {statuses:?}"
    );
    app.login("race@acme.test").await;
    app.finish().await;
}

async fn wrong_password_and_unknown_email_get_the_same_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("Acme", "ada@acme.test").await;
    let wrong = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "ada@acme.test", "password": "not the password"}),
        )
        .await;
    let wrong = expect_problem(wrong, StatusCode::UNAUTHORIZED).await;
    let unknown = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "nobody@acme.test", "password": PASSWORD}),
        )
        .await;
    let unknown = expect_problem(unknown, StatusCode::UNAUTHORIZED).await;
    assert_eq!(wrong, unknown);
    app.finish().await;
}

async fn registration_names_every_invalid_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .post(
            "/v1/auth/register",
            None,
            json!({"organization": "", "name": "Ada", "email": "not-an-email", "password": "short"}),
        )
        .await;
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let fields: Vec<&str> = problem.fields();
    assert_eq!(fields, ["email", "organization", "password"]);
    app.finish().await;
}

async fn requests_without_a_valid_token_are_unauthorized(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let none = app
        .request(Method::GET, "/v1/me", None)
        .send()
        .await
        .unwrap();
    expect_problem(none, StatusCode::UNAUTHORIZED).await;
    let forged = app
        .get(
            "/v1/me",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
        )
        .await;
    expect_problem(forged, StatusCode::UNAUTHORIZED).await;
    app.finish().await;
}

async fn admins_manage_users_and_deactivation_revokes_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let added = app
        .post(
            "/v1/users",
            Some(&admin.token),
            json!({"name": "Bob", "email": "bob@acme.test", "password": PASSWORD, "role": "employee"}),
        )
        .await;
    let token = consistency(&added);
    expect_status(added, StatusCode::CREATED).await;
    let bob = app.login("bob@acme.test").await;

    // The list is a read model: the command's token makes it include the new user.
    let list = expect_status(
        app.get_after("/v1/users", &admin.token, &token).await,
        StatusCode::OK,
    )
    .await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let listed_bob = items
        .iter()
        .find(|u| u["user_id"] == bob.user_id.as_str())
        .expect("bob is listed");
    assert_eq!(listed_bob["email"], "bob@acme.test");
    assert_eq!(listed_bob["role"], "employee");
    assert_eq!(listed_bob["active"], true);
    assert_eq!(list["next_cursor"], serde_json::Value::Null);
    let page = expect_status(
        app.get("/v1/users?limit=1", &admin.token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let next = page["next_cursor"].as_str().expect("a cursor");
    let rest = expect_status(
        app.get(&format!("/v1/users?limit=1&cursor={next}"), &admin.token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_ne!(rest["items"][0]["user_id"], page["items"][0]["user_id"]);

    let forbidden = app.get("/v1/users", &bob.token).await;
    expect_problem(forbidden, StatusCode::FORBIDDEN).await;

    let promoted = app
        .request(
            Method::PATCH,
            &format!("/v1/users/{}", bob.user_id),
            Some(&admin.token),
        )
        .json(&json!({"role": "approver"}))
        .send()
        .await
        .unwrap();
    let promoted = expect_status(promoted, StatusCode::OK).await;
    assert_eq!(promoted["role"], "approver");
    let me = expect_status(app.get("/v1/me", &bob.token).await, StatusCode::OK).await;
    assert_eq!(
        me["role"], "approver",
        "a role change applies to existing tokens"
    );

    let deactivated = app
        .request(
            Method::PATCH,
            &format!("/v1/users/{}", bob.user_id),
            Some(&admin.token),
        )
        .json(&json!({"active": false}))
        .send()
        .await
        .unwrap();
    let token = consistency(&deactivated);
    assert_eq!(
        expect_status(deactivated, StatusCode::OK).await["active"],
        false
    );
    let list = expect_status(
        app.get_after("/v1/users", &admin.token, &token).await,
        StatusCode::OK,
    )
    .await;
    let listed_bob = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user_id"] == bob.user_id.as_str())
        .expect("bob is still listed");
    assert_eq!(listed_bob["active"], false);
    assert_eq!(listed_bob["role"], "approver");
    expect_problem(
        app.get("/v1/me", &bob.token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let login = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "bob@acme.test", "password": PASSWORD}),
        )
        .await;
    expect_problem(login, StatusCode::UNAUTHORIZED).await;
    app.finish().await;
}

async fn the_last_admin_cannot_be_removed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let response = app
        .request(
            Method::PATCH,
            &format!("/v1/users/{}", admin.user_id),
            Some(&admin.token),
        )
        .json(&json!({"active": false}))
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::CONFLICT).await;
    app.finish().await;
}

async fn users_of_another_organization_are_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let acme = app.register("Acme", "ada@acme.test").await;
    let globex = app.register("Globex", "hank@globex.test").await;
    let response = app
        .request(
            Method::PATCH,
            &format!("/v1/users/{}", globex.user_id),
            Some(&acme.token),
        )
        .json(&json!({"role": "auditor"}))
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::NOT_FOUND).await;
    app.finish().await;
}

/// Each API process keeps organizations in memory; a change written by another process
/// (another replica) must still apply to the very next request.
async fn a_deactivation_by_another_replica_applies_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let bob = app.add_user(&admin, "bob@acme.test", "approver").await;
    // Both organizations' current versions are now in the API's memory.
    expect_status(app.get("/v1/me", &bob.token).await, StatusCode::OK).await;
    expect_status(app.get("/v1/me", &admin.token).await, StatusCode::OK).await;

    let db = app.database.connect().await;
    let other_replica = app.database.event_store(&db).await;
    let organization_id = uuid::Uuid::parse_str(&admin.organization_id).unwrap();
    let command = expensewise_domain::organization::OrganizationCommand::DeactivateUser {
        actor_id: uuid::Uuid::parse_str(&admin.user_id).unwrap(),
        user_id: uuid::Uuid::parse_str(&bob.user_id).unwrap(),
        at: chrono::Utc::now(),
    };
    other_replica
        .execute::<expensewise_domain::Organization>(
            &Scope::none(),
            &admin.organization_id,
            command,
            &expensewise_tests::event_metadata(organization_id, None),
        )
        .await
        .unwrap();
    expect_problem(
        app.get("/v1/me", &bob.token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    expect_status(app.get("/v1/me", &admin.token).await, StatusCode::OK).await;
    db.close().await;
    app.finish().await;
}

on_both_backends!(
    a_deactivation_by_another_replica_applies_at_once,
    a_new_organization_signs_in_its_admin,
    an_email_is_registered_once,
    concurrent_registrations_of_one_email_create_one_account,
    wrong_password_and_unknown_email_get_the_same_answer,
    registration_names_every_invalid_field,
    requests_without_a_valid_token_are_unauthorized,
    admins_manage_users_and_deactivation_revokes_tokens,
    the_last_admin_cannot_be_removed,
    users_of_another_organization_are_not_found,
);
