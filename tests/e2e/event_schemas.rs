//! Every event type the product writes matches its JSON Schema in `schema/events`, as a
//! validator that is not ours (Python's `jsonschema`) reads it.

use expensewise_infra::event_store::Scope;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use chrono::Utc;
use expensewise_domain::organization::DeadLetterSettlement;
use expensewise_domain::receipt::fingerprint::Fingerprint;
use expensewise_domain::receipt::{Extraction, ReceiptCommand, Upload};
use expensewise_domain::{Actor, Currency, Money, Receipt, Role};
use expensewise_infra::testing::{store_row, StoredRow};
use expensewise_infra::{Database, EventStore};
use expensewise_tests::oidc::{self, oidc_client, OidcProvider};
use expensewise_tests::{
    event_metadata, expect_status, expense_body, on_both_backends,
    store_pre_credentials_organization, store_v1_registration, stored_events, Backend, TestApp,
    User, PASSWORD,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

/// What the validator reports: every schema, those some event was checked against, and
/// every event that has no schema or does not match it.
struct Validation {
    schemas: Vec<String>,
    used: Vec<String>,
    failures: Vec<String>,
}

fn validate(events: &[Value]) -> Validation {
    let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut child = Command::new(&python)
        .arg(format!("{root}/tests/support/validate_events.py"))
        .arg(format!("{root}/schema/events"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {python} (with jsonschema; ./scripts/test.sh installs it): {e}")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(events).unwrap())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the validator failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let list = |key: &str| -> Vec<String> {
        report[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    Validation {
        schemas: list("schemas"),
        used: list("used"),
        failures: list("failures"),
    }
}

fn kiosk() -> Extraction {
    Extraction {
        merchant: Some("Kiosk".into()),
        date: Some(Utc::now().date_naive()),
        total: Some(Money::parse("4.20", Currency::parse("EUR").unwrap()).unwrap()),
        tax: None,
        text: "KIOSK\nTOTAL 4.20".into(),
        confidence: BTreeMap::from([("total".to_string(), 0.75)]),
    }
}

async fn record_receipt(store: &EventStore, actor: Actor, digest: char) -> Uuid {
    let id = Uuid::new_v4();
    let metadata = event_metadata(actor.organization_id, Some(actor.user_id));
    let upload = ReceiptCommand::RecordUpload {
        actor,
        upload: Upload {
            content_type: "image/jpeg".into(),
            size: 2048,
            sha256: digest.to_string().repeat(64),
            storage_key: format!("{}/{id}", actor.organization_id),
            storage_version: Some("3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY".into()),
            duplicate_of: None,
            expense_id: None,
            create_expense: false,
            fingerprint: Some(Fingerprint(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef)),
            note: Some("Taxi from the station".into()),
        },
        at: Utc::now(),
    };
    store
        .execute::<Receipt>(&Scope::none(), &id.to_string(), upload, &metadata)
        .await
        .unwrap();
    let outcome = match digest {
        'a' => ReceiptCommand::RecordScan {
            extraction: kiosk(),
            at: Utc::now(),
        },
        'c' => ReceiptCommand::SendToReview {
            extraction: kiosk(),
            doubts: vec!["total".into()],
            at: Utc::now(),
        },
        _ => ReceiptCommand::RecordScanFailure {
            reason: "the image is too blurred to read".into(),
            at: Utc::now(),
        },
    };
    store
        .execute::<Receipt>(&Scope::none(), &id.to_string(), outcome, &metadata)
        .await
        .unwrap();
    id
}

/// Writes at least one event of every type, through the API where it has a way to, in
/// the organization `admin` (ada@acme.test) registered.
pub(crate) async fn every_kind_of_event(app: &TestApp, admin: &User) {
    let admin = admin.clone();
    // An endpoint added, changed, rotated, turned off (as the sender does when it keeps
    // failing) and removed; it points at a port nothing listens on.
    let scratch = app
        .send_ok(
            Method::POST,
            "/v1/webhooks",
            &admin,
            json!({"url": "http://127.0.0.1:9/nowhere", "event_types": ["ExpenseCreated"]}),
        )
        .await;
    let scratch_path = format!("/v1/webhooks/{}", scratch["id"].as_str().unwrap());
    app.send_ok(
        Method::PATCH,
        &scratch_path,
        &admin,
        json!({"description": "scratch", "event_types": []}),
    )
    .await;
    app.send_ok(
        Method::POST,
        &format!("{scratch_path}/rotate-secret"),
        &admin,
        json!({"overlap_seconds": 60}),
    )
    .await;
    let approver = app.add_user(&admin, "bob@acme.test", "approver").await;
    let employee = app.add_user(&admin, "eve@acme.test", "employee").await;
    let user_path = format!("/v1/users/{}", approver.user_id);
    app.send_ok(
        Method::PATCH,
        &user_path,
        &admin,
        json!({"role": "auditor"}),
    )
    .await;
    app.send_ok(
        Method::PATCH,
        &user_path,
        &admin,
        json!({"role": "approver"}),
    )
    .await;
    app.send_ok(Method::PATCH, &user_path, &admin, json!({"active": false}))
        .await;
    app.send_ok(Method::PATCH, &user_path, &admin, json!({"active": true}))
        .await;
    let approver = app.login("bob@acme.test").await;
    let finance = app.add_user(&admin, "fin@acme.test", "finance").await;

    // Single sign-on set, a member linked to their account by signing in, and off again.
    let key = oidc::key_file();
    let provider = OidcProvider::start(
        json!([oidc_client("expensewise", &oidc::callback())]),
        json!({"eve-1": {"email": "eve@acme.test", "email_verified": true}}),
        &key,
    );
    app.send_ok(
        Method::PUT,
        "/v1/sso",
        &admin,
        json!({"issuer": provider.issuer(), "client_id": "expensewise",
               "client_secret": oidc::CLIENT_SECRET, "allowed_domains": ["acme.test"],
               "default_role": "employee", "password_sign_in": true}),
    )
    .await;
    let (status, linked, _) = oidc::sign_in(&app.base, &admin.organization_id, "eve-1").await;
    assert_eq!(status, StatusCode::OK, "{linked}");
    let removed = app
        .request(Method::DELETE, "/v1/sso", Some(&admin.token))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);

    // Uploads come with the receipts API; here the store records them as it will.
    let db = app.database.connect().await;
    let store = app.database.event_store(&db).await;
    let actor = Actor {
        user_id: Uuid::parse_str(&employee.user_id).unwrap(),
        organization_id: Uuid::parse_str(&employee.organization_id).unwrap(),
        role: Role::Employee,
    };
    let scanned = record_receipt(&store, actor, 'a').await;
    let failed = record_receipt(&store, actor, 'b').await;
    let unsure = record_receipt(&store, actor, 'c').await;
    app.send_ok(
        Method::POST,
        &format!("/v1/receipts/{unsure}/review"),
        &approver,
        json!({"amount": "4.30"}),
    )
    .await;
    app.send_ok(
        Method::POST,
        &format!("/v1/receipts/{failed}/rescan"),
        &employee,
        Value::Null,
    )
    .await;

    // A policy that warns about the expense's day, so that its submission records a
    // violation and the submitter's justification; and a chain of two steps (the
    // employee's manager, then finance), so that a step is approved before the last;
    // and a mileage rate, for a claim priced by it and edited.
    app.send_ok(
        Method::PUT,
        "/v1/policy",
        &admin,
        json!({"rules": [{"id": "holiday", "kind": "weekend_or_holiday", "level": "warn",
                          "holidays": ["2026-01-15"]}],
               "approval_chains": [{"id": "two", "steps": ["manager", "finance"]}],
               "mileage_rates": [{"unit": "km", "per_unit": "0.30", "valid_from": "2020-01-01"}]}),
    )
    .await;
    let trip = app
        .send_ok(
            Method::POST,
            "/v1/expenses",
            &employee,
            json!({"mileage": {"distance": "12.5", "unit": "km"}, "spent_on": "2026-01-14"}),
        )
        .await;
    app.send_ok(
        Method::PATCH,
        &format!("/v1/expenses/{}", trip["id"].as_str().unwrap()),
        &employee,
        json!({"mileage": {"distance": "14", "unit": "km"}}),
    )
    .await;
    app.send_ok(
        Method::PATCH,
        &format!("/v1/users/{}", employee.user_id),
        &admin,
        json!({"manager_id": approver.user_id}),
    )
    .await;
    let next_year = (chrono::Utc::now() + chrono::Duration::days(365)).date_naive();
    app.send_ok(
        Method::POST,
        "/v1/me/delegation",
        &approver,
        json!({"delegate_id": admin.user_id, "from": "2026-01-01", "until": next_year}),
    )
    .await;
    let ended = app
        .request(Method::DELETE, "/v1/me/delegation", Some(&approver.token))
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    let mut body = expense_body();
    body["receipt_id"] = json!(scanned);
    let expense = app
        .send_ok(Method::POST, "/v1/expenses", &employee, body)
        .await;
    let path = format!("/v1/expenses/{}", expense["id"].as_str().unwrap());
    app.send_ok(
        Method::PATCH,
        &path,
        &employee,
        json!({"amount": "43.00", "receipt_id": failed}),
    )
    .await;
    app.send_ok(
        Method::POST,
        &format!("{path}/submit"),
        &employee,
        json!({"justification": "the team met on the holiday"}),
    )
    .await;
    app.send_ok(
        Method::POST,
        &format!("{path}/reject"),
        &approver,
        json!({"reason": "no receipt date"}),
    )
    .await;
    app.send_ok(
        Method::POST,
        &format!("{path}/submit"),
        &employee,
        json!({"justification": "the team met on the holiday"}),
    )
    .await;
    app.send_ok(
        Method::POST,
        &format!("{path}/approve"),
        &approver,
        json!({"comment": "fine"}),
    )
    .await;
    app.send_ok(
        Method::POST,
        &format!("{path}/approve"),
        &finance,
        json!({"comment": "booked"}),
    )
    .await;
    app.send_ok(
        Method::POST,
        &format!("{path}/reimburse"),
        &admin,
        Value::Null,
    )
    .await;
    app.send_ok(
        Method::PUT,
        "/v1/accounting",
        &admin,
        json!({"datev": {"consultant_number": 29098, "client_number": 55003,
                         "fiscal_year_start": 1, "account_length": 4, "chart": "03",
                         "expense_account": "4900", "counter_account": "1755",
                         "category_accounts": {"meals": "4650"}}}),
    )
    .await;
    let exported = app
        .request(Method::POST, "/v1/exports", Some(&finance.token))
        .json(&json!({"format": "datev"}))
        .send()
        .await
        .unwrap();
    assert_eq!(exported.status(), StatusCode::OK);
    assert_eq!(exported.headers()["x-export-count"], "1");
    let doomed = app
        .send_ok(Method::POST, "/v1/expenses", &employee, expense_body())
        .await;
    let doomed = format!("/v1/expenses/{}", doomed["id"].as_str().unwrap());
    let deleted = app
        .request(Method::DELETE, &doomed, Some(&employee.token))
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());

    app.send_ok(
        Method::PUT,
        "/v1/me/password",
        &employee,
        json!({"current_password": PASSWORD, "new_password": "another long passphrase"}),
    )
    .await;

    let token = app
        .send_ok(
            Method::POST,
            "/v1/tokens",
            &employee,
            json!({"name": "sync", "scopes": ["expenses:read"]}),
        )
        .await;
    app.send_ok(
        Method::DELETE,
        &format!("/v1/tokens/{}", token["id"].as_str().unwrap()),
        &employee,
        Value::Null,
    )
    .await;

    let uploaded = expensewise_tests::upload_receipt(
        app,
        &employee,
        "held.png",
        expensewise_tests::TINY_PNG.to_vec(),
        &[],
    )
    .await;
    assert_eq!(uploaded.status(), StatusCode::ACCEPTED);
    let held: Value = uploaded.json().await.unwrap();
    app.send_ok(
        Method::POST,
        &format!("/v1/receipts/{}/legal-hold", held["id"].as_str().unwrap()),
        &admin,
        json!({"hold": true, "reason": "audit"}),
    )
    .await;

    // The employee is erased; their reimbursed expense and its receipts are kept, until
    // a sweep well after their retention ends.
    app.send_ok(
        Method::POST,
        &format!("/v1/users/{}/erasure", employee.user_id),
        &admin,
        Value::Null,
    )
    .await;
    let far = chrono::Utc::now() + chrono::Duration::days(365 * 40);
    let objects = app.database.objects().await;
    let swept = expensewise_application::accounts::erasure::sweep(&store, &objects, far)
        .await
        .unwrap();
    assert!(swept.ended > 0, "{swept:?}");

    // Two events a worker gave up on: the admin retries one and discards the other.
    let operator = Actor {
        user_id: Uuid::parse_str(&admin.user_id).unwrap(),
        role: Role::Admin,
        ..actor
    };
    let failed: Vec<_> = stored_events(&db)
        .await
        .into_iter()
        .filter(|e| e.metadata["organization_id"] == operator.organization_id.to_string())
        .take(2)
        .collect();
    let metadata = event_metadata(operator.organization_id, Some(operator.user_id));
    for (event, settlement) in failed.iter().zip([
        DeadLetterSettlement::Retry,
        DeadLetterSettlement::Discard {
            reason: "a test of the schemas".into(),
        },
    ]) {
        expensewise_infra::dead_letters::record(&db, "schema-test", event, "gave up")
            .await
            .unwrap();
        let id = expensewise_infra::nats::event_id(
            &event.aggregate_type,
            &event.aggregate_id,
            event.sequence,
        );
        expensewise_application::dead_letters::settle(
            &store,
            Some(&operator),
            &metadata,
            "schema-test",
            id,
            settlement,
        )
        .await
        .unwrap();
    }

    let scratch_id = Uuid::parse_str(scratch["id"].as_str().unwrap()).unwrap();
    expensewise_application::webhooks::disable_endpoint(
        &store,
        actor.organization_id,
        scratch_id,
        "deliveries failed".into(),
    )
    .await
    .unwrap();
    let removed = app
        .request(Method::DELETE, &scratch_path, Some(&admin.token))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);

    // Organizations as older releases stored them: before version 2 of the registration,
    // and before the credentials store (version 2 of it, and version 1 of UserAdded).
    store_v1_registration(&db).await;
    store_v1_upload(&db).await;
    store_v2_upload(&db).await;
    store_v3_upload(&db).await;
    store_v1_expense(&db).await;
    store_v2_expense(&db).await;
    store_v1_policy(&db).await;
    store_pre_credentials_organization(
        &db,
        (Uuid::new_v4(), "$argon2id$old".into()),
        (Uuid::new_v4(), "$argon2id$old".into()),
    )
    .await;
    db.close().await;
}

/// An expense created, edited, submitted, rejected, submitted again and approved as
/// version 1.0 stored them (before amounts in the organization's currency, policies and
/// approval chains), of an organization of its own.
async fn store_v1_expense(db: &Database) {
    let (organization, id, owner) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let money = json!({"amount": "12.50", "currency": "EUR"});
    let events = [
        (
            "ExpenseCreated",
            json!({"organization_id": organization, "owner_id": owner,
            "money": money, "merchant": "Kiosk", "category": "meals",
            "spent_on": "2026-01-05", "description": null, "receipt_id": null,
            "created_at": "2026-01-05T10:00:00Z"}),
        ),
        (
            "ExpenseUpdated",
            json!({"money": money, "merchant": "Kiosk am Markt",
            "category": "meals", "spent_on": "2026-01-05", "description": null,
            "updated_at": "2026-01-05T10:01:00Z"}),
        ),
        (
            "ExpenseSubmitted",
            json!({"resubmission": false,
            "submitted_at": "2026-01-05T10:02:00Z"}),
        ),
        (
            "ExpenseRejected",
            json!({"approver_id": Uuid::new_v4(), "reason": "no receipt",
            "rejected_at": "2026-01-05T10:03:00Z"}),
        ),
        (
            "ExpenseSubmitted",
            json!({"resubmission": true, "submitted_at": "2026-01-05T10:04:00Z"}),
        ),
        (
            "ExpenseApproved",
            json!({"approver_id": Uuid::new_v4(), "comment": null,
            "approved_at": "2026-01-05T10:05:00Z"}),
        ),
    ];
    store_expense_rows(db, (organization, id), "1.0", events).await;
}

/// Stores `events` as one expense's, in order, as `version` wrote them.
async fn store_expense_rows<const N: usize>(
    db: &Database,
    (organization, id): (Uuid, Uuid),
    version: &'static str,
    events: [(&'static str, Value); N],
) {
    for (n, (event_type, fields)) in events.into_iter().enumerate() {
        let row = StoredRow {
            aggregate_type: "expense",
            aggregate_id: id.to_string(),
            sequence: n as i64 + 1,
            event_type,
            event_version: version,
            payload: json!({ event_type: fields }),
            metadata: json!({"organization_id": organization}),
        };
        store_row(db, row).await;
    }
}

/// An expense created and edited as version 2.0 stored them (before mileage claims), of
/// an organization of its own.
async fn store_v2_expense(db: &Database) {
    let (organization, id) = (Uuid::new_v4(), Uuid::new_v4());
    let money = json!({"amount": "12.50", "currency": "EUR"});
    let valued = |fields: Value| {
        let mut fields = fields;
        for (k, v) in [
            ("base_amount", money.clone()),
            ("rate", Value::Null),
            ("policy_version", json!(0)),
            ("violations", json!([])),
        ] {
            fields[k] = v;
        }
        fields
    };
    let events = [
        (
            "ExpenseCreated",
            valued(
                json!({"organization_id": organization, "owner_id": Uuid::new_v4(),
            "money": money, "merchant": "Kiosk", "category": "meals",
            "spent_on": "2026-06-05", "description": null, "receipt_id": null,
            "created_at": "2026-06-05T10:00:00Z"}),
            ),
        ),
        (
            "ExpenseUpdated",
            valued(json!({"money": money, "merchant": "Kiosk am Markt",
            "category": "meals", "spent_on": "2026-06-05", "description": null,
            "updated_at": "2026-06-05T10:01:00Z"})),
        ),
    ];
    store_expense_rows(db, (organization, id), "2.0", events).await;
}

/// A policy as version 1.0 of `PolicyChanged` stored it (before mileage rates), of an
/// organization of its own.
async fn store_v1_policy(db: &Database) {
    let organization = Uuid::new_v4();
    let payload = json!({"PolicyChanged": {
        "organization_id": organization, "version": 1,
        "rules": [{"id": "cap", "kind": "max_per_expense", "level": "block", "amount": "500"}],
        "approval_chains": [], "changed_by": Uuid::new_v4(),
        "changed_at": "2026-06-05T10:00:00Z"}});
    let row = StoredRow {
        aggregate_type: "policy",
        aggregate_id: organization.to_string(),
        sequence: 1,
        event_type: "PolicyChanged",
        event_version: "1.0",
        payload,
        metadata: json!({"organization_id": organization}),
    };
    store_row(db, row).await;
}

/// A `ReceiptUploaded` of version 2.0 (before fingerprints), of an organization of its own.
/// A `ReceiptUploaded` of version 3.0 (before uploads kept a note), as it was stored
/// then, of an organization of its own.
async fn store_v3_upload(db: &Database) {
    let (organization, id) = (Uuid::new_v4(), Uuid::new_v4());
    let payload = json!({"ReceiptUploaded": {
        "organization_id": organization, "uploader_id": Uuid::new_v4(),
        "content_type": "image/png", "size": 4096, "sha256": "d".repeat(64),
        "storage_key": format!("{organization}/{id}"), "storage_version": null,
        "duplicate_of": null, "expense_id": null, "create_expense": true,
        "fingerprint": "0123456789abcdef0123456789abcdef",
        "uploaded_at": "2026-11-05T10:00:00Z"}});
    let row = StoredRow {
        aggregate_type: "receipt",
        aggregate_id: id.to_string(),
        sequence: 1,
        event_type: "ReceiptUploaded",
        event_version: "3.0",
        payload,
        metadata: json!({"organization_id": organization}),
    };
    store_row(db, row).await;
}

async fn store_v2_upload(db: &Database) {
    let (organization, id) = (Uuid::new_v4(), Uuid::new_v4());
    let payload = json!({"ReceiptUploaded": {
        "organization_id": organization, "uploader_id": Uuid::new_v4(),
        "content_type": "image/jpeg", "size": 2048, "sha256": "c".repeat(64),
        "storage_key": format!("{organization}/{id}"), "storage_version": "v7",
        "duplicate_of": null, "expense_id": null, "create_expense": false,
        "uploaded_at": "2026-06-05T10:00:00Z"}});
    let row = StoredRow {
        aggregate_type: "receipt",
        aggregate_id: id.to_string(),
        sequence: 1,
        event_type: "ReceiptUploaded",
        event_version: "2.0",
        payload,
        metadata: json!({"organization_id": organization}),
    };
    store_row(db, row).await;
}

/// A `ReceiptUploaded` of version 1.0 (before uploads named their S3 version), as it was
/// stored then, of an organization of its own.
async fn store_v1_upload(db: &Database) {
    let (organization, id) = (Uuid::new_v4(), Uuid::new_v4());
    let payload = json!({"ReceiptUploaded": {
        "organization_id": organization, "uploader_id": Uuid::new_v4(),
        "content_type": "image/png", "size": 68, "sha256": "b".repeat(64),
        "storage_key": format!("{organization}/{id}"), "duplicate_of": null,
        "expense_id": null, "create_expense": false,
        "uploaded_at": "2026-01-05T10:00:00Z"}});
    let row = StoredRow {
        aggregate_type: "receipt",
        aggregate_id: id.to_string(),
        sequence: 1,
        event_type: "ReceiptUploaded",
        event_version: "1.0",
        payload,
        metadata: json!({"organization_id": organization}),
    };
    store_row(db, row).await;
}

async fn every_event_matches_its_schema(backend: Backend) {
    let app = TestApp::builder(backend)
        .env(oidc::sso_environment())
        .start()
        .await;
    let admin = app.register("Acme", "ada@acme.test").await;
    every_kind_of_event(&app, &admin).await;

    // As stored and as published on JetStream: `{"<event type>": fields}`.
    let db = app.database.connect().await;
    let stored: Vec<Value> = stored_events(&db)
        .await
        .into_iter()
        .map(|e| {
            let fields = e.payload[&e.event_type].clone();
            assert!(
                fields.is_object(),
                "{} is wrapped in its type",
                e.event_type
            );
            json!({
                "aggregate_type": e.aggregate_type,
                "event_type": e.event_type,
                "event_version": e.event_version,
                "payload": fields,
            })
        })
        .collect();
    db.close().await;
    let report = validate(&stored);
    assert_eq!(report.failures, Vec::<String>::new());
    assert_eq!(
        report.used, report.schemas,
        "every schema describes an event the product writes, and every type was written"
    );
    assert_eq!(report.schemas.len(), 59);
    let written: std::collections::BTreeSet<&str> = report
        .schemas
        .iter()
        .map(|s| s.split('/').nth(1).unwrap())
        .collect();
    let deliverable = expensewise_domain::webhook::EVENT_TYPES
        .iter()
        .copied()
        .collect();
    assert_eq!(
        written, deliverable,
        "webhooks offer every event type there is"
    );

    // As auditors read them.
    let admin = app.login("ada@acme.test").await;
    let audit = expect_status(
        app.get("/v1/audit/events?limit=1000", &admin.token).await,
        StatusCode::OK,
    )
    .await;
    let audited = audit["events"].as_array().unwrap().clone();
    assert!(audited.len() >= 25, "{}", audited.len());
    let report = validate(&audited);
    assert_eq!(report.failures, Vec::<String>::new());
    let mut of_this_organization = report.schemas.clone();
    of_this_organization.retain(|s| {
        ![
            "organization/OrganizationRegistered/1.0",
            "organization/OrganizationRegistered/2.0",
            "organization/UserAdded/1.0",
            "receipt/ReceiptUploaded/1.0",
            "receipt/ReceiptUploaded/2.0",
            "receipt/ReceiptUploaded/3.0",
            "expense/ExpenseCreated/1.0",
            "expense/ExpenseCreated/2.0",
            "expense/ExpenseUpdated/1.0",
            "expense/ExpenseUpdated/2.0",
            "policy/PolicyChanged/1.0",
            "expense/ExpenseSubmitted/1.0",
            "expense/ExpenseApproved/1.0",
            "expense/ExpenseRejected/1.0",
        ]
        .contains(&s.as_str())
    });
    assert_eq!(report.used, of_this_organization);
    app.finish().await;
}

on_both_backends!(every_event_matches_its_schema);
