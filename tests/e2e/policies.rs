//! Spend policies and money in the organization's currency (issue 19): every rule kind at
//! level warn and block through the HTTP API, a justified warning reaching approval, a
//! blocked submission listing every violation, evaluations that a later policy does not
//! change and that the history replays; and expenses in JPY, GBP and CHF converted at the
//! ECB's rate of the right day (the real history, checked by a script of Python decimals),
//! with totals in the base currency equal to the sum of the conversions.

use chrono::{Datelike, Duration, NaiveDate, Utc, Weekday};
use expensewise_tests::{
    assert_read_models_equal_a_rebuild, consistency, expect_status, expensewise, on_both_backends,
    Backend, TestApp, User, PASSWORD,
};
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::currencies::ecb_expected;

async fn set_policy(app: &TestApp, admin: &User, rules: Value) -> Value {
    app.send_ok(Method::PUT, "/v1/policy", admin, json!({ "rules": rules }))
        .await
}

async fn create(app: &TestApp, user: &User, body: Value) -> Value {
    let response = app.post("/v1/expenses", Some(&user.token), body).await;
    expect_status(response, StatusCode::CREATED).await
}

async fn submit(
    app: &TestApp,
    user: &User,
    expense: &Value,
    justification: Option<&str>,
) -> (StatusCode, Value) {
    let id = expense["id"].as_str().unwrap();
    let body = match justification {
        Some(j) => json!({ "justification": j }),
        None => Value::Null,
    };
    let response = app
        .post(
            &format!("/v1/expenses/{id}/submit"),
            Some(&user.token),
            body,
        )
        .await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn expense(amount: &str, merchant: &str, category: &str, spent_on: NaiveDate) -> Value {
    json!({"amount": amount, "currency": "EUR", "merchant": merchant, "category": category,
           "spent_on": spent_on})
}

fn rules_broken(body: &Value) -> Vec<(String, String)> {
    body["violations"]
        .as_array()
        .unwrap_or_else(|| panic!("no violations in {body}"))
        .iter()
        .map(|v| {
            (
                v["rule"].as_str().unwrap().to_string(),
                v["level"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// One kind of rule: the rule (without its level), expenses submitted before that count
/// towards it, one expense that breaks it and one that does not.
struct Case {
    rule: Value,
    before: Vec<Value>,
    breaking: Value,
    keeping: Value,
}

/// The cases of every kind, each in its own month (`year`, `month`) so that no case's
/// expenses count in another's sums.
fn cases(year: i32, today: NaiveDate) -> Vec<Case> {
    let day = |month: u32, d: u32| NaiveDate::from_ymd_opt(year, month, d).unwrap();
    let saturday = (1..=7)
        .map(|d| day(7, d))
        .find(|d| d.weekday() == Weekday::Sat)
        .unwrap();
    let wednesday = (1..=7)
        .map(|d| day(7, d))
        .find(|d| d.weekday() == Weekday::Wed)
        .unwrap();
    let holiday = wednesday + Duration::days(7);
    let kind = |id: &str, kind: &str, extra: Value| {
        let mut rule = json!({"id": id, "kind": kind});
        rule.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        rule
    };
    let no_description = |mut body: Value| {
        body.as_object_mut().unwrap().remove("description");
        body
    };
    vec![
        Case {
            rule: kind("receipts", "receipt_required", json!({"amount": "75"})),
            before: vec![],
            breaking: expense("100.00", "Hotel Adler", "lodging", day(1, 10)),
            keeping: expense("75.00", "Hotel Adler", "lodging", day(1, 11)),
        },
        Case {
            rule: kind("itemised", "itemised_receipt", json!({"amount": "50"})),
            before: vec![],
            breaking: expense("60.00", "Trattoria", "meals", day(2, 10)),
            keeping: expense("40.00", "Trattoria", "meals", day(2, 11)),
        },
        Case {
            rule: kind("cap", "max_per_expense", json!({"amount": "500"})),
            before: vec![],
            breaking: expense("500.01", "Airline", "travel", day(3, 10)),
            keeping: expense("500.00", "Airline", "travel", day(3, 11)),
        },
        Case {
            rule: kind(
                "daily-meals",
                "max_per_day",
                json!({"amount": "100", "categories": ["meals"]}),
            ),
            before: vec![expense("70.00", "Lunch place", "meals", day(4, 10))],
            // The travel of the same day does not count towards meals.
            breaking: expense("40.00", "Dinner place", "meals", day(4, 10)),
            keeping: expense("400.00", "Train", "travel", day(4, 10)),
        },
        Case {
            rule: kind("monthly", "max_per_month", json!({"amount": "1000"})),
            before: vec![expense("900.00", "Conference", "travel", day(5, 3))],
            breaking: expense("100.01", "Taxi", "travel", day(5, 28)),
            keeping: expense("100.01", "Taxi", "travel", day(6, 1)),
        },
        Case {
            rule: kind("age", "max_age", json!({"days": 30})),
            before: vec![],
            breaking: expense("12.00", "Kiosk", "meals", today - Duration::days(31)),
            keeping: expense("12.00", "Kiosk", "meals", today - Duration::days(29)),
        },
        Case {
            rule: kind(
                "weekend",
                "weekend_or_holiday",
                json!({"holidays": [holiday]}),
            ),
            before: vec![],
            breaking: expense("30.00", "Museum", "other", saturday),
            keeping: expense("30.00", "Museum", "other", wednesday),
        },
        Case {
            rule: kind(
                "no-gambling",
                "prohibited",
                json!({"merchant_words": ["casino", "duty free"]}),
            ),
            before: vec![],
            breaking: expense("80.00", "Grand CASINO Baden", "other", day(8, 10)),
            keeping: expense("80.00", "Free Duty Books", "other", day(8, 10)),
        },
        Case {
            rule: kind("memo", "description_required", json!({"amount": "25"})),
            before: vec![],
            breaking: no_description(expense("30.00", "Bookshop", "office", day(9, 10))),
            keeping: json!({"amount": "30.00", "currency": "EUR", "merchant": "Bookshop",
                            "category": "office", "spent_on": day(9, 11),
                            "description": "a book for the team"}),
        },
        Case {
            rule: kind("duplicates", "duplicate", json!({})),
            before: vec![expense("18.40", "Pizza Roma", "meals", day(10, 10))],
            breaking: expense("18.40", " pizza roma ", "meals", day(10, 10)),
            keeping: expense("18.41", "Pizza Roma", "meals", day(10, 10)),
        },
    ]
}

async fn every_rule_kind_warns_or_blocks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let employee = app.add_user(&admin, "eve@acme.test", "employee").await;
    let approver = app.add_user(&admin, "bob@acme.test", "approver").await;
    let today = Utc::now().date_naive();

    for (level, year) in [("warn", 2024), ("block", 2025)] {
        for case in cases(year, today) {
            let mut rule = case.rule.clone();
            rule["level"] = json!(level);
            let id = rule["id"].as_str().unwrap().to_string();
            let policy = set_policy(&app, &admin, json!([rule])).await;
            for before in &case.before {
                let before = create(&app, &employee, before.clone()).await;
                let (status, body) = submit(&app, &employee, &before, None).await;
                assert_eq!(status, StatusCode::OK, "{id}: {body}");
            }
            let breaking = create(&app, &employee, case.breaking.clone()).await;
            // The draft already shows what the policy says of it.
            assert_eq!(
                rules_broken(&breaking),
                [(id.clone(), level.to_string())],
                "{id} on create: {breaking}"
            );
            let (status, refused) = submit(&app, &employee, &breaking, None).await;
            assert_eq!(rules_broken(&refused), [(id.clone(), level.to_string())]);
            if level == "warn" {
                assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{id}: {refused}");
                assert_eq!(refused["errors"][0]["field"], "justification", "{refused}");
                let (status, submitted) =
                    submit(&app, &employee, &breaking, Some("needed for the client")).await;
                assert_eq!(status, StatusCode::OK, "{id}: {submitted}");
                assert_eq!(submitted["status"], "submitted");
                assert_eq!(submitted["justification"], "needed for the client");
                assert_eq!(submitted["policy_version"], policy["version"]);
                assert_eq!(rules_broken(&submitted), [(id.clone(), "warn".into())]);
            } else {
                assert_eq!(status, StatusCode::CONFLICT, "{id}: {refused}");
                assert_eq!(refused["type"], "urn:expensewise:problem:policy-violation");
                let path = format!("/v1/expenses/{}", breaking["id"].as_str().unwrap());
                let unchanged =
                    expect_status(app.get(&path, &employee.token).await, StatusCode::OK).await;
                assert_eq!(
                    unchanged["status"], "draft",
                    "a blocked submission changes nothing"
                );
                assert_eq!(unchanged["version"], breaking["version"]);
            }
            let keeping = create(&app, &employee, case.keeping.clone()).await;
            let (status, kept) = submit(&app, &employee, &keeping, None).await;
            assert_eq!(status, StatusCode::OK, "{id} keeping: {kept}");
            assert_eq!(kept["violations"], json!([]), "{id} keeping: {kept}");
        }
    }

    // A blocked submission lists every violation, the warnings too.
    let strict = set_policy(
        &app,
        &admin,
        json!([
            {"id": "cap", "kind": "max_per_expense", "level": "block", "amount": "100"},
            {"id": "receipts", "kind": "receipt_required", "level": "block", "amount": "50"},
            {"id": "memo", "kind": "description_required", "level": "warn", "amount": "10"},
        ]),
    )
    .await;
    let day = NaiveDate::from_ymd_opt(2026, 2, 2).unwrap();
    let everything = create(&app, &employee, expense("250.00", "Shop", "office", day)).await;
    let (status, refused) = submit(&app, &employee, &everything, Some("please")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        rules_broken(&refused),
        [
            ("cap".to_string(), "block".to_string()),
            ("receipts".into(), "block".into()),
            ("memo".into(), "warn".into())
        ]
    );
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("cap, receipts"),
        "{refused}"
    );

    // A justified warning reaches the approver, who sees it and approves.
    let justified = create(
        &app,
        &employee,
        expense("20.00", "Stationer", "office", day),
    )
    .await;
    let response = app
        .post(
            &format!("/v1/expenses/{}/submit", justified["id"].as_str().unwrap()),
            Some(&employee.token),
            json!({"justification": "toner for the printer"}),
        )
        .await;
    let written = consistency(&response);
    expect_status(response, StatusCode::OK).await;
    // The approver reads another user's write: with its consistency token.
    let queue = expect_status(
        app.get_after("/v1/approvals?limit=500", &approver.token, &written)
            .await,
        StatusCode::OK,
    )
    .await;
    let queued = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == justified["id"])
        .expect("the justified expense is in the queue")
        .clone();
    assert_eq!(rules_broken(&queued), [("memo".into(), "warn".into())]);
    assert_eq!(queued["justification"], "toner for the printer");
    let approve = format!("/v1/expenses/{}/approve", justified["id"].as_str().unwrap());
    app.send_ok(Method::POST, &approve, &approver, Value::Null)
        .await;

    // A later policy changes nothing recorded: the submission keeps its version and
    // violations, and that version of the policy still reads as it was.
    set_policy(&app, &admin, json!([])).await;
    let path = format!("/v1/expenses/{}", justified["id"].as_str().unwrap());
    let kept = expect_status(app.get(&path, &admin.token).await, StatusCode::OK).await;
    assert_eq!(kept["status"], "approved");
    assert_eq!(kept["policy_version"], strict["version"]);
    assert_eq!(rules_broken(&kept), [("memo".into(), "warn".into())]);
    let then = expect_status(
        app.get(
            &format!("/v1/policy?version={}", strict["version"]),
            &employee.token,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(then["rules"].as_array().unwrap().len(), 3);
    let now = expect_status(app.get("/v1/policy", &employee.token).await, StatusCode::OK).await;
    assert_eq!(now["rules"], json!([]));
    assert_eq!(
        now["version"].as_u64().unwrap(),
        strict["version"].as_u64().unwrap() + 1
    );
    let versions = expect_status(
        app.get("/v1/policy/history", &employee.token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        versions.as_array().unwrap().len() as u64,
        now["version"].as_u64().unwrap()
    );

    // The history replays each submission's evaluation from the events.
    let history = expect_status(
        app.get(&format!("{path}/history"), &admin.token).await,
        StatusCode::OK,
    )
    .await;
    let submission = history
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "ExpenseSubmitted")
        .unwrap();
    assert_eq!(submission["event_version"], "2.0");
    assert_eq!(submission["payload"]["policy_version"], strict["version"]);
    assert_eq!(submission["payload"]["violations"][0]["rule"], "memo");
    assert_eq!(
        submission["payload"]["justification"],
        "toner for the printer"
    );

    // Rules are checked and named; only admins set them; If-Match guards a change.
    let response = app
        .request(Method::PUT, "/v1/policy", Some(&admin.token))
        .json(&json!({"rules": [
            {"id": "ok", "kind": "max_age", "level": "warn", "days": 30},
            {"id": "no-amount", "kind": "max_per_day", "level": "block"},
            {"id": "ok", "kind": "duplicate", "level": "warn"},
        ]}))
        .send()
        .await
        .unwrap();
    let invalid = expect_status(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let fields: Vec<&str> = invalid["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["rules[1] (no-amount)", "rules[2] (ok)"],
        "{invalid}"
    );
    let response = app
        .request(Method::PUT, "/v1/policy", Some(&employee.token))
        .json(&json!({"rules": []}))
        .send()
        .await
        .unwrap();
    expect_status(response, StatusCode::FORBIDDEN).await;
    let response = app
        .request(Method::PUT, "/v1/policy", Some(&admin.token))
        .header("If-Match", format!("\"{}\"", strict["version"]))
        .json(&json!({"rules": [{"id": "age", "kind": "max_age", "level": "warn", "days": 9}]}))
        .send()
        .await
        .unwrap();
    expect_status(response, StatusCode::PRECONDITION_FAILED).await;
    let unchanged = expect_status(app.get("/v1/policy", &admin.token).await, StatusCode::OK).await;
    assert_eq!(unchanged["version"], now["version"]);

    let db = app.database.connect().await;
    assert_read_models_equal_a_rebuild(&db, &app.database.vault(&db).await).await;
    db.close().await;
    app.finish().await;
}

async fn expenses_in_other_currencies_keep_the_rate_of_their_day(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let history = ecb_expected(&["--where"]).trim().to_string();
    let imported = expensewise(&["rates", "import", &history], &app.database.environment()).await;
    assert!(imported.status.success(), "{imported:?}");

    // An organization keeping its books in euros, and one in Swiss francs (cross rates).
    let euros = app.register("Acme", "ada@acme.test").await;
    let response = app
        .post(
            "/v1/auth/register",
            None,
            json!({"organization": "Berg AG", "name": "Admin", "email": "urs@berg.test",
                   "password": PASSWORD, "default_currency": "CHF"}),
        )
        .await;
    expect_status(response, StatusCode::CREATED).await;
    let francs = app.login("urs@berg.test").await;

    // 2 March 2024 was a Saturday (Friday's rates apply), 4 March the Monday after.
    let cases = [
        (&euros, "EUR", "12345", "JPY", "2024-03-02"),
        (&euros, "EUR", "12345", "JPY", "2024-03-04"),
        (&euros, "EUR", "987.65", "GBP", "2024-03-02"),
        (&euros, "EUR", "987.65", "GBP", "2024-03-04"),
        (&euros, "EUR", "55.10", "CHF", "2024-03-02"),
        (&euros, "EUR", "55.10", "CHF", "2024-03-04"),
        (&francs, "CHF", "4321", "JPY", "2024-03-02"),
        (&francs, "CHF", "250.00", "GBP", "2024-03-04"),
        (&francs, "CHF", "19.99", "EUR", "2024-03-04"),
    ];
    let specs: Vec<String> = cases
        .iter()
        .map(|(_, base, amount, from, day)| format!("{amount}:{from}:{base}:{day}"))
        .collect();
    let mut args = vec![history.as_str()];
    args.extend(specs.iter().map(String::as_str));
    let expected: Vec<Value> = serde_json::from_str(&ecb_expected(&args)).unwrap();
    let mut sums = [Decimal::ZERO, Decimal::ZERO];
    for ((user, base, amount, from, day), expected) in cases.iter().zip(&expected) {
        let made = create(
            &app,
            user,
            json!({"amount": amount, "currency": from, "merchant": "Abroad",
                   "category": "travel", "spent_on": day}),
        )
        .await;
        assert_eq!(made["amount"], *amount);
        assert_eq!(made["currency"], *from);
        assert_eq!(
            made["base_amount"], expected["amount"],
            "{amount} {from} in {base} on {day}: {made}"
        );
        assert_eq!(made["base_currency"], *base);
        assert_eq!(made["rate"]["kind"], "reference");
        assert_eq!(made["rate"]["source"], "ECB");
        assert_eq!(made["rate"]["date"], expected["rate_date"], "{day}");
        let sum = &mut sums[usize::from(*base == "CHF")];
        *sum += made["base_amount"]
            .as_str()
            .unwrap()
            .parse::<Decimal>()
            .unwrap();
    }
    // Saturday took Friday's rates.
    assert_eq!(expected[0]["rate_date"], "2024-03-01");

    // A card statement's rate wins over the day's; an amount no rate is kept for stays
    // unconverted and cannot be submitted until it is given one.
    let manual = create(
        &app,
        &euros,
        json!({"amount": "100.00", "currency": "USD", "merchant": "Diner", "category": "meals",
               "spent_on": "2024-03-04", "exchange_rate": "0.9235"}),
    )
    .await;
    assert_eq!(manual["base_amount"], "92.35");
    assert_eq!(
        manual["rate"],
        json!({"kind": "manual", "per_unit": "0.9235"})
    );
    sums[0] += Decimal::new(9235, 2);
    let response = app
        .post(
            "/v1/expenses",
            Some(&euros.token),
            json!({"amount": "1.00", "currency": "EUR", "merchant": "x", "category": "x",
                   "spent_on": "2024-03-04", "exchange_rate": "2"}),
        )
        .await;
    let refused = expect_status(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(refused["errors"][0]["field"], "exchange_rate");
    let unknown = create(
        &app,
        &euros,
        json!({"amount": "10.00", "currency": "GBP", "merchant": "Old pub", "category": "meals",
               "spent_on": "1990-01-02"}),
    )
    .await;
    assert_eq!(unknown["base_amount"], Value::Null);
    assert_eq!(
        rules_broken(&unknown),
        [("exchange_rate".into(), "block".into())]
    );
    let (status, refused) = submit(&app, &euros, &unknown, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(
        rules_broken(&refused),
        [("exchange_rate".into(), "block".into())]
    );
    let path = format!("/v1/expenses/{}", unknown["id"].as_str().unwrap());
    let fixed = app
        .send_ok(
            Method::PATCH,
            &path,
            &euros,
            json!({"exchange_rate": "1.15"}),
        )
        .await;
    assert_eq!(fixed["base_amount"], "11.50");
    assert_eq!(fixed["violations"], json!([]));
    let (status, _) = submit(&app, &euros, &fixed, None).await;
    assert_eq!(status, StatusCode::OK);

    // Totals in the base currency are the sum of each expense's conversion; the
    // original currencies are summed apart.
    for (user, sum, base) in [(&euros, sums[0], "EUR"), (&francs, sums[1], "CHF")] {
        let summary = expect_status(
            app.get(
                "/v1/reports/summary?group_by=month&from=2024-03-01&to=2024-03-31",
                &user.token,
            )
            .await,
            StatusCode::OK,
        )
        .await;
        let in_base = &summary["in_base"][0];
        assert_eq!(in_base["key"], "2024-03");
        assert_eq!(in_base["currency"], base);
        assert_eq!(in_base["total"], sum.to_string(), "{summary}");
        assert_eq!(in_base["unconverted"], 0);
        let jpy = summary["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["currency"] == "JPY")
            .unwrap();
        let yen = if base == "EUR" { "24690" } else { "4321" };
        assert_eq!(jpy["total"], yen);
    }
    let everything = expect_status(
        app.get("/v1/reports/summary?group_by=category", &euros.token)
            .await,
        StatusCode::OK,
    )
    .await;
    let meals = everything["in_base"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "meals")
        .unwrap();
    assert_eq!(
        meals["unconverted"], 0,
        "the old pub's expense was given a rate"
    );
    assert_eq!(meals["total"], "103.85");

    let db = app.database.connect().await;
    assert_read_models_equal_a_rebuild(&db, &app.database.vault(&db).await).await;
    db.close().await;
    app.finish().await;
}

on_both_backends!(
    every_rule_kind_warns_or_blocks,
    expenses_in_other_currencies_keep_the_rate_of_their_day
);
