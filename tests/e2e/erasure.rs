//! Erasure that respects retention law: an erased user's name, address and drafts read
//! `[erased]` everywhere — read models, histories, the audit log and its export, after a
//! rebuild — while their reimbursed expense and its receipt stay readable to auditors
//! until the retention ends; then the sweeper erases them too, except what a legal hold
//! keeps. The account is closed for good and the address free again.

use chrono::{Duration, Utc};
use expensewise_application::accounts::erasure;
use expensewise_tests::{
    expect_status, expensewise, on_both_backends, rebuild_all, upload_receipt, Backend, TestApp,
    PASSWORD, TINY_PNG,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const NAME: &str = "Philippa Thistlewood";
const EMAIL: &str = "philippa@acme.test";
const DRAFT: &str = "Physiotherapy near the office";
const KEPT: &str = "Client dinner in Hamburg";

async fn erasure_keeps_booking_vouchers_until_their_retention_ends(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "admin@acme.test").await;
    let auditor = app.add_user(&admin, "audrey@acme.test", "auditor").await;
    let added = app
        .post(
            "/v1/users",
            Some(&admin.token),
            json!({"name": NAME, "email": EMAIL, "password": PASSWORD, "role": "employee"}),
        )
        .await;
    let employee_id = expect_status(added, StatusCode::CREATED).await["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    let employee = app.login(EMAIL).await;
    let body = |description: &str| {
        json!({"amount": "80.00", "currency": "EUR", "merchant": "Elbblick",
               "category": "meals", "spent_on": "2026-03-02", "description": description})
    };
    let draft = app
        .send_ok(Method::POST, "/v1/expenses", &employee, body(DRAFT))
        .await;
    let draft = draft["id"].as_str().unwrap().to_string();
    let mut receipts = Vec::new();
    for name in ["dinner.png", "taxi.png", "stray.png"] {
        let mut bytes = TINY_PNG.to_vec();
        // Two files, not one uploaded twice.
        bytes.extend_from_slice(name.as_bytes());
        let uploaded = upload_receipt(&app, &employee, name, bytes, &[]).await;
        assert_eq!(uploaded.status(), StatusCode::ACCEPTED);
        let id = uploaded.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        receipts.push(id);
    }
    // Two receipts of the voucher, and one never attached to anything.
    let (receipt, other_receipt, stray) = (
        receipts[0].clone(),
        receipts[1].clone(),
        receipts[2].clone(),
    );
    let mut kept = body(KEPT);
    kept["receipt_id"] = json!(receipt);
    let kept = app
        .send_ok(Method::POST, "/v1/expenses", &employee, kept)
        .await;
    let kept = kept["id"].as_str().unwrap().to_string();
    let path = format!("/v1/expenses/{kept}");
    app.send_ok(
        Method::PATCH,
        &path,
        &employee,
        json!({"receipt_id": other_receipt}),
    )
    .await;
    app.send_ok(
        Method::POST,
        &format!("{path}/submit"),
        &employee,
        Value::Null,
    )
    .await;
    app.send_ok(
        Method::POST,
        &format!("{path}/approve"),
        &admin,
        json!({"comment": "ok"}),
    )
    .await;
    app.send_ok(
        Method::POST,
        &format!("{path}/reimburse"),
        &admin,
        Value::Null,
    )
    .await;
    let before = app.shown(&admin, &auditor, &[&draft, &kept]).await;
    for text in [NAME, EMAIL, DRAFT, KEPT] {
        assert!(before.contains(text), "{text} is shown before the erasure");
    }

    // Only admins erase.
    let refused = app
        .request(
            Method::POST,
            &format!("/v1/users/{employee_id}/erasure"),
            Some(&auditor.token),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let erased = app
        .send_ok(
            Method::POST,
            &format!("/v1/users/{employee_id}/erasure"),
            &admin,
            Value::Null,
        )
        .await;
    assert_eq!(erased["erased"], true);
    let retained: Vec<(String, String)> = erased["retained"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["aggregate_type"].as_str().unwrap().to_string(),
                r["aggregate_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        retained.contains(&("expense".into(), kept.clone())),
        "{erased}"
    );
    assert!(
        retained.contains(&("receipt".into(), receipt.clone())),
        "{erased}"
    );
    assert!(!retained.iter().any(|(_, id)| *id == draft), "{erased}");
    let until = erased["retained"][0]["until"].as_str().unwrap();
    let until = chrono::DateTime::parse_from_rfc3339(until).unwrap();
    assert!(until > Utc::now() + Duration::days(365 * 8), "{until}");
    // Asking again changes nothing.
    let again = app
        .send_ok(
            Method::POST,
            &format!("/v1/users/{employee_id}/erasure"),
            &admin,
            Value::Null,
        )
        .await;
    assert_eq!(again, erased);
    let seen = expect_status(
        app.get(&format!("/v1/users/{employee_id}/erasure"), &auditor.token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(seen, erased);

    let check = |shown: String, when: &str| {
        for text in [NAME, EMAIL, DRAFT] {
            assert!(!shown.contains(text), "{when}: {text} is still shown");
        }
        assert!(shown.contains(KEPT), "{when}: the voucher reads as before");
        assert!(shown.contains("[erased]"), "{when}");
    };
    // Read by the admin, whose reads wait for their own write, the erasure; the
    // auditor still reads the voucher.
    check(
        app.shown(&admin, &admin, &[&draft, &kept]).await,
        "after erasure",
    );
    let voucher = expect_status(app.get(&path, &auditor.token).await, StatusCode::OK).await;
    assert_eq!(voucher["description"], KEPT);
    let receipt_file = format!("/v1/receipts/{other_receipt}/file");
    let kept_file = app.get(&receipt_file, &auditor.token).await;
    assert_eq!(
        kept_file.status(),
        StatusCode::OK,
        "the voucher's receipt is kept"
    );
    let exported = expensewise(&["audit", "export"], &app.database.environment()).await;
    assert!(exported.status.success(), "{exported:?}");
    check(
        String::from_utf8_lossy(&exported.stdout).to_string(),
        "audit export",
    );
    let db = app.database.connect().await;
    let vault = app.database.vault(&db).await;
    for (model, report) in rebuild_all(&db, &vault).await {
        assert!(report.identical(), "{model}: {report:?}");
    }
    check(
        app.shown(&admin, &auditor, &[&draft, &kept]).await,
        "after a rebuild",
    );

    // The account is closed for good; the address is free for anyone.
    let login = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": EMAIL, "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
    let reactivate = app
        .request(
            Method::PATCH,
            &format!("/v1/users/{employee_id}"),
            Some(&admin.token),
        )
        .json(&json!({"active": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(reactivate.status(), StatusCode::CONFLICT);
    app.register("Elsewhere", EMAIL).await;

    // A legal hold on the receipt; then the sweeper, with the clock past the retention.
    app.send_ok(
        Method::POST,
        &format!("/v1/receipts/{receipt}/legal-hold"),
        &admin,
        json!({"hold": true, "reason": "tax audit 2027"}),
    )
    .await;
    let store = app.database.event_store(&db).await;
    let objects = app.database.objects().await;
    let early = erasure::sweep(&store, &objects, Utc::now()).await.unwrap();
    assert_eq!(early, erasure::Swept::default(), "nothing is due yet");
    let file = |id: &str| {
        app.database
            .data_dir
            .join("receipts")
            .join(&admin.organization_id)
            .join(id)
    };
    assert!(file(&receipt).exists() && file(&other_receipt).exists() && file(&stray).exists());
    let later = until.with_timezone(&Utc) + Duration::days(1);
    let swept = erasure::sweep(&store, &objects, later).await.unwrap();
    assert_eq!((swept.ended, swept.held), (3, 1), "{swept:?}");
    assert!(!file(&other_receipt).exists(), "its file is deleted");
    assert!(!file(&stray).exists(), "its file is deleted");
    let gone = app.get(&receipt_file, &auditor.token).await;
    assert_eq!(gone.status(), StatusCode::GONE);
    assert!(file(&receipt).exists(), "the held receipt's file is kept");
    // Another process swept: this one's memory of the kept keys goes with a restart.
    let app = app.restart().await;
    // The sweep's events reach the read models like any other process's writes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let expense = expect_status(app.get(&path, &auditor.token).await, StatusCode::OK).await;
        if expense["description"] == "[erased]" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{expense}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let after = app.shown(&admin, &auditor, &[&draft, &kept]).await;
    assert!(
        !after.contains(KEPT),
        "the voucher is erased after its retention"
    );
    let seen = expect_status(
        app.get(&format!("/v1/users/{employee_id}/erasure"), &auditor.token)
            .await,
        StatusCode::OK,
    )
    .await;
    let ended: Vec<(String, bool)> = seen["retained"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["aggregate_type"].as_str().unwrap().to_string(),
                !r["ended_at"].is_null(),
            )
        })
        .collect();
    assert!(ended.contains(&("expense".into(), true)), "{seen}");
    assert!(
        ended.contains(&("receipt".into(), false)),
        "the hold keeps it: {seen}"
    );
    db.close().await;
    app.finish().await;
}

on_both_backends!(erasure_keeps_booking_vouchers_until_their_retention_ends);
