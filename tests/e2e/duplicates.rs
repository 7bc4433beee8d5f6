//! Duplicate receipts (issue 19): an expense whose receipt is a re-compressed, scaled copy
//! of another expense's receipt is flagged by the policy's duplicate rule; and on
//! generated pairs the product was not tuned on (the held-out part of
//! tests/support/receipt_pairs.py), copies are found and other receipts of the same shop
//! are not.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use expensewise_tests::{
    expect_status, expensewise_bin, on_both_backends, support_script, upload_receipt, Backend,
    TestApp, User,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Draws `count` receipts from `first` of the held-out part, with their copies and other
/// receipts of their shop, into `dir`; the pairs file.
fn pairs(dir: &Path, first: usize, count: usize) -> Value {
    let output = support_script(
        "receipt_pairs.py",
        &[
            "--part",
            "heldout",
            "--first",
            &first.to_string(),
            "--count",
            &count.to_string(),
            "--out",
            &dir.display().to_string(),
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&std::fs::read(dir.join("pairs.json")).unwrap()).unwrap()
}

/// An expense of `amount` with `file` as its receipt (amounts differ, so that only the
/// image can make two of them look alike).
async fn expense_with_receipt(app: &TestApp, user: &User, file: &Path, amount: &str) -> Value {
    let body = json!({"amount": amount, "currency": "EUR", "merchant": "Pizza Roma",
                      "category": "meals", "spent_on": "2026-05-04"});
    let expense = app.send_ok(Method::POST, "/v1/expenses", user, body).await;
    let id = expense["id"].as_str().unwrap();
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    let uploaded = upload_receipt(
        app,
        user,
        &name,
        std::fs::read(file).unwrap(),
        &[("expense_id", id)],
    )
    .await;
    expect_status(uploaded, StatusCode::ACCEPTED).await;
    expense
}

async fn a_copy_of_a_receipt_is_flagged(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    pairs(dir.path(), 300, 1);
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let employee = app.add_user(&admin, "eve@acme.test", "employee").await;
    app.send_ok(
        Method::PUT,
        "/v1/policy",
        &admin,
        json!({"rules": [{"id": "duplicates", "kind": "duplicate", "level": "warn"}]}),
    )
    .await;
    let first = expense_with_receipt(&app, &employee, &dir.path().join("r300.png"), "18.40").await;
    // The other receipt of the same shop, on another day and amount: no duplicate.
    let other = expense_with_receipt(
        &app,
        &employee,
        &dir.path().join("r300-other0.png"),
        "21.90",
    )
    .await;
    let copy =
        expense_with_receipt(&app, &employee, &dir.path().join("r300-copy0.jpg"), "18.41").await;
    let submit =
        |expense: &Value| format!("/v1/expenses/{}/submit", expense["id"].as_str().unwrap());
    let response = app
        .post(&submit(&other), Some(&employee.token), Value::Null)
        .await;
    let kept = expect_status(response, StatusCode::OK).await;
    assert_eq!(kept["violations"], json!([]), "{kept}");
    let response = app
        .post(&submit(&copy), Some(&employee.token), Value::Null)
        .await;
    let refused = expect_status(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let message = refused["violations"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("looks the same") && message.contains(first["id"].as_str().unwrap()),
        "{refused}"
    );
    app.finish().await;
}

on_both_backends!(a_copy_of_a_receipt_is_flagged);

/// On 25 held-out receipts (100 copies, 250 pairs of different receipts): what the
/// product takes for one receipt, through `expensewise receipts fingerprint --same`.
#[test]
fn copies_are_found_and_other_receipts_of_the_shop_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = pairs(dir.path(), 100, 25);
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "png" || x == "jpg"))
        .map(|p| p.display().to_string())
        .collect();
    let output = std::process::Command::new(expensewise_bin())
        .args(["receipts", "fingerprint", "--same"])
        .args(&files)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let name = |path: &str| {
        Path::new(path)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string()
    };
    let found: HashSet<(String, String)> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .flat_map(|line| {
            let (a, b) = line.split_once(' ').unwrap();
            [(name(a), name(b)), (name(b), name(a))]
        })
        .collect();
    let listed = |kind: &str| -> Vec<(String, String)> {
        pairs[kind]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into()))
            .collect()
    };
    let mut by_copy: HashMap<&str, (usize, usize)> = HashMap::new();
    let same = listed("same");
    for (a, b) in &same {
        let kind = if b.contains("copy3") {
            "re-photographed"
        } else {
            "re-compressed, scaled, cropped or re-lit"
        };
        let entry = by_copy.entry(kind).or_default();
        entry.1 += 1;
        if found.contains(&(a.clone(), b.clone())) {
            entry.0 += 1;
        }
    }
    let different = listed("different");
    let false_alarms = different.iter().filter(|pair| found.contains(pair)).count();
    let rate = |(hit, all): (usize, usize)| hit as f64 / all as f64;
    let digital = rate(by_copy["re-compressed, scaled, cropped or re-lit"]);
    let photographed = rate(by_copy["re-photographed"]);
    assert!(digital >= 0.95, "{by_copy:?}");
    assert!(photographed >= 0.9, "{by_copy:?}");
    assert!(
        (false_alarms as f64) < 0.01 * different.len() as f64,
        "{false_alarms} of {} pairs of different receipts taken for one",
        different.len()
    );
}
