//! Events flowing through real NATS JetStream: relay, durable consumers, failures.

use std::collections::BTreeSet;
use std::time::Duration;

use expensewise_api::server::Roles;
use expensewise_infra::{on_database, Database};
use expensewise_tests::{
    assert_read_models_equal_a_rebuild, consistency, expect_status, expense_body, free_port,
    register_directly, stored_event_ids, wait_for_stream, Backend, NatsServer, Process, TestApp,
    TestDatabase,
};
use reqwest::StatusCode;
use serde_json::Value;

async fn read_model_count(db: &Database) -> i64 {
    on_database!(db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM rm_expenses")
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

/// The API with every other role, beside a projector process of its own: projectors
/// beside the relay share its tail of the store, a projector on its own follows
/// JetStream's messages.
async fn with_projector_process(nats: &NatsServer) -> (TestApp, Process) {
    let app = TestApp::builder(Backend::Postgres)
        .nats(&nats.url)
        .roles(Roles {
            projector: false,
            ..Roles::ALL
        })
        .start()
        .await;
    let mut env = app.database.environment();
    env.push(("NATS_URL", nats.url.clone()));
    env.push(("PORT", free_port().to_string()));
    let log = app.database.data_dir.join("projector.log");
    let projector = Process::start(&["projector"], &env, log);
    (app, projector)
}

#[tokio::test]
async fn events_flow_through_jetstream_into_the_read_models_and_onto_the_stream() {
    let nats = NatsServer::start();
    let (app, _projector) = with_projector_process(&nats).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let bob = app.add_user(&admin, "bob@acme.test", "approver").await;
    let created = app.create_expense(&admin).await;
    let id = created.id.as_str();
    app.post(
        &format!("/v1/expenses/{id}/submit"),
        Some(&admin.token),
        Value::Null,
    )
    .await;
    let approved = app
        .post(
            &format!("/v1/expenses/{id}/approve"),
            Some(&bob.token),
            Value::Null,
        )
        .await;
    let token = consistency(&approved);
    expect_status(approved, StatusCode::OK).await;

    let list = app
        .get_after("/v1/expenses?status=approved", &admin.token, &token)
        .await;
    let list = expect_status(list, StatusCode::OK).await;
    assert_eq!(list["items"][0]["id"], id);
    let queue = expect_status(
        app.get_after("/v1/approvals", &bob.token, &token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(queue["items"], serde_json::json!([]));

    let db = app.database.connect().await;
    let stored = stored_event_ids(&db).await;
    let messages = wait_for_stream(&nats.url, stored.len()).await;
    let published: Vec<String> = messages
        .iter()
        .map(|m| m["msg_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        published, stored,
        "every event, once, in global order, with its id as Nats-Msg-Id"
    );
    assert!(messages.iter().all(|m| m["msg_id"] == m["event_id"]));
    let subjects: BTreeSet<&str> = messages
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .collect();
    assert!(
        subjects.contains("expensewise.events.expense.ExpenseApproved"),
        "{subjects:?}"
    );
    app.finish().await;
}

/// `/ready`'s status and its NATS check.
async fn ready_nats(app: &TestApp) -> (StatusCode, String) {
    let response = app
        .request(reqwest::Method::GET, "/ready", None)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap();
    (
        status,
        body["checks"]["nats"]
            .as_str()
            .unwrap_or("missing")
            .to_string(),
    )
}

#[tokio::test]
async fn a_nats_outage_during_a_burst_loses_and_doubles_nothing() {
    let mut nats = NatsServer::start();
    let app = TestApp::builder(Backend::Postgres)
        .nats(&nats.url)
        .start()
        .await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let mut last = String::new();
    for i in 0..60 {
        if i == 20 {
            nats.kill();
        }
        if i == 30 {
            // Writes go on (the events wait in PostgreSQL), and readiness says why
            // the read side lags.
            let ready = ready_nats(&app).await;
            assert_eq!(
                ready,
                (StatusCode::SERVICE_UNAVAILABLE, "unreachable".into())
            );
        }
        if i == 40 {
            nats.restart();
        }
        let response = app
            .post("/v1/expenses", Some(&admin.token), expense_body())
            .await;
        last = consistency(&response);
        expect_status(response, StatusCode::CREATED).await;
    }
    // The relay and consumers back off while NATS is down; a client told 503 retries.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let page = loop {
        let response = app
            .get_after("/v1/expenses?limit=500", &admin.token, &last)
            .await;
        if response.status() != StatusCode::SERVICE_UNAVAILABLE
            || tokio::time::Instant::now() > deadline
        {
            break expect_status(response, StatusCode::OK).await;
        }
    };
    assert_eq!(page["items"].as_array().unwrap().len(), 60);
    // The readiness check's own connection comes back by itself too.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while ready_nats(&app).await != (StatusCode::OK, "ok".into()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "NATS never ready again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let db = app.database.connect().await;
    assert_eq!(read_model_count(&db).await, 60);
    let stored = stored_event_ids(&db).await;
    let messages = wait_for_stream(&nats.url, stored.len()).await;
    let published: Vec<String> = messages
        .iter()
        .map(|m| m["msg_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(published, stored, "nothing lost, nothing twice, in order");
    assert_read_models_equal_a_rebuild(&db, &app.database.vault(&db).await).await;
    app.finish().await;
}

#[tokio::test]
async fn of_two_relays_one_publishes_and_the_other_stands_by() {
    let nats = NatsServer::start();
    let database = TestDatabase::create(Backend::Postgres).await;
    let db = database.connect().await;
    let store = database.event_store(&db).await;
    let js = expensewise_infra::nats::connect(&nats.url).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relays: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(expensewise_infra::nats::run_relay(
                store.follow(),
                js.clone(),
                stopped.clone(),
            ))
        })
        .collect();
    for _ in 0..30 {
        register_directly(&store).await;
    }
    let stored = stored_event_ids(&db).await;
    let messages = wait_for_stream(&nats.url, stored.len()).await;
    let published: Vec<String> = messages
        .iter()
        .map(|m| m["msg_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(published, stored);
    let _ = stop.send(true);
    for relay in relays {
        relay.await.unwrap().unwrap();
    }
    db.close().await;
    database.drop_database().await;
}

/// The relay sends each read without waiting for the one before it to be stored,
/// expecting the stream to end where that one leaves it. A message from elsewhere
/// landing in between makes the server refuse what the relay sent next, and everything
/// sent after it: the relay publishes again from what it knows stored, and the stream
/// holds every event once, in order.
#[tokio::test]
async fn a_relay_that_does_not_wait_for_each_read_keeps_the_stream_in_order() {
    let nats = NatsServer::start();
    let database = TestDatabase::create(Backend::Postgres).await;
    let db = database.connect().await;
    let store = database.event_store(&db).await;
    let js = expensewise_infra::nats::connect(&nats.url).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relay = tokio::spawn(expensewise_infra::nats::run_relay(
        store.follow(),
        js.clone(),
        stopped,
    ));
    // The relay creates the stream; a message from elsewhere before that has nowhere to go.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while js
        .get_stream(expensewise_infra::nats::STREAM)
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the relay never created the stream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let foreign = 3;
    for _ in 0..foreign {
        for _ in 0..10 {
            register_directly(&store).await;
        }
        js.publish(
            format!("{}.note.Written", expensewise_infra::nats::SUBJECT_PREFIX),
            "not an event".into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    for _ in 0..10 {
        register_directly(&store).await;
    }
    let stored = stored_event_ids(&db).await;
    let messages = wait_for_stream(&nats.url, stored.len() + foreign).await;
    assert_eq!(messages.len(), stored.len() + foreign);
    let published: Vec<&str> = messages
        .iter()
        .filter_map(|m| m["msg_id"].as_str())
        .collect();
    assert_eq!(published, stored, "nothing lost, nothing twice, in order");
    let _ = stop.send(true);
    relay.await.unwrap().unwrap();
    db.close().await;
    database.drop_database().await;
}

/// Waits until every stored event is readable in the global order: a transaction still
/// open elsewhere on the cluster (another test's database; transaction ids are the
/// cluster's) holds back what was committed after it began, and a relay started before
/// would read the backlog in pieces, the smaller of them one event at a time.
async fn wait_until_readable(db: &Database) {
    let written = stored_event_ids(db).await.len();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while expensewise_infra::event_store::read_after(db, Default::default(), 1000)
        .await
        .unwrap()
        .len()
        < written
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the events never became readable"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs a relay until the stream holds every stored event; returns the stream's messages.
async fn relay_until_published(
    store: &expensewise_infra::EventStore,
    db: &Database,
    nats_url: &str,
) -> Vec<Value> {
    let js = expensewise_infra::nats::connect(nats_url).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relay = tokio::spawn(expensewise_infra::nats::run_relay(
        store.follow(),
        js,
        stopped,
    ));
    let stored = stored_event_ids(db).await;
    let messages = wait_for_stream(nats_url, stored.len()).await;
    let published: Vec<&str> = messages
        .iter()
        .map(|m| m["msg_id"].as_str().unwrap())
        .collect();
    assert_eq!(published, stored, "nothing lost, nothing twice, in order");
    let _ = stop.send(true);
    relay.await.unwrap().unwrap();
    messages
}

#[tokio::test]
async fn a_backlog_goes_out_in_atomic_batches_and_going_out_again_doubles_nothing() {
    let nats = NatsServer::start();
    let database = TestDatabase::create(Backend::Postgres).await;
    let db = database.connect().await;
    let store = database.event_store(&db).await;
    let batched = |messages: &[Value]| {
        messages
            .iter()
            .filter(|m| m["batch_id"].is_string())
            .count()
    };

    // Written while no relay runs: the relay's first read is a batch, once all of them
    // are readable.
    for _ in 0..30 {
        register_directly(&store).await;
    }
    wait_until_readable(&db).await;
    let first = relay_until_published(&store, &db, &nats.url).await;
    assert_eq!(
        batched(&first),
        first.len(),
        "the backlog went out in batches"
    );

    // The relay forgets how far it came, as when it crashed before storing that, and
    // more is written meanwhile: its next read holds events the stream has, which the
    // server refuses as a batch. They go one at a time and are dropped by id.
    on_database!(&db, |pool| {
        sqlx::query("DELETE FROM projection_checkpoints WHERE name = 'relay'")
            .execute(pool)
            .await
            .unwrap();
    });
    for _ in 0..5 {
        register_directly(&store).await;
    }
    let second = relay_until_published(&store, &db, &nats.url).await;
    assert_eq!(
        batched(&second),
        first.len(),
        "what came after went out one at a time"
    );

    // And batches go on afterwards.
    for _ in 0..30 {
        register_directly(&store).await;
    }
    wait_until_readable(&db).await;
    let third = relay_until_published(&store, &db, &nats.url).await;
    assert_eq!(batched(&third), first.len() + third.len() - second.len());
    db.close().await;
    database.drop_database().await;
}

#[tokio::test]
async fn a_message_that_is_not_an_event_is_dead_lettered_and_projections_go_on() {
    let nats = NatsServer::start();
    let (app, _projector) = with_projector_process(&nats).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let js = expensewise_infra::nats::connect(&nats.url).await.unwrap();
    // The relay may not have made the stream yet.
    expensewise_infra::nats::ensure_stream(&js).await.unwrap();
    js.publish(
        "expensewise.events.expense.ExpenseCreated",
        "not an event".into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let created = app
        .post("/v1/expenses", Some(&admin.token), expense_body())
        .await;
    let token = consistency(&created);
    expect_status(created, StatusCode::CREATED).await;
    let page = expect_status(
        app.get_after("/v1/expenses", &admin.token, &token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);

    let dead_letters = expensewise_infra::consumer::ensure_dead_letter_stream(&js)
        .await
        .unwrap();
    let models = expensewise_projections::status::read_models().len();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut subjects = BTreeSet::new();
    let mut seq = 1;
    while subjects.len() < models {
        assert!(
            tokio::time::Instant::now() < deadline,
            "dead letters: {subjects:?}"
        );
        match dead_letters.get_raw_message(seq).await {
            Ok(message) => {
                assert_eq!(&message.payload[..], b"not an event");
                subjects.insert(message.subject.to_string());
                seq += 1;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert!(subjects.contains("expensewise.dead.projection-expenses"));
    app.finish().await;
}
