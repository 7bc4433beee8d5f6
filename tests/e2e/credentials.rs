//! Passwords out of the event log: hashes live in the credentials store, written with the
//! events that create a user or record a change; nothing secret is stored in an event,
//! published, logged, exported or measured; legacy stores are migrated once.

use expensewise_infra::{on_database, Database};
use expensewise_tests::{
    expect_problem, expect_status, expensewise, free_port, on_both_backends,
    store_pre_credentials_organization, stream_messages, wait_for_port, wait_for_stream, Api,
    Backend, NatsServer, Process, TestDatabase, PASSWORD,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

/// Every stored event, payload and metadata, as text.
async fn stored_events(db: &Database) -> Vec<String> {
    on_database!(db, |pool| {
        sqlx::query_scalar::<_, String>(
            "SELECT CAST(payload AS text) || CAST(metadata AS text) FROM events",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    })
}

async fn stored_hashes(db: &Database) -> Vec<(String, String)> {
    on_database!(db, |pool| {
        sqlx::query_as::<_, (String, String)>(
            "SELECT user_id, password_hash FROM credentials ORDER BY user_id",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    })
}

async fn login(api: &Api, email: &str, password: &str) -> StatusCode {
    api.post(
        "/v1/auth/login",
        None,
        json!({"email": email, "password": password}),
    )
    .await
    .status()
}

/// Fails naming `place` if `text` holds any of `secrets`.
fn assert_free_of(place: &str, text: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "{place} holds a secret ({}…)",
            &secret[..12.min(secret.len())]
        );
    }
}

async fn nothing_secret_is_stored_published_logged_or_exported(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let nats = matches!(backend, Backend::Postgres).then(NatsServer::start);
    let port = free_port();
    let mut env = database.environment();
    env.push(("PORT", port.to_string()));
    env.push(("LOG_LEVEL", "debug".to_string()));
    if let Some(nats) = &nats {
        env.push(("NATS_URL", nats.url.clone()));
    }
    let log = database.data_dir.join("serve.log");
    let server = Process::start(&["serve"], &env, log.clone());
    wait_for_port(port, 30, "the server did not start");
    let api = Api::new(format!("http://127.0.0.1:{port}"));

    let admin = api.register("Acme", "ada@acme.test").await;
    let bob = api.add_user(&admin, "bob@acme.test", "approver").await;
    let new_password = "a much better passphrase";
    let change = |current: &str| {
        api.request(Method::PUT, "/v1/me/password", Some(&bob.token))
            .json(&json!({"current_password": current, "new_password": new_password}))
            .send()
    };
    let wrong = expect_problem(
        change("not the password").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(wrong.errors[0].field, "current_password");
    let changed = change(PASSWORD).await.unwrap();
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    assert!(changed.headers().contains_key("x-consistency-token"));

    assert_eq!(
        login(&api, "bob@acme.test", new_password).await,
        StatusCode::OK
    );
    assert_eq!(
        login(&api, "bob@acme.test", PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(login(&api, "ada@acme.test", PASSWORD).await, StatusCode::OK);

    let db = database.connect().await;
    let hashes = stored_hashes(&db).await;
    let mut ids = vec![admin.user_id.clone(), bob.user_id.clone()];
    ids.sort();
    assert_eq!(
        hashes.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        ids
    );
    assert!(hashes.iter().all(|(_, h)| h.starts_with("$argon2id$")));
    let mut secrets: Vec<String> = hashes.into_iter().map(|(_, h)| h).collect();
    secrets.extend(["$argon2", PASSWORD, new_password].map(str::to_string));

    let events = stored_events(&db).await;
    assert_free_of("the events table", &events.join("\n"), &secrets);
    let types: Vec<Value> = on_database!(&db, |pool| {
        sqlx::query_scalar::<_, String>(
            "SELECT event_type FROM events WHERE aggregate_type = 'organization'",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    })
    .into_iter()
    .map(Value::String)
    .collect();
    assert!(types.contains(&json!("PasswordChanged")), "{types:?}");

    let audit = expect_status(
        api.get("/v1/audit/events", &admin.token).await,
        StatusCode::OK,
    )
    .await;
    assert_free_of("the audit log", &audit.to_string(), &secrets);
    let exported = expensewise(&["audit", "export"], &env).await;
    assert!(exported.status.success(), "{exported:?}");
    let exported = String::from_utf8_lossy(&exported.stdout).to_string();
    assert!(
        exported.contains("PasswordChanged"),
        "the export holds every event"
    );
    assert_free_of("audit export", &exported, &secrets);
    let metrics = api
        .request(Method::GET, "/metrics", None)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_free_of("/metrics", &metrics, &secrets);
    if let Some(nats) = &nats {
        let messages = wait_for_stream(&nats.url, events.len()).await;
        assert_eq!(messages.len(), events.len(), "every event is on the stream");
        let stream: Vec<&str> = messages
            .iter()
            .map(|m| m["data"].as_str().unwrap())
            .collect();
        assert_free_of("the JetStream stream", &stream.join("\n"), &secrets);
        assert!(!stream_messages(&nats.url).is_empty());
    }
    server.terminate();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("DEBUG") || logged.contains("debug"),
        "the log is at debug level"
    );
    assert_free_of("the server's log", &logged, &secrets);
    db.close().await;
    drop(server);
    database.drop_database().await;
}

async fn a_store_written_before_credentials_migrates_and_still_logs_everyone_in(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = Database::connect(&database.url, 2).await.unwrap();
    db.migrate_before(11).await.unwrap();
    let hash = |password: &str| {
        let password = password.to_string();
        async move {
            expensewise_application::accounts::passwords::hash_password(password)
                .await
                .unwrap()
                .0
        }
    };
    store_pre_credentials_organization(
        &db,
        (Uuid::new_v4(), hash("ada's old password").await),
        (Uuid::new_v4(), hash("bob's old password").await),
    )
    .await;
    assert!(stored_events(&db)
        .await
        .iter()
        .any(|e| e.contains("$argon2")));

    // What `expensewise migrate` (and every server start) does.
    let migrated = expensewise(&["migrate"], &database.environment()).await;
    assert!(migrated.status.success(), "{migrated:?}");
    let events = stored_events(&db).await;
    assert!(!events.iter().any(|e| e.contains("$argon2")), "{events:?}");
    let hashes = stored_hashes(&db).await;
    assert_eq!(hashes.len(), 2);
    let versions: Vec<(String, String)> = on_database!(&db, |pool| {
        sqlx::query_as("SELECT event_type, event_version FROM events WHERE aggregate_type = 'organization' ORDER BY sequence")
            .fetch_all(pool)
            .await
            .unwrap()
    });
    assert_eq!(
        versions,
        [
            ("OrganizationRegistered".to_string(), "3.0".to_string()),
            ("UserAdded".to_string(), "2.0".to_string())
        ]
    );
    // Migrating again finds nothing more to do.
    let again = expensewise(&["migrate"], &database.environment()).await;
    assert!(again.status.success(), "{again:?}");
    assert_eq!(stored_hashes(&db).await, hashes);

    let port = free_port();
    let mut env = database.environment();
    env.push(("PORT", port.to_string()));
    let server = Process::start(&["serve"], &env, database.data_dir.join("serve.log"));
    wait_for_port(port, 30, "the server did not start");
    let api = Api::new(format!("http://127.0.0.1:{port}"));
    assert_eq!(
        login(&api, "ada@old.test", "ada's old password").await,
        StatusCode::OK
    );
    assert_eq!(
        login(&api, "bob@old.test", "bob's old password").await,
        StatusCode::OK
    );
    assert_eq!(
        login(&api, "bob@old.test", "ada's old password").await,
        StatusCode::UNAUTHORIZED
    );
    // The organization as it was, with both its users.
    let signed_in = api
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "ada@old.test", "password": "ada's old password"}),
        )
        .await;
    let signed_in = expect_status(signed_in, StatusCode::OK).await;
    let token = signed_in["token"].as_str().unwrap();
    let users = expect_status(api.get("/v1/users", token).await, StatusCode::OK).await;
    assert_eq!(users["items"].as_array().map(Vec::len), Some(2), "{users}");
    server.terminate();
    db.close().await;
    drop(server);
    database.drop_database().await;
}

on_both_backends!(
    nothing_secret_is_stored_published_logged_or_exported,
    a_store_written_before_credentials_migrates_and_still_logs_everyone_in,
);
