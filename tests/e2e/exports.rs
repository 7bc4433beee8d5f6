//! Accounting exports (issue 20): the CSV opens in Python's `csv`, the DATEV batch meets
//! the published layout as `tests/support/check_exports.py` reads it, an export takes
//! nothing an earlier one took unless asked to, a retried request answers the same
//! batch, and polling clients get what changed since a time.

use expensewise_tests::{
    expect_status, expensewise, on_both_backends, support_script, Backend, TestApp, User, PASSWORD,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn read(kind: &str, file: &[u8], dir: &std::path::Path) -> Value {
    let path = dir.join(format!("export-{}.{kind}", uuid::Uuid::new_v4()));
    std::fs::write(&path, file).unwrap();
    let output = support_script("check_exports.py", &[kind, path.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Posts an export; its status, batch, count, remaining, left out, and file.
async fn export(
    app: &TestApp,
    user: &User,
    body: Value,
    key: &str,
) -> (StatusCode, String, u64, u64, u64, Vec<u8>) {
    let response = app
        .request(Method::POST, "/v1/exports", Some(&user.token))
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let number = |name: &str| header(name).parse::<u64>().unwrap_or(u64::MAX);
    let (batch, count, remaining, left_out) = (
        header("x-export-batch"),
        number("x-export-count"),
        number("x-export-remaining"),
        number("x-export-left-out"),
    );
    let file = response.bytes().await.unwrap().to_vec();
    (status, batch, count, remaining, left_out, file)
}

async fn approved(app: &TestApp, owner: &User, approver: &User, body: Value) -> String {
    let created = app.send_ok(Method::POST, "/v1/expenses", owner, body).await;
    let id = created["id"].as_str().unwrap().to_string();
    app.send_ok(
        Method::POST,
        &format!("/v1/expenses/{id}/submit"),
        owner,
        Value::Null,
    )
    .await;
    app.send_ok(
        Method::POST,
        &format!("/v1/expenses/{id}/approve"),
        approver,
        Value::Null,
    )
    .await;
    id
}

fn expense(amount: &str, currency: &str, merchant: &str, category: &str, day: &str) -> Value {
    json!({"amount": amount, "currency": currency, "merchant": merchant,
           "category": category, "spent_on": day, "description": "for the books"})
}

async fn exports_take_each_expense_once_in_files_others_read(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let created = app
        .post(
            "/v1/users",
            Some(&admin.token),
            json!({"name": "Émile Zoë", "email": "emile@acme.test", "password": PASSWORD,
                   "role": "employee"}),
        )
        .await;
    expect_status(created, StatusCode::CREATED).await;
    let emile = app.login("emile@acme.test").await;
    let finance = app.add_user(&admin, "fin@acme.test", "finance").await;
    let dir = app.database.data_dir.clone();

    // Nobody but admins and finance exports; DATEV needs the settings first.
    let (status, ..) = export(&app, &emile, json!({"format": "csv"}), "e").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, ..) = export(&app, &finance, json!({"format": "datev"}), "d0").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, ..) = export(
        &app,
        &finance,
        json!({"format": "csv", "fiscal_year": 1899}),
        "y",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let invalid = app
        .request(Method::PUT, "/v1/accounting", Some(&admin.token))
        .json(
            &json!({"datev": {"consultant_number": 12, "client_number": 55003,
                                "fiscal_year_start": 1, "account_length": 4, "chart": "03",
                                "expense_account": "49", "counter_account": "1755"}}),
        )
        .send()
        .await
        .unwrap();
    let problem = expect_status(invalid, StatusCode::UNPROCESSABLE_ENTITY).await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["datev.consultant_number", "datev.expense_account"]);
    app.send_ok(
        Method::PUT,
        "/v1/accounting",
        &admin,
        json!({"datev": {"consultant_number": 29098, "client_number": 55003,
                         "fiscal_year_start": 1, "account_length": 4, "chart": "03",
                         "expense_account": "4900", "counter_account": "1755",
                         "category_accounts": {"meals": "4650", "travel": "4670"}}}),
    )
    .await;

    let lunch = approved(
        &app,
        &emile,
        &admin,
        expense(
            "12.50",
            "EUR",
            "Café \"Zum Löwen\", Köln",
            "meals",
            "2026-01-15",
        ),
    )
    .await;
    let train = approved(
        &app,
        &emile,
        &admin,
        expense("100.00", "EUR", "DB Fernverkehr", "travel", "2025-12-30"),
    )
    .await;
    approved(
        &app,
        &emile,
        &admin,
        expense("7.00", "EUR", "Paper & Co", "office", "2026-02-01"),
    )
    .await;
    // In dollars, at the card statement's rate: both formats book the euro amount.
    let mut diner = expense("30.00", "USD", "Diner", "meals", "2026-01-20");
    diner["exchange_rate"] = json!("0.92");
    let dollars = approved(&app, &emile, &admin, diner).await;
    let draft = app
        .send_ok(
            Method::POST,
            "/v1/expenses",
            &emile,
            expense("5.00", "EUR", "Kiosk", "meals", "2026-02-02"),
        )
        .await;

    // CSV: the four approved, read by Python's csv; asked again with the same key, the
    // same batch; with another key, nothing new.
    let (status, batch, count, _, _, file) =
        export(&app, &finance, json!({"format": "csv"}), "k1").await;
    assert_eq!((status, count), (StatusCode::OK, 4));
    let csv = read("csv", &file, &dir);
    let header: Vec<&str> = csv["header"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert_eq!(
        &header[..8],
        [
            "expense_id",
            "spent_on",
            "owner_id",
            "owner",
            "merchant",
            "category",
            "description",
            "amount"
        ]
    );
    let rows = csv["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let row_of = |id: &str| {
        rows.iter()
            .find(|r| r[column("expense_id")] == id)
            .unwrap_or_else(|| panic!("{id} not exported"))
    };
    let lunch_row = row_of(&lunch);
    assert_eq!(lunch_row[column("merchant")], "Café \"Zum Löwen\", Köln");
    assert_eq!(lunch_row[column("owner")], "Émile Zoë");
    assert_eq!(lunch_row[column("amount")], "12.50");
    assert_eq!(lunch_row[column("base_amount")], "12.50");
    assert_eq!(lunch_row[column("batch_id")], batch.as_str());
    assert_eq!(row_of(&dollars)[column("base_amount")], "27.60");
    assert_eq!(row_of(&dollars)[column("exchange_rate")], "0.92");
    assert_eq!(row_of(&dollars)[column("currency")], "USD");
    assert!(rows.iter().all(|r| r[column("status")] == "approved"));
    let (status, again_batch, count, _, _, again_file) =
        export(&app, &finance, json!({"format": "csv"}), "k1").await;
    assert_eq!((status, count, &again_batch), (StatusCode::OK, 4, &batch));
    assert_eq!(read("csv", &again_file, &dir)["rows"], csv["rows"]);
    let (status, _, count, ..) = export(&app, &finance, json!({"format": "csv"}), "k2").await;
    assert_eq!(
        (status, count),
        (StatusCode::NO_CONTENT, 0),
        "nothing twice"
    );
    let view = app
        .send_ok(
            Method::GET,
            &format!("/v1/expenses/{lunch}"),
            &finance,
            Value::Null,
        )
        .await;
    assert_eq!(view["exported"]["batch_id"], batch.as_str());
    assert_eq!(view["exported"]["format"], "csv");

    // A polling client sees what changed since it last looked: the expense approved and
    // exported after that, nothing else.
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let draft_id = draft["id"].as_str().unwrap();
    app.send_ok(
        Method::POST,
        &format!("/v1/expenses/{draft_id}/submit"),
        &emile,
        Value::Null,
    )
    .await;
    app.send_ok(
        Method::POST,
        &format!("/v1/expenses/{draft_id}/approve"),
        &admin,
        Value::Null,
    )
    .await;
    let (status, _, count, _, _, file) =
        export(&app, &finance, json!({"format": "csv"}), "k3").await;
    assert_eq!((status, count), (StatusCode::OK, 1));
    assert_eq!(read("csv", &file, &dir)["rows"][0][0], draft_id);
    let changed = app
        .request(Method::GET, "/v1/expenses", Some(&finance.token))
        .query(&[("updated_since", since.as_str())])
        .send()
        .await
        .unwrap();
    let changed = expect_status(changed, StatusCode::OK).await;
    let ids: Vec<&str> = changed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [draft_id]);

    // DATEV, deliberately again: one fiscal year per batch, the oldest first.
    let (status, batch_2025, count, remaining, left_out, file) = export(
        &app,
        &finance,
        json!({"format": "datev", "again": true}),
        "d1",
    )
    .await;
    assert_eq!(
        (status, count, remaining, left_out),
        (StatusCode::OK, 1, 4, 0)
    );
    let datev = read("datev", &file, &dir);
    assert_eq!(datev["problems"], json!([]), "{datev}");
    assert_eq!(datev["header"]["WJ-Beginn"], "20250101");
    assert_eq!(datev["header"]["Datum vom"], "20251230");
    let booking = &datev["bookings"][0];
    assert_eq!(booking["amount"], "100,00");
    assert_eq!(booking["account"], "4670");
    assert_eq!(booking["counter_account"], "1755");
    assert_eq!(booking["day"], "3012");
    assert_eq!(booking["info"]["Expense-Wise ID"], train.as_str());
    let (status, batch_2026, count, remaining, _, file) = export(
        &app,
        &finance,
        json!({"format": "datev", "again": true, "fiscal_year": 2026}),
        "d2",
    )
    .await;
    // Asked again, the 2025 expense is left for a batch of its year.
    assert_eq!((status, count, remaining), (StatusCode::OK, 4, 1));
    let datev = read("datev", &file, &dir);
    assert_eq!(datev["problems"], json!([]), "{datev}");
    assert_eq!(datev["header"]["Beraternummer"], "29098");
    assert_eq!(datev["header"]["Sachkontenlänge"], "4");
    let bookings = datev["bookings"].as_array().unwrap();
    let lunch_booking = bookings
        .iter()
        .find(|b| b["info"]["Expense-Wise ID"] == lunch.as_str())
        .unwrap();
    assert_eq!(lunch_booking["amount"], "12,50");
    assert_eq!(lunch_booking["account"], "4650");
    assert_eq!(lunch_booking["day"], "1501");
    assert_eq!(lunch_booking["info"]["Mitarbeiter"], "Émile Zoë");
    assert!(lunch_booking["text"]
        .as_str()
        .unwrap()
        .starts_with("Café \"Zum Löwen\", Köln"));
    assert!(
        bookings.iter().any(|b| b["account"] == "4900"),
        "office: the default account"
    );

    // The batches, and one's file again.
    let batches = app
        .send_ok(Method::GET, "/v1/exports", &finance, Value::Null)
        .await;
    let listed: Vec<&str> = batches["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["batch_id"].as_str().unwrap())
        .collect();
    assert!(
        listed.contains(&batch_2026.as_str()) && listed.contains(&batch_2025.as_str()),
        "{batch_2025} and {batch_2026} in {batches}"
    );
    let again = app
        .request(
            Method::GET,
            &format!("/v1/exports/{batch_2026}"),
            Some(&finance.token),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let again = read("datev", &again.bytes().await.unwrap(), &dir);
    assert_eq!(again["bookings"], datev["bookings"]);

    // The command line makes the same exports.
    let output = expensewise(
        &[
            "export",
            "--as",
            &finance.user_id,
            "--format",
            "csv",
            "--again",
            "-o",
            dir.join("cli.csv").to_str().unwrap(),
        ],
        &app.database.environment(),
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cli = read("csv", &std::fs::read(dir.join("cli.csv")).unwrap(), &dir);
    assert_eq!(cli["rows"].as_array().unwrap().len(), 5);
    app.finish().await;
}

on_both_backends!(exports_take_each_expense_once_in_files_others_read);
