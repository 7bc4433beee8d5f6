//! A person in the loop: a reading OCR is unsure of waits in the review queue, a
//! reviewer's corrections make the one draft expense, and receipts are read again on
//! request — from the API and from the operator's command line.

use std::time::Duration;

use expensewise_infra::consumer::Handler;
use expensewise_tests::{
    draw_receipt, expect_json, expect_problem, expect_status, expensewise, money, on_both_backends,
    stored_events, Backend, Expense, Page, Receipt, TestApp, User,
};
use expensewise_workers::receipts::ReceiptExpenses;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::ocr::{expenses_of, scanned, upload};

async fn queue(app: &TestApp, user: &User) -> Vec<String> {
    let page: Page<Receipt> = expect_json(
        app.get("/v1/receipts?status=needs_review", &user.token)
            .await,
        StatusCode::OK,
    )
    .await;
    page.items
        .into_iter()
        .map(|r| {
            assert_eq!(r.status, "needs_review", "{r:?}");
            r.id
        })
        .collect()
}

async fn post(app: &TestApp, user: &User, path: &str, body: Value) -> reqwest::Response {
    app.request(Method::POST, path, Some(&user.token))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The expense made of the receipt, once there is one.
async fn draft_of(app: &TestApp, user: &User, receipt_id: &str) -> Expense {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut found = expenses_of(app, user, receipt_id).await;
        assert!(found.len() <= 1, "{found:?}");
        if let Some(e) = found.pop() {
            return e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no expense was made"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn events_of(app: &TestApp, receipt_id: &str) -> Vec<String> {
    let db = app.database.connect().await;
    let events = stored_events(&db)
        .await
        .into_iter()
        .filter(|e| e.aggregate_id == receipt_id)
        .map(|e| e.event_type)
        .collect();
    db.close().await;
    events
}

async fn an_unsure_photo_is_reviewed_and_becomes_one_draft(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let eve = app.add_user(&admin, "eve@acme.test", "employee").await;
    let bob = app.add_user(&admin, "bob@acme.test", "approver").await;
    let mallory = app.add_user(&admin, "mallory@acme.test", "employee").await;
    let audrey = app.add_user(&admin, "audrey@acme.test", "auditor").await;
    // A photo with no date and a dollar sign that names no country: OCR reads it, but
    // cannot be sure when or in which dollars it was paid.
    let photo = draw_receipt(&json!({
        "lines": ["FERRY KIOSK", "Coffee $3.50", "Bagel $4.00", "TOTAL $7.50"],
        "rotate": 1.5, "blur": 0.6, "noise": 40, "format": "JPEG"
    }));
    let uploaded = upload(&app, &eve, "kiosk.jpg", photo, true).await;
    let receipt = scanned(&app, &eve, &uploaded).await;
    let id = uploaded.0.clone();
    assert_eq!(receipt.status, "needs_review", "{receipt:?}");
    assert!(receipt.doubts.iter().any(|d| d == "date"), "{receipt:?}");

    // In the queue of the uploader and the approver, not of another employee; no draft.
    assert!(queue(&app, &eve).await.contains(&id));
    assert!(queue(&app, &bob).await.contains(&id));
    assert!(!queue(&app, &mallory).await.contains(&id));
    assert!(expenses_of(&app, &admin, &id).await.is_empty());

    let review = format!("/v1/receipts/{id}/review");
    let corrected = json!({"merchant": "Ferry Kiosk", "date": "2026-03-14",
                           "amount": "7.50", "currency": "USD"});
    expect_problem(
        post(&app, &mallory, &review, corrected.clone()).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect_problem(
        post(&app, &audrey, &review, corrected.clone()).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let future = json!({"date": "2999-01-01", "currency": "usd!"});
    let problem = expect_problem(
        post(&app, &eve, &review, future).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(problem.to_string().contains("currency"), "{problem}");
    let unchanged: Receipt = expect_json(
        app.get(&format!("/v1/receipts/{id}"), &eve.token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        unchanged.status, "needs_review",
        "a refused review changes nothing"
    );

    let reviewed: Receipt = expect_json(
        post(&app, &bob, &review, corrected.clone()).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(reviewed.status, "reviewed", "{reviewed:?}");
    let review_made = reviewed.review.expect("the review");
    assert_eq!(review_made.reviewer_id, bob.user_id);
    assert_eq!(review_made.total, money("7.50", "USD"));

    let expense = draft_of(&app, &eve, &id).await;
    assert_eq!(expense.status, "draft");
    assert_eq!(expense.owner_id, eve.user_id.as_str());
    assert_eq!(
        (
            expense.merchant.as_str(),
            expense.spent_on.as_str(),
            expense.amount.as_str(),
            expense.currency.as_str()
        ),
        ("Ferry Kiosk", "2026-03-14", "7.50", "USD")
    );

    // The same review again is a retry; another one is refused; the queue is empty of it.
    expect_status(post(&app, &eve, &review, corrected).await, StatusCode::OK).await;
    expect_problem(
        post(&app, &eve, &review, json!({"amount": "8.00"})).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(!queue(&app, &bob).await.contains(&id));
    expect_problem(
        post(&app, &eve, &format!("/v1/receipts/{id}/rescan"), json!({})).await,
        StatusCode::CONFLICT,
    )
    .await;

    // The review delivered again (twice) makes no second expense.
    let db = app.database.connect().await;
    let event = stored_events(&db)
        .await
        .into_iter()
        .find(|e| e.aggregate_id == id && e.event_type == "ReceiptReviewed")
        .expect("the review event");
    let manager = ReceiptExpenses {
        store: std::sync::Arc::new(app.database.event_store(&db).await),
    };
    manager.handle(&event).await.unwrap();
    manager.handle(&event).await.unwrap();
    db.close().await;
    assert_eq!(expenses_of(&app, &admin, &id).await.len(), 1);

    // The correction is labelled data, exported with the stored file's key.
    let file = app.database.data_dir.join("corrections.ndjson");
    let exported = expensewise(
        &[
            "receipts",
            "corrections",
            "--export",
            "--output",
            file.to_str().unwrap(),
        ],
        &app.database.environment(),
    )
    .await;
    assert!(exported.status.success(), "{exported:?}");
    let lines: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!(line["receipt_id"], id.as_str());
    assert_eq!(line["storage_key"], format!("{}/{id}", eve.organization_id));
    assert_eq!(
        line["reviewed"]["total"],
        json!({"amount": "7.50", "currency": "USD"})
    );
    assert!(
        line["read"]["text"].as_str().unwrap().contains("KIOSK"),
        "{line}"
    );
    assert!(
        line["corrected"]
            .as_array()
            .unwrap()
            .contains(&json!("date")),
        "{line}"
    );
    app.finish().await;
}

async fn receipts_are_read_again_and_never_make_a_second_expense(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let eve = app.add_user(&admin, "eve@acme.test", "employee").await;
    let mallory = app.add_user(&admin, "mallory@acme.test", "employee").await;

    // A receipt with no text fails; asked again, it is read again (and fails again).
    let blank = upload(
        &app,
        &eve,
        "blank.png",
        draw_receipt(&json!({"lines": [" "]})),
        true,
    )
    .await;
    let receipt = scanned(&app, &eve, &blank).await;
    assert_eq!(receipt.status, "failed", "{receipt:?}");
    let rescan = format!("/v1/receipts/{}/rescan", blank.0);
    expect_problem(
        post(&app, &mallory, &rescan, json!({})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let queued = post(&app, &eve, &rescan, json!({})).await;
    let token = expensewise_tests::consistency(&queued);
    let queued: Receipt = expect_json(queued, StatusCode::ACCEPTED).await;
    assert_eq!(queued.status, "pending");
    let receipt = scanned(&app, &eve, &(blank.0.clone(), token)).await;
    assert_eq!(receipt.status, "failed", "{receipt:?}");
    let failures = events_of(&app, &blank.0)
        .await
        .iter()
        .filter(|e| *e == "ReceiptScanFailed")
        .count();
    assert_eq!(failures, 2);

    // A scanned receipt made its draft; the operator reads every failed and scanned
    // receipt again from the command line: the draft stays the only one.
    let good = draw_receipt(
        &json!({"lines": ["CORNER SHOP", "Date: 2026-02-01", "Milk 1.20",
                                               "Bread 2.40", "TOTAL EUR 3.60", "Cash 5.00",
                                               "Change 1.40"]}),
    );
    let good = upload(&app, &eve, "shop.png", good, true).await;
    assert_eq!(scanned(&app, &eve, &good).await.status, "scanned");
    let expense = draft_of(&app, &eve, &good.0).await;
    let env = app.database.environment();
    for status in ["scanned", "failed"] {
        let run = expensewise(
            &[
                "receipts",
                "rescan",
                "--status",
                status,
                "--since",
                "2000-01-01",
            ],
            &env,
        )
        .await;
        let out = String::from_utf8_lossy(&run.stdout);
        assert!(run.status.success(), "{run:?}");
        assert!(
            out.contains(&format!("1 {status} receipts queued")),
            "{out}"
        );
    }
    let refused = expensewise(&["receipts", "rescan", "--since", "yesterday"], &env).await;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--since"),
        "{refused:?}"
    );

    for receipt in [&good, &blank] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while events_of(&app, &receipt.0).await.last().map(String::as_str)
            == Some("ReceiptRescanRequested")
        {
            assert!(tokio::time::Instant::now() < deadline, "never read again");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(scanned(&app, &eve, &good).await.status, "scanned");
    let scans = events_of(&app, &good.0)
        .await
        .iter()
        .filter(|e| *e == "ReceiptScanned")
        .count();
    assert_eq!(scans, 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = expenses_of(&app, &eve, &good.0).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].id, expense.id);
    app.finish().await;
}

on_both_backends!(
    an_unsure_photo_is_reviewed_and_becomes_one_draft,
    receipts_are_read_again_and_never_make_a_second_expense,
);
