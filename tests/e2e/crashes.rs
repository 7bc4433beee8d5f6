//! The relay and the projector as separate processes, killed with SIGKILL mid-stream.

use expensewise_infra::event_store::Scope;
use std::time::Duration;

use expensewise_domain::{expense, Actor, Expense};
use expensewise_infra::event_store::aggregate_version;
use expensewise_infra::{on_database, Database, EventStore};
use expensewise_projections::status;
use expensewise_tests::{
    assert_read_models_equal_a_rebuild, draft_expense, event_metadata, expect_status, expense_body,
    free_port, new_employee, on_both_backends, wait_for_port, Api, Backend, NatsServer, Process,
    TestApp, TestDatabase,
};
use reqwest::StatusCode;
use uuid::Uuid;

async fn create_expense(store: &EventStore, actor: Actor) {
    let id = Uuid::new_v4();
    let command = draft_expense(actor, "12.30", "Kiosk");
    let metadata = event_metadata(actor.organization_id, Some(actor.user_id));
    store
        .execute::<Expense>(&Scope::none(), &id.to_string(), command, &metadata)
        .await
        .unwrap();
}

#[tokio::test]
async fn killing_the_relay_and_the_projector_mid_stream_loses_and_doubles_nothing() {
    let nats = NatsServer::start();
    let database = TestDatabase::create(Backend::Postgres).await;
    let db = database.connect().await;
    let store = database.event_store(&db).await;
    // Each process serves its probes on a port of its own choosing (PORT 0).
    let mut env = database.environment();
    env.push(("NATS_URL", nats.url.clone()));
    let log = database.data_dir.join("processes.log");
    let mut relay = Process::start(&["relay"], &env, log.clone());
    let mut projector = Process::start(&["projector"], &env, log.clone());
    let actor = new_employee();
    for i in 0..150 {
        match i {
            40 => relay.kill(),
            70 => relay.kill_and_restart(),
            90 => projector.kill(),
            110 => projector.kill_and_restart(),
            _ => {}
        }
        create_expense(&store, actor).await;
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let lag = status::status(&db).await.unwrap()[0].lag;
        if lag == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the projector did not catch up (lag {lag}); log: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = on_database!(&db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM rm_expenses")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(rows, 150);
    drop(projector);
    let stored = expensewise_tests::stored_event_ids(&db).await;
    let published: Vec<String> = expensewise_tests::wait_for_stream(&nats.url, stored.len())
        .await
        .iter()
        .map(|m| m["msg_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        published, stored,
        "every event on the stream once, in order"
    );
    drop(relay);
    expensewise_tests::assert_read_models_equal_a_rebuild(&db, store.vault()).await;
    db.close().await;
    database.drop_database().await;
}

/// The event store keeps connections of its own for appends, and the pool has its own:
/// when the server drops every one of them (a restart, a failover), commands go on.
#[tokio::test]
async fn commands_go_on_after_the_database_drops_every_connection() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let user = app.register("Acme", "ada@acme.test").await;
    for _ in 0..8 {
        app.create_expense(&user).await;
    }
    let db = app.database.connect().await;
    let Database::Postgres(pool) = &db else {
        panic!("a PostgreSQL test database")
    };
    let dropped: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(dropped.len() >= 2, "the API's connections: {dropped:?}");
    // A connection idle for a second is checked before it is used again.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for _ in 0..8 {
        app.create_expense(&user).await;
    }
    let list = app.get("/v1/expenses", &user.token).await;
    expect_status(list, reqwest::StatusCode::OK).await;
    db.close().await;
    app.finish().await;
}

/// SIGKILL while sixteen writers' commands are being committed together: after a
/// restart every command that was answered is in the store, whole; the store holds no
/// aggregate with a gap in its sequence; the read models equal a rebuild.
async fn a_server_killed_mid_batch_keeps_every_acknowledged_command(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let port = free_port();
    let mut env = database.environment();
    env.push(("PORT", port.to_string()));
    let mut server = Process::start(&["serve"], &env, database.data_dir.join("serve.log"));
    wait_for_port(port, 30, "the server did not start");
    let api = Api::new(format!("http://127.0.0.1:{port}"));
    let user = api.register("Acme", "ada@acme.test").await;

    let writers: Vec<_> = (0..16)
        .map(|_| {
            let client = api.client.clone();
            let url = format!("{}/v1/expenses", api.base);
            let token = user.token.clone();
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                // Until the server is gone: then the request fails, or its answer does.
                while let Ok(answer) = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&expense_body())
                    .send()
                    .await
                {
                    if answer.status() != StatusCode::CREATED {
                        break;
                    }
                    match answer.json::<expensewise_tests::Expense>().await {
                        Ok(expense) => acknowledged.push(expense.id),
                        Err(_) => break,
                    }
                }
                acknowledged
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    assert!(acknowledged.len() > 50, "{} commands", acknowledged.len());

    server.kill_and_restart();
    wait_for_port(port, 30, "the server did not start again");
    let db = database.connect().await;
    for id in &acknowledged {
        assert_eq!(
            aggregate_version(&db, expense::AGGREGATE_TYPE, id)
                .await
                .unwrap(),
            1,
            "acknowledged expense {id}"
        );
    }
    let gaps: i64 = on_database!(&db, |pool| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT aggregate_type, aggregate_id FROM events \
             GROUP BY aggregate_type, aggregate_id HAVING MAX(sequence) <> COUNT(*)) AS holed",
        )
        .fetch_one(pool)
        .await
        .unwrap()
    });
    assert_eq!(gaps, 0, "aggregates with a gap in their sequence");
    // Commands go on after the restart.
    let after = api.login("ada@acme.test").await;
    api.create_expense(&after).await;
    assert_read_models_equal_a_rebuild(&db, &database.vault(&db).await).await;
    server.kill();
    db.close().await;
    database.drop_database().await;
}

on_both_backends!(a_server_killed_mid_batch_keeps_every_acknowledged_command);
