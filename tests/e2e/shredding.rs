//! Crypto-shredding: personal fields are stored sealed with a key of the person they are
//! about — in the events table and on the JetStream stream — and read in clear wherever
//! the product shows them; once that key is destroyed they read `[erased]` everywhere,
//! read models rebuilt included, and everything else keeps working. Master keys come
//! from a file or from KMS (moto's), and rotate.

use expensewise_infra::{on_database, Database};
use expensewise_tests::{
    expect_status, expensewise, on_both_backends, rebuild_all, stream_messages, wait_for_stream,
    Api, Backend, NatsServer, S3Server, TestApp, User, PASSWORD,
};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

const NAME: &str = "Bartholomew Quince";
const EMAIL: &str = "bartholomew@acme.test";
const DRAFT: &str = "Taxi to the clinic on Elm Street";
const SUBMITTED: &str = "Dinner with the Riverside delegation";
const REASON: &str = "Wine is not reimbursed here";

async fn stored_events(db: &Database) -> String {
    on_database!(db, |pool| {
        sqlx::query_scalar::<_, String>("SELECT CAST(payload AS text) FROM events")
            .fetch_all(pool)
            .await
            .unwrap()
    })
    .join("\n")
}

fn assert_holds_none(place: &str, text: &str) {
    for personal in [NAME, EMAIL, DRAFT, SUBMITTED, REASON] {
        assert!(!text.contains(personal), "{place} holds {personal:?}");
    }
}

fn assert_holds_all(place: &str, text: &str) {
    for personal in [NAME, EMAIL, DRAFT, SUBMITTED, REASON] {
        assert!(text.contains(personal), "{place} lacks {personal:?}");
    }
}

/// An employee with a draft and a rejected expense, each with a description.
async fn employee_with_expenses(api: &Api, admin: &User) -> (User, String, String) {
    let added = api
        .post(
            "/v1/users",
            Some(&admin.token),
            json!({"name": NAME, "email": EMAIL, "password": PASSWORD, "role": "employee"}),
        )
        .await;
    expect_status(added, StatusCode::CREATED).await;
    let employee = api.login(EMAIL).await;
    let mut ids = Vec::new();
    for description in [DRAFT, SUBMITTED] {
        let created = api
            .post(
                "/v1/expenses",
                Some(&employee.token),
                json!({"amount": "80.00", "currency": "EUR", "merchant": "Riverside",
                       "category": "meals", "spent_on": "2026-03-02",
                       "description": description}),
            )
            .await;
        let created = expect_status(created, StatusCode::CREATED).await;
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    let submitted = &ids[1];
    let sent = api
        .post(
            &format!("/v1/expenses/{submitted}/submit"),
            Some(&employee.token),
            json!({}),
        )
        .await;
    expect_status(sent, StatusCode::OK).await;
    let rejected = api
        .post(
            &format!("/v1/expenses/{submitted}/reject"),
            Some(&admin.token),
            json!({"reason": REASON}),
        )
        .await;
    expect_status(rejected, StatusCode::OK).await;
    (employee, ids[0].clone(), ids[1].clone())
}

async fn personal_fields_are_sealed_in_the_log_and_erased_with_their_key(backend: Backend) {
    let nats = matches!(backend, Backend::Postgres).then(NatsServer::start);
    let mut builder = TestApp::builder(backend);
    if let Some(nats) = &nats {
        builder = builder.nats(&nats.url);
    }
    let app = builder.start().await;
    let admin = app.register("Acme", "admin@acme.test").await;
    let (employee, draft, submitted) = employee_with_expenses(&app, &admin).await;
    let employee_id = Uuid::parse_str(&employee.user_id).unwrap();

    let db = app.database.connect().await;
    let events = stored_events(&db).await;
    assert_holds_none("the events table", &events);
    assert!(events.contains("ew1:"), "sealed fields are stored");
    if let Some(nats) = &nats {
        let count = on_database!(&db, |pool| {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM events")
                .fetch_one(pool)
                .await
                .unwrap()
        });
        let messages = wait_for_stream(&nats.url, count as usize).await;
        let stream: Vec<&str> = messages
            .iter()
            .map(|m| m["data"].as_str().unwrap())
            .collect();
        assert_holds_none("the JetStream stream", &stream.join("\n"));
        assert!(!stream_messages(&nats.url).is_empty());
    }
    let before = app.shown(&admin, &admin, &[&draft, &submitted]).await;
    assert_holds_all("what the product shows", &before);
    let exported = expensewise(&["audit", "export"], &app.database.environment()).await;
    assert!(exported.status.success(), "{exported:?}");
    assert_holds_all("audit export", &String::from_utf8_lossy(&exported.stdout));

    // The employee's key is destroyed (by another process: this one's cache goes with
    // its restart).
    let vault = app.database.vault(&db).await;
    assert!(vault.shred(employee_id, chrono::Utc::now()).await.unwrap());
    assert!(!vault.shred(employee_id, chrono::Utc::now()).await.unwrap());
    let app = app.restart().await;
    for (model, report) in rebuild_all(&db, &vault).await {
        assert!(report.swapped, "{model}");
    }
    let after = app.shown(&admin, &admin, &[&draft, &submitted]).await;
    assert_holds_none("what the product shows after erasure", &after);
    assert!(after.contains("[erased]"), "{after}");
    assert!(
        after.contains("Riverside") && after.contains("Admin"),
        "what is not the employee's reads as before"
    );
    let exported = expensewise(&["audit", "export"], &app.database.environment()).await;
    assert!(exported.status.success(), "{exported:?}");
    assert_holds_none("audit export", &String::from_utf8_lossy(&exported.stdout));

    // The aggregates load as before: the draft can still be edited, and what is written
    // about the erased person now is stored erased, not sealed with a new key.
    let edited = app
        .request(
            reqwest::Method::PATCH,
            &format!("/v1/expenses/{draft}"),
            Some(&employee.token),
        )
        .json(&json!({"description": "Written after the erasure"}))
        .send()
        .await
        .unwrap();
    expect_status(edited, StatusCode::OK).await;
    let stored: String = on_database!(&db, |pool| {
        sqlx::query_scalar(
            "SELECT CAST(payload AS text) FROM events WHERE aggregate_id = $1 \
             ORDER BY sequence DESC LIMIT 1",
        )
        .bind(&draft)
        .fetch_one(pool)
        .await
        .unwrap()
    });
    assert!(stored.contains("ExpenseUpdated"), "{stored}");
    assert!(!stored.contains("Written after"), "{stored}");
    assert!(stored.contains("[erased]"), "{stored}");
    let keys: Vec<(String, Option<Vec<u8>>)> = on_database!(&db, |pool| {
        sqlx::query_as("SELECT subject_id, wrapped FROM data_keys WHERE subject_id = $1")
            .bind(employee_id.to_string())
            .fetch_all(pool)
            .await
            .unwrap()
    });
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].1, None, "the key stays destroyed");
    db.close().await;
    app.finish().await;
}

/// Which master keys wrap the stored keys.
async fn master_keys_used(db: &Database) -> Vec<String> {
    on_database!(db, |pool| {
        sqlx::query_scalar(
            "SELECT wrapped_by FROM data_keys WHERE wrapped_by IS NOT NULL \
             UNION SELECT wrapped_by FROM vault_secrets",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    })
}

/// A master key from KMS wraps the data keys; a key file rotated to another wraps them
/// anew with `expensewise keys rotate`, after which the old file is not needed.
async fn master_keys_come_from_kms_or_a_file_and_rotate(backend: Backend) {
    let s3 = S3Server::start();
    let kms_key = s3.kms_key();
    let app = TestApp::builder(backend)
        .env(s3.kms_environment(&kms_key))
        .start()
        .await;
    let admin = app.register("Acme", "admin@acme.test").await;
    let (_, draft, _) = employee_with_expenses(&app, &admin).await;
    let db = app.database.connect().await;
    let wrapped_by: Vec<String> = on_database!(&db, |pool| {
        sqlx::query_scalar("SELECT DISTINCT wrapped_by FROM data_keys")
            .fetch_all(pool)
            .await
            .unwrap()
    });
    assert_eq!(wrapped_by, [format!("kms:{kms_key}")]);
    let shown = expect_status(
        app.get(&format!("/v1/expenses/{draft}"), &admin.token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shown["description"], DRAFT);
    db.close().await;
    app.finish().await;

    let dir = std::env::temp_dir().join(format!("expensewise-keys-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (old, new) = (dir.join("old.key"), dir.join("new.key"));
    std::fs::write(&old, "1f".repeat(32)).unwrap();
    std::fs::write(&new, "2e".repeat(32)).unwrap();
    let key = |name: &'static str, path: &std::path::Path| (name, path.display().to_string());
    let app = TestApp::builder(backend)
        .env(vec![key("DATA_KEY_FILE", &old)])
        .start()
        .await;
    let admin = app.register("Acme", "admin@acme.test").await;
    let (_, draft, _) = employee_with_expenses(&app, &admin).await;
    let db = app.database.connect().await;
    let before = master_keys_used(&db).await;
    assert_eq!(before.len(), 1, "{before:?}");
    let cli = |keys: Vec<(&'static str, String)>| {
        let mut env = app.database.environment();
        env.extend(keys);
        env
    };
    // Without the key that wrapped them, nothing can be read: the process refuses to
    // start rather than fail on the first person it meets.
    let refused = expensewise(&["keys", "rotate"], &cli(vec![key("DATA_KEY_FILE", &new)])).await;
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not configured"),
        "{refused:?}"
    );
    // Rotating is done while the product runs.
    let rotated = expensewise(
        &["keys", "rotate"],
        &cli(vec![
            key("DATA_KEY_FILE", &new),
            key("DATA_KEY_PREVIOUS_FILE", &old),
        ]),
    )
    .await;
    assert!(rotated.status.success(), "{rotated:?}");
    let report = String::from_utf8_lossy(&rotated.stdout).to_string();
    assert!(report.contains("wrapped anew"), "{report}");
    let app = app.restart_with(vec![key("DATA_KEY_FILE", &new)]).await;
    let admin = app.login("admin@acme.test").await;
    let shown = expect_status(
        app.get(&format!("/v1/expenses/{draft}"), &admin.token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shown["description"], DRAFT);
    let after = master_keys_used(&db).await;
    assert_eq!(after.len(), 1, "one master key wraps every key: {after:?}");
    assert_ne!(after, before);
    db.close().await;
    app.finish().await;
    let _ = std::fs::remove_dir_all(dir);
}

on_both_backends!(
    personal_fields_are_sealed_in_the_log_and_erased_with_their_key,
    master_keys_come_from_kms_or_a_file_and_rotate,
);
