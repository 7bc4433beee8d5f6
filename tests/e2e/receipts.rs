//! Receipt uploads: typed by their bytes, limited in size, kept in a local directory or
//! in a real S3-compatible bucket.

use expensewise_api::server::Roles;
use expensewise_tests::{
    consistency, draw_receipt, expect_json, expect_problem, expect_status, on_both_backends,
    upload_receipt, Backend, Expense, Page, Receipt, S3Server, TestApp, TINY_PNG,
};
use reqwest::{Method, StatusCode};

/// A JPEG's first bytes and nothing after: typed as JPEG, unreadable as an image.
const TRUNCATED_JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F'];

async fn uploads_are_typed_by_their_bytes_and_limited(backend: Backend) {
    // No OCR worker: what the upload itself recorded is read back, before any scan. With
    // Tesseract's models loaded, a blank image's scan ends within milliseconds.
    let app = TestApp::builder(backend)
        .env(vec![("RECEIPT_MAX_BYTES", "4096".into())])
        .roles(Roles {
            ocr: false,
            ..Roles::ALL
        })
        .start()
        .await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let eve = app.add_user(&admin, "eve@acme.test", "employee").await;

    let uploaded = upload_receipt(&app, &eve, "lunch.png", TINY_PNG.to_vec(), &[]).await;
    let token = consistency(&uploaded);
    let location = uploaded.headers()["location"].to_str().unwrap().to_string();
    let receipt = expect_status(uploaded, StatusCode::ACCEPTED).await;
    assert_eq!(receipt["status"], "pending");
    assert_eq!(receipt["content_type"], "image/png");
    assert_eq!(receipt["size"], TINY_PNG.len());
    assert_eq!(receipt["duplicate_of"], serde_json::Value::Null);
    let id = receipt["id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/v1/receipts/{id}"));
    let read = expect_status(
        app.get_after(&location, &eve.token, &token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(read, receipt);
    let file = app.get(&format!("{location}/file"), &eve.token).await;
    assert_eq!(file.status(), StatusCode::OK);
    assert_eq!(file.headers()["content-type"], "image/png");
    assert_eq!(&file.bytes().await.unwrap()[..], TINY_PNG);

    // The same bytes again, under another name: a duplicate, pointing at the first.
    let again = upload_receipt(&app, &eve, "copy.png", TINY_PNG.to_vec(), &[]).await;
    let again: Receipt = expect_json(again, StatusCode::ACCEPTED).await;
    assert_eq!(again.duplicate_of.as_deref(), Some(id.as_str()));
    assert_ne!(again.id, id);

    // A JPEG that stops after its header is still a JPEG by its bytes: OCR will fail it.
    let truncated = upload_receipt(&app, &eve, "cut.jpg", TRUNCATED_JPEG.to_vec(), &[]).await;
    let truncated: Receipt = expect_json(truncated, StatusCode::ACCEPTED).await;
    assert_eq!(truncated.content_type, "image/jpeg");
    let text = upload_receipt(&app, &eve, "receipt.png", b"TOTAL 12.30".to_vec(), &[]).await;
    expect_problem(text, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let empty = upload_receipt(&app, &eve, "empty.png", Vec::new(), &[]).await;
    let problem = expect_problem(empty, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem.field(), Some("file"));
    let mut big = TINY_PNG.to_vec();
    big.resize(5000, 0);
    let too_big = upload_receipt(&app, &eve, "big.png", big, &[]).await;
    expect_problem(too_big, StatusCode::PAYLOAD_TOO_LARGE).await;
    let no_file = app
        .request(Method::POST, "/v1/receipts", Some(&eve.token))
        .multipart(reqwest::multipart::Form::new().text("create_expense", "true"))
        .send()
        .await
        .unwrap();
    expect_problem(no_file, StatusCode::UNPROCESSABLE_ENTITY).await;
    let not_multipart = app
        .post("/v1/receipts", Some(&eve.token), serde_json::json!({}))
        .await;
    expect_problem(not_multipart, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let bad_flag = upload_receipt(
        &app,
        &eve,
        "x.png",
        TINY_PNG.to_vec(),
        &[("create_expense", "maybe")],
    )
    .await;
    expect_problem(bad_flag, StatusCode::UNPROCESSABLE_ENTITY).await;

    // Refused uploads leave nothing behind.
    let leftovers = std::fs::read_dir(app.database.data_dir.join("uploads"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(leftovers, 0, "temporary upload files are removed");
    let stored: Vec<String> = std::fs::read_dir(app.database.data_dir.join("receipts"))
        .unwrap()
        .flat_map(|org| std::fs::read_dir(org.unwrap().path()).unwrap())
        .map(|f| f.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    let notes = stored
        .iter()
        .filter(|f| f.ends_with(".retention.json"))
        .count();
    assert_eq!(stored.len() - notes, 3, "only accepted files are kept");
    assert_eq!(notes, 3, "each with the note that keeps it");
    app.finish().await;
}

async fn who_may_upload_and_see_receipts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let eve = app.add_user(&admin, "eve@acme.test", "employee").await;
    let sam = app.add_user(&admin, "sam@acme.test", "employee").await;
    let bob = app.add_user(&admin, "bob@acme.test", "approver").await;
    let aud = app.add_user(&admin, "aud@acme.test", "auditor").await;
    let other = app.register("Globex", "gil@globex.test").await;

    let refused = upload_receipt(&app, &aud, "a.png", TINY_PNG.to_vec(), &[]).await;
    expect_problem(refused, StatusCode::FORBIDDEN).await;
    let uploaded = upload_receipt(&app, &eve, "a.png", TINY_PNG.to_vec(), &[]).await;
    let token = consistency(&uploaded);
    let id = expect_json::<Receipt>(uploaded, StatusCode::ACCEPTED)
        .await
        .id;
    let path = format!("/v1/receipts/{id}");
    for viewer in [&eve, &bob, &aud, &admin] {
        expect_status(
            app.get_after(&path, &viewer.token, &token).await,
            StatusCode::OK,
        )
        .await;
    }
    for stranger in [&sam, &other] {
        expect_problem(
            app.get_after(&path, &stranger.token, &token).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        expect_problem(
            app.get(&format!("{path}/file"), &stranger.token).await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    // The same bytes in another organization are not a duplicate of this one's.
    let elsewhere = upload_receipt(&app, &other, "a.png", TINY_PNG.to_vec(), &[]).await;
    let elsewhere: Receipt = expect_json(elsewhere, StatusCode::ACCEPTED).await;
    assert_eq!(elsewhere.duplicate_of, None);
    app.finish().await;
}

async fn a_receipt_uploaded_for_an_expense_is_attached_to_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let eve = app.add_user(&admin, "eve@acme.test", "employee").await;
    let expense = app.create_expense(&eve).await;
    let expense_id = expense.id.as_str();

    let uploaded = upload_receipt(
        &app,
        &eve,
        "a.png",
        TINY_PNG.to_vec(),
        &[("expense_id", expense_id)],
    )
    .await;
    let token = consistency(&uploaded);
    let receipt: Receipt = expect_json(uploaded, StatusCode::ACCEPTED).await;
    assert_eq!(receipt.expense_id.as_deref(), Some(expense_id));
    let expense: Expense = expect_json(
        app.get_after(&format!("/v1/expenses/{expense_id}"), &eve.token, &token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(expense.receipt_ids, [receipt.id]);

    // Someone else's expense, or one that was submitted, takes no receipt.
    let sam = app.add_user(&admin, "sam@acme.test", "employee").await;
    let not_theirs = upload_receipt(
        &app,
        &sam,
        "a.png",
        TINY_PNG.to_vec(),
        &[("expense_id", expense_id)],
    )
    .await;
    expect_problem(not_theirs, StatusCode::NOT_FOUND).await;
    let submitted = app
        .post(
            &format!("/v1/expenses/{expense_id}/submit"),
            Some(&eve.token),
            serde_json::Value::Null,
        )
        .await;
    expect_status(submitted, StatusCode::OK).await;
    let too_late = upload_receipt(
        &app,
        &eve,
        "a.png",
        TINY_PNG.to_vec(),
        &[("expense_id", expense_id)],
    )
    .await;
    expect_problem(too_late, StatusCode::CONFLICT).await;
    let both = upload_receipt(
        &app,
        &eve,
        "a.png",
        TINY_PNG.to_vec(),
        &[("expense_id", expense_id), ("create_expense", "true")],
    )
    .await;
    expect_problem(both, StatusCode::UNPROCESSABLE_ENTITY).await;
    app.finish().await;
}

async fn a_retried_upload_with_its_key_names_the_same_receipt(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let send = |bytes: Vec<u8>| {
        app.request(Method::POST, "/v1/receipts", Some(&admin.token))
            .header("idempotency-key", "upload-1")
            .multipart(reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name("a.png"),
            ))
            .send()
    };
    let first = expect_status(send(TINY_PNG.to_vec()).await.unwrap(), StatusCode::ACCEPTED).await;
    let second = expect_status(send(TINY_PNG.to_vec()).await.unwrap(), StatusCode::ACCEPTED).await;
    // The key again with another file: refused, and the stored file stays the first.
    let mut other = TINY_PNG.to_vec();
    other.extend_from_slice(b"another file");
    let problem =
        expect_problem(send(other).await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem.errors[0].field, "Idempotency-Key", "{problem:?}");
    let file = app
        .get(
            &format!("/v1/receipts/{}/file", first["id"].as_str().unwrap()),
            &admin.token,
        )
        .await;
    assert_eq!(file.status(), StatusCode::OK);
    assert_eq!(file.bytes().await.unwrap().as_ref(), TINY_PNG);
    // The same receipt, as it is now: OCR may have read it in between.
    for field in ["id", "sha256", "size", "uploaded_at", "uploader_id"] {
        assert_eq!(first[field], second[field], "{field}");
    }
    let receipts = app
        .send_ok(Method::GET, "/v1/receipts", &admin, serde_json::Value::Null)
        .await;
    assert_eq!(receipts["items"].as_array().unwrap().len(), 1);
    app.finish().await;
}

/// The list of receipts: each employee their own uploads, approvers and admins the
/// organization's, newest first, in pages.
async fn receipts_are_listed_to_whom_may_see_them_in_pages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let eve = app.add_user(&admin, "eve@acme.test", "employee").await;
    let mallory = app.add_user(&admin, "mallory@acme.test", "employee").await;
    let mut ids = Vec::new();
    for n in 0..3u8 {
        // Different bytes each: a PNG with a byte appended after its end is still one.
        let mut bytes = TINY_PNG.to_vec();
        bytes.push(n);
        let uploaded = upload_receipt(&app, &eve, "r.png", bytes, &[]).await;
        ids.push(
            expect_json::<Receipt>(uploaded, StatusCode::ACCEPTED)
                .await
                .id,
        );
    }
    let upload = upload_receipt(&app, &mallory, "m.png", TINY_PNG.to_vec(), &[]).await;
    let mallorys = consistency(&upload);
    expect_status(upload, StatusCode::ACCEPTED).await;
    let listed =
        |page: &Page<Receipt>| -> Vec<String> { page.items.iter().map(|r| r.id.clone()).collect() };
    let first: Page<Receipt> = expect_json(
        app.get("/v1/receipts?limit=2", &eve.token).await,
        StatusCode::OK,
    )
    .await;
    let cursor = first.next_cursor.clone().unwrap();
    let second: Page<Receipt> = expect_json(
        app.get(&format!("/v1/receipts?limit=2&cursor={cursor}"), &eve.token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(second.next_cursor, None, "{second:?}");
    let mut seen = [listed(&first), listed(&second)].concat();
    seen.reverse();
    assert_eq!(seen, ids, "eve's own, newest first, each once");

    // Another user's upload: the admin waits for it with its token.
    let all: Page<Receipt> = expect_json(
        app.get_after("/v1/receipts", &admin.token, &mallorys).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed(&all).len(), 4);
    let eves: Page<Receipt> = expect_json(
        app.get(
            &format!("/v1/receipts?uploader_id={}", eve.user_id),
            &admin.token,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed(&eves).len(), 3);
    expect_problem(
        app.get(
            &format!("/v1/receipts?uploader_id={}", eve.user_id),
            &mallory.token,
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    expect_problem(
        app.get("/v1/receipts?cursor=nonsense", &eve.token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    expect_problem(
        app.get("/v1/receipts?status=lost", &eve.token).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    app.finish().await;
}

on_both_backends!(
    receipts_are_listed_to_whom_may_see_them_in_pages,
    uploads_are_typed_by_their_bytes_and_limited,
    who_may_upload_and_see_receipts,
    a_receipt_uploaded_for_an_expense_is_attached_to_it,
    a_retried_upload_with_its_key_names_the_same_receipt,
);

#[tokio::test]
async fn on_s3_the_file_is_in_the_bucket_encrypted_and_downloads_by_a_presigned_link() {
    let s3 = S3Server::start();
    let app = TestApp::builder(Backend::Postgres).s3(&s3).start().await;
    let ready = app
        .request(Method::GET, "/ready", None)
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_status(ready, StatusCode::OK).await["checks"]["object_store"],
        "ok",
        "the bucket answers"
    );
    let admin = app.register("Acme", "ada@acme.test").await;
    let uploaded = upload_receipt(&app, &admin, "a.png", TINY_PNG.to_vec(), &[]).await;
    let token = consistency(&uploaded);
    let receipt = expect_status(uploaded, StatusCode::ACCEPTED).await;
    let id = receipt["id"].as_str().unwrap();
    let key = format!("{}/{id}", admin.organization_id);

    // Looked at with the aws command line, not with our code.
    let head = s3.aws(&[
        "s3api",
        "head-object",
        "--bucket",
        &s3.bucket,
        "--key",
        &key,
    ]);
    assert!(head.status.success(), "{head:?}");
    let head: serde_json::Value = serde_json::from_slice(&head.stdout).unwrap();
    assert_eq!(head["ContentLength"], TINY_PNG.len());
    assert_eq!(head["ContentType"], "image/png");
    assert_eq!(head["ServerSideEncryption"], "AES256");
    let copy = app.database.data_dir.join("from-bucket.png");
    let fetched = s3.aws(&[
        "s3",
        "cp",
        &format!("s3://{}/{key}", s3.bucket),
        copy.to_str().unwrap(),
    ]);
    assert!(fetched.status.success(), "{fetched:?}");
    assert_eq!(std::fs::read(&copy).unwrap(), TINY_PNG);

    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let link = no_redirects
        .get(format!("{}/v1/receipts/{id}/file", app.base))
        .bearer_auth(&admin.token)
        .header("x-consistency-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(link.status(), StatusCode::FOUND);
    let url = link.headers()["location"].to_str().unwrap().to_string();
    assert!(url.starts_with(&s3.endpoint), "{url}");
    assert!(url.contains("X-Amz-Expires=300"), "{url}");
    // The link works on its own, without our token.
    let bytes = reqwest::get(&url).await.unwrap();
    assert_eq!(bytes.status(), StatusCode::OK);
    assert_eq!(&bytes.bytes().await.unwrap()[..], TINY_PNG);

    // A photographed receipt, kept in the bucket, read by OCR from there, becomes a draft.
    let photo = draw_receipt(&serde_json::json!({
        "lines": ["CORNER SHOP", "Date: 2026-02-01", "Milk 1.20", "Bread 2.40",
                  "TOTAL EUR 3.60", "Cash 5.00", "Change 1.40"],
        "rotate": -1.0, "blur": 0.5, "noise": 30
    }));
    let uploaded = upload_receipt(
        &app,
        &admin,
        "shop.png",
        photo,
        &[("create_expense", "true")],
    )
    .await;
    let id = expect_json::<Receipt>(uploaded, StatusCode::ACCEPTED)
        .await
        .id;
    let listed = s3.aws(&[
        "s3",
        "ls",
        &format!("s3://{}/{}/", s3.bucket, admin.organization_id),
    ]);
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains(&id),
        "{listed:?}"
    );
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let expense = loop {
        let page: Page<Expense> =
            expect_json(app.get("/v1/expenses", &admin.token).await, StatusCode::OK).await;
        let found = page.items.into_iter().find(|e| e.receipt_ids.contains(&id));
        if let Some(expense) = found {
            break expense;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no draft expense from the receipt"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(expense.merchant, "CORNER SHOP");
    assert_eq!(expense.spent_on, "2026-02-01");
    assert_eq!(
        (expense.amount.as_str(), expense.currency.as_str()),
        ("3.60", "EUR")
    );

    drop(s3);
    let ready = app
        .request(Method::GET, "/ready", None)
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_status(ready, StatusCode::SERVICE_UNAVAILABLE).await["checks"]["object_store"],
        "unreachable"
    );
    app.finish().await;
}
