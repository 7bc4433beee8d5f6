//! Receipts are booking vouchers: each file is locked until the end of its year plus the
//! retention years, and a legal hold keeps it whatever the date. Checked on an S3 server
//! that enforces Object Lock, with the `aws` command line (a client not ours), and on the
//! local directory of the embedded default.

use chrono::Datelike as _;
use expensewise_tests::{
    expect_problem, expect_status, expensewise, upload_receipt, Backend, S3Server, TestApp,
    TestDatabase, TINY_PNG,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn aws_json(s3: &S3Server, args: &[&str]) -> Value {
    let output = s3.aws(args);
    assert!(output.status.success(), "aws {args:?}: {output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn on_s3_a_receipt_in_compliance_mode_outlives_deletes_and_overwrites_and_a_hold_holds() {
    let s3 = S3Server::start();
    let app = TestApp::builder(Backend::Postgres)
        .s3(&s3)
        .env(vec![("RECEIPT_RETENTION_MODE", "compliance".to_string())])
        .start()
        .await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let eve = app.add_user(&admin, "eve@acme.test", "employee").await;
    let auditor = app.add_user(&admin, "aud@acme.test", "auditor").await;
    let uploaded = upload_receipt(&app, &eve, "a.png", TINY_PNG.to_vec(), &[]).await;
    let receipt = expect_status(uploaded, StatusCode::ACCEPTED).await;
    let id = receipt["id"].as_str().unwrap();
    let key = format!("{}/{id}", admin.organization_id);
    let object = ["--bucket", s3.bucket.as_str(), "--key", key.as_str()];

    let head = aws_json(&s3, &[&["s3api", "head-object"][..], &object].concat());
    assert_eq!(head["ObjectLockMode"], "COMPLIANCE");
    let until = head["ObjectLockRetainUntilDate"].as_str().unwrap();
    let year = chrono::Utc::now().year() + 9;
    assert!(until.starts_with(&format!("{year}-01-01")), "{until}");

    // The stored version can be neither deleted nor replaced.
    let versions = aws_json(
        &s3,
        &[
            "s3api",
            "list-object-versions",
            "--bucket",
            &s3.bucket,
            "--prefix",
            &key,
        ],
    );
    let version = versions["Versions"][0]["VersionId"]
        .as_str()
        .unwrap()
        .to_string();
    let deleted = s3.aws(
        &[
            &["s3api", "delete-object"][..],
            &object,
            &["--version-id", &version],
        ]
        .concat(),
    );
    assert!(
        !deleted.status.success(),
        "a locked version was deleted: {deleted:?}"
    );
    let other = app.database.data_dir.join("other.bin");
    std::fs::write(&other, b"not the receipt").unwrap();
    let overwritten = s3.aws(
        &[
            &["s3api", "put-object"][..],
            &object,
            &["--body", other.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(
        overwritten.status.success(),
        "a new version may be written: {overwritten:?}"
    );
    let kept = app.database.data_dir.join("kept.png");
    let fetched = s3.aws(
        &[
            &["s3api", "get-object"][..],
            &object,
            &["--version-id", &version, kept.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(fetched.status.success(), "{fetched:?}");
    assert_eq!(
        std::fs::read(&kept).unwrap(),
        TINY_PNG,
        "the receipt is still there"
    );

    // Legal holds: admins and auditors, with a reason; on the receipt's own version,
    // not on what was written under its key since.
    let hold = format!("/v1/receipts/{id}/legal-hold");
    let refused = app
        .post(
            &hold,
            Some(&eve.token),
            json!({"hold": true, "reason": "x"}),
        )
        .await;
    expect_problem(refused, StatusCode::FORBIDDEN).await;
    let unexplained = app
        .post(&hold, Some(&auditor.token), json!({"hold": true}))
        .await;
    let unexplained = expect_problem(unexplained, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(unexplained.errors[0].field, "reason");
    let legal_hold = |s3: &S3Server| {
        aws_json(
            s3,
            &[
                &["s3api", "get-object-legal-hold"][..],
                &object,
                &["--version-id", &version],
            ]
            .concat(),
        )["LegalHold"]["Status"]
            .clone()
    };
    assert_ne!(legal_hold(&s3), "ON", "no hold before one is placed");
    let held = app
        .post(
            &hold,
            Some(&auditor.token),
            json!({"hold": true, "reason": "tax audit 2026"}),
        )
        .await;
    let held = expect_status(held, StatusCode::OK).await;
    assert_eq!(held["legal_hold"], true);
    assert_eq!(held["mode"], "compliance");
    assert_eq!(legal_hold(&s3), "ON");
    let released = app
        .post(&hold, Some(&admin.token), json!({"hold": false}))
        .await;
    assert_eq!(
        expect_status(released, StatusCode::OK).await["legal_hold"],
        false
    );
    assert_eq!(legal_hold(&s3), "OFF");
    let current = aws_json(&s3, &[&["s3api", "head-object"][..], &object].concat());
    assert_ne!(
        current["VersionId"],
        version.as_str(),
        "the key has a newer version"
    );
    assert_ne!(current["ObjectLockLegalHoldStatus"], "ON");
    app.finish().await;

    // A bucket that cannot lock objects is refused at start, not used without locks.
    let plain = s3.aws(&["s3api", "create-bucket", "--bucket", "plain"]);
    assert!(plain.status.success(), "{plain:?}");
    let database = TestDatabase::create(Backend::Sqlite).await;
    let mut env = database.environment();
    env.extend(s3.environment());
    env.push(("AWS_S3_BUCKET", "plain".to_string()));
    let refused = expensewise(&["serve"], &env).await;
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("Object Lock"), "{said}");
    database.drop_database().await;
}

#[tokio::test]
async fn in_the_local_directory_each_receipt_is_kept_by_a_note_beside_it() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let uploaded = upload_receipt(&app, &admin, "a.png", TINY_PNG.to_vec(), &[]).await;
    let receipt = expect_status(uploaded, StatusCode::ACCEPTED).await;
    let id = receipt["id"].as_str().unwrap();
    let note = app
        .database
        .data_dir
        .join("receipts")
        .join(&admin.organization_id)
        .join(format!("{id}.retention.json"));
    let read_note = || -> Value { serde_json::from_slice(&std::fs::read(&note).unwrap()).unwrap() };
    let year = chrono::Utc::now().year() + 9;
    assert!(read_note()["retain_until"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{year}-01-01")));
    assert_eq!(read_note()["mode"], "governance");
    assert_eq!(read_note()["legal_hold"], false);

    let hold = format!("/v1/receipts/{id}/legal-hold");
    let held = app
        .post(
            &hold,
            Some(&admin.token),
            json!({"hold": true, "reason": "litigation"}),
        )
        .await;
    let token = expensewise_tests::consistency(&held);
    assert_eq!(
        expect_status(held, StatusCode::OK).await["legal_hold"],
        true
    );
    assert_eq!(read_note()["legal_hold"], true);
    let shown = app
        .get_after(&format!("/v1/receipts/{id}"), &admin.token, &token)
        .await;
    assert_eq!(
        expect_status(shown, StatusCode::OK).await["legal_hold"],
        true
    );
    app.finish().await;
}
