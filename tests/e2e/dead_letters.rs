//! Dead letters under control: what a worker of the product gave up on is listed,
//! inspected, retried and discarded by its organization's admin (`/v1/admin/dead-letters`)
//! and by an operator (`expensewise dead-letters`), each decision in the organization's
//! history; nobody else sees them.

use std::path::PathBuf;
use std::time::Duration;

use expensewise_api::server::Roles;
use expensewise_tests::{
    draw_receipt, expect_problem, expect_status, expensewise, on_both_backends, stored_events,
    upload_receipt, Backend, TestApp, User,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Where the local object store keeps the receipt's file.
pub(crate) async fn stored_file(app: &TestApp, receipt_id: &str) -> PathBuf {
    let db = app.database.connect().await;
    let events = stored_events(&db).await;
    db.close().await;
    let uploaded = events
        .iter()
        .find(|e| e.aggregate_id == receipt_id && e.event_type == "ReceiptUploaded")
        .expect("the upload event");
    let key = uploaded.payload["ReceiptUploaded"]["storage_key"]
        .as_str()
        .expect("a storage key");
    key.split('/')
        .fold(app.database.data_dir.join("receipts"), |p, part| {
            p.join(part)
        })
}

/// Receipts uploaded while the OCR worker is off, whose stored files then go missing
/// (kept aside, to be put back): once the worker runs, it gives each up after its
/// attempts. Returns the running app and, per receipt, its id and its file's two places.
pub(crate) async fn lost_receipts(
    backend: Backend,
    count: usize,
) -> (TestApp, User, User, Vec<(String, PathBuf, PathBuf)>) {
    let app = TestApp::builder(backend)
        .roles(Roles {
            ocr: false,
            ..Roles::ALL
        })
        .start()
        .await;
    let ada = app.register("Acme", "ada@acme.test").await;
    let eve = app.add_user(&ada, "eve@acme.test", "employee").await;
    let mut lost = Vec::new();
    for i in 0..count {
        let image = draw_receipt(
            &json!({"lines": [format!("HARBOUR CAFE {i}"), "2026-02-03", "TOTAL EUR 9.80"]}),
        );
        let response = upload_receipt(&app, &eve, "harbour.png", image, &[]).await;
        let id = expect_status(response, StatusCode::ACCEPTED).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let stored = stored_file(&app, &id).await;
        let kept = stored.with_extension("kept");
        std::fs::rename(&stored, &kept).unwrap();
        lost.push((id, stored, kept));
    }
    let database = app.shut_down().await;
    let app = TestApp::builder(backend).start_on(database).await;
    // Five attempts each, a second, two, four and eight apart.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while letters(&app, &ada, "?status=open").await.len() < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{count} dead letters within 90 s: {:?}",
            letters(&app, &ada, "").await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    (app, ada, eve, lost)
}

pub(crate) async fn letters(app: &TestApp, admin: &User, query: &str) -> Vec<Value> {
    expect_status(
        app.get(&format!("/v1/admin/dead-letters{query}"), &admin.token)
            .await,
        StatusCode::OK,
    )
    .await
    .as_array()
    .unwrap()
    .clone()
}

fn letter_of<'a>(letters: &'a [Value], receipt: &str) -> &'a Value {
    letters
        .iter()
        .find(|l| l["aggregate_id"] == receipt)
        .unwrap_or_else(|| panic!("the dead letter of {receipt} in {letters:#?}"))
}

async fn post(app: &TestApp, user: &User, path: &str, body: Option<Value>) -> reqwest::Response {
    let mut request = app.request(Method::POST, path, Some(&user.token));
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn wait_for_status(app: &TestApp, admin: &User, receipt: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let all = letters(app, admin, "").await;
        let letter = letter_of(&all, receipt).clone();
        if letter["status"] == status {
            return letter;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dead letter did not become {status}: {letter:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn admins_and_operators_settle_what_workers_gave_up_on(backend: Backend) {
    let (app, ada, eve, lost) = lost_receipts(backend, 3).await;
    let gil = app.register("Globex", "gil@globex.test").await;
    let all = letters(&app, &ada, "").await;
    let first = letter_of(&all, &lost[0].0).clone();
    assert_eq!(first["worker"], "ocr");
    assert_eq!(first["event_type"], "ReceiptUploaded");
    assert_eq!(first["status"], "open");
    assert_eq!(first["attempts"], 1);
    assert!(
        first["error"].as_str().unwrap().contains("cannot read"),
        "{first}"
    );
    let path = |letter: &Value| {
        format!(
            "/v1/admin/dead-letters/{}/{}",
            letter["worker"].as_str().unwrap(),
            letter["event_id"].as_str().unwrap()
        )
    };

    // Only the organization's admins see and settle them.
    expect_problem(
        app.get("/v1/admin/dead-letters", &eve.token).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(letters(&app, &gil, "").await.is_empty());
    expect_problem(
        app.get(&path(&first), &gil.token).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect_problem(
        post(&app, &gil, &format!("{}/retry", path(&first)), None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect_problem(
        post(&app, &eve, &format!("{}/retry", path(&first)), None).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let detail = expect_status(app.get(&path(&first), &ada.token).await, StatusCode::OK).await;
    assert_eq!(detail["event"]["event_type"], "ReceiptUploaded");
    assert_eq!(detail["event"]["aggregate_id"], lost[0].0.as_str());

    // Retried while the file is still missing: it fails again, and is open again.
    let retrying = expect_status(
        post(&app, &ada, &format!("{}/retry", path(&first)), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(retrying["status"], "retrying");
    let again = wait_for_status(&app, &ada, &lost[0].0, "open").await;
    assert_eq!(again["attempts"], 2, "{again}");
    // The file is back: the operator retries it, and the receipt is read.
    std::fs::rename(&lost[0].2, &lost[0].1).unwrap();
    let env = app.database.environment();
    let event_id = first["event_id"].as_str().unwrap();
    let run = expensewise(&["dead-letters", "retry", "ocr", event_id], &env).await;
    assert!(run.status.success(), "{run:?}");
    assert!(
        String::from_utf8_lossy(&run.stdout).contains("\"retrying\""),
        "{run:?}"
    );
    wait_for_status(&app, &ada, &lost[0].0, "retried").await;
    let receipt = expect_status(
        app.get(&format!("/v1/receipts/{}", lost[0].0), &eve.token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_ne!(receipt["status"], "pending", "{receipt}");

    // Discarded by the admin, with a reason; a bad reason changes nothing.
    let second = letter_of(&all, &lost[1].0).clone();
    for bad in [
        json!({"reason": "  "}),
        json!({}),
        json!({"reason": "x", "extra": 1}),
    ] {
        expect_problem(
            post(&app, &ada, &format!("{}/discard", path(&second)), Some(bad)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    assert_eq!(
        letter_of(&letters(&app, &ada, "").await, &lost[1].0)["status"],
        "open"
    );
    let discarded = expect_status(
        post(
            &app,
            &ada,
            &format!("{}/discard", path(&second)),
            Some(json!({"reason": "uploaded twice"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(discarded["status"], "discarded");
    assert_eq!(discarded["discard_reason"], "uploaded twice");
    // Settled is settled: neither a retry nor a second discard.
    expect_problem(
        post(&app, &ada, &format!("{}/retry", path(&second)), None).await,
        StatusCode::CONFLICT,
    )
    .await;

    // The operator lists, inspects and discards from the command line.
    let third = letter_of(&all, &lost[2].0).clone();
    let third_id = third["event_id"].as_str().unwrap();
    let run = expensewise(&["dead-letters", "list"], &env).await;
    assert!(run.status.success(), "{run:?}");
    let listed = String::from_utf8_lossy(&run.stdout);
    assert_eq!(listed.lines().count(), 1, "only the open one: {listed}");
    assert!(
        listed.starts_with(&format!("ocr\t{third_id}\topen\t1\tReceiptUploaded")),
        "{listed}"
    );
    let run = expensewise(&["dead-letters", "list", "--status", "all", "--json"], &env).await;
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).lines().count(),
        3,
        "{run:?}"
    );
    let run = expensewise(&["dead-letters", "show", "ocr", third_id], &env).await;
    let shown: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(
        shown["event"]["payload"]["ReceiptUploaded"]["uploader_id"],
        eve.user_id.to_string()
    );
    let refused = expensewise(
        &["dead-letters", "discard", "ocr", third_id, "--reason", " "],
        &env,
    )
    .await;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("reason"),
        "{refused:?}"
    );
    let run = expensewise(
        &[
            "dead-letters",
            "discard",
            "ocr",
            third_id,
            "--reason",
            "test receipt",
        ],
        &env,
    )
    .await;
    assert!(run.status.success(), "{run:?}");
    let missing = expensewise(
        &[
            "dead-letters",
            "show",
            "ocr",
            &uuid::Uuid::new_v4().to_string(),
        ],
        &env,
    )
    .await;
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no such dead letter"),
        "{missing:?}"
    );

    // Every decision is in the organization's history: who (no one: the command line)
    // and which dead letter. The history is read in the global order, where a command's
    // event shows once every transaction begun before it has ended (on this cluster, other
    // tests' too).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let decisions = loop {
        let audit = expect_status(
            app.get("/v1/audit/events?aggregate_type=organization", &ada.token)
                .await,
            StatusCode::OK,
        )
        .await;
        let decisions: Vec<(String, Value, Value)> = audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event_type"].as_str().unwrap().starts_with("DeadLetter"))
            .map(|e| {
                (
                    e["event_type"].as_str().unwrap().to_string(),
                    e["actor_id"].clone(),
                    e["payload"]["event_id"].clone(),
                )
            })
            .collect();
        if decisions.len() >= 4 || std::time::Instant::now() > deadline {
            break decisions;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let ada_id = json!(ada.user_id.to_string());
    assert_eq!(
        decisions,
        vec![
            (
                "DeadLetterRetried".to_string(),
                ada_id.clone(),
                first["event_id"].clone()
            ),
            (
                "DeadLetterRetried".to_string(),
                Value::Null,
                first["event_id"].clone()
            ),
            (
                "DeadLetterDiscarded".to_string(),
                ada_id,
                second["event_id"].clone()
            ),
            (
                "DeadLetterDiscarded".to_string(),
                Value::Null,
                third["event_id"].clone()
            ),
        ]
    );
    app.finish().await;
}

on_both_backends!(admins_and_operators_settle_what_workers_gave_up_on);
