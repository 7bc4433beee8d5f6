//! Mileage (issue 19): the organization's rates per kilometre and mile with their validity
//! dates in the policy; a claim's amount is its distance at the rate of its day, recorded
//! with it and kept when the policy changes; edits price it again; the policy's limits
//! apply to it but not its receipt rules; mistakes get a clear 422 and change nothing.

use expensewise_tests::{
    assert_read_models_equal_a_rebuild, expect_status, on_both_backends, Backend, TestApp, User,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn put_policy(app: &TestApp, admin: &User, body: Value) -> reqwest::Response {
    app.request(Method::PUT, "/v1/policy", Some(&admin.token))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn patch(app: &TestApp, user: &User, expense: &Value, body: Value) -> reqwest::Response {
    let path = format!("/v1/expenses/{}", expense["id"].as_str().unwrap());
    app.request(Method::PATCH, &path, Some(&user.token))
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn rates(km_from_2026: &str) -> Value {
    json!([
        {"unit": "km", "per_unit": "0.30", "valid_from": "2025-01-01", "valid_until": "2025-12-31"},
        {"unit": "km", "per_unit": km_from_2026, "valid_from": "2026-01-01"},
        {"unit": "mi", "per_unit": "0.45", "valid_from": "2025-01-01"}
    ])
}

/// The policy of these tests: its mileage rates, a receipt required over 10 EUR and a
/// warning over 100 EUR per expense.
fn policy(km_from_2026: &str) -> Value {
    json!({
        "rules": [
            {"id": "receipts", "kind": "receipt_required", "level": "block", "amount": "10"},
            {"id": "cap", "kind": "max_per_expense", "level": "warn", "amount": "100"}
        ],
        "mileage_rates": rates(km_from_2026)
    })
}

fn trip(distance: &str, unit: &str, spent_on: &str) -> Value {
    json!({"mileage": {"distance": distance, "unit": unit}, "spent_on": spent_on})
}

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {problem}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect()
}

async fn count_expenses(app: &TestApp, user: &User) -> usize {
    let page = expect_status(app.get("/v1/expenses", &user.token).await, StatusCode::OK).await;
    page["items"].as_array().unwrap().len()
}

async fn claims_are_priced_at_the_rate_of_their_day(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let employee = app.add_user(&admin, "eve@acme.test", "employee").await;
    let approver = app.add_user(&admin, "bob@acme.test", "approver").await;

    // Rates that overlap, or that are not a price, are refused by name; nothing changes.
    let mut overlapping = policy("0.38");
    overlapping["mileage_rates"][1]["valid_from"] = json!("2025-12-31");
    overlapping["mileage_rates"][2]["per_unit"] = json!("0");
    let refused = put_policy(&app, &admin, overlapping).await;
    let refused = expect_status(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&refused), ["mileage_rates[1]", "mileage_rates[2]"]);
    let unset = expect_status(app.get("/v1/policy", &admin.token).await, StatusCode::OK).await;
    assert_eq!(unset["version"], 0);

    // Without rates there is nothing to claim mileage at.
    let none = app
        .post(
            "/v1/expenses",
            Some(&employee.token),
            trip("10", "km", "2026-01-05"),
        )
        .await;
    let none = expect_status(none, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&none), ["mileage.unit"]);

    let set = put_policy(&app, &admin, policy("0.38")).await;
    let set = expect_status(set, StatusCode::OK).await;
    assert_eq!(set["mileage_rates"].as_array().unwrap().len(), 3, "{set}");
    assert_eq!(set["mileage_rates"][0]["valid_until"], "2025-12-31");
    assert_eq!(set["mileage_rates"][2]["valid_until"], Value::Null);

    // The last day of 2025 takes 2025's rate, the first of 2026 the new one; miles have
    // their own. 10.5 mi × 0.45 = 4.725 rounds half away from zero to 4.73.
    let cases = [
        ("123.45", "km", "2025-12-31", "37.04", "0.30"),
        ("123.45", "km", "2026-01-01", "46.91", "0.38"),
        ("10.5", "mi", "2026-01-02", "4.73", "0.45"),
    ];
    let mut claims = Vec::new();
    for (distance, unit, day, amount, per_unit) in cases {
        let created = app
            .post(
                "/v1/expenses",
                Some(&employee.token),
                trip(distance, unit, day),
            )
            .await;
        let claim = expect_status(created, StatusCode::CREATED).await;
        assert_eq!(claim["amount"], amount, "{claim}");
        assert_eq!(claim["currency"], "EUR");
        assert_eq!(claim["base_amount"], amount);
        assert_eq!(claim["category"], "mileage");
        assert_eq!(
            claim["merchant"],
            format!("{distance} {unit} at {per_unit} EUR/{unit}")
        );
        assert_eq!(claim["mileage"]["distance"], distance);
        assert_eq!(claim["mileage"]["unit"], unit);
        assert_eq!(claim["mileage"]["per_unit"], per_unit);
        claims.push(claim);
    }
    assert_eq!(claims[0]["mileage"]["rate_valid_until"], "2025-12-31");

    // Mistakes are named and record nothing: a day without a rate, an amount besides the
    // distance, a distance that is not one.
    let before = count_expenses(&app, &employee).await;
    for (body, field) in [
        (trip("10", "km", "2024-12-31"), "mileage.unit"),
        (
            json!({"mileage": {"distance": "10", "unit": "km"}, "amount": "3.00",
                   "currency": "EUR", "spent_on": "2026-01-05"}),
            "amount",
        ),
        (trip("-4", "km", "2026-01-05"), "mileage.distance"),
        (trip("1.234", "km", "2026-01-05"), "mileage.distance"),
        (trip("ten", "km", "2026-01-05"), "mileage.distance"),
    ] {
        let response = app
            .post("/v1/expenses", Some(&employee.token), body.clone())
            .await;
        let problem = expect_status(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(fields(&problem), [field], "{body} → {problem}");
    }
    let furlongs = app
        .post(
            "/v1/expenses",
            Some(&employee.token),
            trip("10", "furlong", "2026-01-05"),
        )
        .await;
    assert_eq!(furlongs.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(count_expenses(&app, &employee).await, before);

    // The policy's limits count a claim's amount; its receipt rule does not apply (the
    // distance is the evidence): 400 km at 0.38 is 152.00 EUR, over the 100 EUR warning.
    let long = app
        .post(
            "/v1/expenses",
            Some(&employee.token),
            trip("400", "km", "2026-01-06"),
        )
        .await;
    let long = expect_status(long, StatusCode::CREATED).await;
    assert_eq!(long["amount"], "152.00");
    let broken: Vec<&str> = long["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["rule"].as_str().unwrap())
        .collect();
    assert_eq!(broken, ["cap"], "{long}");
    let id = long["id"].as_str().unwrap();
    let submitted = app
        .post(
            &format!("/v1/expenses/{id}/submit"),
            Some(&employee.token),
            json!({"justification": "client visit in Hamburg"}),
        )
        .await;
    expect_status(submitted, StatusCode::OK).await;
    let approved = app
        .post(
            &format!("/v1/expenses/{id}/approve"),
            Some(&approver.token),
            Value::Null,
        )
        .await;
    let approved = expect_status(approved, StatusCode::OK).await;
    assert_eq!(approved["status"], "approved");

    // A new rate for 2026 leaves the claims already priced as they were…
    let raised = expect_status(
        put_policy(&app, &admin, policy("0.40")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(raised["version"], 2);
    let path = |claim: &Value| format!("/v1/expenses/{}", claim["id"].as_str().unwrap());
    let kept = expect_status(
        app.get(&path(&claims[1]), &employee.token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(kept["amount"], "46.91");
    assert_eq!(kept["mileage"]["per_unit"], "0.38");

    // …until the claim is edited: a new distance is priced at the rate of its day now,
    // and a new day at that day's rate.
    let longer = patch(
        &app,
        &employee,
        &claims[1],
        json!({"mileage": {"distance": "200", "unit": "km"}}),
    )
    .await;
    let longer = expect_status(longer, StatusCode::OK).await;
    assert_eq!(longer["amount"], "80.00");
    assert_eq!(longer["merchant"], "200 km at 0.40 EUR/km");
    assert_eq!(longer["mileage"]["per_unit"], "0.40");
    let earlier = patch(
        &app,
        &employee,
        &claims[1],
        json!({"spent_on": "2025-06-30"}),
    )
    .await;
    let earlier = expect_status(earlier, StatusCode::OK).await;
    assert_eq!(earlier["amount"], "60.00");
    assert_eq!(earlier["mileage"]["per_unit"], "0.30");
    let history = expect_status(
        app.get(&format!("{}/history", path(&claims[1])), &employee.token)
            .await,
        StatusCode::OK,
    )
    .await;
    let changed: Vec<Vec<String>> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "ExpenseUpdated")
        .map(|e| {
            e["changes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["field"].as_str().unwrap().to_string())
                .collect()
        })
        .collect();
    assert_eq!(
        changed,
        [
            vec!["amount", "merchant", "distance"],
            vec!["amount", "merchant", "spent_on"]
        ],
        "{history}"
    );

    // A claim's amount follows its distance, and an amount spent does not become a claim.
    let amount = patch(&app, &employee, &claims[2], json!({"amount": "9.99"})).await;
    let amount = expect_status(amount, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&amount), ["amount"]);
    let lunch = app
        .post(
            "/v1/expenses",
            Some(&employee.token),
            json!({"amount": "8.00", "currency": "EUR", "merchant": "Kiosk",
                   "category": "meals", "spent_on": "2026-01-05"}),
        )
        .await;
    let lunch = expect_status(lunch, StatusCode::CREATED).await;
    let converted = patch(
        &app,
        &employee,
        &lunch,
        json!({"mileage": {"distance": "5", "unit": "km"}}),
    )
    .await;
    let converted = expect_status(converted, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&converted), ["mileage"]);
    let unchanged = expect_status(
        app.get(&path(&lunch), &employee.token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(unchanged["version"], lunch["version"]);
    assert_eq!(unchanged["mileage"], Value::Null);

    // Every version of the policy keeps the rates it had.
    let versions = expect_status(
        app.get("/v1/policy/history", &admin.token).await,
        StatusCode::OK,
    )
    .await;
    let per_km: Vec<&str> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["mileage_rates"][1]["per_unit"].as_str().unwrap())
        .collect();
    assert_eq!(per_km, ["0.38", "0.40"]);

    let db = app.database.connect().await;
    assert_read_models_equal_a_rebuild(&db, &app.database.vault(&db).await).await;
    db.close().await;
    app.finish().await;
}

on_both_backends!(claims_are_priced_at_the_rate_of_their_day);
