//! Rebuilding read models from the events while the API keeps answering.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use expensewise_tests::{
    assert_read_models_equal_a_rebuild, consistency, expect_problem, expect_status, expense_body,
    on_both_backends, Backend, TestApp, PASSWORD,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn a_rebuild_during_a_stream_of_commands_is_identical_and_queries_keep_answering(
    backend: Backend,
) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let admin = app.register("Acme", "ada@acme.test").await;
    for _ in 0..30 {
        app.create_expense(&admin).await;
    }
    let running = Arc::new(AtomicBool::new(true));
    let commands = {
        let (app, admin, running) = (app.clone(), admin.clone(), running.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while running.load(Ordering::Relaxed) {
                let created = app.create_expense(&admin).await;
                let id = created.id.clone();
                let submitted = app
                    .post(
                        &format!("/v1/expenses/{id}/submit"),
                        Some(&admin.token),
                        Value::Null,
                    )
                    .await;
                expect_status(submitted, StatusCode::OK).await;
                if n % 5 == 0 {
                    // Membership changes too, for the users read model.
                    let added = app
                        .post(
                            "/v1/users",
                            Some(&admin.token),
                            json!({"name": "Eve", "email": format!("eve{n}@acme.test"), "password": PASSWORD, "role": "employee"}),
                        )
                        .await;
                    expect_status(added, StatusCode::CREATED).await;
                }
                n += 1;
            }
            n
        })
    };
    let failed_queries = Arc::new(AtomicUsize::new(0));
    let queries = {
        let (app, admin, running, failed) = (
            app.clone(),
            admin.clone(),
            running.clone(),
            failed_queries.clone(),
        );
        tokio::spawn(async move {
            let mut n = 0;
            while running.load(Ordering::Relaxed) {
                let response = app.get("/v1/expenses?limit=5", &admin.token).await;
                if response.status() != StatusCode::OK {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let db = app.database.connect().await;
    let vault = app.database.vault(&db).await;
    for (model, report) in expensewise_tests::rebuild_all(&db, &vault).await {
        assert!(report.identical(), "{model}: {report:?}");
        assert!(report.swapped);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.store(false, Ordering::Relaxed);
    let commands = commands.await.unwrap();
    let queries = queries.await.unwrap();
    assert!(
        commands > 0 && queries > 0,
        "commands {commands}, queries {queries}"
    );
    assert_eq!(
        failed_queries.load(Ordering::Relaxed),
        0,
        "no query failed during the rebuild"
    );

    // After the swap the live model keeps following the events, and still equals a
    // rebuild from scratch.
    let last = app
        .post("/v1/expenses", Some(&admin.token), expense_body())
        .await;
    let token = consistency(&last);
    expect_status(last, StatusCode::CREATED).await;
    let page = app
        .get_after("/v1/expenses?limit=500", &admin.token, &token)
        .await;
    let page = expect_status(page, StatusCode::OK).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 30 + commands + 1);
    let users = expect_status(
        app.get_after("/v1/users?limit=500", &admin.token, &token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        users["items"].as_array().unwrap().len(),
        1 + commands.div_ceil(5)
    );
    assert_read_models_equal_a_rebuild(&db, &app.database.vault(&db).await).await;
    db.close().await;
    Arc::into_inner(app).unwrap().finish().await;
}

async fn admins_start_rebuilds_over_http(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let eve = app.add_user(&admin, "eve@acme.test", "employee").await;
    let created = app
        .post("/v1/expenses", Some(&eve.token), expense_body())
        .await;
    let token = consistency(&created);
    expect_status(created, StatusCode::CREATED).await;
    expect_status(
        app.get_after("/v1/expenses", &admin.token, &token).await,
        StatusCode::OK,
    )
    .await;

    let started = app
        .request(
            Method::POST,
            "/v1/admin/projections/expenses/rebuild",
            Some(&admin.token),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_status(started, StatusCode::ACCEPTED).await["name"],
        "expenses"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let list = expect_status(
            app.get("/v1/admin/projections", &admin.token).await,
            StatusCode::OK,
        )
        .await;
        let expenses = &list[0];
        assert_eq!(expenses["name"], "expenses");
        if expenses["status"] == "caught_up" {
            assert_eq!(expenses["lag"], 0);
            assert_eq!(expenses["position"], expenses["head_position"]);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rebuild did not finish: {list}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = expect_status(app.get("/v1/expenses", &admin.token).await, StatusCode::OK).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);

    let unknown = app
        .request(
            Method::POST,
            "/v1/admin/projections/nothing/rebuild",
            Some(&admin.token),
        )
        .send()
        .await
        .unwrap();
    expect_problem(unknown, StatusCode::NOT_FOUND).await;
    expect_problem(
        app.get("/v1/admin/projections", &eve.token).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    app.finish().await;
}

on_both_backends!(
    a_rebuild_during_a_stream_of_commands_is_identical_and_queries_keep_answering,
    admins_start_rebuilds_over_http,
);
