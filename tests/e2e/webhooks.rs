//! Webhooks (issue 20): every event type reaches a receiver that verifies with the
//! Standard Webhooks reference library (`standardwebhooks` from PyPI), once per event id
//! as the receiver counts them, through a sender SIGKILLed and a receiver away for a
//! minute; signatures survive a secret rotation and tampering does not; internal
//! addresses are refused, also behind a redirect; an endpoint that keeps failing is
//! turned off and its admins are told.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::Utc;
use expensewise_api::server::Roles;
use expensewise_domain::webhook::signing::{self, Secret};
use expensewise_domain::webhook::EVENT_TYPES;
use expensewise_tests::{
    expect_status, expense_body, free_port, stored_events, Backend, Process, TestApp, User,
    WebhookReceiver,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Fast retries, so that a test sees several within seconds.
fn quick_retries() -> Vec<(&'static str, String)> {
    vec![
        ("WEBHOOK_RETRY_FIRST", "1s".into()),
        ("WEBHOOK_RETRY_LONGEST", "2s".into()),
    ]
}

fn body(message: &Value) -> Value {
    serde_json::from_str(message["body"].as_str().unwrap()).unwrap()
}

fn verified(message: &Value) -> bool {
    !message["verified_by"].as_array().unwrap().is_empty()
}

/// Waits until `done` holds of the receiver's messages, at most `seconds`.
async fn wait_for(
    receiver: &WebhookReceiver,
    seconds: u64,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let messages = receiver.messages();
        if done(&messages) {
            return messages;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {seconds} s; received {}",
            messages.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn add_endpoint(app: &TestApp, admin: &User, body: Value) -> (String, String) {
    let created = expect_status(
        app.post("/v1/webhooks", Some(&admin.token), body).await,
        StatusCode::CREATED,
    )
    .await;
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{created}");
    // Shown once: never again.
    let listed = app
        .send_ok(Method::GET, "/v1/webhooks", admin, Value::Null)
        .await;
    assert!(!listed.to_string().contains(&secret));
    (created["id"].as_str().unwrap().to_string(), secret)
}

#[tokio::test]
async fn every_event_type_arrives_once_per_id_through_a_sender_kill_and_a_receiver_outage() {
    let mut receiver = WebhookReceiver::start();
    let mut env = vec![(
        "WEBHOOK_ALLOW_PRIVATE",
        format!("127.0.0.1:{}", receiver.port),
    )];
    env.extend(quick_retries());
    env.extend(expensewise_tests::oidc::sso_environment());
    let app = TestApp::builder(Backend::Postgres)
        .env(env.clone())
        .roles(Roles {
            webhooks: false,
            ..Roles::ALL
        })
        .start()
        .await;
    let mut worker_env = app.database.environment();
    worker_env.extend(env);
    worker_env.push(("PORT", free_port().to_string()));
    let log = app.database.data_dir.join("webhook-worker.log");
    let mut worker = Process::start(&["worker", "webhooks"], &worker_env, log);

    let admin = app.register("Acme", "ada@acme.test").await;
    let (endpoint, secret) = add_endpoint(&app, &admin, json!({"url": receiver.url()})).await;
    receiver.trust(&[&secret]);
    receiver.look_up_expenses_in(&app.base, &admin.token);
    receiver.restart();

    // Expenses while the sender is killed mid-way and started again.
    let employee = app.add_user(&admin, "erin@acme.test", "employee").await;
    for _ in 0..10 {
        app.send_ok(Method::POST, "/v1/expenses", &employee, expense_body())
            .await;
    }
    wait_for(&receiver, 60, "the first messages", |m| m.len() >= 3).await;
    worker.kill_and_restart();

    crate::event_schemas::every_kind_of_event(&app, &admin).await;

    // The receiver is away for a minute while more happens.
    receiver.kill();
    for _ in 0..5 {
        app.send_ok(Method::POST, "/v1/expenses", &admin, expense_body())
            .await;
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    receiver.restart();

    // Every event of the organization after the endpoint was added, and nothing else.
    let db = app.database.connect().await;
    let events = stored_events(&db).await;
    db.close().await;
    let added = events
        .iter()
        .position(|e| {
            e.event_type == "WebhookEndpointAdded" && e.payload.to_string().contains(&endpoint)
        })
        .unwrap();
    // By event id: its type, its aggregate (type and id) and its place in the aggregate.
    let expected: BTreeMap<String, (String, String, i64)> = events[added..]
        .iter()
        .filter(|e| e.metadata["organization_id"] == admin.organization_id.as_str())
        .map(|e| {
            (
                expensewise_infra::nats::event_id(&e.aggregate_type, &e.aggregate_id, e.sequence)
                    .to_string(),
                (
                    e.event_type.clone(),
                    format!("{}/{}", e.aggregate_type, e.aggregate_id),
                    e.sequence,
                ),
            )
        })
        .collect();
    let messages = wait_for(&receiver, 120, "every event", |m| {
        let ids: BTreeSet<&str> = m
            .iter()
            .filter(|m| verified(m))
            .map(|m| m["headers"]["webhook-id"].as_str().unwrap())
            .collect();
        expected.keys().all(|id| ids.contains(id.as_str()))
    })
    .await;

    let deleted: BTreeSet<&str> = expected
        .values()
        .filter(|(t, _, _)| t == "ExpenseDeleted")
        .map(|(_, a, _)| a.as_str())
        .collect();
    let mut first_seen: Vec<&str> = Vec::new();
    let mut copies: BTreeMap<&str, usize> = BTreeMap::new();
    for message in &messages {
        assert!(
            verified(message),
            "a message failed verification: {message}"
        );
        let id = message["headers"]["webhook-id"].as_str().unwrap();
        let (event_type, aggregate, sequence) = expected
            .get(id)
            .unwrap_or_else(|| panic!("a message for no event of this organization: {message}"));
        let data = body(message);
        assert_eq!(data["type"], event_type.as_str());
        assert_eq!(data["data"]["event_id"], id);
        assert_eq!(
            format!(
                "{}/{}",
                data["data"]["aggregate_type"].as_str().unwrap(),
                data["data"]["aggregate_id"].as_str().unwrap()
            ),
            *aggregate
        );
        assert_eq!(data["data"]["sequence"], *sequence);
        // (An expense deleted before its creation was delivered is rightly not listed.)
        if message["visible"].is_boolean() && !deleted.contains(aggregate.as_str()) {
            assert_eq!(
                message["visible"], true,
                "a hook came before the read model showed its expense"
            );
        }
        let seen = copies.entry(id).or_default();
        if *seen == 0 {
            first_seen.push(id);
        }
        *seen += 1;
    }
    // At least once, and again only for what the killed sender had in hand.
    let repeated = copies.values().filter(|n| **n > 1).count();
    assert!(
        repeated <= 16,
        "{repeated} events were received more than once"
    );
    // Each aggregate's events arrive in their order.
    let mut last: BTreeMap<&str, i64> = BTreeMap::new();
    for id in first_seen {
        let (_, aggregate, sequence) = &expected[id];
        let before = last.insert(aggregate, *sequence).unwrap_or(0);
        assert!(
            before < *sequence,
            "{aggregate}: event {sequence} arrived after {before}"
        );
    }
    let types: BTreeSet<&str> = expected.values().map(|(t, _, _)| t.as_str()).collect();
    let deliverable: BTreeSet<&str> = EVENT_TYPES
        .iter()
        .copied()
        .filter(|t| *t != "OrganizationRegistered")
        .collect();
    assert_eq!(
        types, deliverable,
        "every event type but the registration (before any endpoint) was sent"
    );
    assert!(messages.iter().any(|m| m["visible"] == true));

    // The delivery log says the same: delivered, with the receiver's answer, some after
    // several attempts.
    assert!(expected.len() < 500, "{}", expected.len());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let items = loop {
        let page = app
            .send_ok(
                Method::GET,
                &format!("/v1/webhooks/{endpoint}/deliveries?limit=500"),
                &admin,
                Value::Null,
            )
            .await;
        let items = page["items"].as_array().unwrap().clone();
        if items.iter().all(|d| d["state"] == "delivered") {
            break items;
        }
        assert!(tokio::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(items.len(), expected.len());
    assert!(items.iter().all(|d| d["last_status"] == 204));
    assert!(items.iter().any(|d| d["attempts"].as_i64().unwrap() > 1));
    drop(worker);
    app.finish().await;
}

#[tokio::test]
async fn signatures_rotate_tampering_fails_internal_addresses_are_refused_and_failing_endpoints_turn_off(
) {
    let receiver = WebhookReceiver::start();
    let redirector = WebhookReceiver::redirecting_to(&receiver.url());
    // Only the redirector may be reached: the receiver behind it is internal.
    let mut env = vec![(
        "WEBHOOK_ALLOW_PRIVATE",
        format!("127.0.0.1:{}", redirector.port),
    )];
    env.extend(quick_retries());
    env.push(("WEBHOOK_GIVE_UP_AFTER", "3s".into()));
    let app = TestApp::builder(Backend::Sqlite).env(env).start().await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let employee = app.add_user(&admin, "eve@acme.test", "employee").await;

    // Through the redirect: refused at the second hop, retried, given up, turned off.
    let (redirected, redirected_secret) = add_endpoint(
        &app,
        &admin,
        json!({"url": redirector.url(), "event_types": ["ExpenseCreated"], "description": "ledger"}),
    )
    .await;
    // Directly: refused at once. (It asks for nothing that happens yet: the next part
    // turns off only the redirected endpoint.)
    let (direct, direct_secret) = add_endpoint(
        &app,
        &admin,
        json!({"url": receiver.url(), "event_types": ["ExpenseReimbursed"]}),
    )
    .await;
    let ping = app
        .send_ok(
            Method::POST,
            &format!("/v1/webhooks/{direct}/test"),
            &admin,
            Value::Null,
        )
        .await;
    assert_eq!(ping["delivered"], false, "{ping}");
    assert!(
        ping["error"].as_str().unwrap().contains("internal address"),
        "{ping}"
    );

    app.send_ok(Method::POST, "/v1/expenses", &employee, expense_body())
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let turned_off = loop {
        let endpoint = app
            .send_ok(
                Method::GET,
                &format!("/v1/webhooks/{redirected}"),
                &admin,
                Value::Null,
            )
            .await;
        if endpoint["enabled"] == false {
            break endpoint;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never turned off: {endpoint}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        turned_off["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("internal address"),
        "{turned_off}"
    );
    let log = app
        .send_ok(
            Method::GET,
            &format!("/v1/webhooks/{redirected}/deliveries"),
            &admin,
            Value::Null,
        )
        .await;
    let failed = &log["items"][0];
    assert_eq!(failed["state"], "failed", "{log}");
    assert!(failed["attempts"].as_i64().unwrap() >= 2, "{log}");
    let detail = app
        .send_ok(
            Method::GET,
            &format!(
                "/v1/webhooks/{redirected}/deliveries/{}",
                failed["id"].as_str().unwrap()
            ),
            &admin,
            Value::Null,
        )
        .await;
    let attempts = detail["attempt_log"].as_array().unwrap();
    assert_eq!(attempts.len() as i64, failed["attempts"].as_i64().unwrap());
    assert!(attempts.iter().all(|a| a["status"].is_null()
        && a["error"]
            .as_str()
            .unwrap()
            .contains(&format!("127.0.0.1:{}", receiver.port))));
    let mails = std::fs::read_dir(app.database.data_dir.join("mail"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .filter(|m| m.contains("webhook endpoint was turned off"))
        .collect::<Vec<_>>();
    assert_eq!(mails.len(), 1, "one mail to the one admin");
    assert!(mails[0].contains("ada@acme.test"));
    assert!(
        receiver.messages().is_empty(),
        "something reached the internal receiver"
    );

    // Allowed now: the redirected endpoint is turned on and its failed delivery sent
    // again, through the redirect.
    let mut env = quick_retries();
    env.push(("WEBHOOK_ALLOW_PRIVATE", "true".into()));
    let app = app.restart_with(env).await;
    let admin = app.login("ada@acme.test").await;
    let employee = app.login("eve@acme.test").await;
    receiver.trust(&[&direct_secret, &redirected_secret]);
    app.send_ok(
        Method::PATCH,
        &format!("/v1/webhooks/{direct}"),
        &admin,
        json!({"event_types": ["ExpenseCreated", "ExpenseUpdated", "ready_to_sync"]}),
    )
    .await;
    let ping = app
        .send_ok(
            Method::POST,
            &format!("/v1/webhooks/{direct}/test"),
            &admin,
            Value::Null,
        )
        .await;
    assert_eq!(ping["delivered"], true, "{ping}");
    assert_eq!(ping["status"], 204);
    let resend_path = format!(
        "/v1/webhooks/{redirected}/deliveries/{}/resend",
        failed["id"].as_str().unwrap()
    );
    let resend = || {
        app.request(Method::POST, &resend_path, Some(&admin.token))
            .send()
    };
    let resend_off = resend().await.unwrap();
    assert_eq!(
        resend_off.status(),
        StatusCode::CONFLICT,
        "an endpoint that is off"
    );
    app.send_ok(
        Method::PATCH,
        &format!("/v1/webhooks/{redirected}"),
        &admin,
        json!({"enabled": true}),
    )
    .await;
    assert_eq!(resend().await.unwrap().status(), StatusCode::ACCEPTED);

    // Rotation with an overlap: each message verifies with the old secret and the new.
    let rotated = app
        .send_ok(
            Method::POST,
            &format!("/v1/webhooks/{direct}/rotate-secret"),
            &admin,
            json!({"overlap_seconds": 3600}),
        )
        .await;
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    receiver.trust(&[&direct_secret, &new_secret, &redirected_secret]);
    let expense = app
        .send_ok(Method::POST, "/v1/expenses", &employee, expense_body())
        .await;
    let expense_id = expense["id"].as_str().unwrap().to_string();
    // The redirected endpoint gets the expense too, signed by its own secret (the third).
    let to_direct = |m: &&Value| {
        body(m)["data"]["aggregate_id"] == expense_id.as_str() && m["verified_by"] != json!([2])
    };
    let messages = wait_for(&receiver, 30, "the message after the rotation", |m| {
        m.iter().any(|m| to_direct(&m))
    })
    .await;
    let after_rotation = messages.iter().find(to_direct).unwrap();
    assert_eq!(
        after_rotation["verified_by"],
        json!([0, 1]),
        "{after_rotation}"
    );
    // The resent delivery arrived through the redirect, signed by its own endpoint's
    // secret.
    let redirected_log = app
        .send_ok(
            Method::GET,
            &format!(
                "/v1/webhooks/{redirected}/deliveries/{}",
                failed["id"].as_str().unwrap()
            ),
            &admin,
            Value::Null,
        )
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut redirected_log = redirected_log;
    while redirected_log["state"] != "delivered" {
        assert!(tokio::time::Instant::now() < deadline, "{redirected_log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        redirected_log = app
            .send_ok(
                Method::GET,
                &format!(
                    "/v1/webhooks/{redirected}/deliveries/{}",
                    failed["id"].as_str().unwrap()
                ),
                &admin,
                Value::Null,
            )
            .await;
    }
    assert!(receiver
        .messages()
        .iter()
        .any(|m| body(m)["data"]["event_id"] == redirected_log["event_id"] && verified(m)));

    // The overlap ended: the old secret verifies nothing more.
    app.send_ok(
        Method::POST,
        &format!("/v1/webhooks/{direct}/rotate-secret"),
        &admin,
        json!({"overlap_seconds": 0}),
    )
    .await;
    let newest = app
        .send_ok(
            Method::POST,
            &format!("/v1/webhooks/{direct}/rotate-secret"),
            &admin,
            json!({"overlap_seconds": 0}),
        )
        .await;
    let newest_secret = newest["secret"].as_str().unwrap().to_string();
    receiver.trust(&[&direct_secret, &new_secret, &newest_secret]);
    app.send_ok(
        Method::PATCH,
        &format!("/v1/expenses/{expense_id}"),
        &employee,
        json!({"amount": "99.00"}),
    )
    .await;
    let messages = wait_for(&receiver, 30, "the edit", |m| {
        m.iter().any(|m| body(m)["type"] == "ExpenseUpdated")
    })
    .await;
    let edit = messages
        .iter()
        .find(|m| body(m)["type"] == "ExpenseUpdated")
        .unwrap();
    assert_eq!(edit["verified_by"], json!([2]), "{edit}");
    assert_eq!(
        body(edit)["data"]["payload"]["money"]["amount"],
        "99.00",
        "{edit}"
    );

    // The expense approved: a `ready_to_sync` message beside the approval (which this
    // endpoint does not ask for), with an id of its own.
    app.send_ok(
        Method::POST,
        &format!("/v1/expenses/{expense_id}/submit"),
        &employee,
        Value::Null,
    )
    .await;
    app.send_ok(
        Method::POST,
        &format!("/v1/expenses/{expense_id}/approve"),
        &admin,
        Value::Null,
    )
    .await;
    let messages = wait_for(&receiver, 30, "ready_to_sync", |m| {
        m.iter().any(|m| body(m)["type"] == "ready_to_sync")
    })
    .await;
    let ready = messages
        .iter()
        .find(|m| body(m)["type"] == "ready_to_sync")
        .unwrap();
    assert_eq!(ready["verified_by"], json!([2]), "{ready}");
    assert_eq!(body(ready)["data"]["aggregate_id"], expense_id.as_str());
    assert_eq!(body(ready)["data"]["event_type"], "ExpenseApproved");
    assert_ne!(
        body(ready)["data"]["event_id"],
        ready["headers"]["webhook-id"]
    );
    assert!(!messages
        .iter()
        .any(|m| body(m)["type"] == "ExpenseApproved"));

    // The library refuses a tampered message, and a genuine one too old to be fresh.
    let post = |headers: Value, text: String| {
        let mut request = reqwest::Client::new()
            .post(receiver.url())
            .header("content-type", "application/json")
            .body(text);
        for (name, value) in headers.as_object().unwrap() {
            request = request.header(name.as_str(), value.as_str().unwrap());
        }
        request.send()
    };
    let text = edit["body"].as_str().unwrap().to_string();
    let refused = post(edit["headers"].clone(), text.replace("99.00", "9.00"))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let secret = Secret::parse(&newest_secret).unwrap();
    let old = Utc::now().timestamp() - 600;
    let id = edit["headers"]["webhook-id"].as_str().unwrap();
    let replayed = json!({
        "webhook-id": id,
        "webhook-timestamp": old.to_string(),
        "webhook-signature": signing::signature(std::slice::from_ref(&secret), id, old, &text),
    });
    assert_eq!(
        post(replayed, text.clone()).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let now = Utc::now().timestamp();
    let fresh = json!({
        "webhook-id": id,
        "webhook-timestamp": now.to_string(),
        "webhook-signature": signing::signature(&[secret], id, now, &text),
    });
    assert_eq!(
        post(fresh, text).await.unwrap().status(),
        StatusCode::NO_CONTENT,
        "the same message signed now passes: the old one failed for its age"
    );
    let reasons: Vec<String> = receiver
        .messages()
        .iter()
        .filter_map(|m| m["reason"].as_str().map(str::to_string))
        .collect();
    assert!(
        reasons.contains(&"No matching signature found".to_string()),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"Message timestamp too old".to_string()),
        "{reasons:?}"
    );
    app.finish().await;
}

/// The delivery log keeps finished deliveries for `WEBHOOK_LOG_RETENTION`, then forgets
/// them; what is still being retried stays, however old.
#[tokio::test]
async fn the_delivery_log_forgets_finished_deliveries_after_its_retention() {
    let receiver = WebhookReceiver::start();
    let env = vec![
        ("WEBHOOK_ALLOW_PRIVATE", "true".to_string()),
        ("WEBHOOK_LOG_RETENTION", "2s".into()),
        ("WEBHOOK_RETRY_FIRST", "1h".into()),
        ("WEBHOOK_RETRY_LONGEST", "1h".into()),
    ];
    let app = TestApp::builder(Backend::Sqlite).env(env).start().await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let only_created = |url: String| json!({"url": url, "event_types": ["ExpenseCreated"]});
    let (answering, secret) = add_endpoint(&app, &admin, only_created(receiver.url())).await;
    receiver.trust(&[&secret]);
    let (failing, _) = add_endpoint(
        &app,
        &admin,
        only_created("http://127.0.0.1:9/nowhere".into()),
    )
    .await;
    app.create_expense(&admin).await;
    wait_for(&receiver, 30, "the expense's message", |m| {
        m.iter().any(verified)
    })
    .await;
    let log = |endpoint: String| {
        let app = &app;
        let admin = &admin;
        async move {
            app.send_ok(
                Method::GET,
                &format!("/v1/webhooks/{endpoint}/deliveries"),
                admin,
                Value::Null,
            )
            .await["items"]
                .as_array()
                .unwrap()
                .clone()
        }
    };
    let delivered = log(answering.clone()).await;
    assert_eq!(delivered.len(), 1, "in the log until its retention ends");
    assert_eq!(delivered[0]["state"], "delivered", "{delivered:?}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let pending = log(failing.clone()).await;
        if pending.first().is_some_and(|d| d["attempts"] == 1) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{pending:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    loop {
        if log(answering.clone()).await.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the delivered message is still in the log"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pending = log(failing).await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["state"], "pending", "{pending:?}");
    app.finish().await;
}
