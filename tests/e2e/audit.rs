use expensewise_infra::Database;
use expensewise_tests::{expect_problem, expect_status, on_both_backends, Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::Value;

async fn the_audit_log_pages_filters_streams_and_stays_in_its_organization(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let auditor = app.add_user(&admin, "aud@acme.test", "auditor").await;
    let eve = app.add_user(&admin, "eve@acme.test", "employee").await;
    let other = app.register("Globex", "hank@globex.test").await;
    app.create_expense(&other).await;
    let mut expenses = Vec::new();
    for _ in 0..3 {
        let created = app.create_expense(&eve).await;
        let id = created.id.clone();
        app.post(
            &format!("/v1/expenses/{id}/submit"),
            Some(&eve.token),
            Value::Null,
        )
        .await;
        expenses.push(id);
    }

    // The log hands out only events of finished transactions (so a cursor never skips
    // one); on a PostgreSQL cluster shared with other tests that can lag a moment. The
    // submissions are the last events, so once they are in the audit log all are.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let all = app
            .get(
                "/v1/audit/events?event_type=ExpenseSubmitted",
                &auditor.token,
            )
            .await;
        let all = expect_status(all, StatusCode::OK).await;
        let all = all["events"].as_array().unwrap();
        // Each event has its leaf in the audit log within moments of its commit; until
        // then the pages and the stream below could differ in it.
        let in_log = all.iter().all(|e| e["leaf_index"].is_u64());
        if (all.len() == 3 && in_log) || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let mut paged: Vec<Value> = Vec::new();
    let mut path = "/v1/audit/events?limit=4".to_string();
    loop {
        let page = expect_status(app.get(&path, &auditor.token).await, StatusCode::OK).await;
        paged.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["next_after"].as_str() {
            Some(after) => path = format!("/v1/audit/events?limit=4&after={after}"),
            None => break,
        }
    }
    // Registration, two added users and their e-mail claims, then 3 × (created, submitted).
    let types: Vec<&str> = paged
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types.iter().filter(|t| **t == "ExpenseCreated").count(),
        3,
        "{types:?}"
    );
    assert_eq!(
        types.iter().filter(|t| **t == "ExpenseSubmitted").count(),
        3
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == "OrganizationRegistered")
            .count(),
        1,
        "Globex is not ours"
    );
    assert!(paged
        .iter()
        .all(|e| e["aggregate_id"] != other.organization_id.as_str()));
    assert!(
        paged
            .iter()
            .all(|e| !e["payload"].to_string().contains("argon2")),
        "no password hashes"
    );
    let cursors: Vec<&str> = paged
        .iter()
        .map(|e| e["global_position"].as_str().unwrap())
        .collect();
    let mut unique = cursors.clone();
    unique.dedup();
    assert_eq!(unique.len(), cursors.len(), "no event twice");

    let stream = app
        .request(Method::GET, "/v1/audit/events", Some(&auditor.token))
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "application/x-ndjson");
    let text = stream.text().await.unwrap();
    let streamed: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(streamed, paged, "the stream is the pages joined");

    let one = format!(
        "/v1/audit/events?aggregate_type=expense&aggregate_id={}",
        expenses[1]
    );
    let one = expect_status(app.get(&one, &admin.token).await, StatusCode::OK).await;
    let seqs: Vec<i64> = one["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2]);
    let submitted = expect_status(
        app.get("/v1/audit/events?event_type=ExpenseSubmitted", &admin.token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(submitted["events"].as_array().unwrap().len(), 3);
    let future = expect_status(
        app.get("/v1/audit/events?from=2999-01-01T00:00:00Z", &admin.token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(future["events"], serde_json::json!([]));
    let past = expect_status(
        app.get("/v1/audit/events?to=2000-01-01T00:00:00Z", &admin.token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(past["events"], serde_json::json!([]));
    let recent = expect_status(
        app.get(
            "/v1/audit/events?from=2000-01-01T00:00:00Z&limit=1000",
            &admin.token,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(recent["events"].as_array().unwrap().len(), paged.len());
    assert!(recent["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["payload"].is_object()));

    expect_problem(
        app.get("/v1/audit/events", &eve.token).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    expect_problem(
        app.get("/v1/audit/events?after=nonsense", &admin.token)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    expect_problem(
        app.get("/v1/audit/events?limit=0", &admin.token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    app.finish().await;
}

on_both_backends!(the_audit_log_pages_filters_streams_and_stays_in_its_organization);

/// An admin's own write is in the audit log they list right after it, though a
/// transaction begun before it elsewhere on the database server holds the global order
/// back: the listing waits for that transaction to end.
#[tokio::test]
async fn the_callers_own_write_is_in_the_audit_log_they_list_next() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let db = app.database.connect().await;
    let Database::Postgres(pool) = &db else {
        panic!("a PostgreSQL database");
    };
    let mut earlier = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *earlier)
        .await
        .unwrap();
    let created = app.create_expense(&admin).await;
    let ends = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        earlier.commit().await.unwrap();
    });
    let page = expect_status(
        app.get(
            &format!(
                "/v1/audit/events?aggregate_type=expense&aggregate_id={}",
                created.id
            ),
            &admin.token,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let types: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["ExpenseCreated"]);
    ends.await.unwrap();
    db.close().await;
    app.finish().await;
}
