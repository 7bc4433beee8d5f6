//! Personal access tokens: each operation takes exactly the scope its OpenAPI document
//! names (a matrix built from the document the server serves), tokens stop working when
//! revoked, expired or their owner is deactivated, and their secrets are kept nowhere but
//! as a hash beside the log.

use std::time::Duration;

use expensewise_infra::on_database;
use expensewise_tests::{expect_problem, expect_status, on_both_backends, Backend, TestApp, User};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const SCOPES: [&str; 6] = [
    "expenses:read",
    "expenses:write",
    "receipts:write",
    "approvals:write",
    "audit:read",
    "admin",
];

async fn issue(app: &TestApp, user: &User, scopes: &[&str], expires_at: Option<String>) -> Value {
    let mut body = json!({"name": format!("program with {scopes:?}"), "scopes": scopes});
    if let Some(at) = expires_at {
        body["expires_at"] = json!(at);
    }
    expect_status(
        app.post("/v1/tokens", Some(&user.token), body).await,
        StatusCode::CREATED,
    )
    .await
}

/// What the document says a token needs for an operation: `None` when tokens may not
/// call it at all, `Some(None)` when any token may, `Some(Some(scope))` otherwise.
fn token_needs(operation: &Value) -> Option<Option<String>> {
    operation["security"]
        .as_array()?
        .iter()
        .find_map(|requirement| requirement.get("token"))
        .map(|scopes| scopes[0].as_str().map(str::to_string))
}

async fn every_operation_takes_exactly_the_scope_its_document_names(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let mut tokens = Vec::new();
    for scope in SCOPES {
        let issued = issue(&app, &admin, &[scope], None).await;
        tokens.push((scope, issued["token"].as_str().unwrap().to_string()));
    }
    let document: Value = app
        .request(Method::GET, "/openapi.json", None)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let nowhere = uuid::Uuid::new_v4().to_string();
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if operation["security"].as_array().is_none_or(Vec::is_empty) {
                continue;
            }
            let needs = token_needs(operation);
            // Path parameters name nothing that exists: what is allowed gets as far as
            // "not found" or "invalid", never to a change.
            let concrete = path.replace("{id}", &nowhere).replace("{name}", "nothing");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for (scope, token) in &tokens {
                let mut request = app.request(method.clone(), &concrete, Some(token));
                if matches!(method, Method::POST | Method::PUT | Method::PATCH) {
                    request = request.json(&json!({}));
                }
                let response = request.send().await.unwrap();
                let status = response.status();
                let body = response.text().await.unwrap();
                let what = format!("{method} {path} with a token of {scope}: {status} {body}");
                match &needs {
                    None => {
                        assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
                        assert!(body.contains("sign in"), "{what}");
                    }
                    Some(Some(needed)) if needed != scope && *scope != "admin" => {
                        assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
                        assert!(body.contains(needed.as_str()), "names the scope: {what}");
                    }
                    _ => {
                        assert_ne!(status, StatusCode::UNAUTHORIZED, "{what}");
                        assert!(
                            status != StatusCode::FORBIDDEN || !body.contains("token"),
                            "{what}"
                        );
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 6 * 28,
        "{checked} calls: every operation with every scope"
    );

    // And what a token of the right scope does is what its owner may do.
    let (_, reader) = &tokens[0];
    let listed = expect_status(app.get("/v1/expenses", reader).await, StatusCode::OK).await;
    assert!(listed["items"].is_array());
    let (_, writer) = &tokens[1];
    let created = app
        .request(Method::POST, "/v1/expenses", Some(writer))
        .json(&expensewise_tests::expense_body())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    app.finish().await;
}

async fn a_token_stops_working_when_revoked_expired_or_its_owner_is_deactivated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let eve = app.add_user(&admin, "eve@acme.test", "employee").await;
    let me = |token: &str| {
        let token = token.to_string();
        let app = &app;
        async move { app.get("/v1/me", &token).await.status() }
    };

    // An employee may not give a token the admin scope; unknown scopes are named.
    let refused = expect_problem(
        app.post(
            "/v1/tokens",
            Some(&eve.token),
            json!({"name": "x", "scopes": ["admin"]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused.errors[0].field, "scopes");
    let unknown = expect_problem(
        app.post(
            "/v1/tokens",
            Some(&eve.token),
            json!({"name": "x", "scopes": ["everything"]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(unknown.errors[0].message.contains("everything"));

    let revoked = issue(&app, &eve, &["expenses:read"], None).await;
    let revoked_token = revoked["token"].as_str().unwrap();
    assert_eq!(me(revoked_token).await, StatusCode::OK);
    // A token cannot revoke itself or anything else.
    let path = format!("/v1/tokens/{}", revoked["id"].as_str().unwrap());
    let by_token = app
        .request(Method::DELETE, &path, Some(revoked_token))
        .send()
        .await
        .unwrap();
    assert_eq!(by_token.status(), StatusCode::FORBIDDEN);
    let gone = app
        .request(Method::DELETE, &path, Some(&eve.token))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(revoked_token).await, StatusCode::UNAUTHORIZED);
    let again = app
        .request(Method::DELETE, &path, Some(&eve.token))
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::NO_CONTENT,
        "revoking twice changes nothing"
    );

    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let expiring = issue(&app, &eve, &["expenses:read"], Some(soon)).await;
    let expiring = expiring["token"].as_str().unwrap();
    assert_eq!(me(expiring).await, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(me(expiring).await, StatusCode::UNAUTHORIZED);

    let kept = issue(&app, &eve, &["expenses:read"], None).await;
    let kept_token = kept["token"].as_str().unwrap();
    assert_eq!(me(kept_token).await, StatusCode::OK);
    // The list shows when a token was used, never the token.
    let listed = expect_status(app.get("/v1/tokens", &eve.token).await, StatusCode::OK).await;
    let text = listed.to_string();
    assert!(
        !text.contains(kept_token) && !text.contains("ewt_"),
        "{text}"
    );
    let entry = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == kept["id"])
        .unwrap()
        .clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut entry = entry;
    while entry["last_used_at"].is_null() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let listed = expect_status(app.get("/v1/tokens", &eve.token).await, StatusCode::OK).await;
        entry = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == kept["id"])
            .unwrap()
            .clone();
    }
    assert!(entry["last_used_at"].is_string(), "{entry}");
    assert_eq!(entry["scopes"], json!(["expenses:read"]));

    let deactivate = app
        .request(
            Method::PATCH,
            &format!("/v1/users/{}", eve.user_id),
            Some(&admin.token),
        )
        .json(&json!({"active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(deactivate.status(), StatusCode::OK);
    assert_eq!(me(kept_token).await, StatusCode::UNAUTHORIZED);

    // No token, and no secret of one, is in the history.
    let db = app.database.connect().await;
    let stored: Vec<String> = on_database!(&db, |pool| {
        sqlx::query_scalar::<_, String>("SELECT CAST(payload AS text) FROM events")
            .fetch_all(pool)
            .await
            .unwrap()
    });
    let secret = kept_token.rsplit('_').next().unwrap();
    assert!(stored.iter().all(|e| !e.contains(secret)));
    assert!(stored.iter().any(|e| e.contains("ApiTokenRevoked")));
    db.close().await;
    app.finish().await;
}

on_both_backends!(
    every_operation_takes_exactly_the_scope_its_document_names,
    a_token_stops_working_when_revoked_expired_or_its_owner_is_deactivated,
);
