//! Queries read a real streaming replica (`DATABASE_READ_URL`, made by `pg_basebackup`)
//! and still read every write just made; a replica that stops replaying is passed over
//! for the primary, and read again once it has caught up.

use std::time::Duration;

use expensewise_tests::{
    consistency, expect_json, expect_status, Backend, Expense, Page, Replication, TestApp,
    TestDatabase, User,
};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A series' value in `/metrics` (0 when it has not been recorded yet).
async fn metric(app: &TestApp, series: &str) -> f64 {
    let response = app
        .request(Method::GET, "/metrics", None)
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

const REPLICA_READS: &str = "expensewise_read_queries_total{database=\"replica\"}";

/// How many reads the replica answered and how many it was passed over for, so far.
async fn reads(app: &TestApp) -> (f64, f64) {
    let mut passed_over = 0.0;
    for reason in ["lagging", "not_yet", "failed"] {
        passed_over += metric(
            app,
            &format!("expensewise_read_replica_passed_over_total{{reason=\"{reason}\"}}"),
        )
        .await;
    }
    (metric(app, REPLICA_READS).await, passed_over)
}

/// `/ready`'s view of the replica, once `until` holds for it (at most 20 s).
async fn replica_until(app: &TestApp, what: &str, until: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let response = app
            .request(Method::GET, "/ready", None)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "a replica never decides readiness"
        );
        let ready: Value = response.json().await.unwrap();
        if until(&ready["read_replica"]) {
            return ready["read_replica"].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replica never became {what}: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates an expense and reads it back, alone and in the owner's list, without a
/// token; then the approver reads it, submitted, with the owner's token.
async fn write_and_read(app: &TestApp, owner: &User, approver: &User) {
    let expense: Expense = app.create_expense(owner).await;
    let one: Expense = expect_json(
        app.get(&format!("/v1/expenses/{}", expense.id), &owner.token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(one.version, expense.version);
    let list: Page<Expense> = expect_json(
        app.get("/v1/expenses?limit=100", &owner.token).await,
        StatusCode::OK,
    )
    .await;
    assert!(
        list.items.iter().any(|e| e.id == expense.id),
        "the owner's list lacks what it just created"
    );
    let submitted = app
        .post(
            &format!("/v1/expenses/{}/submit", expense.id),
            Some(&owner.token),
            Value::Null,
        )
        .await;
    let token = consistency(&submitted);
    expect_status(submitted, StatusCode::OK).await;
    let queue: Page<Expense> = expect_json(
        app.get_after("/v1/approvals?limit=100", &approver.token, &token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(
        queue.items.iter().any(|e| e.id == expense.id),
        "the approver's queue lacks the expense the token names"
    );
}

#[tokio::test]
async fn queries_read_the_replica_their_writes_included_and_pass_over_one_that_lags() {
    let servers = Replication::start();
    let database = TestDatabase::create_on(&servers.primary_admin_url()).await;
    let app = TestApp::builder(Backend::Postgres)
        .env(vec![("DATABASE_READ_URL", servers.replica_url(&database))])
        .start_on(database)
        .await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let owner = app.add_user(&admin, "emma@acme.test", "employee").await;
    let approver = app.add_user(&admin, "alan@acme.test", "approver").await;
    let ok = replica_until(&app, "readable", |r| r["reads_from"] == "replica").await;
    assert_eq!(ok["state"], "ok");
    assert_eq!(ok["max_lag_seconds"], 1.0);

    let (replica_before, passed_before) = reads(&app).await;
    const ROUNDS: usize = 10;
    for _ in 0..ROUNDS {
        write_and_read(&app, &owner, &approver).await;
    }
    let users = expect_status(app.get("/v1/users", &admin.token).await, StatusCode::OK).await;
    assert_eq!(users["items"].as_array().unwrap().len(), 3);
    let (replica_reads, passed_over) = reads(&app).await;
    let read = (replica_reads - replica_before) + (passed_over - passed_before);
    assert_eq!(
        read as usize,
        3 * ROUNDS + 1,
        "every query was counted once"
    );
    assert!(
        replica_reads - replica_before >= 1.0,
        "no query read the replica ({passed_over} passed it over)"
    );

    // The replica stops replaying: what is written now reaches it no more. Reads still
    // answer with every write, from the primary; once it is known to lag, it is not even
    // waited for.
    servers.pause_replay(true).await;
    write_and_read(&app, &owner, &approver).await;
    let lagging = replica_until(&app, "lagging", |r| r["state"] == "lagging").await;
    assert_eq!(lagging["reads_from"], "primary");
    assert!(lagging["lag_seconds"].as_f64().unwrap() > 1.0);
    assert!(metric(&app, "expensewise_read_replica_lag_seconds").await > 1.0);
    assert_eq!(metric(&app, "expensewise_read_replica_usable").await, 0.0);
    let (paused_replica_reads, _) = reads(&app).await;
    for _ in 0..3 {
        write_and_read(&app, &owner, &approver).await;
    }
    assert_eq!(
        reads(&app).await.0,
        paused_replica_reads,
        "a lagging replica was read"
    );

    // Replaying again, it catches up and is read again (on a busy machine a round's
    // writes may still take it longer than its allowed lag: then the next round).
    servers.pause_replay(false).await;
    replica_until(&app, "caught up", |r| r["reads_from"] == "replica").await;
    let (resumed, _) = reads(&app).await;
    let mut rounds = 0;
    while reads(&app).await.0 == resumed {
        assert!(rounds < 10, "the caught-up replica is never read again");
        write_and_read(&app, &owner, &approver).await;
        rounds += 1;
    }
    app.finish().await;
}
