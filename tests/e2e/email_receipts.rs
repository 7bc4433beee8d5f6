//! Receipts by e-mail (issue 20): a message with two receipts attached makes two
//! receipts and, with `create_expense`, two drafts — once, even when posted twice; a
//! message from a stranger, or without receipts, is refused and its sender told.

use std::time::Duration;

use base64::Engine as _;
use expensewise_tests::{
    draw_receipt, expect_status, on_both_backends, Backend, TestApp, TINY_PNG,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::ocr::expenses_of;

/// A message from `from` with `attachments` (name, type, bytes).
fn message(from: &str, id: &str, attachments: &[(&str, &str, Vec<u8>)]) -> Vec<u8> {
    let mut text = format!(
        "From: Someone <{from}>\r\nTo: receipts@acme.test\r\nSubject: Receipts of the trip\r\n\
         Message-ID: <{id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"part\"\r\n\r\n\
         --part\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nTaxi and lunch, Hamburg\r\n"
    );
    for (name, media, bytes) in attachments {
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        let lines: Vec<&str> = encoded
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        text.push_str(&format!(
            "--part\r\nContent-Type: {media}\r\nContent-Disposition: attachment; \
             filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            lines.join("\r\n")
        ));
    }
    text.push_str("--part--\r\n");
    text.into_bytes()
}

async fn post(app: &TestApp, token: &str, raw: Vec<u8>) -> reqwest::Response {
    app.request(
        Method::POST,
        "/v1/receipts/email?create_expense=true",
        Some(token),
    )
    .header("content-type", "message/rfc822")
    .body(raw)
    .send()
    .await
    .unwrap()
}

fn mails_to(app: &TestApp, address: &str) -> Vec<String> {
    std::fs::read_dir(app.database.data_dir.join("mail"))
        .map(|d| {
            d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                .filter(|m| m.contains(&format!("To: {address}")))
                .collect()
        })
        .unwrap_or_default()
}

async fn an_emailed_message_makes_its_receipts_and_drafts_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let eve = app.add_user(&admin, "eve@acme.test", "employee").await;
    let taxi = draw_receipt(&json!({"lines": ["CITY TAXI", "2026-02-01", "TOTAL EUR 23.40"]}));
    let lunch = draw_receipt(&json!({"lines": ["CORNER SHOP", "2026-02-02", "TOTAL EUR 12.30"]}));
    let raw = message(
        "Eve@Acme.test",
        "trip-1@mail.acme.test",
        &[
            ("taxi.png", "image/png", taxi),
            ("notes.txt", "text/plain", b"not a receipt".to_vec()),
            ("lunch.png", "image/png", lunch),
        ],
    );

    // Only an admin's token forwards mail.
    let refused = post(&app, &eve.token, raw.clone()).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let taken = expect_status(
        post(&app, &admin.token, raw.clone()).await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(taken["sender_id"], eve.user_id.as_str());
    let receipts: Vec<String> = taken["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(receipts.len(), 2, "{taken}");
    assert!(taken["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["uploader_id"] == eve.user_id.as_str() && r["create_expense"] == true));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for id in &receipts {
        while expenses_of(&app, &eve, id).await.is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "no draft of {id}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // Posted again (a front-end that retries): the same receipts, no new drafts.
    let again = expect_status(post(&app, &admin.token, raw).await, StatusCode::ACCEPTED).await;
    let ids: Vec<&str> = again["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, receipts.iter().map(String::as_str).collect::<Vec<_>>());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let listed = app
        .send_ok(Method::GET, "/v1/receipts?limit=500", &eve, Value::Null)
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    for id in &receipts {
        assert_eq!(
            expenses_of(&app, &eve, id).await.len(),
            1,
            "one draft of {id}"
        );
    }
    let drafts = app
        .send_ok(Method::GET, "/v1/expenses?limit=500", &eve, Value::Null)
        .await;
    let drafts = drafts["items"].as_array().unwrap();
    assert_eq!(drafts.len(), 2);
    // The message's text describes them.
    assert!(
        drafts
            .iter()
            .all(|d| d["description"] == "Taxi and lunch, Hamburg"),
        "{drafts:?}"
    );

    // A stranger, and a message without receipts: refused, and the sender told.
    let stranger = message(
        "mallory@elsewhere.test",
        "x-1@elsewhere.test",
        &[("a.png", "image/png", TINY_PNG.to_vec())],
    );
    let problem = expect_status(
        post(&app, &admin.token, stranger).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "from");
    let empty = message(
        "eve@acme.test",
        "trip-2@mail.acme.test",
        &[("notes.txt", "text/plain", b"hello".to_vec())],
    );
    let problem = expect_status(
        post(&app, &admin.token, empty).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "attachments");
    assert_eq!(mails_to(&app, "mallory@elsewhere.test").len(), 1);
    let told = mails_to(&app, "eve@acme.test");
    assert!(
        told.iter().any(|m| m.contains("Not taken as receipts")),
        "{told:?}"
    );
    let listed = app
        .send_ok(Method::GET, "/v1/receipts?limit=500", &eve, Value::Null)
        .await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        2,
        "nothing changed"
    );

    // Not a message at all.
    let garbage = app
        .request(Method::POST, "/v1/receipts/email", Some(&admin.token))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    app.finish().await;
}

on_both_backends!(an_emailed_message_makes_its_receipts_and_drafts_once);
